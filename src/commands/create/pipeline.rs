//! The multi-core part of `create` (DESIGN.md "The create pipeline"):
//!
//! * the walk (main thread) stats, looks files up in the files cache, collects metadata and
//!   opens the files that must be read; unchanged files are never read;
//! * **file workers** read and chunk one file each (many files in flight) and pass every
//!   chunk on to
//! * **chunk workers**, which id-hash it and, unless the chunk index already holds that id
//!   ([`ChunkLookup`]), compress and encrypt it (counters from the shared reservation, see
//!   [`ObjectEncoder`]);
//! * the main thread consumes the results strictly in walk order ([`Deferred`] queue): dedup
//!   against the chunk index (so reference counts and "the first one stores it" are exactly
//!   those of a sequential run), `repo.put` (the repository never leaves this thread), the
//!   item stream, files cache, status lines and warnings.
//!
//! The workers' "stored already" answer only saves work: the main thread decides again, and
//! encodes a chunk itself in the rare case that a worker skipped it and the main thread finds
//! it missing after all. A chunk that turns out to be stored only when the main thread gets to
//! it (a duplicate still in flight) was encoded for nothing (result unchanged).
//!
//! Small files ([`HERE_SIZE`] at most) travel in batches ([`BATCH_FILES`] files or
//! [`BATCH_BYTES`]): one file worker reads, hashes and encodes a whole batch and answers once,
//! so neither the main thread nor a hand-off per file costs time. A batch is sent before any
//! later file, so the workers take jobs in walk order (the oldest pending file always has a
//! worker), and before the main thread waits for one of its files.
//!
//! Memory is bounded: at most [`Pipeline::max_files`] files (and [`MAX_BATCHED`] small
//! ones) are in flight,
//! each file's results wait in a channel of [`CHUNKS_PER_FILE`] chunks, and the walk blocks on
//! the oldest file when the queue is full.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::archive::item::{ChunkRef, Item};
use crate::archive::objects::{Encoded, ObjectEncoder};
use crate::archive::ArchiveError;
use crate::cache::{ChunkLookup, FileStat, OpStats};
use crate::chunker::{Chunker, ChunkerParams};

use super::error::{show_path, BackupError};
use super::{Backup, ChangeStamp, Sink};

/// Chunks (or chunk promises) a file worker may queue for one file before it waits for the
/// writer. (Measured on 2 cores, 1.1 GB of real files: 2 → 4 with 4 → 12 MiB in flight took
/// the first backup from 3.6–3.8 s to 3.3–3.35 s at the same peak RSS, ~80–85 MB.)
pub const CHUNKS_PER_FILE: usize = 4;

/// Plaintext bytes of chunks handed to the chunk workers but not yet written, beyond which
/// workers reading files other than the oldest pending one wait (keeps memory flat).
pub const BYTES_IN_FLIGHT: u64 = 12 << 20;

/// The in-flight byte budget. The worker of the oldest pending file (`front`) never waits,
/// so the writer, which only waits for that file, always makes progress.
#[derive(Default)]
struct Budget {
    /// (bytes in flight, sequence number of the oldest pending file, waiting workers)
    state: Mutex<(u64, u64, u32)>,
    cv: Condvar,
}

impl Budget {
    fn acquire(&self, seq: u64, bytes: u64) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !(seq <= g.1 || g.0 == 0 || g.0 + bytes <= BYTES_IN_FLIGHT) {
            g.2 += 1;
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            g.2 -= 1;
        }
        g.0 += bytes;
    }

    fn release(&self, bytes: u64) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = g.0.saturating_sub(bytes);
        let waiting = g.2 > 0;
        drop(g);
        if waiting {
            self.cv.notify_all();
        }
    }

    fn set_front(&self, seq: u64) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if g.1 != seq {
            g.1 = seq;
            let waiting = g.2 > 0;
            drop(g);
            if waiting {
                self.cv.notify_all();
            }
        }
    }
}

/// Files up to this size are read and encoded in batches (see [`BATCH_FILES`]).
pub const HERE_SIZE: u64 = 16 * 1024;

