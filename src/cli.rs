//! The `mcpgate` command line (clap). Each subcommand is a function from
//! its arguments to an exit code; `serve` is the default.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::clock::{duration_text, rfc3339, unix_now};
use crate::config::{Config, ConfigSource, Effective, IdentitySource, LogFormat};
use crate::keys::file::{self, KeyKind};
use crate::keys::state::{key_state, prune_verdict, KeyState, PruneVerdict};
use crate::keys::{FileProblem, KeyRing, Keys};
use crate::server;
use crate::settings::{encode_hex, Settings, Site, TokenSettings};
use crate::tokens::access::{self, AccessClaims, Grantee};

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
    /// Mint access tokens by hand (for testing CLI clients).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
struct KeyDirArgs {
    /// The key directory (default: `keys.dir` of the config, as `serve`
    /// would read it: --config, else config/mcpgate.toml, else the embedded
    /// dev config's `keys`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Write a signing key and sealing keys, ready to use.
    Generate {
        #[command(flatten)]
        dir: KeyDirArgs,
        /// Delay before the keys sign and seal (e.g. "5m"); default now.
        #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
        activate_in: Option<Duration>,
        /// Write keys even though DIR already holds active ones (new keys
        /// take over before other replicas see them; `keys rotate` is the
        /// safe way to add keys).
        #[arg(long)]
        force: bool,
    },
    /// Write successors for every kind that activate later.
    Rotate {
        #[command(flatten)]
        dir: KeyDirArgs,
        /// Delay before the successors sign and seal: longer than the time
        /// every replica needs to see the new files.
        #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration, default_value = "5m")]
        activate_in: Duration,
    },
    /// Show each key: kid, kind, alg, activation, state.
    List {
        #[command(flatten)]
        dir: KeyDirArgs,
    },
    /// Remove keys whose successor has been active longer than DURATION
    /// and that nothing alive depends on (state retired-by-successor).
    Prune {
        #[command(flatten)]
        dir: KeyDirArgs,
        /// Only keys superseded longer ago than this (e.g. "31d"); the
        /// token lifetimes of the config decide, in addition, which of
        /// them are still in use.
        #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
        older_than: Duration,
        /// Print what would be removed and kept, and why; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also remove keys still in use (state retiring): tokens they
        /// signed or sealed stop working, clients registered under a
        /// registration key must register again. Never the active key.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Mint a confidential client: prints its secret once and its [[clients]] stanza.
    Add {
        /// The client id to provision: 1 to 200 characters, no `.`
        /// (dynamically registered ids contain one).
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

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print an access token for EMAIL, with the claims /oauth/token would
    /// give it, signed with the active signing key.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
struct MintArgs {
    /// Whose token (sub and email); its domain must be in
    /// identity.allowed_domains.
    #[arg(long, value_name = "EMAIL")]
    email: String,
    /// The token's client_id claim.
    #[arg(long, value_name = "ID", default_value = "mcpgate-cli")]
    client_id: String,
    /// How long the token lives (default and maximum: tokens.access_ttl).
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    ttl: Option<Duration>,
    /// The host the token is for, as one of the configured issuers
    /// (default: the first [[hosts]]).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Mint even though identity.source is not `dev`: a token for a real
    /// person who never signed in.
    #[arg(long)]
    force: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Keys(keys) => keys_command(keys, config),
        Command::Clients(ClientsCommand::Add {
            client_id,
            redirect_uris,
            name,
        }) => clients_add(&client_id, &redirect_uris, name.as_deref(), config),
        Command::Config(ConfigCommand::Check) => config_check(config),
        Command::Token(TokenCommand::Mint(args)) => token_mint(&args, config),
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
    let (effective, settings) = load_from(&source)?;
    Ok((source, effective.config, settings))
}

/// The config `source` names, loaded and validated; every error names
/// the source and the key.
fn load_from(source: &ConfigSource) -> Result<(Effective, Settings), String> {
    let effective = Effective::load(source)?;
    let settings = Settings::from_config(&effective.config)
        .map_err(|e| format!("invalid config ({source}): {}", effective.locate(&e)))?;
    Ok((effective, settings))
}

/// What a developer who just ran `cargo run` does next: where the MCP
/// endpoint is, how to connect a client, and who may sign in. To stderr,
/// with the logs: stdout carries only the lines scripts wait for.
fn dev_banner(settings: &Settings) -> String {
    let mut out = String::from("\nmcpgate dev server (identity.source = \"dev\"):\n");
    for (i, site) in settings.sites.iter().enumerate() {
        let label = if i == 0 {
            "MCP endpoint:"
        } else {
            "also:        "
        };
        out.push_str(&format!("  {label} {}\n", site.resource));
    }
    if let Some(site) = settings.sites.first() {
        out.push_str(&format!(
            "  Claude Code:  claude mcp add --transport http mcpgate {}\n",
            site.resource
        ));
    }
    let domains = settings
        .identity
        .allowed_domains
        .iter()
        .map(|d| format!("@{d}"))
        .collect::<Vec<_>>()
        .join(", ");
    out.push_str(&format!(
        "  Sign in:      the browser shows a form that trusts the email you type; any address at {domains}\n"
    ));
    out.push_str("  Production:   oauth2-proxy and a config file (README, Deploy)\n");
    out
}

/// Logs go to stderr through a writer thread. Formatting stays on the
/// request's thread, but the `write(2)` of each line does not: the thread
/// takes every line queued, writes them in one buffered write, then
/// pauses ([`LOG_PAUSE`]) before it looks again. Under load a line costs
/// a queue push, not a wake-up, a spin and a system call of its own; an
/// idle server's first line still leaves at once. Nothing is dropped:
/// when the queue is full (a stalled reader) the logging thread waits, as
/// a direct write would. The queue is 8,192 lines, far below the crate's
/// default, whose empty slots alone would stay resident; at the pause
/// below it holds ~800,000 lines a second. Logs are flushed when the
/// returned guard drops. Colour only on a terminal.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(8192)
        .thread_name("mcpgate-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            Paced(std::io::stderr()),
        ));
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

/// How long the log thread rests after each write (see [`init_logging`]):
/// the most a line waits behind a busy one, far below what a person
/// reading the log can tell.
const LOG_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The log thread's output. The thread flushes each time its queue runs
/// empty; resting there lets the next lines gather in the queue, so that
/// they leave in one write (PERFORMANCE.md, twelfth round).
struct Paced<W>(W);

impl<W: std::io::Write> std::io::Write for Paced<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        std::thread::sleep(LOG_PAUSE);
        Ok(())
    }
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
    let cimd = crate::cimd::Resolver::new(&settings.cimd)?;
    for id in cimd.pinned_ids() {
        tracing::info!(
            client_id = id,
            "client metadata document provided by the operator"
        );
    }
    if settings.cimd.insecure_test_only_allow_loopback
        || !settings.cimd.insecure_test_only_roots.is_empty()
    {
        tracing::warn!("cimd.insecure_test_only_* is set: client metadata documents may come from loopback or be signed by a test CA; never in production");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(w) = crate::settings::warnings::listen_port(&settings, local.port()) {
            tracing::warn!("{w}");
        }
        let metrics_handle = crate::metrics::install();
        crate::metrics::key_ring(ring.generation);
        let keys = Arc::new(Keys::new(
            ring,
            settings.keys_dir.clone(),
            settings.deny_path.clone(),
        ));
        tokio::spawn(crate::keys::watch::run(keys.clone(), settings.keys_rescan));
        let app = Arc::new(App::new(settings, keys, cimd)?);
        app.sign_in.start().await;
        tracing::info!(store = ?app.settings.store, "single-use store");
        if let Some(monitor) = app.store.monitor() {
            tokio::spawn(monitor);
        }
        for h in app.hosts.all() {
            tracing::info!(issuer = %h.site.issuer, resource = %h.site.resource, "serving host");
        }
        // Scripts wait for this exact line.
        println!("mcpgate listening on {local}");
        if app.settings.identity.source == IdentitySource::Dev {
            eprintln!("{}", dev_banner(&app.settings));
        }
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
    if dev_keys_wanted(settings) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for f in file::generate_set(unix_now(), &file::random_tag()) {
            f.write_to_dir(dir)
                .map_err(|e| format!("cannot write keys to {}: {e}", dir.display()))?;
        }
        tracing::info!(dir = %dir.display(), "generated dev keys");
    }
    let (ring, problems) = load_key_ring(settings)?;
    for p in problems {
        tracing::warn!(file = %p.file.display(), reason = %p.reason, "key file skipped");
    }
    Ok(ring)
}

