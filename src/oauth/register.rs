//! `POST /oauth/register`: RFC 7591 dynamic client registration for public
//! clients. The validated metadata is sealed into the `client_id` itself,
//! so any replica can read it back later and nothing is stored.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::GrantType;
use super::error::{Delivery, ErrorCode, OAuthError};
use crate::clock::unix_now;
use crate::http::response::{self, Resp};
use crate::http::Ctx;
use crate::settings::redirect;
use crate::settings::Site;
use crate::tokens::grants::ClientRegistration;
use crate::tokens::scope;
use crate::tokens::scope::SCOPES_SUPPORTED;
use crate::tokens::sealed;

/// Registration bodies are small JSON documents.
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// Redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest free-text metadata kept (names, ids).
const MAX_TEXT: usize = 200;

/// RFC 7591 §2 client metadata. Unknown members are ignored, as §2 asks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
    software_id: Option<String>,
    software_version: Option<String>,
}

/// [`Metadata`] read from a JSON object only. RFC 7591 §3.1: the body is
/// a JSON object. Derived `Deserialize` would also read an array by
/// position (`[["http://127.0.0.1:1/cb"]]` as `redirect_uris`); this asks
/// serde_json for a map, in the same single pass.
struct MetadataObject(Metadata);

impl<'de> Deserialize<'de> for MetadataObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = Metadata;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Metadata, A::Error> {
                Metadata::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectOnly).map(MetadataObject)
    }
}

