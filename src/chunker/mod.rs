//! Content-defined (buzhash) and fixed chunkers, bit-exact with borg (spec §6).
