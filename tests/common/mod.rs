//! Test harness: runs the real `mcpgate` binary on a loopback port with a
//! two-host config and drives it over real HTTP with reqwest.
//!
//! Every integration test binary and benches/load.rs compile this module
//! and each uses a subset of it, hence the one `dead_code` allowance.
#![allow(dead_code)]

pub mod redis;
pub mod refusal;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const INTERNAL: &str = "mcp.internal.example";
pub const PUBLIC: &str = "mcp.example.com";
pub const CLAUDE_CALLBACK: &str = "https://claude.ai/api/mcp/auth_callback";
pub const GEMINI_CALLBACK: &str = "https://vertexaisearch.cloud.google.com/oauth-redirect";
pub const GEMINI_ID: &str = "gemini-enterprise";
pub const GEMINI_SECRET: &str = "gemini-test-secret-0123456789abcdef";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The email [`Server::code_for`] signs in with.
pub const ALICE: &str = "alice@example.com";

static BIN: OnceLock<String> = OnceLock::new();

/// The `mcpgate` executable the harness runs: this build's, unless
/// [`use_bin`] named another before the first use.
pub fn bin() -> &'static str {
    BIN.get_or_init(|| env!("CARGO_BIN_EXE_mcpgate").to_owned())
}

/// Makes the harness run `path` instead of this build's binary
/// (benches/load.rs measures other builds with the same client). Every
/// process of a run is the same build, so this must come before anything
/// is started.
pub fn use_bin(path: String) {
    BIN.set(path)
        .expect("use_bin comes before the harness runs anything");
}

pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The RFC 7636 S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The standard two-host config, with `extra` appended.
pub fn config(keys: &Path, extra: &str) -> String {
    format!(
        r#"{}
[[clients]]
client_id = "{GEMINI_ID}"
client_secret_sha256 = "{}"
redirect_uris = ["{GEMINI_CALLBACK}"]
{extra}
"#,
        config_without_clients(keys),
        sha256_hex(GEMINI_SECRET)
    )
}

/// The standard config without its `[[clients]]` entry: the hosts, the
/// proxy identity and the keys directory.
pub fn config_without_clients(keys: &Path) -> String {
    format!(
        r#"listen = "127.0.0.1:0"

[[hosts]]
issuer = "https://{INTERNAL}"
redirect_uris = ["loopback"]

[[hosts]]
issuer = "https://{PUBLIC}"
redirect_uris = ["{CLAUDE_CALLBACK}", "https://claude.com/api/mcp/auth_callback", "prefix:https://chatgpt.com/connector/oauth/"]

[identity]
source = "proxy"
allowed_domains = ["example.com"]
trusted_proxies = ["127.0.0.1/32", "::1/128"]
# Flows here skip the consent page; tests/consent.rs covers it.
consent = "never"

[keys]
dir = "{}"
"#,
        keys.display()
    )
}

/// A child process that announced the addresses it listens on; killed on
/// drop.
pub struct Listening {
    child: Child,
    /// One address per announced line, in order.
    pub addrs: Vec<SocketAddr>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listening {
    /// Spawns `cmd` with stdin closed and reads one line
    /// `<announce><address>` from its stdout per entry of `announces`;
    /// stdout is closed after those lines. Any other line ends the process
    /// and is the error.
    pub fn spawn(mut cmd: Command, announces: &[&str]) -> Result<Listening, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addrs = Vec::with_capacity(announces.len());
        for announce in announces {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            match line.trim().strip_prefix(announce).map(str::parse) {
                Some(Ok(addr)) => addrs.push(addr),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(line);
                }
            }
        }
        Ok(Listening { child, addrs })
    }

    /// The first address announced.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

