//! The client-side security directory (FORMAT.md §4.8): what this client last saw of a repository.
//!
//! `<security dir>/<repo id hex>/` holds `key-type`, `location`, `manifest-timestamp`, `nonce`
//! and `tam_required`, in borg's formats, so borg and hoard share one view. [`SecurityDir`]
//! detects a swapped encryption mode, a moved repository and a replayed (older) manifest,
//! exactly as borg's `SecurityManager` does. It asks questions only through a callback and
//! never prints.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::paths;

/// A refusal to access a repository, with borg's wording.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The repository's manifest is older than one seen before (encrypted modes).
    #[error("Cache, or information obtained from the security directory is newer than repository - this is either an attack or unsafe (multiple repos with same ID)")]
    RepositoryReplay,
    /// The same, for an unencrypted repository.
    #[error("Cache is newer than repository - do you have multiple, independently updated repos with same ID?")]
    RepositoryIdNotUnique,
    /// The key type differs from the one recorded.
    #[error("Repository encryption method changed since last access, refusing to continue")]
    EncryptionMethodMismatch,
    /// The user declined to use a relocated repository.
    #[error("Repository access aborted")]
    RepositoryAccessAborted,
    /// The user declined to use an unknown unencrypted repository.
    #[error("Cache initialization aborted")]
    CacheInitAborted,
    /// The security directory could not be read or written.
    #[error("security directory {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A question for the user: the message (ending in "[yN] ") and the environment variable that
/// answers it non-interactively. Returns the answer.
pub type Confirm<'a> = &'a dyn Fn(&str, &str) -> bool;

/// What the caller knows about the repository being opened.
#[derive(Debug, Clone)]
pub struct AccessFacts<'a> {
    /// Canonical location (absolute path or `ssh://…`).
    pub location: &'a str,
    /// The key's TYPE byte (FORMAT.md §4.1).
    pub key_type: u8,
    /// False for `none`, the authenticated modes, and repokey with an empty passphrase.
    pub logically_encrypted: bool,
    /// False for plaintext keys (replay then reports `RepositoryIdNotUnique`).
    pub is_plaintext: bool,
    /// The manifest's `timestamp` string.
    pub manifest_timestamp: &'a str,
}

/// What the client cache's `config` records about the repository (borg's `CacheConfig`);
/// borg lets it override the security directory, which older versions may have left behind.
#[derive(Debug, Clone, Default)]
pub struct CacheFacts {
    /// `[cache] previous_location`: where the cache last saw the repository.
    pub previous_location: Option<String>,
    /// `[cache] key_type`: the key's TYPE byte as decimal text.
    pub key_type: Option<String>,
    /// `[cache] timestamp`: the newest manifest timestamp the cache saw.
    pub timestamp: Option<String>,
}

/// One repository's entry in the security directory.
#[derive(Debug, Clone)]
pub struct SecurityDir {
    dir: PathBuf,
}

impl SecurityDir {
    /// The entry for repository `id` under the configured security base directory.
    pub fn for_repository(id: &[u8; 32]) -> Self {
        Self::at(paths::security_base_dir().join(hex::encode(id)))
    }

    /// An entry at an explicit directory (tests).
    pub fn at(dir: PathBuf) -> Self {
        SecurityDir { dir }
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The local AES-CTR counter file (FORMAT.md §4.7).
    pub fn nonce_file(&self) -> PathBuf {
        self.dir.join("nonce")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.file(name)).ok()
    }

