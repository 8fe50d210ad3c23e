//! `check --verify-data`: every live object is read, decrypted, decompressed and its id
//! checked (borg's `ArchiveChecker.verify_data`, FORMAT.md §2.16), with borg's messages and
//! `--repair` behaviour (defect chunks deleted, so the archives part can replace them).
//!
//! Where the repository tells its segments (local, S3, `hoard serve`) the objects are verified
//! segment by segment, each segment front to back, and every segment verified without error is
//! recorded in the client's [`VerifyState`]. A full run takes the segments in ascending order
//! (borg's scan order). With `--max-duration` the run takes the least recently verified
//! segments first and stops after the segment it is in when the time is up, so that a full
//! pass is the sum of short runs. Over `borg serve`, whose RPC names objects only, objects
//! are taken in scan order and the record is a cursor: the last verified object id.
//!
//! The record is saved every [`SAVE_EVERY`], at the end, at a first SIGINT (the check goes
//! on, as borg's does) and when SIGTERM, SIGHUP or a second SIGINT ends the run after the
//! object in progress (the segment in progress then does not count).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::archive::pool::Prefetcher;
use crate::archive::{KeyedRepository, MANIFEST_ID};
use crate::compress;
use crate::crypto::{CryptoError, Key};
use crate::platform::signals::{self, Stop};
use crate::progress::{Percent, ProgressSink};
use crate::repo::{ObjectId, RepoError, SegmentInfo};
use crate::units::format_file_size;

use super::check_refs::RefCounts;
use super::common::{CommandError, Result};
use super::verify_state::{self, VerifyState};

macro_rules! log_error { ($($a:tt)*) => { tracing::error!(target: "borg.archive", $($a)*) }; }
macro_rules! log_warning { ($($a:tt)*) => { tracing::warn!(target: "borg.archive", $($a)*) }; }
macro_rules! log_info { ($($a:tt)*) => { tracing::info!(target: "borg.archive", $($a)*) }; }
macro_rules! log_debug { ($($a:tt)*) => { tracing::debug!(target: "borg.archive", $($a)*) }; }

/// Bytes the check reads ahead of the object it reports on (nothing is kept after the
/// check, so a small read-ahead keeps the workers busy with the least memory).
const CHECK_READ_AHEAD: usize = 4 * 1024 * 1024;

/// Objects `--verify-data` lists ahead of the one it reports on.
const VERIFY_LOOKAHEAD: usize = 4096;

/// Segments whose objects are asked for at once (one pass over the index).
const SEGMENTS_PER_BATCH: usize = 64;

/// How often the record is saved while a run goes on (a killed run keeps most of its work).
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// Decrypts, decompresses and id-checks an object with borg's `key.decrypt(id, data)` messages.
pub(super) fn decode_object(
    key: &Key,
    id: &[u8; 32],
    object: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    decode_in_place(key, id, object.to_vec())
}

/// [`decode_object`] of an object the caller owns (decrypted in place).
pub(super) fn decode_in_place(
    key: &Key,
    id: &[u8; 32],
    mut object: Vec<u8>,
) -> std::result::Result<Vec<u8>, String> {
    let mut plain = Vec::new();
    open_and_decompress(key, id, &mut object, &mut plain)?;
    Ok(plain)
}

