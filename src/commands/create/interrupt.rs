//! Signals during `create`, as borg's `sig_int` handling in `do_create`, `_rec_walk` and
//! `ChunksProcessor.maybe_checkpoint`:
//! * a stop signal (SIGTERM, SIGHUP, a second SIGINT) ends the run at the next entry or
//!   chunk; the caller rolls the transaction back (nothing since the last checkpoint is kept);
//! * the first SIGINT writes the checkpoint archive `NAME.checkpoint` with everything stored
//!   so far (a `.borg_part_N` item for the file being read), commits it, and ends the run
//!   with "Got Ctrl-C / SIGINT." (exit 2).
//!
//! One difference, on purpose: borg reads the interrupted file to its end (checkpointing
//! again) before it stops; hoard stops right after the checkpoint, so Ctrl-C on a large file
//! does not wait for the whole file. The data sent so far is kept either way.

use crate::archive::item::Item;
use crate::commands::CommandError;
use crate::platform::signals;

use super::error::BackupError;
use super::{Backup, CreateOptions, Reporter, Sink};

const STARTING: &str = "checkpoint requested: starting checkpoint creation...";
const FINISHED: &str = "checkpoint requested: finished checkpoint creation!";

/// The [`CommandError`] inside a [`BackupError`] that ends the run.
fn command_error(e: BackupError) -> CommandError {
    match e {
        BackupError::Fatal(c) => c,
        other => CommandError::new(other.to_string()),
    }
}

impl Backup<'_, '_> {
    /// Between two entries (and after the last): a stop signal ends the run; the first
    /// SIGINT writes a checkpoint of what is stored and ends the run. Sets `fatal`.
    pub(super) fn poll_signals(&mut self) {
        if self.fatal.is_some() || self.sink.is_none() {
            return;
        }
        if let Some(stop) = signals::stop() {
            self.fatal = Some(CommandError::stopped(stop));
            return;
        }
        if !signals::checkpoint_requested() {
            return;
        }
        self.reporter.info(STARTING);
        let written = self.write_interrupt_checkpoint();
        self.fatal = Some(match written {
            Ok(()) => {
                self.reporter.info(FINISHED);
                CommandError::interrupted()
            }
            Err(e) => command_error(e),
        });
    }

    /// The checkpoint: with a file half stored by the workers, a part item for it first.
    fn write_interrupt_checkpoint(&mut self) -> Result<(), BackupError> {
        let opts = self.opts;
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        match self.pipeline.as_ref().and_then(|p| p.front_partial()) {
            Some((item, from, part)) => {
                sink.write_part(item, from, part, opts)?;
            }
            None => sink.write_checkpoint(opts)?,
        }
        Ok(())
    }
}

/// In a file's chunk loop, after one of `item`'s chunks was stored: a stop signal ends the
/// run; a due checkpoint (interval or first SIGINT) writes a part item and the checkpoint
/// archive, and after a SIGINT's checkpoint the run ends. Returns the new (`from`, `part`).
pub(super) fn after_chunk(
    sink: &mut Sink<'_>,
    reporter: &mut dyn Reporter,
    item: &Item,
    (from, part): (usize, u32),
    opts: &CreateOptions,
) -> Result<(usize, u32), BackupError> {
    if let Some(stop) = signals::stop() {
        return Err(BackupError::Fatal(CommandError::stopped(stop)));
    }
    let interrupt = signals::checkpoint_requested();
    if !interrupt && !sink.checkpoint_due(opts) {
        return Ok((from, part));
    }
    if interrupt {
        reporter.info(STARTING);
    }
    let next = sink.write_part(item, from, part, opts)?;
    if interrupt {
        reporter.info(FINISHED);
        return Err(BackupError::Fatal(CommandError::interrupted()));
    }
    Ok(next)
}
