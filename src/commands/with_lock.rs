//! `with-lock`: run a command while holding the repository's exclusive lock (borg's
//! `do_with_lock`). Like borg, the manifest object is written back unchanged first (this opens
//! a transaction, the way old servers upgrade to an exclusive lock), and that no-op transaction
//! is committed after the command ends, so the new segment file is never reused for other
//! content.

use crate::location::Location;

use super::common::{open_repository, Access, CommandError, Result};

/// Runs `command args…` with the exclusive lock of `loc` held; returns its exit code (a command
/// killed by signal N yields -N, which borg passes to `sys.exit`).
pub fn run(loc: &Location, command: &str, args: &[String], lock_wait: f64) -> Result<i32> {
    let access = Access {
        exclusive: true,
        lock_wait,
        lock: true,
    };
    let mut repo = open_repository(loc, &access)?;
    let data = repo.get(&crate::archive::MANIFEST_ID)?;
    repo.put(&crate::archive::MANIFEST_ID, &data)?;
    let status = std::process::Command::new(command).args(args).status();
    let commit = repo.commit(false, 0.1);
    let status = status.map_err(|e| CommandError::new(format!("{command}: {e}")))?;
    commit?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => -sig,
        (None, None) => 2,
    })
}
