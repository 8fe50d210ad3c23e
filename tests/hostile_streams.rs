//! Hostile msgpack streams (issue 15, items 8, 9 and 12): an item stream that never completes
//! a value, built from one chunk of nils referenced many times, and `hoard serve` requests that
//! never complete. Each is refused quickly, with one error line and bounded memory; `check`
//! reports the archive; a fresh server still serves a normal client.

mod common;

use common::{arg, assert_one_line_error, local_rsh, Env};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The library reads `BORG_BASE_DIR`/`BORG_PASSPHRASE` from the process environment: tests of
/// this binary that write archives through it take turns.
static LIBRARY_ENV: Mutex<()> = Mutex::new(());

/// Generous wall-clock bound for one refused command (start-up and 64 chunk reads included;
/// the decode work itself is well under a second).
const QUICK: Duration = Duration::from_secs(5);

/// Peak RSS a refused command may reach, in KiB (before the fix: 540 MB and more).
const SMALL_RSS_KIB: i64 = 100 * 1024;

/// Outcome of a command run with its own resource usage.
struct Measured {
    code: i32,
    stderr: String,
    elapsed: Duration,
    max_rss_kib: i64,
}

/// Most of a child's stderr the tests keep: its first `STDERR_KEEP` bytes and its last
/// `STDERR_KEEP` bytes (a child that writes hundreds of MiB must not grow this process).
const STDERR_KEEP: usize = 1024 * 1024;

/// Runs `cmd` (stdout/stderr captured, `stdin` written from a thread), reaping it with
/// `wait4` to get this child's own peak RSS (so `Child::wait` is never called: wait4 reaps it).
///
/// The child is started with `fork`, not `vfork`/`posix_spawn`: Linux records the peak RSS of
/// the address space an `exec` replaces, and after `vfork` that is this whole test process
/// (its peak, with the other tests' buffers), while after `fork` it is only this process's
/// current size, which the tests keep small.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command, stdin: Option<Vec<u8>>) -> Measured {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    // SAFETY: the closure does nothing; having one makes the standard library fork.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin");
        // The server stops reading at the error: a broken pipe here is expected.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || bounded_read(&mut out));
    let t_err = std::thread::spawn(move || bounded_read(&mut err));
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let elapsed = start.elapsed();
    let _ = t_out.join();
    let stderr = String::from_utf8_lossy(&t_err.join().expect("stderr")).into_owned();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Measured {
        code,
        stderr,
        elapsed,
        max_rss_kib: usage.ru_maxrss,
    }
}

/// Reads `r` to its end, keeping its first and last `STDERR_KEEP` bytes (with a marker line
/// between them when something was left out).
fn bounded_read(r: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut tail = std::collections::VecDeque::new();
    let mut skipped = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut piece = &buf[..n];
        if head.len() < STDERR_KEEP {
            let take = piece.len().min(STDERR_KEEP - head.len());
            head.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
        }
        tail.extend(piece.iter().copied());
        while tail.len() > STDERR_KEEP {
            let drop = tail.len() - STDERR_KEEP;
            tail.drain(..drop);
            skipped += drop as u64;
        }
    }
    if skipped > 0 {
        head.extend_from_slice(format!("\n[{skipped} bytes left out]\n").as_bytes());
    }
    head.extend(tail);
    head
}

/// `hoard ARGS` in `env`, measured.
fn hoard_measured(env: &Env, args: &[&str]) -> Measured {
    let mut cmd = env.hoard_cmd();
    cmd.args(args);
    run_measured(cmd, None)
}

/// Asserts a quick, small refusal with exit code `code` whose one error line contains `needle`.
fn assert_refused(m: &Measured, code: i32, needle: &str, what: &str) {
    assert_eq!(m.code, code, "{what}: exit code\n{}", m.stderr);
    assert_one_line_error(&m.stderr, needle);
    assert!(m.elapsed < QUICK, "{what}: took {:?}", m.elapsed);
    assert!(
        m.max_rss_kib < SMALL_RSS_KIB,
        "{what}: peak RSS {} KiB",
        m.max_rss_kib
    );
}

