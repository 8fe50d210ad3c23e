//! msgpack the way borg 1.x speaks it (FORMAT.md §7.1).
//!
//! Borg packs with the *old* msgpack spec: every byte string, text or not, is written in the
//! str/raw family (fixstr, `da` str16, `db` str32 — never `d9` str8 and never bin). This module owns
//! a small dynamic [`Value`] model, an encoder that reproduces borg's choices byte for byte, and a
//! decoder with borg's per-context limits ([`Limits`]) that can also decode a value at a time out of
//! a growing buffer (item streams span chunk boundaries). The decoder never recurses (an explicit
//! stack of open containers), keeps a partial value across feeds so every byte is decoded once,
//! and bounds each value's bytes, elements and depth. It must never panic on hostile input.

use std::fmt;

/// A decoded msgpack value. Byte strings keep their bytes exactly; nothing is assumed UTF-8.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `c0`
    Nil,
    /// `c2` / `c3`
    Bool(bool),
    /// Any msgpack integer; i128 holds the whole u64 and i64 ranges without loss.
    Int(i128),
    /// `ca` / `cb`
    Float(f64),
    /// The str/raw family: what borg uses for every byte string.
    Raw(Vec<u8>),
    /// The bin family: accepted by the decoder only where [`Limits::max_bin`] allows it.
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in the order it was packed or built.
    Map(Vec<(Value, Value)>),
    /// An ext value (type, data); borg never writes one.
    Ext(i8, Vec<u8>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Raw(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "raw:{}", hex::encode(b)),
            },
            Value::Bin(b) => write!(f, "bin:{}", hex::encode(b)),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Ext(t, d) => write!(f, "ext({t}):{}", hex::encode(d)),
        }
    }
}

impl Value {
    /// A raw string from anything byte-like.
    pub fn raw(bytes: impl AsRef<[u8]>) -> Value {
        Value::Raw(bytes.as_ref().to_vec())
    }

    /// An integer value.
    pub fn int(i: impl Into<i128>) -> Value {
        Value::Int(i.into())
    }

    /// A map whose entries are sorted by key bytes, as borg's `StableDict` packs them.
    /// Keys must be raw strings; the sort is bytewise on them.
    pub fn sorted_map(mut entries: Vec<(&str, Value)>) -> Value {
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::raw(k), v))
                .collect(),
        )
    }

    /// Looks up a map entry by raw-string key; `None` if this is not a map or the key is absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.iter().find_map(|(k, v)| match k {
                Value::Raw(kb) if kb == key.as_bytes() => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Mutable map lookup by raw-string key.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => m.iter_mut().find_map(|(k, v)| match k {
                Value::Raw(kb) if kb == key.as_bytes() => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The bytes of a raw (or bin) string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Raw(b) | Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// A raw string as UTF-8 text, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// An integer that fits i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// An integer that fits u64.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// A boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An array's elements.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A map's entries.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Packs this value the way borg does.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self, &mut out);
        out
    }
}

