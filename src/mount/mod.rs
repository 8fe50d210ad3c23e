//! `mount`: archives as a read-only FUSE filesystem (borg 1.2's `fuse.py`).
//!
//! [`tree`] builds the inode table from item streams — compact per-inode records in RAM
//! ([`compact`]),
//! the full items (chunk lists, xattrs, link targets) spooled to an unlinked temporary file —
//! and [`fs`] serves it through the `fuser` crate, reading only the chunks a request covers
//! through a bounded LRU chunk cache. [`options`] parses borg's `-o` mount options.
//! This module never prints; it reports through `tracing` like the rest of the library.

pub mod compact;
pub mod fs;
pub mod node;
pub mod options;
pub mod tree;

pub use options::MountOptions;

/// Errors of the mount layer.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A bad `-o` value.
    #[error("{0}")]
    Options(String),
    /// Reading archive metadata failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// The spool file or the mount itself failed.
    #[error("{0}")]
    Io(String),
}
