//! Repositories that cannot be written (read-only media, no write permission), mandatory
//! feature flags in the manifest, and `re:` patterns with Python `re` semantics — each
//! compared with borg 1.4.5 on the same repository.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{borg14, craft, snapshot_dir, Env};
use hoard::msgpack::Value;

/// Makes a directory unwritable the way borg's test suite does (`chmod -R ugo-w`, plus
/// `chattr +i` on the top directory, which is what stops root); undone on drop.
struct ReadOnly {
    path: PathBuf,
    immutable: bool,
}

impl ReadOnly {
    /// None (with a message) when the directory cannot be made unwritable here (root without
    /// CAP_LINUX_IMMUTABLE).
    fn new(path: &Path) -> Option<ReadOnly> {
        let chmod = |mode: &str| {
            Command::new("chmod")
                .args(["-R", mode])
                .arg(path)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        assert!(chmod("ugo-w"), "chmod -R ugo-w {}", path.display());
        let mut guard = ReadOnly {
            path: path.to_path_buf(),
            immutable: false,
        };
        if common::tree::is_root() {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                eprintln!(
                    "cannot make {} immutable (chattr +i); skipping",
                    path.display()
                );
                return None;
            }
            guard.immutable = true;
        }
        // the guard is only useful if a write really fails now
        let probe = path.join("probe");
        if std::fs::write(&probe, b"x").is_ok() {
            let _ = std::fs::remove_file(&probe);
            eprintln!("{} is still writable; skipping", path.display());
            return None;
        }
        Some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&self.path)
            .status();
    }
}

/// The LockFailed line with the random temporary name cut out, e.g.
/// `Failed to create/acquire the lock R/lock.exclusive ([Errno 1] Operation not permitted: 'R/lock.exclusive.`.
fn lock_failed_line(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Failed to create/acquire the lock"))?;
    let cut = line.rfind("lock.exclusive.")? + "lock.exclusive.".len();
    assert!(line.ends_with(".tmp')."), "{line}");
    Some(line[..cut].to_string())
}

