//! Key material, key generation, `id_hash`, and the repository object envelope
//! (FORMAT.md §4.2, §4.5, §4.6).

use aes::cipher::{KeyIvInit, StreamCipher};
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{CryptoError, KeyType};
use crate::msgpack::{self, Value};

type HmacSha256 = Hmac<Sha256>;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Bytes in front of the ciphertext of an encrypted object: TYPE(1) ‖ MAC(32) ‖ IV(8) (FORMAT.md §4.5).
pub const ENCRYPTED_OVERHEAD: usize = 1 + 32 + 8;

/// Encryption runs AES-CTR and the MAC block by block over pieces of this size, so each piece
/// is still in L1/L2 cache when the MAC reads it (one pass over memory instead of two).
const CRYPT_BLOCK: usize = 64 * 1024;

/// The secret part of a borg key (FORMAT.md §4.2). `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// AES-256 key (FORMAT.md §4.2 `enc_key`, 32 bytes; random and unused in authenticated modes).
    pub enc_key: [u8; 32],
    /// MAC key (`enc_hmac_key`): 32 bytes, or 128 (64 random ‖ 64 zero) in the blake2 modes.
    pub enc_hmac_key: Vec<u8>,
    /// ID hash key (`id_key`): 32 bytes, or 128 in the blake2 modes (FORMAT.md §4.6).
    pub id_key: Vec<u8>,
    /// Buzhash seed, signed 32-bit as stored (FORMAT.md §4.2 `chunk_seed`).
    pub chunk_seed: i32,
    /// Repository id the key belongs to (must equal `config` `id`).
    pub repository_id: [u8; 32],
    /// `tam_required` field; `None` for keys from before borg 1.0.9 (FORMAT.md §4.9: then the
    /// security-dir `tam_required` file decides).
    pub tam_required: Option<bool>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("repository_id", &hex::encode(self.repository_id))
            .field("chunk_seed", &self.chunk_seed)
            .field("tam_required", &self.tam_required)
            .finish_non_exhaustive()
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        wipe(&mut self.enc_key);
        wipe(&mut self.enc_hmac_key);
        wipe(&mut self.id_key);
    }
}

/// Overwrites secret bytes with zeros in a way the optimiser keeps.
pub(crate) fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// `urandom(64) ‖ zero(64)`: borg's BLAKE2b "key" (FORMAT.md §0 item 3).
fn random_blake2_key() -> Vec<u8> {
    let mut k = vec![0u8; 128];
    rand::rngs::OsRng.fill_bytes(&mut k[..64]);
    k
}

impl KeyMaterial {
    /// New random material as borg creates it (FORMAT.md §4.2): 100 random bytes split into
    /// enc_key, enc_hmac_key, id_key and a signed big-endian chunk seed; the blake2 modes then
    /// replace enc_hmac_key and id_key with 64 random ‖ 64 zero bytes. `tam_required` is true.
    pub fn generate(blake2: bool, repository_id: [u8; 32]) -> KeyMaterial {
        let mut r: [u8; 100] = random_bytes();
        let mut enc_key = [0u8; 32];
        enc_key.copy_from_slice(&r[0..32]);
        let mut m = KeyMaterial {
            enc_key,
            enc_hmac_key: r[32..64].to_vec(),
            id_key: r[64..96].to_vec(),
            chunk_seed: i32::from_be_bytes([r[96], r[97], r[98], r[99]]),
            repository_id,
            tam_required: Some(true),
        };
        wipe(&mut r);
        if blake2 {
            m.enc_hmac_key = random_blake2_key();
            m.id_key = random_blake2_key();
        }
        m
    }

