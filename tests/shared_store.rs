//! Single use across replicas with a shared Redis (`[store] url`): three
//! real replicas on one keys directory, behind a round-robin TCP proxy,
//! sharing one real `redis-server` (Debian's package; `.ci/run` installs
//! it) on a loopback port with a temporary directory.
//!
//! - one code redeemed 20 times at once across replicas: one success;
//! - a refresh token reused after the grace window on another replica:
//!   the family is revoked on every replica;
//! - parallel refreshes of one token within the grace window: all succeed
//!   and the family lives on;
//! - Redis killed under a load of `/mcp` calls and token requests: no
//!   `/mcp` call fails, token requests answer 503 while it is down (one
//!   log line per replica, however many requests), and succeed again once
//!   it is back, with no restart;
//! - a replica started while Redis is down serves `/mcp` and recovers;
//! - a consent form answered on one replica is refused on another;
//! - `rediss://` with a private CA (`store.ca_file`), and a store whose
//!   certificate that CA did not sign refused;
//! - requests refused while the store hung take no effect when it resumes;
//! - a Redis Cluster of three primaries (`store.cluster`).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{Redis, RedisCluster};
use common::*;
use serde_json::{json, Value};

/// Three replicas on one keys directory sharing `redis`, and the proxy.
struct Cluster {
    replicas: Vec<Server>,
    front: RoundRobin,
    /// One connection per request, so that requests are spread.
    http: reqwest::Client,
    _keys: tempfile::TempDir,
}

const STORE_TIMEOUT: &str = "300ms";

fn replica_config(keys: &Path, store_url: &str, grace: &str) -> String {
    config(
        keys,
        &format!(
            "\n[tokens]\nrefresh_grace = \"{grace}\"\n\n[server]\nmetrics_listen = \"127.0.0.1:0\"\n\n\
             [store]\nurl = \"{store_url}\"\nkey_prefix = \"test:\"\ntimeout = \"{STORE_TIMEOUT}\"\n"
        ),
    )
}

impl Cluster {
    async fn start(store_url: &str, grace: &str) -> Cluster {
        let keys = tempfile::tempdir().unwrap();
        generate_keys(keys.path());
        let replicas: Vec<Server> = (0..3)
            .map(|_| Server::start_on_keys(keys.path(), |k| replica_config(k, store_url, grace)))
            .collect();
        let front = round_robin(replicas.iter().map(|r| r.addr).collect()).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Cluster {
            replicas,
            front,
            http,
            _keys: keys,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.front.addr)
    }

    /// A public client's code, through the proxy.
    async fn code(&self, client_id: &str) -> String {
        let c = challenge(VERIFIER);
        let r = self
            .http
            .get(self.url("/oauth/authorize"))
            .header("host", INTERNAL)
            .header("x-forwarded-email", ALICE)
            .query(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", LOOPBACK),
                ("code_challenge", &c),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        query_param(&location(&r), "code").unwrap()
    }

    /// `POST /oauth/token` through the proxy.
    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        token_at(&self.http, &self.url("/oauth/token"), form).await
    }

    /// A registered client and its first tokens.
    async fn signed_in(&self) -> (String, Value) {
        let client_id = self.replicas[0]
            .register_client(INTERNAL, &[LOOPBACK])
            .await;
        let code = self.code(&client_id).await;
        let (status, tokens) = self.token(&exchange_form(&client_id, &code)).await;
        assert_eq!(status, 200, "{tokens}");
        (client_id, tokens)
    }
}

const LOOPBACK: &str = "http://127.0.0.1:7777/callback";

fn exchange_form<'a>(client_id: &'a str, code: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", LOOPBACK),
        ("code_verifier", VERIFIER),
    ]
}

fn refresh_form<'a>(client_id: &'a str, refresh_token: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ]
}

