//! The item stream: items packed back to back, cut with the item chunker
//! (`ITEMS_CHUNKER_PARAMS` and the key's seed) and stored as ordinary chunks (FORMAT.md §6.5).
//! Reading feeds every chunk into one streaming decoder, since items span chunk boundaries.

use crate::chunker::{self, ITEMS_CHUNKER_PARAMS};
use crate::msgpack::{Limits, StreamDecoder};

use super::item::Item;
use super::ArchiveError;

/// Stores one item-stream chunk and returns its id (deduplicating and counting references).
pub type StoreChunk<'a> = dyn FnMut(&[u8]) -> Result<[u8; 32], ArchiveError> + 'a;

/// Flush threshold of the item buffer (borg: 8 MiB).
pub const ITEM_BUFFER_FLUSH: usize = 8 * 1024 * 1024;

/// Collects items and stores the stream in chunks through a caller-supplied `store` function,
/// which returns the chunk id (it deduplicates and counts references; the stream does not).
pub struct ItemStreamWriter {
    buffer: Vec<u8>,
    seed: u32,
    ids: Vec<[u8; 32]>,
}

impl ItemStreamWriter {
    /// A writer chunking with `seed` (the key's chunk seed).
    pub fn new(seed: u32) -> Self {
        ItemStreamWriter {
            buffer: Vec::new(),
            seed,
            ids: Vec::new(),
        }
    }

    /// Appends an item; stores full chunks once the buffer is large.
    pub fn add(&mut self, item: &Item, store: &mut StoreChunk<'_>) -> Result<(), ArchiveError> {
        item.pack_into(&mut self.buffer);
        if self.buffer.len() > ITEM_BUFFER_FLUSH {
            self.flush(false, store)?;
        }
        Ok(())
    }

    /// Stores the buffered stream: every chunk but the last (kept for the next round),
    /// or everything when `final_flush`.
    pub fn flush(
        &mut self,
        final_flush: bool,
        store: &mut StoreChunk<'_>,
    ) -> Result<(), ArchiveError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let cuts = chunker::cut_points(&ITEMS_CHUNKER_PARAMS, self.seed, &self.buffer)
            .map_err(|e| ArchiveError::Corrupt(format!("item chunker: {e}")))?;
        let mut start = 0;
        let keep_last = !final_flush && cuts.len() > 1;
        let stop = if keep_last {
            cuts.len() - 1
        } else {
            cuts.len()
        };
        for &end in &cuts[..stop] {
            self.ids.push(store(&self.buffer[start..end])?);
            start = end;
        }
        self.buffer.drain(..start);
        Ok(())
    }

    /// Stores what is left and returns the ids of all item-stream chunks, in order.
    pub fn finish(mut self, store: &mut StoreChunk<'_>) -> Result<Vec<[u8; 32]>, ArchiveError> {
        self.flush(true, store)?;
        Ok(self.ids)
    }

    /// Ids stored so far (for checkpoints).
    pub fn ids(&self) -> &[[u8; 32]] {
        &self.ids
    }
}

/// Decodes items from the plaintexts of the item-stream chunks, fed in order. Decoding is
/// incremental (each byte once) and each item is bounded by [`Limits::ITEM`]; an error names
/// the item-stream chunk (index in the archive's `items` list) and the offset in it.
pub struct ItemStreamReader {
    decoder: StreamDecoder,
    /// Stream offset at which each fed chunk starts.
    starts: Vec<u64>,
    /// Bytes fed so far.
    fed: u64,
    /// "archive NAME: " for messages, or empty.
    archive: String,
    /// Stream offset where the value being decoded starts.
    value_start: u64,
    /// Stream offsets of the last item returned.
    last_span: (u64, u64),
    /// Index (in the archive's `items`) of the first chunk fed, and the bytes of it skipped.
    first_chunk: usize,
    first_skip: u64,
}

impl Default for ItemStreamReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ItemStreamReader {
    /// An empty reader.
    pub fn new() -> Self {
        ItemStreamReader {
            decoder: StreamDecoder::new(Limits::ITEM),
            starts: Vec::new(),
            fed: 0,
            archive: String::new(),
            value_start: 0,
            last_span: (0, 0),
            first_chunk: 0,
            first_skip: 0,
        }
    }

    /// A reader that starts at item-stream chunk `first_chunk`, of which the first `skip`
    /// bytes are not fed (reading from an item boundary found in a path index): messages and
    /// [`ItemStreamReader::last_item_position`] count chunks and offsets as in the whole stream.
    pub fn starting_at(mut self, first_chunk: usize, skip: u64) -> Self {
        self.first_chunk = first_chunk;
        self.first_skip = skip;
        self
    }

    /// Chunk index and offset in that chunk of a stream offset.
    fn chunk_of(&self, offset: u64) -> (usize, u64) {
        let k = self
            .starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(k).copied().unwrap_or(0);
        let skip = if k == 0 { self.first_skip } else { 0 };
        (k + self.first_chunk, offset - start.min(offset) + skip)
    }

    /// Where the last item returned starts (chunk, offset in it) and the chunk it ends in.
    pub fn last_item_position(&self) -> ((usize, u64), usize) {
        let (start, end) = self.last_span;
        (self.chunk_of(start), self.chunk_of(end.saturating_sub(1)).0)
    }

    /// A reader whose errors name the archive.
    pub fn for_archive(name: &[u8]) -> Self {
        ItemStreamReader {
            archive: format!("archive {}: ", String::from_utf8_lossy(name)),
            ..Self::new()
        }
    }

    /// Feeds the next chunk's plaintext.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.starts.push(self.fed);
        self.fed += chunk.len() as u64;
        self.decoder.feed(chunk);
    }

    /// "item-stream chunk K, offset O" for a stream offset.
    fn position(&self, offset: u64) -> String {
        let (k, o) = self.chunk_of(offset);
        format!("item-stream chunk {k}, offset {o}")
    }

    /// The next complete item, if one is buffered.
    pub fn next_item(&mut self) -> Result<Option<Item>, ArchiveError> {
        // Items are built straight from their checked bytes (no `Value` tree in between).
        match self.decoder.next_encoded() {
            Ok(Some(bytes)) => {
                let item = Item::decode(bytes);
                // A huge item (a file of millions of chunks) must not be held twice.
                self.decoder.release_consumed();
                self.last_span = (self.value_start, self.decoder.offset());
                self.value_start = self.decoder.offset();
                item.map(Some)
                    .map_err(|e| ArchiveError::Corrupt(format!("invalid item in item stream: {e}")))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(ArchiveError::Corrupt(format!(
                "{}item stream: {e} ({})",
                self.archive,
                self.position(self.decoder.offset())
            ))),
        }
    }

    /// Call after the last chunk: an error if bytes of an incomplete item remain.
    pub fn finish(&self) -> Result<(), ArchiveError> {
        if self.decoder.pending() > 0 {
            return Err(ArchiveError::Corrupt(format!(
                "{}item stream ends with {} bytes of an incomplete item",
                self.archive,
                self.decoder.pending()
            )));
        }
        Ok(())
    }
}
