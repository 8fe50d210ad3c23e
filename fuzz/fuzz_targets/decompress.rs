//! The auto-detecting decompressor (spec §5) on framed bytes, with and without a size hint,
//! and the buffer-reusing variant.
#![no_main]
use hoard::compress::{decompress, decompress_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = decompress(data, None);
    let _ = decompress(data, Some(data.len()));
    let mut out = Vec::new();
    let b = decompress_in(data, None, &mut out);
    if let (Ok(a), Ok(())) = (&a, &b) {
        assert_eq!(a, &out);
    }
});
