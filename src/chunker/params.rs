//! Chunker parameters: borg's `--chunker-params` syntax, validation and stored form (FORMAT.md §6.1).

use std::fmt;
use std::str::FromStr;

use crate::msgpack::Value;

/// Default minimum chunk size exponent: 2^19 = 512 KiB (borg `CHUNK_MIN_EXP`).
pub const CHUNK_MIN_EXP: u32 = 19;
/// Default maximum chunk size exponent: 2^23 = 8 MiB (borg `CHUNK_MAX_EXP`).
pub const CHUNK_MAX_EXP: u32 = 23;
/// Default number of hash mask bits: about 2 MiB average chunks (borg `HASH_MASK_BITS`).
pub const HASH_MASK_BITS: u32 = 21;
/// Default buzhash window size in bytes (borg `HASH_WINDOW_SIZE`).
pub const HASH_WINDOW_SIZE: u32 = 4095;
/// Largest plaintext borg puts into one repository object (borg `MAX_DATA_SIZE`); the fixed
/// chunker's block and header must not exceed it.
pub use crate::compress::MAX_DATA_SIZE;
/// Algorithm name of the content-defined chunker (borg `CH_BUZHASH`).
pub const CH_BUZHASH: &str = "buzhash";
/// Algorithm name of the fixed-size chunker (borg `CH_FIXED`).
pub const CH_FIXED: &str = "fixed";

/// borg's default file-content chunker parameters, `('buzhash', 19, 23, 21, 4095)`
/// (borg `CHUNKER_PARAMS`).
pub const DEFAULT_CHUNKER_PARAMS: ChunkerParams = ChunkerParams::Buzhash {
    min_exp: CHUNK_MIN_EXP,
    max_exp: CHUNK_MAX_EXP,
    mask_bits: HASH_MASK_BITS,
    window: HASH_WINDOW_SIZE,
};

/// Parameters for chunking the item-metadata stream, `('buzhash', 15, 19, 17, 4095)`
/// (borg `ITEMS_CHUNKER_PARAMS`, FORMAT.md §6.5).
pub const ITEMS_CHUNKER_PARAMS: ChunkerParams = ChunkerParams::Buzhash {
    min_exp: 15,
    max_exp: 19,
    mask_bits: 17,
    window: HASH_WINDOW_SIZE,
};

/// Which chunker to use and how (FORMAT.md §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkerParams {
    /// Content-defined chunking with buzhash (FORMAT.md §6.2, §6.3).
    Buzhash {
        /// Minimum chunk size is `2^min_exp` (except a stream's last chunk).
        min_exp: u32,
        /// Maximum chunk size is `2^max_exp`.
        max_exp: u32,
        /// A cut happens where the low `mask_bits` bits of the window hash are zero.
        mask_bits: u32,
        /// Rolling-hash window size in bytes.
        window: u32,
    },
    /// Fixed-size blocks, with an optional differently sized header (FORMAT.md §6.4).
    Fixed {
        /// Block size in bytes (≥ 64, ≤ `MAX_DATA_SIZE`).
        block: u32,
        /// Header size in bytes (0 = no header; ≤ `MAX_DATA_SIZE`).
        header: u32,
    },
}

/// Why a chunker-params string or stored value was rejected. `Display` gives borg's argparse
/// message followed by borg's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ChunkerParams value: '{spec}': {reason}")]
pub struct ChunkerParamsError {
    /// The rejected input (a spec string, or the debug form of a stored value).
    pub spec: String,
    /// borg's `ValueError` text, or our own where borg would fail later (e.g. an assertion).
    pub reason: String,
}

impl ChunkerParamsError {
    fn new(spec: &str, reason: impl Into<String>) -> Self {
        ChunkerParamsError {
            spec: spec.to_string(),
            reason: reason.into(),
        }
    }
}

