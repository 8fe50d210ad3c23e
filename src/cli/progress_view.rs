//! How progress is shown. The commands report borg's progress records (and `create` its
//! statistics); this module decides, once per command ([`Display`]), whether they are shown
//! and how:
//!
//! * `-p` with stderr not a terminal: borg's text, byte for byte (frontends and the tests that
//!   compare hoard with borg read it);
//! * `-p --log-json`: borg's JSON records, `progress_percent` with hoard's extra keys
//!   `eta_seconds` and `bytes_per_second` after borg's last key (borg's parsers ignore
//!   unknown keys);
//! * stderr a terminal (with or without `-p`, without `--log-json`): one line redrawn in place
//!   at most [`REDRAW_EVERY`], borg's message followed by done/total, rate and time to go, wiped
//!   when the operation ends or when any other line is written ([`super::log::clear_line`]);
//! * otherwise nothing.
//!
//! The figures come from [`crate::progress::eta`].

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::progress::eta::{Figures, Tracker};
use crate::progress::{Progress, ProgressEvent, ProgressKind, Unit};

use super::log;

/// The terminal line is redrawn at most this often (4 times a second).
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Nothing: no `-p` and stderr is not a terminal, or `--log-json` without `-p`.
    Off,
    /// borg's text (`-p`, stderr not a terminal).
    Borg,
    /// borg's JSON records with hoard's extra keys (`-p --log-json`).
    Json,
    /// hoard's line on the terminal.
    Terminal,
}

impl Display {
    /// The display for `-p` (`progress`), `--log-json` (`json`) and whether stderr is a
    /// terminal.
    pub fn resolve(progress: bool, json: bool, terminal: bool) -> Display {
        match (json, progress, terminal) {
            (true, true, _) => Display::Json,
            (true, false, _) => Display::Off,
            (false, _, true) => Display::Terminal,
            (false, true, false) => Display::Borg,
            (false, false, false) => Display::Off,
        }
    }

    /// The display of this process for `-p` given or not.
    pub fn for_process(progress: bool) -> Display {
        Display::resolve(
            progress,
            log::json_enabled(),
            std::io::stderr().is_terminal(),
        )
    }

    /// True unless [`Display::Off`]: the command should report progress at all.
    pub fn shown(self) -> bool {
        self != Display::Off
    }
}

/// The figures and the terminal line of one command's progress; shared by the sinks it
/// hands out.
pub struct View {
    display: Display,
    iec: bool,
    state: Mutex<State>,
}

struct State {
    start: Instant,
    trackers: HashMap<u32, Tracker>,
    last_draw: Option<Instant>,
}

impl View {
    /// A view showing on `display`, sizes with IEC units when `iec`.
    pub fn new(display: Display, iec: bool) -> Arc<View> {
        Arc::new(View {
            display,
            iec,
            state: Mutex::new(State {
                start: Instant::now(),
                trackers: HashMap::new(),
                last_draw: None,
            }),
        })
    }

