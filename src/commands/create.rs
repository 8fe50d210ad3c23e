//! `create ARCHIVE PATH...`: back up files into a new archive, as borg 1.2's `do_create` with
//! its `FilesystemObjectProcessors`, `MetadataCollector` and `ChunksProcessor`.
//!
//! The work is split into steps with plain data handed between them:
//! * [`walk`]: walks the paths in borg's order and decides what each object is;
//! * [`meta`]: collects an object's metadata into an [`Item`];
//! * [`files`]: reads, chunks and hashes file contents ([`files::HashedChunk`]) and stores them;
//! * [`pipeline`]: with more than one worker ([`CreateOptions::workers`]), files are read,
//!   chunked, hashed, compressed and encrypted on worker threads while this thread walks on;
//!   results are written strictly in walk order, so the archive equals a one-worker run's;
//! * [`interrupt`]: SIGINT/SIGTERM/SIGHUP, polled between entries and chunks (a checkpoint
//!   and stop on the first SIGINT, a rollback on a stop signal);
//! * this module: the archive being written (item stream, statistics, checkpoints, `save`).
//!
//! Nothing here prints: per-file status, warnings and progress go to a [`Reporter`].

mod error;
mod files;
mod interrupt;
mod meta;
mod pipeline;
mod walk;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::archive::item::Item;
use crate::archive::meta::ArchiveMeta;
use crate::archive::stream::ItemStreamWriter;
use crate::archive::{ArchiveRef, Operation};
use crate::cache::{Cache, CacheOptions, FilesCacheMode, IndexStats, OpStats};
use crate::chunker::{ChunkerParams, MAX_DATA_SIZE};
use crate::compress::Compression;
use crate::crypto::{Key, KeyType};
use crate::location::Location;
use crate::patterns::PatternMatcher;
use crate::platform::signals;

use super::common::{self, Access, KeyLocation, Opened};
use super::{CommandError, Result};

pub use error::{make_path_safe, normpath, remove_surrogates, show_path, BackupError};
pub use meta::MetaOptions;

/// Where per-file output goes (the CLI prints it borg-style).
pub trait Reporter {
    /// A file's status letter (`A`, `M`, `U`, `d`, `s`, `h`, `x`, `E`, `-`, …) and its path as
    /// walked.
    fn file_status(&mut self, status: char, path: &[u8]);
    /// A warning line (the caller sets exit code 1 when [`CreateOutcome::warning`] is set).
    fn warning(&mut self, message: &str);
    /// A warning of one of borg's warning classes (`BackupFileNotFoundError`, …), which borg
    /// 1.4 logs with the class name as msgid.
    fn warning_class(&mut self, class: &'static str, message: &str) {
        let _ = class;
        self.warning(message);
    }
    /// Progress after an item or a chunk (`path` None for the final call).
    fn progress(&mut self, stats: &ArchiveStats, path: Option<&[u8]>);
    /// An info line (borg's `logger.info`), e.g. around the checkpoint a SIGINT asks for.
    fn info(&mut self, _message: &str) {}
    /// What the previous archive of the same name family held (with progress only, before
    /// the walk): the progress display estimates the total from it.
    fn previous(&mut self, _previous: crate::progress::eta::Previous) {}
    /// An item was added to the archive, in walk order (with progress only, just before its
    /// [`Reporter::progress`]): `size` is its content's original size. With the status
    /// letter reported before it, the progress display tells old from new bytes.
    fn item_added(&mut self, _size: u64) {}
}

/// The original size of an item's content (its chunks).
pub(crate) fn content_size(item: &Item) -> u64 {
    item.chunks
        .as_ref()
        .map_or(0, |c| c.iter().map(|r| u64::from(r.size)).sum())
}

/// `-` paths: how stdin is stored.
#[derive(Debug, Clone)]
pub struct StdinOptions {
    /// `--stdin-name`
    pub name: String,
    /// `--stdin-user`
    pub user: String,
    /// `--stdin-group`
    pub group: String,
    /// `--stdin-mode`
    pub mode: u32,
}

