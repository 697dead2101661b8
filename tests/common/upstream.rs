//! A small MCP server (Streamable HTTP) on a loopback port, for the
//! proxy's tests and benchmark: it answers `tools/list` and `tools/call`
//! and records what reached it, and some paths misbehave on purpose.
//!
//! | path | behaviour |
//! |---|---|
//! | `/mcp` | JSON answers |
//! | `/sse` | SSE answers: a progress notification, then the result |
//! | `/slow` | answers after 3 s |
//! | `/unauthorized` | 401 with its own `WWW-Authenticate` |
//! | `/reset` | one SSE event, then the connection breaks |
//! | `/big` | a 50 MB SSE stream |
//! | `/hang` | one SSE event, then pings until the reader leaves |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::BodyExt as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

/// Size of `/big`'s stream.
pub const BIG_BYTES: usize = 50 * 1024 * 1024;

/// A request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub version: http::Version,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
pub struct Record {
    pub seen: Mutex<Vec<Seen>>,
    /// `/hang` streams whose reader went away.
    pub cancelled: AtomicUsize,
}

pub struct TestUpstream {
    pub addr: SocketAddr,
    pub record: Arc<Record>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Record::default());
        let r = record.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let r = r.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(r.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestUpstream { addr, record }
    }

    /// The same server over TLS (HTTP/1.1 or h2, by ALPN), with the
    /// certificate tests/fixtures/tls/ca.pem signs for 127.0.0.1.
    pub async fn start_tls() -> TestUpstream {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
        let certs = vec![CertificateDer::from_pem_file(format!("{dir}/upstream.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(format!("{dir}/upstream.key")).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Record::default());
        let r = record.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (r, acceptor) = (r.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req| answer(r.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TestUpstream { addr, record }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// What reached `path`, in order.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.record.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

type Body = Channel<Bytes, std::io::Error>;

fn respond(status: u16, content_type: &str, body: Body) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("mcp-session-id", "upstream-session-1")
        .body(body)
        .unwrap()
}

/// A body that sends `chunks` and ends.
fn whole(chunks: Vec<Bytes>) -> Body {
    let (mut tx, body) = Channel::new(4);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send_data(c).await.is_err() {
                return;
            }
        }
    });
    body
}

fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {v}\n\n"))
}

const TOOLS: [&str; 3] = ["echo", "admin_reset", "danger_drop"];

/// The JSON-RPC answer to one message, if it is a request.
fn result_for(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let result = match msg["method"].as_str() {
        Some("tools/list") => json!({ "tools": TOOLS.iter().map(|t| json!({
            "name": t, "description": format!("the {t} tool"),
            "inputSchema": {"type": "object"} })).collect::<Vec<_>>() }),
        Some("tools/call") => {
            json!({ "content": [{"type": "text", "text": format!("called {}", msg["params"]["name"].as_str().unwrap_or(""))}] })
        }
        _ => json!({}),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn answer(
    record: Arc<Record>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    record.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        version: parts.version,
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    if parts.method == http::Method::DELETE {
        return Ok(respond(200, "application/json", whole(vec![])));
    }
    if parts.method == http::Method::GET && !matches!(path.as_str(), "/big" | "/hang" | "/reset") {
        return Ok(respond(405, "text/plain", whole(vec![])));
    }
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(match path.as_str() {
        "/mcp" => match &msg {
            Value::Array(batch) => {
                let answers: Vec<Value> = batch.iter().filter_map(result_for).collect();
                respond(200, "application/json", whole(vec![Bytes::from(Value::Array(answers).to_string())]))
            }
            m => match result_for(m) {
                Some(r) => respond(200, "application/json", whole(vec![Bytes::from(r.to_string())])),
                None => respond(202, "application/json", whole(vec![])),
            },
        },
        "/sse" => match result_for(&msg) {
            Some(r) => {
                let progress = json!({"jsonrpc":"2.0","method":"notifications/progress",
                    "params":{"progressToken":1,"progress":1,"total":2}});
                respond(200, "text/event-stream", whole(vec![sse_event(&progress), sse_event(&r)]))
            }
            None => respond(202, "application/json", whole(vec![])),
        },
        // A JSON answer labelled as something else.
        "/plain" => match result_for(&msg) {
            Some(r) => respond(200, "text/plain", whole(vec![Bytes::from(r.to_string())])),
            None => respond(202, "application/json", whole(vec![])),
        },
        // SSE with lone CRs as line ends (WHATWG HTML §9.2.5), each event
        // cut across chunks, the last one left unended.
        "/cr" => match result_for(&msg) {
            Some(r) => {
                let text = format!("event: message\rdata: {{}}\r\rid: 2\rdata: {r}\r\rdata: {r}");
                let chunks = text.as_bytes().chunks(7).map(Bytes::copy_from_slice).collect();
                respond(200, "text/event-stream", whole(chunks))
            }
            None => respond(202, "application/json", whole(vec![])),
        },
        // A head in time, then a body of known length that stalls.
        "/stall" => {
            let (mut tx, body) = Channel::new(1);
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from_static(b"{\"jsonrpc\"")).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = tx.send_data(Bytes::from_static(b":\"2.0\"}")).await;
            });
            let mut r = respond(200, "application/json", body);
            r.headers_mut().insert("content-length", http::HeaderValue::from_static("17"));
            r
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let r = result_for(&msg).unwrap_or(Value::Null);
            respond(200, "application/json", whole(vec![Bytes::from(r.to_string())]))
        }
        "/unauthorized" => http::Response::builder()
            .status(401)
            .header("www-authenticate", "Bearer resource_metadata=\"http://upstream.invalid/.well-known/oauth-protected-resource\"")
            .body(whole(vec![]))
            .unwrap(),
        "/reset" => {
            let (mut tx, body) = Channel::new(1);
            tokio::spawn(async move {
                let _ = tx.send_data(sse_event(&json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}))).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                tx.abort(std::io::Error::other("reset on purpose"));
            });
            respond(200, "text/event-stream", body)
        }
        "/big" => {
            let (mut tx, body) = Channel::new(2);
            tokio::spawn(async move { send_big(&mut tx).await });
            respond(200, "text/event-stream", body)
        }
        "/hang" => {
            let (mut tx, body) = Channel::new(1);
            let record = record.clone();
            tokio::spawn(async move {
                let _ = tx.send_data(sse_event(&json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}))).await;
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if tx.send_data(Bytes::from_static(b": ping\n\n")).await.is_err() {
                        record.cancelled.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            });
            respond(200, "text/event-stream", body)
        }
        _ => respond(404, "text/plain", whole(vec![])),
    })
}

async fn send_big(tx: &mut Sender<Bytes, std::io::Error>) {
    let data = "x".repeat(64 * 1024 - 20);
    let event = Bytes::from(format!("data: \"{data}\"\n\n"));
    let mut sent = 0;
    while sent < BIG_BYTES {
        if tx.send_data(event.clone()).await.is_err() {
            return;
        }
        sent += event.len();
    }
}
