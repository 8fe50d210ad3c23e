//! `hoard prune`: arguments and output of [`commands::prune`](crate::commands::prune).

use std::io::Write;

use clap::Args;

use super::options::CommonOptions;
use super::progress_view::{Display, View};
use super::{confirm, log, output, repo_location, EXIT_SUCCESS};
use crate::commands::prune::PruneOptions;
use crate::commands::prune_policy::{parse_interval, PeriodRule, Rules};
use crate::commands::{self, CommandError};
use crate::progress::Percent;

fn int_arg(s: &str) -> Result<i64, String> {
    crate::python::int(s).ok_or_else(|| format!("invalid int value: '{s}'"))
}

/// `prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// repository to prune
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// do not change repository
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// force pruning of corrupted archives, use ``--force --force`` in case ``--force`` does not work.
    #[arg(long)]
    pub force: bool,
    /// print statistics for the deleted archive
    #[arg(short = 's', long)]
    pub stats: bool,
    /// print statistics for the deleted archive, without the repository totals (faster)
    #[arg(long = "quick-stats")]
    pub quick_stats: bool,
    /// output verbose list of archives it keeps/prunes
    #[arg(long)]
    pub list: bool,
    /// keep all archives within this time interval
    #[arg(long = "keep-within", value_name = "INTERVAL", value_parser = parse_interval)]
    pub keep_within: Option<i64>,
    /// number of secondly archives to keep
    #[arg(long = "keep-last", visible_alias = "keep-secondly", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_secondly: Option<i64>,
    /// number of minutely archives to keep
    #[arg(long = "keep-minutely", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_minutely: Option<i64>,
    /// number of hourly archives to keep
    #[arg(short = 'H', long = "keep-hourly", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_hourly: Option<i64>,
    /// number of daily archives to keep
    #[arg(short = 'd', long = "keep-daily", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_daily: Option<i64>,
    /// number of weekly archives to keep
    #[arg(short = 'w', long = "keep-weekly", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_weekly: Option<i64>,
    /// number of monthly archives to keep
    #[arg(short = 'm', long = "keep-monthly", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_monthly: Option<i64>,
    /// number of quarterly archives to keep (13 week strategy)
    #[arg(long = "keep-13weekly", value_name = "QUARTERLY_13WEEKLY", value_parser = int_arg, allow_negative_numbers = true, conflicts_with = "keep_3monthly")]
    pub keep_13weekly: Option<i64>,
    /// number of quarterly archives to keep (3 month strategy)
    #[arg(long = "keep-3monthly", value_name = "QUARTERLY_3MONTHLY", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_3monthly: Option<i64>,
    /// number of yearly archives to keep
    #[arg(short = 'y', long = "keep-yearly", value_parser = int_arg, allow_negative_numbers = true)]
    pub keep_yearly: Option<i64>,
    /// work slower, but using less space
    #[arg(long = "save-space")]
    pub save_space: bool,
    /// write checkpoint every SECONDS seconds (Default: 1800)
    #[arg(
        short = 'c',
        long = "checkpoint-interval",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub checkpoint_interval: u64,
    /// only consider archive names starting with this prefix. (deprecated)
    #[arg(help_heading = "Archive filters")]
    #[arg(
        short = 'P',
        long,
        value_name = "PREFIX",
        conflicts_with = "glob_archives",
        value_parser = super::options::placeholder_spec
    )]
    pub prefix: Option<String>,
    /// only consider archive names matching the glob. sh: rules apply, see "borg help patterns".
    #[arg(help_heading = "Archive filters")]
    #[arg(
        short = 'a',
        long = "glob-archives",
        value_name = "GLOB",
        value_parser = super::options::placeholder_spec
    )]
    pub glob_archives: Option<String>,
}

