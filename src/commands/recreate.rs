//! `recreate [REPO[::ARCHIVE]] [PATH...]`: rewrites archives with fewer items (patterns, PATHs,
//! `--exclude-caches`/`--exclude-if-present`), other compression (`--recompress`) or other
//! chunks (`--chunker-params`), as borg 1.4.5's `do_recreate` with its `ArchiveRecreater`.
//!
//! Each archive is read item by item and written anew as `<NAME>.recreate` (or `--target`);
//! then the original is deleted and the new one takes its name. Chunks are only re-read when
//! recompressing or re-chunking; otherwise the new archive references the same chunks.
//! Nothing here prints: status letters and notices go to a [`Reporter`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::archive::item::{ChunkRef, Item, S_IFBLK, S_IFCHR, S_IFIFO, S_IFREG};
use crate::archive::meta::ArchiveMeta;
use crate::archive::objects::Encoded;
use crate::archive::stream::{ItemStreamReader, ItemStreamWriter};
use crate::archive::{ArchiveRef, KeyedRepository, Operation};
use crate::cache::{Cache, CacheOptions, OpStats};
use crate::chunker::{ChunkerParams, DEFAULT_CHUNKER_PARAMS, MAX_DATA_SIZE};
use crate::compress::Compression;
use crate::location::Location;
use crate::patterns::{IeCommand, Pattern, PatternMatcher, PatternStyle};

use super::common::{self, Access, Opened};
use super::create::{ArchiveStats, ArchiveSummary};
use super::{CommandError, Result};

/// The name of a cache directory tag (`CACHEDIR.TAG`).
const CACHE_TAG_NAME: &[u8] = b"CACHEDIR.TAG";
/// What a cache directory tag starts with (borg's `CACHE_TAG_CONTENTS`).
const CACHE_TAG_CONTENTS: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// `--recompress MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recompress {
    /// `never` (the default): keep stored chunks as they are.
    #[default]
    Never,
    /// `if-different`: recompress chunks stored with another algorithm than `-C` picks.
    IfDifferent,
    /// `always`: recompress every chunk (to change the level).
    Always,
}

/// Everything `recreate` is told.
#[derive(Debug, Clone)]
pub struct RecreateOptions {
    /// `--target`: the new archive's name (single archive only); the original stays.
    pub target: Option<String>,
    /// `--comment` (None: keep the archive's comment).
    pub comment: Option<String>,
    /// `--timestamp` (None: keep the archive's times).
    pub timestamp: Option<DateTime<Utc>>,
    /// `-C`: compression of everything written.
    pub compression: Compression,
    /// `--recompress`
    pub recompress: Recompress,
    /// `--chunker-params` (None: do not re-chunk).
    pub chunker_params: Option<ChunkerParams>,
    /// `--exclude-caches`
    pub exclude_caches: bool,
    /// `--exclude-if-present` names.
    pub exclude_if_present: Vec<Vec<u8>>,
    /// `--keep-exclude-tags`
    pub keep_exclude_tags: bool,
    /// `-n`: decide and report, write nothing.
    pub dry_run: bool,
    /// argv, stored as the new archive's `recreate_cmdline`.
    pub cmdline: Vec<String>,
    /// Lock wait seconds.
    pub lock_wait: f64,
    /// Threads that compress and encrypt when recompressing or re-chunking (1: sequential).
    pub workers: usize,
}

/// Where `recreate`'s output goes (the CLI prints it borg-style).
pub trait Reporter {
    /// A status letter for an item (`x` excluded, `-` dry run, else its type letter).
    fn file_status(&mut self, status: char, path: &[u8]);
    /// `Processing NAME` (whole-repository runs, before each archive).
    fn processing(&mut self, name: &[u8]);
    /// An archive that needed no work was left alone.
    fn skipped(&mut self, name: &[u8]);
    /// A debug note (e.g. re-chunking from/to which parameters).
    fn debug(&mut self, message: &str);
    /// A recreated archive, for `--stats`.
    fn archive_done(&mut self, summary: &ArchiveSummary);
    /// The original size of the archive about to be recreated (None: its metadata does not
    /// say), the total its progress runs up to.
    fn source_size(&mut self, _size: Option<u64>) {}
    /// Progress after an item of the new archive (`path` None: the archive's items are done).
    fn progress(&mut self, _stats: &ArchiveStats, _path: Option<&[u8]>) {}
}

