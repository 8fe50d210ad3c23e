//! `info REPO::ARCHIVE` and `info REPO --last N / -a GLOB`: borg's `Archive.info()` with
//! `calc_stats(want_unique=True)` — the deduplicated size of an archive is the stored size of
//! the file-content chunks it references as often as the whole repository does. As in borg
//! 1.4, the archive's metadata (its metadata object and item-stream chunks) is not counted,
//! so the figure equals what `create --stats` showed.

use chrono::NaiveDateTime;

use crate::archive::manifest::parse_timestamp;
use crate::archive::meta::{ArchiveMeta, Items};
use crate::archive::Operation;
use crate::cache::{Cache, CacheOptions, IndexStats};
use crate::location::Location;

use super::common::{self, LockSpec, Opened, Result};
use super::list::{archive_local_time, remove_surrogates};
use super::select::{self, ArchiveInfo, Selection};

/// borg's `MAX_DATA_SIZE`: the largest object the repository accepts.
pub const MAX_DATA_SIZE: f64 = 20_971_479.0;

/// Everything `info` shows about one archive.
#[derive(Debug, Clone)]
pub struct ArchiveDetails {
    /// The name (undecodable bytes as `?`).
    pub name: String,
    /// Hex id.
    pub id: String,
    /// Start, local time (seconds).
    pub start: NaiveDateTime,
    /// End, local time (seconds).
    pub end: NaiveDateTime,
    /// Seconds between start and end (with microseconds).
    pub duration: f64,
    /// The creating command line.
    pub command_line: Vec<String>,
    /// Hostname.
    pub hostname: String,
    /// Username.
    pub username: String,
    /// The creating process's working directory (`""` for archives made before borg 1.4).
    pub cwd: String,
    /// Comment.
    pub comment: String,
    /// Chunker params as JSON (a list, or `""`).
    pub chunker_params: serde_json::Value,
    /// Size of the archive metadata object / `MAX_DATA_SIZE`.
    pub max_archive_size: f64,
    /// Number of files.
    pub nfiles: u64,
    /// Original size.
    pub original_size: u64,
    /// Compressed size.
    pub compressed_size: u64,
    /// Deduplicated (compressed) size.
    pub deduplicated_size: u64,
}

/// The result of `info` on archives.
pub struct ArchivesInfo {
    /// One entry per archive, in order.
    pub archives: Vec<ArchiveDetails>,
    /// Chunk index totals (the "All archives" and "Chunk index" lines).
    pub index: IndexStats,
    /// The open repository (for the JSON `repository`/`encryption` parts).
    pub opened: Opened,
}

/// Which archives `info` describes.
#[derive(Debug, Clone)]
pub enum InfoTargets {
    /// `REPO::ARCHIVE`.
    Name(Vec<u8>),
    /// `--first/--last/-a/-P` (checkpoints considered, as borg does).
    Selection(Selection),
}

/// Gathers the details of the target archives.
pub fn archives_info(
    loc: &Location,
    targets: &InfoTargets,
    consider_part_files: bool,
    lock: LockSpec,
    confirm: crate::security::Confirm<'_>,
) -> Result<ArchivesInfo> {
    let access = lock.shared();
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Read], confirm)?;
    let infos: Vec<ArchiveInfo> = match targets {
        InfoTargets::Name(n) => vec![select::find_archive(&opened.manifest, n)
            .ok_or_else(|| super::list::does_not_exist(n))?],
        InfoTargets::Selection(sel) => {
            let mut sel = sel.clone();
            sel.consider_checkpoints = true;
            select::select_archives(&opened.manifest, &sel)
        }
    };
    let cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait: lock.wait,
            ..CacheOptions::default()
        },
    )?;
    let mut archives = Vec::with_capacity(infos.len());
    for info in &infos {
        archives.push(details(&mut opened, &cache, info, consider_part_files)?);
    }
    Ok(ArchivesInfo {
        archives,
        index: cache.stats(),
        opened,
    })
}

fn details(
    opened: &mut Opened,
    cache: &Cache,
    info: &ArchiveInfo,
    consider_part_files: bool,
) -> Result<ArchiveDetails> {
    let meta = ArchiveMeta::load(&mut opened.store, &info.id)?;
    // The archive's own references to content chunks (borg 1.4 leaves out the metadata
    // object and the item-stream chunks, issue #9003), counted after sorting: 32 bytes a
    // reference, where a map of counts took ~80 (and twice that while it grew).
    let mut referenced: Vec<[u8; 32]> = Vec::new();
    let (mut nfiles, mut size, mut csize) = (0u64, 0u64, 0u64);
    let (mut nfiles_parts, mut size_parts, mut csize_parts) = (0u64, 0u64, 0u64);
    let mut items = Items::new(&mut opened.store, &meta);
    while let Some(item) = items.next_item()? {
        if let Some(chunks) = &item.chunks {
            let (s, c) = chunks.iter().fold((0u64, 0u64), |(s, c), ch| {
                (s + ch.size as u64, c + ch.csize as u64)
            });
            referenced.extend(chunks.iter().map(|ch| ch.id));
            nfiles += 1;
            size += s;
            csize += c;
            if item.part.is_some() {
                nfiles_parts += 1;
                size_parts += s;
                csize_parts += c;
            }
        }
    }
    referenced.sort_unstable();
    let mut unique_csize = 0u64;
    for run in referenced.chunk_by(|a, b| a == b) {
        if let Some(e) = cache.seen_chunk(&run[0]) {
            if usize::try_from(e.refcount).is_ok_and(|r| r == run.len()) {
                unique_csize += e.csize as u64;
            }
        }
    }
    let (nfiles, original_size, compressed_size) = match (meta.nfiles, meta.size, meta.csize) {
        (Some(nf), Some(s), Some(c)) => {
            if consider_part_files {
                (
                    nf + meta.nfiles_parts.unwrap_or(0),
                    s + meta.size_parts.unwrap_or(0),
                    c + meta.csize_parts.unwrap_or(0),
                )
            } else {
                (nf, s, c)
            }
        }
        _ => {
            if consider_part_files {
                (nfiles, size, csize)
            } else {
                (
                    nfiles - nfiles_parts,
                    size - size_parts,
                    csize - csize_parts,
                )
            }
        }
    };
    let start_utc = parse_timestamp(&info.time).unwrap_or_default();
    let end_text = meta.time_end.clone().unwrap_or_else(|| meta.time.clone());
    let end_utc = parse_timestamp(&end_text).unwrap_or(start_utc);
    let duration = (end_utc - start_utc)
        .num_microseconds()
        .map_or(0.0, |us| us as f64 / 1e6);
    let text = |v: &Option<Vec<u8>>| remove_surrogates(v.as_deref().unwrap_or_default());
    let max_archive_size = cache
        .seen_chunk(&info.id)
        .map_or(0.0, |e| e.csize as f64 / MAX_DATA_SIZE);
    Ok(ArchiveDetails {
        name: remove_surrogates(&info.name),
        id: hex::encode(info.id),
        start: archive_local_time(&info.time),
        end: archive_local_time(&end_text),
        duration,
        command_line: meta.cmdline.iter().map(|a| remove_surrogates(a)).collect(),
        hostname: text(&meta.hostname),
        username: text(&meta.username),
        cwd: text(&meta.cwd),
        comment: remove_surrogates(&meta.comment),
        chunker_params: super::list::chunker_params_json(meta.chunker_params.as_ref()),
        max_archive_size,
        nfiles,
        original_size,
        compressed_size,
        deduplicated_size: unique_csize,
    })
}