/// Only checks an object (`check --verify-data`): decrypted in place and decompressed into a
/// buffer each worker thread reuses, so no plaintext is allocated per object.
pub(super) fn verify_in_place(
    key: &Key,
    id: &[u8; 32],
    mut object: Vec<u8>,
    _hint: Option<usize>,
) -> std::result::Result<(), String> {
    thread_local! {
        static PLAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    PLAIN.with(|plain| open_and_decompress(key, id, &mut object, &mut plain.borrow_mut()))
}

/// The steps of [`decode_object`], writing the plaintext into `plain`.
fn open_and_decompress(
    key: &Key,
    id: &[u8; 32],
    object: &mut [u8],
    plain: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let chunk_id = (*id != MANIFEST_ID).then_some(id);
    // borg 1.2's MAC failure escapes `key.decrypt`'s wrapper as the low-level error, whose text
    // is the bare "MAC Authentication failed"; envelope and id errors carry the full text.
    // A failed open leaves the object untouched, so the per-chunk message can be built from it.
    let framed = match key.open_in_place(object) {
        Ok(f) => f,
        Err(CryptoError::Integrity(m)) if m == "MAC Authentication failed" => return Err(m),
        Err(_) => {
            return Err(key
                .decrypt_chunk(chunk_id, object)
                .err()
                .map_or_else(|| "Invalid encryption envelope".into(), |e| e.to_string()))
        }
    };
    compress::decompress_in(framed, None, plain)
        .map_err(|e| format!("Decompression error: {e}"))?;
    if let Some(id) = chunk_id {
        key.assert_id(id, plain).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How much to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// `--max-duration` with `--verify-data`: seconds to verify for, then stop after the
    /// segment in progress (over `borg serve`: after the object). 0: verify everything.
    pub max_duration: u64,
    /// A deterministic stand-in for the clock, for tests (hidden option
    /// `--hoard-verify-max-segments`): with `max_duration`, also stop after this many
    /// segments (over `borg serve`: objects). 0: no such limit.
    pub max_units: u64,
    /// The window of the coverage line logged at the end, days.
    pub coverage_days: u64,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            max_duration: 0,
            max_units: 0,
            coverage_days: verify_state::DEFAULT_COVERAGE_DAYS,
        }
    }
}

impl VerifyLimits {
    /// True when the run verifies a slice (`--max-duration`).
    pub fn sliced(&self) -> bool {
        self.max_duration > 0
    }

    fn deadline(&self, started: Instant) -> Option<Instant> {
        self.sliced()
            .then(|| started + Duration::from_secs(self.max_duration))
    }

    /// True when a sliced run must stop now, having done `units`.
    fn exhausted(&self, deadline: Option<Instant>, units: u64) -> bool {
        self.sliced()
            && (deadline.is_some_and(|d| Instant::now() >= d)
                || (self.max_units > 0 && units >= self.max_units))
    }
}

/// What the archive checker hands over.
pub(super) struct Verify<'a, 'p> {
    /// The repository and key.
    pub store: &'a mut KeyedRepository,
    /// Every listed object (defect ones are removed with `--repair`).
    pub chunks: &'a mut RefCounts,
    /// `--repair`.
    pub repair: bool,
    /// Decoding workers.
    pub workers: usize,
    /// Progress records.
    pub progress: &'a mut ProgressSink<'p>,
}

/// The findings so far.
#[derive(Default)]
struct Tally {
    /// Objects whose result was taken.
    verified: u64,
    errors: u64,
    defect: Vec<ObjectId>,
}

impl Tally {
    /// Reports one object's result as borg does; returns whether it was good. An I/O error
    /// ends the check.
    fn take(
        &mut self,
        id: &ObjectId,
        result: std::result::Result<std::result::Result<(), String>, RepoError>,
    ) -> Result<bool> {
        self.verified += 1;
        match result {
            Ok(Ok(())) => Ok(true),
            Err(e @ RepoError::Io { .. }) => Err(e.into()),
            Err(e) => {
                self.errors += 1;
                log_error!("chunk {}: {}", hex::encode(id), e);
                if !matches!(e, RepoError::ObjectNotFound(..)) {
                    self.defect.push(*id);
                }
                Ok(false)
            }
            Ok(Err(msg)) => {
                self.errors += 1;
                log_error!("chunk {}, integrity error: {}", hex::encode(id), msg);
                self.defect.push(*id);
                Ok(false)
            }
        }
    }
}

/// What a segment-wise run did.
#[derive(Default)]
struct SegmentRun {
    segments: u64,
    bytes: u64,
    stopped: bool,
    /// The signal that ended the run (SIGTERM, SIGHUP or a second SIGINT).
    interrupted: Option<Stop>,
}

/// Watches the signals during the verification: a first SIGINT (which borg's check lets
/// go on) saves the record at once, so that what was verified survives a second one; a
/// stop signal ends the run after the object in progress.
struct Interrupts {
    checkpoint_saved: bool,
}

impl Interrupts {
    fn new() -> Self {
        Interrupts {
            checkpoint_saved: false,
        }
    }

