//! The files cache file (FORMAT.md §8): a msgpack stream of `[path_hash, [age, inode, size,
//! cmtime_ns, [chunk ids]]]`, packed as borg packs it (raw strings, smallest integers), so a
//! file read from borg and written back unchanged is byte-identical.
//!
//! Entries keep borg's dict order: file order first, new paths appended, updated paths in
//! place. Decoding is a dedicated parser (no generic `Value` per entry).

use std::collections::HashMap;

use super::FileEntry;
use crate::msgpack;

/// Environment variable selecting a files cache name `files.<suffix>`.
pub const SUFFIX_ENV: &str = "BORG_FILES_CACHE_SUFFIX";
/// Environment variable with the number of backups an unseen entry survives.
pub const TTL_ENV: &str = "BORG_FILES_CACHE_TTL";
/// borg's default `BORG_FILES_CACHE_TTL`.
pub const DEFAULT_TTL: u32 = 20;

/// `files` or `files.<BORG_FILES_CACHE_SUFFIX>` (borg's `files_cache_name`).
pub fn files_cache_name() -> String {
    match std::env::var(SUFFIX_ENV) {
        Ok(s) if !s.is_empty() => format!("files.{s}"),
        _ => "files".to_string(),
    }
}

/// `BORG_FILES_CACHE_TTL` (default 20; an unparsable value also gives 20).
pub fn ttl() -> u32 {
    std::env::var(TTL_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_TTL)
}

/// The files cache in memory, in borg's dict order.
#[derive(Debug, Clone, Default)]
pub struct FilesCache {
    entries: Vec<([u8; 32], FileEntry)>,
    index: HashMap<[u8; 32], usize>,
    /// Newest cmtime memorised in this run (`None`: nothing memorised).
    pub newest_cmtime: Option<i64>,
}

/// A malformed files cache stream.
#[derive(Debug, thiserror::Error)]
#[error("The files cache seems invalid. [{0}]")]
pub struct FilesFormatError(pub String);

impl FilesCache {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of a path hash.
    pub fn get(&self, path_hash: &[u8; 32]) -> Option<&FileEntry> {
        self.index.get(path_hash).map(|&i| &self.entries[i].1)
    }

    /// Mutable entry of a path hash.
    pub fn get_mut(&mut self, path_hash: &[u8; 32]) -> Option<&mut FileEntry> {
        self.index.get(path_hash).map(|&i| &mut self.entries[i].1)
    }

    /// Sets an entry (in place if the path is known, else appended).
    pub fn insert(&mut self, path_hash: [u8; 32], entry: FileEntry) {
        match self.index.get(&path_hash) {
            Some(&i) => self.entries[i].1 = entry,
            None => {
                self.index.insert(path_hash, self.entries.len());
                self.entries.push((path_hash, entry));
            }
        }
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &([u8; 32], FileEntry)> {
        self.entries.iter()
    }

    /// Parses a files cache stream as stored. `age_increment` is added to every age (borg
    /// adds 1 when loading for a new backup; 0 reads the file as it is).
    pub fn decode(data: &[u8], age_increment: u32) -> Result<FilesCache, FilesFormatError> {
        let mut fc = FilesCache::default();
        let mut c = Cursor { data, pos: 0 };
        while c.pos < data.len() {
            if c.array_len()? != 2 {
                return Err(c.err("entry is not a pair"));
            }
            let path_hash = c.id()?;
            if c.array_len()? != 5 {
                return Err(c.err("entry value is not a 5-tuple"));
            }
            let age = c.int()?;
            let inode = c.int()?;
            let size = c.int()?;
            let cmtime_ns = c.cmtime()?;
            let n = c.array_len()?;
            let mut chunk_ids = Vec::with_capacity(n.min(data.len() / 33 + 1));
            for _ in 0..n {
                chunk_ids.push(c.id()?);
            }
            let entry = FileEntry {
                age: u32::try_from(age)
                    .map_err(|_| c.err("age out of range"))?
                    .saturating_add(age_increment),
                inode: u64::try_from(inode).map_err(|_| c.err("inode out of range"))?,
                size: u64::try_from(size).map_err(|_| c.err("size out of range"))?,
                cmtime_ns,
                chunk_ids,
            };
            fc.insert(path_hash, entry);
        }
        Ok(fc)
    }

    /// Serialises every entry `keep` accepts, in order.
    pub fn encode_filtered(&self, mut keep: impl FnMut(&FileEntry) -> bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 96);
        for (h, e) in &self.entries {
            if keep(e) {
                encode_entry(&mut out, h, e);
            }
        }
        out
    }

