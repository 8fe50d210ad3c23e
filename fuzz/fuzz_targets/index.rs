//! `index.N` (borg's HashIndex, spec §2.7) as the repository reads it (NsIndex, 8-byte values)
//! and as the chunks cache reads it (ChunkIndex, 12-byte values), plus the single-key lookup.
#![no_main]
use hoard::repo::index::{lookup_in_file, ChunkIndex, NsIndex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ix) = NsIndex::read(data) {
        let n = ix.iter().take(1000).count();
        assert!(n <= ix.len());
        let _ = ix.write();
    }
    let _ = ChunkIndex::read(data);
    let _ = lookup_in_file(data, &[0u8; 32]);
});
