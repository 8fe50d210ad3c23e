//! The client cache (FORMAT.md §8): the chunk index (reference counts and sizes of every chunk any
//! archive uses) and the files cache (what a path looked like last time, and its chunks).
//!
//! [`Cache`] is the one interface the commands use: `seen_chunk` / `add_chunk` / `chunk_incref`
//! / `chunk_decref` keep the repository and the reference counts in step, `file_lookup` /
//! `memorize_file` let `create` skip unchanged files, and `commit` persists it all. It never
//! prints.
//!
//! The cache lives in `<cache dir>/<repo id hex>/` in borg 1.2's exact layout (`README`,
//! `config`, `chunks`, `files`, `chunks.archive.d/`, `pre12-meta`, `txn.active`, `lock.*`), so
//! borg and hoard use each other's cache. It is derived data: when the repository's manifest
//! differs from the one the cache last saw, it resynchronises like borg ([`sync`]); a corrupt
//! cache file is rebuilt, never an error. The files cache is loaded on first use only (commands
//! that never look up files leave it untouched, as borg's do with `--files-cache=disabled`).

pub mod config;
pub mod files;
pub mod pathindex;
pub mod sync;
pub mod table;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::archive::item::ChunkRef;
use crate::archive::meta::ArchiveMeta;
use crate::archive::{ArchiveError, KeyedRepository, Manifest};
use crate::progress::Progress;
use crate::repo::index::{ChunkIndex, MAX_VALUE};
use crate::repo::integrity;
use crate::repo::lock::Lock;
use crate::repo::RepoError;

use config::Ini;
use files::FilesCache;
pub use sync::{ArchiveTotals, FetchedTotals, SyncReport};
use table::ChunkTable;

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
    /// `rechunk`, `disabled`, in one of the combinations borg accepts (its `VALID_MODES`:
    /// ctime,size,inode / mtime,size,inode / ctime,size / mtime,size / rechunk,ctime /
    /// rechunk,mtime / disabled / size), with borg's messages.
    fn from_str(s: &str) -> Result<Self, String> {
        const ENTRIES: [(&str, char); 6] = [
            ("ctime", 'c'),
            ("mtime", 'm'),
            ("size", 's'),
            ("inode", 'i'),
            ("rechunk", 'r'),
            ("disabled", 'd'),
        ];
        const VALID_MODES: [&str; 8] = ["cis", "ims", "cs", "ms", "cr", "mr", "d", "s"];
        let mut letters = Vec::new();
        for part in s.trim().split(',') {
            let Some((_, c)) = ENTRIES.iter().find(|(name, _)| *name == part) else {
                return Err(
                    "cache mode must be a comma-separated list of: ctime,disabled,inode,mtime,rechunk,size"
                        .into(),
                );
            };
            letters.push(*c);
        }
        letters.sort_unstable();
        letters.dedup();
        let short: String = letters.iter().collect();
        if !VALID_MODES.contains(&short.as_str()) {
            return Err(format!(
                "cache mode short must be one of: {}",
                VALID_MODES.join(",")
            ));
        }
        let has = |c: char| letters.contains(&c);
        Ok(FilesCacheMode {
            ctime: has('c'),
            mtime: has('m'),
            size: has('s'),
            inode: has('i'),
            rechunk: has('r'),
            disabled: has('d'),
        })
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
    /// The repository's canonical location, recorded as `previous_location` in the cache
    /// `config` (borg does this on every open). `None` leaves the recorded value alone.
    pub location: Option<String>,
    /// Use this directory instead of `<cache dir>/<repo id hex>` (tests, `--cache-dir`-like).
    pub path: Option<PathBuf>,
    /// Where the transaction's progress messages go (borg's `cache.begin_transaction` and
    /// `cache.commit` records).
    pub progress: Progress,
}

/// The cache `README` text.
pub const CACHE_README: &str =
    "This is a Borg Backup cache.\nSee https://borgbackup.readthedocs.io/\n";
/// The repository features this version supports (borg 1.2: none).
pub const SUPPORTED_REPO_FEATURES: &[&str] = &[];

/// Decodes a raw ChunkIndex value.
pub(crate) fn entry_of(v: &[u8; 12]) -> ChunkEntry {
    let u = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    ChunkEntry {
        refcount: u(0),
        size: u(4),
        csize: u(8),
    }
}

