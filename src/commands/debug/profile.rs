//! `--debug-profile FILE` and `debug convert-profile`.
//!
//! **File format.** borg writes cProfile's stats dict — `{(file, line, function): (cc, nc, tt,
//! ct, {caller: (nc, cc, tt, ct)})}` — packed with msgpack (`FILE`), or with Python's `marshal`
//! when `FILE` ends in `.pyprof` (what `pstats.Stats` reads). hoard writes the same two
//! containers, so borg's and hoard's `convert-profile` and Python's `pstats` read either
//! program's files. The *entries* are hoard's own, coarse ones: hoard is not Python and has no
//! per-function profiler, so a profile holds
//!
//! - `("hoard", 0, "main")`: the whole run (wall-clock seconds as `ct`);
//! - `("hoard", 0, "do_<command>")`, called once from `main`: the command's wall-clock time;
//! - `("hoard", 0, "cpu_user")` and `("hoard", 0, "cpu_system")`, called once from the command:
//!   the process's user and system CPU seconds (`getrusage`) as `ct` (with `tt` 0, so that the
//!   total pstats shows stays the wall-clock time).
//!
//! Times are float seconds, call counts 1. `convert-profile` turns any msgpack profile into
//! marshal format (msgpack arrays become tuples, maps dicts, str str, bin bytes), exactly as
//! borg's `marshal.dump(msgpack.unpack(f, use_list=False, raw=False))`.

use crate::msgpack::{self, Limits, Value};

use crate::commands::common::{CommandError, Result};

/// Largest profile `convert-profile` reads (a real cProfile dump of a borg run is < 10 MiB).
pub const MAX_PROFILE_BYTES: u64 = 256 << 20;

/// What one hoard run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTimes {
    /// The command's name as borg names its handler (`create`, `debug convert-profile` …).
    pub command: String,
    /// Wall-clock seconds of the whole run.
    pub wall: f64,
    /// Wall-clock seconds of the command itself.
    pub command_wall: f64,
    /// User CPU seconds of the process.
    pub cpu_user: f64,
    /// System CPU seconds of the process.
    pub cpu_system: f64,
}

fn func(name: &str) -> Value {
    Value::Array(vec![Value::raw("hoard"), Value::int(0), Value::raw(name)])
}

fn stats(cc: i64, nc: i64, tt: f64, ct: f64, callers: Vec<(Value, Value)>) -> Value {
    Value::Array(vec![
        Value::int(cc),
        Value::int(nc),
        Value::Float(tt),
        Value::Float(ct),
        Value::Map(callers),
    ])
}

fn caller(name: &str, tt: f64, ct: f64) -> (Value, Value) {
    (
        func(name),
        Value::Array(vec![
            Value::int(1),
            Value::int(1),
            Value::Float(tt),
            Value::Float(ct),
        ]),
    )
}

/// The stats dict of a run (see the module doc) as a msgpack value.
pub fn stats_of(t: &RunTimes) -> Value {
    let handler = format!("do_{}", t.command.replace([' ', '-'], "_"));
    let own_main = (t.wall - t.command_wall).max(0.0);
    Value::Map(vec![
        (func("main"), stats(1, 1, own_main, t.wall, vec![])),
        (
            func(&handler),
            stats(
                1,
                1,
                t.command_wall,
                t.command_wall,
                vec![caller("main", t.command_wall, t.command_wall)],
            ),
        ),
        (
            func("cpu_user"),
            stats(
                1,
                1,
                0.0,
                t.cpu_user,
                vec![caller(&handler, 0.0, t.cpu_user)],
            ),
        ),
        (
            func("cpu_system"),
            stats(
                1,
                1,
                0.0,
                t.cpu_system,
                vec![caller(&handler, 0.0, t.cpu_system)],
            ),
        ),
    ])
}

/// The bytes of a profile file: marshal for a name ending in `.pyprof`, else msgpack.
pub fn encode_profile(t: &RunTimes, file_name: &str) -> Result<Vec<u8>> {
    let v = stats_of(t);
    if file_name.ends_with(".pyprof") {
        to_marshal(&v)
    } else {
        Ok(v.to_bytes())
    }
}

/// `debug convert-profile INPUT OUTPUT`: the marshal form of a msgpack profile.
pub fn convert(input: &[u8]) -> Result<Vec<u8>> {
    let limits = Limits {
        max_bin: usize::MAX,
        ..Limits::UNLIMITED
    };
    let v = msgpack::decode_all(input, limits)
        .map_err(|e| CommandError::new(format!("The profile cannot be decoded: {e}")))?;
    to_marshal(&v)
}

