//! `break-lock`: remove the repository's and the cache's locks, whoever holds them.

use crate::location::{Location, Proto};
use crate::repo::LocalRepository;

use super::common::{CommandError, Result};

/// Breaks the repository lock and the cache lock of `loc`.
pub fn run(loc: &Location) -> Result<()> {
    if loc.proto == Proto::Ssh {
        return Err(CommandError::new("Remote repositories are not supported yet."));
    }
    let path = loc.local_path();
    let id = LocalRepository::break_lock_at(&path)?;
    if let Some(id) = id {
        let cache = super::common::repo_cache_dir(&id);
        if cache.is_dir() {
            crate::repo::lock::break_lock(&cache)?;
        }
    }
    Ok(())
}
