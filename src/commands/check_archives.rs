//! The archives part of `check` (borg 1.2's `ArchiveChecker`, FORMAT.md §2.16): find the key, load
//! (or rebuild) the manifest, walk every selected archive's item stream and chunk lists,
//! count references, find orphans, optionally verify every object (`--verify-data`) and
//! repair (`--repair`: all-zero replacement chunks with `chunks_healthy`, healing, dropping
//! undecodable archives, deleting orphans, writing a new manifest).
//!
//! Messages go through `tracing` with target `borg.archive` (borg's logger name), with borg's
//! exact wording; progress goes to a caller-supplied sink.

use std::collections::{HashMap, HashSet};

use crate::archive::item::{ChunkRef, Item};
use crate::archive::manifest::parse_timestamp;
use crate::archive::meta::ArchiveMeta;
use crate::archive::pool::Prefetcher;
use crate::archive::stream::ItemStreamWriter;
use crate::archive::{ArchiveError, ArchiveRef, KeyedRepository, Manifest, Operation, MANIFEST_ID};
use crate::compress::Compression;
use crate::crypto::{CryptoError, Key, KeyType};
use crate::msgpack::{self, DecodeError, Limits, Value};
use crate::repo::{RepoError, Repository, LIST_SCAN_LIMIT};
use crate::security::SecurityDir;

use super::check_verify::{decode_in_place, decode_object};
use super::common::{self, CommandError, Result};

/// Bytes the check reads ahead of the object it reports on (nothing is kept after the
/// check, so a small read-ahead keeps the workers busy with the least memory).
const CHECK_READ_AHEAD: usize = 4 * 1024 * 1024;

macro_rules! log_error { ($($a:tt)*) => { tracing::error!(target: "borg.archive", $($a)*) }; }
macro_rules! log_warning { ($($a:tt)*) => { tracing::warn!(target: "borg.archive", $($a)*) }; }
macro_rules! log_info { ($($a:tt)*) => { tracing::info!(target: "borg.archive", $($a)*) }; }

/// The archive keys borg recognises at the start of an archive object (`ARCHIVE_KEYS`).
pub const ARCHIVE_KEYS: [&str; 20] = [
    "version",
    "name",
    "items",
    "cmdline",
    "hostname",
    "username",
    "time",
    "time_end",
    "comment",
    "chunker_params",
    "recreate_cmdline",
    "recreate_source_id",
    "recreate_args",
    "recreate_partial_chunks",
    "size",
    "csize",
    "nfiles",
    "size_parts",
    "csize_parts",
    "nfiles_parts",
];

/// Keys every archive object has (`REQUIRED_ARCHIVE_KEYS`).
pub const REQUIRED_ARCHIVE_KEYS: [&str; 5] = ["version", "name", "items", "cmdline", "time"];

/// Keys every item has (`REQUIRED_ITEM_KEYS`).
pub const REQUIRED_ITEM_KEYS: [&str; 2] = ["path", "mtime"];

/// Which archives to check.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `REPO::ARCHIVE`: only this archive.
    pub archive: Option<String>,
    /// `-a` glob (or `-P` prefix turned into `prefix*`).
    pub glob: Option<String>,
    /// `--sort-by` keys, comma separated (`timestamp`, `name`, `id`).
    pub sort_by: String,
    /// `--first N`.
    pub first: Option<usize>,
    /// `--last N`.
    pub last: Option<usize>,
}

impl Selection {
    /// True when every archive is checked (borg's `check_all`): no name, glob, first or last.
    pub fn is_all(&self) -> bool {
        self.archive.is_none()
            && self.glob.is_none()
            && self.first.unwrap_or(0) == 0
            && self.last.unwrap_or(0) == 0
    }
}

/// Options of the archives check.
#[derive(Debug, Clone, Default)]
pub struct ArchiveCheckOptions {
    /// `--repair`
    pub repair: bool,
    /// `--verify-data`
    pub verify_data: bool,
    /// `--save-space` (accepted; commits are the same)
    pub save_space: bool,
    /// Which archives.
    pub selection: Selection,
    /// The repository location as shown to the user (for key prompts).
    pub location: String,
    /// The environment (passphrase and key-file variables).
    pub env: crate::options::Env,
    /// Worker threads for decoding.
    pub workers: usize,
    /// How much `--verify-data` verifies (`--max-duration`: a slice).
    pub verify_limits: super::check_verify::VerifyLimits,
}

use crate::progress::Percent;
pub use crate::progress::{render as render_progress, ProgressEvent, ProgressSink};

/// Reference counts of all objects (borg's `ChunkIndex` with refcounts only).
type Chunks = super::check_refs::RefCounts;

/// The archive checker's state.
struct Checker<'p> {
    store: KeyedRepository,
    chunks: Chunks,
    /// Number of objects the repository listed (the ids themselves are listed again, page by
    /// page, where they are needed in order).
    listed: usize,
    superseded: HashSet<[u8; 32]>,
    error_found: bool,
    /// Archives the manifest rebuild found but did not take because their TAM failed: while
    /// any exist, repair deletes no orphan (they may be those archives' objects).
    unauthenticated_candidates: usize,
    /// Archives in the manifest whose TAM failed: kept, and repair leaves them as they are.
    unauthenticated_kept: usize,
    repair: bool,
    manifest: Manifest,
    /// Replacement chunks by size: id and (in repair mode) the stored object.
    replacements: HashMap<u32, ([u8; 32], Option<Vec<u8>>)>,
    progress: &'p mut ProgressSink<'p>,
    /// Worker threads for decoding.
    workers: usize,
}

