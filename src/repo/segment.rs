//! Segment files: the append-only log under `data/` (FORMAT.md §2.3–§2.5), borg's `LoggedIO`.
//!
//! Reading validates every entry (size bounds, tag, CRC32) and reports problems with borg's
//! messages naming segment and offset. Writing appends PUT/DELETE/COMMIT entries, rolls over to a
//! new segment when the write offset exceeds `max_segment_size` and closes segments durably.
//! All file access goes through the repository's [`Storage`] (a directory or a bucket), so
//! this log is written once for both.

use super::storage::{dir::DirStorage, SegmentWriter, Storage};
use super::{ObjectId, RepoError, Result, MANIFEST_ID};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use super::storage::ReadSeek;

/// Segment file magic (§2.4).
pub const MAGIC: &[u8; 8] = b"BORG_SEG";
/// Magic of attic repositories, which are refused (§2.4).
pub const ATTIC_MAGIC: &[u8; 8] = b"ATTICSEG";
/// Length of [`MAGIC`].
pub const MAGIC_LEN: u64 = 8;
/// Entry tag: PUT (§2.4).
pub const TAG_PUT: u8 = 0;
/// Entry tag: DELETE (§2.4).
pub const TAG_DELETE: u8 = 1;
/// Entry tag: COMMIT (§2.4).
pub const TAG_COMMIT: u8 = 2;
/// Highest tag value borg reserves; larger tags are corruption (§2.4).
pub const MAX_TAG_ID: u8 = 15;
/// Size of the `crc32 | size | tag` header (borg `header_fmt`).
pub const HEADER_SIZE: u32 = 9;
/// Size of the PUT/DELETE header including the key (borg `put_header_fmt`).
pub const PUT_HEADER_SIZE: u32 = 41;
/// Largest data of one PUT (borg `MAX_DATA_SIZE`).
pub const MAX_DATA_SIZE: u32 = 20_971_479;
/// Bytes of an entry's data allocated before they are read; larger entries grow their buffer
/// as their bytes arrive (most chunks are smaller than this).
const ENTRY_PREALLOCATE: usize = 8 << 20;

/// Bytes the damaged-segment scanner ([`recover_bytes`]) checksums, per byte of segment, before
/// it gives up on the rest of the segment: sliding over hostile bytes where every offset looks
/// like a 20 MiB entry would otherwise cost 20 MiB of CRC per byte.
const RECOVER_WORK_PER_BYTE: usize = 16;

/// Largest entry size (borg `MAX_OBJECT_SIZE` = 20 MiB).
pub const MAX_OBJECT_SIZE: u32 = MAX_DATA_SIZE + PUT_HEADER_SIZE;
/// `max_segment_size` must be below this (borg `MAX_SEGMENT_SIZE_LIMIT`, §2.2).
pub const MAX_SEGMENT_SIZE_LIMIT: u64 = (1u64 << 32) - MAX_OBJECT_SIZE as u64;
/// Default `segments_per_dir` written by `borg init` (§2.2).
pub const DEFAULT_SEGMENTS_PER_DIR: u32 = 1000;
/// Default `max_segment_size` written by `borg init` (§2.2).
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 500 * 1024 * 1024;
/// The COMMIT entry: always these 9 bytes (§2.4).
pub const COMMIT: [u8; 9] = [0x40, 0xf4, 0x3c, 0x25, 0x09, 0x00, 0x00, 0x00, 0x02];

/// One log entry as found by iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// [`TAG_PUT`], [`TAG_DELETE`] or [`TAG_COMMIT`].
    pub tag: u8,
    /// The key (PUT and DELETE only).
    pub key: Option<ObjectId>,
    /// Offset of the entry start (its CRC field) in the segment file (§2.4).
    pub offset: u32,
    /// Whole entry size including the header (§2.4).
    pub size: u32,
    /// PUT data, when iteration was asked to include it.
    pub data: Option<Vec<u8>>,
}

