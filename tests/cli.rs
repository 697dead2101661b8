//! The operator interface (DESIGN.md "Operator interface"), run as a
//! person or a script would: the real binary, its exit codes and output.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn mcpgate(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn set_activation(file: &Path, at: u64) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    v["activates_at"] = at.into();
    std::fs::write(file, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn keys_generate_list_rotate_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let k = keys.to_str().unwrap();
    let out = mcpgate(&["keys", "generate", "--dir", k], dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3);
    for f in &files {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let list = stdout(&mcpgate(&["keys", "list", "--dir", k], dir.path(), &[]));
    assert_eq!(list.matches(" active").count(), 3, "{list}");
    for kind in ["signing", "sealing", "registration"] {
        assert!(list.contains(kind), "{list}");
    }

    let out = mcpgate(
        &["keys", "rotate", "--dir", k, "--activate-in", "5m"],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&mcpgate(&["keys", "list", "--dir", k], dir.path(), &[]));
    assert_eq!(list.matches(" pending").count(), 3, "{list}");
    assert_eq!(list.matches(" active").count(), 3, "{list}");

    // Age the keys: the first set 20 days old, its successors 10 days.
    let mut files: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| {
        std::fs::read_to_string(p)
            .unwrap()
            .contains("\"activates_at\": \"") as u8
    });
    let content = |p: &Path| std::fs::read_to_string(p).unwrap();
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for f in &files {
        let v: Value = serde_json::from_str(&content(f)).unwrap();
        let at = humantime::parse_rfc3339(v["activates_at"].as_str().unwrap()).unwrap();
        if at > std::time::SystemTime::now() {
            new.push(f.clone());
        } else {
            old.push(f.clone());
        }
    }
    for f in &old {
        set_activation(f, unix_now() - 20 * 86400);
    }
    for f in &new {
        set_activation(f, unix_now() - 10 * 86400);
    }
    let list = stdout(&mcpgate(&["keys", "list", "--dir", k], dir.path(), &[]));
    // Signing keys retire an hour after their successor; sealing keys
    // after the refresh lifetime (30 d); registration keys never.
    assert!(list.contains("retired-by-successor"), "{list}");
    assert_eq!(list.matches(" retiring").count(), 2, "{list}");
    assert!(list.contains("register again"), "{list}");
    // Columns line up whatever the kind's name.
    for row in list.lines() {
        assert_eq!(&row[40..41], " ", "{list}");
        assert_eq!(&row[54..55], " ", "{list}");
        assert_ne!(&row[55..56], " ", "{list}");
    }
    // The lifetimes are the ones `serve` would use, here from the
    // environment: with 5-day refresh tokens, nothing the sealing key
    // superseded 10 days ago sealed is still alive.
    let list = stdout(&mcpgate(
        &["keys", "list", "--dir", k],
        dir.path(),
        &[("MCPGATE_TOKENS__REFRESH_TTL", "5d")],
    ));
    assert_eq!(list.matches("retired-by-successor").count(), 2, "{list}");
    assert_eq!(list.matches(" retiring").count(), 1, "{list}");
    // A config that cannot load is said, and the defaults stand in.
    let out = mcpgate(
        &["keys", "list", "--dir", k],
        dir.path(),
        &[("MCPGATE_TOKENS__ACCESS_TTL", "15d")],
    );
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("default token lifetimes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).matches(" retiring").count(), 2);

    // Prune does not guess lifetimes: a directory no config names is
    // refused (the embedded dev config's lifetimes are not production's).
    let out = mcpgate(
        &["keys", "prune", "--dir", k, "--older-than", "5d"],
        dir.path(),
        &[],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("pass the config `serve` uses with --config"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&keys).unwrap().count(),
        6,
        "nothing removed"
    );
    let cfg = dir.path().join("prod.toml");
    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let cfg = cfg.to_str().unwrap();

    // The signing key is retired; the sealing key (refresh tokens live
    // 30 d) and the registration key are still in use: kept.
    let out = mcpgate(
        &[
            "keys",
            "prune",
            "--dir",
            k,
            "--config",
            cfg,
            "--older-than",
            "5d",
        ],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(&keys).unwrap().count(),
        5,
        "{}",
        stdout(&out)
    );
    let out = mcpgate(
        &[
            "keys",
            "prune",
            "--dir",
            k,
            "--config",
            cfg,
            "--older-than",
            "5d",
            "--force",
        ],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("must register again"),
        "{}",
        stdout(&out)
    );
    let left: Vec<_> = std::fs::read_dir(&keys).unwrap().collect();
    assert_eq!(left.len(), 3, "only the active keys remain");
    let list = stdout(&mcpgate(&["keys", "list", "--dir", k], dir.path(), &[]));
    assert_eq!(list.matches(" active").count(), 3, "{list}");
    // Nothing more to prune: the active keys are never removed.
    let out = mcpgate(
        &[
            "keys",
            "prune",
            "--dir",
            k,
            "--config",
            cfg,
            "--older-than",
            "0s",
        ],
        dir.path(),
        &[],
    );
    assert!(
        stdout(&out).contains("nothing superseded"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn clients_add_prints_a_secret_once_and_a_stanza_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = mcpgate(
        &[
            "clients",
            "add",
            "--client-id",
            "acme-agent",
            "--redirect-uri",
            "https://agent.acme.example/cb",
            "--name",
            "Acme",
        ],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(secret.len() >= 43);
    let stanza = &text[text.find("[[clients]]").unwrap()..];
    assert!(
        !stanza.contains(&secret),
        "only the hash goes into the config"
    );

    let keys = dir.path().join("keys");
    generate_keys(&keys);
    let cfg_text = config(&keys, "")
        .replace(r#"redirect_uris = ["https://claude.ai/api/mcp/auth_callback""#, r#"redirect_uris = ["https://agent.acme.example/cb", "https://claude.ai/api/mcp/auth_callback""#)
        + "\n"
        + stanza;
    let cfg = dir.path().join("mcpgate.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let check = mcpgate(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[],
    );
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        !stdout(&check).contains(&sha256_hex(&secret)),
        "config check redacts secret hashes"
    );
    assert!(stdout(&check).contains("<redacted>"));

    let s = Server::start_with(tempfile::tempdir().unwrap(), &cfg);
    let r = s
        .authorize(
            PUBLIC,
            &[
                ("response_type", "code"),
                ("client_id", "acme-agent"),
                ("redirect_uri", "https://agent.acme.example/cb"),
            ],
            Some("carol@example.com"),
        )
        .await;
    assert_eq!(r.status(), 302);
    let code = query_param(&location(&r), "code").unwrap();
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://agent.acme.example/cb"),
            ],
            Some(("acme-agent", &secret)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn config_check_names_bad_keys_and_applies_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys);
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config(&keys, "").replace("[keys]", "[keys]\nrotation = \"1h\""),
    )
    .unwrap();
    let out = mcpgate(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("rotation"), "{}", stderr(&out));

    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let out = mcpgate(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[
            ("MCPGATE_TOKENS__ACCESS_TTL", "5m"),
            ("MCPGATE_SERVICE_HOST", "10.0.0.1"),
            ("MCPGATE_PORT", "tcp://10.0.0.1:80"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("access_ttl = \"5m\""),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("https://mcp.example.com/.well-known/oauth-authorization-server"));

    let out = mcpgate(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[("MCPGATE_TOKENS__ACCES_TTL", "5m")],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("acces_ttl"), "{}", stderr(&out));

    let out = mcpgate(
        &["serve", "--config", "/nonexistent/mcpgate.toml"],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

/// `config check --config <file>` in `dir`, with `env`.
fn check(dir: &Path, cfg: &Path, env: &[(&str, &str)]) -> Output {
    mcpgate(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        dir,
        env,
    )
}

#[test]
fn config_check_fails_when_serve_would_find_no_keys_and_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("nokeys");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        first,
        format!("checking {} (with MCPGATE_* variables)", cfg.display())
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot read key directory {}", keys.display())),
        "{err}"
    );
    assert!(err.contains("mcpgate keys generate --dir"), "{err}");
    assert!(!stdout(&out).contains("config ok"), "{}", stdout(&out));

    // A directory with keys of two kinds only: still not what serve needs.
    generate_keys(&keys);
    for f in std::fs::read_dir(&keys).unwrap() {
        let f = f.unwrap().path();
        if std::fs::read_to_string(&f)
            .unwrap()
            .contains("registration")
        {
            std::fs::remove_file(&f).unwrap();
        }
    }
    let out = check(dir.path(), &cfg, &[]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no registration key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_check_warns_about_placeholders_on_stderr_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys);
    let cfg = dir.path().join("c.toml");
    let zero = "0".repeat(64);
    let text = config(&keys, "").replace(&sha256_hex(GEMINI_SECRET), &zero);
    assert!(text.contains(&zero));
    std::fs::write(&cfg, text).unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: clients[0].client_secret_sha256")),
        "{err}"
    );
    // The test config's issuers are example names, in proxy mode.
    assert!(
        err.contains("warning: hosts[1].issuer: `https://mcp.example.com`"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("config ok, with 3 warning(s)"),
        "{}",
        stdout(&out)
    );

    // A real hash: no warning about it.
    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("client_secret_sha256"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_check_on_the_embedded_dev_config_says_so_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = mcpgate(&["config", "check"], dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().next(),
        Some("checking the embedded dev config (with MCPGATE_* variables)")
    );
    // serve would create the dev keys: said, not an error.
    assert!(
        stderr(&out).contains("warning: keys.dir"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_errors_suggest_name_the_variable_and_explain_durations() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys);
    let cfg = dir.path().join("c.toml");

    std::fs::write(&cfg, config(&keys, "[tokens]\nacess_ttl = \"1h\"")).unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("tokens.acess_ttl: unknown key; did you mean `access_ttl`?"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let out = check(dir.path(), &cfg, &[("MCPGATE_TOKENS__ACCESS_TTL", "bogus")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("MCPGATE_TOKENS__ACCESS_TTL (tokens.access_ttl): `bogus` is not a duration"),
        "{err}"
    );

    // A value that parses but does not validate: the variable too.
    let out = check(dir.path(), &cfg, &[("MCPGATE_TOKENS__ACCESS_TTL", "2d")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("MCPGATE_TOKENS__ACCESS_TTL (tokens.access_ttl): must be between"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        &cfg,
        config(&keys, "").replace("[keys]", "[keys]\nrescan = 30"),
    )
    .unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("c.toml): keys.rescan: "), "{err}");
    assert!(err.contains("a duration such as \"30s\""), "{err}");

    // Keys in one notation, as the validation errors write them.
    std::fs::write(
        &cfg,
        config(&keys, "").replace("redirect_uris = [\"loopback\"]", "redirect_uris = [7]"),
    )
    .unwrap();
    let out = check(dir.path(), &cfg, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("c.toml): hosts[0].redirect_uris[0]: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_check_echoes_durations_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    generate_keys(&keys);
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config(
            &keys,
            "[tokens]\naccess_ttl = \"120m\"\nrefresh_ttl = \"30d\"",
        ),
    )
    .unwrap();
    let out = check(dir.path(), &cfg, &[("MCPGATE_TOKENS__CODE_TTL", "90s")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("access_ttl = \"120m\"\n"), "{text}");
    assert!(text.contains("refresh_ttl = \"30d\"\n"), "{text}");
    assert!(text.contains("code_ttl = \"90s\"\n"), "{text}");
}

#[tokio::test]
async fn serve_warns_when_no_loopback_issuer_names_the_port_it_listens_on() {
    // `MCPGATE_LISTEN=127.0.0.1:8082 cargo run`: the listener moved, the
    // dev issuers still name 8080.
    let s = Server::start_custom(|keys| {
        config_with_identity(
            keys,
            "[identity]\nsource = \"dev\"\nallowed_domains = [\"example.com\"]",
        )
        .replace("https://mcp.internal.example", "http://127.0.0.1:8080")
    });
    let port = s.addr.port();
    let log = s.log_containing("no issuer names it").await;
    let line = log
        .lines()
        .find(|l| l.contains("no issuer names it"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!("listening on port {port}")),
        "{line}"
    );
    assert!(line.contains("issuers: http://127.0.0.1:8080"), "{line}");
    assert!(line.contains("MCPGATE_HOSTS"), "{line}");
}

#[test]
fn serve_without_keys_in_proxy_mode_explains_how_to_create_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&dir.path().join("nokeys"), "")).unwrap();
    let out = mcpgate(
        &["serve", "--config", cfg.to_str().unwrap()],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("mcpgate keys generate"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn cargo_run_serves_the_dev_config_with_generated_keys() {
    // What `cargo run` does in a fresh clone: no config file, no keys.
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("MCPGATE_LISTEN", "127.0.0.1:0")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server =
        Listening::spawn(cmd, &["mcpgate listening on "]).unwrap_or_else(|line| panic!("{line}"));
    let addr = server.addr();
    // It says what to do next: the endpoint, a client, who may sign in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let banner = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("Production:") || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for line in [
        "MCP endpoint: http://127.0.0.1:8080/mcp",
        "claude mcp add --transport http mcpgate http://127.0.0.1:8080/mcp",
        "any address at @example.com",
    ] {
        assert!(banner.contains(line), "{line:?} not in:\n{banner}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
        3,
        "dev keys generated"
    );
    let http = client();
    // The dev config's issuers are on port 8080; the listener moved only.
    let host = "127.0.0.1:8080";
    let reg: Value = http
        .post(format!("http://{addr}/oauth/register"))
        .header("host", host)
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:5000/cb"], "client_name": "Dev <b>client</b>"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"].as_str().unwrap();
    let c = challenge(VERIFIER);
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:5000/cb"),
        ("code_challenge", &c),
        ("code_challenge_method", "S256"),
        ("state", "dev"),
    ];
    let page = http
        .get(format!("http://{addr}/oauth/authorize"))
        .header("host", host)
        .header("accept", "text/html")
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("type=\"email\""), "{html}");
    assert!(
        html.contains("Dev &lt;b&gt;client&lt;/b&gt;"),
        "client names are escaped"
    );
    drop(server);

    // Dev sign-in trusts typed emails: never on a non-loopback listener.
    let out = mcpgate(&[], dir.path(), &[("MCPGATE_LISTEN", "0.0.0.0:0")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("identity.source"), "{}", stderr(&out));
}

/// The key files of `dir` whose kid starts with `prefix` (`sig`, `seal`,
/// `reg`).
fn key_files(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{prefix}-"))
        })
        .collect();
    v.sort();
    v
}

/// A directory after a rotation: the first set activated two days ago,
/// its successors `successor_age` seconds ago. Returns the first set.
fn rotated_keys(keys: &Path, cwd: &Path, successor_age: u64) -> Vec<std::path::PathBuf> {
    generate_keys(keys);
    let first: Vec<_> = std::fs::read_dir(keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = mcpgate(
        &["keys", "rotate", "--dir", keys.to_str().unwrap()],
        cwd,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for f in std::fs::read_dir(keys).unwrap() {
        let f = f.unwrap().path();
        let age = if first.contains(&f) {
            2 * 86400
        } else {
            successor_age
        };
        set_activation(&f, unix_now() - age);
    }
    first
}

fn prune(keys: &Path, cwd: &Path, extra: &[&str]) -> Output {
    // The config `serve` would use, so that prune knows the lifetimes.
    let cfg = cwd.join("prod.toml");
    std::fs::write(&cfg, config(keys, "")).unwrap();
    let mut args = vec![
        "keys",
        "prune",
        "--dir",
        keys.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = mcpgate(&args, cwd, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// The reported case: successors 3 h old, `--older-than 2h`. Only the
/// signing key is past its use (1 h access tokens); the sealing key seals
/// 30-day refresh tokens and the registration key client ids.
#[test]
fn keys_prune_keeps_keys_still_in_use_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let first = rotated_keys(&keys, dir.path(), 3 * 3600);
    let list = stdout(&mcpgate(
        &["keys", "list", "--dir", keys.to_str().unwrap()],
        dir.path(),
        &[],
    ));
    assert_eq!(list.matches(" retiring").count(), 2, "{list}");

    let out = prune(&keys, dir.path(), &["--older-than", "2h"]);
    let text = stdout(&out);
    assert_eq!(key_files(&keys, "sig").len(), 1, "{text}");
    assert_eq!(key_files(&keys, "seal").len(), 2, "{text}");
    assert_eq!(key_files(&keys, "reg").len(), 2, "{text}");
    assert!(text.contains("refresh_ttl"), "{text}");
    assert!(text.contains("register again"), "{text}");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    // What `keys list` said is still true.
    let list = stdout(&mcpgate(
        &["keys", "list", "--dir", keys.to_str().unwrap()],
        dir.path(),
        &[],
    ));
    assert_eq!(list.matches(" retiring").count(), 2, "{list}");

    let out = prune(&keys, dir.path(), &["--older-than", "2h", "--force"]);
    for f in &first {
        assert!(!f.exists(), "{} forced out: {}", f.display(), stdout(&out));
    }
    // Never the key each kind signs or seals with, whatever is forced:
    // the newest registration key included.
    prune(&keys, dir.path(), &["--older-than", "0s", "--force"]);
    for kind in ["sig", "seal", "reg"] {
        assert_eq!(key_files(&keys, kind).len(), 1, "{kind}");
    }
}

#[test]
fn keys_prune_dry_run_says_what_and_why_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let first = rotated_keys(&keys, dir.path(), 3 * 3600);
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["--older-than", "2h", "--dry-run"];
        args.extend_from_slice(force);
        let text = stdout(&prune(&keys, dir.path(), &args));
        assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 6, "{text}");
        let sig = first.iter().find(|f| key_files(&keys, "sig").contains(f));
        let sig = sig.unwrap().display().to_string();
        assert!(text.contains(&format!("would remove {sig}")), "{text}");
        let removals = text.matches("would remove").count();
        assert_eq!(removals, if force.is_empty() { 1 } else { 3 }, "{text}");
        assert!(text.contains("retired-by-successor"), "{text}");
    }
}

#[test]
fn keys_generate_refuses_a_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let k = keys.to_str().unwrap();
    generate_keys(&keys);
    let out = mcpgate(&["keys", "generate", "--dir", k], dir.path(), &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(k), "{err}");
    assert!(err.contains("keys rotate"), "{err}");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 3);
    let out = mcpgate(
        &["keys", "generate", "--dir", k, "--force"],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 6);
}

#[test]
fn keys_commands_take_the_directory_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("from-config");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&keys, "")).unwrap();
    let c = cfg.to_str().unwrap();
    let out = mcpgate(&["keys", "generate", "--config", c], dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("keys.dir"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 3);
    let list = stdout(&mcpgate(&["keys", "list", "--config", c], dir.path(), &[]));
    assert_eq!(list.matches(" active").count(), 3, "{list}");
    // `--dir` still wins.
    let other = dir.path().join("other");
    let out = mcpgate(
        &[
            "keys",
            "rotate",
            "--config",
            c,
            "--dir",
            other.to_str().unwrap(),
        ],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 3);
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 3);
}

fn mint(cfg: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["token", "mint", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    mcpgate(&args, cfg.parent().unwrap(), &[])
}

#[tokio::test]
async fn token_mint_in_dev_gives_a_token_the_server_accepts() {
    let s = Server::start_custom(|keys| {
        config_without_clients(keys).replace(r#"source = "proxy""#, r#"source = "dev""#)
    });
    let cfg = s.dir.path().join("mcpgate.toml");
    let out = mint(&cfg, &["--email", "Dana@Example.com", "--ttl", "10m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let (status, body) = s.whoami(INTERNAL, &token).await;
    assert_eq!(status, 200, "{body}");
    let who = &body["result"]["structuredContent"];
    assert_eq!(who["email"], "dana@example.com", "{body}");
    assert_eq!(who["client_id"], "mcpgate-cli", "{body}");
    // The claims, as /oauth/token mints them; exp from --ttl.
    let payload: Value =
        serde_json::from_slice(&base64_decode(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(payload["iss"], format!("https://{INTERNAL}"));
    assert_eq!(payload["aud"], format!("https://{INTERNAL}/mcp"));
    assert_eq!(payload["sub"], "dana@example.com");
    assert_eq!(payload["scope"], "mcp");
    let (iat, exp) = (
        payload["iat"].as_u64().unwrap(),
        payload["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 600);

    // Another host, by its issuer.
    let out = mint(
        &cfg,
        &[
            "--email",
            "dana@example.com",
            "--issuer",
            &format!("https://{PUBLIC}"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = s.whoami(PUBLIC, stdout(&out).trim()).await;
    assert_eq!(status, 200, "{body}");
    // Never longer than the server would mint.
    let out = mint(&cfg, &["--email", "dana@example.com", "--ttl", "2h"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("tokens.access_ttl"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[tokio::test]
async fn token_mint_refuses_real_identities_without_force_and_foreign_domains() {
    let s = Server::start("");
    let cfg = s.dir.path().join("mcpgate.toml");
    let out = mint(&cfg, &["--email", ALICE]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("identity.source"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = mint(&cfg, &["--email", "mallory@evil.example", "--force"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("allowed_domains"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = mint(&cfg, &["--email", ALICE, "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = s.whoami(INTERNAL, stdout(&out).trim()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["email"], ALICE);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn clients_add_names_each_hosts_endpoints_for_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&dir.path().join("keys"), "")).unwrap();
    let add = |extra: &[&str]| {
        let mut args = vec![
            "clients",
            "add",
            "--client-id",
            "gemini-enterprise",
            "--redirect-uri",
            GEMINI_CALLBACK,
        ];
        args.extend_from_slice(extra);
        mcpgate(&args, dir.path(), &[])
    };
    let out = add(&["--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let stanza = &text[text.find("[[clients]]").unwrap()..];
    for host in [INTERNAL, PUBLIC] {
        for path in ["/oauth/authorize", "/oauth/token"] {
            let url = format!("https://{host}{path}");
            assert!(stanza.contains(&url), "{url} in {text}");
        }
    }
    // Still one stanza to paste: the endpoints are TOML comments.
    let pasted: toml::Value = toml::from_str(stanza).unwrap();
    assert_eq!(pasted["clients"][0]["client_id"].as_str(), Some(GEMINI_ID));

    // Without --config: the embedded dev config's hosts.
    let text = stdout(&add(&[]));
    assert!(text.contains("http://127.0.0.1:8080/oauth/token"), "{text}");

    // A config named but broken: no secret shown that no one can use.
    std::fs::write(&cfg, "listen = 5").unwrap();
    let out = add(&["--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!stdout(&out).contains("client_secret"), "{}", stdout(&out));
}
