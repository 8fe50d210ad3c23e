//! `hoard serve` against hostile and vanishing clients.
//!
//! Restrictions (`--restrict-to-path`, `--restrict-to-repository`) against prefix tricks,
//! `..`, symbolic links pointing in and out, dangling links, link loops and long runs of links;
//! requests before `open`, unknown methods, wrong argument types and oversized lengths — each
//! refused with borg's error, nothing created or opened outside, and the server (or a new one,
//! as ssh would start) still serving. Driven directly over stdin/stdout with hand-built
//! requests, through the real clients (hoard, borg 1.4) over a `BORG_RSH` script and over a
//! private sshd. And the lock of a server whose client vanishes (killed client, SIGTERM,
//! SIGHUP, SIGINT to the server) is released at once.

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{borg14, borg_available, Env};
use hoard::msgpack::{Limits, StreamDecoder, Value};
use hoard::rpc as protocol;

/// The hoard binary for both ends (`HOARD_SERVE_TEST_BIN` overrides it, e.g. to show that a
/// test fails against an older build).
fn hoard_bin() -> PathBuf {
    std::env::var_os("HOARD_SERVE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hoard")))
}

/// How long a server may take to answer or to exit before the test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `serve` process driven over its stdin/stdout.
struct Serve {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<Value>,
    stderr: PathBuf,
    next_id: u64,
}

