//! `break-lock`: remove the repository's and the cache's locks, whoever holds them.

use crate::location::{Location, Proto};

use super::common::{CommandError, Result};

/// Breaks the repository lock and the cache lock of `loc`.
pub fn run(loc: &Location) -> Result<()> {
    if loc.proto != Proto::File {
        return run_remote(loc);
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

/// `break-lock` over `serve` (or on object storage): open without locking, break the repository lock on the server,
/// then the local cache lock (borg's `with_repository(lock=False)` + `Cache.break_lock`).
fn run_remote(loc: &Location) -> Result<()> {
    use crate::repo::remote::{RemoteOpenOptions, RemoteRepository};
    use crate::repo::Repository;
    let mut repo: Box<dyn Repository> = if loc.proto == Proto::S3 {
        super::common::open_repository(
            loc,
            &super::common::Access {
                exclusive: false,
                lock_wait: 0.0,
                lock: false,
            },
        )?
    } else {
        Box::new(
            RemoteRepository::open(
                loc,
                &RemoteOpenOptions {
                    lock: false,
                    ..RemoteOpenOptions::default()
                },
            )
            .map_err(CommandError::from)?,
        )
    };
    repo.break_lock().map_err(CommandError::from)?;
    let cache = super::common::repo_cache_dir(&repo.id());
    if cache.is_dir() {
        crate::repo::local::break_lock_at(&cache)?;
    }
    Ok(())
}
