//! `break-lock`: remove the repository's and the cache's locks, whoever holds them.

use crate::location::{Location, Proto};

use super::common::{CommandError, Result};

/// Breaks the repository lock and the cache lock of `loc`.
pub fn run(loc: &Location) -> Result<()> {
    if loc.proto == Proto::Ssh {
        return Err(CommandError::new(
            "Remote repositories are not supported yet.",
        ));
    }
    let path = loc.local_path();
    crate::repo::local::break_lock_at(&path)?;
    let id = std::fs::read_to_string(path.join("config"))
        .ok()
        .and_then(|t| crate::repo::config::Config::parse(&t).ok())
        .and_then(|c| c.get("repository", "id").and_then(|h| hex::decode(h).ok()))
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    if let Some(id) = id {
        let cache = super::common::repo_cache_dir(&id);
        if cache.is_dir() {
            crate::repo::local::break_lock_at(&cache)?;
        }
    }
    Ok(())
}
