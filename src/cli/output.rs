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
}
