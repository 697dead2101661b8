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

use std::collections::BTreeMap;

/// What a deny entry names; also the index of its map in [`DenyList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

const FIELDS: usize = Field::Family as usize + 1;

/// The parsed deny file. Empty when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    /// Per [`Field`], value → cut-off (`None`: everything). Ordered maps:
    /// a check borrows the presented value (no allocation per request),
    /// and the same file always reads into the same order, so its digest
    /// is stable (a `HashMap`'s order is random per map, which made every
    /// rescan look like a change and flushed the verified-token cache).
    entries: [BTreeMap<String, Option<u64>>; FIELDS],
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
        self.entries.iter().all(BTreeMap::is_empty)
    }

    pub fn len(&self) -> usize {
        self.entries.iter().map(BTreeMap::len).sum()
    }

    /// Feeds every entry to `digest`, lengths first so no two lists feed
    /// the same bytes: equal lists digest alike, different ones do not.
    pub fn digest(&self, digest: &mut ring::digest::Context) {
        for map in &self.entries {
            digest.update(&(map.len() as u64).to_be_bytes());
            for (value, cutoff) in map {
                digest.update(&(value.len() as u64).to_be_bytes());
                digest.update(value.as_bytes());
                match cutoff {
                    None => digest.update(&[0]),
                    Some(t) => {
                        digest.update(&[1]);
                        digest.update(&t.to_be_bytes());
                    }
                }
            }
        }
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
                Some(t) => match crate::clock::parse_rfc3339(t) {
                    Some(secs) => Some(secs),
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
            list.entries[field as usize].insert(value, cutoff);
        }
        (list, problems)
    }

    fn hit(&self, field: Field, value: &str, issued_at: u64) -> bool {
        match self.entries[field as usize].get(value) {
            None => false,
            Some(None) => true,
            Some(Some(cutoff)) => issued_at < *cutoff,
        }
    }

    /// Whether anything about `s` is denied.
    pub fn denies(&self, s: &Subject<'_>) -> bool {
        if self.is_empty() {
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

    fn digest_of(l: &DenyList) -> Vec<u8> {
        let mut d = ring::digest::Context::new(&ring::digest::SHA256);
        l.digest(&mut d);
        d.finish().as_ref().to_vec()
    }

    #[test]
    fn the_same_entries_digest_alike_in_any_order_and_any_change_shows() {
        let lines = [
            "jti a1",
            "jti a2",
            "jti a3",
            "email x@example.com",
            "email y@example.com 2026-11-26T12:00:00Z",
            "client_id zz",
            "family f1",
        ];
        let text = lines.join("\n");
        let reversed: Vec<_> = lines.iter().rev().copied().collect();
        let first = digest_of(&DenyList::parse(&text).0);
        for _ in 0..20 {
            assert_eq!(digest_of(&DenyList::parse(&text).0), first);
        }
        assert_eq!(digest_of(&DenyList::parse(&reversed.join("\n")).0), first);
        for changed in [
            text.replace("jti a3", "jti a4"),
            text.replace("jti a3", "sub a3"),
            text.replace("12:00:00Z", "12:00:01Z"),
            text.replace("client_id zz", "client_id zz 2026-11-26T12:00:00Z"),
            text.replace("family f1", ""),
        ] {
            assert_ne!(digest_of(&DenyList::parse(&changed).0), first, "{changed}");
        }
        // Lengths go in first: moving a byte between two values changes it.
        assert_ne!(
            digest_of(&DenyList::parse("jti ab\njti c").0),
            digest_of(&DenyList::parse("jti a\njti bc").0)
        );
    }
}
