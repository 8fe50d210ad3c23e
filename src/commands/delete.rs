//! `delete`: archives (by name, or selected with `-a/-P/--first/--last`) or a whole repository
//! (borg's `do_delete`, `_delete_archives`, `_delete_repository`, `Archive.delete`).
//!
//! Deleting an archive drops one reference from every content chunk of every item, from every
//! item-stream chunk and from the archive metadata object, through [`Cache::chunk_decref`], which
//! deletes objects whose count reaches zero; then the manifest entry goes, and manifest,
//! repository and cache are committed.

use crate::archive::meta::ArchiveMeta;
use crate::archive::stream::ItemStreamReader;
use crate::archive::{ArchiveError, Operation};
use crate::cache::{Cache, CacheOptions, IndexStats, OpStats};
use crate::location::Location;
use crate::platform::signals;

use super::common::{self, Access, CommandError, Opened, Result};
use super::list::{archive_local_time, remove_surrogates};
use super::select::{self, ArchiveInfo, Selection};

/// Options of `delete`.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `-n/--dry-run`.
    pub dry_run: bool,
    /// How often `--force` was given.
    pub forced: u8,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// `--keep-security-info`.
    pub keep_security_info: bool,
    /// `--cache-only`.
    pub cache_only: bool,
    /// `--list` (the archive list goes into the confirmation prompt).
    pub output_list: bool,
    /// Lock wait in seconds.
    pub lock_wait: f64,
    /// Where each archive's deletion reports borg's `archive.delete` percentage (`-p`).
    pub progress: crate::progress::Progress,
}

/// What happened, for the caller to log (in order).
#[derive(Debug, Clone)]
pub enum DeleteEvent {
    /// An archive is about to be deleted (or would be, in a dry run): `(archive line, i, n)`.
    Deleting(String, usize, usize),
    /// A named archive is not in the manifest: `(name, i, n)`.
    NotFound(String, usize, usize),
    /// A forced deletion met a corrupted archive.
    CorruptedArchive,
}

/// The outcome of deleting archives.
#[derive(Debug, Clone, Default)]
pub struct DeleteOutcome {
    /// Sizes freed (positive numbers; borg shows them negated).
    pub stats: OpStats,
    /// The chunk index totals afterwards.
    pub index: IndexStats,
    /// True if at least one archive was (or would be) deleted.
    pub deleted: bool,
    /// True if `--force --force` could not find an archive (borg exits with a warning).
    pub warning: bool,
}

/// borg's `format_archive`: `%-36s %s [%s]`.
pub fn format_archive(info: &ArchiveInfo) -> String {
    format!(
        "{:<36} {} [{}]",
        remove_surrogates(&info.name),
        archive_local_time(&info.time).format("%a, %Y-%m-%d %H:%M:%S"),
        hex::encode(info.id)
    )
}

fn open_for_delete(
    loc: &Location,
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<Opened> {
    let access = Access {
        exclusive: true,
        lock_wait,
        lock: true,
    };
    common::open_with_manifest(loc, &access, &[Operation::Delete], confirm)
}

/// Which archives: explicit names, or a selection.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Named archives (`REPO::A` and/or `REPO A B`).
    Names(Vec<Vec<u8>>),
    /// `-a/-P/--first/--last` (checkpoints are considered, as borg does here).
    Selection(Selection),
}

