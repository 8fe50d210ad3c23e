//! Conversions of paths and names to C strings.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::{PlatformError, Result};

/// Convert a path to a C string (fails if it contains a NUL byte).
pub(crate) fn path(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| PlatformError::Nul {
        what: "path",
        value: p.to_string_lossy().into_owned(),
    })
}

/// Convert a byte name (e.g. an xattr name) to a C string (fails if it contains a NUL byte).
pub(crate) fn bytes(what: &'static str, b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| PlatformError::Nul {
        what,
        value: String::from_utf8_lossy(b).into_owned(),
    })
}
