//! Layers point one way: `tools/module-cycles.py` (which reads the `crate::` and `super::`
//! paths in src/) finds no import circle between hoard's modules at depth 1 (`repo`, `cli`)
//! or depth 2 (`repo::local`, `cli::args`), and it does find one when there is one; no
//! command module of the CLI (`cli/cmd_<command>.rs`) imports another (what two commands
//! share lives in a shared `cli` module), and such an import is found when there is one.

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
            format!(
                "0 circle(s) between modules at depth {depth}\n\
                 0 import(s) of one cli command module by another"
            )
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

#[test]
fn a_command_module_importing_another_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = dir.path().join("src").join("cli");
    std::fs::create_dir_all(&cli).expect("mkdir");
    let files = [
        (
            "mod.rs",
            "pub mod cmd_a;\npub mod cmd_b;\npub mod cmd_c;\npub mod shared;\n",
        ),
        (
            "cmd_a.rs",
            "use super::shared::Out;\nuse super::cmd_b::Reporter;\nfn f() { super::cmd_a::g(); }\n",
        ),
        ("cmd_b.rs", "fn f() { crate::cli::cmd_a::run(); }\n"),
        ("cmd_c.rs", "use super::{cmd_b, shared};\n"),
        ("shared.rs", "pub struct Out;\n"),
    ];
    for (name, text) in files {
        std::fs::write(cli.join(name), text).expect("write");
    }
    let src_text = dir.path().join("src").to_string_lossy().into_owned();
    let out = cycles(&["--depth", "2", "--root", &src_text]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "command module imports another: cli::cmd_a -> cli::cmd_b: src/cli/cmd_a.rs:2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "command module imports another: cli::cmd_b -> cli::cmd_a: src/cli/cmd_b.rs:1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "command module imports another: cli::cmd_c -> cli::cmd_b: src/cli/cmd_c.rs:1"
        ),
        "{text}"
    );
    // a module naming itself or a shared module is not reported
    assert!(
        text.contains("3 import(s) of one cli command module by another"),
        "{text}"
    );
}
