//! Repositories on S3-compatible object storage (issue 9), against a private SeaweedFS server
//! on 127.0.0.1 (see tests/support/seaweed.rs): the command set on an `s3://` repository and
//! `borg check` of the downloaded bucket, a borg-made repository uploaded as-is, a server killed
//! during `create`, two clients racing for the lock, `mount`, concurrent reads (`get_many`),
//! multipart uploads, retries through a fault-injecting proxy and one-line errors.

mod common;
#[path = "support/seaweed.rs"]
mod seaweed;

use common::tree::{assert_same_tree, build_full_tree, pseudo_random};
use common::{
    assert_one_line_error, borg_available, extract_and_compare, fuse_available,
    list_extract_delete_prune, Env,
};
use seaweed::{Fault, FaultRule, FlakyProxy, Weed};
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
    fn walk(d: &Path, root: &Path, store: &hoard::repo::objstore::S3Bucket) {
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

    list_extract_delete_prune(&env, &repo, &tree, &rel);
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
    extract_and_compare(&env, &format!("{repo}::b1"), "out", &tree, &rel);
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
    // client 2 is another machine: its own BORG_BASE_DIR (a shared one would stop it at the
    // local cache lock and hide the repository lock)
    let env2 = env_for(&w);
    std::fs::write(env2.path().join("f"), b"x").unwrap();
    let r = env2
        .hoard([
            "--lock-wait",
            "2",
            "create",
            &format!("{repo}::second"),
            "f",
        ])
        .expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!("Failed to create/acquire the lock {repo}/lock (timeout)"),
    );
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

/// `get_many` on object storage (concurrent, grouped range requests) returns every object in
/// request order — small and large ones, duplicates, objects of several segments and of the
/// segment still being written — and fails for a missing id.
#[test]
fn get_many_reads_objects_in_request_order() {
    use hoard::repo::{CreateOptions, LocalRepository, OpenOptions, Repository};
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let store = std::sync::Arc::new(w.store("many"));
    let create = CreateOptions {
        max_segment_size: Some(1 << 20),
        ..Default::default()
    };
    let mut repo =
        LocalRepository::create_and_open_obj(&store, &create, &OpenOptions::default()).unwrap();
    // sizes around the first-read window (128 KiB) and the merge distance (256 KiB)
    let sizes = [
        10usize,
        3000,
        131_000,
        131_072,
        140_000,
        300_000,
        700,
        1 << 20,
        5,
        262_144,
        90_000,
    ];
    let mut objects = Vec::new();
    for i in 0..60u64 {
        let data = pseudo_random(sizes[i as usize % sizes.len()], i);
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_le_bytes());
        repo.put(&id, &data).unwrap();
        objects.push((id, data));
    }
    repo.commit(false, 0.1).unwrap();
    // more objects in a transaction that is not committed yet (segment still in memory)
    for i in 60..70u64 {
        let data = pseudo_random(1000 + i as usize, i);
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_le_bytes());
        repo.put(&id, &data).unwrap();
        objects.push((id, data));
    }
    assert!(
        store.list("data/").unwrap().len() >= 3,
        "objects should span several segments"
    );
    // a shuffled order with duplicates
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|i| (i * 37) % objects.len());
    order.extend([3, 3, 0, 69, 7]);
    let ids: Vec<[u8; 32]> = order.iter().map(|&i| objects[i].0).collect();
    let got = repo.get_many(&ids).unwrap();
    assert_eq!(got.len(), ids.len());
    for (k, &i) in order.iter().enumerate() {
        assert!(got[k] == objects[i].1, "object {i} (position {k}) differs");
    }
    // in segment order too (the case of check --verify-data)
    let all: Vec<[u8; 32]> = objects.iter().map(|o| o.0).collect();
    let got = repo.get_many(&all).unwrap();
    assert!(got.iter().zip(&objects).all(|(g, o)| *g == o.1));
    let mut with_missing = ids.clone();
    with_missing.insert(5, [0xee; 32]);
    match repo.get_many(&with_missing) {
        Err(hoard::repo::RepoError::ObjectNotFound(..)) => {}
        other => panic!("expected ObjectNotFound, got {:?}", other.map(|v| v.len())),
    }
}

