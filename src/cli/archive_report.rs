//! The output of the commands that write an archive (`create`, `import-tar`, `recreate`):
//! the `--list` status lines and warnings ([`ArchiveReporter`]), the archive progress
//! ([`ArchiveProgress`]: borg's `archive_progress` records and `O C D N path` line, hoard's
//! terminal line), the `--stats` block ([`print_stats`]) and the `--json` document
//! ([`json_output`]).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::commands::create::{self, ArchiveStats, ArchiveSummary, Reporter};
use crate::progress::eta::{CreateEstimate, Previous};
use crate::progress::Unit;

use super::log;
use super::output::{self, format_timedelta, py_float};
use super::progress_view::{Display, View};

/// Prints an archive writer's `--list` lines, warnings and progress (`create`, `import-tar`).
pub struct ArchiveReporter {
    /// `--list` given: status lines are printed.
    pub list: bool,
    /// `--filter`: only these status characters are listed.
    pub filter: Option<String>,
    /// The archive progress (`-p`, hoard's terminal line).
    pub progress: ArchiveProgress,
}

impl ArchiveReporter {
    /// A reporter; progress shows when `progress` (`-p`, or hoard's line on a terminal) as
    /// [`Display::for_process`] decides.
    pub fn new(list: bool, filter: Option<String>, progress: bool, iec: bool) -> Self {
        let display = if progress {
            Display::for_process(true)
        } else {
            Display::Off
        };
        ArchiveReporter {
            list,
            filter,
            progress: ArchiveProgress::new(View::new(display, iec), iec),
        }
    }
}

impl Reporter for ArchiveReporter {
    fn file_status(&mut self, status: char, path: &[u8]) {
        self.progress.status(status);
        list_status(self.list, self.filter.as_deref(), status, path);
    }

    fn warning(&mut self, message: &str) {
        log::warning(message);
    }

    fn warning_class(&mut self, class: &'static str, message: &str) {
        log::log(log::Level::Warning, "borg.archiver", Some(class), message);
    }

    fn info(&mut self, message: &str) {
        log::info(message);
    }

    fn previous(&mut self, previous: Previous) {
        self.progress.previous(previous);
    }

    fn item_added(&mut self, size: u64) {
        self.progress.item_added(size);
    }

    fn progress(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        self.progress.show(stats, path);
    }
}

/// A file's `--list` line (`create`, `import-tar`, `recreate`): `STATUS PATH` on
/// `borg.output.list`, or a `file_status` record with `--log-json`; nothing unless `list`,
/// or when `filter` (`--filter`) leaves the status out.
pub fn list_status(list: bool, filter: Option<&str>, status: char, path: &[u8]) {
    if !list || filter.is_some_and(|f| !f.contains(status)) {
        return;
    }
    let path = create::remove_surrogates(path);
    if log::json_enabled() {
        // json.dumps keeps borg's insertion order here: type, status, path.
        eprintln!(
            "{{\"type\": \"file_status\", \"status\": {}, \"path\": {}}}",
            output::json_line(&json!(status.to_string())),
            output::json_line(&json!(path))
        );
    } else {
        log::output_line("borg.output.list", &format!("{status} {path}"), "\n");
    }
}

/// The progress of an archive being written (`create`, `recreate`, `import-tar`): with `-p`
/// borg's `archive_progress` records or its `O C D N path` line (every 0.2 s, as borg), on a
/// terminal hoard's line with the total, rate and time to go. `create`'s total is estimated
/// from the previous archive ([`CreateEstimate`], shown with `~`); `recreate`'s is the source
/// archive's size. With `--log-json` the records carry hoard's figures as extra keys
/// (`estimated_original_size`, `estimated_nfiles`, `eta_seconds`, `bytes_per_second`).
pub struct ArchiveProgress {
    view: Arc<View>,
    iec: bool,
    /// Seconds between borg's records (borg: 0.2).
    every: f64,
    last: Option<Instant>,
    estimate: Option<CreateEstimate>,
    /// A known total (original size), instead of an estimate.
    total: Option<u64>,
}

/// The operation number of an archive's progress in hoard's figures (borg's indicators
/// count from 1; `archive_progress` records have none).
const ARCHIVE_OPERATION: u32 = 0;

impl ArchiveProgress {
    /// Progress shown on `view`.
    pub fn new(view: Arc<View>, iec: bool) -> Self {
        ArchiveProgress {
            view,
            iec,
            every: 0.2,
            last: None,
            estimate: None,
            total: None,
        }
    }