/// Most small files in one batch.
pub const BATCH_FILES: usize = 32;

/// A batch is sent once its files hold this many bytes.
pub const BATCH_BYTES: u64 = 256 * 1024;

/// Most small files queued (in batches) before the walk waits for the oldest entry.
pub const MAX_BATCHED: usize = 128;

/// What a batch job produced for one file: its chunks, and its times after reading.
type HereResult = (VecDeque<Processed>, Result<ChangeStamp, BackupError>);

/// The results of one batch, shared by its files' queue entries (main thread only).
struct BatchSlot {
    /// Where the worker's answer arrives; `None` until the batch was sent.
    rx: RefCell<Option<Receiver<Vec<HereResult>>>>,
    /// The answer, taken file by file.
    results: RefCell<Vec<Option<HereResult>>>,
}

impl BatchSlot {
    /// The result of file `i`; `None` while the answer is not there (or, with `block`, when
    /// the worker is gone).
    fn take(&self, i: usize, block: bool) -> Option<HereResult> {
        let mut results = self.results.borrow_mut();
        if results.is_empty() {
            let rx = self.rx.borrow();
            let got = match rx.as_ref()? {
                rx if block => rx.recv().ok()?,
                rx => rx.try_recv().ok()?,
            };
            *results = got.into_iter().map(Some).collect();
        }
        results.get_mut(i).and_then(Option::take)
    }
}

/// Small files collected for the next batch.
#[derive(Default)]
struct OpenBatch {
    slot: Option<Rc<BatchSlot>>,
    files: Vec<(File, u64)>,
    bytes: u64,
}

/// Files up to this size are encoded by the worker that reads them.
pub const INLINE_SIZE: u64 = 256 * 1024;

/// What a worker made of a chunk's plaintext.
enum Payload {
    /// The repository object (or its compressed form, see [`Encoded`]).
    Encoded(Encoded),
    /// Not encoded: the chunk index held the id when the worker looked. The plaintext stays
    /// for the rare case that the main thread no longer finds it stored.
    Known(crate::chunker::ChunkBytes),
}

/// One chunk, hashed (and encoded unless known) by a worker.
struct Processed {
    id: [u8; 32],
    size: usize,
    object: Payload,
}

/// What the workers share to hash and encode chunks: the encoder, and the view of the chunk
/// index that tells them which chunks need no encoding.
#[derive(Clone)]
pub(super) struct Coder {
    /// Compression and encryption.
    pub encoder: ObjectEncoder,
    /// Chunks stored already (None: encode every chunk).
    pub known: Option<ChunkLookup>,
    /// Object buffers the main thread handed back after storing them.
    pub buffers: BufferPool,
}

/// Object buffers passed back from the main thread (after `repo.put`) to the workers for the
/// next chunks. Without it every chunk-sized buffer went back to the system when freed and the
/// next one was faulted in page by page (measured on 577 MB of large files: 86k page faults
/// and 1.0 s of system time, with the pool 58k and 0.45 s). Holds at most
/// [`BufferPool::KEEP`] buffers of [`BufferPool::KEEP_BYTES`] together, so peak memory grows
/// by no more than that.
#[derive(Clone, Default)]
pub(super) struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// Most buffers kept.
    pub const KEEP: usize = 2;
    /// Most bytes of capacity kept.
    pub const KEEP_BYTES: usize = 8 << 20;

    /// An empty buffer with room for `capacity` bytes: a kept one if one is large enough
    /// (else the smallest kept one is freed, so that the pool follows the chunk sizes).
    fn take(&self, capacity: usize) -> Vec<u8> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = kept.iter().position(|b| b.capacity() >= capacity) {
            return kept.swap_remove(i);
        }
        let smallest = (0..kept.len()).min_by_key(|&i| kept[i].capacity());
        let freed = smallest.map(|i| kept.swap_remove(i));
        drop(kept);
        drop(freed);
        Vec::with_capacity(capacity)
    }

    /// Keeps `buf` for a later chunk if there is room in the pool, else frees it.
    fn give(&self, buf: Vec<u8>) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = kept.iter().map(Vec::capacity).sum();
        if kept.len() < Self::KEEP && held + buf.capacity() <= Self::KEEP_BYTES {
            kept.push(buf);
        }
    }
}

