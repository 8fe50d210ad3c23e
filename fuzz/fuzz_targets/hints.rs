//! `hints.N` (spec §2.8).
#![no_main]
use hoard::repo::hints::Hints;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Hints::decode(data) {
        let again = Hints::decode(&h.encode());
        assert!(again.is_ok());
    }
});
