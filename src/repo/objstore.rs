//! S3-compatible object storage for borg-format repositories (issue 9).
//!
//! # Design
//!
//! A repository on object storage has **exactly the borg 1.x layout**: every repository file is
//! one object under the location's prefix (`config`, `README`, `data/<d>/<n>`, `index.T`,
//! `hints.T`, `integrity.T`, `nonce`, `transactions`), so a bucket copied to a disk is a plain
//! borg repository and a borg repository uploaded as-is opens in hoard.
//!
//! This module is the S3 client ([`S3Bucket`]) and the lock protocol ([`ObjLock`]); the
//! repository on top of it is [`S3Storage`](super::storage::s3::S3Storage), one of the two
//! implementations of the [`Storage`](super::storage::Storage) trait that the segment log,
//! transactions, check and compaction are written against (the other is the directory).
//!
//! * Segments are built in memory and uploaded whole when they are closed (multipart above
//!   [`MULTIPART_THRESHOLD`]); an object store therefore never holds a half-written segment.
//!   Repositories created on object storage default to a 32 MiB `max_segment_size`
//!   ([`OBJECT_STORE_MAX_SEGMENT_SIZE`]) to bound memory.
//! * Commit order: the segments (the last one holding the COMMIT) first, then `hints.T`,
//!   `integrity.T` and last `index.T`; then the older index/hints/integrity are deleted.
//!   Readers apply the local rules: the newest committed segment decides, and an index older
//!   than it is brought up to date by replay, so a crash between any two uploads is harmless.
//! * Reads of single objects are range requests (the entry header first, then the rest). A
//!   range answered `206`, or `200` with a `Content-Range` (`rclone serve s3`), is the range; a
//!   `200` without one is the whole object (a store that ignores `Range`).
//!   Batches (`Repository::get_many`, used by extract, check --verify-data and every other
//!   prefetching reader) become concurrent range GETs ([`S3Bucket::get_ranges`],
//!   `HOARD_S3_READS` in flight, default [`READS_IN_FLIGHT`]); objects close together in a
//!   segment share one request.
//! * Locks: see [`ObjLock`] (conditional writes where the store honours them, candidate objects
//!   and a LIST where it does not; SeaweedFS and `rclone serve s3` are tested, one of each).
//! * Retries, with exponential back-off from 200 ms (`HOARD_S3_RETRIES` more attempts,
//!   default 5), on 5xx, 429 and transport errors (refused or reset connections, timeouts):
//!   - GET, HEAD and LIST: they change nothing.
//!   - PUT of a whole object: it writes the same bytes under the same key again; the object
//!     is replaced whole, so a repeat cannot leave anything but the intended content.
//!   - DELETE: a repeat finds nothing (404 counts as success).
//!   - Multipart uploads: UploadPart (re-sending part n replaces part n); Create (a repeat
//!     after a lost answer leaves one unused upload behind, which the store expires; no object
//!     changes); Complete (a repeat after a lost answer gets 404 NoSuchUpload, which is taken
//!     as success only on a repeat). A failed multipart upload is aborted.
//!   - Not repeated blindly: the conditional lock PUT (`If-None-Match: *`). Sent again after
//!     a lost answer, it would find its own object and report the lock as taken by someone
//!     else; instead the lock object is read back and compared with what we wrote.
//!   - ureq itself re-sends a request only when a pooled connection fails before the
//!     request went out, or for bodiless idempotent requests; never a PUT with a body.
//!
//! # Transport
//!
//! `rusty-s3` (sans-IO request signing, SigV4 presigned URLs, ListObjectsV2/multipart XML)
//! with the blocking `ureq` HTTP client. The code base is synchronous; `object_store` is
//! async-only and `opendal`/`aws-sdk-s3` bring tokio, hyper and (for the SDK) several hundred
//! crates: minutes of extra build time on a 2-core machine for no gain here. `rusty-s3` +
//! `ureq` add about 60 small crates, mostly `rustls`/`url` that are well maintained.
//!
//! # Locations
//!
//! `s3://[ACCESS@]HOST[:PORT]/BUCKET[/PREFIX]` talks plain HTTP path-style to a self-hosted
//! store; `s3+https://…` uses TLS. `s3:BUCKET[/PREFIX]` takes the endpoint from
//! `AWS_ENDPOINT_URL` (default `https://s3.<region>.amazonaws.com`) and the region from
//! `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile in `~/.aws/config` (default `us-east-1`).
//! Credentials, first match wins: `--s3-credentials-command` (environment
//! `HOARD_S3_CREDENTIALS_COMMAND`; prints AWS `credential_process` JSON), `AWS_ACCESS_KEY_ID` +
//! `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`; an `ACCESS@` in the URL overrides the key
//! id), the profile `AWS_PROFILE` (default `default`) of `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`).

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject,
    HeadObject, ListObjectsV2, PutObject, UploadPart,
};
pub use rusty_s3::Credentials;
use rusty_s3::{Bucket, S3Action, UrlStyle};
use std::io::{self, Read};
use std::time::Duration;

/// Default `max_segment_size` of repositories created on object storage (bounded memory: a
/// segment is buffered whole before its upload).
pub const OBJECT_STORE_MAX_SEGMENT_SIZE: u64 = 32 * 1024 * 1024;

/// Objects larger than this are uploaded with a multipart upload (`HOARD_S3_MULTIPART`
/// overrides it, in bytes).
pub const MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;

