//! The borg hash index file format (FORMAT.md §2.7): `index.T` (NSIndex, 8-byte values) and, reused
//! later by the client cache, `chunks` / `chunks.archive.d/*` (ChunkIndex, 12-byte values).
//!
//! In memory the index is a plain hash map; the on-disk open-addressing table is rebuilt on write
//! with borg's table sizes and linear probing so that borg's lookup finds every key.

use std::collections::HashMap;

/// Index file magic (§2.7).
pub const MAGIC: &[u8; 8] = b"BORG_IDX";
/// Header size: magic, num_entries i32, num_buckets i32, key_size u8, value_size u8 (§2.7).
pub const HEADER_SIZE: usize = 18;
/// Key size of every borg index (§2.7).
pub const KEY_SIZE: usize = 32;
/// First value u32 of an empty bucket (§2.7).
pub const EMPTY: u32 = 0xFFFF_FFFF;
/// First value u32 of a tombstone (§2.7).
pub const DELETED: u32 = 0xFFFF_FFFE;
/// Largest first value u32 of a used bucket; larger values are reserved (§2.7).
pub const MAX_VALUE: u32 = 0xFFFF_FBFF;
/// borg's maximum load factor (§2.7).
pub const HASH_MAX_LOAD: f64 = 0.75;
/// borg's table sizes (§2.7).
pub const HASH_SIZES: [u32; 58] = [
    1031, 2053, 4099, 8209, 16411, 32771, 65537, 131101, 262147, 445649, 757607, 1287917, 2189459,
    3065243, 4291319, 6007867, 8410991, 11775359, 16485527, 23079703, 27695653, 33234787, 39881729,
    47858071, 57429683, 68915617, 82698751, 99238507, 119086189, 144378011, 157223263, 173476439,
    190253911, 209915011, 230493629, 253169431, 278728861, 306647623, 337318939, 370742809,
    408229973, 449387209, 493428073, 543105119, 596976533, 657794869, 722676499, 795815791,
    874066969, 962279771, 1057701643, 1164002657, 1280003147, 1407800297, 1548442699, 1703765389,
    1873768367, 2062383853,
];

/// A malformed index file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IndexFormatError(pub String);

/// A borg hash index with 32-byte keys and `V`-byte values. Use [`NsIndex`] for `index.T`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashIndex<const V: usize> {
    map: HashMap<[u8; 32], [u8; V]>,
}

/// The repository index: value = `segment u32 LE | offset u32 LE` (§2.7).
pub type NsIndex = HashIndex<8>;
/// The client chunks cache: value = `refcount | size | csize`, u32 LE each (§2.7, §8).
pub type ChunkIndex = HashIndex<12>;

/// Smallest borg table size that holds `n` entries within the maximum load.
pub fn table_size_for(n: usize) -> Option<u32> {
    HASH_SIZES
        .iter()
        .copied()
        .find(|&s| n <= (s as f64 * HASH_MAX_LOAD) as usize)
}

