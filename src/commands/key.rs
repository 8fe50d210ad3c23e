//! `key export`, `key import` and `key change-passphrase` (borg's `KeyManager`).

use std::io::Read;
use std::path::PathBuf;

use crate::crypto::{self, KeyType, Passphrase};
use crate::location::Location;
use crate::repo::Repository;

use super::common::{self, Access, CommandError, KeyLocation, Result};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The key-file format (`BORG_KEY <id>` + base64 lines).
    KeyFile,
    /// `--paper`: hex lines with checksums, for typing in.
    Paper,
    /// `--qr-html`: an HTML page with the key file text and a QR code.
    QrHtml,
}

/// The manifest's TYPE byte; key management needs nothing else from it.
fn manifest_key_type(repo: &mut dyn Repository) -> Result<KeyType> {
    let object = match repo.get(&crate::archive::MANIFEST_ID) {
        Ok(o) => o,
        Err(crate::repo::RepoError::ObjectNotFound(..)) => {
            return Err(CommandError::with_id(
                "Repository has no manifest.",
                "NoManifestError",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let byte = *object
        .first()
        .ok_or_else(|| CommandError::new("Manifest object is empty."))?;
    let kt = KeyType::from_type_byte(byte)?;
    if !kt.uses_keyfile() && !kt.stores_key_in_repo() {
        return Err(CommandError::with_id(
            "Keymanagement not available for unencrypted repositories.",
            "UnencryptedRepo",
        ));
    }
    Ok(kt)
}

/// A new passphrase (`init`, `key change-passphrase`): `BORG_NEW_PASSPHRASE` of `env`, else
/// the passphrase variables, else a prompt with confirmation.
pub fn new_passphrase(env: &crate::options::Env) -> Result<Passphrase> {
    Ok(Passphrase::new_with(
        &crypto::PassphraseEnv::from_env(env),
        &mut crypto::TtyPrompter,
        true,
    )?)
}

fn no_lock(lock_wait: f64) -> Access {
    Access {
        exclusive: false,
        lock_wait,
        lock: false,
    }
}

/// The key-file text of a repository's key (borg's `get_keyfile_data`).
fn keyfile_text(repo: &mut dyn Repository, loc: &Location) -> Result<(String, String)> {
    let kt = manifest_key_type(repo)?;
    let (blob, _) = common::read_key_blob(repo, kt, &loc.canonical(), &loc.options.env)?;
    let mut blob = blob;
    if !blob.ends_with('\n') {
        blob.push('\n');
    }
    Ok((
        format!("BORG_KEY {}\n{}", hex::encode(repo.id()), blob),
        blob,
    ))
}

/// Renders the export of the repository's key in `format`.
pub fn export(loc: &Location, format: ExportFormat, lock_wait: f64) -> Result<Vec<u8>> {
    let mut repo = common::open_repository(loc, &no_lock(lock_wait))?;
    let (text, blob) = keyfile_text(repo.as_mut(), loc)?;
    Ok(match format {
        ExportFormat::KeyFile => text.into_bytes(),
        ExportFormat::Paper => {
            let binary = crypto::decode_blob_text(&blob)?;
            crypto::export_paper(&repo.id(), &binary).into_bytes()
        }
        ExportFormat::QrHtml => qr_html(&text)?.into_bytes(),
    })
}

/// Where an imported key-file key goes: the existing key file, else a new one.
fn keyfile_target(loc: &Location, id: &[u8; 32]) -> Result<PathBuf> {
    match crypto::find_key_file_with(id, &loc.options.env) {
        Ok(p) => Ok(p),
        Err(_) => Ok(crypto::new_key_file_path_with(
            &loc.path,
            loc.host.as_deref(),
            &loc.options.env,
        )?),
    }
}

/// Stores a key blob (base64 text) where this repository keeps its key.
fn store_blob(
    loc: &Location,
    repo: &mut dyn Repository,
    kt: KeyType,
    blob: &str,
) -> Result<KeyLocation> {
    let id = repo.id();
    if kt.uses_keyfile() {
        let target = keyfile_target(loc, &id)?;
        if let Some(parent) = target.parent() {
            crate::paths::ensure_dir(parent)?;
        }
        let mut text = format!("BORG_KEY {}\n{}", hex::encode(id), blob);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        crate::paths::write_atomic(&target, text.as_bytes())?;
        Ok(KeyLocation::File(target))
    } else {
        repo.save_key(blob.as_bytes())?;
        Ok(KeyLocation::Repository)
    }
}

/// `key import PATH` (`-` for stdin): checks the header names this repository, then stores.
pub fn import(loc: &Location, path: &str, lock_wait: f64) -> Result<KeyLocation> {
    // borg opens the repository first (so an attic repository is named before the file)
    let mut repo = common::open_repository(loc, &no_lock(lock_wait))?;
    let contents = if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        if !std::path::Path::new(path).exists() {
            return Err(CommandError::new(format!(
                "input file does not exist: {path}"
            )));
        }
        std::fs::read_to_string(path).map_err(|e| CommandError::new(format!("{path}: {e}")))?
    };
    let kt = manifest_key_type(repo.as_mut())?;
    let first_line = format!("BORG_KEY {}\n", hex::encode(repo.id()));
    if !contents.starts_with(&first_line) {
        return Err(if contents.starts_with("BORG_KEY") {
            CommandError::with_id(
                "This key backup seems to be for a different backup repository, aborting.",
                "RepoIdMismatch",
            )
        } else {
            CommandError::with_id(
                "This file is not a borg key backup, aborting.",
                "NotABorgKeyFile",
            )
        });
    }
    let blob = &contents[first_line.len()..];
    store_blob(loc, repo.as_mut(), kt, blob)
}

/// `key import --paper`: reads the typed lines through `read_line(prompt)` (None = EOF).
pub fn import_paper(
    loc: &Location,
    lock_wait: f64,
    read_line: &mut dyn FnMut(&str) -> Option<String>,
    say: &mut dyn FnMut(&str),
) -> Result<Option<KeyLocation>> {
    let mut repo = common::open_repository(loc, &no_lock(lock_wait))?;
    let kt = manifest_key_type(repo.as_mut())?;
    let id = repo.id();
    let mut importer = crypto::PaperImport::new(&id);
    loop {
        let Some(line) = read_line(&importer.prompt()) else {
            return Ok(None);
        };
        match importer.feed(&line)? {
            crypto::PaperStep::Next => {}
            crypto::PaperStep::Retry(message) => say(&message),
            crypto::PaperStep::AskAbort => {
                let answer = read_line("Abort import? [yN]:").unwrap_or_else(|| "y".into());
                if ["y", "Y", "yes", "Yes", "YES", "1"].contains(&answer.trim()) {
                    return Ok(None);
                }
            }
            crypto::PaperStep::Done(blob) => {
                return Ok(Some(store_blob(loc, repo.as_mut(), kt, &blob)?));
            }
        }
    }
}

/// A printable HTML page with the key-file text and the same text as a QR code (SVG).
fn qr_html(key_file_text: &str) -> Result<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(key_file_text.as_bytes(), qrcode::EcLevel::L)
            .map_err(|e| CommandError::new(format!("cannot make a QR code of the key: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(400, 400)
        .build();
    let escaped = key_file_text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Ok(format!(
        "<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>hoard/borg key backup</title>\n<style>body {{ font-family: sans-serif; }} pre {{ font-size: 11pt; }}</style>\n</head>\n<body>\n<h1>Key backup</h1>\n<p>Restore with <code>borg key import REPOSITORY FILE</code> (or <code>hoard key import</code>) after saving the text below to FILE, or scan the code.</p>\n<pre>\n{escaped}</pre>\n<div>{svg}</div>\n<textarea readonly rows=\"12\" cols=\"72\">{escaped}</textarea>\n</body>\n</html>\n"
    ))
}

/// `key change-passphrase`: re-encrypts the key blob under a new passphrase. Returns where
/// the key lives now.
/// Like borg, it loads the manifest first and refuses when it demands unknown `check` features.
pub fn change_passphrase(
    loc: &Location,
    lock_wait: f64,
    confirm: crate::security::Confirm<'_>,
) -> Result<KeyLocation> {
    let access = Access {
        exclusive: false,
        lock_wait,
        lock: true,
    };
    let opened =
        common::open_with_manifest(loc, &access, &[crate::archive::Operation::Check], confirm)?;
    let key_location = opened.key_location;
    let key = opened.store.key;
    let mut repo = opened.store.repo;
    let Some(material) = key.material() else {
        return Err(CommandError::new(
            "This repository is not encrypted, cannot change the passphrase.",
        ));
    };
    let passphrase = new_passphrase(&loc.options.env)?;
    let blob = crypto::encrypt_key_blob(material, passphrase.as_str());
    match &key_location {
        KeyLocation::File(path) => {
            crate::paths::write_atomic(
                path,
                crypto::format_key_file(&repo.id(), &blob).as_bytes(),
            )?;
        }
        KeyLocation::Repository => repo.save_key(blob.as_bytes())?,
        KeyLocation::None => {}
    }
    Ok(key_location)
}
