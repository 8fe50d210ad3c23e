//! Where borg keeps client state: base, config, cache, security and keys directories.
//!
//! Resolution follows borg 1.2 (`helpers/fs.py`): `BORG_BASE_DIR` replaces `$HOME` and makes the
//! `XDG_*` variables be ignored; `BORG_CONFIG_DIR`, `BORG_CACHE_DIR`, `BORG_SECURITY_DIR` and
//! `BORG_KEYS_DIR` override single directories. Functions here only compute paths; the
//! `ensure_*` variants also create the directory (mode 0700, like borg).

use std::env;
use std::io;
use std::path::{Path, PathBuf};

/// Reads an environment variable, treating an empty value as unset (borg uses `or`).
pub fn env_nonempty(name: &str) -> Option<String> {
    env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

/// `BORG_BASE_DIR`, else `$HOME`, else the user's home directory from the password database.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = env_nonempty("BORG_BASE_DIR").or_else(|| env_nonempty("HOME")) {
        return PathBuf::from(dir);
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_dir.is_null() {
            let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
            return PathBuf::from(dir.to_string_lossy().into_owned());
        }
    }
    PathBuf::from("/")
}

fn xdg_or_base(xdg_var: &str, fallback: &str) -> PathBuf {
    let default = base_dir().join(fallback);
    if env_nonempty("BORG_BASE_DIR").is_none() {
        if let Some(x) = env_nonempty(xdg_var) {
            return PathBuf::from(x);
        }
    }
    default
}

/// `BORG_CONFIG_DIR`, else `$XDG_CONFIG_HOME/borg` or `<base>/.config/borg`.
pub fn config_dir() -> PathBuf {
    match env_nonempty("BORG_CONFIG_DIR") {
        Some(d) => PathBuf::from(d),
        None => xdg_or_base("XDG_CONFIG_HOME", ".config").join("borg"),
    }
}

/// `BORG_CACHE_DIR`, else `$XDG_CACHE_HOME/borg` or `<base>/.cache/borg`.
pub fn cache_dir() -> PathBuf {
    match env_nonempty("BORG_CACHE_DIR") {
        Some(d) => PathBuf::from(d),
        None => xdg_or_base("XDG_CACHE_HOME", ".cache").join("borg"),
    }
}

/// `BORG_KEYS_DIR`, else `<config dir>/keys`.
pub fn keys_dir() -> PathBuf {
    match env_nonempty("BORG_KEYS_DIR") {
        Some(d) => PathBuf::from(d),
        None => config_dir().join("keys"),
    }
}

/// `BORG_SECURITY_DIR`, else `<config dir>/security`.
pub fn security_base_dir() -> PathBuf {
    match env_nonempty("BORG_SECURITY_DIR") {
        Some(d) => PathBuf::from(d),
        None => config_dir().join("security"),
    }
}

/// Creates `path` and its parents with mode 0700 if missing.
pub fn ensure_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// The signature line of a `CACHEDIR.TAG` file.
pub const CACHE_TAG_CONTENTS: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by Borg.\n# For information about cache directory tags, see:\n#       http://www.bford.info/cachedir/spec.html\n";

/// Creates the cache directory (and its `CACHEDIR.TAG`) if needed and returns it.
pub fn ensure_cache_dir() -> io::Result<PathBuf> {
    let dir = cache_dir();
    ensure_dir(&dir)?;
    let tag = dir.join("CACHEDIR.TAG");
    if !tag.exists() {
        std::fs::write(&tag, CACHE_TAG_CONTENTS)?;
    }
    Ok(dir)
}

/// Writes `data` to `path` atomically and durably: temp file in the same directory, fsync,
/// rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        "{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        crate::crashpoint::hit();
        f.sync_all()?;
    }
    crate::crashpoint::hit();
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::crashpoint::hit();
    sync_dir(dir)
}

/// [`write_atomic`] of content produced by `fill` as a stream (through a buffered writer),
/// so that large files are never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        "{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        crate::crashpoint::hit();
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::crashpoint::hit();
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::crashpoint::hit();
    sync_dir(dir)
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
