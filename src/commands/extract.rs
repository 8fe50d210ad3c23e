//! `extract ARCHIVE [PATH...]`: restores archive items below the current directory (borg's
//! `do_extract` and `Archive.extract_item`).
//!
//! As borg 1.4, parent directories are never reached through a symlink, and neither is a
//! hardlink's source: a slave is linked with `linkat` between directories opened one
//! component at a time with `O_NOFOLLOW` from the target, so a parent that a later item
//! replaced by a symlink cannot send the link outside the target. Differences from borg,
//! all on the safe side: item paths that are absolute or start with `../` are refused per
//! item (borg aborts), and a missing or corrupted chunk is reported for its file and
//! extraction goes on (borg aborts); every such case makes the exit code a warning. Only
//! what the chunks hold is written, whatever the item's `size` says.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::archive::item::{ChunkRef, Item, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::archive::meta::ArchiveMeta;
use crate::archive::objects::decode_owned;
use crate::archive::pool::{Prefetcher, DEFAULT_BUDGET};
use crate::archive::{ArchiveError, ArchiveRef, KeyedRepository, Operation};
use crate::location::Location;
use crate::platform::{self, PlatformError};
use crate::security::Confirm;

use super::common::{self, CommandError, LockSpec, Opened, Result};

/// Decides whether an archive path (as stored, without leading `/`) is selected.
pub type PathFilter<'a> = &'a mut dyn FnMut(&[u8]) -> bool;

/// Options of `extract`.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `--strip-components N`.
    pub strip_components: usize,
    /// `-n/--dry-run`: read everything, write nothing.
    pub dry_run: bool,
    /// `--stdout`: concatenate file contents to the output writer.
    pub stdout: bool,
    /// `--sparse`: all-zero chunks become holes.
    pub sparse: bool,
    /// `--numeric-ids`.
    pub numeric_ids: bool,
    /// `--noacls`.
    pub noacls: bool,
    /// `--noxattrs`.
    pub noxattrs: bool,
    /// `--noflags`.
    pub noflags: bool,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// `-p/--progress`: report progress through [`Reporter::progress`].
    pub progress: bool,
    /// `--lock-wait` and `--bypass-lock`.
    pub lock: LockSpec,
    /// Worker threads for decoding.
    pub workers: usize,
    /// The path-index keys of the PATH selection, when it may use the index
    /// ([`super::path_index::index_keys`]).
    pub index_keys: Option<Vec<String>>,
}

/// How `extract` talks to the user (the CLI implements it; the command never prints).
pub trait Reporter {
    /// `--list`: an item is about to be extracted (its path after stripping).
    fn list(&mut self, path: &[u8]);
    /// A per-item problem (borg's `print_warning`); the exit code becomes a warning.
    fn warning(&mut self, message: &str);
    /// A per-item problem of one of borg's warning classes (`BackupPermissionError`, …),
    /// which borg 1.4 logs with the class name as msgid.
    fn warning_class(&mut self, class: &'static str, message: &str) {
        let _ = class;
        self.warning(message);
    }
    /// Progress: `before` bytes were done before this step, `after` after it, of `total`;
    /// `path` is the item being processed.
    fn progress(&mut self, _before: u64, _after: u64, _total: u64, _path: &[u8]) {}
    /// A progress message without a percentage (e.g. the size pre-pass).
    fn progress_message(&mut self, _message: &str) {}
    /// The progress display is finished.
    fn progress_finish(&mut self) {}
}

/// Opens the repository and loads the archive named in `loc` (borg's `with_archive`).
pub fn open_archive(
    loc: &Location,
    lock: LockSpec,
    confirm: Confirm<'_>,
) -> Result<(Opened, ArchiveMeta)> {
    let access = lock.shared();
    let name = loc
        .archive
        .clone()
        .ok_or_else(|| CommandError::new("No archive specified"))?;
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Read], confirm)?;
    let meta = load_named(&mut opened, &name)?;
    Ok((opened, meta))
}

/// Loads the metadata of archive `name` of an open repository.
pub fn load_named(opened: &mut Opened, name: &str) -> Result<ArchiveMeta> {
    let aref: ArchiveRef = opened
        .manifest
        .archives
        .get(name.as_bytes())
        .cloned()
        .ok_or_else(|| {
            CommandError::with_id(
                format!("Archive {name} does not exist"),
                "Archive.DoesNotExist",
            )
        })?;
    Ok(ArchiveMeta::load(&mut opened.store, &aref.id)?)
}

/// Removes the first `n` `/`-separated components; `None` if nothing is left.
pub fn strip_components(path: &[u8], n: usize) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(path.to_vec());
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    if parts.len() <= n {
        return None;
    }
    Some(parts[n..].join(&b'/'))
}

