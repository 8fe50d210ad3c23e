//! list / info / delete / rename / archive selection: hoard must print exactly what borg 1.2
//! prints on the same repository, and leave repositories that borg checks clean.

mod common;

use std::path::{Path, PathBuf};

use common::{borg_available, vector_env, Env, VECTORS};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs borg then hoard with the same arguments and asserts equal stdout and exit code.
fn same(env: &Env, args: &[&str]) -> String {
    let b = env.borg(args);
    let h = env.hoard(args);
    assert_eq!(
        h.code, b.code,
        "exit code for {args:?}\nborg stderr: {}\nhoard stderr: {}",
        b.stderr, h.stderr
    );
    assert_eq!(
        h.out(),
        b.out(),
        "stdout for {args:?}\nhoard stderr: {}",
        h.stderr
    );
    b.out()
}

/// Like [`same`] for JSON Lines, whose key order borg takes from a Python set.
fn same_json_lines(env: &Env, args: &[&str]) {
    let parse = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    };
    let b = env.borg(args).ok();
    let h = env.hoard(args).ok();
    assert_eq!(parse(&h.out()), parse(&b.out()), "json lines for {args:?}");
}

#[test]
fn list_matches_borg_on_every_vector() {
    if !borg_available() {
        return;
    }
    for name in VECTORS {
        let (env, repo) = vector_env(name);
        let r = s(&repo);
        let a1 = format!(
            "{r}::archive{}",
            if name.starts_with("lifecycle") { 2 } else { 1 }
        );
        let out = same(&env, &["list", &r]);
        assert!(out.contains("archive2"), "{name}: {out}");
        same(&env, &["list", "--short", &r]);
        same(&env, &["list", "--json", &r]);
        same(&env, &["list", &a1]);
        same(&env, &["list", "--short", &a1]);
        same(&env, &["list", &a1, "data/subdir"]);
        same(&env, &["list", &a1, "-e", "*.bin"]);
        same(
            &env,
            &[
                "list",
                "--format",
                "{md5} {sha1} {sha3_256} {sha224} {path}{NL}",
                &a1,
            ],
        );
        same(&env, &["list", &a1, "--pattern", "- data/subdir", "data"]);
        same(
            &env,
            &[
                "list",
                "--format",
                "{size:,}|{path:>30.10}|{mtime:%H%M}{NL}",
                &a1,
            ],
        );
        same_json_lines(&env, &["list", "--json-lines", &a1]);
        same(
            &env,
            &[
                "list",
                "--format",
                "{mode} {path} {sha256} {size:>8} {dsize} {csize} {dcsize} {num_chunks} {unique_chunks}{NL}",
                &a1,
            ],
        );
        same(
            &env,
            &[
                "list",
                "--format",
                "{type}|{uid}|{gid}|{user:>8}|{group:<6}|{isomtime}|{mtime:%Y-%m-%d}|{source}|{linktarget}|{flags}|{health}|{archivename}|{archiveid}|{xxh64}|{blake2b}{NL}",
                &a1,
            ],
        );
        same_json_lines(
            &env,
            &["list", "--json-lines", "--format", "{sha512}{dsize}", &a1],
        );
        same(
            &env,
            &[
                "list",
                "--format",
                "{archive:>20}|{name}|{barchive}|{time:%Y}|{start}|{end}|{command_line}|{hostname}|{username}|{comment}|{id}{NL}",
                &r,
            ],
        );
        same(&env, &["list", "--json", "--format", "{hostname}{end}", &r]);
    }
}

#[test]
fn info_matches_borg() {
    if !borg_available() {
        return;
    }
    // `info` on archives shows borg 1.4's figures and its "Working Directory" line: the
    // oracle is borg 1.4.5 (the repository view is still compared with borg 1.2.4).
    let Some(b14) = common::borg14() else { return };
    for name in ["repokey", "none", "keyfile-blake2", "lifecycle-compacted"] {
        let (env, repo) = vector_env(name);
        let r = s(&repo);
        let a = format!("{r}::archive2");
        let same14 = |args: &[&str]| {
            let b = env
                .command_for(&b14.to_string_lossy())
                .args(args)
                .output()
                .expect("run borg 1.4");
            let h = env.hoard(args);
            assert_eq!(
                h.code,
                b.status.code().unwrap_or(-1),
                "{args:?}: {}",
                h.stderr
            );
            assert_eq!(
                h.out(),
                String::from_utf8_lossy(&b.stdout),
                "stdout for {args:?}\nhoard stderr: {}",
                h.stderr
            );
        };
        same14(&["info", &a]);
        same14(&["info", "--json", &a]);
        same14(&["info", "--last", "2", &r]);
        same14(&["info", "--last", "1", &a]);
        same14(&["info", "--json", "-a", "*2", &r]);
        same14(&["info", &format!("{r}::nope")]);
        same(&env, &["info", &r]);
    }
}