fn hex(id: &[u8; 32]) -> String {
    hex::encode(id)
}

/// True when an error of the archive layer is a data problem (borg's `IntegrityErrorBase`)
/// rather than an operational failure.
fn is_integrity(e: &ArchiveError) -> bool {
    match e {
        ArchiveError::Crypto(c) => !matches!(
            c,
            CryptoError::PassphraseWrong
                | CryptoError::WrongPassphrase
                | CryptoError::NoPassphrase(_)
        ),
        ArchiveError::Compress(_)
        | ArchiveError::IdMismatch(_)
        | ArchiveError::Corrupt(_)
        | ArchiveError::NoManifest => true,
        ArchiveError::Repo(r) => !matches!(r, RepoError::Io { .. }),
        ArchiveError::MandatoryFeatureUnsupported(_) => false,
    }
}

/// borg's `valid_msgpacked_dict`: does `d` start like a msgpack map whose first key is one of
/// `keys` (each given packed)?
pub fn valid_msgpacked_dict(d: &[u8], keys: &[Vec<u8>]) -> bool {
    let Some(&first) = d.first() else {
        return false;
    };
    let offs = if first & 0xf0 == 0x80 {
        1
    } else if first == 0xde {
        3
    } else {
        return false;
    };
    let Some(&k) = d.get(offs) else {
        return false;
    };
    if !(k & 0xe0 == 0xa0 || matches!(k, 0xd9..=0xdb)) {
        return false;
    }
    let rest = &d[offs..];
    keys.iter().any(|p| rest.starts_with(p))
}

fn packed_keys<S: AsRef<[u8]>>(keys: &[S]) -> Vec<Vec<u8>> {
    keys.iter()
        .map(|k| {
            let mut out = Vec::new();
            msgpack::write_raw(&mut out, k.as_ref());
            out
        })
        .collect()
}

/// What the robust unpacker produced.
enum Unpacked {
    Value(Value),
    NeedMore,
    /// The stream broke (why); resync.
    Crashed(DecodeError),
}

/// borg's `RobustUnpacker`: a streaming unpacker that, after `resync`, skips bytes until
/// something that decodes as an item map (with `path`) starts. In step it decodes
/// incrementally with the item limits ([`Limits::ITEM`]), so a hostile stream crashes it
/// (and is reported) instead of growing without end.
struct RobustUnpacker {
    /// Bytes buffered while resyncing, and where the scan for an item stands.
    buf: Vec<u8>,
    pos: usize,
    resync: bool,
    decoder: msgpack::StreamDecoder,
    item_keys: Vec<Vec<u8>>,
}

impl RobustUnpacker {
    fn new(item_keys: Vec<Vec<u8>>) -> Self {
        RobustUnpacker {
            buf: Vec::new(),
            pos: 0,
            resync: false,
            decoder: msgpack::StreamDecoder::new(Limits::ITEM),
            item_keys,
        }
    }

    fn resync(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.resync = true;
    }

    fn feed(&mut self, data: &[u8]) {
        if self.resync {
            self.buf.extend_from_slice(data);
        } else {
            self.decoder.feed(data);
        }
    }

    /// Whether the stream so far ends inside an item (not while resyncing).
    fn in_item(&self) -> bool {
        !self.resync && self.decoder.pending() > 0
    }

    fn next(&mut self) -> Unpacked {
        if self.resync {
            // Candidates before the first incomplete one failed for good; later feeds rescan
            // from there only.
            let mut incomplete = None;
            let mut p = self.pos;
            while p < self.buf.len() {
                let data = &self.buf[p..];
                if valid_msgpacked_dict(data, &self.item_keys) {
                    match msgpack::decode_one(data, Limits::ITEM) {
                        Ok((v, used)) if v.get("path").is_some() => {
                            self.resync = false;
                            self.decoder = msgpack::StreamDecoder::new(Limits::ITEM);
                            self.decoder.feed(&self.buf[p + used..]);
                            self.buf.clear();
                            self.pos = 0;
                            return Unpacked::Value(v);
                        }
                        Err(DecodeError::Incomplete) => {
                            incomplete.get_or_insert(p);
                        }
                        _ => {}
                    }
                }
                p += 1;
            }
            self.pos = incomplete.unwrap_or(self.buf.len());
            return Unpacked::NeedMore;
        }
        match self.decoder.next_value() {
            Ok(Some(v)) => Unpacked::Value(v),
            Ok(None) => Unpacked::NeedMore,
            Err(e) => Unpacked::Crashed(e),
        }
    }
}

