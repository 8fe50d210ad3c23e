//! Resynchronising the chunk index with the repository (borg's `LocalCache.sync`, FORMAT.md §8):
//! merge the per-archive indexes of `chunks.archive.d`, fetch and index the archives that have
//! none, drop the indexes of archives that are gone.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::table::ChunkTable;
use super::{entry_of, pack_entry, ChunkEntry};
use crate::archive::meta::ArchiveMeta;
use crate::archive::{ArchiveError, KeyedRepository};
use crate::msgpack::{Limits, StreamDecoder, Value};
use crate::repo::index::{ChunkIndex, MAX_VALUE};
use crate::repo::integrity;

/// Name of the per-archive index directory.
pub const ARCHIVE_DIR: &str = "chunks.archive.d";

/// What one archive contributes to the statistics (borg's `Statistics.as_raw_dict`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveTotals {
    /// Original size of the archive's files (parts excluded).
    pub size: u64,
    /// Stored size of the archive's files (parts excluded).
    pub csize: u64,
    /// Number of files (parts excluded).
    pub nfiles: u64,
    /// Original size of part files.
    pub size_parts: u64,
    /// Stored size of part files.
    pub csize_parts: u64,
    /// Number of part files.
    pub nfiles_parts: u64,
    /// True when taken from borg ≥ 1.2 metadata, false when summed from the items.
    pub from_metadata: bool,
}

impl ArchiveTotals {
    /// The totals a borg ≥ 1.2 archive carries in its metadata, if it has them.
    pub fn from_meta(meta: &ArchiveMeta) -> Option<ArchiveTotals> {
        meta.nfiles?;
        Some(ArchiveTotals {
            size: meta.size.unwrap_or(0),
            csize: meta.csize.unwrap_or(0),
            nfiles: meta.nfiles.unwrap_or(0),
            size_parts: meta.size_parts.unwrap_or(0),
            csize_parts: meta.csize_parts.unwrap_or(0),
            nfiles_parts: meta.nfiles_parts.unwrap_or(0),
            from_metadata: true,
        })
    }
}

/// Adds `refs` references to `id` (borg's `ChunkIndex.add`: the refcount saturates at
/// [`MAX_VALUE`], size and csize are overwritten).
pub fn index_add(idx: &mut ChunkIndex, id: &[u8; 32], refs: u32, size: u32, csize: u32) {
    let refcount = match idx.get(id) {
        Some(v) => {
            let old = entry_of(v).refcount as u64;
            (old + refs as u64).min(MAX_VALUE as u64) as u32
        }
        None => refs.min(MAX_VALUE),
    };
    idx.insert(
        *id,
        pack_entry(ChunkEntry {
            refcount,
            size,
            csize,
        }),
    );
}

/// Adds one reference from an item's chunk list (borg's `CacheSynchronizer`: an existing
/// entry keeps its sizes).
fn sync_add(idx: &mut ChunkIndex, id: &[u8; 32], size: u32, csize: u32) {
    match idx.get(id).map(entry_of) {
        Some(mut e) => {
            if e.refcount < MAX_VALUE {
                e.refcount += 1;
            }
            idx.insert(*id, pack_entry(e));
        }
        None => idx.insert(
            *id,
            pack_entry(ChunkEntry {
                refcount: 1,
                size,
                csize,
            }),
        ),
    }
}

/// Merges `other` into `master` (borg's `ChunkIndex.merge`: refcounts add up, saturating;
/// existing sizes are kept).
pub fn merge(master: &mut ChunkTable, other: &ChunkIndex) {
    for (k, v) in other.iter() {
        let o = entry_of(v);
        match master.get(k) {
            Some(mut e) => {
                e.refcount = (e.refcount as u64 + o.refcount as u64).min(MAX_VALUE as u64) as u32;
                master.set(k, e);
            }
            None => master.set(k, o),
        }
    }
}

