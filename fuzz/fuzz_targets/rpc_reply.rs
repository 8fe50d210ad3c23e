//! The reply decoder of the RPC client (spec §9): the server's stdout, split into reads at
//! places the input chooses (first byte), decoded with the client's limits and parsed into
//! replies; and the server's stderr lines (log records, §9.6).
#![no_main]
use hoard::msgpack::{Limits, StreamDecoder};
use hoard::repo::remote::logline::parse_remote_line;
use hoard::rpc::parse_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    for line in String::from_utf8_lossy(rest).lines().take(64) {
        let _ = parse_remote_line(line);
    }
    let mut d = StreamDecoder::new(Limits::RPC_CLIENT);
    for piece in rest.chunks(first as usize + 1) {
        d.feed(piece);
        loop {
            match d.next_value() {
                Ok(Some(v)) => {
                    if let Some(r) = parse_reply(v) {
                        if let Err(e) = r.outcome {
                            let _ = e.message();
                            let _ = e.arg_text(0);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
