//! Stat-ahead: a helper thread that collects the metadata of the entries of the directories
//! being walked (`lstat`, and for plain regular files `open`, `fstat`, flags, xattrs, ACLs)
//! while the walking thread is still busy with earlier entries. An unchanged re-backup is
//! mostly these system calls; with the helper they run beside the walk on another core.
//!
//! Everything here is best effort: an entry whose metadata could not be read completely and
//! quietly (an error, an xattr warning, a race) has no result, and the walk then reads it
//! itself, exactly as without the helper, so every message and status comes out as before.
//! No file stays open: the walk opens again only the files whose contents it must read.
//!
//! Scheduling: each directory in the walk is a job on a stack; the helper works on the
//! deepest directory that has entries it may still prefetch (at most [`WINDOW`] ahead of what
//! the walk consumed), so the directory the walk is in comes first.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::archive::item::Item;
use crate::platform::fs::{self, Stat};

use super::meta::{self, MetaOptions};
use super::walk::FLAGS_NORMAL;

/// How many entries of one directory the helper may read ahead of the walk.
const WINDOW: usize = 256;
/// How many entries the helper takes from a job at once.
const BATCH: usize = 16;

/// What the helper learned about one directory entry.
#[derive(Debug, Default)]
pub(super) struct Prefetched {
    /// `lstat` of the entry.
    pub lstat: Option<Stat>,
    /// For a regular file with one link: what opening it told.
    pub file: Option<FileMeta>,
}

/// The metadata of a regular file read through an open descriptor (since closed).
#[derive(Debug)]
pub(super) struct FileMeta {
    /// `fstat` of the open file (same type and inode as `lstat`).
    pub fstat: Stat,
    /// Flags, xattrs and ACLs, as [`meta::ext_attrs`] put them into an item.
    pub ext: ExtAttrs,
}

/// The fields [`meta::ext_attrs`] fills.
#[derive(Debug, Default)]
pub(super) struct ExtAttrs {
    bsdflags: Option<u32>,
    xattrs: Option<crate::platform::xattr::Xattrs>,
    acl_access: Option<Vec<u8>>,
    acl_default: Option<Vec<u8>>,
}

impl ExtAttrs {
    /// Puts the fields into `item`.
    pub fn apply(self, item: &mut Item) {
        item.bsdflags = self.bsdflags;
        item.xattrs = self.xattrs;
        item.acl_access = self.acl_access;
        item.acl_default = self.acl_default;
    }
}

/// One directory being walked.
struct Job {
    id: u64,
    dir: Arc<File>,
    /// Entries not handed to the helper yet, with their index.
    todo: VecDeque<(usize, Vec<u8>)>,
    /// Entries the walk has taken so far.
    consumed: usize,
    results: Sender<Vec<(usize, Prefetched)>>,
}

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    next_id: u64,
    closed: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The helper thread and its job stack.
pub(super) struct StatAhead {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl StatAhead {
    /// Starts the helper thread.
    pub fn start(opts: MetaOptions) -> std::io::Result<Self> {
        let shared: Shared = Arc::default();
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hoard-stat-ahead".into())
            .spawn(move || run(&worker, &opts))?;
        Ok(StatAhead {
            shared,
            thread: Some(thread),
        })
    }