    /// The msgpack map of FORMAT.md §4.2 (sorted keys; `tam_required` omitted when `None`).
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            ("chunk_seed", Value::int(self.chunk_seed)),
            ("enc_hmac_key", Value::raw(&self.enc_hmac_key)),
            ("enc_key", Value::raw(self.enc_key)),
            ("id_key", Value::raw(&self.id_key)),
            ("repository_id", Value::raw(self.repository_id)),
            ("version", Value::int(1)),
        ];
        if let Some(t) = self.tam_required {
            entries.push(("tam_required", Value::Bool(t)));
        }
        Value::sorted_map(entries)
    }

    /// Packs the material as borg does (`msgpack.packb(Key.as_dict())`).
    pub fn to_msgpack(&self) -> Vec<u8> {
        self.to_value().to_bytes()
    }

    /// Parses packed key material with borg's key limits (FORMAT.md §4.2, §7.1); version must be 1.
    pub fn from_msgpack(data: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let v = msgpack::decode_all(data, msgpack::Limits::KEY)?;
        KeyMaterial::from_value(&v)
    }

    /// Reads the material out of a decoded msgpack map (FORMAT.md §4.2).
    pub fn from_value(v: &Value) -> Result<KeyMaterial, CryptoError> {
        if v.as_map().is_none() {
            return Err(CryptoError::InvalidKeyData(
                "key material is not a map".into(),
            ));
        }
        let field = |name: &str| {
            v.get(name)
                .ok_or_else(|| CryptoError::InvalidKeyData(format!("key material lacks {name}")))
        };
        let bytes = |name: &str| -> Result<Vec<u8>, CryptoError> {
            match field(name)? {
                Value::Raw(b) => Ok(b.clone()),
                _ => Err(CryptoError::InvalidKeyData(format!(
                    "{name} is not a byte string"
                ))),
            }
        };
        match field("version")? {
            Value::Int(1) => {}
            Value::Int(n) => return Err(CryptoError::UnsupportedKeyVersion(*n)),
            _ => {
                return Err(CryptoError::InvalidKeyData(
                    "version is not an integer".into(),
                ))
            }
        }
        let enc_key: [u8; 32] = bytes("enc_key")?
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidKeyData("enc_key is not 32 bytes".into()))?;
        let repository_id: [u8; 32] = bytes("repository_id")?
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidKeyData("repository_id is not 32 bytes".into()))?;
        let chunk_seed = match field("chunk_seed")? {
            Value::Int(n) => i32::try_from(*n).map_err(|_| {
                CryptoError::InvalidKeyData("chunk_seed is not a signed 32-bit integer".into())
            })?,
            _ => {
                return Err(CryptoError::InvalidKeyData(
                    "chunk_seed is not an integer".into(),
                ))
            }
        };
        let tam_required = match v.get("tam_required") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(CryptoError::InvalidKeyData(
                    "tam_required is not a boolean".into(),
                ))
            }
        };
        Ok(KeyMaterial {
            enc_key,
            enc_hmac_key: bytes("enc_hmac_key")?,
            id_key: bytes("id_key")?,
            chunk_seed,
            repository_id,
            tam_required,
        })
    }
}

/// A fresh HMAC-SHA256 state for `key`.
fn new_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// `HMAC-SHA256(key, parts…)`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_hmac(key);
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Unkeyed BLAKE2b-256 over `key ‖ parts…` (borg's "keyed" BLAKE2b, FORMAT.md §0 item 3).
pub(crate) fn blake2b_256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(key);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// AES-256-CTR with the 16-byte IV `zero(8) ‖ be64(counter)` (FORMAT.md §4.5), in place.
pub(crate) fn aes_ctr(key: &[u8; 32], iv16: &[u8; 16], data: &mut [u8]) {
    let mut c = Aes256Ctr::new(key.into(), iv16.into());
    c.apply_keystream(data);
}

/// A key: its type plus, except in `none` mode, its material.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    key_type: KeyType,
    material: Option<KeyMaterial>,
    /// borg's `ignore_invalid_archive_tam` workaround: an archive whose TAM does not verify
    /// is read as one without a TAM. Off unless a command turns it on for its own key.
    ignore_invalid_archive_tam: bool,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("key_type", &self.key_type)
            .field("material", &self.material)
            .finish()
    }
}

