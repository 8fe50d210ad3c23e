//! Durability: a writer killed with SIGKILL at any step leaves the repository at its last
//! commit, readable by hoard and clean for `borg check`; a full disk during a commit fails
//! cleanly and changes nothing; `HOARD_CRASH_COUNT` names the number of crash points a run
//! passes.

mod common;

use common::{archive, arg, borg_available, hoard_exe, Env};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

fn archive_names(env: &Env, repo: &Path) -> BTreeSet<String> {
    let r = env.hoard(["list", "--short", arg(repo)]).ok();
    r.out().lines().map(str::to_string).collect()
}

#[test]
fn sigkill_at_every_write_step_keeps_the_last_commit() {
    let check_with_borg = borg_available();
    let env = Env::new();
    let repo = env.init_repo("repo", "repokey");
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut committed: BTreeSet<String> = BTreeSet::new();
    let mut kills = 0u64;
    for step in 0..8u64 {
        // each step changes the tree a little, so every create writes new chunks
        std::fs::write(
            src.join(format!("file{step}.bin")),
            common::tree::pseudo_random(40_000 + step as usize * 1000, step),
        )
        .unwrap();
        std::fs::write(src.join("same.txt"), format!("version {step}\n")).unwrap();
        // crash point k of this step's create, for k = 1, 2, … until a run completes; every
        // attempt gets its own archive name so points after the COMMIT are walked too
        let mut k = 1;
        loop {
            let name = format!("a{step}-{k}");
            let target = archive(&repo, &name);
            let killed = env.crashed(&hoard_exe(), &["create", &target, arg(&src)], k);
            let now = archive_names(&env, &repo);
            let mut with_new = committed.clone();
            with_new.insert(name.clone());
            if !killed {
                assert_eq!(now, with_new, "after a clean run");
                committed = with_new;
                break;
            }
            kills += 1;
            // killed: either before the commit (old state) or after it (new archive there)
            assert!(
                now == committed || now == with_new,
                "crash point {k} of step {step}: archives {now:?}, committed {committed:?}"
            );
            committed = now;
            env.hoard(["check", "--repository-only", arg(&repo)]).ok();
            if check_with_borg && kills.is_multiple_of(25) {
                env.borg(["check", arg(&repo)]).ok();
            }
            k += 1;
        }
    }
    eprintln!("{kills} kill points exercised");
    assert!(kills >= 200, "only {kills} kill points were exercised");
    env.hoard(["check", "--repository-only", arg(&repo)]).ok();
    if check_with_borg {
        env.borg(["check", "--verify-data", arg(&repo)]).ok();
        let listed = env.borg(["list", "--short", arg(&repo)]).ok().out();
        let borg_names: BTreeSet<String> = listed.lines().map(str::to_string).collect();
        assert_eq!(borg_names, committed);
    }
}

