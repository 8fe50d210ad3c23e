//! Shared helpers for the integration tests: an isolated borg/hoard environment, a runner for
//! the real borg, the shared test vectors, and a tree builder/comparator.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod craft;
pub mod tree;

/// The passphrase of every encrypted vector repository.
pub const VECTOR_PASSPHRASE: &str = "borg-vectors-passphrase";

/// Every repository under `../shared/vectors/repos/` (made by borg 1.2.4).
pub const VECTORS: [&str; 9] = [
    "none",
    "repokey",
    "keyfile",
    "repokey-blake2",
    "keyfile-blake2",
    "authenticated",
    "authenticated-blake2",
    "lifecycle-compacted",
    "lifecycle-append-only",
];

/// A fresh environment with the vector passphrase and the vector repository `name` unpacked
/// into it ([`Env::unpack_vector`]); returns both.
pub fn vector_env(name: &str) -> (Env, PathBuf) {
    let mut env = Env::new();
    env.passphrase = Some(VECTOR_PASSPHRASE.into());
    let repo = env.unpack_vector(name);
    (env, repo)
}

/// The hoard binary under test: `HOARD_TEST_BIN` when set (a private copy, for runs where
/// another worktree may rebuild the shared target directory meanwhile), else the one cargo
/// built for this test.
pub fn hoard_exe() -> PathBuf {
    std::env::var_os("HOARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hoard")))
}

/// The shared vectors folder: `shared/vectors` beside the clone (or beside one of its parent
/// folders, for git worktrees), or `HOARD_VECTORS`.
pub fn vectors_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("HOARD_VECTORS") {
        return PathBuf::from(v);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/vectors"))
        .find(|p| p.is_dir())
        .expect("the shared test vectors (shared/vectors beside the clone) are missing")
}

/// True if the real borg is available. Without it, a test fails with a clear message, unless
/// `HOARD_SKIP_BORG=1` is set, in which case this returns false and the test skips its borg part.
pub fn borg_available() -> bool {
    let ok = Command::new("borg")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("HOARD_SKIP_BORG").as_deref() == Ok("1") {
        eprintln!("borg not found; skipping the borg part (HOARD_SKIP_BORG=1)");
        return false;
    }
    panic!("the real borg (borgbackup 1.2) is required for interop tests: apt-get install borgbackup, or set HOARD_SKIP_BORG=1 to skip them");
}

/// One isolated client environment: its own BORG_BASE_DIR, a work dir, a passphrase.
pub struct Env {
    /// Holds the temporary directory alive.
    pub tmp: tempfile::TempDir,
    /// Passphrase handed to both programs through BORG_PASSPHRASE (None: unset).
    pub passphrase: Option<String>,
    /// Extra environment variables.
    pub vars: Vec<(String, String)>,
}

/// The result of running a program.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr as text.
    pub stderr: String,
}