/// Everything `create` is told.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Name of the new archive (placeholders already replaced).
    pub archive: String,
    /// Paths to back up, in order (`-` is stdin).
    pub paths: Vec<OsString>,
    /// `-C`
    pub compression: Compression,
    /// `--chunker-params`
    pub chunker_params: ChunkerParams,
    /// `--files-cache`
    pub files_cache: FilesCacheMode,
    /// Metadata options.
    pub meta: MetaOptions,
    /// `--exclude-caches`
    pub exclude_caches: bool,
    /// `--exclude-if-present`
    pub exclude_if_present: Vec<OsString>,
    /// `--keep-exclude-tags`
    pub keep_exclude_tags: bool,
    /// `--exclude-nodump`
    pub exclude_nodump: bool,
    /// `-x`
    pub one_file_system: bool,
    /// `--read-special`
    pub read_special: bool,
    /// `-n`
    pub dry_run: bool,
    /// `--comment`
    pub comment: String,
    /// `--timestamp`
    pub timestamp: Option<DateTime<Utc>>,
    /// `-c` seconds (0: never).
    pub checkpoint_interval: u64,
    /// stdin naming.
    pub stdin: StdinOptions,
    /// argv, stored as the archive's `cmdline`.
    pub cmdline: Vec<String>,
    /// Lock wait seconds.
    pub lock_wait: f64,
    /// Report progress.
    pub progress: bool,
    /// Where the cache transaction's progress messages go (`--progress`).
    pub progress_sink: crate::progress::Progress,
    /// `--content-from-command`: `paths` is a command whose stdout is stored.
    pub content_from_command: bool,
    /// `--paths-from-stdin`: back up the paths listed on stdin (no recursion).
    pub paths_from_stdin: bool,
    /// `--paths-from-command`: `paths` is a command that lists the paths.
    pub paths_from_command: bool,
    /// `--sparse`: find holes with `SEEK_HOLE` (fixed chunker only).
    pub sparse: bool,
    /// `--paths-delimiter` (default newline).
    pub paths_delimiter: Vec<u8>,
    /// Worker threads for reading, chunking, hashing, compressing and encrypting (1: all on
    /// the main thread, as borg). The archive is the same for any count.
    pub workers: usize,
    /// `--files-changed`: how a file changed while it was read is detected.
    pub files_changed: FilesChanged,
}

/// borg 1.4's `--files-changed MODE`: which timestamp, taken before and after reading a
/// file, tells that it changed meanwhile (status `C`, a warning, not memorised).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FilesChanged {
    /// `ctime` (the default).
    #[default]
    Ctime,
    /// `mtime`.
    Mtime,
    /// `disabled`: never report a change.
    Disabled,
}

impl std::str::FromStr for FilesChanged {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ctime" => Ok(FilesChanged::Ctime),
            "mtime" => Ok(FilesChanged::Mtime),
            "disabled" => Ok(FilesChanged::Disabled),
            _ => Err(format!(
                "invalid choice: '{s}' (choose from 'ctime', 'mtime', 'disabled')"
            )),
        }
    }
}

/// A file's ctime and mtime (ns), taken before and after reading it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChangeStamp {
    ctime_ns: i64,
    mtime_ns: i64,
}

impl ChangeStamp {
    /// The stamp of a `stat` result.
    pub(crate) fn of(st: &crate::platform::fs::Stat) -> ChangeStamp {
        ChangeStamp {
            ctime_ns: st.ctime_ns,
            mtime_ns: st.mtime_ns,
        }
    }
}

impl FilesChanged {
    /// True if the file counts as changed while it was read.
    pub(crate) fn changed(self, before: ChangeStamp, after: ChangeStamp) -> bool {
        match self {
            FilesChanged::Ctime => before.ctime_ns != after.ctime_ns,
            FilesChanged::Mtime => before.mtime_ns != after.mtime_ns,
            FilesChanged::Disabled => false,
        }
    }
}

/// borg's `Statistics` for the archive being written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Original size of referenced chunks.
    pub osize: u64,
    /// Compressed size of referenced chunks.
    pub csize: u64,
    /// Compressed size of chunks this archive added (deduplicated size).
    pub usize: u64,
    /// Regular files.
    pub nfiles: u64,
    /// Original size referenced by part files.
    pub osize_parts: u64,
    /// Compressed size referenced by part files.
    pub csize_parts: u64,
    /// Part files.
    pub nfiles_parts: u64,
}

impl ArchiveStats {
    /// Adds what one cache operation counted.
    fn add_op(&mut self, op: &OpStats) {
        self.osize += op.osize;
        self.csize += op.csize;
        self.usize += op.ucsize;
    }
}