/// Segments larger than `HOARD_S3_MULTIPART` go up as multipart uploads (a lost answer to a
/// POST included); the bucket is still a repository that borg verifies.
#[test]
fn large_segments_are_uploaded_in_parts() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    // counts the requests; loses the answer of the second POST (a Create or a Complete)
    let proxy = FlakyProxy::start(
        w.s3_port(),
        vec![FaultRule {
            method: "POST",
            header: "",
            fault: Fault::LoseAnswer,
            every: 2,
            budget: 1,
        }],
    );
    let mut env = env_for(&w);
    env.set("HOARD_S3_MULTIPART", &(6 << 20).to_string());
    env.set("HOARD_S3_PART_SIZE", &(5 << 20).to_string());
    let repo = proxy.url("parts");
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    // a repository with 64 MiB segments
    let store = w.store("parts");
    let config = String::from_utf8(store.get("config").unwrap().unwrap()).unwrap();
    assert!(config.contains("max_segment_size = 33554432"), "{config}");
    let config = config.replace("max_segment_size = 33554432", "max_segment_size = 67108864");
    store.put("config", config.as_bytes()).unwrap();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("f{i}")), pseudo_random(9 << 20, 100 + i)).unwrap();
    }
    env.hoard(["create", &format!("{repo}::a"), "src"]).ok();
    let big: Vec<_> = store
        .list("data/")
        .unwrap()
        .into_iter()
        .filter(|(_, size)| *size > 40 << 20)
        .collect();
    assert!(
        !big.is_empty(),
        "no large segment: {:?}",
        store.list("data/")
    );
    // Create + Complete (+ the repeated one after the lost answer)
    assert!(proxy.seen("POST") >= 3, "POSTs: {}", proxy.seen("POST"));
    assert_eq!(proxy.injected().len(), 1);
    let out = env.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let r = env
        .hoard_cmd()
        .current_dir(&out)
        .args(["extract", &format!("{repo}::a")])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_same_tree(&src, &out.join("src"));
    let copy = env.path().join("copy");
    download(&w, "parts", &copy);
    if borg_available() {
        let r = env.borg(["check", "--verify-data", copy.to_str().unwrap()]);
        assert_eq!(r.code, 0, "borg check: {}", r.stderr);
    }
}

/// Transient failures (503, reset connections) are retried: create, extract and check
/// succeed through a proxy that fails some GETs, PUTs and HEADs. A conditional create
/// (`If-None-Match`, the lock) whose answer was lost is not repeated blindly: the client reads
/// the object back and sees that it won.
#[test]
fn transient_failures_are_retried_and_conditional_writes_are_not_repeated() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let rule = |method, fault, every, budget| FaultRule {
        method,
        header: "",
        fault,
        every,
        budget,
    };
    let proxy = FlakyProxy::start(
        w.s3_port(),
        vec![
            rule("GET", Fault::ServiceUnavailable, 5, 25),
            rule("GET", Fault::Reset, 7, 10),
            rule("PUT", Fault::Reset, 3, 8),
            rule("PUT", Fault::ServiceUnavailable, 4, 8),
            rule("HEAD", Fault::ServiceUnavailable, 2, 3),
            rule("DELETE", Fault::Reset, 2, 3),
        ],
    );
    let env = env_for(&w);
    let repo = proxy.url("flaky");
    let tree = build_full_tree(env.path(), false);
    let rel = tree
        .strip_prefix(env.path())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    env.hoard(["create", &format!("{repo}::a"), &rel]).ok();
    extract_and_compare(&env, &format!("{repo}::a"), "out", &tree, &rel);
    env.hoard(["check", "--verify-data", &repo]).ok();
    let injected = proxy.injected();
    for (m, f) in [
        ("GET", Fault::ServiceUnavailable),
        ("GET", Fault::Reset),
        ("PUT", Fault::Reset),
        ("PUT", Fault::ServiceUnavailable),
    ] {
        assert!(
            injected.iter().any(|(a, b)| a == m && *b == f),
            "no {f:?} injected for {m}: {injected:?}"
        );
    }
    assert!(w.store("flaky").list("lock.").unwrap().is_empty());

    // the conditional lock write lands but its answer is lost
    let proxy = FlakyProxy::start(
        w.s3_port(),
        vec![FaultRule {
            method: "PUT",
            header: "if-none-match",
            fault: Fault::LoseAnswer,
            every: 1,
            budget: 1,
        }],
    );
    let s = w.store_via(proxy.port(), "cond-lost");
    assert!(
        s.put_if_absent("x", b"mine").unwrap(),
        "our applied write was taken for someone else's"
    );
    assert_eq!(proxy.injected().len(), 1);
    assert_eq!(proxy.seen("PUT"), 1, "the conditional PUT was sent again");
    assert!(!s.put_if_absent("x", b"other").unwrap());
    assert_eq!(s.get("x").unwrap().as_deref(), Some(&b"mine"[..]));
}

