//! `break-lock`: remove the repository's and the cache's locks, whoever holds them.

use crate::location::Location;

use super::common::{Access, CommandError, Result};

/// Breaks the repository lock and the cache lock of `loc`. Like borg
/// (`with_repository(lock=False)` + `Cache.break_lock`), the repository is opened first without
/// locking, so a missing repository is "Repository … does not exist." (exit 2), and a folder
/// that is not a repository "… is not a valid repository", instead of a silent success.
pub fn run(loc: &Location) -> Result<()> {
    let access = Access {
        exclusive: false,
        lock_wait: 0.0,
        lock: false,
    };
    let mut repo = super::common::open_repository(loc, &access)?;
    repo.break_lock().map_err(CommandError::from)?;
    let cache = super::common::repo_cache_dir(&repo.id());
    if cache.is_dir() {
        crate::repo::local::break_lock_at(&cache)?;
    }
    Ok(())
}
