//! The figures behind `hoard report REPO` and a job's status file: every archive of a
//! repository in time order with `info`'s figures and the data it was the first to bring
//! (so the running sum is the repository's growth with the archives kept today), and the
//! repository's totals. Logic only: rendering lives in `automation::report`.

use std::collections::HashSet;

use chrono::NaiveDateTime;

use crate::archive::meta::{ArchiveMeta, Items};
use crate::cache::IndexStats;
use crate::location::Location;

use super::archive_info::{self, InfoTargets};
use super::common::{self, LockSpec, Result};
use super::select::{self, Selection};

/// One archive on the report's time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePoint {
    /// Name (undecodable bytes as `?`).
    pub name: String,
    /// Start, local time.
    pub start: NaiveDateTime,
    /// Seconds between start and end.
    pub duration: f64,
    /// Number of files.
    pub nfiles: u64,
    /// Original size of the files' content.
    pub original_size: u64,
    /// Compressed size.
    pub compressed_size: u64,
    /// Stored size of the chunks only this archive references (`info`'s deduplicated size).
    pub deduplicated_size: u64,
    /// Stored size of the content chunks no older archive (of those kept) references: what
    /// this archive added to the repository.
    pub added_size: u64,
}

/// A repository's archives and totals.
#[derive(Debug, Clone)]
pub struct RepoReport {
    /// Canonical location.
    pub location: String,
    /// The archives, oldest first (checkpoints included, as `info` shows them).
    pub archives: Vec<ArchivePoint>,
    /// Chunk index totals: `unique_csize` is the repository's stored size.
    pub totals: IndexStats,
}

/// Gathers [`RepoReport`]: `info` on every archive, then one more pass over the archives'
/// chunk lists for the growth.
pub fn repo_report(
    loc: &Location,
    lock: LockSpec,
    confirm: crate::security::Confirm<'_>,
) -> Result<RepoReport> {
    let sel = Selection {
        consider_checkpoints: true,
        ..Selection::default()
    };
    let mut info = archive_info::archives_info(
        loc,
        &InfoTargets::Selection(sel.clone()),
        false,
        lock,
        confirm,
    )?;
    let infos = select::select_archives(&info.opened.manifest, &sel);
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut archives = Vec::with_capacity(info.archives.len());
    for (details, ai) in info.archives.iter().zip(infos.iter()) {
        let meta = ArchiveMeta::load(&mut info.opened.store, &ai.id)?;
        let mut added = 0u64;
        let mut items = Items::new(&mut info.opened.store, &meta);
        while let Some(item) = items.next_item()? {
            for ch in item.chunks.iter().flatten() {
                if seen.insert(ch.id) {
                    added += ch.csize as u64;
                }
            }
        }
        archives.push(ArchivePoint {
            name: details.name.clone(),
            start: details.start,
            duration: details.duration,
            nfiles: details.nfiles,
            original_size: details.original_size,
            compressed_size: details.compressed_size,
            deduplicated_size: details.deduplicated_size,
            added_size: added,
        });
    }
    Ok(RepoReport {
        location: info.opened.location.canonical(),
        archives,
        totals: info.index,
    })
}

/// A repository's archive count and sizes, for a job's status after its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoTotals {
    /// Archives in the manifest (checkpoints included).
    pub archives: u64,
    /// Stored size of all distinct chunks (`info`'s "All archives" deduplicated size).
    pub stored_size: u64,
    /// Sum of the archives' original sizes.
    pub original_size: u64,
}

/// Reads [`RepoTotals`] through the manifest and the client cache.
pub fn repo_totals(
    loc: &Location,
    lock: LockSpec,
    confirm: crate::security::Confirm<'_>,
) -> Result<RepoTotals> {
    let access = lock.shared();
    let mut opened =
        common::open_with_manifest(loc, &access, &[crate::archive::Operation::Read], confirm)?;
    let stats = super::stats::repository_stats(&mut opened, lock.wait)?;
    Ok(RepoTotals {
        archives: opened.manifest.archives.len() as u64,
        stored_size: stats.unique_csize,
        original_size: stats.total_size,
    })
}
