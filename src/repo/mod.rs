//! The transactional key-value store: segments, index, hints, integrity, locking (FORMAT.md §2, §3).
//!
//! This layer owns everything inside a repository directory: the `config` file, the segment log
//! under `data/`, `index.T` / `hints.T` / `integrity.T`, the `nonce` file, the `transactions` log
//! of append-only repositories and the `lock.*` files. It stores **opaque bytes** under 32-byte
//! ids and makes commits durable the way borg 1.2 does.
//!
//! It never decrypts, decompresses or interprets object contents, and it never prints: warnings
//! go through `tracing`, and [`check`](Repository::check) returns its findings as data.
//!
//! Files: [`config`] (INI), [`segment`] (log files), [`index`] (hash index files), [`hints`],
//! [`integrity`], [`lock`] (borg-compatible locks), [`local`] ([`LocalRepository`]) and
//! [`check`](mod@local::check) (repository check / repair) and [`compact`] (compaction, §2.12);
//! [`storage`] is where the files live (the `Storage` trait: a directory, or S3 through the
//! client in [`objstore`]); [`remote`] is the same trait over `borg serve` (§9).

pub mod compact;
pub mod config;
pub mod debug;
pub mod hints;
pub mod hostid;
pub mod index;
pub mod integrity;
pub mod local;
pub mod lock;
pub mod objstore;
pub mod remote;
pub mod segment;
pub mod storage;
mod txn;

pub use local::check::CheckReport;
pub use local::{CreateOptions, LocalRepository, OpenOptions};
pub use lock::LockError;

/// A repository object id (FORMAT.md §2.4: the 32-byte key of PUT/DELETE entries).
pub type ObjectId = [u8; 32];

/// The manifest's id: all zero bytes (FORMAT.md §7.2).
pub const MANIFEST_ID: ObjectId = [0u8; 32];

/// borg's `LIST_SCAN_LIMIT`: clients ask for at most this many ids per `list`/`scan` call (§9.3).
pub const LIST_SCAN_LIMIT: usize = 100_000;

/// One segment file holding live objects, as resumable verification (`check --verify-data
/// --max-duration`) sees it: the segment's number, its file size and how many live objects
/// (index entries) it holds. Segment numbers are never reused in borg 1.x (FORMAT.md §2.3:
/// compaction writes new, higher-numbered segments and deletes the old ones), so the number and
/// the size identify the file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment number (`data/<n / segments_per_dir>/<n>`).
    pub segment: u32,
    /// The segment file's size in bytes (0 if the file is missing).
    pub size: u64,
    /// Live objects in it: index entries pointing into this segment.
    pub objects: u64,
}

