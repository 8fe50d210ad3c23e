//! The request decoder of `hoard serve` (spec §9): the byte stream from the client, split into
//! reads at places the input chooses (first byte: read length 1..=256), decoded with the
//! server's limits, parsed into requests and answered by a server with no repository open.
//! `open` is skipped so that no input can make the fuzzer create a repository on disk.
#![no_main]
use hoard::msgpack::{Limits, StreamDecoder};
use hoard::rpc::parse_request;
use hoard::serve::{set_log_level, ServeOptions, Server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    set_log_level(255);
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut server = Server::new(ServeOptions::default());
    let mut d = StreamDecoder::new(Limits::RPC_SERVER);
    for piece in rest.chunks(first as usize + 1) {
        d.feed(piece);
        loop {
            match d.next_value() {
                Ok(Some(v)) => {
                    if let Ok(req) = parse_request(v) {
                        if req.method != "open" {
                            let _ = server.handle(&req);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