impl<const V: usize> HashIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        HashIndex {
            map: HashMap::new(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &[u8; 32]) -> Option<&[u8; V]> {
        self.map.get(key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.map.contains_key(key)
    }

    /// Sets the raw value of `key`. The first u32 must be ≤ [`MAX_VALUE`].
    pub fn insert(&mut self, key: [u8; 32], value: [u8; V]) {
        self.map.insert(key, value);
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8; 32]) -> Option<[u8; V]> {
        self.map.remove(key)
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 32], &[u8; V])> {
        self.map.iter()
    }

    /// All keys, sorted bytewise (a stable order for `list` pagination).
    pub fn sorted_keys(&self) -> Vec<[u8; 32]> {
        let mut k: Vec<_> = self.map.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// Parses an index file (tombstones, empty buckets and the compact form are handled).
    pub fn read(data: &[u8]) -> Result<Self, IndexFormatError> {
        let err = |m: &str| IndexFormatError(m.to_string());
        if data.len() < HEADER_SIZE {
            return Err(err("index file too short for its header"));
        }
        if &data[..8] != MAGIC {
            return Err(err("Unknown MAGIC in header"));
        }
        let num_entries = i32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let num_buckets = i32::from_le_bytes([data[12], data[13], data[14], data[15]]);
        let key_size = data[16] as usize;
        let value_size = data[17] as usize;
        if key_size != KEY_SIZE {
            return Err(err("Unexpected key size"));
        }
        if value_size != V {
            return Err(err("Unexpected value size"));
        }
        if num_entries < 0 || num_buckets < 0 {
            return Err(err("Negative entry or bucket count"));
        }
        let bsize = KEY_SIZE + V;
        let expect = (num_buckets as u64) * bsize as u64 + HEADER_SIZE as u64;
        if data.len() as u64 != expect {
            return Err(IndexFormatError(format!(
                "Incorrect file length (expected {expect}, got {})",
                data.len()
            )));
        }
        let mut map = HashMap::with_capacity((num_entries as usize).min(num_buckets as usize));
        for b in data[HEADER_SIZE..].chunks_exact(bsize) {
            let marker = u32::from_le_bytes([b[32], b[33], b[34], b[35]]);
            if marker == EMPTY || marker == DELETED {
                continue;
            }
            if marker > MAX_VALUE {
                return Err(err("Reserved value in a used bucket"));
            }
            let mut k = [0u8; 32];
            k.copy_from_slice(&b[..32]);
            let mut v = [0u8; V];
            v.copy_from_slice(&b[32..]);
            if map.insert(k, v).is_some() {
                return Err(err("Duplicate key in index"));
            }
        }
        if map.len() != num_entries as usize {
            return Err(IndexFormatError(format!(
                "Entry count mismatch (header {num_entries}, found {})",
                map.len()
            )));
        }
        Ok(HashIndex { map })
    }

    /// Serialises with borg's table size for the entry count and linear probing from
    /// `u32_le(key[0:4]) % num_buckets` (keys inserted in sorted order, so output is deterministic).
    pub fn write(&self) -> Vec<u8> {
        let n = self.map.len();
        let buckets = table_size_for(n).unwrap_or((n as u64 * 4 / 3 + 1) as u32) as usize;
        self.write_with_buckets(buckets)
    }

    /// Serialises into a table of exactly `num_buckets` buckets (must exceed the entry count).
    pub fn write_with_buckets(&self, num_buckets: usize) -> Vec<u8> {
        let num_buckets = num_buckets.max(self.map.len() + 1);
        let bsize = KEY_SIZE + V;
        let mut table = vec![0u8; num_buckets * bsize];
        for b in table.chunks_exact_mut(bsize) {
            b[32..36].copy_from_slice(&EMPTY.to_le_bytes());
        }
        for k in self.sorted_keys() {
            let v = &self.map[&k];
            let mut i = u32::from_le_bytes([k[0], k[1], k[2], k[3]]) as usize % num_buckets;
            loop {
                let b = &mut table[i * bsize..(i + 1) * bsize];
                if b[32..36] == EMPTY.to_le_bytes() {
                    b[..32].copy_from_slice(&k);
                    b[32..].copy_from_slice(v);
                    break;
                }
                i = (i + 1) % num_buckets;
            }
        }
        let mut out = Self::header(n_i32(self.map.len()), n_i32(num_buckets));
        out.extend_from_slice(&table);
        out
    }

    /// The compact form (`num_buckets == num_entries`, no empty buckets), as borg writes
    /// `chunks.archive.d/*.compact` (§8). Only for storage; lookups need [`Self::read`].
    pub fn write_compact(&self) -> Vec<u8> {
        let n = n_i32(self.map.len());
        let mut out = Self::header(n, n);
        for k in self.sorted_keys() {
            out.extend_from_slice(&k);
            out.extend_from_slice(&self.map[&k]);
        }
        out
    }

    fn header(num_entries: i32, num_buckets: i32) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&num_entries.to_le_bytes());
        out.extend_from_slice(&num_buckets.to_le_bytes());
        out.push(KEY_SIZE as u8);
        out.push(V as u8);
        out
    }
}

