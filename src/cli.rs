//! The `mcpgate` command line (clap). Each subcommand is a function from
//! its arguments to an exit code; `serve` is the default.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::clock::{rfc3339, unix_now};
use crate::config::{Config, ConfigSource, IdentitySource, LogFormat};
use crate::keys::file::{self, KeyKind};
use crate::keys::{KeyRing, Keys};
use crate::server;
use crate::settings::{encode_hex, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "OAuth 2.1 authorization server and MCP endpoint for one organization"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (default: config/mcpgate.toml if present, else the embedded dev config).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Manage key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage pre-provisioned clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
struct KeyDirArgs {
    /// The key directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Write a signing key and sealing keys, ready to use.
    Generate {
        #[command(flatten)]
        dir: KeyDirArgs,
        /// Delay before the keys sign and seal (e.g. "5m"); default now.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        activate_in: Option<Duration>,
    },
    /// Write successors for every kind that activate later.
    Rotate {
        #[command(flatten)]
        dir: KeyDirArgs,
        /// Delay before the successors sign and seal: longer than the time
        /// every replica needs to see the new files.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
        activate_in: Duration,
    },
    /// Show each key: kid, kind, alg, activation, state.
    List {
        #[command(flatten)]
        dir: KeyDirArgs,
    },
    /// Remove keys whose successor has been active longer than DURATION.
    Prune {
        #[command(flatten)]
        dir: KeyDirArgs,
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Mint a confidential client: prints its secret once and its [[clients]] stanza.
    Add {
        #[arg(long, value_name = "ID")]
        client_id: String,
        /// Redirect URI(s) the client may use (repeat the flag or list them).
        #[arg(long = "redirect-uri", value_name = "URI", num_args = 1.., required = true)]
        redirect_uris: Vec<String>,
        /// A display name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the config; print it (secrets redacted) and each host's URLs.
    Check,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 30s, 5m, 1h: {e}"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_deref()),
        Command::Keys(KeysCommand::Generate { dir, activate_in }) => {
            keys_generate(&dir.dir, activate_in.unwrap_or_default())
        }
        Command::Keys(KeysCommand::Rotate { dir, activate_in }) => {
            keys_generate(&dir.dir, activate_in)
        }
        Command::Keys(KeysCommand::List { dir }) => keys_list(&dir.dir, cli.config.as_deref()),
        Command::Keys(KeysCommand::Prune { dir, older_than }) => keys_prune(&dir.dir, older_than),
        Command::Clients(ClientsCommand::Add {
            client_id,
            redirect_uris,
            name,
        }) => clients_add(&client_id, &redirect_uris, name.as_deref()),
        Command::Config(ConfigCommand::Check) => config_check(cli.config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(explicit: Option<&Path>) -> Result<(ConfigSource, Config, Settings), String> {
    let source = Config::source_for(explicit);
    let config = Config::load(&source)?;
    let settings =
        Settings::from_config(&config).map_err(|e| format!("invalid config ({source}): {e}"))?;
    Ok((source, config, settings))
}

/// Logs go to stderr through a writer thread. Formatting stays on the
/// request's thread, but the `write(2)` of each line does not: lines that
/// arrive while the thread writes leave together in one buffered write
/// instead of a system call each. Nothing is dropped: when the queue is
/// full (a stalled reader) the logging thread waits, as a direct write
/// would. The queue is 8,192 lines, far below the crate's default, whose
/// empty slots alone would stay resident. Logs are flushed
/// when the returned guard drops. Colour only on a terminal.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(8192)
        .thread_name("mcpgate-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let output = match format {
        LogFormat::Json => output.json().boxed(),
        LogFormat::Text => output.boxed(),
    };
    let (targets, dynamic) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::registry()
        .with(targets)
        .with(dynamic)
        .with(output)
        .init();
    guard
}

/// The filter `RUST_LOG` asks for (`info` when unset or unreadable).
/// Levels per target (`info,mcpgate::access=off`) are decided once per
/// call site with no lock; `EnvFilter`, which takes a shared read lock on
/// every span enter and exit (each request's span, several times), is
/// used only for what needs it: span and field directives
/// (`[request{id=…}]=debug`).
fn log_filter(
    rust_log: Option<&str>,
) -> (
    Option<tracing_subscriber::filter::Targets>,
    Option<tracing_subscriber::EnvFilter>,
) {
    let spec = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    if let Ok(targets) = spec.parse() {
        return (Some(targets), None);
    }
    match tracing_subscriber::EnvFilter::try_new(spec) {
        Ok(dynamic) => (None, Some(dynamic)),
        Err(e) => {
            eprintln!("mcpgate: RUST_LOG={spec:?} is not a log filter ({e}); logging at info");
            (Some("info".parse().expect("a level parses")), None)
        }
    }
}

// ===== serve =====

fn serve(explicit: Option<&Path>) -> Result<(), String> {
    let (source, _config, settings) = load_settings(explicit)?;
    let _log_writer = init_logging(settings.log_format);
    let ring = load_or_create_keys(&settings)?;
    tracing::info!(config = %source, generation = ring.generation, "key ring loaded");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let metrics_handle = crate::metrics::install();
        crate::metrics::key_ring(ring.generation);
        let keys = Arc::new(Keys::new(
            ring,
            settings.keys_dir.clone(),
            settings.deny_path.clone(),
        ));
        tokio::spawn(crate::keys::watch::run(keys.clone(), settings.keys_rescan));
        let app = Arc::new(App::new(settings, keys));
        app.sign_in.start().await;
        for h in app.hosts.all() {
            tracing::info!(issuer = %h.site.issuer, resource = %h.site.resource, "serving host");
        }
        // Scripts wait for this exact line.
        println!("mcpgate listening on {local}");
        if let Some(addr) = app.settings.metrics_listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (server.metrics_listen): {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            println!("mcpgate metrics on {local}");
            tokio::spawn(crate::metrics::upkeep(metrics_handle.clone()));
            tokio::spawn(server::serve_metrics(l, app.clone(), metrics_handle));
        }
        let _ = std::io::stdout().flush();
        let limits = app.settings.limits.clone();
        server::serve(listener, app, limits, wait_for_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Loads the key directory. In dev mode an empty or missing directory gets
/// fresh keys, so `cargo run` works on a fresh clone.
fn load_or_create_keys(settings: &Settings) -> Result<KeyRing, String> {
    let dir = &settings.keys_dir;
    let empty = match file::read_dir(dir) {
        Ok((files, _)) => files.is_empty(),
        Err(_) => true,
    };
    if empty && settings.identity.source == IdentitySource::Dev {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for f in file::generate_set(unix_now(), &file::random_tag()) {
            f.write_to_dir(dir)
                .map_err(|e| format!("cannot write keys to {}: {e}", dir.display()))?;
        }
        tracing::info!(dir = %dir.display(), "generated dev keys");
    }
    let (ring, problems) = KeyRing::load_with_deny(dir, &settings.deny_path, 1, unix_now())
        .map_err(|e| {
            format!(
                "{e}\n  (keys directory: {}; create keys with `mcpgate keys generate --dir {}`)",
                dir.display(),
                dir.display()
            )
        })?;
    for p in problems {
        tracing::warn!(file = %p.file.display(), reason = %p.reason, "key file skipped");
    }
    Ok(ring)
}

// ===== keys =====

fn keys_generate(dir: &Path, activate_in: Duration) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // A delayed key is rounded up: it must never activate sooner than asked.
    let at = if activate_in.is_zero() {
        unix_now()
    } else {
        (std::time::SystemTime::now() + activate_in)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0)
    };
    let tag = file::random_tag();
    for f in file::generate_set(at, &tag) {
        let path = f
            .write_to_dir(dir)
            .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        println!("{}\t{}\tactivates {}", path.display(), f.kind, rfc3339(at));
    }
    Ok(())
}

/// A key's place in its kind's succession at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyState {
    /// Published (signing keys) but not used to sign or seal yet.
    Pending,
    /// The newest key already active: signs or seals.
    Active,
    /// Superseded; what it signed or sealed may still be alive.
    Retiring { since: u64 },
    /// Superseded for longer than anything it signed or sealed lives.
    RetiredBySuccessor { since: u64 },
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyState::Pending => f.write_str("pending"),
            KeyState::Active => f.write_str("active"),
            KeyState::Retiring { .. } => f.write_str("retiring"),
            KeyState::RetiredBySuccessor { .. } => f.write_str("retired-by-successor"),
        }
    }
}

/// How long what a key of `kind` produced can stay alive: after this much
/// time under a successor, removing it breaks nothing. Registration keys
/// seal client ids that never expire.
fn lifetime(kind: KeyKind, tokens: &crate::settings::TokenSettings) -> Option<u64> {
    match kind {
        KeyKind::Signing => Some(tokens.access_ttl.as_secs() + crate::tokens::access::LEEWAY_SECS),
        KeyKind::Sealing => Some(tokens.code_ttl.max(tokens.refresh_ttl).as_secs()),
        KeyKind::Registration => None,
    }
}

/// The state of `files[i]` among the keys of its kind at `now`.
pub(crate) fn key_state(
    files: &[file::KeyFile],
    i: usize,
    now: u64,
    tokens: &crate::settings::TokenSettings,
) -> KeyState {
    let f = &files[i];
    if f.activates_at > now {
        return KeyState::Pending;
    }
    // The successor: the earliest newer key of the kind that is active.
    let successor = files
        .iter()
        .filter(|o| {
            o.kind == f.kind
                && o.activates_at <= now
                && (o.activates_at, &o.kid) > (f.activates_at, &f.kid)
        })
        .map(|o| o.activates_at)
        .min();
    match successor {
        None => KeyState::Active,
        Some(since) => match lifetime(f.kind, tokens) {
            Some(l) if now.saturating_sub(since) > l => KeyState::RetiredBySuccessor { since },
            _ => KeyState::Retiring { since },
        },
    }
}

fn default_token_settings() -> crate::settings::TokenSettings {
    let t = crate::config::TokensConfig::default();
    crate::settings::TokenSettings {
        access_ttl: t.access_ttl,
        code_ttl: t.code_ttl,
        refresh_ttl: t.refresh_ttl,
        refresh_grace: t.refresh_grace,
    }
}

fn keys_list(dir: &Path, config: Option<&Path>) -> Result<(), String> {
    // The token lifetimes decide when a superseded key is safe to remove,
    // so they come from the same config `serve` would use; only when that
    // one cannot load (and none was named) do the defaults stand in, said
    // out loud.
    let tokens = match (config, load_settings(config)) {
        (_, Ok((_, _, settings))) => settings.tokens,
        (Some(_), Err(e)) => return Err(e),
        (None, Err(e)) => {
            eprintln!("mcpgate: {e}; states below assume the default token lifetimes");
            default_token_settings()
        }
    };
    let (mut files, problems) = file::read_dir(dir).map_err(|e| e.to_string())?;
    files.sort_by(|a, b| {
        (a.kind as u8, a.activates_at, &a.kid).cmp(&(b.kind as u8, b.activates_at, &b.kid))
    });
    let now = unix_now();
    println!(
        "{:<40} {:<13} {:<6} {:<21} STATE",
        "KID", "KIND", "ALG", "ACTIVATES"
    );
    for (i, f) in files.iter().enumerate() {
        let state = key_state(&files, i, now, &tokens);
        let note = match (f.kind, state) {
            (KeyKind::Registration, KeyState::Retiring { .. }) => {
                " (removing it makes clients registered under it register again)"
            }
            _ => "",
        };
        println!(
            "{:<40} {:<13} {:<6} {:<21} {state}{note}",
            f.kid,
            f.kind,
            f.alg(),
            rfc3339(f.activates_at),
        );
    }
    for p in problems {
        println!("skipped {}: {}", p.file.display(), p.reason);
    }
    Ok(())
}

fn keys_prune(dir: &Path, older_than: Duration) -> Result<(), String> {
    let (files, _) = file::read_dir(dir).map_err(|e| e.to_string())?;
    let now = unix_now();
    let tokens = default_token_settings();
    let mut removed = 0;
    for (i, f) in files.iter().enumerate() {
        // Only superseded keys: never a pending or the active key, so every
        // kind (the registration keys included) keeps its active key.
        let since = match key_state(&files, i, now, &tokens) {
            KeyState::Retiring { since } | KeyState::RetiredBySuccessor { since } => since,
            KeyState::Pending | KeyState::Active => continue,
        };
        if now.saturating_sub(since) <= older_than.as_secs() {
            continue;
        }
        let Some(path) = &f.path else { continue };
        std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        println!(
            "removed {} ({} key superseded {})",
            path.display(),
            f.kind,
            rfc3339(since)
        );
        if f.kind == KeyKind::Registration {
            println!("  clients registered under {} must register again", f.kid);
        }
        removed += 1;
    }
    if removed == 0 {
        println!(
            "nothing superseded longer than {}",
            humantime::format_duration(older_than)
        );
    }
    Ok(())
}

// ===== clients =====

fn clients_add(
    client_id: &str,
    redirect_uris: &[String],
    name: Option<&str>,
) -> Result<(), String> {
    if client_id.is_empty() || client_id.contains('.') || client_id.len() > 200 {
        return Err("--client-id must be 1 to 200 characters without `.`".into());
    }
    for uri in redirect_uris {
        crate::settings::redirect::check_uri(uri)
            .map_err(|e| format!("--redirect-uri `{uri}` {e}"))?;
    }
    let mut secret = [0u8; 32];
    crate::random::fill(&mut secret);
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = encode_hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref());
    let uris = redirect_uris
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("client_id:     {client_id}");
    println!("client_secret: {secret}");
    println!("(the secret is shown once; only its SHA-256 goes into the config)\n");
    println!("[[clients]]");
    println!("client_id = {client_id:?}");
    println!("client_secret_sha256 = \"{hash}\"");
    println!("redirect_uris = [{uris}]");
    if let Some(n) = name {
        println!("client_name = {n:?}");
    }
    Ok(())
}

