//! S3 responses (ListObjectsV2 pages, error bodies, CreateMultipartUpload), as the object
//! store client parses them.
#![no_main]
use hoard::repo::objstore::{error_body_text, parse_list_page, parse_upload_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let _ = parse_list_page(&body, "repo/");
    let _ = parse_list_page(&body, "");
    let _ = error_body_text(404, &body);
    let _ = error_body_text(403, &body);
    let _ = parse_upload_id(&body);
});