#[test]
fn readonly_repository_is_read_with_bypass_lock_and_refused_without_like_borg() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/file"), b"read-only media\n").unwrap();
    let repo = craft::init_repo(&env, "repo");
    let r = repo.to_str().unwrap().to_string();
    env.hoard(["create", &format!("{r}::a"), "src"]).ok();
    std::fs::write(src.join("d/file2"), b"second\n").unwrap();
    env.hoard(["create", &format!("{r}::b"), "src"]).ok();
    // borg knows the repository too (security dir, cache) before it becomes read-only
    env.run_at(&borg, ["list", &r]).ok();
    let before = snapshot_dir(&repo);

    let Some(_ro) = ReadOnly::new(&repo) else {
        return;
    };
    let out = env.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let tar = env.path().join("a.tar");
    let (a, tar_s) = (format!("{r}::a"), tar.to_str().unwrap().to_string());
    let commands: Vec<Vec<&str>> = vec![
        vec!["list", &r],
        vec!["info", &r],
        vec!["extract", "--dry-run", &a],
        vec!["diff", &a, "b"],
        vec!["export-tar", &a, &tar_s],
        vec!["check", "--verify-data", &r],
    ];
    for args in &commands {
        let h = env.hoard(args);
        let b = env.run_at(&borg, args);
        assert_eq!(h.code, 2, "hoard {args:?}: {}", h.stderr);
        assert_eq!(b.code, 2, "borg {args:?}: {}", b.stderr);
        let hl =
            lock_failed_line(&h.stderr).unwrap_or_else(|| panic!("hoard {args:?}: {}", h.stderr));
        let bl =
            lock_failed_line(&b.stderr).unwrap_or_else(|| panic!("borg {args:?}: {}", b.stderr));
        assert_eq!(hl, bl, "{args:?}");

        let mut bypass = args.clone();
        bypass.push("--bypass-lock");
        let h = env.hoard(&bypass);
        let b = env.run_at(&borg, &bypass);
        assert_eq!(b.code, 0, "borg {bypass:?}: {}", b.stderr);
        assert_eq!(h.code, 0, "hoard {bypass:?}: {}", h.stderr);
        if args[0] == "list" || args[0] == "diff" {
            assert_eq!(h.out(), b.out(), "{bypass:?}");
        }
    }
    // extract for real, into a writable directory
    let h = env
        .hoard_cmd()
        .args(["extract", &a, "--bypass-lock"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(h.status.success(), "{}", String::from_utf8_lossy(&h.stderr));
    assert_eq!(
        std::fs::read(out.join("src/d/file")).unwrap(),
        b"read-only media\n"
    );
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
    drop(_ro);
    assert!(
        before == snapshot_dir(&repo),
        "the read-only repository changed"
    );
}

/// Adds `{operation: {mandatory: [unknown-feature]}}` to the manifest's `feature_flags`
/// (what borg's test suite does with borg's own classes).
fn add_unknown_feature(env: &Env, repo: &Path, operation: &str) {
    let (_guard, mut opened) = craft::open(env, repo, true);
    let raw = |s: &str| Value::Raw(s.as_bytes().to_vec());
    let flags = Value::Map(vec![(
        raw(operation),
        Value::Map(vec![(
            raw("mandatory"),
            Value::Array(vec![raw("unknown-feature")]),
        )]),
    )]);
    match &mut opened.manifest.config {
        Value::Map(entries) => {
            entries.retain(|(k, _)| k.as_bytes() != Some(b"feature_flags".as_slice()));
            entries.push((raw("feature_flags"), flags));
        }
        other => panic!("manifest config is not a map: {other:?}"),
    }
    hoard::commands::common::commit_manifest(&mut opened).expect("write manifest");
}

const UNKNOWN: &str = "Unsupported repository feature(s) ['unknown-feature']. A newer version of Borg is required to access this repository.";

/// Both programs refuse `args` with exit code 2 and borg 1.4.5's message.
fn both_refuse(env: &Env, borg: &Path, args: &[&str], before: &dyn Fn()) {
    before();
    let h = env.hoard(args);
    before();
    let b = env.run_at(borg, args);
    assert_eq!(b.code, 2, "borg {args:?}: {}", b.stderr);
    assert!(
        b.stderr.lines().any(|l| l == UNKNOWN),
        "borg {args:?}: {}",
        b.stderr
    );
    assert_eq!(h.code, 2, "hoard {args:?}: {}", h.stderr);
    common::assert_one_line_error(&h.stderr, UNKNOWN);
}

#[test]
fn unknown_mandatory_features_are_refused_like_borg() {
    let Some(borg) = borg14() else { return };
    let mut env = Env::new();
    std::fs::create_dir_all(env.path().join("src")).unwrap();
    std::fs::write(env.path().join("src/f"), b"x").unwrap();
    let read_repo = craft::init_repo(&env, "read");
    let check_repo = craft::init_repo(&env, "check");
    // for change-passphrase (after init, which would take it as the first passphrase)
    env.set("BORG_NEW_PASSPHRASE", "new-passphrase");
    let nothing = || {};

    // read: list, info, extract
    let r = read_repo.to_str().unwrap().to_string();
    env.hoard(["create", &format!("{r}::a"), "src"]).ok();
    add_unknown_feature(&env, &read_repo, "read");
    both_refuse(&env, &borg, &["list", &r], &nothing);
    both_refuse(&env, &borg, &["info", &format!("{r}::a")], &nothing);
    both_refuse(
        &env,
        &borg,
        &["extract", "--dry-run", &format!("{r}::a")],
        &nothing,
    );

    // a read feature also stops create when it has to sync the cache
    let cache_only = || {
        env.hoard(["delete", "--cache-only", &r]).ok();
    };
    both_refuse(
        &env,
        &borg,
        &["create", &format!("{r}::b"), "src"],
        &cache_only,
    );

    // check: change-passphrase
    let c = check_repo.to_str().unwrap().to_string();
    add_unknown_feature(&env, &check_repo, "check");
    both_refuse(&env, &borg, &["key", "change-passphrase", &c], &nothing);
    // the old passphrase (BORG_PASSPHRASE) still opens the repository: nothing was changed
    env.hoard(["list", &c]).ok();
}

#[test]
fn regex_patterns_have_python_re_semantics() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    let src = env.path().join("input");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["file1", "file2", "file3", "file4", "file333", "file3334"] {
        std::fs::write(src.join(f), f.as_bytes()).unwrap();
    }
    let repo = craft::init_repo(&env, "repo");
    let r = repo.to_str().unwrap().to_string();
    env.hoard(["create", &format!("{r}::a"), "input"]).ok();
    for pattern in [
        r"re:file(\d)\1\1$",    // back-reference (borg's own test)
        r"re:file(?!3)\d",      // negative look-ahead
        r"re:(?<=input/)file3", // look-behind
        r"re:(?P<d>\d)(?P=d)",  // Python's named back-reference
    ] {
        let args = ["list", "--short", "--exclude", pattern, &format!("{r}::a")];
        let h = env.hoard(args);
        let b = env.run_at(&borg, args);
        assert_eq!(b.code, 0, "borg {pattern}: {}", b.stderr);
        assert_eq!(h.code, 0, "hoard {pattern}: {}", h.stderr);
        assert_eq!(h.out(), b.out(), "{pattern}");
    }
}