/// Appends the borg-style str/raw header for a byte string of `len` bytes.
pub fn write_raw_header(out: &mut Vec<u8>, len: usize) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a raw string.
pub fn write_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    write_raw_header(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends an integer in the smallest form, as Python's msgpack does (unsigned forms for
/// non-negative values).
pub fn write_int(out: &mut Vec<u8>, i: i128) {
    if i >= 0 {
        if i < 128 {
            out.push(i as u8);
        } else if i <= 0xff {
            out.push(0xcc);
            out.push(i as u8);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.push(0xd0);
        out.push(i as i8 as u8);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1i128 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&(i as i64).to_be_bytes());
    }
}

/// Appends an array header for `len` elements.
pub fn write_array_header(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a map header for `len` entries.
pub fn write_map_header(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Packs `value` onto `out` with borg's conventions.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => write_int(out, *i),
        Value::Float(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Raw(b) => write_raw(out, b),
        Value::Bin(b) => {
            if b.len() <= 0xff {
                out.push(0xc4);
                out.push(b.len() as u8);
            } else if b.len() <= 0xffff {
                out.push(0xc5);
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            } else {
                out.push(0xc6);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(b);
        }
        Value::Array(a) => {
            write_array_header(out, a.len());
            for v in a {
                encode(v, out);
            }
        }
        Value::Map(m) => {
            write_map_header(out, m.len());
            for (k, v) in m {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Ext(t, d) => {
            // fixext for the five fixed sizes, as Python's msgpack packs an ExtType
            match d.len() {
                1 => out.push(0xd4),
                2 => out.push(0xd5),
                4 => out.push(0xd6),
                8 => out.push(0xd7),
                16 => out.push(0xd8),
                n if n <= 0xff => {
                    out.push(0xc7);
                    out.push(n as u8);
                }
                n if n <= 0xffff => {
                    out.push(0xc8);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    out.push(0xc9);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
            }
            out.push(*t as u8);
            out.extend_from_slice(d);
        }
    }
}

/// Why a decode failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended inside a value; more bytes may complete it.
    #[error("msgpack data ends in the middle of a value")]
    Incomplete,
    /// A byte that starts no valid msgpack value (0xc1).
    #[error("invalid msgpack marker byte 0x{0:02x}")]
    InvalidMarker(u8),
    /// A string, bin, ext, array or map longer than this context allows.
    #[error("msgpack {kind} of length {len} exceeds the limit {limit}")]
    LimitExceeded {
        /// "str", "bin", "ext", "array" or "map".
        kind: &'static str,
        /// The length found.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Arrays and maps nested deeper than [`Limits::max_depth`].
    #[error("msgpack nesting too deep")]
    TooDeep,
    /// One value spans more encoded bytes than [`Limits::max_bytes`].
    #[error("msgpack value larger than {limit} bytes")]
    ValueTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// One value holds more elements than [`Limits::max_values`] allows, or more than its
    /// size justifies ([`Limits::min_value_bytes`]).
    #[error("msgpack value holds {values} elements in {bytes} bytes, more than the limit {limit}")]
    TooManyValues {
        /// Elements (scalars and containers at every level) decoded so far.
        values: usize,
        /// Encoded bytes they took.
        bytes: usize,
        /// The bound they broke: [`Limits::max_values`], or what [`Limits::min_value_bytes`]
        /// allows for `bytes`.
        limit: usize,
    },
    /// Bytes left over after a value that should fill the buffer.
    #[error("{0} unexpected bytes after the msgpack value")]
    TrailingBytes(usize),
}

/// Nesting depth of the predefined [`Limits`] that do not set a tighter one (guards memory and
/// the recursive `Drop`/`encode` of [`Value`] against hostile input).
pub const MAX_DEPTH: usize = 256;

/// Elements a value may hold before [`Limits::min_value_bytes`] applies.
pub const VALUE_SLACK: usize = 65_536;

/// Largest plaintext of one repository object (borg `MAX_DATA_SIZE`, FORMAT.md §2.4); the RPC
/// limits are derived from it (this layer imports nothing, so the number is repeated here).
const MAX_DATA_SIZE: usize = 20_971_479;

/// Largest encoded item (1 GiB). A chunk reference `[id, size, csize]` packs into 38 to 46
/// bytes, so an item may list ~23 million chunks: a 46 TiB file at borg's default 2 MiB chunk
/// size, 1.4 TiB at 64 KiB, or 1.5 GB at the smallest (`fixed,64`). borg writes nothing larger
/// than a few KiB besides such chunk lists, and reads items of up to 2 GiB. (Until 2026-12 this
/// was 64 MiB: hoard refused the items of files over ~1.4 million chunks that it had written.)
pub const MAX_ITEM_BYTES: usize = 1 << 30;

/// Per-context limits. The str/bin/array/map lengths are the ones borg's
/// `get_limited_unpacker` sets (FORMAT.md §7.1); depth, bytes and element counts are hoard's own
/// bounds on one top-level value, so that hostile input can cost neither unbounded memory nor
/// unbounded time: a decoded value takes at most about `max_bytes + 32 * max_values` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest str/raw (and ext).
    pub max_str: usize,
    /// Longest bin; 0 rejects every bin value (borg's `max_bin_len=0`).
    pub max_bin: usize,
    /// Most array elements.
    pub max_array: usize,
    /// Most map entries.
    pub max_map: usize,
    /// Deepest nesting of arrays and maps (a scalar at the top is depth 0).
    pub max_depth: usize,
    /// Most encoded bytes one top-level value may span.
    pub max_bytes: usize,
    /// Most elements (scalars and containers at every level, the value itself included)
    /// one top-level value may decode into.
    pub max_values: usize,
    /// Past [`VALUE_SLACK`] elements, a value must average at least this many encoded bytes per
    /// element (0: no such rule). Real item streams average ~11 (a chunk reference is 4
    /// elements in ~46 bytes); a run of one-byte values (nils), each materialised as a 32-byte
    /// [`Value`], is refused early.
    pub min_value_bytes: usize,
}

impl Limits {
    /// No limits beyond the stack guard (tests and data this program has just written itself).
    pub const UNLIMITED: Limits = Limits {
        max_str: usize::MAX,
        max_bin: usize::MAX,
        max_array: usize::MAX,
        max_map: usize::MAX,
        max_depth: MAX_DEPTH,
        max_bytes: usize::MAX,
        max_values: usize::MAX,
        min_value_bytes: 0,
    };
    /// The manifest: str ≤ 255, no bin, array ≤ 100, map ≤ 400000.
    pub const MANIFEST: Limits = Limits {
        max_str: 255,
        max_bin: 0,
        max_array: 100,
        max_map: 400_000,
        max_depth: MAX_DEPTH,
        max_bytes: usize::MAX,
        max_values: usize::MAX,
        min_value_bytes: 0,
    };
    /// The encrypted key envelope and the key material: str ≤ 4000, no bin, no arrays, map ≤ 10.
    pub const KEY: Limits = Limits {
        max_str: 4000,
        max_bin: 0,
        max_array: 0,
        max_map: 10,
        max_depth: MAX_DEPTH,
        max_bytes: usize::MAX,
        max_values: usize::MAX,
        min_value_bytes: 0,
    };
    /// Archive metadata (borg 1.2.5+): str ≤ 10000, no bin, map ≤ 100.
    pub const ARCHIVE: Limits = Limits {
        max_str: 10_000,
        max_bin: 0,
        max_array: usize::MAX,
        max_map: 100,
        max_depth: MAX_DEPTH,
        max_bytes: usize::MAX,
        max_values: usize::MAX,
        min_value_bytes: 0,
    };
    /// One item of an item stream (FORMAT.md §6.5), wherever items are read: at most
    /// [`MAX_ITEM_BYTES`] encoded, arrays of 32 Mi elements and 128 Mi elements in all (a
    /// maximal chunk list needs ~28 Mi and ~112 Mi), 64 Ki map entries (an item has ~25 keys;
    /// `xattrs` holds one entry per attribute), nesting 32 (items use 4), and on average ≥ 8
    /// bytes per element past 64 Ki elements (chunk references average ≥ 9.5).
    /// Memory of one item: read with [`StreamDecoder::next_encoded`] and a [`Cursor`] (list,
    /// extract, info, mount), its bytes and what the reader builds (~2× its size); decoded into
    /// a [`Value`] (check, cache rebuild), up to ~5× its size. The nil-array attack fails at
    /// 64 Ki elements.
    pub const ITEM: Limits = Limits {
        max_str: MAX_ITEM_BYTES,
        max_bin: MAX_ITEM_BYTES,
        max_array: 32 * 1024 * 1024,
        max_map: 65_536,
        max_depth: 32,
        max_bytes: MAX_ITEM_BYTES,
        max_values: 128 * 1024 * 1024,
        min_value_bytes: 8,
    };
    /// RPC requests as a server unpacks them: a `put` of the largest object plus 64 KiB of
    /// framing; requests are small maps or 4-element arrays.
    pub const RPC_SERVER: Limits = Limits {
        max_str: 20 * 1024 * 1024 + 1024,
        max_bin: 0,
        max_array: 100,
        max_map: 100,
        max_depth: 16,
        max_bytes: MAX_DATA_SIZE + 64 * 1024,
        max_values: 10_000,
        min_value_bytes: 0,
    };
    /// RPC replies as a client unpacks them: a `get` of the largest object, or a `list`/`scan`
    /// of 100000 ids (~3.6 MB), plus 64 KiB of framing.
    pub const RPC_CLIENT: Limits = Limits {
        max_str: 20 * 1024 * 1024 + 1024,
        max_bin: 0,
        max_array: 100_000,
        max_map: 100,
        max_depth: 16,
        max_bytes: MAX_DATA_SIZE + 64 * 1024,
        max_values: 200_000,
        min_value_bytes: 0,
    };
    /// `hints.N` (FORMAT.md §2.8): maps keyed by segment number or object id, lists of segment
    /// numbers; at most 1 GiB and 256 Mi elements (tens of millions of segments or shadowed
    /// objects, far past what a repository holds).
    pub const HINTS: Limits = Limits {
        max_str: 64,
        max_bin: 0,
        max_array: 1 << 28,
        max_map: 1 << 28,
        max_depth: 4,
        max_bytes: 1 << 30,
        max_values: 1 << 28,
        min_value_bytes: 0,
    };
    /// `integrity.N` (FORMAT.md §2.9): a map of a version and two short JSON texts.
    pub const INTEGRITY: Limits = Limits {
        max_str: 64 * 1024,
        max_bin: 0,
        max_array: 0,
        max_map: 16,
        max_depth: 2,
        max_bytes: 256 * 1024,
        max_values: 64,
        min_value_bytes: 0,
    };
}

/// Decodes exactly one value that must fill `data` completely.
pub fn decode_all(data: &[u8], limits: Limits) -> Result<Value, DecodeError> {
    let (value, used) = decode_one(data, limits)?;
    if used != data.len() {
        return Err(DecodeError::TrailingBytes(data.len() - used));
    }
    Ok(value)
}

/// Decodes one value from the start of `data`; returns it and the number of bytes it used.
/// [`DecodeError::Incomplete`] means `data` ends inside the value.
pub fn decode_one(data: &[u8], limits: Limits) -> Result<(Value, usize), DecodeError> {
    let mut partial = Partial::default();
    let mut used = 0;
    match partial.advance(data, &limits, &mut used)? {
        Some(value) => Ok((value, used)),
        None => Err(DecodeError::Incomplete),
    }
}

/// Most elements pre-allocated for an array or map before its elements have arrived.
const PREALLOC: usize = 4096;

/// One lexical unit of msgpack: a complete scalar (strings borrowed from the input), or the
/// header of an array or map, whose elements (a map's keys and values alternating) follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    /// `c0`
    Nil,
    /// `c2` / `c3`
    Bool(bool),
    /// Any integer.
    Int(i128),
    /// `ca` / `cb`
    Float(f64),
    /// The str/raw family.
    Raw(&'a [u8]),
    /// The bin family.
    Bin(&'a [u8]),
    /// An ext value (type, data).
    Ext(i8, &'a [u8]),
    /// An array of this many elements.
    Array(usize),
    /// A map of this many entries.
    Map(usize),
}

impl Token<'_> {
    /// The bytes of a raw or bin string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Token::Raw(b) | Token::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// An integer that fits u64.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Token::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// How many values follow as this token's elements (a map's keys and values both count).
    fn elements(&self) -> usize {
        match self {
            Token::Array(n) => *n,
            Token::Map(n) => n.saturating_mul(2),
            _ => 0,
        }
    }

    /// The value of a scalar token (`None` for a container header).
    fn to_value(self) -> Option<Value> {
        Some(match self {
            Token::Nil => Value::Nil,
            Token::Bool(b) => Value::Bool(b),
            Token::Int(i) => Value::Int(i),
            Token::Float(x) => Value::Float(x),
            Token::Raw(b) => Value::Raw(b.to_vec()),
            Token::Bin(b) => Value::Bin(b.to_vec()),
            Token::Ext(t, b) => Value::Ext(t, b.to_vec()),
            Token::Array(_) | Token::Map(_) => return None,
        })
    }
}

/// Reads one token from the start of `data`: `Ok(None)` if `data` ends inside it. A length
/// over its limit, or over `budget` (the bytes the current value may still take), is an error
/// before any of its bytes are waited for.
fn token<'a>(
    data: &'a [u8],
    limits: &Limits,
    budget: usize,
) -> Result<Option<(Token<'a>, usize)>, DecodeError> {
    let Some(&m) = data.first() else {
        return Ok(None);
    };
    // Fixed-width header fields after the marker.
    let be = |n: usize| -> Option<u64> {
        data.get(1..1 + n)
            .map(|b| b.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64))
    };
    let scalar = |t: Token<'a>, n: usize| -> Result<Option<(Token<'a>, usize)>, DecodeError> {
        if n > budget {
            return Err(DecodeError::ValueTooLarge {
                limit: limits.max_bytes,
            });
        }
        Ok(Some((t, n)))
    };
    // A str/bin/ext body of `len` bytes after `head` header bytes (ext: the type byte counts in
    // `head`).
    let body = |kind: &'static str, head: usize, len: usize, limit: usize| {
        if len > limit {
            return Err(DecodeError::LimitExceeded { kind, len, limit });
        }
        let total = head.saturating_add(len);
        if total > budget {
            return Err(DecodeError::ValueTooLarge {
                limit: limits.max_bytes,
            });
        }
        Ok(data.get(head..total).map(|b| (b, total)))
    };
    let sized = |n: usize| be(n).map(|x| x as usize);
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(x) => x,
                None => return Ok(None),
            }
        };
    }
    type Found<'a> = Result<Option<(Token<'a>, usize)>, DecodeError>;
    let raw = |head: usize, len: usize| -> Found<'a> {
        Ok(body("str", head, len, limits.max_str)?.map(|(b, n)| (Token::Raw(b), n)))
    };
    let bin = |head: usize, len: usize| -> Found<'a> {
        Ok(body("bin", head, len, limits.max_bin)?.map(|(b, n)| (Token::Bin(b), n)))
    };
    let ext = |head: usize, len: usize| -> Found<'a> {
        let Some((b, n)) = body("ext", head, len, limits.max_str)? else {
            return Ok(None);
        };
        let t = data[head - 1] as i8;
        Ok(Some((Token::Ext(t, b), n)))
    };
    let array = |head: usize, len: usize| -> Found<'a> {
        if len > limits.max_array {
            return Err(DecodeError::LimitExceeded {
                kind: "array",
                len,
                limit: limits.max_array,
            });
        }
        if head > budget {
            return Err(DecodeError::ValueTooLarge {
                limit: limits.max_bytes,
            });
        }
        Ok(Some((Token::Array(len), head)))
    };
    let map = |head: usize, len: usize| -> Found<'a> {
        if len > limits.max_map {
            return Err(DecodeError::LimitExceeded {
                kind: "map",
                len,
                limit: limits.max_map,
            });
        }
        if head > budget {
            return Err(DecodeError::ValueTooLarge {
                limit: limits.max_bytes,
            });
        }
        Ok(Some((Token::Map(len), head)))
    };
    match m {
        0x00..=0x7f => scalar(Token::Int(m as i128), 1),
        0x80..=0x8f => map(1, (m & 0x0f) as usize),
        0x90..=0x9f => array(1, (m & 0x0f) as usize),
        0xa0..=0xbf => raw(1, (m & 0x1f) as usize),
        0xc0 => scalar(Token::Nil, 1),
        0xc1 => Err(DecodeError::InvalidMarker(m)),
        0xc2 => scalar(Token::Bool(false), 1),
        0xc3 => scalar(Token::Bool(true), 1),
        0xc4 => bin(2, need!(sized(1))),
        0xc5 => bin(3, need!(sized(2))),
        0xc6 => bin(5, need!(sized(4))),
        0xc7 => ext(3, need!(sized(1))),
        0xc8 => ext(4, need!(sized(2))),
        0xc9 => ext(6, need!(sized(4))),
        0xca => scalar(Token::Float(f32::from_bits(need!(be(4)) as u32) as f64), 5),
        0xcb => scalar(Token::Float(f64::from_bits(need!(be(8)))), 9),
        0xcc => scalar(Token::Int(need!(be(1)) as i128), 2),
        0xcd => scalar(Token::Int(need!(be(2)) as i128), 3),
        0xce => scalar(Token::Int(need!(be(4)) as i128), 5),
        0xcf => scalar(Token::Int(need!(be(8)) as i128), 9),
        0xd0 => scalar(Token::Int(need!(be(1)) as u8 as i8 as i128), 2),
        0xd1 => scalar(Token::Int(need!(be(2)) as u16 as i16 as i128), 3),
        0xd2 => scalar(Token::Int(need!(be(4)) as u32 as i32 as i128), 5),
        0xd3 => scalar(Token::Int(need!(be(8)) as i64 as i128), 9),
        0xd4 => ext(2, 1),
        0xd5 => ext(2, 2),
        0xd6 => ext(2, 4),
        0xd7 => ext(2, 8),
        0xd8 => ext(2, 16),
        0xd9 => raw(2, need!(sized(1))),
        0xda => raw(3, need!(sized(2))),
        0xdb => raw(5, need!(sized(4))),
        0xdc => array(3, need!(sized(2))),
        0xdd => array(5, need!(sized(4))),
        0xde => map(3, need!(sized(2))),
        0xdf => map(5, need!(sized(4))),
        0xe0..=0xff => scalar(Token::Int(m as i8 as i128), 1),
    }
}

