//! A key's place in its kind's succession, and what `keys prune` may do
//! with it. One computation, shared by `keys list` (which shows it) and
//! `keys prune` (which acts on it), so the two can never disagree.

use std::time::Duration;

use super::file::{KeyFile, KeyKind};
use crate::clock::{rfc3339, LEEWAY_SECS};
use crate::settings::TokenSettings;

/// A key's place in its kind's succession at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyState {
    /// Published (signing keys) but not used to sign or seal yet.
    Pending,
    /// The newest key already active: signs or seals.
    Active,
    /// Superseded; what it signed or sealed may still be alive.
    Retiring { since: u64 },
    /// Superseded for longer than anything it signed or sealed lives.
    RetiredBySuccessor { since: u64 },
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyState::Pending => f.write_str("pending"),
            KeyState::Active => f.write_str("active"),
            KeyState::Retiring { .. } => f.write_str("retiring"),
            KeyState::RetiredBySuccessor { .. } => f.write_str("retired-by-successor"),
        }
    }
}

/// How long what a key of `kind` produced can stay alive: after this much
/// time under a successor, removing it breaks nothing. Registration keys
/// seal client ids that never expire.
fn lifetime(kind: KeyKind, tokens: &TokenSettings) -> Option<u64> {
    match kind {
        KeyKind::Signing => Some(tokens.access_ttl.as_secs() + LEEWAY_SECS),
        KeyKind::Sealing => Some(tokens.code_ttl.max(tokens.refresh_ttl).as_secs()),
        KeyKind::Registration => None,
    }
}

/// The state of `files[i]` among the keys of its kind at `now`.
pub(crate) fn key_state(files: &[KeyFile], i: usize, now: u64, tokens: &TokenSettings) -> KeyState {
    let f = &files[i];
    if f.activates_at > now {
        return KeyState::Pending;
    }
    // The successor: the earliest newer key of the kind that is active.
    let successor = files
        .iter()
        .filter(|o| {
            o.kind == f.kind
                && o.activates_at <= now
                && (o.activates_at, &o.kid) > (f.activates_at, &f.kid)
        })
        .map(|o| o.activates_at)
        .min();
    match successor {
        None => KeyState::Active,
        Some(since) => match lifetime(f.kind, tokens) {
            Some(l) if now.saturating_sub(since) > l => KeyState::RetiredBySuccessor { since },
            _ => KeyState::Retiring { since },
        },
    }
}

/// What `keys prune` does with one key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PruneVerdict {
    /// Pending, active, or superseded more recently than `--older-than`.
    Keep,
    /// Nothing it produced is alive any more: removing it breaks nothing.
    Remove { why: String },
    /// Superseded long enough ago for `--older-than`, but still in use:
    /// removed only with `--force`, since removing it breaks what `why` says.
    InUse { why: String },
}

/// The verdict on `files[i]` for `keys prune --older-than older_than` at
/// `now`, from the same state `keys list` shows.
pub(crate) fn prune_verdict(
    files: &[KeyFile],
    i: usize,
    now: u64,
    tokens: &TokenSettings,
    older_than: Duration,
) -> PruneVerdict {
    let f = &files[i];
    let (since, in_use) = match key_state(files, i, now, tokens) {
        // The pending and the active key are never removed, `--force` or
        // not: every kind keeps the key it signs or seals with, and the
        // newest registration key is the one every new client id depends on.
        KeyState::Pending | KeyState::Active => return PruneVerdict::Keep,
        KeyState::Retiring { since } => (since, true),
        KeyState::RetiredBySuccessor { since } => (since, false),
    };
    if now.saturating_sub(since) <= older_than.as_secs() {
        return PruneVerdict::Keep;
    }
    if !in_use {
        return PruneVerdict::Remove {
            why: format!(
                "{} key superseded {}, retired-by-successor",
                f.kind,
                rfc3339(since)
            ),
        };
    }
    PruneVerdict::InUse {
        why: in_use_reason(f.kind, since, tokens),
    }
}