/// What a file worker reports for its file, in order.
enum FileMsg {
    /// The next chunk (its result arrives on the receiver).
    Chunk(Receiver<Processed>),
    /// The file was read to the end; its times after reading.
    Done(ChangeStamp),
    /// Reading failed.
    Failed(BackupError),
}

/// Work for a file worker.
enum Job {
    /// Read one file.
    File(FileJob),
    /// Read, hash and encode small files; answer with all their results at once.
    Batch(Vec<(File, u64)>, SyncSender<Vec<HereResult>>),
}

struct FileJob {
    seq: u64,
    /// Small file: hash, compress and encrypt on the file worker itself (saves a hand-off).
    inline: bool,
    /// The size `stat` gave (read-buffer hint).
    size: u64,
    file: File,
    sparse: bool,
    tx: SyncSender<FileMsg>,
}

struct ChunkJob {
    data: crate::chunker::ChunkBytes,
    reply: SyncSender<Processed>,
}

/// A file whose contents are being read by the workers.
pub(super) struct PendingFile {
    /// The item, complete but for `chunks`/`size`.
    pub item: Item,
    /// The path as walked (status lines, warnings).
    pub path: Vec<u8>,
    /// Files cache key and state.
    pub path_hash: [u8; 32],
    /// Files cache state before reading.
    pub fstat: FileStat,
    /// Times before reading (the "changed while we backed it up" check).
    pub before: ChangeStamp,
    seq: u64,
    /// None for a small file (its results come from `batch` into `ready` / `end`).
    rx: Option<Receiver<FileMsg>>,
    /// A small file's batch and its index in it, until its results are in `ready` / `end`.
    batch: Option<(Rc<BatchSlot>, usize)>,
    current: Option<Receiver<Processed>>,
    ready: VecDeque<Processed>,
    end: Option<Result<ChangeStamp, BackupError>>,
    from: usize,
    part: u32,
}

/// Something the walk produced that must reach the archive or the user in walk order.
pub(super) enum Deferred {
    /// A status line.
    Status(char, Vec<u8>),
    /// A warning line, with borg's warning class when it has one.
    Warning(Option<&'static str>, String),
    /// A finished item (added to the item stream, then progress).
    Item(Box<Item>),
    /// A file being read.
    File(Box<PendingFile>),
}

/// The worker threads and the queue of results waiting to be written in order.
pub(super) struct Pipeline {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Results in walk order.
    pub queue: VecDeque<Deferred>,
    /// Files in the queue (not counting small ones).
    files: usize,
    /// Small files in the queue.
    batched: usize,
    /// Small files not sent to a worker yet.
    open_batch: OpenBatch,
    /// Most files in flight.
    pub max_files: usize,
    /// Most queued entries.
    pub max_queue: usize,
    budget: Arc<Budget>,
    /// Set when the pipeline is dropped: queued work is skipped, not done.
    cancelled: Arc<AtomicBool>,
    next_seq: u64,
    /// Object buffers going back to the workers.
    buffers: BufferPool,
}

impl Pipeline {
    /// The oldest file when some of its stored chunks are in no part item yet: its item,
    /// the first such chunk and the next part number (for a checkpoint between entries).
    pub(super) fn front_partial(&self) -> Option<(&Item, usize, u32)> {
        match self.queue.front() {
            Some(Deferred::File(pf))
                if pf.item.chunks.as_ref().is_some_and(|c| c.len() > pf.from) =>
            {
                Some((&pf.item, pf.from, pf.part))
            }
            _ => None,
        }
    }

