//! A streaming tar reader with the semantics of Python's `tarfile` in `r|` mode, which is what
//! borg 1.4.5's `import-tar` reads with: v7, ustar, GNU (`././@LongLink`, old sparse) and pax
//! (local and global extended headers, GNU sparse 0.1 and 1.0; 0.0 is refused) members; the same end-of-archive rules (a zero block
//! ends the archive unless `--ignore-zeros`; a bad header ends it silently unless it is the
//! first one); names and link targets kept as raw bytes.
//!
//! Each member keeps the pax records in force for it ([`Member::pax`]): xattrs, ACLs, atime,
//! ctime and BORG metadata are taken from there.
//!
//! Everything read has a bound: extended headers are at most [`MAX_EXTENDED`] bytes and at most
//! [`MAX_CHAIN`] of them may precede one member.

use std::io::Read;

/// Tar block size.
pub const BLOCKSIZE: u64 = 512;
/// Largest GNU long-name or pax extended header this reader accepts.
pub const MAX_EXTENDED: u64 = 16 * 1024 * 1024;
/// Most extended headers (`L`, `K`, `x`, `g`) before one member.
pub const MAX_CHAIN: usize = 1000;

/// A tar read failure (Python's `tarfile.ReadError`): the message borg shows.
#[derive(Debug)]
pub struct TarError(pub String);

impl std::fmt::Display for TarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for TarError {
    fn from(e: std::io::Error) -> Self {
        TarError(e.to_string())
    }
}

/// A member's modification time: an integer from a header, or a pax `mtime` (a float).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mtime {
    /// Whole seconds from the header field.
    Int(i128),
    /// Python `float(value)` of a pax `mtime` record.
    Float(f64),
}

impl Mtime {
    /// borg's `safe_ns(int(tarinfo.mtime * 1000**3))`, clamped to `[0, MAX_NS]`.
    pub fn safe_ns(self) -> i64 {
        /// borg's `MAX_NS` (`SUPPORT_32BIT_PLATFORMS`): `(2**31 - 1 - 48*3600) * 10**9`.
        const MAX_NS: i128 = (2_147_483_647 - 48 * 3600) * 1_000_000_000;
        let ns: i128 = match self {
            Mtime::Int(s) => s.saturating_mul(1_000_000_000),
            Mtime::Float(f) if f.is_nan() => 0,
            // float * int in Python is a float; int() truncates toward zero
            Mtime::Float(f) => (f * 1e9).trunc().clamp(-1e30, 1e30) as i128,
        };
        ns.clamp(0, MAX_NS) as i64
    }
}

/// One member as `TarInfo` describes it after all extended headers are applied.
#[derive(Debug, Clone)]
pub struct Member {
    /// Name (directories without trailing `/`).
    pub name: Vec<u8>,
    /// Mode field.
    pub mode: i128,
    /// Owner id.
    pub uid: i128,
    /// Group id.
    pub gid: i128,
    /// Content length (the expanded length for sparse members).
    pub size: i128,
    /// Modification time.
    pub mtime: Mtime,
    /// Type flag byte (`0` for an empty flag).
    pub typeflag: u8,
    /// Link target.
    pub linkname: Vec<u8>,
    /// Owner name.
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Device major.
    pub devmajor: i128,
    /// Device minor.
    pub devminor: i128,
    /// Old GNU sparse map: (offset, length) of the data runs, in stream order.
    pub sparse: Option<Vec<(u64, u64)>>,
    /// The pax records in force for this member (global ones, then the member's own, a later
    /// value of a keyword replacing an earlier one), raw.
    pub pax: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes of data stored in the stream for this member.
    stored: u64,
}

/// Regular file types (`REGULAR_TYPES`).
fn is_regular_type(t: u8) -> bool {
    matches!(t, b'0' | 0 | b'7' | b'S')
}

/// Types `tarfile` knows (`SUPPORTED_TYPES`); data of other types is skipped like a file's.
fn is_supported_type(t: u8) -> bool {
    matches!(
        t,
        b'0' | 0 | b'1' | b'2' | b'5' | b'6' | b'7' | b'3' | b'4' | b'L' | b'K' | b'S'
    )
}

impl Member {
    /// `TarInfo.isreg()`.
    pub fn is_regular(&self) -> bool {
        is_regular_type(self.typeflag)
    }
}

