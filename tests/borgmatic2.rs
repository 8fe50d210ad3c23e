//! borgmatic 2.1 (the current frontend, which checks for borg 1.4 and passes `--log-json` to
//! every borg call) drives hoard through a whole cycle: repo-create, create, prune, compact,
//! check (repository, archives, data), list, info and extract; borg 1.4.5 then verifies the
//! repository with `check --verify-data`. The borgmatic 1.7 test is in tests/archives.rs.

mod common;

use common::{borg14, program_at, tree, versioned, Env};
use std::path::{Path, PathBuf};

/// Where .ci/run installs borgmatic 2.1 (its own venv, apart from the distribution's 1.7).
const BORGMATIC2_DEFAULT: &str = "/var/tmp/hoard-borgmatic2-venv/bin/borgmatic";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The borgmatic 2.1 program: `HOARD_BORGMATIC2`, else [`BORGMATIC2_DEFAULT`]. `None` (skip)
/// only with `HOARD_SKIP_BORG=1`; otherwise a missing or wrong-version borgmatic fails the test.
fn borgmatic2() -> Option<PathBuf> {
    let path = program_at("HOARD_BORGMATIC2", BORGMATIC2_DEFAULT);
    if versioned(&path, "2.1.", "borgmatic 2.1 (HOARD_BORGMATIC2)") {
        return Some(path);
    }
    if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
        eprintln!(
            "borgmatic 2.1 not found at {}; skipped (HOARD_SKIP_BORG=1)",
            path.display()
        );
        return None;
    }
    panic!(
        "borgmatic 2.1 is required for this frontend test and was not found at {}: install it with \
         `python3 -m venv /var/tmp/hoard-borgmatic2-venv && /var/tmp/hoard-borgmatic2-venv/bin/pip \
         install 'borgmatic>=2.1,<2.2'` (as .ci/run does), point HOARD_BORGMATIC2 at one, or set \
         HOARD_SKIP_BORG=1",
        path.display()
    );
}

