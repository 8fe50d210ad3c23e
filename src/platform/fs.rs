//! Small file system helpers the create and extract commands need, with borg's semantics.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::cstr;
use super::error::{PlatformError, Result};

/// The fields of `struct stat` an item needs; times in nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Device id of the containing filesystem.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Device number for block/char devices (`st_rdev`).
    pub rdev: u64,
    /// Size in bytes.
    pub size: i64,
    /// Allocated 512-byte blocks.
    pub blocks: i64,
    /// Access time, ns.
    pub atime_ns: i64,
    /// Modification time, ns.
    pub mtime_ns: i64,
    /// Status change time, ns.
    pub ctime_ns: i64,
}

impl Stat {
    fn from_raw(st: &libc::stat) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            blocks: st.st_blocks,
            atime_ns: ns(st.st_atime, st.st_atime_nsec),
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// The file type bits (`mode & S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// True for regular files.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// True for symlinks.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// True if fewer blocks are allocated than the size needs, i.e. the file likely has holes.
    pub fn is_sparse(&self) -> bool {
        self.is_file() && self.blocks.saturating_mul(512) < self.size
    }
}

fn check(rc: libc::c_int, op: &'static str, path: &Path) -> Result<()> {
    if rc == -1 {
        Err(PlatformError::last_os(op, path))
    } else {
        Ok(())
    }
}

fn fd_path(fd: RawFd) -> String {
    format!("fd:{fd}")
}

/// `lstat(2)`: metadata of `path` without following a final symlink.
pub fn lstat(path: &Path) -> Result<Stat> {
    let c = cstr::path(path)?;
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string, `st` a valid out-pointer.
    check(unsafe { libc::lstat(c.as_ptr(), &mut st) }, "lstat", path)?;
    Ok(Stat::from_raw(&st))
}

/// [`lstat`] of the entry `name` of the open directory `dirfd` (`fstatat` with
/// `AT_SYMLINK_NOFOLLOW`): no walk of the whole path per call. `shown` names the object in
/// errors.
pub fn lstat_at(dirfd: RawFd, name: &[u8], shown: &Path) -> Result<Stat> {
    let c = cstr::bytes("file name", name)?;
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string, `st` a valid out-pointer; a bad fd only yields EBADF.
    let rc = unsafe { libc::fstatat(dirfd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    check(rc, "lstat", shown)?;
    Ok(Stat::from_raw(&st))
}

/// [`open_noatime`] of the entry `name` of the open directory `dirfd` (`openat`).
/// `shown` names the object in errors.
pub fn open_noatime_at(
    dirfd: RawFd,
    name: &[u8],
    flags: libc::c_int,
    shown: &Path,
) -> Result<OwnedFd> {
    let c = cstr::bytes("file name", name)?;
    let open = |flags: libc::c_int| -> Result<OwnedFd> {
        // SAFETY: `c` is a valid C string; a bad fd only yields EBADF.
        let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(PlatformError::last_os("open", shown));
        }
        // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    match open(flags | libc::O_NOATIME) {
        Err(e) if e.errno() == Some(libc::EPERM) => open(flags),
        other => other,
    }
}

/// The entries of the open directory `dir` as (inode, name, `d_type`), without `.` and `..`,
/// read through a duplicate of its descriptor (no path walk). `shown` names it in errors.
/// `d_type` is a `libc::DT_*` value; `DT_UNKNOWN` where the file system does not tell.
pub fn read_dir_fd(dir: &impl AsRawFd, shown: &Path) -> Result<Vec<(u64, Vec<u8>, u8)>> {
    // SAFETY: duplicating a descriptor has no memory effects; failure is checked.
    let fd = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(PlatformError::last_os("scandir", shown));
    }
    // SAFETY: `fd` is ours; on success the stream owns it and closedir closes it.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let err = PlatformError::last_os("scandir", shown);
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(err);
    }
    // SAFETY: rewinding a fresh stream: the offset is shared with `dir`, which may have been
    // read before.
    unsafe { libc::rewinddir(stream) };
    let mut entries = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; clearing it tells end-of-directory from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a valid open directory stream.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            let errno = std::io::Error::last_os_error();
            break match errno.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(PlatformError::Os {
                    op: "scandir",
                    path: shown.to_path_buf(),
                    source: errno,
                }),
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated; it stays
        // valid until the next readdir call on this stream.
        let (ino, name, kind) = unsafe {
            let e = &*entry;
            let name = std::ffi::CStr::from_ptr(e.d_name.as_ptr()).to_bytes();
            (e.d_ino, name, e.d_type)
        };
        if name != b"." && name != b".." {
            entries.push((ino, name.to_vec(), kind));
        }
    };
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| entries)
}