/// What a top-level value has cost (`values` elements in `bytes` encoded bytes) after one more
/// token of `len` bytes, or the error when that breaks [`Limits::max_values`] or
/// [`Limits::min_value_bytes`]. Both decoding modes ([`Partial`], [`Scan`]) charge through here,
/// so they refuse the same input at the same token.
fn count_token(
    values: usize,
    bytes: usize,
    len: usize,
    limits: &Limits,
) -> Result<(usize, usize), DecodeError> {
    let values = values + 1;
    let bytes = bytes + len;
    let dense_cap = match limits.min_value_bytes {
        0 => usize::MAX,
        n => VALUE_SLACK.saturating_add(bytes / n),
    };
    let limit = limits.max_values.min(dense_cap);
    if values > limit {
        return Err(DecodeError::TooManyValues {
            values,
            bytes,
            limit,
        });
    }
    Ok((values, bytes))
}

/// An array or map whose elements are still arriving.
enum Frame {
    Array {
        items: Vec<Value>,
        left: usize,
    },
    Map {
        entries: Vec<(Value, Value)>,
        key: Option<Value>,
        left: usize,
    },
}

impl Frame {
    fn into_value(self) -> Value {
        match self {
            Frame::Array { items, .. } => Value::Array(items),
            Frame::Map { entries, .. } => Value::Map(entries),
        }
    }
}

