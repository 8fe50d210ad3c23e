//! The client's record of resumable verification (`check --verify-data --max-duration`): per
//! repository, which segments were verified and when, so that the next run continues with the
//! least recently verified ones, and how much of the repository was verified recently
//! (`check --coverage`, the job status's `verification_coverage`).
//!
//! The record is `hoard-verification.json` in the client's security directory for the
//! repository (`<security dir>/<repo id>/`, beside borg's `nonce` and `manifest-timestamp`), never
//! in the repository. borg ignores the file; `borg delete` removes it with the directory. Losing
//! it costs only verification work. This module owns the file format and the arithmetic; it
//! reads no repository.
//!
//! Segments are identified by number and size: borg 1.x never reuses a segment number
//! (compaction writes new, higher-numbered segments and deletes the old ones), and a segment
//! rewritten in place (`check --repair` salvaging it) changes size. A record whose segment is
//! gone or has another size is dropped, so such segments count as unverified. Over `borg serve`,
//! which tells no segments, the record is a cursor instead: the last verified object id in scan
//! (on-disk) order and the number of objects each run verified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::repo::SegmentInfo;
use crate::security::SecurityDir;

/// The record's file name in the repository's security directory.
pub const STATE_FILE: &str = "hoard-verification.json";

/// The record's format version.
const VERSION: u32 = 1;

/// The largest record read (a few dozen bytes per segment: tens of thousands of segments).
const MAX_FILE: u64 = 64 << 20;

/// Object-cursor runs kept (older ones cannot matter for any sensible coverage window).
const MAX_RUNS: usize = 1000;

/// The default coverage window, days.
pub const DEFAULT_COVERAGE_DAYS: u64 = 7;

/// One verified segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SegmentRecord {
    /// The segment file's size when it was verified.
    size: u64,
    /// Live objects it held then (for the reader; not part of its identity: deletions in
    /// later transactions change it without touching the file).
    objects: u64,
    /// When its verification finished, unix microseconds.
    verified_us: i64,
}

/// One run over `borg serve` (object cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ObjectRun {
    /// When the run ended, unix microseconds.
    end_us: i64,
    /// Objects it verified without error.
    objects: u64,
}

/// The cursor kept for repositories that tell no segments (`borg serve`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ObjectCursor {
    /// The last verified object id (hex), in scan order; `None`: start from the beginning.
    #[serde(default)]
    marker: Option<String>,
    /// Recent runs, oldest first.
    #[serde(default)]
    runs: Vec<ObjectRun>,
}

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Verified segments by number.
    #[serde(default)]
    segments: BTreeMap<u32, SegmentRecord>,
    /// The cursor over `borg serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    objects: Option<ObjectCursor>,
}

/// A repository's verification record, loaded from and saved to its security directory.
#[derive(Debug, Clone)]
pub struct VerifyState {
    path: PathBuf,
    file: StateFile,
}

/// How much of a repository was verified within a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Coverage {
    /// The window, days.
    pub days: u64,
    /// True when the figures are per segment (bytes known); false over `borg serve`, where
    /// they are object counts and an estimate.
    pub by_segment: bool,
    /// Segments holding live objects.
    pub total_segments: u64,
    /// Their size, bytes.
    pub total_bytes: u64,
    /// Segments verified (without error) within the window.
    pub recent_segments: u64,
    /// Their size, bytes.
    pub recent_bytes: u64,
    /// Segments never verified (or changed since).
    pub never_segments: u64,
    /// Their size, bytes.
    pub never_bytes: u64,
    /// The oldest verification among the segments that have one.
    pub oldest: Option<DateTime<Utc>>,
    /// Live objects in the repository.
    pub total_objects: u64,
    /// Objects verified within the window (over `borg serve`: the runs' counts, at most
    /// `total_objects`).
    pub recent_objects: u64,
}

