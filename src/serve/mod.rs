//! `hoard serve`: the server end of borg's RPC protocol (FORMAT.md §9), speaking to borg 1.2/1.4
//! clients and to hoard's own [`RemoteRepository`](crate::repo::remote::RemoteRepository).
//!
//! Requests are read from stdin, answered strictly in order on stdout (dict or legacy tuple
//! format, whichever the request used), and log records go to stderr: `$LOG LEVEL name Remote:
//! msg` lines until a dict-format `negotiate`, JSON `log_message` lines after it (§9.6).
//! The server-side policy (§9.7) — `--restrict-to-path`, `--restrict-to-repository`,
//! `--append-only`, `--storage-quota` — is applied in `open` on the resolved path ([`path`]).
//! At end of input, on a failed write to a vanished client, and on SIGTERM/SIGHUP/SIGINT
//! ([`stdio`]) the repository is closed: an uncommitted transaction is dropped and the lock
//! released.

pub mod path;
pub mod stdio;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::msgpack::{Limits, StreamDecoder, Value};
use crate::repo::{
    CreateOptions, LocalRepository, LockError, ObjectId, OpenOptions, RepoError, Repository,
};
use crate::rpc::{self as protocol, ErrorReply, Request, RequestError};

/// The version string in server messages (borg's `__version__`).
pub const SERVER_VERSION_TEXT: &str = crate::version::BORG_VERSION;

/// borg's `RepositoryServer.rpc_methods`.
pub const RPC_METHODS: &[&str] = &[
    "__len__",
    "check",
    "commit",
    "delete",
    "destroy",
    "get",
    "list",
    "scan",
    "negotiate",
    "open",
    "put",
    "rollback",
    "save_key",
    "load_key",
    "break_lock",
    "get_free_nonce",
    "commit_nonce_reservation",
    "inject_exception",
];

/// hoard's own methods ([`protocol::hoard_ext`]), announced in `negotiate`'s dict reply and
/// called only by hoard clients.
pub const HOARD_RPC_METHODS: &[&str] = &[
    protocol::hoard_ext::SEGMENTS,
    protocol::hoard_ext::SEGMENT_OBJECTS,
];

/// Server-side policy (the options of `serve`).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--restrict-to-path` (repeatable).
    pub restrict_to_paths: Vec<PathBuf>,
    /// `--restrict-to-repository` (repeatable).
    pub restrict_to_repositories: Vec<PathBuf>,
    /// `--append-only`.
    pub append_only: bool,
    /// `--storage-quota` in bytes.
    pub storage_quota: Option<u64>,
}

// Process state, not configuration: the server's logger (one `serve` per process).
static LOG_LEVEL: AtomicU8 = AtomicU8::new(30);
static LOG_JSON: AtomicBool = AtomicBool::new(false);

/// Sets the server's log threshold (Python levels: 10 debug … 50 critical).
pub fn set_log_level(level: u8) {
    LOG_LEVEL.store(level, Ordering::Relaxed);
}

fn level_name(level: u8) -> &'static str {
    match level {
        0..=10 => "DEBUG",
        11..=20 => "INFO",
        21..=30 => "WARNING",
        31..=40 => "ERROR",
        _ => "CRITICAL",
    }
}

/// Writes one log record to stderr in the current serve format, if its level is enabled.
pub fn log(level: u8, name: &str, message: &str) {
    if level < LOG_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let line = if LOG_JSON.load(Ordering::Relaxed) {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        format!(
            "{{\"type\": \"log_message\", \"time\": {}, \"message\": {}, \"levelname\": \"{}\", \"name\": {}}}\n",
            serde_json::Value::from(time),
            serde_json::Value::from(message),
            level_name(level),
            serde_json::Value::from(name)
        )
    } else {
        let mut s = String::new();
        for l in message.split('\n') {
            s.push_str(&format!(
                "$LOG {} {} Remote: {}\n",
                level_name(level),
                name,
                l
            ));
        }
        s
    };
    let stderr = std::io::stderr();
    let mut e = stderr.lock();
    let _ = e.write_all(line.as_bytes());
    let _ = e.flush();
}