/// Deletes archives.
pub fn delete_archives(
    loc: &Location,
    targets: &Targets,
    opts: &DeleteOptions,
    confirm: crate::security::Confirm<'_>,
    report: &mut dyn FnMut(DeleteEvent),
) -> Result<DeleteOutcome> {
    let mut opened = open_for_delete(loc, opts.lock_wait, confirm)?;
    let names: Vec<Vec<u8>> = match targets {
        Targets::Names(n) => n.clone(),
        Targets::Selection(sel) => {
            let mut sel = sel.clone();
            sel.consider_checkpoints = true;
            select::select_archives(&opened.manifest, &sel)
                .into_iter()
                .map(|a| a.name)
                .collect()
        }
    };
    let mut outcome = DeleteOutcome::default();
    if names.is_empty() {
        return Ok(outcome);
    }
    let n = names.len();
    if opts.forced >= 2 {
        for (i, name) in names.iter().enumerate() {
            match select::find_archive(&opened.manifest, name) {
                None => {
                    outcome.warning = true;
                    report(DeleteEvent::NotFound(remove_surrogates(name), i + 1, n));
                }
                Some(info) => {
                    opened.manifest.archives.remove(name);
                    outcome.deleted = true;
                    report(DeleteEvent::Deleting(format_archive(&info), i + 1, n));
                }
            }
        }
        if !opts.dry_run && outcome.deleted {
            common::commit_manifest(&mut opened)?;
        }
        return Ok(outcome);
    }
    let mut cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait: opts.lock_wait,
            ..CacheOptions::default()
        },
    )?;
    let mut uncommitted = false;
    // Signals are polled between archives (borg's `sig_int` in `do_delete`).
    let _graceful = signals::graceful();
    for (i, name) in names.iter().enumerate() {
        if let Some(stop) = signals::stop() {
            return Err(CommandError::stopped(stop));
        }
        if signals::checkpoint_requested() {
            break;
        }
        let Some(info) = select::find_archive(&opened.manifest, name) else {
            report(DeleteEvent::NotFound(remove_surrogates(name), i + 1, n));
            continue;
        };
        report(DeleteEvent::Deleting(format_archive(&info), i + 1, n));
        outcome.deleted = true;
        if opts.dry_run {
            continue;
        }
        let corrupted = delete_one(&mut opened, &mut cache, &info, opts, &mut outcome.stats)?;
        if corrupted {
            report(DeleteEvent::CorruptedArchive);
        }
        uncommitted = true;
    }
    if let Some(stop) = signals::stop() {
        return Err(CommandError::stopped(stop));
    }
    if uncommitted {
        common::commit_manifest(&mut opened)?;
        cache.commit(&opened.manifest)?;
    }
    if signals::checkpoint_requested() {
        // The first SIGINT: what was deleted is committed (borg's checkpoint), then stop.
        return Err(CommandError::interrupted());
    }
    outcome.index = cache.stats();
    Ok(outcome)
}

/// Deletes one archive; returns true if it was corrupted (only possible with `--force`).
fn delete_one(
    opened: &mut Opened,
    cache: &mut Cache,
    info: &ArchiveInfo,
    opts: &DeleteOptions,
    stats: &mut OpStats,
) -> Result<bool> {
    delete_archive_reporting(
        opened,
        cache,
        &info.id,
        &info.name,
        (opts.forced > 0, opts.consider_part_files),
        stats,
        &opts.progress,
    )
}

/// Deletes one archive (borg's `Archive.delete`): one reference less on every item-stream
/// chunk, every content chunk and the metadata object (objects reaching zero references are
/// deleted from the repository), and the manifest entry goes. Part files count into a
/// separate tally unless `consider_part_files`. With `forced`, an undecodable item stream does
/// not stop the deletion; the return value then says the archive was corrupted.
/// The caller commits (manifest, repository, cache).
pub fn delete_archive(
    opened: &mut Opened,
    cache: &mut Cache,
    id: &[u8; 32],
    name: &[u8],
    forced: bool,
    consider_part_files: bool,
    stats: &mut OpStats,
) -> Result<bool> {
    let none = crate::progress::Progress::default();
    let flags = (forced, consider_part_files);
    delete_archive_reporting(opened, cache, id, name, flags, stats, &none)
}

