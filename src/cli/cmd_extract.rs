//! `extract`: clap arguments and the printing side (list lines, warnings, progress).

use std::io::Write;

use clap::Args;

use crate::commands::extract::{self, ExtractOptions, Reporter};
use crate::commands::CommandError;

use super::log;
use super::options::{CommonOptions, PatternOptions, Selector};
use super::progress_view::{json_number, Display, View};
use crate::progress::Unit;
use std::sync::Arc;

/// `extract`
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// archive to extract
    #[arg(value_name = "ARCHIVE")]
    pub location: Option<String>,
    /// paths to extract; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// do not actually change any files
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// only obey numeric user and group identifiers
    /// (--numeric-owner is the deprecated older name)
    #[arg(long = "numeric-ids", alias = "numeric-owner")]
    pub numeric_ids: bool,
    /// do not extract/set flags (e.g. NODUMP, IMMUTABLE); --nobsdflags is the deprecated older
    /// name
    #[arg(long = "noflags", alias = "nobsdflags")]
    pub noflags: bool,
    /// do not extract/set ACLs
    #[arg(long = "noacls")]
    pub noacls: bool,
    /// do not extract/set xattrs
    #[arg(long = "noxattrs")]
    pub noxattrs: bool,
    /// write all extracted data to stdout
    #[arg(long = "stdout")]
    pub stdout: bool,
    /// create holes in output sparse file from all-zero chunks
    #[arg(long = "sparse")]
    pub sparse: bool,
    /// Remove the specified number of leading path elements. Paths with fewer elements will be silently skipped.
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "strip-components", value_name = "NUMBER", default_value_t = 0)]
    pub strip_components: usize,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
}

/// Writes a record of a borg output logger that is enabled independently of the log level
/// (`borg.output.list` with `--list`, progress).
pub fn output_line(name: &str, message: &str, terminator: &str) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    if log::json_enabled() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // Python's json.dumps with borg's field order, as `log::log` writes it.
        let q = |t: &str| super::output::ascii_escape(&serde_json::Value::from(t).to_string());
        let _ = writeln!(
            err,
            "{{\"type\": \"log_message\", \"time\": {}, \"message\": {}, \"levelname\": \"INFO\", \"name\": {}}}",
            serde_json::Value::from(t),
            q(message),
            q(name)
        );
    } else {
        log::clear_line(&mut err);
        let _ = write!(err, "{message}{terminator}");
        let _ = err.flush();
    }
}

/// Prints `extract` / `export-tar` events as borg does (`ProgressIndicatorPercent`).
pub struct CliReporter {
    /// `--list` given.
    pub list: bool,
    /// The progress format's label (`Extracting` or `Processing`).
    pub label: &'static str,
    /// The next percentage to show (borg shows every 0.1 %).
    pub trigger_at: f64,
    /// Operation id in JSON progress records.
    pub operation: u32,
    /// Where progress shows (borg's text or JSON with `-p`, hoard's line on a terminal).
    pub view: Arc<View>,
}

impl CliReporter {
    /// A reporter for one operation whose progress (if the command reports any) shows as
    /// `-p` asks on this process's stderr.
    pub fn new(list: bool, label: &'static str) -> Self {
        CliReporter {
            list,
            label,
            trigger_at: 0.0,
            operation: 1,
            view: View::new(Display::for_process(true), false),
        }
    }

    /// The same, showing progress on `view`.
    pub fn with_view(mut self, view: Arc<View>) -> Self {
        self.view = view;
        self
    }

    /// One `progress_percent` record: borg's `fields`, then borg's closing keys, then
    /// hoard's `extra` figures (after `time`, where a reader of borg's prefix never looks).
    fn json_progress(
        &self,
        fields: Vec<(&str, serde_json::Value)>,
        extra: Vec<(&str, serde_json::Value)>,
        finished: bool,
    ) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut parts: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\": {}", super::output::json_line(&v)))
            .collect();
        parts.push(format!("\"operation\": {}", self.operation));
        parts.push("\"msgid\": \"extract\"".into());
        parts.push("\"type\": \"progress_percent\"".into());
        parts.push(format!("\"finished\": {finished}"));
        parts.push(format!("\"time\": {}", serde_json::Value::from(t)));
        parts.extend(
            extra
                .into_iter()
                .map(|(k, v)| format!("\"{k}\": {}", super::output::json_line(&v))),
        );
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        let _ = writeln!(err, "{{{}}}", parts.join(", "));
    }
}

impl Reporter for CliReporter {
    fn list(&mut self, path: &[u8]) {
        if self.list {
            output_line("borg.output.list", &extract::remove_surrogates(path), "\n");
        }
    }

    fn warning(&mut self, message: &str) {
        log::warning(message);
    }

    fn warning_class(&mut self, class: &'static str, message: &str) {
        log::log(log::Level::Warning, "borg.archiver", Some(class), message);
    }

