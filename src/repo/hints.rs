//! `hints.T` (FORMAT.md §2.8): per-segment live counts, freeable bytes, storage quota use and the
//! shadow index (§2.15). Reads version 1 (borg 1.0) and 2; writes version 2.

use super::ObjectId;
use crate::msgpack::{self, Value};
use std::collections::BTreeMap;

/// The hints version this code writes (§2.8).
pub const HINTS_VERSION: i64 = 2;

/// Decoded hints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// `segments`: segment → number of live PUT entries (§2.8).
    pub segments: BTreeMap<u32, i64>,
    /// `compact`: segment → freeable bytes (§2.8). For v1 files, the listed segments with 0.
    pub compact: BTreeMap<u32, i64>,
    /// `storage_quota_use` (§2.14); 0 when absent.
    pub storage_quota_use: u64,
    /// `shadow_index`: key → segments with a PUT superseded by a later DELETE (§2.15).
    pub shadow_index: BTreeMap<ObjectId, Vec<u32>>,
    /// True for a version-1 file (whose `compact` was a list; sparse info must be rebuilt).
    pub from_v1: bool,
}

/// Largest value accepted in `segments` and `compact`: a segment is smaller than
/// `MAX_SEGMENT_SIZE_LIMIT` (< 4 GiB), so neither its entry count nor its freeable bytes can be
/// larger. A value beyond `±MAX_SEGMENT_VALUE` is a hostile or corrupted file, refused here
/// (the repository then rebuilds its hints) rather than overflowing later arithmetic; small
/// negative values are let through, as borg reads them.
pub const MAX_SEGMENT_VALUE: i64 = 1 << 32;

/// Largest `storage_quota_use` accepted (4 EiB): later additions cannot overflow.
pub const MAX_QUOTA_USE: u64 = 1 << 62;

fn int_map(v: Option<&Value>, what: &str) -> Result<BTreeMap<u32, i64>, String> {
    let mut out = BTreeMap::new();
    let Some(v) = v else {
        return Err(format!("hints: missing {what}"));
    };
    let m = v
        .as_map()
        .ok_or_else(|| format!("hints: {what} is not a map"))?;
    for (k, val) in m {
        let k = k
            .as_u64()
            .and_then(|k| u32::try_from(k).ok())
            .ok_or_else(|| format!("hints: bad {what} key"))?;
        let val = val
            .as_i64()
            .filter(|v| (-MAX_SEGMENT_VALUE..=MAX_SEGMENT_VALUE).contains(v))
            .ok_or_else(|| format!("hints: bad {what} value for segment {k}"))?;
        out.insert(k, val);
    }
    Ok(out)
}

impl Hints {
    /// Parses a hints file.
    pub fn decode(data: &[u8]) -> Result<Hints, String> {
        let v = msgpack::decode_all(data, msgpack::Limits::HINTS).map_err(|e| e.to_string())?;
        if v.as_map().is_none() {
            return Err("hints: not a map".into());
        }
        let version = v
            .get("version")
            .and_then(|x| x.as_i64())
            .ok_or("hints: no version")?;
        let segments = int_map(v.get("segments"), "segments")?;
        match version {
            1 => {
                let mut compact = BTreeMap::new();
                if let Some(list) = v.get("compact").and_then(|c| c.as_array()) {
                    for s in list {
                        if let Some(s) = s.as_u64().and_then(|s| u32::try_from(s).ok()) {
                            compact.insert(s, 0);
                        }
                    }
                }
                Ok(Hints {
                    segments,
                    compact,
                    storage_quota_use: 0,
                    shadow_index: BTreeMap::new(),
                    from_v1: true,
                })
            }
            2 => {
                let compact = int_map(v.get("compact"), "compact")?;
                let storage_quota_use = match v.get("storage_quota_use") {
                    None => 0,
                    Some(x) => x
                        .as_u64()
                        .filter(|&q| q <= MAX_QUOTA_USE)
                        .ok_or("hints: bad storage_quota_use")?,
                };
                let mut shadow_index = BTreeMap::new();
                if let Some(si) = v.get("shadow_index") {
                    let m = si.as_map().ok_or("hints: shadow_index is not a map")?;
                    for (k, segs) in m {
                        let kb = k.as_bytes().ok_or("hints: bad shadow_index key")?;
                        let key: ObjectId = kb
                            .try_into()
                            .map_err(|_| "hints: shadow_index key not 32 bytes")?;
                        let list = segs.as_array().ok_or("hints: bad shadow_index value")?;
                        let mut out = Vec::with_capacity(list.len());
                        for s in list {
                            out.push(
                                s.as_u64()
                                    .and_then(|s| u32::try_from(s).ok())
                                    .ok_or("hints: bad shadow_index segment")?,
                            );
                        }
                        shadow_index.insert(key, out);
                    }
                }
                Ok(Hints {
                    segments,
                    compact,
                    storage_quota_use,
                    shadow_index,
                    from_v1: false,
                })
            }
            other => Err(format!("Unknown hints file version: {other}")),
        }
    }

