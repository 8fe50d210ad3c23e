//! User and group name lookups with caches (borg's `uid2user`, `user2uid`, `gid2group`,
//! `group2gid`) and borg's rule for choosing the owner on restore (`get_item_uid_gid`).
//!
//! Names are raw bytes (as in `/etc/passwd`); `None` means "unknown". Results, including
//! negative ones, are cached for the life of the process, like borg's `lru_cache`.

use std::collections::HashMap;
use std::ffi::CStr;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

/// A process-wide lookup cache.
struct Cache<K, V>(OnceLock<Mutex<HashMap<K, V>>>);

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    const fn new() -> Self {
        Cache(OnceLock::new())
    }

    /// Return the cached value for `key`, computing and storing it with `f` if absent.
    fn get_or(&self, key: K, f: impl FnOnce(&K) -> V) -> V {
        let map = self.0.get_or_init(|| Mutex::new(HashMap::new()));
        if let Ok(m) = map.lock() {
            if let Some(v) = m.get(&key) {
                return v.clone();
            }
        }
        let v = f(&key);
        if let Ok(mut m) = map.lock() {
            m.insert(key, v.clone());
        }
        v
    }
}

static UID2USER: Cache<u32, Option<Vec<u8>>> = Cache::new();
static GID2GROUP: Cache<u32, Option<Vec<u8>>> = Cache::new();
static USER2UID: Cache<Vec<u8>, Option<u32>> = Cache::new();
static GROUP2GID: Cache<Vec<u8>, Option<u32>> = Cache::new();

/// Run a reentrant `get*_r` lookup with a growing buffer.
///
/// `call(buf, len, found)` must behave like `getpwuid_r`: return 0 and set `*found` to a
/// non-null pointer on success, 0 with null for "not found", or an errno (ERANGE → retry).
/// `extract` is called with the found record while the buffer is still alive.
fn lookup_r<R, T>(
    mut call: impl FnMut(*mut libc::c_char, usize, *mut *mut R) -> libc::c_int,
    extract: impl FnOnce(&R) -> T,
) -> Option<T> {
    let mut len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        let mut found: *mut R = std::ptr::null_mut();
        let rc = call(buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == libc::ERANGE && len < (1 << 20) {
            len *= 4;
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success `found` points to the record passed in by `call`, whose string
        // fields point into `buf`, which is still alive here.
        return Some(extract(unsafe { &*found }));
    }
}

/// Copy a C string field of a passwd/group record.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string.
unsafe fn cstr_bytes(p: *const libc::c_char) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
}

/// The name of user `uid`, or `None` if there is no such user.
pub fn uid2user(uid: u32) -> Option<Vec<u8>> {
    UID2USER.get_or(uid, |&uid| {
        // SAFETY: an all-zero passwd is a valid out-parameter for getpwuid_r.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        lookup_r(
            // SAFETY: `buf` is writable for `len` bytes; `pw` and `found` are valid out-pointers.
            |buf, len, found| unsafe { libc::getpwuid_r(uid, &mut pw, buf, len, found) },
            // SAFETY: pw_name is a NUL-terminated string inside the live buffer.
            |p: &libc::passwd| unsafe { cstr_bytes(p.pw_name) },
        )
    })
}

/// The name of group `gid`, or `None` if there is no such group.
pub fn gid2group(gid: u32) -> Option<Vec<u8>> {
    GID2GROUP.get_or(gid, |&gid| {
        // SAFETY: an all-zero group is a valid out-parameter for getgrgid_r.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        lookup_r(
            // SAFETY: `buf` is writable for `len` bytes; `gr` and `found` are valid out-pointers.
            |buf, len, found| unsafe { libc::getgrgid_r(gid, &mut gr, buf, len, found) },
            // SAFETY: gr_name is a NUL-terminated string inside the live buffer.
            |g: &libc::group| unsafe { cstr_bytes(g.gr_name) },
        )
    })
}

/// The uid of the user called `name`, or `None` if unknown (or `name` is empty).
pub fn user2uid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.contains(&0) {
        return None;
    }
    USER2UID.get_or(name.to_vec(), |name| {
        let cname = std::ffi::CString::new(name.as_slice()).ok()?;
        // SAFETY: an all-zero passwd is a valid out-parameter for getpwnam_r.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        lookup_r(
            // SAFETY: `cname` is NUL-terminated; out-pointers and buffer are valid.
            |buf, len, found| unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pw, buf, len, found) },
            |p: &libc::passwd| p.pw_uid,
        )
    })
}

/// The gid of the group called `name`, or `None` if unknown (or `name` is empty).
pub fn group2gid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.contains(&0) {
        return None;
    }
    GROUP2GID.get_or(name.to_vec(), |name| {
        let cname = std::ffi::CString::new(name.as_slice()).ok()?;
        // SAFETY: an all-zero group is a valid out-parameter for getgrnam_r.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        lookup_r(
            // SAFETY: `cname` is NUL-terminated; out-pointers and buffer are valid.
            |buf, len, found| unsafe { libc::getgrnam_r(cname.as_ptr(), &mut gr, buf, len, found) },
            |g: &libc::group| g.gr_gid,
        )
    })
}

/// The uid to restore an item with, by borg's rule: the local uid of the item's `user` name if
/// it resolves (and `numeric_ids` is off), else the stored `uid`; a negative result becomes 0.
pub fn restore_uid(user: Option<&[u8]>, uid: i64, numeric_ids: bool) -> u32 {
    let by_name = if numeric_ids {
        None
    } else {
        user.and_then(user2uid)
    };
    by_name.unwrap_or_else(|| clamp_id(uid))
}

/// The gid to restore an item with; see [`restore_uid`].
pub fn restore_gid(group: Option<&[u8]>, gid: i64, numeric_ids: bool) -> u32 {
    let by_name = if numeric_ids {
        None
    } else {
        group.and_then(group2gid)
    };
    by_name.unwrap_or_else(|| clamp_id(gid))
}

/// Borg uses 0 for negative ids; ids beyond `u32` cannot be represented either.
fn clamp_id(id: i64) -> u32 {
    u32::try_from(id).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_round_trip() {
        assert_eq!(uid2user(0).as_deref(), Some(&b"root"[..]));
        assert_eq!(user2uid(b"root"), Some(0));
        assert_eq!(gid2group(0).as_deref(), Some(&b"root"[..]));
        assert_eq!(group2gid(b"root"), Some(0));
        // cached path
        assert_eq!(uid2user(0).as_deref(), Some(&b"root"[..]));
    }

    #[test]
    fn unknown_ids_and_names() {
        assert_eq!(uid2user(3_999_999_999), None);
        assert_eq!(gid2group(3_999_999_999), None);
        assert_eq!(user2uid(b"no-such-user-hoard-xyz"), None);
        assert_eq!(group2gid(b"no-such-group-hoard-xyz"), None);
        assert_eq!(user2uid(b""), None);
    }

    #[test]
    fn restore_rule() {
        assert_eq!(restore_uid(Some(b"root"), 1234, false), 0);
        assert_eq!(restore_uid(Some(b"root"), 1234, true), 1234);
        assert_eq!(
            restore_uid(Some(b"no-such-user-hoard-xyz"), 1234, false),
            1234
        );
        assert_eq!(restore_uid(None, -5, false), 0);
        assert_eq!(restore_gid(Some(b"root"), 77, false), 0);
        assert_eq!(restore_gid(None, 77, false), 77);
    }
}
