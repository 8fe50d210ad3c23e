//! The server's stderr log stream on the client side (spec §9.6, borg's `handle_remote_line`):
//! JSON `log_message` lines, `$LOG LEVEL [name] Remote: msg` lines, and plain lines. Each is
//! handed to a [`LogSink`] with borg's `Remote: ` prefix; the CLI installs a sink that prints
//! like borg, the default sink forwards to `tracing`. The server's progress records
//! (`progress_percent`, `progress_message`) are not log lines: [`parse_progress`] turns them
//! into [`ProgressEvent`]s that the repository hands to the progress sink of the call they
//! belong to.

use std::sync::OnceLock;

use crate::progress::{ProgressEvent, ProgressKind, Unit};

/// Python logging levels: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL.
pub type Level = u8;

/// One line for the client's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteLog {
    /// A log record: level, logger name, message (already prefixed with `Remote: `).
    Record(Level, String, String),
    /// A plain line from an old server or a shell, re-emitted unfiltered (`Remote: …`).
    Plain(String),
}

/// Receives the remote log lines.
pub type LogSink = fn(RemoteLog);

// Process state, not configuration: where log lines go, like the logger itself.
static SINK: OnceLock<LogSink> = OnceLock::new();

/// Installs the sink (first call wins).
pub fn set_sink(sink: LogSink) {
    let _ = SINK.set(sink);
}

fn default_sink(l: RemoteLog) {
    match l {
        RemoteLog::Record(level, _, msg) => match level {
            0..=10 => tracing::debug!("{msg}"),
            11..=20 => tracing::info!("{msg}"),
            21..=30 => tracing::warn!("{msg}"),
            _ => tracing::error!("{msg}"),
        },
        RemoteLog::Plain(msg) => tracing::warn!("{msg}"),
    }
}

fn level_from_name(name: &str) -> Level {
    match name {
        "DEBUG" => 10,
        "INFO" => 20,
        "WARNING" | "WARN" => 30,
        "ERROR" => 40,
        _ => 50,
    }
}

/// Interprets one remote stderr line (with or without its line end).
pub fn parse_remote_line(line: &str) -> Option<RemoteLog> {
    let text = line.trim_end_matches(['\r', '\n']);
    if text.starts_with('{') {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(text) {
            let ty = m.get("type").and_then(|t| t.as_str()).unwrap_or("");
            return match ty {
                "log_message" => {
                    let level =
                        level_from_name(m.get("levelname").and_then(|t| t.as_str()).unwrap_or(""));
                    let name = m
                        .get("name")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string();
                    let msg = m.get("message").and_then(|t| t.as_str()).unwrap_or("");
                    Some(RemoteLog::Record(level, name, format!("Remote: {msg}")))
                }
                // Progress records go to the progress sink ([`parse_progress`]), not the log.
                "progress_message" | "progress_percent" => None,
                other => Some(RemoteLog::Record(
                    30,
                    "borg.repository".into(),
                    format!("Dropped remote log message with unknown type {other:?}: {text}"),
                )),
            };
        }
    }
    if let Some(rest) = text.strip_prefix("$LOG ") {
        let (level, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        let level = level_from_name(level);
        if msg.starts_with("Remote:") {
            return Some(RemoteLog::Record(level, String::new(), msg.to_string()));
        }
        let (name, msg) = msg.split_once(' ').unwrap_or(("", msg));
        return Some(RemoteLog::Record(level, name.to_string(), msg.to_string()));
    }
    if text.is_empty() {
        return None;
    }
    Some(RemoteLog::Plain(format!("Remote: {text}")))
}

/// The msgids of borg's repository-side indicators (`repository.py`); any other is reported as
/// `remote`, since [`ProgressEvent::msgid`] names a fixed set.
fn known_msgid(msgid: &str) -> &'static str {
    match msgid {
        "repository.check" => "repository.check",
        "repository.compact_segments" => "repository.compact_segments",
        "repository.replay_segments" => "repository.replay_segments",
        _ => "remote",
    }
}

