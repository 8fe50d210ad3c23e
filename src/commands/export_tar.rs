//! `export-tar ARCHIVE FILE [PATH...]`: writes archive items as a GNU tar stream, byte for
//! byte as borg 1.2 and 1.4 do with Python's `tarfile` (`GNU_FORMAT`, streaming mode `w|`),
//! or with `--tar-format PAX|BORG` (a hoard extension with borg 2's semantics) as pax members
//! that also carry nanosecond times, xattrs, ACLs and for BORG the whole item ([`pax`]).
//!
//! A member's data is never made up: when its chunks hold less than the item's `size` (a
//! missing chunk, or a hostile or corrupted `size`), the export stops with one error line and
//! exit code 2, as borg does ("unexpected end of data"); the stream then ends inside that
//! member. Chunks holding more than `size` are cut at `size`, as borg's `tarfile` does.

use std::collections::HashMap;
use std::io::Write;

use crate::archive::item::{ChunkRef, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::KeyedRepository;

use super::common::{CommandError, Result};
use super::extract::{remove_surrogates, strip_components, ExtractOutcome, PathFilter, Reporter};

pub mod pax;

/// Tar block size.
pub const BLOCKSIZE: usize = 512;
/// Python's tarfile record size (20 blocks); the stream is padded to a multiple of it.
pub const RECORDSIZE: usize = 20 * BLOCKSIZE;

/// A hardlink master: its chunks while not yet written, its name in the tar once written.
type MasterEntry = (Option<Vec<ChunkRef>>, Option<Vec<u8>>);

/// Python's `shutil.copyfileobj` buffer size, which paces borg's progress output.
const COPY_BUFSIZE: u64 = 16 * 1024;

/// `--tar-format`: which tar format `export-tar` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TarFormat {
    /// `GNU`: borg 1.x's only format (mtime in seconds; no atime, ctime, xattrs or ACLs).
    #[default]
    Gnu,
    /// `PAX`: POSIX.1-2001 members with ns times, xattrs and ACLs in pax records.
    Pax,
    /// `BORG`: PAX plus the whole item in `BORG.item.meta`.
    Borg,
}

impl TarFormat {
    /// The format named on the command line (`GNU`, `PAX`, `BORG`).
    pub fn parse(name: &str) -> Option<TarFormat> {
        match name {
            "GNU" => Some(TarFormat::Gnu),
            "PAX" => Some(TarFormat::Pax),
            "BORG" => Some(TarFormat::Borg),
            _ => None,
        }
    }
}

/// Options of `export-tar`.
#[derive(Debug, Clone, Default)]
pub struct ExportTarOptions {
    /// `--strip-components N`.
    pub strip_components: usize,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// `-p/--progress`.
    pub progress: bool,
    /// `--tar-format`.
    pub format: TarFormat,
}

/// One tar header's fields (Python's `TarInfo`).
#[derive(Debug, Clone, Default)]
pub struct TarHeader {
    /// Member name (directories get a trailing `/`).
    pub name: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Content length.
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Type flag (`b'0'` regular, `b'1'` hardlink, `b'2'` symlink, ...).
    pub typeflag: u8,
    /// Link target.
    pub linkname: Vec<u8>,
    /// Owner name.
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Device major.
    pub devmajor: u64,
    /// Device minor.
    pub devminor: u64,
}

/// Python's `itn` for the GNU format: octal with a NUL, else base-256.
fn itn(n: i128, digits: usize, gnu: bool, out: &mut Vec<u8>) {
    let limit = 8i128.pow(digits as u32 - 1);
    if (0..limit).contains(&n) {
        out.extend_from_slice(format!("{:0width$o}", n, width = digits - 1).as_bytes());
        out.push(0);
        return;
    }
    if !gnu {
        // Not reachable for the fields we write in USTAR mode (long-name headers).
        out.extend(std::iter::repeat_n(b'7', digits - 1));
        out.push(0);
        return;
    }
    out.push(if n >= 0 { 0o200 } else { 0o377 });
    let bytes = n.to_be_bytes();
    out.extend_from_slice(&bytes[16 - (digits - 1)..]);
}

