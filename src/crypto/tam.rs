//! TAM — tertiary authentication of metadata: the HKDF-SHA512 + HMAC-SHA512 tag inside the
//! manifest and archive metadata maps (FORMAT.md §4.9).

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha512;
use subtle::ConstantTimeEq;

use super::{CryptoError, Key};
use crate::msgpack::{self, Limits, Value};

/// The only TAM suite borg 1.2 knows.
pub const TAM_SUITE: &str = "HKDF_HMAC_SHA512";

/// Which metadata a TAM protects; the HKDF `info` ends with this name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Manifest,
    Archive,
}

impl Key {
    /// The TAM key (FORMAT.md §4.9): `HKDF-SHA512(id_key ‖ enc_key ‖ enc_hmac_key, salt,
    /// "borg-metadata-authentication-" ‖ context, 64)`, or `salt ‖ context` in `none` mode.
    pub fn tam_key(&self, salt: &[u8], context: &str) -> Vec<u8> {
        match self.material() {
            None => {
                let mut k = salt.to_vec();
                k.extend_from_slice(context.as_bytes());
                k
            }
            Some(m) => {
                let mut ikm = Vec::with_capacity(m.id_key.len() + 32 + m.enc_hmac_key.len());
                ikm.extend_from_slice(&m.id_key);
                ikm.extend_from_slice(&m.enc_key);
                ikm.extend_from_slice(&m.enc_hmac_key);
                let hk = Hkdf::<Sha512>::new(Some(salt), &ikm);
                super::key::wipe(&mut ikm);
                let mut info = b"borg-metadata-authentication-".to_vec();
                info.extend_from_slice(context.as_bytes());
                let mut okm = vec![0u8; 64];
                if hk.expand(&info, &mut okm).is_err() {
                    unreachable!("64 bytes is a valid HKDF-SHA512 output length");
                }
                okm
            }
        }
    }

