//! File contents: reading + chunking + hashing ([`HashingChunker`], which yields
//! [`HashedChunk`]s), storing ([`Sink::store_chunk`]), and borg's `process_file` /
//! `process_pipe` logic around them (files cache, part files at checkpoints, the
//! "changed while we backed it up" check).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

use crate::archive::item::{ChunkRef, Item, S_IFMT, S_IFREG};
use crate::cache::{FileStat, OpStats};
use crate::chunker::{Chunk, ChunkKind, Chunker};
use crate::crypto::Key;
use crate::platform::fs::Stat;

use super::error::BackupError;
use super::{meta, Backup, CreateOptions, Sink};

/// A chunk of file content with its id, ready to be stored.
#[derive(Debug)]
pub struct HashedChunk {
    /// `id_hash(data)`.
    pub id: [u8; 32],
    /// The plaintext.
    pub data: Vec<u8>,
}

/// Reads, chunks and hashes a stream. All-zero chunks of a length seen before reuse the id.
pub struct HashingChunker<'k, R: Read> {
    chunker: Chunker<R>,
    key: &'k Key,
    zero_ids: &'k mut HashMap<usize, [u8; 32]>,
}

impl<R: Read> HashingChunker<'_, R> {
    fn hash(&mut self, chunk: Chunk) -> HashedChunk {
        let id = match chunk.kind {
            ChunkKind::Data => self.key.id_hash(&chunk.data),
            ChunkKind::AllZero | ChunkKind::Hole => {
                let key = self.key;
                *self
                    .zero_ids
                    .entry(chunk.data.len())
                    .or_insert_with(|| key.id_hash(&chunk.data))
            }
        };
        HashedChunk {
            id,
            data: chunk.data,
        }
    }
}

impl<'k, R: Read> HashingChunker<'k, R> {
    /// Wraps a chunker that is already set up (e.g. a sparse one).
    pub fn from_chunker(
        chunker: Chunker<R>,
        key: &'k Key,
        zero_ids: &'k mut HashMap<usize, [u8; 32]>,
    ) -> Self {
        HashingChunker {
            chunker,
            key,
            zero_ids,
        }
    }
}

impl<R: Read> Iterator for HashingChunker<'_, R> {
    type Item = std::io::Result<HashedChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.chunker.next()? {
            Ok(chunk) => Some(Ok(self.hash(chunk))),
            Err(e) => Some(Err(e)),
        }
    }
}

impl Sink<'_> {
    /// Stores a chunk unless the repository has it already; counts it in the statistics.
    pub(super) fn store_chunk(&mut self, c: &HashedChunk) -> Result<ChunkRef, BackupError> {
        let mut op = OpStats::default();
        let r = self
            .cache
            .add_chunk(&mut self.opened.store, &c.id, &c.data, &mut op)?;
        self.stats.add_op(&op);
        Ok(r)
    }

    /// Adds a reference to a stored chunk (files-cache hit).
    fn incref(&mut self, id: &[u8; 32]) -> Option<ChunkRef> {
        let mut op = OpStats::default();
        let r = self.cache.chunk_incref(id, &mut op)?;
        self.stats.add_op(&op);
        Some(r)
    }

    /// Writes a part item for the chunks since `from` and a checkpoint (borg's
    /// `write_part_file`); returns the new `from` and part number.
    pub(super) fn write_part(
        &mut self,
        item: &Item,
        from: usize,
        number: u32,
        opts: &CreateOptions,
    ) -> Result<(usize, u32), BackupError> {
        let mut part = item.clone();
        let chunks: Vec<ChunkRef> = item
            .chunks
            .as_deref()
            .map(|c| c[from..].to_vec())
            .unwrap_or_default();
        part.size = Some(chunks.iter().map(|c| c.size as u64).sum());
        part.chunks = Some(chunks);
        part.path
            .extend_from_slice(format!(".borg_part_{number}").as_bytes());
        part.part = Some(number);
        let len = item.chunks.as_ref().map_or(0, Vec::len);
        self.add_item(&part)?;
        self.write_checkpoint(opts)?;
        Ok((len, number + 1))
    }

    pub(super) fn checkpoint_due(&self, opts: &CreateOptions) -> bool {
        opts.checkpoint_interval > 0
            && self.last_checkpoint.elapsed().as_secs_f64() > opts.checkpoint_interval as f64
    }
}

