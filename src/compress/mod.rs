//! Compression codecs with borg's 2-byte headers (spec §5). Owned by the compress layer.