/// The components of an item path if it stays inside the target directory: not absolute, no
/// `..`; empty and `.` components are dropped. `None` for an unsafe or empty path.
pub fn safe_components(path: &[u8]) -> Option<Vec<&OsStr>> {
    if path.first() == Some(&b'/') {
        return None;
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// A per-item failure: the text after `path: `, and borg 1.4's class of it (`BackupError`
/// or one of its subclasses: the warning's msgid and modern exit code).
#[derive(Debug)]
struct ItemError(String, &'static str);

impl ItemError {
    /// borg's plain `BackupError` (size inconsistency, damaged chunks, …).
    fn backup(message: impl Into<String>) -> ItemError {
        ItemError(message.into(), "BackupError")
    }
}

/// borg's `BackupIO` mapping of an `OSError` to its `BackupOSError` subclass.
pub fn os_error_class(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM | libc::EACCES | libc::EBUSY) => "BackupPermissionError",
        Some(libc::ENOENT) => "BackupFileNotFoundError",
        Some(libc::EIO) => "BackupIOError",
        _ => "BackupOSError",
    }
}

impl From<PlatformError> for ItemError {
    fn from(e: PlatformError) -> Self {
        let class = match &e {
            PlatformError::Os { source, .. } => os_error_class(source.raw_os_error()),
            _ => "BackupOSError",
        };
        ItemError(e.to_string(), class)
    }
}

impl From<crate::archive::ArchiveError> for ItemError {
    fn from(e: crate::archive::ArchiveError) -> Self {
        ItemError::backup(e.to_string())
    }
}

fn io_err(op: &str, path: &Path, e: std::io::Error) -> ItemError {
    let class = os_error_class(e.raw_os_error());
    // as Python shows the path it was given: without the `./` of a `.` target
    let path: std::path::PathBuf = path.components().collect();
    match e.raw_os_error() {
        Some(_) => ItemError(
            format!(
                "{op}: {}",
                platform::os_error_text(&e, &path.display().to_string())
            ),
            class,
        ),
        None => ItemError(format!("{op}: {e}"), class),
    }
}

/// A platform error as borg's `backup_io` shows an `OSError` (`op: [Errno n] text: 'path'`).
fn platform_io(op: &str, path: &Path, e: PlatformError) -> ItemError {
    match e {
        PlatformError::Os { source, .. } => io_err(op, path, source),
        other => ItemError::from(other),
    }
}

fn last_os(op: &str, path: &Path) -> ItemError {
    io_err(op, path, std::io::Error::last_os_error())
}

/// Where a hardlink group's data or first extracted path is (borg's `hardlink_masters`).
#[derive(Debug, Clone, Default)]
struct MasterInfo {
    chunks: Option<Vec<ChunkRef>>,
    /// The (stripped) archive path the group was first extracted to, relative to the target:
    /// resolved again, without following symlinks, each time a slave is linked to it.
    link_target: Option<Vec<u8>>,
}

/// borg 1.4's `BackupSymlinkParentError` text (also for a parent that is another
/// non-directory).
const SYMLINK_PARENT: &str =
    "not extracted, a parent directory is a symlink (malicious or corrupted archive)";

/// True for a path borg 1.4.5's `extract_item` refuses with a bare `Exception('Path should be
/// relative and local')`: one starting with `/` or `../` (checked after `--strip-components`).
/// Unlike every other refusal this is not a per-item warning: borg's exception ends the
/// extraction there ("Local Exception", exit code 2 in both exit-code modes).
pub fn is_not_relative_and_local(path: &[u8]) -> bool {
    path.starts_with(b"/") || path.starts_with(b"../")
}

/// The command error for such a path: borg's "Local Exception" (msgid `Exception`, exit 2
/// also with `BORG_EXIT_CODES=modern`), with the exception's text and the path.
pub fn not_relative_and_local(path: &[u8]) -> CommandError {
    CommandError::with_id(
        format!(
            "Local Exception: Path should be relative and local: {}",
            remove_surrogates(path)
        ),
        "Exception",
    )
}

/// The per-item error for a path that is absolute or starts with `../` where borg has no
/// check of its own (a hardlink's destination; items reach [`Extractor::extract_item`] only
/// after [`is_not_relative_and_local`]), has a `..` further in (borg 1.4's
/// `BackupPathTraversalError`), or is empty.
fn unsafe_path(path: &[u8]) -> ItemError {
    let has_dotdot = path.split(|&b| b == b'/').any(|c| c == b"..");
    if path.starts_with(b"/") || path.starts_with(b"../") || !has_dotdot {
        ItemError::backup("Path should be relative and local")
    } else {
        ItemError(
            "not extracted, path contains \"../\" (malicious or corrupted archive)".into(),
            "BackupPathTraversalError",
        )
    }
}

/// borg 1.4's `BackupHardlinkSourceError`.
fn unsafe_source() -> ItemError {
    ItemError(
        "not extracted, hardlink source path is unsafe (malicious or corrupted archive)".into(),
        "BackupHardlinkSourceError",
    )
}

/// The outcome of `extract`.
#[derive(Debug, Default, Clone)]
pub struct ExtractOutcome {
    /// Whether any warning was reported (exit code 1).
    pub warnings: bool,
    /// borg's class of each warning (`BackupOSError`, …; `BorgWarning` for the generic
    /// warning borg sets without a class, e.g. an extended attribute it could not set): the
    /// modern exit code follows from them.
    pub warning_classes: Vec<&'static str>,
}

struct Extractor<'r, 'w> {
    root: PathBuf,
    opts: ExtractOptions,
    reporter: &'r mut dyn Reporter,
    out: &'w mut dyn Write,
    warned: bool,
    warning_classes: Vec<&'static str>,
    masters: HashMap<Vec<u8>, MasterInfo>,
    partial: bool,
    total: u64,
    done: u64,
    /// Directories this run already checked (or created) as real directories reached without
    /// symlinks; saves re-checking every parent of every file. Any non-directory this run
    /// puts in place of a checked path clears the set.
    checked_dirs: std::cell::RefCell<std::collections::HashSet<PathBuf>>,
    /// Reads and decodes file chunks ahead of the writer.
    prefetch: Prefetcher<std::result::Result<Vec<u8>, ArchiveError>>,
    /// The chunks planned for the item being extracted.
    current: Option<Plan>,
}

/// The chunks read ahead for one item: sequence numbers `first..first + count`. Each is
/// checked against the chunk the item needs when it is taken ([`Prefetcher::next_id`]), so
/// the plan keeps no copy of the chunk list (32 MB for a file of a million chunks).
struct Plan {
    first: u64,
    count: usize,
    next: usize,
    /// False once the item turned out to need other chunks than planned.
    active: bool,
}

/// An item read from the archive, waiting for its turn, with its planned chunks.
struct Queued {
    item: Item,
    stripped: Option<Vec<u8>>,
    plan: Option<Plan>,
}

/// Items read ahead of the one being extracted (besides the byte budget of the prefetcher).
const ITEM_LOOKAHEAD: usize = 2048;

/// Runs `extract` for the archive in `loc` into `target` (borg: the current directory).
#[allow(clippy::too_many_arguments)]
/// `filter` selects archive paths (PATH arguments and patterns); `out` receives file data
/// with `--stdout`.
pub fn run(
    loc: &Location,
    target: &Path,
    opts: &ExtractOptions,
    filter: PathFilter<'_>,
    partial: bool,
    reporter: &mut dyn Reporter,
    out: &mut dyn Write,
    confirm: Confirm<'_>,
) -> Result<ExtractOutcome> {
    let (mut opened, meta) = open_archive(loc, opts.lock, confirm)?;
    let archive_id = loc
        .archive
        .as_ref()
        .and_then(|n| opened.manifest.archives.get(n.as_bytes()))
        .map(|r| r.id);
    let repo_id = opened.store.repo.id();
    let plan = archive_id.and_then(|id| {
        super::path_index::IndexedRead::new(
            &repo_id,
            &opened.manifest,
            id,
            opts.index_keys.as_deref(),
        )
    });
    extract_archive_planned(
        &mut opened.store,
        &meta,
        target,
        opts,
        filter,
        partial,
        reporter,
        out,
        plan,
    )
}

/// Extracts the items of `meta` below `target`; see [`run`]. `partial` is true when the
/// filter selects a subset (PATHs, patterns) so hardlink data must be tracked.
#[allow(clippy::too_many_arguments)]
pub fn extract_archive(
    store: &mut KeyedRepository,
    meta: &ArchiveMeta,
    target: &Path,
    opts: &ExtractOptions,
    filter: PathFilter<'_>,
    partial: bool,
    reporter: &mut dyn Reporter,
    out: &mut dyn Write,
) -> Result<ExtractOutcome> {
    extract_archive_planned(
        store, meta, target, opts, filter, partial, reporter, out, None,
    )
}

/// [`extract_archive`] reading only what a path index says the selection needs, when `plan`
/// is given (it is built on the way when missing).
#[allow(clippy::too_many_arguments)]
fn extract_archive_planned(
    store: &mut KeyedRepository,
    meta: &ArchiveMeta,
    target: &Path,
    opts: &ExtractOptions,
    filter: PathFilter<'_>,
    partial: bool,
    reporter: &mut dyn Reporter,
    out: &mut dyn Write,
    mut plan: Option<super::path_index::IndexedRead>,
) -> Result<ExtractOutcome> {
    let runs = super::path_index::plan_runs(&mut plan, meta, true);
    let root = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()?.join(target)
    };
    let partial = partial || opts.strip_components > 0;
    super::workers::tune_allocator(super::workers::AllocatorProfile::KeepBuffers);
    let mut ex = Extractor {
        root,
        opts: opts.clone(),
        reporter,
        out,
        warned: false,
        warning_classes: Vec::new(),
        masters: HashMap::new(),
        partial,
        total: 0,
        done: 0,
        checked_dirs: Default::default(),
        prefetch: Prefetcher::new(
            store.key.clone(),
            opts.workers,
            DEFAULT_BUDGET,
            decode_owned,
        ),
        current: None,
    };
    if opts.progress {
        ex.reporter.progress_message(
            "Calculating total archive size for the progress indicator (might take long for large archives)",
        );
        let mut items = super::path_index::IndexedRead::items(store, meta, runs.clone());
        let mut hl_sizes: HashMap<Vec<u8>, u64> = HashMap::new();
        while let Some(item) = items.next_item()? {
            if ex.selected(&item, filter).is_some() {
                // borg's `Item.get_size(hardlink_masters)`: `size` if stored, else the
                // chunks, else (slaves) the master's chunks when known
                let size = item.size.unwrap_or_else(|| match &item.chunks {
                    _ if item.is_symlink() => item.source.as_ref().map_or(0, |s| s.len() as u64),
                    Some(c) => c.iter().map(|c| u64::from(c.size)).sum(),
                    None => item
                        .source
                        .as_ref()
                        .and_then(|s| hl_sizes.get(s))
                        .copied()
                        .unwrap_or(0),
                });
                // saturating: `size` is read from the archive and may be anything
                ex.total = ex.total.saturating_add(size);
            } else if item.chunks.is_some() && item.may_be_hardlink_master() {
                hl_sizes.insert(item.path.clone(), item.reported_size());
            }
        }
    }
    let mut dirs: Vec<(Item, PathBuf)> = Vec::new();
    let mut items = super::path_index::IndexedRead::items(store, meta, runs);
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut items_done = false;
    let mut stream_error: Option<ArchiveError> = None;
    loop {
        // Read items ahead and plan their chunks, so that the workers decode the chunks of
        // the next files while this one is written.
        while !items_done && queue.len() < ITEM_LOOKAHEAD && !ex.prefetch.is_full() {
            // An unreadable item stream ends the extraction after the items before it.
            let item = match items.next_item() {
                Ok(Some(item)) => {
                    if let Some(p) = plan.as_mut() {
                        p.observe(&items, &item);
                    }
                    item
                }
                Ok(None) => {
                    items_done = true;
                    if let Some(p) = plan.as_mut() {
                        p.finish();
                    }
                    break;
                }
                Err(e) => {
                    items_done = true;
                    stream_error = Some(e);
                    break;
                }
            };
            if !ex.opts.consider_part_files && item.part.is_some() {
                continue;
            }
            let stripped = ex.selected(&item, filter);
            let plan = match (&stripped, &item.chunks) {
                (Some(_), Some(chunks))
                    if ex.opts.dry_run || ex.opts.stdout || item.file_type() == S_IFREG =>
                {
                    let first = ex.prefetch.cursor() + ex.prefetch.pending();
                    for c in chunks {
                        ex.prefetch.plan(c.id, Some(c.size as usize));
                    }
                    Some(Plan {
                        first,
                        count: chunks.len(),
                        next: 0,
                        active: true,
                    })
                }
                _ => None,
            };
            queue.push_back(Queued {
                item,
                stripped,
                plan,
            });
        }
        if items_done {
            ex.prefetch.pump_all(items.store().repo.as_mut())?;
        } else {
            ex.prefetch.pump(items.store().repo.as_mut())?;
        }
        let Some(Queued {
            mut item,
            stripped,
            plan,
        }) = queue.pop_front()
        else {
            if let Some(e) = stream_error.take() {
                return Err(e.into());
            }
            break;
        };
        let Some(stripped) = stripped else {
            if ex.partial
                && item.may_be_hardlink_master()
                && item.source.is_none()
                && is_hardlinkable(item.mode)
            {
                ex.masters.insert(
                    item.path.clone(),
                    MasterInfo {
                        chunks: item.chunks.clone(),
                        link_target: None,
                    },
                );
            }
            continue;
        };
        ex.current = plan;
        let orig_path = std::mem::replace(&mut item.path, stripped);
        if !ex.opts.dry_run {
            while let Some((d, _)) = dirs.last() {
                if is_below(&item.path, &d.path) {
                    break;
                }
                if let Some((d, p)) = dirs.pop() {
                    ex.finish_dir(&d, &p);
                }
            }
        }
        ex.reporter.list(&item.path);
        let res = if ex.opts.dry_run || ex.opts.stdout {
            ex.read_only(items.store(), &item)
        } else if is_not_relative_and_local(&item.path) {
            // borg raises here and stops; the directories still pending keep the metadata
            // they were created with, as in borg
            return Err(not_relative_and_local(&item.path));
        } else {
            ex.extract_item(items.store(), &item, &orig_path)
                .map(|dir| {
                    if let Some(p) = dir {
                        dirs.push((item.clone(), p));
                    }
                })
        };
        ex.end_item();
        if let Err(ItemError(msg, class)) = res {
            ex.warn(class, &format!("{}: {msg}", lossy(&orig_path)));
        }
    }
    if ex.opts.progress {
        ex.reporter.progress_finish();
    }
    if !ex.opts.dry_run {
        while let Some((d, p)) = dirs.pop() {
            ex.finish_dir(&d, &p);
        }
    }
    Ok(ExtractOutcome {
        warnings: ex.warned,
        warning_classes: ex.warning_classes,
    })
}

