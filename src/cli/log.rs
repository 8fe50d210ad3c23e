//! borg-style logging to stderr: plain message lines, or with `--log-json` one JSON object per
//! line (`{"type": "log_message", "time", "message", "levelname", "name", "msgid"}`).
//! Library code logs through `tracing`; [`BorgLayer`] forwards those events here.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Log levels in borg's (Python logging's) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// `--debug`
    Debug = 10,
    /// `--info`, `-v`
    Info = 20,
    /// default
    Warning = 30,
    /// `--error`
    Error = 40,
    /// `--critical`
    Critical = 50,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warning as u8);
static JSON: AtomicBool = AtomicBool::new(false);

/// Sets the threshold and the output format.
pub fn configure(level: Level, json: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(json, Ordering::Relaxed);
}

/// True when `--log-json` is in force.
pub fn json_enabled() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// True if messages at `level` are shown.
pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes one log record if its level is enabled.
pub fn log(level: Level, name: &str, msgid: Option<&str>, message: &str) {
    if enabled(level) {
        log_always(level, name, msgid, message);
    }
}

/// Writes one log record whatever the threshold: borg's output topics
/// (`borg.output.show-version`, …) that an option switches on at their own level.
pub fn log_always(level: Level, name: &str, msgid: Option<&str>, message: &str) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    if json_enabled() {
        // Python's json.dumps: ", " / ": " separators, ASCII escapes, borg's field order.
        let q = |t: &str| super::output::ascii_escape(&serde_json::Value::from(t).to_string());
        let mut line = format!(
            "{{\"type\": \"log_message\", \"time\": {}, \"message\": {}, \"levelname\": {}, \"name\": {}",
            serde_json::Value::from(now_f64()),
            q(message),
            q(level.name()),
            q(name)
        );
        if let Some(m) = msgid {
            line.push_str(&format!(", \"msgid\": {}", q(m)));
        }
        line.push('}');
        let _ = writeln!(err, "{line}");
    } else {
        let _ = writeln!(err, "{message}");
    }
}

/// Logs at INFO from the archiver.
pub fn info(message: &str) {
    log(Level::Info, "borg.archiver", None, message);
}

/// Logs at WARNING from the archiver.
pub fn warning(message: &str) {
    log(Level::Warning, "borg.archiver", None, message);
}

/// Logs at ERROR from the archiver, with an optional borg msgid.
pub fn error(message: &str, msgid: Option<&str>) {
    log(Level::Error, "borg.archiver", msgid, message);
}

/// One step of borg's `yes()` on stderr, whatever the log level: `kind` is `prompt` (printed
/// without a line end), `env_answer`, `accepted_false`, `invalid_answer`, …; with `--log-json`
/// a `question_<kind>` record (`env_var` for the env answer, then `type`, `msgid`, `message`).
pub fn question(kind: &str, msgid: &str, message: &str, env_var: Option<&str>) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    if json_enabled() {
        let q = |t: &str| super::output::ascii_escape(&serde_json::Value::from(t).to_string());
        let mut line = String::from("{");
        if let Some(v) = env_var {
            line.push_str(&format!("\"env_var\": {}, ", q(v)));
        }
        line.push_str(&format!(
            "\"type\": {}, \"msgid\": {}, \"message\": {}}}",
            q(&format!("question_{kind}")),
            q(msgid),
            q(message)
        ));
        let _ = writeln!(err, "{line}");
    } else if kind == "prompt" {
        let _ = write!(err, "{message}");
    } else {
        let _ = writeln!(err, "{message}");
    }
    let _ = err.flush();
}

/// borg's `ProgressIndicatorPercent` (`helpers/progress.py`): with `--progress`, a message
/// every `step` percent on stderr (ended by `\r`), or with `--log-json` a `progress_percent`
/// record (`message`, `current`, `total`, `info`, `operation`, `msgid`, `type`, `finished`,
/// `time`); [`ProgressPercent::finish`] ends it.
pub struct ProgressPercent {
    operation: u32,
    msgid: &'static str,
    /// `%3.0f%%`-style template: `{}` stands for the percentage, formatted by `width.prec`.
    prefix: &'static str,
    width: usize,
    prec: usize,
    step: f64,
    trigger_at: f64,
    counter: u64,
    total: u64,
    enabled: bool,
}

