//! Remote repositories: a client of `borg serve` (or `hoard serve`) over ssh (spec §9).
//!
//! [`RemoteRepository`] starts `BORG_RSH` (default `ssh`) with the `borg serve` command line of
//! §9.1, negotiates the protocol (§9.2), opens the repository and then implements
//! [`Repository`] by RPC. Writes (`put`, `delete`) are sent without waiting and their errors
//! collected later; [`Repository::get_many`] keeps up to [`MAX_INFLIGHT`](crate::rpc::MAX_INFLIGHT) requests in
//! flight (§9.5). The server's stderr is forwarded line by line to a log sink with borg's
//! `Remote: ` prefix (§9.6); its progress records go to the progress sink of the call they
//! belong to (`check`, compaction in `commit`), as borg's client shows them with `--progress`.
//!
//! One thread reads the child's stdout (decoding replies) and stderr (log lines, progress)
//! whenever either has data, stderr first, so the client never deadlocks on full pipes and a
//! call's progress arrives before its reply; a dead connection or garbage on the stream ends
//! in one [`RepoError`], never a hang.

pub mod logline;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CheckReport, ObjectId, RepoError, Repository, Result, LIST_SCAN_LIMIT};
use crate::location::Location;
use crate::msgpack::{DecodeError, Limits, StreamDecoder, Value};
use crate::rpc::{self as protocol, ErrorReply, Reply, MAX_INFLIGHT};

/// Most `get` requests sent ahead on [`Repository::prefetch`] hints and not claimed yet.
const PREFETCH_LIMIT: usize = 4 * MAX_INFLIGHT;

pub use crate::options::ClientOptions;

/// How to open the remote repository (the arguments of the `open` RPC).
#[derive(Debug, Clone)]
pub struct RemoteOpenOptions {
    /// Create the repository (`init`).
    pub create: bool,
    /// Take the exclusive lock.
    pub exclusive: bool,
    /// Seconds to wait for a lock (`None` = forever).
    pub lock_wait: Option<f64>,
    /// Take a lock at all.
    pub lock: bool,
    /// Ask for append-only mode (on create: write it into the config).
    pub append_only: bool,
    /// Create missing parent directories.
    pub make_parent_dirs: bool,
    /// `--storage-quota` of `init`, passed to `serve` on its command line (bytes).
    pub storage_quota: Option<u64>,
}

impl Default for RemoteOpenOptions {
    fn default() -> Self {
        RemoteOpenOptions {
            create: false,
            exclusive: false,
            lock_wait: Some(1.0),
            lock: true,
            append_only: false,
            make_parent_dirs: false,
            storage_quota: None,
        }
    }
}

/// What the stdout reader thread delivers.
enum Incoming {
    /// A decoded reply.
    Reply(Reply),
    /// The stream ended (EOF or read error).
    Closed,
    /// Undecodable or unexpected data (shown on one line).
    Garbage(String),
    /// A progress record from the server's stderr (sent by the stderr reader).
    Progress(crate::progress::ProgressEvent),
}

