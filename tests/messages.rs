//! Messages that name a repository, and their exit codes, as borg 1.4.5 (and 1.2.4) print
//! them: key-file errors, `break-lock` on what is not a repository, a remote repository that
//! does not exist (named without `::ARCHIVE`), the level of "Cleaned up … uncommitted segment
//! files", and `--show-version`. Each expected text was taken from borg; where borg 1.2 is
//! installed the same case is also run through it and must print the same.

mod common;

use std::path::{Path, PathBuf};

use common::{archive, arg, borg_available, local_rsh, segments, Env, Run};

/// Asserts exit code 2 and a stderr of exactly `line`.
fn assert_error(r: &Run, line: &str) {
    assert_eq!(r.code, 2, "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, format!("{line}\n"));
}

/// Runs `args` through borg (when installed) and asserts it prints `line` with exit 2, so the
/// expected text stays borg's.
fn borg_agrees(env: &Env, args: &[&str], line: &str) {
    if borg_available() {
        assert_error(&env.borg(args), line);
    }
}

/// The key file hoard wrote for the repository whose `config` id is `repo`'s.
fn key_file_of(env: &Env, repo: &Path) -> PathBuf {
    let cfg = std::fs::read_to_string(repo.join("config")).unwrap();
    let id = cfg.lines().find_map(|l| l.strip_prefix("id = ")).unwrap();
    std::fs::read_dir(env.base().join(".config/borg/keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .starts_with(&format!("BORG_KEY {id}"))
        })
        .expect("key file of the repository")
}

#[test]
fn key_file_errors_name_the_repository() {
    let mut env = Env::new();
    let repo = env.path().join("repo");
    let other = env.path().join("other");
    env.hoard(["init", "-e", "keyfile", arg(&repo)]).ok();
    env.hoard(["init", "-e", "keyfile", arg(&other)]).ok();
    let keys = env.base().join(".config/borg/keys");
    let key = key_file_of(&env, &repo);
    let other_key = key_file_of(&env, &other);

    // The key file is gone: list and key export both name the repository and the keys dir.
    std::fs::rename(&key, env.path().join("moved.key")).unwrap();
    let missing = format!(
        "No key file for repository {} found in {}.",
        repo.display(),
        keys.display()
    );
    assert_error(&env.hoard(["list", arg(&repo)]), &missing);
    assert_error(
        &env.hoard(["key", "export", arg(&repo), arg(&env.path().join("exp"))]),
        &missing,
    );
    borg_agrees(&env, &["list", arg(&repo)], &missing);

    // BORG_KEY_FILE points at another repository's key.
    env.set("BORG_KEY_FILE", arg(&other_key));
    let mismatch = format!(
        "Mismatch between repository {} and key file {}.",
        repo.display(),
        other_key.display()
    );
    assert_error(&env.hoard(["list", arg(&repo)]), &mismatch);
    assert_error(
        &env.hoard(["key", "export", arg(&repo), arg(&env.path().join("exp"))]),
        &mismatch,
    );
    borg_agrees(&env, &["list", arg(&repo)], &mismatch);
    assert!(!env.path().join("exp").exists());
}

#[test]
fn empty_repokey_entry_names_the_repository() {
    let env = Env::new();
    let repo = env.init_repo("repo", "repokey");
    // Blank the `key` entry (and its continuation lines) of the repository config.
    let cfg = std::fs::read_to_string(repo.join("config")).unwrap();
    let mut out = Vec::new();
    let mut in_key = false;
    for line in cfg.lines() {
        if line.starts_with("key =") {
            out.push("key = ".to_string());
            in_key = true;
        } else if in_key && line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            continue;
        } else {
            in_key = false;
            out.push(line.to_string());
        }
    }
    std::fs::write(repo.join("config"), out.join("\n") + "\n").unwrap();
    let line = format!(
        "No key entry found in the config of repository {}.",
        repo.display()
    );
    assert_error(&env.hoard(["list", arg(&repo)]), &line);
    borg_agrees(&env, &["list", arg(&repo)], &line);
}

#[test]
fn break_lock_refuses_what_is_not_a_repository() {
    let env = Env::new();
    let missing = env.path().join("nothere");
    let line = format!("Repository {} does not exist.", missing.display());
    assert_error(&env.hoard(["break-lock", arg(&missing)]), &line);
    borg_agrees(&env, &["break-lock", arg(&missing)], &line);
    assert!(!missing.exists());

    let plain = env.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let line = format!(
        "{} is not a valid repository. Check repo config.",
        plain.display()
    );
    assert_error(&env.hoard(["break-lock", arg(&plain)]), &line);
    borg_agrees(&env, &["break-lock", arg(&plain)], &line);
    assert_eq!(std::fs::read_dir(&plain).unwrap().count(), 0);

    // A real repository with a stale lock: broken, exit 0, nothing printed.
    let repo = env.init_repo("repo", "none");
    std::fs::create_dir(repo.join("lock.exclusive")).unwrap();
    std::fs::write(repo.join("lock.exclusive/otherhost@1.2"), b"").unwrap();
    let r = env.hoard(["break-lock", arg(&repo)]).ok();
    assert_eq!(r.stderr, "");
    assert!(!repo.join("lock.exclusive").exists());
}

