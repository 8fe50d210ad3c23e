//! Archive metadata objects (spec §6.2): the TAM-checked msgpack map and its fields.
#![no_main]
use hoard::archive::meta::ArchiveMeta;
use hoard::crypto::{Key, KeyMaterial, KeyType};
use libfuzzer_sys::fuzz_target;

fn auth_key(tam: bool) -> Key {
    let m = KeyMaterial {
        enc_key: [1; 32],
        enc_hmac_key: vec![2; 32],
        id_key: vec![3; 32],
        chunk_seed: 0,
        repository_id: [0x11; 32],
        tam_required: Some(tam),
    };
    Key::from_material(KeyType::Authenticated, m)
}

fuzz_target!(|data: &[u8]| {
    for tam in [false, true] {
        if let Ok((v, _)) = auth_key(tam).unpack_and_verify_archive(data) {
            if let Ok(m) = ArchiveMeta::from_value(&v) {
                let _ = m.chunker_params();
                let _ = m.to_value();
            }
        }
    }
});
