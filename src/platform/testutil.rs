//! Helpers for tests that need external tools (`setfacl`, `getfacl`, borg's Python package).

use std::path::Path;
use std::process::Command;

/// Python interpreter that has borg 1.2 installed.
pub const BORG_PYTHON: &str = "/usr/bin/python3";

/// True if tests needing external tools should be skipped (`HOARD_SKIP_BORG=1`).
fn skip_allowed() -> bool {
    std::env::var("HOARD_SKIP_BORG").is_ok_and(|v| v == "1")
}

/// Check that `what` is available; if not, skip (return false) when `HOARD_SKIP_BORG=1`,
/// otherwise fail the test with a clear message.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if skip_allowed() {
        eprintln!("note: {what} not available, skipping (HOARD_SKIP_BORG=1)");
        return false;
    }
    panic!("{what} is required for this test (install it, or set HOARD_SKIP_BORG=1 to skip)");
}

/// True if `tool --version` (or `tool --help`) can be run.
pub fn have_tool(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// True if borg's Python package can be imported.
pub fn have_borg() -> bool {
    Command::new(BORG_PYTHON)
        .current_dir("/")
        .args(["-c", "import borg.platform"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `setfacl <args> <path>`.
pub fn setfacl(args: &[&str], path: &Path) {
    let p = path.to_str().expect("utf-8 temp path");
    let mut a = args.to_vec();
    a.push(p);
    run("setfacl", &a);
}

/// `getfacl -n --omit-header <path>` (numeric ids, no `# file` lines).
pub fn getfacl(path: &Path) -> String {
    let p = path.to_str().expect("utf-8 temp path");
    String::from_utf8(run("getfacl", &["-n", "--omit-header", p])).expect("utf-8")
}

/// Encode bytes as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