async fn token_at(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http
        .post(url)
        .header("host", INTERNAL)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `POST /oauth/token` on one replica.
async fn token_on(s: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    token_at(&s.http, &s.url("/oauth/token"), form).await
}

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("a refresh token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_redeemed_twenty_times_at_once_across_replicas_succeeds_once() {
    let redis = Redis::start();
    let cluster = Arc::new(Cluster::start(&redis.url(), "60s").await);
    let client_id = cluster.replicas[0]
        .register_client(INTERNAL, &[LOOPBACK])
        .await;
    for round in 0..3 {
        let code = cluster.code(&client_id).await;
        let answers = all_at_once((0..20).map(|_| {
            let (cluster, client_id, code) = (cluster.clone(), client_id.clone(), code.clone());
            async move { cluster.token(&exchange_form(&client_id, &code)).await }
        }))
        .await;
        let ok = answers.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(ok, 1, "round {round}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 400, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
            assert_eq!(body["error_description"], "the code was already used");
        }
    }
    // The same flow against replicas with the per-replica store would let
    // one redemption per replica through; here every replica refused.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_reused_after_grace_on_another_replica_revokes_the_family_everywhere() {
    let redis = Redis::start();
    let cluster = Cluster::start(&redis.url(), "1s").await;
    let (client_id, first) = cluster.signed_in().await;
    let [a, b, c] = &cluster.replicas[..] else {
        unreachable!()
    };
    let (status, second) = token_on(a, &refresh_form(&client_id, refresh_token(&first))).await;
    assert_eq!(status, 200, "{second}");
    // Past the grace window, the replaced token is presented to another
    // replica: reuse (RFC 9700 §4.14.2).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = token_on(b, &refresh_form(&client_id, refresh_token(&first))).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    // The newest token of the family is dead on every replica.
    for s in [c, a, b] {
        let (status, body) = token_on(s, &refresh_form(&client_id, refresh_token(&second))).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{body}"
        );
    }
    // Another family is untouched.
    let (other_client, other) = cluster.signed_in().await;
    let (status, body) = token_on(c, &refresh_form(&other_client, refresh_token(&other))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_within_grace_all_succeed_and_the_family_lives_on() {
    let redis = Redis::start();
    let cluster = Arc::new(Cluster::start(&redis.url(), "60s").await);
    let (client_id, first) = cluster.signed_in().await;
    let presented = refresh_token(&first).to_owned();
    let answers = all_at_once((0..12).map(|_| {
        let (cluster, client_id, presented) =
            (cluster.clone(), client_id.clone(), presented.clone());
        async move { cluster.token(&refresh_form(&client_id, &presented)).await }
    }))
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    // Any of the new tokens rotates on, on any replica, and so does the
    // next.
    let mut current = answers[7].1.clone();
    for s in &cluster.replicas {
        let (status, next) = token_on(s, &refresh_form(&client_id, refresh_token(&current))).await;
        assert_eq!(status, 200, "{next}");
        current = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_mcp_keeps_serving_and_tokens_fail_closed_then_recover() {
    let mut redis = Redis::start();
    let cluster = Arc::new(Cluster::start(&redis.url(), "60s").await);
    let (client_id, tokens) = cluster.signed_in().await;
    let access = access_token(&tokens).to_owned();

    // The load: /mcp calls through the proxy on keep-alive connections,
    // until told to stop (bounded: at most 20,000 calls).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mcp_ok, mcp_failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), mcp_ok.clone(), mcp_failed.clone());
            let (url, access) = (cluster.url("/mcp"), access.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().no_proxy().build().unwrap();
                for i in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = http
                        .post(&url)
                        .header("host", INTERNAL)
                        .header("accept", "application/json, text/event-stream")
                        .bearer_auth(&access)
                        .json(&json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"whoami","arguments":{}}}))
                        .send()
                        .await;
                    let good = match r {
                        Ok(r) if r.status() == 200 => r
                            .json::<Value>()
                            .await
                            .is_ok_and(|b| b["result"]["isError"] != json!(true)),
                        _ => false,
                    };
                    let counter = if good { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();

    // Token requests work, then Redis dies.
    let (status, mut current) = cluster
        .token(&refresh_form(&client_id, refresh_token(&tokens)))
        .await;
    assert_eq!(status, 200, "{current}");
    // A code issued now is redeemed only after the outage: the failed
    // attempts must not burn it.
    let code = cluster.code(&client_id).await;
    redis.kill();
    let served_before_outage = mcp_ok.load(Ordering::Relaxed);

    let mut refused = 0;
    for _ in 0..6 {
        let started = Instant::now();
        let (status, body) = cluster
            .token(&refresh_form(&client_id, refresh_token(&current)))
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        // Fails within the store timeout, with room for a loaded machine.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let (status, body) = cluster.token(&exchange_form(&client_id, &code)).await;
        assert_eq!(
            (status, &body["error"]),
            (503, &json!("temporarily_unavailable")),
            "{body}"
        );
        refused += 2;
    }
    // Every replica is still ready and says why token requests fail.
    for s in &cluster.replicas {
        let r = s.get(INTERNAL, "/readyz").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(
            body.starts_with("ready\nstore: shared (redis) UNREACHABLE"),
            "{body}"
        );
        assert!(body.contains("UNREACHABLE"), "{body}");
        let m = s
            .http
            .get(format!("http://{}/metrics", s.metrics_addr.unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("mcpgate_store_up 0"), "{m}");
        assert!(m.contains("mcpgate_store_outages_total 1"), "{m}");
        assert!(m.contains("mcpgate_store_errors_total{"), "{m}");
    }

    let served_during_outage = mcp_ok.load(Ordering::Relaxed) - served_before_outage;
    redis.restart();
    // Recovery needs no restart of mcpgate: token requests succeed again
    // once the connection is remade (at the next request or ping).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = cluster
            .token(&refresh_form(&client_id, refresh_token(&current)))
            .await;
        if status == 200 {
            current = body;
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "token requests never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = current;
    let (status, body) = cluster.token(&exchange_form(&client_id, &code)).await;
    assert_eq!(status, 200, "the code survived the outage: {body}");
    let (status, body) = cluster.token(&exchange_form(&client_id, &code)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (
        mcp_ok.load(Ordering::Relaxed),
        mcp_failed.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "{failed} of {} /mcp calls failed", ok + failed);
    assert!(
        served_during_outage > 0,
        "/mcp calls were served while the store was down: {ok} in all"
    );

    // One line per replica for the outage's start and one for its end,
    // however many requests it refused.
    let mut began = 0;
    for s in &cluster.replicas {
        let log = s.log_containing("store reachable again").await;
        let lines = log.matches("store unreachable").count();
        assert_eq!(lines, 1, "{log}");
        assert!(
            !log.contains("test:code") && !log.contains("test:refresh"),
            "no key is logged:\n{log}"
        );
        began += lines;
    }
    assert_eq!(began, 3);
    assert!(refused >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_started_while_redis_is_down_serves_mcp_and_recovers() {
    let mut redis = Redis::start();
    redis.kill();
    let s = Server::start_custom(|k| replica_config(k, &redis.url(), "60s"));
    // /mcp never needs the store; the token endpoint fails closed.
    let client_id = s.register_client(INTERNAL, &[LOOPBACK]).await;
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK).await;
    let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    let r = s.get(INTERNAL, "/readyz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let tokens = loop {
        let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, body) = s.whoami(INTERNAL, access_token(&tokens)).await;
    assert_eq!(status, 200, "{body}");
    let r = s.get(INTERNAL, "/readyz").send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("reachable"), "{body}");
}

/// Runs every future at once, each on a task; their outputs in order.
async fn all_at_once<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The consent form's single use holds across replicas: answered on one,
/// it is refused on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consent_form_answered_on_one_replica_is_refused_on_another() {
    let redis = Redis::start();
    let keys = tempfile::tempdir().unwrap();
    generate_keys(keys.path());
    let with_consent = |k: &Path| {
        replica_config(k, &redis.url(), "60s")
            .replace("consent = \"never\"", "consent = \"dynamic-clients\"")
    };
    let (a, b) = (
        Server::start_on_keys(keys.path(), with_consent),
        Server::start_on_keys(keys.path(), with_consent),
    );
    let client_id = a.register_client(INTERNAL, &[LOOPBACK]).await;
    let c = challenge(VERIFIER);
    let page = send(
        a.get(INTERNAL, "/oauth/authorize")
            .header("x-forwarded-email", ALICE)
            .query(&[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", LOOPBACK),
                ("code_challenge", &c),
                ("code_challenge_method", "S256"),
            ]),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The form's hidden fields, as the browser would post them.
    let mut form: Vec<(String, String)> = Vec::new();
    let mut rest = page.text.as_str();
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + 27..];
        let (name, after) = rest.split_once("\" value=\"").unwrap();
        let (value, after) = after.split_once("\">").unwrap();
        form.push((name.into(), value.replace("&amp;", "&")));
        rest = after;
    }
    assert!(form.iter().any(|(k, _)| k == "csrf"), "{}", page.text);
    form.push(("consent".into(), "allow".into()));
    let post = |s: &Server| {
        send(
            s.post(INTERNAL, "/oauth/authorize")
                .header("x-forwarded-email", ALICE)
                .form(&form),
        )
    };
    let first = post(&a).await;
    assert_eq!(first.status, 303, "{}", first.text);
    let again = post(&b).await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert!(again.text.contains("already answered"), "{}", again.text);
    assert!(again.header("location").is_none());
}

/// `rediss://` with `store.ca_file`: the store's certificate is signed by
/// a private CA that only the config trusts (a managed Redis's case); a
/// store whose certificate that CA did not sign is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_store_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca_file = write("ca.pem", ca.pem());
    let (cert, key) = (
        write("redis.crt", leaf.pem()),
        write("redis.key", leaf_key.serialize_pem()),
    );
    // Another CA, which did not sign the store's certificate.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = write(
        "other-ca.pem",
        other_params.self_signed(&other_key).unwrap().pem(),
    );

    let (_redis, tls_port) = Redis::start_tls(&cert, &key);
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let with_ca = |ca: &Path| {
        let ca = ca.to_str().unwrap().to_owned();
        let url = url.clone();
        move |k: &Path| {
            replica_config(k, &url, "60s")
                .replace("[store]\n", &format!("[store]\nca_file = \"{ca}\"\n"))
        }
    };
    let s = Server::start_custom(with_ca(&ca_file));
    let client_id = s.register_client(INTERNAL, &[LOOPBACK]).await;
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK).await;
    let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
    assert_eq!(status, 200, "over TLS: {body}");
    let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );

    let untrusting = Server::start_custom(with_ca(&other_ca));
    let client_id = untrusting.register_client(INTERNAL, &[LOOPBACK]).await;
    let code = untrusting.code_for(INTERNAL, &client_id, LOOPBACK).await;
    let (status, body) = token_on(&untrusting, &exchange_form(&client_id, &code)).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    untrusting.log_containing("store unreachable").await;
}

