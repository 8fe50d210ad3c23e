//! Output formatting that must match borg's: JSON as Python's `json.dumps(sort_keys=True,
//! indent=4)` with ASCII escapes, sizes as `format_file_size`, timestamps in local time.

use serde_json::Value as Json;

/// Escapes every non-ASCII character as `\uXXXX` (UTF-16, surrogate pairs), as Python's
/// `ensure_ascii=True` does. Non-ASCII can only occur inside JSON strings, so this is safe
/// on serialized text.
pub fn ascii_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The indent `BORG_JSON_INDENT` asks for (borg 1.4's `_json_indent_from_env`): unset gives
/// four spaces, `none` (any case) one line, a number that many spaces (none below 1), any
/// other text itself.
pub fn json_indent(setting: Option<&str>) -> Option<String> {
    let Some(v) = setting else {
        return Some("    ".into());
    };
    if v.eq_ignore_ascii_case("none") {
        return None;
    }
    match v.trim().parse::<i64>() {
        Ok(n) => Some(" ".repeat(n.clamp(0, 1024) as usize)),
        Err(_) => Some(v.to_string()),
    }
}

/// Pretty JSON exactly as borg's `json_print` (sorted keys, ASCII only, indented as
/// `BORG_JSON_INDENT` says: 4 spaces by default).
pub fn json_pretty(value: &Json) -> String {
    let setting = std::env::var("BORG_JSON_INDENT").ok();
    match json_indent(setting.as_deref()) {
        Some(indent) => json_indented(value, indent.as_bytes()),
        None => json_line(value),
    }
}

/// [`json_pretty`] with a given indent.
pub fn json_indented(value: &Json, indent: &[u8]) -> String {
    // serde_json's Map is a BTreeMap here (no preserve_order), so keys come out sorted.
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return "{}".into();
    }
    ascii_escape(&String::from_utf8_lossy(&buf))
}

/// One-line JSON as Python's `json.dumps(obj)` (`", "` and `": "` separators, ASCII only).
pub fn json_line(value: &Json) -> String {
    fn write(v: &Json, out: &mut String) {
        match v {
            Json::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Json::String(k.clone()).to_string());
                    out.push_str(": ");
                    write(v, out);
                }
                out.push('}');
            }
            Json::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    ascii_escape(&out)
}

pub use crate::units::format_file_size;

/// A UTC borg timestamp string shown as local time, truncated to seconds, in borg's JSON
/// form (`%Y-%m-%dT%H:%M:%S.000000`).
pub fn json_timestamp_seconds(utc: &str) -> String {
    match crate::archive::manifest::parse_timestamp(utc) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S.000000")
            .to_string(),
        None => utc.to_string(),
    }
}

/// borg's `basic_json_data` of an open repository: `repository` (id, location,
/// last_modified) and `encryption` (mode, and the key file when there is one).
pub fn basic_json(opened: &crate::commands::common::Opened) -> Json {
    repository_json(
        opened.store.key.key_type(),
        &opened.key_location,
        &opened.id(),
        &opened.manifest.timestamp,
        &opened.location.canonical(),
    )
}

/// borg's `basic_json_data` from its parts (`last_modified` is the manifest's UTC timestamp).
pub fn repository_json(
    key_type: crate::crypto::KeyType,
    key_location: &crate::commands::common::KeyLocation,
    id: &[u8],
    last_modified: &str,
    location: &str,
) -> Json {
    let mut encryption = serde_json::json!({"mode": key_type.mode_name()});
    if let crate::commands::common::KeyLocation::File(p) = key_location {
        encryption["keyfile"] = serde_json::json!(p.to_string_lossy());
    }
    serde_json::json!({
        "encryption": encryption,
        "repository": {
            "id": hex::encode(id),
            "last_modified": json_timestamp_seconds(last_modified),
            "location": location,
        },
    })
}

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16.
pub fn py_float(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// borg's `format_timedelta`.
pub fn format_timedelta(seconds: f64) -> String {
    let days = (seconds / 86400.0).floor();
    let rest = seconds - days * 86400.0;
    let s = rest % 60.0;
    let m = (rest / 60.0) as i64 % 60;
    let h = (rest / 3600.0) as i64 % 24;
    let mut txt = format!("{s:.2} seconds");
    if m != 0 {
        txt = format!("{m} minutes {txt}");
    }
    if h != 0 {
        txt = format!("{h} hours {txt}");
    }
    if days != 0.0 {
        txt = format!("{} days {txt}", days as i64);
    }
    txt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_indent_follows_borg_json_indent() {
        assert_eq!(json_indent(None).as_deref(), Some("    "));
        assert_eq!(json_indent(Some("None")), None);
        assert_eq!(json_indent(Some("2")).as_deref(), Some("  "));
        assert_eq!(json_indent(Some("-3")).as_deref(), Some(""));
        assert_eq!(json_indent(Some("")).as_deref(), Some(""));
        assert_eq!(json_indent(Some("\t")).as_deref(), Some("\t"));
        let v = serde_json::json!({"b": [1, {}], "a": "\u{e9}"});
        assert_eq!(
            json_indented(&v, b"  "),
            "{\n  \"a\": \"\\u00e9\",\n  \"b\": [\n    1,\n    {}\n  ]\n}"
        );
    }

    #[test]
    fn json_is_python_compatible() {
        let v = serde_json::json!({"b": 1, "a": "äö", "c": [1, 2]});
        assert_eq!(
            json_pretty(&v),
            "{\n    \"a\": \"\\u00e4\\u00f6\",\n    \"b\": 1,\n    \"c\": [\n        1,\n        2\n    ]\n}"
        );
        assert_eq!(
            json_line(&v),
            "{\"a\": \"\\u00e4\\u00f6\", \"b\": 1, \"c\": [1, 2]}"
        );
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(py_float(2.1314662642534654e-05), "2.1314662642534654e-05");
        assert_eq!(py_float(2.6655249255429242e-05), "2.6655249255429242e-05");
        assert_eq!(py_float(0.002529), "0.002529");
        assert_eq!(py_float(0.052426), "0.052426");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(123456.5), "123456.5");
    }

    #[test]
    fn timedeltas_format_like_borg() {
        assert_eq!(format_timedelta(0.0123), "0.01 seconds");
        assert_eq!(format_timedelta(0.052426), "0.05 seconds");
        assert_eq!(format_timedelta(125.5), "2 minutes 5.50 seconds");
        assert_eq!(format_timedelta(3725.5), "1 hours 2 minutes 5.50 seconds");
    }
}
