//! Compression codecs with borg's 2-byte headers, the `auto` heuristic and size obfuscation
//! (FORMAT.md §5).
//!
//! Owns the `--compression` spec ([`Compression`]: parsing, canonical form), [`compress`]
//! (plaintext → framed bytes) and [`decompress`] (framed bytes → plaintext, dispatching on the
//! header, never on configuration). It knows nothing about encryption or chunk ids, and must
//! never panic on corrupt input.

mod codec;
mod spec;
#[cfg(test)]
mod tests;

pub use codec::{
    compress, compress_into, decompress, decompress_in, CompressError, LZ4_HEADER, LZMA_HEADER,
    MAX_DATA_SIZE, MAX_DECOMPRESSED_SIZE, MAX_OBFUSCATE_NESTING, NONE_HEADER, OBFUSCATE_HEADER,
    ZSTD_HEADER,
};
pub use spec::{Compression, CompressionSpecError};
