//! The transactional key-value store: segments, index, hints, integrity, locking (spec §2, §3).
