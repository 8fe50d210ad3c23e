//! The job configuration of `hoard run` (YAML).
#![no_main]
use hoard::automation::config::parse;
use hoard::cli::cmd_run::ParseOnly;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for for_init in [false, true] {
        let _ = parse(
            text,
            Path::new("/nonexistent/hoard-fuzz/job"),
            Path::new("/nonexistent/hoard-fuzz/job/config.yaml"),
            for_init,
            &ParseOnly,
        );
    }
});
