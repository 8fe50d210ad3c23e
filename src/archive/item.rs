//! One entry of an archive's item stream (FORMAT.md §7.4): a file, directory, symlink, device,
//! fifo or hardlink, with its metadata and chunk list. Converts to and from borg's msgpack map.

use std::collections::BTreeMap;

use crate::msgpack::{self, Cursor, Token, Value};

/// One chunk reference: `[id, size, csize]` (FORMAT.md §7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// The chunk's id (its key in the repository).
    pub id: [u8; 32],
    /// Plaintext length.
    pub size: u32,
    /// Stored object length (0 if unknown).
    pub csize: u32,
}

/// An item. Fields that borg leaves out are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// `path`: relative, `/`-separated, raw bytes.
    pub path: Vec<u8>,
    /// `mode`: st_mode with the type bits.
    pub mode: u32,
    /// `uid`
    pub uid: u32,
    /// `gid`
    pub gid: u32,
    /// `user`: name, or nil when unknown or with `--numeric-ids`.
    pub user: Option<Vec<u8>>,
    /// `group`: likewise.
    pub group: Option<Vec<u8>>,
    /// `mtime` in ns.
    pub mtime: i64,
    /// `atime` in ns (only with `--atime`).
    pub atime: Option<i64>,
    /// `ctime` in ns (left out with `--noctime`).
    pub ctime: Option<i64>,
    /// `birthtime` in ns.
    pub birthtime: Option<i64>,
    /// `size`: the file length (sum of chunk sizes).
    pub size: Option<u64>,
    /// `chunks`: the content.
    pub chunks: Option<Vec<ChunkRef>>,
    /// `chunks_healthy`: the original list after `check --repair` patched missing chunks.
    pub chunks_healthy: Option<Vec<ChunkRef>>,
    /// `source`: symlink target, or the hardlink master's path for slaves.
    pub source: Option<Vec<u8>>,
    /// `hardlink_master`: true for the first item of a hardlink group.
    pub hardlink_master: Option<bool>,
    /// `rdev` for devices.
    pub rdev: Option<u64>,
    /// `xattrs`: name → value (None = empty value, stored as nil).
    pub xattrs: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// `acl_access`: POSIX.1e text.
    pub acl_access: Option<Vec<u8>>,
    /// `acl_default`: POSIX.1e text.
    pub acl_default: Option<Vec<u8>>,
    /// `acl_extended` (macOS), kept as read.
    pub acl_extended: Option<Vec<u8>>,
    /// `acl_nfs4` (FreeBSD), kept as read.
    pub acl_nfs4: Option<Vec<u8>>,
    /// `bsdflags`
    pub bsdflags: Option<u32>,
    /// `part`: part number of a checkpoint part file.
    pub part: Option<u32>,
}

/// File type bits.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// FIFO.
pub const S_IFIFO: u32 = 0o010000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;

