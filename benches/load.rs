//! Load benchmark of the real binary over loopback HTTP/1.1.
//!
//! `cargo bench --bench load` starts the release `mcpgate` on 127.0.0.1
//! with freshly generated keys and the two-host config the integration
//! tests use, then sends a fixed number of requests per case over many
//! keep-alive connections with hyper's low-level client (one connection
//! per task, no pool, no redirects: the client's own cost stays small).
//!
//! Cases (each preceded by a short untimed warm-up):
//! - (a) `POST /mcp` without a token: the 401 path, no crypto: the baseline;
//! - (b) `tools/call whoami` with one hot token (the verified-token cache),
//!   timed in alternating slices with (a) so that drift on a shared
//!   machine lands on both alike; and (b') `ping` with that token: the
//!   token check without the tool;
//! - (c) `tools/call whoami`, every request a distinct valid token;
//! - (d) `POST /oauth/token` code exchanges, one pre-minted code each;
//! - (e) `GET /.well-known/oauth-authorization-server`;
//! - (d-mem) and (d-redis): code exchanges timed in alternating slices on
//!   two servers on the same keys, one with the per-replica memory store
//!   and one with `[store] url` naming a real `redis-server` started here
//!   on a loopback port: what a shared store costs a token request;
//! - (f) the floor for (c): a minimal hyper server (this executable run
//!   again as a process of its own, as mcpgate is) that only parses
//!   `Authorization: Bearer`, splits the JWS and runs ring's Ed25519
//!   verify on the signing input, fed the same tokens as (c), and timed in
//!   alternating slices with (c);
//!   and, as a diagnostic only, (f') the same floor answering the bytes
//!   whoami answers, which splits (c) - (f) into payload and mcpgate's work.
//!
//! Then the peak RSS (VmHWM) of a fresh server holding 1,000 idle
//! keep-alive connections that each made one request.
//!
//! Besides req/s and p50/p99 latency, each case reports the server's CPU
//! time per request (from `/proc/<pid>/task/*/schedstat`): on a machine
//! whose cores the client and other processes share, req/s swings from run
//! to run, CPU per request much less.
//!
//! Environment: `MCPGATE_BENCH_REQUESTS` (timed requests per case, default
//! 40000), `MCPGATE_BENCH_CONNECTIONS` (default 64), `MCPGATE_BENCH_IDLE`
//! (idle connections for the RSS check, default 1000), `MCPGATE_BENCH_BIN`
//! (the server binary, default this build's). The server runs at its
//! default log level (`info`, the per-request access log off), whatever
//! `RUST_LOG` says. Loopback only; every loop is bounded by a request
//! count.
//!
//! `MCPGATE_BENCH_SATURATE=1` runs the saturation mode instead of the cases
//! (see `saturate`): (d) with the code replay memory full of live codes,
//! `MCPGATE_BENCH_FILL` (default 1,000,000) and `MCPGATE_BENCH_SATURATED`
//! (default 2,000) set its size; it takes a few minutes.

// The integration tests' harness starts the server here too: one copy of
// how mcpgate is configured, started and waited for.
#[path = "../tests/common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use common::{
    challenge, config_without_clients, generate_keys, jwt_header, query_param, Listening, Server,
    INTERNAL, VERIFIER,
};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Body = Full<Bytes>;
type MakeRequest = Arc<dyn Fn(usize) -> Request<Body> + Send + Sync>;

const REDIRECT_URI: &str = "http://127.0.0.1:33418/callback";
const WHOAMI: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

// ===== the server under test =====

