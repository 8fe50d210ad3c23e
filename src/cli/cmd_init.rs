//! `init`: arguments and messages around [`commands::init`].

use clap::Args;

use crate::commands::{self, CommandError};

use super::options::CommonOptions;
use super::{log, repo_location, EXIT_SUCCESS};

/// `init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// repository to create
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// select encryption key mode **(required)**
    #[arg(short = 'e', long, value_name = "MODE", required = true)]
    pub encryption: String,
    /// create an append-only mode repository
    #[arg(long = "append-only")]
    pub append_only: bool,
    /// Set storage quota of the new repository (e.g. 5G, 1.5T)
    #[arg(long = "storage-quota", value_name = "QUOTA")]
    pub storage_quota: Option<String>,
    /// create the parent directories of the repository directory, if they are missing
    #[arg(long = "make-parent-dirs")]
    pub make_parent_dirs: bool,
    /// Import related secrets (id key, chunker seed) from PATH (created by `key export-related-secrets`)
    #[arg(long = "import-related-secrets", value_name = "PATH")]
    pub import_related_secrets: Option<String>,
}

/// Runs `init`; returns the exit code.
pub fn run(a: InitArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    let opts = commands::init::InitOptions {
        encryption: a.encryption,
        append_only: a.append_only,
        storage_quota: a.storage_quota.as_deref().map(parse_quota).transpose()?,
        make_parent_dirs: a.make_parent_dirs,
        // read before anything is created
        related_secrets: a
            .import_related_secrets
            .as_deref()
            .map(commands::related_secrets::read)
            .transpose()?,
    };
    log::info(&format!(
        "Initializing repository at \"{}\"",
        loc.canonical()
    ));
    let outcome = commands::init::run(&loc, &opts)?;
    if let commands::common::KeyLocation::File(p) = &outcome.key_location {
        log::info(&format!("Key in \"{}\" created.", p.display()));
        log::info("Keep this key safe. Your data will be inaccessible without it.");
    }
    if outcome.key_type == crate::crypto::KeyType::Plaintext {
        log::info("Encryption NOT enabled.\nUse the \"--encryption=repokey|keyfile\" to enable encryption.");
    } else {
        log::warning(&format!(
                "\nBy default repositories initialized with this version will produce security\nerrors if written to with an older version (up to and including Borg 1.0.8).\n\nIf you want to use these older versions, you can disable the check by running:\nborg upgrade --disable-tam {}\n\nSee https://borgbackup.readthedocs.io/en/stable/changes.html#pre-1-0-9-manifest-spoofing-vulnerability for details about the security implications.",
                shell_words::quote(&outcome.location)
            ));
        log::warning("\nIMPORTANT: you will need both KEY AND PASSPHRASE to access this repo!\nIf you used a repokey mode, the key is stored in the repo, but you should back it up separately.\nUse \"borg key export\" to export the key, optionally in printable format.\nWrite down the passphrase. Store both at safe place(s).\n");
    }
    Ok(EXIT_SUCCESS)
}

/// Parses the file-size syntax (`10M`, `1.5T`; powers of 1000) for `--storage-quota`.
fn parse_quota(text: &str) -> Result<u64, CommandError> {
    let parsed = crate::repo::config::parse_file_size(text)
        .map_err(|e| CommandError::new(format!("argument --storage-quota: {e}")))?;
    if parsed < 10_000_000 {
        return Err(CommandError::new(format!(
            "argument --storage-quota: quota is too small ({text}). At least 10M are required."
        )));
    }
    Ok(parsed)
}