#[test]
fn remote_missing_repository_is_named_without_the_archive() {
    let mut env = Env::new();
    let rsh = local_rsh(&env);
    env.set("BORG_RSH", arg(&rsh));
    let missing = env.path().join("nothere");
    let hoard = env!("CARGO_BIN_EXE_hoard");
    for repo in [
        format!("ssh://localhost{}", missing.display()),
        format!("localhost:{}", missing.display()),
    ] {
        let line = format!("Repository {repo} does not exist.");
        for args in [
            vec!["list".to_string(), format!("{repo}::arch")],
            vec!["info".to_string(), format!("{repo}::arch")],
            vec!["break-lock".to_string(), repo.clone()],
        ] {
            let mut all = vec!["--remote-path".to_string(), hoard.to_string()];
            all.extend(args.iter().cloned());
            assert_error(&env.hoard(&all), &line);
            if borg_available() {
                let mut all = vec!["--remote-path".to_string(), "borg".to_string()];
                all.extend(args);
                assert_error(&env.borg(&all), &line);
            }
        }
    }
    assert!(!missing.exists());
}

#[test]
fn cleaned_up_uncommitted_segments_is_a_debug_message() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let src = env.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    env.hoard(["init", "-e", "none", arg(&repo)]).ok();
    env.hoard(["create", &archive(&repo, "a1"), "src"]).ok();
    // What an interrupted writer leaves: a segment after the last commit, without a commit.
    let uncommitted = |n: u64| {
        let p = repo.join("data/0").join(n.to_string());
        std::fs::write(&p, b"BORG_SEG").unwrap();
        p
    };
    let last = segments(&repo).last().unwrap().0;
    let seg = uncommitted(last + 1);
    let r = env.hoard(["create", &archive(&repo, "a2"), "src"]).ok();
    assert_eq!(r.stderr, "", "no warning for the clean-up");
    // Cleaned up (its number is then reused by the new commit, as in borg).
    assert_ne!(std::fs::read(&seg).unwrap_or_default(), b"BORG_SEG");

    let last = segments(&repo).last().unwrap().0;
    let seg = uncommitted(last + 1);
    let r = env
        .hoard(["--debug", "create", &archive(&repo, "a3"), "src"])
        .ok();
    let want =
        format!("Cleaned up 1 uncommitted segment files (== everything after segment {last}).");
    assert!(
        r.stderr.lines().any(|l| l == want),
        "{want:?} missing at --debug:\n{}",
        r.stderr
    );
    assert_ne!(std::fs::read(&seg).unwrap_or_default(), b"BORG_SEG");
}

#[test]
fn show_version_prints_the_version_first_at_any_level() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    // `--version` and `--show-version` share the one version text.
    let version = env.hoard(["--version"]).ok().out();
    let text = version
        .trim_end()
        .strip_prefix("hoard ")
        .unwrap()
        .to_string();
    let want = format!("borgbackup version {text}");
    assert!(want.starts_with("borgbackup version 1."), "{want}");

    let r = env.hoard(["--show-version", "list", arg(&repo)]).ok();
    assert_eq!(r.stderr, format!("{want}\n"));
    assert_eq!(r.out(), "");
    // Shown whatever the log level, and first.
    let r = env
        .hoard(["--show-version", "--critical", "list", arg(&repo)])
        .ok();
    assert_eq!(r.stderr, format!("{want}\n"));
    let r = env
        .hoard(["--show-version", "--show-rc", "list", arg(&repo)])
        .ok();
    assert_eq!(
        r.stderr,
        format!("{want}\nterminating with success status, rc 0\n")
    );
    let r = env
        .hoard(["--show-version", "--log-json", "list", arg(&repo)])
        .ok();
    let v: serde_json::Value = serde_json::from_str(r.stderr.trim_end()).unwrap();
    assert_eq!(v["message"], want.as_str());
    assert_eq!(v["levelname"], "INFO");
    assert_eq!(v["name"], "borg.output.show-version");
    // borg prints the same line (with its own version).
    if borg_available() {
        let r = env.borg(["--show-version", "list", arg(&repo)]).ok();
        assert!(
            r.stderr.starts_with("borgbackup version 1.") && r.stderr.lines().count() == 1,
            "{}",
            r.stderr
        );
    }
}
