//! README.md's commands, kept true: every command line of its `sh` blocks
//! (and of the ones in docs/cli.md and docs/keys.md) is run here, checked
//! against what `.ci/run` and the harness run, or named in [`UNRUNNABLE`]
//! with the reason it cannot run on a test machine. A line that is none of
//! these fails the test, so a new command cannot go untested.
//!
//! The `mcpgate` lines run against the real binary, in README order, in a
//! temporary directory laid out as the README assumes: a checkout's
//! `config/mcpgate.example.toml`, which the README's own `cp` line copies
//! to `config/mcpgate.toml`, whose `keys.dir` (`/etc/mcpgate/keys`, where
//! step 3's keys are mounted) is `prod-keys/` of that directory through
//! `MCPGATE_KEYS__DIR`. docs/cli.md and docs/keys.md then run in the same
//! directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// The files whose `sh` blocks are commands, in the order they run.
const FILES: &[&str] = &["README.md", "docs/cli.md", "docs/keys.md"];

/// How an `mcpgate` line is run, by the words that start its arguments.
/// A line that starts with none of these fails the test: add its shape
/// here, saying how it is run, when the README gains a command.
const SHAPES: &[(&[&str], Run)] = &[
    (&["--help"], Run::Exits0),
    (&["serve"], Run::Serves),
    (&["config", "check"], Run::Exits0),
    (&["keys", "generate"], Run::Exits0),
    (&["keys", "rotate"], Run::Exits0),
    (&["keys", "list"], Run::Exits0),
    (&["keys", "prune"], Run::Exits0),
    (&["clients", "add"], Run::Exits0),
    (&["token", "mint"], Run::Exits0),
];

#[derive(Clone, Copy, Debug)]
enum Run {
    /// Runs to completion with exit status 0.
    Exits0,
    /// A server: it must announce its listener (on a loopback port of its
    /// own, `MCPGATE_LISTEN=127.0.0.1:0`) and is then stopped.
    Serves,
}

/// The placeholders of docs/cli.md's synopses, by the option they follow,
/// and the value each is run with. Optional `[…]` parts are run included.
const PLACEHOLDERS: &[(&str, &str, &str)] = &[
    ("--config", "PATH", "config/mcpgate.toml"),
    ("--dir", "DIR", "prod-keys"),
    ("--activate-in", "DURATION", "5m"),
    ("--older-than", "DURATION", "31d"),
    ("--ttl", "DURATION", "10m"),
    ("--email", "EMAIL", "dev@example.com"),
    ("--client-id", "ID", "gemini-enterprise"),
    ("--redirect-uri", "URI...", GEMINI_CALLBACK),
    ("--name", "NAME", "Gemini Enterprise"),
    ("--issuer", "URL", "https://mcp.example.com"),
];

/// `cargo`, `sudo` and `npx` lines and what they must be: a line `.ci/run`
/// runs, or what a test of the harness runs instead.
const ELSEWHERE: &[(&str, Elsewhere)] = &[
    ("cargo test --locked", Elsewhere::CiRun),
    // .ci/run installs the release binary into target/ci-install
    // (CARGO_INSTALL_ROOT) and runs its --help.
    ("cargo install --path . --locked", Elsewhere::CiRun),
    // mcp-remote, pinned in tests/node (the README says @latest), drives
    // its own sign-in against the binary; the test plays the browser.
    (
        "npx -y mcp-remote@latest http://127.0.0.1:8080/mcp",
        Elsewhere::Harness(
            "tests/node/mcp-remote.test.mjs",
            "it('signs in, then lists and calls whoami over stdio'",
        ),
    ),
    // .ci/run runs it when a package is missing (as root, where `sudo` is
    // a shell function that runs its arguments).
    (
        "sudo apt-get install -y build-essential libssl-dev pkg-config",
        Elsewhere::CiRun,
    ),
    (
        "cargo run",
        // `cargo run` builds and starts the binary with no arguments; that
        // test starts `bin()` with no arguments in a directory without
        // config/mcpgate.toml (only the listener moved, MCPGATE_LISTEN).
        Elsewhere::Harness(
            "tests/cli.rs",
            "fn cargo_run_serves_the_dev_config_with_generated_keys",
        ),
    ),
];

