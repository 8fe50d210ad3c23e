//! Content-defined (buzhash) and fixed-size chunkers, bit-exact with borg 1.2 (spec §6).
//!
//! Owns the chunker parameters ([`ChunkerParams`]: syntax, validation, stored msgpack form), the
//! buzhash cut-point rule, and [`Chunker`], a streaming iterator of owned [`Chunk`]s over any
//! `Read` whose boundaries never depend on read sizes; [`cut_points`] does the same on an
//! in-memory buffer (the item stream). It never hashes, compresses or stores chunks.

mod buzhash;
mod fixed;
mod params;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};

pub use buzhash::{buzhash, buzhash_update, table_for_seed, BUZHASH_BASE};
pub use params::{
    ChunkerParams, ChunkerParamsError, CHUNK_MAX_EXP, CHUNK_MIN_EXP, CH_BUZHASH, CH_FIXED,
    DEFAULT_CHUNKER_PARAMS, HASH_MASK_BITS, HASH_WINDOW_SIZE, ITEMS_CHUNKER_PARAMS, MAX_DATA_SIZE,
};

use buzhash::CutFinder;
use fixed::FixedStream;

/// How much the streaming chunkers ask the reader for at a time (on top of one maximum chunk
/// that may be carried over). Only affects speed, never the boundaries.
pub const READ_BLOCK_SIZE: usize = 2 << 20;

/// What a chunk's bytes are, as borg's chunker flags them (spec §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// Ordinary data read from the input (borg `CH_DATA`).
    Data,
    /// Data read from the input that turned out to be all zeros (borg `CH_ALLOC`).
    AllZero,
    /// A hole of a sparse file, found with `SEEK_HOLE`; never read (borg `CH_HOLE`).
    Hole,
}

/// One chunk of input. For [`ChunkKind::AllZero`] and [`ChunkKind::Hole`], `data` holds the
/// zeros too: the repository stores them as an ordinary chunk of zeros (spec §6.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The chunk's plaintext bytes.
    pub data: Vec<u8>,
    /// Whether the bytes were data, all-zero data, or a hole.
    pub kind: ChunkKind,
}

impl Chunk {
    /// A chunk of read data, flagged [`ChunkKind::AllZero`] when every byte is zero.
    pub fn from_data(data: Vec<u8>) -> Chunk {
        let kind = if is_all_zero(&data) {
            ChunkKind::AllZero
        } else {
            ChunkKind::Data
        };
        Chunk { data, kind }
    }

