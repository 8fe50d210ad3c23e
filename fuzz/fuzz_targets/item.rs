//! One item of an item stream (spec §6.3) decoded from msgpack.
#![no_main]
use hoard::archive::item::Item;
use hoard::msgpack::{decode_all, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode_all(data, Limits::UNLIMITED) {
        if let Ok(item) = Item::from_value(&v) {
            let _ = item.reported_size();
            let _ = item.file_type();
            let mut out = Vec::new();
            item.pack_into(&mut out);
        }
    }
});
