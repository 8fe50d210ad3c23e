//! [`LocalRepository`]: a repository directory on a local file system (borg `Repository`,
//! FORMAT.md §2.1–§2.15, §4.7 for the `nonce` file).

pub mod check;

use super::config::{self, Config, SECTION};
use super::index::NsIndex;
use super::lock::Lock;
use super::objstore::{ObjLock, S3Bucket, OBJECT_STORE_MAX_SEGMENT_SIZE};
use super::segment::{
    self, LoggedIo, ATTIC_MAGIC, DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_SEGMENTS_PER_DIR, MAX_DATA_SIZE,
    MAX_SEGMENT_SIZE_LIMIT, TAG_PUT,
};
use super::storage::dir::{self as dirstore, DirStorage};
use super::storage::s3::S3Storage;
use super::storage::{Storage, StorageLock};
use super::{CheckReport, ObjectId, RepoError, Repository, Result};
use crate::progress::ProgressSink;
use crate::units::format_file_size;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exact `README` content of a borg 1.2 repository (§2.1).
pub const REPOSITORY_README: &str =
    "This is a Borg Backup repository.\nSee https://borgbackup.readthedocs.io/\n";

/// Options of [`LocalRepository::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Write `append_only = 1` (§2.13).
    pub append_only: bool,
    /// `storage_quota` in bytes (`None`/0 = none, §2.14).
    pub storage_quota: Option<u64>,
    /// Create missing parent directories.
    pub make_parent_dirs: bool,
    /// `segments_per_dir` (default 1000, §2.2).
    pub segments_per_dir: Option<u32>,
    /// `max_segment_size` (default 500 MiB, §2.2).
    pub max_segment_size: Option<u64>,
    /// `additional_free_space` (default 0, §2.11).
    pub additional_free_space: Option<u64>,
}

/// Options of [`LocalRepository::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Take the exclusive lock (writers, check) instead of a shared one.
    pub exclusive: bool,
    /// Seconds to wait for the lock (`None` = forever; borg's CLI default is 1).
    pub lock_wait: Option<f64>,
    /// Take a lock at all.
    pub lock: bool,
    /// Force append-only mode (like `borg serve --append-only`); never turns it off.
    pub append_only: bool,
    /// Override the configured storage quota (like `borg serve --storage-quota`).
    pub storage_quota: Option<u64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            exclusive: false,
            lock_wait: Some(1.0),
            lock: true,
            append_only: false,
            storage_quota: None,
        }
    }
}

/// A borg repository in a local directory.
pub struct LocalRepository {
    pub(super) path: PathBuf,
    pub(super) config: Config,
    pub(super) lock: Option<Box<dyn StorageLock>>,
    /// Where the repository's files live (a directory or a bucket; for a bucket `path` is
    /// only the location text used in messages).
    pub(super) storage: Arc<dyn Storage>,
    pub(super) do_lock: bool,
    pub(super) allow_upgrade: bool,
    pub(super) io: LoggedIo,
    pub(super) id: [u8; 32],
    pub(super) index: Option<NsIndex>,
    /// `hints.segments` of the open transaction (§2.8).
    pub(super) segments: BTreeMap<u32, i64>,
    /// `hints.compact` of the open transaction (§2.8).
    pub(super) compact: BTreeMap<u32, i64>,
    /// `hints.storage_quota_use` (§2.14).
    pub(super) storage_quota_use: u64,
    /// `hints.shadow_index` (§2.15).
    pub(super) shadow_index: BTreeMap<ObjectId, Vec<u32>>,
    pub(super) active_txn: bool,
    pub(super) transaction_doomed: Option<(String, String)>,
    pub(super) append_only: bool,
    pub(super) storage_quota: u64,
    pub(super) additional_free_space: u64,
    pub(super) max_segment_size: u64,
    pub(super) created: bool,
    pub(super) messages: Vec<String>,
    /// Where compaction reports borg's `repository.compact_segments` percentage.
    pub(super) progress: crate::progress::Progress,
}