/// Python's `stat.filemode`, as borg's `list` and `diff` show a mode: the type letter
/// (`-dlbcps`, `?` for type bits that are no known file type), then `rwx` three times with
/// set-uid/set-gid/sticky as `s`/`S`/`t`/`T` (lower case when the execute bit is set too).
pub fn filemode(mode: u32) -> String {
    let t = match mode & S_IFMT {
        S_IFREG => '-',
        S_IFDIR => 'd',
        S_IFLNK => 'l',
        S_IFBLK => 'b',
        S_IFCHR => 'c',
        S_IFIFO => 'p',
        S_IFSOCK => 's',
        _ => '?',
    };
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special =
        |x: u32, special: u32, lower: char, upper: char| match (mode & x != 0, mode & special != 0)
        {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        t,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// A value of [`Item::fields`]: a chunk list stays a slice until it is packed.
enum Field<'a> {
    Value(Value),
    Chunks(&'a [ChunkRef]),
}

fn chunk_list_value(list: &[ChunkRef]) -> Value {
    Value::Array(
        list.iter()
            .map(|c| {
                Value::Array(vec![
                    Value::raw(c.id),
                    Value::int(c.size),
                    Value::int(c.csize),
                ])
            })
            .collect(),
    )
}

fn chunk_list_from(v: &Value) -> Result<Vec<ChunkRef>, String> {
    let arr = v.as_array().ok_or("chunks is not a list")?;
    arr.iter()
        .map(|e| {
            let e = e.as_array().ok_or("chunk entry is not a list")?;
            let id = e
                .first()
                .and_then(Value::as_bytes)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("chunk id")?;
            let size = e.get(1).and_then(Value::as_u64).ok_or("chunk size")?;
            let csize = e.get(2).and_then(Value::as_u64).unwrap_or(0);
            Ok(ChunkRef {
                id,
                size: u32::try_from(size).map_err(|_| "chunk size too large")?,
                csize: u32::try_from(csize).unwrap_or(0),
            })
        })
        .collect()
}

/// Reads an integer time; borg 1.0 stored out-of-range times as little-endian signed bytes.
fn time_from(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => i64::try_from(*i).ok(),
        Value::Raw(b) | Value::Bin(b) => time_from_le_bytes(b),
        _ => None,
    }
}

/// A time borg 1.0 stored as little-endian two's complement bytes (at most 16).
fn time_from_le_bytes(b: &[u8]) -> Option<i64> {
    if b.len() > 16 {
        return None;
    }
    // sign-extended to 16 bytes
    let negative = b.last().is_some_and(|last| last & 0x80 != 0);
    let mut bytes = [if negative { 0xff } else { 0 }; 16];
    bytes[..b.len()].copy_from_slice(b);
    i64::try_from(i128::from_le_bytes(bytes)).ok()
}

/// [`time_from`] for a token.
fn time_from_token(t: &Token<'_>) -> Option<i64> {
    match t {
        Token::Int(i) => i64::try_from(*i).ok(),
        Token::Raw(b) | Token::Bin(b) => time_from_le_bytes(b),
        _ => None,
    }
}

/// Reads one value where a scalar is expected: a container is skipped whole and returned as
/// its header, which every `as_*` of [`Token`] rejects, as the `as_*` of [`Value`] reject it.
fn scalar_token<'a>(c: &mut Cursor<'a>) -> Result<Token<'a>, String> {
    let t = c.next().map_err(|e| e.to_string())?;
    c.skip_elements(&t).map_err(|e| e.to_string())?;
    Ok(t)
}

/// [`chunk_list_from`] straight from the bytes at the cursor.
fn chunk_list_decode(c: &mut Cursor<'_>) -> Result<Vec<ChunkRef>, String> {
    let Token::Array(n) = c.next().map_err(|e| e.to_string())? else {
        return Err("chunks is not a list".into());
    };
    // Every entry takes at least one byte: never reserve more than the bytes left.
    let mut list = Vec::with_capacity(n.min(c.remaining()));
    for _ in 0..n {
        let Token::Array(m) = c.next().map_err(|e| e.to_string())? else {
            return Err("chunk entry is not a list".into());
        };
        let (mut id, mut size, mut csize) = (None, None, None);
        for k in 0..m {
            let t = scalar_token(c)?;
            match k {
                0 => id = t.as_bytes().and_then(|b| <[u8; 32]>::try_from(b).ok()),
                1 => size = t.as_u64(),
                2 => csize = t.as_u64(),
                _ => {}
            }
        }
        let id = id.ok_or("chunk id")?;
        let size = size.ok_or("chunk size")?;
        list.push(ChunkRef {
            id,
            size: u32::try_from(size).map_err(|_| "chunk size too large")?,
            csize: u32::try_from(csize.unwrap_or(0)).unwrap_or(0),
        });
    }
    Ok(list)
}

fn opt_bytes(v: Option<&Value>) -> Option<Vec<u8>> {
    v.and_then(Value::as_bytes).map(<[u8]>::to_vec)
}

impl Item {
    /// The file type bits of `mode`.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// True for regular files.
    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// True for symlinks.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// True for a hardlink slave: a non-symlink with `source` and no chunks.
    pub fn is_hardlink_slave(&self) -> bool {
        !self.is_symlink() && self.source.is_some() && self.chunks.is_none()
    }

    /// True when this item may be the master of a hardlink group (a missing key counts).
    pub fn may_be_hardlink_master(&self) -> bool {
        self.hardlink_master.unwrap_or(true)
    }

    /// The size borg reports: `size` for files, `len(source)` for symlinks, else 0.
    pub fn reported_size(&self) -> u64 {
        if self.is_symlink() {
            self.source.as_ref().map_or(0, |s| s.len() as u64)
        } else {
            self.size.unwrap_or_else(|| {
                self.chunks
                    .as_ref()
                    .map_or(0, |c| c.iter().map(|c| c.size as u64).sum())
            })
        }
    }

