//! A job's status: what its last run did (start, end, result, exit code, tries, archive,
//! sizes, the repository's archive count and size, the last successful run), kept as
//! `status.json` in the job folder, and the one summary line the run ends with. Owns the
//! status file and the atomic write every job file uses; never touches the repository except
//! through `commands::report::repo_totals`.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The status file in a job folder.
pub const STATUS_FILE: &str = "status.json";
/// Where the create step leaves its `--json` statistics for the job (hidden create option
/// [`CREATE_STATS_OPTION`]); read and removed at the end of the run.
pub const CREATE_STATS_FILE: &str = ".hoard-create-stats.json";
/// The create option that writes the `--json` statistics document to a file.
pub const CREATE_STATS_OPTION: &str = "--hoard-stats-file";
/// The largest status or statistics file read (they are a few hundred bytes).
pub(super) const MAX_FILE: u64 = 1 << 20;

/// What the new archive holds, from the create step's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveSizes {
    /// Regular files.
    pub files: u64,
    /// Original size of the files' content, bytes.
    pub original: u64,
    /// Compressed size, bytes.
    pub compressed: u64,
    /// Deduplicated size (what this archive added to the repository), bytes.
    pub deduplicated: u64,
    /// Seconds between the archive's start and end.
    pub duration_seconds: f64,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFacts {
    /// `create`, `prune`, `compact` or `check`.
    pub name: String,
    /// `success`, `warning` or `failure`.
    pub result: String,
    /// The step's exit code.
    pub exit_code: i32,
    /// Attempts used.
    pub tries: u32,
}

/// The status file's content: one run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's name.
    pub job: String,
    /// The repository.
    pub repository: String,
    /// Start of the run (RFC 3339, UTC).
    pub start: String,
    /// End of the run (RFC 3339, UTC).
    pub end: String,
    /// Seconds from start to end.
    pub duration_seconds: f64,
    /// `success`, `warning` (exit 1: the archive was made) or `failure`.
    pub result: String,
    /// The run's exit code (0, 1, 2, or a signal's 128+n).
    pub exit_code: i32,
    /// Attempts the backup (create) used; without a create step, the most any step used.
    pub tries: u32,
    /// Every step that ran.
    #[serde(default)]
    pub steps: Vec<StepFacts>,
    /// The archive this run made (or tried to make).
    #[serde(default)]
    pub archive: Option<String>,
    /// The new archive's statistics, when one was made.
    #[serde(default)]
    pub sizes: Option<ArchiveSizes>,
    /// Archives in the repository after the run (when it could be read).
    #[serde(default)]
    pub archive_count: Option<u64>,
    /// The repository's stored size after the run, bytes (when it could be read).
    #[serde(default)]
    pub repository_size: Option<u64>,
    /// Sum of the original sizes of all archives after the run, bytes.
    #[serde(default)]
    pub repository_original_size: Option<u64>,
    /// End of the last run with exit code 0 or 1 (this one or an earlier one).
    #[serde(default)]
    pub last_success: Option<String>,
    /// Share (0..1) of the repository's data verified recently, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_coverage: Option<f64>,
    /// The window of [`Self::verification_coverage`], days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_coverage_days: Option<u64>,
    /// Why a run failed before its steps (a refused start) or was ended by a signal: the
    /// job log's error line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl JobStatus {
    /// True for exit codes 0 and 1.
    pub fn succeeded(&self) -> bool {
        (0..2).contains(&self.exit_code)
    }

    /// [`Self::last_success`] as a time.
    pub fn last_success_time(&self) -> Option<DateTime<Utc>> {
        self.last_success.as_deref().and_then(parse_time)
    }

    /// [`Self::end`] as a time.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.end)
    }

    /// The verification coverage for people: `verified 43% (7d)` (rounded down, so that
    /// 100% means all of it).
    pub fn coverage_text(&self) -> Option<String> {
        let c = self.verification_coverage.filter(|c| c.is_finite())?;
        let pct = (c.clamp(0.0, 1.0) * 100.0).floor();
        Some(match self.verification_coverage_days {
            Some(d) => format!("verified {pct:.0}% ({d}d)"),
            None => format!("verified {pct:.0}%"),
        })
    }

    /// [`Self::start`] as a time.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.start)
    }
}

