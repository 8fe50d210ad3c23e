//! `upgrade --check-archives-tam | --archives-tam`: finds archives whose TAM is missing or does
//! not verify and, unless only checking, authenticates them again (borg 1.4's `do_upgrade`).
//!
//! Such archives are legitimate in two ways: made before borg 1.0.9 (no TAM), or rewritten by
//! borg < 1.2.5's `check --repair`, which kept the old TAM after changing `items`. hoard goes one
//! step further than borg before it re-authenticates: it reads the archive's whole item stream
//! and looks every file chunk up in the chunk index, so an archive whose contents do not hold
//! together is reported and left as it is (see [`ArchiveTamStatus::NotFixed`]).

use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::{ArchiveRef, Operation};
use crate::cache::{Cache, CacheOptions, OpStats};
use crate::location::Location;

use super::common::{self, Access, CommandError, Result};
use super::delete::format_archive;
use super::select::{self, ArchiveInfo, Selection};

/// What `upgrade` found for one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTamStatus {
    /// The TAM verifies.
    Present,
    /// No valid TAM; reported only (`--check-archives-tam`).
    Missing,
    /// No valid TAM; a new one was added: the archive's new id.
    Added([u8; 32]),
    /// No valid TAM, and the contents did not check out: left as it is, with the reason.
    NotFixed(String),
}

/// One archive's line of the report.
#[derive(Debug, Clone)]
pub struct ArchiveTamLine {
    /// The archive as the manifest lists it (old id).
    pub info: ArchiveInfo,
    /// What was found or done.
    pub status: ArchiveTamStatus,
}

impl ArchiveTamLine {
    /// The line borg prints for this archive (`Archive TAM present: …`, `Added archive TAM: …
    /// -> [id]`, `Archive TAM missing: …`); hoard's own for an archive it refused to fix.
    pub fn text(&self) -> String {
        let shown = format_archive(&self.info);
        match &self.status {
            ArchiveTamStatus::Present => format!("Archive TAM present: {shown}"),
            ArchiveTamStatus::Missing => format!("Archive TAM missing: {shown}"),
            ArchiveTamStatus::Added(id) => {
                format!("Added archive TAM:   {shown} -> [{}]", hex::encode(id))
            }
            ArchiveTamStatus::NotFixed(why) => {
                format!(
                    "Archive TAM missing, NOT added (contents do not check out: {why}): {shown}"
                )
            }
        }
    }
}

/// The outcome of an archives-TAM upgrade or check.
#[derive(Debug, Clone, Default)]
pub struct ArchivesTamOutcome {
    /// One line per archive, oldest first.
    pub lines: Vec<ArchiveTamLine>,
}

impl ArchivesTamOutcome {
    /// Archives without a valid TAM (fixed or not).
    pub fn issues(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.status != ArchiveTamStatus::Present)
            .count()
    }

    /// Archives that still have no valid TAM afterwards.
    pub fn unfixed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| {
                matches!(
                    l.status,
                    ArchiveTamStatus::Missing | ArchiveTamStatus::NotFixed(_)
                )
            })
            .count()
    }
}

/// Checks every archive's TAM and, unless `check_only`, authenticates the archives that lack a
/// valid one after checking their contents; commits once at the end.
pub fn archives_tam(
    loc: &Location,
    check_only: bool,
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<ArchivesTamOutcome> {
    let access = Access {
        exclusive: !check_only,
        lock_wait,
        lock: true,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Check], confirm)?;
    // The cache sync must read the very archives this command is about.
    opened.store.key.set_ignore_invalid_archive_tam(true);
    let mut cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait,
            ..CacheOptions::default()
        },
    )?;
    let sel = Selection {
        consider_checkpoints: true,
        ..Selection::default()
    };
    let archives = select::select_archives(&opened.manifest, &sel);
    let mut outcome = ArchivesTamOutcome::default();
    let mut stats = OpStats::default();
    let mut changed = false;
    for info in archives {
        let data = opened.store.get(&info.id, None)?;
        if let Ok((_, true)) = opened.store.key.unpack_and_verify_archive(&data) {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::Present,
            });
            continue;
        }
        if check_only {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::Missing,
            });
            continue;
        }
        let meta = match opened
            .store
            .key
            .unpack_archive_unverified(&data)
            .map_err(|e| e.to_string())
            .and_then(|v| ArchiveMeta::from_value(&v).map_err(|e| e.to_string()))
        {
            Ok(meta) => meta,
            Err(why) => {
                outcome.lines.push(ArchiveTamLine {
                    info,
                    status: ArchiveTamStatus::NotFixed(why),
                });
                continue;
            }
        };
        if let Err(why) = contents_hold_together(&mut opened.store, &cache, &meta, &info) {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::NotFixed(why),
            });
            continue;
        }
        let packed = opened
            .store
            .key
            .pack_and_authenticate_metadata(meta.to_value(), "archive");
        let new_id = opened.store.key.id_hash(&packed);
        cache.add_chunk(&mut opened.store, &new_id, &packed, &mut stats)?;
        cache.chunk_decref(&mut opened.store, &info.id, &mut stats)?;
        opened.manifest.archives.insert(
            info.name.clone(),
            ArchiveRef {
                id: new_id,
                time: info.time.clone(),
            },
        );
        changed = true;
        outcome.lines.push(ArchiveTamLine {
            info,
            status: ArchiveTamStatus::Added(new_id),
        });
    }
    if changed {
        common::commit_manifest(&mut opened)?;
        cache.commit(&opened.manifest)?;
    }
    Ok(outcome)
}

/// Reads the whole item stream of `meta` and looks each file chunk up in the chunk index: the
/// contents check made before an archive without a valid TAM is authenticated again.
fn contents_hold_together(
    store: &mut crate::archive::objects::KeyedRepository,
    cache: &Cache,
    meta: &ArchiveMeta,
    info: &ArchiveInfo,
) -> std::result::Result<(), String> {
    if meta.name != info.name {
        return Err(format!(
            "the archive metadata names it {:?}",
            String::from_utf8_lossy(&meta.name)
        ));
    }
    let mut items = Items::new(store, meta);
    let mut count = 0u64;
    while let Some(item) = items.next_item().map_err(|e| e.to_string())? {
        count += 1;
        for chunk in item.chunks.iter().flatten() {
            if cache.seen_chunk(&chunk.id).is_none() {
                return Err(format!(
                    "item {} refers to missing chunk {}",
                    String::from_utf8_lossy(&item.path),
                    hex::encode(chunk.id)
                ));
            }
        }
    }
    if count == 0 && !meta.items.is_empty() {
        return Err("its item stream holds no item".to_string());
    }
    Ok(())
}

/// The error `upgrade` gives for an option combination it does not run.
pub fn nothing_to_do() -> CommandError {
    CommandError::new("upgrade: name what to upgrade: --archives-tam or --check-archives-tam")
}