/// Writes one progress record to stderr, as borg serve does (it always reports progress; the
/// client shows it with `--progress`). Only in the JSON format: a client that did not
/// negotiate with a dict (borg 1.0) would show the record as text.
pub fn progress_record(ev: &crate::progress::ProgressEvent) {
    if !LOG_JSON.load(Ordering::Relaxed) {
        return;
    }
    let line = crate::progress::render(ev, true);
    let stderr = std::io::stderr();
    let mut e = stderr.lock();
    let _ = e.write_all(line.as_bytes());
    let _ = e.flush();
}

/// A tracing layer that sends library events (repository warnings) to [`log`].
pub struct ServeLogLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ServeLogLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => 40,
            tracing::Level::WARN => 30,
            tracing::Level::INFO => 20,
            _ => 10,
        };
        if level < LOG_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let message = crate::event_text::message(event);
        let target = event.metadata().target();
        let name = if target.starts_with("hoard::repo") {
            "borg.repository".to_string()
        } else {
            target.replace("::", ".")
        };
        log(level, &name, &message);
    }
}

/// An exception as the server reports it.
#[derive(Debug, Clone)]
struct ServerError {
    class: String,
    args: Vec<Value>,
    message: String,
    /// A borg `Error` subclass (short message is the message itself).
    borg_error: bool,
    /// Show the traceback on the client.
    traceback: bool,
}

impl ServerError {
    fn error(class: &str, args: Vec<Value>, message: String, traceback: bool) -> ServerError {
        ServerError {
            class: class.into(),
            args,
            message,
            borg_error: true,
            traceback,
        }
    }

    fn python(class: &str, message: String) -> ServerError {
        ServerError {
            class: class.into(),
            args: vec![Value::raw(&message)],
            message,
            borg_error: false,
            traceback: true,
        }
    }

    fn short(&self) -> String {
        if self.borg_error {
            self.message.clone()
        } else if self.message.is_empty() {
            format!("{}\n", self.class)
        } else {
            format!("{}: {}\n", self.class, self.message)
        }
    }

    /// Classes the client rebuilds itself: borg logs no traceback for them.
    fn silent(&self) -> bool {
        matches!(
            self.class.as_str(),
            "DoesNotExist" | "AlreadyExists" | "PathNotAllowed"
        )
    }
}

fn s(v: &str) -> Value {
    Value::raw(v)
}

/// Maps a repository error to borg's exception class and arguments.
fn from_repo_error(e: RepoError) -> ServerError {
    let msg = e.to_string();
    match e {
        RepoError::DoesNotExist(p) => ServerError::error("DoesNotExist", vec![s(&p)], msg, false),
        RepoError::AlreadyExists(p) => ServerError::error("AlreadyExists", vec![s(&p)], msg, false),
        RepoError::PathAlreadyExists(p) => {
            ServerError::error("PathAlreadyExists", vec![s(&p)], msg, false)
        }
        RepoError::ParentPathDoesNotExist(p) => {
            ServerError::error("ParentPathDoesNotExist", vec![s(&p)], msg, false)
        }
        RepoError::InvalidRepository(p) => {
            ServerError::error("InvalidRepository", vec![s(&p)], msg, false)
        }
        RepoError::InvalidRepositoryConfig(p, r) => {
            ServerError::error("InvalidRepositoryConfig", vec![s(&p), s(&r)], msg, false)
        }
        RepoError::AtticRepository(p) => {
            ServerError::error("AtticRepository", vec![s(&p)], msg, false)
        }
        RepoError::CheckNeeded(p) => ServerError::error("CheckNeeded", vec![s(&p)], msg, true),
        RepoError::ObjectNotFound(id, p) => {
            ServerError::error("ObjectNotFound", vec![s(&id), s(&p)], msg, true)
        }
        RepoError::InsufficientFreeSpace(a, b) => {
            ServerError::error("InsufficientFreeSpaceError", vec![s(&a), s(&b)], msg, false)
        }
        RepoError::StorageQuotaExceeded(a, b) => {
            ServerError::error("StorageQuotaExceeded", vec![s(&a), s(&b)], msg, false)
        }
        RepoError::Integrity(t) => ServerError::error("IntegrityError", vec![s(&t)], msg, true),
        RepoError::FileIntegrity(t) => {
            ServerError::error("FileIntegrityError", vec![s(&t)], msg, true)
        }
        RepoError::Lock(l) => match l {
            LockError::Timeout(p) => ServerError::error("LockTimeout", vec![s(&p)], msg, false),
            LockError::Failed(p, r) => {
                ServerError::error("LockFailed", vec![s(&p), s(&r)], msg, true)
            }
            LockError::NotLocked(p) => ServerError::error("NotLocked", vec![s(&p)], msg, true),
            LockError::NotMyLock(p) => ServerError::error("NotMyLock", vec![s(&p)], msg, true),
        },
        RepoError::AppendOnly(_) => ServerError::python("ValueError", msg),
        RepoError::NonceMismatch => ServerError::python("Exception", msg),
        RepoError::NeedsExclusiveLock => ServerError::python("AssertionError", msg),
        RepoError::InvalidArgument(_) => ServerError::python("ValueError", msg),
        RepoError::Io { source, .. } => {
            let class = match source.kind() {
                std::io::ErrorKind::NotFound => "FileNotFoundError",
                std::io::ErrorKind::PermissionDenied => "PermissionError",
                _ => "OSError",
            };
            ServerError::python(class, msg)
        }
        RepoError::PathNotAllowed(p) => {
            ServerError::error("PathNotAllowed", vec![s(&p)], msg, false)
        }
        RepoError::InvalidRpcMethod(m) => {
            ServerError::error("InvalidRPCMethod", vec![s(&m)], msg, false)
        }
        other => ServerError::python("Exception", other.to_string()),
    }
}

