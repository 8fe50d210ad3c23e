//! One file per command: the logic on top of the library layers. Nothing here prints; each
//! command returns data that `cli` formats.

pub mod archive_info;
pub mod benchmark;
pub mod break_lock;
pub mod check;
pub mod check_archives;
pub mod check_refs;
pub mod check_verify;
pub mod common;
pub mod compact;
pub mod config;
pub mod create;
pub mod debug;
pub mod delete;
pub mod diff;
pub mod export_tar;
pub mod extract;
pub mod import_tar;
pub mod info;
pub mod init;
pub mod key;
pub mod list;
pub mod mount;
pub mod path_index;
pub mod prune;
pub mod prune_policy;
pub mod recreate;
pub mod related_secrets;
pub mod rename;
pub mod report;
pub mod select;
pub mod stats;
pub mod upgrade;
pub mod verify_state;
pub mod version;
pub mod with_lock;
pub mod workers;

pub use common::{CommandError, Result};
