//! `hoard config`: arguments and output of [`commands::config`](crate::commands::config).

use clap::Args;

use super::options::CommonOptions;
use super::{confirm, print_stdout, repo_location, EXIT_SUCCESS};
use crate::commands::config::{ConfigAction, ConfigOutcome, ConfigRequest};
use crate::commands::{self, CommandError};

/// `config`
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// repository to configure
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// name of config key
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// new value for key
    #[arg(value_name = "VALUE")]
    pub value: Option<String>,
    /// get and set values from the repo cache
    #[arg(short = 'c', long)]
    pub cache: bool,
    /// delete the key from the config file
    #[arg(short = 'd', long, conflicts_with = "list")]
    pub delete: bool,
    /// list the configuration of the repo
    #[arg(short = 'l', long)]
    pub list: bool,
}

/// Runs `config`: values go to stdout; a missing key is borg 1.4's `Error` (exit code 2).
pub fn run(a: ConfigArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    if loc.proto != crate::location::Proto::File {
        // As borg's argparse type check: the text as typed, "" when BORG_REPO supplied it.
        return Err(commands::config::must_be_local(
            a.location.as_deref().unwrap_or(""),
        ));
    }
    let action = if a.delete {
        ConfigAction::Delete
    } else if a.list {
        ConfigAction::List
    } else {
        match a.value {
            // borg tests the value for truth: an empty VALUE means "get".
            Some(v) if !v.is_empty() => ConfigAction::Set(v),
            _ => ConfigAction::Get,
        }
    };
    let req = ConfigRequest {
        name: a.name,
        action,
        cache: a.cache,
        lock_wait: common.lock_wait,
        lock: !common.bypass_lock,
    };
    match commands::config::run(&loc, &req, &confirm)? {
        ConfigOutcome::Print(text) => {
            print_stdout(&text);
            Ok(EXIT_SUCCESS)
        }
        // borg 1.4 raises `Error` here (1.2 printed the bare line and exited 1)
        ConfigOutcome::Missing(msg) => Err(CommandError::with_id(format!("Error: {msg}"), "Error")),
        ConfigOutcome::Done => Ok(EXIT_SUCCESS),
    }
}
