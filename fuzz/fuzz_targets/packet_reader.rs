//! Frames cut from arbitrary bytes go through the packet reader: decompression, raw-chunk
//! reassembly and decoding with the encoder the flags name. Never panics; packets are lists.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use xgate_protocol::{FrameCodec, PacketReader};

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec::new(1 << 20);
    let mut reader = PacketReader::new(1 << 22);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        match reader.push(frame) {
            Ok(Some(packet)) => {
                assert!(!packet.0.is_empty());
                assert_eq!(reader.pending_chunks(), 0);
            }
            Ok(None) => assert!(reader.pending_chunks() <= 3),
            Err(_) => {}
        }
    }
});