impl Coverage {
    /// The verified share, 0 to 1: bytes per segment, else objects. An empty repository is
    /// fully covered.
    pub fn ratio(&self) -> f64 {
        let (done, total) = if self.by_segment {
            (self.recent_bytes, self.total_bytes)
        } else {
            (self.recent_objects, self.total_objects)
        };
        if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// Formats a time of the record for people (RFC 3339, UTC, seconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl VerifyState {
    /// Where the record of repository `id` lives.
    pub fn path_for(id: &[u8; 32]) -> PathBuf {
        SecurityDir::for_repository(id).path().join(STATE_FILE)
    }

    /// An empty record that will be saved at `path`.
    pub fn empty(path: PathBuf) -> VerifyState {
        VerifyState {
            path,
            file: StateFile {
                version: VERSION,
                ..StateFile::default()
            },
        }
    }

    /// Loads the record at `path`: empty when there is none; an error (one line) when it
    /// cannot be read or is not a record of this version.
    pub fn load(path: &Path) -> Result<VerifyState, String> {
        let shown = || path.display().to_string();
        let text = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::empty(path.to_path_buf()))
            }
            Err(e) => return Err(format!("{}: {e}", shown())),
            Ok(m) if m.len() > MAX_FILE => {
                return Err(format!("{}: larger than {MAX_FILE} bytes", shown()))
            }
            Ok(_) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", shown()))?,
        };
        let file: StateFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", shown()))?;
        if file.version != VERSION {
            return Err(format!(
                "{}: record version {} (this hoard writes {VERSION})",
                shown(),
                file.version
            ));
        }
        Ok(VerifyState {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Loads the record, or an empty one with the reason it could not be read.
    pub fn load_or_empty(path: &Path) -> (VerifyState, Option<String>) {
        match Self::load(path) {
            Ok(s) => (s, None),
            Err(e) => (Self::empty(path.to_path_buf()), Some(e)),
        }
    }

    /// Where the record is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the record atomically (its directory is created if needed, mode 0700).
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::paths::ensure_dir(dir)?;
        }
        let text = serde_json::to_string(&self.file).map_err(std::io::Error::other)?;
        crate::paths::write_atomic(&self.path, text.as_bytes())
    }

    /// Drops the records of segments that are gone or changed size (compacted away, or
    /// rewritten by a repair): they count as unverified.
    pub fn forget_changed(&mut self, current: &[SegmentInfo]) {
        let sizes: BTreeMap<u32, u64> = current.iter().map(|i| (i.segment, i.size)).collect();
        self.file
            .segments
            .retain(|seg, rec| sizes.get(seg) == Some(&rec.size));
    }

    /// When segment `info` was last verified, if its record still matches it.
    pub fn verified_at(&self, info: &SegmentInfo) -> Option<DateTime<Utc>> {
        self.file
            .segments
            .get(&info.segment)
            .filter(|r| r.size == info.size)
            .and_then(|r| from_micros(r.verified_us))
    }

    /// The order in which to verify `current`: never verified (or changed) segments first,
    /// in ascending number, then the least recently verified ones.
    pub fn plan(&self, current: &[SegmentInfo]) -> Vec<SegmentInfo> {
        let mut order: Vec<(Option<i64>, SegmentInfo)> = current
            .iter()
            .map(|i| (self.verified_at(i).map(micros), *i))
            .collect();
        // `None` sorts before every time.
        order.sort_by_key(|(t, i)| (*t, i.segment));
        order.into_iter().map(|(_, i)| i).collect()
    }

    /// Records that segment `info` was verified without error at `when`.
    pub fn record(&mut self, info: &SegmentInfo, when: DateTime<Utc>) {
        self.file.segments.insert(
            info.segment,
            SegmentRecord {
                size: info.size,
                objects: info.objects,
                verified_us: micros(when),
            },
        );
    }

    /// Forgets segment `segment` (an error was found in it: it is unverified again, and first
    /// in line next time).
    pub fn forget(&mut self, segment: u32) {
        self.file.segments.remove(&segment);
    }

    /// Coverage of `current` within the last `days` days before `now`.
    pub fn coverage(&self, current: &[SegmentInfo], now: DateTime<Utc>, days: u64) -> Coverage {
        let since = now - window(days);
        let mut c = Coverage {
            days,
            by_segment: true,
            ..Coverage::default()
        };
        for info in current {
            c.total_segments += 1;
            c.total_bytes += info.size;
            c.total_objects += info.objects;
            match self.verified_at(info) {
                None => {
                    c.never_segments += 1;
                    c.never_bytes += info.size;
                }
                Some(t) => {
                    c.oldest = Some(c.oldest.map_or(t, |o| o.min(t)));
                    if t >= since {
                        c.recent_segments += 1;
                        c.recent_bytes += info.size;
                        c.recent_objects += info.objects;
                    }
                }
            }
        }
        c
    }

    /// The object cursor (over `borg serve`): the last verified id in scan order.
    pub fn marker(&self) -> Option<[u8; 32]> {
        let hex_id = self.file.objects.as_ref()?.marker.as_ref()?;
        let bytes = hex::decode(hex_id).ok()?;
        <[u8; 32]>::try_from(bytes.as_slice()).ok()
    }

    /// Records a run over `borg serve`: where it stopped (`None`: at the end, the next run
    /// starts from the beginning) and how many objects it verified without error.
    pub fn record_objects_run(
        &mut self,
        marker: Option<&[u8; 32]>,
        objects: u64,
        when: DateTime<Utc>,
    ) {
        let cursor = self.file.objects.get_or_insert_with(ObjectCursor::default);
        cursor.marker = marker.map(hex::encode);
        cursor.runs.push(ObjectRun {
            end_us: micros(when),
            objects,
        });
        let excess = cursor.runs.len().saturating_sub(MAX_RUNS);
        cursor.runs.drain(..excess);
    }

    /// Coverage over `borg serve`: the objects the runs within the window verified, against
    /// the `total_objects` the repository holds now (at most all of them). An estimate: it
    /// cannot see which objects compaction moved since.
    pub fn objects_coverage(&self, total_objects: u64, now: DateTime<Utc>, days: u64) -> Coverage {
        let since = micros(now - window(days));
        let runs = self
            .file
            .objects
            .as_ref()
            .map(|c| c.runs.as_slice())
            .unwrap_or_default();
        let recent: u64 = runs
            .iter()
            .filter(|r| r.end_us >= since)
            .map(|r| r.objects)
            .sum();
        Coverage {
            days,
            by_segment: false,
            total_objects,
            recent_objects: recent.min(total_objects),
            oldest: runs.first().and_then(|r| from_micros(r.end_us)),
            ..Coverage::default()
        }
    }
}

