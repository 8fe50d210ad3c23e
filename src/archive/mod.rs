//! Manifest, archive metadata and items (spec §7).
