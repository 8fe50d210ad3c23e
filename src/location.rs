//! Repository locations as borg parses them: `ssh://[user@]host[:port]/path`,
//! `[user@]host:path` (scp style), `file:///path`, plain local paths, each optionally followed by
//! `::ARCHIVE`; and `::ARCHIVE` or nothing, meaning the repository in `BORG_REPO`. hoard also
//! accepts object-storage locations (`s3://`, `s3+https://`, `s3:`; see [`Proto::S3`]).
//! Only parsing and canonical forms live here; no I/O besides reading `BORG_REPO` and the cwd.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::options::RepoOptions;

/// A parsed location, with the options for reaching the repository (the environment the
/// command line named it in, the remote and object-store options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `ssh` or `file`.
    pub proto: Proto,
    /// Remote user, if given.
    pub user: Option<String>,
    /// Remote host (IPv6 without brackets).
    pub host: Option<String>,
    /// Remote port, if given.
    pub port: Option<u16>,
    /// The repository path, normalised like Python's `os.path.normpath`.
    pub path: String,
    /// The archive name after `::`, if any.
    pub archive: Option<String>,
    /// The repository part as the user typed it (after `BORG_REPO` substitution).
    pub raw_repo: String,
    /// How the repository is reached and its key unlocked; the process environment and no
    /// command-line options unless the location came from [`Location::parse_with`].
    pub options: Arc<RepoOptions>,
}

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A local directory.
    File,
    /// `borg serve` over ssh.
    Ssh,
    /// S3-compatible object storage: `s3://[ACCESS@]HOST[:PORT]/BUCKET[/PREFIX]` (plain HTTP,
    /// path-style), `s3+https://…` (TLS) or `s3:BUCKET[/PREFIX]` (endpoint from the AWS
    /// environment). `path` holds `BUCKET/PREFIX`.
    S3,
}

/// A location that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid location format: \"{0}\"")]
pub struct LocationError(pub String);

/// Python's `os.path.normpath` for POSIX paths (keeps a leading `//`, drops `.`, folds `..`).
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if initial.is_empty() {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = format!("{initial}{}", parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn normpath_special(p: &str) -> String {
    let relative = p.starts_with("/./");
    let n = normpath(p);
    if relative {
        format!("/.{n}")
    } else {
        n
    }
}

/// Splits `text` into (repo part, archive) at the first `::`; the archive must not contain `/`.
fn split_archive(text: &str) -> Result<(&str, Option<String>), ()> {
    // An IPv6 host in brackets contains "::" itself: look for the separator after it.
    let from = match (text.find('['), text.find(']')) {
        (Some(open), Some(close)) if open < close => close,
        _ => 0,
    };
    match text[from..].find("::").map(|i| i + from) {
        None => Ok((text, None)),
        Some(i) => {
            let archive = &text[i + 2..];
            if archive.contains('/') {
                return Err(());
            }
            Ok((
                &text[..i],
                if archive.is_empty() {
                    None
                } else {
                    Some(archive.to_string())
                },
            ))
        }
    }
}

fn valid_user(u: &str) -> bool {
    !u.is_empty() && !u.contains(['@', ':', '/'])
}

fn parse_repo(repo: &str) -> Option<Location> {
    let mk = |proto, user: Option<&str>, host: Option<&str>, port, path: String| Location {
        proto,
        user: user.map(str::to_string),
        host: host.map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
        port,
        path,
        archive: None,
        raw_repo: repo.to_string(),
        options: Arc::default(),
    };
    for scheme in ["s3://", "s3+https://"] {
        if let Some(rest) = repo.strip_prefix(scheme) {
            let slash = rest.find('/')?;
            let (authority, path) = rest.split_at(slash);
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) if valid_user(u) => (Some(u), h),
                Some(_) => return None,
                None => (None, authority),
            };
            let (host, port) = if hostport.starts_with('[') {
                let end = hostport.find(']')?;
                match &hostport[end + 1..] {
                    "" => (&hostport[..=end], None),
                    p => (
                        &hostport[..=end],
                        Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
                    ),
                }
            } else {
                match hostport.split_once(':') {
                    Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
                    None => (hostport, None),
                }
            };
            S3Target::split_path(path)?;
            if host.is_empty() {
                return None;
            }
            return Some(mk(Proto::S3, user, Some(host), port, path.to_string()));
        }
    }
    if let Some(rest) = repo.strip_prefix("s3:") {
        S3Target::split_path(rest)?;
        return Some(mk(Proto::S3, None, None, None, rest.to_string()));
    }
    if let Some(rest) = repo.strip_prefix("ssh://") {
        let slash = rest.find('/')?;
        let (authority, path) = rest.split_at(slash);
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) if valid_user(u) => (Some(u), h),
            Some(_) => return None,
            None => (None, authority),
        };
        let (host, port) = if hostport.starts_with('[') {
            let end = hostport.find(']')?;
            let host = &hostport[..=end];
            match &hostport[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?.parse::<u16>().ok()?)),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || path.len() < 2 {
            return None;
        }
        return Some(mk(
            Proto::Ssh,
            user,
            Some(host),
            port,
            normpath_special(path),
        ));
    }
    if let Some(rest) = repo.strip_prefix("file://") {
        if !rest.contains('/') {
            return None;
        }
        return Some(mk(Proto::File, None, None, None, normpath_special(rest)));
    }
    if repo.is_empty() || repo.starts_with(':') || repo.starts_with("//") {
        return None;
    }
    // scp style: [user@]host:path — host has no ':' or '/', or is a bracketed IPv6 address.
    let host_end = if repo.starts_with('[') {
        repo.find("]:").map(|i| i + 1)
    } else {
        repo.find(':').filter(|i| !repo[..*i].contains('/'))
    };
    if let Some(colon) = host_end {
        let userhost = &repo[..colon];
        let path = &repo[colon + 1..];
        let (user, host) = match userhost.split_once('@') {
            Some((u, h)) if valid_user(u) => (Some(u), h),
            Some(_) => return None,
            None => (None, userhost),
        };
        if !host.is_empty() && !path.is_empty() && !path.starts_with(':') {
            return Some(mk(
                Proto::Ssh,
                user,
                Some(host),
                None,
                normpath_special(path),
            ));
        }
    }
    Some(mk(Proto::File, None, None, None, normpath_special(repo)))
}

