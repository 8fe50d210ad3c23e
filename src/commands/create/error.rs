//! Per-file problems during `create`, worded exactly as borg's `BackupOSError` / `BackupError`
//! (`"{op}: [Errno N] strerror: 'filename'"`), and the path helpers borg applies to the paths
//! it walks (`os.path.normpath`, `make_path_safe`).

use std::fmt;

use crate::commands::CommandError;

/// What went wrong with one filesystem object. Only [`BackupError::Fatal`] aborts the backup;
/// the others become a warning, status `E`, and exit code 1.
#[derive(Debug)]
pub enum BackupError {
    /// An OS error while accessing the object (borg's `BackupOSError`).
    Os {
        /// borg's operation label (`stat`, `open`, `read`, `dir_open`, …); may be empty.
        op: &'static str,
        /// The OS error number.
        errno: i32,
        /// The file name the OS call was given, when it had one.
        filename: Option<Vec<u8>>,
    },
    /// A non-OS problem with this object (borg's `BackupError`), e.g. a race condition.
    Other(String),
    /// A failure that must stop the whole backup (repository, key, cache).
    Fatal(CommandError),
}

/// Decodes a path as Python does (`surrogateescape`) and renders each undecodable byte with
/// `replace` (e.g. `?` as `remove_surrogates`, or `\\udcff` as stderr's `backslashreplace`).
pub fn decode_with(path: &[u8], replace: impl Fn(u8) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(good));
                let n = e.error_len().unwrap_or(bad.len());
                for b in &bad[..n] {
                    out.push_str(&replace(*b));
                }
                rest = &bad[n..];
            }
        }
    }
    out
}

/// A path as Python prints it to stderr (undecodable bytes as `\udcXX`).
pub fn show_path(path: &[u8]) -> String {
    decode_with(path, |b| format!("\\udc{b:02x}"))
}

/// borg's `remove_surrogates`: undecodable bytes become `?`.
pub fn remove_surrogates(path: &[u8]) -> String {
    decode_with(path, |_| "?".to_string())
}

/// Python's `repr()` of a file name decoded with `surrogateescape`.
pub fn py_repr(name: &[u8]) -> String {
    let mut chars: Vec<Result<char, u8>> = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                chars.extend(s.chars().map(Ok));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                chars.extend(String::from_utf8_lossy(good).chars().map(Ok));
                let n = e.error_len().unwrap_or(bad.len());
                chars.extend(bad[..n].iter().map(|b| Err(*b)));
                rest = &bad[n..];
            }
        }
    }
    let has_single = chars.contains(&Ok('\''));
    let has_double = chars.contains(&Ok('"'));
    let quote = if has_single && !has_double { '"' } else { '\'' };
    let mut out = String::new();
    out.push(quote);
    for c in chars {
        match c {
            Err(b) => out.push_str(&format!("\\udc{b:02x}")),
            Ok(c) if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            Ok('\n') => out.push_str("\\n"),
            Ok('\r') => out.push_str("\\r"),
            Ok('\t') => out.push_str("\\t"),
            Ok(c) if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            Ok(c) if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            Ok(c) => out.push(c),
        }
    }
    out.push(quote);
    out
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::Os {
                op,
                errno,
                filename,
            } => {
                if !op.is_empty() {
                    write!(f, "{op}: ")?;
                }
                write!(f, "[Errno {errno}] {}", crate::platform::errno_text(*errno))?;
                if let Some(name) = filename {
                    write!(f, ": {}", py_repr(name))?;
                }
                Ok(())
            }
            BackupError::Other(m) => write!(f, "{m}"),
            BackupError::Fatal(e) => write!(f, "{e}"),
        }
    }
}

