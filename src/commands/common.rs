//! What every command does first (borg's `with_repository`): open the repository, find and
//! unlock its key, load and authenticate the manifest, and run the security-dir checks.

use std::path::{Path, PathBuf};

use crate::archive::{KeyedRepository, Manifest, Operation};
use crate::compress::Compression;
use crate::crypto::{self, Key, KeyMaterial, KeyType};
use crate::location::{Location, Proto};
use crate::options::Env;
use crate::repo::{LocalRepository, OpenOptions, Repository};
use crate::security::{AccessFacts, Confirm, SecurityDir};

/// A failure a command reports to the user: one line, exit code 2 (or 1 for warnings).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// The line shown to the user.
    pub message: String,
    /// borg's msgid for `--log-json` (e.g. `Repository.DoesNotExist`).
    pub msgid: Option<String>,
    /// Exit code: 2 for errors.
    pub exit_code: i32,
}

impl CommandError {
    /// An error with a message and no msgid.
    pub fn new(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            msgid: None,
            exit_code: 2,
        }
    }

    /// An error with a borg msgid.
    pub fn with_id(message: impl Into<String>, msgid: &str) -> Self {
        CommandError {
            message: message.into(),
            msgid: Some(msgid.to_string()),
            exit_code: 2,
        }
    }

    /// borg's `Error("Got Ctrl-C / SIGINT.")`: a command stopped at the first SIGINT, after
    /// its checkpoint (exit 2).
    pub fn interrupted() -> Self {
        CommandError::with_id("Error: Got Ctrl-C / SIGINT.", "Error")
    }

    /// A command ended by SIGTERM, SIGHUP or a second SIGINT (borg's message and exit code
    /// 128 + N).
    pub fn stopped(stop: crate::platform::signals::Stop) -> Self {
        CommandError {
            message: stop.message().to_string(),
            msgid: stop.msgid().map(str::to_string),
            exit_code: stop.exit_code(),
        }
    }

    /// Whether this is the error [`CommandError::stopped`] makes for `stop`.
    pub fn is_stop(&self, stop: crate::platform::signals::Stop) -> bool {
        self.exit_code == stop.exit_code() && self.message == stop.message()
    }
}

macro_rules! from_error {
    ($($t:ty => $f:expr),* $(,)?) => {$(
        impl From<$t> for CommandError {
            fn from(e: $t) -> Self {
                let msgid: Option<&str> = $f(&e);
                CommandError { message: e.to_string(), msgid: msgid.map(str::to_string), exit_code: 2 }
            }
        }
    )*};
}

from_error! {
    crate::repo::RepoError => repo_msgid,
    crate::crypto::CryptoError => crypto_msgid,
    crate::archive::ArchiveError => archive_msgid,
    crate::security::SecurityError => security_msgid,
    crate::location::LocationError => |_e: &crate::location::LocationError| None,
    crate::compress::CompressError => |_e: &crate::compress::CompressError| None,
    std::io::Error => |_e: &std::io::Error| None,
}

/// borg's msgid for a repository error (`--log-json` consumers key on these).
fn repo_msgid(e: &crate::repo::RepoError) -> Option<&'static str> {
    use crate::repo::RepoError as E;
    Some(match e {
        E::DoesNotExist(_) => "Repository.DoesNotExist",
        E::AlreadyExists(_) => "Repository.AlreadyExists",
        E::PathAlreadyExists(_) => "Repository.PathAlreadyExists",
        E::ParentPathDoesNotExist(_) => "Repository.ParentPathDoesNotExist",
        E::InvalidRepository(_) => "Repository.InvalidRepository",
        E::InvalidRepositoryConfig(..) => "Repository.InvalidRepositoryConfig",
        E::AtticRepository(_) => "Repository.AtticRepository",
        E::CheckNeeded(_) => "Repository.CheckNeeded",
        E::ObjectNotFound(..) => "Repository.ObjectNotFound",
        E::InsufficientFreeSpace(..) => "Repository.InsufficientFreeSpaceError",
        E::StorageQuotaExceeded(..) => "Repository.StorageQuotaExceeded",
        E::Integrity(_) => "IntegrityError",
        E::FileIntegrity(_) => "FileIntegrityError",
        E::Lock(l) => match l {
            crate::repo::LockError::Timeout(_) => "LockTimeout",
            crate::repo::LockError::Failed(..) => "LockFailed",
            crate::repo::LockError::NotLocked(_) => "NotLocked",
            crate::repo::LockError::NotMyLock(_) => "NotMyLock",
        },
        E::PathNotAllowed(_) => "PathNotAllowed",
        E::InvalidRpcMethod(_) => "InvalidRPCMethod",
        E::ConnectionClosed(_) => "ConnectionClosed",
        E::UnexpectedServerData(_) => "UnexpectedRPCDataFormatFromServer",
        E::Remote { class, .. } => return remote_class_msgid(class),
        _ => return None,
    })
}