    fn tam_hmac(&self, salt: &[u8], context: &str, data: &[u8]) -> [u8; 64] {
        let key = self.tam_key(salt, context);
        let mut mac = match Hmac::<Sha512>::new_from_slice(&key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Packs `value` with a TAM (FORMAT.md §4.9): adds (or replaces) the `tam` entry
    /// `{hmac, salt: 64 random bytes, type: "HKDF_HMAC_SHA512"}`, sorts the top-level keys, packs,
    /// computes HMAC-SHA512 over the packing with 64 zero bytes as hmac, and packs again with the
    /// real hmac. `context` is `"manifest"` or `"archive"`.
    ///
    /// # Panics
    /// If `value` is not a msgpack map (a programming error, never caused by input data).
    pub fn pack_and_authenticate_metadata(&self, value: Value, context: &str) -> Vec<u8> {
        let mut salt = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        self.pack_and_authenticate_metadata_with_salt(value, context, &salt)
    }

    /// [`Key::pack_and_authenticate_metadata`] with a given salt (for tests and reproducibility).
    ///
    /// # Panics
    /// If `value` is not a msgpack map.
    pub fn pack_and_authenticate_metadata_with_salt(
        &self,
        value: Value,
        context: &str,
        salt: &[u8; 64],
    ) -> Vec<u8> {
        let Value::Map(mut entries) = value else {
            panic!("pack_and_authenticate_metadata needs a msgpack map");
        };
        entries.retain(|(k, _)| k.as_bytes() != Some(b"tam"));
        let tam = |hmac: &[u8]| {
            Value::sorted_map(vec![
                ("hmac", Value::raw(hmac)),
                ("salt", Value::raw(salt)),
                ("type", Value::raw(TAM_SUITE)),
            ])
        };
        entries.push((Value::raw("tam"), tam(&[0u8; 64])));
        entries.sort_by(|a, b| {
            let ka = a.0.as_bytes().unwrap_or(&[]);
            let kb = b.0.as_bytes().unwrap_or(&[]);
            ka.cmp(kb)
        });
        let mut map = Value::Map(entries);
        let unauthenticated = map.to_bytes();
        let hmac = self.tam_hmac(salt, context, &unauthenticated);
        if let Some(t) = map.get_mut("tam") {
            *t = tam(&hmac);
        }
        map.to_bytes()
    }

    /// Unpacks a manifest plaintext (manifest limits, FORMAT.md §7.1) and checks its TAM with borg
    /// 1.2.4's rules (FORMAT.md §4.9): `c1c1c1c1` → [`CryptoError::UnsupportedManifest`]; a missing
    /// TAM is an error only when TAM is required (and `force_tam_not_required` is false); an
    /// unknown suite likewise; a malformed or wrong TAM always fails with
    /// [`CryptoError::TamInvalid`]. Returns the map without `tam` and whether it was verified.
    /// [`CryptoError::TamRequired`] carries an empty location; see
    /// [`CryptoError::with_location`].
    pub fn unpack_and_verify_manifest(
        &self,
        data: &[u8],
        force_tam_not_required: bool,
    ) -> Result<(Value, bool), CryptoError> {
        if data.starts_with(&[0xc1; 4]) {
            return Err(CryptoError::UnsupportedManifest);
        }
        let required = self.tam_required() && !force_tam_not_required;
        self.unpack_and_verify(data, Context::Manifest, required)
    }

    /// Unpacks archive metadata (archive limits, FORMAT.md §7.1) and checks its TAM with borg 1.2.5+
    /// rules (FORMAT.md §4.9): a missing TAM is [`CryptoError::ArchiveTamRequired`] when the key
    /// requires TAM; a malformed or wrong TAM is always [`CryptoError::ArchiveTamInvalid`].
    /// With [`Key::set_ignore_invalid_archive_tam`] on, a TAM that does not verify (or a
    /// missing one where TAM is required) reads as no TAM: the value, unverified.
    pub fn unpack_and_verify_archive(&self, data: &[u8]) -> Result<(Value, bool), CryptoError> {
        match self.unpack_and_verify(data, Context::Archive, self.tam_required()) {
            Err(CryptoError::ArchiveTamInvalid | CryptoError::ArchiveTamRequired(_))
                if self.ignores_invalid_archive_tam() =>
            {
                Ok((self.unpack_archive_unverified(data)?, false))
            }
            other => other,
        }
    }

    /// Unpacks archive metadata without checking its TAM: the map without `tam`. For the two
    /// places that must look at an archive whose TAM does not verify without trusting it:
    /// `check` (which keeps such an archive and its chunks, never deleting it for an
    /// authentication problem alone) and `upgrade --archives-tam` (which re-authenticates it
    /// after checking its contents).
    pub fn unpack_archive_unverified(&self, data: &[u8]) -> Result<Value, CryptoError> {
        let (value, _) = msgpack::decode_one(data, Limits::ARCHIVE)?;
        let Value::Map(mut entries) = value else {
            return Err(CryptoError::Integrity(
                "archive is not a msgpack map".to_string(),
            ));
        };
        entries.retain(|(k, _)| k.as_bytes() != Some(b"tam"));
        Ok(Value::Map(entries))
    }

    fn unpack_and_verify(
        &self,
        data: &[u8],
        context: Context,
        required: bool,
    ) -> Result<(Value, bool), CryptoError> {
        let (limits, ctx, invalid) = match context {
            Context::Manifest => (Limits::MANIFEST, "manifest", CryptoError::TamInvalid),
            Context::Archive => (Limits::ARCHIVE, "archive", CryptoError::ArchiveTamInvalid),
        };
        // borg's Unpacker reads the first value and ignores anything after it.
        let (value, _) = msgpack::decode_one(data, limits)?;
        let Value::Map(mut entries) = value else {
            return Err(CryptoError::Integrity(format!(
                "{ctx} is not a msgpack map"
            )));
        };
        let Some(pos) = entries
            .iter()
            .position(|(k, _)| k.as_bytes() == Some(b"tam"))
        else {
            if required {
                return Err(match context {
                    Context::Manifest => CryptoError::TamRequired(String::new()),
                    Context::Archive => {
                        let name = entries
                            .iter()
                            .find(|(k, _)| k.as_bytes() == Some(b"name"))
                            .and_then(|(_, v)| v.as_bytes())
                            .map_or_else(|| "<unknown>".to_string(), ascii_replace);
                        CryptoError::ArchiveTamRequired(name)
                    }
                });
            }
            return Ok((Value::Map(entries), false));
        };
        let (_, tam) = entries.remove(pos);
        let unpacked = Value::Map(entries);
        if tam.as_map().is_none() {
            return Err(invalid);
        }
        let suite = match tam.get("type") {
            None => "<none>".to_string(),
            Some(v) => match v.as_bytes() {
                Some(b) => ascii_replace(b),
                None => format!("{v:?}"),
            },
        };
        if suite != TAM_SUITE {
            if required {
                return Err(CryptoError::TamUnsupportedSuite(suite));
            }
            return Ok((unpacked, false));
        }
        let (Some(Value::Raw(hmac)), Some(Value::Raw(salt))) = (tam.get("hmac"), tam.get("salt"))
        else {
            return Err(invalid);
        };
        if hmac.len() != 64 {
            return Err(invalid);
        }
        let Some(offset) = data.windows(64).position(|w| w == hmac.as_slice()) else {
            return Err(invalid);
        };
        let mut zeroed = data.to_vec();
        zeroed[offset..offset + 64].fill(0);
        let calculated = self.tam_hmac(salt, ctx, &zeroed);
        if !bool::from(calculated.ct_eq(hmac.as_slice())) {
            return Err(invalid);
        }
        Ok((unpacked, true))
    }
}

/// Python's `bytes.decode('ascii', 'replace')`.
fn ascii_replace(b: &[u8]) -> String {
    b.iter()
        .map(|&c| if c.is_ascii() { c as char } else { '\u{fffd}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyType;

    fn manifest_value() -> Value {
        Value::sorted_map(vec![
            ("version", Value::int(1)),
            ("timestamp", Value::raw("2026-11-27T02:32:30.483176")),
            ("archives", Value::Map(vec![])),
            (
                "config",
                Value::sorted_map(vec![("tam_required", Value::Bool(true))]),
            ),
            ("item_keys", Value::Array(vec![Value::raw("path")])),
        ])
    }

    #[test]
    fn round_trip_all_types_and_tamper() {
        for t in KeyType::ALL {
            let k = Key::generate(t, [5; 32]);
            let packed = k.pack_and_authenticate_metadata(manifest_value(), "manifest");
            let (v, verified) = k.unpack_and_verify_manifest(&packed, false).unwrap();
            assert!(verified);
            assert!(v.get("tam").is_none());
            assert_eq!(v.get("version"), Some(&Value::int(1)));
            // keys sorted, tam between item_keys and timestamp
            let keys: Vec<_> = crate::msgpack::decode_all(&packed, Limits::MANIFEST)
                .unwrap()
                .as_map()
                .unwrap()
                .iter()
                .map(|(k, _)| k.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                keys,
                [
                    "archives",
                    "config",
                    "item_keys",
                    "tam",
                    "timestamp",
                    "version"
                ]
            );
            // a flipped timestamp byte fails, even in none mode
            let pos = packed.windows(4).position(|w| w == b"2026").unwrap();
            let mut bad = packed.clone();
            bad[pos] ^= 1;
            assert!(matches!(
                k.unpack_and_verify_manifest(&bad, false),
                Err(CryptoError::TamInvalid)
            ));
            // context separation
            assert!(matches!(
                k.unpack_and_verify_archive(&packed),
                Err(CryptoError::ArchiveTamInvalid)
            ));
            let a = k.pack_and_authenticate_metadata(
                Value::sorted_map(vec![("name", Value::raw("a1")), ("version", Value::int(1))]),
                "archive",
            );
            assert!(k.unpack_and_verify_archive(&a).unwrap().1);
        }
    }

    #[test]
    fn none_mode_key_is_salt_and_context() {
        let k = Key::plaintext();
        assert_eq!(k.tam_key(b"salt", "manifest"), b"saltmanifest");
    }

    #[test]
    fn missing_tam_required_vs_not() {
        let plain = manifest_value().to_bytes();
        let k = Key::generate(KeyType::Repokey, [0; 32]);
        assert!(matches!(
            k.unpack_and_verify_manifest(&plain, false),
            Err(CryptoError::TamRequired(_))
        ));
        assert!(!k.unpack_and_verify_manifest(&plain, true).unwrap().1);
        assert!(
            !Key::plaintext()
                .unpack_and_verify_manifest(&plain, false)
                .unwrap()
                .1
        );
        let mut old = Key::generate(KeyType::Repokey, [0; 32]);
        old.material_mut().unwrap().tam_required = None;
        assert!(!old.unpack_and_verify_manifest(&plain, false).unwrap().1);
        old.resolve_tam_required(true);
        assert!(old.unpack_and_verify_manifest(&plain, false).is_err());

        let archive = Value::sorted_map(vec![("name", Value::raw("arch"))]).to_bytes();
        let e = k.unpack_and_verify_archive(&archive).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Archive 'arch' is unauthenticated, but it is required for this repository."
        );
        assert!(
            !Key::plaintext()
                .unpack_and_verify_archive(&archive)
                .unwrap()
                .1
        );
    }

    #[test]
    fn suites_and_future_manifest() {
        let k = Key::generate(KeyType::Authenticated, [0; 32]);
        assert!(matches!(
            k.unpack_and_verify_manifest(&[0xc1, 0xc1, 0xc1, 0xc1, 0], false),
            Err(CryptoError::UnsupportedManifest)
        ));
        let mut v = manifest_value();
        if let Value::Map(e) = &mut v {
            e.push((
                Value::raw("tam"),
                Value::sorted_map(vec![("type", Value::raw("FUTURE"))]),
            ));
        }
        let packed = v.to_bytes();
        let e = k.unpack_and_verify_manifest(&packed, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Could not verify manifest: Unsupported suite 'FUTURE'; a newer version is needed."
        );
        assert!(
            !Key::plaintext()
                .unpack_and_verify_manifest(&packed, false)
                .unwrap()
                .1
        );
        // tam that is not a map is invalid even in none mode
        let mut v = manifest_value();
        if let Value::Map(e) = &mut v {
            e.push((Value::raw("tam"), Value::int(1)));
        }
        assert!(matches!(
            Key::plaintext().unpack_and_verify_manifest(&v.to_bytes(), false),
            Err(CryptoError::TamInvalid)
        ));
    }
}