    /// Starts prefetching the entries `names` of the open directory `dir` (in that order);
    /// `None` when the directory cannot be shared with the helper.
    pub fn dir(&self, dir: &File, names: &[Vec<u8>]) -> Option<DirAhead> {
        let dir = Arc::new(dir.try_clone().ok()?);
        let (tx, rx) = channel();
        let mut state = lock(&self.shared);
        let id = state.next_id;
        state.next_id += 1;
        state.jobs.push(Job {
            id,
            dir,
            todo: names.iter().cloned().enumerate().collect(),
            consumed: 0,
            results: tx,
        });
        drop(state);
        self.shared.1.notify_all();
        Some(DirAhead {
            shared: Arc::clone(&self.shared),
            id,
            results: rx,
            ready: VecDeque::new(),
            next: 0,
        })
    }
}

impl Drop for StatAhead {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The walk's side of one directory: results in entry order.
pub(super) struct DirAhead {
    shared: Shared,
    id: u64,
    results: Receiver<Vec<(usize, Prefetched)>>,
    ready: VecDeque<(usize, Prefetched)>,
    next: usize,
}

impl DirAhead {
    /// The result for the next entry (waits for the helper when it has not got there yet);
    /// `None` when there is none (the walk then reads the entry itself).
    pub fn next(&mut self) -> Option<Prefetched> {
        let index = self.next;
        self.next += 1;
        // Move the window on once per batch, not per entry (a lock and a wake-up each).
        if index.is_multiple_of(BATCH) {
            if let Some(job) = lock(&self.shared).jobs.iter_mut().find(|j| j.id == self.id) {
                job.consumed = index;
            }
            self.shared.1.notify_all();
        }
        loop {
            if self.ready.is_empty() {
                self.ready.extend(self.results.recv().ok()?);
            }
            match self.ready.pop_front() {
                Some((i, p)) if i == index => return Some(p),
                Some((i, _)) if i < index => continue,
                // A later entry: this one has no result.
                Some(later) => {
                    self.ready.push_front(later);
                    return None;
                }
                None => return None,
            }
        }
    }
}

impl Drop for DirAhead {
    fn drop(&mut self) {
        lock(&self.shared).jobs.retain(|j| j.id != self.id);
        self.shared.1.notify_all();
    }
}

/// The helper thread: takes up to [`BATCH`] entries of the deepest job that may go ahead.
fn run(shared: &Shared, opts: &MetaOptions) {
    loop {
        let (dir, batch, tx) = {
            let mut state = lock(shared);
            loop {
                if state.closed {
                    return;
                }
                let ready = state.jobs.iter_mut().rev().find(|j| {
                    j.todo
                        .front()
                        .is_some_and(|(i, _)| *i < j.consumed + WINDOW)
                });
                if let Some(job) = ready {
                    let limit = job.consumed + WINDOW;
                    let mut batch = Vec::with_capacity(BATCH);
                    while batch.len() < BATCH {
                        match job.todo.front() {
                            Some((i, _)) if *i < limit => {}
                            _ => break,
                        }
                        if let Some(entry) = job.todo.pop_front() {
                            batch.push(entry);
                        }
                    }
                    break (Arc::clone(&job.dir), batch, job.results.clone());
                }
                state = shared.1.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let done = batch
            .into_iter()
            .map(|(i, name)| (i, prefetch(&dir, &name, opts)))
            .collect();
        // A closed channel means the walk left the directory: nothing to do.
        let _ = tx.send(done);
    }
}

/// Reads what the walk will need of the entry `name` of `dir`.
fn prefetch(dir: &File, name: &[u8], opts: &MetaOptions) -> Prefetched {
    let shown = Path::new(std::ffi::OsStr::from_bytes(name));
    let Ok(lstat) = fs::lstat_at(dir.as_raw_fd(), name, shown) else {
        return Prefetched::default();
    };
    let file = (lstat.is_file() && lstat.nlink <= 1)
        .then(|| file_meta(dir, name, shown, &lstat, opts))
        .flatten();
    Prefetched {
        lstat: Some(lstat),
        file,
    }
}

fn file_meta(
    dir: &File,
    name: &[u8],
    shown: &Path,
    lstat: &Stat,
    opts: &MetaOptions,
) -> Option<FileMeta> {
    let file = File::from(fs::open_noatime_at(dir.as_raw_fd(), name, FLAGS_NORMAL, shown).ok()?);
    let fstat = fs::fstat(file.as_raw_fd()).ok()?;
    if fstat.file_type() != lstat.file_type() || fstat.ino != lstat.ino || fstat.nlink > 1 {
        return None;
    }
    let mut item = Item::default();
    let notes = meta::ext_attrs(&mut item, shown, &fstat, Some(file.as_raw_fd()), opts).ok()?;
    if !notes.is_empty() {
        return None;
    }
    Some(FileMeta {
        fstat,
        ext: ExtAttrs {
            bsdflags: item.bsdflags,
            xattrs: item.xattrs,
            acl_access: item.acl_access,
            acl_default: item.acl_default,
        },
    })
}
