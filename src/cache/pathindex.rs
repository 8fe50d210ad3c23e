//! The per-archive path index: which item-stream chunks hold the items at or below a path, so
//! that `list ARCHIVE PATH` and `extract ARCHIVE PATH` read a few chunks instead of the whole
//! item stream. It is hoard's own file (borg never reads it), kept in the repository's cache
//! directory as `hoard-paths.d/<archive id hex>`, and is derived data: a missing, corrupt or
//! foreign file is ignored and rebuilt, never trusted.
//!
//! Keys are every item path and every directory prefix of one (as the pattern matcher sees
//! them: decoded, leading `/` removed), hashed to 64 bits. Each key maps to the range of chunks
//! from the one where the first item at or below it starts to the one where the last such item
//! ends. Two paths with the same hash share the union of their ranges, so a collision can only
//! make a read wider, never miss an item. For each chunk the index also records where the first
//! item starting in it begins, so reading can start there.
//!
//! File layout (little-endian): `HOARDPIX`, version u32, archive id (32 bytes), chunk count
//! u32, key count u32, the chunk table (u32 each, `u32::MAX` = no item starts there), the keys
//! sorted by hash (hash u64, first chunk u32, last chunk u32 whose top bit flags a hardlink
//! slave at or below the path), then the XXH64 of everything before it.

use std::fs;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh64::xxh64;

use crate::archive::meta::ChunkRun;

/// The index file's magic.
const MAGIC: &[u8; 8] = b"HOARDPIX";
/// The format version.
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 32 + 4 + 4;
const KEY_BYTES: usize = 16;
/// Top bit of a key's last chunk: a hardlink slave is at or below the path.
const SLAVE_FLAG: u32 = 1 << 31;
/// The subdirectory of the repository's cache directory.
pub const DIR_NAME: &str = "hoard-paths.d";

/// Where an archive's path index lives, if the repository's cache directory exists (the
/// directory is never created here: borg takes a cache directory without `config` for a
/// broken cache).
pub fn index_dir(repo_id: &[u8; 32]) -> Option<PathBuf> {
    let repo_dir = crate::paths::cache_dir().join(hex::encode(repo_id));
    repo_dir
        .join("config")
        .is_file()
        .then(|| repo_dir.join(DIR_NAME))
}

/// What the index says about a path selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The chunk runs to read, in order, disjoint (empty: nothing matches).
    pub ranges: Vec<ChunkRun>,
    /// A hardlink slave is at or below one of the paths.
    pub has_slaves: bool,
}

/// A loaded, verified path index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathIndex {
    starts: Vec<u32>,
    /// (hash, first chunk, last chunk | flag), sorted by hash, hashes unique.
    keys: Vec<(u64, u32, u32)>,
}

fn key_hash(path: &str) -> u64 {
    xxh64(path.as_bytes(), 0x686f_6172_6470_6978)
}

/// The lookup key of a `pp:`-style PATH argument: the pattern's normalised form without its
/// trailing `/`, or `None` when it selects everything (an empty key).
pub fn prefix_key(normalized: &str) -> Option<String> {
    let k = normalized.strip_suffix('/').unwrap_or(normalized);
    (!k.is_empty()).then(|| k.to_string())
}

impl PathIndex {
    /// Chunk runs holding every item whose path is `k` or lies below `k/`, for each key.
    pub fn lookup(&self, keys: &[String]) -> Lookup {
        let mut raw: Vec<(usize, usize)> = Vec::new();
        let mut has_slaves = false;
        for k in keys {
            let h = key_hash(k);
            if let Ok(i) = self.keys.binary_search_by_key(&h, |e| e.0) {
                let (_, lo, hi) = self.keys[i];
                has_slaves |= hi & SLAVE_FLAG != 0;
                raw.push((lo as usize, (hi & !SLAVE_FLAG) as usize));
            }
        }
        raw.sort_unstable();
        let mut ranges: Vec<ChunkRun> = Vec::new();
        for (lo, hi) in raw {
            match ranges.last_mut() {
                // Overlapping or adjacent runs read as one (the stream is continuous).
                Some(r) if lo <= r.last + 1 => r.last = r.last.max(hi),
                _ => ranges.push(ChunkRun {
                    first: lo,
                    first_offset: self.starts.get(lo).map_or(0, |&s| s as usize),
                    last: hi,
                }),
            }
        }
        Lookup { ranges, has_slaves }
    }

