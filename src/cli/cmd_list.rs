//! `hoard list`: clap arguments, a Python-`str.format`-style renderer for `--format`, and the
//! printing of archive and item listings exactly as borg 1.2 prints them.

use std::collections::HashSet;
use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::commands::list::{self, Field, ItemListOptions};
use crate::commands::select::Selection;
use crate::commands::CommandError;

use super::args::ArchiveFilter;
use super::output;

/// `list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// repository or archive to list contents of
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// paths to list; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Show checkpoint archives in the repository contents list (default: hidden).
    #[arg(long = "consider-checkpoints")]
    pub consider_checkpoints: bool,
    /// only print file/directory names, nothing else
    #[arg(long)]
    pub short: bool,
    /// specify format for file or archive listing
    #[arg(long = "format", alias = "list-format", value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only valid for listing repository contents. Format output as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only valid for listing archive contents. Format output as JSON Lines.
    #[arg(long = "json-lines")]
    pub json_lines: bool,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
    /// exclude paths matching PATTERN
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// read exclude patterns from EXCLUDEFILE, one per line
    #[arg(long = "exclude-from", value_name = "EXCLUDEFILE")]
    pub exclude_from: Vec<String>,
    /// include/exclude paths matching PATTERN
    #[arg(long = "pattern", value_name = "PATTERN")]
    pub pattern: Vec<String>,
    /// read include/exclude patterns from PATTERNFILE, one per line
    #[arg(long = "patterns-from", value_name = "PATTERNFILE")]
    pub patterns_from: Vec<String>,
}

/// A value a format field can render.
pub trait Render {
    /// Renders the value with a Python format spec.
    fn render(&self, spec: &str) -> Result<Vec<u8>, String>;
}

impl Render for Field {
    fn render(&self, spec: &str) -> Result<Vec<u8>, String> {
        match self {
            Field::Str(s) => Ok(pad_str(s, spec, false)?.into_bytes()),
            Field::Bytes(b) => {
                if spec.is_empty() {
                    Ok(b.clone())
                } else {
                    Ok(pad_str(&list::remove_surrogates(b), spec, false)?.into_bytes())
                }
            }
            Field::Int(i) => Ok(pad_str(&i.to_string(), spec, true)?.into_bytes()),
            Field::Bool(b) => {
                Ok(pad_str(if *b { "True" } else { "False" }, spec, true)?.into_bytes())
            }
            Field::Time(t) => {
                let f = if spec.is_empty() {
                    "%a, %Y-%m-%d %H:%M:%S"
                } else {
                    spec
                };
                let mut out = String::new();
                use std::fmt::Write as _;
                write!(out, "{}", t.format(f)).map_err(|_| format!("invalid time format {f:?}"))?;
                Ok(out.into_bytes())
            }
            Field::List(l) => Ok(pad_str(&format!("{l:?}"), spec, false)?.into_bytes()),
            Field::Json(v) => Ok(pad_str(&v.to_string(), spec, false)?.into_bytes()),
            Field::Float(f) => Ok(pad_str(&f.to_string(), spec, true)?.into_bytes()),
        }
    }
}

/// Applies the `[[fill]align][0][width][.precision]` part of a Python format spec.
fn pad_str(s: &str, spec: &str, numeric: bool) -> Result<String, String> {
    if spec.is_empty() {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut fill = ' ';
    let mut align = if numeric { '>' } else { '<' };
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if chars.len() >= 2 && is_align(chars[1]) {
        fill = chars[0];
        align = chars[1];
        i = 2;
    } else if !chars.is_empty() && is_align(chars[0]) {
        align = chars[0];
        i = 1;
    }
    if i < chars.len() && matches!(chars[i], '+' | '-' | ' ') {
        i += 1;
    }
    if i < chars.len() && chars[i] == '0' {
        if i == 0 || !is_align(chars[i.saturating_sub(1)]) {
            fill = '0';
            align = if numeric { '=' } else { '<' };
        }
        i += 1;
    }
    let start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    let width: usize = chars[start..i]
        .iter()
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    let mut precision: Option<usize> = None;
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        let ps = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        precision = chars[ps..i].iter().collect::<String>().parse().ok();
    }
    let rest: String = chars[i..].iter().collect();
    if !(rest.is_empty() || (numeric && rest == "d") || (!numeric && rest == "s")) {
        return Err(format!("Invalid format specifier '{spec}'"));
    }
    let mut body: String = match precision {
        Some(p) if !numeric => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let len = body.chars().count();
    if len < width {
        let pad = width - len;
        let fills = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
        body = match align {
            '<' => format!("{body}{}", fills(pad)),
            '^' => format!("{}{body}{}", fills(pad / 2), fills(pad - pad / 2)),
            '=' if body.starts_with('-') => format!("-{}{}", fills(pad), &body[1..]),
            _ => format!("{}{body}", fills(pad)),
        };
    }
    Ok(body)
}

/// The field names a format string uses.
pub fn format_keys(fmt: &str) -> HashSet<String> {
    let mut keys = HashSet::new();
    let _ = render_format(fmt, &mut |name, _spec| {
        keys.insert(name.to_string());
        Ok(Vec::new())
    });
    keys
}

fn fixed_key(key: &str) -> Option<&'static str> {
    match key {
        "LF" | "NL" | "NEWLINE" => Some("\n"),
        "SPACE" => Some(" "),
        "TAB" => Some("\t"),
        "CR" => Some("\r"),
        "NUL" => Some("\0"),
        _ => None,
    }
}