/// Encodes a raw ChunkIndex value.
pub(crate) fn pack_entry(e: ChunkEntry) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&e.refcount.to_le_bytes());
    v[4..8].copy_from_slice(&e.size.to_le_bytes());
    v[8..].copy_from_slice(&e.csize.to_le_bytes());
    v
}

/// A writer that digests what it passes on (for cache files written as a stream).
struct DigestWriter<'a> {
    inner: &'a mut dyn std::io::Write,
    hasher: &'a mut integrity::IntegrityHasher,
}

impl std::io::Write for DigestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ArchiveError + '_ {
    move |e| ArchiveError::Repo(RepoError::io(path, e))
}

/// A read-only view of a [`Cache`]'s chunk index that other threads may consult while the
/// cache keeps changing it: create's workers ask it whether a chunk is stored already before
/// they compress and encrypt it. An answer may be stale by the time the cache's owner acts on
/// it, so the owner must decide again itself (it only saves work, never decides anything).
#[derive(Clone)]
pub struct ChunkLookup(Arc<RwLock<ChunkTable>>);

impl ChunkLookup {
    /// True when an archive references the chunk `id` (what [`Cache::seen_chunk`] finds).
    pub fn is_stored(&self, id: &[u8; 32]) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|e| e.refcount > 0)
    }
}

/// The client cache of one repository.
pub struct Cache {
    /// The chunk index, shared read-only with [`ChunkLookup`]s (create's workers).
    chunks: Arc<RwLock<ChunkTable>>,
    /// Sum of the archives' own `size` / `csize` (what borg 1.2 shows as "All archives").
    archives_size: u64,
    archives_csize: u64,
    /// The files cache; `None` until first used.
    files: Mutex<Option<FilesCache>>,
    options: CacheOptions,
    path: PathBuf,
    config: Ini,
    /// `[integrity]` entries other than `manifest` (borg's `CacheConfig.integrity`).
    integrity: Vec<(String, String)>,
    ignored_features: BTreeSet<String>,
    mandatory_features: BTreeSet<String>,
    pre12_meta: serde_json::Map<String, serde_json::Value>,
    key_type: u8,
    report: SyncReport,
    lock: Lock,
    /// A transaction snapshot (`txn.active`) is taken (borg's `txn_active`).
    txn_active: bool,
    /// Taking the snapshot failed; the commit reports it.
    txn_error: Option<ArchiveError>,
}

