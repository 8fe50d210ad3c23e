//! `prune`: delete the archives the retention rules do not keep (borg 1.2.4 `do_prune`,
//! FORMAT.md §10.2). The decisions come from the pure [`prune_policy`](super::prune_policy); this
//! module selects the candidates, deletes archives (chunk references through the cache, manifest
//! entry), and commits manifest, repository and cache at every `--checkpoint-interval` and at
//! the end. Prune never compacts.

use std::time::Instant;

use crate::archive::Operation;
use crate::cache::{Cache, CacheOptions, IndexStats, OpStats};
use crate::location::Location;
use crate::platform::signals;

use super::common::{self, Access, CommandError, Opened, Result};
use super::prune_policy::{self, Candidate, Decision, Rules};

/// The error borg prints when no rule is given.
pub const NO_RULE_MESSAGE: &str = "Command Error: At least one of the \"keep-within\", \"keep-last\", \"keep-secondly\", \"keep-minutely\", \"keep-hourly\", \"keep-daily\", \"keep-weekly\", \"keep-monthly\", \"keep-13weekly\", \"keep-3monthly\", or \"keep-yearly\" settings must be specified.";

/// Options of `prune`.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// The retention rules.
    pub rules: Rules,
    /// `-a/--glob-archives`, or `-P/--prefix` + `*` (placeholders already replaced).
    pub glob: Option<String>,
    /// `-n/--dry-run`.
    pub dry_run: bool,
    /// `--force`: carry on when an archive is corrupted.
    pub forced: bool,
    /// `--checkpoint-interval` in seconds (0 = only commit at the end).
    pub checkpoint_interval: u64,
    /// `--consider-part-files`: count part files in the statistics.
    pub consider_part_files: bool,
    /// Seconds to wait for the lock.
    pub lock_wait: f64,
}

/// One line of `--list` output, reported as the archives are processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    /// `Keeping archive (rule: daily #1):`, `Would prune:`, `Pruning archive (1/3):`,
    /// `Keeping checkpoint archive:`.
    pub message: String,
    /// borg's `format_archive`: name, local start time, id.
    pub archive: String,
    /// For an archive that is (or would be) pruned: how many are pruned in all (borg's
    /// "Pruning archives" progress counts these).
    pub prune_total: Option<usize>,
}

impl std::fmt::Display for ListLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<44} {}", self.message, self.archive)
    }
}

/// The outcome of `prune`.
#[derive(Debug, Clone, Default)]
pub struct PruneOutcome {
    /// What the deletions freed (positive numbers; borg shows them negated).
    pub stats: OpStats,
    /// Chunk index totals afterwards.
    pub index: IndexStats,
    /// Number of archives deleted (or that would be, in a dry run).
    pub pruned: usize,
}

/// borg's `format_archive`: `%-36s %s [%s]` with the start time in local time.
pub fn format_archive(c: &Candidate) -> String {
    let t = prune_policy::local_time(c.time_us, &chrono::Local);
    format!(
        "{:<36} {} [{}]",
        c.name,
        t.format("%a, %Y-%m-%d %H:%M:%S"),
        hex::encode(c.id)
    )
}

/// The candidates of the manifest matching `glob` (checkpoints included).
pub fn candidates(opened: &Opened, glob: Option<&str>) -> Result<Vec<Candidate>> {
    // borg's prune lists with `match_end` allowing a checkpoint suffix after the glob.
    let re = super::select::ArchiveGlob::with_checkpoint_suffix(glob)
        .map_err(|e| CommandError::new(e.to_string()))?;
    Ok(opened
        .manifest
        .archives
        .iter()
        .map(|(name, r)| Candidate {
            name: String::from_utf8_lossy(name).into_owned(),
            time_us: crate::archive::manifest::parse_timestamp(&r.time)
                .map(|t| t.timestamp_micros())
                .unwrap_or(0),
            id: r.id,
        })
        .filter(|c| re.is_match(&c.name))
        .collect())
}