/// The state of a top-level value being decoded: the open containers (an explicit stack, so
/// decoding never recurses) and what the value has cost so far. Bytes, once turned into
/// tokens, are never looked at again.
#[derive(Default)]
struct Partial {
    stack: Vec<Frame>,
    /// Encoded bytes of the current value consumed so far.
    bytes: usize,
    /// Elements of the current value decoded so far.
    values: usize,
}

impl Partial {
    /// Consumes tokens from `data` until a top-level value completes (returned with the bytes
    /// used) or `data` ends inside a token (`None`, with the bytes of the complete tokens used;
    /// the state keeps them).
    /// On error, `used` still tells where the offending token starts.
    fn advance(
        &mut self,
        data: &[u8],
        limits: &Limits,
        used: &mut usize,
    ) -> Result<Option<Value>, DecodeError> {
        let mut pos = 0;
        loop {
            *used = pos;
            let budget = limits.max_bytes.saturating_sub(self.bytes);
            let Some((token, len)) = token(&data[pos..], limits, budget)? else {
                return Ok(None);
            };
            (self.values, self.bytes) = count_token(self.values, self.bytes, len, limits)?;
            pos += len;
            let left_after = data.len() - pos;
            let mut value = match token {
                Token::Array(0) => Value::Array(Vec::new()),
                Token::Map(0) => Value::Map(Vec::new()),
                Token::Array(_) | Token::Map(_) if self.stack.len() >= limits.max_depth => {
                    return Err(DecodeError::TooDeep);
                }
                Token::Array(n) => {
                    // Each element takes at least one byte: never reserve more than is present.
                    let cap = n.min(left_after).min(PREALLOC);
                    self.stack.push(Frame::Array {
                        items: Vec::with_capacity(cap),
                        left: n,
                    });
                    continue;
                }
                Token::Map(n) => {
                    let cap = n.min(left_after / 2).min(PREALLOC);
                    self.stack.push(Frame::Map {
                        entries: Vec::with_capacity(cap),
                        key: None,
                        left: n,
                    });
                    continue;
                }
                scalar => match scalar.to_value() {
                    Some(v) => v,
                    None => continue,
                },
            };
            // Place the value into its container, closing every container it completes.
            loop {
                let complete = match self.stack.last_mut() {
                    None => {
                        self.bytes = 0;
                        self.values = 0;
                        *used = pos;
                        return Ok(Some(value));
                    }
                    Some(Frame::Array { items, left }) => {
                        items.push(value);
                        *left -= 1;
                        *left == 0
                    }
                    Some(Frame::Map { entries, key, left }) => match key.take() {
                        None => {
                            *key = Some(value);
                            false
                        }
                        Some(k) => {
                            entries.push((k, value));
                            *left -= 1;
                            *left == 0
                        }
                    },
                };
                if !complete {
                    break;
                }
                match self.stack.pop() {
                    Some(frame) => value = frame.into_value(),
                    None => break,
                }
            }
        }
    }