#[derive(Clone, Copy, Debug)]
enum Elsewhere {
    /// Exactly a line of `.ci/run`.
    CiRun,
    /// Run by the named test (file, function) with `bin()`.
    Harness(&'static str, &'static str),
}

/// Lines that cannot run on a test machine, by how they start, and why.
/// Every entry must match a line (a stale entry fails the test too).
const UNRUNNABLE: &[(&str, &str)] = &[
    (
        "podman build ",
        "needs a container runtime (none runs on this kind of machine) and pulls the Rust and \
         Debian base images from a container registry (not reachable from it)",
    ),
    (
        "podman run ",
        "needs a container runtime and the image `podman build` makes; the mcpgate command it \
         runs in the image is run against the binary here, on the mounted config's host path",
    ),
    (
        "claude mcp add ",
        "needs Claude Code (not among the test dependencies) and a person signing in in a \
         browser; tests/node_clients.rs drives discovery, registration, sign-in and /mcp with \
         the official MCP TypeScript SDK instead",
    ),
];

/// The deployment's hosts: `curl` lines naming them are sent to a local
/// `serve` of the README's config instead, with the host in `Host`.
const HOSTS: &[&str] = &["https://mcp.example.com", "https://mcp.internal.example"];

/// One command of a `sh` block: continuations joined, comment apart.
struct Line {
    /// `file:line` of its first line.
    at: String,
    command: String,
    comment: String,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The command lines of `file`'s fenced code blocks tagged `sh` (fences
/// may be indented, as in a list item).
fn sh_lines(file: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut lines = Vec::new();
    let mut in_sh = None::<bool>;
    let mut pending: Option<Line> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if let Some(tag) = trimmed.strip_prefix("```") {
            in_sh = match in_sh {
                None => Some(tag.trim() == "sh"),
                Some(_) => None,
            };
            assert!(pending.is_none(), "{file}:{}: `\\` before the fence", i + 1);
            continue;
        }
        if in_sh != Some(true) || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (code, comment) = split_comment(trimmed);
        let (code, continued) = match code.strip_suffix('\\') {
            Some(c) => (c.trim_end(), true),
            None => (code, false),
        };
        let line = match pending.take() {
            Some(mut l) => {
                l.command = format!("{} {}", l.command, code);
                if !comment.is_empty() {
                    l.comment = comment.to_owned();
                }
                l
            }
            None => Line {
                at: format!("{file}:{}", i + 1),
                command: code.to_owned(),
                comment: comment.to_owned(),
            },
        };
        if continued {
            pending = Some(line);
        } else if !line.command.is_empty() {
            lines.push(line);
        }
    }
    assert!(in_sh.is_none(), "{file}: a fence is not closed");
    lines
}

/// (code, comment) of a shell line: a `#` outside quotes, at the start or
/// after white space, starts the comment.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => {
                return (line[..i].trim_end(), line[i + 1..].trim());
            }
            _ => {}
        }
        prev = c;
    }
    (line.trim_end(), "")
}

/// Shell words: white space separates, quotes group (no escapes: the
/// README's commands need none).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (Some(q), _) if c == q => quote = None,
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            _ => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {command:?}");
    out.extend(word);
    out
}

/// The temporary checkout the commands run in, and what they started.
struct Session {
    /// Before `dir`: killed before its directory is removed.
    server: Option<Listening>,
    dir: tempfile::TempDir,
    ran: usize,
    checked: usize,
    listed: usize,
    /// Listed lines whose in-image mcpgate command ran.
    in_image: usize,
    used: Vec<bool>,
}