impl Run {
    /// The result of a finished process (`Command::output`, `Child::wait_with_output`).
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "unexpected exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.out(),
            self.stderr
        );
        self
    }

    /// Panics unless the program succeeded.
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh environment with passphrase `test-passphrase`.
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("base")).expect("base dir");
        Env {
            tmp,
            passphrase: Some("test-passphrase".into()),
            vars: Vec::new(),
        }
    }

    /// The temporary root.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `BORG_BASE_DIR` of this environment.
    pub fn base(&self) -> PathBuf {
        self.tmp.path().join("base")
    }

    /// Sets an extra variable for both programs.
    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(kk, _)| kk != k);
        self.vars.push((k.into(), v.into()));
    }

    fn command(&self, program: &OsStr) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("BORG_") || k.starts_with("HOARD_") && k != "HOARD_SKIP_BORG" {
                c.env_remove(k);
            }
        }
        c.env("BORG_BASE_DIR", self.base())
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_DISPLAY_PASSPHRASE", "no")
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .current_dir(self.tmp.path())
            .stdin(Stdio::null());
        if let Some(p) = &self.passphrase {
            c.env("BORG_PASSPHRASE", p);
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// A `Command` for any program in this environment (e.g. a frontend).
    pub fn command_for(&self, program: &str) -> Command {
        self.command(OsStr::new(program))
    }

    /// A `Command` for hoard ([`hoard_exe`]) in this environment.
    pub fn hoard_cmd(&self) -> Command {
        self.command(hoard_exe().as_os_str())
    }

    /// A `Command` for borg in this environment.
    pub fn borg_cmd(&self) -> Command {
        self.command(OsStr::new("borg"))
    }

    /// Runs hoard with `args`.
    pub fn hoard<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.hoard_cmd().args(args).output().expect("run hoard"))
    }

    /// Runs borg with `args`.
    pub fn borg<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.borg_cmd().args(args).output().expect("run borg"))
    }

    /// `hoard init -e MODE` of a new repository `name` in this environment; returns its path.
    pub fn init_repo(&self, name: &str, mode: &str) -> PathBuf {
        let repo = self.path().join(name);
        self.hoard(["init", "-e", mode, arg(&repo)]).ok();
        repo
    }

    /// `borg init -e MODE` of a new repository `name` in this environment; returns its path.
    pub fn borg_init_repo(&self, name: &str, mode: &str) -> PathBuf {
        let repo = self.path().join(name);
        self.borg(["init", "-e", mode, arg(&repo)]).ok();
        repo
    }

    /// A private copy of the hoard binary for long tests (the shared target directory may be
    /// rebuilt by another worktree while they run); run it with [`Env::command_at`].
    pub fn private_hoard(&self) -> PathBuf {
        let exe = self.path().join("hoard-under-test");
        std::fs::copy(env!("CARGO_BIN_EXE_hoard"), &exe).expect("copy hoard");
        let probe = Command::new(&exe)
            .args(["prune", "--help"])
            .output()
            .expect("hoard --help");
        assert!(
            probe.status.success(),
            "{} is not this branch's build (the shared target directory was rebuilt by \
             another worktree); rerun the test",
            env!("CARGO_BIN_EXE_hoard")
        );
        exe
    }

    /// Runs hoard (`exe`, e.g. [`Env::private_hoard`] or [`hoard_exe`]) with `args` and the
    /// crash point `HOARD_CRASH_AT=k`: true if it was killed there (SIGKILL), false if it
    /// finished successfully before reaching it; any other outcome fails the test.
    pub fn crashed(&self, exe: &Path, args: &[&str], k: u64) -> bool {
        use std::os::unix::process::ExitStatusExt;
        let out = self
            .command_at(exe)
            .env("HOARD_CRASH_AT", k.to_string())
            .args(args)
            .output()
            .expect("hoard");
        match out.status.signal() {
            Some(9) => true,
            Some(sig) => panic!("{args:?}: unexpected signal {sig}"),
            None => {
                assert!(
                    out.status.success(),
                    "{args:?} failed without a crash: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                false
            }
        }
    }

    /// Runs the program `exe` (e.g. borg 1.4.5 from [`borg14`]) in this environment with
    /// `args`, stdin closed.
    pub fn run_at<I, S>(&self, exe: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.command_at(exe).args(args).output();
        Run::from(out.unwrap_or_else(|e| panic!("run {}: {e}", exe.display())))
    }

    /// A `Command` for the program `exe` (e.g. [`Env::private_hoard`]) with this
    /// environment's settings, as [`Env::hoard_cmd`] has them.
    pub fn command_at(&self, exe: &Path) -> Command {
        self.command(exe.as_os_str())
    }

    /// Unpacks the vector repository `name` (e.g. `repokey`) into this environment; returns
    /// the repository path. Key files in the tarball are left next to it and, for keyfile
    /// modes, `BORG_KEY_FILE` is set.
    pub fn unpack_vector(&mut self, name: &str) -> PathBuf {
        let tarball = vectors_dir().join("repos").join(format!("{name}.tar.gz"));
        let dest = self.tmp.path().join("vectors");
        std::fs::create_dir_all(&dest).expect("mkdir");
        let st = Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dest)
            .status()
            .expect("tar");
        assert!(st.success(), "untar {}", tarball.display());
        let key = dest.join(format!("{name}.key"));
        if key.exists() {
            self.set("BORG_KEY_FILE", &key.to_string_lossy());
        }
        let repo = dest.join(name);
        assert!(
            repo.join("config").exists(),
            "vector {name} has no repository dir"
        );
        repo
    }
}