fn lossy(p: &[u8]) -> String {
    remove_surrogates(p)
}

/// A path for display as borg's `remove_surrogates` shows it: undecodable bytes become `?`.
pub fn remove_surrogates(p: &[u8]) -> String {
    let mut out = String::with_capacity(p.len());
    for chunk in p.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('?');
        }
    }
    out
}

/// True if `path` is `dir` itself or below it.
fn is_below(path: &[u8], dir: &[u8]) -> bool {
    path.starts_with(dir) && (path.len() == dir.len() || path.get(dir.len()) == Some(&b'/'))
}

fn is_hardlinkable(mode: u32) -> bool {
    matches!(mode & 0o170000, S_IFREG | S_IFBLK | S_IFCHR | S_IFIFO)
}

/// Removes what is at `path` (borg ignores a failure); the failure, if any.
fn unlink_existing(path: &Path) -> Option<std::io::Error> {
    let st = platform::fs::lstat(path).ok()?;
    if st.is_dir() {
        std::fs::remove_dir(path).err()
    } else {
        std::fs::remove_file(path).err()
    }
}

impl Extractor<'_, '_> {
    /// The item being extracted needs `chunks`: reads ahead are used while they are the
    /// chunks it asks for, in order ([`Extractor::chunk`] checks each), else dropped (the
    /// chunks are then read one by one).
    fn begin_chunks(&mut self, chunks: &[ChunkRef]) {
        if let Some(p) = &mut self.current {
            p.active = p.active && p.next == 0 && p.count == chunks.len();
        }
    }