/// Runs `recreate` on `loc` (one archive if it names one, else all archives by time).
/// `matcher` is borg's `build_matcher(patterns, paths)` (see [`crate::patterns::build_matcher`]).
pub fn run(
    loc: &Location,
    opts: &RecreateOptions,
    matcher: PatternMatcher,
    reporter: &mut dyn Reporter,
    confirm: crate::security::Confirm<'_>,
) -> Result<()> {
    let access = Access {
        exclusive: true,
        lock_wait: opts.lock_wait,
        lock: true,
    };
    let mut opened = common::open_with_manifest(loc, &access, &[Operation::Write], confirm)?;
    opened.store.compression = opts.compression.clone();
    let cache = Cache::open(
        &mut opened.store,
        &opened.manifest,
        CacheOptions {
            lock_wait: opts.lock_wait,
            location: Some(opened.location.canonical()),
            ..CacheOptions::default()
        },
    )?;
    if let Some(p) = &opts.chunker_params {
        reporter.debug(&format!("Rechunking archives to {}", py_params(p)));
    }
    let mut r = Recreater {
        opened: &mut opened,
        cache,
        opts,
        matcher,
        reporter,
        seen: HashSet::new(),
    };
    if let Some(name) = &loc.archive {
        let name = name.as_bytes();
        if is_temporary(name) {
            return Err(CommandError::new(format!(
                "Refusing to work on temporary archive of prior recreate: {}",
                String::from_utf8_lossy(name)
            )));
        }
        let target = opts.target.as_ref().map(|t| t.as_bytes().to_vec());
        if !r.recreate(name, target)? {
            return Err(CommandError::new(
                "Nothing to do. Archive was not processed.\n\
                 Specify at least one pattern, PATH, --comment, re-compression or re-chunking option.",
            ));
        }
    } else {
        if opts.target.is_some() {
            return Err(CommandError::new(
                "--target: Need to specify single archive",
            ));
        }
        let mut names: Vec<(String, Vec<u8>)> = r
            .opened
            .manifest
            .archives
            .iter()
            .map(|(n, a)| (a.time.clone(), n.clone()))
            .collect();
        names.sort();
        for (_, name) in names {
            if is_temporary(&name) {
                continue;
            }
            r.reporter.processing(&name);
            if !r.recreate(&name, None)? {
                r.reporter.skipped(&name);
            }
        }
    }
    if !opts.dry_run {
        common::commit_manifest(r.opened)?;
        r.cache.commit(&r.opened.manifest)?;
    }
    Ok(())
}

/// borg's `is_temporary_archive`: the name ends in `.recreate`.
pub fn is_temporary(name: &[u8]) -> bool {
    name.ends_with(b".recreate")
}

/// Chunker parameters as borg logs them (a Python tuple).
fn py_params(p: &ChunkerParams) -> String {
    match *p {
        ChunkerParams::Buzhash {
            min_exp,
            max_exp,
            mask_bits,
            window,
        } => format!("('buzhash', {min_exp}, {max_exp}, {mask_bits}, {window})"),
        ChunkerParams::Fixed { block, header } => format!("('fixed', {block}, {header})"),
    }
}

/// borg's `file_status(mode)`.
fn file_status(mode: u32) -> char {
    match mode & crate::archive::item::S_IFMT {
        S_IFREG => 'A',
        crate::archive::item::S_IFDIR => 'd',
        S_IFBLK => 'b',
        S_IFCHR => 'c',
        crate::archive::item::S_IFLNK => 's',
        S_IFIFO => 'f',
        _ => '?',
    }
}

/// borg's `hardlinkable(mode)`: regular files, devices and fifos.
fn hardlinkable(mode: u32) -> bool {
    matches!(
        mode & crate::archive::item::S_IFMT,
        S_IFREG | S_IFBLK | S_IFCHR | S_IFIFO
    )
}