impl Cache {
    /// Opens the cache for the repository behind `store`: creates it if missing, takes the
    /// cache lock, rolls back an interrupted transaction, and resynchronises (then commits)
    /// when the cache last saw another manifest than `manifest`.
    pub fn open(
        store: &mut KeyedRepository,
        manifest: &Manifest,
        options: CacheOptions,
    ) -> Result<Cache, ArchiveError> {
        let repo_hex = hex::encode(store.repo.id());
        let path = match &options.path {
            Some(p) => p.clone(),
            None => crate::paths::cache_dir().join(&repo_hex),
        };
        if path.exists() && !path.join("config").exists() {
            // A cache whose creation was interrupted (no config yet): start it afresh.
            tracing::warn!("{}: incomplete cache, creating it anew", path.display());
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
        if !path.exists() {
            if options.path.is_none() {
                crate::paths::ensure_cache_dir().map_err(io_err(&path))?;
            }
            create_layout(&path, &repo_hex).map_err(io_err(&path))?;
        }
        let mut lock = Lock::new(&path.join("lock"), true, Some(options.lock_wait));
        lock.acquire().map_err(RepoError::from)?;
        rollback(&path).map_err(io_err(&path))?;
        let mut cache = Cache {
            chunks: Arc::default(),
            archives_size: 0,
            archives_csize: 0,
            files: Mutex::new(None),
            options,
            path,
            config: Ini::default(),
            integrity: Vec::new(),
            ignored_features: BTreeSet::new(),
            mandatory_features: BTreeSet::new(),
            pre12_meta: serde_json::Map::new(),
            key_type: store.key.key_type().type_byte(),
            report: SyncReport::default(),
            lock,
            txn_active: false,
            txn_error: None,
        };
        cache.load_config(&repo_hex)?;
        if !cache.compatible() {
            cache.wipe()?;
        }
        cache.update_compatibility(manifest);
        cache.load_chunks();
        cache.load_pre12_meta();
        let mut fetched = FetchedTotals::new();
        if cache.config.get("cache", "manifest") != Some(hex::encode(manifest.id).as_str()) {
            fetched = cache.sync(store, manifest)?;
            cache.commit(manifest)?;
        }
        cache.compute_totals(store, manifest, &fetched)?;
        Ok(cache)
    }

    /// Deletes a cache directory (borg's `Cache.destroy`, for `delete --cache-only`): the
    /// `config` goes first so that a half-deleted cache is never taken for a valid one.
    pub fn destroy(path: &Path) -> std::io::Result<()> {
        let config = path.join("config");
        if config.exists() {
            fs::remove_file(&config)?;
            fs::remove_dir_all(path)?;
        }
        Ok(())
    }

    /// The cache directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the open did to bring the chunk index up to date.
    pub fn sync_report(&self) -> SyncReport {
        self.report
    }

    fn load_config(&mut self, repo_hex: &str) -> Result<(), ArchiveError> {
        let cpath = self.path.join("config");
        let parsed = fs::read_to_string(&cpath)
            .map_err(|e| e.to_string())
            .and_then(|t| Ini::parse(&t).map_err(|e| e.to_string()))
            .and_then(|ini| match ini.get("cache", "version") {
                Some("1") => Ok(ini),
                other => Err(format!("unexpected cache version {other:?}")),
            });
        self.config = match parsed {
            Ok(ini) => ini,
            Err(e) => {
                tracing::warn!("{}: {e}; rebuilding the cache", cpath.display());
                let ini = config::initial(repo_hex);
                crate::paths::write_atomic(&cpath, ini.to_text().as_bytes())
                    .map_err(io_err(&cpath))?;
                // Files cache integrity is unknown now: start it afresh.
                let _ = fs::remove_file(self.path.join(files::files_cache_name()));
                ini
            }
        };
        let list = |k: &str| -> BTreeSet<String> {
            config::parse_list(self.config.get("cache", k).unwrap_or(""))
                .into_iter()
                .collect()
        };
        self.ignored_features = list("ignored_features");
        self.mandatory_features = list("mandatory_features");
        self.integrity = self
            .config
            .items("integrity")
            .iter()
            .filter(|(k, _)| k != "manifest")
            .cloned()
            .collect();
        if self.config.has_section("integrity")
            && self.config.get("cache", "manifest") != self.config.get("integrity", "manifest")
        {
            tracing::warn!(
                "Cache integrity data not available: old Borg version modified the cache."
            );
            self.integrity.clear();
        }
        if let Some(loc) = &self.options.location {
            self.config.set("cache", "previous_location", loc);
        }
        Ok(())
    }

    /// borg's `check_cache_compatibility`.
    fn compatible(&self) -> bool {
        let mine: BTreeSet<String> = SUPPORTED_REPO_FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect();
        self.ignored_features.is_disjoint(&mine) && self.mandatory_features.is_subset(&mine)
    }

    /// borg's `wipe_cache`: forget every chunk and file, force a rebuild.
    fn wipe(&mut self) -> Result<(), ArchiveError> {
        tracing::warn!("Discarding incompatible cache and forcing a cache rebuild");
        let dir = self.path.join(sync::ARCHIVE_DIR);
        if dir.is_dir() {
            fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
            crate::paths::ensure_dir(&dir).map_err(io_err(&dir))?;
        }
        *self.table_mut() = ChunkTable::default();
        let fpath = self.path.join(files::files_cache_name());
        crate::paths::write_atomic(&fpath, b"").map_err(io_err(&fpath))?;
        let name = files::files_cache_name();
        self.integrity.retain(|(k, _)| *k != name);
        self.config.set("cache", "manifest", "");
        self.ignored_features.clear();
        self.mandatory_features.clear();
        Ok(())
    }

    /// borg's `update_compatibility`: remember the repository's mandatory features.
    fn update_compatibility(&mut self, manifest: &Manifest) {
        let Some(flags) = manifest
            .config
            .get("feature_flags")
            .and_then(|f| f.as_map())
        else {
            return;
        };
        for (_, op) in flags {
            let Some(list) = op.get("mandatory").and_then(|m| m.as_array()) else {
                continue;
            };
            for f in list.iter().filter_map(|v| v.as_bytes()) {
                let f = String::from_utf8_lossy(f).into_owned();
                if SUPPORTED_REPO_FEATURES.contains(&f.as_str()) {
                    self.mandatory_features.insert(f);
                } else {
                    self.ignored_features.insert(f);
                }
            }
        }
    }

    /// Reads `chunks`, checking its integrity; a bad file empties the index and forces a
    /// resync.
    fn load_chunks(&mut self) {
        let cpath = self.path.join("chunks");
        let stored = self
            .integrity
            .iter()
            .find(|(k, _)| k == "chunks")
            .map(|(_, v)| v.clone());
        let loaded = fs::read(&cpath)
            .map_err(|e| e.to_string())
            .and_then(|data| {
                sync::verify_index("chunks", &data, stored.as_deref())?;
                ChunkTable::read_owned(data).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(idx) => *self.table_mut() = idx,
            Err(e) => {
                tracing::warn!("{}: {e}; rebuilding the chunks cache", cpath.display());
                *self.table_mut() = ChunkTable::default();
                self.config.set("cache", "manifest", "");
            }
        }
    }

    fn load_pre12_meta(&mut self) {
        if let Ok(text) = fs::read_to_string(self.path.join("pre12-meta")) {
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text) {
                self.pre12_meta = m;
            }
        }
    }

    /// Rebuilds the chunk index (borg's `sync`); returns the totals of archives it read.
    fn sync(
        &mut self,
        store: &mut KeyedRepository,
        manifest: &Manifest,
    ) -> Result<FetchedTotals, ArchiveError> {
        // The sync reads archives: their mandatory features apply whatever the command is.
        manifest.check_features(&[crate::archive::Operation::Read])?;
        tracing::info!("Synchronizing chunks cache...");
        self.begin();
        let ids: Vec<[u8; 32]> = manifest.archives.values().map(|r| r.id).collect();
        let mut report = SyncReport {
            resynced: true,
            ..SyncReport::default()
        };
        let (master, fetched) = sync::create_master_idx(store, &self.path, &ids, &mut report)?;
        *self.table_mut() = master;
        self.report = report;
        Ok(fetched)
    }

    /// Sums the archives' own totals: those just read by a resync, borg's `pre12-meta` for
    /// old archives, the metadata object (one read, no item stream) for the others.
    fn compute_totals(
        &mut self,
        store: &mut KeyedRepository,
        manifest: &Manifest,
        fetched: &FetchedTotals,
    ) -> Result<(), ArchiveError> {
        self.archives_size = 0;
        self.archives_csize = 0;
        let mut pre12_changed = false;
        for r in manifest.archives.values() {
            let fpr = hex::encode(r.id);
            let t = if let Some(t) = fetched.get(&r.id) {
                *t
            } else if let Some(t) = self.pre12_meta.get(&fpr).and_then(totals_from_json) {
                t
            } else {
                let meta = ArchiveMeta::load(store, &r.id)?;
                self.report.archive_metadata_reads += 1;
                match ArchiveTotals::from_meta(&meta) {
                    Some(t) => t,
                    None => {
                        let mut scratch = ChunkIndex::new();
                        let t = sync::fetch_and_build_idx(store, &r.id, &mut scratch)?;
                        self.report.archives_fetched += 1;
                        t
                    }
                }
            };
            // borg caches the totals of pre-1.2 archives (no `nfiles` in their metadata).
            if !t.from_metadata && !self.pre12_meta.contains_key(&fpr) {
                self.pre12_meta.insert(fpr, totals_to_json(&t));
                pre12_changed = true;
            }
            self.archives_size += t.size;
            self.archives_csize += t.csize;
        }
        if pre12_changed {
            self.save_pre12_meta()?;
        }
        Ok(())
    }

    fn save_pre12_meta(&self) -> Result<(), ArchiveError> {
        let p = self.path.join("pre12-meta");
        let text = pretty_json(&serde_json::Value::Object(self.pre12_meta.clone()));
        crate::paths::write_atomic(&p, text.as_bytes()).map_err(io_err(&p))
    }

    fn table(&self) -> RwLockReadGuard<'_, ChunkTable> {
        self.chunks.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_mut(&mut self) -> RwLockWriteGuard<'_, ChunkTable> {
        self.chunks.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A view of the chunk index for other threads (see [`ChunkLookup`]).
    pub fn chunk_lookup(&self) -> ChunkLookup {
        ChunkLookup(Arc::clone(&self.chunks))
    }

    /// The entry of a chunk any archive references.
    pub fn seen_chunk(&self, id: &[u8; 32]) -> Option<ChunkEntry> {
        self.table().get(id).filter(|e| e.refcount > 0)
    }

    /// Adds a reference to a chunk that is already stored.
    pub fn chunk_incref(&mut self, id: &[u8; 32], stats: &mut OpStats) -> Option<ChunkRef> {
        let mut e = self.seen_chunk(id)?;
        self.begin();
        if e.refcount < MAX_VALUE {
            e.refcount += 1;
        }
        self.table_mut().set(id, e);
        stats.osize += e.size as u64;
        stats.csize += e.csize as u64;
        Some(ChunkRef {
            id: *id,
            size: e.size,
            csize: e.csize,
        })
    }

    /// Stores `data` (already known to hash to `id`) if new, else adds a reference.
    pub fn add_chunk(
        &mut self,
        store: &mut KeyedRepository,
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
        self.begin();
        self.table_mut().set(
            id,
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

    /// Records a chunk the caller has just (re)written under an id the index may already hold
    /// (borg's `add_chunk(overwrite=True)`, used by `recreate --recompress`): one reference
    /// more and the new stored size; counted as unique only if the id was not known.
    pub fn record_overwritten_chunk(
        &mut self,
        id: &[u8; 32],
        size: u32,
        csize: u32,
        stats: &mut OpStats,
    ) {
        let Some(mut e) = self.seen_chunk(id) else {
            self.record_new_chunk(id, size, csize, stats);
            return;
        };
        self.begin();
        if e.refcount < MAX_VALUE {
            e.refcount += 1;
        }
        e.size = size;
        e.csize = csize;
        self.table_mut().set(id, e);
        stats.osize += size as u64;
        stats.csize += csize as u64;
    }

    /// Drops a reference; deletes the object from the repository at refcount 0 (a saturated
    /// refcount is never decremented, as in borg).
    pub fn chunk_decref(
        &mut self,
        store: &mut KeyedRepository,
        id: &[u8; 32],
        stats: &mut OpStats,
    ) -> Result<(), ArchiveError> {
        let Some(mut e) = self.table().get(id) else {
            return Ok(());
        };
        self.begin();
        if e.refcount != MAX_VALUE {
            e.refcount = e.refcount.saturating_sub(1);
        }
        stats.osize += e.size as u64;
        stats.csize += e.csize as u64;
        if e.refcount == 0 {
            stats.usize += e.size as u64;
            stats.ucsize += e.csize as u64;
            self.table_mut().remove(id);
            store.repo.delete(id)?;
        } else {
            self.table_mut().set(id, e);
        }
        Ok(())
    }

    /// The files cache, loaded on first use (ages +1, as borg does when it loads it).
    fn files(&self) -> MutexGuard<'_, Option<FilesCache>> {
        let mut guard = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.read_files());
        }
        guard
    }