    /// Serialises as version 2, keys in borg's order (§2.8), integer map keys.
    pub fn encode(&self) -> Vec<u8> {
        let im = |m: &BTreeMap<u32, i64>| {
            Value::Map(
                m.iter()
                    .map(|(k, v)| (Value::int(*k), Value::int(*v)))
                    .collect(),
            )
        };
        let shadow = Value::Map(
            self.shadow_index
                .iter()
                .map(|(k, segs)| {
                    (
                        Value::raw(k),
                        Value::Array(segs.iter().map(|s| Value::int(*s)).collect()),
                    )
                })
                .collect(),
        );
        Value::Map(vec![
            (Value::raw("version"), Value::int(HINTS_VERSION)),
            (Value::raw("segments"), im(&self.segments)),
            (Value::raw("compact"), im(&self.compact)),
            (
                Value::raw("storage_quota_use"),
                Value::int(self.storage_quota_use),
            ),
            (Value::raw("shadow_index"), shadow),
        ])
        .to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_v2_and_read_v1() {
        let mut h = Hints::default();
        h.segments.insert(2, 26);
        h.segments.insert(21, 0);
        h.compact.insert(21, 41);
        h.storage_quota_use = 116059;
        h.shadow_index.insert([0xac; 32], vec![2]);
        let b = h.encode();
        assert_eq!(Hints::decode(&b).unwrap(), h);
        let v1 = Value::Map(vec![
            (Value::raw("version"), Value::int(1)),
            (
                Value::raw("segments"),
                Value::Map(vec![(Value::int(3), Value::int(4))]),
            ),
            (Value::raw("compact"), Value::Array(vec![Value::int(3)])),
        ])
        .to_bytes();
        let h1 = Hints::decode(&v1).unwrap();
        assert!(h1.from_v1);
        assert_eq!(h1.compact.get(&3), Some(&0));
        assert!(Hints::decode(b"\xc1").is_err());
    }

    #[test]
    fn absurd_counts_and_sizes_are_refused() {
        let hints = |segments: i64, compact: i64, quota: u64| {
            Value::Map(vec![
                (Value::raw("version"), Value::int(2)),
                (
                    Value::raw("segments"),
                    Value::Map(vec![(Value::int(1), Value::int(segments))]),
                ),
                (
                    Value::raw("compact"),
                    Value::Map(vec![(Value::int(1), Value::int(compact))]),
                ),
                (Value::raw("storage_quota_use"), Value::int(quota)),
            ])
            .to_bytes()
        };
        assert!(Hints::decode(&hints(3, 100, 1000)).is_ok());
        let e = Hints::decode(&hints(i64::MAX, 0, 0)).unwrap_err();
        assert_eq!(e, "hints: bad segments value for segment 1");
        assert!(Hints::decode(&hints(-1, 0, 0)).is_ok());
        assert!(Hints::decode(&hints(i64::MIN, 0, 0)).is_err());
        assert!(Hints::decode(&hints(0, i64::MAX, 0)).is_err());
        assert!(Hints::decode(&hints(0, 0, u64::MAX)).is_err());
    }
}