/// borg's `os.path.split`: (head, tail) at the last `/`.
fn split_path(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => {
            let head = &path[..i];
            // os.path.split keeps a lone leading slash as the head.
            let head = if head.is_empty() { &path[..1] } else { head };
            (head, &path[i + 1..])
        }
        None => (b"", path),
    }
}

/// The algorithm name of framed (compressed) bytes, as borg's `Compressor.detect`.
fn stored_codec(framed: &[u8]) -> &'static str {
    use crate::compress::{LZ4_HEADER, LZMA_HEADER, NONE_HEADER, OBFUSCATE_HEADER, ZSTD_HEADER};
    let h = [
        framed.first().copied().unwrap_or(0),
        framed.get(1).copied().unwrap_or(0),
    ];
    if h == LZ4_HEADER {
        "lz4"
    } else if h == ZSTD_HEADER {
        "zstd"
    } else if h == NONE_HEADER {
        "none"
    } else if (h[0] & 0x0f) == 8 && (u32::from(h[0]) * 256 + u32::from(h[1])) % 31 == 0 {
        "zlib"
    } else if h == LZMA_HEADER {
        "lzma"
    } else if h == OBFUSCATE_HEADER {
        "obfuscate"
    } else {
        "unknown"
    }
}

/// The algorithm `spec` picks for `data` (borg's `compressor.decide(data).name`): the codec
/// itself, except `auto`, which lets lz4 decide between none, lz4 and the expensive codec.
fn decided_codec(spec: &Compression, data: &[u8]) -> &'static str {
    match spec {
        Compression::None => "none",
        Compression::Lz4 => "lz4",
        Compression::Zstd(_) => "zstd",
        Compression::Zlib(_) => "zlib",
        Compression::Lzma(_) => "lzma",
        Compression::Obfuscate { .. } => "obfuscate",
        Compression::Auto(inner) => {
            let cheap = crate::compress::compress(&Compression::Lz4, data);
            let ratio = cheap.len() as f64 / (data.len().max(1)) as f64;
            if ratio < 0.97 {
                decided_codec(inner, data)
            } else if ratio < 1.0 {
                "lz4"
            } else {
                "none"
            }
        }
    }
}

/// A hardlink master that the patterns excluded: its chunks go to the first included slave.
struct MovedMaster {
    chunks: Option<Vec<ChunkRef>>,
    chunks_healthy: Option<Vec<ChunkRef>>,
    /// The slave that received the chunks (the group's new master).
    new_source: Option<Vec<u8>>,
}

/// State of one `recreate` run (shared by all archives, as borg's `ArchiveRecreater`).
struct Recreater<'a, 'o> {
    opened: &'o mut Opened,
    cache: Cache,
    opts: &'a RecreateOptions,
    matcher: PatternMatcher,
    reporter: &'a mut dyn Reporter,
    /// Chunks already written (recompressed or re-chunked) in this run.
    seen: HashSet<[u8; 32]>,
}

/// The archive being written.
struct Target {
    name: Vec<u8>,
    items: ItemStreamWriter,
    stats: ArchiveStats,
    /// Item-stream chunks (borg 1.4's `meta_stats`: not part of the archive's sizes).
    meta_stats: OpStats,
    rechunkify: bool,
    chunker_params: ChunkerParams,
    start: DateTime<Utc>,
    start_mono: Instant,
}

impl Recreater<'_, '_> {
    /// Feeds every item of the item stream `ids` to `f` (part files left out).
    fn each_item(
        &mut self,
        ids: &[[u8; 32]],
        f: &mut dyn FnMut(&mut Self, Item) -> Result<()>,
    ) -> Result<()> {
        let mut reader = ItemStreamReader::new();
        for id in ids {
            let data = self.opened.store.get(id, None)?;
            reader.feed(&data);
            while let Some(item) = reader.next_item()? {
                // As borg's `iter_items`: part files of checkpoints are left out.
                if item.part.is_none() {
                    f(self, item)?;
                }
            }
        }
        reader.finish()?;
        Ok(())
    }

    /// Whether the matcher keeps `path` (no rule and no fallback: kept).
    fn keeps(&mut self, path: &[u8]) -> bool {
        self.matcher
            .matches(OsStr::from_bytes(path))
            .included
            .unwrap_or(true)
    }

