//! msgpack the way borg 1.x speaks it (spec §7.1).
//!
//! Borg packs with the *old* msgpack spec: every byte string, text or not, is written in the
//! str/raw family (fixstr, `da` str16, `db` str32 — never `d9` str8 and never bin). This module owns
//! a small dynamic [`Value`] model, an encoder that reproduces borg's choices byte for byte, and a
//! decoder with borg's per-context limits ([`Limits`]) that can also decode a value at a time out of
//! a growing buffer (item streams span chunk boundaries). It must never panic on hostile input.

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
            out.push(0xc7);
            out.push(d.len() as u8);
            out.push(*t as u8);
            out.extend_from_slice(d);
        }
    }
}

/// Why a decode failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended inside a value; more bytes may complete it.
    #[error("msgpack data ends in the middle of a value")]
    Incomplete,
    /// A byte that starts no valid msgpack value (0xc1).
    #[error("invalid msgpack marker byte 0x{0:02x}")]
    InvalidMarker(u8),
    /// A string, bin, array or map longer than this context allows.
    #[error("msgpack {kind} of length {len} exceeds the limit {limit}")]
    LimitExceeded {
        /// "str", "bin", "array" or "map".
        kind: &'static str,
        /// The length found.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("msgpack nesting too deep")]
    TooDeep,
    /// Bytes left over after a value that should fill the buffer.
    #[error("{0} unexpected bytes after the msgpack value")]
    TrailingBytes(usize),
}

/// Maximum nesting depth the decoder follows (guards the stack against hostile input).
pub const MAX_DEPTH: usize = 256;

/// Per-context size limits, as borg's `get_limited_unpacker` sets them (spec §7.1).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest str/raw.
    pub max_str: usize,
    /// Longest bin; 0 rejects every bin value (borg's `max_bin_len=0`).
    pub max_bin: usize,
    /// Most array elements.
    pub max_array: usize,
    /// Most map entries.
    pub max_map: usize,
}

