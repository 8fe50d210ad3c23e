//! Reading only the part of an item stream a PATH selection needs, with the per-archive path
//! index of the client cache ([`crate::cache::pathindex`]).
//!
//! `list ARCHIVE PATH…` and `extract ARCHIVE PATH…` whose only selection is PATH arguments
//! (`pp:` style, no patterns) read the chunk runs the index gives; the first such command on
//! an archive reads everything, as before, and builds the index on the way. Every item read is
//! still tested by the matcher, so the index only decides what is *not* read: the output is
//! the same with and without it.

use std::path::PathBuf;

use crate::archive::item::Item;
use crate::archive::meta::{ArchiveMeta, ChunkRun, Items};
use crate::archive::{KeyedRepository, Manifest};
use crate::cache::pathindex::{self, Builder, PathIndex};
use crate::patterns::{Pattern, PatternStyle};

/// The index keys of PATH arguments, when they are the whole selection (`has_patterns`
/// false) and every one is a `pp:` path below the root; `None` otherwise (read everything).
pub fn index_keys(paths: &[String], has_patterns: bool) -> Option<Vec<String>> {
    if has_patterns || paths.is_empty() {
        return None;
    }
    paths
        .iter()
        .map(|p| {
            let pat =
                Pattern::parse(std::ffi::OsStr::new(p), PatternStyle::PathPrefix, true).ok()?;
            if pat.style() != PatternStyle::PathPrefix {
                return None;
            }
            pathindex::prefix_key(pat.normalized())
        })
        .collect()
}

/// How to read the items of one archive for a PATH selection.
pub struct IndexedRead {
    dir: PathBuf,
    archive_id: [u8; 32],
    live: Vec<[u8; 32]>,
    keys: Vec<String>,
    /// Set when the index is missing or invalid: it is built from the full read.
    builder: Option<Builder>,
}

impl IndexedRead {
    /// The plan for reading archive `archive_id` of the repository `repo_id` with the
    /// selection `keys` (from [`index_keys`]); `None` when there is nothing to use or build
    /// (no keys, no cache directory).
    pub fn new(
        repo_id: &[u8; 32],
        manifest: &Manifest,
        archive_id: [u8; 32],
        keys: Option<&[String]>,
    ) -> Option<IndexedRead> {
        let keys = keys?.to_vec();
        let dir = pathindex::index_dir(repo_id)?;
        Some(IndexedRead {
            dir,
            archive_id,
            live: manifest.archives.values().map(|r| r.id).collect(),
            keys,
            builder: None,
        })
    }

    /// The chunk runs to read, or `None` to read everything (then the index is built while
    /// reading, see [`IndexedRead::observe`]). `extract` passes `hardlinks_matter`: a selection
    /// with hardlink slaves reads everything, since their masters may lie outside it.
    pub fn runs(&mut self, meta: &ArchiveMeta, hardlinks_matter: bool) -> Option<Vec<ChunkRun>> {
        match PathIndex::load(&self.dir, &self.archive_id, meta.items.len()) {
            Some(idx) => {
                let found = idx.lookup(&self.keys);
                if hardlinks_matter && found.has_slaves {
                    tracing::debug!("path index: hardlinks in the selection, reading everything");
                    return None;
                }
                let n: usize = found.ranges.iter().map(|r| r.last + 1 - r.first).sum();
                tracing::debug!(
                    "path index: reading {n} of {} item-stream chunks",
                    meta.items.len()
                );
                Some(found.ranges)
            }
            None => {
                self.builder = Some(Builder::new(meta.items.len()));
                None
            }
        }
    }

    /// Opens the item iterator for `runs` (from [`IndexedRead::runs`]).
    pub fn items<'a>(
        store: &'a mut KeyedRepository,
        meta: &ArchiveMeta,
        runs: Option<Vec<ChunkRun>>,
    ) -> Items<'a> {
        match runs {
            Some(r) => Items::runs(store, meta, r),
            None => Items::new(store, meta),
        }
    }

    /// Feeds the item just returned by `items` to the index being built, if any.
    pub fn observe(&mut self, items: &Items<'_>, item: &Item) {
        if let Some(b) = self.builder.as_mut() {
            let ((chunk, off), end) = items.last_item_position();
            b.add(
                &item.path,
                (chunk, usize::try_from(off).unwrap_or(usize::MAX)),
                end,
                item.is_hardlink_slave(),
            );
        }
    }

    /// After the whole stream was read without error: saves the index built on the way.
    pub fn finish(&mut self) {
        if let Some(idx) = self.builder.take().and_then(Builder::finish) {
            idx.save(&self.dir, &self.archive_id, &self.live);
        }
    }
}

/// Reads the optional plan: `(runs, plan)` for callers holding an `Option<IndexedRead>`.
pub fn plan_runs(
    plan: &mut Option<IndexedRead>,
    meta: &ArchiveMeta,
    hardlinks_matter: bool,
) -> Option<Vec<ChunkRun>> {
    plan.as_mut().and_then(|p| p.runs(meta, hardlinks_matter))
}