impl Location {
    /// Parses a location argument. `None` or an empty repository part (`::ARCH`) take the
    /// repository from `borg_repo` (the value of `BORG_REPO`).
    pub fn parse(text: Option<&str>, borg_repo: Option<&str>) -> Result<Location, LocationError> {
        let text = text.unwrap_or("");
        let invalid = || LocationError(text.to_string());
        let (repo, archive) = split_archive(text).map_err(|_| invalid())?;
        let (repo, from_env) = if repo.is_empty() {
            match borg_repo {
                Some(r) if !r.is_empty() => (r, true),
                _ => return Err(invalid()),
            }
        } else {
            (repo, false)
        };
        let mut loc = parse_repo(repo).ok_or_else(|| {
            LocationError(if from_env {
                repo.to_string()
            } else {
                text.to_string()
            })
        })?;
        loc.archive = archive;
        Ok(loc)
    }

    /// Parses using the process's `BORG_REPO`.
    pub fn parse_env(text: Option<&str>) -> Result<Location, LocationError> {
        Self::parse_with(text, &Arc::default())
    }

    /// Parses using `BORG_REPO` of `options.env`; the location carries `options`.
    pub fn parse_with(
        text: Option<&str>,
        options: &Arc<RepoOptions>,
    ) -> Result<Location, LocationError> {
        let env = options.env.nonempty("BORG_REPO");
        let mut loc = Self::parse(text, env.as_deref())?;
        loc.options = Arc::clone(options);
        Ok(loc)
    }

    /// The local path made absolute (for `File` locations).
    pub fn local_path(&self) -> PathBuf {
        let p = Path::new(&self.path);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        // Lexical normalisation, like os.path.abspath.
        let mut out = PathBuf::new();
        for c in abs.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other.as_os_str()),
            }
        }
        out
    }

    /// The canonical form borg records in the security directory and prints as "Location".
    pub fn canonical(&self) -> String {
        match self.proto {
            Proto::S3 => match self.s3_target() {
                Some(t) => {
                    let bp = format!("{}/{}", t.bucket, t.prefix);
                    let bp = bp.trim_end_matches('/');
                    match t.endpoint.as_deref().map(|e| e.split_once("://")) {
                        Some(Some(("https", hp))) => format!("s3+https://{hp}/{bp}"),
                        Some(Some((_, hp))) => format!("s3://{hp}/{bp}"),
                        _ => format!("s3:{bp}"),
                    }
                }
                None => self.raw_repo.clone(),
            },
            Proto::File => self.local_path().to_string_lossy().into_owned(),
            Proto::Ssh => {
                let path = if self.path.starts_with('~') {
                    format!("/{}", self.path)
                } else if !self.path.starts_with('/') {
                    format!("/./{}", self.path)
                } else {
                    self.path.clone()
                };
                let host = self.host.as_deref().unwrap_or("");
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                format!(
                    "ssh://{}{}{}{}",
                    self.user
                        .as_deref()
                        .map(|u| format!("{u}@"))
                        .unwrap_or_default(),
                    host,
                    self.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    path
                )
            }
        }
    }

    /// Bucket, prefix, endpoint and key id of an [`Proto::S3`] location (`None` otherwise).
    pub fn s3_target(&self) -> Option<S3Target> {
        if self.proto != Proto::S3 {
            return None;
        }
        let (bucket, prefix) = S3Target::split_path(&self.path)?;
        let endpoint = self.host.as_ref().map(|h| {
            let scheme = if self.raw_repo.starts_with("s3+https://") {
                "https"
            } else {
                "http"
            };
            let h = if h.contains(':') {
                format!("[{h}]")
            } else {
                h.clone()
            };
            match self.port {
                Some(p) => format!("{scheme}://{h}:{p}"),
                None => format!("{scheme}://{h}"),
            }
        });
        Some(S3Target {
            endpoint,
            access_key: self.user.clone(),
            bucket,
            prefix,
        })
    }

    /// The location without its archive, for messages.
    pub fn repo_text(&self) -> String {
        self.raw_repo.clone()
    }
}

