//! The repository `config` file (spec §2.2), and the typed reads the repository makes of it.
#![no_main]
use hoard::repo::config::{parse_bool, parse_file_size, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_file_size(text);
    let _ = parse_bool(text);
    if let Ok(c) = Config::parse(text) {
        for key in [
            "version",
            "segments_per_dir",
            "max_segment_size",
            "storage_quota",
            "additional_free_space",
        ] {
            let _ = c.get_int("repository", key);
            if let Some(v) = c.get("repository", key) {
                let _ = parse_file_size(v);
            }
        }
        let _ = c.get_bool("repository", "append_only");
        let _ = c.get("repository", "id").map(hex_len);
        let text2 = c.to_text();
        assert!(Config::parse(&text2).is_ok(), "re-parse of {text2:?}");
    }
});

fn hex_len(s: &str) -> usize {
    s.len()
}