#[test]
fn borgmatic2_drives_hoard() {
    let Some(borgmatic) = borgmatic2() else {
        return;
    };
    let mut env = Env::new();
    env.passphrase = None; // borgmatic passes the configured one to borg itself
                           // borgmatic records check times under its state directory: keep it inside the test
    let state = env.path().join("state");
    env.set("XDG_STATE_HOME", s(&state));
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello from borgmatic 2\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("b.bin"), tree::pseudo_random(700_000, 7)).unwrap();
    std::fs::write(src.join("sub/deeper/c.txt"), b"nested\n").unwrap();
    std::os::unix::fs::symlink("../a.txt", src.join("sub/link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: PathBuf, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    chmod(src.join("b.bin"), 0o640);
    chmod(src.join("empty"), 0o600);
    chmod(src.join("sub/deeper/c.txt"), 0o755);
    chmod(src.join("sub/deeper"), 0o750);
    let repo = env.path().join("repo");
    let config = env.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "source_directories:\n    - {}\nrepositories:\n    - path: {}\n      label: local\n\
             encryption_passphrase: \"frontend-pass-2\"\nlocal_path: {}\n\
             archive_name_format: 'bm2-{{now:%Y-%m-%dT%H:%M:%S.%f}}'\n\
             keep_daily: 1\n\
             checks:\n    - name: repository\n    - name: archives\n    - name: data\n    - name: extract\n",
            src.display(),
            repo.display(),
            env!("CARGO_BIN_EXE_hoard")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        // no syslog daemon in test sandboxes: keep borgmatic's own logging on stderr
        let out = env
            .command_for(s(&borgmatic))
            .args(["--syslog-verbosity", "-1", "-c", s(&config)])
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "borgmatic {args:?} failed:\n{text}");
        assert!(!text.contains("Traceback"), "borgmatic {args:?}:\n{text}");
        // borgmatic reads borg's `--log-json` lines and re-logs them; a line it could not
        // parse would come through raw
        assert!(
            !text.lines().any(|l| l.contains("{\"type\"")),
            "unparsed --log-json line from hoard in borgmatic {args:?}:\n{text}"
        );
        (String::from_utf8_lossy(&out.stdout).into_owned(), text)
    };
    // borgmatic 2 refuses 1.4-only commands unless `borg --version` says 1.4
    let (_, version) = run(&["-v", "2", "repo-create", "--encryption", "repokey"]);
    assert!(version.contains("Borg 1.4.5"), "{version}");
    let (_, created) = run(&["create", "--stats"]);
    assert!(created.contains("This archive:"), "{created}");
    std::fs::write(src.join("a.txt"), b"changed before the second archive\n").unwrap();
    let (_, created) = run(&["create", "--stats"]);
    assert!(created.contains("Number of files:"), "{created}");
    let (_, pruned) = run(&["prune", "--list"]);
    // one per day and no other rule: the older same-day archive goes (no `daily[oldest]`)
    assert!(pruned.contains("Pruning archive"), "{pruned}");
    run(&["compact"]);
    let (_, checked) = run(&["check", "-v", "1"]);
    assert!(
        checked.contains("Finished full repository check, no problems found."),
        "{checked}"
    );
    assert!(
        checked.contains("verified") && checked.contains("with 0 integrity errors"),
        "data check ran: {checked}"
    );
    assert!(
        checked.contains("Archive consistency check complete, no problems found."),
        "{checked}"
    );
    // the `extract` check is `extract --dry-run` of the latest archive
    assert!(checked.contains("Running extract check"), "{checked}");
    assert!(
        state.join("borgmatic/checks").is_dir(),
        "check times recorded in the test's state"
    );

    // list/info in JSON: keep_daily left only the newer of the two same-day archives
    let (stdout, _) = run(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let archives = v[0]["archives"].as_array().unwrap();
    assert_eq!(
        archives.len(),
        1,
        "prune kept one archive per day: {stdout}"
    );
    let latest = archives[0]["name"].as_str().unwrap().to_string();
    assert!(latest.starts_with("bm2-"), "{latest}");
    assert_eq!(v[0]["repository"]["label"], "local", "{stdout}");
    let (listed, _) = run(&["list"]);
    assert!(listed.contains(&latest), "{listed}");
    let (_, info) = run(&["info"]);
    assert!(info.contains(&format!("Archive name: {latest}")), "{info}");
    let (stdout, _) = run(&["info", "--json", "--archive", "latest"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["archives"][0]["name"], latest.as_str(), "{stdout}");
    assert!(
        v[0]["archives"][0]["stats"]["nfiles"].as_u64().unwrap() >= 5,
        "{stdout}"
    );

    // extract the latest archive: the source tree comes back equal (contents, modes, times)
    let dest = env.path().join("restored");
    std::fs::create_dir_all(&dest).unwrap(); // borgmatic runs borg inside the destination
    run(&["extract", "--archive", "latest", "--destination", s(&dest)]);
    tree::assert_same_tree(&src, &dest.join(src.strip_prefix("/").unwrap()));

    // and borg 1.4.5 finds the repository hoard wrote through borgmatic clean, data included
    if let Some(borg) = borg14() {
        let mut env14 = Env::new();
        env14.passphrase = Some("frontend-pass-2".into());
        let out = env14
            .command_for(s(&borg))
            .args(["check", "--verify-data", "-v", s(&repo)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "borg 1.4.5 check --verify-data:\n{err}"
        );
        assert!(
            err.contains("Archive consistency check complete, no problems found."),
            "{err}"
        );
        let out = env14
            .command_for(s(&borg))
            .args(["list", "--short", s(&repo)])
            .output()
            .unwrap();
        let names = String::from_utf8_lossy(&out.stdout);
        assert!(names.lines().any(|l| l == latest), "{names}");
    }
}