/// A store that hangs (not dies) runs the commands it was sent when it
/// resumes. A request that answered 503 must not take effect then: its
/// code is not burnt, its refresh token not rotated (with no grace, a
/// rotation there would make the client's retry look like reuse and
/// revoke the family), its consent form not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_refused_while_the_store_hung_take_no_effect_when_it_resumes() {
    let redis = Redis::start();
    let s = Server::start_custom(|k| replica_config(k, &redis.url(), "0s"));
    let client_id = s.register_client(INTERNAL, &[LOOPBACK]).await;
    // One answer first: the replica learns the store's clock.
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK).await;
    let (status, tokens) = token_on(&s, &exchange_form(&client_id, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK).await;

    redis.pause(true);
    let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    let refresh = refresh_form(&client_id, refresh_token(&tokens));
    let (status, body) = token_on(&s, &refresh).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    // Well past the deadline the replica gave those commands.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    redis.pause(false);

    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        let (status, body) = token_on(&s, &exchange_form(&client_id, &code)).await;
        if status != 503 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        status, 200,
        "the code was not burnt while the store hung: {body}"
    );
    let (status, body) = token_on(&s, &refresh).await;
    assert_eq!(
        status, 200,
        "the refresh token was not rotated while the store hung: {body}"
    );
    let log = s.log_containing("store reachable again").await;
    assert!(!log.contains("reuse detected"), "{log}");
}