/// Runs the archives check on an open repository. Returns borg's verdict:
/// `repair || !error_found` (false → exit code 1).
pub fn check_archives(
    mut repo: Box<dyn Repository>,
    opts: &ArchiveCheckOptions,
    progress: &mut ProgressSink<'_>,
) -> Result<bool> {
    log_info!("Starting archive consistency check...");
    super::workers::tune_allocator(super::workers::AllocatorProfile::SharedArena);
    // init_chunks
    // The first ids in list order (enough for make_key's attempts); the table holds them all.
    let mut first: Vec<[u8; 32]> = Vec::new();
    let mut listed = 0usize;
    // Sized for the whole repository at once (it grows should the count be off).
    let mut chunks = Chunks::with_capacity(repo.len()?);
    let mut marker: Option<[u8; 32]> = None;
    loop {
        let ids = repo.list(Some(LIST_SCAN_LIMIT), marker.as_ref())?;
        let Some(last) = ids.last() else { break };
        marker = Some(*last);
        listed += ids.len();
        for id in &ids {
            chunks.insert(*id, 0);
        }
        let room = MAKE_KEY_ATTEMPTS.saturating_sub(first.len());
        first.extend(ids.iter().take(room));
    }
    if listed == 0 {
        log_error!("Repository contains no apparent data at all, cannot continue check/repair.");
        return Ok(false);
    }
    let has_manifest = chunks.contains_key(&MANIFEST_ID);
    let key = make_key(
        repo.as_mut(),
        has_manifest,
        &first,
        &opts.location,
        &opts.env,
    )?;
    let security = SecurityDir::for_repository(&repo.id());
    let store = KeyedRepository::new(repo, key, Compression::default(), security.nonce_file());
    // Reborrow the sink with a lifetime local to this call.
    let mut sink = |ev: &ProgressEvent| progress(ev);
    let mut checker = Checker {
        manifest: Manifest::new(&store.key),
        store,
        chunks,
        listed,
        superseded: HashSet::new(),
        error_found: false,
        unauthenticated_candidates: 0,
        unauthenticated_kept: 0,
        repair: opts.repair,
        replacements: HashMap::new(),
        progress: &mut sink,
        workers: opts.workers,
    };
    checker.run(opts)
}

/// How many objects `make_key` tries.
const MAKE_KEY_ATTEMPTS: usize = 1000;