/// Python's `stn`: truncated or NUL-padded to `len`.
fn stn(s: &[u8], len: usize, out: &mut Vec<u8>) {
    let n = s.len().min(len);
    out.extend_from_slice(&s[..n]);
    out.extend(std::iter::repeat_n(0u8, len - n));
}

/// GNU tar's magic and version (`GNU_MAGIC`).
const GNU_MAGIC: &[u8; 8] = b"ustar  \0";

/// One header block (`TarInfo._create_header`) with the given magic; `gnu` allows base-256
/// numbers.
fn raw_header(h: &TarHeader, gnu: bool, magic: &[u8; 8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(BLOCKSIZE);
    stn(&h.name, 100, &mut b);
    itn(i128::from(h.mode & 0o7777), 8, gnu, &mut b);
    itn(i128::from(h.uid), 8, gnu, &mut b);
    itn(i128::from(h.gid), 8, gnu, &mut b);
    itn(i128::from(h.size), 12, gnu, &mut b);
    itn(i128::from(h.mtime), 12, gnu, &mut b);
    b.extend_from_slice(b"        ");
    b.push(h.typeflag);
    stn(&h.linkname, 100, &mut b);
    b.extend_from_slice(magic);
    stn(&h.uname, 32, &mut b);
    stn(&h.gname, 32, &mut b);
    if matches!(h.typeflag, b'3' | b'4') {
        itn(i128::from(h.devmajor), 8, gnu, &mut b);
        itn(i128::from(h.devminor), 8, gnu, &mut b);
    } else {
        b.extend_from_slice(&[0; 16]);
    }
    stn(b"", 155, &mut b);
    b.resize(BLOCKSIZE, 0);
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let field = format!("{sum:06o}\0");
    b[148..155].copy_from_slice(field.as_bytes());
    b
}

fn pad_len(n: usize) -> usize {
    (BLOCKSIZE - n % BLOCKSIZE) % BLOCKSIZE
}

fn long_header(name: &[u8], typeflag: u8) -> Vec<u8> {
    let mut payload = name.to_vec();
    payload.push(0);
    let h = TarHeader {
        name: b"././@LongLink".to_vec(),
        size: payload.len() as u64,
        typeflag,
        ..TarHeader::default()
    };
    let mut out = raw_header(&h, false, GNU_MAGIC);
    let pad = pad_len(payload.len());
    out.extend_from_slice(&payload);
    out.extend(std::iter::repeat_n(0u8, pad));
    out
}

/// The header blocks of a member as Python's `TarInfo.tobuf(GNU_FORMAT)` writes them,
/// with `././@LongLink` records for names or link targets over 100 bytes.
pub fn gnu_header(h: &TarHeader) -> Vec<u8> {
    let mut out = Vec::new();
    if h.linkname.len() > 100 {
        out.extend(long_header(&h.linkname, b'K'));
    }
    if h.name.len() > 100 {
        out.extend(long_header(&h.name, b'L'));
    }
    out.extend(raw_header(h, true, GNU_MAGIC));
    out
}

/// Counts bytes written, to pad the stream at the end.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    written: usize,
}

impl Counting<'_> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(data)?;
        self.written += data.len();
        Ok(())
    }
}

fn mtime_seconds(ns: i64) -> i64 {
    // Python: int(item.mtime / 1e9): int → float, divide, truncate.
    ((ns as f64) / 1e9).trunc() as i64
}

fn major(rdev: u64) -> u64 {
    ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)
}

fn minor(rdev: u64) -> u64 {
    ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)
}

