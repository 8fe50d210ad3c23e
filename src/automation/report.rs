//! `hoard report`: one self-contained HTML page (inline CSS and SVG, no script, no font, no
//! request; a Content-Security-Policy of `default-src 'none'` says so to the browser) with
//! charts of a repository's archives over time (original and deduplicated size, duration),
//! the repository's growth and deduplication ratio, a job's run history, and the table of
//! archives. Readable on a phone (the layout narrows to one column, the table scrolls) and
//! printable (print CSS). [`Report`] is built from a repository ([`Report::from_repo`]) or a
//! job's history ([`Report::from_history`]); [`Report::to_html`] renders it.

use std::fmt::Write;

use chrono::NaiveDateTime;

use super::status::{format_duration, format_size, JobStatus};
use crate::commands::report::RepoReport;

/// One archive row (and point on the archive charts).
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRow {
    /// Name.
    pub name: String,
    /// Start (or for a job, the run's end), local time.
    pub time: NaiveDateTime,
    /// Files.
    pub files: u64,
    /// Original size.
    pub original: u64,
    /// Compressed size.
    pub compressed: u64,
    /// Deduplicated size.
    pub deduplicated: u64,
    /// Seconds the backup took.
    pub duration: f64,
}

/// A point of a time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Local time.
    pub time: NaiveDateTime,
    /// Value.
    pub value: f64,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// When it ended, local time.
    pub time: NaiveDateTime,
    /// Its exit code.
    pub exit_code: i32,
    /// Attempts the backup used.
    pub tries: u32,
    /// Seconds the run took.
    pub duration: f64,
    /// Its archive, if one was made.
    pub archive: Option<String>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// Page heading.
    pub title: String,
    /// Line under the heading (the repository).
    pub subtitle: String,
    /// When the report was made (text).
    pub generated: String,
    /// Key figures shown as cards (label, value).
    pub facts: Vec<(String, String)>,
    /// Archives, oldest first.
    pub archives: Vec<ArchiveRow>,
    /// What the archive table shows, in one sentence.
    pub archives_note: String,
    /// Stored size of the repository over time.
    pub growth: Vec<Point>,
    /// What the growth chart shows.
    pub growth_note: String,
    /// Deduplication ratio (original / stored) over time.
    pub ratio: Vec<Point>,
    /// A job's runs, oldest first (`None` for a repository report).
    pub runs: Option<Vec<RunRow>>,
}

fn local(t: chrono::DateTime<chrono::Utc>) -> NaiveDateTime {
    t.with_timezone(&chrono::Local).naive_local()
}

fn ratio(original: f64, stored: f64) -> Option<f64> {
    (stored > 0.0).then(|| original / stored)
}

impl Report {
    /// A repository's report: its archives and, in their time order, the data each added.
    pub fn from_repo(r: &RepoReport, generated: NaiveDateTime) -> Report {
        let archives: Vec<ArchiveRow> = r
            .archives
            .iter()
            .map(|a| ArchiveRow {
                name: a.name.clone(),
                time: a.start,
                files: a.nfiles,
                original: a.original_size,
                compressed: a.compressed_size,
                deduplicated: a.deduplicated_size,
                duration: a.duration,
            })
            .collect();
        let (mut stored, mut original) = (0u64, 0u64);
        let mut growth = Vec::new();
        let mut ratios = Vec::new();
        for a in &r.archives {
            stored += a.added_size;
            original += a.original_size;
            growth.push(Point {
                time: a.start,
                value: stored as f64,
            });
            if let Some(v) = ratio(original as f64, stored as f64) {
                ratios.push(Point {
                    time: a.start,
                    value: v,
                });
            }
        }
        let t = &r.totals;
        let mut facts = vec![
            ("Archives".to_string(), r.archives.len().to_string()),
            ("Repository size".into(), format_size(t.unique_csize)),
            (
                "Original data, all archives".into(),
                format_size(t.total_size),
            ),
        ];
        if let Some(v) = ratio(t.total_size as f64, t.unique_csize as f64) {
            facts.push(("Deduplication ratio".into(), format!("{v:.1} : 1")));
        }
        if let Some(a) = r.archives.last() {
            facts.push((
                "Newest archive".into(),
                a.start.format("%Y-%m-%d %H:%M").to_string(),
            ));
        }
        Report {
            title: "Backup report".into(),
            subtitle: format!("Repository {}", r.location),
            generated: generated.format("%Y-%m-%d %H:%M").to_string(),
            facts,
            archives,
            archives_note: "Every archive in the repository, newest first.".into(),
            growth,
            growth_note:
                "Stored data of the archives kept today, added up in the order they were made."
                    .into(),
            ratio: ratios,
            runs: None,
        }
    }

