//! Key blobs (spec §4.3): the base64 text of a repokey or key file, the encrypted envelope and
//! the key material inside.
#![no_main]
use hoard::crypto::{decode_blob_text, decrypt_key_blob_bytes, KeyMaterial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(blob) = decode_blob_text(text) {
            let _ = decrypt_key_blob_bytes(&blob, "fuzz");
        }
    }
    let _ = decrypt_key_blob_bytes(data, "fuzz");
    let _ = KeyMaterial::from_msgpack(data);
});
