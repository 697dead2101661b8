//! A local https server of client metadata documents: a test CA (rcgen)
//! signs a certificate for 127.0.0.1 and localhost; mcpgate trusts the CA
//! through `cimd.insecure_test_only_ca_file`. Each path answers what the
//! test set, and every request is counted, so a test can assert that no
//! fetch happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What a path answers.
#[derive(Clone)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Send the body as chunks over time instead (no Content-Length).
    pub drip: Option<Drip>,
}

/// A chunked body: `count` times `chunk`, one every `every`.
#[derive(Clone)]
pub struct Drip {
    pub chunk: Bytes,
    pub count: usize,
    pub every: Duration,
}

impl Route {
    pub fn json(v: &Value) -> Route {
        Route::raw(200, "application/json", serde_json::to_vec(v).unwrap())
    }

    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Route {
        Route {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            delay: Duration::ZERO,
            drip: None,
        }
    }

    /// A 200 `application/json` whose body is chunked: `count` times
    /// `chunk`, one every `every` (a body larger than any Content-Length
    /// check sees, or a document that never ends).
    pub fn chunked(chunk: &[u8], count: usize, every: Duration) -> Route {
        Route {
            drip: Some(Drip {
                chunk: Bytes::copy_from_slice(chunk),
                count,
                every,
            }),
            ..Route::raw(200, "application/json", Vec::new())
        }
    }

    pub fn redirect(to: &str) -> Route {
        Route {
            status: 302,
            headers: vec![("location".into(), to.into())],
            body: Vec::new(),
            delay: Duration::ZERO,
            drip: None,
        }
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
}

pub struct DocServer {
    pub addr: SocketAddr,
    /// The test CA, PEM.
    pub ca_file: PathBuf,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

impl DocServer {
    /// Starts on 127.0.0.1, a free port, in the current tokio runtime.
    pub async fn start() -> DocServer {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mcpgate test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let ca_file = dir.path().join("test-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let st = st.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        DocServer {
            addr,
            ca_file,
            state,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// `https://localhost:<port><path>`: the same server, by a name.
    pub fn url_by_name(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), route);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on every path.
    pub fn total_hits(&self) -> usize {
        self.state.lock().unwrap().hits.values().sum()
    }
}

type Body = http_body_util::Either<Full<Bytes>, http_body_util::channel::Channel<Bytes>>;

async fn answer(st: &Mutex<State>, req: http::Request<Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_owned();
    let route = {
        let mut s = st.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        s.routes.get(&path).cloned()
    };
    let Some(route) = route else {
        return http::Response::builder()
            .status(404)
            .body(Body::Left(Full::new(Bytes::from_static(b"not found"))))
            .unwrap();
    };
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let mut b = http::Response::builder().status(route.status);
    for (k, v) in &route.headers {
        b = b.header(k, v);
    }
    if let Some(drip) = route.drip {
        let (mut tx, body) = http_body_util::channel::Channel::new(1);
        tokio::spawn(async move {
            for _ in 0..drip.count {
                tokio::time::sleep(drip.every).await;
                // The client hung up: stop.
                if tx.send_data(drip.chunk.clone()).await.is_err() {
                    return;
                }
            }
        });
        return b.body(Body::Right(body)).unwrap();
    }
    b.body(Body::Left(Full::new(Bytes::from(route.body))))
        .unwrap()
}
