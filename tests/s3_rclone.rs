//! Repositories on `rclone serve s3` (tests/support/rclone.rs), a second real S3 server with
//! two quirks hoard must live with: it answers a ranged GET with 200 + `Content-Range`, and
//! it ignores `If-None-Match: *` (a conditional PUT overwrites). Covered here: the command
//! set on an rclone-served repository and the real borg working directly on the served
//! folder; the detection of conditional writes (rclone: ignored, SeaweedFS: honoured); two
//! hoard processes racing for the lock; a mutual-exclusion stress test of `ObjLock` on
//! rclone, on SeaweedFS and with both lock forms mixed; shared against exclusive locks and
//! `break-lock` of candidate lock objects.

mod common;
#[path = "support/rclone.rs"]
mod rclone;
#[path = "support/seaweed.rs"]
mod seaweed;

use common::tree::{build_full_tree, pseudo_random};
use common::{
    assert_one_line_error, borg_available, extract_and_compare, list_extract_delete_prune, Env,
};
use hoard::repo::objstore::{ObjLock, S3Bucket};
use rclone::Rclone;
use seaweed::Weed;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_with(vars: Vec<(&'static str, &'static str)>) -> Env {
    let mut e = Env::new();
    for (k, v) in vars {
        e.set(k, v);
    }
    e
}

/// `p` relative to the environment's work dir (hoard and borg run there).
fn rel_to(env: &Env, p: &Path) -> String {
    p.strip_prefix(env.path())
        .expect("below the work dir")
        .to_string_lossy()
        .into_owned()
}