    /// The stop signal, if one arrived; saves `state` once after a first SIGINT.
    fn poll(&mut self, state: &VerifyState) -> Option<Stop> {
        if let Some(stop) = signals::stop() {
            return Some(stop);
        }
        if !self.checkpoint_saved && signals::checkpoint_requested() {
            self.checkpoint_saved = true;
            save(state);
        }
        None
    }
}

/// Saves the verification record; a failure is a warning (the check goes on).
fn save(state: &VerifyState) {
    if let Err(e) = state.save() {
        log_warning!(
            "Verification record {} not saved: {}",
            state.path().display(),
            e
        );
    }
}

/// Runs the data verification; returns whether an error was found.
pub(super) fn verify_data(v: &mut Verify<'_, '_>, limits: &VerifyLimits) -> Result<bool> {
    log_info!("Starting cryptographic data integrity verification...");
    let count_index = v.chunks.len() as u64;
    let mut pi = Percent::new(count_index, 0.01, "check.verify_data", |p| {
        format!("Verifying data {p:6.2}%")
    });
    let path = VerifyState::path_for(&v.store.repo.id());
    let (mut state, problem) = VerifyState::load_or_empty(&path);
    if let Some(p) = problem {
        log_warning!("Verification record ignored, starting afresh: {}", p);
    }
    let mut tally = Tally::default();
    let segments = v.store.repo.segments()?;
    // Signals are polled after each object: what was verified is recorded before the
    // command ends (the segment in progress does not count).
    let _graceful = signals::graceful();
    let mut interrupts = Interrupts::new();
    let outcome = match &segments {
        Some(segments) => {
            state.forget_changed(segments);
            verify_segments(
                v,
                &mut tally,
                &mut state,
                segments,
                limits,
                &mut pi,
                &mut interrupts,
            )
            .map(Some)
        }
        None => verify_objects(v, &mut tally, &mut state, limits, &mut pi, &mut interrupts).map(
            |stop| {
                stop.map(|s| SegmentRun {
                    interrupted: Some(s),
                    ..SegmentRun::default()
                })
            },
        ),
    };
    save(&state);
    let run = outcome?;
    pi.finish(v.progress);
    if let Some(stop) = run.as_ref().and_then(|r| r.interrupted) {
        let run = run.filter(|_| segments.is_some());
        log_coverage(
            &state,
            segments.as_deref(),
            run.as_ref(),
            limits,
            count_index,
        );
        return Err(CommandError::stopped(stop));
    }
    if segments.is_none() && !limits.sliced() && count_index != tally.verified {
        log_error!("Repo/Chunks index object count vs. segment files object count mismatch.");
        log_error!(
            "Repo/Chunks index: {} objects != segment files: {} objects",
            count_index,
            tally.verified
        );
    }
    handle_defects(v, &tally)?;
    let msg = format!(
        "Finished cryptographic data integrity verification, verified {} chunks with {} integrity errors.",
        tally.verified, tally.errors
    );
    if tally.errors > 0 {
        log_error!("{}", msg);
    } else {
        log_info!("{}", msg);
    }
    log_coverage(
        &state,
        segments.as_deref(),
        run.as_ref(),
        limits,
        count_index,
    );
    Ok(tally.errors > 0)
}

/// With `--repair` defect chunks are deleted (if they fail again), else listed (debug).
fn handle_defects(v: &mut Verify<'_, '_>, tally: &Tally) -> Result<()> {
    if tally.defect.is_empty() {
        return Ok(());
    }
    if !v.repair {
        log_warning!("Found defect chunks. With --repair, they would get deleted, so affected files could get repaired then and maybe healed later.");
        for id in &tally.defect {
            log_debug!("chunk {} is defect.", hex::encode(id));
        }
        return Ok(());
    }
    log_warning!("Found defect chunks. They will be deleted now, so affected files can get repaired now and maybe healed later.");
    for id in &tally.defect {
        let again = match v.store.repo.get(id) {
            Ok(o) => decode_object(&v.store.key, id, &o).is_ok(),
            Err(_) => false,
        };
        if again {
            log_warning!(
                "chunk {} not deleted, did not consistently fail.",
                hex::encode(id)
            );
        } else {
            v.chunks.remove(id);
            match v.store.repo.delete(id) {
                Ok(()) | Err(RepoError::ObjectNotFound(..)) => {}
                Err(e) => return Err(e.into()),
            }
            log_debug!("chunk {} deleted.", hex::encode(id));
        }
    }
    Ok(())
}

