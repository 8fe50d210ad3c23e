//! `hoard status [FOLDER]`: the jobs under a folder, one line each, and an exit code a
//! monitor can act on ([`automation::health`](crate::automation::health) decides).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::options::CommonOptions;
use crate::automation::{config, health, status};
use crate::commands::CommandError;

/// `status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// a folder of job folders, or one job folder (default: where `hoard run` looks for jobs,
    /// $HOARD_CONFIG_DIR or ~/backup_scripts)
    #[arg(value_name = "FOLDER")]
    pub folder: Option<PathBuf>,
    /// a job is stale when its last success is older than this (e.g. 36h, 2d, 90m)
    #[arg(long = "max-age", value_name = "AGE", default_value = "36h")]
    pub max_age: String,
    /// print the jobs as JSON
    #[arg(long)]
    pub json: bool,
}

/// Prints the jobs and returns 0 (all healthy), 1 (a job is stale or never ran) or 2 (a job
/// failed last time, or its status cannot be read).
pub fn run(a: StatusArgs, _common: &CommonOptions) -> Result<i32, CommandError> {
    let max_age = config::parse_duration(&a.max_age)
        .map_err(|e| CommandError::new(format!("argument --max-age: {e}")))?;
    let folder = match a.folder {
        Some(f) => f,
        None => config::config_root().map_err(|e| CommandError::new(e.0))?,
    };
    let now = chrono::Utc::now();
    let jobs = health::overview(&folder, now, max_age).map_err(CommandError::new)?;
    if jobs.is_empty() {
        return Err(CommandError::new(format!(
            "{}: no job folders (folders with a config.yaml) found",
            folder.display()
        )));
    }
    let code = jobs.iter().map(|j| j.health.exit_code()).max().unwrap_or(0);
    if a.json {
        let v: Vec<_> = jobs.iter().map(job_json).collect();
        println!("{}", super::output::json_pretty(&json!(v)));
        return Ok(code);
    }
    let rows: Vec<[String; 8]> = jobs.iter().map(row).collect();
    let head = [
        "JOB",
        "LAST SUCCESS",
        "AGE",
        "LAST RESULT",
        "ARCHIVES",
        "REPOSITORY",
        "VERIFIED",
        "STATE",
    ];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out
    };
    println!("{}", line(&head.map(String::from)));
    for r in &rows {
        println!("{}", line(r));
    }
    for j in &jobs {
        if let health::Health::Unreadable(e) = &j.health {
            super::log::warning(e);
        }
    }
    Ok(code)
}

fn row(j: &health::JobHealth) -> [String; 8] {
    let dash = || "-".to_string();
    let s = j.status.as_ref();
    let last_success = s
        .and_then(|s| s.last_success_time())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(dash);
    [
        j.name.clone(),
        last_success,
        j.success_age.map(health::format_age).unwrap_or_else(dash),
        s.map(|s| s.result.clone()).unwrap_or_else(dash),
        s.and_then(|s| s.archive_count)
            .map(|n| n.to_string())
            .unwrap_or_else(dash),
        s.and_then(|s| s.repository_size)
            .map(status::format_size)
            .unwrap_or_else(dash),
        // `verified 43% (7d)` without the word (the column says it)
        s.and_then(|s| s.coverage_text())
            .map(|t| t.trim_start_matches("verified ").to_string())
            .unwrap_or_else(dash),
        j.health.word().to_string(),
    ]
}

fn job_json(j: &health::JobHealth) -> serde_json::Value {
    let s = j.status.as_ref();
    json!({
        "job": j.name,
        "folder": j.dir.to_string_lossy(),
        "state": j.health.word().to_lowercase(),
        "exit_code": j.health.exit_code(),
        "last_success": s.and_then(|s| s.last_success.clone()),
        "last_success_age_seconds": j.success_age,
        "last_result": s.map(|s| s.result.clone()),
        "last_end": s.map(|s| s.end.clone()),
        "archive_count": s.and_then(|s| s.archive_count),
        "repository_size": s.and_then(|s| s.repository_size),
        "verification_coverage": s.and_then(|s| s.verification_coverage),
        "verification_coverage_days": s.and_then(|s| s.verification_coverage_days),
        "reason": s.and_then(|s| s.reason.clone()),
        "error": match &j.health {
            health::Health::Unreadable(e) => Some(e.clone()),
            _ => None,
        },
    })
}