/// borg's `sysinfo()`, in hoard's words.
fn sysinfo() -> String {
    let argv: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "Platform: {} {}\nBorg: {}  hoard: {}\nPID: {}  CWD: {}\nsys.argv: {:?}\nSSH_ORIGINAL_COMMAND: {:?}\n",
        std::env::consts::OS,
        std::env::consts::ARCH,
        SERVER_VERSION_TEXT,
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        cwd,
        argv,
        std::env::var("SSH_ORIGINAL_COMMAND").ok()
    )
}

/// Argument helpers (Python truthiness, defaults for absent or nil values).
fn arg_bool(r: &Request, name: &str, default: bool) -> bool {
    match r.arg(name) {
        None => default,
        Some(Value::Nil) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i != 0,
        Some(Value::Raw(b)) => !b.is_empty(),
        Some(_) => true,
    }
}

fn arg_id(r: &Request, name: &str) -> Result<ObjectId, ServerError> {
    r.arg(name)
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| ServerError::python("TypeError", format!("invalid {name} argument")))
}

fn arg_opt_u64(r: &Request, name: &str) -> Result<Option<u64>, ServerError> {
    match r.arg(name) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ServerError::python("TypeError", format!("invalid {name} argument"))),
    }
}

fn arg_f64(r: &Request, name: &str) -> Option<f64> {
    match r.arg(name) {
        Some(Value::Int(i)) => Some(*i as f64),
        Some(Value::Float(f)) => Some(*f),
        _ => None,
    }
}

fn ids_value(ids: Vec<ObjectId>) -> Value {
    Value::Array(ids.into_iter().map(Value::raw).collect())
}

/// borg's `PathNotAllowed` for `path`.
fn not_allowed(path: &Path) -> ServerError {
    ServerError::error(
        "PathNotAllowed",
        vec![s(&path.to_string_lossy())],
        format!("Repository path not allowed: {}", path.display()),
        false,
    )
}

/// One server session.
pub struct Server {
    opts: ServeOptions,
    /// The restrictions of `opts`, resolved once.
    policy: path::Policy,
    repo: Option<LocalRepository>,
}

impl Server {
    /// A server with the given policy.
    pub fn new(opts: ServeOptions) -> Server {
        let policy = path::Policy::new(&opts.restrict_to_paths, &opts.restrict_to_repositories);
        Server {
            opts,
            policy,
            repo: None,
        }
    }

    fn repo(&mut self, method: &str) -> Result<&mut LocalRepository, ServerError> {
        let m = if method == "__len__" {
            "__len__"
        } else {
            method
        };
        self.repo.as_mut().ok_or_else(|| {
            ServerError::python(
                "AttributeError",
                format!("'NoneType' object has no attribute '{m}'"),
            )
        })
    }

