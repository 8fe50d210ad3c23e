//! Repository-wide chunk statistics (what `info` shows as "All archives" and "Chunk index").

use crate::cache::{Cache, CacheOptions, IndexStats};

use super::common::{Opened, Result};

/// Totals over all archives, as borg's cache reports them.
pub type ChunkStats = IndexStats;

/// Computes the statistics over every archive in the manifest, through the cache.
pub fn repository_stats(opened: &mut Opened, lock_wait: f64) -> Result<ChunkStats> {
    let cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait,
            location: Some(opened.location.canonical()),
            ..CacheOptions::default()
        },
    )?;
    Ok(cache.stats())
}