    /// A job's report from its run history (no repository access: no passphrase needed).
    pub fn from_history(job: &str, runs: &[JobStatus], generated: NaiveDateTime) -> Report {
        let mut archives = Vec::new();
        let mut growth = Vec::new();
        let mut ratios = Vec::new();
        let mut rows = Vec::new();
        for r in runs {
            let Some(end) = r.end_time() else { continue };
            let time = local(end);
            if let (Some(name), Some(z)) = (&r.archive, &r.sizes) {
                archives.push(ArchiveRow {
                    name: name.clone(),
                    time,
                    files: z.files,
                    original: z.original,
                    compressed: z.compressed,
                    deduplicated: z.deduplicated,
                    duration: z.duration_seconds,
                });
            }
            if let Some(size) = r.repository_size {
                growth.push(Point {
                    time,
                    value: size as f64,
                });
                if let Some(v) = r
                    .repository_original_size
                    .and_then(|o| ratio(o as f64, size as f64))
                {
                    ratios.push(Point { time, value: v });
                }
            }
            rows.push(RunRow {
                time,
                exit_code: r.exit_code,
                tries: r.tries,
                duration: r.duration_seconds,
                archive: r.archive.clone(),
            });
        }
        let mut facts = Vec::new();
        if let Some(last) = runs.last() {
            facts.push(("Last run".to_string(), last.result.clone()));
            let ls = last
                .last_success_time()
                .map(|t| local(t).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into());
            facts.push(("Last success".into(), ls));
            if let Some(n) = last.archive_count {
                facts.push(("Archives".into(), n.to_string()));
            }
            if let Some(s) = last.repository_size {
                facts.push(("Repository size".into(), format_size(s)));
                if let Some(v) = last
                    .repository_original_size
                    .and_then(|o| ratio(o as f64, s as f64))
                {
                    facts.push(("Deduplication ratio".into(), format!("{v:.1} : 1")));
                }
            }
        }
        // The latest measured coverage (a refused run measures none).
        if let Some(text) = runs.iter().rev().find_map(JobStatus::coverage_text) {
            let text = text.trim_start_matches("verified ");
            facts.push(("Data verified".into(), text.to_string()));
        }
        let failed = runs.iter().filter(|r| !r.succeeded()).count();
        facts.push((
            "Runs recorded".into(),
            format!("{} ({failed} failed)", runs.len()),
        ));
        let repo = runs
            .last()
            .map(|r| r.repository.clone())
            .unwrap_or_default();
        Report {
            title: format!("Backup job {job}"),
            subtitle: format!("Repository {repo}"),
            generated: generated.format("%Y-%m-%d %H:%M").to_string(),
            facts,
            archives,
            archives_note: "The archives this job's recorded runs made, newest first (older ones may have been pruned since).".into(),
            growth,
            growth_note: "Stored size of the repository after each run.".into(),
            ratio: ratios,
            runs: Some(rows),
        }
    }