/// A files-cache answer: status letter, the chunks of an unchanged file, path hash, state.
type Lookup = (char, Option<Vec<ChunkRef>>, [u8; 32], FileStat);

impl Backup<'_, '_> {
    /// Chunks and stores a stream into `item.chunks` (borg's `process_file_chunks`), writing
    /// part files and checkpoints when the interval has passed.
    pub(super) fn process_file_chunks<R: Read>(
        &mut self,
        item: &mut Item,
        reader: R,
    ) -> Result<(), BackupError> {
        let chunker = Chunker::new(reader, &self.opts.chunker_params, self.seed())
            .map_err(|e| BackupError::Other(e.to_string()))?;
        self.process_chunks(item, chunker)
    }

    /// The key's chunk seed (0 without a repository).
    fn seed(&self) -> u32 {
        self.sink.as_ref().map_or(0, |s| s.key.chunk_seed())
    }

    /// Like [`Backup::process_file_chunks`] for a regular file; with `--sparse` and the fixed
    /// chunker, holes are found with `SEEK_HOLE` and not read (borg's sparse chunking).
    fn process_regular_file(&mut self, item: &mut Item, file: &File) -> Result<(), BackupError> {
        if !self.opts.sparse {
            return self.process_file_chunks(item, file);
        }
        let owned = file
            .try_clone()
            .map_err(|e| BackupError::io("read", &e, None))?;
        let chunker = Chunker::new_sparse(owned, &self.opts.chunker_params, self.seed())
            .map_err(|e| BackupError::Other(e.to_string()))?;
        self.process_chunks(item, chunker)
    }

    /// Hashes and stores the chunks of one file into `item.chunks`, with checkpoints.
    fn process_chunks<R: Read>(
        &mut self,
        item: &mut Item,
        chunker: Chunker<R>,
    ) -> Result<(), BackupError> {
        self.settle()?;
        let opts = self.opts;
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let key = sink.key.clone();
        let mut zero_ids = std::mem::take(&mut sink.zero_ids);
        let result = (|| {
            let chunker = HashingChunker::from_chunker(chunker, &key, &mut zero_ids);
            item.chunks = Some(Vec::new());
            let (mut from, mut part) = (0usize, 1u32);
            for hashed in chunker {
                let hashed = hashed.map_err(|e| BackupError::io("read", &e, None))?;
                let Some(sink) = self.sink.as_mut() else {
                    break;
                };
                let r = sink.store_chunk(&hashed)?;
                if let Some(c) = item.chunks.as_mut() {
                    c.push(r);
                }
                if opts.progress {
                    let stats = sink.stats;
                    self.reporter.progress(&stats, Some(&item.path));
                }
                let Some(sink) = self.sink.as_mut() else {
                    break;
                };
                (from, part) =
                    super::interrupt::after_chunk(sink, self.reporter, item, (from, part), opts)?;
            }
            if part > 1 {
                if let Some(sink) = self.sink.as_mut() {
                    finish_parts(sink, item, from, part, opts)?;
                }
            }
            Ok(())
        })();
        if let Some(sink) = self.sink.as_mut() {
            sink.zero_ids = zero_ids;
        }
        result
    }

    /// borg's `process_file`: a regular file, or a special file with `--read-special`.
    /// Returns the status still to print (None when already printed).
    pub(super) fn process_file(
        &mut self,
        path: &[u8],
        st: &Stat,
        flags: libc::c_int,
    ) -> Result<Option<char>, BackupError> {
        let name = super::walk::basename(path);
        let file = super::walk::open_entry(self.entry_dir, path, flags).map_err(|e| match e {
            e if e.errno().is_some() => BackupError::platform("open", &e, Some(&name)),
            e => BackupError::Other(e.to_string()),
        })?;
        let st = super::walk::update_check(st, &file)?;
        self.process_opened_file(path, &st, file)
    }

