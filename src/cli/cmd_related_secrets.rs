//! `hoard key export-related-secrets` and the `init --import-related-secrets` file
//! ([`commands::related_secrets`](crate::commands::related_secrets)).

use std::io::Write;

use clap::Args;

use super::options::CommonOptions;
use super::{confirm, repo_location, EXIT_SUCCESS};
use crate::commands::related_secrets;
use crate::commands::CommandError;

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

/// Writes the repository's related secrets as JSON to the file (or stdout for `-`).
pub fn run(a: ExportRelatedSecretsArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    let path = a.path.as_deref().unwrap_or("-");
    let secrets = related_secrets::export(&loc, common.lock_wait, !common.bypass_lock, &confirm)?;
    let text = related_secrets::to_json(&secrets);
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

/// Reads `--import-related-secrets PATH` for `init` (before anything is created).
pub fn import(path: Option<&str>) -> Result<Option<related_secrets::RelatedSecrets>, CommandError> {
    path.map(related_secrets::read).transpose()
}
