//! The manifest: the repository's list of archives, stored under the all-zero key (FORMAT.md §7.2).

use std::collections::BTreeMap;

use crate::crypto::Key;
use crate::msgpack::Value;

use super::ArchiveError;

/// The item keys borg 1.2 writes into `item_keys` (FORMAT.md §7.4), sorted.
pub const ITEM_KEYS: [&str; 23] = [
    "acl_access",
    "acl_default",
    "acl_extended",
    "acl_nfs4",
    "atime",
    "birthtime",
    "bsdflags",
    "chunks",
    "chunks_healthy",
    "ctime",
    "gid",
    "group",
    "hardlink_master",
    "mode",
    "mtime",
    "part",
    "path",
    "rdev",
    "size",
    "source",
    "uid",
    "user",
    "xattrs",
];

/// Operations a manifest's `feature_flags` can demand features for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading archives.
    Read,
    /// Checking.
    Check,
    /// Writing archives.
    Write,
    /// Deleting archives.
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Check => "check",
            Operation::Write => "write",
            Operation::Delete => "delete",
        }
    }
}

/// Python's `repr` of a list of strings (`['a', 'b']`), as borg's feature messages show it.
pub fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// One archive as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRef {
    /// `id`: the archive metadata object's key.
    pub id: [u8; 32],
    /// `time`: the archive start, UTC `%Y-%m-%dT%H:%M:%S.%f`.
    pub time: String,
}

/// The decoded manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `archives`: name (raw bytes, ≤ 255) → reference. Sorted by name, as borg packs it.
    pub archives: BTreeMap<Vec<u8>, ArchiveRef>,
    /// `config`: `{"tam_required": true}` in TAM modes, maybe `feature_flags`.
    pub config: Value,
    /// `item_keys`: the item keys known to the writer.
    pub item_keys: Vec<Vec<u8>>,
    /// `timestamp`: UTC `%Y-%m-%dT%H:%M:%S.%f`, strictly increasing.
    pub timestamp: String,
    /// `version`: 1 (2 accepted on read).
    pub version: i64,
    /// `id_hash(plaintext)` of the manifest as loaded; what the client cache records.
    pub id: [u8; 32],
    /// Whether the TAM was present and verified on load.
    pub tam_verified: bool,
}

/// Formats a UTC time as borg's 26-character timestamp.
pub fn format_timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Parses borg's timestamp (with or without `.%f`) as UTC.
pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::NaiveDateTime;
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|n| n.and_utc())
}

/// `max(now, previous + 1 µs)` in borg's format (FORMAT.md §7.2).
pub fn next_timestamp(previous: Option<&str>) -> String {
    let now = chrono::Utc::now();
    let min = previous
        .and_then(parse_timestamp)
        .map(|p| p + chrono::Duration::microseconds(1));
    let t = match min {
        Some(m) if m > now => m,
        _ => now,
    };
    format_timestamp(t)
}

impl Manifest {
    /// A new, empty manifest as `borg init` writes it.
    pub fn new(key: &Key) -> Manifest {
        let config = if key.tam_required() {
            Value::sorted_map(vec![("tam_required", Value::Bool(true))])
        } else {
            Value::Map(vec![])
        };
        Manifest {
            archives: BTreeMap::new(),
            config,
            item_keys: ITEM_KEYS.iter().map(|k| k.as_bytes().to_vec()).collect(),
            timestamp: String::new(),
            version: 1,
            id: [0; 32],
            tam_verified: true,
        }
    }

