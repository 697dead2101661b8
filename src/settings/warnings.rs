//! What a config that validates may still get wrong: placeholders left
//! from the example, and a loopback listener no issuer names. Warnings,
//! not errors: the server runs, but probably not as meant.

use crate::config::{Config, IdentitySource};

use super::Settings;

/// Placeholders left in `config` (already validated into `settings`).
pub(crate) fn placeholders(config: &Config, settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in config.clients.iter().enumerate() {
        let zero = c
            .client_secret_sha256
            .as_deref()
            .is_some_and(|h| !h.trim().is_empty() && h.trim().bytes().all(|b| b == b'0'));
        if zero {
            out.push(format!(
                "clients[{i}].client_secret_sha256: all zeros is the example's placeholder, which no secret hashes to; \
                 mint a secret and its hash with `mcpgate clients add --client-id {} --redirect-uri …`",
                c.client_id
            ));
        }
    }
    if settings.identity.source != IdentitySource::Dev {
        for (i, s) in settings.sites.iter().enumerate() {
            if is_example_host(&s.issuer) {
                out.push(format!(
                    "hosts[{i}].issuer: `{}` is an example name (RFC 2606); put the name clients reach this service by",
                    s.issuer
                ));
            }
        }
    }
    out
}

/// Whether `issuer`'s host is reserved for examples: `example`,
/// `example.com`, `example.net`, `example.org` or a name under one.
fn is_example_host(issuer: &str) -> bool {
    let Some(host) = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    match labels.as_slice() {
        [.., "example"] => true,
        [.., "example", tld] => matches!(*tld, "com" | "net" | "org"),
        _ => false,
    }
}

/// When the server listens on loopback `port` and the issuers on loopback
/// name other ports: every request then carries a Host no issuer names
/// and is refused (421). Issuers on other names are reached through a
/// proxy, whatever port mcpgate listens on, and say nothing here.
pub(crate) fn listen_port(settings: &Settings, port: u16) -> Option<String> {
    if !settings.listen.ip().is_loopback() {
        return None;
    }
    let mut loopback_issuers = Vec::new();
    for s in &settings.sites {
        let Ok(url) = url::Url::parse(&s.issuer) else {
            continue;
        };
        if !super::is_loopback_url(&url) {
            continue;
        }
        if url.port_or_known_default() == Some(port) {
            return None;
        }
        loopback_issuers.push(s.issuer.as_str());
    }
    if loopback_issuers.is_empty() {
        return None;
    }
    Some(format!(
        "listening on port {port}, but no issuer names it (issuers: {}): requests to \
         http://127.0.0.1:{port} are refused with 421. Name the port in an issuer, with \
         MCPGATE_HOSTS='[{{issuer=\"http://127.0.0.1:{port}\", redirect_uris=[\"loopback\"]}}]' \
         or [[hosts]] in a config file (--config), or listen on the issuers' port",
        loopback_issuers.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;

    fn dev(issuers: &[&str], listen: &str) -> (Config, Settings) {
        let mut c = Config {
            listen: listen.parse().unwrap(),
            ..Config::default()
        };
        c.identity.source = IdentitySource::Dev;
        c.identity.allowed_domains = vec!["example.com".into()];
        for i in issuers {
            c.hosts.push(HostConfig {
                issuer: (*i).into(),
                redirect_uris: vec![],
                client_id_hosts: None,
            });
        }
        let s = Settings::from_config(&c).unwrap();
        (c, s)
    }

    #[test]
    fn a_loopback_listener_no_loopback_issuer_names_is_warned_about() {
        let (_, s) = dev(
            &["http://127.0.0.1:8080", "http://localhost:8080"],
            "127.0.0.1:8082",
        );
        let w = listen_port(&s, 8082).unwrap();
        assert!(
            w.contains("http://localhost:8080") && w.contains("MCPGATE_HOSTS"),
            "{w}"
        );
        assert!(listen_port(&s, 8080).is_none());
        // Behind a proxy: the issuers are other names.
        let (_, s) = dev(&["https://mcp.corp.test"], "127.0.0.1:8080");
        assert!(listen_port(&s, 8080).is_none());
    }

    #[test]
    fn example_names_and_zero_hashes_are_placeholders() {
        for (issuer, example) in [
            ("https://mcp.example.com", true),
            ("https://mcp.internal.example", true),
            ("https://example.org:8443", true),
            ("https://example.company.com", false),
            ("https://mcp.corp.test", false),
        ] {
            assert_eq!(is_example_host(issuer), example, "{issuer}");
        }
        let (mut c, mut s) = dev(&["https://mcp.example.com"], "127.0.0.1:8080");
        assert!(
            placeholders(&c, &s).is_empty(),
            "dev mode uses example names"
        );
        s.identity.source = IdentitySource::Proxy;
        c.clients.push(crate::config::ClientConfig {
            client_id: "x".into(),
            client_secret_sha256: Some("0".repeat(64)),
            redirect_uris: vec![],
            require_pkce: false,
            client_name: None,
        });
        let w = placeholders(&c, &s);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("clients[0].client_secret_sha256"));
        assert!(w[1].starts_with("hosts[0].issuer"));
    }
}