/// Renders one replacement field `(name, spec)`.
type FieldRenderer<'a> = dyn FnMut(&str, &str) -> Result<Vec<u8>, String> + 'a;

/// Renders a Python format string; `field(name, spec)` renders one replacement field.
fn render_format(fmt: &str, field: &mut FieldRenderer<'_>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut lit = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            if chars.get(i + 1) == Some(&'{') {
                lit.push('{');
                i += 2;
                continue;
            }
            out.extend_from_slice(lit.as_bytes());
            lit.clear();
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '}' {
                j += 1;
            }
            if j >= chars.len() {
                return Err("Single '{' encountered in format string".into());
            }
            let inner: String = chars[i + 1..j].iter().collect();
            let (name_conv, spec) = inner.split_once(':').unwrap_or((&inner, ""));
            let name = name_conv.split('!').next().unwrap_or_default();
            if let Some(v) = fixed_key(name) {
                out.extend_from_slice(pad_str(v, spec, false)?.as_bytes());
            } else {
                out.extend(field(name, spec)?);
            }
            i = j + 1;
        } else if c == '}' {
            if chars.get(i + 1) == Some(&'}') {
                lit.push('}');
                i += 2;
            } else {
                return Err("Single '}' encountered in format string".into());
            }
        } else {
            lit.push(c);
            i += 1;
        }
    }
    out.extend_from_slice(lit.as_bytes());
    Ok(out)
}

/// Renders `fmt` with the values of `fields`.
pub fn format_fields(fmt: &str, fields: &[(&'static str, Field)]) -> Result<Vec<u8>, CommandError> {
    render_format(fmt, &mut |name, spec| {
        let v = fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("KeyError: '{name}'"))?;
        v.render(spec)
    })
    .map_err(CommandError::new)
}

fn write_out(bytes: &[u8]) -> Result<(), CommandError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(bytes)
        .map_err(|e| CommandError::new(format!("stdout: {e}")))
}