    fn open(&mut self, r: &Request) -> Result<Value, ServerError> {
        let raw = r
            .arg("path")
            .and_then(Value::as_bytes)
            .ok_or_else(|| ServerError::python("TypeError", "invalid path argument".into()))?
            .to_vec();
        log(
            10,
            "borg.remote",
            &format!(
                "Resolving repository path {:?}",
                String::from_utf8_lossy(&raw)
            ),
        );
        // Resolved once; the policy is checked on, and the repository opened at, this path.
        let path = match path::resolve_path(&raw) {
            Ok(p) => p,
            Err(unresolved) if self.policy.restricted() => {
                log(
                    10,
                    "borg.remote",
                    &format!(
                        "Cannot resolve all symbolic links of {:?}",
                        unresolved.display().to_string()
                    ),
                );
                return Err(not_allowed(&unresolved));
            }
            // No policy to enforce: the kernel decides, as with borg.
            Err(unresolved) => unresolved,
        };
        log(
            10,
            "borg.remote",
            &format!(
                "Resolved repository path to {:?}",
                path.display().to_string()
            ),
        );
        if !self.policy.allows(&path) {
            return Err(not_allowed(&path));
        }
        let create = arg_bool(r, "create", false);
        let client_append_only = arg_bool(r, "append_only", false);
        let append_only = (!create && self.opts.append_only) || client_append_only;
        let lock_wait = arg_f64(r, "lock_wait");
        let open = OpenOptions {
            exclusive: arg_bool(r, "exclusive", false),
            lock_wait,
            lock: arg_bool(r, "lock", true),
            append_only,
            storage_quota: self.opts.storage_quota,
        };
        // A second open replaces the first repository (closing it).
        self.repo = None;
        let repo = if create {
            LocalRepository::create_and_open(
                &path,
                &CreateOptions {
                    append_only,
                    storage_quota: self.opts.storage_quota,
                    make_parent_dirs: arg_bool(r, "make_parent_dirs", false),
                    ..CreateOptions::default()
                },
                &open,
            )
        } else {
            LocalRepository::open(&path, &open)
        }
        .map_err(from_repo_error)?;
        // A directory of the path replaced by a symbolic link between the check and the open
        // (by someone else on this host; the protocol cannot make links) is caught here.
        if self.policy.restricted() && path::realpath(&path).as_deref() != Some(path.as_path()) {
            drop(repo);
            return Err(not_allowed(&path));
        }
        let id = repo.id();
        let mut repo = repo;
        // Compaction in `commit` reports its progress to the client, as borg serve's does.
        repo.set_progress(crate::progress::Progress::new(progress_record));
        self.repo = Some(repo);
        Ok(Value::raw(id))
    }

    fn inject_exception(&mut self, r: &Request) -> Result<Value, ServerError> {
        let kind = r.arg("kind").and_then(Value::as_str).unwrap_or("");
        let s1 = "test string";
        Err(match kind {
            "DoesNotExist" => from_repo_error(RepoError::DoesNotExist(s1.into())),
            "AlreadyExists" => from_repo_error(RepoError::AlreadyExists(s1.into())),
            "CheckNeeded" => from_repo_error(RepoError::CheckNeeded(s1.into())),
            "IntegrityError" => from_repo_error(RepoError::Integrity(s1.into())),
            "PathNotAllowed" => from_repo_error(RepoError::PathNotAllowed("foo".into())),
            "ObjectNotFound" => {
                from_repo_error(RepoError::ObjectNotFound(s1.into(), "test string2".into()))
            }
            "InvalidRPCMethod" => from_repo_error(RepoError::InvalidRpcMethod(s1.into())),
            "divide" => ServerError::python(
                "ZeroDivisionError",
                "integer division or modulo by zero".into(),
            ),
            _ => return Ok(Value::Nil),
        })
    }

    fn check(&mut self, r: &Request) -> Result<Value, ServerError> {
        let repair = arg_bool(r, "repair", false);
        let max_duration = arg_opt_u64(r, "max_duration")?.unwrap_or(0);
        let repo = self.repo("check")?;
        log(20, "borg.repository", "Starting repository check");
        let report = repo
            .check_with_progress(repair, max_duration, &mut progress_record)
            .map_err(from_repo_error)?;
        let last = report.messages.len().saturating_sub(1);
        for (i, m) in report.messages.iter().enumerate() {
            let level = if i == last && report.errors == 0 {
                20
            } else {
                40
            };
            log(level, "borg.repository", m);
        }
        Ok(Value::Bool(report.ok))
    }