/// A server's progress record (one stderr line) as a [`ProgressEvent`], its message prefixed
/// with `Remote: ` as borg's client does; `None` for any other line. `operation` is the
/// server's number: the caller maps it to one of its own.
pub fn parse_progress(line: &str) -> Option<ProgressEvent> {
    let text = line.trim_end_matches(['\r', '\n']);
    if !text.starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(m) = serde_json::from_str::<serde_json::Value>(text).ok()? else {
        return None;
    };
    let kind = match m.get("type").and_then(|t| t.as_str())? {
        "progress_percent" => ProgressKind::Percent,
        "progress_message" => ProgressKind::Message,
        _ => return None,
    };
    let number = |key: &str| m.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    let operation = u32::try_from(number("operation")).unwrap_or(u32::MAX);
    let finished = m.get("finished").and_then(|v| v.as_bool()).unwrap_or(false);
    let message = match m.get("message").and_then(|v| v.as_str()) {
        Some(msg) if !finished => format!("Remote: {msg}"),
        _ => String::new(),
    };
    Some(ProgressEvent {
        kind,
        operation,
        msgid: known_msgid(m.get("msgid").and_then(|v| v.as_str()).unwrap_or("")),
        message,
        current: number("current"),
        total: number("total"),
        finished,
        unit: Unit::Count,
        bytes: None,
    })
}

/// Forwards one remote stderr line to the sink.
pub fn handle_remote_line(line: &str) {
    if let Some(l) = parse_remote_line(line) {
        (SINK.get().copied().unwrap_or(default_sink))(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse_remote_line(
                "{\"type\": \"log_message\", \"time\": 1.0, \"message\": \"hi\", \"levelname\": \"INFO\", \"name\": \"borg.repository\"}\n"
            ),
            Some(RemoteLog::Record(20, "borg.repository".into(), "Remote: hi".into()))
        );
        assert_eq!(
            parse_remote_line("$LOG DEBUG borg.archiver Remote: 33 self tests\n"),
            Some(RemoteLog::Record(
                10,
                "borg.archiver".into(),
                "Remote: 33 self tests".into()
            ))
        );
        assert_eq!(
            parse_remote_line("bash: borg: command not found\n"),
            Some(RemoteLog::Plain(
                "Remote: bash: borg: command not found".into()
            ))
        );
        assert_eq!(
            parse_remote_line("{not json\n"),
            Some(RemoteLog::Plain("Remote: {not json".into()))
        );
    }

    #[test]
    fn progress_records_become_events() {
        let ev = parse_progress(
            "{\"message\": \"Checking segments  12.5%\", \"current\": 1, \"total\": 8, \"info\": null, \"operation\": 3, \"msgid\": \"repository.check\", \"type\": \"progress_percent\", \"finished\": false, \"time\": 1.5}\n",
        )
        .expect("a progress record");
        assert_eq!(ev.kind, ProgressKind::Percent);
        assert_eq!((ev.operation, ev.current, ev.total), (3, 1, 8));
        assert_eq!(ev.msgid, "repository.check");
        assert_eq!(ev.message, "Remote: Checking segments  12.5%");
        assert!(!ev.finished);
        let done = parse_progress(
            "{\"operation\": 3, \"msgid\": \"x.y\", \"type\": \"progress_percent\", \"finished\": true, \"time\": 2.0}",
        )
        .expect("a finished record");
        assert!(done.finished);
        assert_eq!(done.message, "");
        assert_eq!(done.msgid, "remote");
        assert!(parse_progress("{\"type\": \"log_message\", \"message\": \"hi\"}").is_none());
        assert!(parse_progress("$LOG INFO Remote: hi").is_none());
        assert_eq!(
            parse_remote_line("{\"type\": \"progress_message\", \"finished\": true}"),
            None
        );
    }
}
