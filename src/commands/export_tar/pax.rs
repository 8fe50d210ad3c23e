//! The pax (POSIX.1-2001) members of `export-tar --tar-format PAX|BORG`, a hoard extension with
//! borg 2's semantics (borg 1.4.5 writes GNU tar only): each member is a `././@PaxHeader`
//! extended header (`x`) followed by a ustar header, as Python's `tarfile` writes them in
//! `PAX_FORMAT`, which is what borg 2 uses.
//!
//! The records, in this order ([`item_records`]): `atime`, `ctime`, `mtime` (those the item
//! has, exact to the nanosecond: borg 2 writes Python's float text, which loses the last
//! digits), `SCHILY.xattr.NAME` per xattr, `SCHILY.acl.access` / `SCHILY.acl.default` (the ACL
//! text GNU tar writes: `tag:qualifier:perms` lines without comments or borg's appended
//! numeric id), and for BORG `BORG.item.version` (`1`) and `BORG.item.meta` (the msgpacked
//! item, base64). Then, as `tarfile` adds them ([`pax_header`]): `path`, `linkpath`, `uname`,
//! `gname` when not ASCII or too long for their field, `uid`, `gid`, `size` when too large.
//!
//! Where this differs from borg 2 on purpose: times are exact; xattr names get GNU tar's
//! `%25` / `%3D` escapes for `%` and `=` (a raw `=` would end the record's keyword); no
//! `hdrcharset=BINARY` record is written for values that are not UTF-8 (GNU tar warns about
//! the keyword and needs none: values are raw bytes either way); an empty default ACL is
//! left out, as GNU tar leaves it out; `BORG.item.meta` holds no chunk list (chunk ids mean
//! nothing outside the repository, and a big file's list would outgrow what tar readers
//! accept in one extended header).

use crate::archive::item::Item;
use crate::platform::acl;

use super::{pad_len, raw_header, TarHeader, BLOCKSIZE};

/// Prefix of the pax keyword carrying one xattr (`SCHILY.xattr.user.foo`).
pub const SCHILY_XATTR: &[u8] = b"SCHILY.xattr.";
/// Pax keyword of the POSIX access ACL.
pub const SCHILY_ACL_ACCESS: &[u8] = b"SCHILY.acl.access";
/// Pax keyword of the POSIX default ACL.
pub const SCHILY_ACL_DEFAULT: &[u8] = b"SCHILY.acl.default";
/// Pax keyword of the BORG format's version; its only value is `1`.
pub const BORG_ITEM_VERSION: &[u8] = b"BORG.item.version";
/// Pax keyword of the BORG format's item: the msgpacked item, base64 (standard alphabet).
pub const BORG_ITEM_META: &[u8] = b"BORG.item.meta";

/// ustar magic and version (`POSIX_MAGIC`).
const POSIX_MAGIC: &[u8; 8] = b"ustar\x0000";

/// Pax records (keyword, value), in the order they are written.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// A time in ns as pax text: seconds, then the fraction without trailing zeros.
pub fn pax_time(ns: i64) -> Vec<u8> {
    let ns = i128::from(ns);
    let sign = if ns < 0 { "-" } else { "" };
    let (secs, frac) = (ns.abs() / 1_000_000_000, ns.abs() % 1_000_000_000);
    let text = if frac == 0 {
        format!("{sign}{secs}")
    } else {
        let digits = format!("{frac:09}");
        format!("{sign}{secs}.{}", digits.trim_end_matches('0'))
    };
    text.into_bytes()
}

/// An xattr name as GNU tar writes it after `SCHILY.xattr.`: `%` as `%25`, `=` as `%3D`.
pub fn encode_xattr_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'=' => out.extend_from_slice(b"%3D"),
            b => out.push(b),
        }
    }
    out
}

/// GNU tar's reading of such a name: `%25` and `%3D` back to `%` and `=`, nothing else.
pub fn decode_xattr_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match name.get(i..i + 3) {
            Some(b"%25") => {
                out.push(b'%');
                i += 3;
            }
            Some(b"%3D") => {
                out.push(b'=');
                i += 3;
            }
            _ => {
                out.push(name[i]);
                i += 1;
            }
        }
    }
    out
}