// ===== config =====

fn config_check(explicit: Option<&Path>) -> Result<(), String> {
    let (source, mut config, settings) = load_settings(explicit)?;
    for c in &mut config.clients {
        if c.client_secret_sha256.is_some() {
            c.client_secret_sha256 = Some("<redacted>".into());
        }
    }
    let rendered = toml::to_string_pretty(&config).map_err(|e| e.to_string())?;
    println!("# effective config, from {source} and MCPGATE_* variables\n{rendered}");
    for s in &settings.sites {
        println!("host {}", s.issuer);
        println!("  resource:                {}", s.resource);
        println!(
            "  authorization server:    {}/.well-known/oauth-authorization-server",
            s.issuer
        );
        println!(
            "  protected resource:      {}/.well-known/oauth-protected-resource/mcp",
            s.issuer
        );
        println!(
            "  jwks:                    {}/.well-known/jwks.json",
            s.issuer
        );
        println!("  authorize / token / register: {0}/oauth/authorize {0}/oauth/token {0}/oauth/register", s.issuer);
    }
    println!("config ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_states_follow_activation_and_succession() {
        let tokens = default_token_settings();
        let now = 1_000_000;
        let files = vec![
            file::KeyFile::generate(KeyKind::Signing, now - 10_000, "a"),
            file::KeyFile::generate(KeyKind::Signing, now - 100, "b"),
            file::KeyFile::generate(KeyKind::Signing, now + 300, "c"),
            file::KeyFile::generate(KeyKind::Registration, now - 50_000, "d"),
            file::KeyFile::generate(KeyKind::Registration, now - 10, "e"),
        ];
        assert_eq!(
            key_state(&files, 0, now, &tokens),
            KeyState::Retiring { since: now - 100 }
        );
        assert_eq!(key_state(&files, 1, now, &tokens), KeyState::Active);
        assert_eq!(key_state(&files, 2, now, &tokens), KeyState::Pending);
        // An hour and a minute after its successor took over, nothing the
        // old signing key signed is alive.
        assert_eq!(
            key_state(&files, 0, now + 3_700, &tokens),
            KeyState::RetiredBySuccessor { since: now - 100 }
        );
        // Client ids never expire: a registration key only ever retires.
        assert_eq!(
            key_state(&files, 3, now + 10_000_000, &tokens),
            KeyState::Retiring { since: now - 10 }
        );
    }

    #[test]
    fn plain_log_levels_filter_without_envfilter_and_span_directives_still_work() {
        use tracing::Level;
        for spec in [None, Some(""), Some("  ")] {
            let (targets, dynamic) = log_filter(spec);
            let targets = targets.expect("levels by target");
            assert!(dynamic.is_none());
            assert!(targets.would_enable("mcpgate::oauth::token", &Level::INFO));
            assert!(!targets.would_enable("mcpgate::oauth::token", &Level::DEBUG));
        }
        let (targets, dynamic) = log_filter(Some("info,mcpgate::access=off,hyper=debug"));
        let targets = targets.expect("levels by target");
        assert!(dynamic.is_none());
        assert!(!targets.would_enable("mcpgate::access", &Level::INFO));
        assert!(targets.would_enable("mcpgate::mcp", &Level::INFO));
        assert!(targets.would_enable("hyper::proto", &Level::DEBUG));
        // Span and field directives need EnvFilter.
        let (targets, dynamic) = log_filter(Some("warn,[request{id=abc}]=debug"));
        assert!(targets.is_none());
        assert!(dynamic.is_some());
        // Not a filter at all: info, said once on stderr.
        let (targets, dynamic) = log_filter(Some("mcpgate=loud"));
        assert!(dynamic.is_none());
        assert!(targets.unwrap().would_enable("mcpgate", &Level::INFO));
    }
}
