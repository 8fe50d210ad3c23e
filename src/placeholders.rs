//! Borg 1.2 placeholders (`{hostname}`, `{now:%Y-%m-%d}`, ...), archive-name validation and a
//! Python-`str.format`-compatible formatter for `list --format` and friends.
//!
//! * [`replace_placeholders`] expands archive names, `--comment`, `--glob-archives`, `--prefix`
//!   like borg's `replace_placeholders`; [`replace_placeholders_with`] takes injected values.
//! * [`validate_archive_name`] is borg's `archivename_validator`.
//! * [`format_map`] is borg's `format_line` (every key must exist, no `!r` conversions);
//!   [`format_line`] adds the fixed keys `{NL}`, `{NEWLINE}`, `{LF}`, `{CR}`, `{TAB}`,
//!   `{SPACE}`, `{NUL}` that `list --format` offers.
//! * Format specs follow Python's mini-language: `[[fill]align][sign][z][#][0][width][,|_]
//!   [.precision][type]` for strings, integers and floats; date-times take a strftime format.

use chrono::{DateTime, FixedOffset, Local, Utc};
use thiserror::Error;

/// The borg version hoard claims to be for `{borgversion}` and friends.
pub use crate::version::BORG_VERSION;

/// Default strftime format of `{now}` / `{utcnow}` (borg's `ISO_FORMAT_NO_USECS`).
pub const DEFAULT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The formatting aids every `--format` string may use (borg's `BaseFormatter.FIXED_KEYS`).
pub const FIXED_KEYS: &[(&str, &str)] = &[
    ("LF", "\n"),
    ("SPACE", " "),
    ("TAB", "\t"),
    ("CR", "\r"),
    ("NUL", "\0"),
    ("NEWLINE", "\n"),
    ("NL", "\n"),
];

/// Errors from placeholder expansion and formatting, worded like borg's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlaceholderError {
    /// A key that is not available, or a `!r`-style conversion (borg's `InvalidPlaceholder`).
    #[error("Invalid placeholder \"{key}\" in string: {format}")]
    InvalidPlaceholder {
        /// The field name as written.
        key: String,
        /// The whole format string.
        format: String,
    },
    /// A value could not be formatted with its spec (borg's `PlaceholderError`).
    #[error("Formatting Error: \"{format}\".format({{...}}): {kind}({message})")]
    Formatting {
        /// The whole format string.
        format: String,
        /// Python's exception class name, e.g. `ValueError`.
        kind: String,
        /// Python's exception message.
        message: String,
    },
    /// The format string itself is malformed (Python's `ValueError` from parsing it).
    #[error("{0}")]
    Syntax(String),
}

/// Errors from [`validate_archive_name`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ArchiveNameError {
    /// A placeholder in the name could not be expanded.
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    /// Empty, or containing `/` or `::`.
    #[error("Invalid archive name: \"{0}\"")]
    Invalid(String),
}

/// A value that a format field refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatValue {
    /// Text (Python `str`).
    Str(String),
    /// An integer (Python `int`).
    Int(i64),
    /// A float (Python `float`).
    Float(f64),
    /// A point in time; its spec is a strftime format, the empty spec means
    /// [`DEFAULT_TIME_FORMAT`] (borg's `DatetimeWrapper`). `%Z` prints `zone`.
    Time {
        /// The time with its UTC offset.
        time: DateTime<FixedOffset>,
        /// The time zone abbreviation for `%Z` (e.g. `UTC`, `CET`).
        zone: String,
    },
}

impl From<&str> for FormatValue {
    fn from(s: &str) -> Self {
        FormatValue::Str(s.to_string())
    }
}

impl From<String> for FormatValue {
    fn from(s: String) -> Self {
        FormatValue::Str(s)
    }
}

impl From<i64> for FormatValue {
    fn from(v: i64) -> Self {
        FormatValue::Int(v)
    }
}