impl Session {
    fn new() -> Session {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::copy(
            repo().join("config/mcpgate.example.toml"),
            dir.path().join("config/mcpgate.example.toml"),
        )
        .unwrap();
        Session {
            dir,
            server: None,
            ran: 0,
            checked: 0,
            listed: 0,
            in_image: 0,
            used: vec![false; UNRUNNABLE.len()],
        }
    }

    /// `mcpgate` with the environment of the README's deployment: no
    /// caller's MCPGATE_*, and `keys.dir` where step 3 put the keys.
    fn mcpgate(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(bin());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCPGATE_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("MCPGATE_KEYS__DIR", self.dir.path().join("prod-keys"))
            .env_remove("RUST_LOG");
        cmd
    }

    fn run(&mut self, line: &Line) {
        let w = words(&line.command);
        match w[0].as_str() {
            "mcpgate" => self.run_mcpgate(line, &w[1..]),
            "cargo" | "sudo" | "npx" => self.check_elsewhere(line),
            "cp" => {
                let out = Command::new("cp")
                    .args(&w[1..])
                    .current_dir(self.dir.path())
                    .output()
                    .unwrap();
                expect_success(line, &out);
                self.ran += 1;
            }
            "curl" => self.run_curl(line, &w),
            _ => self.unrunnable(line, &w),
        }
    }