fn crc_of(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn integrity(msg: String) -> RepoError {
    RepoError::Integrity(msg)
}

/// Reads as many bytes as possible (up to `buf.len()`), returning the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// (size, tag, key, data) of a parsed entry.
type RawEntry = (u32, u8, Option<ObjectId>, Option<Vec<u8>>);

/// Parses and validates one entry whose first `header.len()` bytes are already read from `r`.
/// `fmt_size` is 9 for iteration or 41 for a keyed read; mirrors borg `LoggedIO._read`.
#[allow(clippy::too_many_arguments)]
/// Reads the PUT entry whose header is `header` and checks that it stores `id` (the last step
/// of every object read, from a file or from an object store).
fn read_put_for(
    r: &mut (impl Read + Seek),
    header: &[u8],
    segment: u32,
    offset: u32,
    id: &ObjectId,
    read_data: bool,
) -> Result<(u32, Option<Vec<u8>>)> {
    let (size, _tag, key, data) = read_entry(
        r,
        header,
        PUT_HEADER_SIZE,
        segment,
        offset as u64,
        &[TAG_PUT],
        read_data,
    )?;
    if key.as_ref() != Some(id) {
        return Err(integrity(format!(
            "Invalid segment entry header, is not for wanted id [segment {segment}, offset {offset}]"
        )));
    }
    Ok((size, data))
}

fn read_entry(
    r: &mut (impl Read + Seek),
    header: &[u8],
    fmt_size: u32,
    segment: u32,
    offset: u64,
    acceptable: &[u8],
    read_data: bool,
) -> Result<RawEntry> {
    if header.len() != fmt_size as usize {
        return Err(integrity(format!(
            "Invalid segment entry header [segment {segment}, offset {offset}]: unpack requires a buffer of {fmt_size} bytes"
        )));
    }
    let crc = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let tag = header[8];
    let mut key: Option<ObjectId> = None;
    if fmt_size == PUT_HEADER_SIZE {
        let mut k = [0u8; 32];
        k.copy_from_slice(&header[9..41]);
        key = Some(k);
    }
    if size > MAX_OBJECT_SIZE {
        return Err(integrity(format!(
            "Invalid segment entry size {size} - too big [segment {segment}, offset {offset}]"
        )));
    }
    if size < fmt_size || ((tag == TAG_PUT || tag == TAG_DELETE) && size < PUT_HEADER_SIZE) {
        return Err(integrity(format!(
            "Invalid segment entry size {size} - too small [segment {segment}, offset {offset}]"
        )));
    }
    let mut length = (size - fmt_size) as usize;
    let mut data = None;
    if read_data {
        // The size field is not trusted for the allocation: a header claiming 20 MiB near the
        // end of a short file gets a buffer that grows only with the bytes really there.
        let mut buf = Vec::with_capacity(length.min(ENTRY_PREALLOCATE));
        let got = r
            .by_ref()
            .take(length as u64)
            .read_to_end(&mut buf)
            .map_err(|e| integrity(format!("{e}")))?;
        if got != length {
            return Err(integrity(format!(
                "Segment entry data short read [segment {segment}, offset {offset}]: expected {length}, got {got} bytes"
            )));
        }
        if crc_of(&[&header[4..], &buf]) != crc {
            return Err(integrity(format!(
                "Segment entry checksum mismatch [segment {segment}, offset {offset}]"
            )));
        }
        if key.is_none() && (tag == TAG_PUT || tag == TAG_DELETE) {
            let mut k = [0u8; 32];
            k.copy_from_slice(&buf[..32]);
            key = Some(k);
            buf.drain(..32);
        }
        data = Some(buf);
    } else {
        if key.is_none() && (tag == TAG_PUT || tag == TAG_DELETE) {
            let mut k = [0u8; 32];
            let got = read_full(r, &mut k).map_err(|e| integrity(format!("{e}")))?;
            if got != 32 {
                return Err(integrity(format!(
                    "Segment entry key short read [segment {segment}, offset {offset}]: expected 32, got {got} bytes"
                )));
            }
            key = Some(k);
            length -= 32;
        }
        let old = r.stream_position().map_err(|e| integrity(format!("{e}")))?;
        let end = r
            .seek(SeekFrom::End(0))
            .map_err(|e| integrity(format!("{e}")))?;
        let seeked = (end.saturating_sub(old)).min(length as u64);
        r.seek(SeekFrom::Start(old + seeked))
            .map_err(|e| integrity(format!("{e}")))?;
        if seeked != length as u64 {
            return Err(integrity(format!(
                "Segment entry data short seek [segment {segment}, offset {offset}]: expected {length}, got {seeked} bytes"
            )));
        }
    }
    if !acceptable.contains(&tag) {
        return Err(integrity(format!(
            "Invalid segment entry header, did not get acceptable tag [segment {segment}, offset {offset}]"
        )));
    }
    Ok((size, tag, key, data))
}

/// Iterator over the entries of one segment (borg `iter_objects`). After the first error it
/// yields that error and then stops: the rest of a damaged segment cannot be located.
pub struct SegmentIter {
    reader: SegReader,
    segment: u32,
    offset: u64,
    read_data: bool,
    include_data: bool,
    started: bool,
    done: bool,
}

impl Iterator for SegmentIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        let r = self.step();
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl SegmentIter {
    fn step(&mut self) -> Result<Option<Entry>> {
        let segment = self.segment;
        if !self.started {
            self.started = true;
            self.reader
                .seek(SeekFrom::Start(self.offset))
                .map_err(|e| integrity(format!("{e}")))?;
            if self.offset == 0 {
                let mut m = [0u8; 8];
                let got =
                    read_full(&mut self.reader, &mut m).map_err(|e| integrity(format!("{e}")))?;
                if got != 8 || &m != MAGIC {
                    return Err(integrity(format!(
                        "Invalid segment magic [segment {segment}, offset 0]"
                    )));
                }
                self.offset = MAGIC_LEN;
            }
        }
        let mut header = [0u8; HEADER_SIZE as usize];
        let got =
            read_full(&mut self.reader, &mut header).map_err(|e| integrity(format!("{e}")))?;
        if got == 0 {
            return Ok(None);
        }
        let offset = self.offset;
        let (size, tag, key, data) = read_entry(
            &mut self.reader,
            &header[..got],
            HEADER_SIZE,
            segment,
            offset,
            &[TAG_PUT, TAG_DELETE, TAG_COMMIT],
            self.read_data,
        )?;
        self.offset += size as u64;
        let offset32 = u32::try_from(offset).map_err(|_| {
            integrity(format!(
                "Invalid segment entry offset [segment {segment}, offset {offset}]"
            ))
        })?;
        Ok(Some(Entry {
            tag,
            key,
            offset: offset32,
            size,
            data: if self.include_data { data } else { None },
        }))
    }
}

/// A buffered segment reader that knows the segment's length and its own position. Seeks
/// only move that position; the next read moves the buffer there (within the buffer when it
/// can). Skipping an entry's data (iteration without data) asks for the end and then seeks
/// back: with a plain buffered file that was two `lseek`s and a refill of the whole buffer
/// for every entry.
struct SegReader {
    inner: BufReader<Box<dyn ReadSeek>>,
    /// Where `inner` is.
    inner_pos: u64,
    /// Where the next read starts.
    pos: u64,
    len: u64,
}

impl SegReader {
    fn new(mut f: Box<dyn ReadSeek>) -> std::io::Result<SegReader> {
        let len = f.seek(SeekFrom::End(0))?;
        f.seek(SeekFrom::Start(0))?;
        Ok(SegReader {
            inner: BufReader::with_capacity(1 << 16, f),
            inner_pos: 0,
            pos: 0,
            len,
        })
    }
}

impl Read for SegReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos != self.inner_pos {
            let rel = i64::try_from(i128::from(self.pos) - i128::from(self.inner_pos))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            self.inner.seek_relative(rel)?;
            self.inner_pos = self.pos;
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        self.inner_pos = self.pos;
        Ok(n)
    }
}

