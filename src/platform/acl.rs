//! POSIX ACLs as borg 1.2 stores them on Linux (`acl_access`, `acl_default` item keys), without
//! libacl: the kernel's binary `system.posix_acl_access` / `system.posix_acl_default` xattrs are
//! converted to and from text here.
//!
//! Reading ([`acl_get`]) reproduces `borg.platform.linux.acl_get` bit for bit:
//! * Nothing is stored for symlinks, nor unless the object has an *extended* ACL (libacl's
//!   `acl_extended_file`: an access ACL of more than the 3 base entries, or any default ACL).
//! * Then the access ACL is stored — synthesised from the mode bits if there is no access xattr —
//!   and, for directories, the default ACL (an empty text if there is none).
//! * The text is libacl's `acl_to_text` (names for named entries, `\t#effective:...` comments when
//!   the mask removes permissions), after which borg removes `' *#.*'` (which leaves the tab!),
//!   drops empty lines, joins with `\n` and appends the numeric id as a 4th field to named
//!   entries; with `numeric_ids` the name field is replaced by the id too.
//!
//! Restoring ([`acl_set`]) follows `borg.platform.linux.acl_set`: names are resolved to local ids
//! (falling back to the stored id) unless `numeric_ids`, in which case the stored ids are used;
//! the result is parsed like libacl's `acl_from_text` and written as the binary xattr. The
//! kernel itself drops an access ACL that is equivalent to the mode bits.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::{PlatformError, Result};
use super::users;
use super::xattr::{self, Target};

/// Name of the xattr holding the access ACL.
pub const XATTR_ACCESS: &[u8] = b"system.posix_acl_access";
/// Name of the xattr holding the default ACL (directories only).
pub const XATTR_DEFAULT: &[u8] = b"system.posix_acl_default";
/// Version number in the header of the binary ACL xattr.
pub const XATTR_VERSION: u32 = 2;

/// Entry tag: owning user.
pub const TAG_USER_OBJ: u16 = 0x01;
/// Entry tag: named user.
pub const TAG_USER: u16 = 0x02;
/// Entry tag: owning group.
pub const TAG_GROUP_OBJ: u16 = 0x04;
/// Entry tag: named group.
pub const TAG_GROUP: u16 = 0x08;
/// Entry tag: mask.
pub const TAG_MASK: u16 = 0x10;
/// Entry tag: others.
pub const TAG_OTHER: u16 = 0x20;
/// The id of entries that are not named (`ACL_UNDEFINED_ID`).
pub const UNDEFINED_ID: u32 = u32::MAX;

/// Size of the header plus three entries: an access ACL of this size is equivalent to the mode.
const BASE_SIZE: usize = 4 + 3 * 8;

/// One ACL entry as in the kernel's xattr layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    /// One of the `TAG_*` constants.
    pub tag: u16,
    /// Permission bits: 4 = read, 2 = write, 1 = execute.
    pub perm: u16,
    /// uid or gid for named entries, [`UNDEFINED_ID`] otherwise.
    pub id: u32,
}

/// The ACL texts of one file system object, as stored in an item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclTexts {
    /// `acl_access`, if it is to be stored.
    pub access: Option<Vec<u8>>,
    /// `acl_default`, if it is to be stored (may be empty: borg stores `b""` for a directory
    /// with an extended access ACL but no default ACL).
    pub default: Option<Vec<u8>>,
}

/// Decode a binary `system.posix_acl_*` xattr value.
pub fn parse_xattr(data: &[u8]) -> Result<Vec<AclEntry>> {
    let (header, body) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| PlatformError::BadAclXattr(format!("{} bytes", data.len())))?;
    let version = u32::from_le_bytes(*header);
    if version != XATTR_VERSION {
        return Err(PlatformError::BadAclXattr(format!("version {version}")));
    }
    if body.len() % 8 != 0 {
        return Err(PlatformError::BadAclXattr(format!("{} bytes", data.len())));
    }
    Ok(body
        .chunks_exact(8)
        .map(|e| AclEntry {
            tag: u16::from_le_bytes([e[0], e[1]]),
            perm: u16::from_le_bytes([e[2], e[3]]),
            id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect())
}

/// Encode entries as a binary `system.posix_acl_*` xattr value (in the given order).
pub fn to_xattr(entries: &[AclEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 8 * entries.len());
    out.extend_from_slice(&XATTR_VERSION.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.perm.to_le_bytes());
        out.extend_from_slice(&e.id.to_le_bytes());
    }
    out
}

