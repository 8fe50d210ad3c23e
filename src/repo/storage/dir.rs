//! [`DirStorage`]: a repository in a local directory, borg's own layout (FORMAT.md §2.1–§2.3).
//!
//! Durability is the file system's: segments are appended through a buffered writer, flushed,
//! `fdatasync`ed on intermediate commits and `fsync`ed (with their directory) when closed;
//! whole files are written to `<name>.tmp`, fsynced and renamed. Every `HOARD_CRASH_AT` crash
//! point of these steps lives here, exactly where the durability tests expect it.

use super::{FreeSpace, ReadSeek, SegmentWriter, Storage, StorageLock};
use crate::repo::lock::Lock;
use crate::repo::{LockError, RepoError, Result};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many read handles [`DirStorage`] keeps open (borg's LRU capacity).
pub const FD_CACHE_CAPACITY: usize = 90;

/// Bytes written to a segment between two requests to start write-back.
const WRITE_BACK_STEP: u64 = 8 << 20;

/// A repository directory.
pub struct DirStorage {
    /// Repository root (absolute).
    root: PathBuf,
    /// Open read handles by name (cleared when [`FD_CACHE_CAPACITY`] is reached).
    fds: Mutex<HashMap<String, Arc<File>>>,
}

impl DirStorage {
    /// The repository at `root`.
    pub fn new(root: &Path) -> DirStorage {
        DirStorage {
            root: root.to_path_buf(),
            fds: Mutex::new(HashMap::new()),
        }
    }

    fn forget_fd(&self, name: &str) {
        if let Ok(mut f) = self.fds.lock() {
            f.remove(name);
        }
    }

    /// A cached read handle of `name`.
    fn fd(&self, name: &str) -> Result<Arc<File>> {
        let p = self.path_of(name);
        let mut fds = self
            .fds
            .lock()
            .map_err(|_| RepoError::InvalidArgument("read handle cache poisoned".into()))?;
        if let Some(f) = fds.get(name) {
            return Ok(f.clone());
        }
        if fds.len() >= FD_CACHE_CAPACITY {
            fds.clear();
        }
        let f = Arc::new(File::open(&p).map_err(|e| RepoError::io(&p, e))?);
        fds.insert(name.to_string(), f.clone());
        Ok(f)
    }
}

/// Reads a file at a position of its own with `pread` (no `lseek` per object read, and the
/// shared descriptor's offset is never moved).
struct PosReader {
    file: Arc<File>,
    pos: u64,
}

impl Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PosReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(p) => (p, 0),
            SeekFrom::Current(d) => (self.pos, d),
            SeekFrom::End(d) => (self.file.metadata()?.len(), d),
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

/// A segment file being appended to.
struct DirSegmentWriter {
    /// Repository root (write errors name it, as they always did).
    root: PathBuf,
    /// The segment file.
    path: PathBuf,
    w: BufWriter<File>,
    /// Bytes written so far.
    offset: u64,
    /// Offset up to which the kernel was asked to start writing back.
    written_back: u64,
}

impl DirSegmentWriter {
    /// Asks the kernel to start writing the segment's new bytes to disk now (borg's
    /// `SyncFile` does the same), so that the fsync when the segment is closed finds little
    /// left to write and does not stall the writer. Durability still comes from that fsync;
    /// failures here are ignored (the fsync reports real problems).
    fn start_write_back(&mut self) {
        if self.w.flush().is_err() {
            return;
        }
        let (from, len) = (self.written_back, self.offset - self.written_back);
        // SAFETY: a plain system call on an open descriptor; it only starts write-back.
        unsafe {
            libc::sync_file_range(
                self.w.get_ref().as_raw_fd(),
                from as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        self.written_back = self.offset;
    }
}

impl SegmentWriter for DirSegmentWriter {
    fn append(&mut self, parts: &[&[u8]]) -> Result<()> {
        for b in parts {
            self.w
                .write_all(b)
                .map_err(|e| RepoError::io(&self.root, e))?;
        }
        crate::crashpoint::hit();
        self.offset += parts.iter().map(|b| b.len() as u64).sum::<u64>();
        if self.offset.saturating_sub(self.written_back) >= WRITE_BACK_STEP {
            self.start_write_back();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.w.flush().map_err(|e| RepoError::io(&self.root, e))
    }

    fn buffered(&self) -> Option<&[u8]> {
        None
    }

    fn sync(&mut self) -> Result<()> {
        self.w.flush().map_err(|e| RepoError::io(&self.root, e))?;
        crate::crashpoint::hit();
        self.w
            .get_ref()
            .sync_data()
            .map_err(|e| RepoError::io(&self.root, e))?;
        crate::crashpoint::hit();
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        let fname = self.path.clone();
        self.w.flush().map_err(|e| RepoError::io(&fname, e))?;
        crate::crashpoint::hit();
        self.w
            .get_ref()
            .sync_all()
            .map_err(|e| RepoError::io(&fname, e))?;
        crate::crashpoint::hit();
        drop(self);
        if let Some(dir) = fname.parent() {
            crate::paths::sync_dir(dir).map_err(|e| RepoError::io(dir, e))?;
        }
        Ok(())
    }

    fn abandon(mut self: Box<Self>) {
        let _ = self.w.flush();
    }
}

/// Reads a file, `None` when it does not exist.
fn read_opt(p: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(p) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RepoError::io(p, e)),
    }
}

impl Storage for DirStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn list_root(&self) -> Result<Vec<(String, u64)>> {
        let ioe = |e| RepoError::io(&self.root, e);
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(ioe)? {
            let e = e.map_err(ioe)?;
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.metadata().map(|m| m.len()).unwrap_or(0)));
        }
        Ok(out)
    }

    fn list_below(&self, dir: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut todo = vec![dir.trim_end_matches('/').to_string()];
        while let Some(d) = todo.pop() {
            let dp = self.root.join(&d);
            for e in fs::read_dir(&dp).map_err(|e| RepoError::io(&dp, e))? {
                let e = e.map_err(|e| RepoError::io(&dp, e))?;
                let name = format!("{d}/{}", e.file_name().to_string_lossy());
                if e.path().is_dir() {
                    todo.push(name);
                } else {
                    out.push(name);
                }
            }
        }
        Ok(out)
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        read_opt(&self.path_of(name))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let p = self.path_of(name);
        let f = File::open(&p).map_err(|e| RepoError::io(&p, e))?;
        let mut r = PosReader {
            file: Arc::new(f),
            pos: offset,
        };
        let mut out = Vec::new();
        (&mut r)
            .take(len)
            .read_to_end(&mut out)
            .map_err(|e| RepoError::io(&p, e))?;
        Ok(out)
    }

    fn entry_reader(&self, name: &str, offset: u64, _first: u64) -> Result<Box<dyn ReadSeek>> {
        Ok(Box::new(PosReader {
            file: self.fd(name)?,
            pos: offset,
        }))
    }

    fn whole_reader(&self, name: &str, _headers_only: bool) -> Result<Box<dyn ReadSeek>> {
        let p = self.path_of(name);
        Ok(Box::new(File::open(&p).map_err(|e| RepoError::io(&p, e))?))
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        let p = self.path_of(name);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RepoError::io(&p, e)),
        }
    }

    fn create_segment(
        &self,
        name: &str,
        magic: &[u8],
        _limit: u64,
    ) -> Result<Box<dyn SegmentWriter>> {
        let fname = self.path_of(name);
        if let Some(dir) = fname.parent() {
            if !dir.exists() {
                crate::repo::create_dirs(dir).map_err(|e| RepoError::io(dir, e))?;
                if let Some(data) = dir.parent() {
                    crate::paths::sync_dir(data).map_err(|e| RepoError::io(data, e))?;
                }
            }
        }
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::repo::FILE_MODE)
            .open(&fname)
            .map_err(|e| RepoError::io(&fname, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(magic).map_err(|e| RepoError::io(&fname, e))?;
        self.forget_fd(name);
        Ok(Box::new(DirSegmentWriter {
            root: self.root.clone(),
            path: fname,
            w,
            offset: magic.len() as u64,
            written_back: 0,
        }))
    }

    fn wait_writes(&self) -> Result<()> {
        Ok(())
    }

    fn write_whole(&self, name: &str, data: &[u8]) -> Result<()> {
        self.forget_fd(name);
        crate::repo::save_file(&self.path_of(name), data)
    }

    fn write_config(&self, data: &[u8]) -> Result<()> {
        save_config(&self.root, data)
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.path_of(name);
        let mut f = fs::OpenOptions::new()
            .mode(crate::repo::FILE_MODE)
            .append(true)
            .create(true)
            .open(&p)
            .map_err(|e| RepoError::io(&p, e))?;
        f.write_all(data).map_err(|e| RepoError::io(&p, e))
    }

    fn stage(&self, name: &str, data: &[u8]) -> Result<()> {
        let p = self.path_of(&format!("{name}.tmp"));
        let mut f = crate::repo::create_file(&p).map_err(|e| RepoError::io(&p, e))?;
        f.write_all(data).map_err(|e| RepoError::io(&p, e))?;
        crate::crashpoint::hit();
        f.sync_all().map_err(|e| RepoError::io(&p, e))?;
        crate::crashpoint::hit();
        Ok(())
    }

    fn publish(&self, name: &str) -> Result<()> {
        let from = self.path_of(&format!("{name}.tmp"));
        fs::rename(&from, self.path_of(name)).map_err(|e| RepoError::io(&from, e))?;
        crate::crashpoint::hit();
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        crate::paths::sync_dir(&self.root).map_err(|e| RepoError::io(&self.root, e))
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.forget_fd(name);
        let p = self.path_of(name);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::io(&p, e)),
        }
    }

    fn free_space(&self) -> FreeSpace {
        match free_space(&self.root) {
            Some(b) => FreeSpace::Bytes(b),
            None => FreeSpace::Unknown,
        }
    }

    fn destroy(&self) -> Result<()> {
        let cp = self.root.join("config");
        fs::remove_file(&cp).map_err(|e| RepoError::io(&cp, e))?;
        fs::remove_dir_all(&self.root).map_err(|e| RepoError::io(&self.root, e))
    }

    fn new_lock(&self, exclusive: bool, timeout: Option<f64>) -> Box<dyn StorageLock> {
        Box::new(Lock::new(&self.root.join("lock"), exclusive, timeout))
    }

    fn break_locks(&self) -> Result<()> {
        Lock::new(&self.root.join("lock"), false, None)
            .break_lock()
            .map_err(|e| RepoError::io(&self.root, e))
    }

    fn read_batch_bytes(&self) -> usize {
        0
    }
}