/// borg's msgid for a security-dir refusal (borg's `Cache.*` errors).
fn security_msgid(e: &crate::security::SecurityError) -> Option<&'static str> {
    use crate::security::SecurityError as E;
    Some(match e {
        E::RepositoryReplay => "Cache.RepositoryReplay",
        E::RepositoryIdNotUnique => "Cache.RepositoryIDNotUnique",
        E::EncryptionMethodMismatch => "Cache.EncryptionMethodMismatch",
        E::RepositoryAccessAborted => "Cache.RepositoryAccessAborted",
        E::CacheInitAborted => "Cache.CacheInitAbortedError",
        _ => return None,
    })
}

/// borg's msgid for an archive-layer error.
fn archive_msgid(e: &crate::archive::ArchiveError) -> Option<&'static str> {
    use crate::archive::ArchiveError as E;
    match e {
        E::Repo(r) => repo_msgid(r),
        E::Crypto(c) => crypto_msgid(c),
        E::NoManifest => Some("NoManifestError"),
        E::MandatoryFeatureUnsupported(_) => Some("MandatoryFeatureUnsupported"),
        E::IdMismatch(_) => Some("IntegrityError"),
        _ => None,
    }
}

/// The msgid of a remote exception class (borg uses the class name).
fn remote_class_msgid(class: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "LockTimeout",
        "LockFailed",
        "StorageQuotaExceeded",
        "InsufficientFreeSpaceError",
        "InvalidRepository",
        "InvalidRepositoryConfig",
        "PathAlreadyExists",
        "FileIntegrityError",
        "RPCError",
    ];
    Some(
        KNOWN
            .iter()
            .find(|k| **k == class)
            .copied()
            .unwrap_or("RPCError"),
    )
}

/// borg's msgid for a key or authentication error.
fn crypto_msgid(e: &crate::crypto::CryptoError) -> Option<&'static str> {
    use crate::crypto::CryptoError as E;
    Some(match e {
        E::PassphraseWrong => "PassphraseWrong",
        E::PasswordRetriesExceeded => "PasswordRetriesExceeded",
        E::KeyfileNotFound { .. } => "KeyfileNotFoundError",
        E::KeyfileInvalid { .. } => "KeyfileInvalidError",
        E::KeyfileMismatch { .. } => "KeyfileMismatchError",
        E::RepoKeyNotFound(_) => "RepoKeyNotFoundError",
        E::TamRequired(_) => "TAMRequiredError",
        E::TamInvalid => "TAMInvalid",
        E::TamUnsupportedSuite(_) => "TAMUnsupportedSuiteError",
        E::Integrity(_) => "IntegrityError",
        E::NotABorgKeyFile => "NotABorgKeyFile",
        E::RepoIdMismatch => "RepoIdMismatch",
        _ => return None,
    })
}

/// Result type of the commands layer.
pub type Result<T> = std::result::Result<T, CommandError>;