/// borg 2's `item_to_paxheaders` for `item` (its path already stripped): times, xattrs,
/// ACLs, and with `borg` the BORG records.
pub fn item_records(item: &Item, borg: bool) -> Records {
    let mut r: Records = Vec::new();
    for (name, ns) in [
        (&b"atime"[..], item.atime),
        (b"ctime", item.ctime),
        (b"mtime", Some(item.mtime)),
    ] {
        if let Some(ns) = ns {
            r.push((name.to_vec(), pax_time(ns)));
        }
    }
    for (name, value) in item.xattrs.iter().flatten() {
        let mut key = SCHILY_XATTR.to_vec();
        key.extend(encode_xattr_name(name));
        r.push((key, value.clone().unwrap_or_default()));
    }
    for (key, text) in [
        (SCHILY_ACL_ACCESS, &item.acl_access),
        (SCHILY_ACL_DEFAULT, &item.acl_default),
    ] {
        let text = text.as_deref().map(acl::tar_text).unwrap_or_default();
        if !text.is_empty() {
            r.push((key.to_vec(), text));
        }
    }
    if borg {
        r.push((BORG_ITEM_VERSION.to_vec(), b"1".to_vec()));
        r.push((BORG_ITEM_META.to_vec(), borg_meta(item)));
    }
    r
}

/// `BORG.item.meta`: the item as its archive stores it (msgpack), without the chunk lists,
/// base64.
fn borg_meta(item: &Item) -> Vec<u8> {
    use base64::Engine as _;
    let mut meta = item.clone();
    meta.chunks = None;
    meta.chunks_healthy = None;
    let mut packed = Vec::new();
    meta.pack_into(&mut packed);
    base64::engine::general_purpose::STANDARD
        .encode(packed)
        .into_bytes()
}

/// One pax record: `"%d %s=%s\n"`, the length counting itself.
fn record(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let l = key.len() + value.len() + 3;
    let mut p = 0usize;
    let n = loop {
        let n = l + p.to_string().len();
        if n == p {
            break n;
        }
        p = n;
    };
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Python's `str.encode("ascii", "replace")` of bytes decoded with `surrogateescape`: each
/// non-ASCII character, and each byte that is not part of valid UTF-8, becomes `?`.
fn ascii_replace(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        out.extend(
            chunk
                .valid()
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' }),
        );
        out.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
    }
    out
}

/// `mtime` seconds as `tarfile` puts them into the ustar field next to a pax `mtime`: Python's
/// `round()` (half to even) of the float time, 0 when outside the field's range.
fn ustar_mtime(ns: i64) -> i64 {
    let (secs, rem) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let rounded = if rem > 500_000_000 || (rem == 500_000_000 && secs % 2 != 0) {
        secs + 1
    } else {
        secs
    };
    if (0..8i64.pow(11)).contains(&rounded) {
        rounded
    } else {
        0
    }
}

