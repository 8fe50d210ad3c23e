//! `hoard completion SHELL` and `hoard man`: shell completion scripts (clap_complete) and
//! manual pages (clap_mangen), both generated from the same clap definitions as `--help`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::commands::CommandError;

/// `completion`
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// the shell to write a completion script for
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`
#[derive(Debug, Args)]
pub struct ManArgs {
    /// write one page per command (hoard.1, hoard-create.1, hoard-key-export.1, …) into DIR
    /// instead of printing a single page to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// the command whose page is printed (default: the overview page, hoard.1)
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Vec<String>,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn completion(args: &CompletionArgs) -> Result<i32, CommandError> {
    let mut cmd = super::command_tree();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "hoard", &mut out);
    write_stdout(&out)?;
    Ok(super::EXIT_SUCCESS)
}

/// Prints one manual page, or writes all of them into `--dir`.
pub fn man(args: &ManArgs) -> Result<i32, CommandError> {
    let cmd = super::command_tree().disable_help_subcommand(true);
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CommandError::new(format!("{}: {e}", dir.display())))?;
        clap_mangen::generate_to(cmd, dir)
            .map_err(|e| CommandError::new(format!("{}: {e}", dir.display())))?;
        return Ok(super::EXIT_SUCCESS);
    }
    let mut page = cmd;
    page.build();
    for name in &args.command {
        let Some(sub) = page.find_subcommand(name).cloned() else {
            return Err(CommandError::new(format!("man: no such command: {name}")));
        };
        page = sub;
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| CommandError::new(format!("man: {e}")))?;
    write_stdout(&out)?;
    Ok(super::EXIT_SUCCESS)
}

fn write_stdout(data: &[u8]) -> Result<(), CommandError> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match lock.write_all(data).and_then(|()| lock.flush()) {
        Ok(()) => Ok(()),
        // a closed pipe (`hoard man | head`) is not an error
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CommandError::new(format!("stdout: {e}"))),
    }
}