/// How to open a repository.
#[derive(Debug, Clone)]
pub struct Access {
    /// Take an exclusive lock (writers and `check`).
    pub exclusive: bool,
    /// Seconds to wait for a lock.
    pub lock_wait: f64,
    /// False with `--bypass-lock`.
    pub lock: bool,
}

/// `--lock-wait` and `--bypass-lock` as the read-only commands take them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockSpec {
    /// Seconds to wait for a lock.
    pub wait: f64,
    /// False with `--bypass-lock`: no lock is taken, so a repository on read-only media or
    /// without write permission can be read.
    pub lock: bool,
}

impl Default for LockSpec {
    /// borg's defaults: lock, wait one second.
    fn default() -> Self {
        LockSpec {
            wait: 1.0,
            lock: true,
        }
    }
}

impl LockSpec {
    /// The shared-lock [`Access`] of a read-only command.
    pub fn shared(self) -> Access {
        Access {
            exclusive: false,
            lock_wait: self.wait,
            lock: self.lock,
        }
    }
}

/// Opens the repository named by `loc`: a local directory, `serve` over ssh, or a bucket.
pub fn open_repository(loc: &Location, access: &Access) -> Result<Box<dyn Repository>> {
    match loc.proto {
        Proto::File => {
            let repo = LocalRepository::open(
                &loc.local_path(),
                &OpenOptions {
                    exclusive: access.exclusive,
                    lock_wait: Some(access.lock_wait),
                    lock: access.lock,
                    ..OpenOptions::default()
                },
            )?;
            Ok(Box::new(repo))
        }
        Proto::Ssh => {
            let repo = crate::repo::remote::RemoteRepository::open(
                loc,
                &crate::repo::remote::RemoteOpenOptions {
                    exclusive: access.exclusive,
                    lock_wait: Some(access.lock_wait),
                    lock: access.lock,
                    ..Default::default()
                },
            )?;
            Ok(Box::new(repo))
        }
        Proto::S3 => {
            let store = crate::repo::objstore::store_for(loc)?;
            let repo = LocalRepository::open_obj(
                &store,
                &OpenOptions {
                    exclusive: access.exclusive,
                    lock_wait: Some(access.lock_wait),
                    lock: access.lock,
                    ..OpenOptions::default()
                },
            )?;
            Ok(Box::new(repo))
        }
    }
}

/// Where a key lives: in the repository or in a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// No key (`none` mode).
    None,
    /// The repository `config`.
    Repository,
    /// A key file.
    File(PathBuf),
}

/// The key blob text and where it came from; `repo_location` (canonical) is named in the
/// key-file errors, as borg names it.
pub fn read_key_blob(
    repo: &mut dyn Repository,
    key_type: KeyType,
    repo_location: &str,
    env: &Env,
) -> Result<(String, KeyLocation)> {
    if key_type.uses_keyfile() {
        // borg names the repository (its canonical location) in the key-file errors.
        let path = crypto::find_key_file_with(&repo.id(), env)
            .map_err(|e| e.with_location(repo_location))?;
        let contents = std::fs::read_to_string(&path)
            .map_err(|e| CommandError::new(format!("{}: {e}", path.display())))?;
        let (_, blob) = crypto::parse_key_file(&contents).map_err(|e| {
            match e.with_location(repo_location) {
                crate::crypto::CryptoError::KeyfileInvalid { repository, .. } => {
                    crate::crypto::CryptoError::KeyfileInvalid {
                        repository,
                        path: path.display().to_string(),
                    }
                }
                other => other,
            }
        })?;
        Ok((blob, KeyLocation::File(path)))
    } else if key_type.stores_key_in_repo() {
        let blob = repo.load_key()?;
        if blob.is_empty() {
            return Err(
                crate::crypto::CryptoError::RepoKeyNotFound(repo_location.to_string()).into(),
            );
        }
        Ok((
            String::from_utf8_lossy(&blob).into_owned(),
            KeyLocation::Repository,
        ))
    } else {
        Ok((String::new(), KeyLocation::None))
    }
}

