//! `integrity.N` (spec §2.9): the msgpack file and the JSON digests inside it.
#![no_main]
use hoard::repo::integrity::{decode_file, parse_json, IntegrityFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(IntegrityFile::V2 { hints, index }) = decode_file(data) {
        for j in [hints, index].into_iter().flatten() {
            let _ = parse_json(&j);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_json(text);
    }
});