    /// `hoard_segments(marker, limit)` ([`protocol::hoard_ext::SEGMENTS`]).
    fn hoard_segments(&mut self, r: &Request) -> Result<Value, ServerError> {
        let m = protocol::hoard_ext::SEGMENTS;
        let marker = arg_opt_u64(r, "marker")?;
        let limit = arg_opt_u64(r, "limit")?
            .map_or(protocol::hoard_ext::SEGMENTS_PAGE, |l| l as usize)
            .min(protocol::hoard_ext::SEGMENTS_PAGE);
        let segments = self
            .repo(m)?
            .segments()
            .map_err(from_repo_error)?
            .unwrap_or_default();
        Ok(Value::Array(
            segments
                .into_iter()
                .filter(|i| marker.is_none_or(|after| u64::from(i.segment) > after))
                .take(limit)
                .map(|i| {
                    Value::Array(vec![
                        Value::int(i.segment),
                        Value::int(i.size),
                        Value::int(i.objects),
                    ])
                })
                .collect(),
        ))
    }

    /// `hoard_segment_objects(segments, start, limit)`
    /// ([`protocol::hoard_ext::SEGMENT_OBJECTS`]).
    fn hoard_segment_objects(&mut self, r: &Request) -> Result<Value, ServerError> {
        let m = protocol::hoard_ext::SEGMENT_OBJECTS;
        let bad = || ServerError::python("TypeError", "invalid segments argument".into());
        let segments: Vec<u32> = r
            .arg("segments")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let start = arg_opt_u64(r, "start")?.unwrap_or(0) as usize;
        let limit = arg_opt_u64(r, "limit")?
            .map_or(protocol::hoard_ext::SEGMENT_OBJECTS_PAGE, |l| l as usize)
            .min(protocol::hoard_ext::SEGMENT_OBJECTS_PAGE);
        let lists = self
            .repo(m)?
            .segment_objects(&segments)
            .map_err(from_repo_error)?;
        // The window start .. start + limit of the concatenated lists, cut per segment.
        let mut skip = start;
        let mut room = limit;
        let mut out = Vec::with_capacity(lists.len());
        for ids in lists {
            let from = skip.min(ids.len());
            skip -= from;
            let take = (ids.len() - from).min(room);
            room -= take;
            out.push(ids_value(ids[from..from + take].to_vec()));
        }
        Ok(Value::Array(out))
    }

