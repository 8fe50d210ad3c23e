//! `upgrade --check-archives-tam | --archives-tam`: finds archives whose TAM is missing or does
//! not verify and, unless only checking, authenticates them again (borg 1.4's `do_upgrade`).
//!
//! Such archives are legitimate in two ways: made before borg 1.0.9 (no TAM), or rewritten by
//! borg < 1.2.5's `check --repair`, which kept the old TAM after changing `items`. hoard goes one
//! step further than borg before it re-authenticates: it reads the archive's whole item stream
//! and looks every file chunk up in the chunk index, so an archive whose contents do not hold
//! together is reported and left as it is (see [`ArchiveTamStatus::NotFixed`]).

use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::{ArchiveRef, Operation};
use crate::cache::{Cache, CacheOptions, OpStats};
use crate::location::Location;

use super::common::{self, Access, CommandError, Result};
use super::delete::format_archive;
use super::select::{self, ArchiveInfo, Selection};

/// What `upgrade` found for one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTamStatus {
    /// The TAM verifies.
    Present,
    /// No valid TAM; reported only (`--check-archives-tam`).
    Missing,
    /// No valid TAM; a new one was added: the archive's new id.
    Added([u8; 32]),
    /// No valid TAM, and the contents did not check out: left as it is, with the reason.
    NotFixed(String),
}

/// One archive's line of the report.
#[derive(Debug, Clone)]
pub struct ArchiveTamLine {
    /// The archive as the manifest lists it (old id).
    pub info: ArchiveInfo,
    /// What was found or done.
    pub status: ArchiveTamStatus,
}

impl ArchiveTamLine {
    /// The line borg prints for this archive (`Archive TAM present: …`, `Added archive TAM: …
    /// -> [id]`, `Archive TAM missing: …`); hoard's own for an archive it refused to fix.
    pub fn text(&self) -> String {
        let shown = format_archive(&self.info);
        match &self.status {
            ArchiveTamStatus::Present => format!("Archive TAM present: {shown}"),
            ArchiveTamStatus::Missing => format!("Archive TAM missing: {shown}"),
            ArchiveTamStatus::Added(id) => {
                format!("Added archive TAM:   {shown} -> [{}]", hex::encode(id))
            }
            ArchiveTamStatus::NotFixed(why) => {
                format!(
                    "Archive TAM missing, NOT added (contents do not check out: {why}): {shown}"
                )
            }
        }
    }
}

/// The outcome of an archives-TAM upgrade or check.
#[derive(Debug, Clone, Default)]
pub struct ArchivesTamOutcome {
    /// One line per archive, oldest first.
    pub lines: Vec<ArchiveTamLine>,
    /// True when the key requires a TAM but `--force` loaded the manifest without checking
    /// it (borg 1.4's warning "Manifest authentication DISABLED.").
    pub authentication_disabled: bool,
}

impl ArchivesTamOutcome {
    /// Archives without a valid TAM (fixed or not).
    pub fn issues(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.status != ArchiveTamStatus::Present)
            .count()
    }

    /// Archives that still have no valid TAM afterwards.
    pub fn unfixed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| {
                matches!(
                    l.status,
                    ArchiveTamStatus::Missing | ArchiveTamStatus::NotFixed(_)
                )
            })
            .count()
    }
}