/// Writes the selected items of `meta` as a tar stream to `out`.
#[allow(clippy::too_many_arguments)]
pub fn export_tar(
    store: &mut KeyedRepository,
    meta: &ArchiveMeta,
    opts: &ExportTarOptions,
    filter: PathFilter<'_>,
    partial: bool,
    reporter: &mut dyn Reporter,
    out: &mut dyn Write,
) -> Result<ExtractOutcome> {
    let partial = partial || opts.strip_components > 0;
    // original master path → (chunks if not yet written, name in the tar once written)
    let mut masters: HashMap<Vec<u8>, MasterEntry> = HashMap::new();
    let mut warned = false;
    let mut w = Counting {
        inner: out,
        written: 0,
    };
    let total: u64 = if opts.progress {
        reporter.progress_message("Calculating size");
        let mut t: u64 = 0;
        let mut items = Items::new(store, meta);
        while let Some(item) = items.next_item()? {
            if (opts.consider_part_files || item.part.is_none()) && filter(&item.path) {
                // saturating: `size` is read from the archive and may be anything
                t = t.saturating_add(item.size.unwrap_or_else(|| {
                    if item.is_symlink() {
                        return item.source.as_ref().map_or(0, |s| s.len() as u64);
                    }
                    item.chunks
                        .as_ref()
                        .map_or(0, |c| c.iter().map(|c| u64::from(c.size)).sum::<u64>())
                }));
            }
        }
        t
    } else {
        0
    };
    let mut done = 0u64;
    let mut items = Items::new(store, meta);
    while let Some(mut item) = items.next_item()? {
        if !opts.consider_part_files && item.part.is_some() {
            continue;
        }
        let selected = filter(&item.path)
            .then(|| strip_components(&item.path, opts.strip_components))
            .flatten();
        let Some(stripped) = selected else {
            if partial
                && matches!(item.file_type(), S_IFREG | S_IFBLK | S_IFCHR | S_IFIFO)
                && item.may_be_hardlink_master()
                && item.source.is_none()
            {
                masters.insert(item.path.clone(), (item.chunks.clone(), None));
            }
            continue;
        };
        let orig_path = std::mem::replace(&mut item.path, stripped);
        let mut h = TarHeader {
            name: item.path.clone(),
            mode: item.mode & 0o7777,
            uid: u64::from(item.uid),
            gid: u64::from(item.gid),
            mtime: mtime_seconds(item.mtime),
            uname: item.user.clone().unwrap_or_default(),
            gname: item.group.clone().unwrap_or_default(),
            typeflag: b'0',
            ..TarHeader::default()
        };
        let mut content: Option<Vec<ChunkRef>> = None;
        match item.file_type() {
            S_IFREG => {
                if let Some(source) = item.source.clone() {
                    let stripped_source =
                        strip_components(&source, opts.strip_components).unwrap_or_default();
                    let (chunks, linkname) = if partial {
                        masters
                            .get(&source)
                            .cloned()
                            .unwrap_or((None, Some(stripped_source)))
                    } else {
                        (None, Some(stripped_source))
                    };
                    if let Some(l) = linkname.filter(|l| !l.is_empty()) {
                        h.typeflag = b'1';
                        h.linkname = l;
                    } else if let Some(c) = chunks {
                        h.size = c.iter().map(|c| u64::from(c.size)).sum();
                        content = Some(c);
                        masters.insert(source, (None, Some(item.path.clone())));
                    }
                } else {
                    let c = item.chunks.clone().unwrap_or_default();
                    h.size = item
                        .size
                        .unwrap_or_else(|| c.iter().map(|c| u64::from(c.size)).sum());
                    content = Some(c);
                }
            }
            S_IFDIR => {
                h.typeflag = b'5';
                if !h.name.ends_with(b"/") {
                    h.name.push(b'/');
                }
            }
            S_IFLNK => {
                h.typeflag = b'2';
                h.linkname = item.source.clone().unwrap_or_default();
            }
            S_IFBLK | S_IFCHR => {
                h.typeflag = if item.file_type() == S_IFBLK {
                    b'4'
                } else {
                    b'3'
                };
                let rdev = item.rdev.unwrap_or(0);
                h.devmajor = major(rdev);
                h.devminor = minor(rdev);
            }
            S_IFIFO => h.typeflag = b'6',
            other => {
                warned = true;
                reporter.warning(&format!(
                    "{}: unsupported file type {other:o} for tar export",
                    remove_surrogates(&item.path)
                ));
                continue;
            }
        }
        reporter.list(&orig_path);
        let header = match opts.format {
            TarFormat::Gnu => gnu_header(&h),
            f => pax::pax_header(
                &h,
                item.mtime,
                pax::item_records(&item, f == TarFormat::Borg),
            ),
        };
        w.put(&header)?;
        if let Some(chunks) = content {
            let mut written: u64 = 0;
            for c in &chunks {
                if written >= h.size {
                    break;
                }
                let data = items
                    .store()
                    .get(&c.id, Some(c.size as usize))
                    .map_err(|e| {
                        CommandError::new(format!("{}: {e}", remove_surrogates(&orig_path)))
                    })?;
                let take = (h.size - written).min(data.len() as u64) as usize;
                w.put(&data[..take])?;
                if opts.progress && total > 0 {
                    // borg reads members in 16 KiB requests; one progress step per piece of
                    // a request that lies within one chunk
                    let mut off = written;
                    let end = written + take as u64;
                    while off < end {
                        let boundary = (off / COPY_BUFSIZE + 1) * COPY_BUFSIZE;
                        let piece = boundary.min(end) - off;
                        let before = done;
                        done += piece;
                        reporter.progress(before, done, total, &item.path);
                        off += piece;
                    }
                }
                written += take as u64;
            }
            if written < h.size {
                // borg's tarfile.copyfileobj: "unexpected end of data"; nothing is padded, so
                // a hostile `size` cannot make the stream grow beyond what the chunks hold
                return Err(CommandError::new(format!(
                    "{}: unexpected end of data: size {}, chunks size {written}",
                    remove_surrogates(&orig_path),
                    h.size
                )));
            }
            let pad = pad_len((h.size % BLOCKSIZE as u64) as usize);
            w.put(&vec![0u8; pad])?;
        }
    }
    if opts.progress {
        reporter.progress_finish();
    }
    w.put(&[0u8; 2 * BLOCKSIZE])?;
    let rem = w.written % RECORDSIZE;
    if rem > 0 {
        w.put(&vec![0u8; RECORDSIZE - rem])?;
    }
    w.inner.flush()?;
    Ok(ExtractOutcome {
        warnings: warned,
        // borg's generic `print_warning` (no class) for an unsupported file type
        warning_classes: if warned {
            vec!["BorgWarning"]
        } else {
            Vec::new()
        },
    })
}

