//! `rename REPO::OLD NEWNAME`: rewrites the archive metadata object with the new name (new
//! TAM, so a new id), drops the old object, updates the manifest and commits (borg's
//! `Archive.rename` / `set_meta`).

use crate::archive::meta::ArchiveMeta;
use crate::archive::{ArchiveRef, Operation};
use crate::cache::{Cache, CacheOptions, OpStats};
use crate::location::Location;

use super::common::{self, Access, CommandError, Result};
use super::list::{does_not_exist, remove_surrogates};

/// borg's `Archive.AlreadyExists`.
pub fn already_exists(name: &[u8]) -> CommandError {
    CommandError::with_id(
        format!("Archive {} already exists", remove_surrogates(name)),
        "Archive.AlreadyExists",
    )
}

/// borg's `archivename_validator` for NEWNAME: placeholders expanded, then no `/`, no `::`,
/// not empty. Returns the expanded name.
pub fn validate_new_name(name: &str) -> Result<String> {
    crate::placeholders::validate_archive_name(name)
        .map_err(|e| CommandError::new(format!("argument NEWNAME: {e}")))
}

/// Renames archive `old` to `new`; returns the new archive id.
pub fn rename(
    loc: &Location,
    old: &[u8],
    new: &[u8],
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<[u8; 32]> {
    let access = Access {
        exclusive: true,
        lock_wait,
        lock: true,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Check], confirm)?;
    let old_ref = opened
        .manifest
        .archives
        .get(old)
        .cloned()
        .ok_or_else(|| does_not_exist(old))?;
    let mut cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait,
            ..CacheOptions::default()
        },
    )?;
    if opened.manifest.archives.contains_key(new) {
        return Err(already_exists(new));
    }
    let mut meta = ArchiveMeta::load(&mut opened.store, &old_ref.id)?;
    meta.name = new.to_vec();
    let packed = opened
        .store
        .key
        .pack_and_authenticate_metadata(meta.to_value(), "archive");
    let new_id = opened.store.key.id_hash(&packed);
    let mut stats = OpStats::default();
    cache.add_chunk(&mut opened.store, &new_id, &packed, &mut stats)?;
    opened.manifest.archives.remove(old);
    opened.manifest.archives.insert(
        new.to_vec(),
        ArchiveRef {
            id: new_id,
            time: meta.time.clone(),
        },
    );
    cache.chunk_decref(&mut opened.store, &old_ref.id, &mut stats)?;
    common::commit_manifest(&mut opened)?;
    cache.commit(&opened.manifest)?;
    Ok(new_id)
}
