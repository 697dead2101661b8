//! What operators rely on, against the real binary: metrics, request ids,
//! no secret in any log line, limits under slow and oversized clients,
//! HTTP/2 cleartext, and a graceful shutdown that fails no request.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn start_with_extra_toml(server_section: &str) -> Server {
    Server::start(&format!("\n[server]\n{server_section}\n"))
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_refusals() {
    let s = start_with_extra_toml("metrics_listen = \"127.0.0.1:0\"");
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    assert_eq!(s.whoami(PUBLIC, access_token(&tokens)).await.0, 200);
    assert_eq!(s.whoami(PUBLIC, "not.a.token").await.0, 401);
    let metrics = s
        .http
        .get(format!("http://{}/metrics", s.metrics_addr.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "mcpgate_tokens_issued_total{client_kind=\"dynamic\",grant=\"authorization_code\"} 1",
        "mcpgate_http_requests_total{route=\"token\",status=\"200\"} 1",
        "mcpgate_http_requests_total{route=\"register\",status=\"201\"} 1",
        "mcpgate_token_validation_failures_total{reason=\"malformed\"} 1",
        "mcpgate_key_ring_generation 1",
        "mcpgate_http_request_duration_seconds_bucket{route=\"mcp\"",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    // /metrics is not on the service port.
    let r = s.get(PUBLIC, "/metrics").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = Server::start("");
    let r = s
        .get(PUBLIC, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap();
    let first = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = s
        .get(PUBLIC, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap();
    let second = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // `<8 characters per process><14 hex digits of a counter>`.
    for id in [&first, &second] {
        assert_eq!(id.len(), 22, "{id}");
        assert!(id[8..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    assert_eq!(first[..8], second[..8]);
    assert_ne!(first, second);
    let r = s
        .get(PUBLIC, "/.well-known/jwks.json")
        .header("x-request-id", "lb-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "lb-abc-123");
    // Not sane (a space; too long): replaced, not echoed.
    for insane in ["lb abc", &"x".repeat(65)] {
        let r = s
            .get(PUBLIC, "/.well-known/jwks.json")
            .header("x-request-id", insane)
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert_eq!((id.len(), &id[..8]), (22, &first[..8]), "{insane}");
    }
}

#[tokio::test]
async fn the_access_log_is_plain_text_with_the_request_id() {
    let s = Server::start("\n[log]\naccess = true\n");
    let r = s
        .get(
            INTERNAL,
            "/.well-known/oauth-authorization-server?state=q-secret",
        )
        .header("x-request-id", "lb-log-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = s.log_containing("lb-log-123").await;
    let line = log.lines().find(|l| l.contains("lb-log-123")).unwrap();
    for expected in [
        "mcpgate::access",
        "method=GET",
        "path=/.well-known/oauth-authorization-server ",
        "status=200",
    ] {
        assert!(line.contains(expected), "{expected:?} not in {line:?}");
    }
    assert!(!line.contains("q-secret"), "the query is logged: {line:?}");
    // A file is not a terminal: no colour codes in it.
    assert!(!line.contains('\x1b'), "ANSI escapes in {line:?}");
}

#[tokio::test]
async fn by_default_refusals_are_logged_and_requests_are_not() {
    let s = Server::start("");
    let r = s
        .get(INTERNAL, "/.well-known/oauth-authorization-server")
        .header("x-request-id", "lb-quiet-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = s.whoami(INTERNAL, "not.a.token").await;
    assert_eq!(status, 401);
    let log = s.log_containing("mcp request refused").await;
    assert!(
        !log.contains("mcpgate::access"),
        "access lines by default:\n{log}"
    );
    assert!(
        !log.contains("lb-quiet-1"),
        "the discovery request is logged:\n{log}"
    );
}

/// The README promises every refusal in the log at `info`: each OAuth
/// endpoint's carries the endpoint, the RFC error code and the
/// description, with client text kept to RFC 6749's characters (no line
/// break can forge a log line).
#[tokio::test]
async fn every_oauth_refusal_is_logged_with_its_error_code() {
    let s = Server::start("");
    let (status, _) = s
        .register(
            INTERNAL,
            json!({"redirect_uris": ["https://evil.example/cb\ninjected line"]}),
        )
        .await;
    assert_eq!(status, 400);
    let r = s
        .get(
            INTERNAL,
            "/oauth/authorize?response_type=code&client_id=nobody",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, _, _) = s
        .token(
            PUBLIC,
            &[("grant_type", "authorization_code"), ("code", "x")],
            Some((GEMINI_ID, "wrong-secret-value-456")),
        )
        .await;
    assert_eq!(status, 401);
    let log = s.log_containing("endpoint=\"token\"").await;
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("oauth request refused"))
        .collect();
    let line_for = |endpoint: &str| {
        refusals
            .iter()
            .find(|l| l.contains(&format!("endpoint=\"{endpoint}\"")))
            .unwrap_or_else(|| panic!("no {endpoint} refusal in:\n{log}"))
            .to_string()
    };
    let register = line_for("register");
    assert!(
        register.contains("error=\"invalid_redirect_uri\""),
        "{register}"
    );
    assert!(
        register.contains("evil.example/cb?injected line"),
        "{register}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("injected line")),
        "{log}"
    );
    let authorize = line_for("authorize");
    assert!(
        authorize.contains("error=\"invalid_client\""),
        "{authorize}"
    );
    let token = line_for("token");
    assert!(token.contains("error=\"invalid_client\""), "{token}");
    assert!(!log.contains("wrong-secret-value-456"), "{log}");
}

#[tokio::test]
async fn no_secret_reaches_the_log() {
    // With the access log on: its lines must not carry secrets either.
    let s = Server::start("\n[log]\naccess = true\n");
    let (client_id, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, _, refreshed) = s
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
    let code = s
        .code_for(INTERNAL, &client_id, "http://127.0.0.1:9/cb")
        .await;
    // A failed exchange too: errors must not echo what was sent.
    let (status, _, _) = s
        .token(
            INTERNAL,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                (
                    "code_verifier",
                    "wrong-verifier-wrong-verifier-wrong-verifier-x",
                ),
            ],
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = s
        .token(
            PUBLIC,
            &[("grant_type", "authorization_code"), ("code", &code)],
            Some((GEMINI_ID, GEMINI_SECRET)),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = s
        .token(
            PUBLIC,
            &[("grant_type", "authorization_code"), ("code", "x")],
            Some((GEMINI_ID, "wrong-secret-value-123")),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(s.whoami(INTERNAL, access_token(&tokens)).await.0, 200);
    assert_eq!(
        s.whoami(INTERNAL, &format!("{}x", access_token(&tokens)))
            .await
            .0,
        401
    );
    // The last request's access line: everything before it is in too.
    let log = s.log_containing("route=\"mcp\" status=401").await;
    assert!(
        log.contains("access token issued"),
        "the log is being written"
    );
    let secrets = [
        access_token(&tokens).to_owned(),
        rt.clone(),
        refreshed["access_token"].as_str().unwrap().to_owned(),
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
        code.clone(),
        VERIFIER.to_owned(),
        "wrong-verifier-wrong-verifier-wrong-verifier-x".to_owned(),
        GEMINI_SECRET.to_owned(),
        "wrong-secret-value-123".to_owned(),
    ];
    for secret in &secrets {
        // Any 24-character piece of a secret would already be a leak.
        let piece = &secret[secret.len().saturating_sub(24)..];
        assert!(
            !log.contains(piece),
            "a secret ({}…) is in the log",
            &secret[..8]
        );
    }
}

#[tokio::test]
async fn oversized_headers_get_431_and_the_server_stays_up() {
    let s = Server::start("");
    let r = s
        .get(PUBLIC, "/.well-known/jwks.json")
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let r = s
        .get(PUBLIC, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn cleartext_http2_is_served_alongside_http1() {
    let s = Server::start("");
    // `:authority` names the host (a `host` header that differs from it is
    // malformed: RFC 9113 §8.3.1).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve(PUBLIC, s.addr)
        .build()
        .unwrap();
    let r = h2
        .get(format!(
            "http://{PUBLIC}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let m: serde_json::Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], format!("https://{PUBLIC}"));
}

/// The server tells HTTP/1.1 from h2c by peeking at the first bytes; a first
/// packet that is only the start of either must not be misread.
#[test]
fn a_preface_or_request_head_split_across_packets_is_still_recognised() {
    let s = Server::start("");
    // h2c whose preface arrives in two packets: answered with HTTP/2 frames
    // (the server's SETTINGS first), not with an HTTP/1.1 error.
    let mut c = in_two_packets(s.addr, "PRI * HTTP/2.0\r\n", "\r\nSM\r\n\r\n");
    // An empty SETTINGS frame.
    c.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let mut frame = [0u8; 9];
    c.read_exact(&mut frame).unwrap();
    assert_eq!(frame[3], 4, "expected a SETTINGS frame, got {frame:?}");
    // HTTP/1.1 whose first packet is one byte of the request.
    let mut c = in_two_packets(
        s.addr,
        "G",
        &format!(
            "ET /.well-known/jwks.json HTTP/1.1\r\nHost: {PUBLIC}\r\nConnection: close\r\n\r\n"
        ),
    );
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // The same, where that byte ("P") could still be the h2c preface.
    let mut c = in_two_packets(
        s.addr,
        "P",
        &format!(
            "OST /mcp HTTP/1.1\r\nHost: {PUBLIC}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
}

/// A raw connection to `addr` (reads time out after 5 s).
fn raw_connection(addr: std::net::SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// A raw connection that sends `first`, pauses so that it leaves as a
/// packet of its own, then sends `rest`.
fn in_two_packets(addr: std::net::SocketAddr, first: &str, rest: &str) -> TcpStream {
    let mut c = raw_connection(addr);
    c.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(rest.as_bytes()).unwrap();
    c
}

#[test]
fn a_connection_that_never_sends_a_byte_is_closed_by_the_header_timeout() {
    let s = start_with_extra_toml("header_read_timeout = \"1s\"");
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

/// `P` could be the start of the h2c preface or of `POST`: the server
/// waits for more, but no longer than it waits for a silent connection.
#[test]
fn a_connection_that_sends_only_the_start_of_the_h2c_preface_is_closed_by_the_header_timeout() {
    let s = start_with_extra_toml("header_read_timeout = \"1s\"");
    for start in ["P", "PRI * HTTP/2.0\r\n"] {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(start.as_bytes()).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        // The server closes with the byte unread: a reset, or an EOF.
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{start:?}: expected the connection closed, got {other:?}"),
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{start:?}: closed after {waited:?}"
        );
    }
}

#[tokio::test]
async fn connections_stuck_in_the_h2c_preface_do_not_lock_out_new_ones() {
    let s = start_with_extra_toml("max_connections = 4\nheader_read_timeout = \"1s\"");
    let stuck: Vec<TcpStream> = ["P", "PRI", "PRI * HTTP/2.0\r\n", "PRI * HTTP/2.0\r\n\r\nSM"]
        .into_iter()
        .map(|start| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(start.as_bytes()).unwrap();
            c
        })
        .collect();
    // Let the server take all four slots.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = client()
        .get(s.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("served once the stuck connections are closed");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    drop(stuck);
}

/// hyper's header timer also runs while an HTTP/1.1 keep-alive connection
/// waits for its next request: the behaviour h2c is held to below.
#[test]
fn an_idle_http1_keep_alive_connection_is_closed_by_the_header_timeout() {
    let s = start_with_extra_toml("header_read_timeout = \"1s\"");
    let mut c = raw_connection(s.addr);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut c).starts_with("HTTP/1.1 200 "));
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).expect("closed before the read timeout");
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.contains("408"), "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
}

/// One HTTP/2 frame off a raw connection: `None` once the server closed.
fn read_h2_frame(c: &mut TcpStream) -> Option<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    match c.read_exact(&mut head) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return None
        }
        Err(e) => panic!("the connection is still open: {e}"),
    }
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    c.read_exact(&mut payload).ok()?;
    Some((head[3], head[4], payload))
}

/// An h2c client that sends the preface and SETTINGS and then opens no
/// stream is sent GOAWAY after the header timeout, and closed: at once if
/// it answers the GOAWAY's PING, one more period later if it answers
/// nothing.
#[test]
fn an_h2c_connection_that_opens_no_stream_is_closed_after_the_header_timeout() {
    const SETTINGS: u8 = 4;
    const PING: u8 = 6;
    const GOAWAY: u8 = 7;
    const ACK: u8 = 1;
    let s = start_with_extra_toml("header_read_timeout = \"1s\"");
    for answers in [true, false] {
        let mut c = raw_connection(s.addr);
        c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        c.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]).unwrap();
        let started = Instant::now();
        let mut goaway = None;
        while let Some((kind, flags, payload)) = read_h2_frame(&mut c) {
            match kind {
                GOAWAY => {
                    goaway.get_or_insert(started.elapsed());
                    // NO_ERROR: a graceful close.
                    assert_eq!(payload[4..8], [0, 0, 0, 0], "{payload:?}");
                }
                SETTINGS if answers && flags & ACK == 0 => {
                    c.write_all(&[0, 0, 0, SETTINGS, ACK, 0, 0, 0, 0]).unwrap();
                }
                PING if answers && flags & ACK == 0 => {
                    c.write_all(&[0, 0, 8, PING, ACK, 0, 0, 0, 0]).unwrap();
                    c.write_all(&payload).unwrap();
                }
                _ => {}
            }
        }
        let closed = started.elapsed();
        let goaway = goaway.expect("GOAWAY before the close");
        assert!(
            goaway >= Duration::from_millis(900) && goaway < Duration::from_millis(1500),
            "answers: {answers}: GOAWAY after {goaway:?}"
        );
        let by = if answers { 1500 } else { 2500 };
        assert!(
            closed < Duration::from_millis(by),
            "answers: {answers}: closed after {closed:?}"
        );
    }
}

/// One h2c connection with prior knowledge, driven by hyper's client; the
/// task ends when the server closes the connection.
async fn h2c_connection(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<
        http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>,
    >,
    tokio::task::JoinHandle<()>,
) {
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    (
        sender,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

/// A connection that keeps making requests, or whose one request runs
/// longer than the timeout, stays open and loses none; once idle it is
/// closed.
#[tokio::test]
async fn an_h2c_connection_in_use_stays_open_and_is_closed_once_idle() {
    use http_body_util::BodyExt as _;
    let s = start_with_extra_toml("header_read_timeout = \"1s\"");
    let (mut h2, conn) = h2c_connection(s.addr).await;
    let get = |path: &str| {
        http::Request::get(format!("http://{PUBLIC}{path}"))
            .body(http_body_util::Empty::new().boxed())
            .unwrap()
    };
    // Requests 400 ms apart for 2.4 s, over two idle periods.
    for _ in 0..6 {
        let r = h2.send_request(get("/healthz")).await.expect("served");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // A request whose body takes 2.5 s to arrive: in flight through two
    // periods with no other request.
    let (mut body, rx) = http_body_util::channel::Channel::<bytes::Bytes>::new(1);
    let form = "grant_type=authorization_code&code=nope&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_verifier=nope&client_id=nope";
    let request = http::Request::post(format!("http://{PUBLIC}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", form.len())
        .body(rx.boxed())
        .unwrap();
    let started = Instant::now();
    let response = tokio::spawn(h2.send_request(request));
    for chunk in form.as_bytes().chunks(form.len().div_ceil(5)) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        body.send_data(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    drop(body);
    let r = response.await.unwrap().expect("answered");
    assert!(started.elapsed() >= Duration::from_millis(2400));
    // The unknown client_id is in the last chunk: the answer came after the
    // whole body, not a cut stream.
    assert_eq!(r.status(), 401);
    let answer = r.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&answer).contains("invalid_client"),
        "{answer:?}"
    );
    assert!(!conn.is_finished(), "still open");
    let r = h2.send_request(get("/healthz")).await.expect("served");
    assert_eq!(r.status(), 200);
    // Idle now: closed within two periods.
    let idle = Instant::now();
    tokio::time::timeout(Duration::from_secs(4), conn)
        .await
        .expect("closed once idle")
        .unwrap();
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "closed after {:?} idle",
        idle.elapsed()
    );
}

#[test]
fn sigterm_does_not_wait_for_connections_that_never_sent_a_byte() {
    let mut s = start_with_extra_toml(
        "drain_delay = \"100ms\"\nshutdown_grace = \"60s\"\nheader_read_timeout = \"60s\"",
    );
    let silent = TcpStream::connect(s.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(send_sigterm(s.pid()), 0);
    let status = s.wait();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exit took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_do_not_starve_real_flows() {
    let s = start_with_extra_toml("header_read_timeout = \"2s\"");
    // 300 connections that each send half a request head and then dribble.
    let addr = s.addr;
    let slow = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..300 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: mcp.example.com\r\n")
                .unwrap();
            conns.push(c);
        }
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(400));
            for c in &mut conns {
                let _ = c.write_all(b"X-Slow: 1\r\n");
            }
        }
        conns
    });
    let started = Instant::now();
    for _ in 0..10 {
        let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
        assert_eq!(s.whoami(PUBLIC, access_token(&tokens)).await.0, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "real flows were slowed down"
    );
    let mut conns = slow.join().unwrap();
    // The header timeout closes them: reading gets EOF or a 408.
    std::thread::sleep(Duration::from_millis(1500));
    let mut closed = 0;
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 256];
        match c.read(&mut buf) {
            Ok(0) => closed += 1,
            Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("408") => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert_eq!(
        closed,
        conns.len(),
        "every slow connection is closed by the header timeout"
    );
}

/// Reads one HTTP/1.1 response (head and Content-Length body) off `c`.
fn read_response(c: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).expect("a response, not a reset");
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[test]
fn a_refused_mcp_request_whose_body_comes_late_still_gets_its_answer_and_keeps_the_connection() {
    let s = Server::start("");
    let mut c = raw_connection(s.addr);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    for round in 0..3 {
        // The head alone, then the body once the server has surely seen it.
        write!(
            c,
            "POST /mcp HTTP/1.1\r\nhost: {INTERNAL}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        c.write_all(body.as_bytes()).unwrap();
        let answer = read_response(&mut c);
        assert!(
            answer.starts_with("HTTP/1.1 401 "),
            "round {round}: {answer}"
        );
        assert!(answer
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"));
    }
}

#[test]
fn a_body_that_never_finishes_is_answered_408_after_the_body_timeout() {
    let s = start_with_extra_toml("body_read_timeout = \"1s\"");
    for (path, content_type) in [
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/oauth/register", "application/json"),
    ] {
        let mut c = raw_connection(s.addr);
        write!(
            c,
            "POST {path} HTTP/1.1\r\nhost: {INTERNAL}\r\ncontent-type: {content_type}\r\n\
             content-length: 100\r\n\r\ngrant_type="
        )
        .unwrap();
        let started = Instant::now();
        let answer = read_response(&mut c);
        let waited = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{path}: {answer}");
        assert!(answer.contains("\"invalid_request\""), "{path}: {answer}");
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{path}: answered after {waited:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_request_that_started_before_the_drain_ended() {
    let mut s = start_with_extra_toml("drain_delay = \"1s\"\nshutdown_grace = \"5s\"");
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let token = access_token(&tokens).to_owned();
    let url = s.url("/mcp");
    let stop = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (url, token, stop) = (url.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            // Keep-alive connections, like a load balancer's.
            let http = client();
            let mut ok = 0usize;
            let mut failed_in_drain = Vec::new();
            for i in 0..2000 {
                if stop.load(Ordering::Relaxed) == 1 {
                    break;
                }
                let sent = Instant::now();
                let r = http
                    .post(&url)
                    .header("host", PUBLIC)
                    .bearer_auth(&token)
                    .json(&json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"whoami"}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok += 1,
                    other => failed_in_drain.push((sent, format!("{w}/{i}: {other:?}"))),
                }
            }
            (ok, failed_in_drain)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term_at = Instant::now();
    assert_eq!(send_sigterm(s.pid()), 0);
    // /readyz fails at once, while the listener still accepts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(1, Ordering::Relaxed);
    let drain_end = term_at + Duration::from_secs(1);
    let mut total_ok = 0;
    for w in workers {
        let (ok, failures) = w.await.unwrap();
        total_ok += ok;
        // During the drain every answer says `Connection: close`, so each
        // request goes on a new connection; at the drain's end the server
        // closes the listener and the connections whose request it has not
        // read yet, and a request already on its way over one is lost: a
        // client cannot know a connection is being closed (RFC 9112
        // §9.3.1). `sent` is read before the client library even writes,
        // and on 2 loaded CPUs the write can come milliseconds later, so
        // the last 50 ms before the drain's end are that race, not a
        // failure to drain. (Seen: 1 run in ~10, one request, sent 0.3 ms
        // before the end.)
        let early: Vec<_> = failures
            .iter()
            .filter(|(sent, _)| *sent + Duration::from_millis(50) < drain_end)
            .map(|(sent, f)| (drain_end.saturating_duration_since(*sent), f))
            .collect();
        assert!(
            early.is_empty(),
            "requests sent this long before the drain ended failed: {early:?}"
        );
    }
    assert!(total_ok > 100, "load ran: {total_ok}");
    let status = s.wait();
    assert!(status.success(), "clean exit: {status:?}");
}

/// From SIGTERM on, every connection is told to go away, and no request
/// that reaches one is lost: an HTTP/1.1 connection idle when the drain
/// starts stays open and its next answer says `Connection: close` (RFC
/// 9112 §9.6), as does the answer on one opened during the drain; an h2c
/// connection gets GOAWAY (RFC 9113 §6.8) and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_drain_each_connection_is_told_to_go_away_by_its_next_answer() {
    let mut s = start_with_extra_toml("drain_delay = \"2s\"\nshutdown_grace = \"5s\"");
    let addr = s.addr;
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {PUBLIC}\r\n\r\n");
    let says_close = |r: &str| r.to_ascii_lowercase().contains("\r\nconnection: close\r\n");
    let mut idle = raw_connection(addr);
    idle.write_all(req.as_bytes()).unwrap();
    let before = read_response(&mut idle);
    assert!(!says_close(&before), "{before}");
    let (_h2, h2_conn) = h2c_connection(addr).await;

    assert_eq!(send_sigterm(s.pid()), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(1), h2_conn)
        .await
        .expect("GOAWAY ends an h2c connection with no stream open")
        .unwrap();
    tokio::task::spawn_blocking(move || {
        for (which, mut c) in [
            ("idle since before", idle),
            ("opened during", raw_connection(addr)),
        ] {
            c.write_all(req.as_bytes()).unwrap();
            let answer = read_response(&mut c);
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "{which} the drain: {answer}"
            );
            assert!(says_close(&answer), "{which} the drain: {answer}");
            let mut rest = [0u8; 64];
            assert_eq!(
                c.read(&mut rest).unwrap(),
                0,
                "{which} the drain: closed after"
            );
        }
    })
    .await
    .unwrap();
    let status = s.wait();
    assert!(status.success(), "clean exit: {status:?}");
}

fn send_sigterm(pid: u32) -> i32 {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.code().unwrap_or(1))
        .unwrap_or(1)
}
