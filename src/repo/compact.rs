//! Compaction (FORMAT.md §2.12, borg `compact_segments`): live PUTs of sparse segments are copied to
//! the end of the log, DELETEs are kept while an older PUT of the key may survive (shadow index,
//! §2.15), intermediate COMMITs make the copies durable before old segments are deleted.

use super::local::LocalRepository;
use super::segment::{TAG_COMMIT, TAG_DELETE, TAG_PUT};
use super::{RepoError, Result};
use crate::progress::Percent;

fn refcount_error() -> RepoError {
    RepoError::Integrity("Corrupted segment reference count - corrupted index or hints".into())
}

impl LocalRepository {
    /// Writes a COMMIT (intermediate: into the current segment), then deletes the evacuated
    /// segments in `unused` (borg `complete_xfer`).
    fn complete_xfer(&mut self, unused: &mut Vec<u32>, intermediate: bool) -> Result<()> {
        let seg = self.io.write_commit(intermediate)?;
        self.segments.entry(seg).or_insert(0);
        *self.compact.entry(seg).or_insert(0) += super::segment::HEADER_SIZE as i64;
        for s in unused.drain(..) {
            let count = self.segments.remove(&s).unwrap_or(0);
            if count != 0 {
                return Err(refcount_error());
            }
            self.io.delete_segment(s)?;
            self.compact.remove(&s);
        }
        Ok(())
    }

    /// Compacts segments whose freeable ratio exceeds `threshold`; ends with a final COMMIT.
    /// Must run inside a transaction, after the transaction's own COMMIT (borg `commit`).
    pub(super) fn compact_segments(&mut self, threshold: f64) -> Result<()> {
        if self.compact.is_empty() {
            return Ok(());
        }
        let quota_before = self.storage_quota_use;
        let index_tid = self.get_index_transaction_id()?;
        let mut unused: Vec<u32> = Vec::new();
        let todo: Vec<(u32, i64)> = self.compact.iter().map(|(k, v)| (*k, *v)).collect();
        // borg's indicator: a step per listed segment, compacted or not
        let mut pi = Percent::new(todo.len() as u64, 1.0, "repository.compact_segments", |p| {
            format!("Compacting segments {p:3.0}%")
        });
        let progress = self.progress.clone();
        let mut sink = |ev: &crate::progress::ProgressEvent| progress.emit(ev);
        // the bytes of the segments compacted so far ride along for the rate
        let mut copied = 0u64;
        for (segment, freeable) in todo {
            pi.set_bytes(copied, 0);
            pi.show(None, &mut sink);
            if !self.io.segment_exists(segment) {
                self.warn(format!(
                    "segment {segment} not found, but listed in compaction data"
                ));
                self.compact.remove(&segment);
                continue;
            }
            let size = self.io.segment_size(segment)?;
            let ratio = freeable as f64 / size as f64;
            if ratio.is_nan() || ratio <= threshold {
                continue;
            }
            copied += size;
            self.segments.entry(segment).or_insert(0);
            let entries: Vec<_> = self
                .io
                .iter_objects(segment, 0, true, true)?
                .collect::<Result<_>>()?;
            for e in entries {
                if e.tag == TAG_COMMIT {
                    continue;
                }
                let key = e.key.unwrap_or_default();
                let in_index = self.index.as_ref().and_then(|i| i.get_loc(&key));
                let is_index_object = in_index == Some((segment, e.offset));
                let data = e.data.unwrap_or_default();
                if e.tag == TAG_PUT && is_index_object {
                    if self.io.would_start_new_segment(&key) {
                        self.complete_xfer(&mut unused, true)?;
                    }
                    let (ns, off) = self.io.write_put(&key, &data)?;
                    if let Some(i) = self.index.as_mut() {
                        i.set_loc(key, ns, off);
                    }
                    *self.segments.entry(ns).or_insert(0) += 1;
                    *self.segments.entry(segment).or_insert(0) -= 1;
                } else if e.tag == TAG_PUT {
                    if let Some(list) = self.shadow_index.get_mut(&key) {
                        if let Some(pos) = list.iter().position(|s| *s == segment) {
                            list.remove(pos);
                        }
                    }
                    self.storage_quota_use = self
                        .storage_quota_use
                        .saturating_sub(data.len() as u64 + super::segment::PUT_HEADER_SIZE as u64);
                } else if e.tag == TAG_DELETE && in_index.is_none() {
                    let shadowed_put_exists = match self.shadow_index.get(&key) {
                        None => true,
                        Some(list) => list.iter().any(|s| *s < segment),
                    };
                    let delete_is_not_stable = index_tid.is_none_or(|t| segment > t);
                    if shadowed_put_exists || delete_is_not_stable {
                        if self.io.would_start_new_segment(&key) {
                            self.complete_xfer(&mut unused, true)?;
                        }
                        let (ns, sz) = self.io.write_delete(&key)?;
                        *self.compact.entry(ns).or_insert(0) += sz as i64;
                        self.segments.entry(ns).or_insert(0);
                    } else if self.shadow_index.get(&key).is_some_and(|l| l.is_empty()) {
                        self.shadow_index.remove(&key);
                    }
                }
            }
            if self.segments.get(&segment).copied().unwrap_or(0) != 0 {
                return Err(refcount_error());
            }
            unused.push(segment);
        }
        pi.finish(&mut sink);
        self.complete_xfer(&mut unused, false)?;
        let freed = quota_before.saturating_sub(self.storage_quota_use);
        tracing::info!(
            "compaction freed about {} repository space.",
            crate::units::format_file_size(freed.into(), false)
        );
        Ok(())
    }
}
