//! `init`: create a repository, its key and an empty manifest, exactly as `borg init` does.

use crate::archive::{KeyedRepository, Manifest};
use crate::compress::Compression;
use crate::crypto::{self, Key, KeyType};
use crate::location::{Location, Proto};
use crate::repo::{CreateOptions, LocalRepository, OpenOptions, Repository};
use crate::security::{AccessFacts, SecurityDir};

use super::common::{CommandError, KeyLocation, Result};

/// What `init` was asked to do.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The `-e` mode name.
    pub encryption: String,
    /// `--append-only`
    pub append_only: bool,
    /// `--storage-quota`, already parsed to bytes.
    pub storage_quota: Option<u64>,
    /// `--make-parent-dirs`
    pub make_parent_dirs: bool,
    /// `--import-related-secrets`: share the id key and chunker seed of another repository.
    pub related_secrets: Option<super::related_secrets::RelatedSecrets>,
}

/// What `init` did, for the CLI to report.
#[derive(Debug, Clone)]
pub struct InitOutcome {
    /// The canonical location.
    pub location: String,
    /// The key mode.
    pub key_type: KeyType,
    /// Where the key was stored.
    pub key_location: KeyLocation,
}

/// Creates the repository at `loc`. On any failure after the repository directory was
/// created, the half-made repository is removed again.
pub fn run(loc: &Location, opts: &InitOptions) -> Result<InitOutcome> {
    let key_type = KeyType::from_mode_name(&opts.encryption)?;
    if key_type == KeyType::Passphrase {
        return Err(CommandError::new(format!(
            "Invalid encryption mode \"{}\"",
            opts.encryption
        )));
    }
    let related = match &opts.related_secrets {
        // borg ignores them for `none` (a plaintext key has neither id key nor seed)
        Some(r) if key_type.has_key_material() => {
            if !super::related_secrets::uses_same_id_hash(&r.key_name, key_type) {
                return Err(super::related_secrets::incompatible());
            }
            Some(r)
        }
        _ => None,
    };
    if loc.proto == Proto::Ssh {
        return run_remote(loc, opts, key_type, related);
    }
    if loc.proto == Proto::S3 {
        let store = crate::repo::objstore::store_for(loc)?;
        let repo = LocalRepository::create_and_open_obj(
            &store,
            &CreateOptions {
                append_only: opts.append_only,
                storage_quota: opts.storage_quota,
                ..CreateOptions::default()
            },
            &OpenOptions {
                exclusive: true,
                ..OpenOptions::default()
            },
        )?;
        return match create_key_and_manifest(loc, Box::new(repo), key_type, related) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // remove the half-made repository (README, config, segments)
                if let Ok(objects) = store.list("") {
                    for (name, _) in objects {
                        let _ = store.delete(&name);
                    }
                }
                Err(e)
            }
        };
    }
    let path = loc.local_path();
    let repo = LocalRepository::create_and_open(
        &path,
        &CreateOptions {
            append_only: opts.append_only,
            storage_quota: opts.storage_quota,
            make_parent_dirs: opts.make_parent_dirs,
            ..CreateOptions::default()
        },
        &OpenOptions {
            exclusive: true,
            ..OpenOptions::default()
        },
    )?;
    match create_key_and_manifest(loc, Box::new(repo), key_type, related) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // The repository object (and its lock) is gone by now; remove what we created.
            let _ = std::fs::remove_dir_all(&path);
            Err(e)
        }
    }
}

/// `init` over `serve`: the server creates the repository (§9.3 `open(create=True)`).
fn run_remote(
    loc: &Location,
    opts: &InitOptions,
    key_type: KeyType,
    related: Option<&super::related_secrets::RelatedSecrets>,
) -> Result<InitOutcome> {
    use crate::repo::remote::{RemoteOpenOptions, RemoteRepository};
    let open = RemoteOpenOptions {
        create: true,
        exclusive: true,
        append_only: opts.append_only,
        make_parent_dirs: opts.make_parent_dirs,
        storage_quota: opts.storage_quota,
        ..RemoteOpenOptions::default()
    };
    let repo = RemoteRepository::open(loc, &open)?;
    match create_key_and_manifest(loc, Box::new(repo), key_type, related) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // Remove the half-made repository again, as the local branch does.
            let reopen = RemoteOpenOptions {
                exclusive: true,
                ..RemoteOpenOptions::default()
            };
            if let Ok(mut r) = RemoteRepository::open(loc, &reopen) {
                let _ = r.destroy();
            }
            Err(e)
        }
    }
}

fn create_key_and_manifest(
    loc: &Location,
    mut repo: Box<dyn Repository>,
    key_type: KeyType,
    related: Option<&super::related_secrets::RelatedSecrets>,
) -> Result<InitOutcome> {
    let id = repo.id();
    let mut key = if key_type == KeyType::Plaintext {
        Key::plaintext()
    } else {
        Key::generate(key_type, id)
    };
    if let (Some(r), Some(m)) = (related, key.material_mut()) {
        m.id_key = r.id_key.clone();
        m.chunk_seed = r.chunk_seed;
    }
    let mut key_location = KeyLocation::None;
    if let Some(material) = key.material() {
        let passphrase = super::key::new_passphrase(&loc.options.env)?;
        let blob = crypto::encrypt_key_blob(material, passphrase.as_str());
        if key_type.uses_keyfile() {
            let target =
                crypto::new_key_file_path_with(&loc.path, loc.host.as_deref(), &loc.options.env)?;
            if let Some(parent) = target.parent() {
                crate::paths::ensure_dir(parent)?;
            }
            crate::paths::write_atomic(&target, crypto::format_key_file(&id, &blob).as_bytes())?;
            key_location = KeyLocation::File(target);
        } else {
            repo.save_key(blob.as_bytes())?;
            key_location = KeyLocation::Repository;
        }
    }
    let security = SecurityDir::for_repository(&id);
    let mut manifest = Manifest::new(&key);
    let plaintext = manifest.to_plaintext(&key);
    let mut store = KeyedRepository::new(repo, key, Compression::default(), security.nonce_file());
    store.put_manifest(&plaintext)?;
    store.repo.commit(false, 0.1)?;
    let key = &store.key;
    let facts = AccessFacts {
        location: &loc.canonical(),
        key_type: key_type.type_byte(),
        logically_encrypted: key_type.logically_encrypted(false),
        is_plaintext: key_type == KeyType::Plaintext,
        manifest_timestamp: &manifest.timestamp,
    };
    security.assert_secure(&facts, false, &|_, _| true)?;
    if key.tam_required() {
        security.set_tam_required(true)?;
    }
    // borg creates the client cache at once (`with Cache(...)` in `do_init`); its config then
    // records the location, which later security checks consult.
    crate::cache::Cache::open(
        &mut store,
        &manifest,
        crate::cache::CacheOptions {
            location: Some(loc.canonical()),
            ..crate::cache::CacheOptions::default()
        },
    )?;
    Ok(InitOutcome {
        location: loc.canonical(),
        key_type,
        key_location,
    })
}