/// borg's `get_tar_filter`: the compressor for a file name's extension, if any.
pub fn auto_filter(file: &str) -> Option<&'static str> {
    let ends = |exts: &[&str]| exts.iter().any(|e| file.ends_with(e));
    if ends(&[".tar.gz", ".tgz"]) {
        Some("gzip")
    } else if ends(&[".tar.bz2", ".tbz"]) {
        Some("bzip2")
    } else if ends(&[".tar.xz", ".txz"]) {
        Some("xz")
    } else if ends(&[".tar.lz4"]) {
        Some("lz4")
    } else if ends(&[".tar.zstd", ".tar.zst"]) {
        Some("zstd")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_python_itn() {
        let mut v = Vec::new();
        itn(0o644, 8, true, &mut v);
        assert_eq!(v, b"0000644\0");
        v.clear();
        itn(-1, 12, true, &mut v);
        assert_eq!(v, [0xff; 12]);
        v.clear();
        itn(8i128.pow(11), 12, true, &mut v);
        assert_eq!(v[0], 0x80);
        assert_eq!(&v[1..], &[0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    }

    #[test]
    fn header_checksum_and_long_names() {
        let h = TarHeader {
            name: vec![b'n'; 150],
            typeflag: b'0',
            ..Default::default()
        };
        let b = gnu_header(&h);
        assert_eq!(b.len(), 3 * BLOCKSIZE);
        assert_eq!(&b[156..157], b"L");
        let last = &b[2 * BLOCKSIZE..];
        let stored = std::str::from_utf8(&last[148..154]).unwrap();
        let mut copy = last.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&x| x as u32).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(auto_filter("x.tar.zst"), Some("zstd"));
        assert_eq!(auto_filter("x.tar"), None);
        assert_eq!((major(0x0703), minor(0x07c8)), (7, 200));
    }
}