impl Server {
    /// (VmRSS, VmHWM) in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// The tests' config without their pre-provisioned client (the benchmark's
/// client registers, as Claude Code does), with codes that outlive the run.
/// Its `consent = "never"` stands for the consent page already answered: a
/// person answers it once per client, then a cookie remembers it, and the
/// benchmark measures the code issuance after that.
fn config(keys: &Path) -> String {
    format!(
        r#"{}
[tokens]
# Codes are minted before the timed phase and must outlive it.
code_ttl = "600s"
"#,
        config_without_clients(keys)
    )
}

/// [`config`] with the shared store at `url`.
fn config_with_store(keys: &Path, url: &str) -> String {
    format!("{}\n[store]\nurl = \"{url}\"\n", config(keys))
}

// ===== CPU time =====

/// Whose CPU time a case is charged with: the throughput of one run on a
/// shared 2-core machine depends on how the scheduler splits the cores
/// between client and server, the CPU time each request costs does not.
#[derive(Clone, Copy)]
enum Cpu {
    /// Every thread of a process (mcpgate, the floor).
    Process(u32),
    /// The threads of this process whose name starts with the prefix (the
    /// client).
    Threads(&'static str),
}

/// How many turns each side of a pair ((a) and (b), (c) and (f)) takes.
const PAIRED_SLICES: usize = 8;

/// Thread-name prefixes of this process's runtimes.
const CLIENT_THREADS: &str = "bench-client";

impl Cpu {
    /// Nanoseconds on CPU so far (first field of each task's schedstat).
    fn ns(self) -> u64 {
        let (pid, prefix) = match self {
            Cpu::Process(pid) => (pid, None),
            Cpu::Threads(prefix) => (std::process::id(), Some(prefix)),
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0;
        };
        let mut total = 0;
        for task in tasks.flatten() {
            let path = task.path();
            if let Some(prefix) = prefix {
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                if !comm.starts_with(prefix) {
                    continue;
                }
            }
            total += std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }
}

/// A server to send requests to.
#[derive(Clone, Copy)]
struct Target {
    addr: SocketAddr,
    cpu: Cpu,
}

// ===== the client =====

async fn connect(addr: SocketAddr) -> SendRequest<Body> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// What to keep from each response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Nothing,
    /// The `code` in the `Location` header (authorize).
    CodeFromLocation,
    /// The `access_token` member of the JSON body (token endpoint).
    AccessToken,
    /// The status of every response, whatever it is (the saturation mode,
    /// where 200 and 503 are both answers); `expect` is not checked.
    Statuses,
}

struct Outcome {
    latencies_us: Vec<u32>,
    kept: Vec<(usize, String)>,
    unexpected: usize,
    sample: Option<String>,
}

async fn worker(
    mut tx: SendRequest<Body>,
    next: Arc<AtomicUsize>,
    end: usize,
    make: MakeRequest,
    expect: StatusCode,
    keep: Keep,
) -> Outcome {
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(1024),
        kept: Vec::new(),
        unexpected: 0,
        sample: None,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            break;
        }
        let req = make(i);
        let started = Instant::now();
        if tx.ready().await.is_err() {
            out.unexpected += 1;
            out.sample.get_or_insert_with(|| "connection closed".into());
            break;
        }
        let resp = match tx.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                out.unexpected += 1;
                out.sample.get_or_insert_with(|| format!("send: {e}"));
                break;
            }
        };
        let status = resp.status();
        let location = match keep {
            Keep::CodeFromLocation => resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            _ => None,
        };
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                out.unexpected += 1;
                out.sample.get_or_insert_with(|| format!("body: {e}"));
                break;
            }
        };
        out.latencies_us
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if matches!(keep, Keep::Statuses) {
            out.kept.push((i, status.as_str().to_owned()));
            continue;
        }
        if status != expect {
            out.unexpected += 1;
            out.sample.get_or_insert_with(|| {
                format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                )
            });
            continue;
        }
        match keep {
            Keep::Nothing | Keep::Statuses => {}
            Keep::CodeFromLocation => {
                if let Some(code) = location.as_deref().and_then(|l| query_param(l, "code")) {
                    out.kept.push((i, code));
                }
            }
            Keep::AccessToken => {
                if let Some(t) = json_string_member(&body, "access_token") {
                    out.kept.push((i, t));
                }
            }
        }
    }
    out
}

/// A string member of a flat JSON object, without parsing the whole body
/// (the values looked for are base64url and never contain escapes).
fn json_string_member(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_owned())
}

struct CaseResult {
    requests: usize,
    elapsed: Duration,
    /// Sorted.
    latencies_us: Vec<u32>,
    kept: Vec<String>,
    /// CPU time the server spent during the run.
    server_cpu_ns: u64,
    /// CPU time this process's client threads spent during the run.
    client_cpu_ns: u64,
}

impl CaseResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU per request, µs.
    fn server_us(&self) -> f64 {
        self.server_cpu_ns as f64 / 1000.0 / self.requests as f64
    }

    /// Client CPU per request, µs.
    fn client_us(&self) -> f64 {
        self.client_cpu_ns as f64 / 1000.0 / self.requests as f64
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 * p).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        self.latencies_us[i - 1]
    }
}

/// Sends requests `range` (indices handed to `make`) over `connections`
/// fresh keep-alive connections, as fast as the server answers. Panics on
/// any unexpected status: a benchmark of refusals would be meaningless.
async fn run(
    label: &str,
    target: Target,
    connections: usize,
    range: std::ops::Range<usize>,
    make: MakeRequest,
    expect: StatusCode,
    keep: Keep,
) -> CaseResult {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target.addr).await);
    }
    let next = Arc::new(AtomicUsize::new(range.start));
    let client_cpu = Cpu::Threads(CLIENT_THREADS);
    let (server_cpu_start, client_cpu_start) = (target.cpu.ns(), client_cpu.ns());
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|tx| {
            tokio::spawn(worker(
                tx,
                next.clone(),
                range.end,
                make.clone(),
                expect,
                keep,
            ))
        })
        .collect();
    let mut latencies_us = Vec::with_capacity(range.len());
    let mut kept = Vec::new();
    let mut unexpected = 0;
    let mut sample = None;
    for t in tasks {
        let o = t.await.expect("worker task");
        latencies_us.extend(o.latencies_us);
        kept.extend(o.kept);
        unexpected += o.unexpected;
        if sample.is_none() {
            sample = o.sample;
        }
    }
    let elapsed = started.elapsed();
    let server_cpu_ns = target.cpu.ns().saturating_sub(server_cpu_start);
    let client_cpu_ns = client_cpu.ns().saturating_sub(client_cpu_start);
    assert!(
        unexpected == 0,
        "{label}: {unexpected} unexpected responses (wanted {expect}); first: {}",
        sample.unwrap_or_default()
    );
    latencies_us.sort_unstable();
    kept.sort_unstable_by_key(|(i, _)| *i);
    CaseResult {
        requests: range.len(),
        elapsed,
        latencies_us,
        kept: kept.into_iter().map(|(_, v)| v).collect(),
        server_cpu_ns,
        client_cpu_ns,
    }
}