    /// Sets the seconds between borg's records from `HOARD_PROGRESS_INTERVAL` in `env` (a
    /// test knob: 0 writes a record after every item; borg's 0.2 otherwise).
    pub fn interval_from(&mut self, env: &crate::options::Env) {
        if let Some(v) = env
            .nonempty("HOARD_PROGRESS_INTERVAL")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            self.every = v;
        }
    }

    /// The previous archive of the same name family: the estimate starts from it.
    pub fn previous(&mut self, previous: Previous) {
        self.estimate = Some(CreateEstimate::new(previous));
    }

    /// A known total original size (`recreate`: the source archive's).
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
        self.last = None;
    }

    /// A file's status letter (for the estimate).
    pub fn status(&mut self, status: char) {
        if let Some(e) = self.estimate.as_mut() {
            e.status(status);
        }
    }

    /// An item added, its content `size` bytes (for the estimate).
    pub fn item_added(&mut self, size: u64) {
        if let Some(e) = self.estimate.as_mut() {
            e.item(size);
        }
    }

    /// The estimated or known total: (original size, regular files; 0 when unknown).
    fn totals(&self, stats: &ArchiveStats) -> Option<(u64, u64)> {
        if let Some(t) = self.total {
            return Some((t.max(stats.osize), 0));
        }
        let e = self.estimate.as_ref()?.estimate(stats.osize, stats.nfiles);
        Some((e.bytes, e.files))
    }

    /// Progress after an item or a chunk (`path` None: the end).
    pub fn show(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        let display = self.view.display();
        match display {
            Display::Off => return,
            Display::Terminal => return self.terminal(stats, path),
            Display::Borg | Display::Json => {}
        }
        let every = self.every;
        let due = self.last.is_none_or(|t| t.elapsed().as_secs_f64() >= every);
        if path.is_some() && !due {
            return;
        }
        self.last = Some(Instant::now());
        let size = |v: u64| output::format_file_size(v as i128, self.iec);
        let mut err = std::io::stderr().lock();
        if display == Display::Json {
            let line = match path {
                Some(p) => {
                    let totals = self.totals(stats);
                    let f = self.view.figures(
                        ARCHIVE_OPERATION,
                        stats.osize,
                        totals.map_or(0, |t| t.0),
                        Unit::Bytes,
                        None,
                    );
                    let known =
                        |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
                    format!(
                        "{{\"original_size\": {}, \"compressed_size\": {}, \"deduplicated_size\": {}, \"nfiles\": {}, \"path\": {}, \"time\": {}, \"type\": \"archive_progress\", \"finished\": false, \"estimated_original_size\": {}, \"estimated_nfiles\": {}{}}}",
                        stats.osize, stats.csize, stats.usize, stats.nfiles,
                        output::json_line(&json!(create::remove_surrogates(p))),
                        py_float(now()),
                        known(totals.map(|t| t.0)),
                        known(totals.map(|t| t.1).filter(|f| *f > 0)),
                        super::progress_view::json_extra(&f)
                    )
                }
                None => format!(
                    "{{\"time\": {}, \"type\": \"archive_progress\", \"finished\": true}}",
                    py_float(now())
                ),
            };
            let _ = writeln!(err, "{line}");
            return;
        }
        // borg 1.4's `Statistics.show_progress` when stderr is not a terminal (the only case
        // here: a terminal gets hoard's line): whole lines ended by a line feed, the path not
        // shortened, an empty line at the end.
        let msg = match path {
            Some(p) => format!(
                "{} O {} C {} D {} N {}",
                size(stats.osize),
                size(stats.csize),
                size(stats.usize),
                stats.nfiles,
                create::remove_surrogates(p)
            ),
            None => String::new(),
        };
        let _ = writeln!(err, "{msg}");
        let _ = err.flush();
    }

    /// hoard's terminal line: share done, files, deduplicated size and path, then
    /// done/total, rate and time to go (`~` where the total is an estimate).
    fn terminal(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        let Some(p) = path else {
            return self.view.clear();
        };
        let totals = self.totals(stats);
        let total = totals.map_or(0, |t| t.0);
        let f = self
            .view
            .figures(ARCHIVE_OPERATION, stats.osize, total, Unit::Bytes, None);
        if !self.view.due() {
            return;
        }
        let approx = if self.total.is_none() { "~" } else { "" };
        let size = |v: u64| output::format_file_size(v as i128, self.iec);
        let share = match total {
            0 => String::new(),
            t => format!("{approx}{:.0}% ", stats.osize as f64 * 100.0 / t as f64),
        };
        let files = match totals {
            Some((_, n)) if n > 0 => format!("{}/~{n}", stats.nfiles),
            _ => stats.nfiles.to_string(),
        };
        let message = format!(
            "{share}{files} files, {} deduplicated, {}",
            size(stats.usize),
            create::remove_surrogates(p)
        );
        let figures =
            self.view
                .figures_text(stats.osize, total, Unit::Bytes, self.total.is_none(), &f);
        self.view.draw(&message, &figures, false);
    }
}

fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%a, %Y-%m-%d %H:%M:%S")
        .to_string()
}

fn duration_secs(s: &ArchiveSummary) -> f64 {
    (s.end - s.start)
        .num_microseconds()
        .map_or(0.0, |us| us as f64 / 1e6)
}

/// The `--stats` block (borg's `str(archive)`, the stats header, `str(stats)`, `str(cache)`).
/// With `quick` (`--quick-stats`), the repository-wide part is left out.
pub fn print_stats(s: &ArchiveSummary, iec: bool, quick: bool) {
    let size = |v: u64| output::format_file_size(v as i128, iec);
    let dashes = "-".repeat(78);
    let c = &s.cache_stats;
    let text = format!(
        "{dashes}\nRepository: {}\nArchive name: {}\nArchive fingerprint: {}\nTime (start): {}\nTime (end):   {}\nDuration: {}\nNumber of files: {}\nUtilization of max. archive size: {:.0}%\n{dashes}\n                       Original size      Compressed size    Deduplicated size\n{:15} {:>20} {:>20} {:>20}\nAll archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}\n{dashes}",
        s.location,
        s.name,
        hex::encode(s.id),
        local_time(s.start),
        local_time(s.end),
        format_timedelta(duration_secs(s)),
        s.stats.nfiles,
        s.max_archive_size * 100.0,
        "This archive:",
        size(s.stats.osize),
        size(s.stats.csize),
        size(s.stats.usize),
        size(c.total_size),
        size(c.total_csize),
        size(c.unique_csize),
        c.total_unique_chunks,
        c.total_chunks,
    );
    let text = if quick {
        let cut = text.find("All archives:").unwrap_or(text.len());
        format!("{}{dashes}", &text[..cut])
    } else {
        text
    };
    for line in text.lines() {
        log::output_line("borg.output.stats", line, "\n");
    }
}

/// The `--json` document (borg's `basic_json_data` with `archive.info()`).
/// With `quick` (`--quick-stats`), there is no `cache` section.
pub fn json_output(s: &ArchiveSummary, _iec: bool, quick: bool) -> String {
    let fmt_ts = |t: chrono::DateTime<chrono::Utc>| {
        output::json_timestamp_seconds(&crate::archive::manifest::format_timestamp(t))
    };
    let c = &s.cache_stats;
    let mut v = output::repository_json(
        s.key_type,
        &s.key_location,
        &s.repository_id,
        &s.last_modified,
        &s.location,
    );
    v["archive"] = json!({
        "command_line": s.command_line,
        "duration": "@@FLOAT_DURATION@@",
        "end": fmt_ts(s.end),
        "id": hex::encode(s.id),
        "limits": {"max_archive_size": "@@FLOAT_LIMIT@@"},
        "name": s.name,
        "start": fmt_ts(s.start),
        "stats": {
            "compressed_size": s.stats.csize,
            "deduplicated_size": s.stats.usize,
            "nfiles": s.stats.nfiles,
            "original_size": s.stats.osize,
        },
    });
    if !quick {
        v["cache"] = json!({
            "path": s.cache_path.to_string_lossy(),
            "stats": {
                "total_chunks": c.total_chunks,
                "total_csize": c.total_csize,
                "total_size": c.total_size,
                "total_unique_chunks": c.total_unique_chunks,
                "unique_csize": c.unique_csize,
                "unique_size": c.unique_size,
            },
        });
    }
    output::json_pretty(&v)
        .replace("\"@@FLOAT_DURATION@@\"", &py_float(duration_secs(s)))
        .replace("\"@@FLOAT_LIMIT@@\"", &py_float(s.max_archive_size))
}

/// Seconds since the epoch (the `time` of JSON records).
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