impl Seek for SegReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.len;
        self.pos = seek_target(to, self.pos, || Ok(len))?;
        Ok(self.pos)
    }

    fn stream_position(&mut self) -> std::io::Result<u64> {
        Ok(self.pos)
    }
}

/// The position a seek leads to from `pos` (`len` gives the end, asked only when needed).
fn seek_target(
    to: SeekFrom,
    pos: u64,
    len: impl FnOnce() -> std::io::Result<u64>,
) -> std::io::Result<u64> {
    let (base, delta) = match to {
        SeekFrom::Start(p) => (p, 0),
        SeekFrom::Current(d) => (pos, d),
        SeekFrom::End(d) => (len()?, d),
    };
    base.checked_add_signed(delta).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "invalid seek to a negative or overflowing position",
        )
    })
}

/// A reader over `data` that seeks within a logical length `len` (reads past `data` end).
struct Window<'a> {
    data: &'a [u8],
    pos: u64,
    len: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = (self.pos as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i64,
            SeekFrom::End(d) => self.len as i64 + d,
            SeekFrom::Current(d) => self.pos as i64 + d,
        };
        self.pos = p.clamp(0, self.len.max(self.data.len() as u64) as i64) as u64;
        Ok(self.pos)
    }
}

/// Parses the PUT entry at the start of `buf` (all of it, or only its header when
/// `!read_data`) and checks that it stores `id`.
fn put_from_buf(
    buf: &[u8],
    segment: u32,
    offset: u32,
    id: &ObjectId,
    read_data: bool,
) -> Result<(u32, Option<Vec<u8>>)> {
    let hl = (PUT_HEADER_SIZE as usize).min(buf.len());
    // Without data only the header was fetched: the window pretends the entry's data
    // follows (the object was uploaded whole, so it does).
    let logical = match buf.get(4..8) {
        Some(s) if !read_data => {
            (u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64).saturating_sub(hl as u64)
        }
        _ => (buf.len() - hl) as u64,
    };
    let mut r = Window {
        data: &buf[hl..],
        pos: 0,
        len: logical,
    };
    read_put_for(&mut r, &buf[..hl], segment, offset, id, read_data)
}

/// Batched reads: objects whose offsets in a segment are at most this far apart are fetched
/// with one range request (the bytes between them come along). Objects farther apart are
/// large enough to be worth a request of their own.
const MERGE_STEP: u64 = 256 * 1024;

/// Batched reads: the largest distance between the first and last offset fetched by one
/// request (several requests run in parallel, so splitting costs nothing).
const MAX_GROUP_SPAN: u64 = 4 * 1024 * 1024;

/// Reads with data: bytes asked for at once from an entry's start (covers the header and
/// small objects on stores with costly requests; larger ones need a second request).
const FIRST_READ: u64 = 128 * 1024;

/// Does the whole segment-file business for one repository (borg `LoggedIO`): naming, listing,
/// reading, iterating, writing and recovering segment files, on any [`Storage`].
pub struct LoggedIo {
    /// Where the segment files live.
    storage: Arc<dyn Storage>,
    /// Soft segment size limit (config `max_segment_size`, §2.2/§2.3).
    pub limit: u64,
    /// Config `segments_per_dir` (§2.2).
    pub segments_per_dir: u32,
    /// Segment number the writer writes (or will write) to.
    pub segment: u32,
    /// Current write offset in [`Self::segment`] (0 when no segment is open).
    pub offset: u64,
    /// The segment being written.
    writer: Option<Box<dyn SegmentWriter>>,
}

