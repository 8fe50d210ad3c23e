//! The output of the commands that read an archive's files out (`extract`, `export-tar`):
//! [`ExtractReporter`] prints `--list` lines, warnings and borg's `ProgressIndicatorPercent`
//! progress (text or `progress_percent` records with `-p`, hoard's line on a terminal).

use std::io::Write;
use std::sync::Arc;

use crate::commands::extract::{self, Reporter};
use crate::progress::Unit;

use super::log;
use super::progress_view::{json_number, Display, View};

/// Prints `extract` / `export-tar` events as borg does (`ProgressIndicatorPercent`).
pub struct ExtractReporter {
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

impl ExtractReporter {
    /// A reporter for one operation whose progress (if the command reports any) shows as
    /// `-p` asks on this process's stderr.
    pub fn new(list: bool, label: &'static str) -> Self {
        ExtractReporter {
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

impl Reporter for ExtractReporter {
    fn list(&mut self, path: &[u8]) {
        if self.list {
            log::output_line("borg.output.list", &extract::remove_surrogates(path), "\n");
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
            log::output_line("borg.output.progress", &text, "\r");
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
            log::output_line("borg.output.progress", message, "\r");
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
            log::output_line("borg.output.progress", "", "\r");
        }
    }
}