/// Unlocks the key of an open repository given the manifest object's TYPE byte; the
/// passphrase and key-file variables come from `env`.
pub fn load_key(
    repo: &mut dyn Repository,
    type_byte: u8,
    repo_location: &str,
    env: &Env,
) -> Result<(Key, KeyLocation, Option<crate::crypto::Passphrase>)> {
    let mut key_type = KeyType::from_type_byte(type_byte)?;
    if key_type == KeyType::Passphrase {
        // Legacy objects are read with the repokey class (FORMAT.md §4.1).
        key_type = KeyType::Repokey;
    }
    if !key_type.uses_keyfile() && !key_type.stores_key_in_repo() {
        return Ok((Key::plaintext(), KeyLocation::None, None));
    }
    let (blob, location) = read_key_blob(repo, key_type, repo_location, env)?;
    let target = match &location {
        KeyLocation::File(p) => p.to_string_lossy().into_owned(),
        _ => repo_location.to_string(),
    };
    let (material, passphrase) = crypto::unlock_key_blob_with(
        &blob,
        &target,
        &crypto::PassphraseEnv::from_env(env),
        &mut crypto::TtyPrompter,
    )?;
    check_repository_id(&material, &repo.id())?;
    Ok((
        Key::from_material(key_type, material),
        location,
        Some(passphrase),
    ))
}

fn check_repository_id(material: &KeyMaterial, id: &[u8; 32]) -> Result<()> {
    if material.repository_id != *id {
        return Err(CommandError::new(
            "The key does not belong to this repository (repository id mismatch).",
        ));
    }
    Ok(())
}

/// An open repository with its key and authenticated manifest.
pub struct Opened {
    /// Object access (repository, key, compression, counters).
    pub store: KeyedRepository,
    /// The manifest.
    pub manifest: Manifest,
    /// The location as parsed.
    pub location: Location,
    /// Where the key lives.
    pub key_location: KeyLocation,
    /// This repository's security directory.
    pub security: SecurityDir,
    /// The passphrase that unlocked the key (None without a key); `upgrade` saves the key
    /// again under it.
    pub passphrase: Option<crate::crypto::Passphrase>,
}

impl Opened {
    /// The repository id.
    pub fn id(&self) -> [u8; 32] {
        self.store.repo.id()
    }
}

/// Opens repository, key and manifest, checks feature flags for `operations` and runs the
/// security checks (borg's `with_repository(manifest=True)`).
pub fn open_with_manifest(
    loc: &Location,
    access: &Access,
    operations: &[Operation],
    confirm: Confirm<'_>,
) -> Result<Opened> {
    open_with_manifest_forced(loc, access, operations, confirm, false)
}

