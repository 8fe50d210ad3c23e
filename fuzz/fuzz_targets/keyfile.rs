//! Key files (`BORG_KEY <id>` header and blob text, spec §4.4).
#![no_main]
use hoard::crypto::{decode_blob_text, parse_key_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((_id, blob)) = parse_key_file(&text) {
        let _ = decode_blob_text(&blob);
    }
});
