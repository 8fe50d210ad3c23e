//! Placeholders and `--format` strings (Python `str.format` with borg's keys), and archive
//! names built from them, with fixed placeholder values.
#![no_main]
use hoard::placeholders::{
    format_line, replace_placeholders_with, validate_archive_name_with, FormatValue,
    PlaceholderValues,
};
use libfuzzer_sys::fuzz_target;

fn values() -> PlaceholderValues {
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    PlaceholderValues {
        hostname: "host".into(),
        fqdn: "host.example.org".into(),
        user: "user".into(),
        pid: 4242,
        uuid4: "0b5e8c6a-8f5e-4b8e-9a43-8d2f0c6f1a11".into(),
        utcnow: t,
        local_offset: chrono::FixedOffset::east_opt(3600)
            .unwrap_or(chrono::FixedOffset::east_opt(0).unwrap()),
        local_zone: "CET".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let v = values();
    let _ = replace_placeholders_with(text, &v);
    let _ = validate_archive_name_with(text, &v);
    let lookup = |k: &str| match k {
        "path" => Some(FormatValue::Str("home/user/file".into())),
        "size" => Some(FormatValue::Int(12345)),
        "neg" => Some(FormatValue::Int(-7)),
        "ratio" => Some(FormatValue::Float(0.25)),
        _ => v.get(k),
    };
    let _ = format_line(text, &lookup);
});