impl ChunkerParams {
    /// Checks what borg checks when parsing and when building the chunker: for buzhash
    /// `6 <= min <= mask <= max <= 23` and `window + 2^min + 1 <= 2^max`; for fixed
    /// `64 <= block <= MAX_DATA_SIZE` and `header <= MAX_DATA_SIZE`.
    pub fn validate(&self) -> Result<(), ChunkerParamsError> {
        let spec = self.to_string();
        match *self {
            ChunkerParams::Buzhash {
                min_exp,
                max_exp,
                mask_bits,
                window,
            } => {
                if !(min_exp <= mask_bits && mask_bits <= max_exp) {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        "required: chunk_min <= chunk_mask <= chunk_max",
                    ));
                }
                if min_exp < 6 {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        "min. chunk size exponent must not be less than 6 (2^6 = 64B min. chunk size)",
                    ));
                }
                if max_exp > 23 {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        "max. chunk size exponent must not be more than 23 (2^23 = 8MiB max. chunk size)",
                    ));
                }
                // borg asserts this when it builds the chunker ("too small max_size").
                if window as u64 + (1u64 << min_exp) + 1 > (1u64 << max_exp) {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        "too small max_size: required window_size + 2^chunk_min + 1 <= 2^chunk_max",
                    ));
                }
            }
            ChunkerParams::Fixed { block, header } => {
                if block < 64 {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        "block_size must not be less than 64 Bytes",
                    ));
                }
                if block as usize > MAX_DATA_SIZE || header as usize > MAX_DATA_SIZE {
                    return Err(ChunkerParamsError::new(
                        &spec,
                        format!(
                            "block_size and header_size must not exceed MAX_DATA_SIZE [{MAX_DATA_SIZE}]"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stored form in archive metadata: `['buzhash', min, max, mask, window]` or
    /// `['fixed', block, header]`, the name a msgpack raw string (FORMAT.md §6.1).
    pub fn to_msgpack(&self) -> Value {
        match *self {
            ChunkerParams::Buzhash {
                min_exp,
                max_exp,
                mask_bits,
                window,
            } => Value::Array(vec![
                Value::raw(CH_BUZHASH),
                Value::int(min_exp),
                Value::int(max_exp),
                Value::int(mask_bits),
                Value::int(window),
            ]),
            ChunkerParams::Fixed { block, header } => Value::Array(vec![
                Value::raw(CH_FIXED),
                Value::int(block),
                Value::int(header),
            ]),
        }
    }

    /// Reads the stored form, including the 4-integer tuple of borg < 1.2 (implicitly
    /// buzhash), like borg's `normalize_chunker_params`. Values are not range-checked beyond
    /// fitting in `u32`: they describe how an existing archive was made.
    pub fn from_msgpack(value: &Value) -> Result<Self, ChunkerParamsError> {
        let bad = |why: &str| ChunkerParamsError::new(&format!("{value:?}"), why);
        let arr = value
            .as_array()
            .ok_or_else(|| bad("chunker_params must be an array"))?;
        let num = |v: &Value| -> Result<u32, ChunkerParamsError> {
            match v {
                Value::Int(i) => u32::try_from(*i).map_err(|_| bad("integer out of range")),
                _ => Err(bad("expected an integer")),
            }
        };
        match arr {
            [a, b, c, d] if matches!(a, Value::Int(_)) => Ok(ChunkerParams::Buzhash {
                min_exp: num(a)?,
                max_exp: num(b)?,
                mask_bits: num(c)?,
                window: num(d)?,
            }),
            [name, rest @ ..] => {
                let name = match name {
                    Value::Raw(b) | Value::Bin(b) => b.as_slice(),
                    _ => return Err(bad("chunker algorithm must be a string")),
                };
                match (name, rest) {
                    (b"buzhash", [a, b, c, d]) => Ok(ChunkerParams::Buzhash {
                        min_exp: num(a)?,
                        max_exp: num(b)?,
                        mask_bits: num(c)?,
                        window: num(d)?,
                    }),
                    (b"fixed", [a, b]) => Ok(ChunkerParams::Fixed {
                        block: num(a)?,
                        header: num(b)?,
                    }),
                    _ => Err(bad("unsupported chunker algorithm or parameter count")),
                }
            }
            [] => Err(bad("empty chunker_params")),
        }
    }
}

impl Default for ChunkerParams {
    fn default() -> Self {
        DEFAULT_CHUNKER_PARAMS
    }
}

impl fmt::Display for ChunkerParams {
    /// The canonical spec string: `buzhash,MIN,MAX,MASK,WIN` or `fixed,BLOCK,HEADER`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkerParams::Buzhash {
                min_exp,
                max_exp,
                mask_bits,
                window,
            } => write!(f, "{CH_BUZHASH},{min_exp},{max_exp},{mask_bits},{window}"),
            ChunkerParams::Fixed { block, header } => write!(f, "{CH_FIXED},{block},{header}"),
        }
    }
}