    /// A hole chunk of `len` zero bytes.
    pub fn hole(len: usize) -> Chunk {
        Chunk {
            data: vec![0; len],
            kind: ChunkKind::Hole,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a zero-length chunk (the chunkers never yield one).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// True when every byte of `data` is zero. Stops at the first non-zero 64-byte block, so it
/// costs next to nothing on ordinary data.
pub fn is_all_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    for b in &mut blocks {
        if b.iter().fold(0u8, |acc, &x| acc | x) != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&x| x == 0)
}

/// The end offsets of the buzhash chunks of an in-memory buffer (the last one is
/// `data.len()`; empty input gives no chunks). Identical to what [`Chunker`] yields for the
/// same bytes. Used for the item-metadata stream (spec §6.5). Fixed params cut every
/// `block` bytes after an optional `header`.
pub fn cut_points(
    params: &ChunkerParams,
    seed: u32,
    data: &[u8],
) -> Result<Vec<usize>, ChunkerParamsError> {
    params.validate()?;
    let mut cuts = Vec::new();
    match *params {
        ChunkerParams::Buzhash {
            min_exp,
            max_exp,
            mask_bits,
            window,
        } => {
            let finder = CutFinder::new(min_exp, max_exp, mask_bits, window, seed);
            let mut s = 0;
            while s < data.len() {
                let l = data.len().min(s + finder.max_size);
                s += finder.find_cut(&data[s..l]);
                cuts.push(s);
            }
        }
        ChunkerParams::Fixed { block, header } => {
            let (block, header) = (block as usize, header as usize);
            let mut s = 0;
            let mut range_end = header.min(data.len());
            while s < data.len() {
                if s == range_end {
                    range_end = data.len();
                }
                s = (s + block).min(range_end);
                cuts.push(s);
            }
        }
    }
    Ok(cuts)
}

/// A streaming chunker: an iterator of chunks read from `R` (spec §6.3, §6.4).
///
/// Reads in large blocks ([`READ_BLOCK_SIZE`] plus carry-over), retries short reads and
/// `Interrupted`, so the boundaries depend only on the bytes. After an I/O error has been
/// yielded, the iterator ends.
pub struct Chunker<R: Read> {
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Buzhash(Box<BuzhashStream<R>>),
    Fixed(FixedStream<R>),
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader` with `params` and the key's chunk seed taken modulo 2^32
    /// (`chunk_seed as u32` for borg's signed 32-bit `chunk_seed`; 0 in `none` mode).
    pub fn new(reader: R, params: &ChunkerParams, seed: u32) -> Result<Self, ChunkerParamsError> {
        params.validate()?;
        let inner = match *params {
            ChunkerParams::Buzhash {
                min_exp,
                max_exp,
                mask_bits,
                window,
            } => Inner::Buzhash(Box::new(BuzhashStream::new(
                reader,
                CutFinder::new(min_exp, max_exp, mask_bits, window, seed),
            ))),
            ChunkerParams::Fixed { block, header } => {
                Inner::Fixed(FixedStream::new(reader, block as usize, header as usize))
            }
        };
        Ok(Chunker { inner })
    }
}

impl Chunker<File> {
    /// Like [`Chunker::new`], but with the fixed chunker the file's holes are found with
    /// `SEEK_DATA`/`SEEK_HOLE` and yielded as [`ChunkKind::Hole`] chunks without reading them
    /// (borg `--sparse`). Chunks never span a data/hole boundary. Falls back to plain reading
    /// where seeking for holes is not supported. The buzhash chunker ignores `sparse`, as borg
    /// does (it still flags all-zero chunks).
    pub fn new_sparse(
        file: File,
        params: &ChunkerParams,
        seed: u32,
    ) -> Result<Self, ChunkerParamsError> {
        match *params {
            ChunkerParams::Fixed { block, header } => {
                params.validate()?;
                Ok(Chunker {
                    inner: Inner::Fixed(FixedStream::new_sparse(
                        file,
                        block as usize,
                        header as usize,
                    )),
                })
            }
            ChunkerParams::Buzhash { .. } => Chunker::new(file, params, seed),
        }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Buzhash(s) => s.next_chunk(),
            Inner::Fixed(s) => s.next_chunk(),
        }
    }
}

/// First size of a stream's read buffer; it doubles up to its full size as data arrives.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Reads from `reader` into `buf` until it is full or EOF; returns the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Streaming buzhash chunking: the buffer always holds `min(max, rest of stream)` bytes from
/// the current chunk start before a cut is searched, which is exactly spec §6.3's `L`.
struct BuzhashStream<R> {
    reader: R,
    finder: CutFinder,
    buf: Vec<u8>,
    /// Start of the current chunk in `buf`.
    start: usize,
    /// End of valid data in `buf`.
    end: usize,
    eof: bool,
    failed: bool,
}

impl<R: Read> BuzhashStream<R> {
    fn new(reader: R, finder: CutFinder) -> Self {
        BuzhashStream {
            reader,
            buf: Vec::new(),
            finder,
            start: 0,
            end: 0,
            eof: false,
            failed: false,
        }
    }

    /// Reads until the buffer holds its full size (max + two read blocks) or EOF. The
    /// buffer starts small and doubles only while data keeps coming, so a small file never
    /// pays for zeroing a multi-MiB buffer (the bytes read, and so the cuts, are the same).
    fn fill(&mut self) -> io::Result<()> {
        let target = self.finder.max_size + 2 * READ_BLOCK_SIZE;
        if self.buf.is_empty() {
            self.buf = vec![0; INITIAL_BUFFER.min(target)];
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            let n = read_full(&mut self.reader, &mut self.buf[self.end..])?;
            self.end += n;
            if self.end < self.buf.len() {
                self.eof = true;
                return Ok(());
            }
            if self.buf.len() >= target {
                return Ok(());
            }
            let grown = (self.buf.len() * 2).min(target);
            self.buf.resize(grown, 0);
        }
    }

    fn next_chunk(&mut self) -> Option<io::Result<Chunk>> {
        if self.failed {
            return None;
        }
        let max = self.finder.max_size;
        if !self.eof && self.end - self.start < max {
            if let Err(e) = self.fill() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if self.start == self.end {
            return None;
        }
        let avail = &self.buf[self.start..self.end.min(self.start + max)];
        let cut = self.finder.find_cut(avail);
        let data = avail[..cut].to_vec();
        self.start += cut;
        Some(Ok(Chunk::from_data(data)))
    }
}
