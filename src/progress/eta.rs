//! The arithmetic behind hoard's progress figures: the rate of an operation over a sliding
//! window ([`Rate`]), its time to go ([`Tracker`], [`eta_seconds`]), and for `create`, whose
//! total is not known in advance, an estimate from the previous archive of the same name
//! family, corrected as the walk goes ([`CreateEstimate`], [`previous_archive`]).
//!
//! Everything here is pure: times are seconds handed in by the caller (from one `Instant`),
//! so the figures are reproducible in tests. Nothing here prints or decides what is shown.

use std::collections::VecDeque;

/// How far back [`Rate`] looks: long enough to smooth bursts (a large file read after many
/// unchanged ones), short enough to follow a change of pace within a minute.
pub const RATE_WINDOW_SECS: f64 = 30.0;

/// The rate of a growing counter over the last [`RATE_WINDOW_SECS`] (or since the first
/// sample, when the operation is younger than that).
#[derive(Debug, Clone)]
pub struct Rate {
    window: f64,
    /// (seconds, counter) samples, oldest first; the first one may be older than the window
    /// (it anchors the window's start).
    samples: VecDeque<(f64, f64)>,
}

impl Rate {
    /// A rate over `window` seconds.
    pub fn new(window: f64) -> Rate {
        Rate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records that the counter stood at `value` at `t` seconds. Samples out of order (an
    /// earlier time than the last) are ignored.
    pub fn add(&mut self, t: f64, value: f64) {
        if let Some(&(last_t, _)) = self.samples.back() {
            if t < last_t {
                return;
            }
            // Samples closer than a 256th of the window replace the newest one: a counter
            // fed per chunk keeps a few hundred samples, not millions.
            let n = self.samples.len();
            let dense = n >= 2 && t - self.samples[n - 2].0 < self.window / 256.0;
            if t == last_t || dense {
                self.samples.pop_back();
            }
        }
        self.samples.push_back((t, value));
        // Keep one sample at or before the window's start as its anchor.
        while self.samples.len() > 2 && self.samples[1].0 <= t - self.window {
            self.samples.pop_front();
        }
    }

    /// Units per second over the window; None before two samples at different times, or
    /// when the counter has not moved (a stalled operation has no finite time to go).
    pub fn per_second(&self) -> Option<f64> {
        let (&(t0, v0), &(t1, v1)) = (self.samples.front()?, self.samples.back()?);
        let dt = t1 - t0;
        let dv = v1 - v0;
        (dt > 0.0 && dv > 0.0).then(|| dv / dt)
    }
}

/// Seconds until `done` reaches `total` at `rate` units per second (None without a rate or
/// when `done` has reached or passed `total`, where the total must be an estimate).
pub fn eta_seconds(done: u64, total: u64, rate: Option<f64>) -> Option<f64> {
    let rate = rate?;
    if total <= done || rate <= 0.0 {
        return None;
    }
    Some((total - done) as f64 / rate)
}

/// The figures of one progress record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Seconds to go, when a total and a rate are known.
    pub eta_seconds: Option<f64>,
    /// Units of the indicator's counter per second.
    pub per_second: Option<f64>,
    /// Bytes per second, when the indicator counts bytes or knows the bytes behind its count.
    pub bytes_per_second: Option<f64>,
}

/// The running figures of one indicator: feed it each record's position.
#[derive(Debug, Clone)]
pub struct Tracker {
    count: Rate,
    bytes: Rate,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    /// A tracker with the default window.
    pub fn new() -> Tracker {
        Tracker {
            count: Rate::new(RATE_WINDOW_SECS),
            bytes: Rate::new(RATE_WINDOW_SECS),
        }
    }

