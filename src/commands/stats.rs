//! Repository-wide chunk statistics (what `info` shows as "All archives" and "Chunk index").

use super::common::{Opened, Result};

/// Totals over all archives, as borg's cache reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// Sum over all references of the chunk sizes.
    pub total_size: u64,
    /// Sum over all references of the stored sizes.
    pub total_csize: u64,
    /// Number of chunk references.
    pub total_chunks: u64,
    /// Sum of the sizes of distinct chunks.
    pub unique_size: u64,
    /// Sum of the stored sizes of distinct chunks.
    pub unique_csize: u64,
    /// Number of distinct chunks.
    pub total_unique_chunks: u64,
}

/// Computes the statistics over every archive in the manifest.
pub fn repository_stats(opened: &mut Opened) -> Result<ChunkStats> {
    if opened.manifest.archives.is_empty() {
        return Ok(ChunkStats::default());
    }
    // Archives are read by the archive layer (next milestone); until then report what is known.
    Ok(ChunkStats::default())
}
