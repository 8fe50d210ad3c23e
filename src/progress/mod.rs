//! Progress of long operations, as borg 1.4's progress indicators (`helpers/progress.py`):
//! [`Message`] (borg's `ProgressIndicatorMessage`, `progress_message` records) and [`Percent`]
//! (`ProgressIndicatorPercent`, `progress_percent` records).
//!
//! The code doing the work decides what to report and when (borg's messages, msgids and
//! steps) and hands each [`ProgressEvent`] to a sink its caller passes down: a
//! [`ProgressSink`] closure for one call, or a [`Progress`] handle for code that keeps it (the
//! cache). The caller decides how to show it ([`render`]: borg's text or JSON line) and
//! whether to (`--progress`, a terminal). Only the operation numbers are process-wide, as in
//! borg (its `operation_id_counter`), so every indicator of a run gets its own number whoever
//! made it.
//!
//! hoard's additions ride along: what a percent indicator counts ([`Unit`]), the bytes behind
//! a count where they are known, and the rate and time-to-go arithmetic in [`eta`].

pub mod eta;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Which kind of borg indicator a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// `ProgressIndicatorMessage`: a message, no position.
    Message,
    /// `ProgressIndicatorPercent`: a percentage with `current` and `total`.
    Percent,
}

/// What a percent indicator's `current` and `total` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Things: segments, objects, archives, items.
    #[default]
    Count,
    /// Bytes.
    Bytes,
}

/// One progress record.
#[derive(Debug, Clone)]
pub struct ProgressEvent {
    /// Which indicator made it.
    pub kind: ProgressKind,
    /// Operation number (unique per indicator in this process).
    pub operation: u32,
    /// borg's msgid, e.g. `check.verify_data`.
    pub msgid: &'static str,
    /// The formatted message (empty when finished).
    pub message: String,
    /// Current counter (percent indicators).
    pub current: u64,
    /// Total (percent indicators).
    pub total: u64,
    /// True for the final record.
    pub finished: bool,
    /// What `current` and `total` count (hoard's addition; borg's records do not say).
    pub unit: Unit,
    /// The bytes behind `current` of `total` (done, total), when the indicator counts
    /// something else and knows their sizes (segments); hoard's addition.
    pub bytes: Option<(u64, u64)>,
}

/// Receives progress records for the length of one call.
pub type ProgressSink<'a> = dyn FnMut(&ProgressEvent) + 'a;

/// The callback a [`Progress`] reports to.
pub type ProgressFn = dyn Fn(&ProgressEvent) + Send + Sync;

/// A progress sink that can be kept and cloned (into options of long-lived objects); the
/// default reports nothing.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressFn>>);

impl Progress {
    /// A handle that passes every record to `f`.
    pub fn new(f: impl Fn(&ProgressEvent) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    /// True when records go somewhere (so an indicator of hoard's own is worth making).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Passes one record on (nothing without a sink).
    pub fn emit(&self, ev: &ProgressEvent) {
        if let Some(f) = &self.0 {
            f(ev);
        }
    }

    /// A [`Message`] indicator that reports here.
    pub fn message(&self, msgid: &'static str) -> MessageProgress<'_> {
        MessageProgress {
            inner: Message::new(msgid),
            to: self,
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(sink)"
        } else {
            "Progress(none)"
        })
    }
}

/// borg's `operation_id_counter`.
static OPERATION: AtomicU32 = AtomicU32::new(0);

/// The next operation number (borg's `ProgressIndicatorBase.operation_id`): every indicator
/// takes one when it is made, shown or not.
pub fn next_operation() -> u32 {
    OPERATION.fetch_add(1, Ordering::Relaxed) + 1
}

/// borg's `ProgressIndicatorMessage`.
#[derive(Debug)]
pub struct Message {
    operation: u32,
    msgid: &'static str,
}

impl Message {
    /// A new indicator (takes the next operation number).
    pub fn new(msgid: &'static str) -> Message {
        Message {
            operation: next_operation(),
            msgid,
        }
    }

    fn event(&self, message: &str, finished: bool) -> ProgressEvent {
        ProgressEvent {
            kind: ProgressKind::Message,
            operation: self.operation,
            msgid: self.msgid,
            message: message.to_string(),
            current: 0,
            total: 0,
            finished,
            unit: Unit::Count,
            bytes: None,
        }
    }

    /// borg's `output(msg)`.
    pub fn output(&self, message: &str, sink: &mut ProgressSink<'_>) {
        sink(&self.event(message, false));
    }

    /// borg's `finish()`.
    pub fn finish(&self, sink: &mut ProgressSink<'_>) {
        sink(&self.event("", true));
    }
}

/// A [`Message`] bound to a [`Progress`] handle.
pub struct MessageProgress<'p> {
    inner: Message,
    to: &'p Progress,
}

impl MessageProgress<'_> {
    /// borg's `output(msg)`.
    pub fn output(&self, message: &str) {
        self.to.emit(&self.inner.event(message, false));
    }

    /// borg's `finish()`.
    pub fn finish(&self) {
        self.to.emit(&self.inner.event("", true));
    }
}

/// borg's `ProgressIndicatorPercent`: a record each time the percentage reaches the next step.
pub struct Percent {
    operation: u32,
    msgid: &'static str,
    fmt: fn(f64) -> String,
    total: u64,
    counter: u64,
    trigger_at: f64,
    step: f64,
    unit: Unit,
    bytes: Option<(u64, u64)>,
}

