//! The metadata `import-tar` takes from a member's pax records, with borg 2's rules
//! (`TarfileObjectProcessors.create_helper`; borg 1.4.5 keeps only the header fields and a pax
//! `mtime`):
//!
//! * `BORG.item.version` `1` with `BORG.item.meta` (from `export-tar --tar-format BORG`): the
//!   item is the msgpacked one, except what the tar member itself says: the file type (the
//!   permission bits come from the item), the link target, the device number and the content
//!   (chunk lists, `size` and `part` in the meta are ignored). Its path is made safe like a
//!   member name. Another version is refused.
//! * otherwise `atime`, `ctime` (`mtime` the reader has applied already), `SCHILY.xattr.NAME`
//!   (GNU tar's `%25` / `%3D` escapes undone; `system.posix_acl_*` is left out, as `create`
//!   leaves it out: ACLs travel in their own keys) and `SCHILY.acl.access` /
//!   `SCHILY.acl.default` (GNU tar's text, stored in borg's form with the numeric ids, so
//!   borg 1.x restores it);
//! * bsdtar's `LIBARCHIVE.xattr.NAME` (name percent-encoded, value base64), for an xattr that
//!   has no `SCHILY.xattr` record (bsdtar writes both forms; older ones only this one).

use std::collections::BTreeMap;

use crate::archive::item::{Item, S_IFMT};
use crate::commands::export_tar::pax::{
    decode_xattr_name, BORG_ITEM_META, BORG_ITEM_VERSION, SCHILY_ACL_ACCESS, SCHILY_ACL_DEFAULT,
    SCHILY_XATTR,
};
use crate::msgpack::{self, Limits, Value};
use crate::platform::acl;

use super::super::create;
use super::super::{CommandError, Result};
use super::reader::{Member, Mtime};

/// bsdtar's (libarchive's) xattr records: `LIBARCHIVE.xattr.` + percent-encoded name, base64
/// value.
const LIBARCHIVE_XATTR: &[u8] = b"LIBARCHIVE.xattr.";

/// Undoes libarchive's percent-encoding of an xattr name (`%XX` for any byte it escapes); a
/// `%` not followed by two hex digits stays as it is.
fn percent_decode(name: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'%' {
            if let (Some(h), Some(l)) = (
                name.get(i + 1).and_then(|b| hex(*b)),
                name.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(name[i]);
        i += 1;
    }
    out
}

/// A base64 value of a `LIBARCHIVE.xattr` record (padded or not); `None` when it is not
/// base64.
fn base64_value(v: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text: Vec<u8> = v
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .ok()
}

/// The prefix of the xattrs that hold POSIX ACLs in binary form.
const POSIX_ACL_XATTR_PREFIX: &[u8] = b"system.posix_acl_";

/// Keys of `BORG.item.meta` that the member's own data replaces.
const REPLACED_KEYS: &[&[u8]] = &[
    b"chunks",
    b"chunks_healthy",
    b"size",
    b"csize",
    b"part",
    b"source",
    b"rdev",
];

fn record<'a>(m: &'a Member, key: &[u8]) -> Option<&'a [u8]> {
    m.pax
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// The item of `BORG.item.meta`, if the member has one; `kind` is the member's file type.
/// `Ok(None)` without BORG records.
pub fn borg_item(m: &Member, kind: u32) -> Result<Option<Item>> {
    let Some(version) = record(m, BORG_ITEM_VERSION) else {
        return Ok(None);
    };
    let name = create::remove_surrogates(&m.name);
    let bad = |why: String| CommandError::new(format!("{name}: invalid BORG.item.meta: {why}"));
    if version != b"1" {
        return Err(CommandError::new(format!(
            "{name}: unsupported BORG.item.version {}",
            crate::python::bytes_repr(version)
        )));
    }
    let meta = record(m, BORG_ITEM_META).ok_or_else(|| bad("missing".into()))?;
    let packed = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(meta.trim_ascii())
            .map_err(|e| bad(e.to_string()))?
    };
    let value = msgpack::decode_all(&packed, Limits::ITEM).map_err(|e| bad(e.to_string()))?;
    let Value::Map(entries) = value else {
        return Err(bad("not a map".into()));
    };
    let kept: Vec<(Value, Value)> = entries
        .into_iter()
        .filter(|(k, _)| !k.as_bytes().is_some_and(|k| REPLACED_KEYS.contains(&k)))
        .collect();
    let mut item = Item::from_value(&Value::Map(kept)).map_err(bad)?;
    item.path = create::make_path_safe(&create::normpath(&item.path));
    item.mode = (item.mode & !S_IFMT) | kind;
    Ok(Some(item))
}