/// Shows unexpected server data the way borg does (text, else hex bytes), on one line.
fn describe_garbage(data: &[u8]) -> String {
    let head = &data[..data.len().min(128)];
    match std::str::from_utf8(head) {
        Ok(t) => t.escape_debug().to_string(),
        Err(_) => head
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Decodes the server's stdout into replies.
struct ReplyReader {
    decoder: StreamDecoder,
}

impl ReplyReader {
    fn new() -> ReplyReader {
        ReplyReader {
            decoder: StreamDecoder::new(Limits::RPC_CLIENT),
        }
    }

    /// Feeds one read's bytes and sends the replies they complete; false once the stream is
    /// done with (garbage, or nobody listens any more).
    fn feed(&mut self, chunk: &[u8], tx: &mpsc::Sender<Incoming>) -> bool {
        self.decoder.feed(chunk);
        loop {
            match self.decoder.next_value() {
                Ok(Some(v)) => match protocol::parse_reply(v) {
                    Some(r) => {
                        if tx.send(Incoming::Reply(r)).is_err() {
                            return false;
                        }
                    }
                    None => {
                        let _ = tx.send(Incoming::Garbage(describe_garbage(chunk)));
                        return false;
                    }
                },
                Ok(None) => return true,
                Err(e) => {
                    // Bytes that are no msgpack are shown as borg shows them; a reply
                    // over the bounds of `Limits::RPC_CLIENT` also says which bound.
                    let text = match e {
                        DecodeError::InvalidMarker(_) => describe_garbage(chunk),
                        e => format!(
                            "{e} (reply at offset {}): {}",
                            self.decoder.offset(),
                            describe_garbage(chunk)
                        ),
                    };
                    let _ = tx.send(Incoming::Garbage(text));
                    return false;
                }
            }
        }
    }
}

/// The longest stderr line the client keeps before it shows what it has: a server that never
/// ends a line must not grow the client's memory.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// Splits the server's stderr into lines: progress records go to the connection (the call
/// waiting for its reply shows them), everything else to the log.
struct StderrLines {
    pending: Vec<u8>,
    queued: QueuedProgress,
}

impl StderrLines {
    fn feed(&mut self, chunk: &[u8], tx: &mpsc::Sender<Incoming>) {
        self.pending.extend_from_slice(chunk);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            dispatch_stderr_line(&line, tx, &self.queued);
        }
        if self.pending.len() > MAX_STDERR_LINE {
            self.finish(tx);
        }
    }

    /// Hands on what is left without a line end.
    fn finish(&mut self, tx: &mpsc::Sender<Incoming>) {
        if !self.pending.is_empty() {
            let mut line = std::mem::take(&mut self.pending);
            line.push(b'\n');
            dispatch_stderr_line(&line, tx, &self.queued);
        }
    }
}

/// Progress records sent to the connection and not yet received, at most this many: beyond
/// it a server's records are dropped until the client catches up, so a server that floods
/// them cannot grow the client's memory.
const MAX_QUEUED_PROGRESS: usize = 4096;

/// Counts the progress records in the channel (see [`MAX_QUEUED_PROGRESS`]).
type QueuedProgress = Arc<std::sync::atomic::AtomicUsize>;

fn dispatch_stderr_line(line: &[u8], tx: &mpsc::Sender<Incoming>, queued: &QueuedProgress) {
    use std::sync::atomic::Ordering;
    let text = String::from_utf8_lossy(line);
    match logline::parse_progress(&text) {
        Some(ev) => {
            if queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_PROGRESS
                || tx.send(Incoming::Progress(ev)).is_err()
            {
                queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
        None => logline::handle_remote_line(&text),
    }
}

/// Reads the server's stdout (replies) and stderr (log lines, progress records) in one
/// thread, stderr first: what the server wrote to stderr before a reply (the progress of the
/// call it answers) reaches the connection before that reply. Runs until both streams end;
/// sends [`Incoming::Closed`] when stdout ends.
fn spawn_reader(
    out: std::process::ChildStdout,
    mut err: Option<std::process::ChildStderr>,
    tx: mpsc::Sender<Incoming>,
    queued: QueuedProgress,
) -> JoinHandle<()> {
    use std::os::fd::AsRawFd;
    std::thread::spawn(move || {
        let mut replies = ReplyReader::new();
        let mut lines = StderrLines {
            pending: Vec::new(),
            queued,
        };
        // Dropped (closed) as soon as it is done with: a server still writing gets EPIPE.
        let mut out = Some(out);
        let mut buf = vec![0u8; 256 * 1024];
        while out.is_some() || err.is_some() {
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(2);
            if let Some(e) = &err {
                fds.push(libc::pollfd {
                    fd: e.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if let Some(o) = &out {
                fds.push(libc::pollfd {
                    fd: o.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let stderr_ready = err.is_some() && fds[0].revents != 0;
            if stderr_ready {
                if let Some(e) = err.as_mut() {
                    match e.read(&mut buf[..32 * 1024]) {
                        Ok(0) | Err(_) => {
                            lines.finish(&tx);
                            err = None;
                        }
                        Ok(n) => lines.feed(&buf[..n], &tx),
                    }
                }
                // Drain stderr before the next reply is read.
                continue;
            }
            let stdout_ready = fds.last().is_some_and(|f| f.revents != 0);
            if let (true, Some(o)) = (stdout_ready, out.as_mut()) {
                match o.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Incoming::Closed);
                        out = None;
                    }
                    Ok(n) => {
                        if !replies.feed(&buf[..n], &tx) {
                            out = None;
                        }
                    }
                }
            }
        }
        if out.is_some() {
            let _ = tx.send(Incoming::Closed);
        }
        lines.finish(&tx);
    })
}

/// Joins a reader thread, but gives up after a few seconds: a process that inherited the
/// pipes (say, one left behind by `BORG_RSH`) must not make the client hang.
fn join_briefly(t: Option<JoinHandle<()>>) {
    let Some(t) = t else { return };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !t.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if t.is_finished() {
        let _ = t.join();
    }
}

/// Sleeps to keep the upload rate under a limit (borg's `SleepingBandwidthLimiter`).
struct RateLimit {
    bytes_per_sec: u64,
    start: Instant,
    sent: u64,
}

impl RateLimit {
    fn wait(&mut self, n: usize) {
        if self.bytes_per_sec == 0 {
            return;
        }
        self.sent += n as u64;
        let due = Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// Where requests go: straight into the pipe, or (`--upload-buffer`) into a bounded queue
/// that a writer thread drains into the pipe.
enum Sink {
    /// Blocking writes to the child's stdin (borg's default, `--upload-buffer 0`).
    Direct {
        stdin: ChildStdin,
        ratelimit: RateLimit,
    },
    /// borg's `upload_buffer_size_limit`: up to that many bytes may wait to be sent while
    /// the caller goes on producing data.
    Buffered(BufferedSink),
}

/// Bytes queued for the writer thread, and whether it failed.
struct QueueState {
    queued: usize,
    failed: bool,
}

/// The `--upload-buffer` queue and its writer thread.
struct BufferedSink {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    state: Arc<(Mutex<QueueState>, Condvar)>,
    limit: usize,
    thread: Option<JoinHandle<()>>,
}

impl BufferedSink {
    fn start(mut stdin: ChildStdin, limit: usize, mut ratelimit: RateLimit) -> BufferedSink {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let state = Arc::new((
            Mutex::new(QueueState {
                queued: 0,
                failed: false,
            }),
            Condvar::new(),
        ));
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            for msg in rx {
                let ok = write_limited(&mut stdin, &msg, &mut ratelimit);
                let (lock, cv) = &*shared;
                if let Ok(mut st) = lock.lock() {
                    st.queued = st.queued.saturating_sub(msg.len());
                    st.failed |= !ok;
                }
                cv.notify_all();
                if !ok {
                    return;
                }
            }
            // Sender dropped: everything queued is written; dropping stdin closes the pipe.
        });
        BufferedSink {
            tx: Some(tx),
            state,
            limit,
            thread: Some(thread),
        }
    }

    /// Queues `bytes` once no more than the limit is waiting (as borg, one message may
    /// overshoot it); false if the writer failed (the connection is gone).
    fn push(&mut self, bytes: Vec<u8>) -> bool {
        let (lock, cv) = &*self.state;
        let Ok(mut st) = lock.lock() else {
            return false;
        };
        while !st.failed && st.queued > self.limit {
            st = match cv.wait(st) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        if st.failed {
            return false;
        }
        st.queued += bytes.len();
        drop(st);
        self.tx.as_ref().is_some_and(|tx| tx.send(bytes).is_ok())
    }

    /// Closes the queue and waits until the writer has sent everything (or failed).
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            // A server that stopped reading must not hang the client: after a while the
            // child is killed (see `close`), which ends the writer with EPIPE.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    /// Closes the queue without waiting (the connection already failed).
    fn abandon(&mut self) {
        self.tx = None;
        self.thread = None;
    }
}

/// Writes all of `bytes`, in 64 KiB pieces when rate-limited; false on a write error.
fn write_limited(stdin: &mut ChildStdin, bytes: &[u8], ratelimit: &mut RateLimit) -> bool {
    let mut written = 0;
    while written < bytes.len() {
        let end = if ratelimit.bytes_per_sec > 0 {
            (written + 64 * 1024).min(bytes.len())
        } else {
            bytes.len()
        };
        if stdin.write_all(&bytes[written..end]).is_err() {
            return false;
        }
        ratelimit.wait(end - written);
        written = end;
    }
    true
}

/// The `serve` command line and the full argv (§9.1).
pub fn command_line(
    loc: &Location,
    opts: &ClientOptions,
    storage_quota: Option<u64>,
) -> Result<Vec<String>> {
    let rsh = opts
        .rsh
        .clone()
        .or_else(|| loc.options.env.var("BORG_RSH"))
        .unwrap_or_else(|| "ssh".to_string());
    let mut argv = shell_words::split(&rsh)
        .map_err(|e| RepoError::InvalidArgument(format!("BORG_RSH: {e}")))?;
    if argv.is_empty() {
        argv.push("ssh".into());
    }
    if let Some(p) = loc.port {
        argv.push("-p".into());
        argv.push(p.to_string());
    }
    let host = loc.host.clone().unwrap_or_default();
    match &loc.user {
        Some(u) => argv.push(format!("{u}@{host}")),
        None => argv.push(host),
    }
    let remote_path = opts
        .remote_path
        .clone()
        .or_else(|| loc.options.env.var("BORG_REMOTE_PATH"))
        .unwrap_or_else(|| "borg".to_string());
    argv.push(remote_path);
    argv.push("serve".into());
    if let Some(flag) = &opts.log_level_flag {
        argv.push(flag.clone());
    }
    for topic in &opts.debug_topics {
        let topic = if topic.contains('.') {
            topic.clone()
        } else {
            format!("borg.debug.{topic}")
        };
        if topic.contains("repository") {
            argv.push(format!("--debug-topic={topic}"));
        }
    }
    if let Some(q) = storage_quota.filter(|q| *q > 0) {
        argv.push(format!("--storage-quota={q}"));
    }
    Ok(argv)
}

/// A repository reached through `borg serve`.
pub struct RemoteRepository {
    child: Option<Child>,
    stdin: Option<Sink>,
    rx: Receiver<Incoming>,
    /// The thread reading the server's stdout and stderr ([`spawn_reader`]).
    reader_thread: Option<JoinHandle<()>>,
    msgid: u64,
    dict: bool,
    id: [u8; 32],
    /// borg's `location.processed` without the archive (`omit_archive`), used in error messages.
    processed: String,
    /// Replies received but not yet claimed.
    replies: HashMap<u64, std::result::Result<Value, ErrorReply>>,
    /// Requests sent and not yet answered.
    outstanding: usize,
    /// Async requests whose replies are only checked for errors.
    async_ids: HashSet<u64>,
    /// Requests whose replies nobody wants (dropped on arrival, errors included).
    discard_ids: HashSet<u64>,
    /// Errors of async requests, reported by the next call.
    async_errors: Vec<ErrorReply>,
    /// `get` requests sent ahead on a [`Repository::prefetch`] hint and not yet claimed by
    /// `get_many`, oldest first.
    prefetched: std::collections::VecDeque<(ObjectId, u64)>,
    /// Set once the connection failed; every later call reports it.
    broken: Option<String>,
    append_only: bool,
    /// The version tuple the server announced in `negotiate` (borg's fallback `1.0.8` for a
    /// server too old to send one).
    server_version: Vec<i64>,
    /// The server is `hoard serve` and announced segment information
    /// ([`protocol::hoard_ext::FEATURE_SEGMENTS`]); never true for `borg serve`.
    hoard_segments: bool,
    /// Where the server's progress records go outside a call that takes a sink
    /// ([`Repository::set_progress`]: compaction in `commit`).
    progress: crate::progress::Progress,
    /// The server's progress records received during a call that shows them to its own sink
    /// ([`Repository::check_with_progress`]), not yet shown; `None` outside such a call.
    call_progress: Option<Vec<crate::progress::ProgressEvent>>,
    /// The server's operation numbers and the local ones they are shown under.
    progress_operations: HashMap<u32, u32>,
    /// Progress records the reader has sent and this side not yet received.
    queued_progress: QueuedProgress,
}

impl RemoteRepository {
    /// Starts `serve` over `BORG_RSH`, negotiates and opens the repository at `loc`, with
    /// the [`ClientOptions`] the location carries.
    pub fn open(loc: &Location, opts: &RemoteOpenOptions) -> Result<RemoteRepository> {
        Self::open_with(loc, opts, &loc.options.remote)
    }

    /// The version tuple the server announced (borg's `RemoteRepository.server_version`).
    pub fn server_version(&self) -> &[i64] {
        &self.server_version
    }

    /// [`RemoteRepository::open`] with explicit client options.
    pub fn open_with(
        loc: &Location,
        opts: &RemoteOpenOptions,
        copts: &ClientOptions,
    ) -> Result<RemoteRepository> {
        let argv = command_line(loc, copts, opts.storage_quota)?;
        tracing::debug!("SSH command line: {:?}", argv);
        let mut cmd = Command::new(&argv[0]);
        // The ssh command runs in the command's environment (a job's variables included).
        for (k, v) in loc.options.env.overrides() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            // Like borg: Ctrl-C must not kill the connection, the client still needs it to
            // shut down cleanly.
            // SAFETY: only calls signal(2), which is async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            RepoError::ConnectionClosed(format!("Could not start {}: {e}", argv[0]))
        })?;
        // Wider pipes to ssh: it reads a chunk in a few turns instead of one per 64 KiB.
        {
            use std::os::fd::AsRawFd;
            if let Some(stdin) = &child.stdin {
                crate::platform::pipe::widen(stdin.as_raw_fd());
            }
            if let Some(stdout) = &child.stdout {
                crate::platform::pipe::widen(stdout.as_raw_fd());
            }
        }
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take();
        let queued_progress = QueuedProgress::default();
        let reader_thread = child
            .stdout
            .take()
            .map(|o| spawn_reader(o, stderr, tx, Arc::clone(&queued_progress)));
        // borg opens the repository with `location.omit_archive()`: its messages name the
        // repository only, never `::ARCHIVE`.
        let processed = loc.repo_text();
        let mut repo = RemoteRepository {
            stdin: child.stdin.take().map(|stdin| {
                let ratelimit = RateLimit {
                    bytes_per_sec: copts.upload_ratelimit * 1024,
                    start: Instant::now(),
                    sent: 0,
                };
                match copts.upload_buffer {
                    0 => Sink::Direct { stdin, ratelimit },
                    mib => Sink::Buffered(BufferedSink::start(
                        stdin,
                        usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
                        ratelimit,
                    )),
                }
            }),
            child: Some(child),
            rx,
            reader_thread,
            msgid: 0,
            dict: false,
            id: [0u8; 32],
            processed,
            replies: HashMap::new(),
            outstanding: 0,
            async_ids: HashSet::new(),
            discard_ids: HashSet::new(),
            async_errors: Vec::new(),
            prefetched: std::collections::VecDeque::new(),
            broken: None,
            append_only: opts.append_only,
            server_version: vec![1, 0, 8, -1],
            hoard_segments: false,
            progress: crate::progress::Progress::default(),
            call_progress: None,
            progress_operations: HashMap::new(),
            queued_progress,
        };
        let client_data = Value::Map(vec![(
            Value::raw("client_version"),
            protocol::version_value(protocol::PROTOCOL_VERSION),
        )]);
        let version = match repo.call("negotiate", &[("client_data", client_data)]) {
            Ok(v) => v,
            Err(RepoError::ConnectionClosed(_)) => {
                return Err(RepoError::ConnectionClosed(
                    "Is borg working on the server?".into(),
                ))
            }
            Err(e) => return Err(e),
        };
        if version == Value::int(2) {
            repo.dict = false;
        } else if let Some(sv) = version.get("server_version") {
            repo.dict = true;
            repo.hoard_segments = version
                .get(protocol::hoard_ext::HOARD_FEATURES)
                .and_then(Value::as_array)
                .is_some_and(|f| {
                    f.iter().any(|x| {
                        x.as_bytes() == Some(protocol::hoard_ext::FEATURE_SEGMENTS.as_bytes())
                    })
                });
            if let Value::Array(parts) = sv {
                // Bounded: borg's tuples have four or five parts.
                let parsed: Option<Vec<i64>> = parts.iter().take(8).map(Value::as_i64).collect();
                if let Some(v) = parsed {
                    tracing::debug!(
                        "Remote server version: {}",
                        crate::version::format_version(&v)
                    );
                    repo.server_version = v;
                }
            }
        } else {
            return Err(RepoError::Remote {
                class: "Exception".into(),
                message: format!(
                    "Server insisted on using unsupported protocol version {version:?}"
                ),
            });
        }
        let lock_wait = match opts.lock_wait {
            None => Value::Nil,
            Some(w) if w.fract() == 0.0 && w.abs() < 1e15 => Value::int(w as i64),
            Some(w) => Value::Float(w),
        };
        let id = repo.call(
            "open",
            &[
                ("path", Value::raw(&loc.path)),
                ("create", Value::Bool(opts.create)),
                ("lock_wait", lock_wait),
                ("lock", Value::Bool(opts.lock)),
                ("exclusive", Value::Bool(opts.exclusive)),
                ("append_only", Value::Bool(opts.append_only)),
                ("make_parent_dirs", Value::Bool(opts.make_parent_dirs)),
            ],
        )?;
        repo.id = id
            .as_bytes()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| RepoError::UnexpectedServerData(format!("repository id {id:?}")))?;
        Ok(repo)
    }

    fn broken_error(&self) -> Option<RepoError> {
        self.broken.as_ref().map(|m| {
            if let Some(g) = m.strip_prefix("garbage:") {
                RepoError::UnexpectedServerData(g.to_string())
            } else {
                RepoError::ConnectionClosed(String::new())
            }
        })
    }

    /// Maps a remote exception to the local error borg would raise.
    fn map_error(&self, e: ErrorReply) -> RepoError {
        match e.class.as_str() {
            "DoesNotExist" => RepoError::DoesNotExist(self.processed.clone()),
            "AlreadyExists" => RepoError::AlreadyExists(self.processed.clone()),
            "CheckNeeded" => RepoError::CheckNeeded(self.processed.clone()),
            "IntegrityError" => RepoError::Integrity(e.arg_text(0)),
            "AtticRepository" => RepoError::AtticRepository(e.arg_text(0)),
            "PathNotAllowed" => RepoError::PathNotAllowed(if e.args.is_empty() {
                "(unknown)".into()
            } else {
                e.arg_text(0)
            }),
            "ParentPathDoesNotExist" => RepoError::ParentPathDoesNotExist(e.arg_text(0)),
            "ObjectNotFound" => RepoError::ObjectNotFound(e.arg_text(0), self.processed.clone()),
            "InvalidRPCMethod" => RepoError::InvalidRpcMethod(e.arg_text(0)),
            _ => {
                if !e.full.is_empty() {
                    tracing::debug!("Remote traceback:\n{}", e.full.join(""));
                }
                if !e.sysinfo.is_empty() {
                    tracing::debug!(
                        "{}",
                        e.sysinfo
                            .lines()
                            .map(|l| format!("Borg server: {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                RepoError::Remote {
                    message: e.message(),
                    class: e.class,
                }
            }
        }
    }

    /// Receives one message from the reader thread and files it.
    fn receive_one(&mut self) -> Result<()> {
        if let Some(e) = self.broken_error() {
            return Err(e);
        }
        let incoming = loop {
            match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(m) => break m,
                Err(RecvTimeoutError::Disconnected) => break Incoming::Closed,
                Err(RecvTimeoutError::Timeout) => {
                    // The reader thread reports EOF itself; just keep waiting. A child that
                    // exited without closing stdout (impossible for a real pipe) is caught here.
                    if let Some(c) = self.child.as_mut() {
                        if let Ok(Some(_)) = c.try_wait() {
                            if let Ok(m) = self.rx.recv_timeout(Duration::from_secs(5)) {
                                break m;
                            }
                            break Incoming::Closed;
                        }
                    }
                }
            }
        };
        match incoming {
            Incoming::Reply(r) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.discard_ids.remove(&r.msgid) {
                    // nobody waits for it
                } else if self.async_ids.remove(&r.msgid) {
                    if let Err(e) = r.outcome {
                        self.async_errors.push(e);
                    }
                } else {
                    self.replies.insert(r.msgid, r.outcome);
                }
                Ok(())
            }
            Incoming::Closed => {
                self.broken = Some("closed".into());
                self.finish_stderr();
                Err(RepoError::ConnectionClosed(String::new()))
            }
            Incoming::Garbage(g) => {
                self.broken = Some(format!("garbage:{g}"));
                self.finish_stderr();
                Err(RepoError::UnexpectedServerData(g))
            }
            Incoming::Progress(ev) => {
                self.queued_progress
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                self.file_progress(ev);
                Ok(())
            }
        }
    }

    /// Files one progress record of the server under a local operation number: for the call
    /// that shows progress to its own sink, else to [`Repository::set_progress`]'s sink;
    /// dropped when nobody shows progress (borg shows it only with `--progress`).
    fn file_progress(&mut self, mut ev: crate::progress::ProgressEvent) {
        if self.call_progress.is_none() && !self.progress.is_active() {
            return;
        }
        let local = *self
            .progress_operations
            .entry(ev.operation)
            .or_insert_with(crate::progress::next_operation);
        if ev.finished {
            self.progress_operations.remove(&ev.operation);
        }
        ev.operation = local;
        match self.call_progress.as_mut() {
            // A server sending faster than the call shows keeps only the newest records.
            Some(queue) if queue.len() >= 1024 => {
                queue.remove(0);
                queue.push(ev);
            }
            Some(queue) => queue.push(ev),
            None => self.progress.emit(&ev),
        }
    }

    /// A synchronous call whose server-side progress records are shown to `progress` while
    /// it waits.
    fn call_with_progress(
        &mut self,
        method: &str,
        args: &[(&str, Value)],
        progress: &mut crate::progress::ProgressSink<'_>,
    ) -> Result<Value> {
        let id = self.send(method, args)?;
        self.call_progress = Some(Vec::new());
        let r = loop {
            if let Some(r) = self.replies.remove(&id) {
                break r.map_err(|e| self.map_error(e));
            }
            let got = self.receive_one();
            for ev in self.call_progress.iter_mut().flat_map(std::mem::take) {
                progress(&ev);
            }
            if let Err(e) = got {
                break Err(e);
            }
        };
        self.call_progress = None;
        // An indicator whose last record did not come (a server that died, or one that does
        // not finish its indicators) is ended here, so no progress line stays drawn.
        for (_, local) in self.progress_operations.drain() {
            progress(&crate::progress::ProgressEvent {
                kind: crate::progress::ProgressKind::Percent,
                operation: local,
                msgid: "remote",
                message: String::new(),
                current: 0,
                total: 0,
                finished: true,
                unit: crate::progress::Unit::Count,
                bytes: None,
            });
        }
        self.take_async_error()?;
        r
    }

    /// After a failure: let the remote's last stderr lines through before the error is shown.
    fn finish_stderr(&mut self) {
        if let Some(Sink::Buffered(b)) = self.stdin.as_mut() {
            b.abandon();
        }
        self.stdin = None;
        if let Some(c) = self.child.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        join_briefly(self.reader_thread.take());
    }

    /// Sends one request; returns its msgid.
    fn send(&mut self, method: &str, args: &[(&str, Value)]) -> Result<u64> {
        if let Some(e) = self.broken_error() {
            return Err(e);
        }
        while self.outstanding >= MAX_INFLIGHT {
            self.receive_one()?;
        }
        self.msgid += 1;
        let msgid = self.msgid;
        let bytes = protocol::encode_request(self.dict, msgid, method, args);
        let ok = match self.stdin.as_mut() {
            None => return Err(RepoError::ConnectionClosed(String::new())),
            Some(Sink::Direct { stdin, ratelimit }) => write_limited(stdin, &bytes, ratelimit),
            Some(Sink::Buffered(b)) => b.push(bytes),
        };
        if !ok {
            // The server went away; its stdout tells why (EOF or garbage).
            return match self.receive_until_broken() {
                Some(e) => Err(e),
                None => Err(RepoError::ConnectionClosed(String::new())),
            };
        }
        self.outstanding += 1;
        Ok(msgid)
    }

    fn receive_until_broken(&mut self) -> Option<RepoError> {
        loop {
            if let Err(e) = self.receive_one() {
                return Some(e);
            }
        }
    }

    /// Waits for the reply to `msgid`.
    fn wait_for(&mut self, msgid: u64) -> Result<Value> {
        loop {
            if let Some(r) = self.replies.remove(&msgid) {
                return r.map_err(|e| self.map_error(e));
            }
            self.receive_one()?;
        }
    }

    /// The msgid of a `get` of `id` sent ahead by [`Repository::prefetch`], if any.
    fn claim_prefetched(&mut self, id: &ObjectId) -> Option<u64> {
        let at = self.prefetched.iter().position(|(p, _)| p == id)?;
        self.prefetched.remove(at).map(|(_, m)| m)
    }

    /// Drops the reply of a request nobody will claim (now, or when it arrives).
    fn forget_reply(&mut self, msgid: u64) {
        if self.replies.remove(&msgid).is_none() {
            self.discard_ids.insert(msgid);
        }
    }

    /// Reports (and clears) the first error of an async request.
    fn take_async_error(&mut self) -> Result<()> {
        if self.async_errors.is_empty() {
            return Ok(());
        }
        let e = self.async_errors.remove(0);
        self.async_errors.clear();
        Err(self.map_error(e))
    }

    /// A synchronous call.
    fn call(&mut self, method: &str, args: &[(&str, Value)]) -> Result<Value> {
        let id = self.send(method, args)?;
        let r = self.wait_for(id);
        self.take_async_error()?;
        r
    }

    /// An async call: sent now, its errors reported by a later call.
    fn call_async(&mut self, method: &str, args: &[(&str, Value)]) -> Result<()> {
        let id = self.send(method, args)?;
        self.async_ids.insert(id);
        Ok(())
    }

    /// The process id of the `BORG_RSH` child, while it runs.
    pub fn child_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Closes the connection: stdin is closed, the server closes the repository and exits.
    pub fn close(&mut self) {
        if let Some(Sink::Buffered(b)) = self.stdin.as_mut() {
            b.finish();
        }
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        join_briefly(self.reader_thread.take());
    }

    fn ids(v: Value) -> Result<Vec<ObjectId>> {
        let arr = match v {
            Value::Array(a) => a,
            other => return Err(RepoError::UnexpectedServerData(format!("{other:?}"))),
        };
        arr.iter()
            .map(|x| {
                x.as_bytes()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| RepoError::UnexpectedServerData(format!("{x:?}")))
            })
            .collect()
    }

    fn bytes(v: Value) -> Result<Vec<u8>> {
        match v {
            Value::Raw(b) | Value::Bin(b) => Ok(b),
            other => Err(RepoError::UnexpectedServerData(format!("{other:?}"))),
        }
    }

    fn list_like(
        &mut self,
        method: &str,
        limit: Option<usize>,
        marker: Option<&ObjectId>,
    ) -> Result<Vec<ObjectId>> {
        // Like borg's client, never ask for more than LIST_SCAN_LIMIT ids per call; without
        // a limit, page through everything as a local repository would return it.
        let mut out: Vec<ObjectId> = Vec::new();
        let mut marker = marker.copied();
        loop {
            let want = match limit {
                Some(l) => (l - out.len()).min(LIST_SCAN_LIMIT),
                None => LIST_SCAN_LIMIT,
            };
            let m = marker.map(Value::raw).unwrap_or(Value::Nil);
            let v = self.call(method, &[("limit", Value::int(want as u64)), ("marker", m)])?;
            let batch = Self::ids(v)?;
            let done = batch.len() < want || batch.is_empty();
            marker = batch.last().copied().or(marker);
            out.extend(batch);
            if done || limit.is_some_and(|l| out.len() >= l) {
                return Ok(out);
            }
        }
    }
}

impl Drop for RemoteRepository {
    fn drop(&mut self) {
        self.close();
    }
}

impl Repository for RemoteRepository {
    fn id(&self) -> [u8; 32] {
        self.id
    }

    fn len(&mut self) -> Result<usize> {
        let v = self.call("__len__", &[])?;
        v.as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| RepoError::UnexpectedServerData(format!("{v:?}")))
    }

    fn contains(&mut self, id: &ObjectId) -> Result<bool> {
        match self.get(id) {
            Ok(_) => Ok(true),
            Err(RepoError::ObjectNotFound(..)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn get(&mut self, id: &ObjectId) -> Result<Vec<u8>> {
        let v = self.call("get", &[("id", Value::raw(id))])?;
        Self::bytes(v)
    }

    fn get_many(&mut self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        let mut sent: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
        let mut out = Vec::with_capacity(ids.len());
        let mut next = 0;
        while out.len() < ids.len() {
            while next < ids.len() && sent.len() < MAX_INFLIGHT {
                let m = match self.claim_prefetched(&ids[next]) {
                    Some(m) => m,
                    None => self.send("get", &[("id", Value::raw(ids[next]))])?,
                };
                sent.push_back(m);
                next += 1;
            }
            let Some(m) = sent.pop_front() else { break };
            let v = match self.wait_for(m) {
                Ok(v) => v,
                Err(e) => {
                    // Drop the replies of the gets still in flight (their errors belong to
                    // other objects and must not surface later).
                    for m in sent {
                        self.forget_reply(m);
                    }
                    return Err(e);
                }
            };
            out.push(Self::bytes(v)?);
        }
        self.take_async_error()?;
        Ok(out)
    }

    fn prefetch(&mut self, ids: &[ObjectId]) {
        for id in ids {
            if self.prefetched.iter().any(|(p, _)| p == id) {
                continue;
            }
            // Hints nobody claimed (the caller changed its plan) are dropped, oldest first,
            // so that unclaimed replies cannot pile up.
            while self.prefetched.len() >= PREFETCH_LIMIT {
                if let Some((_, m)) = self.prefetched.pop_front() {
                    self.forget_reply(m);
                }
            }
            match self.send("get", &[("id", Value::raw(*id))]) {
                Ok(m) => self.prefetched.push_back((*id, m)),
                // The connection is broken: the next real call reports it.
                Err(_) => return,
            }
        }
    }

    fn put(&mut self, id: &ObjectId, data: &[u8]) -> Result<()> {
        self.call_async("put", &[("id", Value::raw(id)), ("data", Value::raw(data))])
    }

    fn delete(&mut self, id: &ObjectId) -> Result<()> {
        self.call_async("delete", &[("id", Value::raw(id))])
    }

    fn flush(&mut self) -> Result<()> {
        while !self.async_ids.is_empty() {
            self.receive_one()?;
        }
        self.take_async_error()
    }

    fn list(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>> {
        self.list_like("list", limit, marker)
    }

    fn scan(&mut self, limit: Option<usize>, marker: Option<&ObjectId>) -> Result<Vec<ObjectId>> {
        self.list_like("scan", limit, marker)
    }

    /// Over `hoard serve` ([`protocol::hoard_ext::SEGMENTS`], page by page); `None` over
    /// `borg serve`, whose protocol names objects only.
    fn segments(&mut self) -> Result<Option<Vec<crate::repo::SegmentInfo>>> {
        if !self.hoard_segments {
            return Ok(None);
        }
        let page = protocol::hoard_ext::SEGMENTS_PAGE;
        let mut out: Vec<crate::repo::SegmentInfo> = Vec::new();
        loop {
            let marker = out.last().map_or(Value::Nil, |i| Value::int(i.segment));
            let v = self.call(
                protocol::hoard_ext::SEGMENTS,
                &[("marker", marker), ("limit", Value::int(page as u64))],
            )?;
            let bad = || RepoError::UnexpectedServerData(format!("{v:?}"));
            let rows = v.as_array().ok_or_else(bad)?;
            for row in rows {
                let f = row.as_array().ok_or_else(bad)?;
                let num = |i: usize| f.get(i).and_then(Value::as_u64).ok_or_else(bad);
                let info = crate::repo::SegmentInfo {
                    segment: u32::try_from(num(0)?).map_err(|_| bad())?,
                    size: num(1)?,
                    objects: num(2)?,
                };
                // ascending, or the paging would never end
                if out.last().is_some_and(|l| l.segment >= info.segment) {
                    return Err(bad());
                }
                out.push(info);
            }
            if rows.len() < page {
                return Ok(Some(out));
            }
        }
    }

    /// Over `hoard serve` ([`protocol::hoard_ext::SEGMENT_OBJECTS`]), at most
    /// [`protocol::hoard_ext::SEGMENT_OBJECTS_MAX_SEGMENTS`] segments and
    /// [`protocol::hoard_ext::SEGMENT_OBJECTS_PAGE`] ids per call.
    fn segment_objects(&mut self, segments: &[u32]) -> Result<Vec<Vec<ObjectId>>> {
        if !self.hoard_segments {
            return Err(RepoError::InvalidArgument(
                "borg serve does not tell objects by segment".into(),
            ));
        }
        let page = protocol::hoard_ext::SEGMENT_OBJECTS_PAGE;
        let mut out: Vec<Vec<ObjectId>> = Vec::with_capacity(segments.len());
        for group in segments.chunks(protocol::hoard_ext::SEGMENT_OBJECTS_MAX_SEGMENTS) {
            let mut lists: Vec<Vec<ObjectId>> = vec![Vec::new(); group.len()];
            let mut start = 0usize;
            loop {
                let v = self.call(
                    protocol::hoard_ext::SEGMENT_OBJECTS,
                    &[
                        (
                            "segments",
                            Value::Array(group.iter().map(|s| Value::int(*s)).collect()),
                        ),
                        ("start", Value::int(start as u64)),
                        ("limit", Value::int(page as u64)),
                    ],
                )?;
                let bad = || RepoError::UnexpectedServerData(format!("{v:?}"));
                let parts = v.as_array().ok_or_else(bad)?;
                if parts.len() != group.len() {
                    return Err(bad());
                }
                let mut got = 0usize;
                for (list, part) in lists.iter_mut().zip(parts) {
                    let ids = Self::ids(part.clone())?;
                    got += ids.len();
                    list.extend(ids);
                }
                if got < page {
                    break;
                }
                start += got;
            }
            out.extend(lists);
        }
        Ok(out)
    }

    fn commit(&mut self, compact: bool, threshold: f64) -> Result<()> {
        self.flush()?;
        self.call(
            "commit",
            &[
                ("save_space", Value::Bool(false)),
                ("compact", Value::Bool(compact)),
                ("threshold", Value::Float(threshold)),
                ("cleanup_commits", Value::Bool(false)),
            ],
        )?;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        self.call("rollback", &[])?;
        Ok(())
    }

    fn check(&mut self, repair: bool, max_duration: u64) -> Result<CheckReport> {
        self.check_with_progress(repair, max_duration, &mut |_| {})
    }

    fn check_with_progress(
        &mut self,
        repair: bool,
        max_duration: u64,
        progress: &mut crate::progress::ProgressSink<'_>,
    ) -> Result<CheckReport> {
        let v = self.call_with_progress(
            "check",
            &[
                ("repair", Value::Bool(repair)),
                ("save_space", Value::Bool(false)),
                ("max_duration", Value::int(max_duration)),
            ],
            progress,
        )?;
        let ok = v.as_bool().unwrap_or(false);
        Ok(CheckReport {
            messages: Vec::new(),
            errors: usize::from(!ok),
            ok,
            partial: max_duration > 0,
        })
    }

    fn save_key(&mut self, keydata: &[u8]) -> Result<()> {
        self.call("save_key", &[("keydata", Value::raw(keydata))])?;
        Ok(())
    }

    fn load_key(&mut self) -> Result<Vec<u8>> {
        let v = self.call("load_key", &[])?;
        match v {
            Value::Nil => Ok(Vec::new()),
            other => Self::bytes(other),
        }
    }

    fn get_free_nonce(&mut self) -> Result<Option<u64>> {
        let v = self.call("get_free_nonce", &[])?;
        match v {
            Value::Nil => Ok(None),
            other => other
                .as_u64()
                .map(Some)
                .ok_or_else(|| RepoError::UnexpectedServerData(format!("{other:?}"))),
        }
    }

    fn commit_nonce_reservation(
        &mut self,
        next_unreserved: u64,
        start_nonce: Option<u64>,
    ) -> Result<()> {
        self.call(
            "commit_nonce_reservation",
            &[
                ("next_unreserved", Value::int(next_unreserved)),
                (
                    "start_nonce",
                    start_nonce.map(Value::int).unwrap_or(Value::Nil),
                ),
            ],
        )?;
        Ok(())
    }

    fn break_lock(&mut self) -> Result<()> {
        self.call("break_lock", &[])?;
        Ok(())
    }

    fn destroy(&mut self) -> Result<()> {
        self.call("destroy", &[])?;
        Ok(())
    }

    fn set_progress(&mut self, progress: crate::progress::Progress) {
        self.progress = progress;
    }

    fn append_only(&self) -> bool {
        self.append_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_borgs() {
        let loc = Location::parse(Some("ssh://u@h:2222/srv/repo"), None).unwrap();
        let opts = ClientOptions {
            rsh: Some("ssh -i 'my key'".into()),
            remote_path: Some("/opt/borg".into()),
            log_level_flag: Some("--info".into()),
            debug_topics: vec!["repository.compaction".into(), "lock".into()],
            ..ClientOptions::default()
        };
        let argv = command_line(&loc, &opts, Some(20_000_000)).unwrap();
        assert_eq!(
            argv,
            [
                "ssh",
                "-i",
                "my key",
                "-p",
                "2222",
                "u@h",
                "/opt/borg",
                "serve",
                "--info",
                "--debug-topic=repository.compaction",
                "--storage-quota=20000000"
            ]
        );
    }

    #[test]
    fn garbage_is_shown_on_one_line() {
        assert_eq!(describe_garbage(b"junk\nmore"), "junk\\nmore");
        assert_eq!(describe_garbage(&[0xff, 0x00]), "FF 00");
    }
}