/// Part size of multipart uploads (`HOARD_S3_PART_SIZE` overrides it, in bytes; AWS S3 needs
/// at least 5 MiB for every part but the last).
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Bytes a reader should ask for in one `get_many` on object storage (see
/// `Repository::read_batch_bytes`): enough for several concurrent range requests.
pub const OBJECT_STORE_READ_BATCH: usize = 4 * 1024 * 1024;

/// Range requests in flight when many objects are read at once (`HOARD_S3_READS` overrides).
pub const READS_IN_FLIGHT: usize = 8;

/// How long presigned URLs are valid.
const SIGN_TTL: Duration = Duration::from_secs(3600);

pub use crate::location::S3Target;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A positive byte count from the environment variable `name`.
fn env_size(name: &str) -> Option<usize> {
    env(name).and_then(|v| v.parse().ok()).filter(|n| *n > 0)
}

fn aws_dir_file(var: &str, name: &str) -> Option<std::path::PathBuf> {
    env(var)
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".aws").join(name)))
}

/// Value of `key` in section `section` of an AWS INI file.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut cur = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.starts_with(';') || l.is_empty() {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            cur = s.trim().to_string();
            continue;
        }
        if cur == section {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

fn profile() -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".into())
}

fn region() -> String {
    if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return r;
    }
    let p = profile();
    let section = if p == "default" {
        p.clone()
    } else {
        format!("profile {p}")
    };
    aws_dir_file("AWS_CONFIG_FILE", "config")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| ini_value(&t, &section, "region"))
        .unwrap_or_else(|| "us-east-1".into())
}

fn credentials_from_command(cmd: &str) -> io::Result<Credentials> {
    let bad = |m: String| io::Error::other(format!("--s3-credentials-command: {m}"));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| bad(e.to_string()))?;
    if !out.status.success() {
        return Err(bad(format!("command failed ({})", out.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| bad(format!("output is not credential_process JSON: {e}")))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(k), Some(s)) => Ok(match field("SessionToken") {
            Some(t) => Credentials::new_with_token(k, s, t),
            None => Credentials::new(k, s),
        }),
        _ => Err(bad(
            "output lacks AccessKeyId/SecretAccessKey (credential_process JSON expected)".into(),
        )),
    }
}

fn resolve_credentials(
    url_key: Option<&str>,
    command: Option<&str>,
) -> io::Result<Option<Credentials>> {
    if let Some(cmd) = command
        .map(str::to_string)
        .or_else(|| env("HOARD_S3_CREDENTIALS_COMMAND"))
    {
        return credentials_from_command(&cmd).map(Some);
    }
    if let Some(secret) = env("AWS_SECRET_ACCESS_KEY") {
        if let Some(key) = url_key
            .map(str::to_string)
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
        {
            return Ok(Some(match env("AWS_SESSION_TOKEN") {
                Some(t) => Credentials::new_with_token(key, secret, t),
                None => Credentials::new(key, secret),
            }));
        }
    }
    let p = profile();
    if let Some(text) = aws_dir_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|f| std::fs::read_to_string(f).ok())
    {
        let key = ini_value(&text, &p, "aws_access_key_id");
        let secret = ini_value(&text, &p, "aws_secret_access_key");
        if let (Some(k), Some(s)) = (key, secret) {
            let k = url_key.map(str::to_string).unwrap_or(k);
            return Ok(Some(match ini_value(&text, &p, "aws_session_token") {
                Some(t) => Credentials::new_with_token(k, s, t),
                None => Credentials::new(k, s),
            }));
        }
    }
    Ok(None)
}

/// A bucket prefix holding one repository, with blocking, retrying S3 operations. Keys given
/// to the methods are relative to the prefix (`config`, `data/0/1`, ...).
pub struct S3Bucket {
    bucket: Bucket,
    creds: Option<Credentials>,
    prefix: String,
    agent: ureq::Agent,
    display: String,
    retries: u32,
    /// Range requests in flight in [`Self::get_ranges`].
    reads: usize,
    /// Objects above this size go up with a multipart upload.
    multipart_threshold: usize,
    /// Part size of multipart uploads.
    part_size: usize,
    /// Whether the store honours `If-None-Match: *` (probed once, see
    /// [`Self::conditional_writes`]).
    conditional: std::sync::OnceLock<bool>,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Outcome classification of one HTTP attempt.
enum Failure {
    /// Worth another attempt (5xx, 429, transport error).
    Transient(String),
    /// Final (4xx other than 404/429, bad response).
    Fatal(io::Error),
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Objects of one listing page (relative names and sizes) and the next page's token.
pub type ListPage = (Vec<(String, u64)>, Option<String>);

/// One page of a ListObjectsV2 response: the objects (names relative to `strip`, the
/// repository prefix, and their sizes) and the continuation token of the next page, if any.
/// Public so that the parser can be fuzzed (`fuzz/`).
pub fn parse_list_page(body: &str, strip: &str) -> io::Result<ListPage> {
    let parsed = ListObjectsV2::parse_response(body)
        .map_err(|e| io::Error::other(format!("bad ListObjectsV2 response: {e}")))?;
    let url_encoded = parsed.encoding_type.as_deref() == Some("url");
    let mut out = Vec::with_capacity(parsed.contents.len());
    for c in parsed.contents {
        let k = if url_encoded {
            percent_decode(&c.key)
        } else {
            c.key
        };
        let rel = k.strip_prefix(strip).unwrap_or(&k).to_string();
        out.push((rel, c.size.unwrap_or(0)));
    }
    let next = parsed.next_continuation_token.filter(|t| !t.is_empty());
    Ok((out, next))
}

/// The upload id of a CreateMultipartUpload response. Public so that the parser can be
/// fuzzed (`fuzz/`).
pub fn parse_upload_id(body: &str) -> io::Result<String> {
    let created = CreateMultipartUpload::parse_response(body)
        .map_err(|e| io::Error::other(format!("bad CreateMultipartUpload response: {e}")))?;
    Ok(created.upload_id().to_string())
}

fn read_body(resp: ureq::Response) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    resp.into_reader()
        .take(u64::MAX)
        .read_to_end(&mut v)
        .map(|_| v)
}

/// Short text of an S3 error response (`<Code>` and `<Message>`).
fn error_text(code: u16, resp: ureq::Response) -> String {
    error_body_text(code, &resp.into_string().unwrap_or_default())
}

/// Short text of an S3 error response body (`<Code>` and `<Message>`) for HTTP status `code`.
/// Public so that the parser can be fuzzed (`fuzz/`).
pub fn error_body_text(code: u16, body: &str) -> String {
    let tag = |t: &str| {
        let a = body.find(&format!("<{t}>"))? + t.len() + 2;
        let b = body[a..].find(&format!("</{t}>"))? + a;
        Some(body[a..b].to_string())
    };
    let text = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("HTTP {code} {c}: {m}"),
        (Some(c), None) => format!("HTTP {code} {c}"),
        _ => format!("HTTP {code}"),
    };
    if code == 401 || code == 403 {
        format!("{text} (check the S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the AWS profile or --s3-credentials-command)")
    } else {
        text
    }
}

