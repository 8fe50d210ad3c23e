//! Where a repository's files live: the [`Storage`] trait under the transactional segment log,
//! with a directory implementation ([`dir::DirStorage`], borg's own layout on a local file
//! system) and an S3 implementation ([`s3::S3Storage`], the same layout as objects).
//!
//! The segment log ([`super::segment::LoggedIo`]), the index, hints and integrity files, check
//! and compaction are written once against this trait; nothing above it asks which kind of
//! storage it has. See `docs/ARCHITECTURE.md` ("The storage trait") for why these primitives.
//! Names are relative to the repository root with `/` separators (`config`, `index.5`,
//! `data/0/17`). Every error already names the file it concerns.

pub mod dir;
pub mod s3;

use super::{LockError, Result};
use std::io::{Read, Seek};
use std::path::PathBuf;

/// A seekable byte source: a segment file, a downloaded segment, or ranges fetched on demand.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// What [`Storage::free_space`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeSpace {
    /// The store has no meaningful free-space figure (object storage): no check.
    NotApplicable,
    /// The figure could not be read (a warning, then no check, as borg does).
    Unknown,
    /// Bytes available.
    Bytes(u64),
}

/// A segment being written. Bytes appended become durable when [`Self::close`] returns (or,
/// for what was appended before it, [`Self::sync`]).
pub trait SegmentWriter: Send {
    /// Appends `parts` (one log entry).
    fn append(&mut self, parts: &[&[u8]]) -> Result<()>;
    /// Makes appended bytes visible to readers of the storage.
    fn flush(&mut self) -> Result<()>;
    /// The segment so far when the writer holds it in memory (readers take it from here).
    fn buffered(&self) -> Option<&[u8]>;
    /// Makes everything appended so far durable without closing (intermediate commits).
    fn sync(&mut self) -> Result<()>;
    /// Makes the whole segment durable (or hands it to the storage's background writes, which
    /// [`Storage::wait_writes`] waits for) and closes it.
    fn close(self: Box<Self>) -> Result<()>;
    /// Drops the segment without making it durable (rollback; cleanup removes it later).
    fn abandon(self: Box<Self>);
}

/// The repository lock of one open repository (borg's lock files, or lock objects).
pub trait StorageLock: Send {
    /// Acquires the lock (waiting as configured).
    fn acquire(&mut self) -> std::result::Result<(), LockError>;
    /// Releases the lock.
    fn release(&mut self) -> std::result::Result<(), LockError>;
    /// Upgrades a shared lock to the exclusive one.
    fn upgrade(&mut self) -> std::result::Result<(), LockError>;
    /// Whether the exclusive lock is held.
    fn got_exclusive_lock(&self) -> bool;
    /// Tells other clients that the lock is still in use (after a long step).
    fn refresh(&mut self) {}
    /// Forgets the lock without removing anything (after `break-lock` removed all locks).
    fn disown(&mut self) {}
}

/// The primitives a repository needs from where its files live. Implementations own their
/// durability rules; the callers own the order of steps (see `docs/ARCHITECTURE.md`).
pub trait Storage: Send + Sync {
    /// The path shown in messages for `name` (for a bucket: the location text joined with it).
    fn path_of(&self, name: &str) -> PathBuf;

    /// The files directly in the repository root with their sizes (directories may appear;
    /// callers filter by name).
    fn list_root(&self) -> Result<Vec<(String, u64)>>;

    /// Every file below the directory `dir` (`data`), as names relative to the root.
    fn list_below(&self, dir: &str) -> Result<Vec<String>>;

    /// [`Self::list_below`] with each file's size (a store whose listing carries sizes, as S3's
    /// does, answers without one request per file).
    fn list_below_sized(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for name in self.list_below(dir)? {
            // a file removed since the listing is left out
            if let Some(size) = self.size(&name)? {
                out.push((name, size));
            }
        }
        Ok(out)
    }

    /// The whole file, `None` when it does not exist.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// `len` bytes from `offset` (fewer at the end of the file).
    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;

    /// Several ranges `(name, offset, len)`; results in order. Stores with costly requests
    /// run them concurrently.
    fn read_ranges(&self, reqs: &[(String, u64, u64)]) -> Vec<Result<Vec<u8>>> {
        reqs.iter()
            .map(|(n, o, l)| self.read_range(n, *o, *l))
            .collect()
    }

    /// A reader positioned at `offset` for one log entry: `first` is how many bytes the
    /// caller will surely read (stores with costly requests fetch that much at once).
    fn entry_reader(&self, name: &str, offset: u64, first: u64) -> Result<Box<dyn ReadSeek>>;

    /// A reader over the whole file for iteration (`headers_only`: the caller skips entry
    /// data, so a store may keep the bytes for the next such iteration).
    fn whole_reader(&self, name: &str, headers_only: bool) -> Result<Box<dyn ReadSeek>>;

    /// File size, `None` when it does not exist.
    fn size(&self, name: &str) -> Result<Option<u64>>;

    /// Starts a new segment file `name` holding `magic`; `limit` is the configured
    /// `max_segment_size` (a hint for buffers).
    fn create_segment(
        &self,
        name: &str,
        magic: &[u8],
        limit: u64,
    ) -> Result<Box<dyn SegmentWriter>>;

    /// Waits for background writes (closed segments still uploading); their first error.
    fn wait_writes(&self) -> Result<()>;

    /// Replaces `name` atomically and durably with `data` (readers see old or new, whole).
    fn write_whole(&self, name: &str, data: &[u8]) -> Result<()>;

    /// Replaces `config` (it holds key material: the old copy must not linger).
    fn write_config(&self, data: &[u8]) -> Result<()>;

    /// Appends `data` to `name` (created if missing; the append-only `transactions` log).
    fn append(&self, name: &str, data: &[u8]) -> Result<()>;

    /// First half of an atomic replacement: `data` is made durable under a name readers
    /// never look at. [`Self::publish`] then makes it `name`.
    fn stage(&self, name: &str, data: &[u8]) -> Result<()>;

    /// Second half: the staged `name` replaces `name` in one step (rename; on S3 the PUT of
    /// the staged bytes, which is atomic per object).
    fn publish(&self, name: &str) -> Result<()>;

    /// Makes published names durable (fsync of the root directory).
    fn sync(&self) -> Result<()>;

    /// Deletes `name` (a missing file is fine).
    fn delete(&self, name: &str) -> Result<()>;

    /// Bytes available for new data.
    fn free_space(&self) -> FreeSpace;

    /// Deletes the whole repository (`config` first, so a crash leaves no repository).
    fn destroy(&self) -> Result<()>;

    /// A lock for this repository (not yet acquired).
    fn new_lock(&self, exclusive: bool, timeout: Option<f64>) -> Box<dyn StorageLock>;

    /// Removes every lock of the repository (`borg break-lock`).
    fn break_locks(&self) -> Result<()>;

    /// How many bytes a reader should ask for in one `get_many` (0: objects are read one by
    /// one, as for local files; more when requests are costly and run concurrently).
    fn read_batch_bytes(&self) -> usize;
}
