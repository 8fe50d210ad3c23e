//! Where a client may open a repository: borg's `_resolve_path` and the
//! `--restrict-to-path` / `--restrict-to-repository` policy of `open` (FORMAT.md §9.1, §9.7).
//!
//! A requested path is resolved once into a path without symbolic links ([`realpath`]), the
//! policy is checked on that path, and the repository is opened at exactly that path — never
//! at the text the client sent. Resolution fails closed: a path whose symbolic links cannot
//! all be followed (too many links, a loop, an unreadable directory) is not allowed under a
//! restriction, where borg would keep the unresolved rest as text for the kernel to follow.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// How many different symbolic links one resolution may follow: the kernel's `MAXSYMLINKS`
/// (Linux `namei.c`), which bounds every path the kernel itself can open.
pub const MAX_SYMLINKS: usize = 40;

/// The longest path that is resolved: the kernel's `PATH_MAX`. Longer paths cannot be opened
/// by the kernel anyway, and the bound keeps the work per `open` small.
pub const MAX_PATH: usize = 4096;

/// The path with every symbolic link resolved, as Python's `os.path.realpath` (borg's
/// `_resolve_path`) computes it, or `None` if that cannot be done completely.
///
/// Components that do not exist are kept as text (nothing below them can be a link); a
/// symbolic link is replaced by its target even when the target does not exist, so a dangling
/// link resolves to where it points. A link met again is not read again (as in Python), so
/// `allowed/self/../allowed/self/…` costs one link however often it repeats. `None` when more
/// than [`MAX_SYMLINKS`] different links would have to be followed, for a loop, for a path
/// longer than [`MAX_PATH`], when a link cannot be read, or when a component cannot be
/// examined for another reason than not existing (permission denied, not a directory, a NUL
/// byte): then nobody can say where the kernel would end up.
pub fn realpath(p: &Path) -> Option<PathBuf> {
    if p.as_os_str().len() > MAX_PATH {
        return None;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut r = Resolver {
        seen: HashMap::new(),
    };
    let mut out = PathBuf::from("/");
    r.join(&mut out, &abs)?;
    Some(out)
}

/// The links met during one [`realpath`]: each one's resolution, `None` while it is being
/// resolved (meeting it then is a loop).
struct Resolver {
    seen: HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    /// Appends `rest` to the resolved path `out`, resolving links on the way.
    fn join(&mut self, out: &mut PathBuf, rest: &Path) -> Option<()> {
        for c in rest.components() {
            match c {
                Component::RootDir => *out = PathBuf::from("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    // `out` holds no links, so going up is textual.
                    out.pop();
                }
                Component::Normal(name) => {
                    let next = out.join(name);
                    match std::fs::symlink_metadata(&next) {
                        Ok(md) if md.file_type().is_symlink() => {
                            if let Some(known) = self.seen.get(&next) {
                                // Resolved before, or a loop.
                                *out = known.clone()?;
                                continue;
                            }
                            if self.seen.len() >= MAX_SYMLINKS {
                                return None;
                            }
                            self.seen.insert(next.clone(), None);
                            let target = std::fs::read_link(&next).ok()?;
                            // A relative target is relative to the link's directory, `out`.
                            self.join(out, &target)?;
                            self.seen.insert(next, Some(out.clone()));
                        }
                        Ok(_) => *out = next,
                        Err(e) if e.kind() == ErrorKind::NotFound => *out = next,
                        Err(_) => return None,
                    }
                }
            }
        }
        Some(())
    }
}

/// borg's `_resolve_path` before `realpath`: `/~/x` and `~/x` (relative to the base
/// directory), `/~user/x` and `~user/x` (relative to that user's home; an unknown user leaves
/// the path as it is) and `/./x` (relative to the working directory). Bytes that are not
/// UTF-8 are kept as they are.
pub fn expand(path: &[u8]) -> PathBuf {
    let os = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
    if let Some(r) = path
        .strip_prefix(b"/~/".as_slice())
        .or_else(|| path.strip_prefix(b"~/".as_slice()))
    {
        crate::paths::base_dir().join(OsStr::from_bytes(r))
    } else if let Some(r) = path
        .strip_prefix(b"/~".as_slice())
        .or_else(|| path.strip_prefix(b"~".as_slice()))
    {
        let (user, tail) = match r.iter().position(|&b| b == b'/') {
            Some(i) => (&r[..i], &r[i + 1..]),
            None => (r, &b""[..]),
        };
        match home_of(user) {
            Some(home) => home.join(OsStr::from_bytes(tail)),
            // `~` alone or an unknown user: expanduser leaves the text (without the `/`).
            None => os(&path[path.len() - r.len() - 1..]),
        }
    } else if let Some(r) = path.strip_prefix(b"/./".as_slice()) {
        os(r)
    } else {
        os(path)
    }
}

/// The home directory of `user` from the password database (`~user`), `$HOME` for `~`
/// alone (Python's `expanduser`); `None` for unknown users.
fn home_of(user: &[u8]) -> Option<PathBuf> {
    if user.is_empty() {
        return std::env::var_os("HOME").map(PathBuf::from);
    }
    let cname = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy out at once.
    unsafe {
        let pw = libc::getpwnam(cname.as_ptr());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
        Some(PathBuf::from(OsStr::from_bytes(dir.to_bytes())))
    }
}

/// borg's `_resolve_path`: [`expand`] then [`realpath`]. `Err` carries the absolute,
/// unresolved path when resolution failed.
pub fn resolve_path(path: &[u8]) -> Result<PathBuf, PathBuf> {
    let expanded = expand(path);
    realpath(&expanded).ok_or_else(|| {
        if expanded.is_absolute() {
            expanded
        } else {
            std::env::current_dir()
                .map(|c| c.join(&expanded))
                .unwrap_or(expanded)
        }
    })
}

/// The `serve` restrictions, each resolved once when the server starts.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--restrict-to-path`: the repository must be at or below one of these. `None` stands
    /// for a restriction that did not resolve: it allows nothing.
    paths: Option<Vec<Option<PathBuf>>>,
    /// `--restrict-to-repository`: the repository must be exactly one of these.
    repositories: Option<Vec<Option<PathBuf>>>,
}