/// `store.cluster`: a Redis Cluster of three primaries. Keys spread over
/// the nodes (one slot each, by their hash tag), and single use holds as
/// on one node: codes, rotation with grace 0, across two replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_cluster_keeps_single_use_with_keys_on_every_node() {
    let cluster = RedisCluster::start();
    let keys = tempfile::tempdir().unwrap();
    generate_keys(keys.path());
    let url = cluster.url();
    let config =
        |k: &Path| replica_config(k, &url, "0s").replace("[store]\n", "[store]\ncluster = true\n");
    let (a, b) = (
        Server::start_on_keys(keys.path(), config),
        Server::start_on_keys(keys.path(), config),
    );
    let client_id = a.register_client(INTERNAL, &[LOOPBACK]).await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..12 {
        let code = a.code_for(INTERNAL, &client_id, LOOPBACK).await;
        let (status, tokens) = token_on(&b, &exchange_form(&client_id, &code)).await;
        assert_eq!(status, 200, "{tokens}");
        let (status, body) = token_on(&a, &exchange_form(&client_id, &code)).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{body}"
        );
        refresh_tokens.push(refresh_token(&tokens).to_owned());
    }
    for t in &refresh_tokens {
        let (status, next) = token_on(&a, &refresh_form(&client_id, t)).await;
        assert_eq!(status, 200, "{next}");
        // No grace: the replaced token on the other replica is reuse.
        let (status, body) = token_on(&b, &refresh_form(&client_id, t)).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{body}"
        );
    }
    let per_node = cluster.keys_per_node();
    assert!(
        per_node.iter().all(|&n| n > 0),
        "keys on every node: {per_node:?}"
    );
}
