//! The client-side security directory (spec §4.8).
