//! borg-style logging to stderr: plain message lines, or with `--log-json` one JSON object per
//! line (`{"type": "log_message", "time", "message", "levelname", "name", "msgid"}`).
//! Library code logs through `tracing`; [`BorgLayer`] forwards those events here.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

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
/// Process state of the terminal: the width of hoard's progress line on stderr (0: none), so
/// a line written meanwhile first wipes it (see [`clear_line`]). Changed only while stderr is
/// locked.
static LINE: AtomicUsize = AtomicUsize::new(0);

/// Wipes hoard's progress line from the terminal, if one is shown (`\r`, spaces, `\r`): the
/// next text starts on a clean line. Call with stderr locked, before writing to it.
pub fn clear_line(err: &mut impl Write) {
    let width = LINE.swap(0, Ordering::Relaxed);
    if width > 0 {
        let _ = write!(err, "\r{}\r", " ".repeat(width));
    }
}

/// Draws `text` (one line, no line end, at most the terminal's width) as hoard's progress
/// line: over the one shown, padded to wipe its rest.
pub fn draw_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let width = text.chars().count();
    let old = LINE.swap(width, Ordering::Relaxed);
    let pad = old.saturating_sub(width);
    let _ = write!(err, "\r{text}{}", " ".repeat(pad));
    let _ = err.flush();
}

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
        clear_line(&mut err);
        let _ = writeln!(err, "{message}");
    }
}

/// Writes a record of a borg output logger that an option switches on whatever the level
/// (`borg.output.list` with `--list`, `borg.output.stats` with `--stats`, progress): an INFO
/// `log_message` with `--log-json`, else `message` and `terminator` (`"\n"`, or `"\r"` for a
/// progress line that the next one overwrites).
pub fn output_line(name: &str, message: &str, terminator: &str) {
    if json_enabled() {
        return log_always(Level::Info, name, None, message);
    }
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    clear_line(&mut err);
    let _ = write!(err, "{message}{terminator}");
    let _ = err.flush();
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
        clear_line(&mut err);
        let _ = write!(err, "{message}");
    } else {
        clear_line(&mut err);
        let _ = writeln!(err, "{message}");
    }
    let _ = err.flush();
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