/// The minimal ACL equivalent to the permission bits of `mode` (libacl's `acl_from_mode`).
pub fn from_mode(mode: u32) -> Vec<AclEntry> {
    let e = |tag, shift: u32| AclEntry {
        tag,
        perm: ((mode >> shift) & 7) as u16,
        id: UNDEFINED_ID,
    };
    vec![e(TAG_USER_OBJ, 6), e(TAG_GROUP_OBJ, 3), e(TAG_OTHER, 0)]
}

/// Sort entries into the canonical order (by tag, then id), as libacl does before writing.
fn canonical(mut entries: Vec<AclEntry>) -> Vec<AclEntry> {
    entries.sort_by_key(|e| (e.tag, e.id));
    entries
}

/// `rwx` text of permission bits.
fn perm_text(perm: u16) -> [u8; 3] {
    [
        if perm & 4 != 0 { b'r' } else { b'-' },
        if perm & 2 != 0 { b'w' } else { b'-' },
        if perm & 1 != 0 { b'x' } else { b'-' },
    ]
}

/// Reproduce libacl's `acl_to_text` (one entry per line, each ending in `\n`; names for named
/// entries, or the decimal id if unknown; `\t#effective:...` if the mask removes permissions).
pub fn libacl_text(entries: &[AclEntry]) -> Vec<u8> {
    let mask = entries.iter().find(|e| e.tag == TAG_MASK).map(|e| e.perm);
    let mut out = Vec::new();
    for e in entries {
        let (tag, name): (&[u8], Option<Vec<u8>>) = match e.tag {
            TAG_USER_OBJ => (b"user", None),
            TAG_USER => (
                b"user",
                Some(users::uid2user(e.id).unwrap_or_else(|| id_text(e.id))),
            ),
            TAG_GROUP_OBJ => (b"group", None),
            TAG_GROUP => (
                b"group",
                Some(users::gid2group(e.id).unwrap_or_else(|| id_text(e.id))),
            ),
            TAG_MASK => (b"mask", None),
            TAG_OTHER => (b"other", None),
            _ => continue, // libacl would reject the ACL; skip unknown tags
        };
        out.extend_from_slice(tag);
        out.push(b':');
        out.extend_from_slice(name.as_deref().unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(&perm_text(e.perm));
        if let (Some(m), TAG_USER | TAG_GROUP_OBJ | TAG_GROUP) = (mask, e.tag) {
            if e.perm & m != e.perm {
                out.extend_from_slice(b"\t#effective:");
                out.extend_from_slice(&perm_text(e.perm & m));
            }
        }
        out.push(b'\n');
    }
    out
}

fn id_text(id: u32) -> Vec<u8> {
    id.to_string().into_bytes()
}

/// Apply borg's `_comment_re = ' *#.*'` to one line: cut at the first `#` and the spaces
/// (only spaces, not tabs) directly before it.
fn strip_comment(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b'#') {
        None => line,
        Some(pos) => {
            let mut end = pos;
            while end > 0 && line[end - 1] == b' ' {
                end -= 1;
            }
            &line[..end]
        }
    }
}

/// Resolve a name field the way borg's `user2uid(name, name)` / `group2gid(name, name)` do:
/// the local id as decimal text, or the name itself if it does not resolve.
fn resolve_or_keep(tag: &[u8], name: &[u8]) -> Vec<u8> {
    let id = if tag == b"user" {
        users::user2uid(name)
    } else {
        users::group2gid(name)
    };
    id.map_or_else(|| name.to_vec(), id_text)
}

