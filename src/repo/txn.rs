//! The transaction machinery of [`LocalRepository`] (borg `Repository` internals): transaction
//! ids, index loading with integrity verification and recovery, `prepare_txn`, replay (§2.6),
//! index/hints/integrity writing (§2.10), the free-space check (§2.11) and rollback.

use super::hints::Hints;
use super::index::{self, NsIndex};
use super::integrity::{self, IntegrityFile, Stored};
use super::local::{disp, LocalRepository};
use super::segment::{self, MAX_OBJECT_SIZE, TAG_COMMIT, TAG_DELETE, TAG_PUT};
use super::storage::FreeSpace;
use super::{ObjectId, RepoError, Result};
use crate::units::format_file_size;

impl LocalRepository {
    /// Highest N with a non-empty `index.N` (§2.6).
    pub fn get_index_transaction_id(&self) -> Result<Option<u32>> {
        let mut best = None;
        for (name, size) in self.storage.list_root()? {
            let Some(n) = name.strip_prefix("index.") else {
                continue;
            };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || size == 0 {
                continue;
            }
            let Ok(n) = n.parse::<u32>() else { continue };
            best = best.max(Some(n));
        }
        Ok(best)
    }

    /// §2.6: raise CheckNeeded or replay when index and segments disagree.
    pub fn check_transaction(&mut self) -> Result<()> {
        let index_tid = self.get_index_transaction_id()?;
        let segments_tid = self.io.get_segments_transaction_id()?;
        match (index_tid, segments_tid) {
            (Some(_), None) => Err(RepoError::CheckNeeded(format!(
                "{}\" - although likely this is \"beyond repair",
                disp(&self.path)
            ))),
            (i, Some(s)) if i != Some(s) => {
                let from = match i {
                    Some(i) if i > s => None,
                    other => other,
                };
                self.replay_segments(from, s)
            }
            _ => Ok(()),
        }
    }

    /// The committed transaction id, replaying first if needed.
    pub fn get_transaction_id(&mut self) -> Result<Option<u32>> {
        self.check_transaction()?;
        self.get_index_transaction_id()
    }

