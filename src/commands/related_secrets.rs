//! `key export-related-secrets` and `init --import-related-secrets` (borg 1.4.5): a new
//! repository can share the id key and chunker seed of an existing one, so that the same data
//! chunks into the same pieces with the same ids in both ("related repositories", e.g. for
//! copying archives between them later). The encryption and MAC keys stay unique per
//! repository.
//!
//! The file is borg's JSON: `{"version": 1, "id_key": "<hex>", "chunk_seed": <int>,
//! "key_name": "<key NAME>"}` (`json.dump(indent=4)` and a newline).

use std::io::Read;

use crate::archive::Operation;
use crate::crypto::KeyType;
use crate::location::Location;
use crate::security::Confirm;

use super::common::{self, Access, CommandError, Result};

/// The secrets a related repository shares.
#[derive(Clone, PartialEq, Eq)]
pub struct RelatedSecrets {
    /// The id key (`id_key`): 32 bytes (HMAC-SHA256 key, or BLAKE2b's key material).
    pub id_key: Vec<u8>,
    /// The chunker seed (`chunk_seed`), a signed 32-bit value as borg stores it.
    pub chunk_seed: i32,
    /// borg's key class NAME of the source (`repokey`, `key file BLAKE2b`, …).
    pub key_name: String,
}

impl std::fmt::Debug for RelatedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelatedSecrets")
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

fn command_error(message: impl std::fmt::Display) -> CommandError {
    CommandError::with_id(format!("Command Error: {message}"), "CommandError")
}

/// The JSON text `key export-related-secrets` writes.
pub fn to_json(s: &RelatedSecrets) -> String {
    // borg: json.dump(secrets, fd, indent=4); fd.write('\n') with keys in this order
    format!(
        "{{\n    \"version\": 1,\n    \"id_key\": \"{}\",\n    \"chunk_seed\": {},\n    \"key_name\": {}\n}}\n",
        hex::encode(&s.id_key),
        s.chunk_seed,
        serde_json::Value::String(s.key_name.clone())
    )
}

/// Parses a secrets file's text; `path` names it in the errors (borg's messages). Stricter
/// than borg 1.4.5, which takes any hex string as id key: the id key must be 32 bytes and the
/// seed a 32-bit integer, as every borg key has them.
pub fn parse(text: &str, path: &str) -> Result<RelatedSecrets> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| command_error(format!("Invalid JSON in related secrets file: {path}")))?;
    let Some(obj) = v.as_object() else {
        return Err(command_error(format!(
            "Invalid JSON in related secrets file: {path}"
        )));
    };
    match obj.get("version") {
        Some(serde_json::Value::Number(n)) if n.as_i64() == Some(1) => {}
        other => {
            let shown = match other {
                None | Some(serde_json::Value::Null) => "None".to_string(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(x) => x.to_string(),
            };
            return Err(command_error(format!(
                "Unsupported related secrets version: {shown}"
            )));
        }
    }
    let id_key = obj
        .get("id_key")
        .and_then(|v| v.as_str())
        .and_then(|h| hex::decode(h).ok())
        .filter(|k| k.len() == 32)
        .ok_or_else(|| command_error(format!("Invalid id_key in related secrets file: {path}")))?;
    let chunk_seed = obj
        .get("chunk_seed")
        .and_then(|v| v.as_i64())
        .and_then(|s| i32::try_from(s).ok())
        .ok_or_else(|| {
            command_error(format!(
                "Invalid chunk_seed in related secrets file: {path}"
            ))
        })?;
    let key_name = obj
        .get("key_name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| command_error(format!("Invalid key_name in related secrets file: {path}")))?
        .to_string();
    Ok(RelatedSecrets {
        id_key,
        chunk_seed,
        key_name,
    })
}

/// Reads and parses a secrets file (`-`: standard input), at most 64 KiB.
pub fn read(path: &str) -> Result<RelatedSecrets> {
    const MAX: u64 = 64 * 1024;
    let mut text = String::new();
    let res = if path == "-" {
        std::io::stdin().take(MAX).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX).read_to_string(&mut text))
    };
    res.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            command_error(format!("Invalid JSON in related secrets file: {path}"))
        } else {
            CommandError::new(format!("{path}: {}", crate::platform::strerror(&e)))
        }
    })?;
    parse(&text, path)
}