    /// The page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
            esc(&format!("{} — {}", self.title, self.subtitle))
        );
        let _ = writeln!(
            h,
            "<header><h1>{}</h1><p class=\"sub\">{}</p><p class=\"gen\">Made by hoard on {}</p></header>",
            esc(&self.title),
            esc(&self.subtitle),
            esc(&self.generated)
        );
        h.push_str("<section class=\"facts\">\n");
        for (k, v) in &self.facts {
            let class = match v.as_str() {
                "failure" => " bad",
                "warning" => " warn",
                _ => "",
            };
            let _ = writeln!(
                h,
                "<div class=\"fact{class}\"><span>{}</span><strong>{}</strong></div>",
                esc(k),
                esc(v)
            );
        }
        h.push_str("</section>\n<section class=\"charts\">\n");
        let series = |f: fn(&ArchiveRow) -> f64| -> Vec<Point> {
            self.archives
                .iter()
                .map(|a| Point {
                    time: a.time,
                    value: f(a),
                })
                .collect()
        };
        h.push_str(&figure(
            "Original size of each archive",
            "What each backup covered.",
            &Chart::line(series(|a| a.original as f64), "#2b6cb0"),
            Unit::Bytes,
        ));
        h.push_str(&figure(
            "Deduplicated size of each archive",
            "Stored data only this archive references.",
            &Chart::bars(series(|a| a.deduplicated as f64), "#2f855a"),
            Unit::Bytes,
        ));
        h.push_str(&figure(
            "Duration of each backup",
            "Time from the archive's start to its end.",
            &Chart::bars(series(|a| a.duration), "#805ad5"),
            Unit::Seconds,
        ));
        h.push_str(&figure(
            "Repository growth",
            &self.growth_note,
            &Chart::line(self.growth.clone(), "#dd6b20").filled(),
            Unit::Bytes,
        ));
        h.push_str(&figure(
            "Deduplication ratio",
            "Original size of all archives divided by the stored size.",
            &Chart::line(self.ratio.clone(), "#2c7a7b"),
            Unit::Ratio,
        ));
        if let Some(runs) = &self.runs {
            h.push_str(&runs_figure(runs));
        }
        h.push_str("</section>\n");
        h.push_str(&self.table());
        h.push_str("</main>\n</body>\n</html>\n");
        h
    }

    fn table(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<section class=\"archives\">\n<h2>Archives</h2>\n<p class=\"note\">{}</p>\n",
            esc(&self.archives_note)
        );
        if self.archives.is_empty() {
            h.push_str("<p class=\"empty\">No archives.</p>\n</section>\n");
            return h;
        }
        h.push_str(
            "<div class=\"scroll\"><table id=\"archives\">\n<thead><tr><th>Archive</th><th>Date</th>\
             <th class=\"n opt\">Files</th><th class=\"n\">Original</th><th class=\"n opt\">Compressed</th>\
             <th class=\"n\">Dedupli&shy;cated</th><th class=\"n opt\">Duration</th></tr></thead>\n<tbody>\n",
        );
        for a in self.archives.iter().rev() {
            let _ = writeln!(
                h,
                "<tr><td class=\"name\">{}</td><td class=\"date\">{} <span>{}</span></td><td class=\"n opt\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n opt\">{}</td><td class=\"n\">{}</td><td class=\"n opt\">{}</td></tr>",
                esc(&a.name),
                a.time.format("%Y-%m-%d"),
                a.time.format("%H:%M"),
                a.files,
                format_size(a.original),
                format_size(a.compressed),
                format_size(a.deduplicated),
                esc(&format_duration(a.duration))
            );
        }
        h.push_str("</tbody>\n</table></div>\n</section>\n");
        h
    }
}

/// HTML text escaping (also for attribute values).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a chart's values read.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Bytes,
    Seconds,
    Ratio,
}

impl Unit {
    /// A value as the axis shows it (durations without their zero parts: `1 h 20 min`).
    fn label(self, v: f64) -> String {
        match self {
            Unit::Bytes => format_size(v.max(0.0) as u64),
            Unit::Seconds => axis_duration(v),
            Unit::Ratio => format!("{v:.1}"),
        }
    }

    /// The top of an axis reaching `max`: four even steps of a round size for this unit.
    fn axis_max(self, max: f64) -> f64 {
        match self {
            Unit::Seconds => 4.0 * duration_step(max / 4.0),
            Unit::Bytes | Unit::Ratio => nice_max(max),
        }
    }
}

/// The smallest round duration (seconds: 1, 2, 5, 10, 15, 30 s; 1, 2, 5, 10, 15, 20, 30 min;
/// 1, 2, 3, 6, 12 h; 1, 2, 7 days, then whole weeks) of at least `step` seconds.
fn duration_step(step: f64) -> f64 {
    const ROUND: [f64; 21] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
        7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0,
    ];
    if !step.is_finite() || step <= 0.0 {
        return 1.0;
    }
    if step < 1.0 {
        return nice_max(step);
    }
    ROUND
        .iter()
        .copied()
        .find(|&r| r >= step)
        .unwrap_or_else(|| (step / 604800.0).ceil() * 604800.0)
}