impl FromStr for ChunkerParams {
    type Err = ChunkerParamsError;

    /// Accepts borg's `--chunker-params` forms: `buzhash,MIN,MAX,MASK,WIN`, the old
    /// `MIN,MAX,MASK,WIN`, `default` and `fixed,BLOCK[,HEADER]` (the name case-insensitive),
    /// with borg's checks (plus the window check borg only asserts later).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let params: Vec<&str> = s.trim().split(',').collect();
        let count = params.len();
        let algo = params[0].to_lowercase();
        let int = |p: &str| -> Result<i64, ChunkerParamsError> {
            crate::python::int(p).ok_or_else(|| {
                ChunkerParamsError::new(s, format!("invalid literal for int() with base 10: '{p}'"))
            })
        };
        let to_u32 = |v: i64, what: &str| -> Result<u32, ChunkerParamsError> {
            u32::try_from(v).map_err(|_| ChunkerParamsError::new(s, format!("{what} out of range")))
        };
        let result = if algo == CH_FIXED && (2..=3).contains(&count) {
            let block = int(params[1])?;
            let header = if count == 3 { int(params[2])? } else { 0 };
            if block < 64 {
                return Err(ChunkerParamsError::new(
                    s,
                    "block_size must not be less than 64 Bytes",
                ));
            }
            if block > MAX_DATA_SIZE as i64 || header > MAX_DATA_SIZE as i64 {
                return Err(ChunkerParamsError::new(
                    s,
                    format!("block_size and header_size must not exceed MAX_DATA_SIZE [{MAX_DATA_SIZE}]"),
                ));
            }
            ChunkerParams::Fixed {
                block: to_u32(block, "block_size")?,
                header: to_u32(header, "header_size")?,
            }
        } else if algo == "default" && count == 1 {
            DEFAULT_CHUNKER_PARAMS
        } else if (algo == CH_BUZHASH && count == 5) || count == 4 {
            let v: Vec<i64> = params[count - 4..]
                .iter()
                .map(|p| int(p))
                .collect::<Result<_, _>>()?;
            let (min, max, mask, window) = (v[0], v[1], v[2], v[3]);
            if !(min <= mask && mask <= max) {
                return Err(ChunkerParamsError::new(
                    s,
                    "required: chunk_min <= chunk_mask <= chunk_max",
                ));
            }
            if min < 6 {
                return Err(ChunkerParamsError::new(
                    s,
                    "min. chunk size exponent must not be less than 6 (2^6 = 64B min. chunk size)",
                ));
            }
            if max > 23 {
                return Err(ChunkerParamsError::new(
                    s,
                    "max. chunk size exponent must not be more than 23 (2^23 = 8MiB max. chunk size)",
                ));
            }
            ChunkerParams::Buzhash {
                min_exp: to_u32(min, "chunk_min")?,
                max_exp: to_u32(max, "chunk_max")?,
                mask_bits: to_u32(mask, "chunk_mask")?,
                window: to_u32(window, "window_size")?,
            }
        } else {
            return Err(ChunkerParamsError::new(s, "invalid chunker params"));
        };
        result
            .validate()
            .map_err(|e| ChunkerParamsError::new(s, e.reason))?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borg_forms() {
        assert_eq!(
            "default".parse::<ChunkerParams>(),
            Ok(DEFAULT_CHUNKER_PARAMS)
        );
        assert_eq!(
            "buzhash,10,14,12,4095".parse::<ChunkerParams>(),
            Ok(ChunkerParams::Buzhash {
                min_exp: 10,
                max_exp: 14,
                mask_bits: 12,
                window: 4095
            })
        );
        assert_eq!(
            "15,19,17,4095".parse::<ChunkerParams>(),
            Ok(ITEMS_CHUNKER_PARAMS)
        );
        assert_eq!(
            "FIXED,4096".parse::<ChunkerParams>(),
            Ok(ChunkerParams::Fixed {
                block: 4096,
                header: 0
            })
        );
        assert_eq!(
            " fixed,4096,512 ".parse::<ChunkerParams>(),
            Ok(ChunkerParams::Fixed {
                block: 4096,
                header: 512
            })
        );
        assert_eq!(
            "fixed, +4_096".parse::<ChunkerParams>(),
            Ok(ChunkerParams::Fixed {
                block: 4096,
                header: 0
            })
        );
    }

