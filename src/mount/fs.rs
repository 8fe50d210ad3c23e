//! The FUSE side: [`ArchiveFs`] answers the kernel's requests from a [`Tree`] (borg's
//! `FuseOperations`). A read fetches only the chunks covering the requested range — each open
//! file keeps its chunk list with cumulative offsets — and decoded chunks go through a
//! [`ChunkCache`] bounded in bytes and entries, so memory stays flat for any file size.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyXattr, Request,
};

use crate::archive::item::{
    ChunkRef, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK,
};
use crate::archive::KeyedRepository;

use super::tree::{Attr, Tree};

/// Default byte budget of the chunk cache.
pub const CHUNK_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Default entry budget of the chunk cache.
pub const CHUNK_CACHE_ENTRIES: usize = 128;

/// How long the kernel may cache entries and attributes (borg: 300 s).
const TTL: Duration = Duration::from_secs(300);

/// A least-recently-used cache of decoded chunks, bounded in bytes and in entries.
pub struct ChunkCache {
    map: HashMap<[u8; 32], (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    tick: u64,
    max_bytes: usize,
    max_entries: usize,
}

impl ChunkCache {
    /// A cache holding at most `max_bytes` of plaintext in at most `max_entries` chunks.
    pub fn new(max_bytes: usize, max_entries: usize) -> ChunkCache {
        ChunkCache {
            map: HashMap::new(),
            bytes: 0,
            tick: 0,
            max_bytes,
            max_entries: max_entries.max(1),
        }
    }

    /// The cached chunk, marked as recently used.
    pub fn get(&mut self, id: &[u8; 32]) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(id).map(|(data, t)| {
            *t = tick;
            data.clone()
        })
    }

    /// Inserts a chunk, evicting the least recently used ones to stay within the budget.
    /// A chunk larger than the whole byte budget is not kept.
    pub fn insert(&mut self, id: [u8; 32], data: Arc<Vec<u8>>) {
        if data.len() > self.max_bytes {
            return;
        }
        self.tick += 1;
        self.bytes += data.len();
        if let Some((old, _)) = self.map.insert(id, (data, self.tick)) {
            self.bytes -= old.len();
        }
        while self.bytes > self.max_bytes || self.map.len() > self.max_entries {
            let Some(victim) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = self.map.remove(&victim) {
                self.bytes -= old.len();
            }
        }
    }