impl ProgressPercent {
    /// A new indicator (it takes the next operation number even when `enabled` is false, as
    /// borg's does): `prefix` then the percentage as `%{width}.{prec}f%`.
    pub fn new(
        enabled: bool,
        msgid: &'static str,
        prefix: &'static str,
        (width, prec): (usize, usize),
        step: f64,
        total: u64,
    ) -> Self {
        ProgressPercent {
            operation: crate::progress::next_operation(),
            msgid,
            prefix,
            width,
            prec,
            step,
            trigger_at: 0.0,
            counter: 0,
            total,
            enabled,
        }
    }

    /// Sets the total (when it is known only after the indicator was made).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// borg's `show()`: counts one item and prints when the next step is reached.
    pub fn show(&mut self) {
        if self.total == 0 {
            self.counter += 1;
            return;
        }
        let pct = self.counter as f64 * 100.0 / self.total as f64;
        self.counter += 1;
        if pct < self.trigger_at {
            return;
        }
        self.trigger_at += self.step;
        let message = format!(
            "{}{:>w$.p$}%",
            self.prefix,
            pct,
            w = self.width,
            p = self.prec
        );
        if !self.enabled {
            return;
        }
        if json_enabled() {
            let q = |t: &str| super::output::ascii_escape(&serde_json::Value::from(t).to_string());
            self.emit(
                &format!(
                    "\"message\": {}, \"current\": {}, \"total\": {}, \"info\": null, ",
                    q(&message),
                    self.counter,
                    self.total
                ),
                false,
            );
        } else {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{message}\r");
            let _ = err.flush();
        }
    }

    /// borg's `finish()`: the closing record (an empty line in text mode).
    pub fn finish(&mut self) {
        if !self.enabled {
            return;
        }
        if json_enabled() {
            self.emit("", true);
        } else {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r");
            let _ = err.flush();
        }
    }

    fn emit(&self, fields: &str, finished: bool) {
        let q = |t: &str| serde_json::Value::from(t).to_string();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{{{fields}\"operation\": {}, \"msgid\": {}, \"type\": \"progress_percent\", \"finished\": {finished}, \"time\": {}}}",
            self.operation,
            q(self.msgid),
            serde_json::Value::from(now_f64())
        );
    }
}

/// A progress sink for library code that prints borg's progress records on stderr when
/// `enabled` (`--progress`): JSON lines with `--log-json`, else `message\r`.
pub fn progress_sink(enabled: bool) -> crate::progress::Progress {
    if !enabled {
        return crate::progress::Progress::default();
    }
    crate::progress::Progress::new(|ev| {
        let text = crate::progress::render(ev, json_enabled());
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    })
}

/// A tracing layer that sends library events through [`log`].
pub struct BorgLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for BorgLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        if !enabled(level) {
            return;
        }
        let message = crate::event_text::message(event);
        log(
            level,
            &logger_name(event.metadata().target()),
            None,
            &message,
        );
    }
}

/// The name borg 1.4 logs a library message under (its Python module's logger, which
/// `--log-json` shows as `name`), from the hoard module that logged it: a frontend that
/// tells messages apart by logger sees the same names as with borg. Targets already named
/// `borg.…` are kept; modules borg has no counterpart of keep their own (`hoard.…`) name.
pub fn logger_name(target: &str) -> String {
    if target.starts_with("borg.") || target == "borg" {
        return target.to_string();
    }
    let path = target.strip_prefix("hoard::").unwrap_or(target);
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}::"));
    let name = if under("repo::lock") {
        "borg.locking"
    } else if under("repo::remote") || under("serve") {
        "borg.remote"
    } else if under("repo") {
        "borg.repository"
    } else if under("cache") || under("security") {
        // borg's SecurityManager lives in cache.py
        "borg.cache"
    } else if under("archive") {
        "borg.archive"
    } else if under("commands") || under("cli") {
        "borg.archiver"
    } else if under("mount") {
        "borg.fuse"
    } else if under("crypto") {
        "borg.crypto.key"
    } else if under("platform::xattr") {
        "borg.xattr"
    } else if under("patterns") {
        "borg.patterns"
    } else {
        return format!("hoard.{}", path.replace("::", "."));
    };
    name.to_string()
}

/// Installs [`BorgLayer`] as the global tracing subscriber.
pub fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(BorgLayer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