/// A transport error without its URL (a presigned URL is long and carries a signature):
/// `cannot reach http://host:port: Connection Failed: Connect error: Connection refused`.
fn transport_text(t: &ureq::Transport) -> String {
    let mut s = match t.url() {
        Some(u) => format!(
            "cannot reach {}: {}",
            u.origin().ascii_serialization(),
            t.kind()
        ),
        None => t.kind().to_string(),
    };
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

impl S3Bucket {
    /// Connects (lazily: no request is made) to the bucket/prefix of `t`. `display` is the text
    /// shown in messages (the location); `credentials_command` is `--s3-credentials-command`.
    pub fn new(
        t: &S3Target,
        display: &str,
        credentials_command: Option<&str>,
    ) -> io::Result<S3Bucket> {
        let creds = resolve_credentials(t.access_key.as_deref(), credentials_command)?;
        Self::with_credentials(t, display, creds)
    }

    /// Like [`Self::new`] with explicit credentials (`None`: unsigned requests).
    pub fn with_credentials(
        t: &S3Target,
        display: &str,
        creds: Option<Credentials>,
    ) -> io::Result<S3Bucket> {
        let endpoint = match &t.endpoint {
            Some(e) => e.clone(),
            None => env("AWS_ENDPOINT_URL_S3")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", region())),
        };
        let url: url::Url = endpoint
            .parse()
            .map_err(|e| io::Error::other(format!("invalid S3 endpoint {endpoint}: {e}")))?;
        let bucket = Bucket::new(url, UrlStyle::Path, t.bucket.clone(), region())
            .map_err(|e| io::Error::other(format!("invalid S3 bucket {}: {e:?}", t.bucket)))?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .max_idle_connections_per_host(16)
            .build();
        let retries = env("HOARD_S3_RETRIES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        let reads = env("HOARD_S3_READS")
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(READS_IN_FLIGHT);
        Ok(S3Bucket {
            bucket,
            creds,
            prefix: t.prefix.clone(),
            agent,
            display: display.to_string(),
            retries,
            reads,
            multipart_threshold: env_size("HOARD_S3_MULTIPART").unwrap_or(MULTIPART_THRESHOLD),
            part_size: env_size("HOARD_S3_PART_SIZE").unwrap_or(PART_SIZE),
            conditional: std::sync::OnceLock::new(),
        })
    }

    /// Whether the store honours `If-None-Match: *` on PUT (AWS S3, MinIO, SeaweedFS and
    /// Garage do; `rclone serve s3` and older stores ignore the header and overwrite). Probed
    /// once per process on a fresh object `lock.probe.<random>`: written plainly, then again
    /// with the header; a refusal (412/409) means the header is honoured. The probe object is
    /// deleted again; its body is a lock body, so one left behind by a crash is removed as a
    /// stale lock. `HOARD_S3_CONDITIONAL_WRITES=yes|no` skips the probe.
    pub fn conditional_writes(&self) -> io::Result<bool> {
        if let Some(v) = self.conditional.get() {
            return Ok(*v);
        }
        let forced = env("HOARD_S3_CONDITIONAL_WRITES").and_then(|v| match v.as_str() {
            "yes" | "1" | "true" => Some(true),
            "no" | "0" | "false" => Some(false),
            _ => None,
        });
        let honoured = match forced {
            Some(v) => v,
            None => {
                let nonce = new_nonce();
                let body = ObjLock::make_body(&nonce);
                let name = format!("lock.probe.{}", lock_suffix(&nonce));
                self.put(&name, &body)?;
                // Ok(false): refused because it exists. Ok(true): written over it. An error
                // (a store that rejects the header): treated as not honoured.
                let refused = matches!(self.put_if_absent(&name, &body), Ok(false));
                self.delete(&name)?;
                refused
            }
        };
        Ok(*self.conditional.get_or_init(|| honoured))
    }

    /// The location text used in messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Full object key of `rel`.
    fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else if rel.is_empty() {
            format!("{}/", self.prefix)
        } else {
            format!("{}/{}", self.prefix, rel)
        }
    }

    /// A path-like value naming `rel` for error messages.
    pub fn path_of(&self, rel: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("{}/{}", self.display.trim_end_matches('/'), rel))
    }

    /// Runs `attempt` with retries on transient failures (exponential back-off from 200 ms).
    fn retry<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> io::Result<T> {
        let mut delay = Duration::from_millis(200);
        let mut n = 0;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(msg)) => {
                    n += 1;
                    if n > self.retries {
                        return Err(io::Error::other(format!(
                            "{what}: {msg} (gave up after {n} attempts)"
                        )));
                    }
                    tracing::debug!("{what}: {msg}; retrying in {delay:?}");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Classifies an ureq error; `not_found` maps 404 (and is returned as `Ok(None)` upstream).
    fn classify(e: ureq::Error) -> Failure {
        match e {
            ureq::Error::Status(code, resp) if code >= 500 || code == 429 => {
                Failure::Transient(error_text(code, resp))
            }
            ureq::Error::Status(404, resp) => Failure::Fatal(io::Error::new(
                io::ErrorKind::NotFound,
                error_text(404, resp),
            )),
            ureq::Error::Status(code, resp) => {
                Failure::Fatal(io::Error::other(error_text(code, resp)))
            }
            ureq::Error::Transport(t) => Failure::Transient(transport_text(&t)),
        }
    }

    fn not_found_to_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole object, `None` when it does not exist.
    pub fn get(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        let key = self.key(rel);
        let url = GetObject::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        Self::not_found_to_none(self.retry(rel, || {
            let r = self.agent.request_url("GET", &url).call();
            match r {
                Ok(resp) => read_body(resp).map_err(|e| Failure::Transient(e.to_string())),
                Err(e) => Err(Self::classify(e)),
            }
        }))
    }

    /// `len` bytes from `start` (fewer at the end of the object).
    pub fn get_range(&self, rel: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let key = self.key(rel);
        let url = GetObject::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        let range = format!("bytes={}-{}", start, start + len - 1);
        self.retry(rel, || {
            let r = self
                .agent
                .request_url("GET", &url)
                .set("Range", &range)
                .call();
            match r {
                Ok(resp) => {
                    // 206, or 200 with a Content-Range (rclone serve s3): the range; a 200
                    // without one: the whole object.
                    let full = resp.status() == 200 && resp.header("content-range").is_none();
                    let mut v = read_body(resp).map_err(|e| Failure::Transient(e.to_string()))?;
                    if full {
                        // the server ignored the range
                        let s = (start as usize).min(v.len());
                        let e = (start.saturating_add(len) as usize).min(v.len());
                        v = v[s..e].to_vec();
                    }
                    Ok(v)
                }
                Err(ureq::Error::Status(416, _)) => Ok(Vec::new()),
                Err(e) => Err(Self::classify(e)),
            }
        })
    }

    /// Several [`Self::get_range`]s (`(key, start, len)`) run concurrently on up to
    /// [`Self::read_concurrency`] threads; results in the order of `reqs`.
    pub fn get_ranges(&self, reqs: &[(String, u64, u64)]) -> Vec<io::Result<Vec<u8>>> {
        let threads = self.read_concurrency().min(reqs.len());
        if threads <= 1 {
            return reqs
                .iter()
                .map(|(k, s, l)| self.get_range(k, *s, *l))
                .collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut out: Vec<Option<io::Result<Vec<u8>>>> = (0..reqs.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((k, s, l)) = reqs.get(i) else { break };
                            done.push((i, self.get_range(k, *s, *l)));
                        }
                        done
                    })
                })
                .collect();
            for w in workers {
                if let Ok(done) = w.join() {
                    for (i, r) in done {
                        out[i] = Some(r);
                    }
                }
            }
        });
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("range read thread panicked"))))
            .collect()
    }

    /// How many range requests [`Self::get_ranges`] keeps in flight: `HOARD_S3_READS`,
    /// default [`READS_IN_FLIGHT`].
    pub fn read_concurrency(&self) -> usize {
        self.reads
    }

    /// Size of the object, `None` when it does not exist.
    pub fn head(&self, rel: &str) -> io::Result<Option<u64>> {
        let key = self.key(rel);
        let url = HeadObject::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        Self::not_found_to_none(self.retry(rel, || {
            match self.agent.request_url("HEAD", &url).call() {
                Ok(resp) => Ok(resp
                    .header("Content-Length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)),
                Err(ureq::Error::Status(404, _)) => Err(Failure::Fatal(io::Error::new(
                    io::ErrorKind::NotFound,
                    "not found",
                ))),
                Err(e) => Err(Self::classify(e)),
            }
        }))
    }

    /// Stores `data` under `rel`, replacing any object (atomic for readers: an object is
    /// visible whole or not at all). Objects larger than [`Self::multipart_threshold`] go up
    /// in parts.
    pub fn put(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        if data.len() > self.multipart_threshold {
            return self.put_multipart(rel, data);
        }
        let key = self.key(rel);
        let url = PutObject::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        self.retry(rel, || {
            match self.agent.request_url("PUT", &url).send_bytes(data) {
                Ok(_) => Ok(()),
                Err(e) => Err(Self::classify(e)),
            }
        })
    }

    /// Objects larger than this many bytes are uploaded in parts: `HOARD_S3_MULTIPART`,
    /// default [`MULTIPART_THRESHOLD`].
    pub fn multipart_threshold(&self) -> usize {
        self.multipart_threshold
    }

    /// A multipart upload: CreateMultipartUpload, UploadPart for each [`Self::part_size`]
    /// slice (no copies), CompleteMultipartUpload; on failure the upload is aborted so the
    /// store drops the parts. The object appears only at completion, whole.
    fn put_multipart(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        let key = self.key(rel);
        let bad = |m: String| io::Error::other(format!("{rel}: multipart upload: {m}"));
        let url =
            CreateMultipartUpload::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        // A retried create after a lost answer leaves an unused upload behind (no object
        // changes; stores expire it by their lifecycle rules).
        let body = self.retry(rel, || match self.agent.request_url("POST", &url).call() {
            Ok(r) => r
                .into_string()
                .map_err(|e| Failure::Transient(e.to_string())),
            Err(e) => Err(Self::classify(e)),
        })?;
        let upload_id = parse_upload_id(&body).map_err(|e| bad(e.to_string()))?;
        let r = self.upload_parts(rel, &key, &upload_id, data);
        if r.is_err() {
            let url =
                AbortMultipartUpload::new(&self.bucket, self.creds.as_ref(), &key, &upload_id)
                    .sign(SIGN_TTL);
            if let Err(e) = self.agent.request_url("DELETE", &url).call() {
                tracing::debug!("{rel}: aborting multipart upload {upload_id}: {e}");
            }
        }
        r
    }

    fn upload_parts(&self, rel: &str, key: &str, upload_id: &str, data: &[u8]) -> io::Result<()> {
        let bad = |m: String| io::Error::other(format!("{rel}: multipart upload: {m}"));
        let mut etags = Vec::new();
        for (i, part) in data.chunks(self.part_size).enumerate() {
            let n = u16::try_from(i + 1)
                .ok()
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| bad("more than 10000 parts".into()))?;
            let url = UploadPart::new(&self.bucket, self.creds.as_ref(), key, n, upload_id)
                .sign(SIGN_TTL);
            // re-sending a part replaces it: idempotent
            let etag = self.retry(rel, || {
                match self.agent.request_url("PUT", &url).send_bytes(part) {
                    Ok(r) => Ok(r.header("ETag").unwrap_or_default().to_string()),
                    Err(e) => Err(Self::classify(e)),
                }
            })?;
            etags.push(etag);
        }
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            self.creds.as_ref(),
            key,
            upload_id,
            etags.iter().map(|s| s.as_str()),
        );
        let url = action.sign(SIGN_TTL);
        let body = action.body();
        // Completing twice is harmless: the second attempt fails with NoSuchUpload only if
        // the first one succeeded, which we accept below.
        let mut tried = false;
        self.retry(rel, || {
            let again = tried;
            tried = true;
            match self.agent.request_url("POST", &url).send_string(&body) {
                // S3 may answer 200 with an <Error> body when completion fails late
                Ok(r) => match r.into_string() {
                    Ok(b) if b.contains("<Error>") => Err(Failure::Transient(b)),
                    _ => Ok(()),
                },
                Err(ureq::Error::Status(404, _)) if again => Ok(()),
                Err(e) => Err(Self::classify(e)),
            }
        })
    }

    /// Part size of multipart uploads: `HOARD_S3_PART_SIZE`, default [`PART_SIZE`].
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Creates `rel` only if it does not exist (`If-None-Match: *`). `Ok(false)`: it exists.
    /// Never blindly retried: after a transport error the object is read back and compared.
    pub fn put_if_absent(&self, rel: &str, data: &[u8]) -> io::Result<bool> {
        let key = self.key(rel);
        let mut action = PutObject::new(&self.bucket, self.creds.as_ref(), &key);
        action.headers_mut().insert("if-none-match", "*");
        let url = action.sign(SIGN_TTL);
        for _ in 0..=self.retries {
            match self
                .agent
                .request_url("PUT", &url)
                .set("If-None-Match", "*")
                .send_bytes(data)
            {
                Ok(_) => return Ok(true),
                Err(ureq::Error::Status(412, _)) | Err(ureq::Error::Status(409, _)) => {
                    return Ok(false)
                }
                Err(ureq::Error::Status(code, resp)) if code < 500 && code != 429 => {
                    return Err(io::Error::other(error_text(code, resp)))
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(300));
                    // Ambiguous: did our write land? Read back before trying again.
                    match self.get(rel)? {
                        Some(v) if v == data => return Ok(true),
                        Some(_) => return Ok(false),
                        None => continue,
                    }
                }
            }
        }
        Err(io::Error::other(format!(
            "{rel}: conditional write failed repeatedly"
        )))
    }

    /// Deletes `rel` (missing is fine).
    pub fn delete(&self, rel: &str) -> io::Result<()> {
        let key = self.key(rel);
        let url = DeleteObject::new(&self.bucket, self.creds.as_ref(), &key).sign(SIGN_TTL);
        self.retry(rel, || {
            match self.agent.request_url("DELETE", &url).call() {
                Ok(_) | Err(ureq::Error::Status(404, _)) => Ok(()),
                Err(e) => Err(Self::classify(e)),
            }
        })
    }

    /// All objects whose key starts with `rel_prefix` (relative names and sizes), sorted.
    pub fn list(&self, rel_prefix: &str) -> io::Result<Vec<(String, u64)>> {
        self.list_inner(rel_prefix, false)
    }

    /// The objects directly under the prefix (not under `data/` etc.), sorted.
    pub fn list_root(&self) -> io::Result<Vec<(String, u64)>> {
        self.list_inner("", true)
    }

    fn list_inner(&self, rel_prefix: &str, delimited: bool) -> io::Result<Vec<(String, u64)>> {
        let full = self.key(rel_prefix);
        let strip = self.key("");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.creds.as_ref());
            if !full.is_empty() {
                action.with_prefix(full.as_str());
            }
            if delimited {
                action.with_delimiter("/");
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGN_TTL);
            let body = self.retry(rel_prefix, || {
                match self.agent.request_url("GET", &url).call() {
                    Ok(r) => r
                        .into_string()
                        .map_err(|e| Failure::Transient(e.to_string())),
                    Err(e) => Err(Self::classify(e)),
                }
            })?;
            let (page, next) = parse_list_page(&body, &strip)?;
            out.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The object store of an [`S3`](crate::location::Proto::S3) location.
