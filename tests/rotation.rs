//! Key rotation against the real binary: keys dropped into the watched
//! directory (by `keys rotate`, by hand, through a Kubernetes-style
//! `..data` symlink swap) are picked up without a restart or a failed
//! request, and replicas sharing a directory keep working through it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn rotate(dir: &Path, activate_in: &str) {
    let out = std::process::Command::new(bin())
        .args(["keys", "rotate", "--dir"])
        .arg(dir)
        .args(["--activate-in", activate_in])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server on `keys` with a 1 s rescan, so missed events cannot hide.
fn start_on(keys: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let text = config(keys, "").replacen(
        &format!("dir = \"{}\"", keys.display()),
        &format!("dir = \"{}\"\nrescan = \"1s\"", keys.display()),
        1,
    );
    let cfg = dir.path().join("mcpgate.toml");
    std::fs::write(&cfg, text).unwrap();
    Server::start_with(dir, &cfg)
}

async fn jwks_kids(s: &Server) -> Vec<String> {
    let v = s.get_json(PUBLIC, "/.well-known/jwks.json").await;
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `cond` every 10 ms for up to `limit`; returns how long it took.
async fn wait_for<F, Fut>(limit: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn signing_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("sig-"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn dropped_keys_publish_at_once_sign_after_activation_and_removal_revokes() {
    let keys_dir = tempfile::tempdir().unwrap();
    generate_keys(keys_dir.path());
    let s = start_on(keys_dir.path());
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let old_token = access_token(&tokens).to_owned();
    let old_kid = jwt_header(&old_token)["kid"].as_str().unwrap().to_owned();

    let dropped = Instant::now();
    rotate(keys_dir.path(), "3s");
    let published = wait_for(Duration::from_secs(3), || async {
        jwks_kids(&s).await.len() == 2
    })
    .await;
    eprintln!("measured: file drop -> JWKS serving it: {published:?}");
    assert!(
        dropped.elapsed() < Duration::from_secs(2),
        "the watcher, not the 1 s rescan, should see it"
    );
    let new_kid = jwks_kids(&s)
        .await
        .into_iter()
        .find(|k| *k != old_kid)
        .unwrap();
    let new_file: Value = serde_json::from_slice(
        &std::fs::read(keys_dir.path().join(format!("{new_kid}.json"))).unwrap(),
    )
    .unwrap();
    let activation = humantime::parse_rfc3339(new_file["activates_at"].as_str().unwrap()).unwrap();

    // Before activation the old key still signs.
    let (_, t) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    if std::time::SystemTime::now() < activation {
        assert_eq!(jwt_header(access_token(&t))["kid"], old_kid.as_str());
    }
    // After activation the new one does, with no reload needed.
    let wait = activation
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let start = Instant::now();
    let new_token = loop {
        let (_, t) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
        let t = access_token(&t).to_owned();
        if jwt_header(&t)["kid"] == new_kid.as_str() {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "new key never signed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let lag = start.elapsed();
    eprintln!("measured: activation time -> first token signed with the new key: {lag:?} (+ up to 1 s of second granularity)");
    assert_eq!(s.whoami(PUBLIC, &new_token).await.0, 200);
    assert_eq!(
        s.whoami(PUBLIC, &old_token).await.0,
        200,
        "tokens of the old key still verify"
    );

    // Removing the old key's file removes the key.
    let old_file = signing_files(keys_dir.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&old_kid))
        .unwrap();
    std::fs::remove_file(old_file).unwrap();
    wait_for(Duration::from_secs(3), || async {
        s.whoami(PUBLIC, &old_token).await.0 == 401
    })
    .await;
    assert_eq!(jwks_kids(&s).await, vec![new_kid]);
    assert_eq!(s.whoami(PUBLIC, &new_token).await.0, 200);
}

#[tokio::test]
async fn a_kubernetes_secret_update_swapping_the_data_symlink_is_picked_up() {
    // The layout kubelet's atomic writer makes: files in a timestamped
    // directory, `..data` pointing at it, one symlink per key through it.
    let root = tempfile::tempdir().unwrap();
    let keys = root.path();
    let v1 = keys.join("..2026_11_26_12_00_00.000000001");
    generate_keys(&v1);
    let names = ["signing.json", "sealing.json", "registration.json"];
    let rename_into = |dir: &Path| {
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            let target = if n.starts_with("sig-") {
                names[0]
            } else if n.starts_with("seal-") {
                names[1]
            } else {
                names[2]
            };
            std::fs::rename(&p, dir.join(target)).unwrap();
        }
    };
    rename_into(&v1);
    std::os::unix::fs::symlink(v1.file_name().unwrap(), keys.join("..data")).unwrap();
    for n in names {
        std::os::unix::fs::symlink(format!("..data/{n}"), keys.join(n)).unwrap();
    }
    let s = start_on(keys);
    let before = jwks_kids(&s).await;
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let old_token = access_token(&tokens).to_owned();

    // The update: a new directory, then an atomic rename of a new link
    // over `..data`. No event names a key file.
    let v2 = keys.join("..2026_11_26_12_05_00.000000002");
    generate_keys(&v2);
    rename_into(&v2);
    std::os::unix::fs::symlink(v2.file_name().unwrap(), keys.join("..data_tmp")).unwrap();
    let swapped = Instant::now();
    std::fs::rename(keys.join("..data_tmp"), keys.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    let took = wait_for(Duration::from_secs(3), || async {
        jwks_kids(&s).await != before
    })
    .await;
    eprintln!("measured: ..data swap -> JWKS serving the new key: {took:?}");
    assert!(swapped.elapsed() < Duration::from_secs(2));
    // The old key is gone with its file: its token is refused; new flows work.
    assert_eq!(s.whoami(PUBLIC, &old_token).await.0, 401);
    let (_, tokens) = s.public_flow(PUBLIC, CLAUDE_CALLBACK).await;
    assert_eq!(s.whoami(INTERNAL, access_token(&tokens)).await.0, 200);
}

#[tokio::test]
async fn bad_files_are_skipped_and_an_unusable_directory_keeps_the_last_ring() {
    let keys_dir = tempfile::tempdir().unwrap();
    generate_keys(keys_dir.path());
    let s = start_on(keys_dir.path());
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let token = access_token(&tokens).to_owned();
    let ready = |s: &Server| {
        let r = s.http.get(s.url("/readyz")).send();
        async move { r.await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&s).await, 200);

    std::fs::write(keys_dir.path().join("broken.json"), "{ not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ready(&s).await,
        200,
        "a bad file is skipped, the rest loads"
    );
    assert_eq!(s.whoami(PUBLIC, &token).await.0, 200);
    let log = std::fs::read_to_string(s.log_path()).unwrap();
    assert!(
        log.contains("broken.json"),
        "the skipped file is named in the log"
    );

    // Every key gone: the replica keeps its ring but says it is not ready.
    let saved = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(keys_dir.path()).unwrap() {
        let p = f.unwrap().path();
        std::fs::rename(&p, saved.path().join(p.file_name().unwrap())).unwrap();
    }
    wait_for(Duration::from_secs(3), || async { ready(&s).await == 503 }).await;
    assert_eq!(s.whoami(PUBLIC, &token).await.0, 200);
    let (_, t) = s.public_flow(PUBLIC, CLAUDE_CALLBACK).await;
    assert_eq!(s.whoami(PUBLIC, access_token(&t)).await.0, 200);

    for f in std::fs::read_dir(saved.path()).unwrap() {
        let p = f.unwrap().path();
        std::fs::rename(&p, keys_dir.path().join(p.file_name().unwrap())).unwrap();
    }
    wait_for(Duration::from_secs(3), || async { ready(&s).await == 200 }).await;
}

#[tokio::test]
async fn the_deny_file_revokes_tokens_and_refresh_grants() {
    let keys_dir = tempfile::tempdir().unwrap();
    generate_keys(keys_dir.path());
    let s = start_on(keys_dir.path());
    let (client_id, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let at = access_token(&tokens).to_owned();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.whoami(PUBLIC, &at).await.0, 200);
    std::fs::write(
        keys_dir.path().join("revoked"),
        "# offboarded\nemail Alice@Example.com\n",
    )
    .unwrap();
    wait_for(Duration::from_secs(3), || async {
        s.whoami(PUBLIC, &at).await.0 == 401
    })
    .await;
    let (status, _, body) = s
        .token(
            INTERNAL,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    std::fs::remove_file(keys_dir.path().join("revoked")).unwrap();
    wait_for(Duration::from_secs(3), || async {
        s.whoami(PUBLIC, &at).await.0 == 200
    })
    .await;
}

/// A rescan that finds the same deny file must swap nothing: a new ring
/// would empty the verified-token cache and send every cached token back
/// through the signature check, once per rescan period.
#[tokio::test]
async fn an_unchanged_deny_file_is_read_once_however_many_rescans_pass() {
    let keys_dir = tempfile::tempdir().unwrap();
    generate_keys(keys_dir.path());
    let s = start_on(keys_dir.path());
    std::fs::write(
        keys_dir.path().join("revoked"),
        "jti a1\njti a2\njti a3\nemail x@example.com\nemail y@example.com\nclient_id zz\n",
    )
    .unwrap();
    s.log_containing("revoked=6").await;
    let reloads = || {
        std::fs::read_to_string(s.log_path())
            .unwrap()
            .matches("key ring reloaded")
            .count()
    };
    let after_write = reloads();
    // Three 1 s rescans.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        reloads(),
        after_write,
        "{}",
        std::fs::read_to_string(s.log_path()).unwrap()
    );
}

/// A tiny deterministic generator: picks replicas and hosts.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// One complete flow with each step on a random replica and host.
async fn scattered_flow(replicas: &[&Server], rng: &mut Lcg) -> Result<String, String> {
    let hosts = [INTERNAL, PUBLIC];
    let pick = |rng: &mut Lcg| (replicas[rng.next(replicas.len())], hosts[rng.next(2)]);
    let redirect = "http://127.0.0.1:7/cb";
    let (r, _) = pick(rng);
    // Loopback redirects are allowed on the internal host only.
    let client_id = r.register_client(INTERNAL, &[redirect]).await;
    let (r, h) = pick(rng);
    let c = challenge(VERIFIER);
    let resp = r
        .authorize(
            h,
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", redirect),
                ("code_challenge", &c),
                ("code_challenge_method", "S256"),
            ],
            Some("alice@example.com"),
        )
        .await;
    if resp.status() != 302 {
        return Err(format!("authorize: {}", resp.status()));
    }
    let code = query_param(&location(&resp), "code").ok_or("no code")?;
    let (r, h) = pick(rng);
    let (status, _, body) = r
        .token(
            h,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    if status != 200 {
        return Err(format!("token: {status} {body}"));
    }
    let at = body["access_token"].as_str().unwrap().to_owned();
    let (r, h) = pick(rng);
    match r.whoami(h, &at).await.0 {
        200 => Ok(at),
        s => Err(format!("mcp: {s}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_rotating_keys_under_load_fail_no_request() {
    let shared = tempfile::tempdir().unwrap();
    generate_keys(shared.path());
    // The third replica sees every change 1 s late (a slow volume).
    let late = tempfile::tempdir().unwrap();
    let sync_late = |from: &Path, to: &Path| {
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if !dest.exists() {
                std::fs::copy(&p, &dest).unwrap();
            }
        }
    };
    sync_late(shared.path(), late.path());
    let a = start_on(shared.path());
    let b = start_on(shared.path());
    let c = start_on(late.path());
    let replicas = [&a, &b, &c];
    let mut rng = Lcg(42);

    let mut tokens = Vec::new();
    for _ in 0..30 {
        tokens.push(
            scattered_flow(&replicas, &mut rng)
                .await
                .expect("flow before rotation"),
        );
    }

    // Background /mcp load: bounded to 3,000 requests.
    let urls: Vec<String> = replicas.iter().map(|s| s.url("/mcp")).collect();
    let load_tokens = tokens.clone();
    let load = tokio::spawn(async move {
        let http = client();
        let mut failures = Vec::new();
        let mut rng = Lcg(7);
        for i in 0..3000 {
            let url = &urls[rng.next(urls.len())];
            let host = [INTERNAL, PUBLIC][rng.next(2)];
            let t = &load_tokens[i % load_tokens.len()];
            let r = http
                .post(url)
                .header("host", host)
                .bearer_auth(t)
                .json(&serde_json::json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"whoami"}}))
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {}
                Ok(r) => failures.push(format!("{}", r.status())),
                Err(e) => failures.push(e.to_string()),
            }
        }
        failures
    });

    let mut flow_failures = Vec::new();
    let mut flows = 0;
    for _ in 0..3 {
        // The late replica sees files ~1.3 s after the drop (1 s lag plus
        // the watcher's debounce): activation comes after that.
        rotate(shared.path(), "2s");
        let shared_path = shared.path().to_path_buf();
        let late_path = late.path().to_path_buf();
        let lag = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sync_late(&shared_path, &late_path);
        });
        // Flows straddle the activation on every replica.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            flows += 1;
            if let Err(e) = scattered_flow(&replicas, &mut rng).await {
                flow_failures.push(e);
            }
        }
        lag.await.unwrap();
    }
    let load_failures = load.await.unwrap();
    eprintln!("three replicas: {flows} scattered flows and 3000 /mcp calls across 3 rotations");
    assert!(flow_failures.is_empty(), "failed flows: {flow_failures:?}");
    assert!(
        load_failures.is_empty(),
        "failed /mcp calls: {load_failures:?}"
    );
    // Every replica signs with the newest key now.
    for r in replicas {
        let (_, t) = r.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
        let kid = jwt_header(access_token(&t))["kid"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(&kid, jwks_kids(r).await.last().unwrap());
    }
}