/// Reads an archive and its item stream into `idx` (borg's `fetch_and_build_idx`); returns
/// the archive's totals (from its metadata, or summed from its items for pre-1.2 archives).
pub fn fetch_and_build_idx(
    store: &mut KeyedRepository,
    archive_id: &[u8; 32],
    idx: &mut ChunkIndex,
) -> Result<ArchiveTotals, ArchiveError> {
    let object = store.repo.get(archive_id)?;
    let plain = store.decode(archive_id, &object, None)?;
    index_add(idx, archive_id, 1, len32(plain.len()), len32(object.len()));
    let (value, _) = store.key.unpack_and_verify_archive(&plain)?;
    let meta = ArchiveMeta::from_value(&value)?;
    if meta.version != 1 {
        return Err(ArchiveError::Corrupt(
            "Unknown archive metadata version".into(),
        ));
    }
    let mut summed = ArchiveTotals::default();
    let mut decoder = StreamDecoder::new(Limits::ITEM);
    let mut chunk_start = 0u64;
    for (k, id) in meta.items.iter().enumerate() {
        let object = store.repo.get(id)?;
        let data = store.decode(id, &object, None)?;
        index_add(idx, id, 1, len32(data.len()), len32(object.len()));
        decoder.feed(&data);
        loop {
            match decoder.next_value() {
                Ok(Some(item)) => account_item(&item, idx, &mut summed),
                Ok(None) => break,
                Err(e) => {
                    // A token is decoded once all of it is fed: the error lies in chunk k,
                    // unless its header began in the chunk before.
                    let off = decoder.offset().saturating_sub(chunk_start);
                    return Err(ArchiveError::Corrupt(format!(
                        "archive {}: item stream: {e} (item-stream chunk {k}, offset {off})",
                        String::from_utf8_lossy(&meta.name)
                    )));
                }
            }
        }
        chunk_start += data.len() as u64;
    }
    fetch_missing_csize(store, idx)?;
    Ok(ArchiveTotals::from_meta(&meta).unwrap_or(summed))
}

fn account_item(item: &Value, idx: &mut ChunkIndex, t: &mut ArchiveTotals) {
    let Some(chunks) = item.get("chunks").and_then(Value::as_array) else {
        return;
    };
    let part = item
        .get("part")
        .is_some_and(|p| p.as_i64().unwrap_or(0) != 0);
    let (mut size, mut csize) = (0u64, 0u64);
    for c in chunks {
        let Some(fields) = c.as_array() else { continue };
        let Some(id) = fields
            .first()
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        let s = fields.get(1).and_then(Value::as_u64).unwrap_or(0);
        let cs = fields.get(2).and_then(Value::as_u64).unwrap_or(0);
        sync_add(idx, &id, s as u32, cs as u32);
        size += s;
        csize += cs;
    }
    if part {
        t.size_parts += size;
        t.csize_parts += csize;
        t.nfiles_parts += 1;
    } else {
        t.size += size;
        t.csize += csize;
        t.nfiles += 1;
    }
}

/// Archives written without a cache record csize 0 for known chunks: fill in the stored size
/// by reading the object (borg's `fetch_missing_csize`).
fn fetch_missing_csize(
    store: &mut KeyedRepository,
    idx: &mut ChunkIndex,
) -> Result<(), ArchiveError> {
    let missing: Vec<[u8; 32]> = idx
        .iter()
        .filter(|(_, v)| entry_of(v).csize == 0)
        .map(|(k, _)| *k)
        .collect();
    for id in missing {
        let object = store.repo.get(&id)?;
        if let Some(mut e) = idx.get(&id).map(entry_of) {
            e.csize = len32(object.len());
            idx.insert(id, pack_entry(e));
        }
    }
    Ok(())
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Archive ids that have a cached index (64 hex digits, or 64 + `.compact`).
pub fn cached_archives(dir: &Path) -> HashSet<[u8; 32]> {
    let mut out = HashSet::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let hex_part = if name.len() == 64 {
            &name[..]
        } else if name.len() == 72 && name.ends_with(".compact") {
            &name[..64]
        } else {
            continue;
        };
        if let Ok(b) = hex::decode(hex_part) {
            if let Ok(id) = <[u8; 32]>::try_from(b.as_slice()) {
                out.insert(id);
            }
        }
    }
    out
}