/// A case: an untimed warm-up on indices `0..warm`, then the timed run on
/// `warm..warm + n` (so per-request material such as codes or tokens is
/// never used twice).
#[allow(clippy::too_many_arguments)]
async fn case(
    label: &str,
    target: Target,
    connections: usize,
    warm: usize,
    n: usize,
    make: MakeRequest,
    expect: StatusCode,
    keep: Keep,
) -> (CaseResult, Vec<String>) {
    eprintln!("  {label}: {warm} warm-up requests");
    let w = run(
        label,
        target,
        connections,
        0..warm,
        make.clone(),
        expect,
        keep,
    )
    .await;
    eprintln!("  {label}: {n} timed requests");
    let r = run(
        label,
        target,
        connections,
        warm..warm + n,
        make,
        expect,
        keep,
    )
    .await;
    r.progress(label);
    let mut kept = w.kept;
    kept.extend(r.kept.iter().cloned());
    (r, kept)
}

impl CaseResult {
    /// The progress line for a finished case, on stderr.
    fn progress(&self, label: &str) {
        eprintln!(
            "  {label}: {:.0} req/s, p50 {} µs, p99 {} µs, server CPU {:.1} µs/req, client CPU {:.1} µs/req",
            self.rate(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.server_us(),
            self.client_us()
        );
    }

    /// One result from runs of the same case.
    fn merge(parts: Vec<CaseResult>) -> CaseResult {
        let mut all = CaseResult {
            requests: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            kept: Vec::new(),
            server_cpu_ns: 0,
            client_cpu_ns: 0,
        };
        for p in parts {
            all.requests += p.requests;
            all.elapsed += p.elapsed;
            all.latencies_us.extend(p.latencies_us);
            all.kept.extend(p.kept);
            all.server_cpu_ns += p.server_cpu_ns;
            all.client_cpu_ns += p.client_cpu_ns;
        }
        all.latencies_us.sort_unstable();
        all
    }
}

/// A case and the case it is held against (`(b)` and its baseline `(a)`,
/// `(c)` and the floor `(f)`), timed in alternating slices of the same
/// requests rather than one after the other: on a shared machine a slow
/// moment (another tenant, a frequency change) then lands on both alike,
/// where before it moved their ratio by several percent from run to run.
/// Each side has its warm-up first; slices alternate which side goes
/// first.
#[allow(clippy::too_many_arguments)]
async fn paired(
    labels: (&str, &str),
    targets: (Target, Target),
    makes: (MakeRequest, MakeRequest),
    expects: (StatusCode, StatusCode),
    connections: usize,
    warm: usize,
    n: usize,
    slices: usize,
) -> (CaseResult, CaseResult) {
    let sides = [
        (labels.0, targets.0, makes.0, expects.0),
        (labels.1, targets.1, makes.1, expects.1),
    ];
    for (label, target, make, expect) in &sides {
        eprintln!("  {label}: {warm} warm-up requests");
        run(
            label,
            *target,
            connections,
            0..warm,
            make.clone(),
            *expect,
            Keep::Nothing,
        )
        .await;
    }
    eprintln!(
        "  {} and {}: {n} timed requests each, in {slices} alternating slices",
        labels.0, labels.1
    );
    let mut results: [Vec<CaseResult>; 2] = [Vec::new(), Vec::new()];
    for k in 0..slices {
        let range = warm + k * n / slices..warm + (k + 1) * n / slices;
        let order = if k % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (label, target, make, expect) = &sides[side];
            results[side].push(
                run(
                    label,
                    *target,
                    connections,
                    range.clone(),
                    make.clone(),
                    *expect,
                    Keep::Nothing,
                )
                .await,
            );
        }
    }
    let [first, second] = results.map(CaseResult::merge);
    first.progress(labels.0);
    second.progress(labels.1);
    (first, second)
}

fn request(method: Method, path: &str, host: &'static str, body: Bytes) -> http::request::Builder {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host);
    if body.is_empty() {
        b
    } else {
        b.header(header::CONTENT_LENGTH, body.len())
    }
}

/// `Authorization: Bearer <token>`, built once before a timed phase: a
/// clone is a reference count, so the client's cost per request does not
/// grow with the token.
fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(format!("Bearer {token}"))).expect("a header value")
}

fn mcp_request(authorization: Option<&HeaderValue>) -> Request<Body> {
    mcp_call(WHOAMI, authorization)
}