impl From<f64> for FormatValue {
    fn from(v: f64) -> Self {
        FormatValue::Float(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Format string parsing (Python's MarkupIterator)
// ---------------------------------------------------------------------------------------------

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field {
        name: String,
        conversion: Option<char>,
        spec: String,
    },
}

fn syntax(msg: &str) -> PlaceholderError {
    PlaceholderError::Syntax(msg.to_string())
}

/// Splits a format string into literals and fields like `string.Formatter().parse`.
fn parse_format(fmt: &str) -> Result<Vec<Piece>, PlaceholderError> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '}' {
            if chars.get(i + 1) == Some(&'}') {
                literal.push('}');
                i += 2;
                continue;
            }
            return Err(syntax("Single '}' encountered in format string"));
        }
        if c != '{' {
            literal.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            literal.push('{');
            i += 2;
            continue;
        }
        if i + 1 >= chars.len() {
            return Err(syntax("Single '{' encountered in format string"));
        }
        // A field: find the matching '}'.
        let start = i + 1;
        let mut depth = 1;
        let mut j = start;
        while j < chars.len() {
            match chars[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if j >= chars.len() {
            return Err(syntax("expected '}' before end of string"));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(parse_field(&chars[start..j])?);
        i = j + 1;
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Splits `name[!conv][:spec]`; `:` and `!` inside `[...]` belong to the name.
fn parse_field(field: &[char]) -> Result<Piece, PlaceholderError> {
    let mut in_bracket = false;
    let mut end = field.len();
    for (k, &c) in field.iter().enumerate() {
        match c {
            '[' => in_bracket = true,
            ']' => in_bracket = false,
            ':' | '!' if !in_bracket => {
                end = k;
                break;
            }
            _ => {}
        }
    }
    let name: String = field[..end].iter().collect();
    let mut conversion = None;
    let mut rest = &field[end..];
    if rest.first() == Some(&'!') {
        match rest.get(1) {
            None => {
                return Err(syntax(
                    "end of string while looking for conversion specifier",
                ))
            }
            Some(&c) => conversion = Some(c),
        }
        rest = &rest[2..];
        if !rest.is_empty() && rest[0] != ':' {
            return Err(syntax("expected ':' after conversion specifier"));
        }
    }
    let spec: String = if rest.first() == Some(&':') {
        rest[1..].iter().collect()
    } else {
        String::new()
    };
    Ok(Piece::Field {
        name,
        conversion,
        spec,
    })
}

// ---------------------------------------------------------------------------------------------
// Format spec mini-language
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Spec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    z: bool,
    alternate: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

/// Largest width or precision of a format spec. Python has none and pads to whatever it is
/// given; an archive name or `--format` taken from a job file must not make hoard allocate
/// gigabytes (`{path:<16416692724}`, fuzz/regressions/placeholders).
pub const MAX_FORMAT_WIDTH: usize = 100_000;

fn value_error(msg: String) -> (String, String) {
    ("ValueError".to_string(), msg)
}

/// Parses a standard format spec like CPython's `parse_internal_render_format_spec`.
fn parse_spec(spec: &str, type_name: &str, default_align: char) -> Result<Spec, (String, String)> {
    let c: Vec<char> = spec.chars().collect();
    let is_align = |ch: char| matches!(ch, '<' | '>' | '=' | '^');
    let mut s = Spec::default();
    let mut pos = 0;
    if c.len() >= 2 && is_align(c[1]) {
        s.fill = Some(c[0]);
        s.align = Some(c[1]);
        pos = 2;
    } else if !c.is_empty() && is_align(c[0]) {
        s.align = Some(c[0]);
        pos = 1;
    }
    if let Some(&ch) = c.get(pos) {
        if matches!(ch, '+' | '-' | ' ') {
            s.sign = Some(ch);
            pos += 1;
        }
    }
    if c.get(pos) == Some(&'z') {
        s.z = true;
        pos += 1;
    }
    if c.get(pos) == Some(&'#') {
        s.alternate = true;
        pos += 1;
    }
    if c.get(pos) == Some(&'0') && s.fill.is_none() {
        s.fill = Some('0');
        if s.align.is_none() && default_align == '>' {
            s.align = Some('=');
        }
        pos += 1;
    }
    let digits = |pos: &mut usize| -> Option<usize> {
        let start = *pos;
        while *pos < c.len() && c[*pos].is_ascii_digit() {
            *pos += 1;
        }
        // more digits than a usize holds saturate, and then fail the limit below
        (start != *pos).then(|| {
            c[start..*pos]
                .iter()
                .collect::<String>()
                .parse()
                .unwrap_or(usize::MAX)
        })
    };
    let limited = |n: usize| {
        if n > MAX_FORMAT_WIDTH {
            Err(value_error(format!(
                "Format width or precision {n} exceeds the limit {MAX_FORMAT_WIDTH}"
            )))
        } else {
            Ok(n)
        }
    };
    if let Some(w) = digits(&mut pos) {
        s.width = limited(w)?;
    }
    if let Some(&ch) = c.get(pos) {
        if ch == ',' || ch == '_' {
            s.grouping = Some(ch);
            pos += 1;
        }
    }
    if c.get(pos) == Some(&'.') {
        pos += 1;
        match digits(&mut pos) {
            Some(p) => s.precision = Some(limited(p)?),
            None => return Err(value_error("Format specifier missing precision".into())),
        }
    }
    if c.len() - pos > 1 {
        return Err(value_error(format!(
            "Invalid format specifier '{spec}' for object of type '{type_name}'"
        )));
    }
    s.kind = c.get(pos).copied();
    // Python checks the separator against the type, defaulting to `s` for str, `d` for int.
    let effective = s.kind.or(match type_name {
        "str" => Some('s'),
        "int" => Some('d'),
        _ => None,
    });
    if let (Some(g), Some(k)) = (s.grouping, effective) {
        let ok = match k {
            'd' | 'e' | 'f' | 'g' | 'E' | 'G' | '%' | 'F' => true,
            'b' | 'o' | 'x' | 'X' => g == '_',
            _ => false,
        };
        if !ok {
            return Err(value_error(format!("Cannot specify '{g}' with '{k}'.")));
        }
    }
    Ok(s)
}

/// Pads `body` (already signed / prefixed) to the spec's width. `sign_len` is the length of
/// the sign and prefix part that `=` alignment keeps in front of the padding.
fn pad(body: &str, sign_len: usize, spec: &Spec, default_align: char) -> String {
    let len = body.chars().count();
    if len >= spec.width {
        return body.to_string();
    }
    let fill = spec.fill.unwrap_or(' ');
    let n = spec.width - len;
    let fills = |k: usize| std::iter::repeat_n(fill, k).collect::<String>();
    match spec.align.unwrap_or(default_align) {
        '<' => format!("{body}{}", fills(n)),
        '^' => format!("{}{body}{}", fills(n / 2), fills(n - n / 2)),
        '=' => {
            let split = body
                .char_indices()
                .nth(sign_len)
                .map_or(body.len(), |(i, _)| i);
            format!("{}{}{}", &body[..split], fills(n), &body[split..])
        }
        _ => format!("{}{body}", fills(n)),
    }
}

fn format_str(s: &str, spec_text: &str) -> Result<String, (String, String)> {
    let spec = parse_spec(spec_text, "str", '<')?;
    if let Some(k) = spec.kind {
        if k != 's' {
            return Err(value_error(format!(
                "Unknown format code '{k}' for object of type 'str'"
            )));
        }
    }
    match spec.sign {
        Some(' ') => {
            return Err(value_error(
                "Space not allowed in string format specifier".into(),
            ))
        }
        Some(_) => {
            return Err(value_error(
                "Sign not allowed in string format specifier".into(),
            ))
        }
        None => {}
    }
    if spec.z {
        return Err(value_error(
            "Negative zero coercion (z) not allowed in string format specifier".into(),
        ));
    }
    if spec.alternate {
        return Err(value_error(
            "Alternate form (#) not allowed in string format specifier".into(),
        ));
    }
    if spec.align == Some('=') {
        return Err(value_error(
            "'=' alignment not allowed in string format specifier".into(),
        ));
    }
    if let Some(g) = spec.grouping {
        return Err(value_error(format!("Cannot specify '{g}' with 's'.")));
    }
    let body: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    Ok(pad(&body, 0, &spec, '<'))
}

/// Inserts `sep` every `every` digits from the right; with zero padding, widens `digits` with
/// leading zeros until the grouped number reaches `min_len` (as Python does).
fn group_digits(digits: &str, sep: char, every: usize, min_len: usize) -> String {
    let mut digits = digits.to_string();
    loop {
        let n = digits.chars().count();
        let mut out = String::new();
        for (k, ch) in digits.chars().enumerate() {
            if k > 0 && (n - k).is_multiple_of(every) {
                out.push(sep);
            }
            out.push(ch);
        }
        if out.chars().count() >= min_len {
            return out;
        }
        digits.insert(0, '0');
    }
}

fn sign_prefix(negative: bool, sign: Option<char>) -> &'static str {
    match (negative, sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    }
}

fn format_int(v: i64, spec_text: &str) -> Result<String, (String, String)> {
    let spec = parse_spec(spec_text, "int", '>')?;
    let kind = spec.kind.unwrap_or('d');
    if matches!(kind, 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') {
        return format_float(v as f64, spec_text);
    }
    if !matches!(kind, 'b' | 'c' | 'd' | 'o' | 'x' | 'X' | 'n') {
        return Err(value_error(format!(
            "Unknown format code '{kind}' for object of type 'int'"
        )));
    }
    if spec.precision.is_some() {
        return Err(value_error(
            "Precision not allowed in integer format specifier".into(),
        ));
    }
    if spec.z {
        return Err(value_error(
            "Negative zero coercion (z) not allowed in integer format specifier".into(),
        ));
    }
    let magnitude = v.unsigned_abs();
    let (digits, prefix, every) = match kind {
        'd' | 'n' => (magnitude.to_string(), "", 3),
        'b' => (format!("{magnitude:b}"), "0b", 4),
        'o' => (format!("{magnitude:o}"), "0o", 4),
        'x' => (format!("{magnitude:x}"), "0x", 4),
        'X' => (format!("{magnitude:X}"), "0X", 4),
        'c' => {
            if spec.sign.is_some() {
                return Err(value_error(
                    "Sign not allowed with integer format specifier 'c'".into(),
                ));
            }
            if spec.alternate {
                return Err(value_error(
                    "Alternate form (#) not allowed with integer format specifier 'c'".into(),
                ));
            }
            let ch = u32::try_from(v)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    (
                        "OverflowError".to_string(),
                        "%c arg not in range(0x110000)".to_string(),
                    )
                })?;
            return Ok(pad(&ch.to_string(), 0, &spec, '>'));
        }
        k => {
            return Err(value_error(format!(
                "Unknown format code '{k}' for object of type 'int'"
            )))
        }
    };
    let mut head = sign_prefix(v < 0, spec.sign).to_string();
    if spec.alternate {
        head.push_str(prefix);
    }
    let head_len = head.chars().count();
    let digits = match spec.grouping {
        Some(g) => {
            let min = if spec.fill == Some('0') && spec.align == Some('=') {
                spec.width.saturating_sub(head_len)
            } else {
                0
            };
            group_digits(&digits, g, every, min)
        }
        None => digits,
    };
    Ok(pad(&format!("{head}{digits}"), head_len, &spec, '>'))
}

/// Splits Rust's `{:.Ne}` output into mantissa digits text and exponent.
fn sci_parts(v: f64, precision: usize) -> (String, i32) {
    let s = format!("{v:.precision$e}");
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

fn py_exponent(e: i32) -> String {
    let sign = if e < 0 { '-' } else { '+' };
    format!("{sign}{:02}", e.unsigned_abs())
}

fn strip_fraction_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Python's `repr(float)` of a finite non-negative value.
fn float_repr(v: f64) -> String {
    // `{:e}` gives the shortest round-tripping digits.
    let s = format!("{v:e}");
    let (mant, exp) = match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        format!("{m}e{}", py_exponent(exp))
    }
}

/// `%g`-style formatting of a finite non-negative value with `p` significant digits.
fn format_general(v: f64, p: usize, alternate: bool, upper: bool, repr_style: bool) -> String {
    let p = p.max(1);
    let (mant, exp) = sci_parts(v, p - 1);
    // Python's float formatting without a type switches one digit earlier than `g`.
    let limit = if repr_style { p as i32 - 1 } else { p as i32 };
    let use_sci = exp < -4 || exp >= limit;
    let mut out = if use_sci {
        let m = if alternate {
            with_point(mant)
        } else {
            strip_fraction_zeros(&mant)
        };
        format!("{m}e{}", py_exponent(exp))
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let f = format!("{v:.decimals$}");
        let mut f = if alternate {
            with_point(f)
        } else {
            strip_fraction_zeros(&f)
        };
        if repr_style && !f.contains('.') {
            f.push_str(".0");
        }
        f
    };
    if upper {
        out = out.to_uppercase();
    }
    out
}

/// Appends a `.` to a number without one (Python's alternate form `#`).
fn with_point(mut s: String) -> String {
    if !s.contains('.') {
        s.push('.');
    }
    s
}

fn format_float(v: f64, spec_text: &str) -> Result<String, (String, String)> {
    let spec = parse_spec(spec_text, "float", '>')?;
    let alt_point = |s: String| if spec.alternate { with_point(s) } else { s };
    let kind = spec.kind;
    if let Some(k) = kind {
        if !matches!(k, 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'n' | '%') {
            return Err(value_error(format!(
                "Unknown format code '{k}' for object of type 'float'"
            )));
        }
    }
    let mut negative = v.is_sign_negative() && !v.is_nan();
    let a = v.abs();
    let upper = matches!(kind, Some('E' | 'F' | 'G'));
    let mut body = if !a.is_finite() {
        let t = if a.is_nan() { "nan" } else { "inf" };
        let t = if upper {
            t.to_uppercase()
        } else {
            t.to_string()
        };
        if kind == Some('%') {
            format!("{t}%")
        } else {
            t
        }
    } else {
        match kind {
            Some('f' | 'F') => alt_point(format!("{a:.*}", spec.precision.unwrap_or(6))),
            Some('%') => format!(
                "{}%",
                alt_point(format!("{:.*}", spec.precision.unwrap_or(6), a * 100.0))
            ),
            Some('e' | 'E') => {
                let (m, e) = sci_parts(a, spec.precision.unwrap_or(6));
                let s = format!("{}e{}", alt_point(m), py_exponent(e));
                if upper {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            Some('g' | 'G' | 'n') => {
                format_general(a, spec.precision.unwrap_or(6), spec.alternate, upper, false)
            }
            _ => match spec.precision {
                None => {
                    let r = float_repr(a);
                    match r.split_once('e') {
                        Some((m, e)) if spec.alternate => format!("{}e{e}", with_point(m.into())),
                        _ => r,
                    }
                }
                Some(p) => format_general(a, p, spec.alternate, false, true),
            },
        }
    };
    if spec.z && negative && body.chars().all(|c| !c.is_ascii_digit() || c == '0') {
        negative = false;
    }
    if let Some(g) = spec.grouping {
        let split = body
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(body.len());
        let head_len = sign_prefix(negative, spec.sign).len();
        let min = if spec.fill == Some('0') && spec.align == Some('=') {
            spec.width.saturating_sub(head_len + body.len() - split)
        } else {
            0
        };
        body = format!(
            "{}{}",
            group_digits(&body[..split], g, 3, min),
            &body[split..]
        );
    }
    let head = sign_prefix(negative, spec.sign);
    Ok(pad(&format!("{head}{body}"), head.len(), &spec, '>'))
}

/// strftime through chrono, with Python/glibc behaviour for `%f` (microseconds), `%Z` (zone
/// name) and unknown directives (copied literally).
fn strftime(time: &DateTime<FixedOffset>, zone: &str, fmt: &str) -> String {
    use chrono::format::{Item, StrftimeItems};
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut literal = String::new();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let mut directive = String::from("%");
        if let Some(&f) = chars.peek() {
            if matches!(f, '-' | '_' | '0' | '^' | '#') {
                directive.push(f);
                chars.next();
            }
        }
        match chars.next() {
            None => {
                literal.push_str(&directive);
                break;
            }
            Some(d) => directive.push(d),
        }
        out.push_str(&literal);
        literal.clear();
        let replaced = match directive.as_str() {
            "%f" => "%6f".to_string(),
            "%Z" => {
                out.push_str(zone);
                continue;
            }
            other => other.to_string(),
        };
        let items: Vec<Item<'_>> = StrftimeItems::new(&replaced).collect();
        // Some directives parse but cannot format (`%#z` is chrono's parse-only form): its
        // Display fails, which `to_string` turned into a panic (fuzz/regressions/placeholders).
        // Both kinds are kept as text, like Python keeps directives it does not know.
        let mut piece = String::new();
        if items.iter().any(|i| matches!(i, Item::Error))
            || write!(piece, "{}", time.format_with_items(items.into_iter())).is_err()
        {
            out.push_str(&directive);
        } else {
            out.push_str(&piece);
        }
    }
    out.push_str(&literal);
    out
}

fn format_value(value: &FormatValue, spec: &str) -> Result<String, (String, String)> {
    match value {
        FormatValue::Str(s) => format_str(s, spec),
        FormatValue::Int(v) => format_int(*v, spec),
        FormatValue::Float(v) => format_float(*v, spec),
        FormatValue::Time { time, zone } => {
            let f = if spec.is_empty() {
                DEFAULT_TIME_FORMAT
            } else {
                spec
            };
            Ok(strftime(time, zone, f))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public formatting entry points
// ---------------------------------------------------------------------------------------------

fn render(
    fmt: &str,
    pieces: &[Piece],
    lookup: &dyn Fn(&str) -> Option<FormatValue>,
    depth: usize,
) -> Result<String, PlaceholderError> {
    let fail = |(kind, message): (String, String)| PlaceholderError::Formatting {
        format: fmt.to_string(),
        kind,
        message,
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Field { name, spec, .. } => {
                if name.is_empty() {
                    return Err(fail(value_error(
                        "Format string contains positional fields".into(),
                    )));
                }
                let value = lookup(name)
                    .ok_or_else(|| fail(("KeyError".to_string(), format!("'{name}'"))))?;
                let spec = if spec.contains('{') {
                    if depth >= 1 {
                        return Err(fail(value_error("Max string recursion exceeded".into())));
                    }
                    let inner = parse_format(spec)?;
                    render(fmt, &inner, lookup, depth + 1)?
                } else {
                    spec.clone()
                };
                out.push_str(&format_value(&value, &spec).map_err(fail)?);
            }
        }
    }
    Ok(out)
}

/// Borg's `format_line`: formats `fmt` Python-style with values from `lookup`. Every field must
/// name a key that `lookup` knows, and conversions (`{x!r}`) are refused, before anything is
/// formatted.
pub fn format_map(
    fmt: &str,
    lookup: &dyn Fn(&str) -> Option<FormatValue>,
) -> Result<String, PlaceholderError> {
    let pieces = parse_format(fmt)?;
    for piece in &pieces {
        if let Piece::Field {
            name, conversion, ..
        } = piece
        {
            if name.is_empty() {
                continue;
            }
            if conversion.is_some() || lookup(name).is_none() {
                return Err(PlaceholderError::InvalidPlaceholder {
                    key: name.clone(),
                    format: fmt.to_string(),
                });
            }
        }
    }
    render(fmt, &pieces, lookup, 0)
}

/// The value of a fixed formatting key (`NL`, `TAB`, ...), if `key` is one.
pub fn fixed_key(key: &str) -> Option<&'static str> {
    FIXED_KEYS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Formats a `--format` line: like [`format_map`], and the fixed keys of [`FIXED_KEYS`]
/// (`{NL}`, `{TAB}`, ...) are available too, taking precedence over `lookup`.
pub fn format_line(
    fmt: &str,
    lookup: &dyn Fn(&str) -> Option<FormatValue>,
) -> Result<String, PlaceholderError> {
    let combined = |key: &str| {
        fixed_key(key)
            .map(|v| FormatValue::Str(v.to_string()))
            .or_else(|| lookup(key))
    };
    format_map(fmt, &combined)
}

// ---------------------------------------------------------------------------------------------
// Placeholders
// ---------------------------------------------------------------------------------------------

/// The values placeholders expand to. [`PlaceholderValues::current`] reads them from the
/// system; tests build one by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceholderValues {
    /// Short host name (up to the first `.`).
    pub hostname: String,
    /// Fully qualified host name.
    pub fqdn: String,
    /// OS user name (or the numeric uid if it has no name).
    pub user: String,
    /// Process ID.
    pub pid: u32,
    /// A random UUID4 in its canonical text form.
    pub uuid4: String,
    /// The current time in UTC.
    pub utcnow: DateTime<Utc>,
    /// The UTC offset of local time at `utcnow`.
    pub local_offset: FixedOffset,
    /// The local time zone abbreviation (for `%Z`).
    pub local_zone: String,
}

impl PlaceholderValues {
    /// Values of this process, host and moment.
    pub fn current() -> PlaceholderValues {
        let raw = gethostname::gethostname().to_string_lossy().into_owned();
        let fqdn = resolve_fqdn(&raw).unwrap_or_else(|| raw.clone());
        let hostname = raw.split('.').next().unwrap_or("").to_string();
        // borg 1.4: BORG_HOSTNAME / BORG_USERNAME override {hostname} / {user} when not empty
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let utcnow = Utc::now();
        let local = utcnow.with_timezone(&Local);
        PlaceholderValues {
            hostname: env("BORG_HOSTNAME").unwrap_or(hostname),
            fqdn,
            user: env("BORG_USERNAME").unwrap_or_else(os_user_name),
            pid: std::process::id(),
            uuid4: random_uuid4(),
            utcnow,
            local_offset: *local.offset(),
            local_zone: local_zone_name(utcnow.timestamp()),
        }
    }

    /// The value of one placeholder key, if it is a known one.
    pub fn get(&self, key: &str) -> Option<FormatValue> {
        let s = |v: &str| Some(FormatValue::Str(v.to_string()));
        match key {
            "pid" => Some(FormatValue::Int(i64::from(self.pid))),
            "fqdn" => s(&self.fqdn),
            "reverse-fqdn" => s(&self.fqdn.rsplit('.').collect::<Vec<_>>().join(".")),
            "hostname" => s(&self.hostname),
            "now" => Some(FormatValue::Time {
                time: self.utcnow.with_timezone(&self.local_offset),
                zone: self.local_zone.clone(),
            }),
            "utcnow" => Some(FormatValue::Time {
                time: self.utcnow.fixed_offset(),
                zone: "UTC".to_string(),
            }),
            "user" => s(&self.user),
            "uuid4" => s(&self.uuid4),
            "borgversion" => s(BORG_VERSION),
            "borgpatch" => s(&crate::version::borg_patch()),
            "borgmajor" => s(&crate::version::borg_major()),
            "borgminor" => s(&crate::version::borg_minor()),
            _ => None,
        }
    }
}

/// Expands placeholders in `text` with the values of this process, host and moment
/// (borg's `replace_placeholders`).
pub fn replace_placeholders(text: &str) -> Result<String, PlaceholderError> {
    replace_placeholders_with(text, &PlaceholderValues::current())
}

/// Expands placeholders in `text` with the given values.
pub fn replace_placeholders_with(
    text: &str,
    values: &PlaceholderValues,
) -> Result<String, PlaceholderError> {
    format_map(text, &|key| values.get(key))
}

/// Borg's `archivename_validator`: expands placeholders, then refuses an empty name and names
/// containing `/` or `::`. Returns the expanded name.
pub fn validate_archive_name(text: &str) -> Result<String, ArchiveNameError> {
    validate_archive_name_with(text, &PlaceholderValues::current())
}

/// [`validate_archive_name`] with injected placeholder values.
pub fn validate_archive_name_with(
    text: &str,
    values: &PlaceholderValues,
) -> Result<String, ArchiveNameError> {
    let name = replace_placeholders_with(text, values)?;
    if name.is_empty() || name.contains('/') || name.contains("::") {
        return Err(ArchiveNameError::Invalid(name));
    }
    Ok(name)
}

// ---------------------------------------------------------------------------------------------
// System look-ups
// ---------------------------------------------------------------------------------------------

/// The canonical name of `host` from `getaddrinfo(AI_CANONNAME)` (borg's patched `getfqdn`).
fn resolve_fqdn(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: hints is zero-initialised plain data; getaddrinfo's result list is freed below and
    // the canonical name is copied before that.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_socktype = libc::SOCK_DGRAM;
        hints.ai_flags = libc::AI_CANONNAME;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 {
            return None;
        }
        let mut found = None;
        let mut cur = res;
        while !cur.is_null() {
            let name = (*cur).ai_canonname;
            if !name.is_null() {
                let s = std::ffi::CStr::from_ptr(name)
                    .to_string_lossy()
                    .into_owned();
                if !s.is_empty() {
                    found = Some(s);
                    break;
                }
            }
            cur = (*cur).ai_next;
        }
        libc::freeaddrinfo(res);
        found
    }
}

/// The user name of the real uid, or the uid as text (borg's `getosusername`).
fn os_user_name() -> String {
    // SAFETY: getpwuid_r writes into our buffers only; pw_name points into `buf`.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        uid.to_string()
    }
}

/// The local time zone abbreviation at `timestamp` (what Python's `%Z` prints for local time).
fn local_zone_name(timestamp: i64) -> String {
    // SAFETY: localtime_r fills `tm`; tm_zone points to static storage of the C library.
    unsafe {
        let t = timestamp as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() || tm.tm_zone.is_null() {
            return String::new();
        }
        std::ffi::CStr::from_ptr(tm.tm_zone)
            .to_string_lossy()
            .into_owned()
    }
}

/// A random version-4 UUID, e.g. `0f8fad5b-d9cb-469f-a165-70867728950e`.
fn random_uuid4() -> String {
    let mut b = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !filled {
        // Fall back to the clock and pid; uniqueness, not secrecy, is what matters here.
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128
            ^ (u128::from(std::process::id()) << 64);
        b = seed.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    //! Expectations were produced with Python 3.11 and borg 1.2.4 (`str.format` for specs,
    //! `borg.helpers.parseformat.replace_placeholders` with fixed overrides for placeholders).

    use super::*;
    use chrono::TimeZone;

    #[derive(Clone, Copy)]
    enum V {
        S(&'static str),
        I(i64),
        F(f64),
    }
    use V::{F, I, S};

    impl V {
        fn value(self) -> FormatValue {
            match self {
                S(s) => FormatValue::Str(s.to_string()),
                I(i) => FormatValue::Int(i),
                F(f) => FormatValue::Float(f),
            }
        }
    }

    #[test]
    fn format_specs_like_python() {
        #[rustfmt::skip]
        let cases: &[(&str, V, Result<&str, &str>)] = &[
        ("{}", S("abc"), Ok("abc")),
        ("{:>10}", S("abc"), Ok("       abc")),
        ("{:<10}", S("abc"), Ok("abc       ")),
        ("{:^8}", S("abc"), Ok("  abc   ")),
        ("{:^9}", S("ab"), Ok("   ab    ")),
        ("{:*^9}", S("ab"), Ok("***ab****")),
        ("{:6}", S("root"), Ok("root  ")),
        ("{:6}", S("verylongname"), Ok("verylongname")),
        ("{:.3}", S("abcdef"), Ok("abc")),
        ("{:10.3}", S("abcdef"), Ok("abc       ")),
        ("{:05}", S("ab"), Ok("ab000")),
        ("{:<36}", S("host-2024-01-01T00:00:00"), Ok("host-2024-01-01T00:00:00            ")),
        ("{:s}", S("x"), Ok("x")),
        ("{:>3}", S("ééé€"), Ok("ééé€")),
        ("{:d}", S("x"), Err("ValueError(Unknown format code 'd' for object of type 'str')")),
        ("{:+}", S("a"), Err("ValueError(Sign not allowed in string format specifier)")),
        ("{:=5}", S("a"), Err("ValueError('=' alignment not allowed in string format specifier)")),
        ("{:#}", S("a"), Err("ValueError(Alternate form (#) not allowed in string format specifier)")),
        ("{:,s}", S("a"), Err("ValueError(Cannot specify ',' with 's'.)")),
        ("{:abc}", S("a"), Err("ValueError(Invalid format specifier 'abc' for object of type 'str')")),
        ("{:.}", S("a"), Err("ValueError(Format specifier missing precision)")),
        // fuzz/regressions/placeholders/width-16g: bounded width and precision
        ("{:<00000000016416692724}", S("a"), Err("ValueError(Format width or precision 16416692724 exceeds the limit 100000)")),
        ("{:100001}", S("a"), Err("ValueError(Format width or precision 100001 exceeds the limit 100000)")),
        ("{:.100001}", S("a"), Err("ValueError(Format width or precision 100001 exceeds the limit 100000)")),
        ("{:99999999999999999999999}", I(1), Err("ValueError(Format width or precision 18446744073709551615 exceeds the limit 100000)")),
        ("{:.100001f}", F(1.0), Err("ValueError(Format width or precision 100001 exceeds the limit 100000)")),
        ("{}", I(42), Ok("42")),
        ("{:8}", I(1234), Ok("    1234")),
        ("{:8d}", I(1234), Ok("    1234")),
        ("{:08d}", I(1234), Ok("00001234")),
        ("{:08d}", I(-42), Ok("-0000042")),
        ("{:<8}", I(-5), Ok("-5      ")),
        ("{:^8}", I(7), Ok("   7    ")),
        ("{:=8}", I(-5), Ok("-      5")),
        ("{:x<8}", I(-5), Ok("-5xxxxxx")),
        ("{:+d}", I(5), Ok("+5")),
        ("{: d}", I(5), Ok(" 5")),
        ("{:,}", I(1234567), Ok("1,234,567")),
        ("{:_}", I(1234567), Ok("1_234_567")),
        ("{:09,}", I(1234), Ok("0,001,234")),
        ("{:08,}", I(1234), Ok("0,001,234")),
        ("{:x}", I(255), Ok("ff")),
        ("{:#x}", I(255), Ok("0xff")),
        ("{:X}", I(255), Ok("FF")),
        ("{:#010x}", I(255), Ok("0x000000ff")),
        ("{:o}", I(8), Ok("10")),
        ("{:#o}", I(8), Ok("0o10")),
        ("{:b}", I(5), Ok("101")),
        ("{:_b}", I(255), Ok("1111_1111")),
        ("{:#b}", I(-5), Ok("-0b101")),
        ("{:c}", I(65), Ok("A")),
        ("{:,x}", I(255), Err("ValueError(Cannot specify ',' with 'x'.)")),
        ("{:.2d}", I(5), Err("ValueError(Precision not allowed in integer format specifier)")),
        ("{:s}", I(5), Err("ValueError(Unknown format code 's' for object of type 'int')")),
        ("{:f}", I(5), Ok("5.000000")),
        ("{:.1%}", I(1), Ok("100.0%")),
        ("{:n}", I(1234), Ok("1234")),
        ("{:z}", I(1), Err("ValueError(Negative zero coercion (z) not allowed in integer format specifier)")),
        ("{:8}", I(i64::MIN), Ok("-9223372036854775808")),
        ("{}", F(1.0_f64), Ok("1.0")),
        ("{}", F(123.456_f64), Ok("123.456")),
        ("{}", F(1e+16), Ok("1e+16")),
        ("{}", F(1e-05), Ok("1e-05")),
        ("{}", F(0.0001_f64), Ok("0.0001")),
        ("{}", F(-0.0_f64), Ok("-0.0")),
        ("{}", F(1.5e+300), Ok("1.5e+300")),
        ("{:f}", F(3.14259_f64), Ok("3.142590")),
        ("{:.2f}", F(3.14259_f64), Ok("3.14")),
        ("{:10.3f}", F(-1.23456_f64), Ok("    -1.235")),
        ("{:.0f}", F(2.5_f64), Ok("2")),
        ("{:e}", F(12345.678_f64), Ok("1.234568e+04")),
        ("{:.2E}", F(0.000123_f64), Ok("1.23E-04")),
        ("{:g}", F(100000.0_f64), Ok("100000")),
        ("{:g}", F(1000000.0_f64), Ok("1e+06")),
        ("{:.3g}", F(0.0001234_f64), Ok("0.000123")),
        ("{:#g}", F(1.0_f64), Ok("1.00000")),
        ("{:G}", F(1e-10), Ok("1E-10")),
        ("{:.2%}", F(0.12345_f64), Ok("12.35%")),
        ("{:.2}", F(1.0_f64), Ok("1.0")),
        ("{:.1}", F(12.0_f64), Ok("1e+01")),
        ("{:.2}", F(12.0_f64), Ok("1.2e+01")),
        ("{:.3}", F(1234.5_f64), Ok("1.23e+03")),
        ("{:,.2f}", F(1234567.891_f64), Ok("1,234,567.89")),
        ("{:012,.2f}", F(1234.5_f64), Ok("0,001,234.50")),
        ("{:+.1f}", F(2.0_f64), Ok("+2.0")),
        ("{:d}", F(1.0_f64), Err("ValueError(Unknown format code 'd' for object of type 'float')")),
        ("{:z.1f}", F(-0.01_f64), Ok("0.0")),
        ("{:08.2f}", F(-3.5_f64), Ok("-0003.50")),
        ("{:>8}", F(2.5_f64), Ok("     2.5")),
        ("{}", F(f64::INFINITY), Ok("inf")),
        ("{:F}", F(f64::NAN), Ok("NAN")),
        ("{:5}", F(f64::NEG_INFINITY), Ok(" -inf")),
        ];
        let mut failures = Vec::new();
        for (fmt, v, want) in cases {
            let value = v.value();
            // The table uses positional `{}`; format through the key `v` instead.
            let fmt_v = fmt.replace('{', "{v");
            let got = match format_line(&fmt_v, &|k| (k == "v").then(|| value.clone())) {
                Ok(s) => Ok(s),
                Err(PlaceholderError::Formatting { kind, message, .. }) => {
                    Err(format!("{kind}({message})"))
                }
                Err(e) => Err(format!("other: {e}")),
            };
            let want = want.map(str::to_string).map_err(str::to_string);
            if got != want {
                failures.push(format!("{fmt} {:?}: got {got:?}, want {want:?}", v.value()));
            }
        }
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    fn values() -> PlaceholderValues {
        PlaceholderValues {
            hostname: "vm".into(),
            fqdn: "vm.example.org".into(),
            user: "alice".into(),
            pid: 4242,
            uuid4: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            utcnow: Utc
                .with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
                .single()
                .unwrap()
                .checked_add_signed(chrono::Duration::microseconds(123_456))
                .unwrap(),
            local_offset: FixedOffset::east_opt(3600).unwrap(),
            local_zone: "CET".into(),
        }
    }

    #[test]
    fn placeholders_like_borg() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<&str, &str>)] = &[
        ("{hostname}", Ok("vm")),
        ("{fqdn}", Ok("vm.example.org")),
        ("{reverse-fqdn}", Ok("org.example.vm")),
        ("{user}", Ok("alice")),
        ("{pid}", Ok("4242")),
        ("{uuid4}", Ok("0f8fad5b-d9cb-469f-a165-70867728950e")),
        ("{now}", Ok("2024-01-02T04:04:05")),
        ("{utcnow}", Ok("2024-01-02T03:04:05")),
        ("{now:%Y-%m-%d}", Ok("2024-01-02")),
        ("{utcnow:%Y-%m-%dT%H:%M:%S.%f%z %Z}", Ok("2024-01-02T03:04:05.123456+0000 UTC")),
        ("{now:%H:%M %Z %z}", Ok("04:04 CET +0100")),
        ("{now:%j %a %b %%}", Ok("002 Tue Jan %")),
        ("{now:%Q}", Ok("%Q")),
        // fuzz/regressions/placeholders/strftime-display-error: chrono cannot format `%#z`
        ("{hostname}-{now:%#z%:%:}", Ok("vm-%#z%:%:")),
        ("{hostname}-{user}-{now}", Ok("vm-alice-2024-01-02T04:04:05")),
        ("{{hostname}}", Ok("{hostname}")),
        ("{{{hostname}}}", Ok("{vm}")),
        ("plain", Ok("plain")),
        ("", Ok("")),
        ("{pid:08d}", Ok("00004242")),
        ("{user:>8}", Ok("   alice")),
        ("{hostname!r}", Err("InvalidPlaceholder")),
        ("{nope}", Err("InvalidPlaceholder")),
        ("{}", Err("PlaceholderError")),
        ("{hostname:d}", Err("PlaceholderError")),
        ("{", Err("ValueError")),
        ("}", Err("ValueError")),
        ("a}b", Err("ValueError")),
        ("{hostname", Err("ValueError")),
        ("{NL}", Err("InvalidPlaceholder")),
        ("{0}", Err("InvalidPlaceholder")),
        ("{hostname.x}", Err("InvalidPlaceholder")),
        ("{user:{hostname}}", Err("PlaceholderError")),
        ("{now:>20}", Ok(">20")),
        ];
        let vals = values();
        for (text, want) in cases {
            let got = replace_placeholders_with(text, &vals);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{text}"),
                (Err("InvalidPlaceholder"), Err(PlaceholderError::InvalidPlaceholder { .. }))
                | (Err("PlaceholderError"), Err(PlaceholderError::Formatting { .. }))
                | (Err("ValueError"), Err(PlaceholderError::Syntax(_))) => {}
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn version_placeholders_come_from_the_one_version() {
        // {borgversion} and {borgpatch} are the whole version, {borgminor} its first two parts,
        // {borgmajor} the first
        let v = crate::version::BORG_VERSION;
        let minor = &v[..v.rfind('.').unwrap()];
        let major = &v[..v.find('.').unwrap()];
        let vals = values();
        for (text, want) in [
            ("{borgversion}", v),
            ("{borgpatch}", v),
            ("{borgminor}", minor),
            ("{borgmajor}", major),
        ] {
            assert_eq!(replace_placeholders_with(text, &vals).unwrap(), want);
        }
        assert_eq!(major, "1", "hoard speaks borg 1.x");
    }

    #[test]
    fn error_messages() {
        let vals = values();
        let msg = |t: &str| replace_placeholders_with(t, &vals).unwrap_err().to_string();
        assert_eq!(
            msg("x-{nope}"),
            "Invalid placeholder \"nope\" in string: x-{nope}"
        );
        assert_eq!(
            msg("{hostname!r}"),
            "Invalid placeholder \"hostname\" in string: {hostname!r}"
        );
        assert_eq!(
            msg("{hostname:d}"),
            "Formatting Error: \"{hostname:d}\".format({...}): \
             ValueError(Unknown format code 'd' for object of type 'str')"
        );
        assert_eq!(msg("a}b"), "Single '}' encountered in format string");
        assert_eq!(msg("{x"), "expected '}' before end of string");
        assert_eq!(msg("x{"), "Single '{' encountered in format string");
        assert_eq!(msg("{a!rx}"), "expected ':' after conversion specifier");
    }

    #[test]
    fn archive_names() {
        let vals = values();
        assert_eq!(
            validate_archive_name_with("{hostname}-{now:%Y}", &vals).unwrap(),
            "vm-2024"
        );
        for bad in ["", "a/b", "a::b", "{utcnow:%Y/%m}"] {
            let err = validate_archive_name_with(bad, &vals).unwrap_err();
            assert!(matches!(err, ArchiveNameError::Invalid(_)), "{bad}");
        }
        assert_eq!(
            validate_archive_name_with("a/{user}", &vals)
                .unwrap_err()
                .to_string(),
            "Invalid archive name: \"a/alice\""
        );
        assert!(matches!(
            validate_archive_name_with("{x}", &vals),
            Err(ArchiveNameError::Placeholder(_))
        ));
        assert_eq!(validate_archive_name_with("a:b", &vals).unwrap(), "a:b");
    }

    #[test]
    fn list_default_formats_and_fixed_keys() {
        let item = |k: &str| -> Option<FormatValue> {
            Some(match k {
                "mode" => "-rw-r--r--".into(),
                "user" => "root".into(),
                "group" => "wheel".into(),
                "size" => FormatValue::Int(1234),
                "mtime" => "Tue, 2024-01-02 04:04:05".into(),
                "path" => "etc/passwd".into(),
                "extra" => "".into(),
                "archive" => "host-2024".into(),
                "time" => "Tue, 2024-01-02 04:04:05".into(),
                "id" => "ab".repeat(32).into(),
                _ => return None,
            })
        };
        assert_eq!(
            format_line(
                "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}",
                &item
            )
            .unwrap(),
            "-rw-r--r-- root   wheel      1234 Tue, 2024-01-02 04:04:05 etc/passwd\n"
        );
        assert_eq!(
            format_line("{archive:<36} {time} [{id}]{NL}", &item).unwrap(),
            format!(
                "host-2024{} Tue, 2024-01-02 04:04:05 [{}]\n",
                " ".repeat(27),
                "ab".repeat(32)
            )
        );
        assert_eq!(
            format_line("{path}{NUL}{TAB}{CR}{LF}{SPACE}{NEWLINE}", &item).unwrap(),
            "etc/passwd\0\t\r\n \n"
        );
        assert!(matches!(
            format_line("{bogus}", &item),
            Err(PlaceholderError::InvalidPlaceholder { .. })
        ));
        // format_map (placeholder context) has no fixed keys.
        assert!(format_map("{NL}", &item).is_err());
    }

    #[test]
    fn current_values_are_sane() {
        let v = PlaceholderValues::current();
        assert!(!v.hostname.is_empty() && !v.hostname.contains('.'));
        assert!(!v.user.is_empty());
        assert_eq!(v.pid, std::process::id());
        assert_eq!(v.uuid4.len(), 36);
        assert_eq!(&v.uuid4[14..15], "4");
        let out = replace_placeholders("{borgversion} {pid}").unwrap();
        assert_eq!(
            out,
            format!("{} {}", crate::version::BORG_VERSION, std::process::id())
        );
    }
}

#[cfg(test)]
mod live_tests {
    //! Random format specs and values, formatted by the installed Python and by us.

    use super::*;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn live_fuzz_format_specs_against_python() {
        if std::env::var_os("HOARD_SKIP_BORG").is_some() {
            return;
        }
        let count: usize = std::env::var("HOARD_FUZZ_COUNT")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(600);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut specs = Vec::new();
        let mut values = Vec::new();
        for _ in 0..count {
            let spec = [
                rng.pick(&["", "", "<", ">", "^", "=", "*<", "0>", "x^", "-="]),
                rng.pick(&["", "", "+", "-", " "]),
                rng.pick(&["", "", "", "z"]),
                rng.pick(&["", "", "#"]),
                rng.pick(&["", "", "0"]),
                rng.pick(&["", "", "1", "5", "12"]),
                rng.pick(&["", "", ",", "_"]),
                rng.pick(&["", "", ".0", ".1", ".3", ".10"]),
                rng.pick(&[
                    "", "", "", "s", "d", "x", "X", "o", "b", "c", "e", "E", "f", "F", "g", "G",
                    "%", "n",
                ]),
            ]
            .concat();
            let value = match rng.next() % 3 {
                0 => FormatValue::Str(
                    rng.pick(&["", "a", "hello", "ÄÖü", "with space", "0123456789abcdef"])
                        .to_string(),
                ),
                1 => FormatValue::Int(
                    [0, 1, -1, 7, 65, 255, -1234, 1234567, i64::MAX, i64::MIN]
                        [(rng.next() % 10) as usize],
                ),
                _ => FormatValue::Float(
                    [
                        0.0,
                        -0.0,
                        1.0,
                        0.5,
                        2.5,
                        -3.75,
                        0.1,
                        123.456,
                        1e16,
                        1.5e-7,
                        -1e300,
                        9.999_999e5,
                        0.000_123_4,
                        1234567.891,
                        100000.0,
                    ][(rng.next() % 15) as usize],
                ),
            };
            specs.push(spec);
            values.push(value);
        }
        let py_values: Vec<String> = values
            .iter()
            .map(|v| match v {
                FormatValue::Str(s) => format!("s:{s}"),
                FormatValue::Int(i) => format!("i:{i}"),
                FormatValue::Float(f) => format!("f:{f:e}"),
                FormatValue::Time { .. } => unreachable!(),
            })
            .collect();
        let input: Vec<String> = specs
            .iter()
            .zip(&py_values)
            .map(|(s, v)| format!("{s}\x01{v}"))
            .collect();
        let script = "import sys\n\
            for line in sys.stdin.read().split('\\x02'):\n    \
                spec, v = line.split('\\x01')\n    \
                t, v = v[0], v[2:]\n    \
                v = {'s': str, 'i': int, 'f': float}[t](v)\n    \
                try:\n        out = 'O' + format(v, spec)\n    \
                except Exception as e:\n        out = 'E' + type(e).__name__ + '(' + str(e) + ')'\n    \
                sys.stdout.write(out + '\\x02')\n";
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3 (set HOARD_SKIP_BORG=1 to skip)");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.join("\x02").as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let wants: Vec<&str> = text.split('\x02').filter(|s| !s.is_empty()).collect();
        assert_eq!(wants.len(), specs.len());
        let mut failures = Vec::new();
        for ((spec, value), want) in specs.iter().zip(&values).zip(wants) {
            let got = match format_value(value, spec) {
                Ok(s) => format!("O{s}"),
                Err((kind, msg)) => format!("E{kind}({msg})"),
            };
            if got != want {
                failures.push(format!("{spec:?} {value:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
