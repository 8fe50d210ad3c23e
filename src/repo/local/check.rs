//! Repository-level check and repair (borg `Repository.check`, FORMAT.md §2.16): every segment up to
//! the transaction is parsed and CRC-checked, the index is rebuilt from the log and compared with
//! the committed one; with `repair`, damaged segments are salvaged (borg `recover_segment`) and a
//! fresh index/hints/integrity is committed. Findings are returned as data, never printed.

use super::LocalRepository;
use crate::progress::{Percent, ProgressSink};
use crate::repo::segment::Entry;
use crate::repo::{RepoError, Result};
use std::time::{Duration, Instant};

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Log lines in order (errors and warnings), with borg's wording.
    pub messages: Vec<String>,
    /// Number of errors reported.
    pub errors: usize,
    /// borg's return value: `true` when no error was found, or when repairing.
    pub ok: bool,
    /// True for a partial (`max_duration`) check.
    pub partial: bool,
}

/// Runs the check on an open repository (needs the exclusive lock); the segment pass reports
/// borg's `repository.check` percentage to `progress`.
pub fn check(
    repo: &mut LocalRepository,
    repair: bool,
    max_duration: u64,
    progress: &mut ProgressSink<'_>,
) -> Result<CheckReport> {
    use crate::repo::Repository;
    if repo.append_only() && repair {
        return Err(RepoError::AppendOnly(repo.path().display().to_string()));
    }
    let mut report = CheckReport::default();
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let (mut tid, current_index) = match (|| {
        let t = repo.get_transaction_id()?;
        let i = repo.open_index(t, true)?;
        Ok::<_, RepoError>((t, i))
    })() {
        Ok((t, i)) => (t, Some(i)),
        Err(_) => (repo.io.get_segments_transaction_id()?, None),
    };
    if tid.is_none() {
        tid = repo.get_index_transaction_id()?;
    }
    if tid.is_none() {
        tid = repo.io.get_latest_segment()?;
    }
    let Some(tid) = tid else {
        report
            .messages
            .push("This repository contains no valid data.".into());
        report.errors = 1;
        report.ok = false;
        return Ok(report);
    };
    if repair {
        repo.io.cleanup(Some(tid))?;
    }
    let segments_tid = repo.io.get_segments_transaction_id()?;
    repo.prepare_txn(None, true)?;
    let partial = max_duration > 0;
    report.partial = partial;
    let last_checked: i64 = if partial {
        repo.config
            .get_int(crate::repo::config::SECTION, "last_segment_checked")
            .ok()
            .flatten()
            .unwrap_or(-1)
    } else {
        repo.config
            .remove(crate::repo::config::SECTION, "last_segment_checked");
        repo.save_config()?;
        -1
    };
    let start = Instant::now();
    let mut finished = true;
    let mut seen_any = false;
    let segments = repo.io.segment_list(false)?;
    let mut pi = Percent::new(segments.len() as u64, 0.1, "repository.check", |p| {
        format!("Checking segments {p:3.1}%")
    });
    // the bytes read so far ride along for the rate (their total would cost a stat per segment)
    let mut bytes_read = 0u64;
    for (i, (seg, _)) in segments.into_iter().enumerate() {
        pi.set_bytes(bytes_read, 0);
        pi.show(Some(i as u64), progress);
        if (seg as i64) <= last_checked || seg > tid {
            continue;
        }
        seen_any = true;
        let mut entries: Vec<Entry> = Vec::new();
        let mut failed = None;
        match repo.io.iter_objects(seg, 0, true, false) {
            Ok(it) => {
                for e in it {
                    match e {
                        Ok(e) => entries.push(e),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
            }
            Err(e) => failed = Some(e.to_string()),
        }
        bytes_read += entries.iter().map(|e| u64::from(e.size)).sum::<u64>();
        if let Some(msg) = failed {
            errors.push(msg.clone());
            report.messages.push(msg);
            entries.clear();
            if repair {
                repo.io.recover_segment(seg)?;
                entries = repo
                    .io
                    .iter_objects(seg, 0, true, false)?
                    .collect::<Result<_>>()?;
            }
        }
        if !partial {
            let mut rep = |m: String| {
                errors.push(m.clone());
                report.messages.push(m);
            };
            repo.update_index(seg, &entries, Some(&mut rep))?;
        }
        if partial && start.elapsed() > Duration::from_secs(max_duration) {
            repo.config.set(
                crate::repo::config::SECTION,
                "last_segment_checked",
                &seg.to_string(),
            );
            repo.save_config()?;
            finished = false;
            break;
        }
    }
    let _ = seen_any;
    pi.finish(progress);
    if finished && partial {
        repo.config
            .remove(crate::repo::config::SECTION, "last_segment_checked");
        repo.save_config()?;
    }
    if repair && segments_tid.is_none() {
        let m = format!("Adding commit tag to segment {tid}");
        errors.push(m.clone());
        report.messages.push(m);
        repo.io.segment = tid + 1;
        repo.io.write_commit(false)?;
    }
    if !partial {
        if let Some(cur) = current_index.as_ref().filter(|i| !i.is_empty()) {
            if !repair {
                let rebuilt_len = repo.index.as_ref().map(|i| i.len()).unwrap_or(0);
                if cur.len() != rebuilt_len {
                    let m = "Index object count mismatch.".to_string();
                    errors.push(m.clone());
                    report.messages.push(m);
                    report
                        .messages
                        .push(format!("committed index: {} objects", cur.len()));
                    report
                        .messages
                        .push(format!("rebuilt index:   {rebuilt_len} objects"));
                }
                let fmt = |v: Option<(u32, u32)>| match v {
                    Some((s, o)) => format!("({s}, {o})"),
                    None => "<not found>".to_string(),
                };
                if let Some(rebuilt) = repo.index.as_ref() {
                    for k in rebuilt.sorted_keys() {
                        let a = rebuilt.get_loc(&k);
                        let b = cur.get_loc(&k);
                        if a != b {
                            warnings.push(format!(
                                "ID: {:<64} rebuilt index: {:<16} committed index: {:<16}",
                                hex::encode(k),
                                fmt(a),
                                fmt(b)
                            ));
                        }
                    }
                    for k in cur.sorted_keys() {
                        if !rebuilt.contains(&k) {
                            warnings.push(format!(
                                "ID: {:<64} rebuilt index: {:<16} committed index: {:<16}",
                                hex::encode(k),
                                fmt(None),
                                fmt(cur.get_loc(&k))
                            ));
                        }
                    }
                }
                report.messages.extend(warnings.iter().cloned());
            }
        }
        if repair {
            repo.write_index()?;
        }
    }
    repo.rollback()?;
    report.errors = errors.len();
    let mode = if partial { "partial" } else { "full" };
    report.messages.push(if errors.is_empty() {
        format!("Finished {mode} repository check, no problems found.")
    } else if repair {
        format!("Finished {mode} repository check, errors found and repaired.")
    } else {
        format!("Finished {mode} repository check, errors found.")
    });
    report.ok = errors.is_empty() || repair;
    Ok(report)
}