/// Runs `list`.
pub fn run(
    a: ListArgs,
    common: &super::args::CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_env(a.location.as_deref())?;
    let sel = Selection::new(
        a.filter.prefix.clone(),
        a.filter.glob_archives.clone(),
        &a.filter.sort_by,
        a.filter.first,
        a.filter.last,
        a.consider_checkpoints,
    )?;
    let mut opened = list::open(&loc, common.lock_wait, confirm)?;
    if let Some(archive) = &loc.archive {
        if a.json {
            return Err(CommandError::new(
                "The --json option is only valid for listing archives, not archive contents.",
            ));
        }
        let fmt = match (&a.format, a.short) {
            (Some(f), _) => f.clone(),
            (None, true) => "{path}{NL}".to_string(),
            (None, false) => "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}".into(),
        };
        let wanted = format_keys(&fmt);
        let mut filter = super::cmd_list::path_filter(&a.paths, &a.exclude)?;
        let json_lines = a.json_lines;
        let opts = ItemListOptions {
            wanted: wanted.clone(),
            json_lines,
            consider_part_files: common.consider_part_files,
        };
        let mut emit = |fields: Vec<(&'static str, Field)>| -> Result<bool, CommandError> {
            if json_lines {
                let mut m = serde_json::Map::new();
                let mut order = Vec::new();
                for (k, v) in &fields {
                    m.insert((*k).to_string(), v.to_json());
                    order.push(*k);
                }
                let mut line = String::from("{");
                for (i, k) in order.iter().enumerate() {
                    if i > 0 {
                        line.push_str(", ");
                    }
                    line.push_str(&output::json_line(&json!(k)));
                    line.push_str(": ");
                    line.push_str(&output::json_line(&m[*k]));
                }
                line.push_str("}\n");
                write_out(line.as_bytes())?;
            } else {
                write_out(&format_fields(&fmt, &fields)?)?;
            }
            Ok(true)
        };
        list::list_items(
            &mut opened,
            archive.as_bytes(),
            opts,
            &mut filter,
            &mut emit,
            common.lock_wait,
        )?;
        return Ok(super::EXIT_SUCCESS);
    }
    if a.json_lines {
        return Err(CommandError::new(
            "The --json-lines option is only valid for listing archive contents, not archives.",
        ));
    }
    let fmt = match (&a.format, a.short) {
        (Some(f), _) => f.clone(),
        (None, true) => "{archive}{NL}".to_string(),
        (None, false) => "{archive:<36} {time} [{id}]{NL}".into(),
    };
    let wanted = format_keys(&fmt);
    let archives = list::list_archives(&opened, &sel);
    let mut data = Vec::new();
    for info in &archives {
        let fields = list::archive_fields(&mut opened, info, &wanted, a.json)?;
        if a.json {
            let mut m = serde_json::Map::new();
            for (k, v) in &fields {
                m.insert((*k).to_string(), v.to_json());
            }
            data.push(serde_json::Value::Object(m));
        } else {
            write_out(&format_fields(&fmt, &fields)?)?;
        }
    }
    if a.json {
        let mut v = basic_json(&opened);
        v["archives"] = serde_json::Value::Array(data);
        write_out(output::json_pretty(&v).as_bytes())?;
        write_out(b"\n")?;
    }
    Ok(super::EXIT_SUCCESS)
}

/// borg's `basic_json_data`: `repository` (id, location, last_modified) and `encryption`.
pub fn basic_json(opened: &crate::commands::common::Opened) -> serde_json::Value {
    let mut encryption = json!({"mode": opened.store.key.key_type().mode_name()});
    if let crate::commands::common::KeyLocation::File(p) = &opened.key_location {
        encryption["keyfile"] = json!(p.to_string_lossy());
    }
    json!({
        "encryption": encryption,
        "repository": {
            "id": hex::encode(opened.id()),
            "last_modified": output::json_timestamp_seconds(&opened.manifest.timestamp),
            "location": opened.location.canonical(),
        },
    })
}

/// The PATH / `--exclude` filter of `list REPO::ARCHIVE` (borg's `build_matcher`): PATHs
/// select items at or below them (`pp:` style), excludes are `fm:` globs.
pub fn path_filter(
    paths: &[String],
    excludes: &[String],
) -> Result<impl FnMut(&crate::archive::item::Item) -> bool, CommandError> {
    let prefixes: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            p.trim_start_matches('/')
                .trim_end_matches('/')
                .as_bytes()
                .to_vec()
        })
        .collect();
    if !excludes.is_empty() {
        return Err(CommandError::new(
            "--exclude is not supported by hoard list yet",
        ));
    }
    Ok(move |item: &crate::archive::item::Item| {
        if prefixes.is_empty() {
            return true;
        }
        prefixes.iter().any(|p| {
            p.is_empty()
                || item.path == *p
                || (item.path.starts_with(p) && item.path.get(p.len()) == Some(&b'/'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_pad_like_python() {
        assert_eq!(pad_str("ab", "<5", false).unwrap(), "ab   ");
        assert_eq!(pad_str("ab", "6", false).unwrap(), "ab    ");
        assert_eq!(pad_str("12", "8", true).unwrap(), "      12");
        assert_eq!(pad_str("12", "08", true).unwrap(), "00000012");
        assert_eq!(pad_str("ab", "*^6", false).unwrap(), "**ab**");
        assert_eq!(pad_str("abcdef", ".3", false).unwrap(), "abc");
        assert_eq!(pad_str("abc", "2", false).unwrap(), "abc");
    }

    #[test]
    fn formats_render() {
        let fields = vec![("a", Field::Str("x".into())), ("n", Field::Int(5))];
        assert_eq!(
            format_fields("{a:>3}|{n:04}{{}}{NL}", &fields).unwrap(),
            b"  x|0005{}\n"
        );
    }
}
