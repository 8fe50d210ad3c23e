//! The encrypted key blob ("EncryptedKey" envelope, FORMAT.md §4.3): PBKDF2-SHA256 → AES-256-CTR
//! over the packed key material, HMAC-SHA256 of the plaintext, base64 wrapped at 70 columns.

use base64::Engine as _;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::key::{aes_ctr, hmac_sha256, wipe};
use super::{CryptoError, KeyMaterial};
use crate::msgpack::{self, Limits, Value};

/// PBKDF2 iteration count borg uses for new blobs (FORMAT.md §4.3).
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// Most PBKDF2 iterations a blob may ask for: 100 times [`PBKDF2_ITERATIONS`] (a few seconds).
/// The count is read from the blob, which a hostile repository controls; without a bound
/// 2^32-1 iterations keep hoard busy for hours before it can say the passphrase is wrong.
pub const MAX_PBKDF2_ITERATIONS: u32 = 100 * PBKDF2_ITERATIONS;

/// Column width of the base64 text (Python `textwrap.wrap` default, FORMAT.md §4.3).
pub const BASE64_LINE_WIDTH: usize = 70;

fn kdf(passphrase: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, iterations, &mut out);
    out
}

/// Encrypts key material into the base64 key blob text (FORMAT.md §4.3): random 32-byte salt,
/// 100000 iterations, lines of 70 characters joined by `\n`, no trailing newline.
pub fn encrypt_key_blob(m: &KeyMaterial, passphrase: &str) -> String {
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    encode_blob_text(&encrypt_key_blob_bytes(
        m,
        passphrase,
        &salt,
        PBKDF2_ITERATIONS,
    ))
}

/// The packed envelope (before base64) with an explicit salt and iteration count.
pub fn encrypt_key_blob_bytes(
    m: &KeyMaterial,
    passphrase: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let mut plain = m.to_msgpack();
    let mut kek = kdf(passphrase, salt, iterations);
    let hash = hmac_sha256(&kek, &[&plain]);
    aes_ctr(&kek, &[0u8; 16], &mut plain);
    wipe(&mut kek);
    Value::sorted_map(vec![
        ("algorithm", Value::raw("sha256")),
        ("data", Value::raw(&plain)),
        ("hash", Value::raw(hash)),
        ("iterations", Value::int(iterations)),
        ("salt", Value::raw(salt)),
        ("version", Value::int(1)),
    ])
    .to_bytes()
}

/// Base64-encodes packed blob bytes and wraps them at 70 columns (no trailing newline).
pub fn encode_blob_text(blob: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(BASE64_LINE_WIDTH)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    lines.join("\n")
}

/// Decodes blob text to the packed envelope bytes, ignoring all whitespace.
pub fn decode_blob_text(text: &str) -> Result<Vec<u8>, CryptoError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CryptoError::InvalidKeyData(format!("key blob is not valid base64: {e}")))
}

/// Decrypts a base64 key blob with a passphrase (FORMAT.md §4.3). Envelope and material are parsed
/// with borg's key limits (no bin, no arrays). A wrong passphrase gives
/// [`CryptoError::WrongPassphrase`].
pub fn decrypt_key_blob(text: &str, passphrase: &str) -> Result<KeyMaterial, CryptoError> {
    decrypt_key_blob_bytes(&decode_blob_text(text)?, passphrase)
}