/// Python's `nts`: up to the first NUL.
fn nts(s: &[u8]) -> Vec<u8> {
    match s.iter().position(|&b| b == 0) {
        Some(p) => s[..p].to_vec(),
        None => s.to_vec(),
    }
}

/// Python's `nti`: base-256 (leading 0o200 / 0o377) or octal; `None` is "invalid header".
fn nti(s: &[u8]) -> Option<i128> {
    if s[0] == 0o200 || s[0] == 0o377 {
        let mut n: i128 = 0;
        for &b in &s[1..] {
            n = (n << 8) + i128::from(b);
        }
        if s[0] == 0o377 {
            n -= 1i128 << (8 * (s.len() - 1));
        }
        return Some(n);
    }
    let text = std::str::from_utf8(&s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]).ok()?;
    // int(s.strip() or "0", 8): Python strips whitespace and accepts a sign and underscores
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() {
        return Some(0);
    }
    crate::python::int_radix(t, 8)
}

/// `calc_chksums`: unsigned and signed sums with the checksum field as spaces.
fn checksums(buf: &[u8]) -> (i128, i128) {
    let mut u: i128 = 256;
    let mut s: i128 = 256;
    for (i, &b) in buf.iter().enumerate() {
        if (148..156).contains(&i) {
            continue;
        }
        u += i128::from(b);
        s += i128::from(b as i8);
    }
    (u, s)
}

/// `TarInfo._block`: `count` rounded up to whole blocks.
fn block(count: u64) -> u64 {
    count.div_ceil(BLOCKSIZE) * BLOCKSIZE
}

