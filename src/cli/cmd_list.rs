//! `hoard list`: clap arguments, a Python-`str.format`-style renderer for `--format`, and the
//! printing of archive and item listings exactly as borg 1.2 prints them.

use std::collections::HashSet;
use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::commands::list::{self, Field, ItemListOptions};
use crate::commands::select::Selection;
use crate::commands::CommandError;

use super::options::ArchiveFilter;
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
    ///
    /// Default for items: "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}"; for archives: "{archive:<36} {time} [{id}]{NL}". See "Format" below for the keys.
    #[arg(long = "format", alias = "list-format", value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only valid for listing repository contents. Format output as JSON.
    ///
    /// The layout of --format is ignored, but the keys it names are added to each object. JSON holds only text, so there is no "barchive" key.
    #[arg(long)]
    pub json: bool,
    /// Only valid for listing archive contents. Format output as JSON Lines.
    ///
    /// The layout of --format is ignored, but the keys it names are added to each object. JSON holds only text, so there is no "bpath" key.
    #[arg(long = "json-lines")]
    pub json_lines: bool,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
    /// exclude paths matching PATTERN
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// read exclude patterns from EXCLUDEFILE, one per line
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "exclude-from", value_name = "EXCLUDEFILE")]
    pub exclude_from: Vec<String>,
    /// include/exclude paths matching PATTERN
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "pattern", value_name = "PATTERN")]
    pub pattern: Vec<String>,
    /// read include/exclude patterns from PATTERNFILE, one per line
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "patterns-from", value_name = "PATTERNFILE")]
    pub patterns_from: Vec<String>,
}

/// A value a format field can render.
pub trait Render {
    /// Renders the value with a Python format spec.
    fn render(&self, spec: &str) -> Result<Vec<u8>, String>;
}

/// Formats one value with a Python format spec through the `str.format` engine of
/// [`crate::placeholders`].
fn py_format(value: crate::placeholders::FormatValue, spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        if let crate::placeholders::FormatValue::Str(s) = value {
            return Ok(s.into_bytes());
        }
    }
    let fmt = format!("{{v:{spec}}}");
    crate::placeholders::format_map(&fmt, &|k| (k == "v").then(|| value.clone()))
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}

impl Render for Field {
    fn render(&self, spec: &str) -> Result<Vec<u8>, String> {
        use crate::placeholders::FormatValue as V;
        match self {
            Field::Str(s) => py_format(V::Str(s.clone()), spec),
            Field::Bytes(b) => {
                if spec.is_empty() {
                    Ok(b.clone())
                } else {
                    py_format(V::Str(list::remove_surrogates(b)), spec)
                }
            }
            Field::Int(i) => py_format(V::Int(*i), spec),
            Field::Bool(b) => py_format(V::Str(if *b { "True" } else { "False" }.into()), spec),
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
            Field::List(l) => py_format(V::Str(format!("{l:?}")), spec),
            Field::Json(v) => py_format(V::Str(v.to_string()), spec),
            Field::Float(f) => py_format(V::Float(*f), spec),
        }
    }
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
            if let Some(v) = crate::placeholders::fixed_key(name) {
                out.extend(py_format(
                    crate::placeholders::FormatValue::Str(v.into()),
                    spec,
                )?);
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
    common: &super::options::CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_with(a.location.as_deref(), &common.repo)?;
    let sel = Selection::new(
        a.filter.prefix.clone(),
        a.filter.glob_archives.clone(),
        &a.filter.sort_by,
        a.filter.first,
        a.filter.last,
        a.consider_checkpoints,
    )?;
    let mut opened = list::open(&loc, common.lock_spec(), confirm)?;
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
        let mut filter = path_filter(&a)?;
        let json_lines = a.json_lines;
        let opts = ItemListOptions {
            wanted: wanted.clone(),
            json_lines,
            consider_part_files: common.consider_part_files,
            index_keys: crate::commands::path_index::index_keys(
                &a.paths,
                !(a.exclude.is_empty()
                    && a.exclude_from.is_empty()
                    && a.pattern.is_empty()
                    && a.patterns_from.is_empty()),
            ),
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
        let mut v = output::basic_json(&opened);
        v["archives"] = serde_json::Value::Array(data);
        write_out(output::json_pretty(&v).as_bytes())?;
        write_out(b"\n")?;
    }
    Ok(super::EXIT_SUCCESS)
}

/// The PATH and pattern filter of `list REPO::ARCHIVE` (borg's `build_matcher`): PATHs select
/// items at or below them (`pp:` style), then `--exclude`, `--exclude-from`, `--pattern` and
/// `--patterns-from` rules apply.
pub fn path_filter(
    a: &ListArgs,
) -> Result<impl FnMut(&crate::archive::item::Item) -> bool, CommandError> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let perr = |e: crate::patterns::PatternError| CommandError::new(e.to_string());
    let mut pa = crate::patterns::PatternArgs::default();
    for e in &a.exclude {
        pa.add_exclude(OsStr::new(e)).map_err(perr)?;
    }
    for f in &a.exclude_from {
        pa.add_exclude_from(std::path::Path::new(f)).map_err(perr)?;
    }
    for p in &a.pattern {
        pa.add_pattern(OsStr::new(p)).map_err(perr)?;
    }
    for f in &a.patterns_from {
        pa.add_patterns_from(std::path::Path::new(f))
            .map_err(perr)?;
    }
    let paths: Vec<std::ffi::OsString> = a.paths.iter().map(std::ffi::OsString::from).collect();
    let mut matcher = crate::patterns::build_matcher(pa.rules, &paths).map_err(perr)?;
    Ok(move |item: &crate::archive::item::Item| {
        matcher.matches(OsStr::from_bytes(&item.path)).included == Some(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_pad_like_python() {
        let f = |v: Field, spec: &str| String::from_utf8(v.render(spec).unwrap()).unwrap();
        assert_eq!(f(Field::Str("ab".into()), "<5"), "ab   ");
        assert_eq!(f(Field::Str("ab".into()), "6"), "ab    ");
        assert_eq!(f(Field::Int(12), "8"), "      12");
        assert_eq!(f(Field::Int(12), "08"), "00000012");
        assert_eq!(f(Field::Int(1234567), ","), "1,234,567");
        assert_eq!(f(Field::Str("ab".into()), "*^6"), "**ab**");
        assert_eq!(f(Field::Str("abcdef".into()), ".3"), "abc");
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
