//! borg's `prepare_dump_dict` and Python's `json.dumps(obj, indent=4)` for the `debug dump-*`
//! commands: msgpack values become JSON with byte strings shown as text when they are UTF-8
//! (and do not start with DEL), else as DEL (`\u007f`) followed by their hex; map order is kept;
//! every non-ASCII character is escaped as Python's `ensure_ascii` does.

use crate::msgpack::Value;

/// A decoded value as `prepare_dump_dict` leaves it (Python's dict/list/str/int/float/None).
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`
    Null,
    /// `True` / `False`
    Bool(bool),
    /// An int.
    Int(i128),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// A list (borg's tuples and lists).
    List(Vec<PyValue>),
    /// A dict in insertion order; keys are already strings.
    Dict(Vec<(String, PyValue)>),
}

/// borg's `decode_bytes`: UTF-8 text stays text unless it starts with DEL; anything else is
/// DEL + hex.
pub fn decode_bytes(b: &[u8]) -> String {
    if b.first() != Some(&0x7f) {
        if let Ok(s) = std::str::from_utf8(b) {
            return s.to_string();
        }
    }
    format!("\u{7f}{}", hex::encode(b))
}

/// A dict key as borg's `decode` makes it: byte keys are decoded (here lossily, where Python
/// would raise), other keys become their JSON key text as `json.dumps` writes them.
fn key_text(k: &Value) -> String {
    match k {
        Value::Raw(b) | Value::Bin(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Nil => "null".into(),
        Value::Float(f) => float_repr(*f),
        other => format!("{other:?}"),
    }
}

/// borg's `prepare_dump_dict` applied to any value (a map at the top in borg's use).
pub fn prepare(v: &Value) -> PyValue {
    match v {
        Value::Nil => PyValue::Null,
        Value::Bool(b) => PyValue::Bool(*b),
        Value::Int(i) => PyValue::Int(*i),
        Value::Float(f) => PyValue::Float(*f),
        Value::Raw(b) | Value::Bin(b) => PyValue::Str(decode_bytes(b)),
        Value::Array(a) => PyValue::List(a.iter().map(prepare).collect()),
        Value::Map(m) => PyValue::Dict(m.iter().map(|(k, v)| (key_text(k), prepare(v))).collect()),
        Value::Ext(t, d) => PyValue::Str(format!("ext({t}):{}", hex::encode(d))),
    }
}

/// Python's `repr(float)` as `json.dumps` writes floats (`1.0`, `1e+16`, `1.5e-05`, `NaN`).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Shortest round-trip digits and the decimal exponent, from Rust's `{:e}`.
    let e_form = format!("{:e}", f.abs());
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let text = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{text}")
}

/// A JSON string literal as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// `json.dumps(v, indent=4)`.
pub fn dumps(v: &PyValue) -> String {
    let mut out = String::new();
    write(v, 0, &mut out);
    out
}

fn write(v: &PyValue, level: usize, out: &mut String) {
    let pad = |n: usize| " ".repeat(4 * n);
    match v {
        PyValue::Null => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(i) => out.push_str(&i.to_string()),
        PyValue::Float(f) => out.push_str(&float_repr(*f)),
        PyValue::Str(s) => out.push_str(&string_literal(s)),
        PyValue::List(items) if items.is_empty() => out.push_str("[]"),
        PyValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&pad(level + 1));
                write(item, level + 1, out);
            }
            out.push('\n');
            out.push_str(&pad(level));
            out.push(']');
        }
        PyValue::Dict(items) if items.is_empty() => out.push_str("{}"),
        PyValue::Dict(items) => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&pad(level + 1));
                out.push_str(&string_literal(k));
                out.push_str(": ");
                write(item, level + 1, out);
            }
            out.push('\n');
            out.push_str(&pad(level));
            out.push('}');
        }
    }
}

/// Python's `textwrap.indent(text, prefix)`: the prefix goes before every line that is not
/// only white space.
pub fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + prefix.len() * 8);
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            out.push_str(prefix);
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_repr() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.5), "0.5");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-5), "1.5e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(123456.789), "123456.789");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(1234567890123456.0), "1234567890123456.0");
    }

    #[test]
    fn bytes_become_text_or_marked_hex() {
        assert_eq!(decode_bytes(b"abc"), "abc");
        assert_eq!(decode_bytes(&[0xff, 0x00]), "\u{7f}ff00");
        assert_eq!(decode_bytes(b"\x7fabc"), "\u{7f}7f616263");
    }

    #[test]
    fn dumps_matches_python_indent_4() {
        let v = Value::Map(vec![
            (
                Value::raw("a"),
                Value::Array(vec![Value::int(1), Value::raw([0xffu8])]),
            ),
            (Value::raw("b"), Value::Map(vec![])),
            (Value::raw("c"), Value::Array(vec![])),
            (Value::raw("d"), Value::raw("\u{e9}\"")),
        ]);
        assert_eq!(
            dumps(&prepare(&v)),
            "{\n    \"a\": [\n        1,\n        \"\\u007fff\"\n    ],\n    \"b\": {},\n    \"c\": [],\n    \"d\": \"\\u00e9\\\"\"\n}"
        );
    }
}