    /// Records the position at `t` seconds: `done` of `total` (0: unknown) in the indicator's
    /// unit, and `bytes` (done, total; total 0 when unknown) when the bytes behind the count
    /// are known. The time to go follows the bytes when their total is known (segments or
    /// objects differ in size), else the count.
    pub fn update(&mut self, t: f64, done: u64, total: u64, bytes: Option<(u64, u64)>) -> Figures {
        self.count.add(t, done as f64);
        let per_second = self.count.per_second();
        let by_count = eta_seconds(done, total, per_second);
        let (eta, bytes_per_second) = match bytes {
            Some((bdone, btotal)) => {
                self.bytes.add(t, bdone as f64);
                let rate = self.bytes.per_second();
                let eta = if btotal > 0 {
                    eta_seconds(bdone, btotal, rate)
                } else {
                    by_count
                };
                (eta, rate)
            }
            None => (by_count, None),
        };
        Figures {
            eta_seconds: eta,
            per_second,
            bytes_per_second,
        }
    }
}

/// What the previous archive of the same name family held (its metadata's `nfiles` and
/// `size`, borg 1.2+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    /// Regular files.
    pub nfiles: u64,
    /// Original size of the file contents.
    pub size: u64,
}

/// An estimated total for `create`: bytes (original size) and regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Original size the archive will probably have.
    pub bytes: u64,
    /// Regular files it will probably have.
    pub files: u64,
}

/// Below this share of the previous archive walked, new files are not extrapolated (a few
/// new files early in the walk would otherwise multiply into a wild total).
const MIN_SHARE_TO_EXTRAPOLATE: f64 = 0.05;

/// The estimated total of a `create` run from the previous archive, corrected by what the
/// walk has seen: files that existed before (status `U` or `M`) tell how much of the previous
/// archive is behind; its rest is ahead, and new files (`A`) are assumed to keep coming at the
/// pace they came so far. A total never falls below what is done.
///
/// Feed it, in walk order, each status letter ([`CreateEstimate::status`]) and each item
/// added to the archive with its content size ([`CreateEstimate::item`]): a regular file's
/// status comes just before its item. Ask with the current counters
/// ([`CreateEstimate::estimate`]).
#[derive(Debug, Clone)]
pub struct CreateEstimate {
    prev: Previous,
    /// Regular files added that existed in the previous archive, and their bytes.
    old_files: u64,
    old_bytes: u64,
    /// Regular files added, and the bytes of all items added.
    files: u64,
    bytes: u64,
    /// The last status letter's kind, waiting for its item: Some(true) existed before,
    /// Some(false) new, None not a regular file.
    pending: Option<bool>,
}

impl CreateEstimate {
    /// An estimator starting from `prev`.
    pub fn new(prev: Previous) -> CreateEstimate {
        CreateEstimate {
            prev,
            old_files: 0,
            old_bytes: 0,
            files: 0,
            bytes: 0,
            pending: None,
        }
    }

    /// The previous archive's figures.
    pub fn previous(&self) -> Previous {
        self.prev
    }

    /// A reported status letter: `A` (added), `M` (modified) and `U` (unchanged) are regular
    /// files, the first new, the others known before. `C` (changed while read) repeats a file
    /// already reported and is ignored.
    pub fn status(&mut self, letter: char) {
        self.pending = match letter {
            'C' => return,
            'A' => Some(false),
            'M' | 'U' => Some(true),
            _ => None,
        };
    }

    /// An item added to the archive, `size` bytes of content.
    pub fn item(&mut self, size: u64) {
        self.bytes += size;
        match self.pending.take() {
            Some(true) => {
                self.files += 1;
                self.old_files += 1;
                self.old_bytes += size;
            }
            Some(false) => self.files += 1,
            None => {}
        }
    }

    /// The estimated total when `osize` original bytes and `nfiles` regular files are done
    /// (these may run ahead of the items added: files being read, files looked up).
    pub fn estimate(&self, osize: u64, nfiles: u64) -> Estimate {
        let bytes = extrapolate(self.prev.size, self.old_bytes, self.bytes);
        let files = extrapolate(self.prev.nfiles, self.old_files, self.files);
        Estimate {
            bytes: bytes.max(osize),
            files: files.max(nfiles),
        }
    }
}

/// One figure's total: `done` so far, of which `old` existed in the previous archive that
/// had `prev`. The previous archive's unwalked share is ahead; new units keep their pace.
fn extrapolate(prev: u64, old: u64, done: u64) -> u64 {
    if prev == 0 {
        return done;
    }
    let share = (old as f64 / prev as f64).min(1.0);
    let rest_old = prev as f64 * (1.0 - share);
    let new = done.saturating_sub(old) as f64;
    let rest_new = if share >= MIN_SHARE_TO_EXTRAPOLATE {
        new * (1.0 - share) / share
    } else {
        0.0
    };
    (done as f64 + rest_old + rest_new).round() as u64
}