/// borg's `uses_same_id_hash`: both HMAC-SHA256 id hashes or both BLAKE2b.
pub fn uses_same_id_hash(source_key_name: &str, new: KeyType) -> bool {
    const HMAC_SHA256: [&str; 3] = ["repokey", "key file", "authenticated"];
    const BLAKE2: [&str; 3] = [
        "repokey BLAKE2b",
        "key file BLAKE2b",
        "authenticated BLAKE2b",
    ];
    let name = new.description();
    (HMAC_SHA256.contains(&source_key_name) && HMAC_SHA256.contains(&name))
        || (BLAKE2.contains(&source_key_name) && BLAKE2.contains(&name))
}

/// The error when the id hashes differ (borg's `Error`, exit 2).
pub fn incompatible() -> CommandError {
    CommandError::with_id(
        "Error: You must keep the same ID hash (HMAC-SHA256 or BLAKE2b) or deduplication will break.",
        "Error",
    )
}

/// `key export-related-secrets REPO PATH`: the secrets of the repository's key.
pub fn export(
    loc: &Location,
    lock_wait: f64,
    lock: bool,
    confirm: Confirm<'_>,
) -> Result<RelatedSecrets> {
    let access = Access {
        exclusive: false,
        lock_wait,
        lock,
    };
    let opened = common::open_with_manifest(loc, &access, &[Operation::Read], confirm)?;
    let key = &opened.store.key;
    let Some(m) = key.material() else {
        return Err(CommandError::with_id(
            "Keymanagement not available for unencrypted repositories.",
            "UnencryptedRepo",
        ));
    };
    Ok(RelatedSecrets {
        id_key: m.id_key.clone(),
        chunk_seed: m.chunk_seed,
        key_name: key.key_type().description().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> RelatedSecrets {
        RelatedSecrets {
            id_key: vec![0xab; 32],
            chunk_seed: -5,
            key_name: "repokey".into(),
        }
    }

    #[test]
    fn json_round_trips() {
        let s = secrets();
        assert_eq!(parse(&to_json(&s), "f").unwrap(), s);
        assert!(to_json(&s).starts_with("{\n    \"version\": 1,\n    \"id_key\": \"abab"));
    }

    #[test]
    fn bad_files_get_borgs_messages() {
        let err = |t: &str| parse(t, "f").unwrap_err().message;
        assert_eq!(
            err("nojson"),
            "Command Error: Invalid JSON in related secrets file: f"
        );
        assert_eq!(
            err("{\"version\": 2}"),
            "Command Error: Unsupported related secrets version: 2"
        );
        assert_eq!(
            err("{}"),
            "Command Error: Unsupported related secrets version: None"
        );
        assert_eq!(
            err("{\"version\": 1}"),
            "Command Error: Invalid id_key in related secrets file: f"
        );
        assert_eq!(
            err("{\"version\": 1, \"id_key\": \"00\", \"chunk_seed\": 1, \"key_name\": \"repokey\"}"),
            "Command Error: Invalid id_key in related secrets file: f"
        );
        let k = "ab".repeat(32);
        assert_eq!(
            err(&format!("{{\"version\": 1, \"id_key\": \"{k}\", \"chunk_seed\": 4294967296, \"key_name\": \"repokey\"}}")),
            "Command Error: Invalid chunk_seed in related secrets file: f"
        );
    }

    #[test]
    fn id_hash_families_must_match() {
        assert!(uses_same_id_hash("repokey", KeyType::Keyfile));
        assert!(uses_same_id_hash("key file", KeyType::Authenticated));
        assert!(!uses_same_id_hash("repokey", KeyType::RepokeyBlake2));
        assert!(uses_same_id_hash(
            "repokey BLAKE2b",
            KeyType::AuthenticatedBlake2
        ));
        assert!(!uses_same_id_hash("plaintext", KeyType::Repokey));
    }
}