/// A duration on an axis: `0 s`, `0.25 s`, `45 s`, `20 min`, `1 h 20 min`, `2 d 12 h`.
fn axis_duration(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "0 s".into();
    }
    if secs < 60.0 {
        let text = format!("{secs:.2}");
        return format!("{} s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    let s = secs.round() as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let parts = [(d, "d"), (h, "h"), (m, "min"), (sec, "s")];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    words.join(" ")
}

/// A chart: one series, drawn as a line (optionally filled) or as bars.
struct Chart {
    points: Vec<Point>,
    color: &'static str,
    bars: bool,
    filled: bool,
}

impl Chart {
    fn line(points: Vec<Point>, color: &'static str) -> Chart {
        Chart {
            points,
            color,
            bars: false,
            filled: false,
        }
    }
    fn bars(points: Vec<Point>, color: &'static str) -> Chart {
        Chart {
            points,
            color,
            bars: true,
            filled: false,
        }
    }
    fn filled(mut self) -> Chart {
        self.filled = true;
        self
    }
}

// The drawing area, in SVG user units (the SVG scales to the page's width).
const W: f64 = 440.0;
const H: f64 = 200.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// A "nice" upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten, at least `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// X positions: by time when the points span some time, else evenly.
fn x_positions(points: &[Point]) -> Vec<f64> {
    let span = W - LEFT - RIGHT;
    let ts: Vec<f64> = points
        .iter()
        .map(|p| p.time.and_utc().timestamp() as f64)
        .collect();
    let (lo, hi) = ts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &t| (a.min(t), b.max(t)));
    let n = points.len();
    if n == 1 {
        return vec![LEFT + span / 2.0];
    }
    // Bars need room at both ends.
    let pad = span / (n as f64 * 2.0).max(8.0);
    if hi > lo {
        ts.iter()
            .map(|t| LEFT + pad + (t - lo) / (hi - lo) * (span - 2.0 * pad))
            .collect()
    } else {
        (0..n)
            .map(|i| LEFT + pad + i as f64 / (n - 1) as f64 * (span - 2.0 * pad))
            .collect()
    }
}