impl Limits {
    /// No limits beyond the stack guard (item streams, hints, files cache).
    pub const UNLIMITED: Limits = Limits {
        max_str: usize::MAX,
        max_bin: usize::MAX,
        max_array: usize::MAX,
        max_map: usize::MAX,
    };
    /// The manifest: str ≤ 255, no bin, array ≤ 100, map ≤ 400000.
    pub const MANIFEST: Limits = Limits {
        max_str: 255,
        max_bin: 0,
        max_array: 100,
        max_map: 400_000,
    };
    /// The encrypted key envelope and the key material: str ≤ 4000, no bin, no arrays, map ≤ 10.
    pub const KEY: Limits = Limits {
        max_str: 4000,
        max_bin: 0,
        max_array: 0,
        max_map: 10,
    };
    /// Archive metadata (borg 1.2.5+): str ≤ 10000, no bin, map ≤ 100.
    pub const ARCHIVE: Limits = Limits {
        max_str: 10_000,
        max_bin: 0,
        max_array: usize::MAX,
        max_map: 100,
    };
    /// RPC messages as a server unpacks them.
    pub const RPC_SERVER: Limits = Limits {
        max_str: 20 * 1024 * 1024 + 1024,
        max_bin: 0,
        max_array: 100,
        max_map: 100,
    };
    /// RPC messages as a client unpacks them.
    pub const RPC_CLIENT: Limits = Limits {
        max_str: 20 * 1024 * 1024 + 1024,
        max_bin: 0,
        max_array: 100_000,
        max_map: 100,
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
    let mut reader = Reader {
        data,
        pos: 0,
        limits,
    };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        if end > self.data.len() {
            return Err(DecodeError::Incomplete);
        }
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    fn check(kind: &'static str, len: usize, limit: usize) -> Result<(), DecodeError> {
        if len > limit {
            Err(DecodeError::LimitExceeded { kind, len, limit })
        } else {
            Ok(())
        }
    }

    fn raw(&mut self, len: usize) -> Result<Value, DecodeError> {
        Self::check("str", len, self.limits.max_str)?;
        Ok(Value::Raw(self.take(len)?.to_vec()))
    }

    fn bin(&mut self, len: usize) -> Result<Value, DecodeError> {
        Self::check("bin", len, self.limits.max_bin)?;
        Ok(Value::Bin(self.take(len)?.to_vec()))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        Self::check("array", len, self.limits.max_array)?;
        // Each element needs at least one byte: never pre-allocate more than what is left.
        let mut items = Vec::with_capacity(len.min(self.data.len() - self.pos));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        Self::check("map", len, self.limits.max_map)?;
        let mut entries = Vec::with_capacity(len.min((self.data.len() - self.pos) / 2));
        for _ in 0..len {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }

    fn ext(&mut self, len: usize) -> Result<Value, DecodeError> {
        let t = self.byte()? as i8;
        Ok(Value::Ext(t, self.take(len)?.to_vec()))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let m = self.byte()?;
        match m {
            0x00..=0x7f => Ok(Value::Int(m as i128)),
            0x80..=0x8f => self.map((m & 0x0f) as usize, depth),
            0x90..=0x9f => self.array((m & 0x0f) as usize, depth),
            0xa0..=0xbf => self.raw((m & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc1 => Err(DecodeError::InvalidMarker(m)),
            0xc2 => Ok(Value::Bool(false)),
            0xc3 => Ok(Value::Bool(true)),
            0xc4 => {
                let n = self.be(1)? as usize;
                self.bin(n)
            }
            0xc5 => {
                let n = self.be(2)? as usize;
                self.bin(n)
            }
            0xc6 => {
                let n = self.be(4)? as usize;
                self.bin(n)
            }
            0xc7 => {
                let n = self.be(1)? as usize;
                self.ext(n)
            }
            0xc8 => {
                let n = self.be(2)? as usize;
                self.ext(n)
            }
            0xc9 => {
                let n = self.be(4)? as usize;
                self.ext(n)
            }
            0xca => Ok(Value::Float(f32::from_bits(self.be(4)? as u32) as f64)),
            0xcb => Ok(Value::Float(f64::from_bits(self.be(8)?))),
            0xcc => Ok(Value::Int(self.be(1)? as i128)),
            0xcd => Ok(Value::Int(self.be(2)? as i128)),
            0xce => Ok(Value::Int(self.be(4)? as i128)),
            0xcf => Ok(Value::Int(self.be(8)? as i128)),
            0xd0 => Ok(Value::Int(self.be(1)? as u8 as i8 as i128)),
            0xd1 => Ok(Value::Int(self.be(2)? as u16 as i16 as i128)),
            0xd2 => Ok(Value::Int(self.be(4)? as u32 as i32 as i128)),
            0xd3 => Ok(Value::Int(self.be(8)? as i64 as i128)),
            0xd4 => self.ext(1),
            0xd5 => self.ext(2),
            0xd6 => self.ext(4),
            0xd7 => self.ext(8),
            0xd8 => self.ext(16),
            0xd9 => {
                let n = self.be(1)? as usize;
                self.raw(n)
            }
            0xda => {
                let n = self.be(2)? as usize;
                self.raw(n)
            }
            0xdb => {
                let n = self.be(4)? as usize;
                self.raw(n)
            }
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(n, depth)
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(n, depth)
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(n, depth)
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(n, depth)
            }
            0xe0..=0xff => Ok(Value::Int(m as i8 as i128)),
        }
    }
}

/// Decodes a sequence of values that arrive in pieces (an item stream split over chunks).
/// Feed bytes with [`StreamDecoder::feed`], then drain complete values with
/// [`StreamDecoder::next_value`].
#[derive(Debug)]
pub struct StreamDecoder {
    buffer: Vec<u8>,
    pos: usize,
    limits: Limits,
}

impl StreamDecoder {
    /// A decoder applying `limits` to each value.
    pub fn new(limits: Limits) -> Self {
        StreamDecoder {
            buffer: Vec::new(),
            pos: 0,
            limits,
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
        if self.pos >= self.buffer.len() {
            return Ok(None);
        }
        match decode_one(&self.buffer[self.pos..], self.limits) {
            Ok((v, used)) => {
                self.pos += used;
                Ok(Some(v))
            }
            Err(DecodeError::Incomplete) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bytes fed but not yet decoded; non-zero at the end of a stream means it was truncated.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.pos
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
}