impl Percent {
    /// A new indicator over `total` steps, a record every `step` percent, the message made
    /// by `fmt` from the percentage (borg's `msg % pct`). Takes the next operation number.
    pub fn new(total: u64, step: f64, msgid: &'static str, fmt: fn(f64) -> String) -> Percent {
        Percent {
            operation: next_operation(),
            msgid,
            fmt,
            total,
            counter: 0,
            trigger_at: 0.0,
            step,
            unit: Unit::Count,
            bytes: None,
        }
    }

    /// Sets the total (when it is known only after the indicator was made).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// Says what the counter counts (records carry it; the default is [`Unit::Count`]).
    pub fn with_unit(mut self, unit: Unit) -> Percent {
        self.unit = unit;
        self
    }

    /// The bytes behind the count so far (done, total), carried by the next records.
    pub fn set_bytes(&mut self, done: u64, total: u64) {
        self.bytes = Some((done, total));
    }

    /// borg's `show(current)`: counts one step (at `current` if given) and reports when the
    /// next step is reached.
    pub fn show(&mut self, current: Option<u64>, sink: &mut ProgressSink<'_>) {
        if let Some(c) = current {
            self.counter = c;
        }
        let pct = if self.total == 0 {
            100.0
        } else {
            self.counter as f64 * 100.0 / self.total as f64
        };
        self.counter += 1;
        if pct >= self.trigger_at {
            self.trigger_at += self.step;
            sink(&ProgressEvent {
                kind: ProgressKind::Percent,
                operation: self.operation,
                msgid: self.msgid,
                message: (self.fmt)(pct),
                current: self.counter,
                total: self.total,
                finished: false,
                unit: self.unit,
                bytes: self.bytes,
            });
        }
    }

    /// borg's `finish()`.
    pub fn finish(&self, sink: &mut ProgressSink<'_>) {
        sink(&ProgressEvent {
            kind: ProgressKind::Percent,
            operation: self.operation,
            msgid: self.msgid,
            message: String::new(),
            current: self.counter,
            total: self.total,
            finished: true,
            unit: self.unit,
            bytes: self.bytes,
        });
    }
}

/// Renders a record as borg does: with `--log-json` one `progress_message` or
/// `progress_percent` JSON line (Python's `json.dumps`, borg's field order), else the message
/// followed by `\r` (an empty message when finished).
pub fn render(ev: &ProgressEvent, json: bool) -> String {
    render_with(ev, json, "")
}

/// [`render`] with `extra` JSON members (`, "key": value` each) after borg's last key (`time`)
/// of a `progress_percent` record that is not finished: hoard's figures, which borg's parsers
/// ignore, where a reader of borg's record prefix does not see them. Text and other records
/// are [`render`]'s.
pub fn render_with(ev: &ProgressEvent, json: bool, extra: &str) -> String {
    if !json {
        return format!("{}\r", ev.message);
    }
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let q = |t: &str| serde_json::Value::from(t).to_string();
    let mut line = String::from("{");
    if !ev.finished {
        line.push_str(&format!("\"message\": {}, ", q(&ev.message)));
        if ev.kind == ProgressKind::Percent {
            line.push_str(&format!(
                "\"current\": {}, \"total\": {}, \"info\": null, ",
                ev.current, ev.total
            ));
        }
    }
    let kind = match ev.kind {
        ProgressKind::Message => "progress_message",
        ProgressKind::Percent => "progress_percent",
    };
    let extra = if ev.finished || ev.kind != ProgressKind::Percent {
        ""
    } else {
        extra
    };
    line.push_str(&format!(
        "\"operation\": {}, \"msgid\": {}, \"type\": \"{kind}\", \"finished\": {}, \"time\": {}{extra}}}\n",
        ev.operation,
        q(ev.msgid),
        ev.finished,
        serde_json::Value::from(time)
    ));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_steps_as_borg() {
        let mut seen = Vec::new();
        let mut sink = |ev: &ProgressEvent| seen.push((ev.message.clone(), ev.current));
        let mut p = Percent::new(4, 50.0, "x", |p| format!("X {p:3.0}%"));
        for i in 0..4 {
            p.show(Some(i), &mut sink);
        }
        p.finish(&mut sink);
        assert_eq!(
            seen,
            [
                ("X   0%".to_string(), 1),
                ("X  50%".to_string(), 3),
                (String::new(), 4)
            ]
        );
    }

    #[test]
    fn message_records_as_borg() {
        let m = Message::new("cache.commit");
        let mut lines = Vec::new();
        m.output("Saving files cache", &mut |ev| lines.push(render(ev, true)));
        m.finish(&mut |ev| lines.push(render(ev, true)));
        let a: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(a["type"], "progress_message");
        assert_eq!(a["message"], "Saving files cache");
        assert_eq!(a["finished"], false);
        assert!(a.get("current").is_none());
        assert!(lines[0].starts_with("{\"message\": \"Saving files cache\", \"operation\": "));
        assert!(lines[1].starts_with("{\"operation\": "));
        assert!(lines[1].contains("\"msgid\": \"cache.commit\", \"type\": \"progress_message\", \"finished\": true, \"time\": "));
        assert_eq!(render(&m.event("a", false), false), "a\r");
    }
}
