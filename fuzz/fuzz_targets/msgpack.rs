//! The msgpack decoder under every limit set, whole and as a stream fed in pieces.
#![no_main]
use hoard::msgpack::{decode_all, decode_one, Limits, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for l in [
        Limits::UNLIMITED,
        Limits::MANIFEST,
        Limits::KEY,
        Limits::ARCHIVE,
        Limits::RPC_SERVER,
        Limits::RPC_CLIENT,
    ] {
        if let Ok(v) = decode_all(data, l) {
            let re = v.to_bytes();
            assert!(decode_one(&re, Limits::UNLIMITED).is_ok());
        }
    }
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut d = StreamDecoder::new(Limits::UNLIMITED);
    for chunk in rest.chunks(first as usize + 1) {
        d.feed(chunk);
        loop {
            match d.next_value() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