    /// Starts `workers` file workers and `workers` chunk workers.
    pub fn start(workers: usize, coder: Coder, params: ChunkerParams, seed: u32) -> Self {
        let workers = workers.max(1);
        crate::commands::workers::tune_allocator(
            crate::commands::workers::AllocatorProfile::ReturnBuffers,
        );
        let (chunk_tx, chunk_rx) = mpsc::channel::<ChunkJob>();
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let budget = Arc::new(Budget::default());
        let buffers = coder.buffers.clone();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..workers {
            let rx = Arc::clone(&chunk_rx);
            let enc = coder.clone();
            let stop = Arc::clone(&cancelled);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("hoard-chunk-{i}"))
                    .spawn(move || chunk_worker(&rx, &enc, &stop))
                    .ok(),
            );
            let rx = Arc::clone(&job_rx);
            let tx = chunk_tx.clone();
            let b = Arc::clone(&budget);
            let enc = coder.clone();
            let stop = Arc::clone(&cancelled);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("hoard-read-{i}"))
                    .spawn(move || file_worker(&rx, &tx, &b, &enc, &params, seed, &stop))
                    .ok(),
            );
        }
        Pipeline {
            jobs: Some(job_tx),
            threads: threads.into_iter().flatten().collect(),
            queue: VecDeque::new(),
            files: 0,
            batched: 0,
            open_batch: OpenBatch::default(),
            max_files: 16,
            max_queue: 4096,
            budget,
            cancelled,
            next_seq: 0,
            buffers,
        }
    }

    /// Hands a file to the workers (after the small files before it); the returned entry
    /// goes into the queue.
    fn submit(&mut self, file: File, sparse: bool, size: u64) -> Option<(u64, Receiver<FileMsg>)> {
        self.send_batch();
        let (tx, rx) = mpsc::sync_channel(CHUNKS_PER_FILE);
        let jobs = self.jobs.as_ref()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        jobs.send(Job::File(FileJob {
            seq,
            inline: size <= INLINE_SIZE,
            size,
            file,
            sparse,
            tx,
        }))
        .ok()?;
        Some((seq, rx))
    }

    /// Adds a small file to the open batch (sent when full); returns its batch and index.
    fn add_small(&mut self, file: File, size: u64) -> (Rc<BatchSlot>, usize) {
        let b = &mut self.open_batch;
        let slot = Rc::clone(b.slot.get_or_insert_with(|| {
            Rc::new(BatchSlot {
                rx: RefCell::new(None),
                results: RefCell::new(Vec::new()),
            })
        }));
        b.files.push((file, size));
        b.bytes += size;
        let i = b.files.len() - 1;
        if b.files.len() >= BATCH_FILES || b.bytes >= BATCH_BYTES {
            self.send_batch();
        }
        (slot, i)
    }

    /// Sends the open batch to the workers (if any files are in it). When the workers are
    /// gone, its files get no answer and end as failed.
    fn send_batch(&mut self) {
        let b = std::mem::take(&mut self.open_batch);
        let Some(slot) = b.slot else { return };
        let (tx, rx) = mpsc::sync_channel(1);
        *slot.rx.borrow_mut() = Some(rx);
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Batch(b.files, tx));
        }
    }

    /// True when the oldest entry must be written before more is queued.
    pub fn full(&self) -> bool {
        self.files >= self.max_files
            || self.batched >= MAX_BATCHED
            || self.queue.len() >= self.max_queue
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Receivers first (workers blocked on a full file channel give up), then the job
        // queue (workers run out of work and end).
        self.cancelled.store(true, Ordering::SeqCst);
        self.queue.clear();
        self.open_batch = OpenBatch::default();
        self.budget.set_front(u64::MAX);
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn chunk_worker(rx: &Mutex<Receiver<ChunkJob>>, enc: &Coder, cancelled: &AtomicBool) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let Ok(job) = job else { return };
        if cancelled.load(Ordering::SeqCst) {
            continue; // the run ended: nobody waits for this chunk
        }
        let _ = job.reply.send(process(enc, job.data));
    }
}

/// Id hash of one chunk, then compression and encryption unless it is stored already.
fn process(coder: &Coder, data: crate::chunker::ChunkBytes) -> Processed {
    let id = coder.encoder.key().id_hash(&data);
    let size = data.len();
    if coder.known.as_ref().is_some_and(|k| k.is_stored(&id)) {
        return Processed {
            id,
            size,
            object: Payload::Known(data),
        };
    }
    let buf = coder.buffers.take(coder.encoder.buffer_capacity(size));
    let object = coder.encoder.encode_into(&data, buf);
    drop(data);
    Processed {
        id,
        size,
        object: Payload::Encoded(object),
    }
}