/// Convert libacl text into the text borg stores (`acl_append_numeric_ids`, or
/// `acl_numeric_ids` when `numeric_ids`).
pub fn borg_text(libacl: &[u8], numeric_ids: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in libacl.split(|&b| b == b'\n') {
        let entry = strip_comment(line);
        if entry.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = entry.split(|&b| b == b':').collect();
        match fields[..] {
            [tag, name, perm] if !name.is_empty() && (tag == b"user" || tag == b"group") => {
                let id = resolve_or_keep(tag, name);
                let name = if numeric_ids { &id[..] } else { name };
                lines.push([tag, name, perm, &id].join(&b':'));
            }
            _ => lines.push(entry.to_vec()),
        }
    }
    lines.join(&b'\n')
}

/// Convert stored borg text into the text GNU tar writes into a pax `SCHILY.acl.access` /
/// `SCHILY.acl.default` record (what `getfacl` prints without its comments): one
/// `tag:qualifier:perms` entry per line, each ending in `\n`, without `#` comments, without the
/// whitespace borg's comment removal leaves behind, and without borg's appended numeric id.
/// The qualifier stays as stored (the name, or the id borg stored instead).
pub fn tar_text(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in stored.split(|&b| b == b'\n') {
        let entry = match line.iter().position(|&b| b == b'#') {
            Some(p) => &line[..p],
            None => line,
        };
        let fields: Vec<&[u8]> = entry
            .split(|&b| b == b':')
            .map(<[u8]>::trim_ascii)
            .take(3)
            .collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        out.extend(fields.join(&b':'));
        out.push(b'\n');
    }
    out
}

/// Convert stored borg text into text for `acl_from_text` on restore: borg's
/// `acl_use_local_uid_gid` (names resolved locally, falling back to the stored id), or
/// `posix_acl_use_stored_uid_gid` when `numeric_ids`.
pub fn restore_text(stored: &[u8], numeric_ids: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for entry in stored.split(|&b| b == b'\n') {
        if entry.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = entry.split(|&b| b == b':').collect();
        if numeric_ids {
            match fields[..] {
                [tag, _, perm, id] => lines.push([tag, id, perm].join(&b':')),
                _ => lines.push(entry.to_vec()),
            }
            continue;
        }
        let mut fields: Vec<Vec<u8>> = fields.iter().map(|f| f.to_vec()).collect();
        let named = fields.len() >= 2 && !fields[1].is_empty();
        if named && (fields[0] == b"user" || fields[0] == b"group") {
            let local = if fields[0] == b"user" {
                users::user2uid(&fields[1])
            } else {
                users::group2gid(&fields[1])
            };
            match (local, fields.get(3)) {
                (Some(id), _) => fields[1] = id_text(id),
                (None, Some(stored_id)) => fields[1] = stored_id.clone(),
                (None, None) => {} // borg would fail here; leave the name to acl_from_text
            }
        }
        fields.truncate(3);
        lines.push(fields.join(&b':'));
    }
    lines.join(&b'\n')
}

/// Resolve an entry qualifier like libacl: a decimal id first, else a user/group name.
fn qualifier_id(tag: u16, q: &[u8]) -> Result<u32> {
    if !q.is_empty() && q.iter().all(u8::is_ascii_digit) {
        if let Some(id) = std::str::from_utf8(q).ok().and_then(|s| s.parse().ok()) {
            return Ok(id);
        }
    }
    let id = if tag == TAG_USER {
        users::user2uid(q)
    } else {
        users::group2gid(q)
    };
    id.ok_or_else(|| {
        PlatformError::BadAclText(format!("unknown name {:?}", String::from_utf8_lossy(q)))
    })
}

/// Parse one text entry (`tag:qualifier:perms`, whitespace around fields ignored).
fn parse_entry(entry: &[u8]) -> Result<AclEntry> {
    let bad = || PlatformError::BadAclText(String::from_utf8_lossy(entry).into_owned());
    let fields: Vec<&[u8]> = entry
        .split(|&b| b == b':')
        .map(<[u8]>::trim_ascii)
        .collect();
    let (tag, qual, perms) = match fields[..] {
        [t, q, p] => (t, q, p),
        [t, p] if matches!(t, b"mask" | b"m" | b"other" | b"o") => (t, &b""[..], p),
        _ => return Err(bad()),
    };
    let named = !qual.is_empty();
    let tag = match (tag, named) {
        (b"user" | b"u", false) => TAG_USER_OBJ,
        (b"user" | b"u", true) => TAG_USER,
        (b"group" | b"g", false) => TAG_GROUP_OBJ,
        (b"group" | b"g", true) => TAG_GROUP,
        (b"mask" | b"m", false) => TAG_MASK,
        (b"other" | b"o", false) => TAG_OTHER,
        _ => return Err(bad()),
    };
    let id = if named {
        qualifier_id(tag, qual)?
    } else {
        UNDEFINED_ID
    };
    let mut perm = 0u16;
    for &c in perms {
        perm |= match c {
            b'r' => 4,
            b'w' => 2,
            b'x' => 1,
            b'-' => 0,
            _ => return Err(bad()),
        };
    }
    Ok(AclEntry { tag, perm, id })
}