/// What a finished `create` reports.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    /// Some file could not be backed up (exit code 1).
    pub warning: bool,
    /// borg's class of each warning (`BackupOSError`, `FileChangedWarning`, …): the modern
    /// exit code follows from them.
    pub warning_classes: Vec<&'static str>,
    /// The archive, unless `--dry-run`.
    pub archive: Option<ArchiveSummary>,
}

/// The new archive and the repository it is in (for `--stats` and `--json`).
#[derive(Debug, Clone)]
pub struct ArchiveSummary {
    /// Name.
    pub name: String,
    /// Fingerprint.
    pub id: [u8; 32],
    /// Start, UTC.
    pub start: DateTime<Utc>,
    /// End, UTC.
    pub end: DateTime<Utc>,
    /// The statistics borg shows for "This archive".
    pub stats: ArchiveStats,
    /// Metadata object csize / MAX_DATA_SIZE.
    pub max_archive_size: f64,
    /// The argv stored.
    pub command_line: Vec<String>,
    /// Repository id.
    pub repository_id: [u8; 32],
    /// Canonical location.
    pub location: String,
    /// Manifest timestamp after the commit.
    pub last_modified: String,
    /// Key mode.
    pub key_type: KeyType,
    /// Key location.
    pub key_location: KeyLocation,
    /// Cache directory.
    pub cache_path: std::path::PathBuf,
    /// Cache totals after the commit.
    pub cache_stats: IndexStats,
}

/// The archive being written: the repository, the cache, the item stream and the statistics.
pub(crate) struct Sink<'o> {
    opened: &'o mut Opened,
    cache: Cache,
    key: Key,
    items: ItemStreamWriter,
    /// borg's `fso.stats`: file content only. Item-stream and metadata chunks are counted
    /// apart (borg 1.4's `meta_stats`), so "This archive" shows file data only.
    stats: ArchiveStats,
    hard_links: HashMap<(u64, u64), Vec<u8>>,
    zero_ids: HashMap<usize, [u8; 32]>,
    last_checkpoint: Instant,
    checkpoint_name: String,
    start_mono: Instant,
}

/// The state of one `create` run.
pub(crate) struct Backup<'a, 'o> {
    opts: &'a CreateOptions,
    reporter: &'a mut dyn Reporter,
    matcher: Option<PatternMatcher>,
    /// None with `--dry-run`.
    sink: Option<Sink<'o>>,
    warned: bool,
    /// borg's warning class of each warning so far (`BackupPermissionError`, …), for the
    /// modern exit code.
    warning_classes: Vec<&'static str>,
    /// A repository failure met inside the walk; ends the run.
    fatal: Option<CommandError>,
    skip_inodes: HashSet<(u64, u64)>,
    cwd: Vec<u8>,
    /// The worker threads and the in-order queue (None: sequential).
    pipeline: Option<pipeline::Pipeline>,
    /// The open parent directory of the object being processed, when the walk came through
    /// it: its entries are then reached relative to it (`fstatat`/`openat`), not by path.
    entry_dir: Option<std::os::fd::RawFd>,
    /// The slashdot prefix of the PATH being walked (see [`walk::strip_prefix_of`]).
    strip_prefix: Option<Vec<u8>>,
}

impl Backup<'_, '_> {
    /// Logs a warning of borg's generic class and remembers exit code 1.
    fn warn(&mut self, message: &str) {
        self.warn_as("BorgWarning", message);
    }

    /// Logs a warning of borg's warning class `class` and remembers it.
    fn warn_as(&mut self, class: &'static str, message: &str) {
        self.warned = true;
        self.warning_classes.push(class);
        // borg's plain `print_warning` has no msgid; its warning instances have their class
        let msgid = (class != "BorgWarning").then_some(class);
        self.note_as(msgid, message);
    }

    /// Logs a warning line (in walk order) without changing the exit code.
    fn note(&mut self, message: &str) {
        self.note_as(None, message);
    }

    /// [`Backup::note`] with borg's warning class as msgid.
    fn note_as(&mut self, class: Option<&'static str>, message: &str) {
        if self.deferring() {
            self.emit(pipeline::Deferred::Warning(class, message.to_string()));
        } else {
            match class {
                Some(c) => self.reporter.warning_class(c, message),
                None => self.reporter.warning(message),
            }
        }
    }