    /// Recreates one archive; false if there was nothing to do (borg's `recreate`).
    fn recreate(&mut self, name: &[u8], target_name: Option<Vec<u8>>) -> Result<bool> {
        let aref = self
            .opened
            .manifest
            .archives
            .get(name)
            .cloned()
            .ok_or_else(|| super::list::does_not_exist(name))?;
        let meta = ArchiveMeta::load(&mut self.opened.store, &aref.id)?;
        let tname = target_name.clone().unwrap_or_else(|| {
            let mut n = name.to_vec();
            n.extend_from_slice(b".recreate");
            n
        });
        if self.opened.manifest.archives.contains_key(&tname) {
            return Err(super::rename::already_exists(&tname));
        }
        let dst_cp = self.opts.chunker_params.unwrap_or(DEFAULT_CHUNKER_PARAMS);
        let src_cp = meta.chunker_params();
        let rechunkify = self.opts.chunker_params.is_some() && src_cp != Some(dst_cp);
        if rechunkify {
            let from = src_cp.map_or_else(|| "(unknown)".to_string(), |p| py_params(&p));
            self.reporter.debug(&format!(
                "Rechunking archive from {from} to {}",
                py_params(&dst_cp)
            ));
        }
        if !self.opts.exclude_if_present.is_empty() || self.opts.exclude_caches {
            self.add_tagged_dirs(&meta)?;
        }
        let recompress = self.opts.recompress != Recompress::Never;
        if self.matcher.is_empty()
            && !recompress
            && !rechunkify
            && self.opts.comment.is_none()
            && target_name.is_none()
        {
            return Ok(false);
        }
        let mut target = Target {
            name: tname,
            items: ItemStreamWriter::new(self.opened.store.key.chunk_seed()),
            stats: ArchiveStats::default(),
            meta_stats: OpStats::default(),
            rechunkify,
            chunker_params: dst_cp,
            start: Utc::now(),
            start_mono: Instant::now(),
        };
        self.reporter.source_size(meta.size);
        self.process_items(&meta, &mut target)?;
        self.reporter.progress(&target.stats, None);
        if !self.opts.dry_run {
            self.save(name, &aref, &meta, target, target_name.is_none())?;
        }
        Ok(true)
    }

    /// borg's `process_items`: filters, moves the chunks of excluded hardlink masters to
    /// their first included slave, and writes the kept items.
    fn process_items(&mut self, meta: &ArchiveMeta, target: &mut Target) -> Result<()> {
        let subset = !self.matcher.is_empty();
        let mut masters: HashMap<Vec<u8>, MovedMaster> = HashMap::new();
        self.each_item(&meta.items, &mut |r, mut item| {
            let is_master = |item: &Item| {
                subset
                    && hardlinkable(item.mode)
                    && item.hardlink_master.unwrap_or(true)
                    && item.source.is_none()
            };
            if !r.keeps(&item.path) {
                r.reporter.file_status('x', &item.path);
                if is_master(&item) {
                    masters.insert(
                        item.path.clone(),
                        MovedMaster {
                            chunks: item.chunks.clone(),
                            chunks_healthy: item.chunks_healthy.clone(),
                            new_source: None,
                        },
                    );
                }
                return Ok(());
            }
            if subset && hardlinkable(item.mode) {
                if let Some(m) = item.source.as_ref().and_then(|s| masters.get_mut(s)) {
                    match &m.new_source {
                        None => {
                            if let Some(c) = m.chunks.take() {
                                item.chunks = Some(c);
                            }
                            if let Some(c) = m.chunks_healthy.take() {
                                item.chunks_healthy = Some(c);
                            }
                            m.new_source = Some(item.path.clone());
                            item.source = None;
                        }
                        Some(new_source) => item.source = Some(new_source.clone()),
                    }
                }
            }
            if r.opts.dry_run {
                r.reporter.file_status('-', &item.path);
                return Ok(());
            }
            r.process_item(target, item)
        })
    }

