//! `list`: the archives of a repository (borg's `ArchiveFormatter` data) and the items of an
//! archive (borg's `ItemFormatter` data). Nothing here prints: the caller gets the values of the
//! format keys it asks for and renders them.

use std::collections::{HashMap, HashSet};

use chrono::{Local, NaiveDateTime, TimeZone};

use crate::archive::item::{filemode, Item};
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::{KeyedRepository, Operation};
use crate::cache::{Cache, CacheOptions};
use crate::location::Location;
use crate::msgpack::Value;

use super::common::{self, CommandError, LockSpec, Opened, Result};
use super::select::{self, ArchiveInfo, Selection};

/// A value of a format key, typed like the Python object borg formats.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A `str`.
    Str(String),
    /// A `bytes` object (formats as its Python repr, `b'...'`).
    Bytes(Vec<u8>),
    /// An `int`.
    Int(i64),
    /// A `bool` (JSON only).
    Bool(bool),
    /// A local time (borg's `OutputTimestamp`): `Mon, 2023-01-01 12:00:00` by default, a
    /// strftime spec otherwise, ISO in JSON.
    Time(NaiveDateTime),
    /// A list of strings (JSON `command_line`).
    List(Vec<String>),
    /// Any JSON value (chunker params).
    Json(serde_json::Value),
    /// A float (JSON `duration`, `max_archive_size`).
    Float(f64),
}

impl Field {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Field::Str(s) => json!(s),
            Field::Bytes(b) => json!(String::from_utf8_lossy(b)),
            Field::Int(i) => json!(i),
            Field::Bool(b) => json!(b),
            Field::Time(t) => json!(iso_time(t)),
            Field::List(l) => json!(l),
            Field::Json(v) => v.clone(),
            Field::Float(f) => json!(f),
        }
    }
}

/// `%Y-%m-%dT%H:%M:%S.%f` of a local time.
pub fn iso_time(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// borg's `remove_surrogates(bytes.decode('utf-8', 'surrogateescape'))`: undecodable bytes
/// become `?`.
pub fn remove_surrogates(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('?');
        }
    }
    out
}

/// borg's `to_localtime` of a UTC archive timestamp: local wall time, microseconds dropped.
pub fn archive_local_time(utc: &str) -> NaiveDateTime {
    let t = crate::archive::manifest::parse_timestamp(utc).unwrap_or_default();
    Local
        .timestamp_opt(t.timestamp(), 0)
        .single()
        .map(|d| d.naive_local())
        .unwrap_or_else(|| t.naive_utc())
}

/// Python's `datetime.fromtimestamp(ns / 1e9)` (local time, microseconds rounded half-even
/// from the float), as borg's `safe_timestamp`.
pub fn item_local_time(ns: i64) -> NaiveDateTime {
    let t = ns as f64 / 1e9;
    let mut secs = t.trunc();
    let mut us = ((t - secs) * 1e6).round_ties_even();
    if us >= 1e6 {
        secs += 1.0;
        us -= 1e6;
    } else if us < 0.0 {
        secs -= 1.0;
        us += 1e6;
    }
    let secs = secs as i64;
    let base = Local
        .timestamp_opt(secs, 0)
        .single()
        .map(|d| d.naive_local())
        .or_else(|| chrono::DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()))
        .unwrap_or_default();
    base + chrono::Duration::microseconds(us as i64)
}

/// How `list` opens the repository (shared lock, READ features).
pub fn open(
    loc: &Location,
    lock: LockSpec,
    confirm: crate::security::Confirm<'_>,
) -> Result<Opened> {
    let access = lock.shared();
    common::open_with_manifest(loc, &access, &[Operation::Read], confirm)
}

/// The archives `list REPO` shows.
pub fn list_archives(opened: &Opened, sel: &Selection) -> Vec<ArchiveInfo> {
    select::select_archives(&opened.manifest, sel)
}

/// borg's `Archive.DoesNotExist`.
pub fn does_not_exist(name: &[u8]) -> CommandError {
    CommandError::with_id(
        format!("Archive {} does not exist", remove_surrogates(name)),
        "Archive.DoesNotExist",
    )
}

/// Looks an archive up and loads its metadata (TAM checked).
pub fn load_archive(opened: &mut Opened, name: &[u8]) -> Result<(ArchiveInfo, ArchiveMeta)> {
    let info = select::find_archive(&opened.manifest, name).ok_or_else(|| does_not_exist(name))?;
    let meta = ArchiveMeta::load(&mut opened.store, &info.id)?;
    Ok((info, meta))
}