/// Checks every archive's TAM and, unless `check_only`, authenticates the archives that lack a
/// valid one after checking their contents; then, unless `check_only`, writes the manifest
/// (with its TAM) and commits, whether or not an archive changed, as borg 1.4.5 does.
/// `force` (`--force`) loads a manifest without a valid TAM even where one is required, as
/// borg 1.4's `Manifest.load(force_tam_not_required=args.force)`; the manifest written at the
/// end is authenticated again.
pub fn archives_tam(
    loc: &Location,
    check_only: bool,
    force: bool,
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<ArchivesTamOutcome> {
    let access = Access {
        exclusive: !check_only,
        lock_wait,
        lock: true,
    };
    let mut opened =
        common::open_with_manifest_forced(loc, &access, &[Operation::Check], confirm, force)?;
    // The cache sync must read the very archives this command is about.
    opened.store.key.set_ignore_invalid_archive_tam(true);
    let mut cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait,
            ..CacheOptions::default()
        },
    )?;
    let sel = Selection {
        consider_checkpoints: true,
        ..Selection::default()
    };
    let archives = select::select_archives(&opened.manifest, &sel);
    let mut outcome = ArchivesTamOutcome {
        authentication_disabled: force && opened.store.key.tam_required(),
        ..ArchivesTamOutcome::default()
    };
    let mut stats = OpStats::default();
    for info in archives {
        let data = opened.store.get(&info.id, None)?;
        if let Ok((_, true)) = opened.store.key.unpack_and_verify_archive(&data) {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::Present,
            });
            continue;
        }
        if check_only {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::Missing,
            });
            continue;
        }
        let meta = match opened
            .store
            .key
            .unpack_archive_unverified(&data)
            .map_err(|e| e.to_string())
            .and_then(|v| ArchiveMeta::from_value(&v).map_err(|e| e.to_string()))
        {
            Ok(meta) => meta,
            Err(why) => {
                outcome.lines.push(ArchiveTamLine {
                    info,
                    status: ArchiveTamStatus::NotFixed(why),
                });
                continue;
            }
        };
        if let Err(why) = contents_hold_together(&mut opened.store, &cache, &meta, &info) {
            outcome.lines.push(ArchiveTamLine {
                info,
                status: ArchiveTamStatus::NotFixed(why),
            });
            continue;
        }
        let packed = opened
            .store
            .key
            .pack_and_authenticate_metadata(meta.to_value(), "archive");
        let new_id = opened.store.key.id_hash(&packed);
        cache.add_chunk(&mut opened.store, &new_id, &packed, &mut stats)?;
        cache.chunk_decref(&mut opened.store, &info.id, &mut stats)?;
        opened.manifest.archives.insert(
            info.name.clone(),
            ArchiveRef {
                id: new_id,
                time: info.time.clone(),
            },
        );
        outcome.lines.push(ArchiveTamLine {
            info,
            status: ArchiveTamStatus::Added(new_id),
        });
    }
    if !check_only {
        common::commit_manifest(&mut opened)?;
        cache.commit(&opened.manifest)?;
    }
    Ok(outcome)
}

/// Reads the whole item stream of `meta` and looks each file chunk up in the chunk index: the
/// contents check made before an archive without a valid TAM is authenticated again.
fn contents_hold_together(
    store: &mut crate::archive::objects::KeyedRepository,
    cache: &Cache,
    meta: &ArchiveMeta,
    info: &ArchiveInfo,
) -> std::result::Result<(), String> {
    if meta.name != info.name {
        return Err(format!(
            "the archive metadata names it {:?}",
            String::from_utf8_lossy(&meta.name)
        ));
    }
    let mut items = Items::new(store, meta);
    let mut count = 0u64;
    while let Some(item) = items.next_item().map_err(|e| e.to_string())? {
        count += 1;
        for chunk in item.chunks.iter().flatten() {
            if cache.seen_chunk(&chunk.id).is_none() {
                return Err(format!(
                    "item {} refers to missing chunk {}",
                    String::from_utf8_lossy(&item.path),
                    hex::encode(chunk.id)
                ));
            }
        }
    }
    if count == 0 && !meta.items.is_empty() {
        return Err("its item stream holds no item".to_string());
    }
    Ok(())
}

/// One line `upgrade --tam | --check-tam | --disable-tam` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TamLine {
    /// Printed to stdout.
    Out(String),
    /// A warning (stderr; makes the exit code 1).
    Warning(String),
}

/// What `upgrade --tam | --check-tam | --disable-tam` found and did, in borg 1.4.5's order.
#[derive(Debug, Clone, Default)]
pub struct ManifestTamOutcome {
    /// True when the key requires a TAM but `--force` (or `--disable-tam`) loaded the manifest
    /// without one (borg warns `Manifest authentication DISABLED.`).
    pub authentication_disabled: bool,
    /// The lines, in order.
    pub lines: Vec<TamLine>,
}

impl ManifestTamOutcome {
    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, TamLine::Warning(_)))
            .count()
    }
}

/// Which manifest-TAM action `upgrade` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestTamAction {
    /// `--check-tam`: report only.
    Check,
    /// `--tam`: require a manifest TAM in manifest, key and security directory.
    Require,
    /// `--disable-tam`: stop requiring it in all three.
    Disable,
}