    /// borg's `process_item`.
    fn process_item(&mut self, target: &mut Target, mut item: Item) -> Result<()> {
        let status = file_status(item.mode);
        if item.chunks.is_some() {
            self.reporter.file_status(status, &item.path);
            self.process_chunks(target, &mut item)?;
            target.stats.nfiles += 1;
        }
        let (cache, store) = (&mut self.cache, &mut self.opened.store);
        let meta_stats = &mut target.meta_stats;
        target.items.add(&item, &mut |data: &[u8]| {
            let id = store.key.id_hash(data);
            cache.add_chunk(store, &id, data, meta_stats).map(|r| r.id)
        })?;
        if item.chunks.is_none() {
            self.reporter.file_status(status, &item.path);
        }
        self.reporter.progress(&target.stats, Some(&item.path));
        Ok(())
    }

    /// borg's `process_chunks`: references the same chunks, or re-reads them to recompress
    /// and/or re-chunk.
    fn process_chunks(&mut self, target: &mut Target, item: &mut Item) -> Result<()> {
        let Some(chunks) = item.chunks.take() else {
            return Ok(());
        };
        let recompress = self.opts.recompress != Recompress::Never;
        let mut op = OpStats::default();
        if !recompress && !target.rechunkify {
            for c in &chunks {
                if self.cache.chunk_incref(&c.id, &mut op).is_none() {
                    return Err(missing_chunk(&c.id));
                }
            }
            target.stats.add(&op);
            item.chunks = Some(chunks);
            return Ok(());
        }
        let store = RefCell::new(&mut self.opened.store);
        let mut w = ChunkWriter {
            cache: &mut self.cache,
            seen: &mut self.seen,
            recompress: self.opts.recompress,
            stats: &mut op,
            workers: self.opts.workers.max(1),
            batch: Vec::new(),
            batch_bytes: 0,
            out: Vec::with_capacity(chunks.len()),
        };
        if target.rechunkify {
            let seed = store.borrow().key.chunk_seed();
            let reader = StoredChunks {
                store: &store,
                chunks: chunks.into_iter(),
                buf: Vec::new(),
                pos: 0,
            };
            let chunker = crate::chunker::Chunker::new(reader, &target.chunker_params, seed)
                .map_err(|e| CommandError::new(e.to_string()))?;
            for chunk in chunker {
                let chunk = chunk.map_err(|e| CommandError::new(e.to_string()))?;
                w.push(&store, chunk.data)?;
            }
            item.chunks_healthy = None;
        } else {
            for c in chunks {
                let data = store.borrow_mut().get(&c.id, Some(c.size as usize))?;
                w.push(&store, data)?;
            }
        }
        w.flush(&store)?;
        let new_chunks = std::mem::take(&mut w.out);
        target.stats.add(&op);
        item.chunks = Some(new_chunks);
        Ok(())
    }

