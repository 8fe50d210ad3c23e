//! The server's stderr log stream on the client side (spec §9.6, borg's `handle_remote_line`):
//! JSON `log_message` lines, `$LOG LEVEL [name] Remote: msg` lines, and plain lines. Each is
//! handed to a [`LogSink`] with borg's `Remote: ` prefix; the CLI installs a sink that prints
//! like borg, the default sink forwards to `tracing`.

use std::sync::OnceLock;

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
                // Progress output of the server is not shown (hoard draws its own).
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
}
