//! The zstd codec alone: the input is the body after the zstd header bytes (spec §5).
#![no_main]
use hoard::compress::decompress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framed = Vec::with_capacity(data.len() + 2);
    framed.extend_from_slice(&[0x03, 0x00]);
    framed.extend_from_slice(data);
    let _ = decompress(&framed, None);
    let _ = decompress(&framed, Some(data.len().saturating_mul(4)));
});