/// A running `mcpgate serve`; killed on drop.
pub struct Server {
    /// Before `dir`: the process is killed before its directory is removed.
    process: Listening,
    pub addr: SocketAddr,
    /// The `server.metrics_listen` address, when the config sets one.
    pub metrics_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub fn generate_keys(dir: &Path) {
    let out = Command::new(bin())
        .args(["keys", "generate", "--dir"])
        .arg(dir)
        .output()
        .expect("run keys generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// Starts with the standard config plus `extra` TOML.
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        generate_keys(&keys);
        let cfg = dir.path().join("mcpgate.toml");
        std::fs::write(&cfg, config(&keys, extra)).unwrap();
        Server::start_with(dir, &cfg)
    }

    /// Starts on the config file `cfg`, logging to `dir/server.log`.
    pub fn start_with(dir: tempfile::TempDir, cfg: &Path) -> Server {
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(bin());
        // MCPGATE_* variables are config layers, and unknown keys are an
        // error: the caller's (a developer's shell, the bench's own
        // MCPGATE_BENCH_*) must not reach the server, whose whole config is
        // the file.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCPGATE_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(["serve", "--config"])
            .arg(cfg)
            // The default log level, as deployed: what is logged at info
            // (each code and token issued, each refusal) is part of the cost
            // benches/load.rs measures.
            .env_remove("RUST_LOG")
            .stderr(Stdio::from(log));
        let mut announces = vec!["mcpgate listening on "];
        if std::fs::read_to_string(cfg)
            .unwrap_or_default()
            .contains("metrics_listen")
        {
            announces.push("mcpgate metrics on ");
        }
        let process = Listening::spawn(cmd, &announces).unwrap_or_else(|line| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("mcpgate did not start: {line:?}\n{log}");
        });
        Server {
            addr: process.addr(),
            metrics_addr: process.addrs.get(1).copied(),
            process,
            dir,
            http: client(),
        }
    }