    /// Where this view shows progress.
    pub fn display(&self) -> Display {
        self.display
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the position of operation `op` (`current` of `total`, and the bytes behind it
    /// when known) and returns its figures.
    pub fn figures(
        &self,
        op: u32,
        current: u64,
        total: u64,
        unit: Unit,
        bytes: Option<(u64, u64)>,
    ) -> Figures {
        let mut st = self.state();
        let t = st.start.elapsed().as_secs_f64();
        let bytes = match unit {
            Unit::Bytes => Some((current, total)),
            Unit::Count => bytes,
        };
        st.trackers
            .entry(op)
            .or_default()
            .update(t, current, total, bytes)
    }

    /// A progress sink (for library code that keeps one) that shows records here.
    pub fn sink(self: &Arc<Self>) -> Progress {
        if !self.display.shown() {
            return Progress::default();
        }
        let view = Arc::clone(self);
        Progress::new(move |ev| view.event(ev))
    }

    /// Shows one record of a borg indicator.
    pub fn event(&self, ev: &ProgressEvent) {
        match self.display {
            Display::Off => {}
            Display::Borg | Display::Json => {
                let json = self.display == Display::Json;
                let extra = if json && ev.kind == ProgressKind::Percent && !ev.finished {
                    let f = self.figures(ev.operation, ev.current, ev.total, ev.unit, ev.bytes);
                    json_extra(&f)
                } else {
                    String::new()
                };
                let text = crate::progress::render_with(ev, json, &extra);
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            }
            Display::Terminal => {
                if ev.finished {
                    self.clear();
                    return;
                }
                let figures = match ev.kind {
                    ProgressKind::Percent => {
                        let f = self.figures(ev.operation, ev.current, ev.total, ev.unit, ev.bytes);
                        self.figures_text(ev.current, ev.total, ev.unit, false, &f)
                    }
                    ProgressKind::Message => String::new(),
                };
                self.draw(&ev.message, &figures, ev.kind == ProgressKind::Message);
            }
        }
    }

    /// True when the terminal line would be redrawn now (so a caller can skip building it).
    pub fn due(&self) -> bool {
        self.display == Display::Terminal
            && self
                .state()
                .last_draw
                .is_none_or(|t| t.elapsed() >= REDRAW_EVERY)
    }

    /// Draws `message` and `figures` as the terminal line, unless the last drawing is younger
    /// than [`REDRAW_EVERY`] (`force` draws anyway).
    pub fn draw(&self, message: &str, figures: &str, force: bool) {
        if self.display != Display::Terminal {
            return;
        }
        {
            let mut st = self.state();
            let now = Instant::now();
            if !force && st.last_draw.is_some_and(|t| now - t < REDRAW_EVERY) {
                return;
            }
            st.last_draw = Some(now);
        }
        log::draw_line(&line_text(message, figures, stderr_columns()));
    }

    /// Wipes the terminal line (the operation ended).
    pub fn clear(&self) {
        if self.display != Display::Terminal {
            return;
        }
        let mut err = std::io::stderr().lock();
        log::clear_line(&mut err);
        let _ = err.flush();
        self.state().last_draw = None;
    }

    /// The figures part of the terminal line: `done/total` (`~` before an estimated total),
    /// the rate and the time to go, as far as known.
    pub fn figures_text(
        &self,
        current: u64,
        total: u64,
        unit: Unit,
        estimated: bool,
        f: &Figures,
    ) -> String {
        let size = |v: u64| super::output::format_file_size(v as i128, self.iec);
        let approx = if estimated { "~" } else { "" };
        let mut parts = Vec::new();
        let amount = |v: u64| match unit {
            Unit::Bytes => size(v),
            Unit::Count => v.to_string(),
        };
        parts.push(if total > 0 {
            format!("{}/{approx}{}", amount(current), amount(total))
        } else {
            amount(current)
        });
        if let Some(b) = f.bytes_per_second {
            parts.push(format!("{}/s", size(b.round() as u64)));
        } else if let Some(r) = f.per_second {
            parts.push(format!("{r:.1}/s"));
        }
        if let Some(eta) = f.eta_seconds {
            parts.push(format!("ETA {approx}{}", format_duration(eta)));
        }
        parts.join(", ")
    }
}

/// hoard's extra members of a record (`, "eta_seconds": …, "bytes_per_second": …`, to follow
/// borg's last key): seconds to one decimal and whole bytes per second, `null` while unknown.
pub fn json_extra(f: &Figures) -> String {
    format!(
        ", \"eta_seconds\": {}, \"bytes_per_second\": {}",
        json_number(f.eta_seconds, 1),
        json_number(f.bytes_per_second, 0)
    )
}

/// A JSON number rounded to `decimals` (a whole number without a fraction for 0), or null.
pub fn json_number(v: Option<f64>, decimals: i32) -> serde_json::Value {
    match v {
        Some(v) if v.is_finite() && decimals <= 0 => serde_json::json!(v.max(0.0).round() as u64),
        Some(v) if v.is_finite() => {
            let scale = 10f64.powi(decimals);
            serde_json::json!((v * scale).round() / scale)
        }
        _ => serde_json::Value::Null,
    }
}

/// `H:MM:SS`, or `M:SS` under an hour (seconds rounded up: the last second shows as 0:01).
pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The terminal line: `message | figures`, at most `columns - 1` characters (the last column
/// would wrap on some terminals); a long message loses its middle, the figures stay whole.
pub fn line_text(message: &str, figures: &str, columns: usize) -> String {
    let width = columns.saturating_sub(1).max(20);
    let message = message.trim_end();
    if figures.is_empty() {
        return shorten(message, width);
    }
    let fig_len = figures.chars().count();
    if message.is_empty() {
        return shorten(figures, width);
    }
    let room = width.saturating_sub(fig_len + 3);
    if room < 10 {
        return shorten(figures, width);
    }
    format!("{} | {figures}", shorten(message, room))
}

/// `text` cut to `width` characters by replacing its middle with `...`.
fn shorten(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.to_string();
    }
    if width < 5 {
        return chars[..width].iter().collect();
    }
    let head = (width - 3) / 2;
    let tail = width - 3 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push_str("...");
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The width of the terminal on stderr (else `COLUMNS`, else 80).
pub fn stderr_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct; failure leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        return ws.ws_col as usize;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| *c > 0)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rules() {
        assert_eq!(Display::resolve(false, false, false), Display::Off);
        assert_eq!(Display::resolve(true, false, false), Display::Borg);
        assert_eq!(Display::resolve(true, false, true), Display::Terminal);
        assert_eq!(Display::resolve(false, false, true), Display::Terminal);
        assert_eq!(Display::resolve(true, true, true), Display::Json);
        assert_eq!(Display::resolve(false, true, true), Display::Off);
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0.2), "0:01");
        assert_eq!(format_duration(59.0), "0:59");
        assert_eq!(format_duration(61.5), "1:02");
        assert_eq!(format_duration(3600.0 * 2.0 + 5.0), "2:00:05");
    }

    #[test]
    fn lines_fit_and_keep_the_figures() {
        let line = line_text("Checking segments 12.5%", "12/96, 3.0/s, ETA 0:28", 80);
        assert_eq!(line, "Checking segments 12.5% | 12/96, 3.0/s, ETA 0:28");
        let long = format!("  5.0% Extracting: {}", "dir/".repeat(40));
        let line = line_text(&long, "1.00 MB/20.00 MB, 1.00 MB/s, ETA 0:19", 60);
        assert_eq!(line.chars().count(), 59);
        assert!(
            line.ends_with(" | 1.00 MB/20.00 MB, 1.00 MB/s, ETA 0:19"),
            "{line}"
        );
        assert!(
            line.starts_with("  5.0% E") && line.contains("..."),
            "{line}"
        );
    }

    #[test]
    fn json_extras() {
        let f = Figures {
            eta_seconds: Some(12.345),
            per_second: Some(3.0),
            bytes_per_second: Some(1000.4),
        };
        assert_eq!(
            json_extra(&f),
            ", \"eta_seconds\": 12.3, \"bytes_per_second\": 1000"
        );
        assert_eq!(
            json_extra(&Figures::default()),
            ", \"eta_seconds\": null, \"bytes_per_second\": null"
        );
    }

    #[test]
    fn figures_text_says_what_is_known() {
        let v = View::new(Display::Terminal, false);
        let f = Figures {
            eta_seconds: Some(30.0),
            per_second: Some(2.0),
            bytes_per_second: None,
        };
        assert_eq!(
            v.figures_text(4, 64, Unit::Count, false, &f),
            "4/64, 2.0/s, ETA 0:30"
        );
        let f = Figures {
            eta_seconds: Some(90.0),
            per_second: Some(1e6),
            bytes_per_second: Some(1e6),
        };
        assert_eq!(
            v.figures_text(10_000_000, 100_000_000, Unit::Bytes, true, &f),
            "10.00 MB/~100.00 MB, 1.00 MB/s, ETA ~1:30"
        );
        assert_eq!(
            v.figures_text(7, 0, Unit::Count, false, &Figures::default()),
            "7"
        );
    }
}