    fn read_files(&self) -> FilesCache {
        let name = files::files_cache_name();
        let p = self.path.join(&name);
        let stored = self
            .integrity
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone());
        let result = fs::File::open(&p)
            .and_then(|f| Ok((f.metadata()?.len(), f)))
            .map_err(|e| format!("The files cache can't be read. [{e}]"))
            .and_then(|(len, f)| {
                let expected = match stored {
                    Some(text) => match integrity::parse_json(&text)
                        .map_err(|e| format!("The files cache is corrupted. [{e}]"))?
                    {
                        integrity::Stored::Digests(d) => Some(d),
                        integrity::Stored::UnknownAlgorithm(_) => None,
                    },
                    None => None,
                };
                // Read in blocks, digesting as we go; a mismatch discards what was parsed.
                let mut hasher = integrity::IntegrityHasher::new(&name);
                let fc = FilesCache::decode_from(f, len, 1, &mut |b| hasher.update(b));
                if let Some(d) = expected {
                    if !integrity::digests_match(&hasher.finish(), &d) {
                        return Err("The files cache is corrupted. [digest mismatch]".into());
                    }
                }
                fc.map_err(|e| e.to_string())
            });
        match result {
            Ok(fc) => fc,
            Err(msg) => {
                tracing::warn!("{msg}");
                tracing::warn!("Continuing without files cache - expect lower performance.");
                FilesCache::default()
            }
        }
    }

    /// The files-cache answer for a path: its chunk ids if unchanged since last time.
    /// `path_hash` is `id_hash(absolute path bytes)`. A hit refreshes the entry (age 0,
    /// current inode), as borg's `file_known_and_unchanged` does.
    pub fn file_lookup(&self, path_hash: &[u8; 32], st: &FileStat) -> Option<Vec<[u8; 32]>> {
        let m = self.options.files_cache;
        if m.disabled || m.rechunk {
            if m.rechunk {
                drop(self.files()); // loaded so that commit keeps earlier generations
            }
            return None;
        }
        let ids = {
            let mut guard = self.files();
            let fc = guard.as_mut()?;
            let e = fc.get(path_hash)?;
            if m.size && e.size != st.size {
                return None;
            }
            if m.inode && e.inode != st.inode {
                return None;
            }
            if m.ctime && e.cmtime_ns != st.ctime_ns {
                return None;
            }
            if !m.ctime && m.mtime && e.cmtime_ns != st.mtime_ns {
                return None;
            }
            let ids = e.chunk_ids.to_vec();
            fc.refresh(path_hash, st.inode);
            ids
        };
        if ids.iter().any(|id| self.seen_chunk(id).is_none()) {
            return None;
        }
        Some(ids)
    }

    /// Remembers a file's state and chunks for the next backup.
    pub fn memorize_file(&mut self, path_hash: &[u8; 32], st: &FileStat, chunk_ids: Vec<[u8; 32]>) {
        let m = self.options.files_cache;
        if m.disabled {
            return;
        }
        let cmtime_ns = if m.ctime || !m.mtime {
            st.ctime_ns
        } else {
            st.mtime_ns
        };
        let mut guard = self.files();
        if let Some(fc) = guard.as_mut() {
            fc.insert(
                *path_hash,
                FileEntry {
                    age: 0,
                    inode: st.inode,
                    size: st.size,
                    cmtime_ns,
                    chunk_ids,
                },
            );
            fc.newest_cmtime = Some(fc.newest_cmtime.unwrap_or(0).max(cmtime_ns));
        }
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
        for (_, e) in self.table().iter() {
            s.total_chunks += e.refcount as u64;
            s.unique_size += e.size as u64;
            s.unique_csize += e.csize as u64;
            s.total_unique_chunks += 1;
        }
        s
    }

    /// Starts the transaction before the first change (borg's `begin_txn`, which the first
    /// change to the chunk index or a resync calls): snapshots `config`, `chunks` and the
    /// files cache into `txn.active`, so that a run that ends before its commit is rolled back
    /// at the next open. A failure is kept for [`Cache::commit`] to report.
    fn begin(&mut self) {
        if self.txn_active {
            return;
        }
        self.txn_active = true;
        let progress = self.options.progress.clone();
        let pi = progress.message("cache.begin_transaction");
        if let Err(e) = begin_txn(&self.path, &|m| pi.output(m)) {
            self.txn_error = Some(ArchiveError::Repo(RepoError::io(&self.path, e)));
        }
        pi.finish();
    }

    /// Persists the cache after the repository commit that made `manifest` current: the
    /// files cache (if it was used), `chunks` and `config` with their integrity digests; the
    /// `txn.active` snapshot taken at the first change (or now, if nothing changed) goes
    /// last, so that an interrupted commit is rolled back at the next open.
    pub fn commit(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        self.begin();
        if let Some(e) = self.txn_error.take() {
            self.txn_active = false;
            return Err(e);
        }
        let p = self.path.clone();
        let progress = self.options.progress.clone();
        let pi = progress.message("cache.commit");
        let files_digests = {
            let guard = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_ref() {
                Some(fc) => {
                    let name = files::files_cache_name();
                    let fp = p.join(&name);
                    let mut hasher = integrity::IntegrityHasher::new(&name);
                    crate::paths::write_atomic_with(&fp, &mut |w| {
                        let mut out = DigestWriter {
                            inner: w,
                            hasher: &mut hasher,
                        };
                        fc.write_for_commit(files::ttl(), &mut out)
                    })
                    .map_err(io_err(&fp))?;
                    Some((name, hasher.finish()))
                }
                None => None,
            }
        };
        if let Some((name, digests)) = files_digests {
            pi.output("Saving files cache");
            self.set_integrity(&name, integrity::to_json(&digests));
        }
        // Streamed with its digest (`index_digests`), never copied whole.
        pi.output("Saving chunks cache");
        let cp = p.join("chunks");
        let mut hasher = integrity::IntegrityHasher::new("chunks");
        {
            let table = self.table();
            crate::paths::write_atomic_with(&cp, &mut |w| {
                let header = table.header();
                w.write_all(&header)?;
                hasher.update(&header);
                hasher.hash_part("HashHeader");
                w.write_all(table.body())?;
                hasher.update(table.body());
                Ok(())
            })
            .map_err(io_err(&cp))?;
        }
        self.set_integrity("chunks", integrity::to_json(&hasher.finish()));
        pi.output("Saving cache config");
        self.save_config(manifest)?;
        let active = p.join("txn.active");
        let tmp = p.join("txn.tmp");
        fs::rename(&active, &tmp).map_err(io_err(&active))?;
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        self.txn_active = false;
        pi.finish();
        Ok(())
    }

    fn set_integrity(&mut self, name: &str, json: String) {
        match self.integrity.iter_mut().find(|(k, _)| k == name) {
            Some(e) => e.1 = json,
            None => self.integrity.push((name.to_string(), json)),
        }
    }

    /// borg's `CacheConfig.save(manifest, key)`.
    fn save_config(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let id = hex::encode(manifest.id);
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        self.config.set("cache", "manifest", &id);
        self.config.set("cache", "timestamp", &manifest.timestamp);
        self.config
            .set("cache", "ignored_features", &join(&self.ignored_features));
        self.config.set(
            "cache",
            "mandatory_features",
            &join(&self.mandatory_features),
        );
        for (k, v) in &self.integrity {
            self.config.set("integrity", k, v);
        }
        self.config.set("integrity", "manifest", &id);
        self.config
            .set("cache", "key_type", &self.key_type.to_string());
        let cp = self.path.join("config");
        crate::paths::write_atomic(&cp, self.config.to_text().as_bytes()).map_err(io_err(&cp))
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

fn totals_from_json(v: &serde_json::Value) -> Option<ArchiveTotals> {
    let g = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    v.get("size")?;
    Some(ArchiveTotals {
        size: g("size"),
        csize: g("csize"),
        nfiles: g("nfiles"),
        size_parts: g("size_parts"),
        csize_parts: g("csize_parts"),
        nfiles_parts: g("nfiles_parts"),
        from_metadata: false,
    })
}

fn totals_to_json(t: &ArchiveTotals) -> serde_json::Value {
    serde_json::json!({
        "size": t.size,
        "csize": t.csize,
        "nfiles": t.nfiles,
        "size_parts": t.size_parts,
        "csize_parts": t.csize_parts,
        "nfiles_parts": t.nfiles_parts,
    })
}

/// JSON as Python's `json.dump(indent=4)` writes it.
fn pretty_json(v: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return "{}".into();
    }
    String::from_utf8(out).unwrap_or_else(|_| "{}".into())
}

