//! Extended attributes, the way borg 1.2 reads and restores them (`borg/xattr.py`).
//!
//! Paths are never followed if they are symlinks (`llistxattr`, `lgetxattr`, `lsetxattr`);
//! alternatively an open file descriptor can be used. Names and values are raw bytes.
//!
//! Error policy (as borg):
//! * [`get_all`]: if listing fails with `ENOTSUP` or `EPERM` the result is empty (no error);
//!   other listing errors are returned. Per-attribute read errors are collected as warnings,
//!   except `ENODATA` (the attribute vanished after listing), which is ignored silently.
//! * [`set_all`]: every failure (`E2BIG`, `ENOSPC`, `EPERM`, `EACCES`, ...) becomes a warning and
//!   the remaining attributes are still set.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};

use super::cstr;
use super::error::{PlatformError, Result};

/// Name prefix of the xattrs holding POSIX ACLs; borg stores them as `acl_*`, not as `xattrs`.
pub const POSIX_ACL_PREFIX: &[u8] = b"system.posix_acl_";

/// The `xattrs` map of an item: name → value, an empty value is `None` (stored as msgpack nil).
/// Sorted by name, as borg's `StableDict` packs it.
pub type Xattrs = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The file system object to operate on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A path; a symlink is not followed (the link itself is used).
    Path(&'a Path),
    /// An open file descriptor.
    Fd(RawFd),
}

impl Target<'_> {
    /// A printable description for error messages.
    fn describe(&self) -> PathBuf {
        match self {
            Target::Path(p) => p.to_path_buf(),
            Target::Fd(fd) => PathBuf::from(format!("fd:{fd}")),
        }
    }
}

/// A non-fatal problem with a single extended attribute.
#[derive(Debug)]
pub struct XattrWarning {
    /// The attribute name.
    pub name: Vec<u8>,
    /// True when setting (restore), false when reading (create).
    pub setting: bool,
    /// Length of the value that could not be set (0 when reading).
    pub value_len: usize,
    /// The underlying error.
    pub error: PlatformError,
}

impl fmt::Display for XattrWarning {
    /// Formats the warning like borg's log message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = String::from_utf8_lossy(&self.name);
        if !self.setting {
            return write!(f, "when getting extended attribute {name}: {}", self.error);
        }
        match self.error.errno() {
            Some(libc::E2BIG) => write!(
                f,
                "when setting extended attribute {name}: too big for this filesystem ({})",
                self.error
            ),
            Some(libc::ENOSPC) => write!(
                f,
                "when setting extended attribute {name}: fs full or xattr too big? \
                 [xattr len = {}] ({})",
                self.value_len, self.error
            ),
            _ => write!(f, "when setting extended attribute {name}: {}", self.error),
        }
    }
}

/// Result of [`get_all`]: the attributes read and the per-attribute warnings.
#[derive(Debug, Default)]
pub struct XattrRead {
    /// Attributes that could be read (ACL xattrs excluded).
    pub xattrs: Xattrs,
    /// Attributes that could not be read (borg logs these as warnings).
    pub warnings: Vec<XattrWarning>,
    /// Whether the listing named a `system.posix_acl_*` attribute; `None` when the object's
    /// attributes could not be listed.
    pub lists_acl: Option<bool>,
}

/// Call a "query size, then fill buffer" xattr function until the buffer is big enough.
///
/// `call(buf, size)` has the contract of `getxattr(2)`/`listxattr(2)`: with size 0 it returns
/// the needed size, otherwise the number of bytes written, or -1 with `errno` set.
fn read_sized(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let needed = call(std::ptr::null_mut(), 0);
        if needed < 0 {
            return Err(io::Error::last_os_error());
        }
        if needed == 0 {
            return Ok(Vec::new());
        }
        // Ask for a little more than reported, in case the value grows concurrently.
        let mut buf = vec![0u8; needed as usize + 64];
        let n = call(buf.as_mut_ptr().cast(), buf.len());
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ERANGE) {
                continue; // it grew more than we allowed for: ask again
            }
            return Err(err);
        }
        buf.truncate(n as usize);
        return Ok(buf);
    }
}

fn os_err(op: &'static str, t: Target<'_>, e: io::Error) -> PlatformError {
    PlatformError::Os {
        op,
        path: t.describe(),
        source: e,
    }
}