    /// The file bytes for archive `archive_id`.
    pub fn to_bytes(&self, archive_id: &[u8; 32]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER + self.starts.len() * 4 + self.keys.len() * KEY_BYTES + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(archive_id);
        out.extend_from_slice(&(self.starts.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for s in &self.starts {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for (h, lo, hi) in &self.keys {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&lo.to_le_bytes());
            out.extend_from_slice(&hi.to_le_bytes());
        }
        let sum = xxh64(&out, 0);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses and verifies an index file: its checksum, that it is for `archive_id`, and that
    /// it describes `n_chunks` item-stream chunks with keys in order. `None` when anything
    /// is off.
    pub fn from_bytes(data: &[u8], archive_id: &[u8; 32], n_chunks: usize) -> Option<PathIndex> {
        let body_len = data.len().checked_sub(8)?;
        if body_len < HEADER || &data[..8] != MAGIC {
            return None;
        }
        let (body, sum) = data.split_at(body_len);
        if xxh64(body, 0).to_le_bytes() != sum {
            return None;
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
        if u32_at(8) != VERSION || body[12..44] != archive_id[..] {
            return None;
        }
        let nc = u32_at(44) as usize;
        let nk = u32_at(48) as usize;
        if nc != n_chunks || body.len() != HEADER + nc * 4 + nk * KEY_BYTES {
            return None;
        }
        let starts: Vec<u32> = (0..nc).map(|i| u32_at(HEADER + i * 4)).collect();
        let base = HEADER + nc * 4;
        let mut keys = Vec::with_capacity(nk);
        for i in 0..nk {
            let o = base + i * KEY_BYTES;
            let mut h = [0u8; 8];
            h.copy_from_slice(&body[o..o + 8]);
            let (lo, hi) = (u32_at(o + 8), u32_at(o + 12));
            let last = (hi & !SLAVE_FLAG) as usize;
            if lo as usize > last || last >= nc || starts[lo as usize] == u32::MAX {
                return None;
            }
            keys.push((u64::from_le_bytes(h), lo, hi));
        }
        if keys.windows(2).any(|w| w[0].0 >= w[1].0) {
            return None;
        }
        Some(PathIndex { starts, keys })
    }

    /// Loads the index of `archive_id` from `dir`, `None` when missing or not valid.
    pub fn load(dir: &Path, archive_id: &[u8; 32], n_chunks: usize) -> Option<PathIndex> {
        let path = dir.join(hex::encode(archive_id));
        // Bounded: the file cannot be larger than its header says, checked after reading; a
        // file beyond any sane size is refused before.
        let len = fs::metadata(&path).ok()?.len();
        let limit =
            (HEADER + 8) as u64 + n_chunks as u64 * 4 + (u32::MAX as u64) * KEY_BYTES as u64;
        if len > limit {
            return None;
        }
        let data = fs::read(&path).ok()?;
        let idx = Self::from_bytes(&data, archive_id, n_chunks);
        if idx.is_none() {
            tracing::debug!("{}: invalid path index, ignored", path.display());
        }
        idx
    }

    /// Saves the index of `archive_id` in `dir` (created if needed) and removes the indexes
    /// of archives not in `live` (deleted archives). Failures only cost speed: logged, not
    /// returned.
    pub fn save(&self, dir: &Path, archive_id: &[u8; 32], live: &[[u8; 32]]) {
        let result = (|| -> std::io::Result<()> {
            if !dir.is_dir() {
                fs::create_dir(dir)?;
            }
            let path = dir.join(hex::encode(archive_id));
            crate::paths::write_atomic(&path, &self.to_bytes(archive_id))?;
            let live: std::collections::HashSet<String> = live.iter().map(hex::encode).collect();
            for e in fs::read_dir(dir)?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live.contains(&name) {
                    let _ = fs::remove_file(e.path());
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::debug!("{}: path index not saved: {e}", dir.display());
        }
    }
}

/// Builds a [`PathIndex`] from the items of an archive, fed in stream order.
#[derive(Debug, Default)]
pub struct Builder {
    starts: Vec<u32>,
    keys: Vec<(u64, u32, u32)>,
    /// The previous item's path and its directory prefixes still open: (length, hash, first
    /// chunk, last chunk | flag).
    prev: String,
    stack: Vec<(usize, u64, u32, u32)>,
    /// Too many chunks for the format: nothing is built.
    overflow: bool,
}

impl Builder {
    /// A builder for an archive with `n_chunks` item-stream chunks.
    pub fn new(n_chunks: usize) -> Builder {
        Builder {
            starts: vec![u32::MAX; n_chunks],
            overflow: n_chunks >= SLAVE_FLAG as usize,
            ..Builder::default()
        }
    }

    /// Records one item: its raw path, the chunk and offset where it starts, the chunk where
    /// it ends, and whether it is a hardlink slave.
    pub fn add(&mut self, raw_path: &[u8], start: (usize, usize), end_chunk: usize, slave: bool) {
        if self.overflow {
            return;
        }
        let (Some(first), Ok(off)) = (self.starts.get_mut(start.0), u32::try_from(start.1)) else {
            self.overflow = true;
            return;
        };
        if *first == u32::MAX {
            *first = off;
        }
        let lo = start.0 as u32;
        let hi = end_chunk as u32 | if slave { SLAVE_FLAG } else { 0 };
        let decoded = crate::patterns::text::decode_path(raw_path);
        let s = decoded.trim_start_matches('/');
        let common = s
            .bytes()
            .zip(self.prev.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Directory prefixes of the previous path that are not prefixes of this one close.
        while let Some(&(len, h, l, hh)) = self.stack.last() {
            if len <= common && s.as_bytes().get(len) == Some(&b'/') {
                break;
            }
            self.keys.push((h, l, hh));
            self.stack.pop();
        }
        let from = self.stack.last().map_or(0, |e| e.0 + 1);
        for (j, b) in s.bytes().enumerate().skip(from) {
            if b == b'/' {
                self.stack.push((j, key_hash(&s[..j]), lo, 0));
            }
        }
        for e in &mut self.stack {
            let flag = (e.3 | hi) & SLAVE_FLAG;
            e.3 = ((e.3 & !SLAVE_FLAG).max(hi & !SLAVE_FLAG)) | flag;
        }
        self.keys.push((key_hash(s), lo, hi));
        self.prev.clear();
        self.prev.push_str(s);
    }

    /// The finished index (`None` if the archive does not fit the format).
    pub fn finish(mut self) -> Option<PathIndex> {
        if self.overflow {
            return None;
        }
        while let Some((_, h, l, hh)) = self.stack.pop() {
            self.keys.push((h, l, hh));
        }
        self.keys.sort_unstable_by_key(|e| e.0);
        let mut merged: Vec<(u64, u32, u32)> = Vec::with_capacity(self.keys.len());
        for (h, lo, hi) in self.keys {
            match merged.last_mut() {
                Some(m) if m.0 == h => {
                    let flag = (m.2 | hi) & SLAVE_FLAG;
                    m.1 = m.1.min(lo);
                    m.2 = ((m.2 & !SLAVE_FLAG).max(hi & !SLAVE_FLAG)) | flag;
                }
                _ => merged.push((h, lo, hi)),
            }
        }
        merged.shrink_to_fit();
        Some(PathIndex {
            starts: self.starts,
            keys: merged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(items: &[(&str, usize, usize, usize, bool)], n: usize) -> PathIndex {
        let mut b = Builder::new(n);
        for &(p, c, off, end, slave) in items {
            b.add(p.as_bytes(), (c, off), end, slave);
        }
        b.finish().unwrap()
    }

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ranges_cover_prefixes_and_merge() {
        let idx = build(
            &[
                ("a", 0, 0, 0, false),
                ("a/b", 0, 10, 0, false),
                ("a/b/c", 0, 20, 1, false),
                ("a/bc", 1, 5, 1, false),
                ("x/y/z", 2, 7, 2, true),
                ("a/b/d", 3, 3, 4, false),
            ],
            5,
        );
        let r = |k: &[&str]| idx.lookup(&keys(k));
        // a/b spans chunks 0..=1 and, coming back later, 3..=4: one wide run.
        assert_eq!(
            r(&["a/b"]).ranges,
            vec![ChunkRun {
                first: 0,
                first_offset: 0,
                last: 4
            }]
        );
        assert_eq!(
            r(&["a/bc"]).ranges,
            vec![ChunkRun {
                first: 1,
                first_offset: 5,
                last: 1
            }]
        );
        // `x` and `x/y` exist only as prefixes; the slave flag reaches them.
        let x = r(&["x"]);
        assert!(x.has_slaves);
        assert_eq!(x.ranges[0].first, 2);
        assert!(!r(&["a/bc"]).has_slaves);
        assert!(r(&["nothing"]).ranges.is_empty());
        assert!(r(&["a/b/c/d"]).ranges.is_empty());
    }

    #[test]
    fn file_round_trip_and_refusals() {
        let idx = build(&[("a/b", 0, 3, 1, false), ("c", 1, 9, 1, false)], 2);
        let id = [7u8; 32];
        let bytes = idx.to_bytes(&id);
        assert_eq!(PathIndex::from_bytes(&bytes, &id, 2), Some(idx.clone()));
        assert_eq!(PathIndex::from_bytes(&bytes, &[8u8; 32], 2), None);
        assert_eq!(PathIndex::from_bytes(&bytes, &id, 3), None);
        for i in [0, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_eq!(PathIndex::from_bytes(&bad, &id, 2), None, "byte {i}");
        }
        assert_eq!(
            PathIndex::from_bytes(&bytes[..bytes.len() - 3], &id, 2),
            None
        );
        assert_eq!(PathIndex::from_bytes(b"", &id, 2), None);
    }
}
