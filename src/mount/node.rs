//! One inode of a mounted archive as the tree and its compact tables exchange it: its
//! attributes and where its item lives. A leaf of `mount`, so `tree` and `compact` both use it.

/// The attributes `getattr` reports (borg's `_getattr`), before `umask` and owner overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// st_mode with type bits.
    pub mode: u32,
    /// Owner as reported (already resolved by name unless `--numeric-ids`, or forced).
    pub uid: u32,
    /// Group, likewise.
    pub gid: u32,
    /// Link count: 1 plus the hardlink slaves pointing at this inode.
    pub nlink: u32,
    /// Device number (kernel `new_encode_dev` form, as `st_rdev` is on Linux).
    pub rdev: u32,
    /// `item.get_size()`: file length, or link-target length for symlinks.
    pub size: u64,
    /// mtime, ns since the epoch.
    pub mtime: i64,
    /// atime (mtime when the archive has none), ns.
    pub atime: i64,
    /// ctime (mtime when the archive has none), ns.
    pub ctime: i64,
}

/// One inode.
#[derive(Debug, Clone)]
pub struct Node {
    /// The parent inode (the root is its own parent).
    pub parent: u64,
    /// Attributes.
    pub attr: Attr,
    /// Where the packed item lives in the spool file; None for synthetic directories.
    pub spool: Option<(u64, u32)>,
    /// The item carries `chunks_healthy` (a chunk was replaced by `check --repair`).
    pub damaged: bool,
}
