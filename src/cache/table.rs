//! The master chunk index as borg keeps it: one open-addressing table of 44-byte buckets
//! (32-byte key, `refcount, size, csize` u32 LE), start bucket `u32_le(key[0..4]) % buckets`,
//! linear probing, tombstones (FORMAT.md §2.7).
//!
//! Because the in-memory table *is* the `chunks` file body, loading is one read plus a linear
//! validation pass (no hashing, no per-entry allocation) and saving writes the table as is, so
//! an unchanged index is written back byte-identically.

use super::{entry_of, pack_entry, ChunkEntry};
use crate::repo::index::{
    table_size_for, IndexFormatError, DELETED, EMPTY, HASH_MAX_LOAD, HASH_SIZES, HEADER_SIZE,
    KEY_SIZE, MAGIC, MAX_VALUE,
};

const VALUE_SIZE: usize = 12;
const BUCKET: usize = KEY_SIZE + VALUE_SIZE;
/// borg's `HASH_MAX_EFF_LOAD`: rebuild when fewer than this share of buckets is truly empty.
const MAX_EFF_LOAD: f64 = 0.93;

/// A ChunkIndex hash table in borg's memory and file layout.
#[derive(Debug, Clone)]
pub struct ChunkTable {
    buckets: Vec<u8>,
    num_buckets: usize,
    num_entries: usize,
    num_empty: usize,
}

fn marker(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[32], b[33], b[34], b[35]])
}

fn start(key: &[u8; 32], nb: usize) -> usize {
    u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize % nb
}

impl Default for ChunkTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl ChunkTable {
    /// An empty table sized (with borg's sizes) for `entries` entries.
    pub fn with_capacity(entries: usize) -> Self {
        let nb = table_size_for(entries).unwrap_or(HASH_SIZES[HASH_SIZES.len() - 1]) as usize;
        Self::empty(nb)
    }