enum DecryptFailure {
    Envelope,
    Mac,
}

impl Key {
    /// A new random key of `key_type` for a repository (FORMAT.md §4.2). `none` gives
    /// [`Key::plaintext`].
    pub fn generate(key_type: KeyType, repository_id: [u8; 32]) -> Key {
        if !key_type.has_key_material() {
            return Key::plaintext();
        }
        Key {
            key_type,
            material: Some(KeyMaterial::generate(key_type.uses_blake2(), repository_id)),
            ignore_invalid_archive_tam: false,
        }
    }

    /// The key of `none` mode (TYPE 0x02): no material, SHA-256 ids.
    pub fn plaintext() -> Key {
        Key {
            key_type: KeyType::Plaintext,
            material: None,
            ignore_invalid_archive_tam: false,
        }
    }

    /// A key from decrypted material. For [`KeyType::Plaintext`] the material is dropped.
    pub fn from_material(key_type: KeyType, m: KeyMaterial) -> Key {
        if !key_type.has_key_material() {
            return Key::plaintext();
        }
        Key {
            key_type,
            material: Some(m),
            ignore_invalid_archive_tam: false,
        }
    }

    /// Reads archives whose TAM does not verify as archives without a TAM (borg's
    /// `ignore_invalid_archive_tam` workaround), for `upgrade --archives-tam`, which must read
    /// exactly those archives to authenticate them again.
    pub fn set_ignore_invalid_archive_tam(&mut self, on: bool) {
        self.ignore_invalid_archive_tam = on;
    }

