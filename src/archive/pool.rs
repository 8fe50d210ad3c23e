//! Reading many objects fast: raw object bytes are fetched on the calling thread in batches
//! (`Repository::get_many`, which pipelines requests to a remote repository) and handed to a
//! pool of workers that decrypt, decompress and id-check them; results come back in the order
//! the objects were asked for. The repository never leaves the calling thread; workers only
//! see the key and the bytes.
//!
//! Memory stays bounded: objects are fetched only while the bytes fetched but not yet taken by
//! the caller stay below a budget.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use crate::crypto::Key;
use crate::repo::{RepoError, Repository};

/// Turns one raw object into the caller's result (decrypt, decompress, id check, ...).
/// Arguments: the key, the object id, the raw object (to decrypt in place), the plaintext
/// size hint.
pub type DecodeFn<T> = fn(&Key, &[u8; 32], Vec<u8>, Option<usize>) -> T;

/// The bytes a decoded result holds, so that the read-ahead budget counts what decoding
/// produced and not only the (compressed) bytes that were read: a hostile object that
/// decompresses far beyond its size then stops further reads until it is taken.
pub trait DecodedSize {
    /// Bytes held by this result.
    fn decoded_size(&self) -> usize;
}

impl DecodedSize for () {
    fn decoded_size(&self) -> usize {
        0
    }
}

impl DecodedSize for Vec<u8> {
    fn decoded_size(&self) -> usize {
        self.len()
    }
}

impl<A: DecodedSize, E> DecodedSize for Result<A, E> {
    fn decoded_size(&self) -> usize {
        self.as_ref().map_or(0, DecodedSize::decoded_size)
    }
}

/// One object to decode: sequence number, id, raw object, size hint.
type Job = (u64, [u8; 32], Vec<u8>, Option<usize>);

/// A pool of decoding workers. With one worker, decoding runs on the calling thread.
/// Objects travel in groups (one group per worker and fetched batch), so that threads wake
/// up once per group rather than once per object.
pub struct DecodePool<T: Send + 'static> {
    key: Arc<Key>,
    decode: DecodeFn<T>,
    workers: usize,
    jobs: Option<mpsc::Sender<Vec<Job>>>,
    results: Option<mpsc::Receiver<Vec<(u64, T)>>>,
    /// Finished results not handed out yet.
    done: VecDeque<(u64, T)>,
    outstanding: usize,
    handles: Vec<JoinHandle<()>>,
}

fn decode_all<T>(key: &Key, decode: DecodeFn<T>, jobs: Vec<Job>) -> Vec<(u64, T)> {
    jobs.into_iter()
        .map(|(seq, id, object, hint)| (seq, decode(key, &id, object, hint)))
        .collect()
}

