//! A `client_id` that is a URL: the rules of
//! draft-ietf-oauth-client-id-metadata-document §3 for what may be one.

use crate::settings::Site;

/// Longest URL client id accepted: it travels in every access token.
pub(crate) const MAX_CLIENT_ID_URL: usize = 512;

/// An https URL that may name a client: checked, and exactly as sent (the
/// document's `client_id` must equal it byte for byte, and so must every
/// later request's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientIdUrl {
    url: url::Url,
}

/// Why a URL cannot be a client id. The text is the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum UrlError {
    #[error("is too long")]
    TooLong,
    #[error("is not a URL")]
    NotUrl,
    #[error("must use https")]
    NotHttps,
    #[error("must not contain user information")]
    UserInfo,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("must have a path")]
    NoPath,
    #[error("must not contain `.` or `..` path segments")]
    DotSegment,
    #[error("must not contain an encoded `/` or `\\` in its path")]
    EncodedSlash,
    #[error("must be in canonical form (lowercase host, no default port, nothing to normalize)")]
    NotCanonical,
}

impl ClientIdUrl {
    /// Whether `client_id` is meant as a URL: whatever follows is judged
    /// as one. Sealed (JWE) and configured client ids never start so.
    pub(crate) fn is_url_form(client_id: &str) -> bool {
        client_id.starts_with("https://") || client_id.starts_with("http://")
    }

    /// draft-ietf-oauth-client-id-metadata-document §3: https, a path, no
    /// single- or double-dot path segments, no fragment, no user
    /// information. Also canonical, as the url crate writes it, so that
    /// one client has one id.
    pub(crate) fn parse(s: &str) -> Result<ClientIdUrl, UrlError> {
        if s.len() > MAX_CLIENT_ID_URL {
            return Err(UrlError::TooLong);
        }
        let rest = s.strip_prefix("https://").ok_or(UrlError::NotHttps)?;
        if s.contains('#') {
            return Err(UrlError::Fragment);
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() || path == "/" {
            return Err(UrlError::NoPath);
        }
        // Servers disagree on what a path means once decoded: some decode
        // `%2f` / `%5c` before routing, some (Tomcat, Jetty) drop a `;`
        // parameter, so `/a/..;/b` or `/a%2f..%2fb` could name a document
        // outside the path the client id shows. Such forms are refused,
        // not interpreted (§3: no dot segments, in any spelling).
        let lower = path.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(UrlError::EncodedSlash);
        }
        let dot = |seg: &str| {
            let seg = seg.split(';').next().unwrap_or("").replace("%2e", ".");
            seg == "." || seg == ".."
        };
        if lower.split('/').any(dot) {
            return Err(UrlError::DotSegment);
        }
        let url = url::Url::parse(s).map_err(|_| UrlError::NotUrl)?;
        if url.scheme() != "https" || url.host().is_none() {
            return Err(UrlError::NotHttps);
        }
        // A trailing dot names the same DNS host (`claude.ai.` is
        // `claude.ai`) under another client id, and escapes a
        // `client_id_hosts` entry written without it.
        if url.as_str() != s || url.host_str().is_some_and(|h| h.ends_with('.')) {
            return Err(UrlError::NotCanonical);
        }
        Ok(ClientIdUrl { url })
    }

    pub(crate) fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub(crate) fn url(&self) -> &url::Url {
        &self.url
    }

    /// The host, lowercase (as the consent page shows it).
    pub(crate) fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The host's trust policy: its `client_id_hosts`, when it has one,
    /// must list this URL's host.
    pub(crate) fn allowed_on(&self, site: &Site) -> bool {
        match &site.client_id_hosts {
            None => true,
            Some(hosts) => hosts.iter().any(|h| h == self.host()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_client_ids_parse() {
        for s in [
            "https://claude.ai/oauth/mcp-oauth-client-metadata",
            "https://claude.ai/oauth/claude-code-client-metadata",
            "https://chatgpt.com/oauth/client-metadata.json",
            "https://vscode.dev/oauth/client-metadata.json",
            "https://127.0.0.1:8443/client.json",
            "https://app.example/c?v=1",
        ] {
            assert_eq!(ClientIdUrl::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn what_the_draft_forbids_is_refused() {
        use UrlError::*;
        for (s, e) in [
            ("http://claude.ai/x", NotHttps),
            ("https://claude.ai", NoPath),
            ("https://claude.ai/", NoPath),
            ("https://claude.ai/a#b", Fragment),
            ("https://u:p@claude.ai/a", UserInfo),
            ("https://u@claude.ai/a", UserInfo),
            ("https://claude.ai/a/../b", DotSegment),
            ("https://claude.ai/./b", DotSegment),
            ("https://claude.ai/a/%2E%2e/b", DotSegment),
            ("https://claude.ai/a/.", DotSegment),
            ("https://Claude.ai/a", NotCanonical),
            ("https://claude.ai:443/a", NotCanonical),
            ("https://claude.ai/a b", NotCanonical),
            ("https://[::ffff:127.0.0.1]/a", NotCanonical),
            // The held-out corpus: every spelling of a host or path that
            // another parser reads differently.
            ("https://claude.ai/a/..;/b", DotSegment),
            ("https://claude.ai/a/.;x/b", DotSegment),
            ("https://claude.ai/a/.%2E/b", DotSegment),
            ("https://claude.ai/a%2f..%2fb", EncodedSlash),
            ("https://claude.ai/a%2F..%2Fb", EncodedSlash),
            ("https://claude.ai/a%5c..%5cb", EncodedSlash),
            ("https://claude.ai/a\\..\\b", NotCanonical),
            ("https://claude.ai\\@evil.example/a", UserInfo),
            ("https://claude.ai./a", NotCanonical),
            ("https://localhost./a", NotCanonical),
            ("HTTPS://claude.ai/a", NotHttps),
            ("https://CLAUDE.AI/a", NotCanonical),
            ("https://0x7f.1/a", NotCanonical),
            ("https://2130706433/a", NotCanonical),
            ("https://0177.0.0.1/a", NotCanonical),
            ("https://127.1/a", NotCanonical),
            ("https://b\u{fc}cher.example/a", NotCanonical),
            ("https://claude%2eai/a", NotCanonical),
            ("https://[::1]:443/a", NotCanonical),
            ("https://[0:0:0:0:0:0:0:1]/a", NotCanonical),
            ("https://[::FFFF:7F00:1]/a", NotCanonical),
        ] {
            assert_eq!(ClientIdUrl::parse(s), Err(e), "{s}");
        }
        assert_eq!(
            ClientIdUrl::parse(&format!("https://a.example/{}", "x".repeat(600))),
            Err(TooLong)
        );
    }
}