    pub(super) fn read_integrity(
        &self,
        tid: u32,
        key: &str,
    ) -> std::result::Result<Option<String>, String> {
        let data = match self.storage.read(&format!("integrity.{tid}")) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(RepoError::Io { source, .. }) => return Err(source.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        match integrity::decode_file(&data)? {
            IntegrityFile::UnknownVersion(v) => {
                tracing::warn!("Unknown integrity data version {v} in integrity.{tid}");
                Ok(None)
            }
            IntegrityFile::V2 { hints, index } => {
                let v = if key == "index" { index } else { hints };
                v.map(Some)
                    .ok_or_else(|| format!("no {key} entry in integrity.{tid}"))
            }
        }
    }

    /// Reads and verifies a file protected by `integrity.T`; the error text explains why not.
    pub(super) fn read_checked(&self, tid: u32, key: &str) -> std::result::Result<Vec<u8>, String> {
        let name = format!("{key}.{tid}");
        let p = self.storage.path_of(&name);
        let integ = self.read_integrity(tid, key)?;
        let data = match self.storage.read(&name) {
            Ok(Some(d)) => d,
            Ok(None) => {
                let e = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(format!("{}: {e}", disp(&p)));
            }
            Err(RepoError::Io { source, .. }) => return Err(format!("{}: {source}", disp(&p))),
            Err(e) => return Err(format!("{}: {e}", disp(&p))),
        };
        if let Some(json) = integ {
            let stored = match integrity::parse_json(&json) {
                Ok(s) => s,
                Err(_) => return Err(format!("File failed integrity check: {}", disp(&p))),
            };
            if let Stored::Digests(stored) = stored {
                let computed = if key == "index" {
                    integrity::index_digests(&name, &data)
                } else {
                    integrity::hints_digests(&name, &data)
                };
                if !integrity::digests_match(&computed, &stored) {
                    return Err(format!("File failed integrity check: {}", disp(&p)));
                }
            }
        }
        Ok(data)
    }

    pub(super) fn load_index_file(&self, tid: u32) -> std::result::Result<NsIndex, String> {
        let data = self.read_checked(tid, "index")?;
        NsIndex::read(&data).map_err(|e| e.0)
    }

    /// borg `open_index`: loads `index.T` (verified); when it is missing or corrupt, deletes it
    /// and (with `auto_recover`) rebuilds it by replay and a new commit.
    pub(super) fn open_index(&mut self, tid: Option<u32>, auto_recover: bool) -> Result<NsIndex> {
        let Some(tid) = tid else {
            return Ok(NsIndex::new());
        };
        match self.load_index_file(tid) {
            Ok(i) => Ok(i),
            Err(e) => {
                self.warn(format!(
                    "Repository index missing or corrupted, trying to recover from: {e}"
                ));
                self.remove_repo_file(&format!("index.{tid}"));
                if !auto_recover {
                    return Err(RepoError::FileIntegrity(e));
                }
                let t = self.get_transaction_id()?;
                self.prepare_txn(t, true)?;
                self.commit_inner(false, 0.1)?;
                let t = self.get_transaction_id()?;
                self.open_index(t, true)
            }
        }
    }

    pub(super) fn ensure_index(&mut self) -> Result<()> {
        if self.index.is_none() {
            let t = self.get_transaction_id()?;
            self.index = Some(self.open_index(t, true)?);
        }
        Ok(())
    }

    pub(super) fn index_mut(&mut self) -> &mut NsIndex {
        self.index.get_or_insert_with(NsIndex::new)
    }

    /// borg `prepare_txn`: start a write transaction based on `tid`.
    pub(super) fn prepare_txn(&mut self, tid: Option<u32>, do_cleanup: bool) -> Result<()> {
        self.active_txn = true;
        if self.do_lock {
            let has_ex = self.lock.as_ref().is_some_and(|l| l.got_exclusive_lock());
            if !has_ex {
                if !self.allow_upgrade {
                    self.active_txn = false;
                    return Err(RepoError::NeedsExclusiveLock);
                }
                if let Some(l) = self.lock.as_mut() {
                    if let Err(e) = l.upgrade() {
                        self.active_txn = false;
                        return Err(e.into());
                    }
                }
            }
        }
        if self.index.is_none() || tid.is_none() {
            match self.open_index(tid, false) {
                Ok(i) => self.index = Some(i),
                Err(e) => {
                    self.warn(format!(
                        "Checking repository transaction due to previous error: {e}"
                    ));
                    self.check_transaction()?;
                    let i = self.open_index(tid, false)?;
                    self.index = Some(i);
                }
            }
        }
        let Some(tid) = tid else {
            self.segments.clear();
            self.compact.clear();
            self.storage_quota_use = 0;
            self.shadow_index.clear();
            return Ok(());
        };
        if do_cleanup {
            let n = self.io.cleanup(Some(tid))?;
            if n > 0 {
                // borg logs this at debug: a crash or interruption leaves such segments behind.
                self.note(format!(
                    "Cleaned up {n} uncommitted segment files (== everything after segment {tid})."
                ));
            }
        }
        let hints = self
            .read_checked(tid, "hints")
            .and_then(|d| Hints::decode(&d));
        let hints = match hints {
            Ok(h) => h,
            Err(e) => {
                self.warn(format!(
                    "Repository hints file missing or corrupted, trying to recover: {e}"
                ));
                self.remove_repo_file(&format!("hints.{tid}"));
                self.remove_repo_file(&format!("index.{tid}"));
                self.index = None;
                self.check_transaction()?;
                return self.prepare_txn(Some(tid), do_cleanup);
            }
        };
        self.segments = hints.segments;
        self.storage_quota_use = hints.storage_quota_use;
        self.shadow_index = hints.shadow_index;
        if hints.from_v1 {
            self.compact.clear();
            self.storage_quota_use = 0;
            self.shadow_index.clear();
            for seg in hints.compact.keys().copied().collect::<Vec<_>>() {
                self.rebuild_sparse(seg)?;
            }
        } else {
            self.compact = hints.compact;
        }
        for segs in self.shadow_index.values_mut() {
            segs.retain(|s| *s <= tid);
        }
        Ok(())
    }

    pub(super) fn rebuild_sparse(&mut self, segment: u32) -> Result<()> {
        let size = match self.io.segment_size(segment) {
            Ok(s) => s,
            Err(_) => {
                self.segments.remove(&segment);
                return Ok(());
            }
        };
        if self.segments.get(&segment).copied().unwrap_or(0) == 0 {
            self.compact.insert(segment, size as i64);
            return Ok(());
        }
        let mut freeable = 0i64;
        for e in self.io.iter_objects(segment, 0, false, false)? {
            let e = e?;
            if e.tag == TAG_PUT {
                let key = e.key.unwrap_or_default();
                if self.index.as_ref().and_then(|i| i.get_loc(&key)) != Some((segment, e.offset)) {
                    freeable += e.size as i64;
                }
            } else if e.tag == TAG_DELETE {
                freeable += e.size as i64;
            }
        }
        self.compact.insert(segment, freeable);
        Ok(())
    }

    /// borg `replay_segments`: rebuild index/hints from segments after `index_tid` up to
    /// `segments_tid` and write them (upgrading a shared lock if necessary).
    pub(super) fn replay_segments(
        &mut self,
        index_tid: Option<u32>,
        segments_tid: u32,
    ) -> Result<()> {
        let remember = self.allow_upgrade;
        self.allow_upgrade = true;
        let r = (|| -> Result<()> {
            self.prepare_txn(index_tid, false)?;
            for (seg, _) in self.io.segment_list(false)? {
                if index_tid.is_some_and(|t| seg <= t) {
                    continue;
                }
                if seg > segments_tid {
                    break;
                }
                if !self.io.segment_exists(seg) {
                    continue;
                }
                let entries: Vec<segment::Entry> = self
                    .io
                    .iter_objects(seg, 0, true, false)?
                    .collect::<Result<_>>()?;
                self.update_index(seg, &entries, None)?;
            }
            self.write_index()
        })();
        self.allow_upgrade = remember;
        self.rollback_inner(false)?;
        r
    }

    /// borg `_update_index` (shared by replay and check).
    pub(super) fn update_index(
        &mut self,
        segment: u32,
        entries: &[segment::Entry],
        mut report: Option<&mut dyn FnMut(String)>,
    ) -> Result<()> {
        self.segments.insert(segment, 0);
        for e in entries {
            match e.tag {
                TAG_PUT => {
                    let key = e.key.unwrap_or_default();
                    if let Some((s, _)) = self.index_mut().get_loc(&key) {
                        *self.compact.entry(s).or_insert(0) += e.size as i64;
                        *self.segments.entry(s).or_insert(0) -= 1;
                    }
                    self.index_mut().set_loc(key, segment, e.offset);
                    *self.segments.entry(segment).or_insert(0) += 1;
                    self.storage_quota_use += e.size as u64;
                }
                TAG_DELETE => {
                    let key = e.key.unwrap_or_default();
                    if let Some((s, off)) = self.index_mut().pop_loc(&key) {
                        if self.io.segment_exists(s) {
                            *self.segments.entry(s).or_insert(0) -= 1;
                            let size = self.io.read_size(s, off, &key).unwrap_or(0);
                            *self.compact.entry(s).or_insert(0) += size as i64;
                        }
                    }
                }
                TAG_COMMIT => {}
                t => {
                    let msg = format!("Unexpected tag {t} in segment {segment}");
                    match report.as_mut() {
                        None => return Err(RepoError::CheckNeeded(msg)),
                        Some(r) => r(msg),
                    }
                }
            }
        }
        if self.segments.get(&segment) == Some(&0) {
            let size = self.io.segment_size(segment).unwrap_or(0);
            self.compact.insert(segment, size as i64);
        }
        Ok(())
    }

    /// Deletes a file in the repository root, ignoring errors (recovery paths).
    fn remove_repo_file(&self, name: &str) {
        let _ = self.storage.delete(name);
    }

    /// `hints.T`, `integrity.T` and `index.T` (names and bytes) of the open transaction.
    fn index_files(&self, tid: u32) -> [(String, Vec<u8>); 3] {
        let hints = Hints {
            segments: self.segments.clone(),
            compact: self.compact.clone(),
            storage_quota_use: self.storage_quota_use,
            shadow_index: self.shadow_index.clone(),
            from_v1: false,
        }
        .encode();
        let index_bytes = self
            .index
            .as_ref()
            .map(|i| i.write())
            .unwrap_or_else(|| NsIndex::new().write());
        let hname = format!("hints.{tid}");
        let iname = format!("index.{tid}");
        let gname = format!("integrity.{tid}");
        let hjson = integrity::to_json(&integrity::hints_digests(&hname, &hints));
        let ijson = integrity::to_json(&integrity::index_digests(&iname, &index_bytes));
        let integ = integrity::encode_file(&hjson, &ijson);
        [(hname, hints), (gname, integ), (iname, index_bytes)]
    }

    /// borg `write_index` (§2.10 steps 4–7).
    pub(super) fn write_index(&mut self) -> Result<()> {
        self.write_index_at(None)
    }

    /// [`Self::write_index`] for transaction `known` when the caller has just committed it
    /// (the commit segment is durable when `known` is returned, and nothing above it
    /// exists). Finding the newest committed segment again reads the last segment, and on
    /// object storage costs a LIST of every segment (paged, billed per request on AWS;
    /// rclone's `serve s3` reads every listed object to compute its ETag).
    pub(super) fn write_index_at(&mut self, known: Option<u32>) -> Result<()> {
        let tid = match known {
            Some(t) => t,
            None => self
                .io
                .get_segments_transaction_id()?
                .ok_or_else(|| RepoError::CheckNeeded(disp(&self.path)))?,
        };
        if self.append_only {
            let line = format!(
                "transaction {tid}, UTC time {}\n",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f")
            );
            self.storage.append("transactions", line.as_bytes())?;
        }
        let [(hname, hints), (gname, integ), (iname, index_bytes)] = self.index_files(tid);
        // §2.10: stage all three, then publish integrity, hints and last the index (the index
        // decides which transaction readers use), syncing the names in between.
        self.storage.stage(&hname, &hints)?;
        self.storage.stage(&iname, &index_bytes)?;
        self.storage.stage(&gname, &integ)?;
        self.storage.publish(&gname)?;
        self.storage.sync()?;
        self.storage.publish(&hname)?;
        self.storage.publish(&iname)?;
        self.storage.sync()?;
        let current = format!(".{tid}");
        for (name, _) in self.storage.list_root()? {
            if !(name.starts_with("index.")
                || name.starts_with("hints.")
                || name.starts_with("integrity."))
            {
                continue;
            }
            if name.ends_with(&current) {
                continue;
            }
            self.storage.delete(&name)?;
            crate::crashpoint::hit();
        }
        if let Some(l) = self.lock.as_mut() {
            l.refresh();
        }
        self.index = None;
        Ok(())
    }

    /// borg `check_free_space` (§2.11): rolls back (or destroys a just-created repository) and
    /// fails when the file system lacks the space a commit and a later compaction need.
    pub(super) fn check_free_space(&mut self) -> Result<()> {
        let free = match self.storage.free_space() {
            FreeSpace::NotApplicable => return Ok(()),
            FreeSpace::Unknown => None,
            FreeSpace::Bytes(b) => Some(b),
        };
        let n = self.index.as_ref().map(|i| i.len()).unwrap_or(0);
        let buckets = index::table_size_for(n).unwrap_or(0) as u64;
        let mut required = (index::HEADER_SIZE as u64 + buckets * 40) * 4;
        required += self.segments.len() as u64 * 10 + self.compact.len() as u64 * 10 + 4096;
        required += self.additional_free_space;
        if !self.append_only {
            let full = self.max_segment_size + MAX_OBJECT_SIZE as u64;
            if self.compact.len() < 10 {
                let mut ws = 0u64;
                for (seg, free) in &self.compact {
                    if let Ok(sz) = self.io.segment_size(*seg) {
                        ws = ws.saturating_add_signed(sz as i64 - *free);
                    }
                }
                required += ws.min(full);
            } else {
                required += full;
            }
        }
        let Some(free) = free else {
            self.warn("Failed to check free space before committing".into());
            return Ok(());
        };
        if free < required {
            if self.created {
                self.warn(
                    "Not enough free space to initialize repository at this location.".into(),
                );
                let _ = self.destroy_inner();
            } else {
                self.rollback_inner(true)?;
            }
            return Err(RepoError::InsufficientFreeSpace(
                format_file_size(required.into(), false),
                format_file_size(free.into(), false),
            ));
        }
        Ok(())
    }

    pub(super) fn commit_inner(&mut self, compact: bool, threshold: f64) -> Result<()> {
        if let Some((q, u)) = self.transaction_doomed.take() {
            self.rollback_inner(false)?;
            return Err(RepoError::StorageQuotaExceeded(q, u));
        }
        if !self.active_txn {
            let t = self.get_transaction_id()?;
            self.prepare_txn(t, true)?;
        }
        self.check_free_space()?;
        let seg = self.io.write_commit(false)?;
        self.segments.entry(seg).or_insert(0);
        *self.compact.entry(seg).or_insert(0) += segment::HEADER_SIZE as i64;
        // compaction writes (and commits) segments of its own: then the segments decide
        let mut known = Some(seg);
        if compact && !self.append_only {
            self.compact_segments(threshold)?;
            known = None;
        }
        self.write_index_at(known)?;
        self.rollback_inner(false)
    }

    pub(super) fn rollback_inner(&mut self, cleanup: bool) -> Result<()> {
        self.io.abandon_segment();
        if cleanup {
            let t = self.io.get_segments_transaction_id()?;
            self.io.cleanup(t)?;
        }
        self.index = None;
        self.active_txn = false;
        self.transaction_doomed = None;
        Ok(())
    }

    pub(super) fn destroy_inner(&mut self) -> Result<()> {
        self.close()?;
        self.storage.destroy()
    }

    pub(super) fn delete_inner(
        &mut self,
        id: &ObjectId,
        seg: u32,
        off: u32,
        update_shadow: bool,
    ) -> Result<()> {
        if update_shadow {
            self.shadow_index.entry(*id).or_default().push(seg);
        }
        *self.segments.entry(seg).or_insert(0) -= 1;
        let size = self.io.read_size(seg, off, id)?;
        *self.compact.entry(seg).or_insert(0) += size as i64;
        let (s2, size2) = self.io.write_delete(id)?;
        *self.compact.entry(s2).or_insert(0) += size2 as i64;
        self.segments.entry(s2).or_insert(0);
        Ok(())
    }

    pub(super) fn ensure_txn(&mut self) -> Result<()> {
        if !self.active_txn {
            let t = self.get_transaction_id()?;
            self.prepare_txn(t, true)?;
        }
        Ok(())
    }
}