impl<T: Send + 'static> DecodePool<T> {
    /// Starts `workers` threads (none when `workers <= 1`: decoding then happens inline).
    pub fn new(key: Key, workers: usize, decode: DecodeFn<T>) -> Self {
        let key = Arc::new(key);
        let mut pool = DecodePool {
            key,
            decode,
            workers: workers.max(1),
            jobs: None,
            results: None,
            done: VecDeque::new(),
            outstanding: 0,
            handles: Vec::new(),
        };
        if workers > 1 {
            let (job_tx, job_rx) = mpsc::channel::<Vec<Job>>();
            let (res_tx, res_rx) = mpsc::channel::<Vec<(u64, T)>>();
            let job_rx = Arc::new(Mutex::new(job_rx));
            for _ in 0..workers {
                let job_rx = Arc::clone(&job_rx);
                let res_tx = res_tx.clone();
                let key = Arc::clone(&pool.key);
                let handle = std::thread::spawn(move || loop {
                    let jobs = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(jobs) = jobs else { return };
                    if res_tx.send(decode_all(&key, decode, jobs)).is_err() {
                        return;
                    }
                });
                pool.handles.push(handle);
            }
            pool.jobs = Some(job_tx);
            pool.results = Some(res_rx);
        }
        pool
    }

    /// Queues objects for decoding, split evenly among the workers.
    pub fn submit(&mut self, mut jobs: Vec<Job>) {
        self.outstanding += jobs.len();
        let Some(tx) = &self.jobs else {
            let out = decode_all(&self.key, self.decode, jobs);
            self.done.extend(out);
            return;
        };
        let per = jobs.len().div_ceil(self.workers).max(1);
        while !jobs.is_empty() {
            let rest = jobs.split_off(per.min(jobs.len()));
            if let Err(mpsc::SendError(group)) = tx.send(jobs) {
                // all workers are gone (a worker panicked): decode here
                let out = decode_all(&self.key, self.decode, group);
                self.done.extend(out);
            }
            jobs = rest;
        }
    }

    /// A finished result if one is ready now (any order), without waiting.
    pub fn try_recv(&mut self) -> Option<(u64, T)> {
        if self.done.is_empty() {
            if let Some(group) = self.results.as_ref().and_then(|rx| rx.try_recv().ok()) {
                self.done.extend(group);
            }
        }
        let got = self.done.pop_front();
        if got.is_some() {
            self.outstanding -= 1;
        }
        got
    }

    /// The next finished result (any order), waiting for one; `None` when nothing is queued.
    pub fn recv(&mut self) -> Option<(u64, T)> {
        if self.outstanding == 0 {
            return None;
        }
        if self.done.is_empty() {
            if let Some(group) = self.results.as_ref().and_then(|rx| rx.recv().ok()) {
                self.done.extend(group);
            }
        }
        let got = self.done.pop_front();
        if got.is_some() {
            self.outstanding -= 1;
        }
        got
    }
}

impl<T: Send + 'static> Drop for DecodePool<T> {
    fn drop(&mut self) {
        self.jobs = None;
        // Drain remaining results so workers blocked on nothing can exit; then join.
        self.results = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One object to read, in the order the caller will take it. Its sequence number is its
/// place in the queue ([`Prefetcher::first_planned`] + index): 40 bytes an object, as a file
/// of a million chunks plans a million of them.
struct Planned {
    id: [u8; 32],
    /// Its plaintext size, if known.
    hint: Option<u32>,
}

impl Planned {
    fn hint(&self) -> Option<usize> {
        self.hint.map(|h| h as usize)
    }
}

/// Reads planned objects ahead of the caller: the caller [`plan`](Prefetcher::plan)s objects
/// in the order it will [`take`](Prefetcher::take) them, and may [`skip_to`](Prefetcher::skip_to)
/// past planned objects it no longer needs. Results are `Err` for objects the repository could
/// not deliver (the error of a single `get`) and the decode function's output otherwise.
pub struct Prefetcher<T: Send + DecodedSize + 'static> {
    pool: DecodePool<T>,
    planned: VecDeque<Planned>,
    /// Ids of the objects fetched and not yet taken or skipped, from `cursor` on (objects are
    /// fetched in plan order, so these are the sequence numbers `cursor..` up to the first
    /// planned one).
    fetched_ids: VecDeque<[u8; 32]>,
    next_seq: u64,
    cursor: u64,
    ready: HashMap<u64, Result<T, RepoError>>,
    /// Byte cost of every fetched object not yet taken or skipped, by sequence number.
    costs: HashMap<u64, usize>,
    in_flight: usize,
    /// Sum of the size hints of the planned objects not fetched yet.
    planned_bytes: usize,
    budget: usize,
    batch: usize,
    /// Objects fetched so far and their total size (for the size estimate).
    fetched_count: u64,
    fetched_bytes: u64,
}

/// Objects asked for in one `get_many` (one pipelined round of requests to a remote
/// repository).
const BATCH: usize = 64;

/// Reads resume when `budget / REFILL_DIVISOR` bytes of the budget are free.
const REFILL_DIVISOR: usize = 4;