    /// Reports a status letter.
    fn status(&mut self, status: char, path: &[u8]) {
        if self.deferring() {
            self.emit(pipeline::Deferred::Status(status, path.to_vec()));
        } else {
            self.reporter.file_status(status, path);
        }
    }
}

/// Runs `create`. `loc` names the repository; the archive name is in `opts`; `matcher` holds
/// the `--exclude` / `--pattern` rules (borg's `create` matcher, fallback "include").
pub fn run(
    loc: &Location,
    opts: &CreateOptions,
    matcher: Option<PatternMatcher>,
    reporter: &mut dyn Reporter,
    confirm: crate::security::Confirm<'_>,
) -> Result<CreateOutcome> {
    run_source(loc, opts, matcher, reporter, confirm, None)
}

/// A source of items other than the file system (`import-tar`): it hands items and file
/// contents to the archive being written through a [`Feed`].
pub type Source<'s> = &'s mut dyn FnMut(&mut Feed<'_, '_, '_>) -> Result<()>;

/// Runs `create` with the items coming from `source` (the file system when None).
pub fn run_source(
    loc: &Location,
    opts: &CreateOptions,
    matcher: Option<PatternMatcher>,
    reporter: &mut dyn Reporter,
    confirm: crate::security::Confirm<'_>,
    mut source: Option<Source<'_>>,
) -> Result<CreateOutcome> {
    let start = Utc::now();
    let start_mono = Instant::now();
    let cwd = std::env::current_dir()
        .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
        .unwrap_or_else(|_| b"/".to_vec());
    if opts.dry_run {
        let mut b = Backup {
            opts,
            reporter,
            matcher,
            sink: None,
            warned: false,
            warning_classes: Vec::new(),
            fatal: None,
            skip_inodes: HashSet::new(),
            entry_dir: None,
            strip_prefix: None,
            cwd,
            pipeline: None,
        };
        b.add_skip_inodes(loc);
        b.produce(source.take())?;
        return Ok(CreateOutcome {
            warning: b.warned,
            warning_classes: b.warning_classes,
            archive: None,
        });
    }
    let access = Access {
        exclusive: true,
        lock_wait: opts.lock_wait,
        lock: true,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Write], confirm)?;
    opened.store.compression = opts.compression.clone();
    let name = opts.archive.clone();
    if opened.manifest.archives.contains_key(name.as_bytes()) {
        return Err(CommandError::with_id(
            format!("Archive {name} already exists"),
            "Archive.AlreadyExists",
        ));
    }
    let cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            files_cache: opts.files_cache,
            lock_wait: opts.lock_wait,
            location: Some(opened.location.canonical()),
            path: None,
            progress: opts.progress_sink.clone(),
        },
    )?;
    if opts.progress {
        if let Some(prev) = previous_archive(&mut opened, &name) {
            reporter.previous(prev);
        }
    }
    let key = opened.store.key.clone();
    let checkpoint_name = checkpoint_name(&opened, &name);
    let pipeline = (opts.workers > 1).then(|| {
        pipeline::Pipeline::start(
            opts.workers,
            pipeline::Coder {
                encoder: opened.store.encoder(),
                known: Some(cache.chunk_lookup()),
                buffers: Default::default(),
            },
            opts.chunker_params,
            key.chunk_seed(),
        )
    });
    let sink = Sink {
        items: ItemStreamWriter::new(key.chunk_seed()),
        key,
        cache,
        opened: &mut opened,
        stats: ArchiveStats::default(),
        hard_links: HashMap::new(),
        zero_ids: HashMap::new(),
        last_checkpoint: Instant::now(),
        checkpoint_name,
        start_mono,
    };
    let mut b = Backup {
        opts,
        reporter,
        matcher,
        sink: Some(sink),
        warned: false,
        warning_classes: Vec::new(),
        fatal: None,
        skip_inodes: HashSet::new(),
        entry_dir: None,
        strip_prefix: None,
        cwd,
        pipeline,
    };
    b.add_skip_inodes(loc);
    // From here on the walk polls for signals (see `platform::signals`).
    let graceful = signals::graceful();
    let walked = b.produce(source.take());
    b.drain();
    let mut walked = match b.fatal.take() {
        Some(e) => Err(e),
        None => walked,
    };
    // Workers end before the archive is saved.
    b.pipeline = None;
    if walked.is_ok() {
        // A signal after the last entry: borg does not save the archive then.
        b.poll_signals();
        if let Some(e) = b.fatal.take() {
            walked = Err(e);
        }
    }
    if let Err(e) = walked {
        drop(b);
        if signals::stop().is_some() || signals::checkpoint_requested() {
            // borg's `Repository.__exit__` on an exception; the checkpoint (if any) is
            // committed already.
            let _ = opened.store.repo.rollback();
        }
        drop(graceful);
        return Err(e);
    }
    let warned = b.warned;
    let warning_classes = std::mem::take(&mut b.warning_classes);
    let Some(mut sink) = b.sink.take() else {
        return Err(CommandError::new("internal error: archive writer missing"));
    };
    b.reporter.progress(&sink.stats, None);
    let summary = sink.save(&name, opts, start)?;
    Ok(CreateOutcome {
        warning: warned,
        warning_classes,
        archive: Some(summary),
    })
}

