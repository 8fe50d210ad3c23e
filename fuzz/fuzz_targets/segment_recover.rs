//! The segment scanner of `check --repair` (borg `recover_segment`): slides over damage and
//! keeps every entry that validates; what it keeps must iterate cleanly.
#![no_main]
use hoard::repo::segment::{iter_segment_bytes, recover_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = recover_bytes(data);
    assert!(out.len() <= data.len().max(8) + 8);
    if let Ok(it) = iter_segment_bytes(out, 0, true, false) {
        for e in it {
            if let Ok(e) = e {
                assert!(e.size >= 9);
            }
        }
    }
});