impl Serve {
    /// Starts `program serve ARGS` in `env`; its stderr goes to a file.
    fn start_with(env: &Env, program: &Path, args: &[&str]) -> Serve {
        let stderr = env.path().join(format!(
            "serve-{}.err",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut c = env.hoard_cmd();
        let mut cmd = Command::new(program);
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(c.get_current_dir().unwrap_or(env.path()));
        c = cmd;
        c.arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = c.spawn().expect("start serve");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut dec = StreamDecoder::new(Limits::RPC_CLIENT);
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                dec.feed(&buf[..n]);
                while let Ok(Some(v)) = dec.next_value() {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Serve {
            child,
            stdin,
            replies,
            stderr,
            next_id: 1,
        }
    }

    /// Starts `hoard serve ARGS`.
    fn start(env: &Env, args: &[&str]) -> Serve {
        Serve::start_with(env, &hoard_bin(), args)
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write request");
        stdin.flush().expect("flush");
    }

    fn reply(&mut self) -> Value {
        match self.replies.recv_timeout(PATIENCE) {
            Ok(v) => v,
            Err(e) => panic!("no reply ({e:?}); server stderr:\n{}", self.stderr_text()),
        }
    }

    /// A dict-format call; returns the reply.
    fn call(&mut self, method: &str, args: &[(&str, Value)]) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&protocol::encode_request(true, id, method, args));
        let r = self.reply();
        assert_eq!(r.get("i"), Some(&Value::int(id)), "{r:?}");
        r
    }

    /// `open` of `path` (bytes as sent), creating it when `create`.
    fn open(&mut self, path: &[u8], create: bool) -> Value {
        self.call(
            "open",
            &[
                ("path", Value::raw(path)),
                ("create", Value::Bool(create)),
                ("lock_wait", Value::int(1)),
                ("exclusive", Value::Bool(true)),
                ("make_parent_dirs", Value::Bool(true)),
            ],
        )
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the exit (failing after [`PATIENCE`]); returns the code (-1 for a signal).
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not exit; stderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin (the client goes away) and waits for the exit.
    fn finish(mut self) -> (i32, String) {
        self.stdin = None;
        let code = self.wait();
        (code, self.stderr_text())
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn signal(&self, sig: i32) {
        common::signal(&self.child, sig);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn class(r: &Value) -> String {
    r.get("exception_class")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn short(r: &Value) -> Vec<String> {
    r.get("exception_short")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Asserts `r` is borg's `PathNotAllowed` for `shown`.
fn assert_not_allowed(r: &Value, shown: &Path) {
    let text = shown.to_string_lossy().into_owned();
    assert_eq!(class(r), "PathNotAllowed", "{r:?}");
    assert_eq!(
        short(r),
        [format!("Repository path not allowed: {text}")],
        "{r:?}"
    );
    assert_eq!(
        r.get("exception_args"),
        Some(&Value::Array(vec![Value::raw(&text)])),
        "{r:?}"
    );
}

/// Asserts `r` is a successful `open` (the repository id).
fn assert_opened(r: &Value) {
    assert_eq!(
        r.get("r").and_then(Value::as_bytes).map(<[u8]>::len),
        Some(32),
        "{r:?}"
    );
}

/// Every path below `dir` (sorted), for "nothing appeared" assertions.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&p, out);
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// A playground: `allowed/` (with links `self` → allowed, `s` → `.`, `in` → `sub`,
/// `out` → ../outside, `dangling_out` → outside/none, `dangling_in` → allowed/new,
/// `loop1` ⇄ `loop2`), an empty `outside/` and an empty `allowed2/`, all under the
/// canonical temporary root.
struct Tree {
    root: PathBuf,
    allowed: PathBuf,
    outside: PathBuf,
    allowed2: PathBuf,
}

impl Tree {
    fn new(env: &Env) -> Tree {
        let root = std::fs::canonicalize(env.path()).unwrap().join("t");
        let allowed = root.join("allowed");
        let outside = root.join("outside");
        let allowed2 = root.join("allowed2");
        for d in [&allowed, &outside, &allowed2, &allowed.join("sub")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, allowed.join(name)).unwrap();
        };
        link(&allowed, "self");
        link(Path::new("."), "s");
        link(Path::new("sub"), "in");
        link(Path::new("../outside"), "out");
        link(&outside.join("none"), "dangling_out");
        link(&allowed.join("new"), "dangling_in");
        link(Path::new("loop2"), "loop1");
        link(Path::new("loop1"), "loop2");
        Tree {
            root,
            allowed,
            outside,
            allowed2,
        }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.allowed.join(rel)
    }

    /// `allowed/self/../allowed/…` `n` times, then `tail`: the hop-limit attack.
    fn hops(&self, n: usize, tail: &str) -> String {
        let mut p = self.allowed.to_string_lossy().into_owned();
        for _ in 0..n {
            p.push_str("/self/../allowed");
        }
        format!("{p}/{tail}")
    }

    /// `allowed/s/s/…/s` `n` times, then `tail` (no `..`: survives a client's normpath).
    fn same_link(&self, n: usize, tail: &str) -> String {
        format!("{}{}/{tail}", self.allowed.display(), "/s".repeat(n))
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(listing(&self.outside), Vec::<PathBuf>::new());
        assert_eq!(listing(&self.allowed2), Vec::<PathBuf>::new());
        assert!(!self.root.join("outside/none").exists());
    }
}

#[test]
fn restrict_to_path_refuses_every_way_out() {
    let env = Env::new();
    let t = Tree::new(&env);
    let mut s = Serve::start(&env, &["--restrict-to-path", &t.allowed.to_string_lossy()]);
    let refusals: Vec<(String, PathBuf)> = vec![
        // A prefix of the name is not a parent directory.
        (
            t.allowed2.join("r").display().to_string(),
            t.allowed2.join("r"),
        ),
        (t.allowed2.display().to_string(), t.allowed2.clone()),
        (
            format!("{}/../outside/r", t.allowed.display()),
            t.outside.join("r"),
        ),
        (
            format!("{}/../allowed2/r", t.allowed.display()),
            t.allowed2.join("r"),
        ),
        (t.at("out/r").display().to_string(), t.outside.join("r")),
        (t.at("out").display().to_string(), t.outside.clone()),
        (
            t.at("dangling_out").display().to_string(),
            t.outside.join("none"),
        ),
        (
            t.at("dangling_out/r").display().to_string(),
            t.outside.join("none/r"),
        ),
        // The hop-limit attack of issue 15 item 6, with `..` and without.
        (t.hops(40, "out/r"), t.outside.join("r")),
        (t.hops(45, "out/r"), t.outside.join("r")),
        (t.same_link(45, "out/r"), t.outside.join("r")),
        (t.hops(41, "dangling_out/r"), t.outside.join("none/r")),
    ];
    for (sent, shown) in &refusals {
        for create in [true, false] {
            let r = s.open(sent.as_bytes(), create);
            assert_not_allowed(&r, shown);
        }
    }
    // A loop cannot be resolved: refused (borg reports the kernel's ELOOP instead).
    let lp = t.at("loop1/r");
    assert_not_allowed(&s.open(lp.to_string_lossy().as_bytes(), true), &lp);
    t.assert_outside_untouched();
    assert!(s.alive(), "{}", s.stderr_text());

    // Links that stay inside are fine, and the repository is made where they point.
    assert_opened(&s.open(t.at("in/r1").to_string_lossy().as_bytes(), true));
    assert!(t.at("sub/r1/config").is_file());
    assert_opened(&s.open(t.hops(45, "in/r2").as_bytes(), true));
    assert!(t.at("sub/r2/config").is_file());
    assert_opened(&s.open(t.same_link(45, "r3").as_bytes(), true));
    assert!(t.at("r3/config").is_file());
    // A dangling link into the allowed tree resolves to its target there (as in borg).
    assert_opened(&s.open(t.at("dangling_in").to_string_lossy().as_bytes(), true));
    assert!(t.at("new/config").is_file());
    assert!(std::fs::symlink_metadata(t.at("dangling_in"))
        .unwrap()
        .file_type()
        .is_symlink());
    t.assert_outside_untouched();
    let (code, err) = s.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn restrict_to_repository_is_exact() {
    let env = Env::new();
    let t = Tree::new(&env);
    let only = t.at("only");
    std::os::unix::fs::symlink("only", t.at("only_link")).unwrap();
    let mut s = Serve::start(&env, &["--restrict-to-repository", &only.to_string_lossy()]);
    for p in [
        t.at("only/sub"),
        t.at("onl"),
        t.at("only2"),
        t.allowed.clone(),
    ] {
        assert_not_allowed(&s.open(p.to_string_lossy().as_bytes(), true), &p);
    }
    assert_not_allowed(
        &s.open(t.hops(45, "out/r").as_bytes(), true),
        &t.outside.join("r"),
    );
    assert_eq!(
        listing(&t.allowed)
            .iter()
            .filter(|p| p.starts_with(&only) || p.ends_with("only2") || p.ends_with("onl"))
            .count(),
        0
    );
    assert_opened(&s.open(format!("{}/", only.display()).as_bytes(), true));
    assert_opened(&s.open(t.at("only_link").to_string_lossy().as_bytes(), false));
    assert_opened(&s.open(t.same_link(45, "only").as_bytes(), false));
    t.assert_outside_untouched();
    assert_eq!(s.finish().0, 0);
}

#[test]
fn hostile_requests_get_borgs_errors_and_the_server_goes_on() {
    let env = Env::new();
    let t = Tree::new(&env);
    let allowed = t.allowed.to_string_lossy().into_owned();
    let mut s = Serve::start(&env, &["--restrict-to-path", &allowed]);
    let id = Value::raw([7u8; 32]);
    // Before `open`: the repository methods are attribute errors on None, as in borg.
    for (m, args) in [
        ("get", vec![("id", id.clone())]),
        ("put", vec![("id", id.clone()), ("data", Value::raw(b"x"))]),
        ("commit", vec![]),
        ("__len__", vec![]),
        ("list", vec![("limit", Value::int(10))]),
        ("break_lock", vec![]),
        ("destroy", vec![]),
    ] {
        let r = s.call(m, &args);
        assert_eq!(class(&r), "AttributeError", "{m}: {r:?}");
        assert_eq!(
            short(&r),
            [format!(
                "AttributeError: 'NoneType' object has no attribute '{m}'\n"
            )]
        );
    }
    // Unknown methods, including names of Python internals.
    for m in ["bogus", "__init__", "serve", "_resolve_path", ""] {
        let r = s.call(m, &[]);
        assert_eq!(class(&r), "InvalidRPCMethod", "{m}: {r:?}");
        assert_eq!(short(&r), [format!("RPC method {m} is not valid.")]);
    }
    // Wrong argument types for open: refused, nothing made.
    for bad in [
        Value::int(5),
        Value::Nil,
        Value::Array(vec![Value::raw(allowed.as_bytes())]),
        Value::Map(vec![(Value::raw("p"), Value::raw("x"))]),
    ] {
        let r = s.call(
            "open",
            &[("path", bad.clone()), ("create", Value::Bool(true))],
        );
        assert!(!class(&r).is_empty(), "{bad:?} accepted: {r:?}");
    }
    // A NUL byte cannot be resolved (or opened): refused under a restriction.
    let nul = format!("{allowed}/a\0b");
    let r = s.open(nul.as_bytes(), true);
    assert_eq!(class(&r), "PathNotAllowed", "{r:?}");
    // A path longer than the kernel's PATH_MAX is not resolved: refused.
    let long = format!("{allowed}/{}", "x/".repeat(3000));
    assert_eq!(class(&s.open(long.as_bytes(), true)), "PathNotAllowed");
    t.assert_outside_untouched();
    assert_eq!(
        listing(&t.allowed)
            .iter()
            .filter(|p| p.ends_with("x"))
            .count(),
        0
    );

    // Now a real repository, then wrong types for its methods.
    assert_opened(&s.open(t.at("repo").to_string_lossy().as_bytes(), true));
    for (m, args) in [
        ("get", vec![("id", Value::raw(b"short"))]),
        ("get", vec![("id", Value::int(1))]),
        ("put", vec![("id", id.clone()), ("data", Value::int(1))]),
        ("put", vec![("id", Value::Nil), ("data", Value::raw(b"x"))]),
        ("delete", vec![("id", Value::Array(vec![]))]),
        ("list", vec![("limit", Value::raw(b"ten"))]),
        ("list", vec![("limit", Value::int(-1))]),
        ("scan", vec![("marker", Value::raw(b"x"))]),
        (
            "commit_nonce_reservation",
            vec![("next_unreserved", Value::raw(b"x"))],
        ),
    ] {
        let r = s.call(m, &args);
        assert!(!class(&r).is_empty(), "{m} {args:?} accepted: {r:?}");
    }
    // The session is still good: the repository is empty and usable.
    let r = s.call("__len__", &[]);
    assert_eq!(r.get("r"), Some(&Value::int(0)), "{r:?}");
    assert_eq!(
        s.call("put", &[("id", id.clone()), ("data", Value::raw(b"x"))])
            .get("r"),
        Some(&Value::Nil)
    );
    assert_eq!(s.call("commit", &[]).get("r"), Some(&Value::Nil));
    assert_eq!(
        s.call("get", &[("id", id.clone())]).get("r"),
        Some(&Value::raw(b"x"))
    );
    let (code, err) = s.finish();
    assert_eq!(code, 0, "{err}");
    assert!(!t.at("repo/lock.exclusive").exists());
    assert!(!t.at("repo/lock.roster").exists());
    t.assert_outside_untouched();
}

/// A request that is not a request ends the session with one error line; the next server
/// (as ssh would start one) serves normally.
#[test]
fn malformed_and_oversized_messages_end_the_session_cleanly() {
    let env = Env::new();
    let t = Tree::new(&env);
    let allowed = t.allowed.to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // str32 / bin32 / array32 / map32 headers announcing ~4 GiB or 4 G entries.
        ("str32", vec![0xdb, 0xff, 0xff, 0xff, 0xf0]),
        ("bin32", vec![0xc6, 0xff, 0xff, 0xff, 0xf0]),
        ("array32", vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        ("map32", vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
        // A dict without "m", and a plain integer: borg's UnexpectedRPCDataFormatFromClient.
        ("no method", {
            let mut b = Vec::new();
            hoard::msgpack::encode(&Value::Map(vec![(Value::raw("i"), Value::int(1))]), &mut b);
            b
        }),
        ("integer", vec![0x05]),
    ];
    for (name, bytes) in cases {
        let mut s = Serve::start(&env, &["--restrict-to-path", &allowed]);
        assert_opened(&s.open(t.at(name).to_string_lossy().as_bytes(), true));
        s.send(&bytes);
        let start = Instant::now();
        // Either the server refuses and exits, or it waits for the rest of a value it will
        // never accept; then the client going away must end it.
        std::thread::sleep(Duration::from_millis(300));
        let code = if s.alive() {
            s.stdin = None;
            s.wait()
        } else {
            s.wait()
        };
        let err = s.stderr_text();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}: took {:?}",
            start.elapsed()
        );
        assert!(code == 0 || code == 2, "{name}: exit {code}\n{err}");
        assert!(lines.len() <= 1, "{name}: more than one line:\n{err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        // The lock is released whichever way the session ended.
        assert!(!t.at(name).join("lock.exclusive").exists(), "{name}");
        // The next server works.
        let mut next = Serve::start(&env, &["--restrict-to-path", &allowed]);
        assert_opened(&next.open(t.at(name).to_string_lossy().as_bytes(), false));
        assert_eq!(next.finish().0, 0);
    }
    t.assert_outside_untouched();
}

/// borg 1.4's `serve` answers the same refusals with the same class, arguments and message.
#[test]
fn refusals_match_borg14_serve() {
    let Some(borg14) = borg14() else { return };
    let env = Env::new();
    let t = Tree::new(&env);
    let allowed = t.allowed.to_string_lossy().into_owned();
    let args = ["--restrict-to-path", allowed.as_str()];
    let mut ours = Serve::start(&env, &args);
    let mut theirs = Serve::start_with(&env, &borg14, &args);
    let paths = [
        t.allowed2.join("r").display().to_string(),
        format!("{allowed}/../outside/r"),
        t.at("out/r").display().to_string(),
        t.at("dangling_out/r").display().to_string(),
        t.hops(45, "out/r"),
        t.same_link(45, "out/r"),
    ];
    for p in &paths {
        let a = ours.open(p.as_bytes(), true);
        let b = theirs.open(p.as_bytes(), true);
        for key in ["exception_class", "exception_args", "exception_short"] {
            assert_eq!(a.get(key), b.get(key), "{key} for {p}");
        }
    }
    for (m, args) in [
        ("get", vec![("id", Value::raw([1u8; 32]))]),
        ("bogus", vec![]),
    ] {
        let a = ours.call(m, &args);
        let b = theirs.call(m, &args);
        for key in ["exception_class", "exception_short"] {
            assert_eq!(a.get(key), b.get(key), "{key} for {m}");
        }
    }
    t.assert_outside_untouched();
    assert_eq!(ours.finish().0, 0);
    assert_eq!(theirs.finish().0, 0);
}

/// A `BORG_RSH` program that starts `hoard serve ARGS` locally (ignoring the host and the
/// client's command) and writes the server's pid to `pidfile`.
fn rsh_script(env: &Env, name: &str, serve_args: &str) -> (PathBuf, PathBuf) {
    let script = env.path().join(name);
    let pidfile = env.path().join(format!("{name}.pid"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec '{}' serve {serve_args}\n",
            pidfile.display(),
            hoard_bin().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, pidfile)
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

#[test]
fn real_clients_are_refused_outside() {
    let mut env = Env::new();
    let t = Tree::new(&env);
    let (script, _) = rsh_script(
        &env,
        "rsh",
        &format!("--restrict-to-path '{}'", t.allowed.display()),
    );
    env.set("BORG_RSH", &script.to_string_lossy());
    let url = |p: &str| format!("ssh://host{p}");
    let cases = [
        (
            t.allowed2.join("r").display().to_string(),
            t.allowed2.join("r"),
        ),
        (t.at("out/r").display().to_string(), t.outside.join("r")),
        (
            t.at("dangling_out").display().to_string(),
            t.outside.join("none"),
        ),
        (t.same_link(45, "out/r"), t.outside.join("r")),
    ];
    let borg14 = borg14();
    for (p, shown) in &cases {
        let r = env.hoard(["init", "-e", "none", &url(p)]).expect_code(2);
        assert_eq!(
            last_line(&r.stderr),
            format!("Repository path not allowed: {}", shown.display()),
            "{p}"
        );
        if let Some(b) = &borg14 {
            let mut c = env.command_for(&b.to_string_lossy());
            let out = c.args(["init", "-e", "none", &url(p)]).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "borg 1.4 init {p}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                last_line(&err),
                format!("Repository path not allowed: {}", shown.display()),
                "{p}"
            );
        }
    }
    t.assert_outside_untouched();
    // Inside, through links, both clients work against hoard serve.
    let inside = t.same_link(45, "in/r");
    env.hoard(["init", "-e", "none", &url(&inside)]).ok();
    assert!(t.at("sub/r/config").is_file());
    if let Some(b) = &borg14 {
        let mut c = env.command_for(&b.to_string_lossy());
        let out = c.args(["info", &url(&inside)]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    t.assert_outside_untouched();
}

// ---- a vanishing client: the lock is released ----

/// Files totalling `n` × 8 MB of incompressible data under `dir`.
fn big_tree(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("f{i}")),
            common::tree::pseudo_random(8_000_000, i + 11),
        )
        .unwrap();
    }
}

fn segment_bytes(repo: &Path) -> u64 {
    listing(&repo.join("data"))
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn locked(repo: &Path) -> bool {
    repo.join("lock.exclusive").exists() || repo.join("lock.roster").exists()
}

/// Waits until the create writing to `repo` has added 2 MB and holds the lock.
fn wait_mid_transfer(child: &mut Child, repo: &Path, committed: u64) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("create finished ({st}) before it could be interrupted");
        }
        if locked(repo) && segment_bytes(repo) > committed + 2_000_000 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("create did not start writing");
}

/// Asserts the lock of `repo` disappears within a few seconds.
fn assert_unlocks(repo: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while locked(repo) {
        assert!(
            Instant::now() < deadline,
            "{what}: the lock of {} is still there after 5 s",
            repo.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_gone(pid: i32) -> bool {
    // A zombie counts as gone: it holds nothing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .map(|state| state == 'Z')
            .unwrap_or(true),
    }
}

/// A client create over `BORG_RSH`, interrupted mid-transfer by `interrupt(client, server
/// pid)`: the lock is released within seconds, the next create needs no break-lock, and
/// borg finds the repository consistent with only the committed archives.
fn interrupted_remote_create(interrupt: &dyn Fn(&mut Child, i32), what: &str) {
    let mut env = Env::new();
    let (script, pidfile) = rsh_script(&env, "rsh", "");
    env.set("BORG_RSH", &script.to_string_lossy());
    let repo = env.path().join("repo");
    let url = format!("ssh://host{}", repo.display());
    env.hoard(["init", "-e", "none", &url]).ok();
    let small = env.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("a"), "first\n").unwrap();
    env.hoard(["create", &format!("{url}::first"), &small.to_string_lossy()])
        .ok();
    let committed = segment_bytes(&repo);
    let big = env.path().join("big");
    big_tree(&big, 12);
    let _ = std::fs::remove_file(&pidfile);
    let mut c = env.hoard_cmd();
    c.args([
        "create",
        "--compression",
        "none",
        &format!("{url}::second"),
        &big.to_string_lossy(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut client = c.spawn().unwrap();
    wait_mid_transfer(&mut client, &repo, committed);
    let server: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    interrupt(&mut client, server);
    assert_unlocks(&repo, what);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pid_gone(server) {
        assert!(
            Instant::now() < deadline,
            "{what}: the server is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = client.wait();
    // No break-lock: the next create simply works (the killed client's own cache lock is
    // stale and removed, as borg does).
    env.hoard(["create", &format!("{url}::third"), &small.to_string_lossy()])
        .ok();
    assert_eq!(
        env.hoard(["list", "--short", &url]).ok().out(),
        "first\nthird\n",
        "{what}"
    );
    if borg_available() {
        env.borg(["check", &repo.to_string_lossy()]).ok();
    }
}

#[test]
fn killed_client_releases_the_server_lock() {
    interrupted_remote_create(
        &|client, _| {
            client.kill().unwrap();
        },
        "client killed",
    );
}

#[test]
fn sigterm_to_the_server_releases_its_lock() {
    interrupted_remote_create(
        &|_, server| unsafe {
            libc::kill(server, libc::SIGTERM);
        },
        "SIGTERM to serve",
    );
}

/// The server itself on SIGTERM, SIGHUP and SIGINT: borg's message and exit code, the
/// transaction dropped, the lock gone — whether it was waiting for the client or writing.
#[test]
fn signals_end_the_server_with_borgs_message_and_code() {
    for (sig, code, message) in [
        (libc::SIGTERM, 143, "Received SIGTERM"),
        (libc::SIGHUP, 129, "Received SIGHUP."),
        (libc::SIGINT, 130, "Keyboard interrupt"),
    ] {
        let env = Env::new();
        let repo = env.path().join("repo");
        let mut s = Serve::start(&env, &[]);
        assert_opened(&s.open(repo.to_string_lossy().as_bytes(), true));
        let id = |i: u8| Value::raw([i; 32]);
        assert_eq!(
            s.call("put", &[("id", id(1)), ("data", Value::raw(b"kept"))])
                .get("r"),
            Some(&Value::Nil)
        );
        assert_eq!(s.call("commit", &[]).get("r"), Some(&Value::Nil));
        assert_eq!(
            s.call("put", &[("id", id(2)), ("data", Value::raw(b"dropped"))])
                .get("r"),
            Some(&Value::Nil)
        );
        assert!(locked(&repo));
        s.signal(sig);
        let got = s.wait();
        let err = s.stderr_text();
        assert_eq!(got, code, "signal {sig}: {err}");
        assert!(
            err.lines()
                .any(|l| l.ends_with(&format!("Remote: {message}"))),
            "signal {sig}: {err}"
        );
        assert!(!locked(&repo), "signal {sig}: lock left");
        let mut next = Serve::start(&env, &[]);
        assert_opened(&next.open(repo.to_string_lossy().as_bytes(), false));
        assert_eq!(next.call("__len__", &[]).get("r"), Some(&Value::int(1)));
        assert_eq!(
            next.call("get", &[("id", id(1))]).get("r"),
            Some(&Value::raw(b"kept"))
        );
        assert_eq!(next.finish().0, 0);
    }
}

/// The same over a real ssh connection with a forced `hoard serve --restrict-to-path`
/// command: a link out is refused, and a killed client's lock is released.
#[test]
fn over_ssh_a_forced_restricted_server_refuses_and_unlocks() {
    if !sshd::available() {
        panic!("sshd is required here: apt-get install openssh-server openssh-client");
    }
    let mut env = Env::new();
    let t = Tree::new(&env);
    let bin = hoard_bin().to_string_lossy().into_owned();
    let server_base = env.path().join("serverbase");
    std::fs::create_dir_all(&server_base).unwrap();
    let sshd = sshd::Sshd::start(
        &env.path().join("sshd"),
        &[(
            "restricted",
            &format!("{bin} serve --restrict-to-path {}", t.allowed.display()),
        )],
        &[("BORG_BASE_DIR", &server_base.to_string_lossy())],
    );
    env.set("BORG_RSH", &sshd.rsh_with("restricted"));
    let out = t.same_link(45, "out/r");
    let r = env
        .hoard(["init", "-e", "none", &sshd.url(Path::new(&out))])
        .expect_code(2);
    assert_eq!(
        last_line(&r.stderr),
        format!(
            "Repository path not allowed: {}",
            t.outside.join("r").display()
        )
    );
    t.assert_outside_untouched();
    let repo = t.at("repo");
    let url = sshd.url(&repo);
    env.hoard(["init", "-e", "none", &url]).ok();
    let big = env.path().join("big");
    big_tree(&big, 12);
    let mut c = env.hoard_cmd();
    c.args([
        "create",
        "--compression",
        "none",
        &format!("{url}::a"),
        &big.to_string_lossy(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut client = c.spawn().unwrap();
    wait_mid_transfer(&mut client, &repo, 0);
    client.kill().unwrap();
    let _ = client.wait();
    assert_unlocks(&repo, "client killed over ssh");
    env.hoard(["--lock-wait", "0", "list", &url]).ok();
}