    fn progress(&mut self, before: u64, after: u64, total: u64, path: &[u8]) {
        let pct = before as f64 * 100.0 / total as f64;
        let display = self.view.display();
        if display == Display::Terminal {
            // every step counts for the rate; the view redraws a few times a second
            let f = self
                .view
                .figures(self.operation, after, total, Unit::Bytes, None);
            let figures = self.view.figures_text(after, total, Unit::Bytes, false, &f);
            let path = extract::remove_surrogates(path);
            let text = format!("{pct:5.1}% {}: {path}", self.label);
            // the operation's first line at once, even right after its message
            let first = self.trigger_at == 0.0;
            self.trigger_at = 0.1;
            self.view.draw(&text, &figures, first);
            return;
        }
        if pct < self.trigger_at || display == Display::Off {
            return;
        }
        self.trigger_at += 0.1;
        let path = extract::remove_surrogates(path);
        let text = format!("{pct:5.1}% {}: {path}", self.label);
        if log::json_enabled() {
            // hoard's figures after borg's keys (borg's parsers ignore them)
            let f = self
                .view
                .figures(self.operation, after, total, Unit::Bytes, None);
            self.json_progress(
                vec![
                    ("message", serde_json::json!(text)),
                    ("current", serde_json::json!(after)),
                    ("total", serde_json::json!(total)),
                    ("info", serde_json::json!([path])),
                ],
                vec![
                    ("eta_seconds", json_number(f.eta_seconds, 1)),
                    ("bytes_per_second", json_number(f.bytes_per_second, 0)),
                ],
                false,
            );
        } else {
            output_line("borg.output.progress", &text, "\r");
        }
    }

    fn progress_message(&mut self, message: &str) {
        match self.view.display() {
            Display::Terminal => return self.view.draw(message, "", true),
            Display::Off => return,
            Display::Borg | Display::Json => {}
        }
        if log::json_enabled() {
            self.json_progress(
                vec![
                    ("message", serde_json::json!(message)),
                    ("current", serde_json::json!(0)),
                    ("total", serde_json::json!(0)),
                    ("info", serde_json::Value::Null),
                ],
                // hoard's figures, not known yet
                vec![
                    ("eta_seconds", serde_json::Value::Null),
                    ("bytes_per_second", serde_json::Value::Null),
                ],
                false,
            );
        } else {
            output_line("borg.output.progress", message, "\r");
        }
    }

    fn progress_finish(&mut self) {
        match self.view.display() {
            Display::Terminal => return self.view.clear(),
            Display::Off => return,
            Display::Borg | Display::Json => {}
        }
        if log::json_enabled() {
            self.json_progress(Vec::new(), Vec::new(), true);
        } else {
            output_line("borg.output.progress", "", "\r");
        }
    }
}

/// Runs `extract` from parsed arguments; returns the exit code.
pub fn run(a: ExtractArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_with(a.location.as_deref(), &common.repo)?;
    let mut selector = Selector::new(&a.paths, &a.patterns)?;
    let display = Display::for_process(common.progress);
    let opts = ExtractOptions {
        strip_components: a.strip_components,
        dry_run: a.dry_run,
        stdout: a.stdout,
        sparse: a.sparse,
        numeric_ids: a.numeric_ids,
        noacls: a.noacls,
        noxattrs: a.noxattrs,
        noflags: a.noflags,
        consider_part_files: common.consider_part_files,
        // -p, or hoard's line on a terminal
        progress: display.shown(),
        lock: common.lock_spec(),
        workers: common.worker_count,
        index_keys: crate::commands::path_index::index_keys(
            &a.paths,
            !(a.patterns.exclude.is_empty()
                && a.patterns.exclude_from.is_empty()
                && a.patterns.pattern.is_empty()
                && a.patterns.patterns_from.is_empty()),
        ),
    };
    let mut reporter =
        CliReporter::new(a.list, "Extracting").with_view(View::new(display, common.iec));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let partial = selector.is_partial();
    let mut filter = |p: &[u8]| selector.matches(p);
    let outcome = extract::run(
        &loc,
        std::path::Path::new("."),
        &opts,
        &mut filter,
        partial,
        &mut reporter,
        &mut out,
        &super::confirm,
    )?;
    // borg 1.4's rule for the exit code: one kind of warning gives its class's (modern) code,
    // several kinds the generic 1.
    let mut codes: Vec<i32> = outcome
        .warning_classes
        .iter()
        .map(|c| super::exit_codes::warning_code(c))
        .collect();
    if outcome.warnings && codes.is_empty() {
        codes.push(super::EXIT_WARNING);
    }
    for w in selector.unmatched_warnings() {
        log::log(
            log::Level::Warning,
            "borg.archiver",
            Some("IncludePatternNeverMatchedWarning"),
            &w,
        );
        codes.push(super::exit_codes::warning_code(
            "IncludePatternNeverMatchedWarning",
        ));
    }
    Ok(super::exit_codes::for_mode(
        super::exit_codes::warnings_code(&codes),
        common.exit_codes,
    ))
}