fn archive_path(dir: &Path, id: &[u8; 32], suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", hex::encode(id)))
}

fn integrity_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(".integrity");
    PathBuf::from(s)
}

/// Removes an archive's cached indexes (borg's `cleanup_cached_archive`).
pub fn cleanup_cached_archive(dir: &Path, id: &[u8; 32], compact_too: bool) {
    let plain = archive_path(dir, id, "");
    let _ = fs::remove_file(integrity_path(&plain));
    let _ = fs::remove_file(&plain);
    if compact_too {
        let c = archive_path(dir, id, ".compact");
        let _ = fs::remove_file(integrity_path(&c));
        let _ = fs::remove_file(&c);
    }
}

/// Reads an index file whose integrity JSON sits next to it (borg's
/// `DetachedIntegrityCheckedFile`); `Ok(None)` if the file does not exist.
pub fn read_detached(path: &Path) -> Result<Option<ChunkIndex>, String> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match fs::read_to_string(integrity_path(path)) {
        Ok(text) => verify_index(&name, &data, Some(&text))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.to_string()),
    }
    ChunkIndex::read(&data).map(Some).map_err(|e| e.to_string())
}

/// Checks index bytes against stored integrity JSON (absent: nothing to check; unknown
/// algorithm: borg skips the check).
pub fn verify_index(name: &str, data: &[u8], stored: Option<&str>) -> Result<(), String> {
    let Some(text) = stored else { return Ok(()) };
    match integrity::parse_json(text)? {
        integrity::Stored::UnknownAlgorithm(_) => Ok(()),
        integrity::Stored::Digests(d) => {
            if integrity::digests_match(&integrity::index_digests(name, data), &d) {
                Ok(())
            } else {
                Err(format!("{name}: integrity digests do not match"))
            }
        }
    }
}

/// Writes `<hex>.compact` and its `.integrity` (borg's `write_archive_index`).
pub fn write_archive_index(dir: &Path, id: &[u8; 32], idx: &ChunkIndex) -> std::io::Result<()> {
    let path = archive_path(dir, id, ".compact");
    let name = format!("{}.compact", hex::encode(id));
    let data = idx.write_compact();
    let digests = integrity::index_digests(&name, &data);
    crate::paths::write_atomic(&path, &data)?;
    crate::paths::write_atomic(
        &integrity_path(&path),
        integrity::to_json(&digests).as_bytes(),
    )
}

/// Reads an archive's cached index, preferring the compact form and converting an old
/// non-compact one; a corrupt index is deleted and `None` returned (borg's
/// `read_archive_index`).
pub fn read_archive_index(dir: &Path, id: &[u8; 32]) -> Option<ChunkIndex> {
    match read_detached(&archive_path(dir, id, ".compact")) {
        Ok(Some(idx)) => {
            cleanup_cached_archive(dir, id, false);
            return Some(idx);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(
                "Cached archive chunk index of {} is corrupted: {e}",
                hex::encode(id)
            );
            cleanup_cached_archive(dir, id, true);
            return None;
        }
    }
    match read_detached(&archive_path(dir, id, "")) {
        Ok(Some(idx)) => {
            cleanup_cached_archive(dir, id, true);
            if let Err(e) = write_archive_index(dir, id, &idx) {
                tracing::warn!("could not write compact archive index: {e}");
            }
            Some(idx)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(
                "Cached archive chunk index of {} is corrupted: {e}",
                hex::encode(id)
            );
            cleanup_cached_archive(dir, id, true);
            None
        }
    }
}

