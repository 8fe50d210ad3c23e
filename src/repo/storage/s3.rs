//! [`S3Storage`]: a repository as objects under a bucket prefix, in borg's layout (one object
//! per repository file; see [`crate::repo::objstore`] for the S3 client, the retry rules and
//! the lock objects).
//!
//! * Segments are built in memory and uploaded whole when closed, in background threads
//!   (`HOARD_S3_UPLOADS` closed segments in flight, default [`UPLOADS_IN_FLIGHT`]); reads of a
//!   segment still uploading are served from its bytes, and listing, deleting and replacing
//!   wait for the uploads first. A bucket therefore never holds a half-written segment.
//! * An object PUT is atomic (readers see the old or the new object whole), so staging keeps
//!   the bytes in memory and publishing is the PUT; there is no rename (S3 has only copy +
//!   delete, which would upload every index twice).
//! * Reads of one entry are range requests: the first asks for the header and, when data is
//!   wanted, [`FIRST_READ`] bytes; larger entries get the rest with a second request.

use super::{FreeSpace, ReadSeek, SegmentWriter, Storage, StorageLock};
use crate::repo::objstore::{ObjLock, S3Bucket, OBJECT_STORE_READ_BATCH};
use crate::repo::{LockError, RepoError, Result};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How many closed segments may be uploading at once by default (memory: this many
/// segments + 1); `HOARD_S3_UPLOADS` overrides it.
pub const UPLOADS_IN_FLIGHT: usize = 2;

/// The largest segment kept by the header-only iteration cache.
const SCAN_CACHE_MAX: u64 = 64 * 1024 * 1024;

/// Room reserved beyond `max_segment_size` in the in-memory segment (a segment closes after
/// the entry that crosses the limit; entries average far below this).
const SEGMENT_SLACK: usize = 4 * 1024 * 1024;

/// The most reserved up front for an in-memory segment (larger segments grow).
const MAX_SEGMENT_RESERVE: usize = 256 * 1024 * 1024;

/// A segment upload running in a background thread.
struct Upload {
    name: String,
    data: Arc<Vec<u8>>,
    handle: std::thread::JoinHandle<std::io::Result<()>>,
}

/// State shared by the storage and its segment writers.
struct Shared {
    bucket: Arc<S3Bucket>,
    /// Closed segments still being uploaded (oldest first).
    inflight: Mutex<VecDeque<Upload>>,
    /// The last segment downloaded for a header-only iteration (`scan` asks for 100 ids at a
    /// time and would otherwise download the segment again each time).
    scanned: Mutex<Option<(String, Arc<Vec<u8>>)>>,
    /// The buffer of a segment whose upload finished, kept for the next segment (a fresh
    /// 32 MiB buffer costs a page fault and a page clear per 4 KiB).
    spare: Mutex<Option<Vec<u8>>>,
    /// Staged files waiting for [`Storage::publish`].
    staged: Mutex<HashMap<String, Vec<u8>>>,
    /// Closed segments allowed in flight.
    uploads: usize,
}

impl Shared {
    fn ioe(&self, name: &str, e: std::io::Error) -> RepoError {
        RepoError::io(&self.bucket.path_of(name), e)
    }

    fn forget_scanned(&self) {
        if let Ok(mut c) = self.scanned.lock() {
            *c = None;
        }
    }

    /// The bytes of a closed segment that is still uploading.
    fn uploading(&self, name: &str) -> Option<Arc<Vec<u8>>> {
        let q = self.inflight.lock().ok()?;
        q.iter().find(|u| u.name == name).map(|u| u.data.clone())
    }

    /// Waits for background uploads until at most `keep` remain; the first failure is
    /// returned (the uploads after it are still waited for).
    fn wait_uploads(&self, keep: usize) -> Result<()> {
        let mut first = None;
        loop {
            let next = {
                let Ok(mut q) = self.inflight.lock() else {
                    return Err(RepoError::InvalidArgument("upload queue poisoned".into()));
                };
                if q.len() <= keep {
                    break;
                }
                q.pop_front()
            };
            let Some(u) = next else { break };
            let r = u.handle.join();
            if let (Ok(buf), Ok(mut spare)) = (Arc::try_unwrap(u.data), self.spare.lock()) {
                // no reader holds it any more: keep it for the next segment
                if spare.as_ref().is_none_or(|s| s.capacity() < buf.capacity()) {
                    *spare = Some(buf);
                }
            }
            let r = match r {
                Ok(r) => r.map_err(|e| self.ioe(&u.name, e)),
                Err(_) => Err(RepoError::InvalidArgument(
                    "segment upload thread panicked".into(),
                )),
            };
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A repository under a bucket prefix.
pub struct S3Storage {
    shared: Arc<Shared>,
}

impl S3Storage {
    /// The repository in `bucket`.
    pub fn new(bucket: Arc<S3Bucket>) -> S3Storage {
        let uploads = std::env::var("HOARD_S3_UPLOADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(UPLOADS_IN_FLIGHT);
        S3Storage {
            shared: Arc::new(Shared {
                bucket,
                inflight: Mutex::new(VecDeque::new()),
                scanned: Mutex::new(None),
                spare: Mutex::new(None),
                staged: Mutex::new(HashMap::new()),
                uploads,
            }),
        }
    }

    fn bucket(&self) -> &S3Bucket {
        &self.shared.bucket
    }

    fn ioe(&self, name: &str, e: std::io::Error) -> RepoError {
        self.shared.ioe(name, e)
    }
}

/// Shared segment bytes as a `Cursor` source.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Bytes `offset..offset + len` of `data` (fewer at its end).
fn slice(data: &[u8], offset: u64, len: u64) -> Vec<u8> {
    let s = (offset as usize).min(data.len());
    let e = (offset.saturating_add(len) as usize).min(data.len());
    data[s..e].to_vec()
}

/// A reader of one object that fetches ranges as they are read. Its length is unknown: the
/// end is reported far away (an entry's data follows its header, since segments are
/// uploaded whole); reading past the object's end returns what is there.
struct RangeReader {
    bucket: Arc<S3Bucket>,
    name: String,
    /// Bytes fetched, starting at `base`.
    buf: Vec<u8>,
    base: u64,
    pos: u64,
    /// Bytes the first request asks for at least.
    first: u64,
    fetched: bool,
    /// A request returned fewer bytes than asked: the object ends at `base + buf.len()`.
    eof: bool,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let end = self.base + self.buf.len() as u64;
        if !(self.base <= self.pos && self.pos < end) {
            if self.eof && self.pos >= end {
                return Ok(0);
            }
            let want = if self.fetched {
                out.len() as u64
            } else {
                self.first.max(out.len() as u64)
            };
            let b = self.bucket.get_range(&self.name, self.pos, want)?;
            self.eof = (b.len() as u64) < want;
            self.fetched = true;
            self.base = self.pos;
            self.buf = b;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let rel = (self.pos - self.base) as usize;
        let n = out.len().min(self.buf.len() - rel);
        out[..n].copy_from_slice(&self.buf[rel..rel + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(p) => (p, 0),
            SeekFrom::Current(d) => (self.pos, d),
            SeekFrom::End(d) => (u64::MAX >> 1, d),
        };
        self.pos = base.checked_add_signed(delta).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "invalid seek to a negative or overflowing position",
            )
        })?;
        Ok(self.pos)
    }
}

/// A segment built in memory, uploaded whole when closed.
struct S3SegmentWriter {
    shared: Arc<Shared>,
    name: String,
    buf: Vec<u8>,
}

impl SegmentWriter for S3SegmentWriter {
    fn append(&mut self, parts: &[&[u8]]) -> Result<()> {
        for b in parts {
            self.buf.extend_from_slice(b);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn buffered(&self) -> Option<&[u8]> {
        Some(&self.buf)
    }

    fn sync(&mut self) -> Result<()> {
        // the segment becomes durable whole, when it is closed and its upload waited for
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        let S3SegmentWriter { shared, name, buf } = *self;
        let data = Arc::new(buf);
        let (bucket, d, key) = (shared.bucket.clone(), data.clone(), name.clone());
        let handle = std::thread::spawn(move || bucket.put(&key, &d));
        if let Ok(mut q) = shared.inflight.lock() {
            q.push_back(Upload { name, data, handle });
        }
        shared.wait_uploads(shared.uploads)
    }

    fn abandon(self: Box<Self>) {}
}

impl Storage for S3Storage {
    fn path_of(&self, name: &str) -> PathBuf {
        self.bucket().path_of(name)
    }

    fn list_root(&self) -> Result<Vec<(String, u64)>> {
        self.bucket().list_root().map_err(|e| self.ioe("", e))
    }

    fn list_below(&self, dir: &str) -> Result<Vec<String>> {
        self.wait_writes()?;
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let list = self.bucket().list(&prefix).map_err(|e| self.ioe(dir, e))?;
        Ok(list.into_iter().map(|(n, _)| n).collect())
    }

    fn list_below_sized(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        self.wait_writes()?;
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.bucket().list(&prefix).map_err(|e| self.ioe(dir, e))
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        if let Some(d) = self.shared.uploading(name) {
            return Ok(Some(d.to_vec()));
        }
        self.bucket().get(name).map_err(|e| self.ioe(name, e))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        if let Some(d) = self.shared.uploading(name) {
            return Ok(slice(&d, offset, len));
        }
        self.bucket()
            .get_range(name, offset, len)
            .map_err(|e| self.ioe(name, e))
    }

    fn read_ranges(&self, reqs: &[(String, u64, u64)]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = (0..reqs.len()).map(|_| None).collect();
        let mut remote = Vec::new();
        let mut remote_idx = Vec::new();
        for (i, (n, o, l)) in reqs.iter().enumerate() {
            match self.shared.uploading(n) {
                Some(d) => out[i] = Some(Ok(slice(&d, *o, *l))),
                None => {
                    remote.push((n.clone(), *o, *l));
                    remote_idx.push(i);
                }
            }
        }
        for (i, r) in remote_idx
            .into_iter()
            .zip(self.bucket().get_ranges(&remote))
        {
            out[i] = Some(r.map_err(|e| self.ioe(&reqs[i].0, e)));
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RepoError::InvalidArgument("range not read".into()))))
            .collect()
    }

    fn entry_reader(&self, name: &str, offset: u64, first: u64) -> Result<Box<dyn ReadSeek>> {
        if let Some(d) = self.shared.uploading(name) {
            let mut cur = std::io::Cursor::new(SharedBytes(d));
            cur.set_position(offset);
            return Ok(Box::new(cur));
        }
        Ok(Box::new(RangeReader {
            bucket: self.shared.bucket.clone(),
            name: name.to_string(),
            buf: Vec::new(),
            base: offset,
            pos: offset,
            first,
            fetched: false,
            eof: false,
        }))
    }

    fn whole_reader(&self, name: &str, headers_only: bool) -> Result<Box<dyn ReadSeek>> {
        let cached = match self.shared.scanned.lock() {
            Ok(c) => c
                .as_ref()
                .filter(|(n, _)| headers_only && n == name)
                .map(|(_, d)| d.clone()),
            Err(_) => None,
        };
        let data = match (self.shared.uploading(name), cached) {
            (Some(d), _) => d,
            (None, Some(d)) => d,
            (None, None) => {
                let d = Arc::new(
                    self.bucket()
                        .get(name)
                        .map_err(|e| self.ioe(name, e))?
                        .ok_or_else(|| self.ioe(name, std::io::ErrorKind::NotFound.into()))?,
                );
                if headers_only && d.len() as u64 <= SCAN_CACHE_MAX {
                    if let Ok(mut c) = self.shared.scanned.lock() {
                        *c = Some((name.to_string(), d.clone()));
                    }
                }
                d
            }
        };
        Ok(Box::new(std::io::Cursor::new(SharedBytes(data))))
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        if let Some(d) = self.shared.uploading(name) {
            return Ok(Some(d.len() as u64));
        }
        self.bucket().head(name).map_err(|e| self.ioe(name, e))
    }

    fn create_segment(
        &self,
        name: &str,
        magic: &[u8],
        limit: u64,
    ) -> Result<Box<dyn SegmentWriter>> {
        // its number may be one that was cleaned up and is now reused
        self.shared.forget_scanned();
        // Room for the whole segment up front: growing by doubling would copy it five
        // times and briefly hold two copies (pages are only touched as they fill).
        let cap = (limit as usize)
            .saturating_add(SEGMENT_SLACK)
            .min(MAX_SEGMENT_RESERVE);
        let spare = self.shared.spare.lock().ok().and_then(|mut s| s.take());
        let mut buf = match spare {
            Some(mut v) => {
                v.clear();
                v.reserve(cap);
                v
            }
            None => Vec::with_capacity(cap),
        };
        buf.extend_from_slice(magic);
        Ok(Box::new(S3SegmentWriter {
            shared: self.shared.clone(),
            name: name.to_string(),
            buf,
        }))
    }

    fn wait_writes(&self) -> Result<()> {
        self.shared.wait_uploads(0)
    }

    fn write_whole(&self, name: &str, data: &[u8]) -> Result<()> {
        self.wait_writes()?;
        self.shared.forget_scanned();
        self.bucket().put(name, data).map_err(|e| self.ioe(name, e))
    }

    fn write_config(&self, data: &[u8]) -> Result<()> {
        self.bucket()
            .put("config", data)
            .map_err(|e| self.ioe("config", e))
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<()> {
        let mut t = self
            .bucket()
            .get(name)
            .map_err(|e| self.ioe(name, e))?
            .unwrap_or_default();
        t.extend_from_slice(data);
        self.bucket().put(name, &t).map_err(|e| self.ioe(name, e))
    }

    fn stage(&self, name: &str, data: &[u8]) -> Result<()> {
        let mut s = self
            .shared
            .staged
            .lock()
            .map_err(|_| RepoError::InvalidArgument("staging area poisoned".into()))?;
        s.insert(name.to_string(), data.to_vec());
        Ok(())
    }

    fn publish(&self, name: &str) -> Result<()> {
        let data = self
            .shared
            .staged
            .lock()
            .map_err(|_| RepoError::InvalidArgument("staging area poisoned".into()))?
            .remove(name)
            .ok_or_else(|| self.ioe(name, std::io::ErrorKind::NotFound.into()))?;
        self.bucket()
            .put(name, &data)
            .map_err(|e| self.ioe(name, e))
    }

    fn sync(&self) -> Result<()> {
        self.wait_writes()
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.shared.forget_scanned();
        self.wait_writes()?;
        self.bucket().delete(name).map_err(|e| self.ioe(name, e))
    }

    fn free_space(&self) -> FreeSpace {
        FreeSpace::NotApplicable
    }

    fn destroy(&self) -> Result<()> {
        self.wait_writes()?;
        self.bucket()
            .delete("config")
            .map_err(|e| self.ioe("config", e))?;
        for (name, _) in self.bucket().list("").map_err(|e| self.ioe("", e))? {
            self.bucket()
                .delete(&name)
                .map_err(|e| self.ioe(&name, e))?;
        }
        Ok(())
    }

    fn new_lock(&self, exclusive: bool, timeout: Option<f64>) -> Box<dyn StorageLock> {
        Box::new(ObjLock::new(self.shared.bucket.clone(), exclusive, timeout))
    }

    fn break_locks(&self) -> Result<()> {
        ObjLock::break_all(self.bucket()).map_err(|e| self.ioe("", e))
    }

    fn read_batch_bytes(&self) -> usize {
        OBJECT_STORE_READ_BATCH
    }
}

impl StorageLock for ObjLock {
    fn acquire(&mut self) -> std::result::Result<(), LockError> {
        ObjLock::acquire(self)
    }
    fn release(&mut self) -> std::result::Result<(), LockError> {
        ObjLock::release(self)
    }
    fn upgrade(&mut self) -> std::result::Result<(), LockError> {
        ObjLock::upgrade(self)
    }
    fn got_exclusive_lock(&self) -> bool {
        ObjLock::got_exclusive_lock(self)
    }
    fn refresh(&mut self) {
        ObjLock::refresh(self)
    }
    fn disown(&mut self) {
        ObjLock::disown(self)
    }
}