/// The file count and original size of the previous archive of `name`'s family (see
/// [`crate::progress::eta::previous_archive`]), read from its metadata; None when there is
/// none or it does not say (archives of borg < 1.2).
fn previous_archive(opened: &mut Opened, name: &str) -> Option<crate::progress::eta::Previous> {
    let archives: Vec<(String, &ArchiveRef)> = opened
        .manifest
        .archives
        .iter()
        .map(|(n, r)| (String::from_utf8_lossy(n).into_owned(), r))
        .collect();
    let pick = crate::progress::eta::previous_archive(
        name,
        archives.iter().map(|(n, r)| (n.as_str(), r.time.as_str())),
    )?;
    let id = archives[pick].1.id;
    let meta = ArchiveMeta::load(&mut opened.store, &id)
        .map_err(|e| tracing::debug!("previous archive for the progress estimate: {e}"))
        .ok()?;
    Some(crate::progress::eta::Previous {
        nfiles: meta.nfiles?,
        size: meta.size?,
    })
}

/// The handle a [`Source`] writes items through; chunk storing, the cache, part files and
/// checkpoints, the statistics and the item stream are `create`'s.
pub struct Feed<'b, 'a, 'o> {
    backup: &'b mut Backup<'a, 'o>,
}

impl Feed<'_, '_, '_> {
    /// Chunks and stores `reader` as the content of the regular file `item` (setting its
    /// chunks and size), counts it as a file and appends it to the archive.
    pub fn add_file<R: std::io::Read>(&mut self, item: &mut Item, reader: R) -> Result<()> {
        self.backup
            .process_file_chunks(item, reader)
            .map_err(fatal)?;
        item.size = Some(
            item.chunks
                .as_ref()
                .map_or(0, |c| c.iter().map(|r| r.size as u64).sum()),
        );
        self.count_file();
        self.add_item(item)
    }

    /// Appends an item (no content) to the archive. A signal since the last item ends the
    /// feed here, as between two entries of a walk (the first Ctrl-C after a checkpoint).
    pub fn add_item(&mut self, item: &Item) -> Result<()> {
        self.backup.poll_signals();
        if let Some(e) = &self.backup.fatal {
            return Err(CommandError::new(e.message.clone()));
        }
        // with its progress line, as borg's `add_item` (import-tar shows the first member's
        // line at once, then one every 0.2 s)
        self.backup.add_item_now(item).map_err(fatal)
    }

    /// Adds one to the archive's file count.
    pub fn count_file(&mut self) {
        if let Some(sink) = self.backup.sink.as_mut() {
            sink.stats.nfiles += 1;
        }
    }

    /// Reports a status letter for `path`.
    pub fn status(&mut self, status: char, path: &[u8]) {
        self.backup.status(status, path);
    }

    /// Logs a warning; the run ends with exit code 1.
    pub fn warn(&mut self, message: &str) {
        self.backup.warn(message);
    }
}

/// Any failure while feeding ends the run.
fn fatal(e: BackupError) -> CommandError {
    match e {
        BackupError::Fatal(c) => c,
        other => CommandError::new(other.to_string()),
    }
}

impl Backup<'_, '_> {
    /// Walks the paths, or lets `source` feed the items.
    fn produce(&mut self, source: Option<Source<'_>>) -> Result<()> {
        match source {
            None => self.walk_all(),
            Some(f) => f(&mut Feed { backup: self }),
        }
    }
}