/// Sends signal `sig` (e.g. `libc::SIGTERM`) to the child process.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// The segment files of the repository at `repo` (`data/N/M`) with their numbers, lowest
/// first; none when there is no `data` folder.
pub fn segments(repo: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(repo.join("data")) else {
        return out;
    };
    for d in dirs.flatten() {
        for f in std::fs::read_dir(d.path()).expect("segment dir").flatten() {
            let p = f.path();
            if let Some(n) = p.file_name().and_then(|n| n.to_str()?.parse().ok()) {
                out.push((n, p));
            }
        }
    }
    out.sort();
    out
}

/// A `BORG_RSH` program in `env` (`local-rsh`) that drops the host and runs the remote
/// command here, so `ssh://localhost/…` repositories need no ssh.
pub fn local_rsh(env: &Env) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = env.path().join("local-rsh");
    std::fs::write(&p, "#!/bin/sh\nshift\nexec \"$@\"\n").expect("write local-rsh");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// `REPO::ARCHIVE` for the repository at `repo`.
pub fn archive(repo: &Path, name: &str) -> String {
    format!("{}::{name}", repo.display())
}

/// The lines of a program's text output, e.g. `list --short`.
pub fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Copies the folder `from` to `to` with `cp -a` (owners, modes and times kept), replacing
/// whatever `to` was.
pub fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// Writes `files` (relative path, content) below `dir`, creating folders as needed; returns
/// `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    dir.to_path_buf()
}

/// Lists every file below `dir` with its content, for "repository unchanged" assertions.
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, root: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Asserts `stderr` holds exactly one non-empty line containing `needle`.
pub fn assert_one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    assert!(
        lines[0].contains(needle),
        "error line {:?} does not contain {needle:?}",
        lines[0]
    );
}

/// True when FUSE mounts can be made here; panics with a clear message otherwise unless
/// `HOARD_SKIP_FUSE=1`.
pub fn fuse_available() -> bool {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok();
    let tool = std::process::Command::new("fusermount3")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if dev && tool {
        return true;
    }
    if std::env::var("HOARD_SKIP_FUSE").as_deref() == Ok("1") {
        eprintln!("no usable /dev/fuse or fusermount3; skipping (HOARD_SKIP_FUSE=1)");
        return false;
    }
    panic!(
        "mount tests need /dev/fuse (read-write) and fusermount3 (apt-get install fuse3); \
         found /dev/fuse usable: {dev}, fusermount3: {tool}. Set HOARD_SKIP_FUSE=1 to skip them"
    );
}

/// An S3 server binary for the object-storage tests: `$var`, else `name` on PATH. `None` (the
/// test skips) only with `HOARD_SKIP_S3=1`; otherwise a missing binary fails the test with
/// `install` as the instructions.
pub fn s3_server_binary(var: &str, name: &str, install: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    if std::env::var("HOARD_SKIP_S3").as_deref() == Ok("1") {
        eprintln!("{name} not found; skipping the S3 test (HOARD_SKIP_S3=1)");
        return None;
    }
    panic!("the S3 tests need {name}: {install}, or set {var}=/path/to/{name}; HOARD_SKIP_S3=1 skips them");
}

/// A store on `bucket/prefix` of an S3 server at `127.0.0.1:port`, for direct object access.
pub fn s3_test_store(
    port: u16,
    bucket: &str,
    prefix: &str,
    keys: (&str, &str),
) -> hoard::repo::objstore::S3Bucket {
    use hoard::repo::objstore::{Credentials, S3Bucket, S3Target};
    let t = S3Target {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key: None,
        bucket: bucket.into(),
        prefix: prefix.into(),
    };
    S3Bucket::with_credentials(
        &t,
        &format!("s3://127.0.0.1:{port}/{bucket}/{prefix}"),
        Some(Credentials::new(keys.0, keys.1)),
    )
    .expect("store")
}

