//! The fixed-size chunker with optional header block and sparse-file holes (FORMAT.md §6.4).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::io::AsRawFd;

use super::{read_full, Chunk, READ_BLOCK_SIZE};

/// "The rest of the file": borg's length for an open-ended range (`2**62`).
const OPEN_END: u64 = 1 << 62;

/// One range of the file map: `len` bytes of data (`is_data`) or of hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapRange {
    pub(crate) len: u64,
    pub(crate) is_data: bool,
}

/// How to step over a hole without reading it.
type SkipFn<R> = fn(&mut BufReader<R>, u64) -> io::Result<()>;

/// Fixed-size chunking over a file map: each range is cut into `block`-sized pieces, the last
/// one of a range possibly shorter, like borg's `ChunkerFixed`.
pub(crate) struct FixedStream<R> {
    reader: BufReader<R>,
    block: usize,
    ranges: VecDeque<MapRange>,
    skip: Option<SkipFn<R>>,
    done: bool,
}

fn plain_map(header: usize) -> VecDeque<MapRange> {
    let mut map = VecDeque::new();
    if header > 0 {
        map.push_back(MapRange {
            len: header as u64,
            is_data: true,
        });
    }
    map.push_back(MapRange {
        len: OPEN_END,
        is_data: true,
    });
    map
}

impl<R: Read> FixedStream<R> {
    pub(crate) fn new(reader: R, block: usize, header: usize) -> Self {
        FixedStream {
            reader: BufReader::with_capacity(READ_BLOCK_SIZE, reader),
            block,
            ranges: plain_map(header),
            skip: None,
            done: false,
        }
    }

    pub(crate) fn next_chunk(&mut self) -> Option<io::Result<Chunk>> {
        while !self.done {
            let range = self.ranges.front_mut()?;
            if range.len == 0 {
                self.ranges.pop_front();
                continue;
            }
            let wanted = range.len.min(self.block as u64) as usize;
            let result = match (range.is_data, self.skip) {
                (false, Some(skip)) => {
                    skip(&mut self.reader, wanted as u64).map(|()| Chunk::hole(wanted))
                }
                _ => {
                    let mut data = vec![0; wanted];
                    read_full(&mut self.reader, &mut data).map(|got| {
                        data.truncate(got);
                        Chunk::from_data(data)
                    })
                }
            };
            let chunk = match result {
                Ok(c) => c,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let got = chunk.len();
            if got < wanted {
                // EOF (borg stops at the first short read).
                self.done = true;
            }
            if got == 0 {
                return None;
            }
            range.len -= got as u64;
            return Some(Ok(chunk));
        }
        None
    }
}

fn skip_file(reader: &mut BufReader<File>, n: u64) -> io::Result<()> {
    let n = i64::try_from(n)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "hole too large"))?;
    reader.seek_relative(n)
}

impl FixedStream<File> {
    /// Builds the file map from `SEEK_DATA`/`SEEK_HOLE` (the header, if any, is one data
    /// range); falls back to the plain map when the file cannot be seeked that way.
    pub(crate) fn new_sparse(mut file: File, block: usize, header: usize) -> Self {
        let map = sparse_map(&mut file, header as u64).ok();
        let (ranges, skip) = match map {
            Some(body) => {
                let mut ranges = VecDeque::new();
                if header > 0 {
                    ranges.push_back(MapRange {
                        len: header as u64,
                        is_data: true,
                    });
                }
                ranges.extend(body);
                (ranges, Some(skip_file as SkipFn<File>))
            }
            None => (plain_map(header), None),
        };
        FixedStream {
            reader: BufReader::with_capacity(READ_BLOCK_SIZE, file),
            block,
            ranges,
            skip,
            done: false,
        }
    }
}

/// The data/hole ranges of `file` from `from` to its end, like borg's `sparsemap`; the file
/// position is left unchanged.
pub(crate) fn sparse_map(file: &mut File, from: u64) -> io::Result<Vec<MapRange>> {
    let saved = file.stream_position()?;
    let result = sparse_map_inner(file, from);
    file.seek(SeekFrom::Start(saved))?;
    result
}

fn sparse_map_inner(file: &File, from: u64) -> io::Result<Vec<MapRange>> {
    let file_len = file.metadata()?.len();
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut start = from;
    let mut is_data = true; // we look for the end of a data range first (SEEK_HOLE)
    loop {
        let whence = if is_data {
            libc::SEEK_HOLE
        } else {
            libc::SEEK_DATA
        };
        let off = libc::off_t::try_from(start)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: lseek on a valid, owned descriptor has no memory-safety requirements.
        let end = unsafe { libc::lseek(fd, off, whence) };
        if end < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENXIO) {
                if !is_data && start < file_len {
                    // a hole at the end of the file: SEEK_DATA finds nothing
                    ranges.push(MapRange {
                        len: file_len - start,
                        is_data: false,
                    });
                }
                break;
            }
            return Err(err);
        }
        let end = end as u64;
        if end > start {
            ranges.push(MapRange {
                len: end - start,
                is_data,
            });
        }
        start = end;
        is_data = !is_data;
    }
    Ok(ranges)
}