/// Adds what the pax records say beyond the header fields (borg 2 without BORG records):
/// atime, ctime, xattrs and ACLs.
pub fn apply_records(item: &mut Item, m: &Member) {
    let time = |v: &[u8]| {
        let f = std::str::from_utf8(v)
            .ok()
            .and_then(crate::python::float)
            .unwrap_or(0.0);
        Mtime::Float(f).safe_ns()
    };
    if let Some(v) = record(m, b"atime") {
        item.atime = Some(time(v));
    }
    if let Some(v) = record(m, b"ctime") {
        item.ctime = Some(time(v));
    }
    let mut xattrs: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    // bsdtar's records first, so that a SCHILY record of the same name wins.
    for (k, v) in &m.pax {
        let Some(name) = k.strip_prefix(LIBARCHIVE_XATTR) else {
            continue;
        };
        let name = percent_decode(name);
        if name.is_empty() || name.starts_with(POSIX_ACL_XATTR_PREFIX) {
            continue;
        }
        if let Some(value) = base64_value(v) {
            xattrs.insert(name, Some(value).filter(|v| !v.is_empty()));
        }
    }
    for (k, v) in &m.pax {
        if let Some(name) = k.strip_prefix(SCHILY_XATTR) {
            let name = decode_xattr_name(name);
            if name.is_empty() || name.starts_with(POSIX_ACL_XATTR_PREFIX) {
                continue;
            }
            // an empty value is stored as nil, as `create` stores it
            xattrs.insert(name, Some(v.clone()).filter(|v| !v.is_empty()));
        } else if k == SCHILY_ACL_ACCESS {
            item.acl_access = Some(acl::borg_text(v, false)).filter(|t| !t.is_empty());
        } else if k == SCHILY_ACL_DEFAULT {
            item.acl_default = Some(acl::borg_text(v, false)).filter(|t| !t.is_empty());
        }
    }
    if !xattrs.is_empty() {
        item.xattrs = Some(xattrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::item::{S_IFDIR, S_IFREG};
    use crate::commands::export_tar::pax;

    fn member(records: Vec<(&[u8], Vec<u8>)>) -> Member {
        let mut data = Vec::new();
        let mut body = Vec::new();
        for (k, v) in &records {
            let rest = [b" ", *k, b"=", v, b"\n"].concat();
            let mut len = rest.len() + 1;
            while format!("{len}").len() + rest.len() != len {
                len += 1;
            }
            body.extend(format!("{len}").into_bytes());
            body.extend(rest);
        }
        let h = crate::commands::export_tar::TarHeader {
            name: b"././@PaxHeader".to_vec(),
            size: body.len() as u64,
            typeflag: b'x',
            ..Default::default()
        };
        data.extend(crate::commands::export_tar::gnu_header(&h));
        data.extend(&body);
        data.resize(data.len().div_ceil(512) * 512, 0);
        data.extend(crate::commands::export_tar::gnu_header(
            &crate::commands::export_tar::TarHeader {
                name: b"f".to_vec(),
                mode: 0o640,
                typeflag: b'0',
                ..Default::default()
            },
        ));
        data.extend([0u8; 1024]);
        let mut r = super::super::reader::TarReader::new(&data[..], false);
        r.next_member().unwrap().unwrap()
    }

    #[test]
    fn xattrs_acls_and_times_are_taken_from_records() {
        let m = member(vec![
            (b"atime", b"1600000000.25".to_vec()),
            (b"ctime", b"1600000001".to_vec()),
            (b"SCHILY.xattr.user.a%3Db", b"v\xff".to_vec()),
            (b"SCHILY.xattr.user.empty", b"".to_vec()),
            (
                b"SCHILY.xattr.system.posix_acl_access",
                b"\x02\0\0\0".to_vec(),
            ),
            (
                b"SCHILY.acl.access",
                b"user::rw-\nuser:4242:r--\ngroup::r--\nmask::r--\nother::---\n".to_vec(),
            ),
        ]);
        let mut item = Item::default();
        apply_records(&mut item, &m);
        // borg 2's int(float(text) * 1e9), which is off by the double's precision
        assert_eq!(item.atime, Some(1_600_000_000_249_999_872));
        assert_eq!(item.ctime, Some(1_600_000_001_000_000_000));
        let x = item.xattrs.unwrap();
        assert_eq!(x.len(), 2);
        assert_eq!(x[b"user.a=b".as_slice()], Some(b"v\xff".to_vec()));
        assert_eq!(x[b"user.empty".as_slice()], None);
        assert_eq!(
            item.acl_access.unwrap(),
            b"user::rw-\nuser:4242:r--:4242\ngroup::r--\nmask::r--\nother::---"
        );
        assert_eq!(item.acl_default, None);
        assert!(borg_item(&m, S_IFREG).unwrap().is_none());
    }

    #[test]
    fn bsdtar_xattr_records_are_read_and_schily_wins() {
        let m = member(vec![
            // "v\xff" in base64, name "user.a b=c"
            (b"LIBARCHIVE.xattr.user.a%20b%3Dc", b"dv8=".to_vec()),
            // unpadded base64 of "hello"
            (b"LIBARCHIVE.xattr.user.hello", b"aGVsbG8".to_vec()),
            (b"LIBARCHIVE.xattr.user.both", b"bGli".to_vec()),
            (b"SCHILY.xattr.user.both", b"schily".to_vec()),
            (b"LIBARCHIVE.xattr.user.bad", b"*not base64*".to_vec()),
            (
                b"LIBARCHIVE.xattr.system.posix_acl_access",
                b"AgAAAA==".to_vec(),
            ),
        ]);
        let mut item = Item::default();
        apply_records(&mut item, &m);
        let x = item.xattrs.unwrap();
        assert_eq!(x.len(), 3, "{x:?}");
        assert_eq!(x[b"user.a b=c".as_slice()], Some(b"v\xff".to_vec()));
        assert_eq!(x[b"user.hello".as_slice()], Some(b"hello".to_vec()));
        assert_eq!(x[b"user.both".as_slice()], Some(b"schily".to_vec()));
        assert_eq!(percent_decode(b"a%zz%4"), b"a%zz%4".to_vec());
    }

    #[test]
    fn borg_meta_gives_the_item_with_the_members_type_and_a_safe_path() {
        let original = Item {
            path: b"../../etc/evil".to_vec(),
            mode: S_IFDIR | 0o4751,
            uid: 7,
            user: Some(b"seven".to_vec()),
            mtime: 1_600_000_000_123_456_789,
            ctime: Some(5),
            bsdflags: Some(2),
            source: Some(b"/elsewhere".to_vec()),
            size: Some(1 << 40),
            ..Item::default()
        };
        let records = pax::item_records(&original, true);
        let meta = records
            .iter()
            .find(|(k, _)| k == BORG_ITEM_META)
            .unwrap()
            .1
            .clone();
        let m = member(vec![
            (BORG_ITEM_VERSION, b"1".to_vec()),
            (BORG_ITEM_META, meta),
        ]);
        let item = borg_item(&m, S_IFREG).unwrap().unwrap();
        assert_eq!(item.path, b"etc/evil");
        assert_eq!(item.mode, S_IFREG | 0o4751);
        assert_eq!(
            (item.uid, item.user.as_deref(), item.mtime, item.ctime),
            (7, Some(&b"seven"[..]), 1_600_000_000_123_456_789, Some(5))
        );
        assert_eq!(item.bsdflags, Some(2));
        assert_eq!((item.source, item.size, item.chunks), (None, None, None));

        let m = member(vec![(BORG_ITEM_VERSION, b"2".to_vec())]);
        let e = borg_item(&m, S_IFREG).unwrap_err();
        assert_eq!(e.message, "f: unsupported BORG.item.version b'2'");
        let m = member(vec![
            (BORG_ITEM_VERSION, b"1".to_vec()),
            (BORG_ITEM_META, b"!!!".to_vec()),
        ]);
        let e = borg_item(&m, S_IFREG).unwrap_err();
        assert!(
            e.message.starts_with("f: invalid BORG.item.meta: "),
            "{}",
            e.message
        );
    }
}