impl LoggedIo {
    /// A `LoggedIO` for the repository directory at `path`.
    pub fn new(path: &Path, limit: u64, segments_per_dir: u32) -> LoggedIo {
        LoggedIo::with_storage(Arc::new(DirStorage::new(path)), limit, segments_per_dir)
    }

    /// A `LoggedIO` for the repository in `storage`.
    pub fn with_storage(storage: Arc<dyn Storage>, limit: u64, segments_per_dir: u32) -> LoggedIo {
        LoggedIo {
            storage,
            limit,
            segments_per_dir: segments_per_dir.max(1),
            segment: 0,
            offset: 0,
            writer: None,
        }
    }

    /// Closed segments still being written in the background are stored (call before
    /// committing).
    pub fn flush_uploads(&self) -> Result<()> {
        self.storage.wait_writes()
    }

    /// Storage name of a segment: `data/<n / segments_per_dir>/<n>`.
    fn segment_name(&self, segment: u32) -> String {
        format!("data/{}/{}", segment / self.segments_per_dir, segment)
    }

    /// The bytes of the segment being written when the writer keeps them in memory.
    fn pending(&self, segment: u32) -> Option<&[u8]> {
        if segment == self.segment {
            self.writer.as_ref().and_then(|w| w.buffered())
        } else {
            None
        }
    }

    /// `data/<n / segments_per_dir>/<n>` (§2.3).
    pub fn segment_filename(&self, segment: u32) -> PathBuf {
        self.storage.path_of(&self.segment_name(segment))
    }

    /// All segment files in ascending order (or descending with `reverse`), numeric names only.
    /// Zero-length files are included (they count as nonexistent for most purposes, §2.3, but
    /// cleanup must see them); use [`Self::segment_exists`] to filter.
    pub fn segment_list(&self, reverse: bool) -> Result<Vec<(u32, PathBuf)>> {
        let mut out = Vec::new();
        for name in self.storage.list_below("data")? {
            if let Some(n) = segment_number(&name) {
                out.push((n, self.storage.path_of(&name)));
            }
        }
        out.sort_by_key(|(n, _)| *n);
        if reverse {
            out.reverse();
        }
        Ok(out)
    }

    /// Every segment file with its size, in ascending order (one listing; on S3 the listing
    /// carries the sizes). Zero-length files are included, as in [`Self::segment_list`].
    pub fn segment_sizes(&self) -> Result<Vec<(u32, u64)>> {
        let mut out = Vec::new();
        for (name, size) in self.storage.list_below_sized("data")? {
            if let Some(n) = segment_number(&name) {
                let size = self.pending(n).map_or(size, |b| b.len() as u64);
                out.push((n, size));
            }
        }
        out.sort_by_key(|(n, _)| *n);
        Ok(out)
    }

    /// Highest segment number present, if any.
    pub fn get_latest_segment(&self) -> Result<Option<u32>> {
        Ok(self.segment_list(true)?.first().map(|(n, _)| *n))
    }

    /// Transaction id T: the newest committed segment (§2.5).
    pub fn get_segments_transaction_id(&self) -> Result<Option<u32>> {
        for (seg, _) in self.segment_list(true)? {
            if self.is_committed_segment(seg)? {
                return Ok(Some(seg));
            }
        }
        Ok(None)
    }

    /// Deletes all segments above `transaction_id` (uncommitted leftovers) and positions the
    /// writer at `transaction_id + 1`. Returns how many files were deleted.
    pub fn cleanup(&mut self, transaction_id: Option<u32>) -> Result<usize> {
        self.close_segment()?;
        self.segment = transaction_id.map(|t| t + 1).unwrap_or(0);
        let mut count = 0;
        for (seg, _) in self.segment_list(true)? {
            if transaction_id.is_none_or(|t| seg > t) {
                self.delete_segment(seg)?;
                count += 1;
            } else {
                break;
            }
        }
        Ok(count)
    }

    /// §2.5: the segment ends with the COMMIT entry, parses fully, and no PUT/DELETE follows a COMMIT.
    pub fn is_committed_segment(&self, segment: u32) -> Result<bool> {
        let name = self.segment_name(segment);
        let len = match self.storage.size(&name)? {
            Some(l) => l,
            None => return Ok(false),
        };
        if len < MAGIC_LEN + HEADER_SIZE as u64 {
            return Ok(false);
        }
        if self.storage.read_range(&name, len - 9, 9)? != COMMIT {
            return Ok(false);
        }
        let mut seen_commit = false;
        for e in self.iter_objects(segment, 0, true, false)? {
            match e {
                Err(_) => return Ok(false),
                Ok(e) if e.tag == TAG_COMMIT => seen_commit = true,
                Ok(_) if seen_commit => return Ok(false),
                Ok(_) => {}
            }
        }
        Ok(seen_commit)
    }