/// [`delete_archive`] reporting borg's "Decrementing references" percentage over the item
/// stream to `progress`; `(forced, consider_part_files)` as there.
pub fn delete_archive_reporting(
    opened: &mut Opened,
    cache: &mut Cache,
    id: &[u8; 32],
    name: &[u8],
    (forced, consider_part_files): (bool, bool),
    stats: &mut OpStats,
    progress: &crate::progress::Progress,
) -> Result<bool> {
    let meta = ArchiveMeta::load(&mut opened.store, id)?;
    let mut part_stats = OpStats::default();
    let mut reader = ItemStreamReader::for_archive(name);
    let mut error = false;
    // borg makes the indicator whether it shows or not (it takes an operation number)
    let mut pi =
        crate::progress::Percent::new(meta.items.len() as u64, 5.0, "archive.delete", |p| {
            format!("Decrementing references {p:3.0}%")
        });
    let mut sink = |ev: &crate::progress::ProgressEvent| progress.emit(ev);
    let result: std::result::Result<(), ArchiveError> = (|| {
        for (i, item_id) in meta.items.iter().enumerate() {
            pi.show(Some(i as u64), &mut sink);
            let data = opened.store.get(item_id, None)?;
            reader.feed(&data);
            cache.chunk_decref(&mut opened.store, item_id, stats)?;
            loop {
                match reader.next_item() {
                    Ok(Some(item)) => {
                        if let Some(chunks) = &item.chunks {
                            let part = !consider_part_files && item.part.is_some();
                            for c in chunks {
                                let target = if part { &mut part_stats } else { &mut *stats };
                                cache.chunk_decref(&mut opened.store, &c.id, target)?;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if !forced {
                            return Err(e);
                        }
                        error = true;
                        break;
                    }
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        if !forced {
            return Err(e.into());
        }
        error = true;
    }
    pi.finish(&mut sink);
    cache.chunk_decref(&mut opened.store, id, stats)?;
    opened.manifest.archives.remove(name);
    cache.forget_archive(meta.size.unwrap_or(0), meta.csize.unwrap_or(0));
    Ok(error)
}

/// What the confirmation prompt of a repository deletion shows.
#[derive(Debug, Clone)]
pub struct RepoDeletePrompt {
    /// The full prompt text (ends with "Type 'YES' …: ").
    pub message: String,
}

/// Deletes a whole repository (or only its cache with `cache_only`). `confirm_delete` gets the
/// prompt text (unless `--force`) and returns whether the user typed YES. Returns false if the
/// user declined. `log` receives borg's INFO lines.
pub fn delete_repository(
    loc: &Location,
    opts: &DeleteOptions,
    confirm: crate::security::Confirm<'_>,
    confirm_delete: &mut dyn FnMut(&str) -> bool,
    log: &mut dyn FnMut(&str),
) -> Result<bool> {
    let access = Access {
        exclusive: true,
        lock_wait: opts.lock_wait,
        lock: true,
    };
    let mut repo = common::open_repository(loc, &access)?;
    let id = repo.id();
    if !opts.cache_only {
        if opts.forced == 0 {
            // The manifest tells how many archives there are, if it can be read.
            drop(repo);
            let manifest = match common::open_with_manifest(loc, &access, &[], confirm) {
                Ok(o) => Some(o),
                Err(e) if e.msgid.as_deref() == Some("NoManifestError") => None,
                Err(e) => return Err(e),
            };
            let mut msg = Vec::new();
            match &manifest {
                Some(o) => msg.push(format!(
                    "You requested to completely DELETE the following repository *including* {} archives it contains:",
                    o.manifest.archives.len()
                )),
                None => msg.push("You requested to completely DELETE the following repository *including* all archives it may contain:".to_string()),
            }
            msg.push("-".repeat(78));
            msg.push(format!("Repository ID: {}", hex::encode(id)));
            msg.push(format!("Location: {}", loc.canonical()));
            if opts.output_list {
                msg.push(String::new());
                msg.push("Archives:".into());
                match &manifest {
                    Some(o) if o.manifest.archives.is_empty() => {
                        msg.push("This repository seems to not have any archives.".into())
                    }
                    Some(o) => {
                        for a in select::select_archives(&o.manifest, &Selection {
                            consider_checkpoints: true,
                            ..Selection::default()
                        }) {
                            msg.push(format_archive(&a));
                        }
                    }
                    None => msg.push("This repository seems to have no manifest, so we can't tell anything about its contents.".into()),
                }
            }
            msg.push("-".repeat(78));
            msg.push("Type 'YES' if you understand this and want to continue: ".into());
            let text = msg.join("\n");
            repo = match manifest {
                Some(o) => o.store.repo,
                None => common::open_repository(loc, &access)?,
            };
            if !confirm_delete(&text) {
                return Ok(false);
            }
        }
        if !opts.dry_run {
            repo.destroy()?;
            log("Repository deleted.");
            if !opts.keep_security_info {
                crate::security::SecurityDir::for_repository(&id).destroy()?;
            }
        } else {
            log("Would delete repository.");
            log(&format!(
                "Would {} security info.",
                if opts.keep_security_info {
                    "keep"
                } else {
                    "delete"
                }
            ));
        }
    }
    if !opts.dry_run {
        let dir = common::repo_cache_dir(&id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| CommandError::new(format!("{}: {e}", dir.display())))?;
        }
        log("Cache deleted.");
    } else {
        log("Would delete cache.");
    }
    Ok(true)
}