    fn empty(nb: usize) -> Self {
        let mut buckets = vec![0u8; nb * BUCKET];
        for b in buckets.chunks_exact_mut(BUCKET) {
            b[32..36].copy_from_slice(&EMPTY.to_le_bytes());
        }
        ChunkTable {
            buckets,
            num_buckets: nb,
            num_entries: 0,
            num_empty: nb,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.num_entries
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.num_entries == 0
    }

    fn bucket(&self, i: usize) -> &[u8] {
        &self.buckets[i * BUCKET..(i + 1) * BUCKET]
    }

    /// `Ok(index)` of `key`, or `Err(slot)` where it would be inserted (first tombstone on
    /// the probe path, else the empty bucket ending it; `usize::MAX` if the table is full).
    fn lookup(&self, key: &[u8; 32]) -> Result<usize, usize> {
        let nb = self.num_buckets;
        let mut i = start(key, nb);
        let mut tombstone = None;
        for _ in 0..nb {
            let b = self.bucket(i);
            match marker(b) {
                EMPTY => return Err(tombstone.unwrap_or(i)),
                DELETED => {
                    tombstone.get_or_insert(i);
                }
                _ if b[..32] == key[..] => return Ok(i),
                _ => {}
            }
            i += 1;
            if i == nb {
                i = 0;
            }
        }
        Err(tombstone.unwrap_or(usize::MAX))
    }

    /// The entry of `key`.
    pub fn get(&self, key: &[u8; 32]) -> Option<ChunkEntry> {
        let i = self.lookup(key).ok()?;
        let v: &[u8; 12] = self.bucket(i)[32..].try_into().ok()?;
        Some(entry_of(v))
    }

    /// Sets the entry of `key` (the refcount must not exceed [`MAX_VALUE`]).
    pub fn set(&mut self, key: &[u8; 32], e: ChunkEntry) {
        let value = pack_entry(ChunkEntry {
            refcount: e.refcount.min(MAX_VALUE),
            ..e
        });
        match self.lookup(key) {
            Ok(i) => self.buckets[i * BUCKET + 32..(i + 1) * BUCKET].copy_from_slice(&value),
            Err(usize::MAX) => {
                self.resize(self.num_buckets + 1);
                self.set(key, e);
            }
            Err(i) => {
                if marker(self.bucket(i)) == EMPTY {
                    self.num_empty -= 1;
                }
                let b = &mut self.buckets[i * BUCKET..(i + 1) * BUCKET];
                b[..32].copy_from_slice(key);
                b[32..].copy_from_slice(&value);
                self.num_entries += 1;
                if self.num_entries as f64 > self.num_buckets as f64 * HASH_MAX_LOAD {
                    self.resize(self.num_entries + 1);
                } else if (self.num_empty as f64) < self.num_buckets as f64 * (1.0 - MAX_EFF_LOAD) {
                    self.resize(self.num_entries);
                }
            }
        }
    }

    /// Removes `key` (leaving a tombstone, as borg does).
    pub fn remove(&mut self, key: &[u8; 32]) -> Option<ChunkEntry> {
        let i = self.lookup(key).ok()?;
        let old = self.get(key);
        self.buckets[i * BUCKET + 32..i * BUCKET + 36].copy_from_slice(&DELETED.to_le_bytes());
        self.num_entries -= 1;
        old
    }

    /// Rebuilds into the smallest borg table size holding `min_entries` (never smaller than
    /// needed for the current entries).
    fn resize(&mut self, min_entries: usize) {
        let want = min_entries.max(self.num_entries);
        let nb = HASH_SIZES
            .iter()
            .map(|&s| s as usize)
            .find(|&s| want as f64 <= s as f64 * HASH_MAX_LOAD && s > self.num_entries)
            .unwrap_or(self.num_buckets * 2 + 1);
        let mut t = Self::empty(nb);
        for (k, e) in self.iter() {
            t.set(k, e);
        }
        *self = t;
    }

    /// All entries, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 32], ChunkEntry)> + '_ {
        self.buckets.chunks_exact(BUCKET).filter_map(|b| {
            let m = marker(b);
            if m == EMPTY || m == DELETED {
                return None;
            }
            let k: &[u8; 32] = b[..32].try_into().ok()?;
            let v: &[u8; 12] = b[32..].try_into().ok()?;
            Some((k, entry_of(v)))
        })
    }

    /// Loads an index file: a regular table is taken over as it is (after one validation
    /// pass); a compact one is re-hashed.
    pub fn read(data: &[u8]) -> Result<ChunkTable, IndexFormatError> {
        Self::read_owned(data.to_vec())
    }

    /// [`ChunkTable::read`] of a file already in memory, taken over without a copy (the
    /// header is moved out in place).
    pub fn read_owned(mut data: Vec<u8>) -> Result<ChunkTable, IndexFormatError> {
        let err = |m: String| IndexFormatError(m);
        if data.len() < HEADER_SIZE || &data[..8] != MAGIC {
            return Err(err("not a borg index file".into()));
        }
        let n = i32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let nb = i32::from_le_bytes([data[12], data[13], data[14], data[15]]);
        if data[16] as usize != KEY_SIZE || data[17] as usize != VALUE_SIZE {
            return Err(err("unexpected key or value size".into()));
        }
        let (Ok(n), Ok(nb)) = (usize::try_from(n), usize::try_from(nb)) else {
            return Err(err("negative entry or bucket count".into()));
        };
        if (data.len() - HEADER_SIZE) as u64 != nb as u64 * BUCKET as u64 {
            return Err(err("incorrect file length".into()));
        }
        let (mut used, mut empty) = (0usize, 0usize);
        for b in data[HEADER_SIZE..].chunks_exact(BUCKET) {
            match marker(b) {
                EMPTY => empty += 1,
                DELETED => {}
                m if m > MAX_VALUE => return Err(err("reserved value in a used bucket".into())),
                _ => used += 1,
            }
        }
        if used != n {
            return Err(err(format!("entry count mismatch ({n} vs {used})")));
        }
        data.drain(..HEADER_SIZE);
        let mut t = ChunkTable {
            buckets: data,
            num_buckets: nb,
            num_entries: n,
            num_empty: empty,
        };
        if nb == 0
            || empty == 0
            || n as f64 > nb as f64 * HASH_MAX_LOAD
            || (empty as f64) < nb as f64 * (1.0 - MAX_EFF_LOAD)
        {
            // Compact or overfull: not usable for lookups as it is.
            t = Self::rehash_from(&t);
        }
        Ok(t)
    }

