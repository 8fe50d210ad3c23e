//! Tests against expectations generated from real borg 1.2.4 (`borg_cases.rs`, produced by
//! `borg_expectations.py`), plus a live cross-check with the installed borg when available.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::borg_cases::{PATHS, PATTERN_CASES, SCENARIOS};
use super::*;

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

#[test]
fn single_patterns_match_like_borg() {
    let mut failures = Vec::new();
    for (pattern, expected) in PATTERN_CASES {
        let parsed = Pattern::parse(os(pattern), PatternStyle::Fnmatch, true);
        match (parsed, expected) {
            (Err(_), Err(())) => {}
            (Err(e), Ok(_)) => failures.push(format!(
                "{}: rejected: {e}",
                String::from_utf8_lossy(pattern)
            )),
            (Ok(_), Err(())) => {
                failures.push(format!("{}: accepted", String::from_utf8_lossy(pattern)))
            }
            (Ok(mut p), Ok(bits)) => {
                let got: String = PATHS
                    .iter()
                    .map(|path| if p.matches(os(path)) { '1' } else { '0' })
                    .collect();
                if got != *bits {
                    let diffs: Vec<String> = PATHS
                        .iter()
                        .zip(got.chars().zip(bits.chars()))
                        .filter(|(_, (g, w))| g != w)
                        .map(|(path, (g, _))| format!("{:?}->{g}", String::from_utf8_lossy(path)))
                        .collect();
                    failures.push(format!(
                        "{} ({}): {}",
                        String::from_utf8_lossy(pattern),
                        p.normalized(),
                        diffs.join(", ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn matcher_scenarios_like_borg() {
    for (name, pattern_file, exclude_file, includes, roots, results, unmatched) in SCENARIOS {
        let mut args = PatternArgs::default();
        load_pattern_file(pattern_file, &mut args.roots, &mut args.rules).unwrap();
        load_exclude_file(exclude_file, &mut args.rules).unwrap();
        let got_roots: Vec<&[u8]> = args.roots.iter().map(|r| r.as_bytes()).collect();
        assert_eq!(&got_roots, roots, "{name}: roots");
        let includes: Vec<&OsStr> = includes.iter().map(|i| os(i)).collect();
        let mut matcher = build_matcher(args.rules, &includes).unwrap();
        for (path, (included, recurse)) in PATHS.iter().zip(results.iter()) {
            let r = matcher.matches(os(path));
            let want = match included {
                -1 => None,
                v => Some(*v == 1),
            };
            assert_eq!(
                (r.included, r.recurse_dir),
                (want, *recurse),
                "{name}: path {:?}",
                String::from_utf8_lossy(path)
            );
            assert_eq!(matcher.recurse_dir(), Some(*recurse));
        }
        let got: Vec<Vec<u8>> = matcher
            .unmatched_include_patterns()
            .iter()
            .map(|p| p.original().as_bytes().to_vec())
            .collect();
        let want: Vec<Vec<u8>> = unmatched.iter().map(|u| u.to_vec()).collect();
        assert_eq!(got, want, "{name}: unmatched includes");
    }
}

#[test]
fn command_line_errors_have_borg_messages() {
    let err = |line: &str| {
        parse_inclexcl_command(line.as_ref(), PatternStyle::Shell)
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(
        err("").as_deref(),
        Some("A pattern/command must not be empty.")
    );
    assert_eq!(
        err("x foo").as_deref(),
        Some("A pattern/command must start with anyone of: -, !, +, R, r, P, p")
    );
    assert_eq!(
        err("+   ").as_deref(),
        Some("A pattern/command must have a value part.")
    );
    assert_eq!(err("P zz").as_deref(), Some("Invalid pattern style: zz"));
    assert_eq!(
        err("- xx:foo").as_deref(),
        Some("Unknown pattern style: xx")
    );
    assert_eq!(
        err("- sh:[z-a]").as_deref(),
        Some("bad character range z-a")
    );
    let bad = err("- re:(").unwrap_or_default();
    assert!(bad.starts_with("Invalid regular expression '(': "), "{bad}");
    assert!(!bad.contains('\n'), "{bad}");
    assert!(matches!(
        parse_inclexcl_command("P fm".as_ref(), PatternStyle::Shell),
        Ok(PatternLine::Style(PatternStyle::Fnmatch))
    ));
    assert!(matches!(
        parse_inclexcl_command("r /x".as_ref(), PatternStyle::Shell),
        Ok(PatternLine::Root(r)) if r == "/x"
    ));
}

#[test]
fn args_files_and_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ex = dir.path().join("ex");
    std::fs::write(&ex, b"  *.tmp \r\n# c\r\n\r\nsh:var/**\n").unwrap();
    let pf = dir.path().join("pf");
    std::fs::write(&pf, b"R /home\nP fm\n- a*\n! b\n").unwrap();
    let mut args = PatternArgs::default();
    args.add_exclude("home".as_ref()).unwrap();
    args.add_exclude_from(&ex).unwrap();
    args.add_pattern("P re".as_ref()).unwrap(); // no effect on the command line
    args.add_pattern("+ x*".as_ref()).unwrap(); // still sh:
    args.add_patterns_from(&pf).unwrap();
    args.add_pattern("R /etc".as_ref()).unwrap();
    assert_eq!(args.roots, vec!["/home", "/etc"]);
    let styles: Vec<(PatternStyle, IeCommand, &str)> = args
        .rules
        .iter()
        .map(|r| (r.pattern.style(), r.cmd, r.pattern.normalized()))
        .collect();
    assert_eq!(
        styles,
        vec![
            (PatternStyle::Fnmatch, IeCommand::ExcludeNoRecurse, "home/*"),
            (
                PatternStyle::Fnmatch,
                IeCommand::ExcludeNoRecurse,
                "*.tmp/*"
            ),
            (
                PatternStyle::Shell,
                IeCommand::ExcludeNoRecurse,
                "var/**/**/*"
            ),
            (PatternStyle::Shell, IeCommand::Include, "x*/**/*"),
            (PatternStyle::Fnmatch, IeCommand::Exclude, "a*/*"),
            (PatternStyle::Fnmatch, IeCommand::ExcludeNoRecurse, "b/*"),
        ]
    );
    let missing = args
        .add_exclude_from(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("[Errno 2] No such file or directory: '"),
        "{missing}"
    );
}

#[test]
fn warnings_for_unmatched_includes() {
    let mut m = build_matcher(Vec::new(), &["home/user", "sh:etc/*"]).unwrap();
    assert_eq!(m.matches("/etc/passwd".as_ref()).included, Some(true));
    assert_eq!(m.matches("/var".as_ref()).included, Some(false));
    assert_eq!(
        m.unmatched_include_warnings(),
        vec!["Include pattern 'home/user' never matched."]
    );
}

/// Cross-checks random-ish combinations with the installed borg at test time.
#[test]
fn live_cross_check_with_installed_borg() {
    if std::env::var_os("HOARD_SKIP_BORG").is_some() {
        return;
    }
    let python = "/usr/bin/python3";
    let probe = std::process::Command::new(python)
        .args(["-c", "import borg.patterns"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "borg's Python package is not importable by {python}; set HOARD_SKIP_BORG=1 to skip"
        ),
    }
    let patterns = [
        "sh:**/[a-c]*/x?",
        "fm:*/[!.]*",
        "sh:[!a]*/**",
        "re:^(a|b)/",
        "fm:[a-]*",
        "sh:a/**/",
        "fm:a/*/",
        "pp:a/b/",
        "sh:*[]-]*",
        "fm:*[!]-]",
    ];
    let paths = [
        "a/b/x1",
        "a/x/y/b/x2",
        "c/d/x",
        "-",
        "a-",
        "a/",
        "a/b/c/d",
        ".a/b",
        "]",
        "b/]",
    ];
    let script = format!(
        "from borg.patterns import parse_pattern, FnmatchPattern\nfor p in {patterns:?}:\n    \
         pat = parse_pattern(p, FnmatchPattern)\n    print(''.join('1' if pat.match(x.lstrip('/')) \
         else '0' for x in {paths:?}))\n"
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for (pattern, want) in patterns.iter().zip(text.lines()) {
        let mut p = Pattern::parse(pattern.as_ref(), PatternStyle::Fnmatch, true).unwrap();
        let got: String = paths
            .iter()
            .map(|x| if p.matches(x.as_ref()) { '1' } else { '0' })
            .collect();
        assert_eq!(got, want, "pattern {pattern}");
    }
}

/// A small deterministic generator (xorshift) for the fuzz cross-check.
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

    fn string(&mut self, alphabet: &[&str], max_len: u64) -> String {
        let len = self.next() % (max_len + 1);
        (0..len).map(|_| self.pick(alphabet)).collect()
    }
}

/// Random patterns of all glob/path styles and random paths, decided by the installed borg and
/// by us. `HOARD_FUZZ_COUNT` raises the number of patterns (default 600).
#[test]
fn live_fuzz_against_installed_borg() {
    if std::env::var_os("HOARD_SKIP_BORG").is_some() {
        return;
    }
    let count: usize = std::env::var("HOARD_FUZZ_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(600);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pat_alphabet = [
        "a", "b", "/", "*", "**/", "?", "[", "]", "!", "-", "^", ".", "..", "\\", "é", "a-", "[!",
    ];
    let path_alphabet = ["a", "b", "/", ".", "-", "]", "!", "é", "^", "\\", "ab/"];
    let styles = ["", "fm:", "sh:", "pp:", "pf:"];
    let patterns: Vec<String> = (0..count)
        .map(|_| format!("{}{}", rng.pick(&styles), rng.string(&pat_alphabet, 6)))
        .collect();
    let paths: Vec<String> = (0..40).map(|_| rng.string(&path_alphabet, 6)).collect();
    let input = format!("{}\0{}", patterns.join("\x01"), paths.join("\x01"));
    let script = "import sys\nfrom borg.patterns import parse_pattern, FnmatchPattern\n\
        pats, paths = sys.stdin.read().split('\\0')\n\
        paths = paths.split('\\x01')\n\
        for p in pats.split('\\x01'):\n    \
            try:\n        pat = parse_pattern(p, FnmatchPattern)\n    \
            except Exception:\n        print('E'); continue\n    \
            print(''.join('1' if pat.match(x.lstrip('/')) else '0' for x in paths))\n";
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
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "borg's Python matcher failed (set HOARD_SKIP_BORG=1 to skip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), patterns.len());
    let mut failures = Vec::new();
    for (pattern, want) in patterns.iter().zip(text.lines()) {
        let got = match Pattern::parse(pattern.as_ref(), PatternStyle::Fnmatch, true) {
            Err(_) => "E".to_string(),
            Ok(mut p) => paths
                .iter()
                .map(|x| if p.matches(x.as_ref()) { '1' } else { '0' })
                .collect(),
        };
        if got != want {
            failures.push(format!("{pattern:?}: got {got}, want {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "mismatches with {paths:?}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn create_matcher_recursion_flags() {
    let mut args = PatternArgs::default();
    args.add_pattern("+ home/user/keep".as_ref()).unwrap();
    args.add_pattern("- home".as_ref()).unwrap();
    args.add_exclude("var".as_ref()).unwrap();
    let mut m = create_matcher(args.rules);
    let r = m.matches("/home".as_ref());
    assert_eq!((r.included, r.recurse_dir), (Some(false), true));
    let r = m.matches("/home/user/keep/f".as_ref());
    assert_eq!((r.included, r.recurse_dir), (Some(true), true));
    let r = m.matches("/var".as_ref());
    assert_eq!((r.included, r.recurse_dir), (Some(false), false));
    let r = m.matches("/etc".as_ref());
    assert_eq!((r.included, r.recurse_dir), (Some(true), true));
}

#[test]
fn regex_look_ahead_and_look_behind_follow_python_re() {
    let mut p = Pattern::parse(os(b"re:file(?!3)\\d"), PatternStyle::Fnmatch, true).unwrap();
    assert!(p.matches(os(b"input/file1")));
    assert!(!p.matches(os(b"input/file3")));
    let mut p = Pattern::parse(os(b"re:(?<=input/)file2$"), PatternStyle::Fnmatch, true).unwrap();
    assert!(p.matches(os(b"input/file2")));
    assert!(!p.matches(os(b"other/file2")));
}

#[test]
fn regex_back_references_follow_python_re() {
    // borg's own test_extract_include_exclude_regex pattern
    let mut p = Pattern::parse(os(b"re:file(\\d)\\1\\1$"), PatternStyle::Fnmatch, true).unwrap();
    assert!(p.matches(os(b"input/file333")));
    assert!(!p.matches(os(b"input/file3")));
    assert!(!p.matches(os(b"input/file334")));
    // Python's named group and named back-reference spelling
    let mut p = Pattern::parse(os(b"re:(?P<c>x)-(?P=c)"), PatternStyle::Fnmatch, true).unwrap();
    assert!(p.matches(os(b"a/x-x")));
    assert!(!p.matches(os(b"a/x-y")));
}

#[test]
fn catastrophic_regex_returns_promptly_as_no_match() {
    // (a+)+$ with a back-reference forces the backtracking engine; Python's re would take
    // exponential time on this path.
    let mut p = Pattern::parse(os(b"re:^(a+)+\\1b$"), PatternStyle::Fnmatch, true).unwrap();
    let path = format!("{}c", "a".repeat(64));
    let start = std::time::Instant::now();
    assert!(!p.matches(os(path.as_bytes())));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(p.matches(os(b"aaaab")));
}

#[test]
fn bad_regex_is_one_line_error_not_a_panic() {
    for bad in [&b"re:("[..], b"re:a(?=b", b"re:(?P=nope)", b"re:\\"] {
        let err = Pattern::parse(os(bad), PatternStyle::Fnmatch, true).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("Invalid regular expression '"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