    fn run_mcpgate(&mut self, line: &Line, args: &[String]) {
        let args = substitute(line, args);
        let Some((_, run)) = SHAPES.iter().find(|(shape, _)| {
            args.len() >= shape.len() && shape.iter().zip(&args).all(|(s, a)| s == a)
        }) else {
            panic!(
                "{}: `{}` matches no known shape: add it to SHAPES in tests/readme.rs, saying how it is run",
                line.at, line.command
            );
        };
        match run {
            Run::Exits0 => {
                let out = self.mcpgate(&args).output().unwrap();
                expect_success(line, &out);
                if args == ["--help"] {
                    help_lists_the_commands_the_comment_names(line, &out);
                }
            }
            Run::Serves => {
                let log = self.dir.path().join("serve.log");
                let mut cmd = self.mcpgate(&args);
                cmd.env("MCPGATE_LISTEN", "127.0.0.1:0")
                    .stderr(std::fs::File::create(&log).unwrap());
                if let Err(l) = Listening::spawn(cmd, &["mcpgate listening on "]) {
                    panic!(
                        "{}: `{}` (run as `mcpgate {}`) did not serve: {l:?}\n{}",
                        line.at,
                        line.command,
                        args.join(" "),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        self.ran += 1;
    }

    fn check_elsewhere(&mut self, line: &Line) {
        if UNRUNNABLE.iter().any(|(p, _)| line.command.starts_with(p)) {
            let w = words(&line.command);
            return self.unrunnable(line, &w);
        }
        let Some((_, check)) = ELSEWHERE.iter().find(|(c, _)| *c == line.command) else {
            panic!(
                "{}: `{}` is neither a line of .ci/run nor in ELSEWHERE of tests/readme.rs",
                line.at, line.command
            );
        };
        match check {
            Elsewhere::CiRun => {
                let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
                assert!(
                    ci.lines().any(|l| l.trim() == line.command),
                    "{}: `{}` is not what .ci/run runs:\n{ci}",
                    line.at,
                    line.command
                );
            }
            Elsewhere::Harness(file, test) => {
                let src = std::fs::read_to_string(repo().join(file)).unwrap();
                assert!(
                    src.contains(test),
                    "{}: `{}` is said to be run by `{test}` in {file}, which is gone",
                    line.at,
                    line.command
                );
            }
        }
        self.checked += 1;
    }

    /// `curl` to a deployment host: sent to `serve` of the README's config
    /// on a loopback port, with the host in `Host`.
    fn run_curl(&mut self, line: &Line, w: &[String]) {
        let addr = self.server().addr();
        let mut args = Vec::new();
        let mut origin = None;
        for a in &w[1..] {
            match HOSTS.iter().find(|h| a.starts_with(*h)) {
                Some(h) => {
                    origin = Some(*h);
                    args.push(format!("http://{addr}{}", &a[h.len()..]));
                    args.push("-H".into());
                    args.push(format!("Host: {}", h.trim_start_matches("https://")));
                }
                None => args.push(a.clone()),
            }
        }
        let Some(origin) = origin else {
            panic!(
                "{}: `{}` names none of the hosts {HOSTS:?}: it cannot be run here; add it to UNRUNNABLE with why",
                line.at, line.command
            );
        };
        let out = Command::new("curl").args(&args).output().unwrap();
        expect_success(line, &out);
        let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: `{}` did not answer JSON ({e}): {}",
                line.at,
                line.command,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        // What the comment promises.
        if let Some(rest) = line.comment.split("\"issuer\": \"").nth(1) {
            let issuer = rest.split('"').next().unwrap();
            assert_eq!(issuer, origin, "{}: the comment's issuer", line.at);
            assert_eq!(body["issuer"], issuer, "{}: `{}`", line.at, line.command);
        }
        self.ran += 1;
    }

    /// The README's deployment served on a loopback port (its config, its
    /// keys), started once.
    fn server(&mut self) -> &Listening {
        if self.server.is_none() {
            let log = self.dir.path().join("curl-serve.log");
            let mut cmd = self.mcpgate(&["serve".into()]);
            cmd.env("MCPGATE_LISTEN", "127.0.0.1:0")
                .stderr(std::fs::File::create(&log).unwrap());
            let server = Listening::spawn(cmd, &["mcpgate listening on "]).unwrap_or_else(|l| {
                panic!(
                    "the README's config does not serve: {l:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
            self.server = Some(server);
        }
        self.server.as_ref().unwrap()
    }

    fn unrunnable(&mut self, line: &Line, w: &[String]) {
        let Some(i) = UNRUNNABLE
            .iter()
            .position(|(p, _)| line.command.starts_with(p))
        else {
            panic!(
                "{}: `{}` is run by nothing: run it in tests/readme.rs, or add it to UNRUNNABLE with the reason it cannot run here",
                line.at, line.command
            );
        };
        self.used[i] = true;
        self.listed += 1;
        if w[..2] == ["podman", "run"] {
            self.run_in_image(line, w);
        }
    }

    /// The mcpgate command of a `podman run` line (the image's entrypoint
    /// is mcpgate), with the mounted files at their host paths.
    fn run_in_image(&mut self, line: &Line, w: &[String]) {
        let containerfile = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
        assert!(
            containerfile.contains(r#"ENTRYPOINT ["mcpgate"]"#),
            "the image's entrypoint is no longer mcpgate: see {}",
            line.at
        );
        let mut mounts = Vec::new();
        let mut rest = w[2..].iter();
        let image_args: Vec<String> = loop {
            let a = rest
                .next()
                .unwrap_or_else(|| panic!("{}: no image", line.at));
            match a.as_str() {
                "-v" | "--volume" => {
                    let m = rest.next().unwrap();
                    let pwd = self.dir.path().to_str().unwrap();
                    let m = m.replace("$PWD", pwd);
                    let mut parts = m.split(':');
                    let (host, container) = (parts.next().unwrap(), parts.next().unwrap());
                    assert!(
                        Path::new(host).exists(),
                        "{}: mounts {host}, which the README has not made",
                        line.at
                    );
                    mounts.push((container.to_owned(), host.to_owned()));
                }
                a if a.starts_with('-') => {}
                "mcpgate" => break rest.cloned().collect(),
                other => panic!("{}: image {other:?}, not the README's `mcpgate`", line.at),
            }
        };
        let args: Vec<String> = image_args
            .into_iter()
            .map(|a| {
                mounts
                    .iter()
                    .find(|(c, _)| *c == a)
                    .map_or(a, |(_, h)| h.clone())
            })
            .collect();
        let out = self.mcpgate(&args).output().unwrap();
        expect_success(line, &out);
        self.in_image += 1;
    }
}

/// `args` with docs/cli.md's optional brackets dropped (the parts run
/// included) and each placeholder given its value from [`PLACEHOLDERS`].
fn substitute(line: &Line, args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in args {
        let a = a.trim_start_matches('[').trim_end_matches(']');
        if a.is_empty() {
            continue;
        }
        let looks_placeholder = a.chars().next().unwrap().is_ascii_uppercase()
            && a.chars().all(|c| c.is_ascii_uppercase() || c == '.');
        if !looks_placeholder {
            out.push(a.to_owned());
            continue;
        }
        let option = out.last().map(String::as_str).unwrap_or("");
        let Some((_, _, value)) = PLACEHOLDERS
            .iter()
            .find(|(o, p, _)| *o == option && *p == a)
        else {
            panic!(
                "{}: `{}`: no value for placeholder {a} after {option:?}; add one to PLACEHOLDERS in tests/readme.rs",
                line.at, line.command
            );
        };
        out.push((*value).to_owned());
    }
    out
}

/// `mcpgate --help   # serve (the default), keys, …`: the comment names
/// every command the help lists, and no other.
fn help_lists_the_commands_the_comment_names(line: &Line, out: &Output) {
    let help = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .and_then(|c| c.split("\n\n").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    let named: Vec<&str> = line
        .comment
        .split(',')
        .filter_map(|c| c.split_whitespace().next())
        .collect();
    assert_eq!(
        named, listed,
        "{}: the comment names other commands than `mcpgate --help` lists:\n{help}",
        line.at
    );
}

fn expect_success(line: &Line, out: &Output) {
    assert!(
        out.status.success(),
        "{}: `{}` exited with {}, where the README implies success\nstdout:\n{}\nstderr:\n{}",
        line.at,
        line.command,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_command_of_the_readme_runs_or_is_accounted_for() {
    let mut session = Session::new();
    let mut total = 0;
    for file in FILES {
        let lines = sh_lines(file);
        assert!(!lines.is_empty(), "{file} has no sh block any more");
        for line in &lines {
            println!("{}: {}", line.at, line.command);
            session.run(line);
            total += 1;
        }
    }
    for (used, (prefix, _)) in session.used.iter().zip(UNRUNNABLE) {
        assert!(
            used,
            "UNRUNNABLE lists {prefix:?}, which no line of {FILES:?} starts with any more"
        );
    }
    assert_eq!(session.ran + session.checked + session.listed, total);
    println!(
        "{total} command lines: {} run, {} checked against .ci/run or the harness, \
         {} listed as unrunnable (of which {} had the mcpgate command they run in the image run)",
        session.ran, session.checked, session.listed, session.in_image
    );
}

/// The parser itself: comments, quotes, continuations, indented fences.
#[test]
fn sh_lines_joins_continuations_and_strips_comments() {
    assert_eq!(
        split_comment(r#"echo "a # b" x   # c"#),
        (r#"echo "a # b" x"#, "c")
    );
    assert_eq!(split_comment("curl a#b"), ("curl a#b", ""));
    assert_eq!(
        words(r#"podman run -v "$PWD/x:/y:ro" mcpgate"#),
        ["podman", "run", "-v", "$PWD/x:/y:ro", "mcpgate"]
    );
    let readme = sh_lines("README.md");
    let podman = readme
        .iter()
        .find(|l| l.command.starts_with("podman run"))
        .expect("README's podman run line");
    assert!(
        podman
            .command
            .ends_with("config check --config /etc/mcpgate/mcpgate.toml"),
        "{}",
        podman.command
    );
    assert!(
        readme
            .iter()
            .any(|l| l.command.starts_with("mcpgate clients add")),
        "the indented block of step 4"
    );
}