/// Mounts a tmpfs of `size` at `dir`; false if this machine does not allow it.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn full_disk_during_commit_fails_cleanly() {
    let env = Env::new();
    let mnt = env.path().join("small");
    if !mount_tmpfs(&mnt, "3m") {
        if std::env::var("HOARD_SKIP_MOUNT").as_deref() == Ok("1") {
            eprintln!("cannot mount a tmpfs here; skipped (HOARD_SKIP_MOUNT=1)");
            return;
        }
        panic!("this test needs root to mount a small tmpfs (or HOARD_SKIP_MOUNT=1)");
    }
    let _guard = Unmount(&mnt);
    let repo = env.init_repo("small/repo", "repokey");
    let src = common::write_files(&env.path().join("src"), &[("small.txt", b"fits\n")]);
    env.hoard(["create", &archive(&repo, "first"), arg(&src)])
        .ok();
    let before = common::snapshot_dir(&repo);
    // 8 MB of incompressible data cannot fit into what is left of 3 MB
    std::fs::write(
        src.join("big.bin"),
        common::tree::pseudo_random(8_000_000, 7),
    )
    .unwrap();
    let r = env.hoard(["create", &archive(&repo, "second"), arg(&src)]);
    assert_eq!(r.code, 2, "a full disk is an error: {}", r.stderr);
    // borg's cleanup notice may precede the error; the error itself is one line
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("No space left on device, cleaning up"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line, got:\n{}", r.stderr);
    assert!(
        lines[0].contains("No space left on device")
            || lines[0].contains("Insufficient free space"),
        "{}",
        lines[0]
    );
    // the committed state is exactly what it was, and no partial segment is left behind;
    // only the AES-CTR counter reservation (`nonce`) may have moved forward — by design it
    // never goes back, so no counter is ever reused
    let after = common::snapshot_dir(&repo);
    let committed = |v: &Vec<(std::path::PathBuf, Vec<u8>)>| {
        v.iter()
            .filter(|(p, _)| {
                !p.starts_with("lock.exclusive")
                    && p != Path::new("lock.roster")
                    && p != Path::new("nonce")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(committed(&after), committed(&before));
    let nonce = |v: &Vec<(std::path::PathBuf, Vec<u8>)>| {
        v.iter()
            .find(|(p, _)| p == Path::new("nonce"))
            .map(|(_, d)| u64::from_str_radix(std::str::from_utf8(d).unwrap().trim(), 16).unwrap())
            .unwrap()
    };
    assert!(
        nonce(&after) >= nonce(&before),
        "the nonce reservation never goes back"
    );
    assert_eq!(
        archive_names(&env, &repo),
        BTreeSet::from(["first".to_string()])
    );
    if borg_available() {
        env.borg(["check", arg(&repo)]).ok();
    }
}

/// The crash-point count line of a run with `HOARD_CRASH_COUNT=1` (its last stderr line).
fn reported_count(stderr: &str) -> u64 {
    let last = stderr.lines().last().unwrap_or_default();
    let n = last
        .strip_prefix("hoard: crash points passed: ")
        .unwrap_or_else(|| panic!("no count line at the end of stderr:\n{stderr}"));
    n.parse().expect("a number")
}

#[test]
fn crash_count_names_the_last_crash_point_of_a_run() {
    let env = Env::new();
    let pristine = env.init_repo("pristine", "repokey");
    let src = common::write_files(
        &env.path().join("src"),
        &[
            ("a.bin", &common::tree::pseudo_random(300_000, 1)),
            ("b.txt", b"text\n"),
        ],
    );
    // One environment per run: the same repository state and the same (empty) client state.
    let run = |name: &str, var: (&str, String)| {
        let run_env = Env::new();
        let repo = run_env.path().join(name);
        common::copy_dir(&pristine, &repo);
        let out = run_env
            .hoard_cmd()
            .env(var.0, var.1)
            .args(["create", &archive(&repo, "a"), arg(&src)])
            .output()
            .expect("run hoard");
        (run_env, repo, out)
    };
    let (_e, _r, counted) = run("counted", ("HOARD_CRASH_COUNT", "1".into()));
    assert!(counted.status.success());
    let stderr = String::from_utf8_lossy(&counted.stderr);
    let n = reported_count(&stderr);
    assert!(n > 10, "a create passes more than a few crash points ({n})");
    // Only `1` asks for the line.
    let (_e, _r, quiet) = run("quiet", ("HOARD_CRASH_COUNT", "0".into()));
    assert!(quiet.status.success());
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("crash points"),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    // The N-th point is the last one: a run killed there dies; one asked to die at N+1 ends
    // normally (and reports the same count).
    let (_e, _r, at_last) = run("at-last", ("HOARD_CRASH_AT", n.to_string()));
    assert_eq!(at_last.status.signal(), Some(9), "not killed at point {n}");
    let (run_env, repo, past) = run("past", ("HOARD_CRASH_AT", (n + 1).to_string()));
    assert!(
        past.status.success(),
        "{}",
        String::from_utf8_lossy(&past.stderr)
    );
    assert_eq!(
        run_env.hoard(["list", "--short", arg(&repo)]).ok().out(),
        "a\n"
    );
}
