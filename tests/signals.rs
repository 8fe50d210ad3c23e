//! SIGINT, SIGTERM and SIGHUP during `create` (and a command without checkpoints) on local,
//! ssh (`borg serve` and `hoard serve`) and S3 repositories, as borg 1.4.5 handles them:
//! * the first SIGINT: a `NAME.checkpoint` archive with the data sent so far is committed,
//!   "Error: Got Ctrl-C / SIGINT.", exit 2 — also when SIGINT was ignored at start;
//! * SIGTERM: "Received SIGTERM", exit 143; SIGHUP: "Received SIGHUP.", exit 129; a second
//!   SIGINT: "Keyboard interrupt", exit 130 — no checkpoint, the transaction rolled back;
//! * always: no `lock.exclusive` / `lock.roster` left (repository and cache), `borg check`
//!   clean, and the next `create` runs without stale-lock cleanup.
//!
//! The backed-up tree is pseudo-random data compressed with `lzma,9`, slow enough that a
//! signal sent once `--list` reported two files stored always finds the backup running.

mod common;
#[path = "support/seaweed.rs"]
mod seaweed;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{borg14, Env, Run};

/// Files in the tree and bytes per file (lzma,9 of random data runs at a few MB/s).
const FILES: usize = 8;
const FILE_SIZE: usize = 3_000_000;

/// The tree to back up, `src/` in the environment; returns its relative name.
fn make_tree(env: &Env) -> &'static str {
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir src");
    for i in 0..FILES {
        std::fs::write(
            src.join(format!("f{i:02}")),
            common::tree::pseudo_random(FILE_SIZE, i as u64 + 1),
        )
        .expect("write");
    }
    "src"
}

/// How the signal is sent.
#[derive(Clone, Copy, PartialEq)]
enum Send {
    /// `kill(pid, sig)`.
    Process(i32),
    /// `kill(-pgid, sig)`: the whole process group, as a terminal's Ctrl-C (hoard and its ssh).
    Group(i32),
    /// Two SIGINTs to the process, 50 ms apart (more than borg's 20 ms debounce).
    TwoInts,
}

/// Runs `cmd` (a `hoard create --list`) in its own process group, optionally with SIGINT
/// ignored from the start; once two files are reported stored, sends the signal, and returns
/// how the program ended. Panics if the backup ends before the signal or hangs after it.
fn interrupt(mut cmd: Command, ignore_sigint: bool, send: Send) -> Run {
    interrupt_when(&mut cmd, ignore_sigint, send, &|err| {
        err.lines().filter(|l| l.starts_with("A src/")).count() >= 2
    })
}

