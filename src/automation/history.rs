//! A job's run history: `history.jsonl` beside the status file, one [`JobStatus`] per line,
//! oldest first, bounded to the last [`HISTORY_RUNS`] runs (rewritten atomically on each
//! append). `hoard report JOB` draws its charts from it.

use std::path::Path;

use super::status::{self, JobStatus};

/// The run history file in a job folder.
pub const HISTORY_FILE: &str = "history.jsonl";
/// Runs kept (about a year of daily runs).
pub const HISTORY_RUNS: usize = 400;
/// The largest history file read.
const MAX_HISTORY: u64 = 16 << 20;

/// The recorded runs, oldest first. Lines that do not parse (a hand edit, a newer format)
/// are skipped.
pub fn load(dir: &Path) -> Result<Vec<JobStatus>, String> {
    let path = dir.join(HISTORY_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = status::read_bounded(&path, MAX_HISTORY)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Appends one run, dropping the oldest beyond [`HISTORY_RUNS`].
pub fn append(dir: &Path, run: &JobStatus) -> Result<(), String> {
    // An unreadable history (too large, not ours) is started afresh rather than lost runs
    // blocking every future run from being recorded.
    let mut runs = load(dir).unwrap_or_default();
    runs.push(run.clone());
    let skip = runs.len().saturating_sub(HISTORY_RUNS);
    let mut text = String::new();
    for r in &runs[skip..] {
        text.push_str(&serde_json::to_string(r).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    status::write_atomic(&dir.join(HISTORY_FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: i32) -> JobStatus {
        JobStatus {
            job: "j".into(),
            repository: "/r".into(),
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-01T00:01:00Z".into(),
            duration_seconds: 60.0,
            result: "success".into(),
            exit_code: n,
            tries: 1,
            steps: Vec::new(),
            archive: Some(format!("a{n}")),
            sizes: None,
            archive_count: None,
            repository_size: None,
            repository_original_size: None,
            last_success: None,
            verification_coverage: None,
            verification_coverage_days: None,
            reason: None,
        }
    }

    #[test]
    fn history_keeps_the_newest_runs() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_empty());
        for n in 0..(HISTORY_RUNS as i32 + 5) {
            append(d.path(), &run(n)).unwrap();
        }
        let runs = load(d.path()).unwrap();
        assert_eq!(runs.len(), HISTORY_RUNS);
        assert_eq!(runs[0].archive.as_deref(), Some("a5"));
        assert_eq!(
            runs.last().unwrap().archive.as_deref(),
            Some(format!("a{}", HISTORY_RUNS + 4).as_str())
        );
        // A damaged line is skipped, the rest still reads.
        let p = d.path().join(HISTORY_FILE);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{{not json\n{text}")).unwrap();
        assert_eq!(load(d.path()).unwrap().len(), HISTORY_RUNS);
    }
}
