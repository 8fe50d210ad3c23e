//! Content-defined (buzhash) and fixed-size chunkers, bit-exact with borg 1.2 (FORMAT.md §6).
//!
//! Owns the chunker parameters ([`ChunkerParams`]: syntax, validation, stored msgpack form), the
//! buzhash cut-point rule, and [`Chunker`], a streaming iterator of owned [`Chunk`]s over any
//! `Read` whose boundaries never depend on read sizes; [`cut_points`] does the same on an
//! in-memory buffer (the item stream). It never hashes, compresses or stores chunks.
//!
//! [`Chunker::next_shared`] / [`Chunker::shared`] yield [`SharedChunk`]s instead: views into
//! the large read buffer (reference counted, `Send`), so no chunk is copied or allocated on
//! its own; the owned [`Chunk`] iterator is built on top of them.

mod buzhash;
mod fixed;
mod params;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};
use std::ops::{Deref, Range};
use std::sync::Arc;

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

/// What a chunk's bytes are, as borg's chunker flags them (FORMAT.md §6.6).
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
/// zeros too: the repository stores them as an ordinary chunk of zeros (FORMAT.md §6.6).
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

/// A chunk's bytes without a copy: a range of a reference-counted read buffer. Derefs to
/// `[u8]`; cheap to clone and to send to another thread. The buffer is freed (or reused by the
/// chunker) when its last chunk is dropped.
#[derive(Clone)]
pub struct ChunkBytes {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl ChunkBytes {
    /// The bytes as an owned `Vec`: without copying when this is the only view of its whole
    /// buffer (e.g. a small file read in one piece), otherwise a copy.
    pub fn into_vec(self) -> Vec<u8> {
        let ChunkBytes { buf, range } = self;
        if range.start == 0 {
            match Arc::try_unwrap(buf) {
                Ok(mut v) => {
                    v.truncate(range.end);
                    if v.capacity() > 2 * v.len() + 4096 {
                        v.shrink_to_fit();
                    }
                    v
                }
                Err(buf) => buf[range].to_vec(),
            }
        } else {
            buf[range].to_vec()
        }
    }
}

impl Deref for ChunkBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl AsRef<[u8]> for ChunkBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(v: Vec<u8>) -> Self {
        ChunkBytes {
            range: 0..v.len(),
            buf: Arc::new(v),
        }
    }
}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBytes")
            .field("len", &self.range.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ChunkBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ChunkBytes {}

/// One chunk whose bytes stay in the chunker's read buffer (see [`ChunkBytes`]); otherwise
/// like [`Chunk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedChunk {
    /// The chunk's plaintext bytes.
    pub data: ChunkBytes,
    /// Whether the bytes were data, all-zero data, or a hole.
    pub kind: ChunkKind,
}

impl SharedChunk {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a zero-length chunk (the chunkers never yield one).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The owned form (copies only when the buffer is shared, see [`ChunkBytes::into_vec`]).
    pub fn into_chunk(self) -> Chunk {
        Chunk {
            data: self.data.into_vec(),
            kind: self.kind,
        }
    }
}