/// [`open_with_manifest`], optionally loading a manifest whose TAM is missing or does not
/// verify although the key requires one (borg's `force_tam_not_required`).
pub fn open_with_manifest_forced(
    loc: &Location,
    access: &Access,
    operations: &[Operation],
    confirm: Confirm<'_>,
    force_tam_not_required: bool,
) -> Result<Opened> {
    let mut repo = open_repository(loc, access)?;
    let store_probe = repo.get(&crate::archive::MANIFEST_ID);
    let manifest_object = match store_probe {
        Ok(obj) => obj,
        Err(crate::repo::RepoError::ObjectNotFound(..)) => {
            return Err(CommandError::with_id(
                "Repository has no manifest.",
                "NoManifestError",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let Some(&type_byte) = manifest_object.first() else {
        return Err(CommandError::new("Manifest object is empty."));
    };
    let (key, key_location, passphrase) =
        load_key(repo.as_mut(), type_byte, &loc.canonical(), &loc.options.env)?;
    let empty_passphrase = passphrase.as_ref().is_some_and(|p| p.as_str().is_empty());
    let security = SecurityDir::for_repository(&repo.id());
    let mut key = key;
    key.resolve_tam_required(security.tam_required_flag());
    let store = KeyedRepository::new(repo, key, Compression::default(), security.nonce_file());
    let plaintext = store.decode(&crate::archive::MANIFEST_ID, &manifest_object, None)?;
    let manifest = Manifest::from_plaintext(&store.key, &plaintext, force_tam_not_required)
        .map_err(|e| match e {
            crate::archive::ArchiveError::Crypto(c) => {
                CommandError::from(c.with_location(&loc.canonical()))
            }
            other => other.into(),
        })?;
    sync_tam_required_flag(&manifest, &security)?;
    manifest.check_features(operations)?;
    let key_type = store.key.key_type();
    let facts = AccessFacts {
        location: &loc.canonical(),
        key_type: key_type.type_byte(),
        logically_encrypted: key_type.logically_encrypted(empty_passphrase),
        is_plaintext: key_type == KeyType::Plaintext,
        manifest_timestamp: &manifest.timestamp,
    };
    let cache_config = repo_cache_dir(&store.repo.id()).join("config");
    let cache = read_cache_facts(&cache_config);
    security.assert_secure_with_cache(&facts, cache.as_ref(), true, confirm)?;
    if let Some(previous) = cache.as_ref().and_then(|c| c.previous_location.as_deref()) {
        if previous != facts.location {
            // borg records an accepted relocation in the cache config at once
            update_cache_location(&cache_config, facts.location);
        }
    }
    Ok(Opened {
        store,
        manifest,
        location: loc.clone(),
        key_location,
        security,
        passphrase,
    })
}

/// borg 1.4's `Manifest.load`: a manifest whose TAM verified decides the security directory's
/// `tam_required` flag file, which then says what the manifest's `config` says (created or
/// removed if it differs), so that a later manifest without a TAM is refused.
fn sync_tam_required_flag(manifest: &Manifest, security: &SecurityDir) -> Result<()> {
    if !manifest.tam_verified {
        return Ok(());
    }
    let manifest_required = manifest
        .config
        .get("tam_required")
        .and_then(crate::msgpack::Value::as_bool)
        .unwrap_or(false);
    if manifest_required != security.tam_required_flag() {
        security.set_tam_required(manifest_required)?;
    }
    Ok(())
}

/// Writes the manifest and commits the repository, then records the new manifest timestamp in
/// the security directory (borg does this when it saves the cache).
pub fn commit_manifest(opened: &mut Opened) -> Result<()> {
    let plaintext = opened.manifest.to_plaintext(&opened.store.key);
    opened.store.put_manifest(&plaintext)?;
    opened.store.repo.commit(false, 0.1)?;
    let key_type = opened.store.key.key_type().type_byte();
    opened.security.save(
        &opened.location.canonical(),
        key_type,
        &opened.manifest.timestamp,
    )?;
    Ok(())
}

/// The security-relevant part of a client cache `config` (borg's `CacheConfig`); None when
/// there is no readable cache config.
fn read_cache_facts(path: &Path) -> Option<crate::security::CacheFacts> {
    let text = std::fs::read_to_string(path).ok()?;
    let cfg = crate::repo::config::Config::parse(&text).ok()?;
    let get = |k: &str| cfg.get("cache", k).map(|v| v.trim().to_string());
    Some(crate::security::CacheFacts {
        previous_location: get("previous_location").filter(|v| !v.is_empty()),
        key_type: get("key_type").filter(|v| !v.is_empty()),
        timestamp: get("timestamp").filter(|v| !v.is_empty()),
    })
}

/// Rewrites `[cache] previous_location` of a cache config; best effort, as the security
/// directory already records the location.
fn update_cache_location(path: &Path, location: &str) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(mut cfg) = crate::repo::config::Config::parse(&text) else {
        return;
    };
    cfg.set("cache", "previous_location", location);
    let _ = crate::paths::write_atomic(path, cfg.to_text().as_bytes());
}

/// The cache directory of a repository.
pub fn repo_cache_dir(id: &[u8; 32]) -> PathBuf {
    crate::paths::cache_dir().join(hex::encode(id))
}

/// Displays a path like borg (lossy UTF-8).
pub fn show(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
