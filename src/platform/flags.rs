//! Linux inode flags (`chattr`/`lsattr`) mapped to the BSD flags borg stores as `bsdflags`.
//!
//! Mapping (borg's `BSD_TO_LINUX_FLAGS`): `FS_NODUMP_FL` ↔ `UF_NODUMP` (1), `FS_IMMUTABLE_FL` ↔
//! `UF_IMMUTABLE` (2), `FS_APPEND_FL` ↔ `UF_APPEND` (4), `FS_COMPR_FL` ↔ `UF_COMPRESSED` (0x20).
//! Devices and symlinks are never opened (flags 0 / nothing set). Filesystems without flag
//! support yield 0 on read and are ignored on write (`EOPNOTSUPP`), as in borg.

use std::os::unix::io::RawFd;
use std::path::Path;

use super::cstr;
use super::error::{PlatformError, Result};

/// BSD flag: do not dump the file.
pub const UF_NODUMP: u32 = 0x01;
/// BSD flag: the file may not be changed.
pub const UF_IMMUTABLE: u32 = 0x02;
/// BSD flag: writes may only append.
pub const UF_APPEND: u32 = 0x04;
/// BSD flag: the file is compressed.
pub const UF_COMPRESSED: u32 = 0x20;

/// Linux inode flag `FS_COMPR_FL`.
pub const FS_COMPR_FL: u32 = 0x0000_0004;
/// Linux inode flag `FS_IMMUTABLE_FL`.
pub const FS_IMMUTABLE_FL: u32 = 0x0000_0010;
/// Linux inode flag `FS_APPEND_FL`.
pub const FS_APPEND_FL: u32 = 0x0000_0020;
/// Linux inode flag `FS_NODUMP_FL`.
pub const FS_NODUMP_FL: u32 = 0x0000_0040;

/// Pairs of (BSD flag, Linux flag).
const MAP: [(u32, u32); 4] = [
    (UF_NODUMP, FS_NODUMP_FL),
    (UF_IMMUTABLE, FS_IMMUTABLE_FL),
    (UF_APPEND, FS_APPEND_FL),
    (UF_COMPRESSED, FS_COMPR_FL),
];

/// `_IOC(dir, 'f', nr, sizeof(long))` in the generic Linux ioctl encoding (x86, arm, riscv...).
const fn ioc(dir: u64, nr: u64) -> u64 {
    (dir << 30) | ((std::mem::size_of::<libc::c_long>() as u64) << 16) | ((b'f' as u64) << 8) | nr
}
/// `FS_IOC_GETFLAGS` = `_IOR('f', 1, long)`.
const FS_IOC_GETFLAGS: u64 = ioc(2, 1);
/// `FS_IOC_SETFLAGS` = `_IOW('f', 2, long)`.
const FS_IOC_SETFLAGS: u64 = ioc(1, 2);

/// Convert Linux inode flags to BSD flags (unmapped bits are dropped).
pub fn linux_to_bsd(linux: u32) -> u32 {
    MAP.iter()
        .filter(|(_, l)| linux & l != 0)
        .fold(0, |acc, (b, _)| acc | b)
}

/// Convert BSD flags to Linux inode flags (unmapped bits are dropped).
pub fn bsd_to_linux(bsd: u32) -> u32 {
    MAP.iter()
        .filter(|(b, _)| bsd & b != 0)
        .fold(0, |acc, (_, l)| acc | l)
}

/// True for the file types borg never opens for flags: block/char devices and symlinks.
fn skipped(mode: u32) -> bool {
    matches!(
        mode & libc::S_IFMT,
        libc::S_IFBLK | libc::S_IFCHR | libc::S_IFLNK
    )
}

/// An fd that is closed on drop.
struct Fd(RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and close it exactly once.
        unsafe { libc::close(self.0) };
    }
}

/// Open `path` the way borg does for flag ioctls (read-only, non-blocking, no symlinks).
fn open_for_flags(path: &Path) -> Result<Fd> {
    let c = cstr::path(path)?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(PlatformError::last_os("open", path));
    }
    Ok(Fd(fd))
}

/// Read the raw Linux inode flags of an open file.
pub fn get_linux_flags(fd: RawFd) -> Result<u32> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the valid pointer we pass.
    let rc = unsafe { libc::ioctl(fd, FS_IOC_GETFLAGS as _, &mut flags) };
    if rc == -1 {
        return Err(PlatformError::last_os(
            "ioctl(FS_IOC_GETFLAGS)",
            format!("fd:{fd}"),
        ));
    }
    Ok(flags as u32)
}