/// `<name>.checkpoint`, or `.checkpoint.N` if taken.
fn checkpoint_name(opened: &Opened, name: &str) -> String {
    let mut i = 0;
    loop {
        let candidate = if i == 0 {
            format!("{name}.checkpoint")
        } else {
            format!("{name}.checkpoint.{i}")
        };
        if !opened.manifest.archives.contains_key(candidate.as_bytes()) {
            return candidate;
        }
        i += 1;
    }
}

/// The user name stored in archives: `BORG_USERNAME` if set and not empty (borg 1.4), else
/// `getpass.getuser()`.
pub(crate) fn username() -> Vec<u8> {
    for var in ["BORG_USERNAME", "LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec();
        }
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    crate::platform::users::uid2user(uid).unwrap_or_else(|| uid.to_string().into_bytes())
}

/// The host name stored in archives: `BORG_HOSTNAME` if set and not empty (borg 1.4), else
/// the system's short name (up to the first `.`, as borg's `platform.hostname`).
pub(crate) fn hostname() -> Vec<u8> {
    if let Some(h) = std::env::var_os("BORG_HOSTNAME").filter(|v| !v.is_empty()) {
        return std::os::unix::ffi::OsStrExt::as_bytes(h.as_os_str()).to_vec();
    }
    let full = gethostname::gethostname();
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(full.as_os_str());
    bytes.split(|b| *b == b'.').next().unwrap_or(bytes).to_vec()
}

/// The working directory stored in archives (borg 1.4's `cwd`, shown by `info`).
pub(crate) fn cwd() -> Vec<u8> {
    std::env::current_dir()
        .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
        .unwrap_or_default()
}

