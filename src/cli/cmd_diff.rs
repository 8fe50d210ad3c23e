//! `diff`: clap arguments and borg's text and `--json-lines` output.

use std::io::Write;

use chrono::TimeZone;
use clap::Args;
use serde_json::{json, Value as Json};

use crate::commands::diff::{self, Change, DiffOptions};
use crate::commands::extract::remove_surrogates;
use crate::commands::CommandError;

use super::options::CommonOptions;
use super::options::{PatternOptions, Selector};
use super::{log, output};

/// `diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// repository location and ARCHIVE1 name
    #[arg(value_name = "REPO::ARCHIVE1")]
    pub location: String,
    /// ARCHIVE2 name (no repository location allowed)
    #[arg(value_name = "ARCHIVE2")]
    pub archive2: String,
    /// paths of items inside the archives to compare; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// only consider numeric user and group identifiers
    /// (--numeric-owner is the deprecated older name)
    #[arg(long = "numeric-ids", alias = "numeric-owner")]
    pub numeric_ids: bool,
    /// Override check of chunker parameters.
    #[arg(long = "same-chunker-params")]
    pub same_chunker_params: bool,
    /// Sort the output by path (deprecated, use --sort-by=path).
    #[arg(long)]
    pub sort: bool,
    /// Advanced sorting: specify field(s) to sort by. Accepts a comma-separated list. Prefix with > for descending or < for ascending (default).
    #[arg(long = "sort-by", value_name = "FIELDS", value_parser = diff::parse_sort_by)]
    pub sort_by: Option<diff::SortSpec>,
    /// Only compare differences in content (exclude metadata differences)
    #[arg(long = "content-only")]
    pub content_only: bool,
    /// Format output as JSON Lines.
    #[arg(long = "json-lines")]
    pub json_lines: bool,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
}

/// borg's `sizeof_fmt` with a precision and an optional `+` sign.
pub fn size_fmt(v: i128, precision: usize, sign: bool, iec: bool) -> String {
    let (units, power): (&[&str], f64) = if iec {
        (
            &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
            1024.0,
        )
    } else {
        (&["", "k", "M", "G", "T", "P", "E", "Z", "Y"], 1000.0)
    };
    let plus = if sign && v > 0 { "+" } else { "" };
    let scale = 10f64.powi(precision as i32);
    let mut num = v as f64;
    let mut prec = 0;
    let mut unit = units[units.len() - 1];
    for u in &units[..units.len() - 1] {
        if ((num * scale).round() / scale).abs() < power {
            unit = u;
            break;
        }
        num /= power;
        prec = precision;
    }
    format!("{plus}{num:.prec$} {unit}B")
}

/// Python's `datetime.fromtimestamp(ns / 1e9)` in local time.
fn local_time(ns: i64) -> Option<chrono::DateTime<chrono::Local>> {
    let x = ns as f64 / 1e9;
    let secs = x.floor();
    let frac = (x - secs) * 1e6;
    let mut us = frac.round();
    if (frac - frac.floor() - 0.5).abs() < f64::EPSILON && (frac.floor() as i64) % 2 == 0 {
        us = frac.floor();
    }
    let (mut s, mut us) = (secs as i64, us as i64);
    if us >= 1_000_000 {
        s += 1;
        us -= 1_000_000;
    }
    chrono::Local.timestamp_opt(s, (us * 1000) as u32).single()
}