fn file_worker(
    rx: &Mutex<Receiver<Job>>,
    chunks: &Sender<ChunkJob>,
    budget: &Budget,
    enc: &Coder,
    params: &ChunkerParams,
    seed: u32,
    cancelled: &AtomicBool,
) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let job = match job {
            Ok(Job::File(job)) => job,
            Ok(Job::Batch(files, tx)) => {
                if !cancelled.load(Ordering::SeqCst) {
                    let results = files
                        .iter()
                        .map(|(file, size)| read_here(file, *size, enc, params, seed))
                        .collect();
                    let _ = tx.send(results);
                }
                continue;
            }
            Err(_) => return,
        };
        if cancelled.load(Ordering::SeqCst) {
            continue;
        }
        let tx = job.tx.clone();
        let msg = match read_file(job, chunks, budget, enc, params, seed, cancelled) {
            Ok(Some(after)) => FileMsg::Done(after),
            Ok(None) => continue, // the writer is gone
            Err(e) => FileMsg::Failed(e),
        };
        let _ = tx.send(msg);
    }
}

/// Reads and chunks one file; `Ok(None)` when the writer stopped listening.
fn read_file(
    job: FileJob,
    chunks: &Sender<ChunkJob>,
    budget: &Budget,
    enc: &Coder,
    params: &ChunkerParams,
    seed: u32,
    cancelled: &AtomicBool,
) -> Result<Option<ChangeStamp>, BackupError> {
    let fd = job.file.as_raw_fd();
    let chunker = if job.sparse {
        let owned = job
            .file
            .try_clone()
            .map_err(|e| BackupError::io("read", &e, None))?;
        Chunker::new_sparse(owned, params, seed)
    } else {
        let owned = job
            .file
            .try_clone()
            .map_err(|e| BackupError::io("read", &e, None))?;
        Chunker::new(owned, params, seed)
    }
    .map_err(|e| BackupError::Other(e.to_string()))?;
    for chunk in chunker.with_size_hint(job.size).shared() {
        let chunk = chunk.map_err(|e| BackupError::io("read", &e, None))?;
        if cancelled.load(Ordering::SeqCst) {
            return Ok(None);
        }
        budget.acquire(job.seq, chunk.data.len() as u64);
        let (reply, result) = mpsc::sync_channel(1);
        let handed = if job.inline {
            reply.send(process(enc, chunk.data)).is_ok()
        } else {
            chunks
                .send(ChunkJob {
                    data: chunk.data,
                    reply,
                })
                .is_ok()
        };
        if !handed || job.tx.send(FileMsg::Chunk(result)).is_err() {
            return Ok(None);
        }
    }
    let st2 =
        crate::platform::fs::fstat(fd).map_err(|e| BackupError::platform("fstat2", &e, None))?;
    Ok(Some(ChangeStamp::of(&st2)))
}

/// Reads, chunks and encodes a small file on the calling thread.
fn read_here(file: &File, size: u64, enc: &Coder, params: &ChunkerParams, seed: u32) -> HereResult {
    let mut ready = VecDeque::new();
    let chunker = match Chunker::new(file, params, seed) {
        Ok(c) => c,
        Err(e) => return (ready, Err(BackupError::Other(e.to_string()))),
    };
    for chunk in chunker.with_size_hint(size).shared() {
        match chunk {
            Ok(c) => ready.push_back(process(enc, c.data)),
            Err(e) => return (ready, Err(BackupError::io("read", &e, None))),
        }
    }
    let end = crate::platform::fs::fstat(file.as_raw_fd())
        .map(|st| ChangeStamp::of(&st))
        .map_err(|e| BackupError::platform("fstat2", &e, None));
    (ready, end)
}

