//! The WebSocket frame decoder on arbitrary bytes: never panics, never hands out more than
//! asked, never accepts a frame over the limit, and payload bytes come out in order.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../actors/src/upgrade/frame.rs"]
mod frame;

use frame::{parse_header, Decoder, Event};

fuzz_target!(|data: &[u8]| {
    let [limit, max, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit).max(1);
    let max_payload = u64::from(*max) * 64;
    if let Ok(Some(h)) = parse_header(rest, max_payload) {
        assert!(h.len <= max_payload);
        assert!((2..=14).contains(&h.header_len));
    }
    // Feed the input in pieces of `limit` bytes, as a socket would.
    let mut d = Decoder::new(max_payload);
    let mut input = BytesMut::new();
    let mut total = 0usize;
    for piece in rest.chunks(limit) {
        input.extend_from_slice(piece);
        loop {
            match d.next(&mut input, limit) {
                Ok(Event::Data(b)) => {
                    assert!(!b.is_empty() && b.len() <= limit);
                    total += b.len();
                }
                Ok(Event::NeedMore) => break,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
    assert!(total <= rest.len());
});