fn window(days: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(segment: u32, size: u64) -> SegmentInfo {
        SegmentInfo {
            segment,
            size,
            objects: 3,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_765_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn plan_puts_unverified_first_then_least_recent() {
        let d = tempfile::tempdir().unwrap();
        let mut st = VerifyState::empty(d.path().join("x").join(STATE_FILE));
        let segs = [seg(1, 10), seg(2, 20), seg(5, 50), seg(7, 70)];
        st.record(&segs[1], at(10));
        st.record(&segs[0], at(20));
        st.record(&segs[3], at(5));
        let order: Vec<u32> = st.plan(&segs).iter().map(|i| i.segment).collect();
        assert_eq!(order, [5, 7, 2, 1]);
        // a segment that changed size is unverified again
        let changed = [seg(1, 10), seg(2, 21), seg(5, 50), seg(7, 70)];
        let order: Vec<u32> = st.plan(&changed).iter().map(|i| i.segment).collect();
        assert_eq!(order, [2, 5, 7, 1]);
        st.save().unwrap();
        let back = VerifyState::load(st.path()).unwrap();
        assert_eq!(back.file, st.file);
    }

    #[test]
    fn coverage_counts_recent_matching_segments_only() {
        let d = tempfile::tempdir().unwrap();
        let mut st = VerifyState::empty(d.path().join(STATE_FILE));
        let segs = [seg(1, 100), seg(2, 300), seg(3, 600)];
        st.record(&segs[0], at(0));
        st.record(&segs[1], at(-10 * 86_400));
        let c = st.coverage(&segs, at(3600), 7);
        assert_eq!((c.total_segments, c.total_bytes), (3, 1000));
        assert_eq!((c.recent_segments, c.recent_bytes), (1, 100));
        assert_eq!((c.never_segments, c.never_bytes), (1, 600));
        assert!((c.ratio() - 0.1).abs() < 1e-9);
        assert_eq!(c.oldest, Some(at(-10 * 86_400)));
        // compaction: segment 1 gone, a new segment 9 holds its data
        st.forget_changed(&[seg(2, 300), seg(3, 600), seg(9, 100)]);
        let c = st.coverage(&[seg(2, 300), seg(3, 600), seg(9, 100)], at(3600), 30);
        assert_eq!((c.recent_segments, c.never_segments), (1, 2));
        st.forget(2);
        assert_eq!(st.coverage(&segs, at(0), 30).recent_segments, 0);
        assert_eq!(Coverage::default().ratio(), 1.0);
    }

    #[test]
    fn object_cursor_round_trips_and_estimates() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(STATE_FILE);
        let mut st = VerifyState::empty(path.clone());
        assert_eq!(st.marker(), None);
        st.record_objects_run(Some(&[7u8; 32]), 40, at(-8 * 86_400));
        st.record_objects_run(Some(&[9u8; 32]), 30, at(0));
        st.save().unwrap();
        let st = VerifyState::load(&path).unwrap();
        assert_eq!(st.marker(), Some([9u8; 32]));
        let c = st.objects_coverage(100, at(60), 7);
        assert_eq!((c.recent_objects, c.total_objects), (30, 100));
        assert!((c.ratio() - 0.3).abs() < 1e-9);
        assert_eq!(st.objects_coverage(20, at(60), 30).ratio(), 1.0);
    }

    #[test]
    fn unreadable_records_are_reported_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(STATE_FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let (st, problem) = VerifyState::load_or_empty(&path);
        assert!(problem.unwrap().contains(STATE_FILE));
        assert!(st.file.segments.is_empty());
        std::fs::write(&path, br#"{"version": 99}"#).unwrap();
        assert!(VerifyState::load(&path).unwrap_err().contains("version 99"));
    }
}