impl Sink<'_> {
    /// Dedups and stores one processed chunk (in walk order); its object buffer goes back to
    /// `buffers`.
    fn store_processed(
        &mut self,
        p: Processed,
        buffers: &BufferPool,
    ) -> Result<ChunkRef, BackupError> {
        let mut op = OpStats::default();
        let r = match self.cache.chunk_incref(&p.id, &mut op) {
            Some(r) => {
                if let Payload::Encoded(Encoded::Sealed(o)) = p.object {
                    buffers.give(o);
                }
                r
            }
            None => {
                let object = match p.object {
                    Payload::Encoded(Encoded::Sealed(o)) => o,
                    Payload::Encoded(Encoded::Framed(f)) => self.opened.store.seal(&f)?,
                    Payload::Known(data) => self.opened.store.encode(&data)?,
                };
                self.opened
                    .store
                    .repo
                    .put(&p.id, &object)
                    .map_err(ArchiveError::from)?;
                let (size, csize) = (p.size as u32, object.len() as u32);
                self.cache.record_new_chunk(&p.id, size, csize, &mut op);
                buffers.give(object);
                ChunkRef {
                    id: p.id,
                    size,
                    csize,
                }
            }
        };
        self.stats.add_op(&op);
        Ok(r)
    }
}

impl Backup<'_, '_> {
    /// True when results are waiting to be written in order (new output must queue behind).
    pub(super) fn deferring(&self) -> bool {
        self.pipeline.as_ref().is_some_and(|p| !p.queue.is_empty())
    }

    /// Queues an entry behind the pending files, or handles it now when nothing is pending.
    pub(super) fn emit(&mut self, d: Deferred) {
        match self.pipeline.as_mut() {
            Some(p) if !p.queue.is_empty() || matches!(d, Deferred::File(_)) => {
                match &d {
                    Deferred::File(pf) if pf.seq == u64::MAX => p.batched += 1,
                    Deferred::File(_) => p.files += 1,
                    _ => {}
                }
                p.queue.push_back(d);
                self.pump(false);
            }
            _ => self.handle(d),
        }
    }

    /// Handles a ready entry.
    fn handle(&mut self, d: Deferred) {
        match d {
            Deferred::Status(c, p) => self.reporter.file_status(c, &p),
            Deferred::Warning(Some(c), m) => self.reporter.warning_class(c, &m),
            Deferred::Warning(None, m) => self.reporter.warning(&m),
            Deferred::Item(item) => {
                if let Err(e) = self.add_item_now(&item) {
                    self.file_failed(&item.path, e);
                }
            }
            Deferred::File(_) => {}
        }
    }

    /// Appends `item` to the item stream now and, with progress, shows its line.
    pub(super) fn add_item_now(&mut self, item: &Item) -> Result<(), BackupError> {
        let progress = self.opts.progress;
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        sink.add_item(item)?;
        let stats = sink.stats;
        if progress {
            self.reporter.item_added(super::content_size(item));
            self.reporter.progress(&stats, Some(&item.path));
        }
        Ok(())
    }

    /// A failure found while writing an entry: fatal ones end the run, others are warnings.
    fn file_failed(&mut self, path: &[u8], e: BackupError) {
        match e {
            BackupError::Fatal(e) => {
                if self.fatal.is_none() {
                    self.fatal = Some(e);
                }
            }
            e => {
                self.warned = true;
                let class = e.warning_class();
                self.warning_classes.push(class);
                self.reporter
                    .warning_class(class, &format!("{}: {e}", show_path(path)));
                self.reporter.file_status('E', path);
            }
        }
    }

    /// Writes queued entries in order: everything ready; with `block`, or while the queue is
    /// over its bounds, waits for the oldest file.
    pub(super) fn pump(&mut self, block: bool) {
        loop {
            let Some(p) = self.pipeline.as_mut() else {
                return;
            };
            let must_wait = block || p.full();
            if self.fatal.is_some() {
                // Nothing more is written or reported once the run failed (or a signal
                // stopped it): what is queued was not stored.
                p.queue.clear();
                p.files = 0;
                p.batched = 0;
                p.open_batch = OpenBatch::default();
                return;
            }
            if must_wait {
                p.send_batch();
            }
            let Some(front) = p.queue.front_mut() else {
                return;
            };
            match front {
                Deferred::File(_) => {
                    if !self.advance_front_file(must_wait) {
                        return;
                    }
                }
                _ => {
                    if let Some(d) = p.queue.pop_front() {
                        self.handle(d);
                    }
                }
            }
        }
    }