/// The closing line of a run that knows segments: what it did and the coverage now.
fn log_coverage(
    state: &VerifyState,
    segments: Option<&[SegmentInfo]>,
    run: Option<&SegmentRun>,
    limits: &VerifyLimits,
    count_index: u64,
) {
    let now = Utc::now();
    let days = limits.coverage_days;
    let c = match segments {
        Some(s) => state.coverage(s, now, days),
        None => state.objects_coverage(count_index, now, days),
    };
    let share = format!("{:.1} %", c.ratio() * 100.0);
    match run {
        Some(run) => {
            log_info!(
                "Verified {} of {} segments ({}) in this run{}; {} of the repository's data ({} of {}) verified within the last {} days.",
                run.segments,
                c.total_segments,
                format_file_size(run.bytes.into(), false),
                if run.interrupted.is_some() {
                    ", interrupted (what was verified is recorded; the next run with --max-duration continues with the least recently verified segments)"
                } else if run.stopped {
                    ", stopped by --max-duration (the next run continues with the least recently verified segments)"
                } else {
                    ""
                },
                share,
                format_file_size(c.recent_bytes.into(), false),
                format_file_size(c.total_bytes.into(), false),
                days
            );
        }
        None => {
            log_info!(
                "About {} of the repository's objects ({} of {}) verified within the last {} days (borg serve tells no segments: an estimate from object counts).",
                share,
                c.recent_objects,
                c.total_objects,
                days
            );
        }
    }
}

/// Segment by segment: all in ascending order, or (sliced) the least recently verified first
/// until the time is up.
fn verify_segments(
    v: &mut Verify<'_, '_>,
    tally: &mut Tally,
    state: &mut VerifyState,
    segments: &[SegmentInfo],
    limits: &VerifyLimits,
    pi: &mut Percent,
    interrupts: &mut Interrupts,
) -> Result<SegmentRun> {
    let started = Instant::now();
    let deadline = limits.deadline(started);
    let order: Vec<SegmentInfo> = if limits.sliced() {
        state.plan(segments)
    } else {
        segments.to_vec()
    };
    let mut pf: Prefetcher<std::result::Result<(), String>> = Prefetcher::new(
        v.store.key.clone(),
        v.workers,
        CHECK_READ_AHEAD,
        verify_in_place,
    );
    // Planned objects with the index of their segment in `open`.
    let mut queue: VecDeque<(ObjectId, usize)> = VecDeque::new();
    // Segments whose objects are planned: info, objects not yet taken, whether one failed.
    let mut open: Vec<(SegmentInfo, usize, bool)> = Vec::new();
    let mut next = 0usize;
    let mut run = SegmentRun::default();
    let mut saved = Instant::now();
    loop {
        while queue.len() < VERIFY_LOOKAHEAD && next < order.len() {
            let mut batch: Vec<SegmentInfo> = Vec::new();
            let mut objects = 0u64;
            while let Some(info) = order.get(next) {
                if !batch.is_empty()
                    && (batch.len() >= SEGMENTS_PER_BATCH
                        || objects + info.objects > VERIFY_LOOKAHEAD as u64)
                {
                    break;
                }
                objects += info.objects;
                batch.push(*info);
                next += 1;
            }
            let numbers: Vec<u32> = batch.iter().map(|i| i.segment).collect();
            let lists = v.store.repo.segment_objects(&numbers)?;
            for (info, ids) in batch.into_iter().zip(lists) {
                if ids.is_empty() {
                    // nothing live in it any more: nothing to verify
                    state.record(&info, Utc::now());
                    continue;
                }
                let slot = open.len();
                open.push((info, ids.len(), false));
                for id in ids {
                    pf.plan(id, None);
                    queue.push_back((id, slot));
                }
            }
        }
        let Some((id, slot)) = queue.pop_front() else {
            break;
        };
        pi.show(None, v.progress);
        let Some(result) = pf.take(v.store.repo.as_mut())? else {
            break;
        };
        let good = tally.take(&id, result)?;
        if let Some(stop) = interrupts.poll(state) {
            run.interrupted = Some(stop);
            run.stopped = true;
            break;
        }
        let Some(seg) = open.get_mut(slot) else {
            continue;
        };
        seg.1 -= 1;
        seg.2 |= !good;
        if seg.1 > 0 {
            continue;
        }
        let (info, _, failed) = *seg;
        if failed {
            state.forget(info.segment);
        } else {
            state.record(&info, Utc::now());
        }
        log_debug!(
            "segment {} verified: {} objects, {} bytes{}",
            info.segment,
            info.objects,
            info.size,
            if failed { ", with errors" } else { "" }
        );
        run.segments += 1;
        run.bytes += info.size;
        if limits.exhausted(deadline, run.segments) {
            run.stopped = next < order.len() || !queue.is_empty();
            break;
        }
        if saved.elapsed() >= SAVE_EVERY {
            saved = Instant::now();
            save(state);
        }
    }
    Ok(run)
}

