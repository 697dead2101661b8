//! What proxying an upstream MCP server costs, in one run on one machine.
//!
//! `cargo bench --bench proxy` starts a fast MCP server written here (a
//! hyper server on its own runtime, answering `initialize`, `tools/list`
//! and `tools/call` from fixed bytes) and the release `mcpgate` with it
//! mounted at `/mcp/fast` (`forward_identity = "jwt"`), signs in through
//! a real OAuth flow, then sends `tools/call` over keep-alive HTTP/1.1
//! connections, in alternating slices so that drift on a shared machine
//! lands on every case alike:
//!
//! - direct: to the upstream itself;
//! - proxied: through mcpgate's `/mcp/fast` with one hot token;
//! - built-in: mcpgate's own `/mcp` `tools/call whoami` with a hot token.
//!
//! It reports each case's throughput and mcpgate's CPU per request (from
//! `/proc/<pid>/task/*/schedstat`), the proxied/direct throughput ratio,
//! and mcpgate's CPU per proxied call against its built-in call (target:
//! at most 2×). Then the peer: FastMCP's own proxy (`FastMCP.as_proxy`) in
//! front of the same upstream, driven the same way (target: mcpgate at
//! least 50× its throughput). The peer needs `python3` with `fastmcp`
//! (`MCPGATE_BENCH_PYTHON` names another interpreter); without it the run
//! says so and reports the rest.
//!
//! Environment: `MCPGATE_BENCH_REQUESTS` (timed requests per case, default
//! 20000), `MCPGATE_BENCH_CONNECTIONS` (default 32),
//! `MCPGATE_BENCH_PEER_REQUESTS` (default 300), `MCPGATE_BENCH_ONLY`
//! (`direct`, `proxied` or `built-in`: that case alone, no warm-up, for a
//! profiler attached to the pid it prints), `MCPGATE_BENCH_BIN` (another
//! build of mcpgate to measure with the same client). Loopback only; every loop is
//! bounded by a request count.

#[path = "../tests/common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{challenge, location, query_param, Server, ALICE, INTERNAL, VERIFIER};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Body = Full<Bytes>;

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#;
const WHOAMI: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
const SLICES: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

// ===== the fast upstream =====

/// The upstream's answer to `body`: fixed bytes per method.
fn upstream_answer(body: &[u8]) -> (u16, &'static str) {
    let has = |s: &str| memchr::memmem::find(body, s.as_bytes()).is_some();
    if !has("\"id\"") {
        return (202, "");
    }
    if has("\"initialize\"") {
        (
            200,
            r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fast","version":"1"}}}"#,
        )
    } else if has("\"tools/list\"") {
        (
            200,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}"#,
        )
    } else {
        (
            200,
            r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}"#,
        )
    }
}

/// Rewrites the fixed answer's id to the request's (FastMCP's client
/// matches answers by id; the benchmark's own requests all use 7).
fn with_id(answer: &str, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut a: serde_json::Value = serde_json::from_str(answer).unwrap();
    a["id"] = v["id"].clone();
    a.to_string()
}

fn start_upstream() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-upstream")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            // No GET stream (transport §2.2: 405), and a
                            // session may end (DELETE): as servers say so.
                            let early = match *req.method() {
                                Method::GET => Some(405),
                                Method::DELETE => Some(200),
                                _ => None,
                            };
                            if let Some(status) = early {
                                return Ok::<_, Infallible>(
                                    http::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                );
                            }
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (status, answer) = upstream_answer(&body);
                            let text = if answer.contains("\"id\":7")
                                && memchr::memmem::find(&body, b"\"id\":7").is_some()
                            {
                                answer.to_owned()
                            } else if answer.is_empty() {
                                String::new()
                            } else {
                                with_id(answer, &body)
                            };
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

// ===== the client =====