impl Policy {
    /// The policy of the given restriction options (empty lists: no restriction).
    pub fn new(paths: &[PathBuf], repositories: &[PathBuf]) -> Policy {
        let resolve = |v: &[PathBuf]| {
            (!v.is_empty()).then(|| v.iter().map(|p| realpath(p)).collect::<Vec<_>>())
        };
        Policy {
            paths: resolve(paths),
            repositories: resolve(repositories),
        }
    }

    /// True if any restriction is configured.
    pub fn restricted(&self) -> bool {
        self.paths.is_some() || self.repositories.is_some()
    }

    /// True if the resolved path `path` may be opened. The comparison is by path components
    /// (`/allowed2` is not below `/allowed`) on the raw bytes.
    pub fn allows(&self, path: &Path) -> bool {
        if let Some(paths) = &self.paths {
            if !paths.iter().flatten().any(|p| path.starts_with(p)) {
                return false;
            }
        }
        if let Some(repos) = &self.repositories {
            if !repos.iter().flatten().any(|p| path == p) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_borg_path_forms() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(resolve_path(b"/./x/y"), Ok(cwd.join("x/y")));
        assert_eq!(
            resolve_path(b"/nonexistent-a/b/../c"),
            Ok(PathBuf::from("/nonexistent-a/c"))
        );
        assert_eq!(
            expand(b"~no-such-user-here/x"),
            PathBuf::from("~no-such-user-here/x")
        );
        assert_eq!(
            expand(b"/~no-such-user-here/x"),
            PathBuf::from("~no-such-user-here/x")
        );
    }

    #[test]
    fn links_resolve_fully_or_not_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let root = realpath(tmp.path()).unwrap();
        let allowed = root.join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        symlink(&allowed, allowed.join("self")).unwrap();
        symlink("../outside", allowed.join("out")).unwrap();
        symlink(root.join("outside/none"), allowed.join("dangling")).unwrap();
        symlink("loop2", allowed.join("loop1")).unwrap();
        symlink("loop1", allowed.join("loop2")).unwrap();
        assert_eq!(
            realpath(&allowed.join("out/r")),
            Some(root.join("outside/r"))
        );
        assert_eq!(
            realpath(&allowed.join("dangling/r")),
            Some(root.join("outside/none/r"))
        );
        assert_eq!(realpath(&allowed.join("loop1/r")), None);
        // A link met again costs nothing: 45 rounds through `self` resolve completely, so
        // the link to the outside at the end is seen for what it is.
        let mut hops = allowed.clone();
        for _ in 0..45 {
            hops.push("self/../allowed");
        }
        assert_eq!(realpath(&hops.join("r")), Some(allowed.join("r")));
        assert_eq!(realpath(&hops.join("out/r")), Some(root.join("outside/r")));
        let mut same = allowed.clone();
        for _ in 0..45 {
            same.push("self");
        }
        assert_eq!(realpath(&same.join("out/r")), Some(root.join("outside/r")));
        // 40 different links are followed, the 41st is one too many: not resolved at all.
        for i in 0..=MAX_SYMLINKS {
            symlink(format!("c{}", i + 1), allowed.join(format!("c{i}"))).unwrap();
        }
        std::fs::create_dir(allowed.join(format!("c{}", MAX_SYMLINKS + 1))).unwrap();
        assert_eq!(
            realpath(&allowed.join("c1/r")),
            Some(allowed.join(format!("c{}/r", MAX_SYMLINKS + 1)))
        );
        assert_eq!(realpath(&allowed.join("c0/r")), None);
        let long = allowed.join("x".repeat(MAX_PATH));
        assert_eq!(realpath(&long), None);
    }

    #[test]
    fn policy_compares_components() {
        let tmp = tempfile::tempdir().unwrap();
        let root = realpath(tmp.path()).unwrap();
        let allowed = root.join("allowed");
        let p = Policy::new(std::slice::from_ref(&allowed), &[]);
        assert!(p.allows(&allowed));
        assert!(p.allows(&allowed.join("r")));
        assert!(!p.allows(&root.join("allowed2")));
        assert!(!p.allows(&root));
        let p = Policy::new(&[], std::slice::from_ref(&allowed));
        assert!(p.allows(&allowed));
        assert!(!p.allows(&allowed.join("r")));
        assert!(!Policy::new(&[root.join("bad\0")], &[]).allows(&root));
    }
}
