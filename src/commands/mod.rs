//! One file per command: the logic on top of the library layers. Nothing here prints; each
//! command returns data that `cli` formats.

pub mod break_lock;
pub mod check;
pub mod common;
pub mod create;
pub mod info;
pub mod init;
pub mod key;
pub mod stats;

pub use common::{CommandError, Result};