fn metadata_error(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

/// Free text kept for display: trimmed, bounded, without control characters.
fn clean_text(s: Option<String>) -> Option<String> {
    let s = s?;
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request<Incoming>) -> Resp {
    match register(ctx, req).await {
        Ok(r) => {
            crate::metrics::client_registered();
            r
        }
        Err(e) => e.respond("register", Delivery::Json),
    }
}

async fn register(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Resp, OAuthError> {
    let (parts, body) = req.into_parts();
    let body = match ctx.read_body(&parts.headers, body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return Err(OAuthError::body(e)),
    };
    let now = unix_now();
    let registration = validate(&body, &ctx.host.site, now)?;
    let ring = ctx.keys.load();
    let client_id = sealed::seal(&ring, &registration, now).into_string();

    let mut out = Map::new();
    out.insert("client_id".into(), client_id.into());
    out.insert("client_id_issued_at".into(), now.into());
    out.insert("redirect_uris".into(), json!(registration.redirect_uris));
    out.insert(
        "grant_types".into(),
        if registration.refresh {
            json!([
                GrantType::AuthorizationCode.as_str(),
                GrantType::RefreshToken.as_str()
            ])
        } else {
            json!([GrantType::AuthorizationCode.as_str()])
        },
    );
    out.insert("response_types".into(), json!(["code"]));
    out.insert("token_endpoint_auth_method".into(), "none".into());
    let optional = [
        ("client_name", &registration.client_name),
        ("client_uri", &registration.client_uri),
        ("scope", &registration.scope),
        ("application_type", &registration.application_type),
        ("software_id", &registration.software_id),
        ("software_version", &registration.software_version),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            out.insert(k.into(), Value::String(v.clone()));
        }
    }
    Ok(response::json_no_store(StatusCode::CREATED, &out))
}

/// Validates RFC 7591 client metadata sent to `site` into what gets sealed
/// into the client id. Pure: no I/O, so it is what the fuzzer drives.
pub fn validate(body: &[u8], site: &Site, now: u64) -> Result<ClientRegistration, OAuthError> {
    let MetadataObject(md) = serde_json::from_slice(body).map_err(|e| {
        metadata_error(format!(
            "the body must be a JSON object of client metadata (RFC 7591 section 3.1): {e}"
        ))
    })?;

    // RFC 7591 §2: redirect_uris is required for the code grant.
    let requested = md.redirect_uris.unwrap_or_default();
    if requested.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required",
        ));
    }
    if requested.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!("at most {MAX_REDIRECT_URIS} redirect_uris"),
        ));
    }
    // §3.2.1 lets the server replace metadata: disallowed URIs in a mixed
    // set are dropped and the response shows what was registered. Too long
    // for a code to carry is disallowed too: the client could sign in but
    // never redeem a code.
    let policy = &site.redirect_policy;
    let mut redirect_uris = Vec::new();
    let mut first_refusal = None;
    for uri in requested {
        match policy
            .check(&uri)
            .and_then(|()| redirect::check_registrable(&uri))
        {
            Ok(()) if !redirect_uris.contains(&uri) => redirect_uris.push(uri),
            Ok(()) => {}
            Err(e) => {
                if first_refusal.is_none() {
                    first_refusal = Some(format!(
                        "{} {e}",
                        crate::http::response::truncate(&uri, 100)
                    ));
                }
            }
        }
    }
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!(
                "no redirect URI is allowed on {}: {}",
                site.issuer,
                first_refusal.unwrap_or_default()
            ),
        ));
    }

    // RFC 7591 §2: absent grant_types means ["authorization_code"]; the
    // response says what was registered, and the token endpoint holds the
    // client to it (no refresh token without `refresh_token` here).
    let mut refresh = false;
    let mut code = md.grant_types.is_none();
    for g in md.grant_types.iter().flatten() {
        match GrantType::parse(g) {
            Some(GrantType::AuthorizationCode) => code = true,
            Some(GrantType::RefreshToken) => refresh = true,
            None => {
                return Err(metadata_error(format!(
                    "grant type {} is not supported",
                    crate::http::response::truncate(g, 60)
                )))
            }
        }
    }
    if !code {
        return Err(metadata_error(
            "grant_types must include authorization_code",
        ));
    }
    if let Some(rt) = &md.response_types {
        if rt.iter().any(|r| r != "code") {
            return Err(metadata_error("response_types must be [\"code\"]"));
        }
    }
    // Dynamically registered clients are public: whatever method was asked
    // for, the registered one is `none` (§3.2.1 substitution).
    let _ = md.token_endpoint_auth_method;
    let application_type = match md.application_type.as_deref() {
        None => None,
        Some(a @ ("web" | "native")) => Some(a.to_owned()),
        Some(other) => {
            return Err(metadata_error(format!(
                "application_type {} is not web or native",
                crate::http::response::truncate(other, 40)
            )))
        }
    };
    // Keep the scopes we know; an empty string means "none asked for".
    let scope = md.scope.and_then(|s| {
        let known: Vec<&str> = scope::tokens(&s)
            .filter(|t| SCOPES_SUPPORTED.contains(t))
            .collect();
        (!known.is_empty()).then(|| known.join(" "))
    });
    let client_uri = md
        .client_uri
        .filter(|u| u.len() <= 500 && u.starts_with("https://") && url::Url::parse(u).is_ok());

    let registration = ClientRegistration {
        redirect_uris,
        refresh,
        client_name: clean_text(md.client_name),
        client_uri,
        scope,
        application_type,
        software_id: clean_text(md.software_id),
        software_version: clean_text(md.software_version),
        issued_at: now,
    };
    // The client id carries all of this on every request: keep it within
    // what `sealed::open` accepts (found by fuzzing: long URIs made a client
    // id that could never be opened).
    let sealed_estimate =
        160 + serde_json::to_vec(&registration).map_or(usize::MAX / 2, |v| v.len()) * 4 / 3;
    if sealed_estimate > crate::tokens::sealed::MAX_SEALED_LEN {
        return Err(metadata_error(
            "the registration is too large: use fewer or shorter redirect_uris and names",
        ));
    }
    Ok(registration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::redirect::{PolicyEntry, RedirectPolicy};

    fn site() -> Site {
        Site::new(
            "https://mcp.internal.example",
            RedirectPolicy::new(vec![PolicyEntry::Loopback]),
        )
        .unwrap()
    }

    #[test]
    fn only_a_json_object_is_client_metadata() {
        let ok = validate(
            br#"{"redirect_uris": ["http://127.0.0.1:9/cb"]}"#,
            &site(),
            1,
        );
        assert_eq!(ok.unwrap().redirect_uris, ["http://127.0.0.1:9/cb"]);
        // RFC 7591 §3.1: an array must not be read by position.
        for body in [
            r#"[["http://127.0.0.1:9/cb"]]"#,
            r#"[["http://127.0.0.1:9/cb"], null, ["authorization_code", "refresh_token"]]"#,
            r#"["http://127.0.0.1:9/cb"]"#,
            "[]",
            "null",
            "\"x\"",
            "42",
            "true",
        ] {
            let e = validate(body.as_bytes(), &site(), 1).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientMetadata, "{body}");
            assert!(
                e.description().contains("must be a JSON object"),
                "{body}: {}",
                e.description()
            );
        }
    }
}
