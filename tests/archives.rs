//! Archive-level acceptance across commands: hoard's own create → extract round trip of every
//! file type, and a real frontend (borgmatic) driving hoard.

mod common;

use common::{arg, borg_available, tree, Env};

#[test]
fn hoard_create_then_hoard_extract_gives_an_identical_tree() {
    for (mode, compression) in [
        ("none", "lz4"),
        ("repokey", "zstd,3"),
        ("keyfile-blake2", "auto,lzma,1"),
    ] {
        let env = Env::new();
        let src_root = env.path().join("src");
        std::fs::create_dir_all(&src_root).unwrap();
        tree::build_full_tree(&src_root, true);
        let repo = env.init_repo("repo", mode);
        let r = env
            .hoard_cmd()
            .current_dir(&src_root)
            .args([
                "create",
                "-C",
                compression,
                &format!("{}::a1", repo.display()),
                "tree",
            ])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{mode}: create: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let dest = env.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let r = env
            .hoard_cmd()
            .current_dir(&dest)
            .args(["extract", "--sparse", &format!("{}::a1", repo.display())])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{mode}: extract: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        tree::assert_same_tree(&src_root.join("tree"), &dest.join("tree"));
        // the sparse file came back sparse
        let md = std::fs::metadata(dest.join("tree/sparse.img")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert!(
            md.blocks() * 512 < md.len(),
            "{mode}: sparse.img is not sparse"
        );
        env.hoard(["check", "--verify-data", arg(&repo)]).ok();
        if borg_available() {
            env.borg(["check", "--verify-data", arg(&repo)]).ok();
        }
    }
}

#[test]
fn unchanged_second_create_stores_no_file_data() {
    let env = Env::new();
    let src_root = env.path().join("src");
    std::fs::create_dir_all(&src_root).unwrap();
    tree::build_full_tree(&src_root, true);
    // borg (and hoard) never cache files whose ctime equals the newest ctime of the run
    // (timestamp granularity races); a file touched later makes the tree's others cacheable.
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(src_root.join("tree/zz-newest.txt"), b"newest\n").unwrap();
    let repo = env.init_repo("repo", "repokey");
    let create = |name: &str| {
        let out = env
            .hoard_cmd()
            .current_dir(&src_root)
            .args([
                "create",
                "--json",
                &format!("{}::{name}", repo.display()),
                "tree",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["archive"]["stats"].clone()
    };
    let first = create("a1");
    let second = create("a2");
    assert_eq!(first["original_size"], second["original_size"]);
    let dedup = second["deduplicated_size"].as_u64().unwrap();
    // only the new archive's metadata is stored: far less than the smallest real file chunk set
    assert!(
        dedup < 20_000,
        "second create stored {dedup} bytes for an unchanged tree"
    );
    // and the files cache made it skip reading: every regular file is reported unchanged
    let out = env
        .hoard_cmd()
        .current_dir(&src_root)
        .args([
            "create",
            "--list",
            "--filter",
            "AM",
            &format!("{}::a3", repo.display()),
            "tree",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stderr);
    let reread: Vec<&str> = listed
        .lines()
        .filter(|l| !l.ends_with("zz-newest.txt"))
        .collect();
    assert!(
        reread.is_empty(),
        "files were read again although unchanged:\n{listed}"
    );
}

#[test]
fn borgmatic_drives_hoard() {
    let have_borgmatic = std::process::Command::new("borgmatic")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_borgmatic {
        if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
            eprintln!("borgmatic not found; skipped (HOARD_SKIP_BORG=1)");
            return;
        }
        panic!("borgmatic 1.7 is required for the frontend test: apt-get install borgmatic (or HOARD_SKIP_BORG=1)");
    }
    let mut env = Env::new();
    env.passphrase = None;
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"hello from borgmatic\n").unwrap();
    std::fs::write(src.join("b.bin"), tree::pseudo_random(300_000, 3)).unwrap();
    let repo = env.path().join("repo");
    let config = env.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "location:\n    source_directories:\n        - {}\n    repositories:\n        - {}\n    local_path: {}\nstorage:\n    encryption_passphrase: \"frontend-pass\"\nretention:\n    keep_daily: 7\n    keep_weekly: 4\nconsistency:\n    checks:\n        - repository\n        - archives\n",
            src.display(),
            repo.display(),
            env!("CARGO_BIN_EXE_hoard")
        ),
    )
    .unwrap();
    let borgmatic = |args: &[&str]| {
        // no syslog daemon in test sandboxes: keep borgmatic's own logging on stderr
        let out = env
            .command_for("borgmatic")
            .args(["--syslog-verbosity", "-1", "-c", arg(&config)])
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "borgmatic {args:?} failed:\n{text}");
        text
    };
    borgmatic(&["init", "-e", "repokey"]);
    borgmatic(&["create"]);
    std::fs::write(src.join("a.txt"), b"changed\n").unwrap();
    borgmatic(&["create", "--stats"]);
    borgmatic(&["prune", "--list"]);
    let checked = borgmatic(&["check", "-v", "1"]);
    assert!(checked.contains("no problems found"), "{checked}");
    let listed = borgmatic(&["list"]);
    assert!(listed.contains('['), "list shows archives: {listed}");
    let info = borgmatic(&["info", "--json"]);
    assert!(info.contains("\"repository\""), "{info}");
    if borg_available() {
        let mut env2 = Env::new();
        env2.tmp = env.tmp;
        env2.passphrase = Some("frontend-pass".into());
        env2.borg(["check", "--verify-data", arg(&repo)]).ok();
    }
}
