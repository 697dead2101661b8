//! A rolling restart behind a readiness-checking balancer, against three
//! real replicas sharing one keys directory: no `/mcp` call is lost.
//!
//! The client is the strictest kind: it never retries a request it sent
//! (a POST, RFC 9112 §9.3.1), and it keeps using an established
//! keep-alive connection until the replica says `Connection: close`
//! (RFC 9112 §9.6) or closes it; only before opening a new connection
//! does it ask `/readyz`. That is how a balancer treats connections it
//! already holds, and the only signal a busy client gets is the one the
//! server puts on its responses.
//!
//! 32 clients, each sending at most one call per 30 ms (about 4,000 calls
//! in ~4.5 s); three restarts with `drain_delay` 1 s. Before the server
//! said `Connection: close` while draining, this lost 1-3 calls in most
//! runs (EOF when the drain's end closed idle connections), and so did
//! closing idle connections at the drain's start.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

type Sender = SendRequest<Full<Bytes>>;

const DRAIN: Duration = Duration::from_secs(1);
const WORKERS: usize = 32;
/// Per worker: the whole run stays at a few thousand requests.
const MAX_REQUESTS: usize = 250;
/// Each worker sends at most one request per period (~1,000 a second in
/// all): the load lasts through every restart.
const PERIOD: Duration = Duration::from_millis(30);

fn replica(keys: &Path) -> Server {
    Server::start_on_keys(keys, |k| {
        config(
            k,
            "\n[server]\ndrain_delay = \"1s\"\nshutdown_grace = \"5s\"\n",
        )
    })
}

/// A new HTTP/1.1 connection to `addr`, if it accepts one.
async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

/// A keep-alive connection to a replica that says it is ready, as a
/// balancer opens one: `/readyz` first, on the same connection.
async fn ready_connection(addr: SocketAddr) -> Option<Sender> {
    let mut sender = connect(addr).await?;
    let req = http::Request::get("/readyz")
        .header("host", PUBLIC)
        .body(Full::default())
        .unwrap();
    let resp = sender.send_request(req).await.ok()?;
    let (head, body) = resp.into_parts();
    body.collect().await.ok()?;
    (head.status == 200 && !says_close(&head.headers) && !sender.is_closed()).then_some(sender)
}

fn says_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    /// Answered `Connection: close`: the client moved away.
    told_to_close: AtomicUsize,
    /// Handed back by hyper unsent (the connection closed before it was
    /// written): safe to send again, and sent again on another connection.
    unsent: AtomicUsize,
    /// Sent and never answered (EOF, reset), or answered non-2xx.
    failures: Mutex<Vec<String>>,
}

async fn worker(
    w: usize,
    token: Arc<String>,
    rotation: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut conns: HashMap<SocketAddr, Sender> = HashMap::new();
    let mut next = w;
    let mut sent = 0;
    let mut pace = tokio::time::interval(PERIOD);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while sent < MAX_REQUESTS && !stop.load(Ordering::Relaxed) {
        pace.tick().await;
        let addr = {
            let r = rotation.lock().unwrap();
            next += 1;
            r[next % r.len()]
        };
        let mut sender = match conns.remove(&addr) {
            Some(s) if !s.is_closed() => s,
            _ => match ready_connection(addr).await {
                Some(s) => s,
                None => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        // Closed before anything was sent on it: open another.
        if sender.ready().await.is_err() {
            continue;
        }
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{sent},"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}"#
        );
        let req = http::Request::post("/mcp")
            .header("host", PUBLIC)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (head, body) = resp.into_parts();
                    match body.collect().await {
                        Ok(_) => Outcome::Answered(head),
                        Err(e) => Outcome::Lost(format!("{e:?}")),
                    }
                }
                Err(e) if e.message().is_some() => Outcome::Unsent,
                Err(e) => Outcome::Lost(format!("{:?}", e.error())),
            }
        })
        .await
        .unwrap_or_else(|_| Outcome::Lost("no answer in 5 s".into()));
        sent += 1;
        match answer {
            Outcome::Answered(head) if head.status.is_success() => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                if says_close(&head.headers) {
                    tally.told_to_close.fetch_add(1, Ordering::Relaxed);
                } else {
                    conns.insert(addr, sender);
                }
            }
            Outcome::Answered(head) => fail(&tally, format!("{w}/{sent} {addr}: {}", head.status)),
            Outcome::Unsent => {
                tally.unsent.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Lost(e) => fail(&tally, format!("{w}/{sent} {addr}: {e}")),
        }
    }
}

enum Outcome {
    Answered(http::response::Parts),
    /// hyper handed the request back: not a byte of it was written.
    Unsent,
    /// Sent, and no answer came.
    Lost(String),
}

fn fail(tally: &Tally, what: String) {
    tally.failures.lock().unwrap().push(what);
}

fn send_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_no_request_of_a_client_that_never_retries() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys");
    generate_keys(&keys);
    let mut replicas: Vec<Server> = (0..3).map(|_| replica(&keys)).collect();
    let (_, tokens) = replicas[0]
        .public_flow(INTERNAL, "http://127.0.0.1:9/cb")
        .await;
    let token = Arc::new(access_token(&tokens).to_owned());
    let rotation = Arc::new(Mutex::new(
        replicas.iter().map(|s| s.addr).collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                w,
                token.clone(),
                rotation.clone(),
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();

    // Each replica in turn: a replacement joins, the old one gets SIGTERM
    // and leaves the rotation once it has exited.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let keys = keys.clone();
        let fresh = tokio::task::spawn_blocking(move || replica(&keys))
            .await
            .unwrap();
        rotation.lock().unwrap().push(fresh.addr);
        let mut old = replicas.remove(0);
        let term_at = Instant::now();
        send_sigterm(old.pid());
        let (old, status) = tokio::task::spawn_blocking(move || {
            let status = old.wait();
            (old, status)
        })
        .await
        .unwrap();
        assert!(status.success(), "clean exit: {status:?}");
        let took = term_at.elapsed();
        assert!(
            took >= DRAIN && took < DRAIN + Duration::from_secs(3),
            "exit {took:?} after SIGTERM"
        );
        rotation.lock().unwrap().retain(|a| *a != old.addr);
        replicas.push(fresh);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = tally.failures.lock().unwrap();
    let ok = tally.ok.load(Ordering::Relaxed);
    eprintln!(
        "rolling restart: {ok} answered, {} of them `Connection: close`, {} handed back unsent, {} failed, in {:?}",
        tally.told_to_close.load(Ordering::Relaxed),
        tally.unsent.load(Ordering::Relaxed),
        failures.len(),
        started.elapsed(),
    );
    assert!(failures.is_empty(), "lost requests: {failures:#?}");
    // Each connection in use was told to move by an answer, not closed
    // under its client.
    assert!(
        tally.told_to_close.load(Ordering::Relaxed) > 0,
        "no response said `Connection: close` during the drains"
    );
    assert!(ok > 1000, "the load ran: {ok}");
}