fn is_repository(path: &Path) -> bool {
    use std::io::Read;
    let Ok(f) = fs::File::open(path.join("README")) else {
        return false;
    };
    let mut head = Vec::new();
    if f.take(100).read_to_end(&mut head).is_err() {
        return false;
    }
    let has = |n: &[u8]| head.windows(n.len()).any(|w| w == n);
    has(b"Borg Backup repository") || has(b"Borg repository")
}

fn abspath(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub(super) fn disp(p: &Path) -> String {
    p.display().to_string()
}

/// The `config` of a new repository (random id).
fn new_config(opts: &CreateOptions) -> Config {
    let mut cfg = Config::new();
    let mut id = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
    let sp = opts.segments_per_dir.unwrap_or(DEFAULT_SEGMENTS_PER_DIR);
    cfg.set(SECTION, "version", "1");
    cfg.set(SECTION, "segments_per_dir", &sp.to_string());
    cfg.set(
        SECTION,
        "max_segment_size",
        &opts
            .max_segment_size
            .unwrap_or(DEFAULT_MAX_SEGMENT_SIZE)
            .to_string(),
    );
    cfg.set(
        SECTION,
        "append_only",
        if opts.append_only { "1" } else { "0" },
    );
    cfg.set(
        SECTION,
        "storage_quota",
        &opts.storage_quota.unwrap_or(0).to_string(),
    );
    cfg.set(
        SECTION,
        "additional_free_space",
        &opts.additional_free_space.unwrap_or(0).to_string(),
    );
    cfg.set(SECTION, "id", &hex::encode(id));
    cfg
}

impl LocalRepository {
    /// Creates an empty repository at `path` (README, config with a random id, `data/`), like
    /// `borg init` before its first commit. Refuses existing repositories (also in parent
    /// directories) and non-empty paths.
    pub fn create(path: &Path, opts: &CreateOptions) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let path = abspath(path);
        match fs::metadata(&path) {
            Ok(md) => {
                if is_repository(&path) {
                    return Err(RepoError::AlreadyExists(disp(&path)));
                }
                let empty = md.is_dir()
                    && fs::read_dir(&path)
                        .map_err(|e| RepoError::io(&path, e))?
                        .next()
                        .is_none();
                if !empty {
                    return Err(RepoError::PathAlreadyExists(disp(&path)));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::io(&path, e)),
        }
        let mut p = path.as_path();
        while let Some(parent) = p.parent() {
            if is_repository(parent) {
                return Err(RepoError::AlreadyExists(disp(parent)));
            }
            p = parent;
        }
        if opts.make_parent_dirs {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| RepoError::io(parent, e))?;
            }
        }
        if !path.exists() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        RepoError::ParentPathDoesNotExist(disp(&path))
                    } else {
                        RepoError::io(&path, e)
                    }
                })?;
        }
        let readme = path.join("README");
        super::create_file(&readme)
            .and_then(|mut f| f.write_all(REPOSITORY_README.as_bytes()))
            .map_err(|e| RepoError::io(&readme, e))?;
        let data = path.join("data");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&data)
            .map_err(|e| RepoError::io(&data, e))?;
        dirstore::save_config(&path, new_config(opts).to_text().as_bytes())?;
        Ok(())
    }

    /// `create` followed by an exclusive `open` (borg `Repository(create=True)`); a failing
    /// free-space check on the first commit then destroys the new repository, as borg does.
    pub fn create_and_open(
        path: &Path,
        create: &CreateOptions,
        open: &OpenOptions,
    ) -> Result<LocalRepository> {
        LocalRepository::create(path, create)?;
        let mut o = open.clone();
        o.exclusive = true;
        let mut r = LocalRepository::open(path, &o)?;
        r.created = true;
        Ok(r)
    }

    /// Creates an empty repository on object storage (`README` and `config`; `max_segment_size`
    /// defaults to [`OBJECT_STORE_MAX_SEGMENT_SIZE`]). Refuses a prefix that holds objects.
    pub fn create_obj(store: &Arc<S3Bucket>, opts: &CreateOptions) -> Result<()> {
        let path = PathBuf::from(store.display());
        let ioe = |e| RepoError::io(&path, e);
        if store.head("config").map_err(ioe)?.is_some() {
            return Err(RepoError::AlreadyExists(disp(&path)));
        }
        if !store.list("").map_err(ioe)?.is_empty() {
            return Err(RepoError::PathAlreadyExists(disp(&path)));
        }
        let mut o = opts.clone();
        o.max_segment_size = Some(o.max_segment_size.unwrap_or(OBJECT_STORE_MAX_SEGMENT_SIZE));
        store
            .put("README", REPOSITORY_README.as_bytes())
            .map_err(ioe)?;
        store
            .put("config", new_config(&o).to_text().as_bytes())
            .map_err(ioe)
    }

    /// [`Self::create_obj`] followed by an exclusive [`Self::open_obj`].
    pub fn create_and_open_obj(
        store: &Arc<S3Bucket>,
        create: &CreateOptions,
        open: &OpenOptions,
    ) -> Result<LocalRepository> {
        LocalRepository::create_obj(store, create)?;
        let mut o = open.clone();
        o.exclusive = true;
        let mut r = LocalRepository::open_obj(store, &o)?;
        r.created = true;
        Ok(r)
    }

    /// Opens (and locks) an existing repository on object storage.
    pub fn open_obj(store: &Arc<S3Bucket>, opts: &OpenOptions) -> Result<LocalRepository> {
        let path = PathBuf::from(store.display());
        let ioe = |e| RepoError::io(&path, e);
        let text = match store.get("config").map_err(ioe)? {
            Some(t) => t,
            None => {
                if store.list("").map_err(ioe)?.is_empty() {
                    return Err(RepoError::DoesNotExist(disp(&path)));
                }
                return Err(RepoError::InvalidRepository(disp(&path)));
            }
        };
        let mut lock = None;
        if opts.lock {
            let mut l = ObjLock::new(store.clone(), opts.exclusive, opts.lock_wait);
            l.acquire()?;
            lock = Some(Box::new(l) as Box<dyn StorageLock>);
        }
        // re-read under the lock: a writer may have changed it meanwhile
        let text = if opts.lock {
            store.get("config").map_err(ioe)?.unwrap_or(text)
        } else {
            text
        };
        let storage = Arc::new(S3Storage::new(store.clone()));
        Self::open_parsed(path, storage, lock, text, opts)
    }

    /// Opens (and locks) an existing repository (borg `Repository.open`).
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<LocalRepository> {
        let path = abspath(path);
        let md = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::DoesNotExist(disp(&path)))
            }
            Err(e) => return Err(RepoError::io(&path, e)),
        };
        if !md.is_dir() {
            return Err(RepoError::InvalidRepository(disp(&path)));
        }
        let mut lock = None;
        if opts.lock {
            let mut l = Lock::new(&path.join("lock"), opts.exclusive, opts.lock_wait);
            l.acquire()?;
            lock = Some(Box::new(l) as Box<dyn StorageLock>);
        }
        let cp = path.join("config");
        let text = match fs::read(&cp) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::InvalidRepository(disp(&path)))
            }
            Err(e) => return Err(RepoError::io(&cp, e)),
        };
        let storage = Arc::new(DirStorage::new(&path));
        Self::open_parsed(path, storage, lock, text, opts)
    }

    fn open_parsed(
        path: PathBuf,
        storage: Arc<dyn Storage>,
        lock: Option<Box<dyn StorageLock>>,
        text: Vec<u8>,
        opts: &OpenOptions,
    ) -> Result<LocalRepository> {
        let bad = |m: String| RepoError::InvalidRepositoryConfig(disp(&path), m);
        let text = String::from_utf8(text).map_err(|_| bad("config is not UTF-8".into()))?;
        let cfg = Config::parse(&text).map_err(|e| bad(e.0))?;
        if !cfg.has_section(SECTION) {
            return Err(bad("no repository section found".into()));
        }
        let version = cfg
            .get_int(SECTION, "version")
            .map_err(|e| bad(e.0))?
            .ok_or_else(|| bad("no version".into()))?;
        if version != 1 {
            return Err(bad(format!(
                "repository version {version} is not supported by this borg version"
            )));
        }
        let size = |k: &str| -> Result<Option<u64>> {
            match cfg.get(SECTION, k) {
                None => Ok(None),
                Some(v) => config::parse_file_size(v).map(Some).map_err(|e| bad(e.0)),
            }
        };
        let max_segment_size =
            size("max_segment_size")?.ok_or_else(|| bad("no max_segment_size".into()))?;
        if max_segment_size >= MAX_SEGMENT_SIZE_LIMIT {
            return Err(bad(format!("max_segment_size >= {MAX_SEGMENT_SIZE_LIMIT}")));
        }
        let segments_per_dir = cfg
            .get_int(SECTION, "segments_per_dir")
            .map_err(|e| bad(e.0))?
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| bad("invalid segments_per_dir".into()))?;
        let additional_free_space = size("additional_free_space")?.unwrap_or(0);
        let append_only = opts.append_only
            || cfg
                .get_bool(SECTION, "append_only")
                .map_err(|e| bad(e.0))?
                .unwrap_or(false);
        let storage_quota = match opts.storage_quota {
            Some(q) => q,
            None => size("storage_quota")?.unwrap_or(0),
        };
        let id_hex = cfg.get(SECTION, "id").ok_or_else(|| bad("no id".into()))?;
        let id: [u8; 32] = hex::decode(id_hex.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("invalid id".into()))?;
        let io = LoggedIo::with_storage(storage.clone(), max_segment_size, segments_per_dir);
        let repo = LocalRepository {
            path: path.clone(),
            config: cfg,
            lock,
            storage,
            do_lock: opts.lock,
            allow_upgrade: false,
            io,
            id,
            index: None,
            segments: BTreeMap::new(),
            compact: BTreeMap::new(),
            storage_quota_use: 0,
            shadow_index: BTreeMap::new(),
            active_txn: false,
            transaction_doomed: None,
            append_only,
            storage_quota,
            additional_free_space,
            max_segment_size,
            created: false,
            messages: Vec::new(),
            progress: crate::progress::Progress::default(),
        };
        if let Some(seg) = repo.io.get_latest_segment()? {
            if repo.io.get_segment_magic(seg)? == ATTIC_MAGIC {
                return Err(RepoError::AtticRepository(disp(&path)));
            }
        }
        Ok(repo)
    }

    /// Releases the lock (also done on drop). Uncommitted data is left for the next writer's cleanup.
    pub fn close(&mut self) -> Result<()> {
        self.io.abandon_segment();
        if let Some(mut l) = self.lock.take() {
            l.release()?;
        }
        Ok(())
    }

    /// Runs a write step; if the disk is full, removes the partial transaction's segments
    /// (as borg does on ENOSPC) so the repository is left exactly at its last commit.
    fn no_space_cleanup<T>(&mut self, step: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let r = step(self);
        if let Err(RepoError::Io { source, .. }) = &r {
            if source.raw_os_error() == Some(libc::ENOSPC) {
                tracing::warn!(
                    "No space left on device, cleaning up partial transaction to free space."
                );
                let _ = self.rollback_inner(true);
            }
        }
        r
    }

    /// The repository directory (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Warnings and notes collected so far (they also go to `tracing`); drains the list.
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }

    pub(super) fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.messages.push(msg);
    }

    /// Like [`Self::warn`], logged at debug (for what borg logs at debug).
    pub(super) fn note(&mut self, msg: String) {
        tracing::debug!("{msg}");
        self.messages.push(msg);
    }

    /// Config value of `[repository] key`.
    pub fn config_get(&self, key: &str) -> Option<String> {
        self.config.get(SECTION, key).map(|s| s.to_string())
    }

    /// Sets (`Some`) or removes (`None`) `[repository] key` and rewrites `config` atomically.
    pub fn config_set(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.config.set(SECTION, key, v),
            None => {
                self.config.remove(SECTION, key);
            }
        }
        self.save_config()
    }

    pub(super) fn save_config(&mut self) -> Result<()> {
        match self.storage.write_config(self.config.to_text().as_bytes()) {
            // Without a lock (`--bypass-lock`) the repository may be on read-only media:
            // borg only warns there.
            Err(RepoError::Io { path, source })
                if !self.do_lock
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                let reason = crate::platform::strerror(&source);
                self.warn(format!(
                    "{reason}: Failed writing to '{path}'. This is expected when working on read-only repositories."
                ));
                Ok(())
            }
            r => r,
        }
    }

    fn require_exclusive(&self) -> Result<()> {
        if self.do_lock && !self.lock.as_ref().is_some_and(|l| l.got_exclusive_lock()) {
            return Err(RepoError::NeedsExclusiveLock);
        }
        Ok(())
    }

    /// Number of live objects (§9.3 `__len__`).
    pub fn object_count(&mut self) -> Result<usize> {
        self.ensure_index()?;
        Ok(self.index.as_ref().map(|i| i.len()).unwrap_or(0))
    }

    /// Live objects per segment in the current view (one pass over the index).
    fn objects_per_segment(&mut self) -> Result<BTreeMap<u32, u64>> {
        self.ensure_index()?;
        let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
        if let Some(index) = self.index.as_ref() {
            for (_, v) in index.iter() {
                let seg = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                *counts.entry(seg).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// Location (segment, offset) of an object in the current view.
    pub fn location(&mut self, id: &ObjectId) -> Result<Option<(u32, u32)>> {
        self.ensure_index()?;
        Ok(self.index.as_ref().and_then(|i| i.get_loc(id)))
    }
}

impl Repository for LocalRepository {
    fn id(&self) -> [u8; 32] {
        self.id
    }

    fn len(&mut self) -> Result<usize> {
        self.object_count()
    }

    fn contains(&mut self, id: &ObjectId) -> Result<bool> {
        self.ensure_index()?;
        Ok(self.index.as_ref().is_some_and(|i| i.contains(id)))
    }

    fn get(&mut self, id: &ObjectId) -> Result<Vec<u8>> {
        self.ensure_index()?;
        match self.index.as_ref().and_then(|i| i.get_loc(id)) {
            Some((s, o)) => self.io.read(s, o, id),
            None => Err(RepoError::ObjectNotFound(hex::encode(id), disp(&self.path))),
        }
    }

    /// Where the storage reads in batches (object storage: concurrent range requests,
    /// [`LoggedIo::read_many`]) the first failing object fails the batch (callers then ask
    /// one by one to learn which). Otherwise (local files) objects are read one by one.
    fn get_many(&mut self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        if self.storage.read_batch_bytes() == 0 || ids.len() < 2 {
            return ids.iter().map(|id| self.get(id)).collect();
        }
        self.ensure_index()?;
        let mut wanted = Vec::with_capacity(ids.len());
        for id in ids {
            match self.index.as_ref().and_then(|i| i.get_loc(id)) {
                Some((s, o)) => wanted.push((s, o, *id)),
                None => return Err(RepoError::ObjectNotFound(hex::encode(id), disp(&self.path))),
            }
        }
        self.io.read_many(&wanted).into_iter().collect()
    }

    /// On object storage a batch should fill several concurrent requests.
    fn read_batch_bytes(&self) -> usize {
        self.storage.read_batch_bytes()
    }

    fn put(&mut self, id: &ObjectId, data: &[u8]) -> Result<()> {
        if data.len() > MAX_DATA_SIZE as usize {
            return Err(RepoError::Integrity(format!(
                "More than allowed put data [{} > {}]",
                data.len(),
                MAX_DATA_SIZE
            )));
        }
        self.ensure_txn()?;
        if let Some((s, o)) = self.index_mut().get_loc(id) {
            self.delete_inner(id, s, o, false)?;
        }
        let (s, o) = self.no_space_cleanup(|r| r.io.write_put(id, data))?;
        self.storage_quota_use += data.len() as u64 + segment::PUT_HEADER_SIZE as u64;
        *self.segments.entry(s).or_insert(0) += 1;
        self.index_mut().set_loc(*id, s, o);
        if self.storage_quota > 0 && self.storage_quota_use > self.storage_quota {
            let d = (
                format_file_size(self.storage_quota.into(), false),
                format_file_size(self.storage_quota_use.into(), false),
            );
            self.transaction_doomed = Some(d.clone());
            return Err(RepoError::StorageQuotaExceeded(d.0, d.1));
        }
        Ok(())
    }

    fn delete(&mut self, id: &ObjectId) -> Result<()> {
        self.ensure_txn()?;
        match self.index_mut().pop_loc(id) {
            Some((s, o)) => self.delete_inner(id, s, o, true),
            None => Err(RepoError::ObjectNotFound(hex::encode(id), disp(&self.path))),
        }
    }

    fn list(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>> {
        self.ensure_index()?;
        let keys = self
            .index
            .as_ref()
            .map(|i| i.sorted_keys())
            .unwrap_or_default();
        let start = match marker {
            None => 0,
            Some(m) => keys.partition_point(|k| k <= m),
        };
        let end = limit
            .map(|l| (start + l).min(keys.len()))
            .unwrap_or(keys.len());
        Ok(keys[start..end].to_vec())
    }

    fn scan(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>> {
        if limit == Some(0) {
            return Err(RepoError::InvalidArgument(
                "please use limit > 0 or limit = None".into(),
            ));
        }
        self.ensure_index()?;
        let (start_seg, mut start_off) = match marker {
            None => (0, 0),
            Some(m) => self
                .index
                .as_ref()
                .and_then(|i| i.get_loc(m))
                .ok_or_else(|| RepoError::ObjectNotFound(hex::encode(m), disp(&self.path)))?,
        };
        let mut out = Vec::new();
        for (seg, _) in self.io.segment_list(false)? {
            if seg < start_seg || !self.io.segment_exists(seg) {
                continue;
            }
            let it = self.io.iter_objects(seg, start_off as u64, false, false)?;
            for e in it {
                let Ok(e) = e else { break };
                if start_off > 0 {
                    start_off = 0;
                    continue;
                }
                if e.tag == TAG_PUT {
                    let key = e.key.unwrap_or_default();
                    if self.index.as_ref().and_then(|i| i.get_loc(&key)) == Some((seg, e.offset)) {
                        out.push(key);
                        if Some(out.len()) == limit {
                            return Ok(out);
                        }
                    }
                }
            }
            start_off = 0;
        }
        Ok(out)
    }

    /// The segments the index points into, with their file sizes from one listing of `data/`.
    fn segments(&mut self) -> Result<Option<Vec<super::SegmentInfo>>> {
        let counts = self.objects_per_segment()?;
        let sizes: BTreeMap<u32, u64> = self.io.segment_sizes()?.into_iter().collect();
        Ok(Some(
            counts
                .into_iter()
                .map(|(segment, objects)| super::SegmentInfo {
                    segment,
                    size: sizes.get(&segment).copied().unwrap_or(0),
                    objects,
                })
                .collect(),
        ))
    }

    /// One pass over the index for all of `segments`.
    fn segment_objects(&mut self, segments: &[u32]) -> Result<Vec<Vec<ObjectId>>> {
        self.ensure_index()?;
        let slot: std::collections::HashMap<u32, usize> =
            segments.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut found: Vec<Vec<(u32, ObjectId)>> = vec![Vec::new(); segments.len()];
        if let Some(index) = self.index.as_ref() {
            for (id, v) in index.iter() {
                let seg = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                if let Some(&i) = slot.get(&seg) {
                    let offset = u32::from_le_bytes([v[4], v[5], v[6], v[7]]);
                    found[i].push((offset, *id));
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|mut objects| {
                objects.sort_unstable_by_key(|(offset, _)| *offset);
                objects.into_iter().map(|(_, id)| id).collect()
            })
            .collect())
    }

    fn commit(&mut self, compact: bool, threshold: f64) -> Result<()> {
        self.no_space_cleanup(|r| r.commit_inner(compact, threshold))
    }

    fn rollback(&mut self) -> Result<()> {
        self.rollback_inner(false)
    }

    fn check(&mut self, repair: bool, max_duration: u64) -> Result<CheckReport> {
        check::check(
            self,
            repair,
            max_duration,
            &mut |_: &crate::progress::ProgressEvent| {},
        )
    }

    fn check_with_progress(
        &mut self,
        repair: bool,
        max_duration: u64,
        progress: &mut ProgressSink<'_>,
    ) -> Result<CheckReport> {
        check::check(self, repair, max_duration, progress)
    }

    fn set_progress(&mut self, progress: crate::progress::Progress) {
        self.progress = progress;
    }

    fn save_key(&mut self, keydata: &[u8]) -> Result<()> {
        let s = String::from_utf8_lossy(keydata).into_owned();
        self.config_set("key", Some(&s))
    }

    fn load_key(&mut self) -> Result<Vec<u8>> {
        Ok(self
            .config
            .get(SECTION, "key")
            .map(|k| k.trim().as_bytes().to_vec())
            .unwrap_or_default())
    }

    fn get_free_nonce(&mut self) -> Result<Option<u64>> {
        self.require_exclusive()?;
        let p = self.storage.path_of("nonce");
        match self.storage.read("nonce")? {
            Some(t) => {
                let t = String::from_utf8_lossy(&t);
                let b = hex::decode(t.trim()).map_err(|_| {
                    RepoError::Integrity(format!("invalid nonce file {}", disp(&p)))
                })?;
                if b.len() > 8 {
                    return Err(RepoError::Integrity(format!(
                        "invalid nonce file {}",
                        disp(&p)
                    )));
                }
                Ok(Some(b.iter().fold(0u64, |a, x| (a << 8) | *x as u64)))
            }
            None => Ok(None),
        }
    }

    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<()> {
        self.require_exclusive()?;
        if self.get_free_nonce()? != start_nonce {
            return Err(RepoError::NonceMismatch);
        }
        let text = hex::encode(next_unreserved.to_be_bytes());
        self.storage.write_whole("nonce", text.as_bytes())
    }

    fn break_lock(&mut self) -> Result<()> {
        self.storage.break_locks()?;
        // our own lock no longer holds anything; dropping it must not delete a new holder's
        // lock objects
        if let Some(mut l) = self.lock.take() {
            l.disown();
        }
        Ok(())
    }

    fn destroy(&mut self) -> Result<()> {
        if self.append_only {
            return Err(RepoError::AppendOnly(disp(&self.path)));
        }
        self.destroy_inner()
    }

    fn append_only(&self) -> bool {
        self.append_only
    }
}

impl Drop for LocalRepository {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Deletes the lock files of the repository at `path` without opening it (`borg break-lock`).
pub fn break_lock_at(path: &Path) -> Result<()> {
    Lock::new(&path.join("lock"), false, None)
        .break_lock()
        .map_err(|e| RepoError::io(path, e))
}