fn mcp_call(message: &'static str, authorization: Option<&HeaderValue>) -> Request<Body> {
    let body = Bytes::from_static(message.as_bytes());
    let mut b = request(Method::POST, "/mcp", INTERNAL, body.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream");
    if let Some(v) = authorization {
        b = b.header(header::AUTHORIZATION, v.clone());
    }
    b.body(Full::new(body)).unwrap()
}

/// One request on a fresh connection, for setup.
async fn once(addr: SocketAddr, req: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut tx = connect(addr).await;
    let resp = tx.send_request(req).await.expect("setup request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("setup body").to_bytes();
    (parts.status, parts.headers, body)
}

// ===== (f): the floor =====

/// Accepts a request when its bearer token's Ed25519 signature verifies:
/// nothing else (no JSON, no claims, no routing).
fn floor_verify(public_key: &[u8; 32], headers: &http::HeaderMap) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Some((signing_input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    let mut buf = [0u8; 72];
    match URL_SAFE_NO_PAD.decode_slice(sig, &mut buf) {
        Ok(64) => {}
        _ => return false,
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
        .verify(signing_input.as_bytes(), &buf[..64])
        .is_ok()
}

async fn floor_service(
    public_key: Arc<[u8; 32]>,
    answer: Bytes,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let ok = floor_verify(&public_key, req.headers());
    // Read the body, as mcpgate does, so both keep the connection alike.
    let _ = req.into_body().collect().await;
    let (status, body) = if ok {
        (StatusCode::OK, answer)
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Bytes::from_static(b"{\"ok\":false}"),
        )
    };
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .unwrap())
}

/// The argument that makes this executable the floor server rather than
/// the benchmark.
const FLOOR_ARG: &str = "--mcpgate-bench-floor";

/// Starts the floor as a process of its own, as mcpgate and any real
/// server are: inside the benchmark's process it shared the client's
/// address space and allocator, which mcpgate does not, and its CPU time
/// was counted by thread name rather than by process. It answers a
/// verified request with `answer`.
fn start_floor(public_key: [u8; 32], answer: &[u8]) -> Listening {
    let mut cmd = Command::new(std::env::current_exe().expect("this executable"));
    cmd.args([FLOOR_ARG, &common::b64(&public_key), &common::b64(answer)]);
    Listening::spawn(cmd, &["floor listening on "])
        .unwrap_or_else(|line| panic!("the floor did not start: {line:?}"))
}

/// The floor process: a 2-thread runtime (mcpgate's on this machine), the
/// accept loop on the main thread as in mcpgate, until killed.
fn floor_main(public_key: &str, answer: &str) {
    let key: Arc<[u8; 32]> = Arc::new(
        URL_SAFE_NO_PAD
            .decode(public_key)
            .expect("base64url key")
            .try_into()
            .expect("32-byte key"),
    );
    let answer = Bytes::from(URL_SAFE_NO_PAD.decode(answer).expect("base64url answer"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("floor runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind floor");
        println!("floor listening on {}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let key = key.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    floor_service(key.clone(), answer.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

/// The Ed25519 public key that signed `token`, from the server's JWKS.
async fn public_key_for(addr: SocketAddr, token: &str) -> [u8; 32] {
    let header = jwt_header(token);
    let kid = header["kid"].as_str().expect("kid");
    let (status, _, body) = once(
        addr,
        request(
            Method::GET,
            "/.well-known/jwks.json",
            INTERNAL,
            Bytes::new(),
        )
        .body(Full::new(Bytes::new()))
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let jwks: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the signing key in the JWKS");
    assert_eq!(key["crv"], "Ed25519");
    URL_SAFE_NO_PAD
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

// ===== RSS with idle connections =====

/// Opens `count` keep-alive connections that each make one request, holds
/// them idle, and returns (VmRSS before, VmRSS, VmHWM) of the server in KiB.
async fn idle_connections(server: &Server, count: usize, token: &str) -> (u64, u64, u64) {
    let (before, _) = server.memory_kib();
    let mut held = Vec::with_capacity(count);
    // In batches, so the listen backlog never overflows.
    for batch in (0..count).collect::<Vec<_>>().chunks(100) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|_| {
                let token = token.to_owned();
                let addr = server.addr;
                tokio::spawn(async move {
                    let mut tx = connect(addr).await;
                    let resp = tx
                        .send_request(mcp_request(Some(&bearer(&token))))
                        .await
                        .expect("idle connection request");
                    assert_eq!(resp.status(), StatusCode::OK);
                    let _ = resp.into_body().collect().await;
                    tx
                })
            })
            .collect();
        for t in tasks {
            held.push(t.await.expect("idle connection"));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, hwm) = server.memory_kib();
    // Still open, still usable: the server kept every one.
    assert_eq!(held.len(), count);
    assert!(held.iter().all(|tx| !tx.is_closed()));
    drop(held);
    (before, rss, hwm)
}

// ===== report =====

struct Row {
    label: &'static str,
    result: CaseResult,
}

fn print_row(row: &Row, base: &CaseResult) {
    let r = &row.result;
    println!(
        "{:<54} {:>8.0} {:>7} {:>7} {:>6.2}x {:>9.1} {:>6.2}x {:>9.1}",
        row.label,
        r.rate(),
        r.percentile(0.50),
        r.percentile(0.99),
        r.rate() / base.rate(),
        r.server_us(),
        base.server_us() / r.server_us(),
        r.client_us(),
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn requests_per_case() -> usize {
    env_usize("MCPGATE_BENCH_REQUESTS", 40_000).max(100)
}

/// Registers the benchmark's public client (as Claude Code registers);
/// its `client_id`.
async fn register(addr: SocketAddr) -> String {
    let reg = serde_json::json!({
        "redirect_uris": [REDIRECT_URI],
        "client_name": "bench client",
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    let (status, _, body) = once(
        addr,
        request(
            Method::POST,
            "/oauth/register",
            INTERNAL,
            Bytes::from(reg.clone()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(reg)))
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    json_string_member(&body, "client_id").expect("client_id")
}

/// `GET /oauth/authorize` for `user<i>`, as oauth2-proxy forwards it: a
/// 302 with a fresh code.
fn authorize_maker(client_id: &str) -> MakeRequest {
    let challenge = challenge(VERIFIER);
    let authorize_query: Arc<str> = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "bench-state")
        .finish()
        .into();
    Arc::new(move |i| {
        request(
            Method::GET,
            &format!("/oauth/authorize?{authorize_query}"),
            INTERNAL,
            Bytes::new(),
        )
        .header("x-forwarded-email", format!("user{i}@example.com"))
        .body(Full::new(Bytes::new()))
        .unwrap()
    })
}

/// `POST /oauth/token` exchanging `codes[i]`.
fn exchange_maker(client_id: &str, codes: Arc<Vec<String>>) -> MakeRequest {
    let form_client_id: Arc<str> = client_id.into();
    Arc::new(move |i| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &codes[i])
            .append_pair("client_id", &form_client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("code_verifier", VERIFIER)
            .finish();
        let body = Bytes::from(body);
        request(Method::POST, "/oauth/token", INTERNAL, body.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(body))
            .unwrap()
    })
}

/// Statuses answered, counted: `{"200": 917504, "503": 82496}`.
fn tally(statuses: &[String]) -> std::collections::BTreeMap<&str, usize> {
    let mut t = std::collections::BTreeMap::new();
    for s in statuses {
        *t.entry(s.as_str()).or_default() += 1;
    }
    t
}

/// mcpgate on fresh keys (kept in the returned directory, which must
/// outlive the server) and the target the timed loops measure.
fn start_mcpgate() -> (tempfile::TempDir, Server, Target) {
    let keys = tempfile::tempdir().expect("temp dir");
    generate_keys(keys.path());
    let server = Server::start_on_keys(keys.path(), config);
    let mcpgate = Target {
        addr: server.addr,
        cpu: Cpu::Process(server.pid()),
    };
    (keys, server, mcpgate)
}

/// The saturation mode (`MCPGATE_BENCH_SATURATE=1`), instead of the cases:
/// fills the code replay memory past its capacity with live codes
/// (`MCPGATE_BENCH_FILL` exchanges, default 1,000,000, in chunks of 50,000
/// codes minted then exchanged), then times (d) at saturation:
/// `MCPGATE_BENCH_SATURATED` (default 2,000) exchanges of fresh codes, which
/// a full memory must refuse (503), and as many replays of the first codes
/// filled, which it must still refuse (400). Reports p50/p99 of each and
/// the statuses. Codes live 600 s here, so none expires during the run.
async fn saturate() {
    let fill = env_usize("MCPGATE_BENCH_FILL", 1_000_000);
    let n = saturated_requests();
    let conns = env_usize("MCPGATE_BENCH_CONNECTIONS", 64).max(1);
    let (_keys, server, mcpgate) = start_mcpgate();
    let addr = server.addr;
    println!(
        "mcpgate saturation benchmark: {fill} codes exchanged, then {n} timed exchanges \
         and {n} replays, {conns} keep-alive HTTP/1.1 connections, loopback {addr}"
    );
    println!("server: {} (pid {})", common::bin(), server.pid());
    let client_id = register(addr).await;
    let make_authorize = authorize_maker(&client_id);
    let started = Instant::now();
    let mut filled: std::collections::BTreeMap<String, usize> = Default::default();
    let mut first_codes: Vec<String> = Vec::new();
    let mut done = 0;
    while done < fill {
        let chunk = (fill - done).min(50_000);
        let codes = run(
            "fill: authorize",
            mcpgate,
            conns,
            0..chunk,
            make_authorize.clone(),
            StatusCode::FOUND,
            Keep::CodeFromLocation,
        )
        .await
        .kept;
        assert_eq!(codes.len(), chunk, "one code per authorize");
        if first_codes.is_empty() {
            first_codes = codes[..n.min(chunk)].to_vec();
        }
        let r = run(
            "fill: exchange",
            mcpgate,
            conns,
            0..chunk,
            exchange_maker(&client_id, Arc::new(codes)),
            StatusCode::OK,
            Keep::Statuses,
        )
        .await;
        for (status, count) in tally(&r.kept) {
            *filled.entry(status.to_owned()).or_default() += count;
        }
        done += chunk;
        eprintln!(
            "  fill: {done} exchanged in {:.0} s: {:?}; last chunk p50 {} µs, p99 {} µs",
            started.elapsed().as_secs_f64(),
            filled,
            r.percentile(0.5),
            r.percentile(0.99)
        );
    }
    println!("fill: {filled:?}");
    let codes = run(
        "authorize",
        mcpgate,
        conns,
        0..n,
        make_authorize,
        StatusCode::FOUND,
        Keep::CodeFromLocation,
    )
    .await
    .kept;
    let cases = [
        ("(d) at saturation, fresh codes", codes),
        ("(d) at saturation, replays", first_codes),
    ];
    for (label, codes) in cases {
        let len = codes.len();
        let r = run(
            label,
            mcpgate,
            conns,
            0..len,
            exchange_maker(&client_id, Arc::new(codes)),
            StatusCode::OK,
            Keep::Statuses,
        )
        .await;
        println!(
            "{label}: {:.0} req/s, p50 {} µs, p99 {} µs (p99/p50 {:.1}), server CPU {:.1} µs/req; {:?}",
            r.rate(),
            r.percentile(0.5),
            r.percentile(0.99),
            r.percentile(0.99) as f64 / r.percentile(0.5).max(1) as f64,
            r.server_us(),
            tally(&r.kept)
        );
    }
    let (rss, hwm) = server.memory_kib();
    println!(
        "server memory: VmRSS {:.1} MiB, VmHWM {:.1} MiB; {:.0} s in all",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
}

fn saturated_requests() -> usize {
    env_usize("MCPGATE_BENCH_SATURATED", 2_000).max(100)
}

async fn bench() {
    let n = requests_per_case();
    let conns = env_usize("MCPGATE_BENCH_CONNECTIONS", 64).max(1);
    let idle = env_usize("MCPGATE_BENCH_IDLE", 1000);
    let warm = (n / 10).clamp(100, 4000);
    let total_started = Instant::now();

    // The keys outlive this server: a fresh replica uses them at the end.
    let (keys, server, mcpgate) = start_mcpgate();
    let addr = server.addr;

    println!(
        "mcpgate load benchmark: {n} timed requests per case (+{warm} warm-up), \
         {conns} keep-alive HTTP/1.1 connections, loopback {addr}"
    );
    println!(
        "server: {} (pid {}), default log level (info, access log off)",
        common::bin(),
        server.pid()
    );
    println!(
        "client: hyper client::conn::http1, one tokio runtime of 2 threads, on the same {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // --- setup: one registered public client (as Claude Code registers) ---
    let client_id = register(addr).await;

    // --- (e) discovery ---
    let make_e: MakeRequest = Arc::new(|_| {
        request(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            INTERNAL,
            Bytes::new(),
        )
        .body(Full::new(Bytes::new()))
        .unwrap()
    });
    let (e, _) = case(
        "(e)",
        mcpgate,
        conns,
        warm,
        n,
        make_e,
        StatusCode::OK,
        Keep::Nothing,
    )
    .await;

    // --- codes for (d): one authorize per code, as oauth2-proxy forwards it ---
    let make_authorize = authorize_maker(&client_id);
    let (authorize, codes) = case(
        "authorize",
        mcpgate,
        conns,
        warm,
        n,
        make_authorize,
        StatusCode::FOUND,
        Keep::CodeFromLocation,
    )
    .await;
    assert_eq!(codes.len(), warm + n, "one code per authorize");

    // --- (d) code exchanges ---
    let make_d = exchange_maker(&client_id, Arc::new(codes));
    let (d, tokens) = case(
        "(d)",
        mcpgate,
        conns,
        warm,
        n,
        make_d,
        StatusCode::OK,
        Keep::AccessToken,
    )
    .await;
    assert_eq!(tokens.len(), warm + n, "one access token per exchange");
    {
        let mut distinct = tokens.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), tokens.len(), "tokens are distinct");
    }
    let tokens: Arc<Vec<String>> = Arc::new(tokens);

    // --- (d-mem) and (d-redis): the same exchanges on the memory store and
    //     on a shared Redis, timed in turns. Codes from the first server
    //     open on the second (same keys, same issuer), each used once. ---
    let redis = common::redis::Redis::start();
    let redis_server = Server::start_on_keys(keys.path(), |k| config_with_store(k, &redis.url()));
    let with_redis = Target {
        addr: redis_server.addr,
        cpu: Cpu::Process(redis_server.pid()),
    };
    let mut store_codes = run(
        "authorize (d-mem, d-redis)",
        mcpgate,
        conns,
        0..2 * (warm + n),
        authorize_maker(&client_id),
        StatusCode::FOUND,
        Keep::CodeFromLocation,
    )
    .await
    .kept;
    let redis_codes = Arc::new(store_codes.split_off(warm + n));
    let (d_mem, d_redis) = paired(
        ("(d-mem)", "(d-redis)"),
        (mcpgate, with_redis),
        (
            exchange_maker(&client_id, Arc::new(store_codes)),
            exchange_maker(&client_id, redis_codes),
        ),
        (StatusCode::OK, StatusCode::OK),
        conns,
        warm,
        n,
        PAIRED_SLICES,
    )
    .await;
    drop(redis_server);
    drop(redis);

    // --- (b) one hot token ---
    let hot = tokens[0].clone();
    let (status, _, body) = once(addr, mcp_request(Some(&bearer(&hot)))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        json_string_member(&body, "jsonrpc").is_some()
            && body.windows(8).any(|w| w == b"\"result\""),
        "whoami answers a result: {body:?}"
    );
    let whoami_answer = body;
    let hot_b = bearer(&hot);
    let make_b: MakeRequest = Arc::new(move |_| mcp_request(Some(&hot_b)));

    // --- (a) the 401 path, the baseline, timed in turns with (b) ---
    let make_a: MakeRequest = Arc::new(|_| mcp_request(None));
    let (a, b) = paired(
        ("(a)", "(b)"),
        (mcpgate, mcpgate),
        (make_a.clone(), make_b),
        (StatusCode::UNAUTHORIZED, StatusCode::OK),
        conns,
        warm,
        n,
        PAIRED_SLICES,
    )
    .await;

    // --- (b') the same token on `ping`: the authenticated path without the
    //     tool, to split (b) - (a) into token check and tool work ---
    let hot_p = bearer(&hot);
    let make_p: MakeRequest = Arc::new(move |_| mcp_call(PING, Some(&hot_p)));
    let (ping, _) = case(
        "(b')",
        mcpgate,
        conns,
        warm,
        n,
        make_p,
        StatusCode::OK,
        Keep::Nothing,
    )
    .await;

    // --- (c) a distinct token every request (tokens[0] was used by (b):
    //     (c) starts at 1, so none of its tokens is in the cache) ---
    let bearers: Arc<Vec<HeaderValue>> = Arc::new(tokens.iter().map(|t| bearer(t)).collect());
    let tokens_c = bearers.clone();
    let make_c: MakeRequest = Arc::new(move |i| mcp_request(Some(&tokens_c[i + 1])));

    // --- (f) the floor, same tokens, same requests, its own server; timed
    //     in turns with (c) ---
    let public_key = public_key_for(addr, &tokens[0]).await;
    let floor_server = start_floor(public_key, b"{\"ok\":true}");
    let floor = Target {
        addr: floor_server.addr(),
        cpu: Cpu::Process(floor_server.pid()),
    };
    let tokens_f = bearers.clone();
    let make_f: MakeRequest = Arc::new(move |i| mcp_request(Some(&tokens_f[i + 1])));
    let (c, f) = paired(
        ("(c)", "(f)"),
        (mcpgate, floor),
        (make_c, make_f.clone()),
        (StatusCode::OK, StatusCode::OK),
        conns,
        warm,
        n - 1,
        PAIRED_SLICES,
    )
    .await;

    // --- (f') a diagnostic, not a target: the floor answering the bytes
    //     whoami answers, to tell what (c) - (f) costs in payload (the
    //     client reading ~900 more bytes, the kernel moving them) from
    //     what it costs in mcpgate's own work ---
    let floor_same_bytes_server = start_floor(public_key, &whoami_answer);
    let floor_same_bytes = Target {
        addr: floor_same_bytes_server.addr(),
        cpu: Cpu::Process(floor_same_bytes_server.pid()),
    };
    let (f_same, _) = case(
        "(f')",
        floor_same_bytes,
        conns,
        warm,
        n - 1,
        make_f,
        StatusCode::OK,
        Keep::Nothing,
    )
    .await;

    // --- (a) again: how much the machine drifted during the run ---
    let (a2, _) = case(
        "(a) again",
        mcpgate,
        conns,
        warm,
        n,
        make_a,
        StatusCode::UNAUTHORIZED,
        Keep::Nothing,
    )
    .await;

    let (loaded_rss, loaded_hwm) = server.memory_kib();
    drop(server);

    // --- RSS: a fresh replica on the same keys, idle connections ---
    let fresh = Server::start_on_keys(keys.path(), config);
    tokio::time::sleep(Duration::from_millis(200)).await;
    eprintln!("  RSS: {idle} idle keep-alive connections");
    let (rss_start, rss_idle, hwm_idle) = idle_connections(&fresh, idle, &hot).await;
    drop(fresh);

    // --- report ---
    println!();
    println!(
        "{:<54} {:>8} {:>7} {:>7} {:>7} {:>9} {:>7} {:>9}",
        "case", "req/s", "p50 µs", "p99 µs", "vs (a)", "srv µs/r", "vs (a)", "cli µs/r"
    );
    println!(
        "{:<54} {:>8} {:>7} {:>7} {:>7} {:>9} {:>7} {:>9}",
        "", "", "", "", "(rate)", "CPU", "(CPU)", "CPU"
    );
    let rows = [
        Row {
            label: "(a) POST /mcp, no token (401; baseline)",
            result: a,
        },
        Row {
            label: "(b) POST /mcp tools/call whoami, one hot token",
            result: b,
        },
        Row {
            label: "(c) POST /mcp tools/call whoami, distinct tokens",
            result: c,
        },
        Row {
            label: "(d) POST /oauth/token, code exchange",
            result: d,
        },
        Row {
            label: "(e) GET /.well-known/oauth-authorization-server",
            result: e,
        },
        Row {
            label: "    (d-mem) code exchange, memory store (in turns)",
            result: d_mem,
        },
        Row {
            label: "    (d-redis) code exchange, Redis store (in turns)",
            result: d_redis,
        },
        Row {
            label: "(f) floor: hyper, split bearer, ring Ed25519 verify",
            result: f,
        },
        Row {
            label: "    (f') floor answering whoami's bytes (diagnostic)",
            result: f_same,
        },
        Row {
            label: "    (b') POST /mcp ping, one hot token",
            result: ping,
        },
        Row {
            label: "    GET /oauth/authorize, 302 with a code (for d)",
            result: authorize,
        },
        Row {
            label: "    (a) again, at the end (drift)",
            result: a2,
        },
    ];
    for row in &rows {
        print_row(row, &rows[0].result);
    }
    let (a, b, c, d, f) = (
        &rows[0].result,
        &rows[1].result,
        &rows[2].result,
        &rows[3].result,
        &rows[7].result,
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!(
        "srv µs/r: server CPU time per request (all threads of mcpgate's or the floor's \
         process); cli µs/r: this client's"
    );
    println!(
        "(c)/(a): {:.2}   (c)/(f): {:.2} by rate, {:.2} by server CPU   \
         (c)/(f'): {:.2} by rate, {:.2} by server CPU",
        c.rate() / a.rate(),
        c.rate() / f.rate(),
        f.server_us() / c.server_us(),
        c.rate() / rows[8].result.rate(),
        rows[8].result.server_us() / c.server_us(),
    );
    println!(
        "(d): {:.0} exchanges/s measured; {:.1} µs server CPU each, so {:.0}/s if the \
         server had all {cores} CPUs",
        d.rate(),
        d.server_us(),
        cores * 1e6 / d.server_us()
    );
    println!(
        "server memory after all cases: VmRSS {:.1} MiB, VmHWM {:.1} MiB \
         (the memory store's documented bound: ~170 MiB of single-use state at most, \
         src/store/memory.rs)",
        mib(loaded_rss),
        mib(loaded_hwm)
    );
    println!(
        "fresh server: VmRSS {:.1} MiB at start; with {idle} idle keep-alive connections \
         (one whoami each): VmRSS {:.1} MiB, VmHWM {:.1} MiB ({:.1} KiB per connection)",
        mib(rss_start),
        mib(rss_idle),
        mib(hwm_idle),
        (rss_idle.saturating_sub(rss_start)) as f64 / idle.max(1) as f64
    );
    println!();
    // Three decimals: a ratio just under the line must not print as the line.
    println!("targets (one run; by rate, server CPU in brackets):");
    let rb = b.rate() / a.rate();
    println!(
        "  (b) >= 0.8 x (a)                 {:>6.3}x  [{:.3}x]   {}",
        rb,
        a.server_us() / b.server_us(),
        verdict(rb >= 0.8)
    );
    let rc = c.rate() / f.rate();
    println!(
        "  (c) >= 0.9 x (f)                 {:>6.3}x  [{:.3}x]   {}",
        rc,
        f.server_us() / c.server_us(),
        verdict(rc >= 0.9)
    );
    println!(
        "  (d) >= 15000 exchanges/s         {:>7.0}/s            {}",
        d.rate(),
        verdict(d.rate() >= 15_000.0)
    );
    let (d_mem, d_redis) = (&rows[5].result, &rows[6].result);
    let rr = d_redis.rate() / d_mem.rate();
    println!(
        "  (d-redis) >= 0.5 x (d-mem)       {:>6.3}x  [{:.3}x]   {}",
        rr,
        d_mem.server_us() / d_redis.server_us(),
        verdict(rr >= 0.5)
    );
    println!(
        "  RSS < 30 MiB, {idle} idle conns   {:>6.1} MiB           {}",
        mib(hwm_idle),
        verdict(mib(hwm_idle) < 30.0)
    );
    println!(
        "\ntotal wall time {:.1} s",
        total_started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, key, answer] = &args[..] {
        if flag == FLOOR_ARG {
            return floor_main(key, answer);
        }
    }
    // Another build, measured with the same client and floor.
    if let Ok(other) = std::env::var("MCPGATE_BENCH_BIN") {
        common::use_bin(other);
    }
    // `cargo bench` passes `--bench` (and any filter); this harness takes none.
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()
        .expect("client runtime");
    // A server that stops answering must not hang the run: past the limit
    // the benchmark is dropped (which kills the server) and fails.
    let saturation = std::env::var_os("MCPGATE_BENCH_SATURATE").is_some_and(|v| v != "0");
    let limit = if saturation {
        // Filling at ≥ 2,000 codes/s; refusals at ≤ 50 ms each.
        Duration::from_secs(300)
            + Duration::from_micros(500 * env_usize("MCPGATE_BENCH_FILL", 1_000_000) as u64)
            + Duration::from_millis(50 * saturated_requests() as u64)
    } else {
        Duration::from_secs(300) + Duration::from_millis(5 * requests_per_case() as u64)
    };
    client.block_on(async {
        let run = async {
            if saturation {
                saturate().await
            } else {
                bench().await
            }
        };
        tokio::time::timeout(limit, run)
            .await
            .unwrap_or_else(|_| panic!("the load benchmark took more than {limit:?}"))
    });
    drop(client);
}
