//! One conformance suite for every place a repository can live: the same repository checks
//! (write and commit, a client killed mid-transaction, reopen, list, check, compact, the
//! lock) run against a local directory, S3 on SeaweedFS, S3 on `rclone serve s3`, and
//! `hoard serve` (started through a `BORG_RSH` script, no ssh). The storage trait
//! (`hoard::repo::storage`) promises the same behaviour for the first three; `hoard serve`
//! runs the directory store behind the RPC protocol.

mod common;
#[path = "support/rclone.rs"]
mod rclone;
#[path = "support/seaweed.rs"]
mod seaweed;

use common::tree::{assert_same_tree, build_full_tree, pseudo_random};
use common::{assert_one_line_error, Env};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where the repository under test lives.
enum Backend {
    Dir(PathBuf),
    S3(Box<hoard::repo::objstore::S3Bucket>),
}

impl Backend {
    /// Whether some client holds the exclusive lock.
    fn exclusive_locked(&self) -> bool {
        match self {
            Backend::Dir(p) => p.join("lock.exclusive").exists(),
            Backend::S3(b) => b
                .list("lock.exclusive")
                .map(|l| !l.is_empty())
                .unwrap_or(false),
        }
    }
}

/// Runs the suite on `repo` (a location text) with clients made by `new_env` (each call a
/// separate client machine: its own `BORG_BASE_DIR`).
fn conformance(new_env: &dyn Fn() -> Env, repo: &str, backend: &Backend) {
    let env = new_env();
    let tree = build_full_tree(env.path(), false);
    let rel = tree
        .file_name()
        .and_then(|n| n.to_str())
        .expect("tree name")
        .to_string();
    let arch = |n: &str| format!("{repo}::{n}");

    // write and commit
    env.hoard(["init", "-e", "repokey", repo]).ok();
    env.hoard(["create", &arch("one"), &rel]).ok();
    assert_eq!(env.hoard(["list", "--short", repo]).ok().out(), "one\n");

    // a client killed in the middle of a transaction: the repository stays at its last
    // commit and the next client cleans up
    let mut c = env
        .hoard_cmd()
        .args(["create", &arch("killed"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start create");
    let mut stdin = c.stdin.take().expect("stdin");
    stdin
        .write_all(&pseudo_random(3 << 20, 7))
        .expect("feed create");
    let t0 = Instant::now();
    while !backend.exclusive_locked() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "create never locked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    c.kill().expect("kill -9");
    c.wait().expect("reap");
    drop(stdin);
    let lw = ["--lock-wait", "30"];
    let listed = env
        .hoard(lw.iter().copied().chain(["list", "--short", repo]))
        .ok()
        .out();
    assert_eq!(listed, "one\n", "reopened after the kill");
    env.hoard(lw.iter().copied().chain(["check", repo])).ok();

    // more writes after the crash, read back whole
    std::fs::write(tree.join("file-after-crash"), b"written after the crash\n").expect("write");
    env.hoard(["create", &arch("two"), &rel]).ok();
    assert_eq!(
        env.hoard(["list", "--short", repo]).ok().out(),
        "one\ntwo\n"
    );
    let out = env.path().join("out-two");
    std::fs::create_dir_all(&out).expect("mkdir");
    env.hoard_cmd()
        .current_dir(&out)
        .args(["extract", &arch("two")])
        .status()
        .map(|s| assert!(s.success(), "extract two"))
        .expect("run extract");
    assert_same_tree(&tree, &out.join(&rel));

    // compaction frees the deleted archive's data and keeps the rest readable
    env.hoard(["delete", &arch("one")]).ok();
    env.hoard(["compact", repo]).ok();
    assert_eq!(env.hoard(["list", "--short", repo]).ok().out(), "two\n");
    env.hoard(["check", "--verify-data", repo]).ok();

    // the lock: a second client waits for the holder and gives up after --lock-wait
    let mut holder = env
        .hoard_cmd()
        .args(["create", &arch("held"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start holder");
    let mut hin = holder.stdin.take().expect("stdin");
    hin.write_all(b"data of the lock holder\n").expect("feed");
    let t0 = Instant::now();
    while !backend.exclusive_locked() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "holder never locked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let env2 = new_env();
    std::fs::write(env2.path().join("f"), b"x").expect("write");
    let r = env2
        .hoard(["--lock-wait", "1", "create", &arch("second"), "f"])
        .expect_code(2);
    assert_one_line_error(&r.stderr, "Failed to create/acquire the lock");
    assert!(r.stderr.contains("(timeout)"), "{}", r.stderr);
    drop(hin);
    let o = holder.wait_with_output().expect("holder");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!backend.exclusive_locked(), "lock left behind");
    env2.hoard(["create", &arch("second"), "f"]).ok();
    assert_eq!(
        env.hoard(["list", "--short", repo]).ok().out(),
        "two\nheld\nsecond\n"
    );
    env.hoard(["break-lock", repo]).ok();
    env.hoard(["check", repo]).ok();
}

#[test]
fn directory_store_conforms() {
    let root = Env::new();
    let repo = root.path().join("repo");
    let backend = Backend::Dir(repo.clone());
    conformance(&Env::new, &repo.to_string_lossy(), &backend);
}

#[test]
fn s3_store_on_seaweedfs_conforms() {
    let root = Env::new();
    let Some(w) = seaweed::Weed::start(&root.path().join("weed")) else {
        return;
    };
    let new_env = || {
        let mut e = Env::new();
        for (k, v) in w.env() {
            e.set(k, v);
        }
        e
    };
    let backend = Backend::S3(Box::new(w.store("conf/repo")));
    conformance(&new_env, &w.url("conf/repo"), &backend);
}

#[test]
fn s3_store_on_rclone_conforms() {
    let root = Env::new();
    let Some(r) = rclone::Rclone::start(&root.path().join("rclone")) else {
        return;
    };
    let new_env = || {
        let mut e = Env::new();
        for (k, v) in r.env() {
            e.set(k, v);
        }
        e
    };
    let backend = Backend::S3(Box::new(r.store("conf/repo")));
    conformance(&new_env, &r.url("conf/repo"), &backend);
}

/// A `BORG_RSH` program that ignores the host and the client's command and runs
/// `hoard serve` locally (the directory store behind the RPC protocol).
fn local_serve_rsh(dir: &Path) -> PathBuf {
    let script = dir.join("serve-rsh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec '{}' serve\n", env!("CARGO_BIN_EXE_hoard")),
    )
    .expect("write rsh");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn hoard_serve_conforms() {
    let root = Env::new();
    let rsh = local_serve_rsh(root.path());
    let repo = root.path().join("repo");
    let new_env = || {
        let mut e = Env::new();
        e.set("BORG_RSH", &rsh.to_string_lossy());
        e
    };
    let backend = Backend::Dir(repo.clone());
    conformance(&new_env, &format!("ssh://host{}", repo.display()), &backend);
}

/// The repository logic above the stores never asks which store it has: no object-store
/// field, no S3 type, no branch on the storage kind outside `src/repo/storage/` and the S3
/// client (`local.rs` keeps only the S3 constructors `create_obj` / `open_obj`).
#[test]
fn no_branch_on_the_storage_kind_outside_the_stores() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/repo");
    for f in [
        "segment.rs",
        "txn.rs",
        "local/check.rs",
        "compact.rs",
        "hints.rs",
        "index.rs",
        "integrity.rs",
        "local.rs",
    ] {
        let text = std::fs::read_to_string(repo.join(f)).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in ["self.obj", ".obj.", "obj:", "RepoLock"] {
                assert!(!has_word(code, bad), "{f}:{}: `{bad}` in {line:?}", n + 1);
            }
            if f != "local.rs" {
                for bad in ["objstore", "S3Bucket", "S3Storage", "DirStorage::"] {
                    let allowed = f == "segment.rs" && bad == "DirStorage::";
                    assert!(
                        allowed || !has_word(code, bad),
                        "{f}:{}: `{bad}` in {line:?}",
                        n + 1
                    );
                }
            }
        }
    }
}

/// Whether `code` contains `word` not followed by an identifier character (`self.obj` but not
/// `self.object_count`).
fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        !code[i + word.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}