/// Parse ACL text like libacl's `acl_from_text` (entries separated by newlines or commas,
/// `#` comments, short tags `u g m o`), validate it and return the entries in canonical order.
pub fn parse_text(text: &[u8]) -> Result<Vec<AclEntry>> {
    let mut entries = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(p) => &line[..p],
            None => line,
        };
        for entry in line.split(|&b| b == b',') {
            let entry = entry.trim_ascii();
            if !entry.is_empty() {
                entries.push(parse_entry(entry)?);
            }
        }
    }
    let entries = canonical(entries);
    validate(&entries)?;
    Ok(entries)
}

/// Check the rules of `acl_valid`: exactly one owner, group and other entry, a mask if there
/// are named entries (at most one), no duplicate named ids.
fn validate(entries: &[AclEntry]) -> Result<()> {
    let count = |tag| entries.iter().filter(|e| e.tag == tag).count();
    let named = count(TAG_USER) + count(TAG_GROUP);
    let ok = count(TAG_USER_OBJ) == 1
        && count(TAG_GROUP_OBJ) == 1
        && count(TAG_OTHER) == 1
        && count(TAG_MASK) <= 1
        && (named == 0 || count(TAG_MASK) == 1)
        && entries
            .windows(2)
            .all(|w| !(w[0].tag == w[1].tag && w[0].id == w[1].id));
    if ok {
        Ok(())
    } else {
        Err(PlatformError::BadAclText(
            "invalid ACL (missing/duplicate entries or mask)".into(),
        ))
    }
}

/// Size of an xattr, `None` if it does not exist. Follows symlinks like `acl_extended_file`
/// (callers never ask for symlinks).
fn xattr_len(t: Target<'_>, name: &[u8]) -> Result<Option<usize>> {
    xattr::get_opt(t, name).map(|v| v.map(|v| v.len()))
}

/// True if the object has an extended ACL (libacl's `acl_extended_file`).
pub fn is_extended(path: &Path) -> Result<bool> {
    is_extended_target(Target::Path(path))
}

fn is_extended_target(t: Target<'_>) -> Result<bool> {
    if xattr_len(t, XATTR_ACCESS)?.is_some_and(|n| n > BASE_SIZE) {
        return Ok(true);
    }
    Ok(xattr_len(t, XATTR_DEFAULT)?.is_some_and(|n| n >= BASE_SIZE))
}

/// Read the ACLs of `path` (not following symlinks) as borg 1.2 stores them; see the module docs.
///
/// Like borg, OS errors (e.g. `ENOTSUP`) and malformed ACL xattrs result in no ACLs rather than
/// an error; an error is returned only if `path` cannot be examined at all.
pub fn acl_get(path: &Path, numeric_ids: bool) -> Result<AclTexts> {
    let md = fs::symlink_metadata(path).map_err(|e| PlatformError::Os {
        op: "lstat",
        path: path.to_path_buf(),
        source: e,
    })?;
    let ft = md.file_type();
    Ok(acl_get_mode(
        path,
        md.mode(),
        ft.is_dir(),
        ft.is_symlink(),
        numeric_ids,
    ))
}

/// [`acl_get`] for a caller that already has the `lstat` result (`st_mode` and file type).
pub fn acl_get_mode(
    path: &Path,
    mode: u32,
    is_dir: bool,
    is_symlink: bool,
    numeric_ids: bool,
) -> AclTexts {
    acl_get_target(Target::Path(path), mode, is_dir, is_symlink, numeric_ids)
}