/// Extracts ARCHIVE with hoard into a fresh folder `dest` of the environment and compares
/// `dest/REL` with `tree`.
pub fn extract_and_compare(env: &Env, archive: &str, dest: &str, tree: &Path, rel: &str) {
    let out = env.path().join(dest);
    std::fs::create_dir_all(&out).expect("mkdir out");
    let r = env
        .hoard_cmd()
        .current_dir(&out)
        .args(["extract", archive])
        .output()
        .expect("run hoard extract");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    tree::assert_same_tree(tree, &out.join(rel));
}

/// The archive part of the S3 command-set tests, on a repository holding archives `one` and
/// `two` of `tree` (backed up as `rel`, `two` after a change): list, list of an archive, info,
/// extract compared with the tree; then delete `one`, create `three`, prune to the last one.
pub fn list_extract_delete_prune(env: &Env, repo: &str, tree: &Path, rel: &str) {
    assert_eq!(
        env.hoard(["list", "--short", repo]).ok().out(),
        "one\ntwo\n"
    );
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
    extract_and_compare(env, &format!("{repo}::two"), "out1", tree, rel);
    env.hoard(["delete", &format!("{repo}::one")]).ok();
    env.hoard(["create", &format!("{repo}::three"), rel]).ok();
    env.hoard(["prune", "--keep-last", "1", repo]).ok();
    assert_eq!(env.hoard(["list", "--short", repo]).ok().out(), "three\n");
}

/// Waits until the S3 server `name` (child process `child`, log `log`) answers a listing on
/// `store`; panics if it exits or takes longer than `limit`.
pub fn wait_s3_ready(
    store: &hoard::repo::objstore::S3Bucket,
    child: Option<&mut std::process::Child>,
    name: &str,
    log: &Path,
    limit: std::time::Duration,
) {
    let t0 = std::time::Instant::now();
    let mut child = child;
    loop {
        if store.list("__ready_probe/").is_ok() {
            return;
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!(
                    "{name} exited ({st}) during start-up; log: {}",
                    log.display()
                );
            }
        }
        assert!(
            t0.elapsed() < limit,
            "{name} did not become ready in {} s; log: {}",
            limit.as_secs(),
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The program named by the environment variable `var`, else `default`.
pub fn program_at(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// True when `path --version` prints a version starting with `prefix`; false when the program
/// does not run; a panic naming `what` when it runs but is another version.
pub fn versioned(path: &Path, prefix: &str, what: &str) -> bool {
    let version = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match version {
        Some(v) if v.starts_with(prefix) => true,
        Some(v) => panic!("{} is {v}, not {what}", path.display()),
        None => false,
    }
}

/// Where borg 1.4 is looked for when `HOARD_BORG14` is not set (`.ci/run` installs it there).
pub const BORG14_DEFAULT: &str = "/var/tmp/borg14/bin/borg";

/// The borg 1.4 program (`HOARD_BORG14`, else [`BORG14_DEFAULT`]); `None` (the test skips its
/// borg 1.4 part) only with `HOARD_SKIP_BORG14=1` or `HOARD_SKIP_BORG=1`, otherwise a missing
/// one fails the test with instructions.
pub fn borg14() -> Option<PathBuf> {
    let path = program_at("HOARD_BORG14", BORG14_DEFAULT);
    if versioned(&path, "borg 1.4.", "borg 1.4 (HOARD_BORG14)") {
        return Some(path);
    }
    let skip = |k: &str| std::env::var(k).as_deref() == Ok("1");
    if skip("HOARD_SKIP_BORG14") || skip("HOARD_SKIP_BORG") {
        eprintln!(
            "borg 1.4 not found at {}; skipping (HOARD_SKIP_BORG14/HOARD_SKIP_BORG=1)",
            path.display()
        );
        return None;
    }
    panic!(
        "borg 1.4 is required for these interop tests and was not found at {}: install it with \
         `python3 -m venv /var/tmp/borg14 && /var/tmp/borg14/bin/pip install borgbackup==1.4.5` \
         (as .ci/run does), point HOARD_BORG14 at a borg 1.4 binary, or set HOARD_SKIP_BORG14=1",
        path.display()
    );
}
