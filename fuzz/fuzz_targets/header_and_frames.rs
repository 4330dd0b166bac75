//! Splits an arbitrary byte stream into frames with the codec, fed in pieces of varying size.
//! Every frame that comes out must match its header, and re-encoding it must give back its bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use xgate_protocol::{FrameCodec, Header};

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut codec = FrameCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert_eq!(frame.header.length as usize, frame.payload.len());
                    assert!(frame.header.validate(1 << 20).is_ok());
                    let mut out = BytesMut::new();
                    codec.encode(&frame, &mut out).expect("re-encode");
                    let start = consumed;
                    consumed += out.len();
                    assert_eq!(&out[..], &stream[start..consumed]);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    if let Some(head) = stream.first_chunk::<8>() {
        if let Ok(h) = Header::parse(head) {
            assert_eq!(&h.to_bytes(), head);
        }
    }
});
