//! Platform layer: reading and restoring file metadata exactly as borg 1.2 on Linux stores it in
//! archive items (FORMAT.md §7.4).
//!
//! This module owns:
//! * [`xattr`]: extended attributes (`xattrs` item key), without following symlinks or on an fd;
//!   `system.posix_acl_*` are left out because they are stored as ACLs.
//! * [`acl`]: POSIX ACLs (`acl_access`, `acl_default`) in borg's text format, converted to and from
//!   the kernel's binary `system.posix_acl_*` xattrs without libacl.
//! * [`flags`]: Linux inode flags (`FS_IOC_GETFLAGS`) mapped to BSD flags (`bsdflags`).
//! * [`users`]: cached uid/gid ↔ user/group name lookups (`user`, `group`) and borg's restore rule.
//! * [`fs`]: small helpers for create/extract (lstat with ns times, `O_NOATIME` open, utimensat,
//!   lchown, mknod/mkfifo, hole seeking, sync).
//! * [`pipe`]: wider pipe buffers for the connection to a remote repository.
//! * [`signals`]: SIGINT/SIGTERM/SIGHUP as a flag the long-running loops poll, borg's exit
//!   codes, and the lock cleanups run before an emergency exit.
//!
//! It depends on nothing else in hoard; errors are [`PlatformError`], which lets callers turn
//! the non-fatal cases into warnings as borg does.

pub mod acl;
mod cstr;
mod error;
pub mod flags;
pub mod fs;
pub mod pipe;
pub mod signals;
pub mod users;
pub mod xattr;

pub use error::{errno_text, os_error_text, strerror, PlatformError, Result};

#[cfg(test)]
mod borg_compat_tests;
#[cfg(test)]
mod testutil;
