//! `key import --paper`: the lines of a paper key (spec §4.4).
#![no_main]
use hoard::crypto::import_paper;
use libfuzzer_sys::fuzz_target;

/// The repository id of the seed (`fuzz/seeds/paper`: the repokey test vector).
const REPO_ID: [u8; 32] = [
    0xcc, 0x25, 0x4d, 0xda, 0xd6, 0x1e, 0xa6, 0xe4, 0x04, 0x0f, 0x84, 0x35, 0x15, 0x94, 0xed, 0xe4,
    0x55, 0xd8, 0xe3, 0xee, 0x7a, 0xf2, 0x1b, 0x4e, 0x58, 0x24, 0xf7, 0x41, 0x48, 0x51, 0x9d, 0xb7,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().map(str::to_string).collect::<Vec<_>>();
    let _ = import_paper(&REPO_ID, lines.into_iter());
});