    fn rehash_from(src: &ChunkTable) -> ChunkTable {
        let mut t = Self::with_capacity(src.num_entries);
        for (k, e) in src.iter() {
            t.set(k, e);
        }
        t
    }

    /// The index file's header.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.num_entries as i32).to_le_bytes());
        out.extend_from_slice(&(self.num_buckets as i32).to_le_bytes());
        out.push(KEY_SIZE as u8);
        out.push(VALUE_SIZE as u8);
        out
    }

    /// The table body as it is in memory (the file after [`ChunkTable::header`]).
    pub fn body(&self) -> &[u8] {
        &self.buckets
    }

    /// The index file: header and the table as it is in memory.
    pub fn write(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.buckets.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.num_entries as i32).to_le_bytes());
        out.extend_from_slice(&(self.num_buckets as i32).to_le_bytes());
        out.push(KEY_SIZE as u8);
        out.push(VALUE_SIZE as u8);
        out.extend_from_slice(&self.buckets);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::{lookup_in_file, ChunkIndex};

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&(i % 13).to_le_bytes()); // many collisions
        k[4..8].copy_from_slice(&i.to_le_bytes());
        k
    }

    fn e(i: u32) -> ChunkEntry {
        ChunkEntry {
            refcount: i + 1,
            size: i,
            csize: i / 2,
        }
    }

    #[test]
    fn set_get_remove_grow_and_file_round_trip() {
        let mut t = ChunkTable::default();
        for i in 0..5000 {
            t.set(&key(i), e(i));
        }
        for i in (0..5000).step_by(3) {
            assert_eq!(t.remove(&key(i)), Some(e(i)));
        }
        for i in 0..5000 {
            assert_eq!(t.get(&key(i)), (i % 3 != 0).then(|| e(i)), "{i}");
        }
        let bytes = t.write();
        // borg's lookup finds everything in the file, and the file reads back identically.
        for i in (1..5000).filter(|i| i % 3 != 0) {
            assert_eq!(
                lookup_in_file(&bytes, &key(i)).unwrap(),
                pack_entry(e(i)).to_vec()
            );
        }
        let back = ChunkTable::read(&bytes).unwrap();
        assert_eq!(back.write(), bytes);
        assert_eq!(ChunkIndex::read(&bytes).unwrap().len(), t.len());
    }

    #[test]
    fn reads_hashindex_and_compact_files() {
        let mut idx = ChunkIndex::new();
        for i in 0..3000 {
            idx.insert(key(i), pack_entry(e(i)));
        }
        for bytes in [idx.write(), idx.write_compact()] {
            let t = ChunkTable::read(&bytes).unwrap();
            assert_eq!(t.len(), 3000);
            for i in 0..3000 {
                assert_eq!(t.get(&key(i)), Some(e(i)));
            }
        }
        assert_eq!(ChunkTable::read(&idx.write()).unwrap().write(), idx.write());
        let mut bad = idx.write();
        bad[8] ^= 1;
        assert!(ChunkTable::read(&bad).is_err());
        assert!(ChunkTable::read(&bad[..40]).is_err());
    }

    #[test]
    fn tombstone_churn_stays_bounded() {
        let mut t = ChunkTable::default();
        for round in 0..20u32 {
            for i in 0..700 {
                t.set(&key(round * 1000 + i), e(i));
            }
            for i in 0..700 {
                t.remove(&key(round * 1000 + i));
            }
        }
        assert!(t.is_empty());
        assert!(t.num_buckets <= 2053, "{}", t.num_buckets);
    }
}
