//! `hoard export-tar` and `hoard diff` against the real borg 1.2 and GNU tar.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{tree, Env, Run};

fn run_in(env: &Env, dir: &Path, borg: bool, args: &[&str]) -> Run {
    let mut c = if borg {
        env.borg_cmd()
    } else {
        env.hoard_cmd()
    };
    let out = c.current_dir(dir).args(args).output().expect("run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A repository with archive `a` of the full tree (created from its parent dir).
fn setup(env: &Env) -> (PathBuf, PathBuf) {
    let src = env.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    tree::build_full_tree(&src, false);
    let repo = env.path().join("repo");
    env.borg(["init", "-e", "repokey", repo.to_str().expect("utf8")])
        .ok();
    let arch = format!("{}::a", repo.display());
    run_in(env, &src, true, &["create", &arch, "tree"]).ok();
    (repo, src)
}

#[test]
fn export_tar_is_byte_identical_to_borg_and_readable_by_gnu_tar() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (repo, src) = setup(&env);
    let arch = format!("{}::a", repo.display());
    let w = env.path();
    for (extra, name) in [
        (vec![], "plain.tar"),
        (vec!["--strip-components", "1"], "strip.tar"),
        (vec!["tree/dir", "tree/links/second"], "paths.tar"),
        (vec!["-e", "*.bin", "-e", "tree/links/master"], "excl.tar"),
    ] {
        let mut args = vec!["export-tar", "--list", arch.as_str(), name];
        args.extend(extra.iter().copied());
        let h = run_in(&env, w, false, &args).ok();
        let borg_name = format!("borg-{name}");
        let mut bargs = vec!["export-tar", "--list", arch.as_str(), borg_name.as_str()];
        bargs.extend(extra.iter().copied());
        let b = run_in(&env, w, true, &bargs).ok();
        assert_eq!(h.stderr, b.stderr, "--list output of {name}");
        let hb = std::fs::read(w.join(name)).expect("hoard tar");
        let bb = std::fs::read(w.join(&borg_name)).expect("borg tar");
        assert!(hb == bb, "{name}: tar streams differ");
    }
    // stdout and a compression filter chosen by extension
    let h = run_in(&env, w, false, &["export-tar", &arch, "-"]).ok();
    assert_eq!(h.stdout, std::fs::read(w.join("plain.tar")).expect("tar"));
    run_in(&env, w, false, &["export-tar", &arch, "x.tar.gz"]).ok();
    let gz = Command::new("gzip")
        .args(["-dc"])
        .arg(w.join("x.tar.gz"))
        .output()
        .expect("gzip");
    assert_eq!(gz.stdout, std::fs::read(w.join("plain.tar")).expect("tar"));

    // GNU tar extracts the same names, modes, contents, links and mtimes (seconds)
    let out = w.join("untar");
    std::fs::create_dir(&out).expect("mkdir");
    let st = Command::new("tar")
        .args(["-xpf"])
        .arg(w.join("plain.tar"))
        .arg("-C")
        .arg(&out)
        .status()
        .expect("tar");
    assert!(st.success());
    let a = tree::scan(&src.join("tree"));
    let b = tree::scan(&out.join("tree"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, ea) in &a {
        let eb = &b[k];
        let what = k.to_string_lossy();
        assert_eq!(ea.mode, eb.mode, "mode of {what}");
        assert_eq!(ea.sha256, eb.sha256, "content of {what}");
        assert_eq!(ea.link, eb.link, "symlink of {what}");
        assert_eq!(ea.rdev, eb.rdev, "rdev of {what}");
        assert_eq!(
            ea.link_group.is_some(),
            eb.link_group.is_some(),
            "hardlink {what}"
        );
        if ea.link.is_none() {
            assert_eq!(
                ea.mtime_ns.div_euclid(1_000_000_000),
                eb.mtime_ns.div_euclid(1_000_000_000),
                "mtime of {what}"
            );
        }
    }
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(w.join("plain.tar"))
        .output()
        .expect("tar -tv");
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        text.contains("tree/links/dangling -> /nonexistent/target"),
        "{text}"
    );
    assert!(text.contains(" link to "), "{text}");
}

/// Changes the tree in many ways for a second archive.
fn mutate(t: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(t.join("hello.txt"), b"hello borg, changed\n").expect("w");
    std::fs::set_permissions(
        t.join("dir/script.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    std::fs::remove_file(t.join("links/rel-symlink")).expect("rm");
    std::os::unix::fs::symlink("../empty", t.join("links/rel-symlink")).expect("symlink");
    std::fs::remove_dir_all(t.join("dir/sub")).expect("rm");
    std::fs::create_dir(t.join("newdir")).expect("mkdir");
    std::fs::write(t.join("newdir/new.txt"), b"new file\n").expect("w");
    std::fs::write(t.join("links/master"), b"changed linked content\n").expect("w");
    std::fs::remove_file(t.join("fifo")).expect("rm");
    std::fs::write(t.join("fifo"), b"now a file").expect("w");
    let big = t.join("big.bin");
    let mut data = std::fs::read(&big).expect("r");
    data[1000] ^= 0xff;
    std::fs::write(&big, &data).expect("w");
    std::os::unix::fs::symlink("hello.txt", t.join("new-link")).expect("symlink");
    let _ = std::process::Command::new("chown")
        .args(["12345:23456"])
        .arg(t.join("empty"))
        .status();
    tree::set_mtime_ns(&t.join("zeros.bin"), 1_000_000_000_123_456_789);
}

#[test]
fn diff_matches_borg_text_and_json_lines() {
    if !common::borg_available() {
        return;
    }
    let env = Env::new();
    let (repo, src) = setup(&env);
    mutate(&src.join("tree"));
    let arch2 = format!("{}::b", repo.display());
    run_in(&env, &src, true, &["create", &arch2, "tree"]).ok();
    // a third archive with other chunker params (borg warns, compares contents)
    let arch3 = format!("{}::c", repo.display());
    run_in(
        &env,
        &src,
        true,
        &["create", "--chunker-params", "fixed,4096", &arch3, "tree"],
    )
    .ok();
    let a1 = format!("{}::a", repo.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["diff", &a1, "b"],
        vec!["diff", "--json-lines", &a1, "b"],
        vec!["diff", "--sort", &a1, "b"],
        vec!["diff", "--sort", "--json-lines", &a1, "b"],
        vec!["diff", "--content-only", &a1, "b"],
        vec!["diff", &a1, "b", "tree/dir", "tree/links"],
        vec!["diff", &a1, "b", "tree/nope"],
        vec!["diff", &a1, "c"],
        vec!["diff", "--json-lines", &a1, "c"],
        vec!["diff", "--same-chunker-params", &a1, "c"],
        vec!["diff", &a1, "a"],
        vec![
            "diff",
            "-e",
            "*.bin",
            "--pattern",
            "- tree/newdir",
            &a1,
            "b",
        ],
        vec!["diff", "--json-lines", &a1, "b", "sh:tree/*.txt"],
    ];
    for args in cases {
        let h = run_in(&env, env.path(), false, &args);
        let b = run_in(&env, env.path(), true, &args);
        assert_eq!(
            h.code, b.code,
            "exit code of {args:?}\n{}\n{}",
            h.stderr, b.stderr
        );
        assert_eq!(h.out(), b.out(), "stdout of {args:?}");
        assert_eq!(h.stderr, b.stderr, "stderr of {args:?}");
    }
    // borg 1.2.4 crashes (AssertionError) when a hardlink's master is not selected; hoard
    // compares what it has
    let h = run_in(&env, env.path(), false, &["diff", &a1, "b", "tree/dir"]).ok();
    assert!(h.out().contains("tree/dir/script.sh"), "{}", h.out());
}

#[test]
fn diff_of_vector_archives_matches_borg() {
    if !common::borg_available() {
        return;
    }
    for name in ["repokey", "keyfile-blake2", "none"] {
        let (env, repo) = common::vector_env(name);
        let a1 = format!("{}::archive1", repo.display());
        // the first access records the repository (and may answer a prompt): do it once
        run_in(&env, env.path(), false, &["diff", &a1, "archive1"]).ok();
        for extra in [
            vec![],
            vec!["--json-lines"],
            vec!["--sort", "--content-only"],
        ] {
            let mut args = vec!["diff"];
            args.extend(extra.iter().copied());
            args.push(&a1);
            args.push("archive2");
            let h = run_in(&env, env.path(), false, &args);
            let b = run_in(&env, env.path(), true, &args);
            assert_eq!(h.code, b.code, "{name} {args:?}: {}", h.stderr);
            assert_eq!(h.out(), b.out(), "{name} {args:?}");
            assert_eq!(h.stderr, b.stderr, "{name} {args:?}");
        }
    }
}
