//! Python's own text rules that borg's parsing and output inherit, in one place:
//!
//! * [`int`] and [`int_radix`]: Python's `int()` on text, the one parser behind every number
//!   borg reads with `int(s)` or `int(s, base)` — `--chunker-params`, compression levels,
//!   prune's `--keep-*` and `--keep-within`, repository `config` values, tar header fields.
//!   The forms accepted are the ones Python accepts for ASCII text: one optional sign, then the
//!   digits of the base with single `_` between digits (not first, not last, never two in a
//!   row); [`int`] also strips surrounding whitespace. Python's integers are unbounded; here a
//!   number that does not fit the result type is refused like a malformed one. Not accepted
//!   (Python would): non-ASCII digits and, for [`int_radix`], a base prefix such as `0o`.
//! * [`int_base0`]: Python's `int(s, 0)` (a `0x` / `0o` / `0b` prefix picks the base), as
//!   FUSE mount options read their numbers.
//! * [`float`]: Python's `float()` on the decimal text of pax time records.
//! * [`bytes_repr`]: Python's `repr()` of a bytes object, as borg's messages show paths and
//!   `debug search-repo-objs` shows its findings.

/// `int(s)`: base 10, surrounding whitespace stripped. `None` where Python raises
/// `ValueError` (or the number does not fit an `i64`).
pub fn int(s: &str) -> Option<i64> {
    int_radix(s.trim(), 10).and_then(|v| i64::try_from(v).ok())
}

/// `int(t, base)` on text that is already stripped: a sign, then digits of `base` (2 to 36)
/// with single `_` between them. `None` on anything else or on overflow of `i128`.
pub fn int_radix(t: &str, base: u32) -> Option<i128> {
    if !(2..=36).contains(&base) {
        return None;
    }
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        if !c.is_ascii() {
            return None;
        }
        n = n
            .checked_mul(i128::from(base))?
            .checked_add(i128::from(c.to_digit(base)?))?;
    }
    Some(if neg { -n } else { n })
}

/// `int(s, 0)`: surrounding whitespace stripped, one optional sign, then `0x`, `0o` or `0b`
/// (any case) and digits of that base (one `_` may follow the prefix), or decimal digits
/// without a leading zero (zero itself may be written `00`). `None` where Python raises
/// `ValueError` (or on overflow of `i128`).
pub fn int_base0(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let prefix = rest.get(..2).map(str::to_ascii_lowercase);
    let (digits, base) = match prefix.as_deref() {
        Some("0x") => (&rest[2..], 16),
        Some("0o") => (&rest[2..], 8),
        Some("0b") => (&rest[2..], 2),
        _ => (rest, 10),
    };
    let digits = if base == 10 {
        if digits.starts_with('0') && digits.chars().any(|c| c != '0' && c != '_') {
            return None;
        }
        digits
    } else {
        digits.strip_prefix('_').unwrap_or(digits)
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let v = int_radix(digits, base)?;
    Some(if neg { -v } else { v })
}

/// `float(s)` for the decimal text of a number: surrounding whitespace stripped, `_`
/// dropped. `None` where the text is no number.
pub fn float(s: &str) -> Option<f64> {
    s.trim().replace('_', "").parse::<f64>().ok()
}

/// Python's `repr()` of a bytes object: `b'…'` with `\\`, `\t`, `\n`, `\r` and `\xhh`
/// escapes, in double quotes when the bytes hold a `'` and no `"`.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_python_int_accepts() {
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("  42\n"), Some(42));
        assert_eq!(int("+7"), Some(7));
        assert_eq!(int("-7"), Some(-7));
        assert_eq!(int("1_000_000"), Some(1_000_000));
        assert_eq!(int("-1_0"), Some(-10));
        assert_eq!(int("007"), Some(7));
        assert_eq!(int("0_0"), Some(0));
        assert_eq!(int("9223372036854775807"), Some(i64::MAX));
    }

    #[test]
    fn refuses_what_python_int_refuses() {
        for bad in [
            "", " ", "+", "-", "_1", "1_", "1__0", "+_1", "1 0", "1.0", "1e3", "0x10", "--1",
            "+-1", "- 1", "12a",
        ] {
            assert_eq!(int(bad), None, "{bad:?}");
        }
        // Python reads non-ASCII decimal digits; borg's arguments never hold them
        assert_eq!(int("١٢"), None);
        // larger than an i64: refused rather than wrapped
        assert_eq!(int("9223372036854775808"), None);
    }

    #[test]
    fn other_bases_as_tar_headers_use_them() {
        assert_eq!(int_radix("0755", 8), Some(0o755));
        assert_eq!(int_radix("-1_7", 8), Some(-0o17));
        assert_eq!(int_radix("8", 8), None);
        assert_eq!(int_radix("ff", 16), Some(255));
        assert_eq!(int_radix(" 1", 8), None, "no stripping here");
        assert_eq!(int_radix("1", 1), None);
        assert_eq!(int_radix(&"7".repeat(60), 8), None, "overflow is refused");
    }

    #[test]
    fn base0_is_pythons_int_with_base_0() {
        for (text, want) in [
            ("0x10", 16),
            ("+0x_1f", 31),
            ("00", 0),
            ("0_0", 0),
            ("1_000", 1000),
            (" 0o17 ", 15),
            ("-0b101", -5),
            ("0X1F", 31),
        ] {
            assert_eq!(int_base0(text), Some(want), "{text:?}");
        }
        for text in ["010", "0x", "0x+5", "1__0", "_1", "0x__1", ""] {
            assert_eq!(int_base0(text), None, "{text:?}");
        }
    }

    #[test]
    fn bytes_repr_is_pythons() {
        // expected texts from Python 3.11's repr()
        assert_eq!(bytes_repr(b"/tmp/a b"), "b'/tmp/a b'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(b"'\""), "b'\\'\"'");
        assert_eq!(bytes_repr(b"\xc3\xa4\\"), "b'\\xc3\\xa4\\\\'");
        assert_eq!(bytes_repr(b"a\x00\t\n\r"), "b'a\\x00\\t\\n\\r'");
        assert_eq!(bytes_repr(b"\x7f~ "), "b'\\x7f~ '");
        assert_eq!(bytes_repr(b""), "b''");
    }
}