    /// The rest of [`Backup::process_file`] once the file is open; `st` is its `fstat`.
    pub(super) fn process_opened_file(
        &mut self,
        path: &[u8],
        st: &Stat,
        file: File,
    ) -> Result<Option<char>, BackupError> {
        let fs_path = super::walk::os_path(path);
        let st = *st;
        let (mut item, mut status, hardlinked, master) = self.create_helper(path, &st, None, true);
        let special = !st.is_file();
        if self.pipeline.is_some() && self.sink.is_some() && !special && !hardlinked {
            return self.process_file_parallel(path, &st, file, item);
        }
        meta::simple_attrs(&mut item, &st, &self.opts.meta);
        if special {
            item.mode = S_IFREG | (item.mode & !S_IFMT);
        }
        if !hardlinked || master {
            self.file_content(
                &mut item,
                path,
                &st,
                special,
                &file,
                hardlinked,
                &mut status,
            )?;
        }
        let notes = meta::ext_attrs(
            &mut item,
            &fs_path,
            &st,
            Some(file.as_raw_fd()),
            &self.opts.meta,
        )?;
        for n in notes {
            self.note(&n);
        }
        if let Some(chunks) = &item.chunks {
            item.size = Some(chunks.iter().map(|c| c.size as u64).sum());
        }
        self.finish_item(item, &st, master)?;
        Ok(status)
    }

    /// The files-cache part of `process_file`: the status letter, the chunks of an unchanged
    /// file (references taken), the path hash and the state to memorise.
    fn lookup_file(&mut self, path: &[u8], st: &Stat, special: bool) -> Option<Lookup> {
        let sink = self.sink.as_mut()?;
        let fstat = FileStat {
            inode: st.ino,
            size: st.size.max(0) as u64,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
        };
        let hashed_path = super::error::join(&self.cwd, path);
        let path_hash = sink.key.id_hash(if path.starts_with(b"/") {
            path
        } else {
            &hashed_path
        });
        let mut chunks = None;
        let letter = if special {
            'A'
        } else if let Some(ids) = sink.cache.file_lookup(&path_hash, &fstat) {
            let refs: Option<Vec<ChunkRef>> = ids.iter().map(|id| sink.incref(id)).collect();
            chunks = refs;
            if chunks.is_some() {
                'U'
            } else {
                'M'
            }
        } else if sink.cache.file_known(&path_hash) {
            'M'
        } else {
            'A'
        };
        Some((letter, chunks, path_hash, fstat))
    }

    /// `process_file` with worker threads: the file is read, chunked, hashed, compressed
    /// and encrypted by the workers; its item is written in walk order later.
    fn process_file_parallel(
        &mut self,
        path: &[u8],
        st: &Stat,
        file: File,
        mut item: Item,
    ) -> Result<Option<char>, BackupError> {
        let fs_path = super::walk::os_path(path);
        meta::simple_attrs(&mut item, st, &self.opts.meta);
        let Some((letter, chunks, path_hash, fstat)) = self.lookup_file(path, st, false) else {
            return Ok(None);
        };
        self.status(letter, path);
        item.hardlink_master = Some(false);
        let notes = meta::ext_attrs(
            &mut item,
            &fs_path,
            st,
            Some(file.as_raw_fd()),
            &self.opts.meta,
        )?;
        for n in notes {
            self.note(&n);
        }
        if let Some(c) = chunks {
            item.size = Some(c.iter().map(|r| r.size as u64).sum());
            item.chunks = Some(c);
            if let Some(sink) = self.sink.as_mut() {
                sink.stats.nfiles += 1;
            }
            self.finish_item(item, st, false)?;
            return Ok(None);
        }
        let pending = super::pipeline::PendingParts {
            item,
            path: path.to_vec(),
            path_hash,
            fstat,
            before: super::ChangeStamp::of(st),
        };
        if !self.queue_file(file, pending) {
            return Err(BackupError::Fatal(super::CommandError::new(
                "internal error: the worker threads are gone",
            )));
        }
        Ok(None)
    }

    /// Writes everything the workers still have queued, so that the next step runs in order;
    /// a repository failure met meanwhile ends the run.
    fn settle(&mut self) -> Result<(), BackupError> {
        self.drain();
        match self.fatal.take() {
            Some(e) => Err(BackupError::Fatal(e)),
            None => Ok(()),
        }
    }