/// Whether `serve` generates keys at start: in dev mode, into an empty or
/// missing key directory.
fn dev_keys_wanted(settings: &Settings) -> bool {
    let empty = match file::read_dir(&settings.keys_dir) {
        Ok((files, _)) => files.is_empty(),
        Err(_) => true,
    };
    empty && settings.identity.source == IdentitySource::Dev
}

/// The key ring `settings` name, as `serve` and `config check` load it:
/// an active key of every kind, or an error saying how to create them.
fn load_key_ring(settings: &Settings) -> Result<(KeyRing, Vec<FileProblem>), String> {
    let dir = &settings.keys_dir;
    KeyRing::load_with_deny(dir, &settings.deny_path, 1, unix_now()).map_err(|e| {
        format!(
            "{e}\n  (keys directory: {}; create keys with `mcpgate keys generate --dir {}`)",
            dir.display(),
            dir.display()
        )
    })
}

// ===== keys =====

fn keys_command(command: KeysCommand, config: Option<&Path>) -> Result<(), String> {
    match command {
        KeysCommand::Generate {
            dir,
            activate_in,
            force,
        } => {
            let dir = key_dir(dir.dir, config)?;
            if !force {
                refuse_live_dir(&dir)?;
            }
            write_key_set(&dir, activate_in.unwrap_or_default())
        }
        KeysCommand::Rotate { dir, activate_in } => {
            write_key_set(&key_dir(dir.dir, config)?, activate_in)
        }
        KeysCommand::List { dir } => keys_list(&key_dir(dir.dir, config)?, config),
        KeysCommand::Prune {
            dir,
            older_than,
            dry_run,
            force,
        } => keys_prune(
            &key_dir(dir.dir, config)?,
            config,
            PruneOptions {
                older_than,
                dry_run,
                force,
            },
        ),
    }
}

