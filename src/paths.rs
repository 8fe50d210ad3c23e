//! Where borg keeps client state: base, config, cache, security and keys directories.
