//! Segment files: the append-only log under `data/` (spec §2.3–§2.5), borg's `LoggedIO`.
//!
//! Reading validates every entry (size bounds, tag, CRC32) and reports problems with borg's
//! messages naming segment and offset. Writing appends PUT/DELETE/COMMIT entries, rolls over to a
//! new segment when the write offset exceeds `max_segment_size`, creates `data/<n / per_dir>/`
//! directories and fsyncs a segment (and its directory) when it is closed.

use super::{ObjectId, RepoError, Result, MANIFEST_ID};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::objstore::ObjectStore;

/// A seekable byte source: a segment file, or a downloaded segment object.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

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
/// Bytes written to a segment between two requests to start write-back.
const WRITE_BACK_STEP: u64 = 8 << 20;
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
        let mut buf = vec![0u8; length];
        let got = read_full(r, &mut buf).map_err(|e| integrity(format!("{e}")))?;
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

/// Reads a file at a position of its own with `pread` (no `lseek` per object read, and the
/// shared descriptor's offset is never moved).
struct PosReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PosReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PosReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let file = self.file;
        self.pos = seek_target(to, self.pos, || Ok(file.metadata()?.len()))?;
        Ok(self.pos)
    }
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

/// Object storage reads: objects whose offsets in a segment are at most this far apart are
/// fetched with one range request (the bytes between them come along). Objects farther
/// apart are large enough to be worth a request of their own.
const MERGE_STEP: u64 = 256 * 1024;

/// Object storage reads: the largest distance between the first and last offset fetched by
/// one request (several requests run in parallel, so splitting costs nothing).
const MAX_GROUP_SPAN: u64 = 4 * 1024 * 1024;

/// Object storage reads: bytes fetched from a request's last object on the first try
/// (covers the header and small objects; larger ones need a second request).
const FIRST_READ: u64 = 128 * 1024;

/// Does the whole segment-file business for one repository (borg `LoggedIO`): naming, listing,
/// reading, iterating, writing and recovering segment files.
pub struct LoggedIo {
    /// Repository root.
    path: PathBuf,
    /// Soft segment size limit (config `max_segment_size`, §2.2/§2.3).
    pub limit: u64,
    /// Config `segments_per_dir` (§2.2).
    pub segments_per_dir: u32,
    /// Segment number the writer writes (or will write) to.
    pub segment: u32,
    /// Current write offset in [`Self::segment`] (0 when no segment is open).
    pub offset: u64,
    write_fd: Option<BufWriter<File>>,
    /// Offset in the write segment up to which the kernel was asked to start writing back.
    written_back: u64,
    /// Open read handles by segment number (borg keeps an LRU of 90).
    fds: std::collections::HashMap<u32, File>,
    /// Object storage instead of files (see [`super::objstore`]).
    obj: Option<Arc<ObjectStore>>,
    /// Object storage: the segment being written, uploaded whole when closed.
    wbuf: Option<Vec<u8>>,
    /// Object storage: closed segments still being uploaded in the background (oldest first).
    inflight: std::sync::Mutex<std::collections::VecDeque<Upload>>,
    /// Object storage: the last segment downloaded for a header-only iteration (`scan` asks
    /// for 100 ids at a time and would otherwise download the segment again each time).
    scanned: std::sync::Mutex<Option<(u32, Arc<Vec<u8>>)>>,
    /// Object storage: the buffer of a segment whose upload finished, kept for the next
    /// segment (a fresh 32 MiB buffer costs a page fault and a page clear per 4 KiB).
    spare: std::sync::Mutex<Option<Vec<u8>>>,
}

/// Shared segment bytes as a `Cursor` source.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Object storage: the largest segment kept by the header-only iteration cache.
const SCAN_CACHE_MAX: u64 = 64 * 1024 * 1024;

/// A segment upload running in a background thread.
struct Upload {
    segment: u32,
    data: Arc<Vec<u8>>,
    handle: std::thread::JoinHandle<std::io::Result<()>>,
}

/// How many closed segments may be uploading at once by default (memory: this many
/// segments + 1); `HOARD_S3_UPLOADS` overrides it.
const UPLOADS_IN_FLIGHT: usize = 2;