    fn io_err(&self, name: &str) -> impl Fn(io::Error) -> SecurityError + '_ {
        let path = self.file(name);
        move |source| SecurityError::Io {
            path: path.clone(),
            source,
        }
    }

    /// True once `key-type`, `location` and `manifest-timestamp` all exist.
    pub fn known(&self) -> bool {
        ["key-type", "location", "manifest-timestamp"]
            .iter()
            .all(|n| self.file(n).exists())
    }

    /// Records location, key type and manifest timestamp (atomically, as borg's SaveFile).
    pub fn save(
        &self,
        location: &str,
        key_type: u8,
        manifest_timestamp: &str,
    ) -> Result<(), SecurityError> {
        // borg's `SecurityManager.save` debug lines; the directory is named by the repository id
        let id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        tracing::debug!(
            "security: saving state for {} to {}",
            id.unwrap_or_default(),
            self.dir.display()
        );
        tracing::debug!("security: current location   {location}");
        tracing::debug!("security: key type           {key_type}");
        tracing::debug!("security: manifest timestamp {manifest_timestamp}");
        paths::ensure_dir(&self.dir).map_err(self.io_err(""))?;
        for (name, value) in [
            ("location", location.to_string()),
            ("key-type", key_type.to_string()),
            ("manifest-timestamp", manifest_timestamp.to_string()),
        ] {
            paths::write_atomic(&self.file(name), value.as_bytes()).map_err(self.io_err(name))?;
        }
        Ok(())
    }

    /// Sets or clears the `tam_required` flag file.
    pub fn set_tam_required(&self, required: bool) -> Result<(), SecurityError> {
        paths::ensure_dir(&self.dir).map_err(self.io_err(""))?;
        let path = self.file("tam_required");
        if required {
            fs::write(&path, b"").map_err(self.io_err("tam_required"))
        } else {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(self.io_err("tam_required")(e))
                }
                _ => Ok(()),
            }
        }
    }

    /// True if the `tam_required` flag file exists.
    pub fn tam_required_flag(&self) -> bool {
        self.file("tam_required").exists()
    }

    /// borg's `assert_secure`: unknown-unencrypted prompt, relocation prompt, key type and
    /// replay checks; remembers a previously unknown repository. `warn_if_unencrypted` is false
    /// only while initialising a new repository.
    pub fn assert_secure(
        &self,
        facts: &AccessFacts<'_>,
        warn_if_unencrypted: bool,
        confirm: Confirm<'_>,
    ) -> Result<(), SecurityError> {
        self.assert_secure_with_cache(facts, None, warn_if_unencrypted, confirm)
    }

    /// [`SecurityDir::assert_secure`] also consulting the client cache's view when there is a
    /// cache: its `previous_location` wins over the security directory's `location` (they can
    /// disagree after an older version confirmed a relocation), its key type must match, and
    /// the newer of the two manifest timestamps counts.
    pub fn assert_secure_with_cache(
        &self,
        facts: &AccessFacts<'_>,
        cache: Option<&CacheFacts>,
        warn_if_unencrypted: bool,
        confirm: Confirm<'_>,
    ) -> Result<(), SecurityError> {
        if !facts.logically_encrypted && !self.known() {
            let allow = !warn_if_unencrypted
                || confirm(
                    "Warning: Attempting to access a previously unknown unencrypted repository!\nDo you want to continue? [yN] ",
                    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK",
                );
            if !allow {
                return Err(SecurityError::CacheInitAborted);
            }
            self.save(facts.location, facts.key_type, facts.manifest_timestamp)?;
        }
        let mut previous_location = self.read("location");
        match &previous_location {
            Some(p) => tracing::debug!("security: read previous location '{p}'"),
            None => tracing::debug!(
                "security: previous location file {} not found",
                self.file("location").display()
            ),
        }
        if let Some(cached) = cache
            .and_then(|c| c.previous_location.as_deref())
            .filter(|c| !c.is_empty())
        {
            previous_location = Some(cached.to_string());
        }
        if let Some(previous) = previous_location {
            if !previous.is_empty() && previous != facts.location {
                let msg = format!(
                    "Warning: The repository at location {} was previously located at {}\nDo you want to continue? [yN] ",
                    facts.location, previous
                );
                if !confirm(&msg, "BORG_RELOCATED_REPO_ACCESS_IS_OK") {
                    return Err(SecurityError::RepositoryAccessAborted);
                }
                paths::ensure_dir(&self.dir).map_err(self.io_err(""))?;
                paths::write_atomic(&self.file("location"), facts.location.as_bytes())
                    .map_err(self.io_err("location"))?;
            }
        }
        if cache
            .and_then(|c| c.key_type.as_deref())
            .is_some_and(|t| t != facts.key_type.to_string())
        {
            return Err(SecurityError::EncryptionMethodMismatch);
        }
        if self.known() && self.read("key-type").as_deref() != Some(&facts.key_type.to_string()) {
            return Err(SecurityError::EncryptionMethodMismatch);
        }
        let mut seen = match self.read("manifest-timestamp") {
            Some(ts) => {
                tracing::debug!("security: read manifest timestamp '{ts}'");
                ts
            }
            None => {
                tracing::debug!(
                    "security: manifest timestamp file {} not found",
                    self.file("manifest-timestamp").display()
                );
                String::new()
            }
        };
        if let Some(cached) = cache.and_then(|c| c.timestamp.as_deref()) {
            if cached > seen.as_str() {
                seen = cached.to_string();
            }
        }
        tracing::debug!("security: determined newest manifest timestamp as {seen}");
        // Compared as strings, exactly as borg does (FORMAT.md §0 item 8).
        if !seen.is_empty() && seen.as_str() > facts.manifest_timestamp {
            return Err(if facts.is_plaintext {
                SecurityError::RepositoryIdNotUnique
            } else {
                SecurityError::RepositoryReplay
            });
        }
        if !self.known() {
            self.save(facts.location, facts.key_type, facts.manifest_timestamp)?;
        }
        tracing::debug!("security: repository checks ok, allowing access");
        Ok(())
    }

    /// Removes the whole entry (when a repository is deleted).
    pub fn destroy(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(loc: &'a str, ts: &'a str) -> AccessFacts<'a> {
        AccessFacts {
            location: loc,
            key_type: 3,
            logically_encrypted: true,
            is_plaintext: false,
            manifest_timestamp: ts,
        }
    }

    #[test]
    fn remembers_then_detects_replay_and_key_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = SecurityDir::at(tmp.path().join("id"));
        let no = |_: &str, _: &str| false;
        sd.assert_secure(&facts("/r", "2024-01-01T00:00:00.000001"), true, &no)
            .unwrap();
        assert!(sd.known());
        sd.save("/r", 3, "2024-01-02T00:00:00.000000").unwrap();
        let err = sd
            .assert_secure(&facts("/r", "2024-01-01T00:00:00.000001"), true, &no)
            .unwrap_err();
        assert!(matches!(err, SecurityError::RepositoryReplay));
        let mut swapped = facts("/r", "2024-01-03T00:00:00.000000");
        swapped.key_type = 2;
        assert!(matches!(
            sd.assert_secure(&swapped, true, &no).unwrap_err(),
            SecurityError::EncryptionMethodMismatch
        ));
    }

    #[test]
    fn relocation_asks_and_unknown_unencrypted_asks() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = SecurityDir::at(tmp.path().join("id"));
        let yes = |_: &str, _: &str| true;
        let no = |_: &str, _: &str| false;
        let mut plain = facts("/r", "2024-01-01T00:00:00.000000");
        plain.logically_encrypted = false;
        assert!(matches!(
            sd.assert_secure(&plain, true, &no).unwrap_err(),
            SecurityError::CacheInitAborted
        ));
        sd.assert_secure(&plain, true, &yes).unwrap();
        plain.location = "/moved";
        assert!(matches!(
            sd.assert_secure(&plain, true, &no).unwrap_err(),
            SecurityError::RepositoryAccessAborted
        ));
        sd.assert_secure(&plain, true, &yes).unwrap();
        assert_eq!(
            fs::read_to_string(sd.path().join("location")).unwrap(),
            "/moved"
        );
    }

    #[test]
    fn cache_location_wins_over_an_outdated_security_dir() {
        // borg's test_security_dir_compat: security dir and cache may disagree
        let tmp = tempfile::tempdir().unwrap();
        let sd = SecurityDir::at(tmp.path().join("id"));
        sd.save("something outdated", 3, "2024-01-01T00:00:00.000000")
            .unwrap();
        let no = |_: &str, _: &str| false;
        let f = facts("/r", "2024-01-01T00:00:00.000000");
        assert!(matches!(
            sd.assert_secure(&f, true, &no).unwrap_err(),
            SecurityError::RepositoryAccessAborted
        ));
        let cache = CacheFacts {
            previous_location: Some("/r".into()),
            key_type: Some("3".into()),
            timestamp: Some("2024-01-01T00:00:00.000000".into()),
        };
        sd.assert_secure_with_cache(&f, Some(&cache), true, &no)
            .unwrap();
        // the cache's key type and newer timestamp count too
        let swapped = CacheFacts {
            key_type: Some("2".into()),
            ..cache.clone()
        };
        assert!(matches!(
            sd.assert_secure_with_cache(&f, Some(&swapped), true, &no)
                .unwrap_err(),
            SecurityError::EncryptionMethodMismatch
        ));
        let newer = CacheFacts {
            timestamp: Some("2025-01-01T00:00:00.000000".into()),
            ..cache
        };
        assert!(matches!(
            sd.assert_secure_with_cache(&f, Some(&newer), true, &no)
                .unwrap_err(),
            SecurityError::RepositoryReplay
        ));
    }
}