/// Creates a new, empty cache directory (borg's `LocalCache.create`).
/// Creates a new cache directory. It is built under a temporary name and renamed into place,
/// so a crash never leaves a half-made cache where the real one belongs.
fn create_layout(path: &Path, repo_hex: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.tmp{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    crate::paths::ensure_dir(&tmp)?;
    crate::paths::write_atomic(&tmp.join("README"), CACHE_README.as_bytes())?;
    crate::paths::write_atomic(
        &tmp.join("config"),
        config::initial(repo_hex).to_text().as_bytes(),
    )?;
    crate::paths::write_atomic(&tmp.join("chunks"), &ChunkIndex::new().write())?;
    crate::paths::ensure_dir(&tmp.join(sync::ARCHIVE_DIR))?;
    crate::paths::write_atomic(&tmp.join(files::files_cache_name()), b"")?;
    crate::paths::write_atomic(&tmp.join("pre12-meta"), b"{}")?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        crate::paths::sync_dir(parent)?;
    }
    Ok(())
}

/// Snapshots `config`, `chunks` and the files cache into `txn.active` (borg's `begin_txn`),
/// telling `step` what it reads as borg's progress messages do.
fn begin_txn(path: &Path, step: &dyn Fn(&str)) -> std::io::Result<()> {
    let tmp = path.join("txn.tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir(&tmp)?;
    step("Initializing cache transaction: Reading config");
    fs::copy(path.join("config"), tmp.join("config"))?;
    step("Initializing cache transaction: Reading chunks");
    match fs::copy(path.join("chunks"), tmp.join("chunks")) {
        Ok(_) => {}
        // a lost chunks file is rebuilt by the sync; snapshot an empty one
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::write(tmp.join("chunks"), ChunkIndex::new().write())?;
        }
        Err(e) => return Err(e),
    }
    step("Initializing cache transaction: Reading files");
    let name = files::files_cache_name();
    match fs::copy(path.join(&name), tmp.join(&name)) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::write(tmp.join(&name), b"")?;
        }
        Err(e) => return Err(e),
    }
    fs::rename(&tmp, path.join("txn.active"))
}