/// A new repokey repository with archive `evil`, whose item stream is `pieces[refs[0]]`,
/// `pieces[refs[1]]`, … (each piece stored once as a chunk, referenced as often as listed).
fn repo_with_item_stream(env: &Env, pieces: &[Vec<u8>], refs: &[usize]) -> PathBuf {
    use hoard::archive::meta::ArchiveMeta;
    use hoard::commands::common::{commit_manifest, open_with_manifest, Access};
    use hoard::location::Location;

    let repo = env.init_repo("repo", "repokey");
    let _turn = LIBRARY_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let loc = Location::parse(Some(arg(&repo)), None).expect("location");
    std::env::set_var("BORG_BASE_DIR", env.base());
    std::env::set_var("BORG_PASSPHRASE", "test-passphrase");
    let access = Access {
        exclusive: true,
        lock_wait: 1.0,
        lock: true,
    };
    let mut opened = open_with_manifest(
        &loc,
        &access,
        &[hoard::archive::Operation::Write],
        &|_, _| true,
    )
    .expect("open");
    let ids: Vec<[u8; 32]> = pieces
        .iter()
        .map(|p| opened.store.put(p).expect("put").0)
        .collect();
    let meta = ArchiveMeta {
        version: 1,
        name: b"evil".to_vec(),
        items: refs.iter().map(|i| ids[*i]).collect(),
        cmdline: vec![b"test".to_vec()],
        time: "2024-01-01T00:00:00.000000".into(),
        ..Default::default()
    };
    let (id, _) = meta.store(&mut opened.store).expect("store meta");
    opened.manifest.archives.insert(
        b"evil".to_vec(),
        hoard::archive::ArchiveRef {
            id,
            time: meta.time.clone(),
        },
    );
    commit_manifest(&mut opened).expect("commit");
    repo
}

/// The attack of the report: an array header, then 64 references to one 256 KiB chunk of nils.
fn nil_attack(env: &Env, header: &[u8]) -> PathBuf {
    repo_with_item_stream(env, &[header.to_vec(), vec![0xc0; 256 * 1024]], &{
        let mut refs = vec![0];
        refs.extend(std::iter::repeat_n(1, 64));
        refs
    })
}

#[test]
fn array_header_of_four_billion_is_refused_at_once_by_every_reader() {
    let env = Env::new();
    let repo = nil_attack(&env, &[0xdd, 0xff, 0xff, 0xff, 0xff]);
    let arch = format!("{}::evil", repo.display());
    let needle = "archive evil: item stream: msgpack array of length 4294967295 exceeds the limit \
                  33554432 (item-stream chunk 0, offset 0)";
    let m = hoard_measured(&env, &["list", &arch]);
    assert_refused(&m, 2, needle, "list");
    let dest = env.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let mut cmd = env.hoard_cmd();
    cmd.current_dir(&dest).args(["extract", &arch]);
    let m = run_measured(cmd, None);
    assert_refused(&m, 2, needle, "extract");
    assert_eq!(std::fs::read_dir(&dest).expect("dest").count(), 0);
}

#[test]
fn endless_array_of_nils_fails_fast_with_bounded_memory() {
    // A count under the array limit: the element bound stops it after 64 Ki + 1/8 of its bytes.
    let env = Env::new();
    let repo = nil_attack(&env, &[0xdd, 0x00, 0x3f, 0xff, 0xff]);
    let arch = format!("{}::evil", repo.display());
    let m = hoard_measured(&env, &["list", &arch]);
    assert_refused(
        &m,
        2,
        "archive evil: item stream: msgpack value holds 74899 elements in 74903 bytes, more than \
         the limit 74898 (item-stream chunk 1, offset 74897)",
        "list",
    );
    // The cache is rebuilt from the archives when it is missing: the same bound applies there.
    let src = env.path().join("file");
    std::fs::write(&src, b"data").expect("file");
    let cache_dir = env.base().join(".cache");
    let _ = std::fs::remove_dir_all(&cache_dir);
    let m = hoard_measured(
        &env,
        &["create", &format!("{}::new", repo.display()), arg(&src)],
    );
    assert_refused(
        &m,
        2,
        "archive evil: item stream: msgpack value holds 74899 elements in 74903 bytes",
        "create (cache sync)",
    );
}

