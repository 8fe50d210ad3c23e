//! What a finished run leaves behind: the status file, a line of run history and the
//! metrics file, from the facts of the run, the create step's statistics and the repository's
//! totals. Kept apart from [`super::status`] (the status file's contents, read by `history`,
//! `metrics`, `hoard status` and the report) so the writers depend on it and not the other
//! way round.

use std::path::Path;

use super::config::JobConfig;
use super::status::{
    format_time, load, read_bounded, result_word, write_atomic, ArchiveSizes, JobId, JobStatus,
    RunFacts, CREATE_STATS_FILE, MAX_FILE, STATUS_FILE,
};
use super::{history, metrics};

/// The create step's `--json` statistics for `archive`, from [`CREATE_STATS_FILE`].
fn created_sizes(dir: &Path, archive: Option<&str>) -> Option<ArchiveSizes> {
    let path = dir.join(CREATE_STATS_FILE);
    let text = read_bounded(&path, MAX_FILE).ok()?;
    let _ = std::fs::remove_file(&path);
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let a = &v["archive"];
    if a["name"].as_str() != archive {
        return None;
    }
    let s = &a["stats"];
    Some(ArchiveSizes {
        files: s["nfiles"].as_u64()?,
        original: s["original_size"].as_u64()?,
        compressed: s["compressed_size"].as_u64()?,
        deduplicated: s["deduplicated_size"].as_u64()?,
        duration_seconds: a["duration"].as_f64().unwrap_or(0.0),
    })
}

/// Records a finished run: the status file, the run history and (with `metrics`, or the
/// job's `metrics:`) the Prometheus file. Returns the status and the problems met (each one
/// line for the job log; none of them changes the run's exit code).
pub fn record(
    cfg: &JobConfig,
    env: &crate::options::Env,
    facts: RunFacts,
    metrics_file: Option<&Path>,
) -> (JobStatus, Vec<String>) {
    let mut problems = Vec::new();
    let previous = match load(&cfg.dir) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("previous status ignored: {e}"));
            None
        }
    };
    let sizes = created_sizes(&cfg.dir, facts.archive.as_deref());
    // The repository is opened with the job's own environment (its passphrase command,
    // key file and ssh command), as the steps were.
    let options = crate::options::RepoOptions {
        env: env.clone(),
        ..Default::default()
    }
    .shared();
    let totals = crate::location::Location::parse_with(Some(&cfg.target), &options)
        .map_err(|e| e.to_string())
        .and_then(|loc| {
            let lock = crate::commands::common::LockSpec {
                wait: 5.0,
                lock: true,
            };
            crate::commands::report::repo_totals(&loc, lock, &|_, _| false)
                .map_err(|e| e.to_string())
        });
    let totals = match totals {
        Ok(t) => Some(t),
        Err(e) => {
            if facts.exit_code < 2 {
                problems.push(format!("repository totals not recorded: {e}"));
            }
            None
        }
    };
    // How much of the repository's data was verified recently, for a job that verifies
    // data (from the client's verification record; the repository is only listed).
    let verification_coverage = match &cfg.check {
        Some(c) if c.verify_data => {
            let coverage = crate::location::Location::parse_with(Some(&cfg.target), &options)
                .map_err(|e| e.to_string())
                .and_then(|loc| {
                    let lock = crate::commands::common::LockSpec {
                        wait: 5.0,
                        lock: true,
                    };
                    crate::commands::check::coverage(&loc, lock, c.coverage_days)
                        .map_err(|e| e.to_string())
                });
            match coverage {
                Ok(cov) => Some((cov.ratio(), c.coverage_days)),
                Err(e) => {
                    if facts.exit_code < 2 {
                        problems.push(format!("verification coverage not recorded: {e}"));
                    }
                    None
                }
            }
        }
        _ => None,
    };
    let job = JobId {
        name: &cfg.name,
        dir: &cfg.dir,
        repository: &cfg.target,
        metrics: metrics_file.or(cfg.metrics.as_deref()),
    };
    let status = status_of(job, previous, facts, sizes, totals, verification_coverage);
    write_files(job, &status, &mut problems);
    (status, problems)
}

/// Records a run that failed before its steps (a refused start) or was ended by a signal:
/// the status file, the history and the metrics like [`record`], without opening the
/// repository (its figures are left out).
pub fn record_refused(job: JobId<'_>, facts: RunFacts) -> (JobStatus, Vec<String>) {
    let mut problems = Vec::new();
    let previous = match load(job.dir) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("previous status ignored: {e}"));
            None
        }
    };
    let status = status_of(job, previous, facts, None, None, None);
    write_files(job, &status, &mut problems);
    (status, problems)
}

/// The status of a finished run.
fn status_of(
    job: JobId<'_>,
    previous: Option<JobStatus>,
    facts: RunFacts,
    sizes: Option<ArchiveSizes>,
    totals: Option<crate::commands::report::RepoTotals>,
    verification_coverage: Option<(f64, u64)>,
) -> JobStatus {
    let end = format_time(facts.ended);
    let succeeded = (0..2).contains(&facts.exit_code);
    let tries = facts
        .steps
        .iter()
        .find(|s| s.name == "create")
        .map(|s| s.tries)
        .unwrap_or_else(|| facts.steps.iter().map(|s| s.tries).max().unwrap_or(0));
    JobStatus {
        job: job.name.to_string(),
        repository: job.repository.to_string(),
        start: format_time(facts.started),
        end: end.clone(),
        duration_seconds: (facts.ended - facts.started)
            .num_microseconds()
            .map_or(0.0, |us| us as f64 / 1e6),
        result: result_word(facts.exit_code).into(),
        exit_code: facts.exit_code,
        tries,
        steps: facts.steps,
        archive: facts.archive,
        sizes,
        archive_count: totals.map(|t| t.archives),
        repository_size: totals.map(|t| t.stored_size),
        repository_original_size: totals.map(|t| t.original_size),
        last_success: if succeeded {
            Some(end)
        } else {
            previous.and_then(|p| p.last_success)
        },
        verification_coverage: verification_coverage.map(|c| c.0),
        verification_coverage_days: verification_coverage.map(|c| c.1),
        reason: facts.reason,
    }
}

/// Writes the status file, appends to the history and writes the metrics file.
fn write_files(job: JobId<'_>, status: &JobStatus, problems: &mut Vec<String>) {
    let text = serde_json::to_string_pretty(status).unwrap_or_default() + "\n";
    if let Err(e) = write_atomic(&job.dir.join(STATUS_FILE), text.as_bytes()) {
        problems.push(format!("status file not written: {e}"));
    }
    if let Err(e) = history::append(job.dir, status) {
        problems.push(format!("run history not written: {e}"));
    }
    if let Some(path) = job.metrics {
        let text = metrics::render(status);
        if let Err(e) = write_atomic(path, text.as_bytes()) {
            problems.push(format!("metrics file not written: {e}"));
        }
    }
}
