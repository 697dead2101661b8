//! Revocation without a database: a deny file, watched like the keys.
//!
//! One entry per line, `#` starts a comment:
//!
//! ```text
//! sub        alice@example.com   2026-11-26T12:00:00Z
//! email      bob@example.com
//! jti        Jx1bZ0q2mVvJ2o7cC6wYqw
//! client_id  gemini-enterprise
//! family     q3m1Rz0y1kq2u6lJbq2n0w
//! ```
//!
//! An entry without a cut-off refuses everything it names; with one, only
//! what was issued (signed in, for codes and refresh tokens) before it, so
//! the person or client can sign in again afterwards.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

/// What a deny entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    /// The token `sub` (oauth2-proxy's user, or the email).
    Sub,
    Email,
    /// One access token.
    Jti,
    ClientId,
    /// One refresh token family.
    Family,
}

/// The parsed deny file. Empty when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    /// (field, value) → cut-off (`None`: everything).
    entries: HashMap<(Field, String), Option<u64>>,
}

/// What is being checked against the list.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub sub: &'a str,
    pub email: &'a str,
    pub client_id: &'a str,
    pub jti: Option<&'a str>,
    pub family: Option<&'a str>,
    /// When it was issued (access tokens) or signed in (codes, refresh).
    pub issued_at: u64,
}

impl DenyList {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Parses the file. Bad lines are returned as problems (line number
    /// and reason) and skipped; the good ones still apply.
    pub fn parse(text: &str) -> (DenyList, Vec<String>) {
        let mut list = DenyList::default();
        let mut problems = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(kind), Some(value)) = (words.next(), words.next()) else {
                problems.push(format!(
                    "line {}: expected `<field> <value> [cut-off]`",
                    n + 1
                ));
                continue;
            };
            let field = match kind {
                "sub" | "subject" => Field::Sub,
                "email" => Field::Email,
                "jti" => Field::Jti,
                "client_id" | "client" => Field::ClientId,
                "family" => Field::Family,
                other => {
                    problems.push(format!(
                        "line {}: unknown field `{other}` (sub, email, jti, client_id, family)",
                        n + 1
                    ));
                    continue;
                }
            };
            let cutoff = match words.next() {
                None => None,
                Some(t) => match humantime::parse_rfc3339_weak(t)
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                {
                    Some(d) => Some(d.as_secs()),
                    None => {
                        problems.push(format!("line {}: `{t}` is not an RFC 3339 time", n + 1));
                        continue;
                    }
                },
            };
            let value = if field == Field::Email {
                value.to_ascii_lowercase()
            } else {
                value.to_owned()
            };
            list.entries.insert((field, value), cutoff);
        }
        (list, problems)
    }

    fn hit(&self, field: Field, value: &str, issued_at: u64) -> bool {
        match self.entries.get(&(field, value.to_owned())) {
            None => false,
            Some(None) => true,
            Some(Some(cutoff)) => issued_at < *cutoff,
        }
    }

    /// Whether anything about `s` is denied.
    pub fn denies(&self, s: &Subject<'_>) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let t = s.issued_at;
        self.hit(Field::Sub, s.sub, t)
            || self.hit(Field::Email, &s.email.to_ascii_lowercase(), t)
            || self.hit(Field::ClientId, s.client_id, t)
            || s.jti.is_some_and(|j| self.hit(Field::Jti, j, t))
            || s.family.is_some_and(|f| self.hit(Field::Family, f, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(issued_at: u64) -> Subject<'static> {
        Subject {
            sub: "1234",
            email: "Alice@Example.com",
            client_id: "c1",
            jti: Some("j1"),
            family: None,
            issued_at,
        }
    }

    #[test]
    fn entries_without_cutoff_deny_everything_they_name() {
        let (l, p) = DenyList::parse("# comment\nemail alice@example.com\n");
        assert!(p.is_empty());
        assert!(l.denies(&subject(0)));
        assert!(l.denies(&subject(u64::MAX)));
        let (l, _) = DenyList::parse("jti j2\nclient_id c2\n");
        assert!(!l.denies(&subject(0)));
    }

    #[test]
    fn a_cutoff_denies_only_what_was_issued_before_it() {
        let (l, p) = DenyList::parse("sub 1234 2026-11-26T12:00:00Z\n");
        assert!(p.is_empty());
        let cutoff = 1_795_694_400; // 2026-11-26T12:00:00Z
        assert!(l.denies(&subject(cutoff - 1)));
        assert!(!l.denies(&subject(cutoff)));
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_applies() {
        let (l, p) = DenyList::parse("bogus x\nemail\njti j1 yesterday\nclient_id c1\n");
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(l.len(), 1);
        assert!(l.denies(&subject(0)));
    }
}