    /// One chunk of the item being extracted, in order.
    fn chunk(
        &mut self,
        store: &mut KeyedRepository,
        c: &ChunkRef,
    ) -> std::result::Result<Vec<u8>, ArchiveError> {
        if let Some(p) = self.current.as_mut().filter(|p| p.active) {
            if p.next < p.count
                && self.prefetch.cursor() == p.first + p.next as u64
                && self.prefetch.next_id() == Some(&c.id)
            {
                p.next += 1;
                match self.prefetch.take(store.repo.as_mut()) {
                    Ok(Some(Ok(r))) => return r,
                    Ok(Some(Err(e))) => return Err(e.into()),
                    Ok(None) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                p.active = false;
            }
        }
        store.get(&c.id, Some(c.size as usize))
    }

    /// The item is done: drops whatever was read ahead for it and not used.
    fn end_item(&mut self) {
        if let Some(p) = self.current.take() {
            self.prefetch.skip_to(p.first + p.count as u64);
        }
    }

    /// A warning of borg class `class` (`BorgWarning`: the generic one, logged plainly).
    fn warn(&mut self, class: &'static str, message: &str) {
        self.warned = true;
        self.warning_classes.push(class);
        if class == "BorgWarning" {
            self.reporter.warning(message);
        } else {
            self.reporter.warning_class(class, message);
        }
    }

    /// The item's path after stripping, if it is selected.
    fn selected(&self, item: &Item, filter: PathFilter<'_>) -> Option<Vec<u8>> {
        if !self.opts.consider_part_files && item.part.is_some() {
            return None;
        }
        if !filter(&item.path) {
            return None;
        }
        strip_components(&item.path, self.opts.strip_components)
    }

    fn advance(&mut self, n: usize, path: &[u8]) {
        if self.opts.progress && self.total > 0 {
            let before = self.done;
            self.done += n as u64;
            self.reporter.progress(before, self.done, self.total, path);
        }
    }

    /// `--dry-run` and `--stdout`: fetch (and maybe write out) the data, create nothing.
    fn read_only(
        &mut self,
        store: &mut KeyedRepository,
        item: &Item,
    ) -> std::result::Result<(), ItemError> {
        let chunks = match &item.chunks {
            Some(c) => c.clone(),
            None => return Ok(()),
        };
        let mut total = 0u64;
        self.begin_chunks(&chunks);
        for c in &chunks {
            let data = self.chunk(store, c)?;
            self.advance(data.len(), &item.path);
            if self.opts.stdout {
                self.out.write_all(&data).map_err(|e| {
                    ItemError(format!("write: {e}"), os_error_class(e.raw_os_error()))
                })?;
            }
            total += data.len() as u64;
        }
        if self.opts.stdout {
            let _ = self.out.flush();
        }
        check_size(item, total)?;
        if item.chunks_healthy.is_some() {
            return Err(damaged());
        }
        Ok(())
    }

    /// The destination of a (stripped) archive path, after checking it is safe and that its
    /// parents are directories reached without symlinks; creates missing parents when
    /// `create_parents`.
    fn destination(
        &self,
        path: &[u8],
        create_parents: bool,
    ) -> std::result::Result<PathBuf, ItemError> {
        let comps = safe_components(path).ok_or_else(|| unsafe_path(path))?;
        let mut p = self.root.clone();
        let (last, parents) = comps
            .split_last()
            .ok_or_else(|| ItemError::backup("Path should be relative and local"))?;
        for c in parents {
            p.push(c);
            if self.checked_dirs.borrow().contains(&p) {
                continue;
            }
            match platform::fs::lstat(&p) {
                Ok(st) if st.is_dir() => {
                    self.checked_dirs.borrow_mut().insert(p.clone());
                }
                Ok(_) => return Err(ItemError(SYMLINK_PARENT.into(), "BackupSymlinkParentError")),
                Err(e) if e.errno() == Some(libc::ENOENT) && create_parents => {
                    std::fs::create_dir(&p).map_err(|e| io_err("makedirs", &p, e))?;
                    self.checked_dirs.borrow_mut().insert(p.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        p.push(last);
        Ok(p)
    }

    /// Extracts one item; returns the path of a directory whose metadata is restored later.
    fn extract_item(
        &mut self,
        store: &mut KeyedRepository,
        item: &Item,
        orig_path: &[u8],
    ) -> std::result::Result<Option<PathBuf>, ItemError> {
        if item.file_type() == S_IFDIR
            && !item.path.is_empty()
            && item
                .path
                .split(|&b| b == b'/')
                .all(|c| c == b"." || c.is_empty())
            && !item.path.starts_with(b"/")
        {
            // `.` (import-tar of a tar made with `tar cf x.tar .`): borg restores the
            // extraction directory's own metadata
            return Ok(Some(self.root.clone()));
        }
        let path = self.destination(&item.path, true)?;
        if item.file_type() != S_IFDIR && self.checked_dirs.borrow().contains(&path) {
            // a directory we vouched for is about to be replaced: trust nothing below it
            self.checked_dirs.borrow_mut().clear();
        }
        if item.file_type() != S_IFREG {
            let _ = unlink_existing(&path);
        }
        match item.file_type() {
            S_IFDIR => {
                match platform::fs::lstat(&path) {
                    Ok(st) if st.is_dir() => {}
                    _ => std::fs::create_dir(&path).map_err(|e| io_err("mkdir", &path, e))?,
                }
                Ok(Some(path))
            }
            S_IFLNK => {
                let target = item.source.as_deref().unwrap_or_default();
                platform::fs::symlink(target, &path)?;
                self.restore_attrs(&path, item, None, true);
                Ok(None)
            }
            S_IFREG => {
                // a new file is created exclusively and whatever is in the way is removed
                // only when that fails (see `write_file`); a link needs the name free first
                if item.is_hardlink_slave() && item.source.is_some() {
                    let _ = unlink_existing(&path);
                    if self.link_or_adopt(item, orig_path, &path)? {
                        return Ok(None);
                    }
                }
                self.write_file(store, item, orig_path, &path)?;
                Ok(None)
            }
            S_IFIFO | S_IFCHR | S_IFBLK => {
                if self.link_or_adopt(item, orig_path, &path)? {
                    return Ok(None);
                }
                if item.file_type() == S_IFIFO {
                    platform::fs::mkfifo(&path, 0o600)?;
                } else {
                    platform::fs::mknod(&path, item.mode, item.rdev.unwrap_or(0))?;
                }
                self.note_extracted(item, orig_path);
                self.restore_attrs(&path, item, None, false);
                Ok(None)
            }
            other => Err(ItemError::backup(format!(
                "Unknown archive item type {other:o}"
            ))),
        }
    }

    /// For a hardlink slave: links to the already extracted master (true), or takes over the
    /// master's chunks when the master was not extracted (false, item then written).
    fn link_or_adopt(
        &mut self,
        item: &Item,
        _orig_path: &[u8],
        path: &Path,
    ) -> std::result::Result<bool, ItemError> {
        let Some(source) = item.source.as_ref().filter(|_| item.is_hardlink_slave()) else {
            return Ok(false);
        };
        let info = self.masters.get(source).cloned();
        let link_source = match &info {
            Some(MasterInfo {
                link_target: Some(t),
                ..
            }) => Some(t.clone()),
            Some(MasterInfo {
                chunks: Some(_), ..
            }) => None,
            _ => Some(
                strip_components(source, self.opts.strip_components).ok_or_else(unsafe_source)?,
            ),
        };
        if let Some(t) = link_source {
            self.link_beneath(&t, &item.path, path)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Makes `path` (where the stripped archive path `dest` goes) a hard link to what was
    /// extracted at the stripped archive path `source`. Both parent chains are opened from the
    /// target directory one component at a time without following symlinks and the link is
    /// made between the two open directories, so a parent that a later item replaced by a
    /// symlink (or a `..`) cannot make the link reach a file outside the target, and nothing
    /// can swap a component between the check and the link. A symlink as the last component
    /// of `source` is linked itself, never the file it points to.
    fn link_beneath(
        &self,
        source: &[u8],
        dest: &[u8],
        path: &Path,
    ) -> std::result::Result<(), ItemError> {
        let src = safe_components(source).ok_or_else(unsafe_source)?;
        let dst = safe_components(dest).ok_or_else(|| unsafe_path(dest))?;
        let (Some((src_name, src_parents)), Some((dst_name, dst_parents))) =
            (src.split_last(), dst.split_last())
        else {
            return Err(unsafe_source());
        };
        let as_bytes =
            |c: &[&OsStr]| -> Vec<Vec<u8>> { c.iter().map(|c| c.as_bytes().to_vec()).collect() };
        let root = platform::fs::open_dir(&self.root)?;
        let src_parents = as_bytes(src_parents);
        let src_refs: Vec<&[u8]> = src_parents.iter().map(Vec::as_slice).collect();
        let src_dir = match platform::fs::open_dir_beneath(root.as_raw_fd(), &src_refs, path) {
            Ok(d) => d,
            Err(e) if matches!(e.errno(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(unsafe_source())
            }
            Err(e) => return Err(platform_io("link", path, e)),
        };
        let dst_parents = as_bytes(dst_parents);
        let dst_refs: Vec<&[u8]> = dst_parents.iter().map(Vec::as_slice).collect();
        let dst_dir = platform::fs::open_dir_beneath(root.as_raw_fd(), &dst_refs, path)
            .map_err(|e| platform_io("link", path, e))?;
        platform::fs::link_at(
            src_dir.as_raw_fd(),
            src_name.as_bytes(),
            dst_dir.as_raw_fd(),
            dst_name.as_bytes(),
            path,
        )
        .map_err(|e| platform_io("link", path, e))
    }

    /// Remembers where a hardlink group was extracted, for the following slaves.
    fn note_extracted(&mut self, item: &Item, orig_path: &[u8]) {
        if !self.partial {
            return;
        }
        let key = item
            .source
            .clone()
            .filter(|_| item.is_hardlink_slave())
            .unwrap_or_else(|| orig_path.to_vec());
        if item.is_hardlink_slave() || item.hardlink_master == Some(true) {
            self.masters.insert(
                key,
                MasterInfo {
                    chunks: None,
                    link_target: Some(item.path.clone()),
                },
            );
        }
    }

    fn write_file(
        &mut self,
        store: &mut KeyedRepository,
        item: &Item,
        orig_path: &[u8],
        path: &Path,
    ) -> std::result::Result<(), ItemError> {
        let chunks: Vec<ChunkRef> = match &item.chunks {
            Some(c) => c.clone(),
            None => item
                .source
                .as_ref()
                .and_then(|s| self.masters.get(s))
                .and_then(|m| m.chunks.clone())
                .unwrap_or_default(),
        };
        let open = || {
            platform::fs::open(
                path,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )
        };
        // Removing what is in the way only when something is (borg stats every path first):
        // the same outcome with one system call less per file in an empty target.
        let fd = match open() {
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                let removal = unlink_existing(path);
                match open() {
                    Err(e) if e.errno() == Some(libc::EEXIST) => {
                        // Still in the way: borg's `open(path, 'wb')` would fail on it with
                        // EISDIR (a directory it could not remove) or with what stopped the
                        // removal (EPERM for an immutable file): report that, as borg.
                        let is_dir = platform::fs::lstat(path).is_ok_and(|st| st.is_dir());
                        let errno = if is_dir {
                            libc::EISDIR
                        } else {
                            removal
                                .and_then(|r| r.raw_os_error())
                                .unwrap_or(libc::EEXIST)
                        };
                        return Err(io_err(
                            "open",
                            path,
                            std::io::Error::from_raw_os_error(errno),
                        ));
                    }
                    other => other.map_err(|e| platform_io("open", path, e))?,
                }
            }
            other => other.map_err(|e| platform_io("open", path, e))?,
        };
        // SAFETY: the descriptor was just opened and is owned by nothing else.
        let mut file =
            unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        self.note_extracted(item, orig_path);
        let mut pos: u64 = 0;
        self.begin_chunks(&chunks);
        for c in &chunks {
            let data = self.chunk(store, c)?;
            self.advance(data.len(), &item.path);
            if self.opts.sparse {
                write_sparse(&mut file, &data).map_err(|e| io_err("write", path, e))?;
            } else {
                file.write_all(&data)
                    .map_err(|e| io_err("write", path, e))?;
            }
            pos += data.len() as u64;
        }
        if self.opts.sparse {
            // a trailing hole only exists once the size is set (a file written without
            // holes already has its size: it was created empty)
            file.set_len(pos)
                .map_err(|e| io_err("truncate_and_attrs", path, e))?;
        }
        self.restore_attrs(path, item, Some(file.as_raw_fd()), false);
        drop(file);
        check_size(item, pos)?;
        if item.chunks_healthy.is_some() {
            return Err(damaged());
        }
        Ok(())
    }

    fn finish_dir(&mut self, item: &Item, path: &Path) {
        self.restore_attrs(path, item, None, false);
    }

    /// borg's `restore_attrs`: owner, mode, ACLs, xattrs, times, then flags.
    fn restore_attrs(&mut self, path: &Path, item: &Item, fd: Option<i32>, symlink: bool) {
        let uid = platform::users::restore_uid(
            item.user.as_deref(),
            item.uid as i64,
            self.opts.numeric_ids,
        );
        let gid = platform::users::restore_gid(
            item.group.as_deref(),
            item.gid as i64,
            self.opts.numeric_ids,
        );
        let _ = match fd {
            Some(fd) => platform::fs::fchown(fd, uid, gid),
            None => platform::fs::lchown(path, uid, gid),
        };
        let mode_res = match fd {
            // SAFETY: plain syscall on a descriptor the caller owns.
            Some(fd) => {
                if unsafe { libc::fchmod(fd, item.mode & 0o7777) } == -1 {
                    Err(last_os("attrs", path))
                } else {
                    Ok(())
                }
            }
            None if symlink => Ok(()),
            None => platform::fs::chmod_nofollow(path, item.mode).map_err(ItemError::from),
        };
        if let Err(ItemError(m, class)) = mode_res {
            self.warn(class, &format!("{}: {m}", lossy(&item.path)));
        }
        if !self.opts.noacls && !symlink {
            let _ = platform::acl::acl_set(
                path,
                item.acl_access.as_deref(),
                item.acl_default.as_deref(),
                self.opts.numeric_ids,
            );
        }
        if !self.opts.noxattrs {
            if let Some(x) = &item.xattrs {
                let target = match fd {
                    Some(fd) => platform::xattr::Target::Fd(fd),
                    None => platform::xattr::Target::Path(path),
                };
                for w in platform::xattr::set_all(target, x) {
                    // Python's str(OSError(errno, msg, path)) with the path as bytes or fd
                    let target_text = match fd {
                        Some(fd) => fd.to_string(),
                        None => crate::python::bytes_repr(path.as_os_str().as_bytes()),
                    };
                    let os = match w.error.errno() {
                        Some(n) => {
                            format!("[Errno {n}] {}: {target_text}", platform::errno_text(n))
                        }
                        None => w.error.to_string(),
                    };
                    let msg = match w.error.errno() {
                        Some(libc::E2BIG) => format!("too big for this filesystem ({os})"),
                        Some(libc::ENOSPC) => format!(
                            "fs full or xattr too big? [xattr len = {}] ({os})",
                            w.value_len
                        ),
                        _ => os,
                    };
                    // borg logs these itself (no path prefix) and sets the generic warning
                    // exit code (`set_ec(EXIT_WARNING)`)
                    self.warn(
                        "BorgWarning",
                        &format!(
                            "when setting extended attribute {}: {msg}",
                            String::from_utf8_lossy(&w.name)
                        ),
                    );
                }
            }
        }
        let mtime = item.mtime;
        let atime = item.atime.unwrap_or(mtime);
        let _ = match fd {
            Some(fd) => platform::fs::set_times_fd(fd, atime, mtime),
            None => platform::fs::set_times_nofollow(path, atime, mtime),
        };
        if !self.opts.noflags {
            if let Some(flags) = item.bsdflags {
                if !symlink {
                    let _ = platform::flags::set_flags(path, flags, fd);
                }
            }
        }
    }
}

fn check_size(item: &Item, got: u64) -> std::result::Result<(), ItemError> {
    match item.size {
        Some(size) if size != got => Err(ItemError::backup(format!(
            "Size inconsistency detected: size {size}, chunks size {got}"
        ))),
        _ => Ok(()),
    }
}

fn damaged() -> ItemError {
    ItemError::backup("File has damaged (all-zero) chunks. Try running borg check --repair.")
}

/// Block size below which zero runs are written rather than skipped with `--sparse`.
const SPARSE_BLOCK: usize = 4096;

/// Writes `data` at the current position, seeking over every all-zero 4 KiB block instead of
/// writing it, so zero runs become holes even inside chunks that also hold data (borg only
/// skips chunks that are entirely zero; the file content is the same either way).
fn write_sparse(file: &mut std::fs::File, data: &[u8]) -> std::io::Result<()> {
    let mut pending_hole: i64 = 0;
    for block in data.chunks(SPARSE_BLOCK) {
        if block.len() == SPARSE_BLOCK && block.iter().all(|&b| b == 0) {
            pending_hole += block.len() as i64;
            continue;
        }
        if pending_hole > 0 {
            file.seek(SeekFrom::Current(pending_hole))?;
            pending_hole = 0;
        }
        file.write_all(block)?;
    }
    if pending_hole > 0 {
        file.seek(SeekFrom::Current(pending_hole))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert!(safe_components(b"/etc/passwd").is_none());
        assert!(safe_components(b"../x").is_none());
        assert!(safe_components(b"a/../../x").is_none());
        assert!(safe_components(b"a/..").is_none());
        assert!(safe_components(b"").is_none());
        assert!(safe_components(b".").is_none());
        assert_eq!(safe_components(b"./a//b").map(|c| c.len()), Some(2));
        assert_eq!(safe_components(b"a..b/..c").map(|c| c.len()), Some(2));
    }

    #[test]
    fn strip() {
        assert_eq!(strip_components(b"a/b/c", 1).as_deref(), Some(&b"b/c"[..]));
        assert_eq!(strip_components(b"a/b/c", 2).as_deref(), Some(&b"c"[..]));
        assert_eq!(strip_components(b"a/b/c", 3), None);
        assert_eq!(strip_components(b"a", 0).as_deref(), Some(&b"a"[..]));
        assert!(is_below(b"a/b", b"a") && is_below(b"a", b"a") && !is_below(b"ab", b"a"));
    }
}
