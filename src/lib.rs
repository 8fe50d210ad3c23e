//! hoard: a deduplicating, compressing, encrypting backup program that reads and writes
//! BorgBackup 1.x repositories.
//!
//! Layers, bottom to top (a layer never imports one above it; see `DESIGN.md`):
//! [`msgpack`], [`paths`], [`progress`], [`location`], [`patterns`], [`placeholders`], [`platform`] and [`version`]
//! (shared helpers), [`compress`],
//! [`chunker`], [`crypto`], [`repo`], [`security`], [`serve`], [`archive`], [`cache`], [`commands`] and,
//! at the top, [`cli`].

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
pub mod paths;
pub mod patterns;
pub mod placeholders;
pub mod platform;
pub mod progress;
pub mod repo;
pub mod security;
pub mod serve;
pub mod version;
