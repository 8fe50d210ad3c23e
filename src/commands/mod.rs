//! One file per command: the logic on top of the library layers. Nothing here prints; each
//! command returns data that `cli` formats.

pub mod archive_info;
pub mod break_lock;
pub mod check;
pub mod check_archives;
pub mod common;
pub mod delete;
pub mod info;
pub mod init;
pub mod key;
pub mod list;
pub mod rename;
pub mod select;
pub mod stats;

pub use common::{CommandError, Result};