/// `upgrade --tam | --check-tam | --disable-tam` (borg 1.4.5's `do_upgrade`): checks or sets
/// the three places that say a manifest TAM is required: the manifest's `config.tam_required`,
/// the key's `tam_required` (the key is saved again under the same passphrase) and the
/// security directory's `tam_required` file.
pub fn manifest_tam(
    loc: &Location,
    action: ManifestTamAction,
    force: bool,
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<ManifestTamOutcome> {
    let access = Access {
        exclusive: action != ManifestTamAction::Check,
        lock_wait,
        lock: true,
    };
    let force = force || action == ManifestTamAction::Disable;
    let operations: &[Operation] = if action == ManifestTamAction::Disable {
        &[]
    } else {
        &[Operation::Check]
    };
    let mut opened = common::open_with_manifest_forced(loc, &access, operations, confirm, force)?;
    let mut out = ManifestTamOutcome {
        authentication_disabled: force && opened.store.key.tam_required(),
        lines: Vec::new(),
    };
    let has_key = opened.store.key.material().is_some();
    let security_required = opened.security.tam_required_flag();
    match action {
        ManifestTamAction::Disable => {
            if security_required {
                opened.security.set_tam_required(false)?;
            }
            if has_key && opened.store.key.tam_required() {
                set_key_tam_required(&mut opened, false, &mut out)?;
            }
            set_manifest_tam_required(&mut opened.manifest, false);
            common::commit_manifest(&mut opened)?;
        }
        ManifestTamAction::Check | ManifestTamAction::Require => {
            let check = action == ManifestTamAction::Check;
            let manifest_required = opened
                .manifest
                .config
                .get("tam_required")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if !opened.manifest.tam_verified || !manifest_required {
                if check {
                    out.lines.push(TamLine::Warning(
                        "Repository Manifest is not TAM verified or a TAM is not required!".into(),
                    ));
                } else {
                    out.lines.push(TamLine::Out("Manifest contents:".into()));
                    let sel = Selection {
                        consider_checkpoints: true,
                        ..Selection::default()
                    };
                    for info in select::select_archives(&opened.manifest, &sel) {
                        out.lines.push(TamLine::Out(format_archive(&info)));
                    }
                    set_manifest_tam_required(&mut opened.manifest, true);
                    common::commit_manifest(&mut opened)?;
                }
            }
            if has_key && !opened.store.key.tam_required() {
                if check {
                    out.lines.push(TamLine::Warning(
                        "Key does not require TAM authentication!".into(),
                    ));
                } else {
                    set_key_tam_required(&mut opened, true, &mut out)?;
                }
            }
            if !security_required {
                if check {
                    out.lines.push(TamLine::Warning(
                        "Client-side security database does not require a TAM!".into(),
                    ));
                } else {
                    opened.security.set_tam_required(true)?;
                    out.lines
                        .push(TamLine::Out("Updated security database".into()));
                }
            }
            if check && out.warnings() == 0 {
                out.lines.push(TamLine::Out(
                    "Manifest authentication setup OK for this client and this repository.".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// Sets `config.tam_required` of the manifest, keeping the other entries.
fn set_manifest_tam_required(manifest: &mut crate::archive::Manifest, required: bool) {
    if let Some(v) = manifest.config.get_mut("tam_required") {
        *v = crate::msgpack::Value::Bool(required);
        return;
    }
    let entry = (
        crate::msgpack::Value::raw("tam_required"),
        crate::msgpack::Value::Bool(required),
    );
    match &mut manifest.config {
        crate::msgpack::Value::Map(entries) => entries.push(entry),
        other => *other = crate::msgpack::Value::Map(vec![entry]),
    }
}

/// Sets the key's `tam_required` and saves the key again under the passphrase that unlocked
/// it (borg's `change_passphrase(key._passphrase)`), reporting `Key updated` and where it is.
fn set_key_tam_required(
    opened: &mut common::Opened,
    required: bool,
    out: &mut ManifestTamOutcome,
) -> Result<()> {
    let Some(material) = opened.store.key.material_mut() else {
        return Ok(());
    };
    material.tam_required = Some(required);
    let Some(passphrase) = opened.passphrase.as_ref() else {
        return Err(CommandError::new(
            "upgrade: the key's passphrase is not known.",
        ));
    };
    let Some(material) = opened.store.key.material() else {
        return Ok(());
    };
    let blob = crate::crypto::encrypt_key_blob(material, passphrase.as_str());
    let id = opened.store.repo.id();
    let shown = match &opened.key_location {
        common::KeyLocation::File(path) => {
            crate::paths::write_atomic(
                path,
                crate::crypto::format_key_file(&id, &blob).as_bytes(),
            )?;
            path.display().to_string()
        }
        common::KeyLocation::Repository => {
            opened.store.repo.save_key(blob.as_bytes())?;
            opened.location.canonical()
        }
        common::KeyLocation::None => return Ok(()),
    };
    out.lines.push(TamLine::Out("Key updated".into()));
    out.lines
        .push(TamLine::Out(format!("Key location: {shown}")));
    Ok(())
}

/// What `upgrade` without a TAM option did.
#[derive(Debug, Clone, Default)]
pub struct LegacyOutcome {
    /// The hard-link copy made first (`REPO.before-upgrade-TIME`), if any.
    pub backup: Option<std::path::PathBuf>,
    /// The converters' warnings, in borg's order.
    pub warnings: Vec<String>,
}

/// The warning borg's Attic and borg 0.xx converters give when they find no old key file.
const NO_KEY_FILE: &str = "no key file found for repository";

/// `upgrade` without a TAM option, on a current borg 1.x repository: borg 1.4.5 runs its Attic
/// and borg 0.xx converters (`upgrader.py`), which find nothing to convert. As borg, on a local
/// repository and unless `inplace` or `dry_run`, a hard-link copy of the whole repository is
/// made first, `REPO.before-upgrade-YYYY-MM-DD-HH:MM:SS` (local time; files linked,
/// directories made anew), then the repository is locked, its `README` written anew (even
/// with `dry_run`, as borg) and the converters' warnings returned. The repository must exist
/// and be lockable.
pub fn legacy_upgrade(
    loc: &Location,
    dry_run: bool,
    inplace: bool,
    lock_wait: f64,
) -> Result<LegacyOutcome> {
    let mut out = LegacyOutcome::default();
    if loc.proto != crate::location::Proto::File {
        // borg's converters work on local paths only; a remote repository is just opened
        let access = Access {
            exclusive: true,
            lock_wait,
            lock: true,
        };
        drop(common::open_repository(loc, &access)?);
        out.warnings = vec![NO_KEY_FILE.to_string(); 2];
        return Ok(out);
    }
    // borg opens the repository without its lock to copy it, then locks it
    let unlocked = Access {
        exclusive: false,
        lock_wait,
        lock: false,
    };
    drop(common::open_repository(loc, &unlocked)?);
    let path = loc.local_path();
    if !inplace {
        let mut name = path.clone().into_os_string();
        name.push(format!(
            ".before-upgrade-{}",
            chrono::Local::now().format("%Y-%m-%d-%H:%M:%S")
        ));
        let backup = std::path::PathBuf::from(name);
        if !dry_run {
            link_tree(&path, &backup)
                .map_err(|e| CommandError::new(format!("{}: {e}", backup.display())))?;
        }
        out.backup = Some(backup);
    }
    let locked = Access {
        exclusive: true,
        lock_wait,
        lock: true,
    };
    let repo = common::open_repository(loc, &locked)?;
    out.warnings.push(NO_KEY_FILE.to_string());
    if !has_index(&path) {
        out.warnings.push(format!(
            "no index file found for repository {}",
            path.display()
        ));
    }
    // borg's `borg_readme`: removed and written anew, so the copy keeps its own file
    let readme = path.join("README");
    let _ = std::fs::remove_file(&readme);
    std::fs::write(&readme, crate::repo::local::REPOSITORY_README)
        .map_err(|e| CommandError::new(format!("{}: {e}", readme.display())))?;
    drop(repo);
    out.warnings.push(NO_KEY_FILE.to_string());
    Ok(out)
}

/// borg's `get_index_transaction_id() is not None`: an `index.N` file exists.
fn has_index(repo: &std::path::Path) -> bool {
    std::fs::read_dir(repo)
        .map(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.strip_prefix("index.")
                    .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .unwrap_or(false)
}

/// `shutil.copytree(src, dst, copy_function=os.link)`: directories made anew (with their
/// modes), files hard-linked, symbolic links copied as links.
fn link_tree(src: &std::path::Path, dst: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let ft = entry.file_type()?;
        if ft.is_dir() {
            link_tree(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else {
            std::fs::hard_link(&from, &to)?;
        }
    }
    let mode = std::fs::metadata(src)?.permissions().mode();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
}