fn n_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl NsIndex {
    /// `(segment, offset)` of `key`.
    pub fn get_loc(&self, key: &[u8; 32]) -> Option<(u32, u32)> {
        self.get(key).map(|v| {
            (
                u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
                u32::from_le_bytes([v[4], v[5], v[6], v[7]]),
            )
        })
    }

    /// Sets `(segment, offset)` of `key`.
    pub fn set_loc(&mut self, key: [u8; 32], segment: u32, offset: u32) {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&segment.to_le_bytes());
        v[4..].copy_from_slice(&offset.to_le_bytes());
        self.insert(key, v);
    }

    /// Removes `key`, returning its location.
    pub fn pop_loc(&mut self, key: &[u8; 32]) -> Option<(u32, u32)> {
        let l = self.get_loc(key);
        self.remove(key);
        l
    }
}

/// borg's lookup over a serialised table (used by tests to prove placement): the raw value of
/// `key`, or `None`.
pub fn lookup_in_file(data: &[u8], key: &[u8; 32]) -> Option<Vec<u8>> {
    if data.len() < HEADER_SIZE {
        return None;
    }
    // A negative or oversized bucket count must not overflow the length check (fuzz/index).
    let nb = usize::try_from(i32::from_le_bytes([data[12], data[13], data[14], data[15]])).ok()?;
    let vs = data[17] as usize;
    let bsize = KEY_SIZE + vs;
    if vs < 4 || nb == 0 || Some(data.len()) != nb.checked_mul(bsize)?.checked_add(HEADER_SIZE) {
        return None;
    }
    let mut i = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize % nb;
    for _ in 0..nb {
        let b = &data[HEADER_SIZE + i * bsize..HEADER_SIZE + (i + 1) * bsize];
        let m = u32::from_le_bytes([b[32], b[33], b[34], b[35]]);
        if m == EMPTY {
            return None;
        }
        if m != DELETED && &b[..32] == key {
            return Some(b[32..].to_vec());
        }
        i = (i + 1) % nb;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_in_file_refuses_negative_bucket_count() {
        // fuzz/regressions/index/lookup-negative-buckets: num_buckets -1 overflowed the
        // length check (`attempt to multiply with overflow`)
        let mut data = vec![0xffu8; 16];
        data.extend_from_slice(&[0xff, 0x08]);
        assert_eq!(lookup_in_file(&data, &[0u8; 32]), None);
        assert!(NsIndex::read(&data).is_err());
        // a value size below the 4-byte marker
        let mut small = MAGIC.to_vec();
        small.extend_from_slice(&0i32.to_le_bytes());
        small.extend_from_slice(&1i32.to_le_bytes());
        small.extend_from_slice(&[32, 2]);
        small.extend_from_slice(&[0u8; 34]);
        assert_eq!(lookup_in_file(&small, &[0u8; 32]), None);
    }

    #[test]
    fn roundtrip_and_lookup() {
        let mut idx = NsIndex::new();
        for i in 0..2000u32 {
            let mut k = [0u8; 32];
            // many keys colliding on the same start bucket
            k[..4].copy_from_slice(&(i % 7).to_le_bytes());
            k[4..8].copy_from_slice(&i.to_le_bytes());
            idx.set_loc(k, i, i * 2);
        }
        let bytes = idx.write();
        assert_eq!(bytes.len(), HEADER_SIZE + 4099 * 40);
        let back = NsIndex::read(&bytes).unwrap();
        assert_eq!(back, idx);
        for (k, v) in idx.iter() {
            assert_eq!(lookup_in_file(&bytes, k).unwrap(), v.to_vec());
        }
        let c = idx.write_compact();
        assert_eq!(NsIndex::read(&c).unwrap(), idx);
    }

    #[test]
    fn rejects_bad_files() {
        let idx = ChunkIndex::new();
        let b = idx.write();
        assert_eq!(b.len(), HEADER_SIZE + 1031 * 44);
        assert!(ChunkIndex::read(&b).is_ok());
        assert!(NsIndex::read(&b).is_err());
        assert!(ChunkIndex::read(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[0] = b'X';
        assert!(ChunkIndex::read(&bad).is_err());
        assert!(ChunkIndex::read(&[]).is_err());
    }
}