    /// Whether a value has been started and not finished.
    fn in_progress(&self) -> bool {
        self.bytes > 0
    }
}

/// The state of a top-level value being checked without building it
/// ([`StreamDecoder::next_encoded`]): the elements still due in each open container, and the
/// same costs and limits as [`Partial`], so both modes accept and refuse exactly the same input
/// with the same error.
#[derive(Default)]
struct Scan {
    /// Elements still due in each open container (a map's keys and values both count).
    stack: Vec<usize>,
    /// Encoded bytes of the current value consumed so far.
    bytes: usize,
    /// Elements of the current value checked so far.
    values: usize,
}

impl Scan {
    /// Consumes tokens from `data` until a top-level value completes (returns its encoded
    /// length, counted from where it started, possibly in an earlier call) or `data` ends
    /// inside a token (`None`; the state keeps what was consumed). `used` as in
    /// [`Partial::advance`].
    fn advance(
        &mut self,
        data: &[u8],
        limits: &Limits,
        used: &mut usize,
    ) -> Result<Option<usize>, DecodeError> {
        let mut pos = 0;
        loop {
            *used = pos;
            let budget = limits.max_bytes.saturating_sub(self.bytes);
            let Some((token, len)) = token(&data[pos..], limits, budget)? else {
                return Ok(None);
            };
            (self.values, self.bytes) = count_token(self.values, self.bytes, len, limits)?;
            pos += len;
            let elements = token.elements();
            if elements > 0 {
                if self.stack.len() >= limits.max_depth {
                    return Err(DecodeError::TooDeep);
                }
                self.stack.push(elements);
                continue;
            }
            // A complete element: count it in its container, closing every one it completes.
            loop {
                match self.stack.last_mut() {
                    None => {
                        let total = self.bytes;
                        self.bytes = 0;
                        self.values = 0;
                        *used = pos;
                        return Ok(Some(total));
                    }
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.stack.pop();
                    }
                }
            }
        }
    }
}

