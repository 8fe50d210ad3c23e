//! Layers point one way: `tools/module-cycles.py` (which reads the `crate::` and `super::`
//! paths in src/) finds no import circle between hoard's modules at depth 1 (`repo`, `cli`)
//! or depth 2 (`repo::local`, `cli::args`), and it does find one when there is one.

use std::path::Path;
use std::process::{Command, Output};

fn cycles(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(root.join("tools/module-cycles.py"))
        .args(args)
        .output()
        .expect("python3 runs tools/module-cycles.py")
}

#[test]
fn no_import_circle_between_modules() {
    for depth in ["1", "2"] {
        let out = cycles(&["--depth", depth]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "import circles at depth {depth}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.trim_end(),
            format!("0 circle(s) between modules at depth {depth}")
        );
    }
}

#[test]
fn a_circle_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    for (m, other) in [("low", "high"), ("high", "low")] {
        std::fs::create_dir_all(src.join(m)).expect("mkdir");
        std::fs::write(
            src.join(m).join("mod.rs"),
            format!("use crate::{other}::Thing;\n#[cfg(test)]\nuse crate::tests_only::X;\n"),
        )
        .expect("write");
    }
    let src_text = src.to_string_lossy().into_owned();
    let out = cycles(&["--root", &src_text]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("circle: high <-> low"), "{text}");
    assert!(
        text.contains("1 circle(s) between modules at depth 1"),
        "{text}"
    );
    // paths after `#[cfg(test)]` are not edges
    assert!(!text.contains("tests_only"), "{text}");
}
