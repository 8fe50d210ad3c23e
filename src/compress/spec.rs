//! `--compression` specs: borg's syntax, validation and canonical form (FORMAT.md §5).

use std::fmt;
use std::str::FromStr;

/// A compression setting, as given with borg's `-C/--compression` (FORMAT.md §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `none`: store as is (header `00 00`).
    None,
    /// `lz4`: one raw LZ4 block (header `01 00`).
    Lz4,
    /// `zstd[,L]`: one zstd frame with content size (header `03 00`), level 1..=22.
    Zstd(i32),
    /// `zlib[,L]`: a raw RFC 1950 zlib stream without borg header, level 0..=9.
    Zlib(u32),
    /// `lzma[,L]`: a .xz stream with `CHECK_NONE` (header `02 00`), preset 0..=9.
    Lzma(u32),
    /// `auto,C[,L]`: lz4 decides whether trying C is worthwhile (see [`crate::compress::compress`]).
    Auto(Box<Compression>),
    /// `obfuscate,S,C[,L]`: C's framed output wrapped with a length and random zero padding
    /// (header `04 00`).
    Obfuscate {
        /// The obfuscation level S: 1..=6 (relative padding) or 110..=123 (absolute padding
        /// up to `2^(S-100)` bytes).
        level: u32,
        /// The compression whose framed output is wrapped.
        inner: Box<Compression>,
    },
}

impl Default for Compression {
    /// `lz4`, borg's default for commands that write chunks.
    fn default() -> Self {
        Compression::Lz4
    }
}

/// A compression spec borg would refuse. `Display` gives borg's argparse message (borg itself
/// says no more) followed by the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CompressionSpec value: '{spec}' ({reason})")]
pub struct CompressionSpecError {
    /// The whole rejected spec string.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

fn parse(values: &[&str]) -> Result<Compression, String> {
    let count = values.len();
    let level = |default: i64, lo: i64, hi: i64| -> Result<i64, String> {
        match count {
            1 => Ok(default),
            2 => {
                let l = crate::python::int(values[1]).ok_or_else(|| {
                    format!("invalid literal for int() with base 10: '{}'", values[1])
                })?;
                if (lo..=hi).contains(&l) {
                    Ok(l)
                } else {
                    Err(format!("{} level must be in {lo}..{hi}", values[0]))
                }
            }
            _ => Err(format!("too many parameters for {}", values[0])),
        }
    };
    // borg accepts and ignores extra values after `none` and `lz4`.
    match values[0] {
        "none" => Ok(Compression::None),
        "lz4" => Ok(Compression::Lz4),
        "zlib" => Ok(Compression::Zlib(level(6, 0, 9)? as u32)),
        "lzma" => Ok(Compression::Lzma(level(6, 0, 9)? as u32)),
        "zstd" => Ok(Compression::Zstd(level(3, 1, 22)? as i32)),
        "auto" => {
            if !(2..=3).contains(&count) {
                return Err("auto needs a compression: auto,C[,L]".into());
            }
            Ok(Compression::Auto(Box::new(parse(&values[1..])?)))
        }
        "obfuscate" => {
            if !(3..=5).contains(&count) {
                return Err("obfuscate needs a level and a compression: obfuscate,S,C[,L]".into());
            }
            let l = crate::python::int(values[1]).ok_or_else(|| {
                format!("invalid literal for int() with base 10: '{}'", values[1])
            })?;
            if !((1..=6).contains(&l) || (110..=123).contains(&l)) {
                return Err("obfuscate level must be in 1..6 or 110..123".into());
            }
            Ok(Compression::Obfuscate {
                level: l as u32,
                inner: Box::new(parse(&values[2..])?),
            })
        }
        other => Err(format!("unknown compression algorithm '{other}'")),
    }
}

impl FromStr for Compression {
    type Err = CompressionSpecError;

    /// Accepts exactly what borg 1.2's `CompressionSpec` accepts: `none`, `lz4`,
    /// `zstd[,1..22]`, `zlib[,0..9]`, `lzma[,0..9]`, `auto,C[,L]`, `obfuscate,S,C[,L]`
    /// (names are case-sensitive, as in borg).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let values: Vec<&str> = s.split(',').collect();
        parse(&values).map_err(|reason| CompressionSpecError {
            spec: s.to_string(),
            reason,
        })
    }
}

impl fmt::Display for Compression {
    /// The canonical spec string, with levels always spelled out (`zstd,3`, `auto,lzma,6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => write!(f, "none"),
            Compression::Lz4 => write!(f, "lz4"),
            Compression::Zstd(l) => write!(f, "zstd,{l}"),
            Compression::Zlib(l) => write!(f, "zlib,{l}"),
            Compression::Lzma(l) => write!(f, "lzma,{l}"),
            Compression::Auto(inner) => write!(f, "auto,{inner}"),
            Compression::Obfuscate { level, inner } => write!(f, "obfuscate,{level},{inner}"),
        }
    }
}