impl BackupError {
    /// borg 1.4's class of the warning this problem becomes (its `BackupWarning` wraps a
    /// `BackupError` subclass; the modern exit code and the `--log-json` msgid follow from
    /// the class): `BackupOSError` by errno as borg's `BackupOSError` wrappers choose it.
    pub fn warning_class(&self) -> &'static str {
        match self {
            BackupError::Os { errno, .. } => match *errno {
                libc::EPERM | libc::EACCES | libc::EBUSY => "BackupPermissionError",
                libc::EIO => "BackupIOError",
                libc::ENOENT => "BackupFileNotFoundError",
                _ => "BackupOSError",
            },
            BackupError::Other(m) if m.contains("race condition") => "BackupRaceConditionError",
            BackupError::Other(_) => "BackupError",
            BackupError::Fatal(_) => "Error",
        }
    }

    /// An OS error from an `io::Error` (errno 5 when it carries none).
    pub fn io(op: &'static str, e: &std::io::Error, filename: Option<&[u8]>) -> BackupError {
        match e.raw_os_error() {
            Some(errno) => BackupError::Os {
                op,
                errno,
                filename: filename.map(<[u8]>::to_vec),
            },
            None => BackupError::Other(format!("{op}: {e}")),
        }
    }

    /// An OS error from the platform layer.
    pub fn platform(
        op: &'static str,
        e: &crate::platform::PlatformError,
        filename: Option<&[u8]>,
    ) -> BackupError {
        match e.errno() {
            Some(errno) => BackupError::Os {
                op,
                errno,
                filename: filename.map(<[u8]>::to_vec),
            },
            None => BackupError::Other(format!("{op}: {e}")),
        }
    }
}

macro_rules! fatal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for BackupError {
            fn from(e: $t) -> Self {
                BackupError::Fatal(e.into())
            }
        }
    )*};
}

fatal_from!(
    CommandError,
    crate::archive::ArchiveError,
    crate::repo::RepoError,
    crate::crypto::CryptoError
);

/// Python's `os.path.normpath` on POSIX byte paths.
pub fn normpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let initial = if path.starts_with(b"//") && !path.starts_with(b"///") {
        2
    } else if path.starts_with(b"/") {
        1
    } else {
        0
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|b| *b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp == b".." {
            if initial == 0 && (parts.is_empty() || parts.last() == Some(&&b".."[..])) {
                parts.push(comp);
            } else if !parts.is_empty() {
                parts.pop();
            }
            continue;
        }
        parts.push(comp);
    }
    let mut out = vec![b'/'; initial];
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// borg's `make_path_safe`: strips leading `/` and `../` sequences (repeatedly); `.` if empty.
pub fn make_path_safe(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    loop {
        let skip_dots = if p.starts_with(b"../") { 2 } else { 0 };
        let slashes = p[skip_dots..].iter().take_while(|b| **b == b'/').count();
        if slashes == 0 {
            break;
        }
        p = &p[skip_dots + slashes..];
    }
    if p.is_empty() {
        b".".to_vec()
    } else {
        p.to_vec()
    }
}

/// `os.path.join(a, b)` for a relative `b`.
pub fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    if !out.is_empty() && !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_is_pythons() {
        assert_eq!(normpath(b"/tmp/bt/t/../t/a"), b"/tmp/bt/t/a");
        assert_eq!(normpath(b"./a//b/"), b"a/b");
        assert_eq!(normpath(b"../../x"), b"../../x");
        assert_eq!(normpath(b"/../x"), b"/x");
        assert_eq!(normpath(b"//x"), b"//x");
        assert_eq!(normpath(b"///x"), b"/x");
        assert_eq!(normpath(b"a/.."), b".");
    }

    #[test]
    fn make_path_safe_is_borgs() {
        assert_eq!(make_path_safe(b"/etc/x"), b"etc/x");
        assert_eq!(make_path_safe(b"../../x"), b"x");
        assert_eq!(make_path_safe(b"/"), b".");
        assert_eq!(make_path_safe(b"a/../b"), b"a/../b");
        assert_eq!(make_path_safe(b".."), b"..");
    }

    #[test]
    fn messages_are_pythons() {
        let e = BackupError::Os {
            op: "open",
            errno: 13,
            filename: Some(b"it's".to_vec()),
        };
        assert_eq!(
            e.to_string(),
            "open: [Errno 13] Permission denied: \"it's\""
        );
        assert_eq!(py_repr(b"a\xffb"), "'a\\udcffb'");
    }
}