/// The directory a `keys` command works on: `--dir`, else `keys.dir` of
/// the config `serve` would load, so that on a deployed machine the
/// commands act on the keys the server uses. Said on stderr, since the
/// operator did not name it.
fn key_dir(dir: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = dir {
        return Ok(dir);
    }
    let (source, _, settings) = load_settings(config).map_err(|e| {
        format!("{e}\n  (without --dir the key directory is keys.dir of this config)")
    })?;
    eprintln!(
        "mcpgate: key directory {} (keys.dir of {source})",
        settings.keys_dir.display()
    );
    Ok(settings.keys_dir)
}

/// `keys generate` writes keys that sign and seal at once: in a directory
/// replicas already use, they would take over before every replica has
/// seen them, so it refuses (an absent or unreadable directory holds no
/// keys; writing to it reports its own error).
fn refuse_live_dir(dir: &Path) -> Result<(), String> {
    let Ok((files, _)) = file::read_dir(dir) else {
        return Ok(());
    };
    let now = unix_now();
    let live: Vec<&str> = files
        .iter()
        .filter(|f| f.activates_at <= now)
        .map(|f| f.kid.as_str())
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} already holds active keys ({}); new keys there would sign and seal before \
         every replica has seen them.\n  Use `mcpgate keys rotate --dir {}` for successors \
         that activate later, or pass --force to generate anyway",
        dir.display(),
        live.join(", "),
        dir.display()
    ))
}