/// [`readlink`] of the entry `name` of the open directory `dirfd` (`readlinkat`).
pub fn readlink_at(dirfd: RawFd, name: &[u8], shown: &Path) -> Result<Vec<u8>> {
    let c = cstr::bytes("file name", name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `c` is a valid C string and `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::readlinkat(dirfd, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(PlatformError::last_os("readlink", shown));
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// `fstat(2)` of an open file.
pub fn fstat(fd: RawFd) -> Result<Stat> {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; a bad fd only yields EBADF.
    if unsafe { libc::fstat(fd, &mut st) } == -1 {
        return Err(PlatformError::last_os("fstat", fd_path(fd)));
    }
    Ok(Stat::from_raw(&st))
}

/// Open `path` with `flags` (plus `O_CLOEXEC`), and `mode` for created files.
pub fn open(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd> {
    let c = cstr::path(path)?;
    // SAFETY: `c` is a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return Err(PlatformError::last_os("open", path));
    }
    // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open for reading without updating the access time, like borg's `os_open(noatime=True)`:
/// try with `O_NOATIME` (only allowed for the owner or root) and retry without it on `EPERM`.
pub fn open_noatime(path: &Path, flags: libc::c_int) -> Result<OwnedFd> {
    match open(path, flags | libc::O_NOATIME, 0) {
        Err(e) if e.errno() == Some(libc::EPERM) => open(path, flags, 0),
        other => other,
    }
}

fn timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    }
}

/// Set access and modification times (ns) without following a symlink (`utimensat`).
pub fn set_times_nofollow(path: &Path, atime_ns: i64, mtime_ns: i64) -> Result<()> {
    let c = cstr::path(path)?;
    let ts = [timespec(atime_ns), timespec(mtime_ns)];
    // SAFETY: `c` is a valid C string and `ts` points to two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, "utimensat", path)
}

/// Set access and modification times (ns) of an open file (`futimens`).
pub fn set_times_fd(fd: RawFd, atime_ns: i64, mtime_ns: i64) -> Result<()> {
    let ts = [timespec(atime_ns), timespec(mtime_ns)];
    // SAFETY: `ts` points to two timespecs.
    if unsafe { libc::futimens(fd, ts.as_ptr()) } == -1 {
        return Err(PlatformError::last_os("futimens", fd_path(fd)));
    }
    Ok(())
}

/// Change owner without following a symlink (`lchown`).
pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    let c = cstr::path(path)?;
    // SAFETY: `c` is a valid C string.
    check(
        unsafe { libc::lchown(c.as_ptr(), uid, gid) },
        "lchown",
        path,
    )
}

/// Change owner of an open file (`fchown`).
pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> Result<()> {
    // SAFETY: plain syscall on an integer fd.
    if unsafe { libc::fchown(fd, uid, gid) } == -1 {
        return Err(PlatformError::last_os("fchown", fd_path(fd)));
    }
    Ok(())
}

/// Change permission bits without following a symlink. On Linux this fails with `EOPNOTSUPP`
/// for symlinks (whose mode is meaningless); borg skips symlinks in that case, so may callers.
pub fn chmod_nofollow(path: &Path, mode: u32) -> Result<()> {
    let c = cstr::path(path)?;
    // SAFETY: `c` is a valid C string.
    let rc = unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            c.as_ptr(),
            mode & 0o7777,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, "fchmodat", path)
}

/// Create a device node, FIFO or socket node (`mknod`); `mode` includes the file type bits.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> Result<()> {
    let c = cstr::path(path)?;
    // SAFETY: `c` is a valid C string.
    check(
        unsafe { libc::mknod(c.as_ptr(), mode, rdev) },
        "mknod",
        path,
    )
}

/// Create a FIFO (`mkfifo`).
pub fn mkfifo(path: &Path, mode: u32) -> Result<()> {
    let c = cstr::path(path)?;
    // SAFETY: `c` is a valid C string.
    check(unsafe { libc::mkfifo(c.as_ptr(), mode) }, "mkfifo", path)
}

fn lseek(fd: RawFd, offset: i64, whence: libc::c_int) -> Result<Option<i64>> {
    // SAFETY: plain syscall on an integer fd.
    let r = unsafe { libc::lseek(fd, offset, whence) };
    if r == -1 {
        let e = PlatformError::last_os("lseek", fd_path(fd));
        // ENXIO: no data/hole at or after `offset` (i.e. offset is at or past EOF).
        return if e.errno() == Some(libc::ENXIO) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some(r))
}

/// The start of the next data region at or after `offset` (`SEEK_DATA`), `None` past the end.
/// Filesystems without hole support report the whole file as data.
pub fn seek_data(fd: RawFd, offset: i64) -> Result<Option<i64>> {
    lseek(fd, offset, libc::SEEK_DATA)
}

/// The start of the next hole at or after `offset` (`SEEK_HOLE`; the end of file counts as a
/// hole), `None` if `offset` is past the end.
pub fn seek_hole(fd: RawFd, offset: i64) -> Result<Option<i64>> {
    lseek(fd, offset, libc::SEEK_HOLE)
}

/// The data regions of an open file as `(start, length)` pairs, found with `SEEK_DATA` /
/// `SEEK_HOLE`. The file position is changed.
pub fn data_ranges(fd: RawFd) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = seek_data(fd, pos)? {
        let end = match seek_hole(fd, start)? {
            Some(end) => end,
            None => break,
        };
        if end <= start {
            break;
        }
        out.push((start, end - start));
        pos = end;
    }
    Ok(out)
}

/// `fdatasync(2)`.
pub fn fdatasync(fd: &impl AsRawFd) -> Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: plain syscall on an integer fd.
    if unsafe { libc::fdatasync(fd) } == -1 {
        return Err(PlatformError::last_os("fdatasync", fd_path(fd)));
    }
    Ok(())
}

/// Make a directory's entries durable (borg's `sync_dir`); `EINVAL` (some network
/// filesystems) is ignored.
pub fn sync_dir(path: &Path) -> Result<()> {
    let fd = open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    // SAFETY: plain syscall on a descriptor we own.
    if unsafe { libc::fsync(fd.as_raw_fd()) } == -1 {
        let e = PlatformError::last_os("fsync", path);
        if e.errno() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    Ok(())
}

/// Tell the kernel the given range will not be needed soon (`POSIX_FADV_DONTNEED`); errors
/// are ignored like borg's `safe_fadvise`. Length 0 means "to the end".
pub fn fadvise_dontneed(fd: RawFd, offset: i64, len: i64) {
    // SAFETY: plain syscall on an integer fd; failure is harmless.
    unsafe { libc::posix_fadvise(fd, offset, len, libc::POSIX_FADV_DONTNEED) };
}

/// Read the target of a symlink as raw bytes.
pub fn readlink(path: &Path) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    std::fs::read_link(path)
        .map(|p| p.into_os_string().into_vec())
        .map_err(|source| PlatformError::Os {
            op: "readlink",
            path: path.to_path_buf(),
            source,
        })
}

/// Opens the directory `path` itself (following symlinks: the caller chose it) for use as the
/// base of the `*_beneath` helpers.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Opens the directory reached from the open directory `base` through `components`, one
/// `openat(O_DIRECTORY | O_NOFOLLOW)` per component: a symlink or a non-directory anywhere on
/// the way fails (`ELOOP`/`ENOTDIR`), and there is no window in which a component can be
/// swapped for a symlink between a check and its use. Components must be plain names (no
/// `/`, `.`, `..` or empty name; such a component fails with `EINVAL`). `shown` names the
/// path in errors.
pub fn open_dir_beneath(base: RawFd, components: &[&[u8]], shown: &Path) -> Result<OwnedFd> {
    // SAFETY: `base` is a descriptor the caller holds open; dup only copies it.
    let first = unsafe { libc::fcntl(base, libc::F_DUPFD_CLOEXEC, 0) };
    if first < 0 {
        return Err(PlatformError::last_os("open", shown));
    }
    // SAFETY: `first` is a freshly duplicated descriptor that nothing else owns.
    let mut dir = unsafe { OwnedFd::from_raw_fd(first) };
    for c in components {
        if !is_plain_name(c) {
            return Err(PlatformError::Os {
                op: "open",
                path: shown.to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let name = cstr::bytes("file name", c)?;
        // SAFETY: `name` is a valid C string and `dir` an open descriptor.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(PlatformError::last_os("open", shown));
        }
        // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
        dir = unsafe { OwnedFd::from_raw_fd(fd) };
    }
    Ok(dir)
}

/// True for a name that stays in its directory: not empty, `.` or `..`, and without `/`.
fn is_plain_name(name: &[u8]) -> bool {
    !matches!(name, b"" | b"." | b"..") && !name.contains(&b'/')
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: makes `new_name` in the open directory `new_dir` a
/// hard link to the entry `old_name` of the open directory `old_dir`; a symlink there is
/// linked itself, never the file it points to. `shown` names the new path in errors.
pub fn link_at(
    old_dir: RawFd,
    old_name: &[u8],
    new_dir: RawFd,
    new_name: &[u8],
    shown: &Path,
) -> Result<()> {
    let old = cstr::bytes("file name", old_name)?;
    let new = cstr::bytes("file name", new_name)?;
    // SAFETY: both names are valid C strings; bad descriptors only yield EBADF.
    let rc = unsafe { libc::linkat(old_dir, old.as_ptr(), new_dir, new.as_ptr(), 0) };
    check(rc, "link", shown)
}

/// Create a symlink at `path` pointing to the raw bytes `target`.
pub fn symlink(target: &[u8], path: &Path) -> Result<()> {
    let t: CString = cstr::bytes("symlink target", target)?;
    let c = cstr::path(path)?;
    // SAFETY: both are valid C strings.
    check(
        unsafe { libc::symlink(t.as_ptr(), c.as_ptr()) },
        "symlink",
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn open_dir_beneath_never_follows_symlinks_and_link_at_links_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        std::fs::write(root.join("a/b/f"), b"f").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        let base = open_dir(&root).unwrap();
        let shown = Path::new("x");
        let errno = |c: &[&[u8]]| {
            open_dir_beneath(base.as_raw_fd(), c, shown)
                .unwrap_err()
                .errno()
        };
        // Linux says ENOTDIR for O_DIRECTORY | O_NOFOLLOW on a symlink, others ELOOP
        assert!(matches!(
            errno(&[b"a", b"link"]),
            Some(libc::ELOOP | libc::ENOTDIR)
        ));
        assert_eq!(errno(&[b"a", b"b", b"f"]), Some(libc::ENOTDIR));
        assert_eq!(errno(&[b"a", b".."]), Some(libc::EINVAL));
        assert_eq!(errno(&[b"a/b"]), Some(libc::EINVAL));
        assert_eq!(errno(&[b""]), Some(libc::EINVAL));
        let ab = open_dir_beneath(base.as_raw_fd(), &[b"a", b"b"], shown).unwrap();
        let a = open_dir_beneath(base.as_raw_fd(), &[b"a"], shown).unwrap();
        link_at(ab.as_raw_fd(), b"f", a.as_raw_fd(), b"g", shown).unwrap();
        assert_eq!(std::fs::read(root.join("a/g")).unwrap(), b"f");
        // a symlink as the source is linked itself, never its target
        link_at(a.as_raw_fd(), b"link", a.as_raw_fd(), b"l2", shown).unwrap();
        assert!(std::fs::symlink_metadata(root.join("a/l2"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::metadata(outside.join("secret")).unwrap().nlink(),
            1
        );
    }

    #[test]
    fn lstat_matches_std_and_times_set_in_ns() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let st = lstat(&f).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!((st.ino, st.mode, st.size), (md.ino(), md.mode(), 5));
        assert_eq!(st.mtime_ns, md.mtime() * 1_000_000_000 + md.mtime_nsec());
        assert!(st.is_file() && !st.is_dir() && !st.is_symlink());
        set_times_nofollow(&f, 1_000_000_123, -1_500_000_000).unwrap();
        let st = lstat(&f).unwrap();
        assert_eq!((st.atime_ns, st.mtime_ns), (1_000_000_123, -1_500_000_000));
        // symlink itself, target untouched
        let l = tmp.path().join("l");
        std::os::unix::fs::symlink("f", &l).unwrap();
        set_times_nofollow(&l, 5, 7_000_000_009).unwrap();
        assert_eq!(lstat(&l).unwrap().mtime_ns, 7_000_000_009);
        assert_eq!(lstat(&f).unwrap().mtime_ns, -1_500_000_000);
        assert!(lstat(&l).unwrap().is_symlink());
        assert_eq!(readlink(&l).unwrap(), b"f");
        let fd = open_noatime(&f, libc::O_RDONLY).unwrap();
        assert_eq!(fstat(fd.as_raw_fd()).unwrap().ino, md.ino());
        set_times_fd(fd.as_raw_fd(), 0, 42).unwrap();
        assert_eq!(lstat(&f).unwrap().mtime_ns, 42);
    }

    #[test]
    fn owner_mode_nodes() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"").unwrap();
        lchown(&f, 1, 1).unwrap_or(()); // needs root; ignore otherwise
        chmod_nofollow(&f, 0o100640).unwrap();
        assert_eq!(lstat(&f).unwrap().mode, 0o100640);
        let p = tmp.path().join("fifo");
        mkfifo(&p, 0o644).unwrap();
        assert_eq!(lstat(&p).unwrap().file_type(), libc::S_IFIFO);
        let n = tmp.path().join("fifo2");
        mknod(&n, libc::S_IFIFO | 0o600, 0).unwrap();
        assert_eq!(lstat(&n).unwrap().mode, libc::S_IFIFO | 0o600);
        let s = tmp.path().join("s");
        symlink(b"target\xff", &s).unwrap();
        assert_eq!(readlink(&s).unwrap(), b"target\xff");
        assert!(mkfifo(&p, 0o644).unwrap_err().errno() == Some(libc::EEXIST));
        sync_dir(tmp.path()).unwrap();
    }

    #[test]
    fn holes() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("sparse");
        let mut file = std::fs::File::create(&f).unwrap();
        file.seek(SeekFrom::Start(1 << 20)).unwrap();
        file.write_all(b"data").unwrap();
        file.set_len(3 << 20).unwrap();
        fdatasync(&file).unwrap();
        let st = lstat(&f).unwrap();
        let ranges = data_ranges(file.as_raw_fd()).unwrap();
        assert!(ranges.iter().map(|r| r.1).sum::<i64>() >= 4);
        if st.is_sparse() {
            assert!(ranges[0].0 > 0 && ranges[0].0 <= 1 << 20, "{ranges:?}");
        } else {
            eprintln!("note: filesystem does not keep holes");
        }
        fadvise_dontneed(file.as_raw_fd(), 0, 0);
        let empty = tmp.path().join("empty");
        let e = std::fs::File::create(&empty).unwrap();
        assert!(data_ranges(e.as_raw_fd()).unwrap().is_empty());
    }
}