/// List all extended attribute names, including `system.posix_acl_*`.
pub fn list_all(t: Target<'_>) -> Result<Vec<Vec<u8>>> {
    let buf = match t {
        Target::Path(p) => {
            let c = cstr::path(p)?;
            // SAFETY: `c` is a valid NUL-terminated string; `buf`/`size` come from read_sized,
            // which passes either (null, 0) or a writable buffer of exactly `size` bytes.
            read_sized(|buf, size| unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), size) })
                .map_err(|e| os_err("llistxattr", t, e))?
        }
        Target::Fd(fd) => {
            // SAFETY: as above; an invalid fd only makes the call fail with EBADF.
            read_sized(|buf, size| unsafe { libc::flistxattr(fd, buf.cast(), size) })
                .map_err(|e| os_err("flistxattr", t, e))?
        }
    };
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// List extended attribute names as borg does: without `system.posix_acl_*`.
pub fn list(t: Target<'_>) -> Result<Vec<Vec<u8>>> {
    let mut names = list_all(t)?;
    names.retain(|n| !n.starts_with(POSIX_ACL_PREFIX));
    Ok(names)
}

/// Read one extended attribute. A missing attribute is an error with `ENODATA`
/// (see [`PlatformError::is_no_data`]).
pub fn get(t: Target<'_>, name: &[u8]) -> Result<Vec<u8>> {
    let cname = cstr::bytes("xattr name", name)?;
    match t {
        Target::Path(p) => {
            let c = cstr::path(p)?;
            // SAFETY: valid C strings; buffer contract as in `read_sized`.
            read_sized(|buf, size| unsafe {
                libc::lgetxattr(c.as_ptr(), cname.as_ptr(), buf, size)
            })
            .map_err(|e| os_err("lgetxattr", t, e))
        }
        Target::Fd(fd) => {
            // SAFETY: valid C string; buffer contract as in `read_sized`.
            read_sized(|buf, size| unsafe { libc::fgetxattr(fd, cname.as_ptr(), buf, size) })
                .map_err(|e| os_err("fgetxattr", t, e))
        }
    }
}