/// Formats a time as the status files do (RFC 3339, UTC, seconds with microseconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a time written by [`format_time`] (any RFC 3339 time).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The word for an exit code: `success`, `warning` or `failure`.
pub fn result_word(code: i32) -> &'static str {
    match code {
        0 => "success",
        1 => "warning",
        _ => "failure",
    }
}

/// What a finished run hands to [`record`].
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// When the run started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: DateTime<Utc>,
    /// Its exit code.
    pub exit_code: i32,
    /// The steps that ran.
    pub steps: Vec<StepFacts>,
    /// The archive name used, if any.
    pub archive: Option<String>,
    /// Why the run failed before its steps or was ended by a signal (one line).
    pub reason: Option<String>,
}

/// Which job a run that never got to its steps belongs to (see [`record_refused`]).
#[derive(Debug, Clone, Copy)]
pub struct JobId<'a> {
    /// The job's name.
    pub name: &'a str,
    /// The job folder (the status file and history go here).
    pub dir: &'a Path,
    /// The repository, as far as known (empty when the config could not be read).
    pub repository: &'a str,
    /// The Prometheus file to write, if any.
    pub metrics: Option<&'a Path>,
}

/// Reads a small file, refusing anything larger than `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > limit {
        return Err(format!(
            "{}: larger than {limit} bytes; not a hoard file",
            path.display()
        ));
    }
    Ok(text)
}

/// Writes `data` to `path` atomically: a temporary file beside it (mode 644), flushed to
/// disk, then renamed over `path`, so a reader (node_exporter, `hoard status`) sees the old
/// or the new content, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

/// Loads a job folder's status file; `Ok(None)` when the job has never recorded a run.
pub fn load(dir: &Path) -> Result<Option<JobStatus>, String> {
    let path = dir.join(STATUS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_bounded(&path, MAX_FILE)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Removes a statistics file left by an earlier run (before create runs).
pub fn forget_create_stats(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(CREATE_STATS_FILE));
}

/// A byte count in borg's style (powers of 1000: `1.23 MB`).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// A duration in seconds for people: `0.42 s`, `3 min 05 s`, `2 h 03 min`.
pub fn format_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 60.0 {
        return format!("{secs:.2} s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else if s < 86400 * 2 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {:02} h", s / 86400, (s % 86400) / 3600)
    }
}

/// The line a run ends with: `Summary: job NAME: RESULT, archive …, N files, original …,
/// compressed …, deduplicated …, duration …, tries N`.
pub fn summary_line(s: &JobStatus) -> String {
    let mut parts = vec![format!("Summary: job {}: {}", s.job, s.result)];
    if s.exit_code >= 2 {
        parts[0].push_str(&format!(" (exit {})", s.exit_code));
    }
    match (&s.archive, &s.sizes) {
        (Some(a), Some(z)) => {
            parts.push(format!("archive {a}"));
            parts.push(format!("{} files", z.files));
            parts.push(format!("original {}", format_size(z.original)));
            parts.push(format!("compressed {}", format_size(z.compressed)));
            parts.push(format!("deduplicated {}", format_size(z.deduplicated)));
        }
        _ => parts.push("no archive".into()),
    }
    parts.push(format!("duration {}", format_duration(s.duration_seconds)));
    parts.push(format!("tries {}", s.tries));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(1_234_567), "1.23 MB");
        assert_eq!(format_duration(0.5), "0.50 s");
        assert_eq!(format_duration(185.0), "3 min 05 s");
        assert_eq!(format_duration(7380.0), "2 h 03 min");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.prom");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let e = write_atomic(&d.path().join("no/such/dir/m.prom"), b"x").unwrap_err();
        assert!(e.contains("no/such/dir/m.prom"), "{e}");
    }

    #[test]
    fn times_round_trip() {
        let t = DateTime::from_timestamp(1_765_068_111, 123_456_000).unwrap();
        assert_eq!(format_time(t), "2025-12-07T00:41:51.123456Z");
        assert_eq!(parse_time(&format_time(t)), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }
}