/// Removes a partial transaction and restores an interrupted one (borg's `rollback`).
fn rollback(path: &Path) -> std::io::Result<()> {
    let tmp = path.join("txn.tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    let active = path.join("txn.active");
    if active.exists() {
        for name in ["config", "chunks"] {
            fs::copy(active.join(name), path.join(name))?;
        }
        let files_name = fs::read_dir(&active)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n == "files" || n.starts_with("files."));
        if let Some(n) = files_name {
            fs::copy(active.join(&n), path.join(&n))?;
        }
        fs::rename(&active, &tmp)?;
        fs::remove_dir_all(&tmp)?;
    }
    Ok(())
}

impl Cache {
    /// True if the files cache has an entry for `path_hash`, changed or not: `create` then
    /// reports a changed file as modified (`M`) rather than added (`A`), as borg's
    /// `file_known_and_unchanged` does.
    pub fn file_known(&self, path_hash: &[u8; 32]) -> bool {
        // borg's `file_known_and_unchanged`: `rechunk` knows no file (status `A`)
        !self.options.files_cache.disabled
            && !self.options.files_cache.rechunk
            && self
                .files()
                .as_ref()
                .is_some_and(|fc| fc.get(path_hash).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_cache_modes_are_borgs() {
        let ok = |s: &str| s.parse::<FilesCacheMode>().unwrap();
        let m = ok("rechunk,ctime");
        assert!(m.rechunk && m.ctime && !m.size && !m.inode);
        let m = ok("size");
        assert!(m.size && !m.ctime && !m.mtime);
        assert_eq!(ok("ctime,size,inode"), FilesCacheMode::default());
        assert_eq!(ok(" inode,size,ctime "), FilesCacheMode::default());
        for bad in ["ctime,mtime", "ctime,inode", "disabled,size", "rechunk"] {
            assert_eq!(
                bad.parse::<FilesCacheMode>().unwrap_err(),
                "cache mode short must be one of: cis,ims,cs,ms,cr,mr,d,s",
                "{bad}"
            );
        }
        assert_eq!(
            "bogus".parse::<FilesCacheMode>().unwrap_err(),
            "cache mode must be a comma-separated list of: ctime,disabled,inode,mtime,rechunk,size"
        );
    }

    #[test]
    fn new_layout_matches_borg_create() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        create_layout(&p, "ab").unwrap();
        assert_eq!(fs::read_to_string(p.join("README")).unwrap(), CACHE_README);
        assert_eq!(fs::read_to_string(p.join("pre12-meta")).unwrap(), "{}");
        assert_eq!(fs::read(p.join("chunks")).unwrap().len(), 18 + 1031 * 44);
        assert!(p.join(sync::ARCHIVE_DIR).is_dir());
        assert_eq!(fs::read(p.join("files")).unwrap(), b"");
    }

    #[test]
    fn interrupted_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        create_layout(&p, "ab").unwrap();
        fs::write(p.join("files"), b"old files").unwrap();
        begin_txn(&p, &|_| {}).unwrap();
        assert!(p.join("txn.active").is_dir());
        fs::write(p.join("config"), b"half-written").unwrap();
        fs::write(p.join("chunks"), b"half-written").unwrap();
        fs::write(p.join("files"), b"new").unwrap();
        fs::create_dir(p.join("txn.tmp")).unwrap();
        rollback(&p).unwrap();
        assert!(!p.join("txn.active").exists() && !p.join("txn.tmp").exists());
        assert_eq!(
            fs::read_to_string(p.join("config")).unwrap(),
            config::initial("ab").to_text()
        );
        assert!(ChunkIndex::read(&fs::read(p.join("chunks")).unwrap()).is_ok());
        assert_eq!(fs::read(p.join("files")).unwrap(), b"old files");
    }

    #[test]
    fn chunk_values_round_trip_and_pre12_json_is_pythons() {
        let e = ChunkEntry {
            refcount: 3,
            size: 0x01020304,
            csize: 7,
        };
        assert_eq!(entry_of(&pack_entry(e)), e);
        let t = ArchiveTotals {
            size: 5,
            ..ArchiveTotals::default()
        };
        let mut m = serde_json::Map::new();
        m.insert("ab".into(), totals_to_json(&t));
        let text = pretty_json(&serde_json::Value::Object(m));
        assert!(text.starts_with("{\n    \"ab\": {\n        \""), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(totals_from_json(&back["ab"]).unwrap().size, 5);
    }
}