/// Errors of the repository layer. The messages are borg's one-liners.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// borg `Repository.DoesNotExist`.
    #[error("Repository {0} does not exist.")]
    DoesNotExist(String),
    /// borg `Repository.AlreadyExists`.
    #[error("A repository already exists at {0}.")]
    AlreadyExists(String),
    /// borg `Repository.PathAlreadyExists`.
    #[error("There is already something at {0}.")]
    PathAlreadyExists(String),
    /// borg `Repository.ParentPathDoesNotExist`.
    #[error("The parent path of the repo directory [{0}] does not exist.")]
    ParentPathDoesNotExist(String),
    /// borg `Repository.InvalidRepository`.
    #[error("{0} is not a valid repository. Check repo config.")]
    InvalidRepository(String),
    /// borg `Repository.InvalidRepositoryConfig` (path, reason).
    #[error("{0} does not have a valid configuration. Check repo config [{1}].")]
    InvalidRepositoryConfig(String, String),
    /// borg `Repository.AtticRepository`.
    #[error("Attic repository detected. Please run \"borg upgrade {0}\".")]
    AtticRepository(String),
    /// borg `Repository.CheckNeeded`.
    #[error("Inconsistency detected. Please run \"borg check {0}\".")]
    CheckNeeded(String),
    /// borg `Repository.ObjectNotFound` (hex id, repository path).
    #[error("Object with key {0} not found in repository {1}.")]
    ObjectNotFound(String, String),
    /// borg `Repository.InsufficientFreeSpaceError` (required, available; formatted sizes).
    #[error("Insufficient free space to complete transaction (required: {0}, available: {1}).")]
    InsufficientFreeSpace(String, String),
    /// borg `Repository.StorageQuotaExceeded` (quota, use; formatted sizes).
    #[error("The storage quota ({0}) has been exceeded ({1}). Try deleting some archives.")]
    StorageQuotaExceeded(String, String),
    /// borg `IntegrityError`: a segment entry failed validation (the text names segment/offset).
    #[error("Data integrity error: {0}")]
    Integrity(String),
    /// borg `FileIntegrityError`: an index/hints file failed its integrity digest (§2.9).
    #[error("File failed integrity check: {0}")]
    FileIntegrity(String),
    /// Locking failed (timeout, ...).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The operation is refused in append-only mode (borg raises `ValueError(path + " is in append-only mode")`).
    #[error("{0} is in append-only mode")]
    AppendOnly(String),
    /// `commit_nonce_reservation` was called with a `start_nonce` that is not the current value.
    #[error("nonce space reservation with mismatched previous state")]
    NonceMismatch,
    /// A write-side operation needs the exclusive lock (borg raises an `AssertionError`).
    #[error("bug in code, exclusive lock should exist here")]
    NeedsExclusiveLock,
    /// An argument was invalid (e.g. `scan` with limit 0, an object larger than `MAX_DATA_SIZE`).
    #[error("{0}")]
    InvalidArgument(String),
    /// borg `PathNotAllowed`: `borg serve --restrict-to-…` refused the path.
    #[error("Repository path not allowed: {0}")]
    PathNotAllowed(String),
    /// borg `InvalidRPCMethod`: the server does not know the method.
    #[error("RPC method {0} is not valid.")]
    InvalidRpcMethod(String),
    /// borg `ConnectionClosed` / `ConnectionClosedWithHint` (the hint may be empty).
    #[error("Connection closed by remote host{}", if .0.is_empty() { String::new() } else { format!(". {}", .0) })]
    ConnectionClosed(String),
    /// borg `UnexpectedRPCDataFormatFromServer` (the offending data, shown on one line).
    #[error("Got unexpected RPC data format from server: {0}")]
    UnexpectedServerData(String),
    /// Any other exception the server reported (borg `RemoteRepository.RPCError`).
    #[error("{message}")]
    Remote {
        /// The server's exception class name (borg's msgid for it).
        class: String,
        /// The server's short message, on one line.
        message: String,
    },
    /// An I/O error on a repository file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl RepoError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> RepoError {
        RepoError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result alias of this layer.
pub type Result<T> = std::result::Result<T, RepoError>;

