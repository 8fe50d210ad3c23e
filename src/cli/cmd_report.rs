//! `hoard report REPO|JOB --html FILE`: picks the source (a job folder or name, else a
//! repository), gathers its figures and writes the page that
//! [`automation::report`](crate::automation::report) renders.

use std::path::{Path, PathBuf};

use clap::Args;

use super::options::CommonOptions;
use crate::automation::report::Report;
use crate::automation::{config, history, status};
use crate::commands::CommandError;

/// `report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// a job (name under ~/backup_scripts or $HOARD_CONFIG_DIR, job folder, or its
    /// config.yaml) or a repository (default: $BORG_REPO)
    #[arg(value_name = "REPOSITORY_OR_JOB")]
    pub target: Option<String>,
    /// write the HTML report to FILE ("-" for stdout)
    #[arg(long, value_name = "FILE")]
    pub html: String,
}

/// The job folder `target` names, if it names one.
fn job_dir(target: &str) -> Option<PathBuf> {
    let p = Path::new(target);
    if p.is_dir() && p.join("config.yaml").is_file() {
        return Some(p.to_path_buf());
    }
    if p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        return p.parent().map(Path::to_path_buf);
    }
    // A bare name is a job under the jobs folder when one exists there (a repository path
    // of the same name would be written `./NAME`).
    if !target.contains('/') && !target.contains(':') {
        let dir = config::config_root().ok()?.join(target);
        if dir.join("config.yaml").is_file() {
            return Some(dir);
        }
    }
    None
}

/// Writes the report; returns 0.
pub fn run(
    a: ReportArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let now = chrono::Local::now().naive_local();
    let report = match a.target.as_deref().and_then(job_dir) {
        Some(dir) => {
            let runs = history::load(&dir).map_err(CommandError::new)?;
            let name = dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".into());
            if runs.is_empty() {
                super::log::warning(&format!(
                    "job {name}: no runs recorded yet ({} is missing or empty)",
                    dir.join(history::HISTORY_FILE).display()
                ));
            }
            Report::from_history(&name, &runs, now)
        }
        None => {
            let loc = crate::location::Location::parse_env(a.target.as_deref())?;
            if loc.archive.is_some() {
                return Err(CommandError::new(format!(
                    "argument REPOSITORY_OR_JOB: \"{}\": No archive can be specified",
                    a.target.as_deref().unwrap_or_default()
                )));
            }
            let data = crate::commands::report::repo_report(&loc, common.lock_spec(), confirm)?;
            Report::from_repo(&data, now)
        }
    };
    let html = report.to_html();
    if a.html == "-" {
        use std::io::Write;
        let _ = std::io::stdout().write_all(html.as_bytes());
    } else {
        status::write_atomic(Path::new(&a.html), html.as_bytes()).map_err(CommandError::new)?;
    }
    Ok(super::EXIT_SUCCESS)
}