/// The header blocks of a pax member, as Python's `TarInfo.create_pax_header` writes them:
/// the fields that do not fit the ustar header are added to `records`, then the extended
/// header (if any record) and the ustar header follow. `mtime_ns` is the item's mtime.
pub fn pax_header(h: &TarHeader, mtime_ns: i64, mut records: Records) -> Vec<u8> {
    let has = |records: &Records, key: &[u8]| records.iter().any(|(k, _)| k == key);
    let mut ustar = h.clone();
    ustar.mtime = ustar_mtime(mtime_ns);
    if !has(&records, b"mtime") {
        records.push((b"mtime".to_vec(), pax_time(mtime_ns)));
    }
    for (value, key, len) in [
        (&h.name, &b"path"[..], 100),
        (&h.linkname, b"linkpath", 100),
        (&h.uname, b"uname", 32),
        (&h.gname, b"gname", 32),
    ] {
        if !has(&records, key) && (!value.is_ascii() || value.len() > len) {
            records.push((key.to_vec(), value.clone()));
        }
    }
    for (key, digits, value, field) in [
        (&b"uid"[..], 8u32, h.uid, &mut ustar.uid),
        (b"gid", 8, h.gid, &mut ustar.gid),
        (b"size", 12, h.size, &mut ustar.size),
    ] {
        if value >= 8u64.pow(digits - 1) {
            *field = 0;
            if !has(&records, key) {
                records.push((key.to_vec(), value.to_string().into_bytes()));
            }
        }
    }
    ustar.name = ascii_replace(&h.name);
    ustar.linkname = ascii_replace(&h.linkname);
    ustar.uname = ascii_replace(&h.uname);
    ustar.gname = ascii_replace(&h.gname);
    let mut out = Vec::new();
    if !records.is_empty() {
        let mut payload = Vec::new();
        for (k, v) in &records {
            record(k, v, &mut payload);
        }
        let x = TarHeader {
            name: b"././@PaxHeader".to_vec(),
            size: payload.len() as u64,
            typeflag: b'x',
            ..TarHeader::default()
        };
        out.extend(raw_header(&x, false, POSIX_MAGIC));
        let pad = pad_len(payload.len());
        out.extend(payload);
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(raw_header(&ustar, false, POSIX_MAGIC));
    debug_assert_eq!(out.len() % BLOCKSIZE, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_exact_decimal_seconds() {
        assert_eq!(pax_time(1_600_000_000_123_456_789), b"1600000000.123456789");
        assert_eq!(pax_time(1_600_000_000_500_000_000), b"1600000000.5");
        assert_eq!(pax_time(1_600_000_000_000_000_000), b"1600000000");
        assert_eq!(pax_time(-1_500_000_000), b"-1.5");
        assert_eq!(pax_time(-5), b"-0.000000005");
        assert_eq!(ustar_mtime(1_500_000_000), 2);
        assert_eq!(ustar_mtime(2_500_000_000), 2);
        assert_eq!(ustar_mtime(2_500_000_001), 3);
        assert_eq!(ustar_mtime(-1), 0);
    }

    #[test]
    fn records_count_their_own_length() {
        // what GNU tar and Python write for these
        let mut out = Vec::new();
        record(b"mtime", b"1600000000.123456789", &mut out);
        assert_eq!(out, b"30 mtime=1600000000.123456789\n");
        out.clear();
        // 98 bytes without the length: "100" makes it 101, a third digit
        record(b"a", &[b'x'; 94], &mut out);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 a=x"));
    }

    #[test]
    fn xattr_names_escape_percent_and_equals_like_gnu_tar() {
        assert_eq!(encode_xattr_name(b"user.a=b%c"), b"user.a%3Db%25c");
        assert_eq!(decode_xattr_name(b"user.a%3Db%25c"), b"user.a=b%c");
        assert_eq!(decode_xattr_name(b"user.%41%"), b"user.%41%");
    }

    #[test]
    fn ustar_names_replace_what_is_not_ascii() {
        assert_eq!(ascii_replace("a-äö-日.txt".as_bytes()), b"a-??-?.txt");
        assert_eq!(ascii_replace(b"bad-\xff\xfe-name"), b"bad-??-name");
    }

    #[test]
    fn long_and_non_ascii_fields_move_into_records() {
        let h = TarHeader {
            name: "ü".repeat(10).into_bytes(),
            linkname: vec![b'l'; 101],
            uname: b"user".to_vec(),
            uid: 8u64.pow(7),
            size: 5,
            typeflag: b'0',
            ..TarHeader::default()
        };
        let blocks = pax_header(&h, 1_000_000_000, Vec::new());
        assert_eq!(blocks.len(), 3 * BLOCKSIZE);
        let payload = &blocks[BLOCKSIZE..2 * BLOCKSIZE];
        let text = String::from_utf8_lossy(payload);
        assert!(text.starts_with("11 mtime=1\n"), "{text}");
        assert!(
            text.contains(&format!("path={}\n", "ü".repeat(10))),
            "{text}"
        );
        assert!(text.contains(&format!("linkpath={}\n", "l".repeat(101))));
        assert!(text.contains(" uid=2097152\n"), "{text}");
        assert!(!text.contains("uname="));
        let ustar = &blocks[2 * BLOCKSIZE..];
        assert_eq!(&ustar[..10], b"??????????");
        assert_eq!(&ustar[257..265], b"ustar\x0000");
        assert_eq!(&ustar[108..116], b"0000000\0", "uid moved to the record");
    }
}