#[test]
fn check_reports_an_item_stream_that_breaks_the_bounds() {
    let env = Env::new();
    let repo = nil_attack(&env, &[0xdd, 0x00, 0x3f, 0xff, 0xff]);
    let m = hoard_measured(&env, &["check", arg(&repo)]);
    assert_eq!(m.code, 1, "{}", m.stderr);
    assert!(m.elapsed < QUICK, "check took {:?}", m.elapsed);
    assert!(
        m.max_rss_kib < SMALL_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
    assert!(
        m.stderr.contains(
            "Unpacker crashed while unpacking item metadata, trying to resync... (msgpack value \
             holds 74899 elements in 74903 bytes, more than the limit 74898) [chunk: 000001_"
        ),
        "{}",
        m.stderr
    );
    assert!(!m.stderr.contains("no problems"), "{}", m.stderr);
}

#[test]
fn check_and_list_report_a_stream_that_ends_inside_an_item() {
    // An array of three with one element: within every bound, it just never completes.
    let env = Env::new();
    let repo = repo_with_item_stream(&env, &[vec![0x93, 0xc0]], &[0]);
    let m = hoard_measured(&env, &["check", arg(&repo)]);
    assert_eq!(m.code, 1, "{}", m.stderr);
    assert!(
        m.stderr
            .contains("item metadata stream ends inside an item [chunk: 000000_"),
        "{}",
        m.stderr
    );
    let m = hoard_measured(&env, &["list", &format!("{}::evil", repo.display())]);
    assert_refused(
        &m,
        2,
        "archive evil: item stream ends with 2 bytes of an incomplete item",
        "list",
    );
}

/// Appends arrays of 100 arrays of 100 … (`depth` levels) of nils until `out` holds `limit`
/// bytes, then cuts it there: a value that never completes.
fn nest(out: &mut Vec<u8>, depth: usize, limit: usize) {
    if depth == 0 {
        out.push(0xc0);
        return;
    }
    out.extend([0xdc, 0x00, 0x64]);
    for _ in 0..100 {
        if out.len() >= limit {
            break;
        }
        nest(out, depth - 1, limit);
    }
    out.truncate(limit);
}

#[test]
fn serve_refuses_endless_requests_and_serves_the_next_client() {
    /// A hostile request: its name, how to build it, what the refusal says.
    type Case = (&'static str, fn() -> Vec<u8>, &'static str);
    let mut env = Env::new();
    let repo = env.init_repo("repo", "repokey");

    // Each payload is built just before its run and dropped after it, so this process stays
    // small while the server's peak RSS is measured.
    let cases: [Case; 4] = [
        // 1. The report's attack: a request [1, 1, "put", …] whose argument is arrays of 100
        //    arrays of 100 … of nils, cut off at 16 MiB so it never completes: stopped by the
        //    element bound of a request.
        (
            "nested",
            || {
                let mut nested = vec![0x94, 0x01, 0x01, 0xa3, b'p', b'u', b't'];
                nest(&mut nested, 5, 16 * 1024 * 1024);
                nested
            },
            "more than the limit 10000",
        ),
        // 2. Nesting 16 MiB deep.
        (
            "deep",
            || vec![0x91; 16 * 1024 * 1024],
            "msgpack nesting too deep",
        ),
        // 3. A string header of 2 GiB, its bytes never sent.
        (
            "long",
            || vec![0xdb, 0x7f, 0xff, 0xff, 0xff, b'x'],
            "msgpack str of length 2147483647 exceeds the limit 20972544",
        ),
        // 4. A request of 24 MiB built of strings each within the string limit.
        (
            "big",
            || {
                let mut big = vec![0x94, 0x01, 0x01, 0xa3, b'p', b'u', b't', 0x92];
                for _ in 0..2 {
                    big.extend([0xdb, 0x00, 0xc0, 0x00, 0x00]);
                    big.extend(std::iter::repeat_n(b'a', 12 * 1024 * 1024));
                }
                big
            },
            "msgpack value larger than 21037015 bytes",
        ),
    ];
    for (what, payload, needle) in cases {
        let mut cmd = env.hoard_cmd();
        cmd.arg("serve");
        let m = run_measured(cmd, Some(payload()));
        assert_refused(&m, 2, "Local Exception: ", what);
        assert!(m.stderr.contains(needle), "{what}: {}", m.stderr);
    }

    // A fresh server serves a normal client.
    let rsh = local_rsh(&env);
    env.set("BORG_RSH", arg(&rsh));
    let url = format!("ssh://localhost{}", repo.display());
    let src = env.path().join("file");
    std::fs::write(&src, b"hello").expect("file");
    let hoard_bin = env!("CARGO_BIN_EXE_hoard");
    env.hoard([
        "--remote-path",
        hoard_bin,
        "create",
        &format!("{url}::a1"),
        arg(&src),
    ])
    .ok();
    let r = env.hoard([
        "--remote-path",
        hoard_bin,
        "list",
        "--short",
        &format!("{url}::a1"),
    ]);
    let r = r.ok();
    assert_eq!(r.out().trim_end(), arg(&src).trim_start_matches('/'));
}

#[test]
fn client_refuses_endless_replies() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = Env::new();
    // A "server" that answers with 16 MiB of nested arrays of nils that never complete: the
    // reply decoder's element bound stops it (it exits then: one that lingers holding the
    // pipes costs the client a separate 5-second grace period).
    let reply = env.path().join("reply.bin");
    let mut data = Vec::new();
    nest(&mut data, 5, 16 * 1024 * 1024);
    std::fs::write(&reply, &data).expect("reply");
    let fake = env.path().join("endless-ssh");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nexec cat '{}'\n", reply.display()),
    )
    .expect("fake");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    env.set("BORG_RSH", arg(&fake));
    let m = hoard_measured(&env, &["info", "ssh://localhost/srv/repo"]);
    assert_refused(
        &m,
        2,
        "Got unexpected RPC data format from server: msgpack value holds 200001 elements",
        "info",
    );
    // One whose first reply claims four billion elements.
    std::fs::write(&reply, [0xdd, 0xff, 0xff, 0xff, 0xff]).expect("reply");
    let m = hoard_measured(&env, &["info", "ssh://localhost/srv/repo"]);
    assert_refused(
        &m,
        2,
        "Got unexpected RPC data format from server: msgpack array of length 4294967295 exceeds \
         the limit 100000 (reply at offset 0): DD FF FF FF FF",
        "info",
    );
}

/// A "server" that writes 200 MiB to stderr without ending a line, then exits: the client
/// shows it in bounded pieces (it never holds the whole line) and fails with one clear error.
#[test]
fn client_bounds_an_endless_stderr_line() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = Env::new();
    let fake = env.path().join("chatty-ssh");
    std::fs::write(
        &fake,
        "#!/bin/sh\nhead -c 209715200 /dev/zero | tr '\\0' x >&2\nexit 1\n",
    )
    .expect("fake");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    env.set("BORG_RSH", arg(&fake));
    let m = hoard_measured(&env, &["info", "ssh://localhost/srv/repo"]);
    assert_eq!(m.code, 2, "exit code");
    assert!(
        m.stderr
            .ends_with("Connection closed by remote host. Is borg working on the server?\n"),
        "{:?}",
        &m.stderr[m.stderr.len().saturating_sub(300)..]
    );
    assert!(
        m.max_rss_kib < SMALL_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
}