    /// Serialises as borg's `commit` does: current entries (age 0) whose cmtime is older than
    /// the newest cmtime memorised in this run, and older entries younger than `ttl`.
    pub fn encode_for_commit(&self, ttl: u32) -> Vec<u8> {
        let newest = self.newest_cmtime.unwrap_or(i64::MAX);
        self.encode_filtered(|e| (e.age == 0 && e.cmtime_ns < newest) || (e.age > 0 && e.age < ttl))
    }
}

/// Appends one `[path_hash, [age, inode, size, cmtime, [ids]]]` record.
pub fn encode_entry(out: &mut Vec<u8>, path_hash: &[u8; 32], e: &FileEntry) {
    msgpack::write_array_header(out, 2);
    msgpack::write_raw(out, path_hash);
    msgpack::write_array_header(out, 5);
    msgpack::write_int(out, e.age as i128);
    msgpack::write_int(out, e.inode as i128);
    msgpack::write_int(out, e.size as i128);
    msgpack::write_int(out, e.cmtime_ns as i128);
    msgpack::write_array_header(out, e.chunk_ids.len());
    for id in &e.chunk_ids {
        msgpack::write_raw(out, id);
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn err(&self, what: &str) -> FilesFormatError {
        FilesFormatError(format!("{what} at offset {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], FilesFormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err("truncated"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, FilesFormatError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, FilesFormatError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn array_len(&mut self) -> Result<usize, FilesFormatError> {
        match self.byte()? {
            b @ 0x90..=0x9f => Ok((b & 0x0f) as usize),
            0xdc => Ok(self.be(2)? as usize),
            0xdd => Ok(self.be(4)? as usize),
            _ => Err(self.err("expected an array")),
        }
    }

    /// A raw/str/bin byte string.
    fn bytes(&mut self) -> Result<&[u8], FilesFormatError> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => (b & 0x1f) as usize,
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            _ => return Err(self.err("expected a byte string")),
        };
        self.take(n)
    }

    fn id(&mut self) -> Result<[u8; 32], FilesFormatError> {
        let b = self.bytes()?;
        <[u8; 32]>::try_from(b).map_err(|_| FilesFormatError("id is not 32 bytes".into()))
    }

    fn int(&mut self) -> Result<i128, FilesFormatError> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => b as i128,
            0xe0..=0xff => b as i8 as i128,
            0xcc => self.be(1)? as i128,
            0xcd => self.be(2)? as i128,
            0xce => self.be(4)? as i128,
            0xcf => self.be(8)? as i128,
            0xd0 => self.be(1)? as u8 as i8 as i128,
            0xd1 => self.be(2)? as u16 as i16 as i128,
            0xd2 => self.be(4)? as u32 as i32 as i128,
            0xd3 => self.be(8)? as i64 as i128,
            _ => {
                self.pos -= 1;
                return Err(self.err("expected an integer"));
            }
        })
    }

    /// An integer, or borg's `int_to_bigint` bytes (little-endian two's complement).
    fn cmtime(&mut self) -> Result<i64, FilesFormatError> {
        if let Ok(i) = self.int() {
            return i64::try_from(i).map_err(|_| self.err("cmtime out of range"));
        }
        let b = self.bytes()?;
        if b.is_empty() || b.len() > 16 {
            return Err(FilesFormatError("bad bigint cmtime".into()));
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut v: i128 = if neg { -1 } else { 0 };
        for &x in b.iter().rev() {
            v = (v << 8) | x as i128;
        }
        i64::try_from(v).map_err(|_| FilesFormatError("cmtime out of range".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(age: u32, cmtime: i64, ids: usize) -> FileEntry {
        FileEntry {
            age,
            inode: 0x98c2ec,
            size: 6,
            cmtime_ns: cmtime,
            chunk_ids: (0..ids).map(|i| [i as u8; 32]).collect(),
        }
    }

    #[test]
    fn borg_record_decodes_and_reencodes_identically() {
        // One record as borg 1.2.4 wrote it (files of a one-file backup).
        let rec = hex::decode("92da002001dfcacd633f9916efcc603921590e031d756a6ee6f722d86e93a9a4c166371595 00ce0098c2ec06cf18ebcd16f3984922 91da0020efd4c0b58fcb73ca096f1270df549d55565d04fc2ef161d0a361355d80d4b56d".replace(' ', "")).unwrap();
        let fc = FilesCache::decode(&rec, 0).unwrap();
        assert_eq!(fc.len(), 1);
        let (_, e) = fc.iter().next().unwrap();
        assert_eq!((e.age, e.inode, e.size), (0, 0x98c2ec, 6));
        assert_eq!(e.chunk_ids.len(), 1);
        assert_eq!(fc.encode_filtered(|_| true), rec);
        let aged = FilesCache::decode(&rec, 1).unwrap();
        assert_eq!(aged.iter().next().unwrap().1.age, 1);
    }

    #[test]
    fn commit_filter_follows_borg() {
        let mut fc = FilesCache::default();
        fc.insert([1; 32], entry(0, 100, 1)); // current, older than newest: kept
        fc.insert([2; 32], entry(0, 200, 1)); // current, == newest: dropped
        fc.insert([3; 32], entry(19, 5, 0)); // old, below TTL: kept
        fc.insert([4; 32], entry(20, 5, 0)); // reached TTL: dropped
        fc.newest_cmtime = Some(200);
        let back = FilesCache::decode(&fc.encode_for_commit(20), 0).unwrap();
        let keys: Vec<_> = back.iter().map(|(k, _)| k[0]).collect();
        assert_eq!(keys, vec![1, 3]);
        fc.newest_cmtime = None;
        assert_eq!(
            FilesCache::decode(&fc.encode_for_commit(20), 0)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn order_is_kept_on_update_and_bad_input_is_an_error() {
        let mut fc = FilesCache::default();
        fc.insert([1; 32], entry(0, 1, 0));
        fc.insert([2; 32], entry(0, 1, 0));
        fc.insert([1; 32], entry(3, 1, 20));
        let keys: Vec<_> = fc.iter().map(|(k, _)| k[0]).collect();
        assert_eq!(keys, vec![1, 2]);
        let bytes = fc.encode_filtered(|_| true);
        assert!(FilesCache::decode(&bytes[..bytes.len() - 1], 0).is_err());
        assert!(FilesCache::decode(b"\x01", 0).is_err());
        // bigint cmtime (int_to_bigint for values beyond int64 is bytes; small values too)
        let mut out = Vec::new();
        msgpack::write_array_header(&mut out, 2);
        msgpack::write_raw(&mut out, &[9u8; 32]);
        msgpack::write_array_header(&mut out, 5);
        for v in [0, 1, 2] {
            msgpack::write_int(&mut out, v);
        }
        msgpack::write_raw(&mut out, &[0xfe, 0xff]);
        msgpack::write_array_header(&mut out, 0);
        assert_eq!(
            FilesCache::decode(&out, 0)
                .unwrap()
                .get(&[9; 32])
                .unwrap()
                .cmtime_ns,
            -2
        );
    }
}