fn svg_chart(chart: &Chart, unit: Unit, label: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\">",
        esc(label)
    );
    let plot_h = H - TOP - BOTTOM;
    let max = unit.axis_max(chart.points.iter().map(|p| p.value).fold(0.0, f64::max));
    let y = |v: f64| TOP + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"ylab\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&unit.label(v))
        );
    }
    if chart.points.is_empty() {
        let _ = write!(
            s,
            "<text class=\"nodata\" x=\"{:.1}\" y=\"{:.1}\">no data yet</text></svg>",
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + plot_h / 2.0
        );
        return s;
    }
    let xs = x_positions(&chart.points);
    // x labels: first and last time (and the middle one when there is room).
    let n = chart.points.len();
    let mut shown = vec![0, n - 1];
    if n > 2 {
        shown.insert(1, n / 2);
    }
    shown.dedup();
    for (k, &i) in shown.iter().enumerate() {
        let anchor = if shown.len() == 1 {
            "middle"
        } else if k == 0 {
            "start"
        } else if k == shown.len() - 1 {
            "end"
        } else {
            "middle"
        };
        let x = match anchor {
            "start" => xs[i].clamp(LEFT, LEFT + 40.0),
            "end" => xs[i].clamp(W - RIGHT - 40.0, W - RIGHT),
            _ => xs[i],
        };
        let _ = write!(
            s,
            "<text class=\"xlab\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            H - 8.0,
            chart.points[i].time.format("%Y-%m-%d")
        );
    }
    let tip = |p: &Point| {
        format!(
            "<title>{}: {}</title>",
            p.time.format("%Y-%m-%d %H:%M"),
            esc(&unit.label(p.value))
        )
    };
    if chart.bars {
        let slot = (W - LEFT - RIGHT) / (n as f64).max(1.0);
        let bw = (slot * 0.7).clamp(1.5, 28.0);
        for (p, x) in chart.points.iter().zip(&xs) {
            let top = y(p.value);
            let _ = write!(
                s,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\">{}</rect>",
                x - bw / 2.0,
                (TOP + plot_h - top).max(0.5),
                chart.color,
                tip(p)
            );
        }
    } else {
        let path: Vec<String> = chart
            .points
            .iter()
            .zip(&xs)
            .map(|(p, x)| format!("{x:.1},{:.1}", y(p.value)))
            .collect();
        if chart.filled {
            let _ = write!(
                s,
                "<polygon class=\"area\" points=\"{:.1},{:.1} {} {:.1},{:.1}\" fill=\"{}\"/>",
                xs[0],
                TOP + plot_h,
                path.join(" "),
                xs[n - 1],
                TOP + plot_h,
                chart.color
            );
        }
        let _ = write!(
            s,
            "<polyline class=\"line\" points=\"{}\" stroke=\"{}\"/>",
            path.join(" "),
            chart.color
        );
        let r = if n > 60 { 1.5 } else { 3.0 };
        for (p, x) in chart.points.iter().zip(&xs) {
            let _ = write!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{}\">{}</circle>",
                y(p.value),
                chart.color,
                tip(p)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn figure(title: &str, note: &str, chart: &Chart, unit: Unit) -> String {
    format!(
        "<figure class=\"card\">\n<figcaption><h2>{}</h2><p class=\"note\">{}</p></figcaption>\n{}\n</figure>\n",
        esc(title),
        esc(note),
        svg_chart(chart, unit, title)
    )
}

/// The run history: one bar per run, its height the tries used, its colour the result.
fn runs_figure(runs: &[RunRow]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"Run history\">"
    );
    let plot_h = H - TOP - BOTTOM;
    let max = runs.iter().map(|r| r.tries).max().unwrap_or(1).max(3);
    let y = |v: f64| TOP + plot_h - v / f64::from(max) * plot_h;
    for t in 0..=max {
        let yy = y(f64::from(t));
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"ylab\" x=\"{:.1}\" y=\"{:.1}\">{t} {}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            if t == 1 { "try" } else { "tries" }
        );
    }
    let n = runs.len();
    if n == 0 {
        let _ = write!(
            s,
            "<text class=\"nodata\" x=\"{:.1}\" y=\"{:.1}\">no runs yet</text>",
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + plot_h / 2.0
        );
    } else {
        // Evenly spaced: every run gets a bar, however close in time.
        let slot = (W - LEFT - RIGHT) / n as f64;
        let bw = (slot * 0.7).clamp(1.5, 28.0);
        for (i, r) in runs.iter().enumerate() {
            let x = LEFT + slot * (i as f64 + 0.5);
            let tries = f64::from(r.tries.max(1));
            let top = y(tries);
            let (class, word) = match r.exit_code {
                0 => ("ok", "success"),
                1 => ("warn", "warning"),
                _ => ("bad", "failure"),
            };
            let _ = write!(
                s,
                "<rect class=\"run {class}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bw:.1}\" height=\"{:.1}\">\
                 <title>{}: {word}, {} {}, {}{}</title></rect>",
                x - bw / 2.0,
                TOP + plot_h - top,
                r.time.format("%Y-%m-%d %H:%M"),
                r.tries,
                if r.tries == 1 { "try" } else { "tries" },
                esc(&format_duration(r.duration)),
                r.archive
                    .as_deref()
                    .map(|a| format!(", {}", esc(a)))
                    .unwrap_or_default()
            );
        }
        let _ = write!(
            s,
            "<text class=\"xlab\" x=\"{LEFT}\" y=\"{:.1}\" text-anchor=\"start\">{}</text>\
             <text class=\"xlab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - 8.0,
            runs[0].time.format("%Y-%m-%d"),
            W - RIGHT,
            H - 8.0,
            runs[n - 1].time.format("%Y-%m-%d")
        );
    }
    s.push_str("</svg>");
    let ok = runs.iter().filter(|r| r.exit_code == 0).count();
    let warn = runs.iter().filter(|r| r.exit_code == 1).count();
    let bad = n - ok - warn;
    format!(
        "<figure class=\"card\">\n<figcaption><h2>Run history</h2><p class=\"note\">Tries each run used. \
         <span class=\"key ok\">success {ok}</span> <span class=\"key warn\">warning {warn}</span> \
         <span class=\"key bad\">failure {bad}</span></p></figcaption>\n{s}\n</figure>\n"
    )
}

