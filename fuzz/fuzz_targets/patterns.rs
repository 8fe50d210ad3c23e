//! Patterns (`--exclude`, `--pattern`, `--patterns-from`, `--exclude-from`): every style, the
//! pattern-file parser, and matching against a path. Input: pattern, NUL, path.
#![no_main]
use hoard::patterns::matcher::{load_exclude_file, load_pattern_file};
use hoard::patterns::{Pattern, PatternStyle};
use libfuzzer_sys::fuzz_target;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

fuzz_target!(|data: &[u8]| {
    let (pat, path) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"home/user/file.txt"[..]),
    };
    let path = OsStr::from_bytes(path);
    for style in [
        PatternStyle::Fnmatch,
        PatternStyle::Shell,
        PatternStyle::Regex,
        PatternStyle::PathPrefix,
        PatternStyle::PathFull,
    ] {
        if let Ok(mut p) = Pattern::parse(OsStr::from_bytes(pat), style, false) {
            let _ = p.matches(path);
            let _ = p.to_string();
        }
    }
    let mut roots = Vec::new();
    let mut rules = Vec::new();
    let _ = load_pattern_file(data, &mut roots, &mut rules);
    let mut rules = Vec::new();
    let _ = load_exclude_file(data, &mut rules);
});