/// Runs `prune` on the repository at `loc`; `list` receives every archive's line in borg's
/// order (newest first).
pub fn run(
    loc: &Location,
    opts: &PruneOptions,
    confirm: crate::security::Confirm<'_>,
    list: &mut dyn FnMut(&ListLine),
) -> Result<PruneOutcome> {
    if let Some(name) = &loc.archive {
        // prune decides by rules over the whole repository; an archive name would be ignored.
        return Err(CommandError::new(format!(
            "prune takes a repository, not an archive (\"{name}\"): No archive can be specified"
        )));
    }
    let started = Instant::now();
    let access = Access {
        exclusive: true,
        lock_wait: opts.lock_wait,
        lock: true,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Delete], confirm)?;
    if !opts.rules.any() {
        return Err(CommandError::new(NO_RULE_MESSAGE));
    }
    let cands = candidates(&opened, opts.glob.as_deref())?;
    let now_us = chrono::Utc::now().timestamp_micros();
    let decisions = prune_policy::decide(&cands, &opts.rules, now_us, &chrono::Local);
    let to_delete = decisions
        .iter()
        .filter(|(_, d)| *d == Decision::Prune)
        .count();
    let mut cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait: opts.lock_wait,
            location: Some(loc.canonical()),
            ..CacheOptions::default()
        },
    )?;
    let mut outcome = PruneOutcome::default();
    let mut last_checkpoint = started;
    let mut uncommitted = 0usize;
    // Signals are polled between archives (borg's `sig_int` in `do_prune`).
    let _graceful = signals::graceful();
    for (i, decision) in &decisions {
        if let Some(stop) = signals::stop() {
            return Err(CommandError::stopped(stop));
        }
        if signals::checkpoint_requested() {
            break;
        }
        let c = &cands[*i];
        let message = match decision {
            Decision::Prune if opts.dry_run => {
                outcome.pruned += 1;
                "Would prune:".to_string()
            }
            Decision::Prune => {
                outcome.pruned += 1;
                let name = opened
                    .manifest
                    .archives
                    .iter()
                    .find(|(_, r)| r.id == c.id)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_else(|| c.name.as_bytes().to_vec());
                super::delete::delete_archive(
                    &mut opened,
                    &mut cache,
                    &c.id,
                    &name,
                    opts.forced,
                    opts.consider_part_files,
                    &mut outcome.stats,
                )?;
                uncommitted += 1;
                if opts.checkpoint_interval > 0
                    && last_checkpoint.elapsed().as_secs_f64() > opts.checkpoint_interval as f64
                {
                    checkpoint(&mut opened, &mut cache)?;
                    last_checkpoint = Instant::now();
                    uncommitted = 0;
                }
                format!("Pruning archive ({}/{}):", outcome.pruned, to_delete)
            }
            Decision::KeepCheckpoint => "Keeping checkpoint archive:".to_string(),
            Decision::Keep { reason, number } => {
                format!("Keeping archive (rule: {reason} #{number}):")
            }
        };
        list(&ListLine {
            message,
            archive: format_archive(c),
            prune_total: (*decision == Decision::Prune).then_some(to_delete),
        });
    }
    if let Some(stop) = signals::stop() {
        return Err(CommandError::stopped(stop));
    }
    if uncommitted > 0 {
        checkpoint(&mut opened, &mut cache)?;
    }
    if signals::checkpoint_requested() {
        // The first SIGINT: what was pruned is committed (borg's checkpoint), then stop.
        return Err(CommandError::interrupted());
    }
    outcome.index = cache.stats();
    Ok(outcome)
}

/// borg's prune `checkpoint_func`: manifest, repository (no compaction), cache.
fn checkpoint(opened: &mut Opened, cache: &mut Cache) -> Result<()> {
    common::commit_manifest(opened)?;
    cache.commit(&opened.manifest)?;
    Ok(())
}