/// Object storage: room reserved beyond `max_segment_size` in the in-memory segment (a segment
/// closes after the entry that crosses the limit; entries average far below this).
const SEGMENT_SLACK: usize = 4 * 1024 * 1024;

/// Object storage: the most reserved up front for an in-memory segment (larger segments grow).
const MAX_SEGMENT_RESERVE: usize = 256 * 1024 * 1024;

/// How many read handles [`LoggedIo`] keeps open (borg's LRU capacity).
pub const FD_CACHE_CAPACITY: usize = 90;

impl LoggedIo {
    /// A `LoggedIO` for the repository at `path`.
    pub fn new(path: &Path, limit: u64, segments_per_dir: u32) -> LoggedIo {
        LoggedIo {
            path: path.to_path_buf(),
            limit,
            segments_per_dir: segments_per_dir.max(1),
            segment: 0,
            offset: 0,
            write_fd: None,
            written_back: 0,
            fds: std::collections::HashMap::new(),
            obj: None,
            wbuf: None,
            inflight: std::sync::Mutex::new(std::collections::VecDeque::new()),
            scanned: std::sync::Mutex::new(None),
            spare: std::sync::Mutex::new(None),
        }
    }

    /// Object storage: forgets the cached segment of header-only iterations.
    fn forget_scanned(&self) {
        if let Ok(mut c) = self.scanned.lock() {
            *c = None;
        }
    }

