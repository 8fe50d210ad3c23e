//! The manifest (spec §6.1): a whole repository object (envelope, compression, msgpack, TAM)
//! read with the plaintext key, and the msgpack plaintext read with an authenticated key (so
//! that the TAM checks run).
#![no_main]
use hoard::archive::Manifest;
use hoard::compress::decompress;
use hoard::crypto::{Key, KeyMaterial, KeyType};
use libfuzzer_sys::fuzz_target;

fn auth_key() -> Key {
    let m = KeyMaterial {
        enc_key: [1; 32],
        enc_hmac_key: vec![2; 32],
        id_key: vec![3; 32],
        chunk_seed: 0,
        repository_id: [0x11; 32],
        tam_required: Some(true),
    };
    Key::from_material(KeyType::Authenticated, m)
}

fuzz_target!(|data: &[u8]| {
    let plain = Key::plaintext();
    if let Ok(framed) = plain.decrypt(data) {
        if let Ok(p) = decompress(&framed, None) {
            if let Ok(mut m) = Manifest::from_plaintext(&plain, &p, false) {
                let _ = m.archives_by_time();
                let _ = m.to_plaintext(&plain);
            }
        }
    }
    let key = auth_key();
    for force in [false, true] {
        let _ = Manifest::from_plaintext(&key, data, force);
    }
});