    /// Bytes currently cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Chunks currently cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An open file: its chunk list and where each chunk starts.
struct OpenFile {
    chunks: Vec<ChunkRef>,
    starts: Vec<u64>,
    size: u64,
}

impl OpenFile {
    fn new(chunks: Vec<ChunkRef>) -> OpenFile {
        let mut starts = Vec::with_capacity(chunks.len());
        let mut pos = 0u64;
        for c in &chunks {
            starts.push(pos);
            pos += c.size as u64;
        }
        OpenFile {
            chunks,
            starts,
            size: pos,
        }
    }
}

/// The object store, movable to the FUSE worker thread.
struct SendStore(KeyedRepository);

// SAFETY: `Repository` trait objects do not declare `Send`, but both implementations are made of
// `Send` parts (files, child processes, buffers) — see `repository_types_are_send` below — and
// the store is only ever used behind the filesystem's mutex, by one thread at a time.
unsafe impl Send for SendStore {}

/// Options of the served filesystem.
#[derive(Debug, Clone, Copy)]
pub struct FsOptions {
    /// `allow_damaged_files`.
    pub allow_damaged_files: bool,
    /// `umask=` bits cleared from every mode.
    pub umask: u32,
    /// Chunk cache byte budget.
    pub cache_bytes: usize,
    /// Chunk cache entry budget.
    pub cache_entries: usize,
}

struct Inner {
    tree: Tree,
    store: SendStore,
    cache: ChunkCache,
    open: HashMap<u64, OpenFile>,
    next_fh: u64,
    opts: FsOptions,
}

/// The read-only filesystem handed to `fuser`.
pub struct ArchiveFs {
    inner: Mutex<Inner>,
}

fn to_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_nanos(ns.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

fn kind(mode: u32) -> FileType {
    match mode & S_IFMT {
        S_IFDIR => FileType::Directory,
        S_IFLNK => FileType::Symlink,
        S_IFIFO => FileType::NamedPipe,
        S_IFCHR => FileType::CharDevice,
        S_IFBLK => FileType::BlockDevice,
        S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn file_attr(ino: u64, a: &Attr, umask: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: to_time(a.atime),
        mtime: to_time(a.mtime),
        ctime: to_time(a.ctime),
        crtime: to_time(a.mtime),
        kind: kind(a.mode),
        perm: (a.mode & !umask & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 512,
        flags: 0,
    }
}

impl ArchiveFs {
    /// Serves `tree`, reading file contents through `store`.
    pub fn new(tree: Tree, store: KeyedRepository, opts: FsOptions) -> ArchiveFs {
        ArchiveFs {
            inner: Mutex::new(Inner {
                tree,
                store: SendStore(store),
                cache: ChunkCache::new(opts.cache_bytes, opts.cache_entries),
                open: HashMap::new(),
                next_fh: 1,
                opts,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn attr(&self, ino: u64) -> Option<FileAttr> {
        self.tree
            .node(ino)
            .map(|n| file_attr(ino, &n.attr, self.opts.umask))
    }

    /// Loads a pending archive directory (borg's `check_pending_archive`).
    fn load_pending(&mut self, ino: u64) -> Result<(), Errno> {
        let Inner { tree, store, .. } = self;
        tree.load_pending(ino, &mut store.0).map_err(|e| {
            tracing::error!(target: "borg.fuse", "{e}");
            Errno::EIO
        })?;
        for w in tree.warnings.drain(..) {
            tracing::warn!(target: "borg.fuse", "{w}");
        }
        Ok(())
    }

    fn chunk(&mut self, c: &ChunkRef) -> Result<Arc<Vec<u8>>, Errno> {
        if let Some(d) = self.cache.get(&c.id) {
            return Ok(d);
        }
        let data = self
            .store
            .0
            .get(&c.id, Some(c.size as usize))
            .map_err(|e| {
                tracing::error!(target: "borg.fuse", "reading chunk {}: {e}", hex::encode(c.id));
                Errno::EIO
            })?;
        let mut data = data;
        data.shrink_to_fit();
        let data = Arc::new(data);
        self.cache.insert(c.id, data.clone());
        Ok(data)
    }

    fn read(&mut self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let Some(file) = self.open.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let end = offset.saturating_add(size as u64).min(file.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let first = file
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let mut wanted: Vec<(ChunkRef, u64)> = Vec::new();
        for i in first..file.chunks.len() {
            let start = file.starts[i];
            if start >= end {
                break;
            }
            wanted.push((file.chunks[i], start));
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (c, start) in wanted {
            let data = self.chunk(&c)?;
            let from = offset.max(start) - start;
            let to = (end.min(start + c.size as u64) - start) as usize;
            let slice = data.get(from as usize..to).ok_or_else(|| {
                tracing::error!(target: "borg.fuse", "chunk {} is shorter than its recorded size", hex::encode(c.id));
                Errno::EIO
            })?;
            out.extend_from_slice(slice);
        }
        Ok(out)
    }
}

impl fuser::Filesystem for ArchiveFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut inner = self.lock();
        if let Err(e) = inner.load_pending(parent.0) {
            return reply.error(e);
        }
        match inner
            .tree
            .lookup(parent.0, name.as_bytes())
            .and_then(|ino| inner.attr(ino))
        {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.lock().attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let inner = self.lock();
        match inner.tree.item(ino.0) {
            Ok(Some(item)) if item.is_symlink() => {
                reply.data(item.source.as_deref().unwrap_or_default())
            }
            Ok(_) => reply.error(Errno::EINVAL),
            Err(_) => reply.error(Errno::EIO),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut inner = self.lock();
        let Some(node) = inner.tree.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if node.damaged && !inner.opts.allow_damaged_files {
            tracing::warn!(target: "borg.fuse", "File has damaged (all-zero) chunks. Try running borg check --repair. Mount with allow_damaged_files to read damaged files.");
            return reply.error(Errno::EIO);
        }
        let chunks = match inner.tree.item(ino.0) {
            Ok(item) => item.and_then(|i| i.chunks).unwrap_or_default(),
            Err(e) => {
                tracing::error!(target: "borg.fuse", "{e}");
                return reply.error(Errno::EIO);
            }
        };
        let fh = inner.next_fh;
        inner.next_fh += 1;
        inner.open.insert(fh, OpenFile::new(chunks));
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.lock().read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().open.remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut inner = self.lock();
        if let Err(e) = inner.load_pending(ino.0) {
            return reply.error(e);
        }
        if inner.tree.node(ino.0).is_none() {
            return reply.error(Errno::ENOENT);
        }
        reply.opened(FileHandle(ino.0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let inner = self.lock();
        let Some(node) = inner.tree.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let parent = node.parent;
        let mode_of = |i: u64| inner.tree.node(i).map_or(S_IFDIR, |n| n.attr.mode);
        let dot: [(&[u8], u64); 2] = [(b".", ino.0), (b"..", parent)];
        let tree = &inner.tree;
        let count = tree.entry_count(ino.0);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        // Entries are indexed directly: a call starts at its offset, so a large directory is
        // listed in linear time.
        let rest = (start.saturating_sub(2)..count)
            .filter_map(|i| tree.entry(ino.0, i).map(|e| (i + 2, e)));
        let all = dot
            .iter()
            .map(|(n, i)| (*n, *i))
            .enumerate()
            .skip(start)
            .chain(rest);
        for (idx, (name, child)) in all {
            let full = reply.add(
                INodeNo(child),
                idx as u64 + 1,
                kind(mode_of(child)),
                OsStr::from_bytes(name),
            );
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 512, 255, 512);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let inner = self.lock();
        let item = match inner.tree.item(ino.0) {
            Ok(i) => i,
            Err(_) => return reply.error(Errno::EIO),
        };
        let value = item
            .and_then(|i| i.xattrs)
            .and_then(|x| x.get(name.as_bytes()).cloned());
        match value {
            None => reply.error(Errno::NO_XATTR),
            Some(v) => {
                let v = v.unwrap_or_default();
                if size == 0 {
                    reply.size(v.len() as u32)
                } else if v.len() > size as usize {
                    reply.error(Errno::ERANGE)
                } else {
                    reply.data(&v)
                }
            }
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let inner = self.lock();
        let item = match inner.tree.item(ino.0) {
            Ok(i) => i,
            Err(_) => return reply.error(Errno::EIO),
        };
        let mut list = Vec::new();
        for name in item.and_then(|i| i.xattrs).unwrap_or_default().keys() {
            list.extend_from_slice(name);
            list.push(0);
        }
        if size == 0 {
            reply.size(list.len() as u32)
        } else if list.len() > size as usize {
            reply.error(Errno::ERANGE)
        } else {
            reply.data(&list)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_types_are_send() {
        fn is_send<T: Send>() {}
        is_send::<crate::repo::LocalRepository>();
        is_send::<crate::repo::remote::RemoteRepository>();
        is_send::<crate::crypto::Key>();
    }

    #[test]
    fn chunk_cache_stays_within_its_budgets() {
        let mut c = ChunkCache::new(10, 3);
        for i in 0..5u8 {
            c.insert([i; 32], Arc::new(vec![i; 4]));
            assert!(c.bytes() <= 10 && c.len() <= 3);
        }
        // the two most recent survive the byte budget
        assert!(c.get(&[4; 32]).is_some());
        assert!(c.get(&[3; 32]).is_some());
        assert!(c.get(&[0; 32]).is_none());
        // recently used entries survive eviction
        c.get(&[3; 32]);
        c.insert([9; 32], Arc::new(vec![9; 4]));
        assert!(c.get(&[3; 32]).is_some());
        assert!(c.get(&[4; 32]).is_none());
        // a chunk bigger than the budget is not kept
        c.insert([7; 32], Arc::new(vec![0; 11]));
        assert!(c.get(&[7; 32]).is_none());
    }

    #[test]
    fn open_file_offsets_are_cumulative() {
        let c = |n| ChunkRef {
            id: [n; 32],
            size: n as u32 * 10,
            csize: 0,
        };
        let f = OpenFile::new(vec![c(1), c(2), c(3)]);
        assert_eq!(f.starts, vec![0, 10, 30]);
        assert_eq!(f.size, 60);
    }
}