    /// borg's `matcher_add_tagged_dirs`: excludes directories tagged by `--exclude-if-present`
    /// names or (with `--exclude-caches`) a valid `CACHEDIR.TAG`, keeping the tags themselves
    /// with `--keep-exclude-tags`.
    fn add_tagged_dirs(&mut self, meta: &ArchiveMeta) -> Result<()> {
        let mut tag_files: Vec<Pattern> = Vec::new();
        let mut tagged_dirs: Vec<Pattern> = Vec::new();
        // CACHEDIR.TAG hardlink slaves refer to masters of any name (borg issue #4911).
        let mut cachedir_masters: HashMap<Vec<u8>, Option<Item>> = HashMap::new();
        if self.opts.exclude_caches {
            self.each_item(&meta.items, &mut |_, item| {
                if split_path(&item.path).1 == CACHE_TAG_NAME
                    && item.is_regular()
                    && item.chunks.is_none()
                {
                    if let Some(s) = &item.source {
                        cachedir_masters.insert(s.clone(), None);
                    }
                }
                Ok(())
            })?;
        }
        let keep = self.opts.keep_exclude_tags;
        let mut exclude = |dir: &[u8], tag: &Item| -> Result<()> {
            let pat = |style, p: &[u8]| {
                Pattern::new(style, OsStr::from_bytes(p), false)
                    .map_err(|e| CommandError::new(e.to_string()))
            };
            if keep {
                tag_files.push(pat(PatternStyle::PathPrefix, &tag.path)?);
                let mut d = dir.to_vec();
                d.push(b'/');
                tagged_dirs.push(pat(PatternStyle::Fnmatch, &d)?);
            } else {
                tagged_dirs.push(pat(PatternStyle::PathPrefix, dir)?);
            }
            Ok(())
        };
        self.each_item(&meta.items, &mut |r, item| {
            let (dir, tag) = split_path(&item.path);
            if tag != CACHE_TAG_NAME && !r.keeps(&item.path) {
                return Ok(());
            }
            if r.opts.exclude_caches {
                if let Some(slot) = cachedir_masters.get_mut(&item.path) {
                    *slot = Some(item.clone());
                }
            }
            if r.opts.exclude_if_present.iter().any(|n| n == tag) {
                exclude(dir, &item)?;
            } else if r.opts.exclude_caches && tag == CACHE_TAG_NAME && item.is_regular() {
                let content = if item.chunks.is_some() {
                    Some(&item)
                } else {
                    item.source
                        .as_ref()
                        .and_then(|s| cachedir_masters.get(s))
                        .and_then(Option::as_ref)
                };
                if let Some(content) = content {
                    if r.starts_with_tag(content)? {
                        exclude(dir, &item)?;
                    }
                }
            }
            Ok(())
        })?;
        self.matcher.add(tag_files, IeCommand::Include);
        self.matcher.add(tagged_dirs, IeCommand::ExcludeNoRecurse);
        Ok(())
    }

    /// Whether a file item's content starts with the cache tag signature.
    fn starts_with_tag(&mut self, item: &Item) -> Result<bool> {
        let mut head = Vec::new();
        for c in item.chunks.iter().flatten() {
            if head.len() >= CACHE_TAG_CONTENTS.len() {
                break;
            }
            head.extend(self.opened.store.get(&c.id, Some(c.size as usize))?);
        }
        Ok(head.starts_with(CACHE_TAG_CONTENTS))
    }

    /// borg's `save`: writes the target archive and commits; replaces the original unless
    /// `--target` named a new archive.
    fn save(
        &mut self,
        name: &[u8],
        aref: &ArchiveRef,
        meta: &ArchiveMeta,
        mut target: Target,
        replace_original: bool,
    ) -> Result<()> {
        let opts = self.opts;
        let (cache, store) = (&mut self.cache, &mut self.opened.store);
        let meta_stats = &mut target.meta_stats;
        target.items.flush(true, &mut |data: &[u8]| {
            let id = store.key.id_hash(data);
            cache.add_chunk(store, &id, data, meta_stats).map(|r| r.id)
        })?;
        let fmt = crate::archive::manifest::format_timestamp;
        let (time, time_end) = match opts.timestamp {
            None => (
                meta.time.clone(),
                meta.time_end.clone().unwrap_or_else(|| meta.time.clone()),
            ),
            Some(ts) => {
                let d = chrono::Duration::from_std(target.start_mono.elapsed()).unwrap_or_default();
                (fmt(ts), fmt(ts + d))
            }
        };
        let comment = match &opts.comment {
            Some(c) => c.as_bytes().to_vec(),
            None => meta.comment.clone(),
        };
        let s = target.stats;
        let mut new_meta = ArchiveMeta {
            version: 1,
            name: target.name.clone(),
            items: target.items.ids().to_vec(),
            cmdline: meta.cmdline.clone(),
            time,
            time_end: Some(time_end),
            hostname: Some(super::create::hostname()),
            username: Some(super::create::username()),
            cwd: Some(super::create::cwd()),
            comment,
            chunker_params: Some(target.chunker_params.to_msgpack()),
            size: Some(s.osize),
            csize: Some(s.csize),
            nfiles: Some(s.nfiles),
            size_parts: Some(0),
            csize_parts: Some(0),
            nfiles_parts: Some(0),
            recreate_cmdline: Some(opts.cmdline.iter().map(|a| a.as_bytes().to_vec()).collect()),
        };
        let mut scratch = OpStats::default();
        let mut id = self.put_meta(&new_meta, &mut scratch)?;
        self.opened.manifest.archives.insert(
            target.name.clone(),
            ArchiveRef {
                id,
                time: new_meta.time.clone(),
            },
        );
        common::commit_manifest(self.opened)?;
        self.cache.commit(&self.opened.manifest)?;
        self.cache.account_archive(s.osize, s.csize);
        let mut final_name = target.name.clone();
        if replace_original {
            let mut freed = OpStats::default();
            super::delete::delete_archive(
                self.opened,
                &mut self.cache,
                &aref.id,
                name,
                false,
                false,
                &mut freed,
            )?;
            // borg's `rename` / `set_meta`: same metadata under the original name.
            new_meta.name = name.to_vec();
            let new_id = self.put_meta(&new_meta, &mut scratch)?;
            self.opened.manifest.archives.remove(&target.name);
            self.opened.manifest.archives.insert(
                name.to_vec(),
                ArchiveRef {
                    id: new_id,
                    time: new_meta.time.clone(),
                },
            );
            self.cache
                .chunk_decref(&mut self.opened.store, &id, &mut scratch)?;
            id = new_id;
            final_name = name.to_vec();
        }
        let csize = self.cache.seen_chunk(&id).map_or(0, |e| e.csize);
        let repo_id = self.opened.id();
        let summary = ArchiveSummary {
            name: String::from_utf8_lossy(&final_name).into_owned(),
            id,
            start: target.start,
            end: Utc::now(),
            stats: s,
            max_archive_size: csize as f64 / MAX_DATA_SIZE as f64,
            command_line: opts.cmdline.clone(),
            repository_id: repo_id,
            location: self.opened.location.canonical(),
            last_modified: self.opened.manifest.timestamp.clone(),
            key_type: self.opened.store.key.key_type(),
            key_location: self.opened.key_location.clone(),
            cache_path: common::repo_cache_dir(&repo_id),
            cache_stats: self.cache.stats(),
        };
        self.reporter.archive_done(&summary);
        Ok(())
    }