#[test]
fn selection_matches_borg() {
    if !borg_available() {
        return;
    }
    let (env, repo) = vector_env("lifecycle-append-only");
    let r = s(&repo);
    // more archives with names sorting differently from their times
    std::fs::create_dir_all(env.path().join("small")).unwrap();
    std::fs::write(env.path().join("small/f"), b"x").unwrap();
    for n in ["zeta", "alpha", "mid.checkpoint"] {
        env.borg(["create", &format!("{r}::{n}"), "small"]).ok();
    }
    for args in [
        vec!["list", "--last", "2"],
        vec!["list", "--first", "2"],
        vec!["list", "-a", "arch*"],
        vec!["list", "-P", "a"],
        vec!["list", "--sort-by", "name"],
        vec!["list", "--sort-by", "name", "--last", "1"],
        vec!["list", "--sort-by", "id"],
        vec!["list", "--sort-by", "timestamp,name", "--first", "3"],
        vec!["list", "--consider-checkpoints"],
        vec!["list", "-a", "*[!0-9]"],
    ] {
        let mut a = args.clone();
        a.push(&r);
        same(&env, &a);
    }
    // bad combinations are errors in both
    for args in [
        vec!["list", "--sort-by", "foo"],
        vec!["list", "--first", "1", "--last", "1"],
        vec!["list", "-P", "a", "-a", "b*"],
        vec!["list", "--first", "0"],
    ] {
        let mut a = args.clone();
        a.push(&r);
        assert_eq!(env.borg(&a).code, 2);
        assert_eq!(env.hoard(&a).code, 2);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// A borg-made repository with three archives.
fn three_archive_repo() -> (Env, PathBuf) {
    let env = Env::new();
    let repo = env.path().join("repo");
    let r = s(&repo);
    let data = env.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), b"hello world\n").unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    env.borg(["init", "-e", "repokey", &r]).ok();
    for (i, extra) in ["one", "two", "three"].iter().enumerate() {
        std::fs::write(data.join(format!("{extra}.txt")), extra.repeat(5000)).unwrap();
        env.borg([
            "create",
            "--timestamp",
            &format!("2023-01-0{}T10:00:00", i + 1),
            &format!("{r}::arch-{extra}"),
            "data",
        ])
        .ok();
    }
    (env, repo)
}

#[test]
fn delete_leaves_a_clean_repository() {
    if !borg_available() {
        return;
    }
    let (env, repo) = three_archive_repo();
    let r = s(&repo);
    // a dry run changes nothing
    let before = common::snapshot_dir(&repo);
    env.hoard(["delete", "-n", &format!("{r}::arch-two")]).ok();
    assert_eq!(common::snapshot_dir(&repo), before);
    // the same deletion in a copy by borg gives the same statistics
    let twin = env.path().join("twin");
    copy_dir(&repo, &twin);
    let mut twin_env = Env::new();
    twin_env.set("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes");
    let t = s(&twin);
    let b = twin_env
        .borg(["delete", "--stats", "--list", &format!("{t}::arch-two")])
        .ok();
    let h = env
        .hoard(["delete", "--stats", "--list", &format!("{r}::arch-two")])
        .ok();
    let strip = |e: &str| -> Vec<String> {
        e.lines()
            .filter(|l| !l.contains("previously located") && !l.contains("Do you want"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(&h.stderr), strip(&b.stderr));
    env.borg(["check", "--verify-data", &r]).ok();
    let listed = env.borg(["list", "--short", &r]).ok().out();
    assert_eq!(listed, "arch-one\narch-three\n");
    for a in ["arch-one", "arch-three"] {
        env.borg(["extract", "--dry-run", &format!("{r}::{a}")])
            .ok();
    }
    // a missing archive: borg warns and exits 0
    let h = env.hoard(["delete", &format!("{r}::nope")]);
    let b = env.borg(["delete", &format!("{r}::nope")]);
    assert_eq!(h.code, b.code);
    assert_eq!(h.stderr, b.stderr);
    // filters and names do not mix
    let h = env.hoard(["delete", "-a", "arch*", &format!("{r}::arch-one")]);
    assert_eq!(h.code, 2);
    common::assert_one_line_error(&h.stderr, "Mixing archive filters");
    // delete by glob, several names, then all
    env.hoard(["delete", "--first", "1", &r]).ok();
    assert_eq!(env.borg(["list", "--short", &r]).ok().out(), "arch-three\n");
    env.borg(["check", &r]).ok();
    env.hoard(["delete", &r, "arch-three"]).ok();
    assert_eq!(env.borg(["list", "--short", &r]).ok().out(), "");
    env.borg(["check", "--verify-data", &r]).ok();
}

#[test]
fn delete_repository_asks_first() {
    if !borg_available() {
        return;
    }
    let (mut env, repo) = three_archive_repo();
    let r = s(&repo);
    let h = env.hoard(["delete", &r]);
    assert_eq!(h.code, 2);
    assert!(h.stderr.contains("You requested to completely DELETE the following repository *including* 3 archives it contains:"), "{}", h.stderr);
    assert!(repo.join("config").exists());
    env.set("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "YES");
    env.hoard(["delete", &r]).ok();
    assert!(!repo.exists());
}

#[test]
fn rename_is_seen_by_borg() {
    if !borg_available() {
        return;
    }
    let (env, repo) = three_archive_repo();
    let r = s(&repo);
    env.hoard(["rename", &format!("{r}::arch-one"), "first"])
        .ok();
    let listed = env.borg(["list", "--short", &r]).ok().out();
    assert_eq!(listed, "first\narch-two\narch-three\n");
    env.borg(["check", "--verify-data", &r]).ok();
    env.borg(["extract", "--dry-run", &format!("{r}::first")])
        .ok();
    let info = env.borg(["info", &format!("{r}::first")]).ok().out();
    assert!(info.starts_with("Archive name: first\n"), "{info}");
    // borg's errors
    for (old, new, msg) in [
        ("nope", "x", "Archive nope does not exist"),
        ("first", "arch-two", "Archive arch-two already exists"),
    ] {
        let h = env.hoard(["rename", &format!("{r}::{old}"), new]);
        let b = env.borg(["rename", &format!("{r}::{old}"), new]);
        assert_eq!(h.code, b.code);
        common::assert_one_line_error(&h.stderr, msg);
    }
}