/// The part of an archive name that names its family: the name without its trailing run of
/// digits and date/time separators (`host-2024-05-01T10:00:00` → `host`).
pub fn name_stem(name: &str) -> &str {
    name.trim_end_matches(|c: char| c.is_ascii_digit() || "-_:.+T ".contains(c))
}

/// Picks the previous archive for `name` among `(name, time)` candidates: those that share
/// its [`name_stem`] (checkpoints left out), the one with the longest common prefix, then
/// the newest. Returns the index of the pick.
pub fn previous_archive<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<usize> {
    let stem = name_stem(name);
    let common = |other: &str| {
        name.chars()
            .zip(other.chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    candidates
        .into_iter()
        .enumerate()
        .filter(|(_, (n, _))| {
            *n != name
                && n.starts_with(stem)
                && !n.ends_with(".checkpoint")
                && !n.contains(".checkpoint.")
        })
        .max_by(|(_, (a, at)), (_, (b, bt))| (common(a), *at).cmp(&(common(b), *bt)))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_follows_the_window() {
        let mut r = Rate::new(10.0);
        assert_eq!(r.per_second(), None);
        r.add(0.0, 0.0);
        assert_eq!(r.per_second(), None);
        r.add(2.0, 20.0);
        assert_eq!(r.per_second(), Some(10.0));
        // fast for 20 s, then slow: after a window of slow samples the rate is the slow one
        for s in 3..=20 {
            r.add(s as f64, 20.0 + 10.0 * (s - 2) as f64);
        }
        let fast_end = 20.0 + 10.0 * 18.0;
        for s in 21..=40 {
            r.add(s as f64, fast_end + (s - 20) as f64);
        }
        let rate = r.per_second().expect("rate");
        assert!((rate - 1.0).abs() < 1e-9, "{rate}");
        // a stalled counter has no rate
        let mut s = Rate::new(10.0);
        s.add(0.0, 5.0);
        s.add(1.0, 5.0);
        assert_eq!(s.per_second(), None);
        // dense samples are merged
        let mut d = Rate::new(256.0);
        for i in 0..10_000 {
            d.add(i as f64 * 0.001, i as f64);
        }
        assert!(d.samples.len() <= 12, "{}", d.samples.len());
        assert_eq!(d.per_second().map(|r| r.round()), Some(1000.0));
        // out of order is ignored, a repeated time replaces
        s.add(0.5, 100.0);
        s.add(1.0, 6.0);
        assert_eq!(s.per_second(), Some(1.0));
    }

    #[test]
    fn eta_is_rest_over_rate() {
        assert_eq!(eta_seconds(25, 100, Some(5.0)), Some(15.0));
        assert_eq!(eta_seconds(100, 100, Some(5.0)), None);
        assert_eq!(eta_seconds(120, 100, Some(5.0)), None);
        assert_eq!(eta_seconds(0, 100, None), None);
    }

    #[test]
    fn tracker_prefers_bytes_when_known() {
        let mut t = Tracker::new();
        let f = t.update(0.0, 0, 10, Some((0, 1000)));
        assert_eq!(f.eta_seconds, None);
        // 1 of 10 segments, but it was a small one: the bytes tell the time to go
        let f = t.update(1.0, 1, 10, Some((10, 1000)));
        assert_eq!(f.per_second, Some(1.0));
        assert_eq!(f.bytes_per_second, Some(10.0));
        assert_eq!(f.eta_seconds, Some(99.0));
        let mut c = Tracker::new();
        c.update(0.0, 0, 10, None);
        let f = c.update(2.0, 4, 10, None);
        assert_eq!((f.eta_seconds, f.bytes_per_second), (Some(3.0), None));
        // bytes without their total: their rate, the count's time to go
        let mut b = Tracker::new();
        b.update(0.0, 0, 10, Some((0, 0)));
        let f = b.update(2.0, 4, 10, Some((800, 0)));
        assert_eq!(
            (f.eta_seconds, f.bytes_per_second),
            (Some(3.0), Some(400.0))
        );
    }

    /// A walk over a tree the previous archive had 1000 files / 1 MB of, in the same order:
    /// `new_every` makes every n-th file new, the others existed; each file holds 1000
    /// bytes and a directory follows it.
    fn walk(est: &mut CreateEstimate, files: u64, new_every: u64) -> (u64, u64) {
        for i in 0..files {
            let new = new_every > 0 && i % new_every == 0;
            est.status(if new { 'A' } else { 'U' });
            est.item(1000);
            est.status('d');
            est.item(0);
        }
        (files * 1000, files)
    }

    #[test]
    fn unchanged_tree_estimates_the_previous_total() {
        let prev = Previous {
            nfiles: 1000,
            size: 1_000_000,
        };
        let mut est = CreateEstimate::new(prev);
        assert_eq!(
            est.estimate(0, 0),
            Estimate {
                bytes: 1_000_000,
                files: 1000
            }
        );
        let (osize, n) = walk(&mut est, 500, 0);
        assert_eq!(
            est.estimate(osize, n),
            Estimate {
                bytes: 1_000_000,
                files: 1000
            }
        );
    }

    #[test]
    fn new_files_are_extrapolated() {
        // every 5th file is new: 25 % more than before; at half of the old tree the
        // estimate says so
        let prev = Previous {
            nfiles: 1000,
            size: 1_000_000,
        };
        let mut est = CreateEstimate::new(prev);
        let (osize, n) = walk(&mut est, 625, 5); // 500 old + 125 new
        let e = est.estimate(osize, n);
        assert_eq!(e.files, 1250);
        assert_eq!(e.bytes, 1_250_000);
    }

    #[test]
    fn totals_never_fall_below_done() {
        let prev = Previous {
            nfiles: 2,
            size: 1000,
        };
        let mut est = CreateEstimate::new(prev);
        est.status('U');
        est.item(500);
        // a file being read runs ahead of the items: the total holds at least it
        est.status('A');
        let e = est.estimate(50_000, 2);
        assert_eq!(e.bytes, 50_000);
        // C repeats a file: no count, and the pending A keeps its item
        est.status('C');
        est.item(49_500);
        assert_eq!((est.files, est.old_files), (2, 1));
        let e = est.estimate(50_000, 2);
        assert_eq!(e.bytes, 50_000 + 500 + 49_500);
    }

    #[test]
    fn early_new_files_are_not_multiplied() {
        let prev = Previous {
            nfiles: 1000,
            size: 1_000_000,
        };
        let mut est = CreateEstimate::new(prev);
        // a new directory of 50 files first, before any old file
        for _ in 0..50 {
            est.status('A');
            est.item(1000);
        }
        est.status('U');
        est.item(1000);
        let e = est.estimate(51_000, 51);
        assert_eq!(e.bytes, 51_000 + 999_000);
    }

    #[test]
    fn statuses_without_items_count_nothing() {
        let mut est = CreateEstimate::new(Previous {
            nfiles: 10,
            size: 10_000,
        });
        est.status('U');
        est.status('d');
        est.item(0);
        assert_eq!((est.files, est.old_files), (0, 0));
    }

    #[test]
    fn stems_and_previous_archives() {
        assert_eq!(name_stem("host-2024-05-01T10:00:00"), "host");
        assert_eq!(name_stem("web01-2024-05-01"), "web");
        assert_eq!(name_stem("daily"), "daily");
        let archives = [
            ("web02-2024-05-02", "2024-05-02T00:00:00"),
            ("web01-2024-05-01", "2024-05-01T00:00:00"),
            ("web01-2024-04-30", "2024-04-30T00:00:00"),
            ("web01-2024-05-01.checkpoint", "2024-05-01T12:00:00"),
            ("other-2024-05-02", "2024-05-02T00:00:00"),
        ];
        assert_eq!(previous_archive("web01-2024-05-02", archives), Some(1));
        assert_eq!(previous_archive("other-2024-05-03", archives), Some(4));
        assert_eq!(previous_archive("fresh", archives), None);
        // same common prefix: the newest
        let same = [
            ("t-1", "2024-01-01T00:00:00"),
            ("t-2", "2024-01-02T00:00:00"),
        ];
        assert_eq!(previous_archive("t-3", same), Some(1));
    }
}