fn write_key_set(dir: &Path, activate_in: Duration) -> Result<(), String> {
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

fn keys_list(dir: &Path, config: Option<&Path>) -> Result<(), String> {
    // The token lifetimes decide when a superseded key is safe to remove,
    // so they come from the same config `serve` would use; only when that
    // one cannot load (and none was named) do the defaults stand in, said
    // out loud.
    let tokens = match (config, load_settings(config)) {
        (_, Ok((source, _, settings))) => {
            if source == ConfigSource::EmbeddedDev && dir != settings.keys_dir {
                eprintln!(
                    "mcpgate: states below assume the embedded dev config's token lifetimes; \
                     pass --config with the config `serve` uses for {}",
                    dir.display()
                );
            }
            settings.tokens
        }
        (Some(_), Err(e)) => return Err(e),
        (None, Err(e)) => {
            eprintln!("mcpgate: {e}; states below assume the default token lifetimes");
            TokenSettings::from_config(&crate::config::TokensConfig::default())
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

#[derive(Debug, Clone, Copy)]
struct PruneOptions {
    older_than: Duration,
    dry_run: bool,
    force: bool,
}

fn keys_prune(dir: &Path, config: Option<&Path>, opts: PruneOptions) -> Result<(), String> {
    // Unlike `keys list`, no fallback to default lifetimes: removing a key
    // on a guess is what this command must never do.
    let (source, _, settings) = load_settings(config).map_err(|e| {
        format!(
            "{e}\n  (prune needs the token lifetimes `serve` uses to know which keys are \
             still in use; name that config with --config)"
        )
    })?;
    // The embedded dev config's lifetimes say nothing about another
    // directory's keys: a production directory pruned with them could lose
    // a sealing key its refresh tokens still need.
    if source == ConfigSource::EmbeddedDev && dir != settings.keys_dir {
        return Err(format!(
            "no config names the lifetimes of the tokens made with {}: pass the config `serve` \
             uses with --config (prune removes a key only once nothing it made can be alive)",
            dir.display()
        ));
    }
    eprintln!("mcpgate: token lifetimes from {source}");
    let (files, _) = file::read_dir(dir).map_err(|e| e.to_string())?;
    let now = unix_now();
    let (mut removed, mut kept) = (0, 0);
    // Each verdict is on the directory as it was: removing a superseded
    // key changes no other key's state (states depend on successors only).
    for (i, f) in files.iter().enumerate() {
        let Some(path) = &f.path else { continue };
        match prune_verdict(&files, i, now, &settings.tokens, opts.older_than) {
            PruneVerdict::Keep => {}
            PruneVerdict::Remove { why } => {
                remove_key(f, path, &why, opts.dry_run)?;
                removed += 1;
            }
            PruneVerdict::InUse { why } if opts.force => {
                remove_key(f, path, &format!("{why}; --force"), opts.dry_run)?;
                removed += 1;
            }
            PruneVerdict::InUse { why } => {
                let verb = if opts.dry_run { "would keep" } else { "kept" };
                println!("{verb} {}: {why}", path.display());
                kept += 1;
            }
        }
    }
    if kept > 0 {
        let were = if opts.dry_run { "would be" } else { "were" };
        eprintln!(
            "mcpgate: {kept} key(s) still in use {were} kept (lifetimes from {source}); \
             --force removes them anyway"
        );
    }
    if removed == 0 && kept == 0 {
        println!(
            "nothing superseded longer than {}",
            duration_text(opts.older_than)
        );
    }
    Ok(())
}

/// Removes one key file (or, in a dry run, says it would) and why.
fn remove_key(f: &file::KeyFile, path: &Path, why: &str, dry_run: bool) -> Result<(), String> {
    if dry_run {
        println!("would remove {} ({why})", path.display());
        return Ok(());
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    println!("removed {} ({why})", path.display());
    if f.kind == KeyKind::Registration {
        println!("  clients registered under {} must register again", f.kid);
    }
    Ok(())
}

// ===== clients =====

fn clients_add(
    client_id: &str,
    redirect_uris: &[String],
    name: Option<&str>,
    config: Option<&Path>,
) -> Result<(), String> {
    if client_id.is_empty() || client_id.contains('.') || client_id.len() > 200 {
        return Err("--client-id must be 1 to 200 characters without `.`".into());
    }
    for uri in redirect_uris {
        crate::settings::redirect::check_uri(uri)
            .map_err(|e| format!("--redirect-uri `{uri}` {e}"))?;
    }
    // Loaded before the secret exists: a config named but broken stops
    // here, rather than after a secret was shown that no one can use.
    let sites = hosts_for_endpoints(config)?;
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
    print_client_endpoints(&sites);
    Ok(())
}

/// The hosts whose endpoints `clients add` prints: from the named config
/// (which must load), else from the default one when it loads.
fn hosts_for_endpoints(config: Option<&Path>) -> Result<Vec<Site>, String> {
    match (config, load_settings(config)) {
        (_, Ok((source, _, settings))) => {
            eprintln!("mcpgate: endpoints of the hosts of {source}");
            Ok(settings.sites)
        }
        (Some(_), Err(e)) => Err(e),
        (None, Err(e)) => {
            eprintln!("mcpgate: {e}; name the config with --config to print its endpoints");
            Ok(Vec::new())
        }
    }
}

/// What the client's admin needs besides the id and secret, per host. As
/// TOML comments: scripts that paste everything from `[[clients]]` on into
/// the config keep working.
fn print_client_endpoints(sites: &[Site]) {
    if sites.is_empty() {
        return;
    }
    println!("\n# For the client's admin (e.g. Gemini Enterprise), on the host it reaches:");
    for s in sites {
        println!("# {}", s.issuer);
        println!("#   authorization URL: {}/oauth/authorize", s.issuer);
        println!("#   token URL:         {}/oauth/token", s.issuer);
    }
}

// ===== token =====

/// `token mint`: the token `/oauth/token` would give EMAIL after a sign-in,
/// without the sign-in, which is why it is for dev configs unless forced.
fn token_mint(args: &MintArgs, config: Option<&Path>) -> Result<(), String> {
    let (source, _, settings) = load_settings(config)?;
    if settings.identity.source != IdentitySource::Dev && !args.force {
        return Err(format!(
            "identity.source is not `dev` in {source}: a token minted here acts for a real \
             person who never signed in.\n  Pass --force if that is what you mean"
        ));
    }
    let person =
        crate::identity::named_by_operator(&settings.identity, &args.email).map_err(|e| {
            format!(
                "--email: {e} (identity.allowed_domains: {})",
                settings.identity.allowed_domains.join(", ")
            )
        })?;
    let site = mint_site(&settings, args.issuer.as_deref())?;
    let ttl = mint_ttl(&settings.tokens, args.ttl)?;
    let ring = load_or_create_keys(&settings)?;
    let now = unix_now();
    // What `oauth::token` mints for a sign-in with the default scope.
    let claims = AccessClaims::new(
        &site.issuer,
        site.resource.clone(),
        Grantee {
            sub: person.subject,
            email: person.email,
            client_id: args.client_id.clone(),
            scope: crate::tokens::scope::Scope::granted(None, false)
                .expect("the default scope is known"),
            groups: person.groups,
        },
        now,
        ttl.as_secs(),
    );
    println!("{}", access::issue(&ring, &claims, now));
    eprintln!(
        "mcpgate: token for {} at {}, client_id {}, expires {}",
        claims.email,
        claims.aud,
        claims.client_id,
        rfc3339(claims.exp)
    );
    Ok(())
}

/// The configured host named by `--issuer`, else the first.
fn mint_site<'a>(settings: &'a Settings, issuer: Option<&str>) -> Result<&'a Site, String> {
    let found = match issuer {
        None => settings.sites.first(),
        Some(i) => settings
            .sites
            .iter()
            .find(|s| s.issuer == i.trim_end_matches('/')),
    };
    found.ok_or_else(|| {
        let known: Vec<&str> = settings.sites.iter().map(|s| s.issuer.as_str()).collect();
        format!(
            "--issuer {} is not a configured host; the [[hosts]] issuers are: {}",
            issuer.unwrap_or_default(),
            known.join(", ")
        )
    })
}

/// `--ttl`, or `tokens.access_ttl`; never longer, since no server would
/// mint such a token.
fn mint_ttl(tokens: &TokenSettings, ttl: Option<Duration>) -> Result<Duration, String> {
    let max = tokens.access_ttl;
    match ttl {
        None => Ok(max),
        Some(t) if t.is_zero() => Err("--ttl must be longer than zero".into()),
        Some(t) if t > max => Err(format!(
            "--ttl {} is longer than tokens.access_ttl ({}); ask for at most that, \
             or raise tokens.access_ttl",
            duration_text(t),
            duration_text(max)
        )),
        Some(t) => Ok(t),
    }
}

// ===== config =====

fn config_check(explicit: Option<&Path>) -> Result<(), String> {
    let source = Config::source_for(explicit);
    // First, whatever follows: what is being checked.
    match &source {
        ConfigSource::File(p) => println!("checking {} (with MCPGATE_* variables)", p.display()),
        ConfigSource::EmbeddedDev => {
            println!("checking the embedded dev config (with MCPGATE_* variables)")
        }
    }
    let (effective, settings) = load_from(&source)?;
    let mut redacted = effective.config.clone();
    for c in &mut redacted.clients {
        if c.client_secret_sha256.is_some() {
            c.client_secret_sha256 = Some("<redacted>".into());
        }
    }
    // A store URL may carry a password: shown as `redis://<redacted>@…`.
    if let crate::settings::StoreSettings::Redis(r) = &settings.store {
        let has_credentials = url::Url::parse(&r.url)
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some());
        redacted.store.url = Some(if has_credentials {
            r.endpoint().replacen("://", "://<redacted>@", 1)
        } else {
            r.endpoint()
        });
    }
    let rendered = effective.render(&redacted)?;
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
        for u in &settings.upstreams {
            println!(
                "  upstream {:<14} {}{} -> {} (metadata {}/.well-known/oauth-protected-resource{})",
                u.name, s.issuer, u.path, u.url, s.issuer, u.path
            );
        }
    }

    // The operator's client metadata documents, as `serve` loads them.
    let cimd = crate::cimd::Resolver::new(&settings.cimd)?;
    for id in cimd.pinned_ids() {
        println!("client metadata document provided: {id}");
    }
    let mut warnings = crate::settings::warnings::placeholders(&effective.config, &settings);
    if settings.cimd.insecure_test_only_allow_loopback
        || !settings.cimd.insecure_test_only_roots.is_empty()
    {
        warnings.push(
            "cimd.insecure_test_only_*: documents may come from loopback or a test CA; never in production"
                .into(),
        );
    }
    // Port 0 is any port: `serve` says so once it knows which.
    if settings.listen.port() != 0 {
        warnings.extend(crate::settings::warnings::listen_port(
            &settings,
            settings.listen.port(),
        ));
    }
    // The keys, as `serve` loads them (after making dev keys, if it would).
    let mut error = None;
    if dev_keys_wanted(&settings) {
        warnings.push(format!(
            "keys.dir: {} holds no keys; `serve` will generate dev keys there",
            settings.keys_dir.display()
        ));
    } else {
        match load_key_ring(&settings) {
            Ok((_, problems)) => warnings.extend(
                problems
                    .into_iter()
                    .map(|p| format!("key file {} skipped: {}", p.file.display(), p.reason)),
            ),
            Err(e) => error = Some(format!("keys.dir: {e}")),
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(e) = error {
        return Err(format!("config check failed ({source}): {e}"));
    }
    match warnings.len() {
        0 => println!("config ok"),
        n => println!("config ok, with {n} warning(s) on stderr"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
