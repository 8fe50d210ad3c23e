//! `info REPO`: repository id, location, encryption, key location, cache and security dirs,
//! and the repository-wide statistics (borg's `do_info` for a repository).

use std::path::PathBuf;

use crate::crypto::KeyType;
use crate::location::Location;

use super::common::{self, KeyLocation, LockSpec, Opened, Result};
use super::stats::{self, ChunkStats};

/// Everything `info REPO` shows.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// Repository id.
    pub id: [u8; 32],
    /// Canonical location.
    pub location: String,
    /// The key mode.
    pub key_type: KeyType,
    /// Where the key lives.
    pub key_location: KeyLocation,
    /// `<cache dir>/<id hex>`.
    pub cache_path: PathBuf,
    /// `<security dir>/<id hex>`.
    pub security_dir: PathBuf,
    /// The manifest timestamp (UTC string).
    pub last_modified: String,
    /// Totals over all archives.
    pub stats: ChunkStats,
}

/// Gathers [`RepoInfo`] for the repository at `loc`.
pub fn repo_info(
    loc: &Location,
    lock: LockSpec,
    confirm: crate::security::Confirm<'_>,
) -> Result<RepoInfo> {
    let access = lock.shared();
    let mut opened =
        common::open_with_manifest(loc, &access, &[crate::archive::Operation::Read], confirm)?;
    let stats = stats::repository_stats(&mut opened, lock.wait)?;
    Ok(describe(&opened, stats))
}

fn describe(opened: &Opened, stats: ChunkStats) -> RepoInfo {
    let id = opened.id();
    RepoInfo {
        id,
        location: opened.location.canonical(),
        key_type: opened.store.key.key_type(),
        key_location: opened.key_location.clone(),
        cache_path: common::repo_cache_dir(&id),
        security_dir: opened.security.path().to_path_buf(),
        last_modified: opened.manifest.timestamp.clone(),
        stats,
    }
}