/// Reads the tokens of a complete value that has already been checked against its
/// [`Limits`] (by [`StreamDecoder::next_encoded`]), so a caller can build its own type
/// straight from the bytes instead of a [`Value`] tree. Bytes that end early or hold an invalid
/// marker are still reported as errors, never a panic.
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    /// The next token; [`DecodeError::Incomplete`] at the end of the data.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Token<'a>, DecodeError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        match token(rest, &Limits::UNLIMITED, usize::MAX)? {
            Some((t, len)) => {
                self.pos += len;
                Ok(t)
            }
            None => Err(DecodeError::Incomplete),
        }
    }

    /// Skips the elements of `token`, which was just read (nothing for a scalar): after it the
    /// cursor stands after the whole value `token` started.
    pub fn skip_elements(&mut self, token: &Token<'_>) -> Result<(), DecodeError> {
        let mut due = token.elements();
        let mut stack: Vec<usize> = Vec::new();
        while due > 0 {
            due -= 1;
            let inner = self.next()?.elements();
            if inner > 0 {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                stack.push(due);
                due = inner;
            }
            while due == 0 {
                match stack.pop() {
                    Some(d) => due = d,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Skips one whole value.
    pub fn skip(&mut self) -> Result<(), DecodeError> {
        let t = self.next()?;
        self.skip_elements(&t)
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

/// Decodes a sequence of values that arrive in pieces (an item stream split over chunks, an
/// RPC byte stream). Feed bytes with [`StreamDecoder::feed`], then drain complete values with
/// [`StreamDecoder::next_value`]. Decoding is incremental: a value that spans many feeds is
/// carried as a partial state, and every byte is decoded once (O(total bytes)); the
/// [`Limits`] bound each value's size and element count. After an error the decoder keeps
/// returning it.
pub struct StreamDecoder {
    buffer: Vec<u8>,
    pos: usize,
    limits: Limits,
    partial: Partial,
    /// The value [`StreamDecoder::next_encoded`] is checking; its bytes stay in `buffer` from
    /// `pos` on until it is complete.
    scan: Scan,
    /// Stream offset of `buffer[pos]` (in [`StreamDecoder::next_encoded`]'s mode: of
    /// `buffer[pos + scan.bytes]`, the next byte to check).
    offset: u64,
    failed: Option<DecodeError>,
}

impl fmt::Debug for StreamDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("offset", &self.offset)
            .field("pending", &self.pending())
            .field("failed", &self.failed)
            .finish()
    }
}

impl StreamDecoder {
    /// A decoder applying `limits` to each value.
    pub fn new(limits: Limits) -> Self {
        StreamDecoder {
            buffer: Vec::new(),
            pos: 0,
            limits,
            partial: Partial::default(),
            scan: Scan::default(),
            offset: 0,
            failed: None,
        }
    }

    /// Appends bytes to the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buffer.len() {
            self.buffer.drain(..self.pos);
            self.pos = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete value, `Ok(None)` if the buffered bytes end inside one (or are empty).
    pub fn next_value(&mut self) -> Result<Option<Value>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.pos >= self.buffer.len() {
            return Ok(None);
        }
        let mut used = 0;
        let result = self
            .partial
            .advance(&self.buffer[self.pos..], &self.limits, &mut used);
        self.pos += used;
        self.offset += used as u64;
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// The encoded bytes of the next complete value, checked against the [`Limits`] exactly
    /// as [`StreamDecoder::next_value`] checks them (same errors) but not built: read them
    /// with a [`Cursor`]. `Ok(None)` if the buffered bytes end inside a value. Use one mode for
    /// a whole stream, not both.
    pub fn next_encoded(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let from = self.pos + self.scan.bytes;
        if from >= self.buffer.len() {
            return Ok(None);
        }
        let mut used = 0;
        let result = self
            .scan
            .advance(&self.buffer[from..], &self.limits, &mut used);
        self.offset += used as u64;
        match result {
            Ok(Some(len)) => {
                let start = self.pos;
                self.pos += len;
                Ok(self.buffer.get(start..self.pos))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Gives back the memory of values already returned when they took most of the buffer
    /// (a large item, whose bytes [`StreamDecoder::next_encoded`] keeps until it is complete):
    /// what follows them moves to a buffer of its own size, so a reader of one huge item does
    /// not hold its bytes while it goes on with what it built from them.
    pub fn release_consumed(&mut self) {
        const KEEP: usize = 4 << 20;
        if self.buffer.capacity() > KEEP && self.pos * 2 >= self.buffer.len() {
            self.buffer = self.buffer[self.pos..].to_vec();
            self.pos = 0;
        }
    }

    /// Bytes fed but not yet returned as values (those of a value in progress included);
    /// non-zero at the end of a stream means it was truncated.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.pos + self.partial.bytes
    }

    /// Stream offset (bytes fed before it) of the next byte to decode; after an error, of the
    /// token that caused it.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the decoder stands inside a value (some of its bytes consumed, not complete).
    pub fn in_value(&self) -> bool {
        self.partial.in_progress() || self.scan.bytes > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_never_use_str8_or_bin() {
        assert_eq!(Value::raw(vec![b'x'; 31]).to_bytes()[0], 0xbf);
        let v = Value::raw(vec![b'x'; 32]).to_bytes();
        assert_eq!(&v[..3], &[0xda, 0x00, 0x20]);
        let v = Value::raw(vec![0u8; 70000]).to_bytes();
        assert_eq!(&v[..5], &[0xdb, 0x00, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn ext_values_of_every_length_round_trip() {
        // fuzz/regressions/msgpack/ext16-round-trip: a 256-byte ext was re-packed as an ext8
        // whose length byte wrapped to 0, so the packed bytes no longer decoded
        for len in [0usize, 1, 2, 3, 4, 8, 16, 17, 255, 256, 65_535, 65_536] {
            let v = Value::Ext(5, vec![7u8; len]);
            let packed = v.to_bytes();
            let (back, used) = decode_one(&packed, Limits::UNLIMITED).expect("round trip");
            assert_eq!(used, packed.len(), "ext of {len} bytes");
            assert_eq!(back, v, "ext of {len} bytes");
        }
        assert_eq!(Value::Ext(1, vec![0; 8]).to_bytes()[0], 0xd7);
        let input = include_bytes!("../../fuzz/regressions/msgpack/ext16-round-trip");
        let v = decode_all(input, Limits::UNLIMITED).expect("the input decodes");
        assert!(decode_one(&v.to_bytes(), Limits::UNLIMITED).is_ok());
    }

    #[test]
    fn integers_use_python_msgpack_forms() {
        assert_eq!(Value::int(-679408248).to_bytes()[0], 0xd2);
        assert_eq!(Value::int(1606603007).to_bytes()[0], 0xce);
        assert_eq!(Value::int(200).to_bytes(), vec![0xcc, 200]);
        assert_eq!(Value::int(-1).to_bytes(), vec![0xff]);
        assert_eq!(Value::int(-33).to_bytes(), vec![0xd0, 0xdf]);
        assert_eq!(Value::int(u64::MAX).to_bytes()[0], 0xcf);
        assert_eq!(Value::int(i64::MIN).to_bytes()[0], 0xd3);
    }

    #[test]
    fn round_trips_nested_values() {
        let v = Value::sorted_map(vec![
            ("version", Value::int(1)),
            ("archives", Value::Map(vec![])),
            (
                "items",
                Value::Array(vec![Value::raw([1u8; 32]), Value::Nil, Value::Bool(true)]),
            ),
            ("neg", Value::int(-5_000_000_000i64)),
            ("f", Value::Float(1.5)),
        ]);
        let bytes = v.to_bytes();
        assert_eq!(decode_all(&bytes, Limits::UNLIMITED).unwrap(), v);
        // sorted: archives first
        assert_eq!(&bytes[1..10], b"\xa8archives");
    }

    #[test]
    fn limits_reject_bin_and_long_strings() {
        let bin = Value::Bin(vec![1, 2, 3]).to_bytes();
        assert!(matches!(
            decode_all(&bin, Limits::MANIFEST),
            Err(DecodeError::LimitExceeded { kind: "bin", .. })
        ));
        let long = Value::raw(vec![b'a'; 256]).to_bytes();
        assert!(decode_all(&long, Limits::MANIFEST).is_err());
        assert!(decode_all(&long, Limits::UNLIMITED).is_ok());
    }

    #[test]
    fn truncated_and_hostile_input_is_an_error_not_a_panic() {
        let v = Value::raw(vec![b'a'; 100]).to_bytes();
        assert_eq!(
            decode_all(&v[..50], Limits::UNLIMITED),
            Err(DecodeError::Incomplete)
        );
        // an array header claiming 2^32-1 elements with no data
        assert_eq!(
            decode_all(&[0xdd, 0xff, 0xff, 0xff, 0xff], Limits::UNLIMITED),
            Err(DecodeError::Incomplete)
        );
        let deep = vec![0x91u8; 10_000];
        assert_eq!(
            decode_all(&deep, Limits::UNLIMITED),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(
            decode_all(&[0xc1], Limits::UNLIMITED),
            Err(DecodeError::InvalidMarker(0xc1))
        );
    }

    #[test]
    fn stream_decoder_joins_values_across_feeds() {
        let mut all = Vec::new();
        for i in 0..100 {
            encode(
                &Value::sorted_map(vec![("path", Value::raw(format!("file{i}")))]),
                &mut all,
            );
        }
        let mut dec = StreamDecoder::new(Limits::UNLIMITED);
        let mut got = 0;
        for piece in all.chunks(7) {
            dec.feed(piece);
            while let Some(v) = dec.next_value().unwrap() {
                assert_eq!(
                    v.get("path").unwrap().as_bytes().unwrap(),
                    format!("file{got}").as_bytes()
                );
                got += 1;
            }
        }
        assert_eq!(got, 100);
        assert_eq!(dec.pending(), 0);
    }

    /// Feeds `data` in pieces of `piece` bytes; returns the values and the first error.
    fn stream(data: &[u8], piece: usize, limits: Limits) -> (Vec<Value>, Option<DecodeError>) {
        let mut dec = StreamDecoder::new(limits);
        let mut out = Vec::new();
        for p in data.chunks(piece) {
            dec.feed(p);
            loop {
                match dec.next_value() {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    /// [`stream`] in [`StreamDecoder::next_encoded`]'s mode: each span decoded on its own, and
    /// the offset after each value and at the error.
    fn stream_encoded(
        data: &[u8],
        piece: usize,
        limits: Limits,
    ) -> (Vec<Value>, Vec<u64>, Option<(DecodeError, u64)>) {
        let mut dec = StreamDecoder::new(limits);
        let (mut out, mut offsets) = (Vec::new(), Vec::new());
        for p in data.chunks(piece) {
            dec.feed(p);
            loop {
                match dec.next_encoded() {
                    Ok(Some(bytes)) => {
                        out.push(decode_all(bytes, Limits::UNLIMITED).expect("a checked span"));
                        offsets.push(dec.offset());
                    }
                    Ok(None) => break,
                    Err(e) => return (out, offsets, Some((e, dec.offset()))),
                }
            }
        }
        (out, offsets, None)
    }

    /// Both modes of the stream decoder on `data`: the same values, offsets and error.
    fn assert_modes_agree(data: &[u8], piece: usize, limits: Limits) {
        let mut dec = StreamDecoder::new(limits);
        let (mut values, mut offsets, mut error) = (Vec::new(), Vec::new(), None);
        'feed: for p in data.chunks(piece) {
            dec.feed(p);
            loop {
                match dec.next_value() {
                    Ok(Some(v)) => {
                        values.push(v);
                        offsets.push(dec.offset());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error = Some((e, dec.offset()));
                        break 'feed;
                    }
                }
            }
        }
        let pending = dec.pending();
        let got = stream_encoded(data, piece, limits);
        assert_eq!(got.0, values, "values, piece {piece}");
        assert_eq!(got.1, offsets, "offsets, piece {piece}");
        assert_eq!(got.2, error, "error, piece {piece}");
        if error.is_none() {
            let mut enc = StreamDecoder::new(limits);
            for p in data.chunks(piece) {
                enc.feed(p);
                while let Ok(Some(_)) = enc.next_encoded() {}
            }
            assert_eq!(enc.pending(), pending, "pending, piece {piece}");
        }
    }

    #[test]
    fn checking_without_building_accepts_and_refuses_what_decoding_does() {
        let item = Value::sorted_map(vec![
            ("path", Value::raw("a/b")),
            (
                "chunks",
                Value::Array(vec![Value::Array(vec![
                    Value::raw([7u8; 32]),
                    Value::int(1000),
                    Value::int(70000),
                ])]),
            ),
            ("e", Value::Array(vec![])),
            ("m", Value::Map(vec![(Value::Nil, Value::Map(vec![]))])),
        ]);
        let mut good = Vec::new();
        for v in [&item, &Value::raw(vec![b'x'; 70_000]), &Value::Nil, &item] {
            encode(v, &mut good);
        }
        let mut nils = vec![0xdd, 0x00, 0x3f, 0xff, 0xff];
        nils.resize(1 << 18, 0xc0);
        let mut deep = good.clone();
        deep.extend_from_slice(&[0x91; 40]);
        deep.push(0xc0);
        let mut long = good.clone();
        long.extend_from_slice(&[0xdb, 0x7f, 0xff, 0xff, 0xff]);
        let mut truncated = good.clone();
        truncated.extend_from_slice(&good[..good.len() / 2]);
        let bad_marker = [0x92, 0xc0, 0xc1];
        let small = Limits {
            max_bytes: 100,
            max_values: 50,
            ..Limits::ITEM
        };
        for data in [&good[..], &nils, &deep, &long, &truncated, &bad_marker] {
            for limits in [Limits::ITEM, Limits::UNLIMITED, small, Limits::RPC_CLIENT] {
                for piece in [1, 3, 64, 4096, data.len()] {
                    assert_modes_agree(data, piece, limits);
                }
            }
        }
    }

    #[test]
    fn a_cursor_skips_nested_values_and_reports_truncation() {
        let v = Value::Array(vec![
            Value::Map(vec![(Value::raw("k"), Value::Array(vec![Value::Nil; 3]))]),
            Value::Array(vec![]),
            Value::int(7),
        ]);
        let mut bytes = v.to_bytes();
        bytes.push(0x2a);
        let mut c = Cursor::new(&bytes);
        c.skip().unwrap();
        assert_eq!(c.next(), Ok(Token::Int(42)));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.next(), Err(DecodeError::Incomplete));
        let mut c = Cursor::new(&bytes[..bytes.len() - 3]);
        assert_eq!(c.skip(), Err(DecodeError::Incomplete));
        let mut c = Cursor::new(&[0x91, 0xc1]);
        assert_eq!(c.skip(), Err(DecodeError::InvalidMarker(0xc1)));
    }

    #[test]
    fn stream_decoder_gives_the_same_values_for_any_split() {
        let mut all = Vec::new();
        let values = vec![
            Value::sorted_map(vec![
                ("path", Value::raw("a/b")),
                (
                    "chunks",
                    Value::Array(vec![Value::Array(vec![
                        Value::raw([7u8; 32]),
                        Value::int(1000),
                        Value::int(70000),
                    ])]),
                ),
                ("mtime", Value::int(-5_000_000_000i64)),
                ("f", Value::Float(0.25)),
                ("e", Value::Array(vec![])),
                ("m", Value::Map(vec![])),
            ]),
            Value::raw(vec![b'x'; 70_000]),
            Value::Bin(vec![1, 2, 3]),
            Value::Ext(5, vec![9; 4]),
            Value::Nil,
        ];
        for v in &values {
            encode(v, &mut all);
        }
        for piece in [1, 2, 3, 7, 64, 1000, all.len()] {
            let (got, err) = stream(&all, piece, Limits::UNLIMITED);
            assert_eq!(err, None, "piece {piece}");
            assert_eq!(got, values, "piece {piece}");
        }
    }

    #[test]
    fn an_endless_value_is_decoded_once_not_per_feed() {
        // 64 feeds of 256 KiB of nils inside an array that never completes: each byte is
        // looked at once (the old decoder restarted from the array header on every feed).
        let mut dec = StreamDecoder::new(Limits::UNLIMITED);
        dec.feed(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        let chunk = vec![0xc0u8; 256 * 1024];
        let start = std::time::Instant::now();
        for _ in 0..64 {
            dec.feed(&chunk);
            assert_eq!(dec.next_value(), Ok(None));
            assert_eq!(dec.buffer.len() - dec.pos, 0, "consumed bytes are not kept");
        }
        assert_eq!(dec.pending(), 5 + 64 * 256 * 1024);
        assert!(dec.in_value());
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn item_limits_stop_a_run_of_nils_early() {
        let mut data = vec![0xdd, 0x00, 0x3f, 0xff, 0xff];
        data.resize(1 << 20, 0xc0);
        let (got, err) = stream(&data, 4096, Limits::ITEM);
        assert!(got.is_empty());
        assert_eq!(
            err,
            Some(DecodeError::TooManyValues {
                values: 74_899,
                bytes: 74_903,
                limit: 74_898
            })
        );
        // The header of the report's attack is refused before any element.
        assert_eq!(
            decode_one(&[0xdd, 0xff, 0xff, 0xff, 0xff], Limits::ITEM),
            Err(DecodeError::LimitExceeded {
                kind: "array",
                len: 0xffff_ffff,
                limit: 32 * 1024 * 1024
            })
        );
    }

    #[test]
    fn an_item_of_more_chunks_than_the_old_limit_passes() {
        // 5 Mi references of 64-byte chunks (38 bytes each), as `create --chunker-params
        // fixed,64` writes for a 320 MiB file: over the old array limit (4 Mi) and item size
        // (64 MiB), read the way the item-stream reader reads it.
        let n = 5 << 20;
        let mut out = Vec::new();
        write_map_header(&mut out, 2);
        write_raw(&mut out, b"chunks");
        write_array_header(&mut out, n);
        let e = Value::Array(vec![
            Value::raw([0xab; 32]),
            Value::int(64),
            Value::int(100),
        ])
        .to_bytes();
        assert_eq!(e.len(), 38);
        for _ in 0..n {
            out.extend_from_slice(&e);
        }
        write_raw(&mut out, b"path");
        write_raw(&mut out, b"big");
        let mut dec = StreamDecoder::new(Limits::ITEM);
        for piece in out.chunks(8 << 20) {
            dec.feed(piece);
        }
        dec.feed(&[0xc0, 0x91]);
        let span = dec
            .next_encoded()
            .expect("within the limits")
            .expect("complete");
        assert_eq!(span.len(), out.len());
        let mut c = Cursor::new(span);
        assert_eq!(c.next(), Ok(Token::Map(2)));
        assert_eq!(c.next(), Ok(Token::Raw(b"chunks")));
        assert_eq!(c.next(), Ok(Token::Array(n)));
        // The item's bytes are given back; what follows it is kept.
        dec.release_consumed();
        assert!(dec.buffer.capacity() < 1024, "{}", dec.buffer.capacity());
        assert_eq!(dec.next_encoded(), Ok(Some(&[0xc0][..])));
        assert_eq!(dec.next_encoded(), Ok(None));
        assert_eq!(dec.pending(), 1);
    }

    #[test]
    fn a_maximal_chunk_list_passes_the_item_limits() {
        // ~23 Mi chunk references fill an item of MAX_ITEM_BYTES; one of 1 Mi passes.
        let entry = Value::Array(vec![
            Value::raw([0xab; 32]),
            Value::int(2_000_000),
            Value::int(1_000_000),
        ]);
        let n = 1 << 20;
        let mut out = Vec::new();
        write_map_header(&mut out, 2);
        write_raw(&mut out, b"chunks");
        write_array_header(&mut out, n);
        let e = entry.to_bytes();
        for _ in 0..n {
            out.extend_from_slice(&e);
        }
        write_raw(&mut out, b"path");
        write_raw(&mut out, b"big");
        assert!(out.len() < MAX_ITEM_BYTES);
        let (v, used) = decode_one(&out, Limits::ITEM).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(v.get("chunks").unwrap().as_array().unwrap().len(), n);
    }

    #[test]
    fn byte_and_depth_bounds_hold_before_the_data_arrives() {
        let limits = Limits {
            max_bytes: 100,
            ..Limits::UNLIMITED
        };
        // A string that would pass the value's byte bound is refused from its header alone.
        assert_eq!(
            decode_one(&[0xdb, 0x00, 0x00, 0x01, 0x00], limits),
            Err(DecodeError::ValueTooLarge { limit: 100 })
        );
        let mut two = vec![0x92];
        write_raw(&mut two, &[b'a'; 60]);
        write_raw(&mut two, &[b'b'; 60]);
        assert_eq!(
            decode_one(&two, limits),
            Err(DecodeError::ValueTooLarge { limit: 100 })
        );
        let deep = Limits {
            max_depth: 3,
            ..Limits::UNLIMITED
        };
        assert!(decode_all(&[0x91, 0x91, 0x91, 0xc0], deep).is_ok());
        assert_eq!(
            decode_all(&[0x91, 0x91, 0x91, 0x91, 0xc0], deep),
            Err(DecodeError::TooDeep)
        );
        // After an error the stream decoder keeps failing.
        let mut dec = StreamDecoder::new(deep);
        dec.feed(&[0x91, 0x91, 0x91, 0x91, 0xc0, 0xc0]);
        assert_eq!(dec.next_value(), Err(DecodeError::TooDeep));
        assert_eq!(dec.offset(), 3);
        assert_eq!(dec.next_value(), Err(DecodeError::TooDeep));
    }

    #[test]
    fn declared_lengths_never_reserve_more_than_is_present() {
        // A map of 2^32-1 entries with no data: no huge allocation, just "incomplete".
        assert_eq!(
            decode_one(&[0xdf, 0xff, 0xff, 0xff, 0xff], Limits::UNLIMITED),
            Err(DecodeError::Incomplete)
        );
        let mut p = Partial::default();
        let mut used = 0;
        let v = p
            .advance(
                &[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
                &Limits::UNLIMITED,
                &mut used,
            )
            .unwrap();
        assert!(v.is_none());
        assert_eq!(used, 6);
        match &p.stack[0] {
            Frame::Array { items, .. } => assert!(items.capacity() <= 1),
            Frame::Map { .. } => panic!("not a map"),
        }
    }

    #[test]
    fn rpc_limits_pass_a_put_of_the_largest_object() {
        let data = vec![0x55u8; MAX_DATA_SIZE];
        let mut req = Vec::new();
        encode(
            &Value::sorted_map(vec![
                ("i", Value::int(7)),
                ("m", Value::raw("put")),
                (
                    "a",
                    Value::sorted_map(vec![
                        ("id", Value::raw([1u8; 32])),
                        ("data", Value::Raw(data)),
                    ]),
                ),
            ]),
            &mut req,
        );
        let (got, err) = stream(&req, 1024 * 1024, Limits::RPC_SERVER);
        assert_eq!(err, None);
        assert_eq!(got.len(), 1);
        let (got, err) = stream(&req, 1024 * 1024, Limits::RPC_CLIENT);
        assert_eq!((got.len(), err), (1, None));
    }
}
