//! Repositories on S3-compatible object storage (issue 9), against a private SeaweedFS server
//! on 127.0.0.1 (see tests/support/seaweed.rs): the command set on an `s3://` repository and
//! `borg check` of the downloaded bucket, a borg-made repository uploaded as-is, a server killed
//! during `create`, and two clients racing for the lock. `mount` is covered elsewhere.

mod common;
#[path = "support/seaweed.rs"]
mod seaweed;

use common::tree::{assert_same_tree, build_full_tree, pseudo_random};
use common::{assert_one_line_error, borg_available, Env};
use seaweed::Weed;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn env_for(w: &Weed) -> Env {
    let mut e = Env::new();
    for (k, v) in w.env() {
        e.set(k, v);
    }
    e
}

/// Copies every object under `prefix` into `dest` (the bucket "downloaded to a disk").
/// Extracts ARCHIVE with hoard into a fresh `out` folder and compares `out/REL` with `tree`.
fn extract_and_compare(env: &Env, archive: &str, tree: &Path, rel: &str) {
    let out = env.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir out");
    let r = env
        .hoard_cmd()
        .current_dir(&out)
        .args(["extract", archive])
        .output()
        .expect("run hoard extract");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_same_tree(tree, &out.join(rel));
}

fn download(w: &Weed, prefix: &str, dest: &Path) {
    let store = w.store(prefix);
    let objects = store.list("").expect("list");
    assert!(!objects.is_empty(), "nothing under {prefix}");
    for (name, _) in objects {
        let data = store.get(&name).expect("get").expect("object vanished");
        let p = dest.join(&name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    }
}

/// Uploads every file below `src` under `prefix`, as-is.
fn upload(w: &Weed, src: &Path, prefix: &str) {
    let store = w.store(prefix);
    fn walk(d: &Path, root: &Path, store: &hoard::repo::objstore::ObjectStore) {
        for e in std::fs::read_dir(d).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, store);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("rel")
                    .to_string_lossy()
                    .into_owned();
                store
                    .put(&rel, &std::fs::read(&p).expect("read"))
                    .expect("put");
            }
        }
    }
    walk(src, src, &store);
}

#[test]
fn command_set_on_s3_and_borg_check_of_the_downloaded_bucket() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let env = env_for(&w);
    let repo = w.url("cmds/repo");
    let tree = build_full_tree(env.path(), false);
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    // a second init is refused
    let r = env.hoard(["init", "-e", "repokey", &repo]).expect_code(2);
    assert_one_line_error(&r.stderr, "A repository already exists at");
    // objects exist with borg names
    let names: Vec<String> = w
        .store("cmds/repo")
        .list("")
        .unwrap()
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert!(
        names.contains(&"config".to_string()) && names.contains(&"README".to_string()),
        "{names:?}"
    );

    let cwd = env.path().to_path_buf();
    let rel = tree
        .strip_prefix(&cwd)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    env.hoard(["create", &format!("{repo}::one"), &rel]).ok();
    std::fs::write(tree.join("hello.txt"), b"changed\n").unwrap();
    env.hoard(["create", &format!("{repo}::two"), &rel]).ok();
    let names: Vec<String> = w
        .store("cmds/repo")
        .list("")
        .unwrap()
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert!(names.iter().any(|n| n.starts_with("data/0/")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("index.")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("hints.")), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("integrity.")),
        "{names:?}"
    );

    let list = env.hoard(["list", "--short", &repo]).ok().out();
    assert_eq!(list, "one\ntwo\n");
    let files = env
        .hoard(["list", "--short", &format!("{repo}::two")])
        .ok()
        .out();
    assert!(
        files
            .lines()
            .any(|l| l.ends_with("dir/sub/deeper/leaf.txt")),
        "{files}"
    );
    let info = env.hoard(["info", &format!("{repo}::two")]).ok().out();
    assert!(info.contains("Archive name: two"), "{info}");

    extract_and_compare(&env, &format!("{repo}::two"), &tree, &rel);

    env.hoard(["delete", &format!("{repo}::one")]).ok();
    env.hoard(["create", &format!("{repo}::three"), &rel]).ok();
    env.hoard(["prune", "--keep-last", "1", &repo]).ok();
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "three\n");
    env.hoard(["compact", &repo]).ok();
    env.hoard(["check", "--verify-data", &repo]).ok();
    let key = env.hoard(["key", "export", &repo]).ok().out();
    assert!(key.starts_with("BORG_KEY "), "{key}");

    // a stale lock object (dead pid on this host) and a foreign one: break-lock removes both
    let store = w.store("cmds/repo");
    let foreign = format!(
        r#"{{"host":"elsewhere@1","pid":1,"time":{}}}"#,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    store.put("lock.exclusive", foreign.as_bytes()).unwrap();
    let r = env.hoard(["list", &repo]).expect_code(2);
    assert_one_line_error(&r.stderr, "Failed to create/acquire the lock");
    env.hoard(["break-lock", &repo]).ok();
    assert!(store.list("lock.").unwrap().is_empty());
    env.hoard(["list", "--short", &repo]).ok();

    // the bucket is a borg repository
    let copy = env.path().join("copy");
    download(&w, "cmds/repo", &copy);
    if borg_available() {
        let r = env.borg(["check", "--verify-data", copy.to_str().unwrap()]);
        assert_eq!(r.code, 0, "borg check: {}", r.stderr);
        let r = env.borg(["list", "--short", copy.to_str().unwrap()]).ok();
        assert_eq!(r.out(), "three\n");
    }
}