/// Bad buckets, credentials and endpoints give one clear error line and exit code 2.
#[test]
fn missing_bucket_wrong_credentials_and_dead_endpoint_are_one_line_errors() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let mut env = env_for(&w);
    env.set("HOARD_S3_RETRIES", "1");
    let port = w.s3_port();
    let nobucket = format!("s3://127.0.0.1:{port}/no-such-bucket/r");
    let r = env.hoard(["init", "-e", "none", &nobucket]).expect_code(2);
    assert_one_line_error(&r.stderr, "no-such-bucket/r: HTTP 404 NoSuchBucket");
    let r = env.hoard(["list", &nobucket]).expect_code(2);
    assert_one_line_error(&r.stderr, "no-such-bucket/r: HTTP 404 NoSuchBucket");

    let repo = w.url("errs");
    env.hoard(["init", "-e", "none", &repo]).ok();
    for (var, value, code) in [
        (
            "AWS_SECRET_ACCESS_KEY",
            "wrong-secret",
            "SignatureDoesNotMatch",
        ),
        ("AWS_ACCESS_KEY_ID", "nobody", "InvalidAccessKeyId"),
    ] {
        let mut bad = env_for(&w);
        bad.set(var, value);
        let r = bad.hoard(["list", &repo]).expect_code(2);
        assert_one_line_error(&r.stderr, &format!("HTTP 403 {code}"));
        assert!(
            r.stderr.contains("check the S3 credentials"),
            "{}",
            r.stderr
        );
    }

    let dead = seaweed::unused_port();
    let r = env
        .hoard(["list", &format!("s3://127.0.0.1:{dead}/hoard/x")])
        .expect_code(2);
    assert_one_line_error(
        &r.stderr,
        &format!("cannot reach http://127.0.0.1:{dead}: Connection Failed"),
    );
    assert!(
        r.stderr.contains("gave up after 2 attempts"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Signature"), "{}", r.stderr);
}

fn is_mounted(p: &Path) -> bool {
    let canon = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == canon.to_str())
}

/// `mount` of an archive in an `s3://` repository: files read through FUSE equal the source
/// (a small one and a large one at an offset), then `umount`.
#[test]
fn mount_reads_an_archive_on_s3() {
    if !fuse_available() {
        return;
    }
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let env = env_for(&w);
    let repo = w.url("mnt");
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/small.txt"), b"hello from s3\n").unwrap();
    let big = pseudo_random(5 << 20, 42);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    env.hoard(["create", &format!("{repo}::a"), "src"]).ok();
    let mnt = env.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    struct Guard(std::path::PathBuf);
    impl Drop for Guard {
        fn drop(&mut self) {
            if is_mounted(&self.0) {
                let _ = std::process::Command::new("fusermount3")
                    .arg("-uz")
                    .arg(&self.0)
                    .status();
            }
        }
    }
    env.hoard(["mount", &format!("{repo}::a"), mnt.to_str().unwrap()])
        .ok();
    let _guard = Guard(mnt.clone());
    assert!(is_mounted(&mnt), "not mounted");
    assert_eq!(
        std::fs::read(mnt.join("src/d/small.txt")).unwrap(),
        b"hello from s3\n"
    );
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(mnt.join("src/big.bin")).unwrap();
        let mut buf = vec![0u8; 100_000];
        f.read_exact_at(&mut buf, 3_000_000).unwrap();
        assert!(buf == big[3_000_000..3_100_000], "range read differs");
    }
    assert!(std::fs::read(mnt.join("src/big.bin")).unwrap() == big);
    env.hoard(["umount", mnt.to_str().unwrap()]).ok();
    assert!(!is_mounted(&mnt), "still mounted after umount");
    // the mount process releases its shared lock as it exits
    let t0 = Instant::now();
    while !w.store("mnt").list("lock.").unwrap().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "lock left after umount"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
