//! Bad input at the foundation level: each case gives one clear error line, a non-zero exit,
//! and leaves the repository exactly as it was.

mod common;

use common::{arg, assert_one_line_error, borg_available, segments, snapshot_dir, Env};

#[test]
fn wrong_passphrase_is_one_line_and_changes_nothing() {
    let mut env = Env::new();
    let repo = env.init_repo("repo", "repokey");
    let before = snapshot_dir(&repo);
    env.passphrase = Some("wrong".into());
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.",
    );
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn missing_repository() {
    let env = Env::new();
    let missing = env.path().join("nope");
    let r = env.hoard(["info", arg(&missing)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!("Repository {} does not exist.", missing.display()),
    );
    let r = env.hoard(["check", arg(&missing)]).expect_code(2);
    assert_one_line_error(&r.stderr, "does not exist.");
    assert!(!missing.exists());
}

#[test]
fn directory_that_is_not_a_repository() {
    let env = Env::new();
    let dir = env.path().join("plain");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("file"), b"x").unwrap();
    let r = env.hoard(["info", arg(&dir)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!(
            "{} is not a valid repository. Check repo config.",
            dir.display()
        ),
    );
    // and init refuses to overwrite an existing repository
    let repo = env.init_repo("repo", "none");
    let before = snapshot_dir(&repo);
    let r = env.hoard(["init", "-e", "none", arg(&repo)]).expect_code(2);
    assert_one_line_error(&r.stderr, "already exists");
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn unknown_version_corrupt_config_and_attic_are_refused() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let config = std::fs::read_to_string(repo.join("config")).unwrap();

    std::fs::write(
        repo.join("config"),
        config.replace("version = 1", "version = 2"),
    )
    .unwrap();
    let before = snapshot_dir(&repo);
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(&r.stderr, "repository version 2 is not supported");
    assert_eq!(snapshot_dir(&repo), before);

    std::fs::write(repo.join("config"), "garbage [[[\n").unwrap();
    let before = snapshot_dir(&repo);
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(&r.stderr, "config");
    assert_eq!(snapshot_dir(&repo), before);

    std::fs::write(repo.join("config"), "[repository]\nversion = 1\n").unwrap();
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(&r.stderr, "config");

    // attic: the newest segment has the ATTICSEG magic (what borg looks at on open)
    std::fs::write(repo.join("config"), &config).unwrap();
    let seg = segments(&repo).pop().unwrap().1;
    let mut data = std::fs::read(&seg).unwrap();
    data[..8].copy_from_slice(b"ATTICSEG");
    std::fs::write(&seg, data).unwrap();
    let before = snapshot_dir(&repo);
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(&r.stderr, "Attic repository detected.");
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn flipped_byte_is_reported_by_check_and_repaired() {
    let env = Env::new();
    let repo = env.init_repo("repo", "repokey");
    let seg = segments(&repo)[0].1.clone();
    let mut data = std::fs::read(&seg).unwrap();
    let pos = data.len() / 2;
    data[pos] ^= 0x55;
    std::fs::write(&seg, &data).unwrap();
    let before = snapshot_dir(&repo);
    let r = env.hoard(["check", "--repository-only", arg(&repo)]);
    assert_eq!(r.code, 1, "check must report corruption: {}", r.stderr);
    assert!(r.stderr.contains("segment"), "{}", r.stderr);
    assert_eq!(
        snapshot_dir(&repo),
        before,
        "check without --repair changes nothing"
    );
    let mut env2 = Env::new();
    env2.tmp = env.tmp; // same environment
    env2.set("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES");
    let r = env2.hoard(["check", "--repository-only", "--repair", arg(&repo)]);
    assert!(r.code <= 1, "repair runs: {}", r.stderr);
    env2.hoard(["check", "--repository-only", arg(&repo)]).ok();
    if borg_available() {
        env2.borg(["check", "--repository-only", arg(&repo)]).ok();
    }
}

#[test]
fn truncated_segment_is_reported_and_repaired() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let seg = segments(&repo)[0].1.clone();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 20).unwrap();
    drop(f);
    let r = env.hoard(["check", "--repository-only", arg(&repo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = env.hoard(["info", arg(&repo)]);
    assert_eq!(r.code, 2);
    assert_one_line_error(&r.stderr, "segment");
    let mut env = env;
    env.set("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES");
    env.hoard(["check", "--repository-only", "--repair", arg(&repo)]);
    env.hoard(["check", "--repository-only", arg(&repo)]).ok();
    if borg_available() {
        env.borg(["check", "--repository-only", arg(&repo)]).ok();
    }
}

#[test]
fn repair_needs_confirmation() {
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    let r = env.hoard(["check", "--repair", arg(&repo)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Aborting."));
}

#[test]
fn lock_held_by_live_process_waits_then_fails() {
    if !borg_available() {
        return;
    }
    let env = Env::new();
    let repo = env.init_repo("repo", "none");
    // borg holds an exclusive lock while `with-lock` runs its command; the command says when
    // it runs (a fixed pause was too short for borg's start-up on a loaded machine)
    let held = env.path().join("held");
    let mut holder = env
        .borg_cmd()
        .args([
            "with-lock",
            arg(&repo),
            "sh",
            "-c",
            &format!("touch '{}'; sleep 20", held.display()),
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !held.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "borg with-lock never ran its command"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = snapshot_dir(&repo);
    let t0 = std::time::Instant::now();
    let r = env.hoard(["--lock-wait", "2", "check", "--repository-only", arg(&repo)]);
    let waited = t0.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_one_line_error(&r.stderr, "Failed to create/acquire the lock");
    assert!(r.stderr.contains("(timeout)"));
    assert!(waited.as_secs_f64() >= 1.9, "waited only {waited:?}");
    // the repository's committed state is untouched (borg's lock dir went away with it)
    let after: Vec<_> = snapshot_dir(&repo)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("lock.exclusive") && !p.starts_with("lock.roster"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.starts_with("lock.exclusive") && !p.starts_with("lock.roster"))
        .collect();
    assert_eq!(after, before);
}

#[test]
fn unknown_key_file_is_refused() {
    let mut env = Env::new();
    let repo = env.init_repo("repo", "keyfile");
    let other = env.init_repo("other", "keyfile");
    let keys = env.base().join(".config/borg/keys");
    let other_cfg = std::fs::read_to_string(other.join("config")).unwrap();
    let other_id = other_cfg
        .lines()
        .find_map(|l| l.strip_prefix("id = "))
        .unwrap()
        .to_string();
    let other_key = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .starts_with(&format!("BORG_KEY {other_id}"))
        })
        .expect("key file of the other repository");
    env.set("BORG_KEY_FILE", arg(&other_key));
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!(
            "Mismatch between repository {} and key file {}.",
            repo.display(),
            other_key.display()
        ),
    );
    env.vars.clear();
    env.set("BORG_KEYS_DIR", arg(&env.path().join("emptykeys")));
    std::fs::create_dir_all(env.path().join("emptykeys")).unwrap();
    let r = env.hoard(["info", arg(&repo)]).expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!(
            "No key file for repository {} found in {}.",
            repo.display(),
            env.path().join("emptykeys").display()
        ),
    );
}
