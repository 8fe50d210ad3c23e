//! The error type of the platform layer.

use std::io;
use std::path::PathBuf;

/// An error from a platform (operating system) operation.
///
/// Most variants wrap an OS error (`errno`); use [`PlatformError::errno`] to decide whether a
/// failure is fatal or only worth a warning, the way borg does (see the individual modules).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A system call failed.
    #[error("{op} {}: {source}", path.display())]
    Os {
        /// What was being done, e.g. `"lgetxattr"`.
        op: &'static str,
        /// The path (or `fd:<n>` for a file descriptor) the call was about.
        path: PathBuf,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
    /// A path or name contained a NUL byte and cannot be passed to the OS.
    #[error("{what} contains a NUL byte: {value:?}")]
    Nul {
        /// `"path"` or `"xattr name"`, etc.
        what: &'static str,
        /// The offending value (lossily decoded).
        value: String,
    },
    /// A `system.posix_acl_*` extended attribute had an unexpected binary layout.
    #[error("malformed POSIX ACL xattr: {0}")]
    BadAclXattr(String),
    /// ACL text (as stored in an archive item) could not be parsed.
    #[error("malformed ACL text: {0}")]
    BadAclText(String),
}

impl PlatformError {
    /// Build an [`PlatformError::Os`] from the current `errno`.
    pub(crate) fn last_os(op: &'static str, path: impl Into<PathBuf>) -> Self {
        PlatformError::Os {
            op,
            path: path.into(),
            source: io::Error::last_os_error(),
        }
    }

    /// The OS error number, if this error came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PlatformError::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True if the error is "operation not supported" (`ENOTSUP`/`EOPNOTSUPP`, identical on Linux).
    pub fn is_unsupported(&self) -> bool {
        self.errno() == Some(libc::EOPNOTSUPP)
    }

    /// True if the error is `ENODATA` (the extended attribute does not exist).
    pub fn is_no_data(&self) -> bool {
        self.errno() == Some(libc::ENODATA)
    }
}

/// Result alias of the platform layer.
pub type Result<T> = std::result::Result<T, PlatformError>;

/// An I/O error's text as Python shows an `OSError`'s `strerror`: for an OS error the C
/// library's message (`No such file or directory`), without the ` (os error N)` Rust adds;
/// for any other error its own text.
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Python's `os.strerror(errno)`.
pub fn errno_text(errno: i32) -> String {
    strerror(&io::Error::from_raw_os_error(errno))
}

/// Python's `str(OSError(errno, strerror, filename))` for an error on `filename`:
/// `[Errno 13] Permission denied: '/x'`; an error without an errno shows its own text.
pub fn os_error_text(e: &io::Error, filename: &str) -> String {
    match e.raw_os_error() {
        Some(code) => format!("[Errno {code}] {}: '{filename}'", strerror(e)),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_python() {
        // os.strerror(2), os.strerror(13) and str(OSError(...)) on Linux/glibc
        assert_eq!(errno_text(libc::ENOENT), "No such file or directory");
        assert_eq!(errno_text(libc::EACCES), "Permission denied");
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(strerror(&e), "Permission denied");
        assert_eq!(
            os_error_text(&e, "/x y"),
            "[Errno 13] Permission denied: '/x y'"
        );
    }

    #[test]
    fn other_errors_keep_their_text() {
        let e = io::Error::other("short read");
        assert_eq!(strerror(&e), "short read");
        assert_eq!(os_error_text(&e, "/x"), "short read");
        // an unknown errno still has glibc's text and no Rust suffix
        assert_eq!(errno_text(4242), "Unknown error 4242");
    }
}