/// borg's `make_key`: the key type from the first object whose type byte is known. `first`
/// holds the first listed ids.
fn make_key(
    repo: &mut dyn Repository,
    has_manifest: bool,
    first: &[[u8; 32]],
    location: &str,
    env: &crate::options::Env,
) -> Result<Key> {
    // Prefer the manifest (its type byte is authoritative), then any other object.
    let candidates = std::iter::once(MANIFEST_ID)
        .filter(|_| has_manifest)
        .chain(first.iter().copied().filter(|id| *id != MANIFEST_ID));
    let mut attempts = 0;
    for id in candidates {
        attempts += 1;
        if attempts > 999 {
            attempts -= 1;
            break;
        }
        let data = match repo.get(&id) {
            Ok(d) => d,
            Err(RepoError::ObjectNotFound(..)) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(&type_byte) = data.first() else {
            continue;
        };
        if KeyType::from_type_byte(type_byte).is_err() {
            continue;
        }
        let (mut key, _, _) = common::load_key(repo, type_byte, location, env)?;
        let security = SecurityDir::for_repository(&repo.id());
        key.resolve_tam_required(security.tam_required_flag());
        return Ok(key);
    }
    Err(CommandError::new(format!(
        "Data integrity error: make_key: failed to create the key (tried {attempts} chunks)"
    )))
}

impl Checker<'_> {
    fn run(&mut self, opts: &ArchiveCheckOptions) -> Result<bool> {
        if opts.verify_data {
            self.verify_data(&opts.verify_limits)?;
        }
        if !self.chunks.contains_key(&MANIFEST_ID) {
            log_error!("Repository manifest not found!");
            self.error_found = true;
            self.manifest = self.rebuild_manifest()?;
        } else {
            match self.load_manifest(&opts.location) {
                Ok(m) => self.manifest = m,
                Err(e) if is_integrity(&e) => {
                    log_error!("Repository manifest is corrupted: {}", e);
                    self.error_found = true;
                    self.chunks.remove(&MANIFEST_ID);
                    self.manifest = self.rebuild_manifest()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.rebuild_refcounts(&opts.selection)?;
        self.orphan_chunks_check(opts.selection.is_all())?;
        if self.repair {
            log_info!("Writing Manifest.");
            let plaintext = self.manifest.to_plaintext(&self.store.key);
            self.store.put_manifest(&plaintext)?;
            log_info!("Committing repo.");
            self.store.repo.commit(false, 0.1)?;
        }
        if self.error_found {
            log_error!("Archive consistency check complete, problems found.");
        } else {
            log_info!("Archive consistency check complete, no problems found.");
        }
        // Repair fixes what it can; archives with TAM problems it leaves to the user.
        let unrepaired = self.unauthenticated_kept + self.unauthenticated_candidates;
        Ok((self.repair && unrepaired == 0) || !self.error_found)
    }

    fn load_manifest(&mut self, location: &str) -> std::result::Result<Manifest, ArchiveError> {
        let object = self.store.repo.get(&MANIFEST_ID)?;
        let plain =
            decode_object(&self.store.key, &MANIFEST_ID, &object).map_err(ArchiveError::Corrupt)?;
        let manifest = Manifest::from_plaintext(&self.store.key, &plain, false).map_err(|e| {
            match e {
                // name the repository in "Repository … requires a TAM" (borg's TAMRequiredError)
                ArchiveError::Crypto(c) => ArchiveError::Crypto(c.with_location(location)),
                other => other,
            }
        })?;
        manifest.check_features(&[Operation::Check])?;
        Ok(manifest)
    }

    fn verify_data(&mut self, limits: &super::check_verify::VerifyLimits) -> Result<()> {
        let mut v = super::check_verify::Verify {
            store: &mut self.store,
            chunks: &mut self.chunks,
            repair: self.repair,
            workers: self.workers,
            progress: &mut *self.progress,
        };
        self.error_found |= super::check_verify::verify_data(&mut v, limits)?;
        Ok(())
    }

    fn rebuild_manifest(&mut self) -> Result<Manifest> {
        log_info!("Rebuilding missing manifest, this might take some time...");
        let mut manifest = Manifest::new(&self.store.key);
        let archive_keys = packed_keys(&ARCHIVE_KEYS);
        let mut pi = Percent::new(self.listed as u64, 0.01, "check.rebuild_manifest", |p| {
            format!("Rebuilding manifest {p:6.2}%")
        });
        let mut marker: Option<[u8; 32]> = None;
        loop {
            let ids = self
                .store
                .repo
                .list(Some(LIST_SCAN_LIMIT), marker.as_ref())?;
            let Some(last) = ids.last() else { break };
            marker = Some(*last);
            for id in &ids {
                pi.show(None, self.progress);
                if *id == MANIFEST_ID || !self.chunks.contains_key(id) {
                    continue;
                }
                let object = match self.store.repo.get(id) {
                    Ok(o) => o,
                    Err(e @ RepoError::Io { .. }) => return Err(e.into()),
                    Err(e) => {
                        log_error!("Skipping corrupted chunk: {}", e);
                        self.error_found = true;
                        continue;
                    }
                };
                let data = match decode_object(&self.store.key, id, &object) {
                    Ok(d) => d,
                    Err(msg) => {
                        log_error!("Skipping corrupted chunk: {}", msg);
                        self.error_found = true;
                        continue;
                    }
                };
                if !valid_msgpacked_dict(&data, &archive_keys) {
                    continue;
                }
                if !contains(&data, b"cmdline") || !contains(&data, b"\xa7version\x01") {
                    continue;
                }
                let Ok((value, _)) = msgpack::decode_one(&data, Limits::ARCHIVE) else {
                    continue;
                };
                if !REQUIRED_ARCHIVE_KEYS.iter().all(|k| value.get(k).is_some()) {
                    continue;
                }
                let shown_name = value
                    .get("name")
                    .and_then(Value::as_bytes)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|| "<unknown>".into());
                // 1.2.5+: only authenticated archives are accepted into the rebuilt manifest.
                let value = match self.store.key.unpack_and_verify_archive(&data) {
                    Ok((v, _)) => v,
                    Err(e) => {
                        log_error!(
                            "Archive TAM authentication issue for archive {}: {}",
                            shown_name,
                            e
                        );
                        log_error!(
                        "This archive will *not* be added to the rebuilt manifest. Its objects are kept (no orphan is deleted in this run)."
                    );
                        self.error_found = true;
                        self.unauthenticated_candidates += 1;
                        continue;
                    }
                };
                let (Some(name), Some(time)) = (
                    value.get("name").and_then(Value::as_bytes),
                    value.get("time").and_then(Value::as_bytes),
                ) else {
                    continue;
                };
                log_info!("Found archive {}", String::from_utf8_lossy(name));
                let mut name = name.to_vec();
                if manifest.archives.contains_key(&name) {
                    let mut i = 1;
                    let new_name = loop {
                        let mut candidate = name.clone();
                        candidate.extend_from_slice(format!(".{i}").as_bytes());
                        if !manifest.archives.contains_key(&candidate) {
                            break candidate;
                        }
                        i += 1;
                    };
                    log_warning!(
                        "Duplicate archive name {}, storing as {}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(&new_name)
                    );
                    name = new_name;
                }
                manifest.archives.insert(
                    name,
                    ArchiveRef {
                        id: *id,
                        time: String::from_utf8_lossy(time).into_owned(),
                    },
                );
            }
        }
        pi.finish(self.progress);
        log_info!("Manifest rebuild complete.");
        Ok(manifest)
    }

    fn select(&mut self, sel: &Selection) -> Option<Vec<(Vec<u8>, ArchiveRef)>> {
        if let Some(name) = &sel.archive {
            return match self.manifest.archives.get(name.as_bytes()) {
                Some(r) => Some(vec![(name.as_bytes().to_vec(), r.clone())]),
                None => {
                    log_error!("Archive '{}' not found.", name);
                    self.error_found = true;
                    None
                }
            };
        }
        let mut list: Vec<(Vec<u8>, ArchiveRef)> = self
            .manifest
            .archives
            .iter()
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        if let Some(glob) = &sel.glob {
            // A glob borg's `re.compile` refuses selects nothing here.
            let re = super::select::ArchiveGlob::new(Some(glob)).ok();
            list.retain(|(n, _)| {
                re.as_ref()
                    .is_some_and(|re| re.is_match(&String::from_utf8_lossy(n)))
            });
        }
        let keys: Vec<&str> = sel.sort_by.split(',').collect();
        list.sort_by(|a, b| {
            for k in &keys {
                let o = match *k {
                    "name" => a.0.cmp(&b.0),
                    "id" => a.1.id.cmp(&b.1.id),
                    _ => match (parse_timestamp(&a.1.time), parse_timestamp(&b.1.time)) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        _ => a.1.time.cmp(&b.1.time),
                    },
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let first = sel.first.unwrap_or(0);
        let last = sel.last.unwrap_or(0);
        if first > 0 {
            list.truncate(first);
        } else if last > 0 {
            let skip = list.len().saturating_sub(last);
            list.drain(..skip);
        }
        if let Some(glob) = &sel.glob {
            if list.is_empty() {
                log_warning!("--glob-archives {} does not match any archives", glob);
            }
        }
        if first > 0 && list.len() < first {
            log_warning!(
                "--first {} archives: only found {} archives",
                first,
                list.len()
            );
        }
        if last > 0 && list.len() < last {
            log_warning!(
                "--last {} archives: only found {} archives",
                last,
                list.len()
            );
        }
        Some(list)
    }

    fn mark_as_possibly_superseded(&mut self, id: &[u8; 32]) {
        if self.chunks.get(id).unwrap_or(0) == 0 {
            self.superseded.insert(*id);
        }
    }

    /// Counts a reference; a new object is stored (in repair mode) from `object`.
    fn add_reference(&mut self, id: &[u8; 32], object: Option<&[u8]>) -> Result<()> {
        if self.chunks.increment(id) {
            return Ok(());
        }
        self.chunks.insert(*id, 1);
        if self.repair {
            if let Some(object) = object {
                self.store.repo.put(id, object)?;
            }
        }
        Ok(())
    }

    /// A reference to the all-zero replacement chunk of `size` bytes (made once per size and
    /// stored with `--repair`), counted like any other reference.
    fn zero_replacement(&mut self, size: u32) -> Result<ChunkRef> {
        let (id, object) = match self.replacements.get(&size) {
            Some(r) => r.clone(),
            None => {
                let zeros = vec![0u8; size as usize];
                let id = self.store.key.id_hash(&zeros);
                let object = if self.repair {
                    Some(self.store.encode(&zeros)?)
                } else {
                    None
                };
                self.replacements.insert(size, (id, object.clone()));
                (id, object)
            }
        };
        self.add_reference(&id, object.as_deref())?;
        Ok(ChunkRef {
            id,
            size,
            csize: object.as_ref().map_or(0, |o| o.len() as u32),
        })
    }

    /// borg's `verify_file_chunks`. Returns true if the item was changed.
    fn verify_file_chunks(&mut self, archive_name: &str, item: &mut Item) -> Result<bool> {
        let Some(current) = item.chunks.clone() else {
            return Ok(false);
        };
        let path = String::from_utf8_lossy(&item.path).into_owned();
        let mut changed = false;
        let mut has_healthy = item.chunks_healthy.is_some();
        let mut healthy = item
            .chunks_healthy
            .clone()
            .unwrap_or_else(|| current.clone());
        if has_healthy && healthy.len() != current.len() {
            log_warning!(
                "{}: {}: Invalid chunks_healthy metadata removed!",
                archive_name,
                path
            );
            item.chunks_healthy = None;
            has_healthy = false;
            healthy = current.clone();
            changed = true;
        }
        let mut replaced = false;
        let mut offset: u64 = 0;
        let mut list: Vec<ChunkRef> = Vec::with_capacity(current.len());
        for (cur, good) in current.iter().zip(healthy.iter()) {
            let size = good.size;
            let end = offset + u64::from(size);
            let mut entry = *good;
            if !self.chunks.contains_key(&good.id) {
                if cur == good {
                    log_error!("{}: {}: New missing file chunk detected (Byte {}-{}, Chunk {}). Replacing with all-zero chunk.", archive_name, path, offset, end, hex(&good.id));
                    self.error_found = true;
                    replaced = true;
                    entry = self.zero_replacement(size)?;
                } else {
                    log_info!("{}: {}: Previously missing file chunk is still missing (Byte {}-{}, Chunk {}). It has an all-zero replacement chunk already.", archive_name, path, offset, end, hex(&good.id));
                    entry = *cur;
                    if self.chunks.contains_key(&cur.id) {
                        self.add_reference(&cur.id, None)?;
                    } else {
                        log_warning!("{}: {}: Missing all-zero replacement chunk detected (Byte {}-{}, Chunk {}). Generating new replacement chunk.", archive_name, path, offset, end, hex(&cur.id));
                        self.error_found = true;
                        replaced = true;
                        entry = self.zero_replacement(size)?;
                    }
                }
            } else if cur == good {
                self.add_reference(&good.id, None)?;
            } else {
                log_info!(
                    "{}: {}: Healed previously missing file chunk! (Byte {}-{}, Chunk {}).",
                    archive_name,
                    path,
                    offset,
                    end,
                    hex(&good.id)
                );
                self.add_reference(&good.id, None)?;
                self.mark_as_possibly_superseded(&cur.id);
            }
            list.push(entry);
            offset = end;
        }
        if replaced && !has_healthy {
            item.chunks_healthy = Some(current.clone());
        }
        if has_healthy && list == healthy {
            log_info!(
                "{}: {}: Completely healed previously damaged file!",
                archive_name,
                path
            );
            item.chunks_healthy = None;
        }
        if list != current {
            changed = true;
        }
        if item.chunks_healthy.is_some() != has_healthy {
            changed = true;
        }
        item.chunks = Some(list);
        if let Some(size) = item.size {
            let chunks_size: u64 = item
                .chunks
                .as_ref()
                .map_or(0, |c| c.iter().map(|c| u64::from(c.size)).sum());
            if size != chunks_size {
                log_warning!(
                    "{}: {}: size inconsistency detected: size {}, chunks size {}",
                    archive_name,
                    path,
                    size,
                    chunks_size
                );
            }
        }
        Ok(changed)
    }

    fn report(&mut self, msg: &str, id: &[u8; 32], chunk_no: usize) {
        self.error_found = true;
        log_error!("{} [chunk: {:06}_{}]", msg, chunk_no, hex(id));
    }

    /// borg's `robust_iterator` with `verify_file_chunks` applied to each item as it is decoded:
    /// returns whether anything had to be skipped or a file's chunk list changed, and, with
    /// `keep` (repair, which writes the items again), the items themselves. Without `keep` the
    /// items are not collected, so memory does not grow with the archive's size.
    fn robust_items(
        &mut self,
        meta: &ArchiveMeta,
        name: &str,
        keep: bool,
    ) -> Result<(Vec<Item>, bool)> {
        let item_keys: Vec<Vec<u8>> = self.manifest.item_keys.clone();
        let mut unpacker = RobustUnpacker::new(packed_keys(&item_keys));
        let mut items = Vec::new();
        let mut damaged = false;
        let mut after_missing = false;
        let mut pf: Prefetcher<std::result::Result<Vec<u8>, String>> = Prefetcher::new(
            self.store.key.clone(),
            self.workers,
            CHECK_READ_AHEAD,
            |key, id, object, _| decode_in_place(key, id, object),
        );
        for id in meta.items.iter().filter(|id| self.chunks.contains_key(id)) {
            pf.plan(*id, None);
        }
        for (i, id) in meta.items.iter().enumerate() {
            if !self.chunks.contains_key(id) {
                self.report("item metadata chunk missing", id, i);
                damaged = true;
                after_missing = true;
                continue;
            }
            if after_missing {
                unpacker.resync();
                after_missing = false;
            }
            let data = match pf.take(self.store.repo.as_mut())? {
                Some(Ok(d)) => d,
                Some(Err(e @ RepoError::Io { .. })) => return Err(e.into()),
                Some(Err(e)) => Err(format!("Data integrity error: {e}")),
                None => Err("item metadata chunk was not read".to_string()),
            };
            let data = match data {
                Ok(d) => d,
                Err(msg) => {
                    self.report(&msg, id, i);
                    damaged = true;
                    // borg keeps the unpacker going; resyncing drops the partial item either way.
                    unpacker.resync();
                    continue;
                }
            };
            unpacker.feed(&data);
            loop {
                match unpacker.next() {
                    Unpacked::NeedMore => break,
                    Unpacked::Crashed(e) => {
                        let msg =
                            "Unpacker crashed while unpacking item metadata, trying to resync...";
                        // borg's line for bytes its unpacker cannot parse; hoard's own bounds
                        // (borg has none) say which one the stream broke.
                        let msg = match e {
                            DecodeError::InvalidMarker(_) => msg.to_string(),
                            e => format!("{msg} ({e})"),
                        };
                        self.report(&msg, id, i);
                        damaged = true;
                        unpacker.resync();
                        break;
                    }
                    Unpacked::Value(v) => match valid_item(v, &item_keys) {
                        Ok((mut item, acl_dropped)) => {
                            damaged |= acl_dropped;
                            if item.chunks.is_some() {
                                damaged |= self.verify_file_chunks(name, &mut item)?;
                            }
                            if keep {
                                items.push(item);
                            }
                        }
                        Err(reason) => {
                            self.report(&format!("Did not get expected metadata dict when unpacking item metadata ({reason})"), id, i);
                            damaged = true;
                        }
                    },
                }
            }
        }
        if let Some((i, id)) = meta.items.iter().enumerate().next_back() {
            if unpacker.in_item() {
                self.report("item metadata stream ends inside an item", id, i);
                damaged = true;
            }
        }
        Ok((items, damaged))
    }

    fn rebuild_refcounts(&mut self, sel: &Selection) -> Result<()> {
        self.chunks.remove(&MANIFEST_ID);
        let Some(infos) = self.select(sel) else {
            return Ok(());
        };
        let total = infos.len();
        let mut pi = Percent::new(total as u64, 0.1, "check.rebuild_refcounts", |p| {
            format!("Checking archives {p:3.1}%")
        });
        for (i, (name_bytes, info)) in infos.into_iter().enumerate() {
            pi.show(Some(i as u64), self.progress);
            let name = String::from_utf8_lossy(&name_bytes).into_owned();
            log_info!("Analyzing archive {} ({}/{})", name, i + 1, total);
            let archive_id = info.id;
            if !self.chunks.contains_key(&archive_id) {
                log_error!("Archive metadata block {} is missing!", hex(&archive_id));
                self.error_found = true;
                self.manifest.archives.remove(&name_bytes);
                continue;
            }
            self.mark_as_possibly_superseded(&archive_id);
            let data = match self.store.repo.get(&archive_id) {
                Ok(o) => decode_object(&self.store.key, &archive_id, &o),
                Err(e @ RepoError::Io { .. }) => return Err(e.into()),
                Err(e) => Err(format!("Data integrity error: {e}")),
            };
            let data = match data {
                Ok(d) => d,
                Err(msg) => {
                    log_error!(
                        "Archive metadata block {} is corrupted: {}",
                        hex(&archive_id),
                        msg
                    );
                    self.error_found = true;
                    self.manifest.archives.remove(&name_bytes);
                    continue;
                }
            };
            let (value, authenticated) = match self.store.key.unpack_and_verify_archive(&data) {
                Ok((v, _)) => (v, true),
                Err(e) => {
                    // borg 1.4 drops such an archive on --repair. hoard never deletes an archive
                    // for an authentication problem alone: borg < 1.2.5's `check --repair`
                    // rewrites archives keeping their old TAM, so a user's own archive can fail
                    // here. It is reported, kept, its chunks stay referenced, and
                    // `upgrade --archives-tam` re-authenticates it.
                    log_error!(
                        "Archive TAM authentication issue for archive {}: {}",
                        name,
                        e
                    );
                    log_error!("{}", unauthenticated_archive_kept(&name));
                    self.error_found = true;
                    self.unauthenticated_kept += 1;
                    match self.store.key.unpack_archive_unverified(&data) {
                        Ok(v) => (v, false),
                        Err(e) => {
                            log_error!(
                                "Archive metadata block {} is corrupted: {}",
                                hex(&archive_id),
                                e
                            );
                            self.manifest.archives.remove(&name_bytes);
                            continue;
                        }
                    }
                }
            };
            let meta = match ArchiveMeta::from_value(&value) {
                Ok(m) => m,
                Err(e) => {
                    log_error!(
                        "Archive metadata block {} is corrupted: {}",
                        hex(&archive_id),
                        e
                    );
                    self.error_found = true;
                    self.manifest.archives.remove(&name_bytes);
                    continue;
                }
            };
            // An unauthenticated archive is only read: never rewritten, so repair cannot
            // turn it into an authenticated one behind the user's back.
            let repair = self.repair;
            self.repair = repair && authenticated;
            let robust = self.robust_items(&meta, &name, self.repair);
            self.repair = repair;
            let (items, changed) = robust?;
            if !changed || !authenticated {
                // Unchanged: the original archive object and item-stream chunks stay in use.
                self.add_reference(&archive_id, None)?;
                for id in &meta.items {
                    self.add_reference(id, None)?;
                }
                continue;
            }
            for id in &meta.items {
                self.mark_as_possibly_superseded(id);
            }
            self.superseded.insert(archive_id);
            if !self.repair {
                continue;
            }
            let new_id = self.write_archive(&data, meta, &items)?;
            self.manifest.archives.insert(
                name_bytes,
                ArchiveRef {
                    id: new_id,
                    time: info.time,
                },
            );
        }
        pi.finish(self.progress);
        Ok(())
    }

    /// Stores the repaired item stream and archive metadata (keeping the original TAM salt);
    /// returns the new archive id.
    fn write_archive(
        &mut self,
        original: &[u8],
        mut meta: ArchiveMeta,
        items: &[Item],
    ) -> Result<[u8; 32]> {
        let mut writer = ItemStreamWriter::new(self.store.key.chunk_seed());
        let mut new_chunks: Vec<([u8; 32], Option<Vec<u8>>)> = Vec::new();
        {
            let store = &mut self.store;
            let chunks = &self.chunks;
            let mut put = |plain: &[u8]| -> std::result::Result<[u8; 32], ArchiveError> {
                let id = store.key.id_hash(plain);
                let object = if chunks.contains_key(&id) {
                    None
                } else {
                    Some(store.encode(plain)?)
                };
                new_chunks.push((id, object));
                Ok(id)
            };
            for item in items {
                writer.add(item, &mut put)?;
            }
            meta.items = writer.finish(&mut put)?;
        }
        for (id, object) in new_chunks {
            self.add_reference(&id, object.as_deref())?;
        }
        let salt = msgpack::decode_one(original, Limits::ARCHIVE)
            .ok()
            .and_then(|(v, _)| {
                v.get("tam")
                    .and_then(|t| t.get("salt"))
                    .and_then(Value::as_bytes)
                    .map(<[u8]>::to_vec)
            });
        let packed = match salt {
            Some(salt) if salt.len() == 64 => {
                let mut fixed = [0u8; 64];
                fixed.copy_from_slice(&salt);
                self.store.key.pack_and_authenticate_metadata_with_salt(
                    meta.to_value(),
                    "archive",
                    &fixed,
                )
            }
            _ => self
                .store
                .key
                .pack_and_authenticate_metadata(meta.to_value(), "archive"),
        };
        let id = self.store.key.id_hash(&packed);
        let object = if self.chunks.contains_key(&id) {
            None
        } else {
            Some(self.store.encode(&packed)?)
        };
        self.add_reference(&id, object.as_deref())?;
        Ok(id)
    }

    fn orphan_chunks_check(&mut self, check_all: bool) -> Result<()> {
        if !check_all {
            log_info!("Orphaned objects check skipped (needs all archives checked).");
            return Ok(());
        }
        // Unused objects in list order (the repository is listed again, page by page).
        let mut unused: Vec<[u8; 32]> = Vec::new();
        let mut marker: Option<[u8; 32]> = None;
        loop {
            let ids = self
                .store
                .repo
                .list(Some(LIST_SCAN_LIMIT), marker.as_ref())?;
            let Some(last) = ids.last() else { break };
            marker = Some(*last);
            unused.extend(ids.iter().filter(|id| self.chunks.get(id) == Some(0)));
        }
        let orphaned = unused
            .iter()
            .filter(|id| !self.superseded.contains(*id))
            .count();
        if orphaned > 0 {
            log_error!("{} orphaned objects found!", orphaned);
            self.error_found = true;
        }
        if self.repair && !unused.is_empty() && self.unauthenticated_candidates > 0 {
            // The objects of an archive that the manifest rebuild did not take (its TAM does not
            // verify) are orphans now; deleting them would delete that archive.
            log_warning!(
                "Keeping {} unused objects: {} archive(s) found by the manifest rebuild failed TAM authentication and may still need them.",
                unused.len(),
                self.unauthenticated_candidates
            );
            return Ok(());
        }
        if self.repair && !unused.is_empty() {
            log_info!(
                "Deleting {} orphaned and {} superseded objects...",
                orphaned,
                self.superseded.len()
            );
            for id in &unused {
                match self.store.repo.delete(id) {
                    Ok(()) | Err(RepoError::ObjectNotFound(..)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            log_info!("Finished deleting orphaned/superseded objects.");
        }
        Ok(())
    }
}

/// What check says after an archive's TAM failed: the archive is kept, and how to fix it.
fn unauthenticated_archive_kept(name: &str) -> String {
    format!(
        "Archive {name} is kept: check never deletes an archive for an authentication problem alone. If this archive is yours (borg before 1.2.5 rewrote it in check --repair), run \"borg upgrade --check-archives-tam\" and then \"borg upgrade --archives-tam\" to authenticate it again."
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// borg's `valid_item` plus decoding: the item, and whether an Attic `acl` key was dropped.
fn valid_item(v: Value, item_keys: &[Vec<u8>]) -> std::result::Result<(Item, bool), String> {
    let Value::Map(mut entries) = v else {
        return Err("not a dictionary".into());
    };
    let before = entries.len();
    entries.retain(|(k, _)| k.as_bytes() != Some(b"acl"));
    let acl_dropped = entries.len() != before;
    let keys: Vec<&[u8]> = entries.iter().filter_map(|(k, _)| k.as_bytes()).collect();
    let mut missing: Vec<&str> = REQUIRED_ITEM_KEYS
        .iter()
        .copied()
        .filter(|r| !keys.contains(&r.as_bytes()))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(format!("missing required keys: {}", missing.join(", ")));
    }
    let mut invalid: Vec<String> = entries
        .iter()
        .filter(|(k, _)| {
            k.as_bytes()
                .is_none_or(|k| !item_keys.iter().any(|x| x.as_slice() == k))
        })
        .map(|(k, _)| match k.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => format!("{k:?}"),
        })
        .collect();
    if !invalid.is_empty() {
        invalid.sort();
        return Err(format!("invalid keys: {}", invalid.join(", ")));
    }
    let item = Item::from_value(&Value::Map(entries))?;
    Ok((item, acl_dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_msgpacked_dicts_like_borg() {
        let keys = packed_keys(&["path", "mtime"]);
        let item = Value::sorted_map(vec![("path", Value::raw("a")), ("mtime", Value::int(1))]);
        assert!(valid_msgpacked_dict(&item.to_bytes(), &keys));
        assert!(!valid_msgpacked_dict(&[0x90], &keys));
        assert!(!valid_msgpacked_dict(&[0x81], &keys));
        assert!(!valid_msgpacked_dict(&[], &keys));
    }

    #[test]
    fn robust_unpacker_resyncs_after_garbage() {
        let keys = packed_keys(&["path", "mtime"]);
        let a = Value::sorted_map(vec![("mtime", Value::int(1)), ("path", Value::raw("a"))]);
        let b = Value::sorted_map(vec![("mtime", Value::int(2)), ("path", Value::raw("b"))]);
        let mut u = RobustUnpacker::new(keys);
        u.resync();
        let mut data = vec![0xc1, 0x82, 0x00, 0xff];
        data.extend(a.to_bytes());
        data.extend(b.to_bytes());
        u.feed(&data);
        let Unpacked::Value(v) = u.next() else {
            panic!("no item")
        };
        assert_eq!(v, a);
        let Unpacked::Value(v) = u.next() else {
            panic!("no item")
        };
        assert_eq!(v, b);
        assert!(matches!(u.next(), Unpacked::NeedMore));
    }

    #[test]
    fn valid_item_reports_like_borg() {
        let keys = packed_keys(&[] as &[&str]);
        let _ = keys;
        let item_keys: Vec<Vec<u8>> = vec![b"path".to_vec(), b"mtime".to_vec()];
        let v = Value::sorted_map(vec![("path", Value::raw("a"))]);
        assert_eq!(
            valid_item(v, &item_keys).unwrap_err(),
            "missing required keys: mtime"
        );
        let v = Value::sorted_map(vec![
            ("path", Value::raw("a")),
            ("mtime", Value::int(1)),
            ("bogus", Value::int(1)),
        ]);
        assert_eq!(
            valid_item(v, &item_keys).unwrap_err(),
            "invalid keys: bogus"
        );
        assert_eq!(
            valid_item(Value::int(3), &item_keys).unwrap_err(),
            "not a dictionary"
        );
    }
}
