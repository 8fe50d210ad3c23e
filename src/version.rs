//! The one place that says which borg hoard is: the version string `--version`, `version`,
//! `{borgversion}` and the `serve` protocol all report, and borg's version tuple form of it
//! (`helpers/version.py`: `(major, minor, patch, -1)` for a final release).
//!
//! Frontends parse `--version` (borgmatic takes the second word, Pika Backup the second word
//! of the first line split into three numbers and accepts only 1.4.x), and borg clients and
//! servers exchange the tuple in `negotiate` (1.2 and 1.4 only compare it against the
//! release that introduced an RPC argument, all of them 1.2 or older), so reporting 1.4.5
//! keeps 1.2 peers working.

/// The borg release hoard speaks as, as a literal so it can be `concat!`ed.
macro_rules! borg_version_literal {
    () => {
        "1.4.5"
    };
}

/// The borg version hoard claims to be (borg's `__version__`).
pub const BORG_VERSION: &str = borg_version_literal!();

/// hoard's own version.
pub const HOARD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The text after the program name in `--version`: borg's version first, so frontends keep
/// working, then hoard's own (`1.4.5 (hoard 0.1.0)`).
pub const VERSION_TEXT: &str = concat!(
    borg_version_literal!(),
    " (hoard ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// [`BORG_VERSION`] as borg's version tuple (`parse_version`), sent as `client_version` and
/// `server_version` in the RPC `negotiate` call.
pub const BORG_VERSION_TUPLE: [i64; 4] = parse_final(BORG_VERSION);

/// Parses `MAJOR.MINOR.PATCH` at compile time into `[major, minor, patch, -1]`.
const fn parse_final(s: &str) -> [i64; 4] {
    let b = s.as_bytes();
    let mut out = [0i64, 0, 0, -1];
    let mut part = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' {
            part += 1;
            assert!(part < 3, "version has more than three parts");
        } else {
            assert!(c.is_ascii_digit(), "version part is not a number");
            out[part] = out[part] * 10 + (c - b'0') as i64;
        }
        i += 1;
    }
    assert!(part == 2, "version needs three parts");
    out
}

/// `{borgmajor}`: the major version (`1`).
pub fn borg_major() -> String {
    BORG_VERSION_TUPLE[0].to_string()
}

/// `{borgminor}`: major and minor (`1.4`).
pub fn borg_minor() -> String {
    format!("{}.{}", BORG_VERSION_TUPLE[0], BORG_VERSION_TUPLE[1])
}

/// `{borgpatch}`: major, minor and patch (`1.4.5`).
pub fn borg_patch() -> String {
    format!(
        "{}.{}.{}",
        BORG_VERSION_TUPLE[0], BORG_VERSION_TUPLE[1], BORG_VERSION_TUPLE[2]
    )
}

/// borg's `format_version`: a version tuple back as text (`[1, 2, 0, -3, 2]` → `1.2.0b2`).
/// Parts after the first negative marker are dropped as borg drops them; an unknown marker
/// is shown as `?N`.
pub fn format_version(parts: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = parts.iter();
    while let Some(&p) = it.next() {
        if p >= 0 {
            out.push(p.to_string());
            continue;
        }
        if p != -1 {
            let tag = match p {
                -2 => "rc",
                -3 => "b",
                -4 => "a",
                -9 => ".dev",
                _ => "?",
            };
            let n = it.next().map_or_else(String::new, |n| n.to_string());
            match out.last_mut() {
                Some(last) => last.push_str(&format!("{tag}{n}")),
                None => out.push(format!("{tag}{n}")),
            }
        }
        break;
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_and_placeholders_follow_the_one_string() {
        assert_eq!(BORG_VERSION, "1.4.5");
        assert_eq!(BORG_VERSION_TUPLE, [1, 4, 5, -1]);
        assert_eq!(borg_major(), "1");
        assert_eq!(borg_minor(), "1.4");
        assert_eq!(borg_patch(), "1.4.5");
        assert!(VERSION_TEXT.starts_with("1.4.5 (hoard "));
    }

    #[test]
    fn format_version_as_borg() {
        assert_eq!(format_version(&BORG_VERSION_TUPLE), "1.4.5");
        assert_eq!(format_version(&[1, 2, 4, -1]), "1.2.4");
        assert_eq!(format_version(&[1, 2, 0, -3, 2]), "1.2.0b2");
        assert_eq!(format_version(&[1, 1, 0, -2, 1]), "1.1.0rc1");
        assert_eq!(format_version(&[1, 0, 8]), "1.0.8");
    }
}