    /// The server's process id (for signals and /proc).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.process.wait()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log once it contains `needle`: lines are written by a
    /// thread of their own, a moment after the request that logs them.
    pub async fn log_containing(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if log.contains(needle) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{needle:?} never reached the log:\n{log}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).header("host", host)
    }

    pub fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).header("host", host)
    }

    /// `GET path` on `host`; returns the body as JSON.
    pub async fn get_json(&self, host: &str, path: &str) -> Value {
        self.get(host, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /oauth/register`; returns (status, body).
    pub async fn register(&self, host: &str, body: Value) -> (u16, Value) {
        let r = self
            .post(host, "/oauth/register")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers a public client and returns its client_id.
    pub async fn register_client(&self, host: &str, redirect_uris: &[&str]) -> String {
        let (status, body) = self
            .register(
                host,
                json!({ "redirect_uris": redirect_uris, "client_name": "test client",
                        "grant_types": ["authorization_code", "refresh_token"],
                        "token_endpoint_auth_method": "none" }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// `GET /oauth/authorize` as oauth2-proxy would forward it.
    pub async fn authorize(
        &self,
        host: &str,
        params: &[(&str, &str)],
        email: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.get(host, "/oauth/authorize").query(params);
        if let Some(e) = email {
            req = req.header("x-forwarded-email", e);
        }
        req.send().await.unwrap()
    }

    /// Runs authorize for a PKCE client and returns the code.
    pub async fn code_for(&self, host: &str, client_id: &str, redirect_uri: &str) -> String {
        let c = challenge(VERIFIER);
        let r = self
            .authorize(
                host,
                &[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", redirect_uri),
                    ("code_challenge", &c),
                    ("code_challenge_method", "S256"),
                    ("state", "s-123"),
                ],
                Some(ALICE),
            )
            .await;
        assert_eq!(r.status().as_u16(), 302, "{:?}", r.text().await);
        let loc = location(&r);
        assert_eq!(query_param(&loc, "state").as_deref(), Some("s-123"));
        assert_eq!(query_param(&loc, "iss"), Some(format!("https://{host}")));
        query_param(&loc, "code").expect("code in redirect")
    }

    /// `POST /oauth/token` with form fields; returns (status, headers, body).
    pub async fn token(
        &self,
        host: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, HeaderMap, Value) {
        let mut req = self.post(host, "/oauth/token").form(form);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    /// Exchanges a PKCE code; returns the access token.
    pub async fn exchange(
        &self,
        host: &str,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
    ) -> Value {
        let (status, headers, body) = self
            .token(
                host,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("client_id", client_id),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", VERIFIER),
                ],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }

    /// A JSON-RPC POST to `/mcp` with the token and, when given, an
    /// `MCP-Protocol-Version` header, ready to send.
    pub fn mcp_post(
        &self,
        host: &str,
        token: &str,
        version: Option<&str>,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let req = self
            .post(host, "/mcp")
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        match version {
            Some(v) => req.header("mcp-protocol-version", v),
            None => req,
        }
    }

    /// A JSON-RPC call to `/mcp`; returns (status, headers, body).
    pub async fn mcp(
        &self,
        host: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, HeaderMap, Value) {
        let mut req = self
            .post(host, "/mcp")
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn whoami(&self, host: &str, token: &str) -> (u16, Value) {
        let (s, _, b) = self
            .mcp(
                host,
                Some(token),
                json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}),
            )
            .await;
        (s, b)
    }

    /// A full public-client flow: register, authorize, exchange.
    pub async fn public_flow(&self, host: &str, redirect_uri: &str) -> (String, Value) {
        let client_id = self.register_client(host, &[redirect_uri]).await;
        let code = self.code_for(host, &client_id, redirect_uri).await;
        let tokens = self.exchange(host, &client_id, &code, redirect_uri).await;
        (client_id, tokens)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query_param(uri: &str, name: &str) -> Option<String> {
    let q = uri.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

/// The decoded payload of a JWS.
pub fn jwt_payload(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

pub fn jwt_header(token: &str) -> Value {
    let p = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

// ---- Helpers for configs the standard one cannot express by appending ----

/// The standard two-host config with its `[identity]` block replaced by
/// `identity` (which must start with `[identity]`).
pub fn config_with_identity(keys: &Path, identity: &str) -> String {
    let standard = config(keys, "");
    let start = standard.find("[identity]").expect("an [identity] block");
    let end = standard.find("[keys]").expect("a [keys] block");
    format!(
        "{}{}\n\n{}",
        &standard[..start],
        identity.trim(),
        &standard[end..]
    )
}

impl Server {
    /// Starts on freshly generated keys with `make(keys_dir)` as the whole
    /// config file.
    pub fn start_custom(make: impl FnOnce(&Path) -> String) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        generate_keys(&keys);
        let cfg = dir.path().join("mcpgate.toml");
        std::fs::write(&cfg, make(&keys)).unwrap();
        Server::start_with(dir, &cfg)
    }

    /// Starts another server on an existing keys directory (shared, as
    /// replicas share it) with `make(keys)` as the whole config file.
    pub fn start_on_keys(keys: &Path, make: impl FnOnce(&Path) -> String) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("mcpgate.toml");
        std::fs::write(&cfg, make(keys)).unwrap();
        Server::start_with(dir, &cfg)
    }

    /// The keys directory of a server started by [`Server::start`] or
    /// [`Server::start_custom`].
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }
}

/// A client like [`client`] whose connections come from `local` (on Linux
/// all of 127.0.0.0/8 is loopback, so `127.0.0.3` reaches the server as a
/// peer that is not `127.0.0.1`).
pub fn client_from(local: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(local)
        .build()
        .unwrap()
}

/// Everything about one HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; `Null` when it is not JSON.
    pub json: Value,
}

pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

// ===== several replicas =====

/// A round-robin TCP proxy: each new connection goes to the next replica.
pub struct RoundRobin {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn round_robin(backends: Vec<SocketAddr>) -> RoundRobin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backend = backends[next % backends.len()];
            next += 1;
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    RoundRobin { addr, task }
}