impl From<Chunk> for SharedChunk {
    fn from(c: Chunk) -> Self {
        SharedChunk {
            data: c.data.into(),
            kind: c.kind,
        }
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
/// same bytes. Used for the item-metadata stream (FORMAT.md §6.5). Fixed params cut every
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

/// A streaming chunker: an iterator of chunks read from `R` (FORMAT.md §6.3, §6.4).
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

impl<R: Read> Chunker<R> {
    /// Tells the chunker how many bytes the input probably has (e.g. the file size from
    /// `stat`), so it can size its read buffer to fit: a file that fits is read into one
    /// buffer of its size, and its chunks are views of that buffer. Only affects speed and
    /// memory, never the boundaries; a wrong hint is harmless.
    pub fn with_size_hint(mut self, len: u64) -> Self {
        if let Inner::Buzhash(s) = &mut self.inner {
            s.size_hint = Some(len);
        }
        self
    }

    /// The next chunk as a view of the read buffer (no copy, no allocation per chunk); the
    /// same chunks as the iterator yields. After an I/O error has been returned, `None`.
    pub fn next_shared(&mut self) -> Option<io::Result<SharedChunk>> {
        match &mut self.inner {
            Inner::Buzhash(s) => s.next_chunk(),
            Inner::Fixed(s) => s.next_chunk().map(|r| r.map(SharedChunk::from)),
        }
    }

    /// Caps the buzhash read blocks at `bytes` (at least `max + 1`), to test block changes
    /// with small inputs.
    #[cfg(test)]
    pub(crate) fn with_max_block(mut self, bytes: usize) -> Self {
        if let Inner::Buzhash(s) = &mut self.inner {
            s.max_block = bytes.max(s.finder.max_size + 1);
        }
        self
    }

    /// An iterator of [`SharedChunk`]s (see [`Chunker::next_shared`]).
    pub fn shared(self) -> SharedChunks<R> {
        SharedChunks(self)
    }
}

/// Iterator over a chunker's [`SharedChunk`]s, from [`Chunker::shared`].
pub struct SharedChunks<R: Read>(Chunker<R>);

impl<R: Read> Iterator for SharedChunks<R> {
    type Item = io::Result<SharedChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_shared()
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Buzhash(s) => s.next_chunk().map(|r| r.map(SharedChunk::into_chunk)),
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

/// Streaming buzhash chunking over a sequence of read buffers ("blocks").
///
/// A block is filled completely (or to EOF) and then shared: chunks are views of it. A chunk
/// is cut as soon as the data in the block decides it ([`CutFinder::find_cut_partial`], the
/// same answer as FORMAT.md §6.3's full `L = min(max, rest of stream)` lookahead). When it does
/// not, the unfinished chunk's bytes (less than `max`) are copied to the front of the next
/// block, which is then filled. Blocks grow from 64 KiB (doubling; or the size hint) to
/// `max + READ_BLOCK_SIZE`, and the previous block is reused when no chunk of it is alive any
/// more.
struct BuzhashStream<R> {
    reader: R,
    finder: CutFinder,
    /// The current block; its length is the end of the valid data.
    block: Arc<Vec<u8>>,
    /// Start of the current chunk in `block`.
    start: usize,
    /// The previous block, reused for the next one if no chunk holds it any more.
    spare: Option<Arc<Vec<u8>>>,
    /// Bytes read so far.
    read: u64,
    /// Expected total length of the input, if the caller knows it.
    size_hint: Option<u64>,
    /// Largest block: `max + READ_BLOCK_SIZE` (smaller in tests).
    max_block: usize,
    eof: bool,
    failed: bool,
}

impl<R: Read> BuzhashStream<R> {
    fn new(reader: R, finder: CutFinder) -> Self {
        BuzhashStream {
            reader,
            block: Arc::new(Vec::new()),
            start: 0,
            spare: None,
            read: 0,
            size_hint: None,
            // Room for an unfinished chunk carried over (less than `max`) plus a read block of
            // new data. Blocks of two maximum chunks (16 MiB with borg's defaults; each file
            // worker holds a block and its spare) put create's peak RSS on large files above
            // borg's: 82-104 MB against 77-80 MB with this size, 575 MB of large files, at the
            // same speed.
            max_block: finder.max_size + READ_BLOCK_SIZE,
            finder,
            eof: false,
            failed: false,
        }
    }

    /// Capacity of the next block, which starts with `tail` carried-over bytes.
    fn next_capacity(&self, tail: usize) -> usize {
        let max_block = self.max_block;
        let want = match self.size_hint {
            // One more byte than expected, so that EOF is seen without another block.
            Some(total) if total > self.read => {
                let rest = total.saturating_sub(self.read);
                usize::try_from(rest)
                    .unwrap_or(usize::MAX)
                    .saturating_add(tail + 1)
            }
            _ => (2 * self.block.capacity()).max(INITIAL_BUFFER),
        };
        want.clamp(INITIAL_BUFFER.min(max_block), max_block)
            .max(tail + INITIAL_BUFFER.min(max_block))
    }

    /// Starts a new block with the current chunk's bytes and fills it to capacity or EOF.
    fn refill(&mut self) -> io::Result<()> {
        let tail = self.block.len() - self.start;
        let cap = self.next_capacity(tail);
        if self.start == 0 {
            if let Some(v) = Arc::get_mut(&mut self.block) {
                // No chunk cut from this block yet (a file still growing the buffer): grow it
                // in place (realloc moves the pages instead of copying and faulting them).
                v.resize(cap, 0);
                let result = read_full(&mut self.reader, &mut v[tail..]);
                let n = *result.as_ref().unwrap_or(&0);
                v.truncate(tail + n);
                self.read += n as u64;
                if tail + n < cap {
                    self.eof = true;
                }
                return result.map(|_| ());
            }
        }
        let mut buf = match self.spare.take().map(Arc::try_unwrap) {
            // A recycled block is already initialised up to its old length: only the part
            // beyond that needs zeroing before read() may write to it.
            Some(Ok(mut v)) if v.capacity() >= cap => {
                v.resize(cap, 0);
                v
            }
            // A fresh one comes zeroed from the allocator (untouched pages for large sizes).
            _ => vec![0; cap],
        };
        buf[..tail].copy_from_slice(&self.block[self.start..]);
        let result = read_full(&mut self.reader, &mut buf[tail..]);
        let n = *result.as_ref().unwrap_or(&0);
        buf.truncate(tail + n);
        self.read += n as u64;
        if tail + n < cap {
            self.eof = true;
        }
        let old = std::mem::replace(&mut self.block, Arc::new(buf));
        self.spare = Some(old);
        self.start = 0;
        result.map(|_| ())
    }

    fn next_chunk(&mut self) -> Option<io::Result<SharedChunk>> {
        if self.failed {
            return None;
        }
        loop {
            let avail = &self.block[self.start..];
            let cut = if self.eof {
                if avail.is_empty() {
                    self.spare = None;
                    return None;
                }
                Some(self.finder.find_cut(avail))
            } else {
                self.finder.find_cut_partial(avail)
            };
            if let Some(cut) = cut {
                let range = self.start..self.start + cut;
                let buf = if self.eof && range.end == self.block.len() {
                    // The last chunk: let it own the block (an owned copy is then free).
                    self.start = 0;
                    std::mem::replace(&mut self.block, Arc::new(Vec::new()))
                } else {
                    self.start = range.end;
                    Arc::clone(&self.block)
                };
                let data = ChunkBytes { buf, range };
                let kind = if is_all_zero(&data) {
                    ChunkKind::AllZero
                } else {
                    ChunkKind::Data
                };
                return Some(Ok(SharedChunk { data, kind }));
            }
            if let Err(e) = self.refill() {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}