/// The archive keys that need the archive metadata loaded (borg's `call_keys`).
pub const ARCHIVE_META_KEYS: [&str; 6] = [
    "hostname",
    "username",
    "comment",
    "bcomment",
    "end",
    "command_line",
];

/// Every archive key `list --format` knows (besides the fixed ones).
pub const ARCHIVE_KEYS: [&str; 12] = [
    "archive",
    "name",
    "barchive",
    "comment",
    "bcomment",
    "id",
    "start",
    "time",
    "end",
    "command_line",
    "hostname",
    "username",
];

/// The values of the archive keys for one archive: always `name`, `archive`, `barchive`,
/// `id`, `time`, `start`; the metadata keys only if listed in `wanted` (loading the archive).
pub fn archive_fields(
    opened: &mut Opened,
    info: &ArchiveInfo,
    wanted: &HashSet<String>,
    json: bool,
) -> Result<Vec<(&'static str, Field)>> {
    let name = remove_surrogates(&info.name);
    let start = archive_local_time(&info.time);
    let mut out = vec![
        ("name", Field::Str(name.clone())),
        ("archive", Field::Str(name.clone())),
        ("barchive", Field::Str(name)),
        ("id", Field::Str(hex::encode(info.id))),
        ("time", Field::Time(start)),
        ("start", Field::Time(start)),
    ];
    if ARCHIVE_META_KEYS.iter().any(|k| wanted.contains(*k)) {
        let meta = ArchiveMeta::load(&mut opened.store, &info.id)?;
        for key in ARCHIVE_META_KEYS {
            if !wanted.contains(key) {
                continue;
            }
            let text = |v: &Option<Vec<u8>>| remove_surrogates(v.as_deref().unwrap_or_default());
            let value = match key {
                "hostname" => Field::Str(text(&meta.hostname)),
                "username" => Field::Str(text(&meta.username)),
                "comment" | "bcomment" => Field::Str(remove_surrogates(&meta.comment)),
                "end" => Field::Time(archive_local_time(
                    meta.time_end.as_deref().unwrap_or(&meta.time),
                )),
                _ => {
                    let args: Vec<String> =
                        meta.cmdline.iter().map(|a| remove_surrogates(a)).collect();
                    if json {
                        Field::List(args)
                    } else {
                        Field::Str(
                            args.iter()
                                .map(|a| shlex_quote(a))
                                .collect::<Vec<_>>()
                                .join(" "),
                        )
                    }
                }
            };
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Python's `shlex.quote`.
pub fn shlex_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Hash algorithms `list --format` offers over a file's content.
pub const HASH_KEYS: [&str; 13] = [
    "blake2b", "blake2s", "md5", "sha1", "sha224", "sha256", "sha384", "sha3_224", "sha3_256",
    "sha3_384", "sha3_512", "sha512", "xxh64",
];

/// Item keys computed per item on demand (borg's `ItemFormatter.call_keys`, plus hashes).
pub const ITEM_CALL_KEYS: [&str; 12] = [
    "size",
    "csize",
    "dsize",
    "dcsize",
    "num_chunks",
    "unique_chunks",
    "isomtime",
    "isoctime",
    "isoatime",
    "mtime",
    "ctime",
    "atime",
];

/// Item keys that need the chunk index.
pub const KEYS_REQUIRING_CACHE: [&str; 3] = ["dsize", "dcsize", "unique_chunks"];

/// Options of `list REPO::ARCHIVE`.
#[derive(Debug, Clone, Default)]
pub struct ItemListOptions {
    /// The format keys used (decides what is computed).
    pub wanted: HashSet<String>,
    /// `--json-lines`.
    pub json_lines: bool,
    /// `--consider-part-files`.
    pub consider_part_files: bool,
    /// The path-index keys of the PATH selection, when it may use the index
    /// ([`super::path_index::index_keys`]).
    pub index_keys: Option<Vec<String>>,
}

/// Computes item format values for one archive.
pub struct ItemFormatter {
    archive_name: String,
    archive_id: String,
    opts: ItemListOptions,
    refcounts: Option<HashMap<[u8; 32], u32>>,
}

impl ItemFormatter {
    /// The static and per-item values of `item` for the keys of `opts.wanted`.
    pub fn fields(
        &self,
        store: &mut KeyedRepository,
        item: &Item,
    ) -> Result<Vec<(&'static str, Field)>> {
        let mut mode = filemode(item.mode);
        let item_type = mode.chars().next().unwrap_or('-');
        let source = item
            .source
            .as_deref()
            .map(remove_surrogates)
            .unwrap_or_default();
        let mut extra = String::new();
        if !source.is_empty() {
            if item_type == 'l' {
                extra = format!(" -> {source}");
            } else {
                mode.replace_range(0..1, "h");
                extra = format!(" link to {source}");
            }
        }
        let mut out: Vec<(&'static str, Field)> = Vec::with_capacity(20);
        // with --json-lines only when the format asks for them (borg 1.4.5, issue #9095)
        let json_lines = self.opts.json_lines;
        if !json_lines || self.opts.wanted.contains("archivename") {
            out.push(("archivename", Field::Str(self.archive_name.clone())));
        }
        if !json_lines || self.opts.wanted.contains("archiveid") {
            out.push(("archiveid", Field::Str(self.archive_id.clone())));
        }
        out.push(("type", Field::Str(item_type.to_string())));
        out.push(("mode", Field::Str(mode)));
        let user = match item.user.as_deref() {
            Some(u) if !u.is_empty() => Field::Str(remove_surrogates(u)),
            _ => Field::Int(item.uid as i64),
        };
        let group = match item.group.as_deref() {
            Some(g) if !g.is_empty() => Field::Str(remove_surrogates(g)),
            _ => Field::Int(item.gid as i64),
        };
        out.push(("user", user));
        out.push(("group", group));
        out.push(("uid", Field::Int(item.uid as i64)));
        out.push(("gid", Field::Int(item.gid as i64)));
        out.push(("path", Field::Str(remove_surrogates(&item.path))));
        if self.opts.json_lines {
            out.push(("healthy", Field::Bool(item.chunks_healthy.is_none())));
        } else {
            out.push(("bpath", Field::Bytes(item.path.clone())));
            out.push(("extra", Field::Str(extra)));
            let health = if item.chunks_healthy.is_some() {
                "broken"
            } else {
                "healthy"
            };
            out.push(("health", Field::Str(health.into())));
        }
        out.push(("source", Field::Str(source.clone())));
        out.push(("linktarget", Field::Str(source)));
        out.push(("flags", Field::Int(item.bsdflags.unwrap_or(0) as i64)));
        for key in ITEM_CALL_KEYS {
            if self.opts.wanted.contains(key) {
                out.push((key, self.call_key(key, item)));
            }
        }
        for key in HASH_KEYS {
            if self.opts.wanted.contains(key) {
                out.push((key, Field::Str(hash_item(store, key, item)?)));
            }
        }
        Ok(out)
    }

    fn call_key(&self, key: &str, item: &Item) -> Field {
        let chunks = item.chunks.as_deref().unwrap_or_default();
        let time = |k: &str| {
            let ns = match k {
                "ctime" => item.ctime,
                "atime" => item.atime,
                _ => None,
            }
            .filter(|v| *v != 0)
            .unwrap_or(item.mtime);
            item_local_time(ns)
        };
        let unique = |f: &dyn Fn(&crate::archive::item::ChunkRef) -> i64| -> i64 {
            let Some(index) = &self.refcounts else {
                return 0;
            };
            let mut counter: HashMap<[u8; 32], u32> = HashMap::new();
            for c in chunks {
                *counter.entry(c.id).or_default() += 1;
            }
            chunks
                .iter()
                .filter(|c| index.get(&c.id).copied().unwrap_or(0) == counter[&c.id])
                .map(f)
                .sum()
        };
        match key {
            "size" => Field::Int(item.reported_size() as i64),
            "csize" => Field::Int(if item.is_symlink() {
                item.source.as_ref().map_or(0, |s| s.len() as i64)
            } else {
                chunks.iter().map(|c| c.csize as i64).sum()
            }),
            "dsize" => Field::Int(unique(&|c| c.size as i64)),
            "dcsize" => Field::Int(unique(&|c| c.csize as i64)),
            "unique_chunks" => Field::Int(unique(&|_| 1)),
            "num_chunks" => Field::Int(chunks.len() as i64),
            "isomtime" => Field::Str(iso_time(&time("mtime"))),
            "isoctime" => Field::Str(iso_time(&time("ctime"))),
            "isoatime" => Field::Str(iso_time(&time("atime"))),
            other => Field::Time(time(other)),
        }
    }
}

fn hash_item(store: &mut KeyedRepository, algo: &str, item: &Item) -> Result<String> {
    use blake2::Digest;
    let Some(chunks) = &item.chunks else {
        return Ok(String::new());
    };
    enum H {
        B2b(Box<blake2::Blake2b512>),
        B2s(blake2::Blake2s256),
        S224(sha2::Sha224),
        S256(sha2::Sha256),
        S384(sha2::Sha384),
        S512(sha2::Sha512),
        X(xxhash_rust::xxh64::Xxh64),
        Buf(Vec<u8>),
    }
    let mut h = match algo {
        "blake2b" => H::B2b(Box::default()),
        "blake2s" => H::B2s(Default::default()),
        "sha224" => H::S224(Default::default()),
        "sha256" => H::S256(Default::default()),
        "sha384" => H::S384(Default::default()),
        "sha512" => H::S512(Default::default()),
        "xxh64" => H::X(xxhash_rust::xxh64::Xxh64::new(0)),
        "md5" | "sha1" | "sha3_224" | "sha3_256" | "sha3_384" | "sha3_512" => H::Buf(Vec::new()),
        other => {
            return Err(CommandError::new(format!(
                "hash algorithm {other} is not supported by hoard"
            )))
        }
    };
    for c in chunks {
        let data = store.get(&c.id, Some(c.size as usize))?;
        match &mut h {
            H::B2b(x) => x.update(&data),
            H::B2s(x) => x.update(&data),
            H::S224(x) => x.update(&data),
            H::S256(x) => x.update(&data),
            H::S384(x) => x.update(&data),
            H::S512(x) => x.update(&data),
            H::X(x) => x.update(&data),
            H::Buf(b) => b.extend_from_slice(&data),
        }
    }
    Ok(match h {
        H::B2b(x) => hex::encode(x.finalize()),
        H::B2s(x) => hex::encode(x.finalize()),
        H::S224(x) => hex::encode(x.finalize()),
        H::S256(x) => hex::encode(x.finalize()),
        H::S384(x) => hex::encode(x.finalize()),
        H::S512(x) => hex::encode(x.finalize()),
        H::X(x) => format!("{:016x}", x.digest()),
        H::Buf(b) => hex::encode(match algo {
            "md5" => md5(&b).to_vec(),
            "sha1" => sha1(&b).to_vec(),
            "sha3_224" => sha3(&b, 28),
            "sha3_256" => sha3(&b, 32),
            "sha3_384" => sha3(&b, 48),
            _ => sha3(&b, 64),
        }),
    })
}

/// MD5 (RFC 1321), for the `md5` format key.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut h: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in msg.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f2.rotate_left(S[i]));
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// SHA-1 (FIPS 180-4), for the `sha1` format key.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A827999),
                1 => (b ^ c ^ d, 0x6ED9EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6u32),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// SHA3 (FIPS 202) with an output of `out_len` bytes, for the `sha3_*` format keys.
fn sha3(data: &[u8], out_len: usize) -> Vec<u8> {
    const RC: [u64; 24] = [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808A,
        0x8000000080008000,
        0x000000000000808B,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008A,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000A,
        0x000000008000808B,
        0x800000000000008B,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800A,
        0x800000008000000A,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ];
    const ROT: [u32; 25] = [
        0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56,
        14,
    ];
    fn keccak_f(a: &mut [u64; 25]) {
        for rc in RC {
            let mut c = [0u64; 5];
            for x in 0..5 {
                c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
            }
            for x in 0..5 {
                let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotate_left(1);
                for y in 0..5 {
                    a[x + 5 * y] ^= d;
                }
            }
            let mut b = [0u64; 25];
            for x in 0..5 {
                for y in 0..5 {
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = a[x + 5 * y].rotate_left(ROT[x + 5 * y]);
                }
            }
            for x in 0..5 {
                for y in 0..5 {
                    a[x + 5 * y] =
                        b[x + 5 * y] ^ (!b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
                }
            }
            a[0] ^= rc;
        }
    }
    let rate = 200 - 2 * out_len;
    let mut msg = data.to_vec();
    msg.push(0x06);
    while !msg.len().is_multiple_of(rate) {
        msg.push(0);
    }
    if let Some(last) = msg.last_mut() {
        *last |= 0x80;
    }
    let mut st = [0u64; 25];
    for block in msg.chunks_exact(rate) {
        for (i, w) in block.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            st[i] ^= u64::from_le_bytes(b);
        }
        keccak_f(&mut st);
    }
    st.iter()
        .flat_map(|w| w.to_le_bytes())
        .take(out_len)
        .collect()
}

/// Lists the items of archive `name`: `filter` decides which paths are shown, `emit` gets
/// each shown item's format values (in borg's key order) and returns false to stop.
pub fn list_items(
    opened: &mut Opened,
    name: &[u8],
    opts: ItemListOptions,
    filter: &mut dyn FnMut(&Item) -> bool,
    emit: &mut dyn FnMut(Vec<(&'static str, Field)>) -> Result<bool>,
    lock_wait: f64,
) -> Result<()> {
    let (info, meta) = load_archive(opened, name)?;
    let refcounts = if KEYS_REQUIRING_CACHE
        .iter()
        .any(|k| opts.wanted.contains(*k))
    {
        let cache = Cache::open(
            &mut opened.store,
            &opened.manifest,
            CacheOptions {
                lock_wait,
                ..CacheOptions::default()
            },
        )?;
        let mut map = HashMap::new();
        for_each_chunk_id(&mut opened.store, &meta, &mut |id| {
            if let Some(e) = cache.seen_chunk(id) {
                map.insert(*id, e.refcount);
            }
        })?;
        Some(map)
    } else {
        None
    };
    let consider_part_files = opts.consider_part_files;
    let formatter = ItemFormatter {
        archive_name: remove_surrogates(&info.name),
        archive_id: hex::encode(info.id),
        opts,
        refcounts,
    };
    let repo_id = opened.store.repo.id();
    let mut plan = super::path_index::IndexedRead::new(
        &repo_id,
        &opened.manifest,
        info.id,
        formatter.opts.index_keys.as_deref(),
    );
    let runs = super::path_index::plan_runs(&mut plan, &meta, false);
    // Items are read first (the item-stream iterator holds the store), then formatted.
    let mut items = super::path_index::IndexedRead::items(&mut opened.store, &meta, runs);
    let mut batch: Vec<Item> = Vec::new();
    loop {
        let next = items.next_item()?;
        let done = next.is_none();
        if let Some(item) = next {
            if let Some(p) = plan.as_mut() {
                p.observe(&items, &item);
            }
            if (consider_part_files || item.part.is_none()) && filter(&item) {
                batch.push(item);
            }
        } else if let Some(p) = plan.as_mut() {
            p.finish();
        }
        if done || batch.len() >= 256 {
            for item in batch.drain(..) {
                let fields = formatter.fields(items.store(), &item)?;
                if !emit(fields)? {
                    return Ok(());
                }
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// Calls `f` for every content chunk id of every item of the archive.
fn for_each_chunk_id(
    store: &mut KeyedRepository,
    meta: &ArchiveMeta,
    f: &mut dyn FnMut(&[u8; 32]),
) -> Result<()> {
    let mut items = Items::new(store, meta);
    while let Some(item) = items.next_item()? {
        for c in item.chunks.iter().flatten() {
            f(&c.id);
        }
    }
    Ok(())
}

/// The chunker params as JSON (a list, like borg's tuple), or `""` when absent.
pub fn chunker_params_json(v: Option<&Value>) -> serde_json::Value {
    fn conv(v: &Value) -> serde_json::Value {
        match v {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::json!(b),
            Value::Int(i) => serde_json::json!(*i as i64),
            Value::Float(f) => serde_json::json!(f),
            Value::Raw(b) | Value::Bin(b) => serde_json::json!(remove_surrogates(b)),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(conv).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (remove_surrogates(k.as_bytes().unwrap_or_default()), conv(v)))
                    .collect(),
            ),
            Value::Ext(..) => serde_json::Value::Null,
        }
    }
    v.map(conv).unwrap_or_else(|| serde_json::json!(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hashes_match_known_digests() {
        assert_eq!(hex::encode(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex::encode(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha3(b"abc", 32)),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        assert_eq!(
            hex::encode(sha3(b"", 28)),
            "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"
        );
    }

    #[test]
    fn undecodable_bytes_become_question_marks() {
        assert_eq!(remove_surrogates(b"a\xffb"), "a?b");
        assert_eq!(remove_surrogates("äö".as_bytes()), "äö");
    }
}