async fn connect(addr: SocketAddr) -> SendRequest<Body> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// One target of the benchmark: where requests go and what they carry.
#[derive(Clone)]
struct Case {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    host: &'static str,
    body: &'static str,
    headers: Vec<(&'static str, HeaderValue)>,
    /// Give each request its own id (a server that keeps sessions matches
    /// answers to requests by id within one).
    unique_ids: bool,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(100);

impl Case {
    fn request(&self) -> Request<Body> {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(self.path)
            .header("host", self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (n, v) in &self.headers {
            b = b.header(*n, v.clone());
        }
        let body = if self.unique_ids {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            Bytes::from(self.body.replacen("\"id\":7", &format!("\"id\":{id}"), 1))
        } else {
            Bytes::from_static(self.body.as_bytes())
        };
        b.body(Full::new(body)).unwrap()
    }
}

/// Sends `n` requests over `connections`; returns the elapsed time.
async fn run(case: &Case, connections: usize, n: usize) -> Duration {
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(case.addr).await);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut tx| {
            let next = next.clone();
            let case = case.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    tx.ready().await.expect("connection open");
                    let resp = tx.send_request(case.request()).await.expect("send");
                    let status = resp.status();
                    let body = resp.into_body().collect().await.expect("body").to_bytes();
                    assert!(
                        status == 200 && memchr::memmem::find(&body, b"\"result\"").is_some(),
                        "{}: {status} {}",
                        case.name,
                        String::from_utf8_lossy(&body)
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Nanoseconds the process `pid` has spent on CPU.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The process's CPU time in the kernel and in its own code, in clock
/// ticks (`/proc/<pid>/stat`, fields 15 and 14): coarse (10 ms), read
/// around whole slices only, to tell the two apart.
fn sys_user_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // `rest` starts at field 3 (state, which parses as 0).
    (
        f.get(12).copied().unwrap_or(0),
        f.get(11).copied().unwrap_or(0),
    )
}

#[derive(Default, Clone, Copy)]
struct Tally {
    requests: usize,
    elapsed: Duration,
    mcpgate_cpu_ns: u64,
    sys_ticks: u64,
    user_ticks: u64,
}

impl Tally {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn cpu_us(&self) -> f64 {
        self.mcpgate_cpu_ns as f64 / 1000.0 / self.requests as f64
    }
    /// The kernel's share of [`Tally::cpu_us`].
    fn sys_share(&self) -> f64 {
        self.sys_ticks as f64 / (self.sys_ticks + self.user_ticks).max(1) as f64
    }
}

// ===== signing in =====

/// A token for `resource`, through register, authorize and token.
async fn token_for(s: &Server, resource: &str) -> String {
    let redirect = "http://127.0.0.1:33418/callback";
    let client_id = s.register_client(INTERNAL, &[redirect]).await;
    let c = challenge(VERIFIER);
    let r = s
        .get(INTERNAL, "/oauth/authorize")
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", c.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource),
        ])
        .header("x-forwarded-email", ALICE)
        .send()
        .await
        .unwrap();
    let code = query_param(&location(&r), "code").expect("a code");
    let tokens = s.exchange(INTERNAL, &client_id, &code, redirect).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

// ===== the peer =====

/// FastMCP's proxy in front of `upstream`, on a port of its own; `None`
/// when the interpreter has no `fastmcp`.
fn start_fastmcp(upstream: SocketAddr) -> Option<(std::process::Child, SocketAddr)> {
    let python = std::env::var("MCPGATE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let script = format!(
        "import logging\nfrom fastmcp import FastMCP\n\
         proxy = FastMCP.as_proxy('http://{upstream}/mcp', name='peer')\n\
         proxy.run(transport='http', host='127.0.0.1', port={port}, log_level='warning')\n"
    );
    let child = Command::new(python)
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((child, addr));
        }
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    None
}

/// An MCP session with the peer (it keeps sessions): its id.
async fn peer_session(addr: SocketAddr) -> HeaderValue {
    let client = common::client();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#;
    let r = client
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init)
        .send()
        .await
        .unwrap();
    let session = r.headers()["mcp-session-id"].clone();
    let _ = r.bytes().await;
    client
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session.to_str().unwrap())
        .header("mcp-protocol-version", "2025-06-18")
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    HeaderValue::from_bytes(session.as_bytes()).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    if let Ok(other) = std::env::var("MCPGATE_BENCH_BIN") {
        common::use_bin(other);
    }
    let n = env_usize("MCPGATE_BENCH_REQUESTS", 20_000);
    let connections = env_usize("MCPGATE_BENCH_CONNECTIONS", 32);
    let upstream = start_upstream();
    let server = Server::start(&format!(
        "[[upstreams]]\nname = \"fast\"\nurl = \"http://{upstream}/mcp\"\nforward_identity = \"jwt\"\n"
    ));
    let mount_token = token_for(&server, &format!("https://{INTERNAL}/mcp/fast")).await;
    let mcp_token = token_for(&server, &format!("https://{INTERNAL}/mcp")).await;
    let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
    let cases = [
        Case {
            name: "direct",
            addr: upstream,
            path: "/mcp",
            host: "upstream",
            body: CALL,
            headers: vec![],
            unique_ids: false,
        },
        Case {
            name: "proxied",
            addr: server.addr,
            path: "/mcp/fast",
            host: INTERNAL,
            body: CALL,
            headers: vec![("authorization", bearer(&mount_token))],
            unique_ids: false,
        },
        Case {
            name: "built-in",
            addr: server.addr,
            path: "/mcp",
            host: INTERNAL,
            body: WHOAMI,
            headers: vec![
                ("authorization", bearer(&mcp_token)),
                (
                    "mcp-protocol-version",
                    HeaderValue::from_static("2025-06-18"),
                ),
            ],
            unique_ids: false,
        },
    ];
    // Profiling: one case alone, long enough to attach a profiler to the
    // pid printed here.
    if let Ok(only) = std::env::var("MCPGATE_BENCH_ONLY") {
        let case = cases
            .iter()
            .find(|c| c.name == only)
            .unwrap_or_else(|| panic!("MCPGATE_BENCH_ONLY: direct, proxied or built-in"));
        eprintln!("mcpgate pid {}: {only} alone, {n} requests", server.pid());
        let cpu = cpu_ns(server.pid());
        let elapsed = run(case, connections, n).await;
        let us = (cpu_ns(server.pid()) - cpu) as f64 / 1000.0 / n as f64;
        println!(
            "{only}: {:.0} req/s, mcpgate CPU {us:.1} µs/req",
            n as f64 / elapsed.as_secs_f64()
        );
        return;
    }
    // Warm-up: connections, the verified-token and identity caches.
    for c in &cases {
        run(c, connections, 2_000).await;
    }
    let mut tallies = [Tally::default(); 3];
    for _ in 0..SLICES {
        for (c, t) in cases.iter().zip(tallies.iter_mut()) {
            let cpu = cpu_ns(server.pid());
            let (sys, user) = sys_user_ticks(server.pid());
            let elapsed = run(c, connections, n / SLICES).await;
            t.requests += n / SLICES;
            t.elapsed += elapsed;
            t.mcpgate_cpu_ns += cpu_ns(server.pid()) - cpu;
            let (sys_after, user_after) = sys_user_ticks(server.pid());
            t.sys_ticks += sys_after - sys;
            t.user_ticks += user_after - user;
        }
    }
    let [direct, proxied, builtin] = tallies;
    println!("proxy overhead: {n} tools/call per case, {connections} connections, {SLICES} alternating slices");
    println!(
        "{:<28} {:>10} {:>22} {:>16}",
        "case", "req/s", "mcpgate CPU µs/req", "of it in kernel"
    );
    println!(
        "{:<28} {:>10.0} {:>22}",
        "direct to the upstream",
        direct.rps(),
        "-"
    );
    for (name, t) in [
        ("through mcpgate /mcp/fast", proxied),
        ("mcpgate /mcp whoami", builtin),
    ] {
        println!(
            "{name:<28} {:>10.0} {:>22.1} {:>15.0}%",
            t.rps(),
            t.cpu_us(),
            100.0 * t.sys_share()
        );
    }
    println!(
        "throughput through mcpgate / direct: {:.2}",
        proxied.rps() / direct.rps()
    );
    let cpu_ratio = proxied.cpu_us() / builtin.cpu_us();
    println!(
        "mcpgate CPU per proxied call / per built-in call: {cpu_ratio:.2} (target <= 2: {})",
        if cpu_ratio <= 2.0 { "met" } else { "NOT met" }
    );
    // On loopback the sender's system call also runs the receiver's TCP
    // input, so the kernel part is what two sends (to the upstream, to
    // the client) cost against one.
    let part = |t: &Tally, kernel: bool| {
        let share = if kernel {
            t.sys_share()
        } else {
            1.0 - t.sys_share()
        };
        t.cpu_us() * share
    };
    println!(
        "  in the kernel: {:.1} / {:.1} µs = {:.2}; in mcpgate's code: {:.1} / {:.1} µs = {:.2}",
        part(&proxied, true),
        part(&builtin, true),
        part(&proxied, true) / part(&builtin, true),
        part(&proxied, false),
        part(&builtin, false),
        part(&proxied, false) / part(&builtin, false),
    );

    let peer_n = env_usize("MCPGATE_BENCH_PEER_REQUESTS", 300);
    match start_fastmcp(upstream) {
        None => println!(
            "FastMCP proxy peer: not run (no `fastmcp` for {}; pip install fastmcp, or set MCPGATE_BENCH_PYTHON)",
            std::env::var("MCPGATE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
        ),
        Some((mut child, addr)) => {
            let session = peer_session(addr).await;
            let peer = Case {
                name: "fastmcp",
                addr,
                path: "/mcp",
                host: "peer",
                body: CALL,
                headers: vec![
                    ("mcp-session-id", session),
                    ("mcp-protocol-version", HeaderValue::from_static("2025-06-18")),
                ],
                unique_ids: true,
            };
            run(&peer, connections.min(8), 200).await;
            let elapsed = run(&peer, connections.min(8), peer_n).await;
            let rps = peer_n as f64 / elapsed.as_secs_f64();
            let ratio = proxied.rps() / rps;
            println!("{:<28} {:>10.0}", "through FastMCP.as_proxy", rps);
            println!(
                "mcpgate / FastMCP proxy throughput: {ratio:.0}x (target >= 50: {})",
                if ratio >= 50.0 { "met" } else { "NOT met" }
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
