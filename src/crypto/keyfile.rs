//! Key files: format, lookup and naming (FORMAT.md §4.4).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::CryptoError;
use crate::paths;

/// Magic at the start of every key file.
pub const KEY_FILE_ID: &str = "BORG_KEY";

/// Formats a key file: `BORG_KEY <hex id>\n` followed by the blob text and a final newline
/// (added only if the text lacks one, like borg's key export).
pub fn format_key_file(repository_id: &[u8; 32], blob_text: &str) -> String {
    let mut s = format!("{KEY_FILE_ID} {}\n{blob_text}", hex::encode(repository_id));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Splits a key file into the repository id of its header and the blob text (all lines after
/// the first, as borg reads them). A bad header gives [`CryptoError::KeyfileInvalid`] (with
/// empty location/path fields for the caller to fill in).
pub fn parse_key_file(contents: &str) -> Result<([u8; 32], String), CryptoError> {
    let invalid = || CryptoError::KeyfileInvalid {
        repository: String::new(),
        path: String::new(),
    };
    let (first, rest) = contents.split_once('\n').unwrap_or((contents, ""));
    let hex_id = first
        .trim_end_matches('\r')
        .strip_prefix("BORG_KEY ")
        .ok_or_else(invalid)?;
    let mut id = [0u8; 32];
    hex::decode_to_slice(hex_id.trim_end(), &mut id).map_err(|_| invalid())?;
    Ok((id, rest.to_string()))
}

/// borg's `sanity_check`: the file must start with `BORG_KEY ` (else `KeyfileInvalid`) followed
/// by the lowercase hex id (else `KeyfileMismatch`).
pub fn check_key_file(path: &Path, repository_id: &[u8; 32]) -> Result<(), CryptoError> {
    let shown = path.display().to_string();
    let mut f = std::fs::File::open(path).map_err(|e| CryptoError::Io(format!("{shown}: {e}")))?;
    let want_magic = format!("{KEY_FILE_ID} ");
    let want_id = hex::encode(repository_id);
    let mut buf = vec![0u8; want_magic.len() + want_id.len()];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CryptoError::Io(format!("{shown}: {e}"))),
        }
    }
    let buf = &buf[..got];
    if buf.len() < want_magic.len() || &buf[..want_magic.len()] != want_magic.as_bytes() {
        return Err(CryptoError::KeyfileInvalid {
            repository: String::new(),
            path: shown,
        });
    }
    if &buf[want_magic.len()..] != want_id.as_bytes() {
        return Err(CryptoError::KeyfileMismatch {
            repository: String::new(),
            path: shown,
        });
    }
    Ok(())
}

