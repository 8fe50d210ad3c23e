//! Low-level views of a local repository for `hoard debug` (borg's `scan_low_level` and the
//! hints of the current transaction). Read only: nothing here writes to the repository.

use super::hints::Hints;
use super::local::LocalRepository;
use super::segment::{TAG_COMMIT, TAG_DELETE, TAG_PUT};
use super::{ObjectId, RepoError, Result};

/// What a segment entry is, as `scan_low_level` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A PUT (object data follows).
    Put,
    /// A DELETE of a key.
    Delete,
    /// A COMMIT tag.
    Commit,
}

/// One entry found by [`LocalRepository::scan_low_level`].
#[derive(Debug, Clone)]
pub struct LowLevelEntry {
    /// PUT, DELETE or COMMIT.
    pub kind: EntryKind,
    /// The key of a PUT or DELETE.
    pub id: Option<ObjectId>,
    /// The stored object bytes of a PUT.
    pub data: Option<Vec<u8>>,
    /// The segment number.
    pub segment: u32,
    /// The entry's offset in the segment file (FORMAT.md §2.4).
    pub offset: u32,
}

impl LocalRepository {
    /// borg's `scan_low_level`: every entry of every segment file in on-disk order, committed
    /// or not, superseded or not. `segment` limits the scan to that segment and `offset` to
    /// entries up to that offset (starting there). A segment that cannot be read to its end is
    /// reported through `on_error` (borg logs "Segment N (file) has IntegrityError(s) …") and
    /// skipped. `visit` returns false to stop early.
    pub fn scan_low_level(
        &self,
        segment: Option<u32>,
        offset: Option<u32>,
        visit: &mut dyn FnMut(LowLevelEntry) -> Result<bool>,
        on_error: &mut dyn FnMut(String),
    ) -> Result<()> {
        for (seg, path) in self.io.segment_list(false)? {
            if segment.is_some_and(|s| seg < s) {
                continue;
            }
            if segment.is_some_and(|s| seg > s) {
                break;
            }
            let iter = match self
                .io
                .iter_objects(seg, u64::from(offset.unwrap_or(0)), true, true)
            {
                Ok(it) => it,
                Err(e) => {
                    on_error(format!(
                        "Segment {seg} ({}) has IntegrityError(s) [{e}] - skipping.",
                        path.display()
                    ));
                    continue;
                }
            };
            for entry in iter {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        on_error(format!(
                            "Segment {seg} ({}) has IntegrityError(s) [{e}] - skipping.",
                            path.display()
                        ));
                        break;
                    }
                };
                if offset.is_some_and(|o| entry.offset > o) {
                    break;
                }
                let kind = match entry.tag {
                    TAG_PUT => EntryKind::Put,
                    TAG_DELETE => EntryKind::Delete,
                    TAG_COMMIT => EntryKind::Commit,
                    other => {
                        return Err(RepoError::Integrity(format!(
                            "unknown tag {other} [segment {seg}, offset {}]",
                            entry.offset
                        )))
                    }
                };
                let keep_going = visit(LowLevelEntry {
                    kind,
                    id: entry.key,
                    data: entry.data,
                    segment: seg,
                    offset: entry.offset,
                })?;
                if !keep_going {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The hints of the last commit as the next transaction would start from them (borg's
    /// `prepare_txn` followed by `rollback`, as `debug dump-hints` does). Needs the exclusive
    /// lock; the repository is left as it was.
    pub fn current_hints(&mut self) -> Result<Hints> {
        let started_here = !self.active_txn;
        if started_here {
            let tid = self.get_transaction_id()?;
            self.prepare_txn(tid, false)?;
        }
        let hints = Hints {
            segments: self.segments.clone(),
            compact: self.compact.clone(),
            storage_quota_use: self.storage_quota_use,
            shadow_index: self.shadow_index.clone(),
            from_v1: false,
        };
        self.rollback_inner(false)?;
        Ok(hints)
    }
}