/// What removing a retiring key of `kind`, superseded at `since`, breaks.
fn in_use_reason(kind: KeyKind, since: u64, tokens: &TokenSettings) -> String {
    let until = lifetime(kind, tokens).map(|l| rfc3339(since + l + 1));
    match (kind, until) {
        (KeyKind::Signing, Some(until)) => format!(
            "signing key still retiring: access tokens it signed stay valid until {until} \
             (tokens.access_ttl after its successor activated)"
        ),
        (KeyKind::Sealing, Some(until)) => format!(
            "sealing key still retiring: refresh tokens and codes it sealed live until {until} \
             (tokens.refresh_ttl after its successor activated); removing it signs those people out"
        ),
        _ => "registration key: every client registered under it would have to register again \
              (client ids never expire)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_tokens() -> TokenSettings {
        TokenSettings::from_config(&crate::config::TokensConfig::default())
    }

    #[test]
    fn key_states_follow_activation_and_succession() {
        let tokens = default_tokens();
        let now = 1_000_000;
        let files = vec![
            KeyFile::generate(KeyKind::Signing, now - 10_000, "a"),
            KeyFile::generate(KeyKind::Signing, now - 100, "b"),
            KeyFile::generate(KeyKind::Signing, now + 300, "c"),
            KeyFile::generate(KeyKind::Registration, now - 50_000, "d"),
            KeyFile::generate(KeyKind::Registration, now - 10, "e"),
        ];
        assert_eq!(
            key_state(&files, 0, now, &tokens),
            KeyState::Retiring { since: now - 100 }
        );
        assert_eq!(key_state(&files, 1, now, &tokens), KeyState::Active);
        assert_eq!(key_state(&files, 2, now, &tokens), KeyState::Pending);
        // An hour and a minute after its successor took over, nothing the
        // old signing key signed is alive.
        assert_eq!(
            key_state(&files, 0, now + 3_700, &tokens),
            KeyState::RetiredBySuccessor { since: now - 100 }
        );
        // Client ids never expire: a registration key only ever retires.
        assert_eq!(
            key_state(&files, 3, now + 10_000_000, &tokens),
            KeyState::Retiring { since: now - 10 }
        );
    }

    /// The reported case: a rotation whose successors are 3 h old, pruned
    /// with `--older-than 2h`.
    #[test]
    fn prune_removes_only_what_nothing_alive_depends_on() {
        let tokens = default_tokens();
        let now = 10_000_000;
        let mut files = crate::keys::file::generate_set(now - 86_400, "old");
        files.extend(crate::keys::file::generate_set(now - 3 * 3600, "new"));
        let two_hours = Duration::from_secs(2 * 3600);
        let verdict = |kind: KeyKind, tag: &str| {
            let i = files
                .iter()
                .position(|f| f.kind == kind && f.kid.ends_with(tag))
                .unwrap();
            prune_verdict(&files, i, now, &tokens, two_hours)
        };
        assert!(matches!(
            verdict(KeyKind::Signing, "old"),
            PruneVerdict::Remove { .. }
        ));
        let PruneVerdict::InUse { why } = verdict(KeyKind::Sealing, "old") else {
            panic!("a sealing key 3 h into a 30-day refresh lifetime is in use");
        };
        assert!(why.contains("refresh_ttl"), "{why}");
        let PruneVerdict::InUse { why } = verdict(KeyKind::Registration, "old") else {
            panic!("a superseded registration key is in use");
        };
        assert!(why.contains("register again"), "{why}");
        for kind in KeyKind::ALL {
            assert_eq!(verdict(kind, "new"), PruneVerdict::Keep, "{kind}");
        }
        // Superseded more recently than asked: kept, whatever its state.
        let i = files.iter().position(|f| f.kid.ends_with("old")).unwrap();
        assert_eq!(
            prune_verdict(&files, i, now, &tokens, Duration::from_secs(4 * 3600)),
            PruneVerdict::Keep
        );
    }
}