    /// Writes what has arrived for the oldest file; true when it is finished (and popped).
    fn advance_front_file(&mut self, block: bool) -> bool {
        enum Got {
            /// A chunk, and whether it counts against the budget.
            Chunk((Processed, bool)),
            Next,
            End(Result<ChangeStamp, BackupError>),
            Wait,
        }
        let gone = || BackupError::Other("internal error: a worker thread ended".into());
        let budget = self.pipeline.as_ref().map(|p| Arc::clone(&p.budget));
        loop {
            let got = {
                let Some(Deferred::File(pf)) =
                    self.pipeline.as_mut().and_then(|p| p.queue.front_mut())
                else {
                    return true;
                };
                if let (Some(b), true) = (&budget, pf.rx.is_some()) {
                    b.set_front(pf.seq);
                }
                if let Some((slot, i)) = &pf.batch {
                    match slot.take(*i, block) {
                        Some((ready, end)) => {
                            pf.ready = ready;
                            pf.end = Some(end);
                            pf.batch = None;
                        }
                        None if block => {
                            pf.batch = None; // the worker is gone: `end` stays empty
                        }
                        None => return false,
                    }
                }
                if let Some(processed) = pf.ready.pop_front() {
                    Got::Chunk((processed, false))
                } else if pf.rx.is_none() {
                    Got::End(pf.end.take().unwrap_or(Err(gone())))
                } else if let Some(rx) = &pf.current {
                    let r = if block {
                        rx.recv().map_err(|_| TryRecvError::Disconnected)
                    } else {
                        rx.try_recv()
                    };
                    match r {
                        Ok(processed) => {
                            pf.current = None;
                            Got::Chunk((processed, true))
                        }
                        Err(TryRecvError::Empty) => Got::Wait,
                        Err(TryRecvError::Disconnected) => Got::End(Err(gone())),
                    }
                } else if let Some(rx) = &pf.rx {
                    let r = if block {
                        rx.recv().map_err(|_| TryRecvError::Disconnected)
                    } else {
                        rx.try_recv()
                    };
                    match r {
                        Ok(FileMsg::Chunk(rx)) => {
                            pf.current = Some(rx);
                            Got::Next
                        }
                        Ok(FileMsg::Done(after)) => Got::End(Ok(after)),
                        Ok(FileMsg::Failed(e)) => Got::End(Err(e)),
                        Err(TryRecvError::Empty) => Got::Wait,
                        Err(TryRecvError::Disconnected) => Got::End(Err(gone())),
                    }
                } else {
                    Got::End(Err(gone()))
                }
            };
            match got {
                Got::Chunk((processed, counted)) => {
                    if let (Some(p), true) = (self.pipeline.as_ref(), counted) {
                        p.budget.release(processed.size as u64);
                    }
                    if let Err(e) = self.take_chunk(processed) {
                        self.finish_front(Err(e));
                        return true;
                    }
                }
                Got::Next => {}
                Got::End(r) => {
                    self.finish_front(r);
                    return true;
                }
                Got::Wait => return false,
            }
        }
    }

    /// Stores a chunk of the oldest file (with part files at checkpoints, as sequentially).
    fn take_chunk(&mut self, processed: Processed) -> Result<(), BackupError> {
        let opts = self.opts;
        let (Some(sink), Some(p)) = (self.sink.as_mut(), self.pipeline.as_mut()) else {
            return Ok(());
        };
        let Some(Deferred::File(pf)) = p.queue.front_mut() else {
            return Ok(());
        };
        let r = sink.store_processed(processed, &p.buffers)?;
        pf.item.chunks.get_or_insert_with(Vec::new).push(r);
        if opts.progress {
            let stats = sink.stats;
            self.reporter.progress(&stats, Some(&pf.item.path));
        }
        (pf.from, pf.part) =
            super::interrupt::after_chunk(sink, self.reporter, &pf.item, (pf.from, pf.part), opts)?;
        Ok(())
    }