    /// Object storage: waits for background uploads until at most `keep` remain; the first
    /// failure is returned (the segments after it are still waited for).
    fn wait_uploads(&self, keep: usize) -> Result<()> {
        let mut first = None;
        loop {
            let next = {
                let Ok(mut q) = self.inflight.lock() else {
                    return Err(RepoError::InvalidArgument("upload queue poisoned".into()));
                };
                if q.len() <= keep {
                    break;
                }
                q.pop_front()
            };
            let Some(u) = next else { break };
            let fname = self.segment_filename(u.segment);
            let r = u.handle.join();
            if let (Ok(buf), Ok(mut spare)) = (Arc::try_unwrap(u.data), self.spare.lock()) {
                // no reader holds it any more: keep it for the next segment
                if spare.as_ref().is_none_or(|s| s.capacity() < buf.capacity()) {
                    *spare = Some(buf);
                }
            }
            let r = match r {
                Ok(r) => r.map_err(|e| RepoError::io(&fname, e)),
                Err(_) => Err(RepoError::InvalidArgument(
                    "segment upload thread panicked".into(),
                )),
            };
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Object storage: all closed segments are stored (call before reading or committing).
    pub fn flush_uploads(&self) -> Result<()> {
        if self.obj.is_some() {
            self.wait_uploads(0)
        } else {
            Ok(())
        }
    }

    /// Object storage: the bytes of a closed segment that is still uploading.
    fn uploading(&self, segment: u32) -> Option<Arc<Vec<u8>>> {
        let q = self.inflight.lock().ok()?;
        q.iter()
            .find(|u| u.segment == segment)
            .map(|u| u.data.clone())
    }

    /// A `LoggedIO` for a repository on object storage (`path` is only used in messages).
    pub fn new_obj(
        store: Arc<ObjectStore>,
        path: &Path,
        limit: u64,
        segments_per_dir: u32,
    ) -> LoggedIo {
        let mut io = LoggedIo::new(path, limit, segments_per_dir);
        io.obj = Some(store);
        io
    }

    /// Object key of a segment: `data/<n / segments_per_dir>/<n>`.
    fn segment_key(&self, segment: u32) -> String {
        format!("data/{}/{}", segment / self.segments_per_dir, segment)
    }

    /// Object storage: the bytes of the segment being written, if `segment` is it.
    fn pending(&self, segment: u32) -> Option<&Vec<u8>> {
        if segment == self.segment {
            self.wbuf.as_ref()
        } else {
            None
        }
    }

    /// `data/<n / segments_per_dir>/<n>` (§2.3).
    pub fn segment_filename(&self, segment: u32) -> PathBuf {
        self.path
            .join("data")
            .join((segment / self.segments_per_dir).to_string())
            .join(segment.to_string())
    }

    /// All segment files in ascending order (or descending with `reverse`), numeric names only.
    /// Zero-length files are included (they count as nonexistent for most purposes, §2.3, but
    /// cleanup must see them); use [`Self::segment_exists`] to filter.
    pub fn segment_list(&self, reverse: bool) -> Result<Vec<(u32, PathBuf)>> {
        let data = self.path.join("data");
        let mut out = Vec::new();
        if let Some(store) = &self.obj {
            self.flush_uploads()?;
            let list = store.list("data/").map_err(|e| RepoError::io(&data, e))?;
            for (name, _) in list {
                let mut parts = name.split('/');
                let (Some("data"), Some(d), Some(n), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let num = |x: &str| {
                    (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| x.parse::<u32>().ok())
                        .flatten()
                };
                if let (Some(_), Some(n)) = (num(d), num(n)) {
                    out.push((n, store.path_of(&name)));
                }
            }
            out.sort_by_key(|(n, _)| *n);
            if reverse {
                out.reverse();
            }
            return Ok(out);
        }
        let rd = fs::read_dir(&data).map_err(|e| RepoError::io(&data, e))?;
        for d in rd {
            let d = d.map_err(|e| RepoError::io(&data, e))?;
            let Some(dn) = numeric_name(&d.file_name()) else {
                continue;
            };
            let _ = dn;
            let dp = d.path();
            if !dp.is_dir() {
                continue;
            }
            let rd2 = fs::read_dir(&dp).map_err(|e| RepoError::io(&dp, e))?;
            for f in rd2 {
                let f = f.map_err(|e| RepoError::io(&dp, e))?;
                if let Some(n) = numeric_name(&f.file_name()) {
                    out.push((n, f.path()));
                }
            }
        }
        out.sort_by_key(|(n, _)| *n);
        if reverse {
            out.reverse();
        }
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
        let fname = self.segment_filename(segment);
        if let Some(store) = &self.obj {
            self.flush_uploads()?;
            let key = self.segment_key(segment);
            let len = match store.head(&key).map_err(|e| RepoError::io(&fname, e))? {
                Some(l) => l,
                None => return Ok(false),
            };
            if len < MAGIC_LEN + HEADER_SIZE as u64 {
                return Ok(false);
            }
            let tail = store
                .get_range(&key, len - 9, 9)
                .map_err(|e| RepoError::io(&fname, e))?;
            if tail != COMMIT {
                return Ok(false);
            }
        } else if !self.is_committed_file(&fname)? {
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

    /// The file part of [`Self::is_committed_segment`]: long enough and ends with COMMIT.
    fn is_committed_file(&self, fname: &Path) -> Result<bool> {
        let mut f = match File::open(fname) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(RepoError::io(fname, e)),
        };
        let len = f.metadata().map_err(|e| RepoError::io(fname, e))?.len();
        if len < MAGIC_LEN + HEADER_SIZE as u64 {
            return Ok(false);
        }
        let mut tail = [0u8; 9];
        f.seek(SeekFrom::Start(len - 9))
            .map_err(|e| RepoError::io(fname, e))?;
        f.read_exact(&mut tail)
            .map_err(|e| RepoError::io(fname, e))?;
        Ok(tail == COMMIT)
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
        let f: Box<dyn ReadSeek> = match &self.obj {
            Some(store) => {
                self.flush_uploads()?;
                let headers_only = !read_data && !include_data;
                let cached = match self.scanned.lock() {
                    Ok(c) => c
                        .as_ref()
                        .filter(|(s, _)| headers_only && *s == segment)
                        .map(|(_, d)| d.clone()),
                    Err(_) => None,
                };
                let data = match (self.pending(segment), cached) {
                    (Some(b), _) => Arc::new(b.clone()),
                    (None, Some(d)) => d,
                    (None, None) => {
                        let d = Arc::new(
                            store
                                .get(&self.segment_key(segment))
                                .map_err(|e| RepoError::io(&fname, e))?
                                .ok_or_else(|| {
                                    RepoError::io(&fname, std::io::ErrorKind::NotFound.into())
                                })?,
                        );
                        if headers_only && d.len() as u64 <= SCAN_CACHE_MAX {
                            if let Ok(mut c) = self.scanned.lock() {
                                *c = Some((segment, d.clone()));
                            }
                        }
                        d
                    }
                };
                let mut cur = std::io::Cursor::new(SharedBytes(data));
                cur.set_position(0);
                Box::new(cur)
            }
            None => Box::new(File::open(&fname).map_err(|e| RepoError::io(&fname, e))?),
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
        if self.obj.is_some() {
            return self.read_obj(segment, offset, id, read_data);
        }
        if segment == self.segment {
            if let Some(w) = self.write_fd.as_mut() {
                let p = self.path.clone();
                w.flush().map_err(|e| RepoError::io(&p, e))?;
            }
        }
        let fname = self.segment_filename(segment);
        if !self.fds.contains_key(&segment) {
            if self.fds.len() >= FD_CACHE_CAPACITY {
                self.fds.clear();
            }
            let f = File::open(&fname).map_err(|e| RepoError::io(&fname, e))?;
            self.fds.insert(segment, f);
        }
        let Some(f) = self.fds.get(&segment) else {
            return Err(RepoError::InvalidArgument("segment handle vanished".into()));
        };
        let mut r = PosReader {
            file: f,
            pos: offset as u64,
        };
        let mut header = [0u8; PUT_HEADER_SIZE as usize];
        let got = read_full(&mut r, &mut header).map_err(|e| RepoError::io(&fname, e))?;
        read_put_for(&mut r, &header[..got], segment, offset, id, read_data)
    }

    /// Object storage: [`Self::read_inner`] with range requests (header first, then the rest).
    fn read_obj(
        &mut self,
        segment: u32,
        offset: u32,
        id: &ObjectId,
        read_data: bool,
    ) -> Result<(u32, Option<Vec<u8>>)> {
        let fname = self.segment_filename(segment);
        let uploading = self.uploading(segment);
        let buf = if let Some(b) = self.pending(segment).or(uploading.as_deref()) {
            let avail = b.get(offset as usize..).unwrap_or_default();
            let size = match avail.get(4..8) {
                Some(s) if read_data => u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize,
                _ => PUT_HEADER_SIZE as usize,
            };
            avail[..size.max(PUT_HEADER_SIZE as usize).min(avail.len())].to_vec()
        } else {
            let Some(store) = &self.obj else {
                return Err(RepoError::InvalidArgument("no object store".into()));
            };
            let key = self.segment_key(segment);
            // One request covers the header and small objects; larger ones need a second.
            let first = if read_data {
                FIRST_READ
            } else {
                PUT_HEADER_SIZE as u64
            };
            let mut b = store
                .get_range(&key, offset as u64, first)
                .map_err(|e| RepoError::io(&fname, e))?;
            if read_data && b.len() as u64 == first {
                let size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as u64;
                if size > first && size <= MAX_OBJECT_SIZE as u64 {
                    let rest = store
                        .get_range(&key, offset as u64 + first, size - first)
                        .map_err(|e| RepoError::io(&fname, e))?;
                    b.extend_from_slice(&rest);
                }
            }
            b
        };
        put_from_buf(&buf, segment, offset, id, read_data)
    }

    /// Object storage: the PUTs at `wanted` (segment, offset, id), read with concurrent range
    /// GETs; results in the order of `wanted`, an error for each object that could not be
    /// read or validated. Objects whose offsets in one segment are close
    /// ([`MERGE_STEP`]) share one request (up to [`MAX_GROUP_SPAN`] bytes of offsets); a
    /// request covers its last object's first [`FIRST_READ`] bytes, and objects that do not
    /// fit get their rest in a second concurrent round. Segments still in memory (being
    /// written or uploaded) are read from there.
    pub fn read_many_obj(&mut self, wanted: &[(u32, u32, ObjectId)]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = (0..wanted.len()).map(|_| None).collect();
        let Some(store) = self.obj.clone() else {
            return wanted
                .iter()
                .map(|_| Err(RepoError::InvalidArgument("no object store".into())))
                .collect();
        };
        // (segment, offset) -> indices into `wanted`, in segment/offset order
        let mut by_loc: std::collections::BTreeMap<(u32, u32), Vec<usize>> = Default::default();
        for (i, (s, o, id)) in wanted.iter().enumerate() {
            if self.pending(*s).is_some() || self.uploading(*s).is_some() {
                out[i] = Some(
                    self.read_obj(*s, *o, id, true)
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
                (self.segment_key(*s), *start, last - start + FIRST_READ)
            })
            .collect();
        let mut bufs = store.get_ranges(&reqs);
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
            let tails = store.get_ranges(&more.iter().map(|m| m.1.clone()).collect::<Vec<_>>());
            for ((gi, _), tail) in more.into_iter().zip(tails) {
                match (&mut bufs[gi], tail) {
                    (Ok(b), Ok(t)) => b.extend_from_slice(&t),
                    (slot, Err(e)) => *slot = Err(e),
                    (Err(_), Ok(_)) => {}
                }
            }
        }
        for ((s, start, offs), b) in groups.iter().zip(bufs) {
            let fname = self.segment_filename(*s);
            for o in offs {
                let Some(idx) = by_loc.get(&(*s, *o as u32)) else {
                    continue;
                };
                for &i in idx {
                    let r = match &b {
                        Ok(b) => {
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
                        Err(e) => Err(RepoError::io(
                            &fname,
                            std::io::Error::new(e.kind(), e.to_string()),
                        )),
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
        let fname = self.segment_filename(segment);
        if let Some(store) = &self.obj {
            self.flush_uploads()?;
            return store
                .get_range(&self.segment_key(segment), 0, 8)
                .map_err(|e| RepoError::io(&fname, e));
        }
        let mut f = File::open(&fname).map_err(|e| RepoError::io(&fname, e))?;
        let mut m = [0u8; 8];
        let n = read_full(&mut f, &mut m).map_err(|e| RepoError::io(&fname, e))?;
        Ok(m[..n].to_vec())
    }

    /// A segment exists when its file exists with a non-zero length (§2.3).
    pub fn segment_exists(&self, segment: u32) -> bool {
        if self.obj.is_some() {
            return self.segment_size(segment).is_ok_and(|s| s > 0);
        }
        fs::metadata(self.segment_filename(segment))
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    }

    /// File size of a segment.
    pub fn segment_size(&self, segment: u32) -> Result<u64> {
        let f = self.segment_filename(segment);
        if let Some(store) = &self.obj {
            if let Some(b) = self.pending(segment) {
                return Ok(b.len() as u64);
            }
            if let Some(b) = self.uploading(segment) {
                return Ok(b.len() as u64);
            }
            return store
                .head(&self.segment_key(segment))
                .map_err(|e| RepoError::io(&f, e))?
                .ok_or_else(|| RepoError::io(&f, std::io::ErrorKind::NotFound.into()));
        }
        Ok(fs::metadata(&f).map_err(|e| RepoError::io(&f, e))?.len())
    }

    /// Deletes a segment file (missing is fine).
    pub fn delete_segment(&mut self, segment: u32) -> Result<()> {
        self.fds.remove(&segment);
        let f = self.segment_filename(segment);
        if let Some(store) = &self.obj {
            self.forget_scanned();
            self.flush_uploads()?;
            return store
                .delete(&self.segment_key(segment))
                .map_err(|e| RepoError::io(&f, e));
        }
        match fs::remove_file(&f) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::io(&f, e)),
        }
    }

    fn get_write_fd(&mut self, no_new: bool, want_new: bool) -> Result<&mut BufWriter<File>> {
        if !no_new && (want_new || (self.offset > 0 && self.offset > self.limit)) {
            self.close_segment()?;
        }
        if self.write_fd.is_none() {
            let fname = self.segment_filename(self.segment);
            if let Some(dir) = fname.parent() {
                if !dir.exists() {
                    super::create_dirs(dir).map_err(|e| RepoError::io(dir, e))?;
                    let data = self.path.join("data");
                    crate::paths::sync_dir(&data).map_err(|e| RepoError::io(&data, e))?;
                }
            }
            use std::os::unix::fs::OpenOptionsExt;
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(super::FILE_MODE)
                .open(&fname)
                .map_err(|e| RepoError::io(&fname, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            w.write_all(MAGIC).map_err(|e| RepoError::io(&fname, e))?;
            self.offset = MAGIC_LEN;
            self.written_back = 0;
            self.write_fd = Some(w);
            self.fds.remove(&self.segment);
        }
        match self.write_fd.as_mut() {
            Some(w) => Ok(w),
            None => Err(RepoError::InvalidArgument("no write segment".into())),
        }
    }

    /// Object storage: [`Self::write_bytes`] into the in-memory segment.
    fn write_bytes_obj(
        &mut self,
        no_new: bool,
        want_new: bool,
        bytes: &[&[u8]],
    ) -> Result<(u32, u32)> {
        if !no_new && (want_new || (self.offset > 0 && self.offset > self.limit)) {
            self.close_segment()?;
        }
        if self.offset == 0 {
            // a new segment: its number may be one that was cleaned up and is now reused
            self.forget_scanned();
        }
        let limit = self.limit;
        let w = self.wbuf.get_or_insert_with(|| {
            // Room for the whole segment up front: growing by doubling would copy it five
            // times and briefly hold two copies (pages are only touched as they fill).
            let cap = (limit as usize)
                .saturating_add(SEGMENT_SLACK)
                .min(MAX_SEGMENT_RESERVE);
            let spare = self.spare.lock().ok().and_then(|mut s| s.take());
            let mut v = match spare {
                Some(mut v) => {
                    v.clear();
                    v.reserve(cap);
                    v
                }
                None => Vec::with_capacity(cap),
            };
            v.extend_from_slice(MAGIC);
            v
        });
        if self.offset == 0 {
            self.offset = MAGIC_LEN;
        }
        for b in bytes {
            w.extend_from_slice(b);
        }
        let offset = self.offset;
        let size: usize = bytes.iter().map(|b| b.len()).sum();
        self.offset += size as u64;
        let off = u32::try_from(offset)
            .map_err(|_| RepoError::InvalidArgument("segment offset exceeds 4 GiB".into()))?;
        Ok((self.segment, off))
    }

    fn write_bytes(&mut self, no_new: bool, want_new: bool, bytes: &[&[u8]]) -> Result<(u32, u32)> {
        if self.obj.is_some() {
            return self.write_bytes_obj(no_new, want_new, bytes);
        }
        let path = self.path.clone();
        let w = self.get_write_fd(no_new, want_new)?;
        for b in bytes {
            w.write_all(b).map_err(|e| RepoError::io(&path, e))?;
        }
        crate::crashpoint::hit();
        let offset = self.offset;
        let size: usize = bytes.iter().map(|b| b.len()).sum();
        self.offset += size as u64;
        if self.offset.saturating_sub(self.written_back) >= WRITE_BACK_STEP {
            self.start_write_back();
        }
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

    /// Writes a COMMIT (a final one into a fresh segment), fsyncs and closes the segment.
    /// Returns the committed segment number.
    pub fn write_commit(&mut self, intermediate: bool) -> Result<u32> {
        if self.obj.is_some() && !intermediate {
            // commit order: every earlier segment is stored before the COMMIT segment
            self.close_segment()?;
            self.flush_uploads()?;
        }
        if intermediate {
            self.sync_write()?;
        }
        self.write_bytes(intermediate, !intermediate, &[&COMMIT])?;
        if intermediate {
            self.flush_uploads()?;
            if let (Some(store), Some(b)) = (&self.obj, &self.wbuf) {
                // the segment so far (ending with this COMMIT) becomes durable now; the final
                // upload replaces it with a longer version that starts with the same bytes
                let f = self.segment_filename(self.segment);
                store
                    .put(&self.segment_key(self.segment), b)
                    .map_err(|e| RepoError::io(&f, e))?;
            }
        }
        self.close_segment()?;
        self.flush_uploads()?;
        Ok(self.segment - 1)
    }

    /// Asks the kernel to start writing the segment's new bytes to disk now (borg's
    /// `SyncFile` does the same), so that the fsync when the segment is closed finds little
    /// left to write and does not stall the writer. Durability still comes from that fsync;
    /// failures here are ignored (the fsync reports real problems).
    fn start_write_back(&mut self) {
        let Some(w) = self.write_fd.as_mut() else {
            return;
        };
        if w.flush().is_err() {
            return;
        }
        let (from, len) = (self.written_back, self.offset - self.written_back);
        // SAFETY: a plain system call on an open descriptor; it only starts write-back.
        unsafe {
            libc::sync_file_range(
                w.get_ref().as_raw_fd(),
                from as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        self.written_back = self.offset;
    }

    fn sync_write(&mut self) -> Result<()> {
        if let Some(w) = self.write_fd.as_mut() {
            let p = self.path.clone();
            w.flush().map_err(|e| RepoError::io(&p, e))?;
            crate::crashpoint::hit();
            w.get_ref().sync_data().map_err(|e| RepoError::io(&p, e))?;
            crate::crashpoint::hit();
        }
        Ok(())
    }

    /// Flushes, fsyncs and closes the current write segment (and fsyncs its directory).
    pub fn close_segment(&mut self) -> Result<()> {
        if let Some(b) = self.wbuf.take() {
            let fname = self.segment_filename(self.segment);
            let key = self.segment_key(self.segment);
            self.segment += 1;
            self.offset = 0;
            if let Some(store) = &self.obj {
                let _ = &fname;
                let data = Arc::new(b);
                let (st, d) = (store.clone(), data.clone());
                let handle = std::thread::spawn(move || st.put(&key, &d));
                if let Ok(mut q) = self.inflight.lock() {
                    q.push_back(Upload {
                        segment: self.segment - 1,
                        data,
                        handle,
                    });
                }
                let limit = std::env::var("HOARD_S3_UPLOADS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(UPLOADS_IN_FLIGHT);
                self.wait_uploads(limit)?;
            }
        }
        if let Some(mut w) = self.write_fd.take() {
            let fname = self.segment_filename(self.segment);
            self.segment += 1;
            self.offset = 0;
            w.flush().map_err(|e| RepoError::io(&fname, e))?;
            crate::crashpoint::hit();
            w.get_ref()
                .sync_all()
                .map_err(|e| RepoError::io(&fname, e))?;
            crate::crashpoint::hit();
            drop(w);
            if let Some(dir) = fname.parent() {
                crate::paths::sync_dir(dir).map_err(|e| RepoError::io(dir, e))?;
            }
        }
        Ok(())
    }

    /// Drops the current write segment without syncing (used by rollback; the file stays
    /// uncommitted and is removed by the next cleanup).
    pub fn abandon_segment(&mut self) {
        let _ = self.wait_uploads(0);
        if self.wbuf.take().is_some() {
            self.segment += 1;
            self.offset = 0;
        }
        if let Some(mut w) = self.write_fd.take() {
            let _ = w.flush();
            self.segment += 1;
            self.offset = 0;
        }
    }

    /// borg `recover_segment`: rewrites the segment keeping only entries that validate, sliding
    /// byte by byte over damage. Atomic (temp file + rename).
    pub fn recover_segment(&mut self, segment: u32) -> Result<()> {
        self.fds.remove(&segment);
        let fname = self.segment_filename(segment);
        self.flush_uploads()?;
        self.forget_scanned();
        let data = match &self.obj {
            Some(store) => store
                .get(&self.segment_key(segment))
                .map_err(|e| RepoError::io(&fname, e))?
                .unwrap_or_default(),
            None => fs::read(&fname).map_err(|e| RepoError::io(&fname, e))?,
        };
        let out = recover_bytes(&data);
        if let Some(store) = &self.obj {
            return store
                .put(&self.segment_key(segment), &out)
                .map_err(|e| RepoError::io(&fname, e));
        }
        super::save_file(&fname, &out)
    }
}

/// The scanner of [`LoggedIo::recover_segment`] on the bytes of a damaged segment: the
/// segment magic followed by every entry that validates, found by sliding byte by byte over
/// damage. Public so that the scanner can be fuzzed (`fuzz/`).
pub fn recover_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(MAGIC);
    if data.len() >= (MAGIC_LEN + HEADER_SIZE as u64) as usize {
        let mut d = data;
        while d.len() >= HEADER_SIZE as usize {
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

fn numeric_name(name: &std::ffi::OsStr) -> Option<u32> {
    let s = name.to_str()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_constant_matches_crc() {
        let hdr = [9u8, 0, 0, 0, TAG_COMMIT];
        assert_eq!(crc_of(&[&hdr]).to_le_bytes(), COMMIT[..4]);
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
