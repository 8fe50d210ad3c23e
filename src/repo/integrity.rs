//! `integrity.T` and borg's `IntegrityCheckedFile` XXH64 scheme (FORMAT.md §2.9).
//!
//! One streaming XXH64 (seed 0) runs over `%10d(len(name)) name`, the file bytes and, at each
//! checkpoint, `%10d(len(part)) part decimal(position)`; the hex digest is taken at each checkpoint
//! without resetting. The same scheme protects the client's cache files, so [`IntegrityHasher`]
//! is public for reuse.

use crate::msgpack::{self, Value};
use xxhash_rust::xxh64::Xxh64;

/// The only algorithm borg 1.2 knows.
pub const ALGORITHM: &str = "XXH64";
/// `integrity.T` `version` (§2.9).
pub const INTEGRITY_VERSION: i64 = 2;

/// Streaming digest state of one integrity-checked file.
pub struct IntegrityHasher {
    h: Xxh64,
    pos: u64,
    digests: Vec<(String, String)>,
}

impl IntegrityHasher {
    /// Starts a hasher for the file whose basename (without `.tmp`) is `filename`.
    pub fn new(filename: &str) -> Self {
        let mut h = Xxh64::new(0);
        h.update(format!("{:>10}", filename.len()).as_bytes());
        h.update(filename.as_bytes());
        IntegrityHasher {
            h,
            pos: 0,
            digests: Vec::new(),
        }
    }

    /// Feeds file content.
    pub fn update(&mut self, data: &[u8]) {
        self.h.update(data);
        self.pos += data.len() as u64;
    }

    /// A checkpoint named `part` at the current file position; returns and records the digest.
    pub fn hash_part(&mut self, part: &str) -> String {
        self.h.update(format!("{:>10}", part.len()).as_bytes());
        self.h.update(part.as_bytes());
        self.h.update(self.pos.to_string().as_bytes());
        let d = format!("{:016x}", self.h.digest());
        self.digests.push((part.to_string(), d.clone()));
        d
    }

    /// The `final` checkpoint; returns all digests recorded, in order.
    pub fn finish(mut self) -> Vec<(String, String)> {
        self.hash_part("final");
        self.digests
    }
}

/// Formats digests as borg's JSON text (`json.dumps` default separators).
pub fn to_json(digests: &[(String, String)]) -> String {
    let inner: Vec<String> = digests
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect();
    format!(
        "{{\"algorithm\": \"{ALGORITHM}\", \"digests\": {{{}}}}}",
        inner.join(", ")
    )
}

/// Digests of an index file (`HashHeader` after the 18-byte header, then `final`).
pub fn index_digests(name: &str, data: &[u8]) -> Vec<(String, String)> {
    let mut h = IntegrityHasher::new(name);
    let split = data.len().min(super::index::HEADER_SIZE);
    h.update(&data[..split]);
    h.hash_part("HashHeader");
    h.update(&data[split..]);
    h.finish()
}

/// Digests of a hints file (only `final`).
pub fn hints_digests(name: &str, data: &[u8]) -> Vec<(String, String)> {
    let mut h = IntegrityHasher::new(name);
    h.update(data);
    h.finish()
}

/// Outcome of parsing stored integrity JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Usable digests.
    Digests(Vec<(String, String)>),
    /// Unknown algorithm: borg warns and skips verification.
    UnknownAlgorithm(String),
}

/// Parses borg's integrity JSON; `Err` when unparsable or without a `final` digest (borg
/// raises `FileIntegrityError` then).
pub fn parse_json(text: &str) -> Result<Stored, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let alg = v
        .get("algorithm")
        .and_then(|a| a.as_str())
        .ok_or("no algorithm")?;
    if alg != ALGORITHM {
        return Ok(Stored::UnknownAlgorithm(alg.to_string()));
    }
    let d = v
        .get("digests")
        .and_then(|d| d.as_object())
        .ok_or("no digests")?;
    if !d.contains_key("final") {
        return Err("no final digest".into());
    }
    Ok(Stored::Digests(
        d.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
    ))
}

/// Verifies computed digests against stored ones: every computed part must match (a part the
/// stored data lacks is a mismatch, as in borg).
pub fn digests_match(computed: &[(String, String)], stored: &[(String, String)]) -> bool {
    computed.iter().all(|(k, v)| {
        stored
            .iter()
            .find(|(sk, _)| sk == k)
            .is_some_and(|(_, sv)| sv == v)
    })
}

/// The content of `integrity.T`: msgpack `{version: 2, hints: json, index: json}` (§2.9).
pub fn encode_file(hints_json: &str, index_json: &str) -> Vec<u8> {
    Value::Map(vec![
        (Value::raw("version"), Value::int(INTEGRITY_VERSION)),
        (Value::raw("hints"), Value::raw(hints_json)),
        (Value::raw("index"), Value::raw(index_json)),
    ])
    .to_bytes()
}

/// Parsed `integrity.T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrityFile {
    /// Version 2 with the JSON texts of the `hints` and `index` entries (if present).
    V2 {
        /// JSON for `hints.T`.
        hints: Option<String>,
        /// JSON for `index.T`.
        index: Option<String>,
    },
    /// Another version: borg logs "Unknown integrity data version" and skips verification.
    UnknownVersion(String),
}

/// Parses `integrity.T`.
pub fn decode_file(data: &[u8]) -> Result<IntegrityFile, String> {
    let v = msgpack::decode_all(data, msgpack::Limits::INTEGRITY).map_err(|e| e.to_string())?;
    if v.as_map().is_none() {
        return Err("integrity data is not a map".into());
    }
    match v.get("version").and_then(|x| x.as_i64()) {
        Some(INTEGRITY_VERSION) => {}
        other => return Ok(IntegrityFile::UnknownVersion(format!("{other:?}"))),
    }
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    Ok(IntegrityFile::V2 {
        hints: s("hints"),
        index: s("index"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let d = vec![
            ("HashHeader".to_string(), "0011223344556677".to_string()),
            ("final".to_string(), "8899aabbccddeeff".to_string()),
        ];
        assert_eq!(
            to_json(&d),
            r#"{"algorithm": "XXH64", "digests": {"HashHeader": "0011223344556677", "final": "8899aabbccddeeff"}}"#
        );
        assert_eq!(parse_json(&to_json(&d)).unwrap(), Stored::Digests(d));
        assert!(parse_json("{").is_err());
    }
}
