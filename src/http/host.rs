//! Which configured host a request is for.
//!
//! The `Host` header (`:authority` in HTTP/2) picks the site; a trusted
//! proxy's `X-Forwarded-Host` overrides it, since the proxy saw the
//! client's. Unknown names are refused (421) so that no document ever
//! names a host an attacker chose.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::header::HeaderValue;
use http::Request;

use crate::oauth::metadata;
use crate::settings::{Settings, Site};

/// Longer `Host` values name no site of ours (DNS names are at most 253).
const MAX_AUTHORITY: usize = 300;

/// A trusted proxy's record of the `Host` the client asked for.
const X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// A site with everything about it that never changes while running.
pub struct HostDocs {
    pub site: Site,
    pub authorization_server_metadata: Bytes,
    pub protected_resource_metadata: Bytes,
    /// `WWW-Authenticate` for a request without a token.
    pub challenge: HeaderValue,
    /// The challenge's parameters, to add an `error` to.
    pub challenge_params: String,
}

pub struct Hosts {
    docs: Vec<HostDocs>,
    /// Normalized `host[:port]` → index into `docs`.
    by_authority: HashMap<String, usize>,
}

fn default_port(scheme: &str) -> &'static str {
    if scheme == "https" {
        "443"
    } else {
        "80"
    }
}

impl Hosts {
    pub fn new(settings: &Settings) -> Hosts {
        let mut docs = Vec::new();
        let mut by_authority = HashMap::new();
        for (i, site) in settings.sites.iter().enumerate() {
            let params = format!(
                "resource_metadata=\"{}\", scope=\"{}\"",
                metadata::resource_metadata_url(site),
                crate::settings::DEFAULT_SCOPE
            );
            docs.push(HostDocs {
                site: site.clone(),
                authorization_server_metadata: serde_json::to_vec(&metadata::authorization_server(
                    site,
                ))
                .expect("JSON")
                .into(),
                protected_resource_metadata: serde_json::to_vec(&metadata::protected_resource(
                    site,
                ))
                .expect("JSON")
                .into(),
                challenge: HeaderValue::from_str(&format!("Bearer {params}"))
                    .expect("issuers are valid header text"),
                challenge_params: params,
            });
            // `mcp.example.com` and `mcp.example.com:443` are the same host.
            let a = &site.authority;
            by_authority.insert(a.clone(), i);
            let port_suffix = format!(":{}", default_port(&site.scheme));
            match a.strip_suffix(&port_suffix) {
                Some(bare) => by_authority.insert(bare.to_owned(), i),
                None if !a.ends_with(']') && a.contains(':') => None,
                None => by_authority.insert(format!("{a}{port_suffix}"), i),
            };
        }
        Hosts { docs, by_authority }
    }

    pub fn all(&self) -> &[HostDocs] {
        &self.docs
    }

    /// The site this request is for, or `None` (→ 421).
    pub fn resolve<B>(
        &self,
        settings: &Settings,
        peer: IpAddr,
        req: &Request<B>,
    ) -> Option<&HostDocs> {
        let forwarded = if settings.identity.is_trusted_proxy(peer) {
            req.headers()
                .get(X_FORWARDED_HOST)
                .and_then(|v| v.to_str().ok())
                // A chain of proxies appends; the first is what the client asked for.
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        } else {
            None
        };
        let name = match forwarded {
            Some(f) => f,
            None => req
                .headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))?,
        };
        // Lowercased on the stack: this runs on every request.
        let mut lower = [0u8; MAX_AUTHORITY];
        let lower = lower.get_mut(..name.len())?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        let name = std::str::from_utf8(lower).ok()?;
        self.by_authority.get(name).map(|i| &self.docs[*i])
    }
}