    /// True when [`Key::set_ignore_invalid_archive_tam`] turned the workaround on.
    pub fn ignores_invalid_archive_tam(&self) -> bool {
        self.ignore_invalid_archive_tam
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The material; `None` in `none` mode.
    pub fn material(&self) -> Option<&KeyMaterial> {
        self.material.as_ref()
    }

    /// Mutable material, e.g. to resolve a missing `tam_required` from the security dir.
    pub fn material_mut(&mut self) -> Option<&mut KeyMaterial> {
        self.material.as_mut()
    }

    /// The chunker seed as the chunker uses it (`seed & 0xffffffff`); 0 in `none` mode.
    pub fn chunk_seed(&self) -> u32 {
        self.material.as_ref().map_or(0, |m| m.chunk_seed as u32)
    }

    /// `id_hash` (FORMAT.md §4.6): SHA-256 in `none` mode, HMAC-SHA256(id_key) or unkeyed
    /// BLAKE2b-256(id_key128 ‖ data).
    pub fn id_hash(&self, data: &[u8]) -> [u8; 32] {
        match &self.material {
            None => Sha256::digest(data).into(),
            Some(m) if self.key_type.uses_blake2() => blake2b_256(&m.id_key, &[data]),
            Some(m) => hmac_sha256(&m.id_key, &[data]),
        }
    }

    /// Whether TAM is required (FORMAT.md §4.9): the material's `tam_required`, `false` when the
    /// field is absent (resolve it with [`Key::resolve_tam_required`]) and in `none` mode.
    pub fn tam_required(&self) -> bool {
        self.material
            .as_ref()
            .and_then(|m| m.tam_required)
            .unwrap_or(false)
    }

    /// Fills in a missing `tam_required` from the security-dir `tam_required` file's
    /// existence (FORMAT.md §4.8, §4.9). A field already present wins.
    pub fn resolve_tam_required(&mut self, security_file_exists: bool) {
        if let Some(m) = self.material.as_mut() {
            if m.tam_required.is_none() {
                m.tam_required = Some(security_file_exists);
            }
        }
    }

    /// Whether TAM is required by the material's own field (`None` if absent or in `none` mode).
    pub fn tam_required_field(&self) -> Option<bool> {
        self.material.as_ref().and_then(|m| m.tam_required)
    }

    fn mac(&self, m: &KeyMaterial, iv8: &[u8], ct: &[u8]) -> [u8; 32] {
        if self.key_type.uses_blake2() {
            blake2b_256(&m.enc_hmac_key, &[iv8, ct])
        } else {
            hmac_sha256(&m.enc_hmac_key, &[iv8, ct])
        }
    }

    /// Wraps compression-framed bytes into a repository object (FORMAT.md §4.5):
    /// `TYPE ‖ MAC ‖ IV8 ‖ AES-CTR(framed)` when encrypting, else `TYPE ‖ framed`. `iv` is the
    /// AES-CTR block counter (see [`super::NonceManager`]); ignored when not encrypting.
    ///
    /// Allocates the object and copies `framed` into it; [`Key::seal_in_place`] avoids that
    /// when the caller compresses into a buffer that already has room for the envelope.
    pub fn encrypt(&self, framed: &[u8], iv: u64) -> Vec<u8> {
        let env = self.envelope_len();
        let mut out = Vec::with_capacity(env + framed.len());
        out.resize(env, 0);
        out.extend_from_slice(framed);
        self.seal_in_place(&mut out, iv);
        out
    }

    /// Bytes in front of the compression-framed payload in this key's objects (FORMAT.md §4.5):
    /// [`ENCRYPTED_OVERHEAD`] (TYPE ‖ MAC ‖ IV8) when encrypting, else 1 (TYPE).
    pub fn envelope_len(&self) -> usize {
        match &self.material {
            Some(_) if self.key_type.is_encrypting() => ENCRYPTED_OVERHEAD,
            _ => 1,
        }
    }

    /// Turns `object = [envelope_len() bytes of any value] ‖ framed` into the repository object
    /// in place: the same bytes as `encrypt(framed, iv)` without allocating or copying.
    ///
    /// AES-CTR and the MAC run together over 64 KiB pieces, so the data is read from memory
    /// once. Typical use, with [`crate::compress::compress_into`]:
    ///
    /// ```
    /// # use hoard::{compress::{compress_into, Compression}, crypto::{Key, KeyType}};
    /// let key = Key::generate(KeyType::Repokey, [0; 32]);
    /// let mut object = vec![0; key.envelope_len()];
    /// compress_into(&Compression::Lz4, b"chunk data", &mut object);
    /// key.seal_in_place(&mut object, 42);
    /// assert_eq!(key.decrypt(&object).unwrap()[2..], b"chunk data"[..]);
    /// ```
    ///
    /// # Panics
    /// If `object` is shorter than [`Key::envelope_len`] (a caller bug, never caused by data).
    pub fn seal_in_place(&self, object: &mut [u8], iv: u64) {
        let env = self.envelope_len();
        assert!(object.len() >= env, "object shorter than its envelope");
        object[0] = self.key_type.type_byte();
        let Some(m) = self.material.as_ref().filter(|_| env == ENCRYPTED_OVERHEAD) else {
            return;
        };
        let iv8 = iv.to_be_bytes();
        let (head, payload) = object.split_at_mut(ENCRYPTED_OVERHEAD);
        head[33..41].copy_from_slice(&iv8);
        let mut cipher = Aes256Ctr::new((&m.enc_key).into(), (&iv16(iv)).into());
        let mac: [u8; 32] = if self.key_type.uses_blake2() {
            let mut h = Blake2b::<U32>::new();
            h.update(&m.enc_hmac_key);
            h.update(iv8);
            for piece in payload.chunks_mut(CRYPT_BLOCK) {
                cipher.apply_keystream(piece);
                h.update(&*piece);
            }
            h.finalize().into()
        } else {
            let mut h = new_hmac(&m.enc_hmac_key);
            h.update(&iv8);
            for piece in payload.chunks_mut(CRYPT_BLOCK) {
                cipher.apply_keystream(piece);
                h.update(piece);
            }
            h.finalize().into_bytes().into()
        };
        head[1..33].copy_from_slice(&mac);
    }

    /// Verifies the MAC of `object` (constant time), then decrypts it in place and returns the
    /// compression-framed payload, a part of `object` (no allocation, no copy). Same checks
    /// and errors as [`Key::decrypt`]; on error `object` is unchanged.
    pub fn open_in_place<'a>(&self, object: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        self.open_inner(object).map_err(|f| self.integrity_error(f))
    }