pub fn store_for(loc: &crate::location::Location) -> super::Result<std::sync::Arc<S3Bucket>> {
    let t = loc.s3_target().ok_or_else(|| {
        super::RepoError::InvalidArgument(format!("not an S3 location: {}", loc.raw_repo))
    })?;
    let display = loc.repo_text();
    S3Bucket::new(&t, &display, loc.options.s3_credentials_command.as_deref())
        .map(std::sync::Arc::new)
        .map_err(|e| super::RepoError::io(std::path::Path::new(&display), e))
}

/// Lock objects of a repository on object storage.
///
/// * Exclusive, on a store that honours `If-None-Match: *` (see
///   [`S3Bucket::conditional_writes`]): `lock.exclusive`, created conditionally, so only
///   one client can create it.
/// * Exclusive, on a store that ignores the header: writing `lock.exclusive` would overwrite a
///   holder's object, so each contender writes a candidate of its own,
///   `lock.exclusive.<host>.<pid>.<random>`, then lists `lock.`: it holds the lock only if no
///   other exclusive object is listed. Two contenders that see each other both withdraw and
///   retry after a random pause. This is safe on any store whose PUT, LIST and DELETE are
///   strongly consistent (AWS S3 since 2020, and every self-hosted store we know): of two
///   contenders the one that lists later always sees the other's candidate.
/// * `lock.shared.<host>.<pid>.<random>`: one object per shared holder, written and then
///   checked against every exclusive object.
///
/// Both exclusive forms also list `lock.`, so clients that reached different answers about
/// the store still exclude each other. An exclusive holder keeps its object while it waits
/// for shared holders to leave (no new shared holder gets in meanwhile). Bodies are JSON
/// `{"host", "pid", "time", ...}`. A lock is stale when it names this host and its process is
/// gone (borg's rule), or when it is older than `HOARD_S3_LOCK_STALE` seconds (default 24 h; a
/// holder refreshes its object's time at every commit). `break-lock` deletes them all.
pub struct ObjLock {
    store: std::sync::Arc<S3Bucket>,
    exclusive: bool,
    timeout: Option<f64>,
    /// Our exclusive object exists (`lock.exclusive` or our candidate); the lock may still be
    /// waiting for shared holders.
    placed_exclusive: Option<String>,
    /// The exclusive lock is held.
    held_exclusive: bool,
    shared_name: Option<String>,
    /// Random, per acquisition: names our candidate and shared objects and is in their body.
    nonce: String,
    body: Vec<u8>,
    /// Deletes our lock objects if a signal ends the process (see `platform::signals`).
    cleanup: Option<crate::platform::signals::Cleanup>,
}

