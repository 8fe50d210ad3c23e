//! `BORG_EXIT_CODES=modern`: for the same failure hoard exits with the code borg 1.4.5 exits
//! with (missing repository, wrong passphrase, existing archive, locked repository, file
//! warnings, a refused question), and legacy codes (0/1/2) stay the default.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{borg14, Env, Run};

/// Runs the same arguments with hoard and, when present, borg 1.4.5, in `env` with
/// `BORG_EXIT_CODES` set to `mode` (None: unset); returns (hoard, borg).
fn both(env: &Env, mode: Option<&str>, args: &[&str]) -> (Run, Option<Run>) {
    both_at(env, None, mode, args)
}

/// [`both`], run in the directory `cwd` if given.
fn both_at(env: &Env, cwd: Option<&Path>, mode: Option<&str>, args: &[&str]) -> (Run, Option<Run>) {
    let run = |mut c: Command| {
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        if let Some(m) = mode {
            c.env("BORG_EXIT_CODES", m);
        }
        let out = c.args(args).output().expect("run");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let h = run(env.hoard_cmd());
    let b = borg14().map(|b| run(env.command_for(&b.to_string_lossy())));
    (h, b)
}

/// Asserts hoard's code is `want` in modern and `legacy` by default, and that borg 1.4.5
/// agrees on both.
fn assert_codes(env: &Env, args: &[&str], want: i32, legacy: i32) {
    for (mode, expected) in [
        (Some("modern"), want),
        (None, legacy),
        (Some("legacy"), legacy),
    ] {
        let (h, b) = both(env, mode, args);
        assert_eq!(
            h.code, expected,
            "hoard {args:?} with BORG_EXIT_CODES={mode:?}\n{}",
            h.stderr
        );
        if let Some(b) = b {
            assert_eq!(
                b.code, expected,
                "borg 1.4.5 {args:?} with BORG_EXIT_CODES={mode:?}\n{}",
                b.stderr
            );
        }
    }
}

fn repo_with_archive(env: &Env, dir: &str) -> String {
    let repo = env.path().join(dir).to_string_lossy().into_owned();
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    std::fs::create_dir_all(env.path().join("input")).expect("mkdir");
    std::fs::write(env.path().join("input/file"), b"content").expect("write");
    env.hoard(["create", &format!("{repo}::existing"), "input"])
        .ok();
    repo
}

#[test]
fn missing_repository_is_13() {
    let env = Env::new();
    let missing = env.path().join("nope").to_string_lossy().into_owned();
    assert_codes(&env, &["list", &missing], 13, 2);
}

#[test]
fn directory_that_is_no_repository_is_15() {
    // borg 1.4.5's own test_exit_codes: create into an existing, uninitialised directory
    let env = Env::new();
    let dir = env.path().join("plain");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::create_dir_all(env.path().join("input")).expect("mkdir");
    let archive = format!("{}::a", dir.display());
    assert_codes(&env, &["create", &archive, "input"], 15, 2);
}

#[test]
fn wrong_passphrase_is_52() {
    let mut env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    env.passphrase = Some("not the passphrase".into());
    assert_codes(&env, &["list", &repo], 52, 2);
}

#[test]
fn existing_archive_is_30() {
    let env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    assert_codes(
        &env,
        &["create", &format!("{repo}::existing"), "input"],
        30,
        2,
    );
}

/// Holds the repository's exclusive lock with `hoard with-lock REPO sleep 30` until dropped.
struct Locked(Child);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lock(env: &Env, repo: &str) -> Locked {
    let child = env
        .hoard_cmd()
        .args(["with-lock", repo, "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("with-lock");
    let locked = Locked(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !Path::new(repo).join("lock.exclusive").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    locked
}

#[test]
fn locked_repository_is_73() {
    let env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    let _held = lock(&env, &repo);
    assert_codes(&env, &["list", "--lock-wait", "1", &repo], 73, 2);
}

#[test]
fn missing_input_files_are_107() {
    let env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    // one kind of warning: its own code (BackupFileNotFoundError)
    assert_codes(
        &env,
        &[
            "create",
            &format!("{repo}::w1-{{now:%H%M%S%f}}"),
            "input",
            "missing",
        ],
        107,
        1,
    );
    // two missing paths are still one kind
    assert_codes(
        &env,
        &[
            "create",
            &format!("{repo}::w2-{{now:%H%M%S%f}}"),
            "input",
            "missing",
            "missing-too",
        ],
        107,
        1,
    );
}

#[test]
fn include_pattern_never_matched_is_101() {
    let env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    assert_codes(
        &env,
        &[
            "extract",
            "--dry-run",
            &format!("{repo}::existing"),
            "input/file",
            "nothing/here",
        ],
        101,
        1,
    );
}

#[test]
fn refused_delete_is_cancelled_by_user_3() {
    let mut env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    env.set("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "NO");
    assert_codes(&env, &["delete", &repo], 3, 2);
    let (h, _) = both(&env, None, &["delete", &repo]);
    assert!(h.stderr.ends_with("Cancelled by user.\n"), "{}", h.stderr);
}

#[test]
fn show_rc_names_the_class_of_a_modern_code() {
    let env = Env::new();
    let missing = env.path().join("nope").to_string_lossy().into_owned();
    let (h, b) = both(&env, Some("modern"), &["--show-rc", "list", &missing]);
    assert!(
        h.stderr.contains("terminating with error status, rc 13"),
        "{}",
        h.stderr
    );
    if let Some(b) = b {
        assert!(b.stderr.contains("terminating with error status, rc 13"));
    }
}

/// Asserts [`assert_codes`]' rule for a run in `cwd`, and returns hoard's modern run.
fn assert_codes_at(env: &Env, cwd: &Path, args: &[&str], want: i32, legacy: i32) -> Run {
    let mut modern = None;
    for (mode, expected) in [(None, legacy), (Some("modern"), want)] {
        let (h, b) = both_at(env, Some(cwd), mode, args);
        assert_eq!(
            h.code, expected,
            "hoard {args:?} with BORG_EXIT_CODES={mode:?}\n{}",
            h.stderr
        );
        if let Some(b) = b {
            assert_eq!(
                b.code, expected,
                "borg 1.4.5 {args:?} with BORG_EXIT_CODES={mode:?}\n{}",
                b.stderr
            );
        }
        modern = Some(h);
    }
    modern.expect("ran")
}

/// Clears the immutable flag it set, whatever the test's outcome (else the temporary
/// directory could not be removed).
struct Immutable(std::path::PathBuf);

impl Immutable {
    /// `chattr +i PATH`; None where the file system or the sandbox does not allow it.
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn extract_file_warnings_have_borg_classes() {
    let env = Env::new();
    let repo = repo_with_archive(&env, "repo");
    let archive = format!("{repo}::existing");
    let out = env.path().join("out");
    // A non-empty directory where input/file goes: open() fails with EISDIR, borg's
    // BackupOSError (104).
    std::fs::create_dir_all(out.join("input/file/blocker")).expect("mkdir");
    let h = assert_codes_at(&env, &out, &["extract", &archive], 104, 1);
    assert!(
        h.stderr
            .contains("input/file: open: [Errno 21] Is a directory: '"),
        "{}",
        h.stderr
    );
    let (h, _) = both_at(
        &env,
        Some(&out),
        Some("modern"),
        &["extract", "--log-json", &archive],
    );
    let rec: serde_json::Value = h
        .stderr
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("a JSON record");
    assert_eq!(rec["msgid"], "BackupOSError", "{}", h.stderr);
    assert_eq!(rec["name"], "borg.archiver", "{}", h.stderr);
    // Two kinds of warnings (the file and a pattern that never matched): the generic 1.
    assert_codes_at(
        &env,
        &out,
        &["extract", &archive, "input/file", "nothing/here"],
        1,
        1,
    );
    // An immutable file in the way: EPERM, borg's BackupPermissionError (105).
    let out2 = env.path().join("out2");
    std::fs::create_dir_all(out2.join("input")).expect("mkdir");
    std::fs::write(out2.join("input/file"), b"old").expect("write");
    let Some(_guard) = Immutable::set(&out2.join("input/file")) else {
        eprintln!("chattr +i not possible here; BackupPermissionError not exercised");
        return;
    };
    let h = assert_codes_at(&env, &out2, &["extract", &archive], 105, 1);
    assert!(
        h.stderr
            .contains("input/file: open: [Errno 1] Operation not permitted: '"),
        "{}",
        h.stderr
    );
}