/// [`acl_get_mode`] of a path or of an open file descriptor (no path walk).
pub fn acl_get_target(
    target: Target<'_>,
    mode: u32,
    is_dir: bool,
    is_symlink: bool,
    numeric_ids: bool,
) -> AclTexts {
    let mut out = AclTexts::default();
    if is_symlink || !is_extended_target(target).unwrap_or(false) {
        return out;
    }
    let text = |entries: Vec<AclEntry>| borg_text(&libacl_text(&canonical(entries)), numeric_ids);
    out.access = match xattr::get_opt(target, XATTR_ACCESS) {
        Ok(Some(raw)) => parse_xattr(&raw).ok().map(text),
        Ok(None) => Some(text(from_mode(mode))),
        Err(_) => None,
    };
    if is_dir {
        out.default = match xattr::get_opt(target, XATTR_DEFAULT) {
            Ok(Some(raw)) => parse_xattr(&raw).ok().map(text),
            Ok(None) => Some(Vec::new()),
            Err(_) => None,
        };
    }
    out
}

/// Restore ACLs from an item's `acl_access` / `acl_default` (borg's `acl_set`).
///
/// Empty or absent texts are skipped. Borg ignores every failure here; this returns the first
/// one (after trying both) so the caller can decide, e.g. to ignore it too.
pub fn acl_set(
    path: &Path,
    access: Option<&[u8]>,
    default: Option<&[u8]>,
    numeric_ids: bool,
) -> Result<()> {
    let mut first_err = None;
    for (text, name) in [(access, XATTR_ACCESS), (default, XATTR_DEFAULT)] {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            continue;
        };
        let res = parse_text(&restore_text(text, numeric_ids))
            .and_then(|entries| xattr::set(Target::Path(path), name, &to_xattr(&entries)));
        if let Err(e) = res {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `setfacl -m g::rwx,m::r--,g:daemon:rwx` on a 0770 file, as read with `getfattr -e hex`.
    const MASKED: &str =
        "0200000001000700ffffffff04000700ffffffff080007000100000010000400ffffffff20000000ffffffff";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn xattr_binary_round_trip() {
        let raw = unhex(MASKED);
        let entries = parse_xattr(&raw).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries[2],
            AclEntry {
                tag: TAG_GROUP,
                perm: 7,
                id: 1
            }
        );
        assert_eq!(to_xattr(&entries), raw);
        assert!(parse_xattr(&raw[..7]).is_err());
        assert!(parse_xattr(&[1, 0, 0, 0]).is_err());
        assert!(parse_xattr(&[]).is_err());
    }

    #[test]
    fn text_like_libacl_and_borg() {
        let entries = parse_xattr(&unhex(MASKED)).unwrap();
        let lt = libacl_text(&entries);
        assert_eq!(
            String::from_utf8(lt.clone()).unwrap(),
            "user::rwx\ngroup::rwx\t#effective:r--\ngroup:daemon:rwx\t#effective:r--\n\
             mask::r--\nother::---\n"
        );
        // borg's comment regex leaves the tab in place
        assert_eq!(
            borg_text(&lt, false),
            b"user::rwx\ngroup::rwx\t\ngroup:daemon:rwx\t:1\nmask::r--\nother::---"
        );
        assert_eq!(
            borg_text(&lt, true),
            b"user::rwx\ngroup::rwx\t\ngroup:1:rwx\t:1\nmask::r--\nother::---"
        );
        assert_eq!(borg_text(b"", false), b"");
    }

    #[test]
    fn tar_text_is_what_gnu_tar_writes() {
        // the masked ACL as borg stores it (tabs left by its comment removal, numeric ids)
        let stored = b"user::rwx\ngroup::rwx\t\ngroup:daemon:rwx\t:1\nmask::r--\nother::---";
        assert_eq!(
            String::from_utf8(tar_text(stored)).unwrap(),
            "user::rwx\ngroup::rwx\ngroup:daemon:rwx\nmask::r--\nother::---\n"
        );
        assert_eq!(
            tar_text(b"user::rw-\nuser:4242:r--:4242 #c\n\ngroup::r--\nother::r--"),
            b"user::rw-\nuser:4242:r--\ngroup::r--\nother::r--\n"
        );
        assert_eq!(tar_text(b""), b"");
        // read back the way import-tar stores it, it is borg's text again
        let back = borg_text(
            &tar_text(b"user::rw-\nuser:4242:r--:4242\nother::r--"),
            false,
        );
        assert_eq!(back, b"user::rw-\nuser:4242:r--:4242\nother::r--");
    }

    #[test]
    fn unknown_ids_are_numeric_text() {
        let entries = vec![
            AclEntry {
                tag: TAG_USER_OBJ,
                perm: 6,
                id: UNDEFINED_ID,
            },
            AclEntry {
                tag: TAG_USER,
                perm: 6,
                id: 3_999_999_999,
            },
            AclEntry {
                tag: TAG_GROUP_OBJ,
                perm: 4,
                id: UNDEFINED_ID,
            },
            AclEntry {
                tag: TAG_MASK,
                perm: 6,
                id: UNDEFINED_ID,
            },
            AclEntry {
                tag: TAG_OTHER,
                perm: 4,
                id: UNDEFINED_ID,
            },
        ];
        let t = borg_text(&libacl_text(&entries), false);
        assert_eq!(
            t,
            b"user::rw-\nuser:3999999999:rw-:3999999999\ngroup::r--\nmask::rw-\nother::r--"
        );
    }

    #[test]
    fn from_mode_bits() {
        let t = borg_text(&libacl_text(&from_mode(0o100754)), false);
        assert_eq!(t, b"user::rwx\ngroup::r-x\nother::r--");
    }

    #[test]
    fn restore_text_resolves_names_unless_numeric() {
        let stored = b"user::rw-\nuser:root:rw-:999\nuser:no-such-user-hoard:r--:4242\n\
                       group::r--\ngroup:root:r--:888\nmask::rw-\nother::r--";
        assert_eq!(
            String::from_utf8(restore_text(stored, false)).unwrap(),
            "user::rw-\nuser:0:rw-\nuser:4242:r--\ngroup::r--\ngroup:0:r--\nmask::rw-\nother::r--"
        );
        assert_eq!(
            String::from_utf8(restore_text(stored, true)).unwrap(),
            "user::rw-\nuser:999:rw-\nuser:4242:r--\ngroup::r--\ngroup:888:r--\nmask::rw-\nother::r--"
        );
    }

    #[test]
    fn parse_text_like_acl_from_text() {
        let e =
            parse_text(b"user::rw-\nuser:4242:rwx\t\ngroup::r--\nmask::r--\nother::---").unwrap();
        assert_eq!(
            e[1],
            AclEntry {
                tag: TAG_USER,
                perm: 7,
                id: 4242
            }
        );
        // commas, short tags, comments, any order: sorted canonically
        let e = parse_text(b"o::r--, g::r-x #c\nu::rwx,u:root:r--,m::r-x").unwrap();
        let tags: Vec<u16> = e.iter().map(|e| e.tag).collect();
        assert_eq!(
            tags,
            [TAG_USER_OBJ, TAG_USER, TAG_GROUP_OBJ, TAG_MASK, TAG_OTHER]
        );
        assert_eq!(e[1].id, 0);
        // named entry without mask, missing other, bad perms, unknown name
        assert!(parse_text(b"user::rw-\nuser:7:rw-\ngroup::r--\nother::r--").is_err());
        assert!(parse_text(b"user::rw-\ngroup::r--").is_err());
        assert!(parse_text(b"user::rwz\ngroup::r--\nother::r--").is_err());
        assert!(parse_text(
            b"user::rw-\nuser:no-such-user-hoard:r--\ngroup::r--\nmask::r--\nother::r--"
        )
        .is_err());
    }

    #[test]
    fn nothing_for_plain_files_and_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        std::os::unix::fs::symlink("f", tmp.path().join("l")).unwrap();
        assert_eq!(acl_get(&f, false).unwrap(), AclTexts::default());
        assert_eq!(
            acl_get(&tmp.path().join("l"), false).unwrap(),
            AclTexts::default()
        );
        assert!(acl_get(&tmp.path().join("missing"), false).is_err());
        // empty texts are not restored
        acl_set(&f, Some(b""), None, false).unwrap();
    }
}