    /// The content part of `process_file`: files cache, status, reading, change check.
    #[allow(clippy::too_many_arguments)]
    fn file_content(
        &mut self,
        item: &mut Item,
        path: &[u8],
        st: &Stat,
        special: bool,
        file: &File,
        hardlinked: bool,
        status: &mut Option<char>,
    ) -> Result<(), BackupError> {
        let Some((letter, chunks, path_hash, fstat)) = self.lookup_file(path, st, special) else {
            return Ok(());
        };
        self.status(letter, path);
        *status = None;
        item.hardlink_master = Some(hardlinked);
        if let Some(c) = chunks {
            item.chunks = Some(c);
        } else {
            self.process_regular_file(item, file)?;
            let st2 = crate::platform::fs::fstat(file.as_raw_fd())
                .map_err(|e| BackupError::platform("fstat2", &e, None))?;
            let changed = !special
                && self
                    .opts
                    .files_changed
                    .changed(super::ChangeStamp::of(st), super::ChangeStamp::of(&st2));
            if changed {
                *status = Some('C');
            } else if !special {
                let ids = item
                    .chunks
                    .as_ref()
                    .map(|c| c.iter().map(|r| r.id).collect())
                    .unwrap_or_default();
                if let Some(sink) = self.sink.as_mut() {
                    sink.cache.memorize_file(&path_hash, &fstat, ids);
                }
            }
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.stats.nfiles += 1;
        }
        Ok(())
    }

    /// stdin stored as a regular file.
    pub(super) fn process_stdin(&mut self) -> Result<(), BackupError> {
        let stdin = std::io::stdin();
        self.process_pipe(stdin.lock())
    }

    /// borg's `process_pipe`: a stream stored as a regular file named `--stdin-name`.
    pub(super) fn process_pipe<R: Read>(&mut self, reader: R) -> Result<(), BackupError> {
        let s = &self.opts.stdin;
        let uid = crate::platform::users::user2uid(s.user.as_bytes()).ok_or_else(|| {
            BackupError::Fatal(super::CommandError::new(format!(
                "no such user: {}",
                s.user
            )))
        })?;
        let gid = crate::platform::users::group2gid(s.group.as_bytes()).ok_or_else(|| {
            BackupError::Fatal(super::CommandError::new(format!(
                "no such group: {}",
                s.group
            )))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            * 1_000_000_000;
        let mut item = Item {
            path: s.name.as_bytes().to_vec(),
            mode: (s.mode & 0o107777) | S_IFREG,
            uid,
            gid,
            user: Some(s.user.as_bytes().to_vec()),
            group: Some(s.group.as_bytes().to_vec()),
            mtime: now,
            atime: Some(now),
            ctime: Some(now),
            ..Item::default()
        };
        self.process_file_chunks(&mut item, reader)?;
        item.size = Some(
            item.chunks
                .as_ref()
                .map_or(0, |c| c.iter().map(|r| r.size as u64).sum()),
        );
        item.hardlink_master = Some(false);
        if let Some(sink) = self.sink.as_mut() {
            sink.stats.nfiles += 1;
            sink.add_item(&item)?;
        }
        Ok(())
    }
}

/// After the last chunk of a file that got part files: the final part, then references of
/// the complete file counted as parts (borg's `process_file_chunks` tail).
pub(super) fn finish_parts(
    sink: &mut Sink<'_>,
    item: &Item,
    from: usize,
    part: u32,
    opts: &CreateOptions,
) -> Result<(), BackupError> {
    let mut part = part;
    let total = item.chunks.as_ref().map_or(0, Vec::len);
    if total > from {
        (_, part) = sink.write_part(item, from, part, opts)?;
    }
    for c in item.chunks.iter().flatten() {
        let mut op = OpStats::default();
        if sink.cache.chunk_incref(&c.id, &mut op).is_some() {
            sink.stats.osize_parts += op.osize;
            sink.stats.csize_parts += op.csize;
        }
    }
    sink.stats.nfiles_parts += (part - 1) as u64;
    Ok(())
}
