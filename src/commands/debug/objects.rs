//! `debug get-obj`, `put-obj`, `delete-obj`, `refcount-obj` and `id-hash`: raw repository
//! objects by id, exactly as borg 1.4.5 handles them (stored bytes, not decrypted; messages
//! and exit codes as borg's).

use std::io::Write;

use crate::archive::Operation;
use crate::cache::{Cache, CacheOptions};
use crate::location::Location;
use crate::repo::RepoError;
use crate::security::Confirm;

use super::{command_error, open_plain, parse_object_id, read_input, runtime_error, OpenFlags};
use crate::commands::common::{self, Access, CommandError, Result};

/// `debug get-obj REPO ID PATH`: writes the stored (encrypted) bytes of object `ID` to `PATH`.
pub fn get_obj(
    loc: &Location,
    flags: OpenFlags,
    hex_id: &str,
    path: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut repo = open_plain(loc, flags)?;
    let id = parse_object_id(hex_id)
        .map_err(|e| command_error(format!("object id {hex_id} is invalid [{e}].")))?;
    let data = match repo.get(&id) {
        Ok(d) => d,
        Err(RepoError::ObjectNotFound(..)) => {
            return Err(runtime_error(format!("object {hex_id} not found.")))
        }
        Err(e) => return Err(e.into()),
    };
    write_output_file(path, &data)?;
    say(&format!("object {hex_id} fetched."));
    Ok(())
}

/// Creates (truncates) `path` and writes `data` to it, with a one-line error.
fn write_output_file(path: &str, data: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path)
        .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))?;
    f.write_all(data)
        .map_err(|e| CommandError::new(format!("{path}: {}", crate::platform::strerror(&e))))
}

/// `debug put-obj REPO ID PATH`: stores the bytes of `PATH` as object `ID` (as they are: the
/// caller is responsible for them being a valid encrypted object) and commits.
pub fn put_obj(
    loc: &Location,
    flags: OpenFlags,
    hex_id: &str,
    path: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut repo = open_plain(
        loc,
        OpenFlags {
            exclusive: true,
            ..flags
        },
    )?;
    let data = read_input(path)?;
    let id = parse_object_id(hex_id)
        .map_err(|e| command_error(format!("object id {hex_id} is invalid [{e}].")))?;
    repo.put(&id, &data)?;
    say(&format!("object {hex_id} put."));
    repo.commit(false, 0.1)?;
    Ok(())
}

/// `debug delete-obj REPO IDs…`: deletes each object; bad and missing ids are reported and
/// skipped (exit 0, as borg); commits when anything was deleted.
pub fn delete_obj(
    loc: &Location,
    flags: OpenFlags,
    hex_ids: &[String],
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut repo = open_plain(
        loc,
        OpenFlags {
            exclusive: true,
            ..flags
        },
    )?;
    let mut modified = false;
    for hex_id in hex_ids {
        let Ok(id) = parse_object_id(hex_id) else {
            say(&format!("object id {hex_id} is invalid."));
            continue;
        };
        match repo.delete(&id) {
            Ok(()) => {
                modified = true;
                say(&format!("object {hex_id} deleted."));
            }
            Err(RepoError::ObjectNotFound(..)) => say(&format!("object {hex_id} not found.")),
            Err(e) => return Err(e.into()),
        }
    }
    if modified {
        repo.commit(false, 0.1)?;
    }
    say("Done.");
    Ok(())
}

/// `debug refcount-obj REPO IDs…`: the reference count of each id in the chunks cache.
pub fn refcount_obj(
    loc: &Location,
    flags: OpenFlags,
    hex_ids: &[String],
    confirm: Confirm<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let access = Access {
        exclusive: true,
        lock_wait: flags.lock_wait,
        lock: flags.lock,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[], confirm)?;
    let cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait: flags.lock_wait,
            location: Some(loc.canonical()),
            ..CacheOptions::default()
        },
    )?;
    for hex_id in hex_ids {
        let Ok(id) = parse_object_id(hex_id) else {
            say(&format!("object id {hex_id} is invalid."));
            continue;
        };
        match cache.seen_chunk(&id) {
            Some(e) => say(&format!(
                "object {hex_id} has {} referrers [info from chunks cache].",
                e.refcount
            )),
            None => say(&format!(
                "object {hex_id} not found [info from chunks cache]."
            )),
        }
    }
    Ok(())
}

/// `debug id-hash REPO PATH`: the id the repository's key gives the contents of `PATH`.
pub fn id_hash(
    loc: &Location,
    flags: OpenFlags,
    path: &str,
    confirm: Confirm<'_>,
) -> Result<[u8; 32]> {
    let access = Access {
        exclusive: false,
        lock_wait: flags.lock_wait,
        lock: flags.lock,
    };
    let opened = common::open_with_manifest(loc, &access, &[] as &[Operation], confirm)?;
    let data = read_input(path)?;
    Ok(opened.store.key.id_hash(&data))
}
