//! Metadata collection for items (borg's `MetadataCollector`): the stat fields every item has,
//! and the extended ones (flags, xattrs, ACLs) read separately because they cost system calls.

use std::os::fd::RawFd;
use std::path::Path;

use crate::archive::item::Item;
use crate::platform::fs::Stat;
use crate::platform::{acl, flags, users, xattr};

use super::error::BackupError;

/// Which metadata to store (`--numeric-ids`, `--atime`, `--noctime`, `--noflags`, `--noacls`,
/// `--noxattrs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaOptions {
    /// Store only numeric uid/gid (user/group names nil).
    pub numeric_ids: bool,
    /// Store atime.
    pub atime: bool,
    /// Leave out ctime.
    pub noctime: bool,
    /// Leave out BSD flags.
    pub noflags: bool,
    /// Leave out ACLs.
    pub noacls: bool,
    /// Leave out xattrs.
    pub noxattrs: bool,
}

/// Mode, owner, times and names (borg's `stat_simple_attrs`).
pub fn simple_attrs(item: &mut Item, st: &Stat, o: &MetaOptions) {
    item.mode = st.mode;
    item.uid = st.uid;
    item.gid = st.gid;
    item.mtime = st.mtime_ns;
    item.atime = o.atime.then_some(st.atime_ns);
    item.ctime = (!o.noctime).then_some(st.ctime_ns);
    if o.numeric_ids {
        item.user = None;
        item.group = None;
    } else {
        item.user = users::uid2user(st.uid);
        item.group = users::gid2group(st.gid);
    }
}

/// Flags, xattrs and ACLs (borg's `stat_ext_attrs`). Per-attribute xattr read problems are
/// returned as messages (borg logs them and carries on).
///
/// With an open file descriptor everything is read through it (no path walks). When the
/// xattr listing of a file system known to list ACL attributes names none, the ACL reads are
/// skipped: they would find nothing (the result is the same, two system calls fewer).
pub fn ext_attrs(
    item: &mut Item,
    path: &Path,
    st: &Stat,
    fd: Option<RawFd>,
    o: &MetaOptions,
) -> Result<Vec<String>, BackupError> {
    let mut notes = Vec::new();
    if !o.noflags {
        let f = flags::get_flags(path, st.mode, fd);
        if f != 0 {
            item.bsdflags = Some(f);
        }
    }
    let target = match fd {
        Some(fd) => xattr::Target::Fd(fd),
        None => xattr::Target::Path(path),
    };
    let mut acl_absent = false;
    if !o.noxattrs {
        let read = xattr::get_all(target)
            .map_err(|e| BackupError::platform("extended stat (xattrs)", &e, None))?;
        for w in read.warnings {
            notes.push(format!("{}: {w}", path.display()));
        }
        if !read.xattrs.is_empty() {
            item.xattrs = Some(read.xattrs);
        }
        acl_absent = read.lists_acl == Some(false) && fd.is_some_and(|fd| lists_acls(fd, st.dev));
    }
    if !o.noacls && !acl_absent {
        let is_dir = st.is_dir();
        let texts = acl::acl_get_target(target, st.mode, is_dir, st.is_symlink(), o.numeric_ids);
        item.acl_access = texts.access.filter(|t| !t.is_empty());
        item.acl_default = texts.default.filter(|t| !t.is_empty());
    }
    Ok(notes)
}

/// Whether the file system of `fd` (device `dev`) names POSIX ACLs in its xattr listings:
/// true for the local Linux file systems checked here, false for anything else (then the ACLs
/// are always read). Remembered per device.
fn lists_acls(fd: RawFd, dev: u64) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static KNOWN: RefCell<HashMap<u64, bool>> = RefCell::new(HashMap::new());
    }
    KNOWN.with(|known| {
        *known.borrow_mut().entry(dev).or_insert_with(|| {
            // ext2/3/4, XFS, Btrfs, tmpfs: their listxattr includes system.posix_acl_*.
            const LISTING: [i64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994];
            // SAFETY: a zeroed statfs is a valid out-parameter.
            let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
            // SAFETY: `sfs` is a valid out-pointer; a bad fd only makes the call fail.
            let ok = unsafe { libc::fstatfs(fd, &mut sfs) } == 0;
            ok && LISTING.contains(&(sfs.f_type as i64))
        })
    })
}