    /// Iterates the entries of `segment` from `offset` (0 = start, magic checked).
    /// `read_data` validates CRCs (reads everything); `include_data` also returns PUT data.
    pub fn iter_objects(
        &self,
        segment: u32,
        offset: u64,
        read_data: bool,
        include_data: bool,
    ) -> Result<SegmentIter> {
        let fname = self.segment_filename(segment);
        let f: Box<dyn ReadSeek> = match self.pending(segment) {
            Some(b) => Box::new(std::io::Cursor::new(b.to_vec())),
            None => self
                .storage
                .whole_reader(&self.segment_name(segment), !read_data && !include_data)?,
        };
        Ok(SegmentIter {
            reader: SegReader::new(f).map_err(|e| RepoError::io(&fname, e))?,
            segment,
            offset,
            read_data: read_data || include_data,
            include_data,
            started: false,
            done: false,
        })
    }

    /// Reads the PUT at (`segment`, `offset`) and checks that it is for `id` and its CRC is valid.
    pub fn read(&mut self, segment: u32, offset: u32, id: &ObjectId) -> Result<Vec<u8>> {
        let (_, data) = self.read_inner(segment, offset, id, true)?;
        Ok(data.unwrap_or_default())
    }

    /// The entry size of the PUT at (`segment`, `offset`) without reading/validating its data.
    pub fn read_size(&mut self, segment: u32, offset: u32, id: &ObjectId) -> Result<u32> {
        Ok(self.read_inner(segment, offset, id, false)?.0)
    }

    fn read_inner(
        &mut self,
        segment: u32,
        offset: u32,
        id: &ObjectId,
        read_data: bool,
    ) -> Result<(u32, Option<Vec<u8>>)> {
        if segment == self.segment {
            if let Some(w) = self.writer.as_mut() {
                w.flush()?;
            }
        }
        if let Some(b) = self.pending(segment) {
            let avail = b.get(offset as usize..).unwrap_or_default();
            let size = match avail.get(4..8) {
                Some(s) if read_data => u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize,
                _ => PUT_HEADER_SIZE as usize,
            };
            let end = size.max(PUT_HEADER_SIZE as usize).min(avail.len());
            return put_from_buf(&avail[..end], segment, offset, id, read_data);
        }
        let name = self.segment_name(segment);
        let first = if read_data {
            FIRST_READ
        } else {
            PUT_HEADER_SIZE as u64
        };
        let mut r = self.storage.entry_reader(&name, offset as u64, first)?;
        let mut header = [0u8; PUT_HEADER_SIZE as usize];
        let got = read_full(&mut r, &mut header)
            .map_err(|e| RepoError::io(&self.segment_filename(segment), e))?;
        read_put_for(&mut r, &header[..got], segment, offset, id, read_data)
    }

    /// The PUTs at `wanted` (segment, offset, id), read with [`Storage::read_ranges`] (which
    /// runs them concurrently where requests are costly); results in the order of `wanted`,
    /// an error for each object that could not be read or validated. Objects whose offsets
    /// in one segment are close ([`MERGE_STEP`]) share one range (up to [`MAX_GROUP_SPAN`]
    /// bytes of offsets); a range covers its last object's first [`FIRST_READ`] bytes, and
    /// objects that do not fit get their rest in a second round. The segment being written
    /// is read from its writer.
    pub fn read_many(&mut self, wanted: &[(u32, u32, ObjectId)]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = (0..wanted.len()).map(|_| None).collect();
        // (segment, offset) -> indices into `wanted`, in segment/offset order
        let mut by_loc: std::collections::BTreeMap<(u32, u32), Vec<usize>> = Default::default();
        for (i, (s, o, id)) in wanted.iter().enumerate() {
            if *s == self.segment && self.writer.is_some() {
                out[i] = Some(
                    self.read_inner(*s, *o, id, true)
                        .map(|(_, d)| d.unwrap_or_default()),
                );
            } else {
                by_loc.entry((*s, *o)).or_default().push(i);
            }
        }
        // groups of close offsets in one segment: (segment, first offset, offsets)
        let mut groups: Vec<(u32, u64, Vec<u64>)> = Vec::new();
        for &(s, o) in by_loc.keys() {
            let o = o as u64;
            match groups.last_mut() {
                Some((gs, start, offs))
                    if *gs == s
                        && offs.last().is_some_and(|l| o - l <= MERGE_STEP)
                        && o - *start <= MAX_GROUP_SPAN =>
                {
                    offs.push(o)
                }
                _ => groups.push((s, o, vec![o])),
            }
        }
        let reqs: Vec<(String, u64, u64)> = groups
            .iter()
            .map(|(s, start, offs)| {
                let last = offs.last().copied().unwrap_or(*start);
                (self.segment_name(*s), *start, last - start + FIRST_READ)
            })
            .collect();
        let mut bufs = self.storage.read_ranges(&reqs);
        // second round: the rest of entries that extend past their group's buffer
        let mut more: Vec<(usize, (String, u64, u64))> = Vec::new();
        for (gi, ((_, start, offs), b)) in groups.iter().zip(&bufs).enumerate() {
            let Ok(b) = b else { continue };
            if (b.len() as u64) < reqs[gi].2 {
                continue; // the object ended before the requested range
            }
            let mut need = 0u64;
            for o in offs {
                let rel = (o - start) as usize;
                if let Some(h) = b.get(rel + 4..rel + 8) {
                    let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
                    if size <= MAX_OBJECT_SIZE as u64 {
                        need = need.max(o - start + size);
                    }
                }
            }
            if need > b.len() as u64 {
                let have = b.len() as u64;
                more.push((gi, (reqs[gi].0.clone(), start + have, need - have)));
            }
        }
        if !more.is_empty() {
            let tails = self
                .storage
                .read_ranges(&more.iter().map(|m| m.1.clone()).collect::<Vec<_>>());
            for ((gi, _), tail) in more.into_iter().zip(tails) {
                match (&mut bufs[gi], tail) {
                    (Ok(b), Ok(t)) => b.extend_from_slice(&t),
                    (slot, Err(e)) => *slot = Err(e),
                    (Err(_), Ok(_)) => {}
                }
            }
        }
        for ((s, start, offs), b) in groups.iter().zip(bufs) {
            let err_text = b.as_ref().err().map(|e| e.to_string());
            for o in offs {
                let Some(idx) = by_loc.get(&(*s, *o as u32)) else {
                    continue;
                };
                for &i in idx {
                    let r = match (&b, &err_text) {
                        (Ok(b), _) => {
                            let rel = ((o - start) as usize).min(b.len());
                            let end = match b.get(rel + 4..rel + 8) {
                                Some(h) => {
                                    rel + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize
                                }
                                None => b.len(),
                            };
                            put_from_buf(
                                &b[rel..end.clamp(rel, b.len())],
                                *s,
                                *o as u32,
                                &wanted[i].2,
                                true,
                            )
                            .map(|(_, d)| d.unwrap_or_default())
                        }
                        (Err(RepoError::Io { source, .. }), _) => Err(RepoError::io(
                            &self.segment_filename(*s),
                            std::io::Error::new(source.kind(), source.to_string()),
                        )),
                        (Err(_), t) => {
                            Err(RepoError::InvalidArgument(t.clone().unwrap_or_default()))
                        }
                    };
                    out[i] = Some(r);
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RepoError::InvalidArgument("object not read".into()))))
            .collect()
    }