/// The repository operations, mirroring borg's RPC method list (FORMAT.md §9.3) so that a remote
/// backend (`borg serve` client) can implement the same trait. Object-safe.
pub trait Repository {
    /// The repository id (config `id`, 32 bytes).
    fn id(&self) -> [u8; 32];
    /// `__len__`: number of live objects in the current transaction.
    fn len(&mut self) -> Result<usize>;
    /// True when the repository holds no objects.
    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// `__contains__`.
    fn contains(&mut self, id: &ObjectId) -> Result<bool>;
    /// `get`: the stored bytes of an object; `ObjectNotFound` if absent.
    fn get(&mut self, id: &ObjectId) -> Result<Vec<u8>>;
    /// `put`: store (or replace) an object in the current transaction.
    fn put(&mut self, id: &ObjectId, data: &[u8]) -> Result<()>;
    /// `delete`: remove an object in the current transaction; `ObjectNotFound` if absent.
    fn delete(&mut self, id: &ObjectId) -> Result<()>;
    /// `list`: up to `limit` ids after `marker`, in index order.
    fn list(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>>;
    /// `scan`: up to `limit` live ids after `marker`, in on-disk (segment, offset) order.
    fn scan(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>>;
    /// `commit`: make the transaction durable; `compact` runs compaction (§2.12) where supported.
    fn commit(&mut self, compact: bool, threshold: f64) -> Result<()>;
    /// `rollback`: forget the uncommitted transaction.
    fn rollback(&mut self) -> Result<()>;
    /// `check`: repository-level consistency check (and repair).
    fn check(&mut self, repair: bool, max_duration: u64) -> Result<CheckReport>;
    /// [`Repository::check`] reporting its progress (borg's `repository.check` percentage
    /// over the segments) to `progress`; a repository that cannot tell just checks.
    fn check_with_progress(
        &mut self,
        repair: bool,
        max_duration: u64,
        progress: &mut crate::progress::ProgressSink<'_>,
    ) -> Result<CheckReport> {
        let _ = progress;
        self.check(repair, max_duration)
    }
    /// Where long repository operations (compaction) report their progress; a repository
    /// that cannot tell (a remote one: the server does the work) ignores it.
    fn set_progress(&mut self, progress: crate::progress::Progress) {
        let _ = progress;
    }
    /// `save_key`: store the (base64 text) key blob in `config` (§4.4).
    fn save_key(&mut self, keydata: &[u8]) -> Result<()>;
    /// `load_key`: the key blob from `config`; empty when there is none.
    fn load_key(&mut self) -> Result<Vec<u8>>;
    /// `get_free_nonce`: the repository `nonce` file value (§4.7), `None` if absent.
    fn get_free_nonce(&mut self) -> Result<Option<u64>>;
    /// `commit_nonce_reservation`: compare-and-swap of the `nonce` file (§4.7).
    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<()>;
    /// `break_lock`: remove all locks of the repository (§3).
    fn break_lock(&mut self) -> Result<()>;
    /// `destroy`: delete the whole repository (refused in append-only mode).
    fn destroy(&mut self) -> Result<()>;
    /// Whether the repository is in append-only mode (config or override).
    fn append_only(&self) -> bool;
    /// Several `get`s at once, results in the order of `ids`. The default asks one by one;
    /// remote repositories keep many requests in flight (borg's `get_many`, FORMAT.md §9.5).
    fn get_many(&mut self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        ids.iter().map(|id| self.get(id)).collect()
    }
    /// A hint that `get_many` will soon be asked for `ids` (in this order): a remote
    /// repository sends those requests now, so they are in flight while the caller works on
    /// what it has. Local repositories ignore it. Never fails: problems show in `get_many`.
    fn prefetch(&mut self, ids: &[ObjectId]) {
        let _ = ids;
    }
    /// Bytes worth asking for in one [`get_many`](Repository::get_many): readers that read
    /// ahead refill only once this much of their budget is free, so that each call carries
    /// enough objects to keep many requests in flight. 0 (the default): refill at once.
    fn read_batch_bytes(&self) -> usize {
        0
    }
    /// Waits for the answers of writes sent without waiting (remote `put`/`delete`) and
    /// reports the first error among them. Local repositories have nothing to wait for.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// The segments holding live objects, in ascending order, when the repository can tell
    /// (a local or S3 repository, `hoard serve`); `None` when it cannot (`borg serve`, whose
    /// RPC names objects only).
    fn segments(&mut self) -> Result<Option<Vec<SegmentInfo>>> {
        Ok(None)
    }
    /// The live objects of each of `segments`, each list in on-disk (offset) order, so reading
    /// them in that order reads the segment front to back. Only for repositories whose
    /// [`segments`](Repository::segments) is `Some`.
    fn segment_objects(&mut self, segments: &[u32]) -> Result<Vec<Vec<ObjectId>>> {
        let _ = segments;
        Err(RepoError::InvalidArgument(
            "this repository does not tell objects by segment".into(),
        ))
    }
    /// Convenience: the manifest object (`get(MANIFEST_ID)`), `None` if absent.
    fn get_manifest(&mut self) -> Result<Option<Vec<u8>>> {
        match self.get(&MANIFEST_ID) {
            Ok(d) => Ok(Some(d)),
            Err(RepoError::ObjectNotFound(..)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Mode of files this layer creates: borg runs with umask 0077 and `SaveFile` uses `mkstemp`.
pub const FILE_MODE: u32 = 0o600;
/// Mode of directories this layer creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates (truncating) a repository file with [`FILE_MODE`].
pub(crate) fn create_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// borg `SaveFile`: write `<name>.tmp` (mode 0600), fsync, rename over `path`, fsync the directory.
pub(crate) fn save_file(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let r = (|| -> std::io::Result<()> {
        let mut f = create_file(&tmp)?;
        f.write_all(data)?;
        crate::crashpoint::hit();
        f.sync_all()?;
        drop(f);
        crate::crashpoint::hit();
        std::fs::rename(&tmp, path)?;
        crate::crashpoint::hit();
        crate::paths::sync_dir(path.parent().unwrap_or(std::path::Path::new(".")))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| RepoError::io(path, e))
}

/// Creates a directory (and missing parents) with [`DIR_MODE`].
pub(crate) fn create_dirs(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_trait_is_object_safe() {
        fn takes(_: Option<Box<dyn Repository>>) {}
        takes(None);
    }
}