    /// Decodes and authenticates manifest plaintext (TAM rules of FORMAT.md §4.9).
    pub fn from_plaintext(
        key: &Key,
        plaintext: &[u8],
        force_tam_not_required: bool,
    ) -> Result<Manifest, ArchiveError> {
        let (value, verified) =
            key.unpack_and_verify_manifest(plaintext, force_tam_not_required)?;
        let bad = |what: &str| ArchiveError::Corrupt(format!("manifest: {what}"));
        let version = value
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no version"))?;
        if version != 1 && version != 2 {
            return Err(ArchiveError::Corrupt(format!(
                "Invalid manifest version {version}"
            )));
        }
        let mut archives = BTreeMap::new();
        if let Some(entries) = value.get("archives").and_then(Value::as_map) {
            for (name, entry) in entries {
                let name = name.as_bytes().ok_or_else(|| bad("archive name"))?;
                let id = entry
                    .get("id")
                    .and_then(Value::as_bytes)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| bad("archive id"))?;
                let time = entry
                    .get("time")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("archive time"))?;
                archives.insert(
                    name.to_vec(),
                    ArchiveRef {
                        id,
                        time: time.to_string(),
                    },
                );
            }
        } else {
            return Err(bad("no archives map"));
        }
        let item_keys = value
            .get("item_keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_bytes().map(<[u8]>::to_vec))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Manifest {
            archives,
            config: value.get("config").cloned().unwrap_or(Value::Map(vec![])),
            item_keys,
            timestamp: value
                .get("timestamp")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no timestamp"))?
                .to_string(),
            version,
            id: key.id_hash(plaintext),
            tam_verified: verified,
        })
    }

    /// Sets a new timestamp and packs the manifest with its TAM.
    pub fn to_plaintext(&mut self, key: &Key) -> Vec<u8> {
        self.timestamp = next_timestamp(if self.timestamp.is_empty() {
            None
        } else {
            Some(&self.timestamp)
        });
        let archives = Value::Map(
            self.archives
                .iter()
                .map(|(name, r)| {
                    (
                        Value::raw(name),
                        Value::sorted_map(vec![
                            ("id", Value::raw(r.id)),
                            ("time", Value::raw(&r.time)),
                        ]),
                    )
                })
                .collect(),
        );
        let mut item_keys: Vec<Vec<u8>> = self.item_keys.clone();
        for k in ITEM_KEYS {
            if !item_keys.iter().any(|x| x == k.as_bytes()) {
                item_keys.push(k.as_bytes().to_vec());
            }
        }
        item_keys.sort();
        let value = Value::sorted_map(vec![
            ("archives", archives),
            ("config", self.config.clone()),
            (
                "item_keys",
                Value::Array(item_keys.into_iter().map(Value::Raw).collect()),
            ),
            ("timestamp", Value::raw(&self.timestamp)),
            ("version", Value::int(1)),
        ]);
        let packed = key.pack_and_authenticate_metadata(value, "manifest");
        self.id = key.id_hash(&packed);
        packed
    }

    /// Refuses operations for which the manifest lists mandatory features (borg 1.2 supports
    /// none, so any listed feature is unsupported).
    pub fn check_features(&self, operations: &[Operation]) -> Result<(), ArchiveError> {
        let Some(flags) = self.config.get("feature_flags") else {
            return Ok(());
        };
        let mut missing: Vec<String> = Vec::new();
        for op in operations {
            if let Some(list) = flags
                .get(op.name())
                .and_then(|f| f.get("mandatory"))
                .and_then(Value::as_array)
            {
                missing.extend(
                    list.iter()
                        .filter_map(|v| v.as_bytes())
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                );
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            missing.sort();
            missing.dedup();
            Err(ArchiveError::MandatoryFeatureUnsupported(missing))
        }
    }

    /// Archive names sorted by start time (then name), as borg lists them.
    pub fn archives_by_time(&self) -> Vec<(&[u8], &ArchiveRef)> {
        let mut v: Vec<_> = self
            .archives
            .iter()
            .map(|(n, r)| (n.as_slice(), r))
            .collect();
        v.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_strictly_increase_even_from_the_future() {
        let future = "2999-01-01T00:00:00.000000";
        assert_eq!(next_timestamp(Some(future)), "2999-01-01T00:00:00.000001");
        let now = next_timestamp(None);
        assert_eq!(now.len(), 26);
        assert!(next_timestamp(Some(&now)) > now);
    }

    #[test]
    fn manifest_round_trips_through_plaintext() {
        let key = Key::plaintext();
        let mut m = Manifest::new(&key);
        m.archives.insert(
            b"a1".to_vec(),
            ArchiveRef {
                id: [7; 32],
                time: "2023-01-01T12:00:00.000000".into(),
            },
        );
        let pt = m.to_plaintext(&key);
        let back = Manifest::from_plaintext(&key, &pt, false).unwrap();
        assert_eq!(back.archives, m.archives);
        assert_eq!(back.timestamp, m.timestamp);
        assert_eq!(back.item_keys.len(), 23);
        assert!(back.tam_verified);
    }
}