#[test]
fn catastrophic_regex_returns_promptly_and_bad_regex_is_one_line() {
    let env = Env::new();
    let src = env.path().join("input");
    std::fs::create_dir_all(&src).unwrap();
    let long = format!("{}c", "a".repeat(200));
    std::fs::write(src.join(&long), b"x").unwrap();
    std::fs::write(src.join("aab"), b"x").unwrap();
    let repo = craft::init_repo(&env, "repo");
    let r = repo.to_str().unwrap().to_string();
    // exponential for a backtracking engine without a limit (Python's re hangs here)
    let start = Instant::now();
    let h = env.hoard([
        "create",
        "--list",
        "--exclude",
        r"re:^input/(a+)+\1b$",
        &format!("{r}::a"),
        "input",
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(h.code, 0, "{}", h.stderr);
    let listed = env
        .hoard(["list", "--short", &format!("{r}::a")])
        .ok()
        .out();
    assert!(listed.contains(&long), "{listed}");
    assert!(!listed.contains("input/aab"), "{listed}");

    for bad in ["re:(", "re:a(?=b", "re:(?P=nope)"] {
        let h = env.hoard(["create", "--exclude", bad, &format!("{r}::b"), "input"]);
        assert_eq!(h.code, 2, "{bad}: {}", h.stderr);
        common::assert_one_line_error(&h.stderr, "Invalid regular expression");
    }
}

#[test]
fn bypass_lock_is_refused_for_commands_that_write_like_borg() {
    let Some(borg) = borg14() else { return };
    let env = Env::new();
    std::fs::create_dir_all(env.path().join("input")).expect("mkdir");
    std::fs::write(env.path().join("input/file"), b"data").expect("write");
    env.hoard(["init", "-e", "repokey", "repo"]).ok();
    env.hoard(["create", "repo::a", "input"]).ok();
    let refused = "Error: Not allowed to bypass locking mechanism for chosen command\n";
    for args in [
        &["create", "--bypass-lock", "repo::b", "input"][..],
        &["prune", "--bypass-lock", "--keep-last", "1", "repo"][..],
        &["delete", "--bypass-lock", "repo::a"][..],
        &["compact", "--bypass-lock", "repo"][..],
        &["rename", "--bypass-lock", "repo::a", "x"][..],
        &["recreate", "--bypass-lock", "--comment", "c", "repo::a"][..],
        &["key", "export", "--bypass-lock", "repo"][..],
        &["break-lock", "--bypass-lock", "repo"][..],
        &["init", "--bypass-lock", "-e", "none", "repo2"][..],
    ] {
        let b = env.run_at(&borg, args);
        let h = env.hoard(args);
        assert_eq!(b.code, 2, "borg {args:?}: {}", b.stderr);
        assert_eq!(b.stderr, refused, "borg {args:?}");
        assert_eq!(h.code, 2, "hoard {args:?}: {}", h.stderr);
        assert_eq!(h.stderr, refused, "hoard {args:?}");
    }
    // nothing was changed: the one archive is still there, no second repository
    let listed = env.hoard(["list", "--short", "--bypass-lock", "repo"]).ok();
    assert_eq!(listed.out(), "a\n");
    assert!(!env.path().join("repo2").exists());
    // and the reading commands work with it, as in borg
    for args in [
        &["info", "--bypass-lock", "repo::a"][..],
        &["check", "--bypass-lock", "repo"][..],
        &["extract", "--bypass-lock", "--dry-run", "repo::a"][..],
        &["config", "--bypass-lock", "repo", "append_only"][..],
    ] {
        let b = env.run_at(&borg, args);
        assert_eq!(b.code, 0, "borg {args:?}: {}", b.stderr);
        env.hoard(args).ok();
    }
}