    /// Like [`Key::open_in_place`] with [`Key::decrypt_chunk`]'s per-chunk messages.
    pub fn open_chunk_in_place<'a>(
        &self,
        id: Option<&[u8; 32]>,
        object: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        self.open_inner(object)
            .map_err(|f| self.chunk_integrity_error(id, f))
    }

    /// Checks TYPE and MAC; on success returns the start of the payload.
    fn check_envelope(&self, object: &[u8]) -> Result<usize, DecryptFailure> {
        let Some(&type_byte) = object.first() else {
            return Err(DecryptFailure::Envelope);
        };
        if !self.key_type.accepts_object_type(type_byte) {
            return Err(DecryptFailure::Envelope);
        }
        match &self.material {
            Some(m) if self.key_type.is_encrypting() => {
                if object.len() < ENCRYPTED_OVERHEAD {
                    return Err(DecryptFailure::Mac);
                }
                let mac = &object[1..33];
                let iv8 = &object[33..41];
                let ct = &object[ENCRYPTED_OVERHEAD..];
                let expected = self.mac(m, iv8, ct);
                if !bool::from(expected.ct_eq(mac)) {
                    return Err(DecryptFailure::Mac);
                }
                Ok(ENCRYPTED_OVERHEAD)
            }
            _ => Ok(1),
        }
    }

    fn open_inner<'a>(&self, object: &'a mut [u8]) -> Result<&'a mut [u8], DecryptFailure> {
        let start = self.check_envelope(object)?;
        let (head, payload) = object.split_at_mut(start);
        if let Some(m) = self
            .material
            .as_ref()
            .filter(|_| start == ENCRYPTED_OVERHEAD)
        {
            let mut iv = [0u8; 16];
            iv[8..].copy_from_slice(&head[33..41]);
            aes_ctr(&m.enc_key, &iv, payload);
        }
        Ok(payload)
    }

    fn decrypt_inner(&self, object: &[u8]) -> Result<Vec<u8>, DecryptFailure> {
        let start = self.check_envelope(object)?;
        let ct = &object[start..];
        let Some(m) = self
            .material
            .as_ref()
            .filter(|_| start == ENCRYPTED_OVERHEAD)
        else {
            return Ok(ct.to_vec());
        };
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&object[33..41]);
        let mut cipher = Aes256Ctr::new((&m.enc_key).into(), (&iv).into());
        // Copy and decrypt piece by piece, so each piece is decrypted while still in cache.
        let mut out = Vec::with_capacity(ct.len());
        for piece in ct.chunks(CRYPT_BLOCK) {
            let s = out.len();
            out.extend_from_slice(piece);
            cipher.apply_keystream(&mut out[s..]);
        }
        Ok(out)
    }

    fn integrity_error(&self, f: DecryptFailure) -> CryptoError {
        match f {
            DecryptFailure::Envelope => CryptoError::Integrity(self.envelope_message().into()),
            DecryptFailure::Mac => CryptoError::Integrity("MAC Authentication failed".into()),
        }
    }

    fn chunk_integrity_error(&self, id: Option<&[u8; 32]>, f: DecryptFailure) -> CryptoError {
        let id_str = id.map_or_else(|| "(unknown)".to_string(), hex::encode);
        match f {
            DecryptFailure::Envelope => {
                CryptoError::Integrity(format!("Chunk {id_str}: {}", self.envelope_message()))
            }
            DecryptFailure::Mac => CryptoError::Integrity(format!(
                "Chunk {id_str}: Could not decrypt [MAC Authentication failed]"
            )),
        }
    }

    /// Verifies the MAC (constant time) and returns the compression-framed bytes (FORMAT.md §4.5).
    /// The TYPE byte must be this key's own, or 0x01 for the repokey types (borg's rule).
    /// Errors: `Data integrity error: Invalid encryption envelope` (`Invalid envelope` in the
    /// unencrypted modes) or `Data integrity error: MAC Authentication failed`.
    pub fn decrypt(&self, object: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.decrypt_inner(object)
            .map_err(|f| self.integrity_error(f))
    }

    /// Like [`Key::decrypt`] with borg's per-chunk messages: `Chunk <id>: Invalid encryption
    /// envelope`, `Chunk <id>: Could not decrypt [MAC Authentication failed]`
    /// (`(unknown)` without an id).
    pub fn decrypt_chunk(
        &self,
        id: Option<&[u8; 32]>,
        object: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.decrypt_inner(object)
            .map_err(|f| self.chunk_integrity_error(id, f))
    }

    /// Checks `id_hash(plaintext) == id` in constant time (borg's `assert_id`, FORMAT.md §4.5):
    /// `Data integrity error: Chunk <id>: id verification failed`.
    pub fn assert_id(&self, id: &[u8; 32], plaintext: &[u8]) -> Result<(), CryptoError> {
        if bool::from(self.id_hash(plaintext).ct_eq(id)) {
            Ok(())
        } else {
            Err(CryptoError::Integrity(format!(
                "Chunk {}: id verification failed",
                hex::encode(id)
            )))
        }
    }

    fn envelope_message(&self) -> &'static str {
        match self.key_type {
            KeyType::Authenticated | KeyType::AuthenticatedBlake2 => "Invalid envelope",
            _ => "Invalid encryption envelope",
        }
    }

    /// Number of AES blocks a payload of `framed_len` bytes uses: `ceil(len / 16)` (FORMAT.md §4.7).
    pub fn blocks_for(framed_len: usize) -> u64 {
        (framed_len as u64).div_ceil(16)
    }

    /// The IV (block counter) stored in an encrypted object (TYPE 0x00, 0x01, 0x03-0x05);
    /// `None` for other types or objects too short.
    pub fn object_iv(object: &[u8]) -> Option<u64> {
        let t = KeyType::from_type_byte(*object.first()?).ok()?;
        if !t.is_encrypting() || object.len() < ENCRYPTED_OVERHEAD {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&object[33..41]);
        Some(u64::from_be_bytes(b))
    }

    /// borg's `manifest_nonce` (FORMAT.md §4.7): IV of the manifest object plus
    /// `ceil(len(whole object) / 16)`; 0 for keys that do not encrypt. The manifest's TYPE byte
    /// must fit the key (`Data integrity error: Manifest: Invalid encryption envelope`).
    pub fn manifest_nonce(&self, manifest_object: &[u8]) -> Result<u64, CryptoError> {
        let bad = || CryptoError::Integrity("Manifest: Invalid encryption envelope".into());
        if self.key_type == KeyType::Plaintext {
            return Ok(0);
        }
        let t = *manifest_object.first().ok_or_else(bad)?;
        if !self.key_type.accepts_object_type(t) {
            return Err(bad());
        }
        if !self.key_type.is_encrypting() {
            return Ok(0);
        }
        let iv = Key::object_iv(manifest_object).ok_or_else(bad)?;
        iv.checked_add(Key::blocks_for(manifest_object.len()))
            .ok_or_else(|| CryptoError::Nonce("manifest IV out of range".into()))
    }
}