#[test]
fn borg_repository_uploaded_as_is_is_read() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    if !borg_available() {
        return;
    }
    let env = env_for(&w);
    let tree = build_full_tree(env.path(), false);
    let local = env.path().join("borgrepo");
    env.borg(["init", "-e", "repokey", local.to_str().unwrap()])
        .ok();
    let rel = tree
        .strip_prefix(env.path())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    env.borg(["create", &format!("{}::b1", local.display()), &rel])
        .ok();
    upload(&w, &local, "uploaded");
    let repo = w.url("uploaded");
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "b1\n");
    extract_and_compare(&env, &format!("{repo}::b1"), &tree, &rel);
    // and hoard can keep writing to it
    env.hoard(["create", &format!("{repo}::h2"), &rel]).ok();
    env.hoard(["check", &repo]).ok();
}

#[test]
fn conditional_create_is_honoured() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let s = w.store("cond");
    assert!(s.put_if_absent("x", b"first").unwrap());
    assert!(!s.put_if_absent("x", b"second").unwrap());
    assert_eq!(s.get("x").unwrap().as_deref(), Some(&b"first"[..]));
}

#[test]
fn two_clients_race_for_the_lock() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let env = env_for(&w);
    let repo = w.url("race");
    env.hoard(["init", "-e", "none", &repo]).ok();
    // client 1 holds the exclusive lock while it reads stdin
    let mut c1 = env
        .hoard_cmd()
        .args(["create", &format!("{repo}::first"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c1.stdin.take().unwrap();
    stdin.write_all(b"data of the first client\n").unwrap();
    let store = w.store("race");
    let t0 = Instant::now();
    while store.head("lock.exclusive").unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "client 1 never locked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let src = env.path().join("f");
    std::fs::write(&src, b"x").unwrap();
    let r = env
        .hoard([
            "--lock-wait",
            "2",
            "create",
            &format!("{repo}::second"),
            "f",
        ])
        .expect_code(2);
    assert_one_line_error(&r.stderr, "Failed to create/acquire the lock");
    drop(stdin);
    let out = c1.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "first\n");
    assert!(store.list("lock.").unwrap().is_empty(), "lock left behind");
}

#[test]
fn server_killed_during_create() {
    let env0 = Env::new();
    let Some(mut w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let mut env = env_for(&w);
    env.set("HOARD_S3_RETRIES", "2");
    let repo = w.url("killed");
    env.hoard(["init", "-e", "none", &repo]).ok();
    std::fs::write(env.path().join("small"), b"small file\n").unwrap();
    env.hoard(["create", &format!("{repo}::a1"), "small"]).ok();
    // enough data for several 32 MiB segments
    let big = env.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..12 {
        std::fs::write(big.join(format!("f{i}")), pseudo_random(16 << 20, i)).unwrap();
    }
    let store = w.store("killed");
    let before = store.list("data/").unwrap().len();
    let child = env
        .hoard_cmd()
        .args(["create", &format!("{repo}::a2"), "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kill the server once the new transaction has uploaded a segment
    let t0 = Instant::now();
    while store.list("data/").map(|l| l.len()).unwrap_or(0) <= before {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no segment upload seen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() <= 2 && lines.iter().any(|l| l.contains("gave up after")),
        "expected one clear error, got:\n{stderr}"
    );
    w.restart();
    // the stale lock of the killed client (same host, dead pid) is removed automatically
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "a1\n");
    env.hoard(["create", &format!("{repo}::a3"), "small"]).ok();
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "a1\na3\n");
    env.hoard(["check", &repo]).ok();
}