/// Write the raw Linux inode flags of an open file.
pub fn set_linux_flags(fd: RawFd, flags: u32) -> Result<()> {
    let flags = flags as libc::c_int;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the valid pointer we pass.
    let rc = unsafe { libc::ioctl(fd, FS_IOC_SETFLAGS as _, &flags) };
    if rc == -1 {
        return Err(PlatformError::last_os(
            "ioctl(FS_IOC_SETFLAGS)",
            format!("fd:{fd}"),
        ));
    }
    Ok(())
}

/// The BSD flags of an object for the item's `bsdflags` (borg's `get_flags`); `mode` is its
/// `st_mode` from `lstat`. Uses `fd` if given, else opens `path`. Never fails: anything that
/// goes wrong (no permission, no support) gives 0, as in borg.
pub fn get_flags(path: &Path, mode: u32, fd: Option<RawFd>) -> u32 {
    if skipped(mode) {
        return 0;
    }
    let linux = match fd {
        Some(fd) => get_linux_flags(fd),
        None => open_for_flags(path).and_then(|f| get_linux_flags(f.0)),
    };
    linux.map_or(0, linux_to_bsd)
}

/// Restore BSD flags (borg's `set_flags`); uses `fd` if given, else opens `path` (devices and
/// symlinks are skipped then). `EOPNOTSUPP` is ignored; other errors are returned (borg ignores
/// them at its call site, so callers usually do too).
///
/// Unlike borg, Linux flags that have no BSD equivalent (e.g. ext4's extents flag) are kept
/// instead of being cleared.
pub fn set_flags(path: &Path, bsd_flags: u32, fd: Option<RawFd>) -> Result<()> {
    let owned;
    let fd = match fd {
        Some(fd) => fd,
        None => {
            let st = super::fs::lstat(path)?;
            if skipped(st.mode) {
                return Ok(());
            }
            owned = open_for_flags(path)?;
            owned.0
        }
    };
    let mapped = bsd_to_linux(u32::MAX);
    let current = get_linux_flags(fd).unwrap_or(0);
    let wanted = (current & !mapped) | bsd_to_linux(bsd_flags);
    if wanted == current {
        return Ok(());
    }
    match set_linux_flags(fd, wanted) {
        Err(e) if e.is_unsupported() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn mapping() {
        assert_eq!(linux_to_bsd(FS_NODUMP_FL | 0x80000), UF_NODUMP);
        assert_eq!(
            linux_to_bsd(FS_IMMUTABLE_FL | FS_APPEND_FL | FS_COMPR_FL),
            UF_IMMUTABLE | UF_APPEND | UF_COMPRESSED
        );
        assert_eq!(bsd_to_linux(UF_NODUMP | 0x100), FS_NODUMP_FL);
        assert_eq!(FS_IOC_GETFLAGS, 0x8008_6601);
        assert_eq!(FS_IOC_SETFLAGS, 0x4008_6602);
    }

    #[test]
    fn nodump_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let mode = crate::platform::fs::lstat(&f).unwrap().mode;
        assert_eq!(get_flags(&f, mode, None), 0);
        let chattr = Command::new("chattr").arg("+d").arg(&f).output();
        if !chattr.is_ok_and(|o| o.status.success()) {
            eprintln!("note: chattr +d not supported here; skipping the flags round trip");
            return;
        }
        assert_eq!(get_flags(&f, mode, None), UF_NODUMP);
        let file = std::fs::File::open(&f).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let before = get_linux_flags(fd).unwrap();
        set_flags(&f, 0, None).unwrap();
        assert_eq!(get_flags(&f, mode, Some(fd)), 0);
        // flags without a BSD equivalent (e.g. ext4 extents) survive
        assert_eq!(get_linux_flags(fd).unwrap(), before & !FS_NODUMP_FL);
        set_flags(&f, UF_NODUMP, Some(fd)).unwrap();
        assert_eq!(get_flags(&f, mode, None), UF_NODUMP);
        let lsattr = Command::new("lsattr").arg(&f).output().unwrap();
        assert!(String::from_utf8_lossy(&lsattr.stdout).contains('d'));
    }

    #[test]
    fn symlinks_and_missing_files_give_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("l");
        std::os::unix::fs::symlink("nowhere", &l).unwrap();
        assert_eq!(get_flags(&l, libc::S_IFLNK | 0o777, None), 0);
        set_flags(&l, UF_NODUMP, None).unwrap();
        assert_eq!(
            get_flags(&tmp.path().join("missing"), libc::S_IFREG, None),
            0
        );
    }
}
