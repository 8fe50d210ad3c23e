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
    if !o.noxattrs {
        let target = match fd {
            Some(fd) => xattr::Target::Fd(fd),
            None => xattr::Target::Path(path),
        };
        let read = xattr::get_all(target)
            .map_err(|e| BackupError::platform("extended stat (xattrs)", &e, None))?;
        for w in read.warnings {
            notes.push(format!("{}: {w}", path.display()));
        }
        if !read.xattrs.is_empty() {
            item.xattrs = Some(read.xattrs);
        }
    }
    if !o.noacls {
        let is_dir = st.is_dir();
        let texts = acl::acl_get_mode(path, st.mode, is_dir, st.is_symlink(), o.numeric_ids);
        item.acl_access = texts.access.filter(|t| !t.is_empty());
        item.acl_default = texts.default.filter(|t| !t.is_empty());
    }
    Ok(notes)
}
