//! `hoard rename REPO::ARCHIVE NEWNAME`.

use clap::Args;

use crate::commands::rename;
use crate::commands::CommandError;

use super::options::CommonOptions;

/// `rename`
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// archive to rename
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
    /// the new archive name to use
    #[arg(value_name = "NEWNAME")]
    pub name: String,
}

/// Runs `rename`.
pub fn run(
    a: RenameArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let new_name = rename::validate_new_name(&a.name)?;
    let loc = crate::location::Location::parse_with(Some(&a.location), &common.repo)?;
    let Some(old) = &loc.archive else {
        return Err(CommandError::new("No archive specified"));
    };
    rename::rename(
        &loc,
        old.as_bytes(),
        new_name.as_bytes(),
        common.lock_wait,
        confirm,
    )?;
    Ok(super::EXIT_SUCCESS)
}