/// The size assumed for an object of unknown size before any was fetched.
const INITIAL_SIZE_ESTIMATE: usize = 512 * 1024;

/// The default read-ahead budget: bytes of objects fetched but not yet taken.
pub const DEFAULT_BUDGET: usize = 16 * 1024 * 1024;

impl<T: Send + DecodedSize + 'static> Prefetcher<T> {
    /// A prefetcher decoding with `workers` workers and reading at most `budget` bytes ahead.
    pub fn new(key: Key, workers: usize, budget: usize, decode: DecodeFn<T>) -> Self {
        Prefetcher {
            pool: DecodePool::new(key, workers, decode),
            planned: VecDeque::new(),
            fetched_ids: VecDeque::new(),
            next_seq: 0,
            cursor: 0,
            ready: HashMap::new(),
            costs: HashMap::new(),
            in_flight: 0,
            planned_bytes: 0,
            budget: budget.max(1),
            batch: BATCH,
            fetched_count: 0,
            fetched_bytes: 0,
        }
    }

    /// The average size of the objects fetched so far (an estimate before any was).
    fn average_size(&self) -> usize {
        self.fetched_bytes
            .checked_div(self.fetched_count)
            .map_or(INITIAL_SIZE_ESTIMATE, |a| a as usize)
    }

    /// Plans one object; returns its sequence number (consecutive from 0).
    pub fn plan(&mut self, id: [u8; 32], hint: Option<usize>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        // A size beyond u32 is no plaintext size (objects are at most 20 MiB): kept unknown.
        let hint = hint.and_then(|h| u32::try_from(h).ok());
        self.planned_bytes += hint.map_or(0, |h| h as usize);
        self.planned.push_back(Planned { id, hint });
        seq
    }

    /// The sequence number of the first planned object not fetched yet (`next_seq` when
    /// nothing is).
    fn first_planned(&self) -> u64 {
        self.next_seq - self.planned.len() as u64
    }

    /// The sequence number the next [`take`](Prefetcher::take) returns.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The id of the object the next [`take`](Prefetcher::take) returns, if one is planned:
    /// a caller can check that it is the object it needs before taking it.
    pub fn next_id(&self) -> Option<&[u8; 32]> {
        self.fetched_ids
            .front()
            .or_else(|| self.planned.front().map(|p| &p.id))
    }

    /// Objects planned but not yet taken or skipped.
    pub fn pending(&self) -> u64 {
        self.next_seq - self.cursor
    }

    /// Bytes fetched and not yet taken.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// True when planning more would not start more reads now (the budget is used up by
    /// already planned objects). Uses the size hints of objects not fetched yet.
    pub fn is_full(&self) -> bool {
        self.in_flight + self.planned_bytes >= self.budget
    }

    /// Drops planned objects before `seq` that were not taken.
    pub fn skip_to(&mut self, seq: u64) {
        while self.cursor < seq {
            let s = self.cursor;
            self.release(s);
            self.ready.remove(&s);
            self.fetched_ids.pop_front();
            self.cursor += 1;
        }
        while !self.planned.is_empty() && self.first_planned() < seq {
            if let Some(p) = self.planned.pop_front() {
                self.planned_bytes -= p.hint().unwrap_or(0);
            }
        }
    }

    /// Moves every result decoded so far into `ready`, charging its decoded size.
    fn collect_decoded(&mut self) {
        while let Some((s, out)) = self.pool.try_recv() {
            if s >= self.cursor {
                self.charge_decoded(s, out.decoded_size());
                self.ready.insert(s, Ok(out));
            }
        }
    }

    /// Raises the cost of a fetched object to what decoding it produced, when that is more.
    fn charge_decoded(&mut self, seq: u64, decoded: usize) {
        if let Some(c) = self.costs.get_mut(&seq) {
            if decoded > *c {
                self.in_flight += decoded - *c;
                *c = decoded;
            }
        }
    }

    fn release(&mut self, seq: u64) {
        if let Some(c) = self.costs.remove(&seq) {
            self.in_flight -= c;
        }
    }

    /// Fetches the next batch of planned objects (if the budget allows, or if nothing is in
    /// flight) and submits them to the workers. Returns false if nothing was fetched.
    /// When a batch fails, its objects are fetched one at a time so that each error
    /// (I/O errors included) becomes the result of the object it concerns.
    fn fetch_batch(&mut self, repo: &mut dyn Repository) -> Result<bool, RepoError> {
        if self.planned.is_empty() {
            return Ok(false);
        }
        self.collect_decoded();
        // Backends that want large batches (object storage) are asked only once enough of the
        // budget is free and enough is planned, unless the caller waits for the next object.
        let low_water = repo.read_batch_bytes().min(self.budget / 2);
        let needed_now = self.costs.is_empty() || self.first_planned() <= self.cursor;
        if !needed_now
            && (self.in_flight + low_water >= self.budget
                || (low_water > 0
                    && self.planned_bytes < low_water
                    && self.planned.len() < self.batch))
        {
            return Ok(false);
        }
        let first_seq = self.first_planned();
        let mut batch: Vec<Planned> = Vec::new();
        let mut est = 0usize;
        while let Some(p) = self.planned.front() {
            // objects of unknown size are assumed to be as large as the average so far
            let size = p.hint().unwrap_or_else(|| self.average_size());
            if !batch.is_empty()
                && (batch.len() >= self.batch || self.in_flight + est + size > self.budget)
            {
                break;
            }
            est += size;
            if let Some(p) = self.planned.pop_front() {
                self.planned_bytes -= p.hint().unwrap_or(0);
                batch.push(p);
            }
        }
        let ids: Vec<[u8; 32]> = batch.iter().map(|p| p.id).collect();
        // Name this batch and the objects planned next (up to half the budget beyond it), so
        // that a remote repository has their requests in flight while this batch is waited
        // for and decoded, instead of the link idling between batches.
        let mut room = self.budget / 2;
        let average = self.average_size();
        let mut ahead = ids.clone();
        ahead.extend(
            self.planned
                .iter()
                .take(self.batch)
                .take_while(|p| {
                    let size = p.hint().unwrap_or(average);
                    let fits = size <= room;
                    room = room.saturating_sub(size);
                    fits
                })
                .map(|p| p.id),
        );
        repo.prefetch(&ahead);
        let objects: Vec<Result<Vec<u8>, RepoError>> = match repo.get_many(&ids) {
            Ok(objs) if objs.len() == ids.len() => objs.into_iter().map(Ok).collect(),
            Ok(_) | Err(_) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in &ids {
                    out.push(repo.get(id));
                }
                out
            }
        };
        self.fetched_ids.extend(&ids);
        let mut jobs = Vec::with_capacity(batch.len());
        for (seq, (p, obj)) in (first_seq..).zip(batch.into_iter().zip(objects)) {
            match obj {
                Ok(object) => {
                    self.fetched_count += 1;
                    self.fetched_bytes += object.len() as u64;
                    let cost = object.len().max(p.hint().unwrap_or(0));
                    self.costs.insert(seq, cost);
                    self.in_flight += cost;
                    jobs.push((seq, p.id, object, p.hint()));
                }
                Err(e) => {
                    self.ready.insert(seq, Err(e));
                }
            }
        }
        self.pool.submit(jobs);
        Ok(true)
    }

    /// Starts reads up to the budget without waiting for results. While objects are in
    /// flight, reads start only once a full batch of objects or a quarter of the budget is
    /// planned and a quarter of the budget is free, so that objects are fetched and handed to
    /// the workers in groups rather than one by one as each is taken: every hand-over wakes a
    /// worker, and waking threads per object costs more than decoding small objects.
    pub fn pump(&mut self, repo: &mut dyn Repository) -> Result<(), RepoError> {
        if !self.costs.is_empty() {
            let quarter = self.budget / REFILL_DIVISOR;
            let enough_planned = self.planned.len() >= self.batch || self.planned_bytes >= quarter;
            if !enough_planned || self.in_flight + quarter > self.budget {
                return Ok(());
            }
        }
        while self.fetch_batch(repo)? {}
        Ok(())
    }

    /// Like [`pump`](Prefetcher::pump), but also starts reads for fewer planned objects (the
    /// caller has nothing more to plan for now).
    pub fn pump_all(&mut self, repo: &mut dyn Repository) -> Result<(), RepoError> {
        while self.fetch_batch(repo)? {}
        Ok(())
    }

    /// The result for the next planned object (in plan order); `None` when nothing is
    /// planned. The outer `Err` means the decoding workers are gone.
    #[allow(clippy::type_complexity)]
    pub fn take(
        &mut self,
        repo: &mut dyn Repository,
    ) -> Result<Option<Result<T, RepoError>>, RepoError> {
        if self.cursor >= self.next_seq {
            return Ok(None);
        }
        let seq = self.cursor;
        loop {
            if let Some(r) = self.ready.remove(&seq) {
                self.release(seq);
                self.fetched_ids.pop_front();
                self.cursor += 1;
                self.pump(repo)?;
                return Ok(Some(r));
            }
            if !self.planned.is_empty() && self.first_planned() <= seq {
                // the wanted object is not even fetched: no waiting for a fuller batch
                self.pump_all(repo)?;
            } else {
                self.pump(repo)?;
            }
            if self.ready.contains_key(&seq) {
                continue;
            }
            match self.pool.recv() {
                Some((s, out)) => {
                    if s >= self.cursor {
                        self.charge_decoded(s, out.decoded_size());
                        self.ready.insert(s, Ok(out));
                    }
                }
                None => {
                    // not fetched yet and nothing outstanding: fetch it now
                    if !self.fetch_batch(repo)? {
                        return Err(RepoError::io(
                            std::path::Path::new("prefetch"),
                            std::io::Error::other("decoding workers stopped"),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{CreateOptions, LocalRepository, OpenOptions};

    fn repo_with(objects: &[Vec<u8>]) -> (tempfile::TempDir, LocalRepository, Vec<[u8; 32]>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("repo");
        LocalRepository::create(&path, &CreateOptions::default()).expect("create");
        let mut repo = LocalRepository::open(
            &path,
            &OpenOptions {
                exclusive: true,
                ..OpenOptions::default()
            },
        )
        .expect("open");
        let key = Key::plaintext();
        let mut ids = Vec::new();
        for o in objects {
            let id = key.id_hash(o);
            let framed = crate::compress::compress(&crate::compress::Compression::default(), o);
            repo.put(&id, &key.encrypt(&framed, 0)).expect("put");
            ids.push(id);
        }
        repo.commit(false, 0.1).expect("commit");
        (dir, repo, ids)
    }

    fn decode(
        key: &Key,
        id: &[u8; 32],
        obj: Vec<u8>,
        hint: Option<usize>,
    ) -> Result<Vec<u8>, String> {
        crate::archive::objects::decode_owned(key, id, obj, hint).map_err(|e| e.to_string())
    }

    /// Results come back in plan order, skipped objects are dropped, missing objects give
    /// the repository's error for exactly that object — with inline decoding and with workers.
    #[test]
    fn results_in_plan_order_with_skips_and_errors() {
        let objects: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                format!("object {i} ")
                    .repeat(1 + (i as usize * 7) % 300)
                    .into_bytes()
            })
            .collect();
        let (_dir, mut repo, ids) = repo_with(&objects);
        for workers in [1, 3] {
            // a tiny budget forces many small rounds
            let mut pf = Prefetcher::new(Key::plaintext(), workers, 10_000, decode);
            let missing = [7u8; 32];
            for (i, id) in ids.iter().enumerate() {
                pf.plan(*id, Some(objects[i].len()));
                if i == 100 {
                    pf.plan(missing, None);
                }
            }
            pf.pump(&mut repo).expect("pump");
            for (i, object) in objects.iter().enumerate() {
                if i == 50 {
                    // drop 50..60 (and whatever was read ahead for them)
                    let to = pf.cursor() + 10;
                    pf.skip_to(to);
                }
                if (50..60).contains(&i) {
                    continue;
                }
                let got = pf.take(&mut repo).expect("workers").expect("planned");
                assert_eq!(&got.expect("found").expect("decoded"), object, "object {i}");
                if i == 100 {
                    let got = pf.take(&mut repo).expect("workers").expect("planned");
                    assert!(matches!(got, Err(RepoError::ObjectNotFound(..))), "{got:?}");
                }
            }
            assert!(pf.take(&mut repo).expect("workers").is_none());
            assert_eq!(pf.in_flight(), 0);
            assert_eq!(pf.pending(), 0);
        }
    }

    /// A repository that wants large batches and records the size of each `get_many`.
    struct Batching {
        inner: LocalRepository,
        batches: Vec<usize>,
    }

    impl Repository for Batching {
        fn id(&self) -> [u8; 32] {
            self.inner.id()
        }
        fn len(&mut self) -> crate::repo::Result<usize> {
            self.inner.len()
        }
        fn contains(&mut self, id: &[u8; 32]) -> crate::repo::Result<bool> {
            self.inner.contains(id)
        }
        fn get(&mut self, id: &[u8; 32]) -> crate::repo::Result<Vec<u8>> {
            self.batches.push(1);
            self.inner.get(id)
        }
        fn get_many(&mut self, ids: &[[u8; 32]]) -> crate::repo::Result<Vec<Vec<u8>>> {
            self.batches.push(ids.len());
            ids.iter().map(|id| self.inner.get(id)).collect()
        }
        fn read_batch_bytes(&self) -> usize {
            20_000
        }
        fn put(&mut self, id: &[u8; 32], data: &[u8]) -> crate::repo::Result<()> {
            self.inner.put(id, data)
        }
        fn delete(&mut self, id: &[u8; 32]) -> crate::repo::Result<()> {
            self.inner.delete(id)
        }
        fn list(
            &mut self,
            limit: Option<usize>,
            marker: Option<&[u8; 32]>,
        ) -> crate::repo::Result<Vec<[u8; 32]>> {
            self.inner.list(limit, marker)
        }
        fn scan(
            &mut self,
            limit: Option<usize>,
            marker: Option<&[u8; 32]>,
        ) -> crate::repo::Result<Vec<[u8; 32]>> {
            self.inner.scan(limit, marker)
        }
        fn commit(&mut self, compact: bool, threshold: f64) -> crate::repo::Result<()> {
            self.inner.commit(compact, threshold)
        }
        fn rollback(&mut self) -> crate::repo::Result<()> {
            self.inner.rollback()
        }
        fn check(
            &mut self,
            repair: bool,
            max_duration: u64,
        ) -> crate::repo::Result<crate::repo::CheckReport> {
            self.inner.check(repair, max_duration)
        }
        fn save_key(&mut self, keydata: &[u8]) -> crate::repo::Result<()> {
            self.inner.save_key(keydata)
        }
        fn load_key(&mut self) -> crate::repo::Result<Vec<u8>> {
            self.inner.load_key()
        }
        fn get_free_nonce(&mut self) -> crate::repo::Result<Option<u64>> {
            self.inner.get_free_nonce()
        }
        fn commit_nonce_reservation(
            &mut self,
            next_unreserved: u64,
            start_nonce: Option<u64>,
        ) -> crate::repo::Result<()> {
            self.inner
                .commit_nonce_reservation(next_unreserved, start_nonce)
        }
        fn break_lock(&mut self) -> crate::repo::Result<()> {
            self.inner.break_lock()
        }
        fn destroy(&mut self) -> crate::repo::Result<()> {
            self.inner.destroy()
        }
        fn append_only(&self) -> bool {
            self.inner.append_only()
        }
    }

    /// A backend that wants large batches (object storage) gets them even when the caller
    /// plans one object per object it takes (extract of many small files): the prefetcher
    /// waits until `read_batch_bytes` of the budget is free and planned.
    #[test]
    fn backends_wanting_batches_get_full_batches() {
        let objects: Vec<Vec<u8>> = (0..400u32)
            .map(|i| format!("small object {i} ").repeat(20).into_bytes())
            .collect();
        let (_dir, repo, ids) = repo_with(&objects);
        let mut repo = Batching {
            inner: repo,
            batches: Vec::new(),
        };
        let mut pf = Prefetcher::new(Key::plaintext(), 1, 60_000, decode);
        // like extract: keep a few objects planned ahead, plan one more per object taken
        let ahead = 100;
        for (i, id) in ids.iter().enumerate().take(ahead) {
            pf.plan(*id, Some(objects[i].len()));
        }
        for (i, object) in objects.iter().enumerate() {
            if i + ahead < ids.len() {
                pf.plan(ids[i + ahead], Some(objects[i + ahead].len()));
            }
            pf.pump(&mut repo).expect("pump");
            let got = pf.take(&mut repo).expect("workers").expect("planned");
            assert_eq!(&got.expect("found").expect("decoded"), object, "object {i}");
        }
        let small = repo.batches.iter().filter(|n| **n < 20).count();
        assert!(
            small <= 2,
            "{small} small batches of {}: {:?}",
            repo.batches.len(),
            repo.batches
        );
    }

    /// Objects that decompress to far more than was read count at their decoded size: with
    /// 1 MiB objects stored as a few KiB each, the bytes held stay near the budget instead of
    /// growing with the number of planned objects.
    #[test]
    fn decoded_sizes_count_against_the_budget() {
        let objects: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1 << 20]).collect();
        let (_dir, mut repo, ids) = repo_with(&objects);
        let budget = 2 << 20;
        let mut pf = Prefetcher::new(Key::plaintext(), 1, budget, decode);
        for id in &ids {
            pf.plan(*id, None);
        }
        let mut most = 0;
        for object in &objects {
            let got = pf.take(&mut repo).expect("workers").expect("planned");
            most = most.max(pf.in_flight());
            assert_eq!(&got.expect("found").expect("decoded"), object);
        }
        // one batch may be decoded past the budget before its sizes are known, no more
        assert!(most <= budget + BATCH * (1 << 20), "held {most} bytes");
        assert!(most >= 1 << 20, "decoded sizes were not counted ({most})");
    }

    /// `next_id` names the object the next `take` returns, whether it was fetched ahead, is
    /// still only planned, or comes after objects skipped in either state.
    #[test]
    fn next_id_names_what_take_returns() {
        let objects: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("object {i} ").repeat(30).into_bytes())
            .collect();
        let (_dir, mut repo, ids) = repo_with(&objects);
        let mut pf = Prefetcher::new(Key::plaintext(), 2, 20_000, decode);
        assert_eq!(pf.next_id(), None);
        for (id, object) in ids.iter().zip(&objects) {
            pf.plan(*id, Some(object.len()));
        }
        let mut i = 0;
        while i < objects.len() {
            assert_eq!(pf.next_id(), Some(&ids[i]), "before object {i}");
            if i % 7 == 3 {
                // skip a few: some fetched ahead already, some only planned
                let to = (i + 1 + i % 5).min(objects.len());
                pf.skip_to(to as u64);
                i = to;
                continue;
            }
            let got = pf.take(&mut repo).expect("workers").expect("planned");
            assert_eq!(
                &got.expect("found").expect("decoded"),
                &objects[i],
                "object {i}"
            );
            i += 1;
            if i % 50 == 0 {
                pf.pump_all(&mut repo).expect("pump");
            }
        }
        assert_eq!(pf.next_id(), None);
    }
}