/// A fresh random lock nonce (16 hex digits).
fn new_nonce() -> String {
    let mut nonce = [0u8; 8];
    rand::Rng::fill(&mut rand::thread_rng(), &mut nonce[..]);
    hex::encode(nonce)
}

/// `<host>.<pid>.<nonce>`: the unique part of per-client lock object names.
fn lock_suffix(nonce: &str) -> String {
    format!(
        "{}.{}.{}",
        super::hostid::host_id().replace('/', "_"),
        std::process::id(),
        nonce
    )
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ObjLock {
    /// A lock (not yet acquired) on the repository in `store`.
    pub fn new(store: std::sync::Arc<S3Bucket>, exclusive: bool, timeout: Option<f64>) -> Self {
        ObjLock {
            store,
            exclusive,
            timeout,
            placed_exclusive: None,
            held_exclusive: false,
            shared_name: None,
            nonce: String::new(),
            body: Vec::new(),
            cleanup: None,
        }
    }

    /// Registers the deletion of every lock object of this acquisition (its nonce is in the
    /// name or the body), to run if a signal ends the process where no code winds down by
    /// itself; registered before anything is placed, so a half-done acquire is covered too.
    fn register_cleanup(&mut self) {
        let store = self.store.clone();
        let nonce = self.nonce.clone();
        // Objects placed under an earlier nonce (a shared lock being upgraded).
        let earlier: Vec<String> = self.shared_name.iter().cloned().collect();
        self.cleanup = Some(crate::platform::signals::on_emergency_exit(move || {
            let Ok(names) = store.list("lock.") else {
                return;
            };
            for (name, _) in names {
                let ours = name.ends_with(&nonce)
                    || earlier.contains(&name)
                    || store.get(&name).ok().flatten().is_some_and(|body| {
                        serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| {
                                v.get("nonce").and_then(|n| n.as_str()).map(|n| n == nonce)
                            })
                            .unwrap_or(false)
                    });
                if ours {
                    let _ = store.delete(&name);
                }
            }
        }));
    }

    /// The body of our lock objects: who, when, and the nonce.
    fn make_body(nonce: &str) -> Vec<u8> {
        serde_json::json!({
            "host": super::hostid::host_id(),
            "pid": std::process::id(),
            "thread": 0,
            "time": now_secs(),
            "nonce": nonce,
        })
        .to_string()
        .into_bytes()
    }

    fn is_stale(body: &[u8]) -> bool {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return false;
        };
        let host = v.get("host").and_then(|h| h.as_str()).unwrap_or("");
        let pid = v.get("pid").and_then(|p| p.as_u64()).unwrap_or(0);
        // Only our lock bodies carry a time; anything else under `lock.` (borg's `lock.roster`
        // when borg works on the same folder behind `rclone serve s3`, say) is not ours to judge.
        let Some(time) = v.get("time").and_then(|t| t.as_f64()) else {
            return false;
        };
        let limit = env("HOARD_S3_LOCK_STALE")
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(86400.0);
        if now_secs() - time > limit {
            return true;
        }
        let our = super::hostid::host_id();
        if host == our && pid > 0 {
            let id = super::lock::ProcessId {
                host: host.to_string(),
                pid: pid as i64,
                thread: 0,
            };
            return !super::hostid::process_alive(our, &id);
        }
        false
    }

    fn lock_err(&self) -> super::LockError {
        super::LockError::Timeout(format!("{}/lock", self.store.display()))
    }

    fn io_err(&self, e: io::Error) -> super::LockError {
        super::LockError::Failed(format!("{}/lock", self.store.display()), e.to_string())
    }

    /// Removes stale lock objects of other clients; true if something was removed.
    fn kill_stale(&self) -> io::Result<bool> {
        let mut killed = false;
        for (name, _) in self.store.list("lock.")? {
            if Some(&name) == self.shared_name.as_ref()
                || Some(&name) == self.placed_exclusive.as_ref()
            {
                continue;
            }
            if let Some(body) = self.store.get(&name)? {
                if Self::is_stale(&body) {
                    tracing::warn!("Killed stale lock {name}.");
                    self.store.delete(&name)?;
                    killed = true;
                }
            }
        }
        Ok(killed)
    }

    /// Exclusive objects (`lock.exclusive` and candidates) other than ours.
    fn other_exclusive(&self, names: &[(String, u64)]) -> bool {
        names.iter().any(|(n, _)| {
            n.starts_with("lock.exclusive") && Some(n) != self.placed_exclusive.as_ref()
        })
    }

    /// Shared objects other than ours.
    fn other_shared(&self, names: &[(String, u64)]) -> bool {
        names
            .iter()
            .any(|(n, _)| n.starts_with("lock.shared.") && Some(n) != self.shared_name.as_ref())
    }

    /// Acquires the lock, waiting up to the timeout (`None` = forever).
    pub fn acquire(&mut self) -> Result<(), super::LockError> {
        let start = std::time::Instant::now();
        let expired = |t: &Option<f64>| t.is_some_and(|t| start.elapsed().as_secs_f64() >= t);
        self.nonce = new_nonce();
        self.body = Self::make_body(&self.nonce);
        self.register_cleanup();
        loop {
            let got = self.try_once().map_err(|e| self.io_err(e))?;
            if got {
                return Ok(());
            }
            let _ = self.kill_stale();
            if expired(&self.timeout) {
                return Err(self.lock_err());
            }
            let left = self
                .timeout
                .map(|t| t - start.elapsed().as_secs_f64())
                .unwrap_or(1.0);
            // a random part, so that two contenders that withdrew do not meet again
            let pause = 0.05 + rand::Rng::gen_range(&mut rand::thread_rng(), 0.0..0.15);
            std::thread::sleep(Duration::from_secs_f64(left.clamp(0.01, pause)));
        }
    }

    /// Writes our exclusive object; false if `lock.exclusive` was refused (it exists).
    fn place_exclusive(&mut self) -> io::Result<bool> {
        let name = if self.store.conditional_writes()? {
            if !self.store.put_if_absent("lock.exclusive", &self.body)? {
                return Ok(false);
            }
            "lock.exclusive".to_string()
        } else {
            let name = format!("lock.exclusive.{}", lock_suffix(&self.nonce));
            self.store.put(&name, &self.body)?;
            name
        };
        self.placed_exclusive = Some(name);
        Ok(true)
    }

    /// Deletes our exclusive object (`lock.exclusive` only while it still holds our body).
    fn withdraw_exclusive(&mut self) -> io::Result<()> {
        self.held_exclusive = false;
        let Some(name) = self.placed_exclusive.take() else {
            return Ok(());
        };
        if name == "lock.exclusive" && self.store.get(&name)?.as_deref() != Some(&self.body[..]) {
            return Ok(());
        }
        self.store.delete(&name)
    }

    fn try_once(&mut self) -> io::Result<bool> {
        if self.exclusive {
            if self.placed_exclusive.is_none() && !self.place_exclusive()? {
                return Ok(false);
            }
            let names = self.store.list("lock.")?;
            if self.other_exclusive(&names) {
                // another contender (or a holder): withdraw, retry after a random pause
                self.withdraw_exclusive()?;
                return Ok(false);
            }
            if self.other_shared(&names) {
                return Ok(false); // keep our object, wait for the shared holders to leave
            }
            if let Some(n) = self.shared_name.take() {
                self.store.delete(&n)?;
            }
            self.held_exclusive = true;
            Ok(true)
        } else {
            if !self.store.list("lock.exclusive")?.is_empty() {
                return Ok(false);
            }
            let name = format!("lock.shared.{}", lock_suffix(&self.nonce));
            self.store.put(&name, &self.body)?;
            if !self.store.list("lock.exclusive")?.is_empty() {
                self.store.delete(&name)?;
                return Ok(false);
            }
            self.shared_name = Some(name);
            Ok(true)
        }
    }

    /// Releases whatever is held.
    pub fn release(&mut self) -> Result<(), super::LockError> {
        let withdrawn = self.withdraw_exclusive();
        let shared = self.shared_name.take().map(|n| self.store.delete(&n));
        if withdrawn.is_ok() && shared.as_ref().is_none_or(|r| r.is_ok()) {
            self.cleanup = None;
        }
        withdrawn.map_err(|e| self.io_err(e))?;
        if let Some(r) = shared {
            r.map_err(|e| self.io_err(e))?;
        }
        Ok(())
    }

    /// Upgrades a shared lock to an exclusive one.
    pub fn upgrade(&mut self) -> Result<(), super::LockError> {
        if self.held_exclusive {
            return Ok(());
        }
        self.exclusive = true;
        self.acquire()
    }

    /// Whether the exclusive lock is held.
    pub fn got_exclusive_lock(&self) -> bool {
        self.held_exclusive
    }

    /// Refreshes the time in the exclusive lock object (long transactions stay non-stale).
    pub fn refresh(&mut self) {
        if !self.held_exclusive {
            return;
        }
        if let Some(name) = &self.placed_exclusive {
            let body = Self::make_body(&self.nonce); // same nonce, new time
            if self.store.put(name, &body).is_ok() {
                self.body = body;
            }
        }
    }

    /// Forgets what is held without deleting anything (after `break-lock`).
    pub fn disown(&mut self) {
        self.held_exclusive = false;
        self.placed_exclusive = None;
        self.shared_name = None;
        self.cleanup = None;
    }

    /// Deletes every lock object of the repository (`break-lock`).
    pub fn break_all(store: &S3Bucket) -> io::Result<()> {
        for (name, _) in store.list("lock.")? {
            store.delete(&name)?;
        }
        Ok(())
    }
}

