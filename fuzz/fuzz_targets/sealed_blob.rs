//! Sealed blobs (JWE `dir` + `A256GCM`): `tokens::sealed::open` as every
//! sealed kind, on arbitrary UTF-8.
//!
//! Invariants, beyond "never panics":
//! - a string opens as at most one kind (the `typ` decides);
//! - whatever opens is byte for byte one of the committed seed blobs,
//!   sealed with the fixture keys: nothing can be forged without the key,
//!   and no malleated form of a genuine blob opens (client ids are
//!   compared and hashed as strings);
//! - a blob that opens at [`NOW`] still opens, or is `Expired`, at other
//!   times, never anything else.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcpgate::grants::{
    ClientRegistration, CodeGrant, ConsentRemembered, ConsentRequest, RefreshGrant,
};
use mcpgate::sealed::{self, OpenError, MAX_SEALED_LEN};
use mcpgate_fuzz::{known_issue, read_seeds, ring, NOW};

fn genuine() -> &'static HashSet<String> {
    static G: OnceLock<HashSet<String>> = OnceLock::new();
    G.get_or_init(|| {
        read_seeds("sealed_blob")
            .into_iter()
            .filter_map(|b| String::from_utf8(b).ok())
            .collect()
    })
}

fn check<T: sealed::Sealable + PartialEq + std::fmt::Debug>(text: &str, opened: &mut u32) {
    let ring = ring();
    let r = sealed::open::<T>(ring, text, NOW);
    if text.len() > MAX_SEALED_LEN {
        assert_eq!(r.as_ref().err(), Some(&OpenError::Malformed));
    }
    if let Ok(v) = &r {
        *opened += 1;
        assert!(
            genuine().contains(text),
            "a blob that is not one of the sealed seeds opened: {text:?}"
        );
        for now in [0, NOW + 1, u64::MAX] {
            match sealed::open::<T>(ring, text, now) {
                Ok(w) => assert_eq!(&w, v),
                Err(OpenError::Expired) => {}
                Err(e) => panic!("opened at NOW but {e:?} at {now}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if known_issue("empty-iv") && text.split('.').nth(2) == Some("") {
        // Reported (regressions/sealed_blob/empty_iv_*): an empty IV
        // segment panics inside josekit/openssl.
        return;
    }
    let mut opened = 0;
    check::<CodeGrant>(text, &mut opened);
    check::<ClientRegistration>(text, &mut opened);
    check::<RefreshGrant>(text, &mut opened);
    check::<ConsentRequest>(text, &mut opened);
    check::<ConsentRemembered>(text, &mut opened);
    assert!(opened <= 1, "one blob opened as {opened} kinds");
});