    /// Runs one request.
    fn dispatch(&mut self, r: &Request) -> Result<Value, ServerError> {
        let m = r.method.as_str();
        if !RPC_METHODS.contains(&m) && !HOARD_RPC_METHODS.contains(&m) {
            return Err(from_repo_error(RepoError::InvalidRpcMethod(m.to_string())));
        }
        let map = |res: crate::repo::Result<Value>| res.map_err(from_repo_error);
        match m {
            "negotiate" => {
                let cd = r.arg("client_data").cloned().unwrap_or(Value::Nil);
                if cd == Value::int(2) {
                    return Ok(Value::int(2));
                }
                if matches!(cd, Value::Map(_)) {
                    LOG_JSON.store(true, Ordering::Relaxed);
                    log(
                        10,
                        "borg.remote",
                        "Initialized logging system for JSON-based protocol",
                    );
                }
                // The extra key tells a hoard client which of hoard's methods it may call;
                // borg clients look at `server_version` only.
                Ok(Value::Map(vec![
                    (
                        s("server_version"),
                        protocol::version_value(protocol::PROTOCOL_VERSION),
                    ),
                    (
                        s(protocol::hoard_ext::HOARD_FEATURES),
                        Value::Array(vec![s(protocol::hoard_ext::FEATURE_SEGMENTS)]),
                    ),
                ]))
            }
            protocol::hoard_ext::SEGMENTS => self.hoard_segments(r),
            protocol::hoard_ext::SEGMENT_OBJECTS => self.hoard_segment_objects(r),
            "open" => self.open(r),
            "inject_exception" => self.inject_exception(r),
            "check" => self.check(r),
            "get" => {
                let id = arg_id(r, "id")?;
                map(self.repo(m)?.get(&id).map(Value::Raw))
            }
            "put" => {
                let id = arg_id(r, "id")?;
                let data = r
                    .arg("data")
                    .and_then(Value::as_bytes)
                    .ok_or_else(|| {
                        ServerError::python("TypeError", "invalid data argument".into())
                    })?
                    .to_vec();
                map(self.repo(m)?.put(&id, &data).map(|_| Value::Nil))
            }
            "delete" => {
                let id = arg_id(r, "id")?;
                map(self.repo(m)?.delete(&id).map(|_| Value::Nil))
            }
            "commit" => {
                let compact = arg_bool(r, "compact", true);
                let threshold = arg_f64(r, "threshold").unwrap_or(0.1);
                map(self.repo(m)?.commit(compact, threshold).map(|_| Value::Nil))
            }
            "rollback" => map(self.repo(m)?.rollback().map(|_| Value::Nil)),
            "destroy" => map(self.repo(m)?.destroy().map(|_| Value::Nil)),
            "__len__" => map(self.repo(m)?.len().map(|n| Value::int(n as u64))),
            "list" | "scan" => {
                let limit = arg_opt_u64(r, "limit")?.map(|l| l as usize);
                let marker = match r.arg("marker") {
                    None | Some(Value::Nil) => None,
                    Some(_) => Some(arg_id(r, "marker")?),
                };
                let repo = self.repo(m)?;
                let res = if m == "list" {
                    repo.list(limit, marker.as_ref())
                } else {
                    repo.scan(limit, marker.as_ref())
                };
                map(res.map(ids_value))
            }
            "save_key" => {
                let data = r
                    .arg("keydata")
                    .and_then(Value::as_bytes)
                    .unwrap_or_default()
                    .to_vec();
                map(self.repo(m)?.save_key(&data).map(|_| Value::Nil))
            }
            "load_key" => map(self.repo(m)?.load_key().map(Value::Raw)),
            "break_lock" => map(self.repo(m)?.break_lock().map(|_| Value::Nil)),
            "get_free_nonce" => map(self
                .repo(m)?
                .get_free_nonce()
                .map(|n| n.map(Value::int).unwrap_or(Value::Nil))),
            "commit_nonce_reservation" => {
                let next = arg_opt_u64(r, "next_unreserved")?.unwrap_or(0);
                let start = arg_opt_u64(r, "start_nonce")?;
                map(self
                    .repo(m)?
                    .commit_nonce_reservation(next, start)
                    .map(|_| Value::Nil))
            }
            _ => Err(from_repo_error(RepoError::InvalidRpcMethod(m.to_string()))),
        }
    }

    /// Answers one request: the reply bytes.
    pub fn handle(&mut self, req: &Request) -> Vec<u8> {
        match self.dispatch(req) {
            Ok(v) => protocol::encode_result(req.dict, &req.msgid, v),
            Err(e) => {
                let short = e.short();
                let full = vec![
                    "Traceback (most recent call last):\n".to_string(),
                    format!("  hoard serve, in {}\n", req.method),
                    if e.borg_error {
                        format!("{}: {}\n", e.class, e.message)
                    } else {
                        short.clone()
                    },
                ];
                if req.dict {
                    if !e.silent() {
                        log(10, "borg.remote", &full.join("\n"));
                    }
                } else if !e.silent() {
                    if e.borg_error {
                        log(40, "borg.remote", &e.message);
                    } else {
                        log(
                            40,
                            "borg.remote",
                            &format!("{} Exception in RPC call", e.class),
                        );
                    }
                    log(
                        if e.traceback { 40 } else { 10 },
                        "borg.remote",
                        &format!("{}\n{}", full.join(""), sysinfo()),
                    );
                }
                let reply = ErrorReply {
                    class: e.class.clone(),
                    args: e.args.clone(),
                    full,
                    short: vec![short],
                    trace: e.traceback,
                    sysinfo: sysinfo(),
                };
                protocol::encode_error(req.dict, &req.msgid, &reply)
            }
        }
    }