/// Read one extended attribute, `Ok(None)` if it does not exist.
pub fn get_opt(t: Target<'_>, name: &[u8]) -> Result<Option<Vec<u8>>> {
    match get(t, name) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_no_data() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Set (create or replace) one extended attribute.
pub fn set(t: Target<'_>, name: &[u8], value: &[u8]) -> Result<()> {
    let cname = cstr::bytes("xattr name", name)?;
    let (rc, op) = match t {
        Target::Path(p) => {
            let c = cstr::path(p)?;
            // SAFETY: valid C strings; `value` is readable for `value.len()` bytes.
            let rc = unsafe {
                libc::lsetxattr(
                    c.as_ptr(),
                    cname.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            };
            (rc, "lsetxattr")
        }
        Target::Fd(fd) => {
            // SAFETY: valid C string; `value` is readable for `value.len()` bytes.
            let rc = unsafe {
                libc::fsetxattr(fd, cname.as_ptr(), value.as_ptr().cast(), value.len(), 0)
            };
            (rc, "fsetxattr")
        }
    };
    if rc == -1 {
        return Err(PlatformError::last_os(op, t.describe()));
    }
    Ok(())
}

/// Read all extended attributes (except ACLs) as borg's `xattr.get_all` does.
///
/// Empty values become `None`. See the module docs for the error policy.
pub fn get_all(t: Target<'_>) -> Result<XattrRead> {
    let mut out = XattrRead::default();
    let mut names = match list_all(t) {
        Ok(n) => n,
        Err(e) if e.is_unsupported() || e.errno() == Some(libc::EPERM) => return Ok(out),
        Err(e) => return Err(e),
    };
    let before = names.len();
    names.retain(|n| !n.starts_with(POSIX_ACL_PREFIX));
    out.lists_acl = Some(names.len() != before);
    for name in names {
        match get(t, &name) {
            Ok(v) => {
                let v = if v.is_empty() { None } else { Some(v) };
                out.xattrs.insert(name, v);
            }
            Err(e) if e.is_no_data() => {} // deleted after listing: ignore
            Err(error) => out.warnings.push(XattrWarning {
                name,
                setting: false,
                value_len: 0,
                error,
            }),
        }
    }
    Ok(out)
}

/// Set all extended attributes of an item as borg's `xattr.set_all` does (`None` = empty value).
///
/// Returns the failures as warnings; an empty vector means everything was set.
pub fn set_all(t: Target<'_>, xattrs: &Xattrs) -> Vec<XattrWarning> {
    let mut warnings = Vec::new();
    for (name, value) in xattrs {
        let value = value.as_deref().unwrap_or(&[]);
        if let Err(error) = set(t, name, value) {
            warnings.push(XattrWarning {
                name: name.clone(),
                setting: true,
                value_len: value.len(),
                error,
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn round_trip_empty_and_binary_values() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let t = Target::Path(&f);
        let binary: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
        let mut want = Xattrs::new();
        want.insert(b"user.empty".to_vec(), None);
        want.insert(b"user.bin".to_vec(), Some(binary.clone()));
        want.insert(b"user.\xffodd".to_vec(), Some(b"v".to_vec()));
        assert!(set_all(t, &want).is_empty());
        let got = get_all(t).unwrap();
        assert!(got.warnings.is_empty());
        assert_eq!(got.xattrs, want);
        assert_eq!(get(t, b"user.bin").unwrap(), binary);
        assert!(get(t, b"user.missing").unwrap_err().is_no_data());
        assert_eq!(get_opt(t, b"user.missing").unwrap(), None);
        // the same through an fd
        let file = std::fs::File::open(&f).unwrap();
        let got = get_all(Target::Fd(file.as_raw_fd())).unwrap();
        assert_eq!(got.xattrs, want);
        set(Target::Fd(file.as_raw_fd()), b"user.fd", b"1").unwrap();
        assert_eq!(get(t, b"user.fd").unwrap(), b"1");
    }

    #[test]
    fn symlinks_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        let l = tmp.path().join("l");
        std::fs::write(&f, b"x").unwrap();
        std::os::unix::fs::symlink("f", &l).unwrap();
        set(Target::Path(&f), b"user.a", b"1").unwrap();
        assert_eq!(get_all(Target::Path(&l)).unwrap().xattrs, Xattrs::new());
        assert!(get(Target::Path(&l), b"user.a").unwrap_err().is_no_data());
        // user.* xattrs are not permitted on symlinks: a warning, not a panic or an error
        let mut x = Xattrs::new();
        x.insert(b"user.b".to_vec(), Some(b"2".to_vec()));
        let w = set_all(Target::Path(&l), &x);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].error.errno(), Some(libc::EPERM));
        assert!(w[0]
            .to_string()
            .starts_with("when setting extended attribute user.b:"));
        assert!(get(Target::Path(&f), b"user.b").unwrap_err().is_no_data());
    }

    #[test]
    fn too_big_value_is_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let mut x = Xattrs::new();
        x.insert(b"user.big".to_vec(), Some(vec![7u8; 70_000]));
        x.insert(b"user.small".to_vec(), Some(b"s".to_vec()));
        let w = set_all(Target::Path(&f), &x);
        assert_eq!(w.len(), 1, "{w:?}");
        let msg = w[0].to_string();
        assert!(
            msg.contains("too big") || msg.contains("xattr len = 70000"),
            "{msg}"
        );
        assert_eq!(get(Target::Path(&f), b"user.small").unwrap(), b"s");
    }

    #[test]
    fn acl_xattrs_are_excluded_and_errors_typed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir(&d).unwrap();
        let acl = crate::platform::acl::to_xattr(&crate::platform::acl::from_mode(0o755));
        set(Target::Path(&d), b"system.posix_acl_default", &acl).unwrap();
        assert!(list_all(Target::Path(&d))
            .unwrap()
            .iter()
            .any(|n| n.starts_with(POSIX_ACL_PREFIX)));
        assert!(list(Target::Path(&d)).unwrap().is_empty());
        assert!(get_all(Target::Path(&d)).unwrap().xattrs.is_empty());
        let missing = tmp.path().join("missing");
        let e = get_all(Target::Path(&missing)).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert!(matches!(
            get(Target::Path(&d), b"a\0b"),
            Err(PlatformError::Nul { .. })
        ));
    }
}