    #[test]
    fn rejects_like_borg() {
        let reason = |s: &str| s.parse::<ChunkerParams>().unwrap_err().reason;
        assert_eq!(
            reason("fixed,63"),
            "block_size must not be less than 64 Bytes"
        );
        assert!(reason("fixed,20971480").starts_with("block_size and header_size must not exceed"));
        assert!(reason("fixed,4096,20971480").contains("[20971479]"));
        assert_eq!(
            reason("buzhash,10,14,15,4095"),
            "required: chunk_min <= chunk_mask <= chunk_max"
        );
        assert!(reason("5,14,12,4095").starts_with("min. chunk size exponent"));
        assert!(reason("19,24,21,4095").starts_with("max. chunk size exponent"));
        assert!(reason("buzhash,10,10,10,4095").starts_with("too small max_size"));
        assert_eq!(reason("fixed"), "invalid chunker params");
        assert_eq!(
            reason("buzhash,1,2,3"),
            "invalid literal for int() with base 10: 'buzhash'"
        );
        assert_eq!(reason("default,1"), "invalid chunker params");
        assert_eq!(
            reason("fixed,abc"),
            "invalid literal for int() with base 10: 'abc'"
        );
        assert_eq!(reason(""), "invalid chunker params");
        assert_eq!(
            "fixed,10".parse::<ChunkerParams>().unwrap_err().to_string(),
            "invalid ChunkerParams value: 'fixed,10': block_size must not be less than 64 Bytes"
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "buzhash,19,23,21,4095",
            "buzhash,10,14,12,4095",
            "fixed,4096,0",
            "fixed,4096,512",
        ] {
            let p: ChunkerParams = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn msgpack_stored_form() {
        let p: ChunkerParams = "buzhash,10,14,12,4095".parse().unwrap();
        let v = p.to_msgpack();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Raw(b"buzhash".to_vec()),
                Value::Int(10),
                Value::Int(14),
                Value::Int(12),
                Value::Int(4095)
            ])
        );
        // msgpack bytes: fixarray(5), fixstr "buzhash", ints
        assert_eq!(
            v.to_bytes(),
            b"\x95\xa7buzhash\x0a\x0e\x0c\xcd\x0f\xff".to_vec()
        );
        assert_eq!(ChunkerParams::from_msgpack(&v), Ok(p));
        let f = ChunkerParams::Fixed {
            block: 4096,
            header: 0,
        };
        assert_eq!(
            f.to_msgpack().to_bytes(),
            b"\x93\xa5fixed\xcd\x10\x00\x00".to_vec()
        );
        assert_eq!(ChunkerParams::from_msgpack(&f.to_msgpack()), Ok(f));
        let legacy = Value::Array(vec![
            Value::Int(19),
            Value::Int(23),
            Value::Int(21),
            Value::Int(4095),
        ]);
        assert_eq!(
            ChunkerParams::from_msgpack(&legacy),
            Ok(DEFAULT_CHUNKER_PARAMS)
        );
        assert!(ChunkerParams::from_msgpack(&Value::Array(vec![
            Value::raw("rabin"),
            Value::Int(1)
        ]))
        .is_err());
        assert!(ChunkerParams::from_msgpack(&Value::Int(3)).is_err());
        assert!(ChunkerParams::from_msgpack(&Value::Array(vec![])).is_err());
    }
}