impl StorageLock for Lock {
    fn acquire(&mut self) -> std::result::Result<(), LockError> {
        Lock::acquire(self)
    }
    fn release(&mut self) -> std::result::Result<(), LockError> {
        Lock::release(self)
    }
    fn upgrade(&mut self) -> std::result::Result<(), LockError> {
        Lock::upgrade(self)
    }
    fn got_exclusive_lock(&self) -> bool {
        Lock::got_exclusive_lock(self)
    }
}

/// Bytes available to unprivileged users on the file system holding `path`.
pub fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a zeroed struct for a valid C path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

/// Writes `config`, borg-style: hard link the old file to `config.old`, replace atomically, then
/// overwrite `config.old` with random data and delete it (old key material, §2.2).
pub fn save_config(root: &Path, text: &[u8]) -> Result<()> {
    let cp = root.join("config");
    let old = root.join("config.old");
    if old.is_file() {
        secure_erase(&old);
    }
    if cp.is_file() {
        let _ = fs::hard_link(&cp, &old);
    }
    crate::repo::save_file(&cp, text)?;
    if old.is_file() {
        secure_erase(&old);
    }
    Ok(())
}

fn secure_erase(p: &Path) {
    if let Ok(md) = fs::metadata(p) {
        if let Ok(mut f) = fs::OpenOptions::new().write(true).open(p) {
            let mut buf = vec![0u8; md.len() as usize];
            rand::Rng::fill(&mut rand::thread_rng(), &mut buf[..]);
            let _ = f.write_all(&buf);
            let _ = f.sync_all();
        }
    }
    let _ = fs::remove_file(p);
}