    /// The msgpack map, keys sorted as borg's StableDict.
    pub fn to_value(&self) -> Value {
        Value::Map(
            self.fields()
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Field::Value(v) => v,
                        Field::Chunks(c) => chunk_list_value(c),
                    };
                    (Value::raw(k), v)
                })
                .collect(),
        )
    }

    /// The item's keys and values in borg's order (sorted by key, as `StableDict` packs
    /// them), with the chunk lists left as they are.
    fn fields(&self) -> Vec<(&'static str, Field<'_>)> {
        let mut m: Vec<(&'static str, Field<'_>)> = Vec::with_capacity(16);
        let mut value = |k, v| m.push((k, Field::Value(v)));
        value("path", Value::raw(&self.path));
        value("mode", Value::int(self.mode));
        value("uid", Value::int(self.uid));
        value("gid", Value::int(self.gid));
        value("user", self.user.as_ref().map_or(Value::Nil, Value::raw));
        value("group", self.group.as_ref().map_or(Value::Nil, Value::raw));
        value("mtime", Value::int(self.mtime));
        let ints = [
            ("atime", self.atime.map(i128::from)),
            ("ctime", self.ctime.map(i128::from)),
            ("birthtime", self.birthtime.map(i128::from)),
            ("size", self.size.map(i128::from)),
            ("rdev", self.rdev.map(i128::from)),
            ("bsdflags", self.bsdflags.map(i128::from)),
            ("part", self.part.map(i128::from)),
        ];
        for (k, v) in ints {
            if let Some(v) = v {
                value(k, Value::Int(v));
            }
        }
        let raws = [
            ("source", &self.source),
            ("acl_access", &self.acl_access),
            ("acl_default", &self.acl_default),
            ("acl_extended", &self.acl_extended),
            ("acl_nfs4", &self.acl_nfs4),
        ];
        for (k, v) in raws {
            if let Some(v) = v {
                value(k, Value::raw(v));
            }
        }
        if let Some(h) = self.hardlink_master {
            value("hardlink_master", Value::Bool(h));
        }
        if let Some(x) = &self.xattrs {
            value(
                "xattrs",
                Value::Map(
                    x.iter()
                        .map(|(k, v)| (Value::raw(k), v.as_ref().map_or(Value::Nil, Value::raw)))
                        .collect(),
                ),
            );
        }
        if let Some(c) = &self.chunks {
            m.push(("chunks", Field::Chunks(c)));
        }
        if let Some(c) = &self.chunks_healthy {
            m.push(("chunks_healthy", Field::Chunks(c)));
        }
        m.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        m
    }

    /// Appends the packed item to `out`: the bytes of [`Item::to_value`] packed, with the
    /// chunk lists written straight from the [`ChunkRef`]s (a file of a million chunks would
    /// otherwise build ~200 MB of [`Value`]s to write 46 MB).
    pub fn pack_into(&self, out: &mut Vec<u8>) {
        let fields = self.fields();
        msgpack::write_map_header(out, fields.len());
        for (k, v) in &fields {
            msgpack::write_raw(out, k.as_bytes());
            match v {
                Field::Value(v) => msgpack::encode(v, out),
                Field::Chunks(list) => {
                    msgpack::write_array_header(out, list.len());
                    for c in *list {
                        msgpack::write_array_header(out, 3);
                        msgpack::write_raw(out, &c.id);
                        msgpack::write_int(out, c.size.into());
                        msgpack::write_int(out, c.csize.into());
                    }
                }
            }
        }
    }

    /// Decodes an item map; unknown keys are ignored.
    pub fn from_value(v: &Value) -> Result<Item, String> {
        let map = v.as_map().ok_or("item is not a map")?;
        let mut it = Item::default();
        let mut have_path = false;
        for (k, val) in map {
            let Some(k) = k.as_bytes() else { continue };
            match k {
                b"path" => {
                    it.path = val.as_bytes().ok_or("path")?.to_vec();
                    have_path = true;
                }
                b"mode" => it.mode = val.as_u64().ok_or("mode")? as u32,
                b"uid" => it.uid = val.as_u64().unwrap_or(0) as u32,
                b"gid" => it.gid = val.as_u64().unwrap_or(0) as u32,
                b"user" => it.user = opt_bytes(Some(val)),
                b"group" => it.group = opt_bytes(Some(val)),
                b"mtime" => it.mtime = time_from(val).ok_or("mtime")?,
                b"atime" => it.atime = time_from(val),
                b"ctime" => it.ctime = time_from(val),
                b"birthtime" => it.birthtime = time_from(val),
                b"size" => it.size = val.as_u64(),
                b"chunks" => it.chunks = Some(chunk_list_from(val)?),
                b"chunks_healthy" => it.chunks_healthy = Some(chunk_list_from(val)?),
                b"source" => it.source = opt_bytes(Some(val)),
                b"hardlink_master" => it.hardlink_master = val.as_bool(),
                b"rdev" => it.rdev = val.as_u64(),
                b"xattrs" => {
                    let xm = val.as_map().ok_or("xattrs")?;
                    it.xattrs = Some(
                        xm.iter()
                            .filter_map(|(k, v)| {
                                Some((k.as_bytes()?.to_vec(), v.as_bytes().map(<[u8]>::to_vec)))
                            })
                            .collect(),
                    );
                }
                b"acl_access" => it.acl_access = opt_bytes(Some(val)),
                b"acl_default" => it.acl_default = opt_bytes(Some(val)),
                b"acl_extended" => it.acl_extended = opt_bytes(Some(val)),
                b"acl_nfs4" => it.acl_nfs4 = opt_bytes(Some(val)),
                b"bsdflags" => it.bsdflags = val.as_u64().map(|f| f as u32),
                b"part" => it.part = val.as_u64().map(|p| p as u32),
                _ => {}
            }
        }
        if !have_path {
            return Err("item without path".into());
        }
        Ok(it)
    }

    /// Decodes an item straight from its encoded map (one complete value, as
    /// [`msgpack::StreamDecoder::next_encoded`] returns it after checking it against
    /// [`msgpack::Limits::ITEM`]): the same item, or the same error, as [`Item::from_value`] of
    /// the decoded value, without building that value. A file of a million chunks costs its
    /// 40-byte [`ChunkRef`]s here, against ~200 bytes each as a [`Value`] tree.
    pub fn decode(bytes: &[u8]) -> Result<Item, String> {
        let mut c = Cursor::new(bytes);
        let Token::Map(n) = c.next().map_err(|e| e.to_string())? else {
            return Err("item is not a map".into());
        };
        let mut it = Item::default();
        let mut have_path = false;
        for _ in 0..n {
            let key = scalar_token(&mut c)?;
            let Some(k) = key.as_bytes() else {
                c.skip().map_err(|e| e.to_string())?;
                continue;
            };
            match k {
                b"chunks" => it.chunks = Some(chunk_list_decode(&mut c)?),
                b"chunks_healthy" => it.chunks_healthy = Some(chunk_list_decode(&mut c)?),
                b"xattrs" => {
                    let Token::Map(m) = c.next().map_err(|e| e.to_string())? else {
                        return Err("xattrs".into());
                    };
                    let mut xattrs = BTreeMap::new();
                    for _ in 0..m {
                        let name = scalar_token(&mut c)?;
                        let value = scalar_token(&mut c)?;
                        if let Some(name) = name.as_bytes() {
                            xattrs.insert(name.to_vec(), value.as_bytes().map(<[u8]>::to_vec));
                        }
                    }
                    it.xattrs = Some(xattrs);
                }
                _ => {
                    let val = scalar_token(&mut c)?;
                    let bytes = || val.as_bytes().map(<[u8]>::to_vec);
                    match k {
                        b"path" => {
                            it.path = bytes().ok_or("path")?;
                            have_path = true;
                        }
                        b"mode" => it.mode = val.as_u64().ok_or("mode")? as u32,
                        b"uid" => it.uid = val.as_u64().unwrap_or(0) as u32,
                        b"gid" => it.gid = val.as_u64().unwrap_or(0) as u32,
                        b"user" => it.user = bytes(),
                        b"group" => it.group = bytes(),
                        b"mtime" => it.mtime = time_from_token(&val).ok_or("mtime")?,
                        b"atime" => it.atime = time_from_token(&val),
                        b"ctime" => it.ctime = time_from_token(&val),
                        b"birthtime" => it.birthtime = time_from_token(&val),
                        b"size" => it.size = val.as_u64(),
                        b"source" => it.source = bytes(),
                        b"hardlink_master" => {
                            it.hardlink_master = match val {
                                Token::Bool(b) => Some(b),
                                _ => None,
                            }
                        }
                        b"rdev" => it.rdev = val.as_u64(),
                        b"acl_access" => it.acl_access = bytes(),
                        b"acl_default" => it.acl_default = bytes(),
                        b"acl_extended" => it.acl_extended = bytes(),
                        b"acl_nfs4" => it.acl_nfs4 = bytes(),
                        b"bsdflags" => it.bsdflags = val.as_u64().map(|f| f as u32),
                        b"part" => it.part = val.as_u64().map(|p| p as u32),
                        _ => {}
                    }
                }
            }
        }
        if !have_path {
            return Err("item without path".into());
        }
        Ok(it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filemode_is_pythons_stat_filemode() {
        // expected texts from Python 3.11's stat.filemode
        for (mode, text) in [
            (0o100644, "-rw-r--r--"),
            (0o40755, "drwxr-xr-x"),
            (0o120777, "lrwxrwxrwx"),
            (0o104755, "-rwsr-xr-x"),
            (0o41777, "drwxrwxrwt"),
            (0o101644, "-rw-r--r-T"),
            (0o102644, "-rw-r-Sr--"),
            (0o10600, "prw-------"),
            (0o60660, "brw-rw----"),
            (0o20620, "crw--w----"),
            (0o140755, "srwxr-xr-x"),
            (0o107777, "-rwsrwsrwt"),
            (0o107000, "---S--S--T"),
            (0o644, "?rw-r--r--"),
            (0o170644, "?rw-r--r--"),
            (0o30644, "?rw-r--r--"),
        ] {
            assert_eq!(filemode(mode), text, "{mode:o}");
        }
    }

    #[test]
    fn item_round_trips_with_every_field() {
        let mut x = BTreeMap::new();
        x.insert(b"user.a".to_vec(), Some(b"v".to_vec()));
        x.insert(b"user.empty".to_vec(), None);
        let it = Item {
            path: b"dir/\xff file".to_vec(),
            mode: S_IFREG | 0o644,
            uid: 1000,
            gid: 100,
            user: Some(b"me".to_vec()),
            group: None,
            mtime: -5,
            atime: Some(1),
            ctime: Some(2),
            birthtime: None,
            size: Some(10),
            chunks: Some(vec![ChunkRef {
                id: [3; 32],
                size: 10,
                csize: 30,
            }]),
            chunks_healthy: None,
            source: None,
            hardlink_master: Some(false),
            rdev: None,
            xattrs: Some(x),
            acl_access: Some(b"user::rw-".to_vec()),
            acl_default: None,
            acl_extended: None,
            acl_nfs4: None,
            bsdflags: Some(1),
            part: None,
        };
        let v = it.to_value();
        let bytes = v.to_bytes();
        let back =
            Item::from_value(&msgpack::decode_all(&bytes, msgpack::Limits::UNLIMITED).unwrap())
                .unwrap();
        assert_eq!(back, it);
        // group nil and the empty xattr nil are really stored as nil
        assert_eq!(v.get("group"), Some(&Value::Nil));
    }

    #[test]
    fn legacy_byte_timestamps_are_read() {
        assert_eq!(time_from(&Value::Raw(vec![0xff, 0xff])), Some(-1));
        assert_eq!(time_from(&Value::Raw(vec![0x01, 0x01])), Some(257));
        assert_eq!(time_from(&Value::Raw(vec![])), Some(0));
        // 16 bytes (found by the item_stream fuzz target: the sign extension overflowed)
        assert_eq!(time_from(&Value::Raw(vec![0xff; 16])), Some(-1));
        assert_eq!(time_from(&Value::Raw(vec![0x80; 16])), None);
        let mut big = vec![0u8; 16];
        big[15] = 0x80;
        assert_eq!(time_from(&Value::Raw(big)), None);
    }

    /// Any value: scalars of every kind, arrays and maps a few levels deep.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::int),
            any::<u64>().prop_map(Value::int),
            (-3i64..70).prop_map(Value::int),
            any::<f64>().prop_map(Value::Float),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Raw),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bin),
            proptest::collection::vec(any::<u8>(), 31..34).prop_map(Value::Raw),
            (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..4))
                .prop_map(|(t, d)| Value::Ext(t, d)),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
            ]
        })
    }

    /// A chunk list that is mostly well formed, with any value anywhere now and then.
    fn any_chunk_list() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let good_entry =
            (any::<[u8; 32]>(), any::<u32>(), any::<u32>()).prop_map(|(id, size, csize)| {
                Value::Array(vec![Value::raw(id), Value::int(size), Value::int(csize)])
            });
        let entry = prop_oneof![
            8 => good_entry,
            1 => proptest::collection::vec(any_value(), 0..5).prop_map(Value::Array),
            1 => any_value(),
        ];
        prop_oneof![
            8 => proptest::collection::vec(entry, 0..6).prop_map(Value::Array),
            1 => any_value(),
        ]
    }

    /// An item-like map: item keys (and others, and non-text keys) with fitting or any values.
    fn any_item_map() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        const KEYS: [&str; 26] = [
            "path",
            "mode",
            "uid",
            "gid",
            "user",
            "group",
            "mtime",
            "atime",
            "ctime",
            "birthtime",
            "size",
            "chunks",
            "chunks_healthy",
            "source",
            "hardlink_master",
            "rdev",
            "xattrs",
            "acl_access",
            "acl_default",
            "acl_extended",
            "acl_nfs4",
            "bsdflags",
            "part",
            "other",
            "",
            "chunks2",
        ];
        let key = prop_oneof![
            9 => proptest::sample::select(&KEYS[..]).prop_map(Value::raw),
            1 => any_value(),
        ];
        let value = prop_oneof![
            3 => any_value(),
            2 => any_chunk_list(),
            1 => proptest::collection::vec((any_value(), any_value()), 0..4).prop_map(Value::Map),
            2 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::raw),
        ];
        let map = proptest::collection::vec((key, value), 0..12).prop_map(|mut entries| {
            if entries.len() % 3 != 0 {
                entries.push((Value::raw("path"), Value::raw("p")));
            }
            Value::Map(entries)
        });
        prop_oneof![9 => map, 1 => any_value()]
    }

    /// Any item: every optional field present or not, chunk lists of any length.
    fn any_item() -> impl proptest::strategy::Strategy<Value = Item> {
        use proptest::collection::vec;
        use proptest::option::of;
        use proptest::prelude::*;
        let chunk = (any::<[u8; 32]>(), any::<u32>(), any::<u32>())
            .prop_map(|(id, size, csize)| ChunkRef { id, size, csize });
        let bytes = || vec(any::<u8>(), 0..12);
        (
            (
                bytes(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                of(bytes()),
                of(bytes()),
            ),
            (
                any::<i64>(),
                of(any::<i64>()),
                of(any::<i64>()),
                of(any::<i64>()),
                of(any::<u64>()),
            ),
            (
                of(vec(chunk.clone(), 0..40)),
                of(vec(chunk, 0..3)),
                of(bytes()),
            ),
            (
                of(any::<bool>()),
                of(any::<u64>()),
                of(vec((bytes(), of(bytes())), 0..3)),
            ),
            (of(bytes()), of(bytes()), of(any::<u32>()), of(any::<u32>())),
        )
            .prop_map(|(a, b, c, d, e)| Item {
                path: a.0,
                mode: a.1,
                uid: a.2,
                gid: a.3,
                user: a.4,
                group: a.5,
                mtime: b.0,
                atime: b.1,
                ctime: b.2,
                birthtime: b.3,
                size: b.4,
                chunks: c.0,
                chunks_healthy: c.1,
                source: c.2,
                hardlink_master: d.0,
                rdev: d.1,
                xattrs: d.2.map(|x| x.into_iter().collect()),
                acl_access: e.0,
                acl_default: e.1,
                bsdflags: e.2,
                part: e.3,
                ..Item::default()
            })
    }

    proptest::proptest! {
        #[test]
        fn packing_straight_equals_packing_the_value(item in any_item()) {
            let mut direct = Vec::new();
            item.pack_into(&mut direct);
            proptest::prop_assert_eq!(&direct, &item.to_value().to_bytes());
            proptest::prop_assert_eq!(Item::decode(&direct), Ok(item));
        }

        #[test]
        fn decoding_from_bytes_equals_decoding_the_value(v in any_item_map()) {
            proptest::prop_assert_eq!(Item::decode(&v.to_bytes()), Item::from_value(&v));
        }
    }

    #[test]
    fn a_real_item_decodes_from_bytes() {
        let mut x = BTreeMap::new();
        x.insert(b"user.a".to_vec(), Some(b"v".to_vec()));
        x.insert(b"user.empty".to_vec(), None);
        let it = Item {
            path: b"dir/\xff file".to_vec(),
            mode: S_IFREG | 0o644,
            mtime: -5,
            ctime: Some(2),
            size: Some(3),
            chunks: Some(vec![ChunkRef {
                id: [9; 32],
                size: 3,
                csize: 40,
            }]),
            xattrs: Some(x),
            ..Item::default()
        };
        let mut bytes = Vec::new();
        it.pack_into(&mut bytes);
        assert_eq!(Item::decode(&bytes), Ok(it));
        assert_eq!(Item::decode(&[0x90]), Err("item is not a map".to_string()));
        assert!(Item::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
