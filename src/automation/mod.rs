//! Automation: `hoard run` (configured backup jobs with retries, checks, hooks and monitoring)
//! and `hoard schedule` (crontab / systemd timer for a job). Layout and config follow the
//! classic `~/backup_scripts/<job>/` scripts borg users run from cron.

pub mod config;
pub mod health;
pub mod history;
pub mod job;
pub mod metrics;
pub mod ping;
pub mod record;
pub mod report;
pub mod schedule;
pub mod status;
pub mod step;