const CSS: &str = r#"
:root{--fg:#1a202c;--muted:#5a6578;--bg:#f4f6f9;--card:#fff;--line:#d8dee8}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px}
header h1{margin:0 0 2px;font-size:1.5rem}
.sub{margin:0;color:var(--muted);overflow-wrap:anywhere}
.gen{margin:2px 0 0;color:var(--muted);font-size:.85rem}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:16px 0}
.fact{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.fact span{display:block;color:var(--muted);font-size:.8rem}
.fact strong{font-size:1.15rem}
.fact.bad strong{color:#c53030}.fact.warn strong{color:#b7791f}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:12px}
.card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px}
.card h2,.archives h2{margin:0;font-size:1.05rem}
.note{margin:2px 0 8px;color:var(--muted);font-size:.85rem}
svg.chart{display:block;width:100%;height:auto}
.grid{stroke:var(--line);stroke-width:1}
.ylab{font-size:13px;fill:var(--muted);text-anchor:end}
.xlab{font-size:13px;fill:var(--muted)}
.nodata{font-size:14px;fill:var(--muted);text-anchor:middle}
.line{fill:none;stroke-width:2.5;stroke-linejoin:round}
.area{opacity:.18}
.run.ok,.key.ok::before{fill:#38a169;background:#38a169}
.run.warn,.key.warn::before{fill:#d69e2e;background:#d69e2e}
.run.bad,.key.bad::before{fill:#e53e3e;background:#e53e3e}
.key{white-space:nowrap;margin-right:6px}
.key::before{content:"";display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.archives{margin-top:16px;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{position:sticky;top:0;background:var(--card);color:var(--muted);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.name{white-space:normal;overflow-wrap:anywhere;min-width:8em}
tbody tr:nth-child(even){background:#f8fafc}
@media (max-width:600px){
 main{padding:10px}
 header h1{font-size:1.25rem}
 .facts{grid-template-columns:repeat(2,1fr);gap:8px}
 .fact strong{font-size:1rem}
 .opt{display:none}
 table{font-size:.8rem}
 th,td{padding:5px 4px}
 th{white-space:normal;vertical-align:bottom}
 td.name{min-width:6em}
 td.date span{display:block}
}
@media print{
 @page{margin:14mm}
 body{background:#fff;font-size:10pt}
 main{max-width:none;padding:0}
 .charts{grid-template-columns:1fr 1fr}
 .card,.fact,.archives{border-color:#bbb;break-inside:avoid}
 .archives{border:0;padding:0}
 .scroll{overflow:visible}
 .opt{display:table-cell}
 th{position:static}
 tr{break-inside:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn page_is_self_contained_and_escapes_names() {
        let row = |name: &str, at: &str, d: u64| ArchiveRow {
            name: name.into(),
            time: t(at),
            files: 3,
            original: 1000,
            compressed: 800,
            deduplicated: d,
            duration: 1.5,
        };
        let r = Report {
            title: "Backup job j".into(),
            subtitle: "Repository /r".into(),
            generated: "2026-01-02 00:00".into(),
            facts: vec![("Last run".into(), "failure".into())],
            archives: vec![
                row("a<script>", "2026-01-01 00:00", 500),
                row("b&c", "2026-01-02 00:00", 20),
            ],
            archives_note: "n".into(),
            growth: vec![Point {
                time: t("2026-01-01 00:00"),
                value: 500.0,
            }],
            growth_note: "g".into(),
            ratio: Vec::new(),
            runs: Some(vec![RunRow {
                time: t("2026-01-01 00:00"),
                exit_code: 2,
                tries: 3,
                duration: 4.0,
                archive: None,
            }]),
        };
        let html = r.to_html();
        assert!(html.contains("default-src 'none'"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script"));
        assert!(html.contains("a&lt;script&gt;") && html.contains("b&amp;c"));
        assert_eq!(html.matches("<svg").count(), 6);
        assert_eq!(html.matches("<tr>").count(), 3);
        assert!(html.contains("class=\"run bad\""));
        assert!(html.contains("no data yet"));
        assert!(html.contains("<div class=\"fact bad\">"));
    }

    #[test]
    fn duration_axes_step_by_round_durations() {
        assert_eq!(Unit::Seconds.axis_max(5_000.0), 4.0 * 1_800.0);
        assert_eq!(Unit::Seconds.axis_max(0.7), 0.8);
        assert_eq!(Unit::Seconds.axis_max(90.0), 120.0);
        assert_eq!(
            Unit::Seconds.axis_max(4.0 * 86_400.0 * 9.0),
            4.0 * 1_209_600.0
        );
        assert_eq!(axis_duration(0.0), "0 s");
        assert_eq!(axis_duration(0.25), "0.25 s");
        assert_eq!(axis_duration(30.0), "30 s");
        assert_eq!(axis_duration(1_200.0), "20 min");
        assert_eq!(axis_duration(4_800.0), "1 h 20 min");
        assert_eq!(axis_duration(216_000.0), "2 d 12 h");
    }

    #[test]
    fn axes_round_up() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(1800.0), 2000.0);
        assert_eq!(nice_max(2400.0), 2500.0);
        assert_eq!(nice_max(3000.0), 5000.0);
    }
}
