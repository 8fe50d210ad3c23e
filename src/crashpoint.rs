//! Deterministic crash injection for durability tests.
//!
//! Durable-write paths call [`hit`] at every step where a crash could leave the repository
//! half-written (after each segment write, before and after fsyncs, renames and deletions).
//! With `HOARD_CRASH_AT=N` in the environment, the N-th hit kills the process with SIGKILL —
//! exactly what a power cut or `kill -9` does. Without it, [`hit`] is a counter increment.
//! `HOARD_CRASH_COUNT=1` makes the process report how many points it passed when it exits
//! normally, as the last line on stderr: `hoard: crash points passed: N` (see [`report`]), so a
//! test can walk every point of a command without guessing how many there are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

// Process state, not configuration: the test harness's crash target (`HOARD_CRASH_AT`) and
// the durable steps counted so far belong to this one process.
static HITS: AtomicU64 = AtomicU64::new(0);
static TARGET: OnceLock<Option<u64>> = OnceLock::new();

fn target() -> Option<u64> {
    *TARGET.get_or_init(|| {
        std::env::var("HOARD_CRASH_AT")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
    })
}

/// Marks a crash point; kills the process if it is the configured one.
pub fn hit() {
    let n = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    if target() == Some(n) {
        // SAFETY: sending a signal to ourselves; SIGKILL cannot be caught.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// How many crash points this process has passed.
pub fn count() -> u64 {
    HITS.load(Ordering::SeqCst)
}

/// The environment variable that asks for [`report`]'s line.
pub const COUNT_VAR: &str = "HOARD_CRASH_COUNT";

/// The line [`report`] writes for `n` points.
pub fn count_line(n: u64) -> String {
    format!("hoard: crash points passed: {n}")
}

/// Writes [`count_line`] for [`count`] to stderr when `HOARD_CRASH_COUNT=1` is set; called by
/// the binary just before it exits.
pub fn report() {
    if std::env::var(COUNT_VAR).as_deref() == Ok("1") {
        eprintln!("{}", count_line(count()));
    }
}