/// [`interrupt`] with its own readiness test on the stderr seen so far.
fn interrupt_when(
    cmd: &mut Command,
    ignore_sigint: bool,
    send: Send,
    started: &dyn Fn(&str) -> bool,
) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setpgid and signal are async-signal-safe, called between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            if ignore_sigint {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start hoard");
    let pid = child.id() as i32;
    let mut err = child.stderr.take().expect("stderr");
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .expect("stderr buffer")
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    });
    let text = || seen.lock().expect("stderr buffer").clone();
    let t0 = Instant::now();
    while !started(&text()) {
        if let Ok(Some(st)) = child.try_wait() {
            let _ = reader.join();
            panic!(
                "the command ended ({st}) before it could be interrupted:\n{}",
                text()
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not ready to be interrupted after 60 s:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) of our own child (or its process group).
    unsafe {
        match send {
            Send::Process(sig) => libc::kill(pid, sig),
            Send::Group(sig) => libc::kill(-pid, sig),
            Send::TwoInts => {
                libc::kill(pid, libc::SIGINT);
                std::thread::sleep(Duration::from_millis(50));
                libc::kill(pid, libc::SIGINT)
            }
        };
    }
    let t1 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if t1.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            panic!("hoard did not stop within 60 s of the signal:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: text(),
    }
}

/// What a signal must lead to.
struct Expect {
    code: i32,
    message: &'static str,
    /// Whether a checkpoint archive must exist (Some(true)) or must not (Some(false)).
    checkpoint: Option<bool>,
}

fn expect_for(send: Send) -> Expect {
    match send {
        Send::Process(libc::SIGINT) | Send::Group(libc::SIGINT) => Expect {
            code: 2,
            message: "Error: Got Ctrl-C / SIGINT.",
            checkpoint: Some(true),
        },
        Send::Process(libc::SIGTERM) | Send::Group(libc::SIGTERM) => Expect {
            code: 143,
            message: "Received SIGTERM",
            checkpoint: Some(false),
        },
        Send::Process(libc::SIGHUP) | Send::Group(libc::SIGHUP) => Expect {
            code: 129,
            message: "Received SIGHUP.",
            checkpoint: Some(false),
        },
        // The checkpoint the first one asked for may be committed before the second one
        // arrives; either way the run ends as a keyboard interrupt.
        Send::TwoInts => Expect {
            code: 130,
            message: "Keyboard interrupt",
            checkpoint: None,
        },
        _ => unreachable!("no such test signal"),
    }
}

/// Asserts the ending of an interrupted `create` of archive `name`: exit code, message,
/// checkpoint archive (listed by hoard with its files), and no cache lock left.
fn assert_interrupted(env: &Env, repo: &str, name: &str, run: &Run, send: Send) {
    let want = expect_for(send);
    assert_eq!(run.code, want.code, "exit code (stderr:\n{})", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        lines.contains(&want.message),
        "no line {:?} in stderr:\n{}",
        want.message,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let archives = env
        .hoard(["list", "--consider-checkpoints", "--short", repo])
        .ok()
        .out();
    let checkpoint = format!("{name}.checkpoint");
    if want.checkpoint == Some(true) {
        assert!(
            archives.lines().any(|l| l == checkpoint),
            "no {checkpoint} in:\n{archives}"
        );
        let files = env
            .hoard([
                "list",
                "--consider-checkpoints",
                "--consider-part-files",
                "--short",
                &format!("{repo}::{checkpoint}"),
            ])
            .ok()
            .out();
        assert!(
            files.lines().any(|l| l.starts_with("src/f")),
            "the checkpoint holds no file data:\n{files}"
        );
    } else if want.checkpoint == Some(false) {
        assert!(
            !archives.lines().any(|l| l.starts_with(name)),
            "an archive was kept after {}:\n{archives}",
            want.message
        );
    }
    assert_no_lock_files(&env.base(), "the cache");
}

/// No `lock.exclusive` / `lock.roster` anywhere below `dir`.
fn assert_no_lock_files(dir: &Path, what: &str) {
    fn walk(d: &Path, found: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let n = e.file_name().to_string_lossy().into_owned();
            if n == "lock.exclusive" || n == "lock.roster" {
                found.push(p.clone());
            }
            if p.is_dir() && !p.is_symlink() {
                walk(&p, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    assert!(found.is_empty(), "{what} still has lock files: {found:?}");
}

/// The next backup into `repo` runs without any stale-lock cleanup and succeeds.
fn assert_next_create_clean(env: &Env, repo: &str, rel: &str) {
    let r = env
        .hoard(["create", "-C", "lz4", &format!("{repo}::next"), rel])
        .ok();
    assert!(
        !r.stderr.to_lowercase().contains("lock"),
        "the next create met a lock:\n{}",
        r.stderr
    );
}

/// `borg check` (1.4.5 when present, else 1.2) of a repository folder.
fn borg_check(env: &Env, dir: &Path) {
    let program = borg14().map(|p| p.to_string_lossy().into_owned());
    let program = match program {
        Some(p) => p,
        None if common::borg_available() => "borg".to_string(),
        None => return,
    };
    let out = env
        .command_for(&program)
        .args(["check", dir.to_str().expect("utf-8 path")])
        .output()
        .expect("run borg check");
    assert!(
        out.status.success(),
        "borg check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // borg lists the checkpoint as hoard does
    let out = env
        .command_for(&program)
        .args([
            "list",
            "--consider-checkpoints",
            "--short",
            dir.to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("run borg list");
    assert!(out.status.success());
}

fn create_cmd(env: &Env, archive: &str, rel: &str, workers: &str) -> Command {
    let mut c = env.hoard_cmd();
    c.args([
        "create",
        "--info",
        "--list",
        "-C",
        "lzma,9",
        "--workers",
        workers,
        archive,
        rel,
    ]);
    c
}

/// One local round: init, interrupt a create with `send`, check everything.
fn local_round(send: Send, ignore_sigint: bool, workers: &str) {
    let env = Env::new();
    let rel = make_tree(&env);
    let repo_dir = env.path().join("repo");
    let repo = repo_dir.to_string_lossy().into_owned();
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    let run = interrupt(
        create_cmd(&env, &format!("{repo}::a"), rel, workers),
        ignore_sigint,
        send,
    );
    assert_interrupted(&env, &repo, "a", &run, send);
    assert_no_lock_files(&repo_dir, "the repository");
    borg_check(&env, &repo_dir);
    assert_next_create_clean(&env, &repo, rel);
}

#[test]
fn sigint_checkpoints_a_local_create() {
    local_round(Send::Process(libc::SIGINT), false, "2");
}

#[test]
fn sigint_checkpoints_a_sequential_local_create() {
    local_round(Send::Process(libc::SIGINT), false, "1");
}

#[test]
fn sigint_ignored_at_start_still_checkpoints() {
    local_round(Send::Process(libc::SIGINT), true, "2");
}

#[test]
fn sigterm_rolls_back_a_local_create() {
    local_round(Send::Process(libc::SIGTERM), false, "2");
}

#[test]
fn sighup_rolls_back_a_local_create() {
    local_round(Send::Process(libc::SIGHUP), false, "1");
}

#[test]
fn second_sigint_is_a_keyboard_interrupt() {
    local_round(Send::TwoInts, false, "2");
}

/// A command without checkpoints (`check --verify-data`) ended by SIGTERM: message, exit
/// code, locks released.
#[test]
fn sigterm_ends_check_and_releases_its_lock() {
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    for i in 0..12 {
        std::fs::write(
            src.join(format!("f{i}")),
            common::tree::pseudo_random(4_000_000, i + 50),
        )
        .expect("write");
    }
    let repo_dir = env.path().join("repo");
    let repo = repo_dir.to_string_lossy().into_owned();
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    env.hoard(["create", "-C", "lz4", &format!("{repo}::a"), "src"])
        .ok();
    let mut tries = 0;
    let run = loop {
        let mut c = env.hoard_cmd();
        c.args(["check", "--verify-data", &repo]);
        let lock = repo_dir.join("lock.exclusive");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            interrupt_when(&mut c, false, Send::Process(libc::SIGTERM), &|_| {
                lock.exists()
            })
        }));
        match run {
            Ok(r) => break r,
            // the check may finish before the lock was seen; try again a few times
            Err(_) if tries < 3 => tries += 1,
            Err(e) => std::panic::resume_unwind(e),
        }
    };
    assert_eq!(run.code, 143, "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l == "Received SIGTERM"),
        "{}",
        run.stderr
    );
    assert_no_lock_files(&repo_dir, "the repository");
    env.hoard(["check", &repo]).ok();
}

// ---- ssh ----

fn ssh_round(remote: &Path, send: Send) {
    let (env, sshd) = sshd::client_env(remote, &[]);
    let rel = make_tree(&env);
    let repo_dir = env.path().join("repo");
    let repo = sshd.url(&repo_dir);
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    let run = interrupt(
        create_cmd(&env, &format!("{repo}::a"), rel, "2"),
        false,
        send,
    );
    assert_interrupted(&env, &repo, "a", &run, send);
    // the server closed the repository when the client went
    let t0 = Instant::now();
    while repo_dir.join("lock.exclusive").exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_no_lock_files(&repo_dir, "the repository");
    borg_check(&env, &repo_dir);
    assert_next_create_clean(&env, &repo, rel);
}

fn hoard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hoard"))
}

#[test]
fn ctrl_c_checkpoints_a_create_against_borg_serve() {
    let Some(borg) = borg14() else { return };
    ssh_round(&borg, Send::Group(libc::SIGINT));
}

#[test]
fn sigterm_rolls_back_a_create_against_borg_serve() {
    let Some(borg) = borg14() else { return };
    ssh_round(&borg, Send::Process(libc::SIGTERM));
}

#[test]
fn ctrl_c_checkpoints_a_create_against_hoard_serve() {
    ssh_round(&hoard_bin(), Send::Group(libc::SIGINT));
}

#[test]
fn sigterm_rolls_back_a_create_against_hoard_serve() {
    ssh_round(&hoard_bin(), Send::Process(libc::SIGTERM));
}

// ---- S3 ----

/// Copies every object under `prefix` into `dest`.
fn download(w: &seaweed::Weed, prefix: &str, dest: &Path) {
    let store = w.store(prefix);
    for (name, _) in store.list("").expect("list") {
        let data = store.get(&name).expect("get").expect("object vanished");
        let p = dest.join(&name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    }
}

fn s3_round(send: Send) {
    let env0 = Env::new();
    let Some(w) = seaweed::Weed::start(&env0.path().join("weed")) else {
        return;
    };
    let mut env = Env::new();
    for (k, v) in w.env() {
        env.set(k, v);
    }
    let rel = make_tree(&env);
    let repo = w.url("sig/repo");
    env.hoard(["init", "-e", "repokey", &repo]).ok();
    let store = w.store("sig/repo");
    let run = interrupt(
        create_cmd(&env, &format!("{repo}::a"), rel, "2"),
        false,
        send,
    );
    assert_interrupted(&env, &repo, "a", &run, send);
    let locks = store.list("lock.").expect("list locks");
    assert!(locks.is_empty(), "lock objects left: {locks:?}");
    let copy = env.path().join("copy");
    download(&w, "sig/repo", &copy);
    borg_check(&env, &copy);
    assert_next_create_clean(&env, &repo, rel);
}

#[test]
fn sigint_checkpoints_an_s3_create() {
    s3_round(Send::Process(libc::SIGINT));
}

#[test]
fn sigterm_rolls_back_an_s3_create() {
    s3_round(Send::Process(libc::SIGTERM));
}
