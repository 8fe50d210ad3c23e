//! `hoard status`: which jobs live under a folder and whether each is healthy — its last run
//! did not fail and it succeeded within the allowed age. Reads only the jobs' status files
//! (no repository, no secrets), so a monitor can run it often.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::status::{self, JobStatus};

/// A job's health.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// The last run succeeded (exit 0 or 1) within the allowed age.
    Ok,
    /// The last run failed.
    Failed,
    /// No success within the allowed age (but the last run did not fail).
    Stale,
    /// No run recorded.
    NeverRun,
    /// The status file cannot be read.
    Unreadable(String),
}

impl Health {
    /// The exit code this health asks for: 0 healthy, 1 stale or never run, 2 failed or
    /// unreadable (Nagios' OK / WARNING / CRITICAL).
    pub fn exit_code(&self) -> i32 {
        match self {
            Health::Ok => 0,
            Health::Stale | Health::NeverRun => 1,
            Health::Failed | Health::Unreadable(_) => 2,
        }
    }

    /// One word for the table.
    pub fn word(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Failed => "FAILED",
            Health::Stale => "STALE",
            Health::NeverRun => "NEVER RUN",
            Health::Unreadable(_) => "UNREADABLE",
        }
    }
}

/// One job under the folder.
#[derive(Debug, Clone)]
pub struct JobHealth {
    /// The job's name (its folder's name).
    pub name: String,
    /// The job folder.
    pub dir: PathBuf,
    /// Its last recorded run.
    pub status: Option<JobStatus>,
    /// Its health.
    pub health: Health,
    /// Seconds since the last success, if there was one.
    pub success_age: Option<i64>,
}

/// The job folders under `folder`: `folder` itself when it holds a `config.yaml`, else each
/// sub-folder that does, by name.
pub fn job_dirs(folder: &Path) -> Result<Vec<PathBuf>, String> {
    if folder.join("config.yaml").is_file() {
        return Ok(vec![folder.to_path_buf()]);
    }
    let entries = std::fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.yaml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The health of one job folder at `now`, allowing `max_age` seconds since its last success.
pub fn check(dir: &Path, now: DateTime<Utc>, max_age: u64) -> JobHealth {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let (status, health, success_age) = match status::load(dir) {
        Err(e) => (None, Health::Unreadable(e), None),
        Ok(None) => (None, Health::NeverRun, None),
        Ok(Some(s)) => {
            let age = s.last_success_time().map(|t| (now - t).num_seconds());
            let health = if !s.succeeded() {
                Health::Failed
            } else if age.is_none_or(|a| a > max_age as i64) {
                Health::Stale
            } else {
                Health::Ok
            };
            (Some(s), health, age)
        }
    };
    JobHealth {
        name,
        dir: dir.to_path_buf(),
        status,
        health,
        success_age,
    }
}

/// Every job under `folder` with its health.
pub fn overview(folder: &Path, now: DateTime<Utc>, max_age: u64) -> Result<Vec<JobHealth>, String> {
    Ok(job_dirs(folder)?
        .iter()
        .map(|d| check(d, now, max_age))
        .collect())
}

/// A compact age: `45 s`, `12 min`, `5 h 10 min`, `3 d 4 h`.
pub fn format_age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86400 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {} h", s / 86400, (s % 86400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, exit_code: i32, last_success: Option<&str>) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.yaml"), "x").unwrap();
        let v = serde_json::json!({
            "job": "j", "repository": "/r", "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:01:00Z", "duration_seconds": 60.0,
            "result": status::result_word(exit_code), "exit_code": exit_code, "tries": 1,
            "last_success": last_success,
        });
        std::fs::write(dir.join(status::STATUS_FILE), v.to_string()).unwrap();
    }

    #[test]
    fn health_follows_result_and_age() {
        let d = tempfile::tempdir().unwrap();
        let now = status::parse_time("2026-01-02T00:00:00Z").unwrap();
        write(&d.path().join("a-ok"), 0, Some("2026-01-01T12:00:00Z"));
        write(&d.path().join("b-failed"), 2, Some("2026-01-01T12:00:00Z"));
        write(&d.path().join("c-stale"), 1, Some("2025-12-01T00:00:00Z"));
        std::fs::create_dir_all(d.path().join("d-never")).unwrap();
        std::fs::write(d.path().join("d-never/config.yaml"), "x").unwrap();
        std::fs::create_dir_all(d.path().join("e-not-a-job")).unwrap();
        std::fs::create_dir_all(d.path().join("f-bad")).unwrap();
        std::fs::write(d.path().join("f-bad/config.yaml"), "x").unwrap();
        std::fs::write(d.path().join("f-bad/status.json"), "{").unwrap();
        let jobs = overview(d.path(), now, 36 * 3600).unwrap();
        let got: Vec<(&str, i32)> = jobs
            .iter()
            .map(|j| (j.name.as_str(), j.health.exit_code()))
            .collect();
        assert_eq!(
            got,
            [
                ("a-ok", 0),
                ("b-failed", 2),
                ("c-stale", 1),
                ("d-never", 1),
                ("f-bad", 2)
            ]
        );
        assert_eq!(jobs[0].success_age, Some(12 * 3600));
        // A single job folder is a folder of one job.
        let one = overview(&d.path().join("a-ok"), now, 3600).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].health, Health::Stale);
    }
}