fn names(store: &S3Bucket, prefix: &str) -> Vec<String> {
    store
        .list(prefix)
        .expect("list")
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Serialises the first [`S3Bucket::conditional_writes`] call of every store made in this
/// test binary: `HOARD_S3_CONDITIONAL_WRITES` is read from the process environment at that
/// call (then cached in the store), so a store is put into one lock mode by setting or
/// removing the variable around it. Only `no` is ever set, and only for a moment: a hoard
/// child spawned meanwhile (they all run against rclone here) could inherit it, which changes
/// nothing on rclone, where the probe answers `no` too.
static MODE: Mutex<()> = Mutex::new(());

/// Fixes the lock mode of `store`: `force_candidates` = candidate objects whatever the store
/// does, otherwise the probe decides. Returns what the store now reports.
fn prime_mode(store: &S3Bucket, force_candidates: bool) -> bool {
    let _g = MODE.lock().unwrap_or_else(|e| e.into_inner());
    if force_candidates {
        std::env::set_var("HOARD_S3_CONDITIONAL_WRITES", "no");
    } else {
        std::env::remove_var("HOARD_S3_CONDITIONAL_WRITES");
    }
    let r = store.conditional_writes();
    std::env::remove_var("HOARD_S3_CONDITIONAL_WRITES");
    r.expect("conditional_writes probe")
}

/// Starts `hoard create REPO::NAME -` holding the exclusive lock while it reads stdin (one
/// line is written; the returned stdin keeps it waiting) and waits until a `lock.exclusive*`
/// object exists.
fn hold_exclusive(env: &Env, repo: &str, name: &str, store: &S3Bucket) -> (Child, ChildStdin) {
    let mut c = env
        .hoard_cmd()
        .args(["create", &format!("{repo}::{name}"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hoard create");
    let mut stdin = c.stdin.take().expect("stdin");
    stdin
        .write_all(b"data of the first client\n")
        .expect("write stdin");
    let t0 = Instant::now();
    while names(store, "lock.exclusive").is_empty() {
        if let Ok(Some(st)) = c.try_wait() {
            panic!("client 1 exited ({st}) before taking the lock");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "client 1 never locked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (c, stdin)
}

/// Closes the holder's stdin and asserts it finished successfully.
fn finish(c: Child, stdin: ChildStdin) {
    drop(stdin);
    let out = c.wait_with_output().expect("wait for client 1");
    assert!(
        out.status.success(),
        "client 1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one-line error of a client that gave up waiting for the repository lock of `repo`
/// (not for its local cache lock: every client here has its own `BORG_BASE_DIR`).
fn repo_lock_error(repo: &str) -> String {
    format!("Failed to create/acquire the lock {repo}/lock (timeout)")
}

/// True for a candidate lock object `lock.exclusive.<host>.<pid>.<16 hex digits>` of `pid`.
fn is_candidate_of(name: &str, pid: u32) -> bool {
    let Some(rest) = name.strip_prefix("lock.exclusive.") else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '.');
    let nonce = parts.next().unwrap_or("");
    let p = parts.next().unwrap_or("");
    let host = parts.next().unwrap_or("");
    !host.is_empty()
        && p == pid.to_string()
        && nonce.len() == 16
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// init, create, list, info, extract, check --verify-data, delete, prune, compact on an
/// rclone-served repository; then the real borg checks, lists and writes the served folder
/// itself, and hoard reads borg's archive through `s3://`.
#[test]
fn command_set_on_rclone_and_borg_on_the_served_folder() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let env = env_with(rc.env());
    let repo = rc.url("cmds/repo");
    let folder = rc.folder("cmds/repo");
    let tree = build_full_tree(env.path(), false);
    let rel = rel_to(&env, &tree);

    // init reads the config back with ranged GETs (rclone answers them 200 + Content-Range)
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    let r = env.hoard(["init", "-e", "repokey", &repo]).expect_code(2);
    assert_one_line_error(&r.stderr, "A repository already exists at");
    assert!(folder.join("config").is_file() && folder.join("README").is_file());

    env.hoard(["create", &format!("{repo}::one"), &rel]).ok();
    std::fs::write(tree.join("hello.txt"), b"changed\n").expect("write");
    env.hoard(["create", &format!("{repo}::two"), &rel]).ok();
    // the objects are plain files of a borg layout, and no lock is left behind
    let files = rclone::files_below(&folder);
    assert!(files.iter().any(|f| f.starts_with("data/0/")), "{files:?}");
    for p in ["index.", "hints.", "integrity."] {
        assert!(files.iter().any(|f| f.starts_with(p)), "{p}: {files:?}");
    }
    assert!(!files.iter().any(|f| f.starts_with("lock.")), "{files:?}");

    env.hoard(["check", "--verify-data", &repo]).ok();
    list_extract_delete_prune(&env, &repo, &tree, &rel);
    let before = rclone::files_below(&folder.join("data")).len();
    env.hoard(["compact", &repo]).ok();
    let after = rclone::files_below(&folder.join("data")).len();
    assert!(
        after < before,
        "compact freed no segment: {before} -> {after}"
    );
    env.hoard(["check", "--verify-data", &repo]).ok();

    if !borg_available() {
        return;
    }
    // the served folder is a borg repository: borg checks and lists it in place
    let f = folder.to_str().expect("utf-8 path");
    let r = env.borg(["check", "--verify-data", f]);
    assert_eq!(r.code, 0, "borg check: {}", r.stderr);
    assert_eq!(env.borg(["list", "--short", f]).ok().out(), "three\n");
    // borg writes an archive into the folder; hoard reads it through rclone
    std::fs::write(tree.join("hello.txt"), b"written by borg\n").expect("write");
    env.borg(["create", &format!("{f}::byborg"), &rel]).ok();
    rc.forget_dir_cache("cmds/repo");
    assert_eq!(
        env.hoard(["list", "--short", &repo]).ok().out(),
        "three\nbyborg\n"
    );
    extract_and_compare(&env, &format!("{repo}::byborg"), "out2", &tree, &rel);
    env.hoard(["check", "--verify-data", &repo]).ok();
    // and borg reads what hoard adds next
    env.hoard(["create", &format!("{repo}::four"), &rel]).ok();
    assert_eq!(
        env.borg(["list", "--short", f]).ok().out(),
        "three\nbyborg\nfour\n"
    );
    let r = env.borg(["check", "--verify-data", f]);
    assert_eq!(r.code, 0, "borg check: {}", r.stderr);
}

/// A ranged GET answered `200` + `Content-Range` (rclone) is taken as the range asked for.
#[test]
fn ranged_reads_on_rclone_return_the_range() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let s = rc.store("ranges");
    let data = pseudo_random(100_000, 7);
    s.put("obj", &data).expect("put");
    assert_eq!(
        std::fs::read(rc.folder("ranges").join("obj")).expect("file"),
        data
    );
    for (start, len) in [(0u64, 10u64), (1, 1), (12_345, 4_096), (99_990, 10)] {
        let got = s.get_range("obj", start, len).expect("get_range");
        let (a, b) = (start as usize, (start + len) as usize);
        assert!(got == data[a..b], "range {start}+{len} differs");
    }
    // a range running past the end is cut at the end
    let got = s.get_range("obj", 99_000, 5_000).expect("get_range");
    assert!(got == data[99_000..], "tail range differs");
    let reqs: Vec<(String, u64, u64)> = (0..20)
        .map(|i| ("obj".to_string(), i * 4_999, 777))
        .collect();
    for (i, got) in s.get_ranges(&reqs).into_iter().enumerate() {
        let a = i * 4_999;
        assert!(got.expect("range") == data[a..a + 777], "range {i} differs");
    }
}

/// rclone ignores `If-None-Match: *` (the probe says so and a conditional PUT overwrites);
/// SeaweedFS honours it. The probe leaves no object behind.
#[test]
fn conditional_writes_are_detected() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let s = rc.store("cond");
    assert!(
        !prime_mode(&s, false),
        "rclone taken as honouring If-None-Match"
    );
    assert!(names(&s, "").is_empty(), "probe left {:?}", names(&s, ""));
    // the quirk the probe is about: the second conditional create overwrites
    assert!(s.put_if_absent("x", b"first").expect("put"));
    assert!(s.put_if_absent("x", b"second").expect("put"));
    assert_eq!(s.get("x").expect("get").as_deref(), Some(&b"second"[..]));

    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let s = w.store("cond");
    assert!(
        prime_mode(&s, false),
        "SeaweedFS taken as ignoring If-None-Match"
    );
    assert!(names(&s, "").is_empty(), "probe left {:?}", names(&s, ""));
    assert!(s.put_if_absent("x", b"first").expect("put"));
    assert!(!s.put_if_absent("x", b"second").expect("put"));
    // forced: the variable wins over the probe
    let forced = w.store("cond2");
    assert!(!prime_mode(&forced, true));
}

/// Client 1 holds the exclusive lock (a candidate object) on rclone; client 2 waits 2 s and
/// fails with one line instead of overwriting client 1's lock and proceeding; client 1 then
/// completes and the repository is clean. The old behaviour (both clients writing
/// `lock.exclusive` with an ignored `If-None-Match`; reproduced by giving both clients
/// `HOARD_S3_CONDITIONAL_WRITES=yes`) makes client 2 exit 0 here.
#[test]
fn two_clients_race_for_the_lock_on_rclone() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let env = env_with(rc.env());
    let repo = rc.url("race");
    env.hoard(["init", "-e", "none", &repo]).ok();
    let store = rc.store("race");
    let (c1, stdin) = hold_exclusive(&env, &repo, "first", &store);
    let c1_pid = c1.id();
    // client 2 is another machine: its own BORG_BASE_DIR, so its own cache and cache lock
    let env2 = env_with(rc.env());
    std::fs::write(env2.path().join("f"), b"x").expect("write");
    let r = env2
        .hoard([
            "--lock-wait",
            "2",
            "create",
            &format!("{repo}::second"),
            "f",
        ])
        .expect_code(2);
    assert_one_line_error(&r.stderr, &repo_lock_error(&repo));
    // client 1's candidate is the only exclusive object (client 2 withdrew its own)
    let held = names(&store, "lock.exclusive");
    assert!(
        held.len() == 1 && is_candidate_of(&held[0], c1_pid),
        "{held:?}"
    );
    finish(c1, stdin);
    assert_eq!(env.hoard(["list", "--short", &repo]).ok().out(), "first\n");
    env.hoard(["check", &repo]).ok();
    assert!(names(&store, "lock.").is_empty(), "lock left behind");
}

/// One thread of the stress test: `rounds` times acquire, check and set the marker, hold for
/// 30 ms, check the marker is still ours, remove it, release. Returns the `lock.exclusive*`
/// names listed while holding, one list per round.
fn stress_worker(
    store: Arc<S3Bucket>,
    t: usize,
    rounds: usize,
    inside: &AtomicUsize,
) -> Vec<Vec<String>> {
    let mut seen = Vec::new();
    for i in 0..rounds {
        let mut lock = ObjLock::new(store.clone(), true, Some(40.0));
        lock.acquire()
            .unwrap_or_else(|e| panic!("thread {t} round {i}: {e}"));
        assert!(lock.got_exclusive_lock());
        let others = inside.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            others, 0,
            "thread {t} round {i}: another thread holds the lock"
        );
        assert_eq!(
            store.get("marker").expect("get marker"),
            None,
            "thread {t} round {i}: marker of another holder present"
        );
        let mine = format!("thread {t} round {i}");
        store.put("marker", mine.as_bytes()).expect("put marker");
        seen.push(names(&store, "lock.exclusive"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            store.get("marker").expect("get marker").as_deref(),
            Some(mine.as_bytes()),
            "thread {t} round {i}: marker changed while held"
        );
        store.delete("marker").expect("delete marker");
        inside.fetch_sub(1, Ordering::SeqCst);
        lock.release().expect("release");
    }
    seen
}

/// Runs 4 threads × 5 rounds on `stores` (one per thread); returns every list of exclusive
/// objects seen while holding. Asserts that no lock object is left.
fn stress(stores: Vec<Arc<S3Bucket>>) -> Vec<Vec<String>> {
    const ROUNDS: usize = 5;
    let inside = Arc::new(AtomicUsize::new(0));
    let check = stores[0].clone();
    let handles: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let inside = inside.clone();
            std::thread::spawn(move || stress_worker(s, t, ROUNDS, &inside))
        })
        .collect();
    let mut seen = Vec::new();
    for h in handles {
        match h.join() {
            Ok(v) => seen.extend(v),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    assert_eq!(seen.len(), 4 * ROUNDS);
    assert!(names(&check, "lock.").is_empty(), "{:?}", names(&check, ""));
    assert!(check.get("marker").expect("get").is_none());
    seen
}

/// Candidate names of one process stay distinct across threads (pid shared, nonce not):
/// every hold lists its own candidate, so a round with a candidate holder adds a name.
fn assert_distinct_candidates(seen: &[Vec<String>], holds: usize) {
    let pid = std::process::id();
    let mut all = BTreeSet::new();
    for round in seen {
        for n in round.iter().filter(|n| n.as_str() != "lock.exclusive") {
            assert!(is_candidate_of(n, pid), "odd exclusive object {n}");
            all.insert(n.clone());
        }
    }
    assert!(
        all.len() >= holds,
        "{} distinct candidate names for {holds} holds: {all:?}",
        all.len()
    );
}

/// 4 threads with their own store on one rclone prefix exclude each other (candidate mode).
#[test]
fn lock_mutual_exclusion_stress_on_rclone() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let stores: Vec<Arc<S3Bucket>> = (0..4).map(|_| Arc::new(rc.store("stress"))).collect();
    for s in &stores {
        assert!(!prime_mode(s, false));
    }
    let seen = stress(stores);
    for round in &seen {
        assert!(!round.is_empty(), "a holder did not list its own candidate");
        assert!(!round.iter().any(|n| n == "lock.exclusive"), "{round:?}");
    }
    assert_distinct_candidates(&seen, seen.len());
}

/// The same on SeaweedFS, where the probe selects `lock.exclusive` created conditionally.
#[test]
fn lock_mutual_exclusion_stress_on_seaweedfs_conditional() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let stores: Vec<Arc<S3Bucket>> = (0..4).map(|_| Arc::new(w.store("stress"))).collect();
    for s in &stores {
        assert!(prime_mode(s, false));
    }
    for round in stress(stores) {
        assert_eq!(round, vec!["lock.exclusive".to_string()]);
    }
}

/// Both lock forms at once on SeaweedFS: two stores forced to candidate objects, two using
/// the conditional `lock.exclusive`; they still exclude each other.
#[test]
fn lock_mutual_exclusion_stress_mixing_both_lock_forms() {
    let env0 = Env::new();
    let Some(w) = Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let stores: Vec<Arc<S3Bucket>> = (0..4).map(|_| Arc::new(w.store("mixed"))).collect();
    for (i, s) in stores.iter().enumerate() {
        let candidates = i % 2 == 0;
        assert_eq!(prime_mode(s, candidates), !candidates, "store {i}");
    }
    let seen = stress(stores);
    let conditional_holds = seen
        .iter()
        .filter(|r| r.iter().any(|n| n == "lock.exclusive"))
        .count();
    let pid = std::process::id();
    let candidate_holds = seen
        .iter()
        .filter(|r| r.iter().any(|n| is_candidate_of(n, pid)))
        .count();
    assert!(
        conditional_holds >= 1 && candidate_holds >= 1,
        "one lock form never held: {seen:?}"
    );
}

/// On rclone: a `list` (shared lock) while another client holds the exclusive lock fails
/// after --lock-wait, or waits and succeeds once the holder is done; an exclusive client waits
/// for a shared holder and leaves nothing behind when it gives up; `break-lock` removes
/// foreign candidate objects.
#[test]
fn shared_and_exclusive_locks_and_break_lock_on_rclone() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    let env = env_with(rc.env());
    let repo = rc.url("shared");
    env.hoard(["init", "-e", "none", &repo]).ok();
    let store = Arc::new(rc.store("shared"));
    // the other clients: another machine (own BORG_BASE_DIR, cache and cache lock)
    let env2 = env_with(rc.env());

    // exclusive holder vs. shared readers
    let (c1, stdin) = hold_exclusive(&env, &repo, "first", &store);
    let r = env2
        .hoard(["--lock-wait", "1", "list", "--short", &repo])
        .expect_code(2);
    assert_one_line_error(&r.stderr, &repo_lock_error(&repo));
    let waiting = env2
        .hoard_cmd()
        .args(["--lock-wait", "40", "list", "--short", &repo])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hoard list");
    std::thread::sleep(Duration::from_millis(1500));
    finish(c1, stdin);
    let out = waiting.wait_with_output().expect("wait for list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // it waited: it lists the archive committed by the holder
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\n");

    // a shared holder (this process) vs. an exclusive client and another reader
    let mut shared = ObjLock::new(store.clone(), false, Some(10.0));
    shared.acquire().expect("shared lock");
    let mine = names(&store, "lock.");
    assert!(
        mine.len() == 1 && mine[0].starts_with("lock.shared."),
        "{mine:?}"
    );
    std::fs::write(env.path().join("f"), b"x").expect("write");
    let r = env
        .hoard([
            "--lock-wait",
            "1",
            "create",
            &format!("{repo}::second"),
            "f",
        ])
        .expect_code(2);
    assert_one_line_error(&r.stderr, &repo_lock_error(&repo));
    assert_eq!(
        names(&store, "lock."),
        mine,
        "the exclusive client left objects"
    );
    assert_eq!(
        env2.hoard(["--lock-wait", "1", "list", "--short", &repo])
            .ok()
            .out(),
        "first\n"
    );
    shared.release().expect("release");
    env.hoard(["create", &format!("{repo}::second"), "f"]).ok();

    // foreign (other host, fresh: not stale) candidate and shared objects
    let body = format!(
        r#"{{"host":"elsewhere@1","pid":1,"time":{},"nonce":"0123456789abcdef"}}"#,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    );
    store
        .put(
            "lock.exclusive.elsewhere@1.1.0123456789abcdef",
            body.as_bytes(),
        )
        .expect("put");
    let r = env
        .hoard(["--lock-wait", "1", "list", &repo])
        .expect_code(2);
    assert_one_line_error(&r.stderr, &repo_lock_error(&repo));
    store
        .put(
            "lock.shared.elsewhere@1.1.fedcba9876543210",
            body.as_bytes(),
        )
        .expect("put");
    env.hoard(["break-lock", &repo]).ok();
    assert!(
        names(&store, "lock.").is_empty(),
        "{:?}",
        names(&store, "lock.")
    );
    assert!(rclone::files_below(&rc.folder("shared"))
        .iter()
        .all(|f| !f.starts_with("lock.")));
    assert_eq!(
        env.hoard(["list", "--short", &repo]).ok().out(),
        "first\nsecond\n"
    );
    env.hoard(["check", &repo]).ok();
}

/// The real borg holding the lock of the served folder (its `lock.exclusive/` directory and
/// `lock.roster`, seen through rclone once its directory cache is flushed) keeps hoard out,
/// and hoard leaves borg's lock files alone: borg completes and releases its lock.
#[test]
fn borg_lock_on_the_served_folder_keeps_hoard_out() {
    let env0 = Env::new();
    let Some(rc) = Rclone::start(&env0.path().join("rclone")) else {
        return;
    };
    if !borg_available() {
        return;
    }
    let env = env_with(rc.env());
    let repo = rc.url("borglock");
    env.hoard(["init", "-e", "none", &repo]).ok();
    let folder = rc.folder("borglock");
    let f = folder.to_str().expect("utf-8 path");
    let mut borg = env
        .borg_cmd()
        .args(["create", &format!("{f}::byborg"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start borg create");
    let mut stdin = borg.stdin.take().expect("stdin");
    stdin.write_all(b"data written by borg\n").expect("write");
    let t0 = Instant::now();
    while !(folder.join("lock.roster").is_file() && folder.join("lock.exclusive").is_dir()) {
        if let Ok(Some(st)) = borg.try_wait() {
            panic!("borg exited ({st}) before taking the lock");
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "borg never locked");
        std::thread::sleep(Duration::from_millis(50));
    }
    rc.forget_dir_cache("borglock");
    let env2 = env_with(rc.env());
    let r = env2
        .hoard(["--lock-wait", "1", "list", "--short", &repo])
        .expect_code(2);
    assert_one_line_error(&r.stderr, &repo_lock_error(&repo));
    assert!(
        folder.join("lock.roster").is_file(),
        "hoard removed borg's lock.roster"
    );
    drop(stdin);
    let out = borg.wait_with_output().expect("wait for borg");
    assert!(
        out.status.success(),
        "borg create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !folder.join("lock.exclusive").exists(),
        "borg left its lock"
    );
    rc.forget_dir_cache("borglock");
    assert_eq!(
        env2.hoard(["list", "--short", &repo]).ok().out(),
        "byborg\n"
    );
}
