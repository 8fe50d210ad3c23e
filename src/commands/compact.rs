//! `compact`: free repository space by compacting sparse segments (borg's `do_compact`,
//! FORMAT.md §2.12). Needs no key: the manifest object is read and written back unchanged to open a
//! transaction, which is then committed with compaction. In append-only mode the commit does not
//! compact, so nothing is freed (FORMAT.md §2.13).

use crate::location::Location;

use super::common::{open_repository, Access, Result};

/// Options of `compact`.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// `--threshold`: minimum freeable share of a segment, in percent (default 10).
    pub threshold_percent: i64,
    /// `--cleanup-commits` (accepted; commit-only segments are compacted like any other).
    pub cleanup_commits: bool,
    /// `-n/--dry-run`: open and lock the repository, change nothing (borg 1.4.5 reports
    /// nothing either; the option exists to simplify scripting).
    pub dry_run: bool,
    /// Where compaction reports its progress (borg's `repository.compact_segments`).
    pub progress: crate::progress::Progress,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            threshold_percent: 10,
            cleanup_commits: false,
            dry_run: false,
            progress: crate::progress::Progress::default(),
        }
    }
}

/// Compacts the repository at `loc` (exclusive lock).
pub fn run(loc: &Location, opts: &CompactOptions, lock_wait: f64) -> Result<()> {
    let access = Access {
        exclusive: true,
        lock_wait,
        lock: true,
    };
    let mut repo = open_repository(loc, &access)?;
    if opts.dry_run {
        return Ok(());
    }
    repo.set_progress(opts.progress.clone());
    let data = repo.get(&crate::archive::MANIFEST_ID)?;
    repo.put(&crate::archive::MANIFEST_ID, &data)?;
    repo.commit(true, opts.threshold_percent as f64 / 100.0)?;
    Ok(())
}