fn iv16(counter: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&counter.to_be_bytes());
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_lengths() {
        for t in KeyType::ALL {
            let k = Key::generate(t, [7; 32]);
            match k.material() {
                None => assert_eq!(t, KeyType::Plaintext),
                Some(m) => {
                    let n = if t.uses_blake2() { 128 } else { 32 };
                    assert_eq!(m.id_key.len(), n);
                    assert_eq!(m.enc_hmac_key.len(), n);
                    if n == 128 {
                        assert!(m.id_key[64..].iter().all(|b| *b == 0));
                        assert!(m.enc_hmac_key[64..].iter().all(|b| *b == 0));
                    }
                    assert_eq!(m.tam_required, Some(true));
                    assert_eq!(m.repository_id, [7; 32]);
                }
            }
        }
    }

    #[test]
    fn material_round_trip() {
        let m = KeyMaterial::generate(true, [1; 32]);
        let packed = m.to_msgpack();
        assert_eq!(KeyMaterial::from_msgpack(&packed).unwrap(), m);
        let mut old = m.clone();
        old.tam_required = None;
        assert_eq!(KeyMaterial::from_msgpack(&old.to_msgpack()).unwrap(), old);
    }

    #[test]
    fn blake2_rule_is_unkeyed_concatenation() {
        let mut m = KeyMaterial::generate(true, [0; 32]);
        m.id_key = (0..128u8).map(|i| if i < 64 { i } else { 0 }).collect();
        let k = Key::from_material(KeyType::RepokeyBlake2, m.clone());
        let mut h = Blake2b::<U32>::new();
        h.update(&m.id_key);
        h.update(b"data");
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(k.id_hash(b"data"), want);
        // and it is not BLAKE2b's keyed mode
        use blake2::digest::Mac as _;
        let keyed = blake2::Blake2bMac::<U32>::new_from_slice(&m.id_key[..64])
            .unwrap()
            .chain_update(b"data")
            .finalize()
            .into_bytes();
        assert_ne!(keyed.as_slice(), &want[..]);
    }

    #[test]
    fn encrypt_decrypt_round_trip_and_tamper() {
        for t in KeyType::ALL {
            let k = Key::generate(t, [3; 32]);
            let framed = b"\x00\x00some framed payload of some length".to_vec();
            let obj = k.encrypt(&framed, 0x1234);
            assert_eq!(obj[0], t.type_byte());
            if t.is_encrypting() {
                assert_eq!(obj.len(), framed.len() + ENCRYPTED_OVERHEAD);
                assert_eq!(Key::object_iv(&obj), Some(0x1234));
            } else {
                assert_eq!(&obj[1..], &framed[..]);
                assert_eq!(Key::object_iv(&obj), None);
            }
            assert_eq!(k.decrypt(&obj).unwrap(), framed);
            if t.is_encrypting() {
                for pos in [1, 35, obj.len() - 1] {
                    let mut bad = obj.clone();
                    bad[pos] ^= 1;
                    let e = k.decrypt(&bad).unwrap_err();
                    assert_eq!(
                        e.to_string(),
                        "Data integrity error: MAC Authentication failed"
                    );
                }
            }
            let mut wrong_type = obj.clone();
            wrong_type[0] = if t == KeyType::Plaintext { 3 } else { 2 };
            assert!(k.decrypt(&wrong_type).is_err());
            assert!(k.decrypt(&[]).is_err());
        }
    }

    #[test]
    fn passphrase_type_objects_read_by_repokey() {
        let k = Key::generate(KeyType::Repokey, [0; 32]);
        let mut obj = k.encrypt(b"xyz", 5);
        obj[0] = 1;
        assert_eq!(k.decrypt(&obj).unwrap(), b"xyz");
        let e = k.decrypt_chunk(Some(&[0xab; 32]), &[9, 1, 2]).unwrap_err();
        assert!(e.to_string().contains("Invalid encryption envelope"));
        assert!(e.to_string().contains(&"ab".repeat(32)));
    }

    #[test]
    fn blocks_and_manifest_nonce() {
        assert_eq!(Key::blocks_for(0), 0);
        assert_eq!(Key::blocks_for(1), 1);
        assert_eq!(Key::blocks_for(16), 1);
        assert_eq!(Key::blocks_for(17), 2);
        let k = Key::generate(KeyType::Keyfile, [0; 32]);
        let obj = k.encrypt(&[0u8; 30], 100);
        assert_eq!(
            k.manifest_nonce(&obj).unwrap(),
            100 + Key::blocks_for(obj.len())
        );
        assert_eq!(Key::plaintext().manifest_nonce(b"\x02xx").unwrap(), 0);
    }

    /// The object of FORMAT.md §4.5 computed the plain two-pass way, as reference.
    fn reference_object(k: &Key, framed: &[u8], iv: u64) -> Vec<u8> {
        let t = k.key_type();
        let mut out = vec![t.type_byte()];
        match k.material() {
            Some(m) if t.is_encrypting() => {
                let mut ct = framed.to_vec();
                aes_ctr(&m.enc_key, &iv16(iv), &mut ct);
                let iv8 = iv.to_be_bytes();
                let mac = if t.uses_blake2() {
                    blake2b_256(&m.enc_hmac_key, &[&iv8, &ct])
                } else {
                    hmac_sha256(&m.enc_hmac_key, &[&iv8, &ct])
                };
                out.extend_from_slice(&mac);
                out.extend_from_slice(&iv8);
                out.extend_from_slice(&ct);
            }
            _ => out.extend_from_slice(framed),
        }
        out
    }

    #[test]
    fn seal_and_open_in_place_match_the_two_pass_form() {
        let data: Vec<u8> = (0..200_017u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for t in KeyType::ALL {
            let k = Key::generate(t, [9; 32]);
            let env = k.envelope_len();
            assert_eq!(
                env,
                if t.is_encrypting() {
                    ENCRYPTED_OVERHEAD
                } else {
                    1
                }
            );
            for len in [0, 1, 15, 16, 17, 65_535, 65_536, 65_537, 131_072, 200_017] {
                let framed = &data[..len];
                // a counter near a 2^64 block boundary of the low half would not matter: the
                // 128-bit counter carries; use an arbitrary one
                let iv = 0x0123_4567_89ab_cdef_u64.wrapping_add(len as u64);
                let want = reference_object(&k, framed, iv);
                let mut obj = vec![0x5a; env];
                obj.extend_from_slice(framed);
                k.seal_in_place(&mut obj, iv);
                assert_eq!(obj, want, "{t:?} len {len}");
                assert_eq!(k.encrypt(framed, iv), want, "{t:?} len {len}");
                assert_eq!(k.decrypt(&obj).unwrap(), framed, "{t:?} len {len}");
                let mut opened = obj.clone();
                assert_eq!(k.open_in_place(&mut opened).unwrap(), framed);
                if t.is_encrypting() && len > 0 {
                    let mut bad = obj.clone();
                    bad[env + len / 2] ^= 0x40;
                    let before = bad.clone();
                    let e = k.open_chunk_in_place(Some(&[1; 32]), &mut bad).unwrap_err();
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "Data integrity error: Chunk {}: Could not decrypt [MAC Authentication failed]",
                            "01".repeat(32)
                        )
                    );
                    assert_eq!(bad, before, "a failed open leaves the object alone");
                    assert!(k.open_in_place(&mut bad[..ENCRYPTED_OVERHEAD - 1]).is_err());
                }
            }
            let mut wrong = k.encrypt(b"abc", 1);
            wrong[0] = if t == KeyType::Plaintext { 3 } else { 2 };
            assert!(k.open_in_place(&mut wrong).is_err());
            assert!(k.open_in_place(&mut []).is_err());
        }
    }
}