/// [`decrypt_key_blob`] on the packed envelope bytes.
pub fn decrypt_key_blob_bytes(blob: &[u8], passphrase: &str) -> Result<KeyMaterial, CryptoError> {
    let env = msgpack::decode_all(blob, Limits::KEY)?;
    if env.as_map().is_none() {
        return Err(CryptoError::InvalidKeyData(
            "key envelope is not a map".into(),
        ));
    }
    let missing = |f: &str| CryptoError::InvalidKeyData(format!("key envelope lacks {f}"));
    match env.get("version") {
        Some(Value::Int(1)) => {}
        Some(Value::Int(n)) => return Err(CryptoError::UnsupportedEncryptedKeyVersion(*n)),
        _ => return Err(missing("version")),
    }
    let algorithm = env.get("algorithm").ok_or_else(|| missing("algorithm"))?;
    if algorithm.as_bytes() != Some(b"sha256") {
        let name = algorithm.as_bytes().map_or_else(
            || format!("{algorithm:?}"),
            |b| String::from_utf8_lossy(b).into(),
        );
        return Err(CryptoError::UnsupportedKeyAlgorithm(name));
    }
    let raw = |f: &str| match env.get(f) {
        Some(Value::Raw(b)) => Ok(b.as_slice()),
        _ => Err(missing(f)),
    };
    let salt = raw("salt")?;
    let data = raw("data")?;
    let hash = raw("hash")?;
    let iterations = env
        .get("iterations")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .filter(|i| *i > 0)
        .ok_or_else(|| missing("iterations"))?;
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(CryptoError::InvalidKeyData(format!(
            "key envelope asks for {iterations} PBKDF2 iterations, more than the limit {MAX_PBKDF2_ITERATIONS}"
        )));
    }
    let mut kek = kdf(passphrase, salt, iterations);
    let mut plain = data.to_vec();
    aes_ctr(&kek, &[0u8; 16], &mut plain);
    let ok = bool::from(hmac_sha256(&kek, &[&plain]).ct_eq(hash));
    wipe(&mut kek);
    if !ok {
        wipe(&mut plain);
        return Err(CryptoError::WrongPassphrase);
    }
    let m = KeyMaterial::from_msgpack(&plain);
    wipe(&mut plain);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let m = KeyMaterial::generate(false, [9; 32]);
        // few iterations keep the test fast; the format is the same
        let blob = encrypt_key_blob_bytes(&m, "pässwörd", &[1; 32], 1000);
        let text = encode_blob_text(&blob);
        assert!(text.lines().all(|l| l.len() <= 70));
        assert!(text.lines().rev().skip(1).all(|l| l.len() == 70));
        assert_eq!(decrypt_key_blob(&text, "pässwörd").unwrap(), m);
        assert!(matches!(
            decrypt_key_blob(&text, "passwörd"),
            Err(CryptoError::WrongPassphrase)
        ));
        let v = msgpack::decode_all(&blob, Limits::KEY).unwrap();
        assert_eq!(v.get("iterations"), Some(&Value::int(1000)));
        assert_eq!(v.get("algorithm").and_then(Value::as_str), Some("sha256"));
    }

    #[test]
    fn refuses_an_iteration_count_beyond_the_limit() {
        // found while writing fuzz/keyblob: 2^32-1 iterations from a hostile repokey took
        // hours of PBKDF2 before "wrong passphrase"
        let m = KeyMaterial::generate(false, [9; 32]);
        let started = std::time::Instant::now();
        for n in [u32::MAX, MAX_PBKDF2_ITERATIONS + 1] {
            let blob = encrypt_key_blob_bytes(&m, "p", &[1; 32], 1);
            let mut v = msgpack::decode_all(&blob, Limits::KEY).unwrap();
            *v.get_mut("iterations").unwrap() = Value::int(n);
            let e = decrypt_key_blob_bytes(&v.to_bytes(), "p").unwrap_err();
            assert_eq!(
                e.to_string(),
                CryptoError::InvalidKeyData(format!(
                    "key envelope asks for {n} PBKDF2 iterations, more than the limit 10000000"
                ))
                .to_string()
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn full_iterations_round_trip() {
        let m = KeyMaterial::generate(true, [2; 32]);
        let text = encrypt_key_blob(&m, "");
        let v = msgpack::decode_all(&decode_blob_text(&text).unwrap(), Limits::KEY).unwrap();
        assert_eq!(v.get("iterations"), Some(&Value::int(100_000)));
        assert_eq!(
            v.get("salt").and_then(Value::as_bytes).map(<[u8]>::len),
            Some(32)
        );
        assert_eq!(decrypt_key_blob(&text, "").unwrap(), m);
    }

    #[test]
    fn rejects_bad_envelopes() {
        assert!(decrypt_key_blob("!!!", "x").is_err());
        let bad_alg = Value::sorted_map(vec![
            ("algorithm", Value::raw("md5")),
            ("version", Value::int(1)),
        ])
        .to_bytes();
        assert!(matches!(
            decrypt_key_blob_bytes(&bad_alg, "x"),
            Err(CryptoError::UnsupportedKeyAlgorithm(_))
        ));
        let arr = Value::Array(vec![]).to_bytes();
        assert!(decrypt_key_blob_bytes(&arr, "x").is_err());
    }
}