/// What a resync did (for tests and `--debug` output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether the chunk index was rebuilt at open.
    pub resynced: bool,
    /// Archives whose metadata and item streams were read to build their index.
    pub archives_fetched: usize,
    /// Archives whose index came from `chunks.archive.d`.
    pub archive_indexes_read: usize,
    /// Outdated archive indexes removed.
    pub archive_indexes_dropped: usize,
    /// Archive metadata objects read (without their item streams) for the totals.
    pub archive_metadata_reads: usize,
}

/// The totals of the archives a resync read, by archive id.
pub type FetchedTotals = HashMap<[u8; 32], ArchiveTotals>;

/// Rebuilds the master index for the archives `archives` (borg's `create_master_idx`);
/// returns the index and the totals of every archive it fetched.
pub fn create_master_idx(
    store: &mut KeyedRepository,
    cache_path: &Path,
    archives: &[[u8; 32]],
    report: &mut SyncReport,
) -> Result<(ChunkTable, FetchedTotals), ArchiveError> {
    let dir = cache_path.join(ARCHIVE_DIR);
    if !dir.exists() {
        let _ = crate::paths::ensure_dir(&dir);
    }
    let do_cache = dir.is_dir();
    let cached = if do_cache {
        cached_archives(&dir)
    } else {
        HashSet::new()
    };
    let wanted: HashSet<[u8; 32]> = archives.iter().copied().collect();
    for id in cached.difference(&wanted) {
        cleanup_cached_archive(&dir, id, true);
        report.archive_indexes_dropped += 1;
    }
    // borg sizes the master index for every object in the repository.
    let capacity = store.repo.len().unwrap_or(0);
    let mut master = ChunkTable::with_capacity(capacity);
    let mut fetched = FetchedTotals::new();
    for id in archives {
        let idx = if do_cache && cached.contains(id) {
            read_archive_index(&dir, id)
        } else {
            None
        };
        let idx = match idx {
            Some(idx) => {
                report.archive_indexes_read += 1;
                idx
            }
            None => {
                let mut idx = ChunkIndex::new();
                let t = fetch_and_build_idx(store, id, &mut idx)?;
                report.archives_fetched += 1;
                fetched.insert(*id, t);
                if do_cache {
                    if let Err(e) = write_archive_index(&dir, id, &idx) {
                        tracing::warn!("could not write archive index: {e}");
                    }
                }
                idx
            }
        };
        merge(&mut master, &idx);
    }
    Ok((master, fetched))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(refcount: u32, size: u32, csize: u32) -> [u8; 12] {
        pack_entry(ChunkEntry {
            refcount,
            size,
            csize,
        })
    }

    #[test]
    fn merge_adds_and_saturates_keeping_sizes() {
        let mut a = ChunkTable::default();
        a.set(&[1; 32], entry_of(&e(2, 10, 5)));
        a.set(&[2; 32], entry_of(&e(MAX_VALUE - 1, 1, 1)));
        let mut b = ChunkIndex::new();
        b.insert([1; 32], e(3, 99, 99));
        b.insert([2; 32], e(5, 1, 1));
        b.insert([3; 32], e(1, 7, 7));
        merge(&mut a, &b);
        assert_eq!(a.get(&[1; 32]).unwrap(), entry_of(&e(5, 10, 5)));
        assert_eq!(a.get(&[2; 32]).unwrap().refcount, MAX_VALUE);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn archive_index_files_round_trip_and_corruption_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = ChunkIndex::new();
        for i in 0..50u8 {
            idx.insert([i; 32], e(i as u32 + 1, 100, 50));
        }
        let id = [7u8; 32];
        write_archive_index(dir.path(), &id, &idx).unwrap();
        assert_eq!(cached_archives(dir.path()), HashSet::from([id]));
        assert_eq!(read_archive_index(dir.path(), &id).unwrap(), idx);
        let p = archive_path(dir.path(), &id, ".compact");
        let mut data = fs::read(&p).unwrap();
        let n = data.len();
        data[n - 1] ^= 1;
        fs::write(&p, data).unwrap();
        assert!(read_archive_index(dir.path(), &id).is_none());
        assert!(cached_archives(dir.path()).is_empty());
    }
}
