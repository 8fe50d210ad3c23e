//! The item-stream unpacker (spec §6.3): bytes split over chunks at places the input chooses.
//! First byte: chunk length (1..=256); the rest is the stream.
#![no_main]
use hoard::archive::stream::ItemStreamReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let step = first as usize + 1;
    let mut r = ItemStreamReader::new();
    for chunk in rest.chunks(step) {
        r.feed(chunk);
        loop {
            match r.next_item() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = r.finish();
});