    /// Completes the oldest file: part-file tail, files cache, item, status.
    fn finish_front(&mut self, result: Result<ChangeStamp, BackupError>) {
        let Some(p) = self.pipeline.as_mut() else {
            return;
        };
        let Some(Deferred::File(pf)) = p.queue.pop_front() else {
            return;
        };
        if pf.seq == u64::MAX {
            p.batched = p.batched.saturating_sub(1);
        } else {
            p.files = p.files.saturating_sub(1);
        }
        let mut pf = *pf;
        let outcome = (|| -> Result<bool, BackupError> {
            let after = result?;
            let opts = self.opts;
            let Some(sink) = self.sink.as_mut() else {
                return Ok(false);
            };
            if pf.item.chunks.is_none() {
                pf.item.chunks = Some(Vec::new());
            }
            if pf.part > 1 {
                super::files::finish_parts(sink, &pf.item, pf.from, pf.part, opts)?;
            }
            let changed = opts.files_changed.changed(pf.before, after);
            if !changed {
                let ids = pf
                    .item
                    .chunks
                    .as_ref()
                    .map(|c| c.iter().map(|r| r.id).collect())
                    .unwrap_or_default();
                sink.cache.memorize_file(&pf.path_hash, &pf.fstat, ids);
            }
            sink.stats.nfiles += 1;
            pf.item.size = pf
                .item
                .chunks
                .as_ref()
                .map(|c| c.iter().map(|r| r.size as u64).sum());
            self.add_item_now(&pf.item)?;
            Ok(changed)
        })();
        match outcome {
            Ok(true) => {
                self.warned = true;
                self.warning_classes.push("FileChangedWarning");
                self.reporter.warning_class(
                    "FileChangedWarning",
                    &format!(
                        "{}: file changed while we backed it up",
                        show_path(&pf.path)
                    ),
                );
                self.reporter.file_status('C', &pf.path);
            }
            Ok(false) => {}
            Err(e) => self.file_failed(&pf.path, e),
        }
    }

    /// Queues a regular file for the workers (its status line and notes are queued already).
    pub(super) fn queue_file(&mut self, file: File, pending: PendingParts) -> bool {
        let sparse = self.opts.sparse;
        let Some(p) = self.pipeline.as_mut() else {
            return false;
        };
        let size = pending.fstat.size;
        let (seq, rx, batch) = if size <= HERE_SIZE && !sparse {
            (u64::MAX, None, Some(p.add_small(file, size)))
        } else {
            let Some((seq, rx)) = p.submit(file, sparse, size) else {
                return false;
            };
            (seq, Some(rx), None)
        };
        self.emit(Deferred::File(Box::new(PendingFile {
            item: pending.item,
            path: pending.path,
            path_hash: pending.path_hash,
            fstat: pending.fstat,
            before: pending.before,
            seq,
            rx,
            batch,
            current: None,
            ready: VecDeque::new(),
            end: None,
            from: 0,
            part: 1,
        })));
        true
    }

    /// Writes everything queued (end of the walk, or before a step that must run in order
    /// with nothing pending).
    pub(super) fn drain(&mut self) {
        while self.deferring() {
            self.pump(true);
            if self.fatal.is_some() {
                if let Some(p) = self.pipeline.as_mut() {
                    p.queue.clear();
                    p.files = 0;
                    p.batched = 0;
                    p.open_batch = OpenBatch::default();
                }
            }
        }
    }
}

/// What [`Backup::queue_file`] needs besides the open file.
pub(super) struct PendingParts {
    /// The item without chunks.
    pub item: Item,
    /// The path as walked.
    pub path: Vec<u8>,
    /// Files cache key.
    pub path_hash: [u8; 32],
    /// Files cache state.
    pub fstat: FileStat,
    /// Times before reading.
    pub before: ChangeStamp,
}