/// Python's `marshal.dumps` (format version 4 subset) of a msgpack value read as
/// `msgpack.unpack(use_list=False, raw=False)` reads it.
pub fn to_marshal(v: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    marshal(v, &mut out, false)?;
    Ok(out)
}

fn bad(what: &str) -> CommandError {
    CommandError::new(format!("The profile cannot be converted: {what}"))
}

fn put_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = i32::try_from(n).map_err(|_| bad("value too large"))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn marshal(v: &Value, out: &mut Vec<u8>, as_key: bool) -> Result<()> {
    match v {
        Value::Nil => out.push(b'N'),
        Value::Bool(true) => out.push(b'T'),
        Value::Bool(false) => out.push(b'F'),
        Value::Int(i) => match i32::try_from(*i) {
            Ok(small) => {
                out.push(b'i');
                out.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => {
                // TYPE_LONG: signed digit count, then 15-bit digits, least significant first
                let mut mag = i.unsigned_abs();
                let mut digits = Vec::new();
                while mag > 0 {
                    digits.push((mag & 0x7fff) as u16);
                    mag >>= 15;
                }
                out.push(b'l');
                let n = digits.len() as i32;
                out.extend_from_slice(&(if *i < 0 { -n } else { n }).to_le_bytes());
                for d in digits {
                    out.extend_from_slice(&d.to_le_bytes());
                }
            }
        },
        Value::Float(f) => {
            out.push(b'g');
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Raw(b) => {
            let s = std::str::from_utf8(b).map_err(|_| bad("a string is not UTF-8"))?;
            out.push(b'u');
            put_len(out, s.len())?;
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            out.push(b's');
            put_len(out, b.len())?;
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            if items.len() < 256 {
                out.push(b')');
                out.push(items.len() as u8);
            } else {
                out.push(b'(');
                put_len(out, items.len())?;
            }
            for item in items {
                marshal(item, out, as_key)?;
            }
        }
        Value::Map(entries) => {
            if as_key {
                return Err(bad("a map is used as a key (unhashable)"));
            }
            out.push(b'{');
            for (k, val) in entries {
                marshal(k, out, true)?;
                marshal(val, out, false)?;
            }
            out.push(b'0');
        }
        Value::Ext(..) => return Err(bad("msgpack ext values have no Python form")),
    }
    Ok(())
}

/// The process's user and system CPU seconds so far (`getrusage(RUSAGE_SELF)`).
pub fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshal_of_small_values_matches_python() {
        // marshal.dumps(('a', 1, 2.0)) with refs stripped: b')\x03u\x01\x00\x00\x00a i...'
        let v = Value::Array(vec![Value::raw("a"), Value::int(1), Value::Float(2.0)]);
        let m = to_marshal(&v).unwrap();
        let mut want = vec![b')', 3, b'u', 1, 0, 0, 0, b'a', b'i', 1, 0, 0, 0, b'g'];
        want.extend_from_slice(&2.0f64.to_le_bytes());
        assert_eq!(m, want);
        // 2**40 as TYPE_LONG: 3 digits of 15 bits
        let m = to_marshal(&Value::int(1i64 << 40)).unwrap();
        assert_eq!(m, vec![b'l', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x04]);
        let m = to_marshal(&Value::int(-(1i64 << 40))).unwrap();
        assert_eq!(m[1..5], (-3i32).to_le_bytes());
    }

    #[test]
    fn convert_refuses_what_python_could_not_load() {
        let bad_key = Value::Map(vec![(Value::Map(vec![]), Value::Nil)]);
        assert!(convert(&bad_key.to_bytes()).is_err());
        assert!(convert(&[0xc1]).is_err());
        assert!(convert(&Value::Raw(vec![0xff]).to_bytes()).is_err());
    }

    #[test]
    fn a_run_profile_round_trips_through_convert() {
        let t = RunTimes {
            command: "create".into(),
            wall: 2.0,
            command_wall: 1.5,
            cpu_user: 0.25,
            cpu_system: 0.125,
        };
        let packed = encode_profile(&t, "x.prof").unwrap();
        let direct = encode_profile(&t, "x.pyprof").unwrap();
        assert_eq!(convert(&packed).unwrap(), direct);
        assert_eq!(direct[0], b'{');
    }
}
