//! `hoard debug …`: borg 1.4's debugging commands (`debug info`, `dump-*`, `search-repo-objs`,
//! `get-obj`/`put-obj`/`delete-obj`/`refcount-obj`, `id-hash`, `dump-hints`,
//! `convert-profile`) and the `--debug-profile` file format ([`profile`]).
//!
//! Like every command module, nothing here prints: lines meant for stdout go to a `say`
//! callback, dumps go to a writer or to files named as borg names them. Every object id, file
//! and object read is treated as hostile: a bad id, a missing object or undecodable data is an
//! error with one line, never a panic.

pub mod dump;
pub mod info;
pub mod objects;
pub mod profile;
pub mod pyjson;

use crate::location::Location;
use crate::repo::{ObjectId, Repository};

use super::common::{self, Access, CommandError, Result};

/// borg's `hex_to_bin(text, length=32)`: the error text is what borg puts in brackets.
pub fn parse_object_id(text: &str) -> std::result::Result<ObjectId, String> {
    let bytes = hex::decode(text).map_err(|e| match e {
        hex::FromHexError::OddLength => "Odd-length string".to_string(),
        _ => "Non-hexadecimal digit found".to_string(),
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "Expected 32 bytes (64 hex digits), got {} bytes.",
            bytes.len()
        )
    })
}

/// borg's `CommandError` (message prefixed "Command Error: ", msgid `CommandError`).
pub fn command_error(message: impl std::fmt::Display) -> CommandError {
    CommandError::with_id(format!("Command Error: {message}"), "CommandError")
}

/// borg's `RTError` (message prefixed "Runtime Error: ", msgid `RTError`).
pub fn runtime_error(message: impl std::fmt::Display) -> CommandError {
    CommandError::with_id(format!("Runtime Error: {message}"), "RTError")
}

/// How the debug commands open a repository without its manifest (borg's
/// `with_repository(manifest=False)`).
#[derive(Debug, Clone, Copy)]
pub struct OpenFlags {
    /// Take the exclusive lock (writers).
    pub exclusive: bool,
    /// Seconds to wait for the lock.
    pub lock_wait: f64,
    /// False with `--bypass-lock`.
    pub lock: bool,
}

impl OpenFlags {
    fn access(self) -> Access {
        Access {
            exclusive: self.exclusive,
            lock_wait: self.lock_wait,
            lock: self.lock,
        }
    }
}

/// Opens the repository at `loc` without reading its manifest.
pub fn open_plain(loc: &Location, flags: OpenFlags) -> Result<Box<dyn Repository>> {
    common::open_repository(loc, &flags.access())
}

/// borg's `key_factory(repository, cdata)`: the key of the repository as the TYPE byte of a
/// stored object names it (unlocked with the passphrase as usual).
pub fn key_for_object(
    repo: &mut dyn Repository,
    object: &[u8],
    loc: &Location,
) -> Result<crate::crypto::Key> {
    let Some(&type_byte) = object.first() else {
        return Err(CommandError::new(
            "Cannot determine the key: the first object is empty.",
        ));
    };
    let (key, _, _) = common::load_key(repo, type_byte, &loc.canonical(), &loc.options.env)?;
    Ok(key)
}

/// Reads a whole input file the user named, with a one-line error.
pub fn read_input(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_parsed_as_borg_does() {
        assert_eq!(parse_object_id(&"00".repeat(32)), Ok([0u8; 32]));
        assert_eq!(
            parse_object_id("12"),
            Err("Expected 32 bytes (64 hex digits), got 1 bytes.".to_string())
        );
        assert_eq!(parse_object_id("124"), Err("Odd-length string".to_string()));
        assert_eq!(
            parse_object_id("xyza"),
            Err("Non-hexadecimal digit found".to_string())
        );
    }
}