/// Over `borg serve`: objects in scan order. A full run scans everything; a sliced run
/// continues after the recorded cursor, wraps around at the end and stops at the time limit,
/// or where it started. A stop signal ends it after the object in progress (returned).
fn verify_objects(
    v: &mut Verify<'_, '_>,
    tally: &mut Tally,
    state: &mut VerifyState,
    limits: &VerifyLimits,
    pi: &mut Percent,
    interrupts: &mut Interrupts,
) -> Result<Option<Stop>> {
    let started = Instant::now();
    let deadline = limits.deadline(started);
    let start_marker = if limits.sliced() {
        state.marker()
    } else {
        None
    };
    let mut pf: Prefetcher<std::result::Result<(), String>> = Prefetcher::new(
        v.store.key.clone(),
        v.workers,
        CHECK_READ_AHEAD,
        verify_in_place,
    );
    let mut queue: VecDeque<ObjectId> = VecDeque::new();
    let mut marker = start_marker;
    // Past the end once: from the beginning again up to where this run started.
    let mut wrapped = start_marker.is_none();
    let mut first_page = true;
    let mut scan_done = false;
    let mut good = 0u64;
    let mut last: Option<ObjectId> = None;
    let mut stopped = false;
    let mut interrupted = None;
    loop {
        while !scan_done && queue.len() < VERIFY_LOOKAHEAD {
            let ids = match v.store.repo.scan(Some(100), marker.as_ref()) {
                Ok(ids) => ids,
                Err(e @ (RepoError::ObjectNotFound(..) | RepoError::Remote { .. }))
                    if first_page && marker.is_some() =>
                {
                    log_info!(
                        "The verification position is no longer in the repository (compaction moved it away: {}); starting from the beginning.",
                        e
                    );
                    marker = None;
                    wrapped = true;
                    first_page = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            first_page = false;
            let Some(tail) = ids.last().copied() else {
                if wrapped {
                    scan_done = true;
                } else {
                    wrapped = true;
                    marker = None;
                }
                continue;
            };
            marker = Some(tail);
            for id in ids {
                if wrapped && start_marker == Some(id) {
                    // verified at the start of this run's pass
                    scan_done = true;
                    break;
                }
                pf.plan(id, None);
                queue.push_back(id);
            }
        }
        let Some(id) = queue.pop_front() else { break };
        pi.show(None, v.progress);
        let Some(result) = pf.take(v.store.repo.as_mut())? else {
            break;
        };
        if tally.take(&id, result)? {
            good += 1;
        }
        last = Some(id);
        if let Some(stop) = interrupts.poll(state) {
            interrupted = Some(stop);
            stopped = true;
            break;
        }
        if limits.exhausted(deadline, tally.verified) {
            stopped = !queue.is_empty() || !scan_done;
            break;
        }
    }
    // Where the next run starts: after the last object verified, or from the beginning when
    // this run went all the way round.
    let cursor = if stopped { last } else { None };
    state.record_objects_run(cursor.as_ref(), good, Utc::now());
    Ok(interrupted)
}
