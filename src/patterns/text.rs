//! Path text helpers: lossless byte → text mapping and Python's `posixpath.normpath`.
//!
//! Borg works on `str` paths decoded with Python's `surrogateescape` error handler: every byte
//! that is not part of valid UTF-8 becomes one code point (`U+DC80 + byte - 0x80`). Rust strings
//! cannot hold surrogates, so [`decode_path`] maps such a byte to the private-use code point
//! `U+10FF00 + byte` instead. A pattern and a path decoded the same way then match exactly as in
//! borg: one undecodable byte counts as one character for `?`, `*` and `[...]`.

/// Base of the private-use range that stands for undecodable bytes (`U+10FF80..=U+10FFFF`).
const ESCAPE_BASE: u32 = 0x10_FF00;

/// Decodes `bytes` as UTF-8, mapping each byte of an invalid sequence to one private-use code
/// point (the analogue of Python's `surrogateescape`).
pub fn decode_path(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(err) => {
                let good = err.valid_up_to();
                // The prefix is valid by construction.
                out.push_str(&String::from_utf8_lossy(&rest[..good]));
                let bad = err.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    out.push(escape_char(b));
                }
                rest = &rest[good + bad..];
            }
        }
    }
}

/// Reverses [`decode_path`]: private-use escape code points become their original bytes again.
pub fn encode_path(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let v = c as u32;
        if (ESCAPE_BASE + 0x80..=ESCAPE_BASE + 0xFF).contains(&v) {
            out.push((v - ESCAPE_BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

fn escape_char(b: u8) -> char {
    // ESCAPE_BASE + 0..=255 are all valid scalar values (plane 16, private use).
    char::from_u32(ESCAPE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Python's `posixpath.normpath`: collapses `//`, `.` and `a/..`, keeps leading `..` of relative
/// paths, keeps exactly two leading slashes (POSIX), returns `.` for an empty result.
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let initial_slashes = if path.starts_with('/') {
        if path.starts_with("//") && !path.starts_with("///") {
            2
        } else {
            1
        }
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial_slashes == 0 && comps.is_empty()) || comps.last() == Some(&"..")
        {
            comps.push(comp);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let mut out = "/".repeat(initial_slashes);
    out.push_str(&comps.join("/"));
    if out.is_empty() {
        ".".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_like_python() {
        // Expectations from python3 -c 'import posixpath; print(posixpath.normpath(p))'.
        let cases = [
            ("", "."),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("a/./b/", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("../a/../../b", "../../b"),
            ("a//b/../c/.", "a/c"),
            (".", "."),
            ("./", "."),
            ("//a//b", "//a/b"),
        ];
        for (input, want) in cases {
            assert_eq!(normpath(input), want, "normpath({input:?})");
        }
    }

    #[test]
    fn decode_roundtrip() {
        let raw = b"a\xffb\xc3\xa9\xc3/\xed\xa0\x80";
        let text = decode_path(raw);
        assert_eq!(text.chars().count(), 9);
        assert_eq!(encode_path(&text), raw.to_vec());
    }
}