/// Where and how to reach a bucket (parsed from an S3 location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// Endpoint URL (`http://host:port`), `None` = from the environment / AWS default.
    pub endpoint: Option<String>,
    /// Access key id given in the URL (`s3://ACCESS@host/...`).
    pub access_key: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
}

impl S3Target {
    /// Splits `BUCKET[/PREFIX]`; `None` when the bucket is empty.
    pub fn split_path(path: &str) -> Option<(String, String)> {
        let p = path.trim_matches('/');
        let (b, rest) = p.split_once('/').unwrap_or((p, ""));
        if b.is_empty() {
            return None;
        }
        let prefix = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        Some((b.to_string(), prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borg_location_forms() {
        let l = Location::parse(Some("ssh://user@host:2222/srv/repo::arch"), None).unwrap();
        assert_eq!(l.proto, Proto::Ssh);
        assert_eq!(l.user.as_deref(), Some("user"));
        assert_eq!(l.host.as_deref(), Some("host"));
        assert_eq!(l.port, Some(2222));
        assert_eq!(l.path, "/srv/repo");
        assert_eq!(l.archive.as_deref(), Some("arch"));
        assert_eq!(l.canonical(), "ssh://user@host:2222/srv/repo");

        let l = Location::parse(Some("user@host:rel/repo"), None).unwrap();
        assert_eq!(l.proto, Proto::Ssh);
        assert_eq!(l.canonical(), "ssh://user@host/./rel/repo");

        let l = Location::parse(Some("/abs/./repo/../r2::a-1"), None).unwrap();
        assert_eq!(l.proto, Proto::File);
        assert_eq!(l.path, "/abs/r2");
        assert_eq!(l.archive.as_deref(), Some("a-1"));

        let l = Location::parse(Some("file:///abs/repo"), None).unwrap();
        assert_eq!(l.path, "/abs/repo");

        let l = Location::parse(Some("[::1]:/x/y"), None).unwrap();
        assert_eq!(l.host.as_deref(), Some("::1"));
    }

    #[test]
    fn borg_repo_fills_in_missing_repository() {
        let l = Location::parse(Some("::arch"), Some("/r")).unwrap();
        assert_eq!(
            (l.path.as_str(), l.archive.as_deref()),
            ("/r", Some("arch"))
        );
        let l = Location::parse(None, Some("/r")).unwrap();
        assert_eq!(l.archive, None);
        assert!(Location::parse(Some("::arch"), None).is_err());
        assert!(Location::parse(Some("/r::a/b"), None).is_err());
    }

    #[test]
    fn s3_locations() {
        let l = Location::parse(Some("s3://KEY@127.0.0.1:8333/bkt/some/pre::arch"), None).unwrap();
        assert_eq!(l.proto, Proto::S3);
        assert_eq!(l.archive.as_deref(), Some("arch"));
        let t = l.s3_target().unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(t.access_key.as_deref(), Some("KEY"));
        assert_eq!((t.bucket.as_str(), t.prefix.as_str()), ("bkt", "some/pre"));
        let t = Location::parse(Some("s3+https://s3.example.com/b"), None)
            .unwrap()
            .s3_target()
            .unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("https://s3.example.com"));
        assert_eq!(t.prefix, "");
        let l = Location::parse(Some("s3:bkt/p"), None).unwrap();
        assert_eq!(l.proto, Proto::S3);
        assert_eq!(l.s3_target().unwrap().endpoint, None);
        assert!(Location::parse(Some("s3://host:99999/b"), None).is_err());
        assert!(Location::parse(Some("s3://host/"), None).is_err());
        assert!(Location::parse(Some("s3:"), None).is_err());
    }

    #[test]
    fn normpath_matches_python() {
        assert_eq!(normpath("a/./b/../c"), "a/c");
        assert_eq!(normpath("/../x"), "/x");
        assert_eq!(normpath("../x"), "../x");
        assert_eq!(normpath("//x"), "//x");
        assert_eq!(normpath("///x"), "/x");
    }
}
