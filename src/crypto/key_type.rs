//! The eight borg 1.x key types and their TYPE bytes (FORMAT.md §4.1).

use super::CryptoError;

/// A borg key type, identified on disk by the first byte of every repository object (FORMAT.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// 0x00 `keyfile`: AES-256-CTR + HMAC-SHA256, key blob in a key file.
    Keyfile,
    /// 0x01 legacy `passphrase` mode; objects are read with the repokey class (FORMAT.md §4.1 notes).
    Passphrase,
    /// 0x02 `none`: no encryption, SHA-256 ids.
    Plaintext,
    /// 0x03 `repokey`: AES-256-CTR + HMAC-SHA256, key blob in the repository `config`.
    Repokey,
    /// 0x04 `keyfile-blake2`: AES-256-CTR + BLAKE2b MAC, key file.
    KeyfileBlake2,
    /// 0x05 `repokey-blake2`: AES-256-CTR + BLAKE2b MAC, key in `config`.
    RepokeyBlake2,
    /// 0x06 `authenticated-blake2`: no encryption, BLAKE2b ids, key in `config`.
    AuthenticatedBlake2,
    /// 0x07 `authenticated`: no encryption, HMAC-SHA256 ids, key in `config`.
    Authenticated,
}

impl KeyType {
    /// All key types, in TYPE byte order.
    pub const ALL: [KeyType; 8] = [
        KeyType::Keyfile,
        KeyType::Passphrase,
        KeyType::Plaintext,
        KeyType::Repokey,
        KeyType::KeyfileBlake2,
        KeyType::RepokeyBlake2,
        KeyType::AuthenticatedBlake2,
        KeyType::Authenticated,
    ];

    /// The key type for a TYPE byte, as borg's `AVAILABLE_KEY_TYPES` know them.
    /// Unknown bytes give [`CryptoError::UnsupportedPayload`].
    pub fn from_type_byte(b: u8) -> Result<KeyType, CryptoError> {
        KeyType::ALL
            .get(b as usize)
            .copied()
            .ok_or(CryptoError::UnsupportedPayload(b))
    }

    /// The key type borg uses to *open* a repository whose manifest has this TYPE byte
    /// (`identify_key`): 0x01 is dispatched to [`KeyType::Repokey`].
    pub fn identify(manifest_type_byte: u8) -> Result<KeyType, CryptoError> {
        match KeyType::from_type_byte(manifest_type_byte)? {
            KeyType::Passphrase => Ok(KeyType::Repokey),
            t => Ok(t),
        }
    }

    /// The TYPE byte (FORMAT.md §4.1).
    pub fn type_byte(self) -> u8 {
        match self {
            KeyType::Keyfile => 0x00,
            KeyType::Passphrase => 0x01,
            KeyType::Plaintext => 0x02,
            KeyType::Repokey => 0x03,
            KeyType::KeyfileBlake2 => 0x04,
            KeyType::RepokeyBlake2 => 0x05,
            KeyType::AuthenticatedBlake2 => 0x06,
            KeyType::Authenticated => 0x07,
        }
    }

    /// Parses an `--encryption` mode name. The legacy passphrase mode has no name and is refused
    /// like borg does (`Invalid encryption mode "..."`).
    pub fn from_mode_name(s: &str) -> Result<KeyType, CryptoError> {
        KeyType::ALL
            .iter()
            .copied()
            .find(|t| *t != KeyType::Passphrase && t.mode_name() == s)
            .ok_or_else(|| CryptoError::InvalidEncryptionMode(s.to_string()))
    }