impl Drop for ObjLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_bucket_and_prefix() {
        assert_eq!(
            S3Target::split_path("/b/x//y/"),
            Some(("b".into(), "x/y".into()))
        );
        assert_eq!(S3Target::split_path("b"), Some(("b".into(), "".into())));
        assert_eq!(S3Target::split_path("/"), None);
    }

    #[test]
    fn ini_lookup_and_percent_decoding() {
        let t = "[default]\naws_access_key_id = A\n[prof]\naws_access_key_id=B\n";
        assert_eq!(
            ini_value(t, "prof", "aws_access_key_id").as_deref(),
            Some("B")
        );
        assert_eq!(
            ini_value(t, "default", "aws_access_key_id").as_deref(),
            Some("A")
        );
        assert_eq!(ini_value(t, "x", "aws_access_key_id"), None);
        assert_eq!(percent_decode("data%2F0%2F12"), "data/0/12");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn lock_names_are_unique_per_client_and_keep_their_nonce() {
        let (nonce, other) = (new_nonce(), new_nonce());
        assert_ne!(nonce, other);
        let (na, nb) = (lock_suffix(&nonce), lock_suffix(&other));
        assert_ne!(na, nb);
        let body = ObjLock::make_body(&nonce);
        let v = serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        assert_eq!(v["nonce"].as_str(), Some(nonce.as_str()));
        assert_eq!(nonce.len(), 16);
        assert!(na.ends_with(&format!(".{}.{nonce}", std::process::id())));
        assert!(!na.contains('/'));
    }

    #[test]
    fn stale_rules() {
        let old = serde_json::json!({"host": "elsewhere", "pid": 1, "time": 0.0}).to_string();
        assert!(ObjLock::is_stale(old.as_bytes()));
        // borg's lock.roster (no time): never stale for us
        let roster = serde_json::json!({"exclusive": [["host", 1, 0]], "shared": []}).to_string();
        assert!(!ObjLock::is_stale(roster.as_bytes()));
        let fresh =
            serde_json::json!({"host": "elsewhere", "pid": 1, "time": now_secs()}).to_string();
        assert!(!ObjLock::is_stale(fresh.as_bytes()));
        let mine = serde_json::json!({"host": super::super::hostid::host_id(),
            "pid": std::process::id(), "time": now_secs()})
        .to_string();
        assert!(!ObjLock::is_stale(mine.as_bytes()));
    }
}
