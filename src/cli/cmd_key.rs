//! `key export | import | change-passphrase | export-related-secrets`.

use std::io::{BufRead, Write};

use clap::{Args, Subcommand};

use crate::commands::{self, CommandError};

use super::options::CommonOptions;
use super::options::RepoArg;
use super::{confirm, log, repo_location, EXIT_SUCCESS};

/// `key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Export the repository key for backup
    #[command(after_long_help = super::help_text::KEY_EXPORT)]
    Export(KeyExportArgs),
    /// Import the repository key from backup
    #[command(after_long_help = super::help_text::KEY_IMPORT)]
    Import(KeyImportArgs),
    /// Change repository key file passphrase
    #[command(after_long_help = super::help_text::KEY_CHANGE_PASSPHRASE)]
    ChangePassphrase(RepoArg),
    /// Export secrets for creating related repositories
    ExportRelatedSecrets(ExportRelatedSecretsArgs),
}

/// `key export`
#[derive(Debug, Args)]
pub struct KeyExportArgs {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// where to store the backup
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// Create an export suitable for printing and later type-in
    #[arg(long)]
    pub paper: bool,
    /// Create an html file suitable for printing and later type-in or qr scan
    #[arg(long = "qr-html")]
    pub qr_html: bool,
}

/// `key import`
#[derive(Debug, Args)]
pub struct KeyImportArgs {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// path to the backup ('-' to read from stdin)
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// interactively import from a backup done with --paper
    #[arg(long)]
    pub paper: bool,
}

/// Runs a `key` subcommand; returns the exit code.
pub fn run(cmd: KeyCommand, common: &CommonOptions) -> Result<i32, CommandError> {
    match cmd {
        KeyCommand::Export(a) => export(a, common),
        KeyCommand::Import(a) => import(a, common),
        KeyCommand::ExportRelatedSecrets(a) => export_related_secrets(a, common),
        KeyCommand::ChangePassphrase(a) => change_passphrase(a, common),
    }
}

/// `key export`.
pub fn export(a: KeyExportArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let lock_wait = common.lock_wait;
    let loc = repo_location(a.location.as_deref(), common)?;
    let format = if a.paper {
        commands::key::ExportFormat::Paper
    } else if a.qr_html {
        commands::key::ExportFormat::QrHtml
    } else {
        commands::key::ExportFormat::KeyFile
    };
    let data = commands::key::export(&loc, format, lock_wait)?;
    match a.path.as_deref() {
        None | Some("-") => {
            let _ = std::io::stdout().write_all(&data);
        }
        Some(p) => {
            if std::path::Path::new(p).is_dir() {
                return Err(CommandError::new(format!(
                    "'{p}' must be a file, not a directory"
                )));
            }
            std::fs::write(p, &data).map_err(|e| CommandError::new(format!("{p}: {e}")))?;
        }
    }
    Ok(EXIT_SUCCESS)
}

/// `key import`.
pub fn import(a: KeyImportArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let lock_wait = common.lock_wait;
    let loc = repo_location(a.location.as_deref(), common)?;
    if a.paper {
        if a.path.is_some() {
            return Err(CommandError::new(
                "with --paper import from file is not supported",
            ));
        }
        let stdin = std::io::stdin();
        let mut read_line = |prompt: &str| {
            print!("{prompt}");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
            }
        };
        let mut say = |m: &str| println!("{m}");
        if commands::key::import_paper(&loc, lock_wait, &mut read_line, &mut say)?.is_none() {
            println!("\n - aborted");
        }
        return Ok(EXIT_SUCCESS);
    }
    let Some(path) = a.path else {
        return Err(CommandError::new("input file to import key from expected"));
    };
    commands::key::import(&loc, &path, lock_wait)?;
    Ok(EXIT_SUCCESS)
}

/// `key change-passphrase` and the deprecated `change-passphrase`.
pub fn change_passphrase(a: RepoArg, common: &CommonOptions) -> Result<i32, CommandError> {
    let lock_wait = common.lock_wait;
    let loc = repo_location(a.location.as_deref(), common)?;
    let where_ = commands::key::change_passphrase(&loc, lock_wait, &confirm)?;
    log::info("Key updated");
    if let commands::common::KeyLocation::File(p) = where_ {
        log::info(&format!("Key location: {}", p.display()));
    }
    Ok(EXIT_SUCCESS)
}

/// `key export-related-secrets`
#[derive(Debug, Args)]
pub struct ExportRelatedSecretsArgs {
    /// repository
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// where to store the secrets ('-' or none: stdout)
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
}

/// `key export-related-secrets`: writes the repository's related secrets as JSON to the file (or stdout for `-`).
pub fn export_related_secrets(
    a: ExportRelatedSecretsArgs,
    common: &CommonOptions,
) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    let path = a.path.as_deref().unwrap_or("-");
    let secrets =
        commands::related_secrets::export(&loc, common.lock_wait, !common.bypass_lock, &confirm)?;
    let text = commands::related_secrets::to_json(&secrets);
    let err = |e: std::io::Error| {
        CommandError::new(format!("{}: {}", path, crate::platform::strerror(&e)))
    };
    if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).map_err(err)?;
        out.flush().map_err(err)?;
    } else {
        std::fs::write(path, text).map_err(err)?;
    }
    Ok(EXIT_SUCCESS)
}