/// Writes a line of an output logger that `--list` / `--stats` switch to INFO (borg's
/// `_setup_implied_logging`): shown whatever the general log level.
fn implied_info(name: &str, message: &str) {
    if log::enabled(log::Level::Info) || log::json_enabled() {
        // With --log-json borg still emits these as INFO records.
        if log::enabled(log::Level::Info) {
            log::log(log::Level::Info, name, None, message);
            return;
        }
        let obj = serde_json::json!({
            "type": "log_message",
            "time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            "message": message,
            "levelname": "INFO",
            "name": name,
        });
        let _ = writeln!(std::io::stderr().lock(), "{obj}");
        return;
    }
    let mut err = std::io::stderr().lock();
    log::clear_line(&mut err);
    let _ = writeln!(err, "{message}");
}

/// Runs `prune`.
pub fn run(mut a: PruneArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    super::options::stats_exclusive(a.stats, a.quick_stats)?;
    let loc = repo_location(a.location.as_deref(), common)?;
    if a.dry_run && a.stats {
        log::warning("Ignoring --stats. It is not supported when using --dry-run.");
        a.stats = false;
    }
    if a.dry_run && a.quick_stats {
        log::warning("Ignoring --quick-stats. It is not supported when using --dry-run.");
        a.quick_stats = false;
    }
    let mut rules = Rules {
        within_hours: a.keep_within,
        ..Rules::default()
    };
    for (rule, n) in [
        (PeriodRule::Secondly, a.keep_secondly),
        (PeriodRule::Minutely, a.keep_minutely),
        (PeriodRule::Hourly, a.keep_hourly),
        (PeriodRule::Daily, a.keep_daily),
        (PeriodRule::Weekly, a.keep_weekly),
        (PeriodRule::Monthly, a.keep_monthly),
        (PeriodRule::Quarterly13Weekly, a.keep_13weekly),
        (PeriodRule::Quarterly3Monthly, a.keep_3monthly),
        (PeriodRule::Yearly, a.keep_yearly),
    ] {
        // borg's defaults are 0, which its rule loop still runs (and which keeps nothing).
        rules.set(rule, Some(n.unwrap_or(0)));
    }
    // placeholders were replaced when the arguments were parsed (borg's GlobSpec/PrefixSpec)
    let glob = match (&a.prefix, &a.glob_archives) {
        (Some(p), _) => Some(format!("{p}*")),
        (None, Some(g)) => Some(g.clone()),
        (None, None) => None,
    };
    let opts = PruneOptions {
        rules,
        glob,
        dry_run: a.dry_run,
        forced: a.force,
        checkpoint_interval: a.checkpoint_interval,
        consider_part_files: common.consider_part_files,
        lock_wait: common.lock_wait,
    };
    let show_list = a.list;
    // borg's "Pruning archives  50%" indicator (msgid `prune`, a step each 5%)
    let view = View::new(Display::for_process(common.progress), common.iec);
    let mut progress = Percent::new(0, 5.0, "prune", |p| format!("Pruning archives {p:3.0}%"));
    let outcome = commands::prune::run(&loc, &opts, &confirm, &mut |line| {
        if let Some(total) = line.prune_total {
            progress.set_total(total as u64);
            progress.show(None, &mut |ev| view.event(ev));
        }
        if show_list {
            implied_info("borg.output.list", &line.to_string());
        }
    })?;
    progress.finish(&mut |ev| view.event(ev));
    if a.stats || a.quick_stats {
        let size = |v: u64| output::format_file_size(-(v as i128), common.iec);
        let pos = |v: u64| output::format_file_size(v as i128, common.iec);
        let s = outcome.stats;
        let i = outcome.index;
        let dashes = "-".repeat(78);
        let mut text = format!(
            "{dashes}\n                       Original size      Compressed size    Deduplicated size\n{:<15} {:>20} {:>20} {:>20}",
            "Deleted data:",
            size(s.osize),
            size(s.csize),
            size(s.ucsize),
        );
        if a.stats {
            text.push_str(&format!(
                "\nAll archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}",
                pos(i.total_size),
                pos(i.total_csize),
                pos(i.unique_csize),
                i.total_unique_chunks,
                i.total_chunks,
            ));
        }
        text.push('\n');
        text.push_str(&dashes);
        implied_info("borg.output.stats", &text);
    }
    Ok(EXIT_SUCCESS)
}