    /// First 8 bytes of a segment file.
    pub fn get_segment_magic(&self, segment: u32) -> Result<Vec<u8>> {
        self.storage.read_range(&self.segment_name(segment), 0, 8)
    }

    /// A segment exists when its file exists with a non-zero length (§2.3).
    pub fn segment_exists(&self, segment: u32) -> bool {
        self.segment_size(segment).is_ok_and(|s| s > 0)
    }

    /// File size of a segment.
    pub fn segment_size(&self, segment: u32) -> Result<u64> {
        if let Some(b) = self.pending(segment) {
            return Ok(b.len() as u64);
        }
        let name = self.segment_name(segment);
        self.storage.size(&name)?.ok_or_else(|| {
            RepoError::io(
                &self.storage.path_of(&name),
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    /// Deletes a segment file (missing is fine).
    pub fn delete_segment(&mut self, segment: u32) -> Result<()> {
        self.storage.delete(&self.segment_name(segment))
    }

    fn write_bytes(&mut self, no_new: bool, want_new: bool, bytes: &[&[u8]]) -> Result<(u32, u32)> {
        if !no_new && (want_new || (self.offset > 0 && self.offset > self.limit)) {
            self.close_segment()?;
        }
        if self.writer.is_none() {
            let name = self.segment_name(self.segment);
            self.writer = Some(self.storage.create_segment(&name, MAGIC, self.limit)?);
            self.offset = MAGIC_LEN;
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(RepoError::InvalidArgument("no write segment".into()));
        };
        w.append(bytes)?;
        let offset = self.offset;
        let size: usize = bytes.iter().map(|b| b.len()).sum();
        self.offset += size as u64;
        let off = u32::try_from(offset)
            .map_err(|_| RepoError::InvalidArgument("segment offset exceeds 4 GiB".into()))?;
        Ok((self.segment, off))
    }

    /// borg's `SegmentFull` condition: writing an entry for `id` now would start a new segment
    /// (the current one exceeds the limit, or `id` is the manifest, which borg puts into a fresh
    /// segment). Compaction commits before such a write.
    pub fn would_start_new_segment(&self, id: &ObjectId) -> bool {
        *id == MANIFEST_ID || (self.offset > 0 && self.offset > self.limit)
    }

    /// Appends a PUT; returns (segment, offset). The manifest goes into a fresh segment (borg habit).
    pub fn write_put(&mut self, id: &ObjectId, data: &[u8]) -> Result<(u32, u32)> {
        if data.len() > MAX_DATA_SIZE as usize {
            return Err(integrity(format!(
                "More than allowed put data [{} > {}]",
                data.len(),
                MAX_DATA_SIZE
            )));
        }
        let size = data.len() as u32 + PUT_HEADER_SIZE;
        let mut hdr = [0u8; 5];
        hdr[..4].copy_from_slice(&size.to_le_bytes());
        hdr[4] = TAG_PUT;
        let crc = crc_of(&[&hdr, id, data]).to_le_bytes();
        self.write_bytes(false, *id == MANIFEST_ID, &[&crc, &hdr, id, data])
    }

    /// Appends a DELETE; returns (segment, entry size).
    pub fn write_delete(&mut self, id: &ObjectId) -> Result<(u32, u32)> {
        let mut hdr = [0u8; 5];
        hdr[..4].copy_from_slice(&PUT_HEADER_SIZE.to_le_bytes());
        hdr[4] = TAG_DELETE;
        let crc = crc_of(&[&hdr, id]).to_le_bytes();
        let (seg, _) = self.write_bytes(false, *id == MANIFEST_ID, &[&crc, &hdr, id])?;
        Ok((seg, PUT_HEADER_SIZE))
    }

    /// Writes a COMMIT (a final one into a fresh segment), makes it durable and closes the
    /// segment. Returns the committed segment number.
    ///
    /// Order: a final COMMIT goes into a fresh segment only after every earlier segment is
    /// durable (closed, and its background write finished), so no store can hold a COMMIT
    /// whose earlier segments are missing.
    pub fn write_commit(&mut self, intermediate: bool) -> Result<u32> {
        if intermediate {
            if let Some(w) = self.writer.as_mut() {
                w.sync()?;
            }
        } else {
            self.close_segment()?;
            self.storage.wait_writes()?;
        }
        self.write_bytes(intermediate, !intermediate, &[&COMMIT])?;
        self.close_segment()?;
        self.storage.wait_writes()?;
        Ok(self.segment - 1)
    }

    /// Makes the current write segment durable and closes it.
    pub fn close_segment(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            self.segment += 1;
            self.offset = 0;
            w.close()?;
        }
        Ok(())
    }

    /// Drops the current write segment without syncing (used by rollback; the file stays
    /// uncommitted and is removed by the next cleanup).
    pub fn abandon_segment(&mut self) {
        let _ = self.storage.wait_writes();
        if let Some(w) = self.writer.take() {
            w.abandon();
            self.segment += 1;
            self.offset = 0;
        }
    }

    /// borg `recover_segment`: rewrites the segment keeping only entries that validate, sliding
    /// byte by byte over damage. Atomic (temp file + rename, or one PUT).
    pub fn recover_segment(&mut self, segment: u32) -> Result<()> {
        let name = self.segment_name(segment);
        self.storage.wait_writes()?;
        let data = self.storage.read(&name)?.ok_or_else(|| {
            RepoError::io(
                &self.storage.path_of(&name),
                std::io::ErrorKind::NotFound.into(),
            )
        })?;
        self.storage.write_whole(&name, &recover_bytes(&data))
    }
}

/// The segment number of a stored name `data/<dir>/<n>` (both parts numeric), else `None`.
fn segment_number(name: &str) -> Option<u32> {
    let mut parts = name.split('/');
    let (Some("data"), Some(d), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    numeric(d)?;
    numeric(n)
}

/// A decimal segment or directory name (`0`, `17`), as a number.
fn numeric(x: &str) -> Option<u32> {
    (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        .then(|| x.parse::<u32>().ok())
        .flatten()
}

/// The scanner of [`LoggedIo::recover_segment`] on the bytes of a damaged segment: the
/// segment magic followed by every entry that validates, found by sliding byte by byte over
/// damage. The checksumming work is bounded ([`RECOVER_WORK_PER_BYTE`] times the segment
/// size, plus one maximal entry); past that the rest of the segment is dropped. Public so
/// that the scanner can be fuzzed (`fuzz/`).
pub fn recover_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(MAGIC);
    let mut work_left = data
        .len()
        .saturating_mul(RECOVER_WORK_PER_BYTE)
        .saturating_add(MAX_OBJECT_SIZE as usize);
    if data.len() >= (MAGIC_LEN + HEADER_SIZE as u64) as usize {
        let mut d = data;
        while d.len() >= HEADER_SIZE as usize {
            let claimed = u32::from_le_bytes([d[4], d[5], d[6], d[7]]) as usize;
            let checksummed = d[8] <= MAX_TAG_ID
                && (HEADER_SIZE as usize..=MAX_OBJECT_SIZE as usize).contains(&claimed)
                && claimed <= d.len();
            if checksummed {
                if claimed > work_left {
                    break;
                }
                work_left -= claimed;
            }
            let crc = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            let size = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
            let tag = d[8];
            if size > MAX_OBJECT_SIZE
                || tag > MAX_TAG_ID
                || size < HEADER_SIZE
                || size as usize > d.len()
                || crc_of(&[&d[4..size as usize]]) != crc
            {
                d = &d[1..];
                continue;
            }
            out.extend_from_slice(&d[..size as usize]);
            d = &d[size as usize..];
        }
    }
    out
}

/// Iterates the entries of a segment held in memory (`data` is the whole segment, magic
/// included), exactly as [`LoggedIo::iter_objects`] iterates a segment file; `segment` only
/// names it in errors. Public so that the entry parser can be fuzzed (`fuzz/`).
pub fn iter_segment_bytes(
    data: Vec<u8>,
    segment: u32,
    read_data: bool,
    include_data: bool,
) -> Result<SegmentIter> {
    let f: Box<dyn ReadSeek> = Box::new(std::io::Cursor::new(data));
    Ok(SegmentIter {
        reader: SegReader::new(f).map_err(|e| integrity(format!("{e}")))?,
        segment,
        offset: 0,
        read_data: read_data || include_data,
        include_data,
        started: false,
        done: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn commit_constant_matches_crc() {
        let hdr = [9u8, 0, 0, 0, TAG_COMMIT];
        assert_eq!(crc_of(&[&hdr]).to_le_bytes(), COMMIT[..4]);
    }

    /// A PUT entry as borg writes it: crc, size, tag, id, data.
    fn put_entry(id: u8, data: &[u8]) -> Vec<u8> {
        let size = PUT_HEADER_SIZE + data.len() as u32;
        let mut e = vec![0u8; 4];
        e.extend_from_slice(&size.to_le_bytes());
        e.push(TAG_PUT);
        e.extend_from_slice(&[id; 32]);
        e.extend_from_slice(data);
        let crc = crc_of(&[&e[4..]]);
        e[..4].copy_from_slice(&crc.to_le_bytes());
        e
    }

    #[test]
    fn recovery_work_is_bounded_on_hostile_segments() {
        // every offset claims a PUT of 8 MiB that fits in the rest of the segment: the old
        // scanner checksummed 8 MiB per byte (hours for this 9 MiB segment)
        let good = put_entry(1, b"kept");
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&good);
        let pattern = {
            let mut p = vec![0u8; 4];
            p.extend_from_slice(&(8u32 << 20).to_le_bytes());
            p.push(TAG_PUT);
            p
        };
        while data.len() < 9 << 20 {
            data.extend_from_slice(&pattern);
        }
        let started = std::time::Instant::now();
        let out = recover_bytes(&data);
        // the valid entry before the hostile bytes is salvaged
        assert_eq!(&out[..MAGIC.len()], MAGIC);
        assert_eq!(&out[MAGIC.len()..MAGIC.len() + good.len()], &good[..]);
        // not a timing assertion: a generous bound that the quadratic scan misses by 1000x
        assert!(started.elapsed() < std::time::Duration::from_secs(120));
        // a merely damaged segment is salvaged entirely: garbage between two entries
        let mut damaged = MAGIC.to_vec();
        damaged.extend_from_slice(&good);
        damaged.extend_from_slice(&[0x55; 1000]);
        let second = put_entry(2, &[9u8; 5000]);
        damaged.extend_from_slice(&second);
        let out = recover_bytes(&damaged);
        let mut want = MAGIC.to_vec();
        want.extend_from_slice(&good);
        want.extend_from_slice(&second);
        assert_eq!(out, want);
    }

    #[test]
    fn an_entry_claiming_more_than_the_file_holds_is_refused() {
        // a 20 MiB entry header at the end of a 100-byte segment: one clear error
        let mut data = MAGIC.to_vec();
        let mut e = put_entry(3, &[1u8; 40]);
        e[4..8].copy_from_slice(&MAX_OBJECT_SIZE.to_le_bytes());
        data.extend_from_slice(&e);
        let results: Vec<_> = iter_segment_bytes(data, 7, true, true)
            .expect("iterator")
            .collect();
        let err = results
            .into_iter()
            .find_map(|r| r.err())
            .expect("an error")
            .to_string();
        assert!(
            err.contains("short read") && err.contains("segment 7"),
            "{err}"
        );
    }

    #[test]
    fn write_iterate_read_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let mut io = LoggedIo::new(dir.path(), 100, 3);
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let (s, o) = io.write_put(&k1, b"hello").unwrap();
        assert_eq!((s, o), (0, 8));
        io.write_put(&k2, &[7u8; 200]).unwrap();
        let (s3, _) = io.write_put(&k1, b"again").unwrap();
        assert_eq!(s3, 1, "rolls over after exceeding the limit");
        io.write_delete(&k2).unwrap();
        let c = io.write_commit(false).unwrap();
        assert_eq!(c, 2);
        assert_eq!(io.get_segments_transaction_id().unwrap(), Some(2));
        assert!(!io.is_committed_segment(1).unwrap());
        assert_eq!(io.read(0, 8, &k1).unwrap(), b"hello");
        assert!(io.read(0, 8, &k2).is_err());
        let entries: Vec<_> = io
            .iter_objects(0, 0, true, true)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].offset, 8 + 46);
        // segments_per_dir = 3: segment 3 would be in data/1
        assert!(io.segment_filename(3).ends_with("data/1/3"));
        // corrupt a byte in segment 0's first entry and recover
        let f = io.segment_filename(0);
        let mut b = fs::read(&f).unwrap();
        b[50] ^= 0xff;
        fs::write(&f, &b).unwrap();
        let errs: Vec<_> = io.iter_objects(0, 0, true, false).unwrap().collect();
        assert!(
            matches!(errs.last(), Some(Err(RepoError::Integrity(m))) if m.contains("checksum mismatch"))
        );
        io.recover_segment(0).unwrap();
        let entries: Vec<_> = io
            .iter_objects(0, 0, true, true)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key, Some(k2));
    }
}