/// Why a header block could not be read (Python's `HeaderError` subclasses).
enum HeaderError {
    /// No bytes at all.
    Empty,
    /// Fewer than 512 bytes.
    Truncated,
    /// A block of zeros.
    Eof,
    /// Bad checksum or number field.
    Invalid(&'static str),
    /// A hard failure (I/O, bounds): always fatal.
    Fatal(TarError),
}

impl From<TarError> for HeaderError {
    fn from(e: TarError) -> Self {
        HeaderError::Fatal(e)
    }
}

/// An extended header's contribution, applied to the member it precedes.
enum Override {
    /// `L`: the name.
    LongName(Vec<u8>),
    /// `K`: the link target.
    LongLink(Vec<u8>),
    /// `x`: the global headers at that point plus the local ones, in order.
    Pax(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Reads members from a tar stream.
pub struct TarReader<R: Read> {
    inner: R,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Where the next header starts (`tarfile.offset`).
    next_offset: u64,
    ignore_zeros: bool,
    /// Global pax headers (`tarfile.pax_headers`).
    global: Vec<(Vec<u8>, Vec<u8>)>,
    /// The data of the current member still unread (stream bytes).
    remaining: u64,
    /// Sparse expansion state of the current member.
    sparse: Option<SparseState>,
    done: bool,
}

/// Expanding an old GNU sparse member: runs of data in stream order, holes as zeros.
struct SparseState {
    runs: Vec<(u64, u64)>,
    /// Position in the expanded file.
    at: u64,
    /// Expanded size.
    size: u64,
}

fn set_pax(list: &mut Vec<(Vec<u8>, Vec<u8>)>, key: Vec<u8>, value: Vec<u8>) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// Parses pax records (`"%d %s=%s\n"`) as `tarfile._proc_pax` does: stops quietly at the
/// first record that does not parse; a zero length is an invalid header.
fn parse_pax(buf: &[u8], into: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), HeaderError> {
    let mut pos = 0usize;
    loop {
        let digits = buf[pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || buf.get(pos + digits) != Some(&b' ') {
            return Ok(());
        }
        let key_start = pos + digits + 1;
        let key_len = buf[key_start..].iter().take_while(|&&b| b != b'=').count();
        if key_len == 0 || key_start + key_len >= buf.len() {
            return Ok(());
        }
        let length: usize = std::str::from_utf8(&buf[pos..pos + digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if length == 0 {
            return Err(HeaderError::Invalid("invalid header"));
        }
        let value_start = key_start + key_len + 1;
        let value_end = pos.saturating_add(length).saturating_sub(1).min(buf.len());
        let value = buf
            .get(value_start..value_end.max(value_start))
            .unwrap_or_default()
            .to_vec();
        set_pax(into, buf[key_start..key_start + key_len].to_vec(), value);
        pos = pos.saturating_add(length);
        if pos >= buf.len() {
            return Ok(());
        }
    }
}

fn pax_int(v: &[u8]) -> i128 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| crate::python::int_radix(s.trim(), 10))
        .unwrap_or(0)
}

fn pax_float(v: &[u8]) -> f64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(crate::python::float)
        .unwrap_or(0.0)
}

/// The pax forms of GNU sparse files (`_proc_gnusparse_01` / `_10`): version 0.1 gives its
/// map here; true for version 1.0, whose map starts the member's data.
fn pax_sparse(m: &mut Member, headers: &[(Vec<u8>, Vec<u8>)]) -> Result<bool, HeaderError> {
    let get = |k: &[u8]| {
        headers
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_slice())
    };
    if let Some(map) = get(b"GNU.sparse.map") {
        let nums: Option<Vec<u64>> = map
            .split(|&b| b == b',')
            .map(|n| std::str::from_utf8(n).ok()?.trim().parse().ok())
            .collect();
        let nums = nums.ok_or(HeaderError::Invalid("invalid header"))?;
        m.sparse = Some(nums.chunks_exact(2).map(|p| (p[0], p[1])).collect());
        return Ok(false);
    }
    if get(b"GNU.sparse.size").is_some() {
        return Err(HeaderError::Fatal(TarError(
            "GNU sparse format 0.0 is not supported".into(),
        )));
    }
    Ok(get(b"GNU.sparse.major") == Some(b"1") && get(b"GNU.sparse.minor") == Some(b"0"))
}

/// `TarInfo._apply_pax_info`.
fn apply_pax(m: &mut Member, headers: &[(Vec<u8>, Vec<u8>)]) -> Result<(), HeaderError> {
    for (k, v) in headers {
        match k.as_slice() {
            b"path" => {
                let mut n = v.clone();
                while n.last() == Some(&b'/') {
                    n.pop();
                }
                m.name = n;
            }
            b"linkpath" => m.linkname = v.clone(),
            b"size" => m.size = pax_int(v),
            b"mtime" => m.mtime = Mtime::Float(pax_float(v)),
            b"uid" => m.uid = pax_int(v),
            b"gid" => m.gid = pax_int(v),
            b"uname" => m.uname = v.clone(),
            b"gname" => m.gname = v.clone(),
            b"GNU.sparse.name" => m.name = v.clone(),
            b"GNU.sparse.size" | b"GNU.sparse.realsize" => m.size = pax_int(v),
            _ => {}
        }
    }
    Ok(())
}

impl<R: Read> TarReader<R> {
    /// A reader over `inner`; `ignore_zeros` is `--ignore-zeros`.
    pub fn new(inner: R, ignore_zeros: bool) -> Self {
        TarReader {
            inner,
            pos: 0,
            next_offset: 0,
            ignore_zeros,
            global: Vec::new(),
            remaining: 0,
            sparse: None,
            done: false,
        }
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Discards `count` bytes; false if the stream ended first.
    fn skip(&mut self, mut count: u64) -> Result<bool, TarError> {
        let mut buf = vec![0u8; 64 * 1024];
        while count > 0 {
            let want = count.min(buf.len() as u64) as usize;
            let got = self.read_full(&mut buf[..want])?;
            if got == 0 {
                return Ok(false);
            }
            count -= got as u64;
        }
        Ok(true)
    }

    /// Reads a whole extended header's data (rounded up to blocks), returning `size` bytes.
    fn read_extended(&mut self, size: i128) -> Result<Vec<u8>, HeaderError> {
        let size = u64::try_from(size).map_err(|_| HeaderError::Invalid("invalid header"))?;
        if size > MAX_EXTENDED {
            return Err(HeaderError::Fatal(TarError(format!(
                "extended header of {size} bytes is larger than {MAX_EXTENDED}"
            ))));
        }
        let mut buf = vec![0u8; block(size) as usize];
        let got = self.read_full(&mut buf)?;
        buf.truncate(got.min(size as usize));
        Ok(buf)
    }

    /// `TarInfo.frombuf` on the next block.
    fn read_block_header(&mut self) -> Result<Member, HeaderError> {
        let mut buf = [0u8; BLOCKSIZE as usize];
        let got = self.read_full(&mut buf)?;
        if got == 0 {
            return Err(HeaderError::Empty);
        }
        if got != buf.len() {
            return Err(HeaderError::Truncated);
        }
        if buf.iter().all(|&b| b == 0) {
            return Err(HeaderError::Eof);
        }
        let invalid = HeaderError::Invalid("invalid header");
        let num =
            |r: std::ops::Range<usize>| nti(&buf[r]).ok_or(HeaderError::Invalid("invalid header"));
        let chksum = num(148..156)?;
        let (u, s) = checksums(&buf);
        if chksum != u && chksum != s {
            return Err(HeaderError::Invalid("bad checksum"));
        }
        let mut m = Member {
            name: nts(&buf[0..100]),
            mode: num(100..108)?,
            uid: num(108..116)?,
            gid: num(116..124)?,
            size: num(124..136)?,
            mtime: Mtime::Int(num(136..148)?),
            typeflag: buf[156],
            linkname: nts(&buf[157..257]),
            uname: nts(&buf[265..297]),
            gname: nts(&buf[297..329]),
            devmajor: num(329..337)?,
            devminor: num(337..345)?,
            sparse: None,
            pax: Vec::new(),
            stored: 0,
        };
        let prefix = nts(&buf[345..500]);
        if m.typeflag == 0 && m.name.ends_with(b"/") {
            m.typeflag = b'5';
        }
        if m.typeflag == b'S' {
            let mut runs = Vec::new();
            for i in 0..4 {
                let p = 386 + 24 * i;
                match (nti(&buf[p..p + 12]), nti(&buf[p + 12..p + 24])) {
                    (Some(o), Some(n)) => runs.push((o, n)),
                    _ => break,
                }
            }
            let extended = buf[482] != 0;
            let origsize = nti(&buf[483..495]).ok_or(invalid)?;
            m.sparse = Some(self.sparse_runs(runs, extended)?);
            m.stored = u64::try_from(m.size).map_err(|_| HeaderError::Invalid("invalid header"))?;
            m.size = origsize;
        }
        if m.typeflag == b'5' {
            while m.name.last() == Some(&b'/') {
                m.name.pop();
            }
        }
        if !prefix.is_empty() && !matches!(m.typeflag, b'L' | b'K' | b'S') {
            let mut n = prefix;
            n.push(b'/');
            n.extend_from_slice(&m.name);
            m.name = n;
        }
        Ok(m)
    }

    /// Reads the map that starts a GNU sparse 1.0 member's data (newline-separated decimal
    /// numbers: the count, then offset/length pairs; padded to whole blocks).
    fn sparse_map_v1(&mut self) -> Result<Vec<(u64, u64)>, HeaderError> {
        let mut text: Vec<u8> = Vec::new();
        let mut numbers: Vec<u64> = Vec::new();
        let mut wanted: Option<u64> = None;
        loop {
            while let Some(nl) = text.iter().position(|&b| b == b'\n') {
                let n: u64 = std::str::from_utf8(&text[..nl])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or(HeaderError::Invalid("invalid header"))?;
                text.drain(..=nl);
                match wanted {
                    None => wanted = Some(n.saturating_mul(2)),
                    Some(_) => numbers.push(n),
                }
                if wanted.is_some_and(|w| numbers.len() as u64 >= w) {
                    return Ok(numbers.chunks_exact(2).map(|p| (p[0], p[1])).collect());
                }
            }
            if self.remaining < BLOCKSIZE {
                return Err(HeaderError::Fatal(TarError(
                    "unexpected end of data".into(),
                )));
            }
            if (numbers.len() as u64).saturating_mul(24) > MAX_EXTENDED {
                return Err(HeaderError::Fatal(TarError("sparse map too long".into())));
            }
            let mut buf = [0u8; BLOCKSIZE as usize];
            if self.read_full(&mut buf)? != buf.len() {
                return Err(HeaderError::Fatal(TarError(
                    "unexpected end of data".into(),
                )));
            }
            self.remaining -= BLOCKSIZE;
            text.extend_from_slice(&buf);
        }
    }

    /// Reads the extension blocks of an old GNU sparse header (`_proc_sparse`).
    fn sparse_runs(
        &mut self,
        first: Vec<(i128, i128)>,
        mut extended: bool,
    ) -> Result<Vec<(u64, u64)>, HeaderError> {
        let mut runs = first;
        let mut blocks = 0usize;
        while extended {
            blocks += 1;
            if blocks > MAX_CHAIN {
                return Err(HeaderError::Fatal(TarError("sparse map too long".into())));
            }
            let mut buf = [0u8; BLOCKSIZE as usize];
            if self.read_full(&mut buf)? != buf.len() {
                return Err(HeaderError::Fatal(TarError(
                    "unexpected end of data".into(),
                )));
            }
            for i in 0..21 {
                let p = 24 * i;
                match (nti(&buf[p..p + 12]), nti(&buf[p + 12..p + 24])) {
                    (Some(o), Some(n)) if o != 0 && n != 0 => runs.push((o, n)),
                    (Some(_), Some(_)) => {}
                    _ => break,
                }
            }
            extended = buf[504] != 0;
        }
        runs.into_iter()
            .map(|(o, n)| match (u64::try_from(o), u64::try_from(n)) {
                (Ok(o), Ok(n)) => Ok((o, n)),
                _ => Err(HeaderError::Invalid("invalid header")),
            })
            .collect()
    }

    /// `TarInfo.fromtarfile` with `_proc_member`, without recursion: extended headers are
    /// collected and applied innermost first, as Python's recursive calls do.
    fn read_member_header(&mut self) -> Result<Member, HeaderError> {
        let mut overrides: Vec<Override> = Vec::new();
        loop {
            let header = self.read_block_header();
            let mut m = match header {
                Ok(m) => m,
                // an error after an extended header is a SubsequentHeaderError: fatal
                Err(HeaderError::Empty | HeaderError::Truncated) if !overrides.is_empty() => {
                    return Err(HeaderError::Fatal(TarError("truncated header".into())))
                }
                Err(HeaderError::Eof) if !overrides.is_empty() => {
                    return Err(HeaderError::Fatal(TarError("end of file header".into())))
                }
                Err(HeaderError::Invalid(s)) if !overrides.is_empty() => {
                    return Err(HeaderError::Fatal(TarError(s.into())))
                }
                Err(e) => return Err(e),
            };
            match m.typeflag {
                b'L' | b'K' | b'x' | b'g' | b'X' => {
                    if overrides.len() >= MAX_CHAIN {
                        return Err(HeaderError::Fatal(TarError(
                            "too many extended headers before one member".into(),
                        )));
                    }
                    let data = self.read_extended(m.size)?;
                    match m.typeflag {
                        b'L' => overrides.push(Override::LongName(nts(&data))),
                        b'K' => overrides.push(Override::LongLink(nts(&data))),
                        b'g' => {
                            let mut g = std::mem::take(&mut self.global);
                            let r = parse_pax(&data, &mut g);
                            self.global = g;
                            r.map_err(|_| HeaderError::Fatal(TarError("invalid header".into())))?;
                        }
                        _ => {
                            let mut local = self.global.clone();
                            parse_pax(&data, &mut local).map_err(|_| {
                                HeaderError::Fatal(TarError("invalid header".into()))
                            })?;
                            overrides.push(Override::Pax(local));
                        }
                    }
                    continue;
                }
                _ => {}
            }
            // _proc_builtin
            let data_start = self.pos;
            if m.typeflag != b'S' {
                m.stored = u64::try_from(m.size).unwrap_or(0);
            }
            apply_pax(&mut m, &self.global.clone())?;
            m.pax = self.global.clone();
            if m.typeflag == b'5' {
                while m.name.last() == Some(&b'/') {
                    m.name.pop();
                }
            }
            let mut sparse_v1 = false;
            for o in overrides.into_iter().rev() {
                match o {
                    Override::LongName(n) => {
                        m.name = n;
                        if m.typeflag == b'5' && m.name.last() == Some(&b'/') {
                            m.name.pop();
                        }
                    }
                    Override::LongLink(l) => m.linkname = l,
                    Override::Pax(h) => {
                        apply_pax(&mut m, &h)?;
                        sparse_v1 = pax_sparse(&mut m, &h)?;
                        if h.iter().any(|(k, _)| k == b"size") && m.typeflag != b'S' {
                            m.stored = u64::try_from(m.size).unwrap_or(0);
                        }
                        for (k, v) in h {
                            set_pax(&mut m.pax, k, v);
                        }
                    }
                }
            }
            if sparse_v1 {
                self.remaining = m.stored;
                m.sparse = Some(self.sparse_map_v1()?);
                self.next_offset = data_start + block(m.stored);
                return Ok(m);
            }
            if m.size < 0 {
                return Err(HeaderError::Fatal(TarError(format!(
                    "{}: negative member size",
                    String::from_utf8_lossy(&m.name)
                ))));
            }
            self.next_offset = data_start;
            self.remaining = 0;
            if is_regular_type(m.typeflag) || !is_supported_type(m.typeflag) {
                self.next_offset = data_start + block(m.stored);
                self.remaining = m.stored;
            }
            return Ok(m);
        }
    }

    /// The next member (`TarFile.next`), or `None` at the end of the archive.
    pub fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.sparse = None;
        if self.pos < self.next_offset {
            let gap = self.next_offset - self.pos;
            if !self.skip(gap)? {
                return Err(TarError("unexpected end of data".into()));
            }
        }
        loop {
            let at_start = self.pos == 0;
            let start = self.pos;
            match self.read_member_header() {
                Ok(m) => {
                    if let Some(runs) = &m.sparse {
                        self.sparse = Some(SparseState {
                            runs: runs.clone(),
                            at: 0,
                            size: u64::try_from(m.size).unwrap_or(0),
                        });
                    }
                    return Ok(Some(m));
                }
                Err(HeaderError::Fatal(e)) => return Err(e),
                Err(HeaderError::Eof | HeaderError::Invalid(_)) if self.ignore_zeros => {
                    // tarfile moves on by one block from where the header started
                    self.next_offset = start + BLOCKSIZE;
                    if self.pos < self.next_offset && !self.skip(self.next_offset - self.pos)? {
                        self.done = true;
                        return Ok(None);
                    }
                }
                Err(HeaderError::Invalid(s)) if at_start => return Err(TarError(s.into())),
                Err(HeaderError::Empty) if at_start => return Err(TarError("empty file".into())),
                Err(HeaderError::Truncated) if at_start => {
                    return Err(TarError("truncated header".into()))
                }
                Err(_) => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads the current member's content (expanded, for sparse members).
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if let Some(mut sp) = self.sparse.take() {
            let r = self.read_sparse(&mut sp, buf);
            self.sparse = Some(sp);
            return r;
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        let got = self.read_full(&mut buf[..want])?;
        if got == 0 {
            return Err(TarError("unexpected end of data".into()));
        }
        self.remaining -= got as u64;
        Ok(got)
    }

    fn read_sparse(&mut self, sp: &mut SparseState, buf: &mut [u8]) -> Result<usize, TarError> {
        if sp.at >= sp.size || buf.is_empty() {
            return Ok(0);
        }
        let room = (buf.len() as u64).min(sp.size - sp.at);
        // the run containing or following `at`
        let run = sp
            .runs
            .iter()
            .find(|(o, n)| o.saturating_add(*n) > sp.at)
            .copied();
        let n = match run {
            Some((o, len)) if o <= sp.at => {
                let take = room.min(o + len - sp.at) as usize;
                let want = (take as u64).min(self.remaining) as usize;
                let got = if want == 0 {
                    0
                } else {
                    self.read_full(&mut buf[..want])?
                };
                if got == 0 {
                    return Err(TarError("unexpected end of data".into()));
                }
                self.remaining -= got as u64;
                got
            }
            Some((o, _)) => {
                let take = room.min(o - sp.at) as usize;
                buf[..take].fill(0);
                take
            }
            None => {
                let take = room as usize;
                buf[..take].fill(0);
                take
            }
        };
        sp.at += n as u64;
        Ok(n)
    }
}

/// The current member's content as a [`Read`]; stream errors become `io::Error`s.
pub struct MemberData<'r, R: Read>(pub &'r mut TarReader<R>);

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read_data(buf)
            .map_err(|e| std::io::Error::other(e.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_python_nti() {
        assert_eq!(nti(b"0000644\0"), Some(0o644));
        assert_eq!(nti(b"  644 \0\0"), Some(0o644));
        assert_eq!(nti(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(nti(b"0000x44\0"), None);
        assert_eq!(nti(&[0o377; 8]), Some(-1));
        assert_eq!(nti(&[0o200, 0, 0, 0, 0, 0, 1, 0]), Some(256));
    }

    #[test]
    fn pax_records() {
        let mut h = Vec::new();
        assert!(parse_pax(b"20 path=a/b/c/d/e/f\n12 uid=1000\n", &mut h).is_ok());
        assert_eq!(h[0], (b"path".to_vec(), b"a/b/c/d/e/f".to_vec()));
        assert_eq!(h[1], (b"uid".to_vec(), b"1000".to_vec()));
        assert!(parse_pax(b"0 path=x\n", &mut h).is_err());
    }

    use crate::commands::export_tar::{gnu_header, TarHeader};

    /// (name, content, member) of each member read.
    type Read3 = Vec<(Vec<u8>, Vec<u8>, Member)>;

    fn header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
        gnu_header(&TarHeader {
            name: name.to_vec(),
            mode: 0o644,
            size,
            mtime: 1_000,
            typeflag,
            ..TarHeader::default()
        })
    }

    fn member(out: &mut Vec<u8>, name: &[u8], data: &[u8]) {
        out.extend(header(name, b'0', data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn pax(out: &mut Vec<u8>, kind: u8, records: &[(&str, &str)]) {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            body.extend(format!("{len}{rest}").into_bytes());
        }
        out.extend(header(b"././@PaxHeader", kind, body.len() as u64));
        out.extend_from_slice(&body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn read_all(data: &[u8], ignore_zeros: bool) -> Result<Read3, TarError> {
        let mut r = TarReader::new(data, ignore_zeros);
        let mut out = Vec::new();
        while let Some(m) = r.next_member()? {
            let mut content = Vec::new();
            MemberData(&mut r)
                .read_to_end(&mut content)
                .map_err(|e| TarError(e.to_string()))?;
            out.push((m.name.clone(), content, m));
        }
        Ok(out)
    }

    #[test]
    fn zero_blocks_end_the_archive_unless_ignore_zeros() {
        let mut t = Vec::new();
        member(&mut t, b"a", b"first");
        t.extend([0u8; 1024]);
        member(&mut t, b"b", b"second");
        t.extend([0u8; 1024]);
        let names =
            |v: Vec<(Vec<u8>, Vec<u8>, Member)>| v.into_iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(names(read_all(&t, false).unwrap()), vec![b"a".to_vec()]);
        assert_eq!(
            names(read_all(&t, true).unwrap()),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn long_names_pax_records_and_global_headers() {
        let long = vec![b'n'; 300];
        let mut t = Vec::new();
        member(&mut t, &long, b"x");
        pax(&mut t, b'g', &[("uname", "globaluser")]);
        pax(
            &mut t,
            b'x',
            &[
                ("path", "pax/name/"),
                ("mtime", "1600000000.5"),
                ("uid", "4242"),
            ],
        );
        member(&mut t, b"short", b"yy");
        member(&mut t, b"later", b"");
        let v = read_all(&t, false).unwrap();
        assert_eq!(v[0].0, long);
        assert_eq!(v[0].1, b"x");
        assert_eq!(v[1].0, b"pax/name");
        assert_eq!(v[1].1, b"yy");
        assert_eq!(v[1].2.uid, 4242);
        assert_eq!(v[1].2.mtime.safe_ns(), 1_600_000_000_500_000_000);
        assert_eq!(v[1].2.uname, b"globaluser");
        assert_eq!(
            v[1].2.pax,
            vec![
                (b"uname".to_vec(), b"globaluser".to_vec()),
                (b"path".to_vec(), b"pax/name/".to_vec()),
                (b"mtime".to_vec(), b"1600000000.5".to_vec()),
                (b"uid".to_vec(), b"4242".to_vec()),
            ]
        );
        assert_eq!(
            v[2].2.pax,
            vec![(b"uname".to_vec(), b"globaluser".to_vec())]
        );
        // global headers stay in force, local ones do not
        assert_eq!(v[2].2.uname, b"globaluser");
        assert_eq!(v[2].2.uid, 0);
        assert_eq!(v[2].2.mtime, Mtime::Int(1000));
    }

    #[test]
    fn truncated_data_and_bad_first_header_are_errors() {
        let mut t = Vec::new();
        member(&mut t, b"a", &[5u8; 3000]);
        let cut = &t[..512 + 1000];
        assert!(read_all(cut, false)
            .unwrap_err()
            .0
            .contains("unexpected end of data"));
        assert_eq!(read_all(b"", false).unwrap_err().0, "empty file");
        assert_eq!(
            read_all(&[b'x'; 512], false).unwrap_err().0,
            "invalid header"
        );
        // a bad header after good members ends the archive quietly, as tarfile does
        let mut t2 = Vec::new();
        member(&mut t2, b"a", b"1");
        t2.extend([b'x'; 512]);
        assert_eq!(read_all(&t2, false).unwrap().len(), 1);
        // an extended header followed by garbage is always an error
        let mut t3 = Vec::new();
        member(&mut t3, b"a", b"1");
        pax(&mut t3, b'x', &[("path", "p")]);
        t3.extend([b'x'; 512]);
        assert!(read_all(&t3, false).is_err());
    }

    #[test]
    fn v7_directories_and_unknown_types() {
        let mut t = Vec::new();
        t.extend(header(b"olddir/", 0, 0));
        // an unknown type's data is skipped like a file's
        t.extend(header(b"weird", b'V', 600));
        t.extend([9u8; 1024]);
        member(&mut t, b"after", b"ok");
        let v = read_all(&t, false).unwrap();
        assert_eq!((v[0].0.as_slice(), v[0].2.typeflag), (&b"olddir"[..], b'5'));
        assert_eq!(v[1].2.typeflag, b'V');
        assert_eq!(
            (v[2].0.as_slice(), v[2].1.as_slice()),
            (&b"after"[..], &b"ok"[..])
        );
    }

    #[test]
    fn old_gnu_sparse_members_are_expanded() {
        // GNU tar --format=gnu --sparse: two runs of data in a 3 MiB file
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sp");
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::File::create(&f).unwrap();
            file.write_all(&[1u8; 4096]).unwrap();
            file.seek(SeekFrom::Start(2 * 1024 * 1024)).unwrap();
            file.write_all(&[2u8; 4096]).unwrap();
            file.set_len(3 * 1024 * 1024).unwrap();
        }
        let st = std::process::Command::new("tar")
            .current_dir(dir.path())
            .args(["--format=gnu", "--sparse", "-cf", "sp.tar", "sp"])
            .status();
        if !st.map(|s| s.success()).unwrap_or(false) {
            return; // no GNU tar here
        }
        let data = std::fs::read(dir.path().join("sp.tar")).unwrap();
        let v = read_all(&data, false).unwrap();
        assert_eq!(v[0].2.typeflag, b'S');
        assert_eq!(v[0].1, std::fs::read(&f).unwrap());
    }

    #[test]
    fn pax_gnu_sparse_members_are_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sp");
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::File::create(&f).unwrap();
            file.write_all(&[3u8; 5000]).unwrap();
            file.seek(SeekFrom::Start(1024 * 1024)).unwrap();
            file.write_all(&[4u8; 100]).unwrap();
            file.set_len(2 * 1024 * 1024).unwrap();
        }
        for version in ["1.0", "0.1"] {
            let st = std::process::Command::new("tar")
                .current_dir(dir.path())
                .args([
                    "--format=pax",
                    "--sparse",
                    "--sparse-version",
                    version,
                    "-cf",
                    "sp.tar",
                    "sp",
                ])
                .status();
            if !st.map(|s| s.success()).unwrap_or(false) {
                return; // no GNU tar here
            }
            let data = std::fs::read(dir.path().join("sp.tar")).unwrap();
            let v = read_all(&data, false).unwrap();
            assert_eq!(v[0].0, b"sp", "{version}");
            assert_eq!(v[0].1, std::fs::read(&f).unwrap(), "{version}");
        }
    }

    #[test]
    fn mtime_clamped_like_safe_ns() {
        assert_eq!(Mtime::Int(-5).safe_ns(), 0);
        assert_eq!(Mtime::Int(10).safe_ns(), 10_000_000_000);
        assert_eq!(Mtime::Float(1.5).safe_ns(), 1_500_000_000);
        assert_eq!(Mtime::Int(1 << 40).safe_ns(), 2_147_310_847_000_000_000);
    }
}
