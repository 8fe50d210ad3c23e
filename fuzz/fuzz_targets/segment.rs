//! Segment entries (spec §2.4): iterates an in-memory segment with and without data, as
//! `LoggedIo::iter_objects` does for check, replay and compaction.
#![no_main]
use hoard::repo::segment::iter_segment_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (read_data, include_data) in [(false, false), (true, false), (true, true)] {
        if let Ok(it) = iter_segment_bytes(data.to_vec(), 7, read_data, include_data) {
            for e in it.take(100_000) {
                if e.is_err() {
                    break;
                }
            }
        }
    }
});