/// Python's `os.path.abspath`: joins a relative path onto the cwd and normalises `.`/`..`
/// lexically (symlinks are not resolved).
fn abspath(p: &str) -> PathBuf {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Finds the key file of a repository (FORMAT.md §4.4): `BORG_KEY_FILE` if set (checked with
/// [`check_key_file`]), else the first matching file in the keys directory.
pub fn find_key_file(repository_id: &[u8; 32]) -> Result<PathBuf, CryptoError> {
    find_key_file_with(repository_id, &crate::options::Env::process())
}

/// [`find_key_file`] with `BORG_KEY_FILE` read from `env`.
pub fn find_key_file_with(
    repository_id: &[u8; 32],
    env: &crate::options::Env,
) -> Result<PathBuf, CryptoError> {
    find_key_file_in(
        repository_id,
        env.nonempty("BORG_KEY_FILE").as_deref(),
        &paths::keys_dir(),
    )
}

/// [`find_key_file`] with the environment passed in: `key_file_env` is `BORG_KEY_FILE`
/// (non-empty), `keys_dir` the keys directory. Not found gives
/// [`CryptoError::KeyfileNotFound`] (repository location empty; see
/// [`CryptoError::with_location`]).
pub fn find_key_file_in(
    repository_id: &[u8; 32],
    key_file_env: Option<&str>,
    keys_dir: &Path,
) -> Result<PathBuf, CryptoError> {
    if let Some(f) = key_file_env.filter(|f| !f.is_empty()) {
        let path = abspath(f);
        check_key_file(&path, repository_id)?;
        return Ok(path);
    }
    if let Ok(entries) = std::fs::read_dir(keys_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && check_key_file(&path, repository_id).is_ok() {
                return Ok(path);
            }
        }
    }
    Err(CryptoError::KeyfileNotFound {
        repository: String::new(),
        dir: keys_dir.display().to_string(),
    })
}

/// borg's `Location.to_key_filename` name: every non-word character of the repository path
/// becomes `_`, `_` is stripped from both ends, remote repositories get `<host>__` in front,
/// and the result is cut to 100 characters.
pub fn key_file_name(repo_path: &str, remote_host: Option<&str>) -> String {
    let subst = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut name = subst(repo_path).trim_matches('_').to_string();
    if let Some(host) = remote_host {
        name = format!("{}__{}", subst(host), name);
    }
    name.chars().take(100).collect()
}

/// Where `init` writes a new key file (FORMAT.md §4.4): `BORG_KEY_FILE` (refusing an existing file
/// with [`CryptoError::KeyfileExists`]), else `<keys dir>/<name>` with `.2`, `.3`, … appended
/// while the name exists. `repo_location_as_typed` is the repository path as given (borg's
/// `Location.path`); `remote_host` the host of a remote repository.
pub fn new_key_file_path(
    repo_location_as_typed: &str,
    remote_host: Option<&str>,
) -> Result<PathBuf, CryptoError> {
    new_key_file_path_with(
        repo_location_as_typed,
        remote_host,
        &crate::options::Env::process(),
    )
}

/// [`new_key_file_path`] with `BORG_KEY_FILE` read from `env`.
pub fn new_key_file_path_with(
    repo_location_as_typed: &str,
    remote_host: Option<&str>,
    env: &crate::options::Env,
) -> Result<PathBuf, CryptoError> {
    new_key_file_path_in(
        repo_location_as_typed,
        remote_host,
        env.nonempty("BORG_KEY_FILE").as_deref(),
        &paths::keys_dir(),
    )
}

/// [`new_key_file_path`] with the environment passed in.
pub fn new_key_file_path_in(
    repo_path: &str,
    remote_host: Option<&str>,
    key_file_env: Option<&str>,
    keys_dir: &Path,
) -> Result<PathBuf, CryptoError> {
    if let Some(f) = key_file_env.filter(|f| !f.is_empty()) {
        let path = abspath(f);
        if path.is_file() {
            return Err(CryptoError::KeyfileExists(path.display().to_string()));
        }
        return Ok(path);
    }
    let base = keys_dir.join(key_file_name(repo_path, remote_host));
    let mut path = base.clone();
    let mut i = 1;
    while path.exists() {
        i += 1;
        let mut s = base.clone().into_os_string();
        s.push(format!(".{i}"));
        path = PathBuf::from(s);
    }
    Ok(path)
}

/// Writes a key file atomically (borg's `SaveFile`). With `create`, an existing file is refused
/// ([`CryptoError::KeyfileExists`]), like `borg init`.
pub fn save_key_file(
    path: &Path,
    repository_id: &[u8; 32],
    blob_text: &str,
    create: bool,
) -> Result<(), CryptoError> {
    if create && path.is_file() {
        return Err(CryptoError::KeyfileExists(path.display().to_string()));
    }
    if let Some(dir) = path.parent() {
        paths::ensure_dir(dir).map_err(|e| CryptoError::Io(format!("{}: {e}", dir.display())))?;
    }
    paths::write_atomic(path, format_key_file(repository_id, blob_text).as_bytes())
        .map_err(|e| CryptoError::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let id = [0xab; 32];
        let f = format_key_file(&id, "AAAA\nBBBB");
        assert_eq!(f, format!("BORG_KEY {}\nAAAA\nBBBB\n", "ab".repeat(32)));
        let (pid, blob) = parse_key_file(&f).unwrap();
        assert_eq!(pid, id);
        assert_eq!(blob, "AAAA\nBBBB\n");
        assert_eq!(
            format_key_file(&id, "X\n"),
            format!("BORG_KEY {}\nX\n", "ab".repeat(32))
        );
        assert!(parse_key_file("BORG_KEX 00\nAAA").is_err());
        assert!(parse_key_file("BORG_KEY 00\nAAA").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(key_file_name("m-keyfile", None), "m_keyfile");
        assert_eq!(key_file_name("/tmp/x/repo/", None), "tmp_x_repo");
        assert_eq!(
            key_file_name("/srv/repo", Some("back.up-host")),
            "back_up_host__srv_repo"
        );
        assert_eq!(key_file_name(&"a".repeat(150), None).len(), 100);
        assert_eq!(key_file_name("äö ü", None), "äö_ü");
    }

    #[test]
    fn lookup_and_new_paths() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let id = [1u8; 32];
        let other = [2u8; 32];
        std::fs::write(keys.join("junk"), "not a key").unwrap();
        std::fs::write(keys.join("other"), format_key_file(&other, "QQ")).unwrap();
        assert!(matches!(
            find_key_file_in(&id, None, &keys),
            Err(CryptoError::KeyfileNotFound { .. })
        ));
        save_key_file(&keys.join("mine"), &id, "QQ", true).unwrap();
        assert!(matches!(
            save_key_file(&keys.join("mine"), &id, "QQ", true),
            Err(CryptoError::KeyfileExists(_))
        ));
        assert_eq!(
            find_key_file_in(&id, None, &keys).unwrap(),
            keys.join("mine")
        );
        let other_path = keys.join("other");
        let e = find_key_file_in(&id, other_path.to_str(), &keys).unwrap_err();
        assert!(matches!(e, CryptoError::KeyfileMismatch { .. }));
        let e = e.with_location("/repo");
        assert_eq!(
            e.to_string(),
            format!(
                "Mismatch between repository /repo and key file {}.",
                other_path.display()
            )
        );
        let junk = keys.join("junk");
        assert!(matches!(
            find_key_file_in(&id, junk.to_str(), &keys),
            Err(CryptoError::KeyfileInvalid { .. })
        ));

        assert_eq!(
            new_key_file_path_in("mine", None, None, &keys).unwrap(),
            keys.join("mine.2")
        );
        std::fs::write(keys.join("mine.2"), "").unwrap();
        assert_eq!(
            new_key_file_path_in("./mine/", None, None, &keys).unwrap(),
            keys.join("mine.3")
        );
        assert!(matches!(
            new_key_file_path_in("x", None, junk.to_str(), &keys),
            Err(CryptoError::KeyfileExists(_))
        ));
        let fresh = keys.join("fresh.key");
        assert_eq!(
            new_key_file_path_in("x", None, fresh.to_str(), &keys).unwrap(),
            fresh
        );
    }
}
