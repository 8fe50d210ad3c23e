//! Archive metadata objects (FORMAT.md §7.3) and reading an archive's items back.

use crate::chunker::ChunkerParams;
use crate::msgpack::Value;

use super::item::Item;
use super::stream::ItemStreamReader;
use super::{ArchiveError, KeyedRepository};

/// The archive metadata object.
#[derive(Debug, Clone, Default)]
pub struct ArchiveMeta {
    /// `version`: 1.
    pub version: i64,
    /// `name`
    pub name: Vec<u8>,
    /// `items`: item-stream chunk ids in order.
    pub items: Vec<[u8; 32]>,
    /// `cmdline`: argv of the creating command.
    pub cmdline: Vec<Vec<u8>>,
    /// `time`: start, UTC `%Y-%m-%dT%H:%M:%S.%f`.
    pub time: String,
    /// `time_end`
    pub time_end: Option<String>,
    /// `hostname`
    pub hostname: Option<Vec<u8>>,
    /// `username`
    pub username: Option<Vec<u8>>,
    /// `cwd`: the working directory of the creating process (borg 1.4; absent before).
    pub cwd: Option<Vec<u8>>,
    /// `comment`
    pub comment: Vec<u8>,
    /// `chunker_params` as stored (buzhash 5-tuple, fixed 3-tuple, legacy 4-tuple).
    pub chunker_params: Option<Value>,
    /// `size`: original bytes of non-part files.
    pub size: Option<u64>,
    /// `csize`
    pub csize: Option<u64>,
    /// `nfiles`
    pub nfiles: Option<u64>,
    /// `size_parts`
    pub size_parts: Option<u64>,
    /// `csize_parts`
    pub csize_parts: Option<u64>,
    /// `nfiles_parts`
    pub nfiles_parts: Option<u64>,
    /// `recreate_cmdline`, kept when present.
    pub recreate_cmdline: Option<Vec<Vec<u8>>>,
}

fn byte_list(v: &Value) -> Option<Vec<Vec<u8>>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_bytes().map(<[u8]>::to_vec))
            .collect()
    })
}

impl ArchiveMeta {
    /// The msgpack map (without TAM; the key adds it when packing).
    pub fn to_value(&self) -> Value {
        let mut m: Vec<(&str, Value)> = vec![
            ("version", Value::int(self.version.max(1))),
            ("name", Value::raw(&self.name)),
            (
                "items",
                Value::Array(self.items.iter().map(Value::raw).collect()),
            ),
            (
                "cmdline",
                Value::Array(self.cmdline.iter().map(Value::raw).collect()),
            ),
            ("time", Value::raw(&self.time)),
            ("comment", Value::raw(&self.comment)),
        ];
        if let Some(t) = &self.time_end {
            m.push(("time_end", Value::raw(t)));
        }
        if let Some(h) = &self.hostname {
            m.push(("hostname", Value::raw(h)));
        }
        if let Some(u) = &self.username {
            m.push(("username", Value::raw(u)));
        }
        if let Some(c) = &self.cwd {
            m.push(("cwd", Value::raw(c)));
        }
        if let Some(c) = &self.chunker_params {
            m.push(("chunker_params", c.clone()));
        }
        for (k, v) in [
            ("size", self.size),
            ("csize", self.csize),
            ("nfiles", self.nfiles),
            ("size_parts", self.size_parts),
            ("csize_parts", self.csize_parts),
            ("nfiles_parts", self.nfiles_parts),
        ] {
            if let Some(v) = v {
                m.push((k, Value::int(v)));
            }
        }
        if let Some(r) = &self.recreate_cmdline {
            m.push((
                "recreate_cmdline",
                Value::Array(r.iter().map(Value::raw).collect()),
            ));
        }
        Value::sorted_map(m)
    }