fn ts_text(ns: i64) -> String {
    local_time(ns).map_or_else(
        || ns.to_string(),
        |t| t.format("%a, %Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn ts_json(ns: i64) -> String {
    local_time(ns).map_or_else(
        || ns.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    )
}

fn opt_name(n: &Option<String>) -> String {
    n.clone().unwrap_or_else(|| "None".into())
}

/// The text of one change as borg prints it.
pub fn change_text(c: &Change, iec: bool) -> String {
    match c {
        Change::Modified {
            added: Some(a),
            removed: Some(r),
        } => format!(
            "{:>9} {:>9}",
            size_fmt(i128::from(*a), 1, true, iec),
            size_fmt(-i128::from(*r), 1, true, iec)
        ),
        Change::Modified { .. } => "modified".into(),
        Change::Added { size } => format!(
            "added {:>13}",
            output::format_file_size(i128::from(*size), iec)
        ),
        Change::Removed { size } => format!(
            "removed {:>11}",
            output::format_file_size(i128::from(*size), iec)
        ),
        Change::Kind(k) => k.clone(),
        Change::Owner {
            old_user,
            old_group,
            new_user,
            new_group,
        } => format!(
            "[{}:{} -> {}:{}]",
            opt_name(old_user),
            opt_name(old_group),
            opt_name(new_user),
            opt_name(new_group)
        ),
        Change::Mode { old, new } => format!("[{old} -> {new}]"),
        Change::Time { attr, old, new } => {
            format!("[{attr}: {} -> {}]", ts_text(*old), ts_text(*new))
        }
    }
}

/// The JSON object of one change as borg's `--json-lines` has it.
pub fn change_json(c: &Change) -> Json {
    match c {
        Change::Modified {
            added: Some(a),
            removed: Some(r),
        } => json!({"type": "modified", "added": a, "removed": r}),
        Change::Modified { .. } => json!({"type": "modified"}),
        Change::Added { size } => json!({"type": "added", "size": size}),
        Change::Removed { size } => json!({"type": "removed", "size": size}),
        Change::Kind(k) => json!({ "type": k }),
        Change::Owner {
            old_user,
            old_group,
            new_user,
            new_group,
        } => json!({"type": "owner", "old_user": old_user, "old_group": old_group,
                    "new_user": new_user, "new_group": new_group}),
        Change::Mode { old, new } => json!({"type": "mode", "old_mode": old, "new_mode": new}),
        Change::Time { attr, old, new } => {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), json!(attr));
            m.insert(format!("old_{attr}"), json!(ts_json(*old)));
            m.insert(format!("new_{attr}"), json!(ts_json(*new)));
            Json::Object(m)
        }
    }
}

/// Runs `diff`; returns the exit code.
pub fn run(a: DiffArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_with(Some(&a.location), &common.repo)?;
    let mut selector = Selector::new(&a.paths, &a.patterns)?;
    let opts = DiffOptions {
        same_chunker_params: a.same_chunker_params,
        sort: a.sort,
        sort_by: a.sort_by.map(|s| s.0).unwrap_or_default(),
        content_only: a.content_only,
        consider_part_files: common.consider_part_files,
        lock: common.lock_spec(),
    };
    let mut filter = |p: &[u8]| selector.matches(p);
    let result = diff::run(&loc, &a.archive2, &opts, &mut filter, &super::confirm)?;
    let mut warned = false;
    for w in &result.warnings {
        log::warning(w);
        warned = true;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (path, changes) in &result.entries {
        let path = remove_surrogates(path);
        let line = if a.json_lines {
            let ch: Vec<Json> = changes.iter().map(change_json).collect();
            output::json_line(&json!({"path": path, "changes": ch}))
        } else {
            let text: Vec<String> = changes.iter().map(|c| change_text(c, common.iec)).collect();
            format!("{:<19} {}", text.join(" "), path)
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    for w in selector.unmatched_warnings() {
        log::warning(&w);
        warned = true;
    }
    Ok(if warned {
        super::EXIT_WARNING
    } else {
        super::EXIT_SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_borg() {
        assert_eq!(size_fmt(12, 1, true, false), "+12 B");
        assert_eq!(size_fmt(-6, 1, true, false), "-6 B");
        assert_eq!(size_fmt(0, 1, true, false), "0 B");
        assert_eq!(size_fmt(728_895, 1, true, false), "+728.9 kB");
        assert_eq!(size_fmt(-588_895, 1, true, false), "-588.9 kB");
    }
}