    /// Packs, authenticates and stores an archive metadata object; returns its id.
    fn put_meta(&mut self, meta: &ArchiveMeta, stats: &mut OpStats) -> Result<[u8; 32]> {
        let packed = self
            .opened
            .store
            .key
            .pack_and_authenticate_metadata(meta.to_value(), "archive");
        let id = self.opened.store.key.id_hash(&packed);
        self.cache
            .add_chunk(&mut self.opened.store, &id, &packed, stats)?;
        Ok(id)
    }
}

fn missing_chunk(id: &[u8; 32]) -> CommandError {
    CommandError::new(format!(
        "chunk {} is missing from the chunks index; run check --repair",
        hex::encode(id)
    ))
}

impl ArchiveStats {
    /// Adds a cache operation's counters (file chunks).
    fn add(&mut self, op: &OpStats) {
        self.osize += op.osize;
        self.csize += op.csize;
        self.usize += op.ucsize;
    }
}

/// Bytes of chunk data collected before they are compressed and encrypted together.
const BATCH_BYTES: usize = 32 << 20;
/// Chunks collected at most before a batch is processed.
const BATCH_CHUNKS: usize = 256;

/// What happens to one chunk of a batch.
enum Plan {
    /// Already stored as wanted: one reference more.
    Incref,
    /// Compress, encrypt and (re)write it.
    Write,
}

/// Stores re-read chunk data (borg's recreate `chunk_processor`). Chunks are decided one by
/// one in order, as borg does; the ones to (re)write are compressed and encrypted on
/// `workers` threads per batch, then written and counted in order, so the result equals a
/// one-thread run.
struct ChunkWriter<'c> {
    cache: &'c mut Cache,
    seen: &'c mut HashSet<[u8; 32]>,
    recompress: Recompress,
    stats: &'c mut OpStats,
    workers: usize,
    batch: Vec<Vec<u8>>,
    batch_bytes: usize,
    /// The new chunk list.
    out: Vec<ChunkRef>,
}

