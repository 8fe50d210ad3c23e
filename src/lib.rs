//! hoard: a deduplicating, compressing, encrypting backup program that reads and writes
//! BorgBackup 1.x repositories.
//!
//! `docs/ARCHITECTURE.md` is the map of this crate for a newcomer: what each module owns, the
//! create / extract / check pipelines, the durability rules, the storage trait, `serve`, S3,
//! automation and mount, and where a new command or backend goes. `docs/FORMAT.md` describes
//! the repository, key, archive, cache and RPC formats; a "FORMAT.md §N", "spec §N" or bare
//! "§N" in the module docs refers to its section N.
//!
//! The modules, from the bottom up (a module never imports one above it; the order is
//! checked by `tests/module_layers.rs`):
//!
//! * shared helpers: [`options`] (the values configuration travels in), [`version`] (the
//!   borg version hoard reports), [`paths`] (client directories), [`crashpoint`] (crash
//!   injection for the durability tests), [`event_text`] (the text of a log event),
//!   [`msgpack`] (borg's msgpack dialect), [`rpc`] (the `serve` wire protocol both ends
//!   speak), [`location`] (repository locations), [`patterns`] (path patterns and globs),
//!   [`placeholders`] (`{hostname}`… and `--format`), [`progress`] (borg's progress
//!   records), [`platform`] (file metadata, OS errors), [`python`] (Python's `int()` and
//!   `repr(bytes)`) and [`units`] (file sizes as borg prints them);
//! * kernels: [`compress`], [`chunker`], [`crypto`];
//! * storage and client state: [`repo`] (the transactional segment log on a directory or S3,
//!   and the client of `borg serve`), [`security`] (the security directory), [`archive`]
//!   (manifest, archives, items), [`cache`] (chunk index, files cache, path index);
//! * operations: [`commands`] (one module per command; never prints), [`mount`] (the FUSE
//!   filesystem), [`serve`] (the server end of the RPC protocol);
//! * [`automation`] (`hoard run` jobs, their status, metrics and reports, and `hoard
//!   schedule`; it runs steps through a runner the CLI passes in);
//! * at the top, [`cli`] (borg's command line; the only layer that prints).

pub mod archive;
pub mod automation;
pub mod cache;
pub mod chunker;
pub mod cli;
pub mod commands;
pub mod compress;
pub mod crashpoint;
pub mod crypto;
pub mod event_text;
pub mod location;
pub mod mount;
pub mod msgpack;
pub mod options;
pub mod paths;
pub mod patterns;
pub mod placeholders;
pub mod platform;
pub mod progress;
pub mod python;
pub mod repo;
pub mod rpc;
pub mod security;
pub mod serve;
pub mod units;
pub mod version;