    /// Decodes a metadata map.
    pub fn from_value(v: &Value) -> Result<ArchiveMeta, ArchiveError> {
        let bad = |w: &str| ArchiveError::Corrupt(format!("archive metadata: {w}"));
        let version = v
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("version"))?;
        if version != 1 {
            return Err(ArchiveError::Corrupt(format!(
                "Unknown archive metadata version {version}"
            )));
        }
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("items"))?
            .iter()
            .map(|x| {
                x.as_bytes()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| bad("item id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let get_u = |k: &str| v.get(k).and_then(Value::as_u64);
        Ok(ArchiveMeta {
            version,
            name: v
                .get("name")
                .and_then(Value::as_bytes)
                .ok_or_else(|| bad("name"))?
                .to_vec(),
            items,
            cmdline: v.get("cmdline").and_then(byte_list).unwrap_or_default(),
            time: v
                .get("time")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("time"))?
                .to_string(),
            time_end: v
                .get("time_end")
                .and_then(Value::as_str)
                .map(str::to_string),
            hostname: v
                .get("hostname")
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec),
            username: v
                .get("username")
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec),
            cwd: v.get("cwd").and_then(Value::as_bytes).map(<[u8]>::to_vec),
            comment: v
                .get("comment")
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            chunker_params: v.get("chunker_params").cloned(),
            size: get_u("size"),
            csize: get_u("csize"),
            nfiles: get_u("nfiles"),
            size_parts: get_u("size_parts"),
            csize_parts: get_u("csize_parts"),
            nfiles_parts: get_u("nfiles_parts"),
            recreate_cmdline: v.get("recreate_cmdline").and_then(byte_list),
        })
    }

    /// The chunker parameters, normalised (legacy 4-tuples read as buzhash).
    pub fn chunker_params(&self) -> Option<ChunkerParams> {
        self.chunker_params
            .as_ref()
            .and_then(|v| ChunkerParams::from_msgpack(v).ok())
    }

    /// Loads and authenticates the metadata object `id` (1.2.5+ TAM rules).
    pub fn load(store: &mut KeyedRepository, id: &[u8; 32]) -> Result<ArchiveMeta, ArchiveError> {
        let data = store.get(id, None)?;
        let (value, _verified) = store.key.unpack_and_verify_archive(&data)?;
        Self::from_value(&value)
    }

    /// Packs with a TAM and stores; returns the archive id.
    pub fn store(&self, store: &mut KeyedRepository) -> Result<([u8; 32], usize), ArchiveError> {
        let packed = store
            .key
            .pack_and_authenticate_metadata(self.to_value(), "archive");
        store.put(&packed)
    }
}

/// A run of item-stream chunks to read: from byte `first_offset` of chunk `first` (an item
/// boundary) to the end of chunk `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRun {
    /// First chunk (index in the archive's `items`).
    pub first: usize,
    /// Offset in `first` where an item starts.
    pub first_offset: usize,
    /// Last chunk, inclusive.
    pub last: usize,
}

/// Iterates the items of an archive, fetching item-stream chunks as needed.
pub struct Items<'a> {
    store: &'a mut KeyedRepository,
    ids: Vec<[u8; 32]>,
    next_chunk: usize,
    /// One past the last chunk of the current run (all chunks when reading everything).
    end_chunk: usize,
    /// Bytes of the next chunk to skip (start of a run).
    skip: usize,
    /// Runs still to read; `None` reads the whole stream.
    runs: Option<std::collections::VecDeque<ChunkRun>>,
    name: Vec<u8>,
    reader: ItemStreamReader,
    done: bool,
}

impl<'a> Items<'a> {
    /// Starts reading the items of `meta`.
    pub fn new(store: &'a mut KeyedRepository, meta: &ArchiveMeta) -> Self {
        Items {
            store,
            ids: meta.items.clone(),
            next_chunk: 0,
            end_chunk: meta.items.len(),
            skip: 0,
            runs: None,
            name: meta.name.clone(),
            reader: ItemStreamReader::for_archive(&meta.name),
            done: false,
        }
    }

    /// Reads only the items that lie completely inside the given runs (in order, disjoint,
    /// each starting at an item boundary), as a path index plans them. An item cut off by the
    /// end of a run is not returned.
    pub fn runs(store: &'a mut KeyedRepository, meta: &ArchiveMeta, runs: Vec<ChunkRun>) -> Self {
        let mut items = Items::new(store, meta);
        items.end_chunk = 0;
        items.runs = Some(runs.into());
        items
    }

    /// Access to the object store while iterating (e.g. to fetch file chunks).
    pub fn store(&mut self) -> &mut KeyedRepository {
        self.store
    }

    /// Where the last item returned starts (chunk, offset in it) and the chunk it ends in.
    pub fn last_item_position(&self) -> ((usize, u64), usize) {
        self.reader.last_item_position()
    }

    /// The next item, or None at the end.
    pub fn next_item(&mut self) -> Result<Option<Item>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(item) = self.reader.next_item()? {
                return Ok(Some(item));
            }
            if self.next_chunk >= self.end_chunk {
                let next_run = match self.runs.as_mut() {
                    None => {
                        self.done = true;
                        self.reader.finish()?;
                        return Ok(None);
                    }
                    Some(runs) => runs.pop_front(),
                };
                let Some(run) = next_run.filter(|r| r.first <= r.last && r.last < self.ids.len())
                else {
                    self.done = true;
                    return Ok(None);
                };
                self.reader = ItemStreamReader::for_archive(&self.name)
                    .starting_at(run.first, run.first_offset as u64);
                self.next_chunk = run.first;
                self.end_chunk = run.last + 1;
                self.skip = run.first_offset;
                continue;
            }
            let id = self.ids[self.next_chunk];
            self.next_chunk += 1;
            let data = self.store.get(&id, None)?;
            let skip = std::mem::take(&mut self.skip);
            let part = data.get(skip..).ok_or_else(|| {
                ArchiveError::Corrupt(format!(
                    "item-stream chunk {} is shorter than the path index says",
                    self.next_chunk - 1
                ))
            })?;
            self.reader.feed(part);
        }
    }
}

impl Iterator for Items<'_> {
    type Item = Result<Item, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}