impl ChunkWriter<'_> {
    /// Adds the next chunk of the file.
    fn push(&mut self, store: &RefCell<&mut KeyedRepository>, data: Vec<u8>) -> Result<()> {
        self.batch_bytes += data.len();
        self.batch.push(data);
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_CHUNKS {
            self.flush(store)?;
        }
        Ok(())
    }

    /// Decides, encodes and stores the collected chunks.
    fn flush(&mut self, store: &RefCell<&mut KeyedRepository>) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let mut st = store.borrow_mut();
        let ids: Vec<[u8; 32]> = batch.iter().map(|d| st.key.id_hash(d)).collect();
        let mut plans = Vec::with_capacity(batch.len());
        for (data, id) in batch.iter().zip(&ids) {
            if self.seen.contains(id) {
                plans.push(Plan::Incref);
                continue;
            }
            let known = self.cache.seen_chunk(id).is_some();
            let mut overwrite = self.recompress != Recompress::Never;
            if self.recompress == Recompress::IfDifferent && known {
                let object = st.repo.get(id)?;
                let framed = st.key.decrypt(&object)?;
                if stored_codec(&framed) == decided_codec(&st.compression, data) {
                    overwrite = false;
                }
            }
            self.seen.insert(*id);
            plans.push(if overwrite || !known {
                Plan::Write
            } else {
                Plan::Incref
            });
        }
        let todo: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(plans[i], Plan::Write))
            .collect();
        let encoder = st.encoder();
        let mut encoded: Vec<Option<Encoded>> = (0..batch.len()).map(|_| None).collect();
        let per = todo.len().div_ceil(self.workers).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .chunks(per)
                .map(|part| {
                    let (encoder, batch) = (&encoder, &batch);
                    scope.spawn(move || {
                        part.iter()
                            .map(|&i| (i, encoder.encode(&batch[i])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                if let Ok(done) = h.join() {
                    for (i, e) in done {
                        encoded[i] = Some(e);
                    }
                }
            }
        });
        for (i, (plan, id)) in plans.iter().zip(&ids).enumerate() {
            let r = match plan {
                Plan::Incref => self
                    .cache
                    .chunk_incref(id, self.stats)
                    .ok_or_else(|| missing_chunk(id))?,
                Plan::Write => {
                    let object = match encoded[i].take() {
                        Some(Encoded::Sealed(o)) => o,
                        Some(Encoded::Framed(f)) => st.seal(&f)?,
                        None => st.encode(&batch[i])?,
                    };
                    st.repo.put(id, &object)?;
                    let (size, csize) = (batch[i].len() as u32, object.len() as u32);
                    self.cache
                        .record_overwritten_chunk(id, size, csize, self.stats);
                    ChunkRef {
                        id: *id,
                        size,
                        csize,
                    }
                }
            };
            self.out.push(r);
        }
        Ok(())
    }
}

/// A file's stored chunks as one byte stream (borg's `ChunkIteratorFileWrapper`), fetched one
/// chunk at a time so memory stays at one chunk.
struct StoredChunks<'s, 'o> {
    store: &'s RefCell<&'o mut KeyedRepository>,
    chunks: std::vec::IntoIter<ChunkRef>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for StoredChunks<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            let Some(c) = self.chunks.next() else {
                return Ok(0);
            };
            self.buf = self
                .store
                .borrow_mut()
                .get(&c.id, Some(c.size as usize))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_is_os_path_split() {
        assert_eq!(split_path(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_path(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_path(b"/c"), (&b"/"[..], &b"c"[..]));
    }

    #[test]
    fn temporary_names() {
        assert!(is_temporary(b"x.recreate"));
        assert!(!is_temporary(b"x.recreate2"));
    }

    #[test]
    fn codec_names() {
        let data = vec![b'a'; 10000];
        let framed = crate::compress::compress(&Compression::Lz4, &data);
        assert_eq!(stored_codec(&framed), "lz4");
        assert_eq!(decided_codec(&Compression::Lz4, &data), "lz4");
        let framed = crate::compress::compress(&Compression::None, &data);
        assert_eq!(stored_codec(&framed), "none");
        let auto = Compression::Auto(Box::new(Compression::Zstd(3)));
        assert_eq!(decided_codec(&auto, &data), "zstd");
    }
}