impl Sink<'_> {
    /// Appends an item to the item stream. Chunks flushed now are metadata: as in borg 1.4
    /// (`meta_stats`), they do not count in the archive's statistics.
    fn add_item(&mut self, item: &Item) -> std::result::Result<(), BackupError> {
        let mut meta_stats = OpStats::default();
        let (cache, store) = (&mut self.cache, &mut self.opened.store);
        self.items.add(item, &mut |data: &[u8]| {
            let id = store.key.id_hash(data);
            cache
                .add_chunk(store, &id, data, &mut meta_stats)
                .map(|r| r.id)
        })?;
        Ok(())
    }

    /// Flushes the item stream; `stats` receives what the flushed chunks count.
    fn flush_items(&mut self, stats: &mut OpStats) -> std::result::Result<(), BackupError> {
        let (cache, store) = (&mut self.cache, &mut self.opened.store);
        self.items.flush(true, &mut |data: &[u8]| {
            let id = store.key.id_hash(data);
            cache.add_chunk(store, &id, data, stats).map(|r| r.id)
        })?;
        Ok(())
    }

    /// Builds the metadata object, stores it and commits manifest, repository and cache
    /// (borg's `Archive.save`). Returns the archive id and its metadata.
    fn write_archive(
        &mut self,
        name: &str,
        opts: &CreateOptions,
        times: (DateTime<Utc>, DateTime<Utc>),
        meta_stats: &mut OpStats,
    ) -> std::result::Result<([u8; 32], ArchiveMeta, u32), BackupError> {
        let mut item_stats = OpStats::default();
        self.flush_items(&mut item_stats)?;
        let fmt = |t: DateTime<Utc>| crate::archive::manifest::format_timestamp(t);
        let meta = ArchiveMeta {
            version: 1,
            name: name.as_bytes().to_vec(),
            items: self.items.ids().to_vec(),
            cmdline: opts.cmdline.iter().map(|a| a.as_bytes().to_vec()).collect(),
            time: fmt(times.0),
            time_end: Some(fmt(times.1)),
            hostname: Some(hostname()),
            username: Some(username()),
            cwd: Some(cwd()),
            comment: opts.comment.as_bytes().to_vec(),
            chunker_params: Some(opts.chunker_params.to_msgpack()),
            size: Some(self.stats.osize),
            csize: Some(self.stats.csize),
            nfiles: Some(self.stats.nfiles),
            size_parts: Some(self.stats.osize_parts),
            csize_parts: Some(self.stats.csize_parts),
            nfiles_parts: Some(self.stats.nfiles_parts),
            recreate_cmdline: None,
        };
        let packed = self
            .key
            .pack_and_authenticate_metadata(meta.to_value(), "archive");
        let id = self.key.id_hash(&packed);
        let r = self
            .cache
            .add_chunk(&mut self.opened.store, &id, &packed, meta_stats)?;
        self.opened.manifest.archives.insert(
            name.as_bytes().to_vec(),
            ArchiveRef {
                id,
                time: meta.time.clone(),
            },
        );
        common::commit_manifest(self.opened)?;
        self.cache.commit(&self.opened.manifest)?;
        Ok((id, meta, r.csize))
    }

    /// Writes a checkpoint archive and takes it out of the manifest again (borg's
    /// `write_checkpoint`); the next commit deletes its metadata object.
    fn write_checkpoint(&mut self, opts: &CreateOptions) -> std::result::Result<(), BackupError> {
        let name = self.checkpoint_name.clone();
        let now = Utc::now();
        let mut scratch = OpStats::default();
        let (id, _, _) = self.write_archive(&name, opts, (now, now), &mut scratch)?;
        self.opened.manifest.archives.remove(name.as_bytes());
        self.cache
            .chunk_decref(&mut self.opened.store, &id, &mut scratch)?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Saves the archive and gathers the summary.
    fn save(
        &mut self,
        name: &str,
        opts: &CreateOptions,
        t0: DateTime<Utc>,
    ) -> Result<ArchiveSummary> {
        let duration = self.start_mono.elapsed();
        let duration = chrono::Duration::from_std(duration).unwrap_or_default();
        let (start, end) = match opts.timestamp {
            Some(ts) => (ts, ts + duration),
            None => {
                let end = Utc::now();
                (end - duration, end)
            }
        };
        let _ = t0;
        let mut meta_stats = OpStats::default();
        let (id, meta, csize) = self
            .write_archive(name, opts, (start, end), &mut meta_stats)
            .map_err(|e| match e {
                BackupError::Fatal(c) => c,
                other => CommandError::new(other.to_string()),
            })?;
        // borg 1.4: the metadata chunks (`meta_stats`) are not part of "This archive".
        let shown = self.stats;
        self.cache
            .account_archive(meta.size.unwrap_or(0), meta.csize.unwrap_or(0));
        let id_hex = self.opened.id();
        Ok(ArchiveSummary {
            name: name.to_string(),
            id,
            start,
            end,
            stats: shown,
            max_archive_size: csize as f64 / MAX_DATA_SIZE as f64,
            command_line: opts.cmdline.clone(),
            repository_id: id_hex,
            location: self.opened.location.canonical(),
            last_modified: self.opened.manifest.timestamp.clone(),
            key_type: self.key.key_type(),
            key_location: self.opened.key_location.clone(),
            cache_path: common::repo_cache_dir(&id_hex),
            cache_stats: self.cache.stats(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_changed_modes_compare_their_timestamp() {
        let before = ChangeStamp {
            ctime_ns: 1,
            mtime_ns: 1,
        };
        let ctime_only = ChangeStamp {
            ctime_ns: 2,
            mtime_ns: 1,
        };
        assert!(FilesChanged::Ctime.changed(before, ctime_only));
        assert!(!FilesChanged::Mtime.changed(before, ctime_only));
        let both = ChangeStamp {
            ctime_ns: 2,
            mtime_ns: 2,
        };
        assert!(FilesChanged::Mtime.changed(before, both));
        assert!(!FilesChanged::Disabled.changed(before, both));
        assert_eq!("mtime".parse(), Ok(FilesChanged::Mtime));
        assert!("size".parse::<FilesChanged>().is_err());
    }

    #[test]
    fn slashdot_prefixes_as_borg14() {
        use walk::{archived_path, strip_prefix_of};
        assert_eq!(
            strip_prefix_of(b"input/first/./"),
            Some(b"input/first/".to_vec())
        );
        assert_eq!(strip_prefix_of(b"a//b/./c/./d"), Some(b"a/b/".to_vec()));
        assert_eq!(strip_prefix_of(b"/./x"), None);
        assert_eq!(strip_prefix_of(b"a/b"), None);
        let p = Some(&b"input/first/"[..]);
        assert_eq!(archived_path(b"input/first", p), Some(b".".to_vec()));
        assert_eq!(archived_path(b"input/first/a/b", p), Some(b"a/b".to_vec()));
        assert_eq!(archived_path(b"input", p), None);
        assert_eq!(
            archived_path(b"input/other", p),
            Some(b"input/other".to_vec())
        );
        assert_eq!(archived_path(b"x/y", None), Some(b"x/y".to_vec()));
    }
}