    /// Serves requests from `input` until it ends; returns the exit code (0, or 2 after a
    /// protocol error from the client).
    pub fn serve(&mut self, mut input: impl Read, mut output: impl Write) -> i32 {
        let mut decoder = StreamDecoder::new(Limits::RPC_SERVER);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => {
                    if self.repo.is_none() {
                        // borg writes this to stdout (where no client reads any more).
                        let _ = output.write_all(
                            format!(
                                "Borg {SERVER_VERSION_TEXT}: Got connection close before repository was opened.\n"
                            )
                            .as_bytes(),
                        );
                    }
                    self.close();
                    return 0;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close();
                    return 0;
                }
            };
            decoder.feed(&buf[..n]);
            loop {
                let v = match decoder.next_value() {
                    Ok(Some(v)) => v,
                    Ok(None) => break,
                    Err(e) => {
                        // A request over `Limits::RPC_SERVER` (or no msgpack at all): one line,
                        // and this connection ends; the next one is served afresh.
                        log(
                            40,
                            "borg.archiver",
                            &format!(
                                "Local Exception: {e} (request at input offset {})",
                                decoder.offset()
                            ),
                        );
                        self.close();
                        return 2;
                    }
                };
                let reply = match protocol::parse_request(v) {
                    Ok(req) => self.handle(&req),
                    Err(RequestError::Positional(msgid)) => {
                        let e = ErrorReply {
                            class: "IndexError".into(),
                            args: Vec::new(),
                            full: Vec::new(),
                            short: vec!["IndexError: tuple index out of range\n".into()],
                            trace: true,
                            sysinfo: sysinfo(),
                        };
                        protocol::encode_error(false, &msgid, &e)
                    }
                    Err(RequestError::Format) => {
                        log(
                            40,
                            "borg.archiver",
                            &format!(
                                "Borg {SERVER_VERSION_TEXT}: Got unexpected RPC data format from client."
                            ),
                        );
                        self.close();
                        return 2;
                    }
                };
                if output
                    .write_all(&reply)
                    .and_then(|_| output.flush())
                    .is_err()
                {
                    self.close();
                    return 0;
                }
            }
        }
    }

    /// Closes the repository: the uncommitted transaction is dropped, the lock released.
    pub fn close(&mut self) {
        if let Some(mut r) = self.repo.take() {
            let _ = r.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        server: &mut Server,
        dict: bool,
        id: u64,
        method: &str,
        args: &[(&str, Value)],
    ) -> Value {
        let b = protocol::encode_request(dict, id, method, args);
        let (v, _) = crate::msgpack::decode_one(&b, Limits::RPC_SERVER).unwrap();
        let req = protocol::parse_request(v).unwrap();
        let out = server.handle(&req);
        crate::msgpack::decode_one(&out, Limits::RPC_CLIENT)
            .unwrap()
            .0
    }

    #[test]
    fn restrict_to_path_refuses_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("allowed");
        std::fs::create_dir(&allowed).unwrap();
        let mut server = Server::new(ServeOptions {
            restrict_to_paths: vec![allowed.clone()],
            ..ServeOptions::default()
        });
        let outside = tmp.path().join("allowedx/repo");
        let r = call(
            &mut server,
            true,
            1,
            "open",
            &[
                ("path", Value::raw(outside.to_string_lossy().as_bytes())),
                ("create", Value::Bool(true)),
            ],
        );
        assert_eq!(
            r.get("exception_class"),
            Some(&Value::raw("PathNotAllowed"))
        );
        let inside = allowed.join("repo");
        let r = call(
            &mut server,
            true,
            2,
            "open",
            &[
                ("path", Value::raw(inside.to_string_lossy().as_bytes())),
                ("create", Value::Bool(true)),
            ],
        );
        assert!(r.get("r").and_then(Value::as_bytes).is_some(), "{r:?}");
        let r = call(&mut server, false, 3, "__len__", &[]);
        assert_eq!(
            r,
            Value::Array(vec![
                Value::int(1),
                Value::int(3),
                Value::Nil,
                Value::int(0)
            ])
        );
        let r = call(&mut server, true, 4, "bogus", &[]);
        assert_eq!(
            r.get("exception_class"),
            Some(&Value::raw("InvalidRPCMethod"))
        );
    }

    #[test]
    fn calls_before_open_are_attribute_errors() {
        let mut server = Server::new(ServeOptions::default());
        let r = call(
            &mut server,
            true,
            1,
            "get",
            &[("id", Value::raw([0u8; 32]))],
        );
        assert_eq!(
            r.get("exception_class"),
            Some(&Value::raw("AttributeError"))
        );
    }
}