    /// borg's `ARG_NAME`: the `--encryption` value, and `encryption.mode` in `--json` output.
    /// The legacy passphrase type has no argument name in borg (`None`); `"passphrase"` is
    /// returned here.
    pub fn mode_name(self) -> &'static str {
        match self {
            KeyType::Keyfile => "keyfile",
            KeyType::Passphrase => "passphrase",
            KeyType::Plaintext => "none",
            KeyType::Repokey => "repokey",
            KeyType::KeyfileBlake2 => "keyfile-blake2",
            KeyType::RepokeyBlake2 => "repokey-blake2",
            KeyType::AuthenticatedBlake2 => "authenticated-blake2",
            KeyType::Authenticated => "authenticated",
        }
    }

    /// borg's `NAME` of the key class (`"key file"`, `"repokey BLAKE2b"`, `"plaintext"`, …).
    /// `borg info` prints `Encrypted: Yes (<NAME>)` except for `plaintext` and `authenticated`,
    /// see [`KeyType::info_encryption`].
    pub fn description(self) -> &'static str {
        match self {
            KeyType::Keyfile => "key file",
            KeyType::Passphrase => "passphrase",
            KeyType::Plaintext => "plaintext",
            KeyType::Repokey => "repokey",
            KeyType::KeyfileBlake2 => "key file BLAKE2b",
            KeyType::RepokeyBlake2 => "repokey BLAKE2b",
            KeyType::AuthenticatedBlake2 => "authenticated BLAKE2b",
            KeyType::Authenticated => "authenticated",
        }
    }

    /// The `Encrypted: …` line of `borg info` (without the `Key file:` line that follows for
    /// key-file modes). Borg 1.2.4 compares the NAME against `plaintext` and `authenticated`
    /// only, so `authenticated-blake2` prints `Encrypted: Yes (authenticated BLAKE2b)`.
    pub fn info_encryption(self) -> String {
        match self {
            KeyType::Plaintext | KeyType::Authenticated => "Encrypted: No".to_string(),
            t => format!("Encrypted: Yes ({})", t.description()),
        }
    }

    /// Whether objects are AES-CTR encrypted (TYPE ‖ MAC ‖ IV ‖ CT layout, FORMAT.md §4.5).
    pub fn is_encrypting(self) -> bool {
        matches!(
            self,
            KeyType::Keyfile
                | KeyType::Passphrase
                | KeyType::Repokey
                | KeyType::KeyfileBlake2
                | KeyType::RepokeyBlake2
        )
    }

    /// Whether the key blob lives in the repository `config` (FORMAT.md §4.4).
    pub fn stores_key_in_repo(self) -> bool {
        matches!(
            self,
            KeyType::Repokey
                | KeyType::RepokeyBlake2
                | KeyType::Authenticated
                | KeyType::AuthenticatedBlake2
        )
    }

    /// Whether the key blob lives in a key file (FORMAT.md §4.4).
    pub fn uses_keyfile(self) -> bool {
        matches!(self, KeyType::Keyfile | KeyType::KeyfileBlake2)
    }

    /// Whether the id hash and MAC use the BLAKE2b construction (FORMAT.md §4.5, §4.6).
    pub fn uses_blake2(self) -> bool {
        matches!(
            self,
            KeyType::KeyfileBlake2 | KeyType::RepokeyBlake2 | KeyType::AuthenticatedBlake2
        )
    }

    /// Whether this type has key material (everything but `none`).
    pub fn has_key_material(self) -> bool {
        self != KeyType::Plaintext
    }

    /// borg's `logically_encrypted` (FORMAT.md §4.1 notes), which governs the "unknown unencrypted
    /// repository" prompt: false for `none` and the authenticated modes, and for the repokey
    /// modes unlocked with an empty passphrase; key-file modes are always logically encrypted.
    pub fn logically_encrypted(self, empty_passphrase: bool) -> bool {
        match self {
            KeyType::Plaintext | KeyType::Authenticated | KeyType::AuthenticatedBlake2 => false,
            KeyType::Repokey | KeyType::RepokeyBlake2 | KeyType::Passphrase => !empty_passphrase,
            KeyType::Keyfile | KeyType::KeyfileBlake2 => true,
        }
    }

    /// Whether objects of TYPE byte `b` are accepted by a key of this type (borg's `decrypt`):
    /// the own byte, plus 0x01 for the repokey classes (`RepoKey`, `Blake2RepoKey`).
    pub fn accepts_object_type(self, b: u8) -> bool {
        b == self.type_byte()
            || (b == KeyType::Passphrase.type_byte()
                && matches!(self, KeyType::Repokey | KeyType::RepokeyBlake2))
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mode_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_names_round_trip() {
        for t in KeyType::ALL {
            assert_eq!(KeyType::from_type_byte(t.type_byte()).unwrap(), t);
            if t != KeyType::Passphrase {
                assert_eq!(KeyType::from_mode_name(t.mode_name()).unwrap(), t);
            }
        }
        assert!(KeyType::from_type_byte(8).is_err());
        assert!(KeyType::from_mode_name("passphrase").is_err());
        assert!(KeyType::from_mode_name("blake2").is_err());
        assert_eq!(KeyType::identify(1).unwrap(), KeyType::Repokey);
    }

    #[test]
    fn info_lines() {
        assert_eq!(KeyType::Plaintext.info_encryption(), "Encrypted: No");
        assert_eq!(KeyType::Authenticated.info_encryption(), "Encrypted: No");
        assert_eq!(
            KeyType::KeyfileBlake2.info_encryption(),
            "Encrypted: Yes (key file BLAKE2b)"
        );
        assert_eq!(
            KeyType::AuthenticatedBlake2.info_encryption(),
            "Encrypted: Yes (authenticated BLAKE2b)"
        );
    }

    #[test]
    fn families() {
        assert!(KeyType::Repokey.accepts_object_type(1));
        assert!(KeyType::RepokeyBlake2.accepts_object_type(1));
        assert!(!KeyType::Keyfile.accepts_object_type(1));
        assert!(!KeyType::Authenticated.accepts_object_type(1));
        assert!(KeyType::AuthenticatedBlake2.uses_blake2());
        assert!(!KeyType::AuthenticatedBlake2.is_encrypting());
        assert!(!KeyType::Repokey.logically_encrypted(true));
        assert!(KeyType::Repokey.logically_encrypted(false));
        assert!(KeyType::Keyfile.logically_encrypted(true));
        assert!(!KeyType::Authenticated.logically_encrypted(false));
    }
}
