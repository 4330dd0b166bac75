//! The packet-type peek on arbitrary main frames agrees with a full decode whenever both succeed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use xgate_protocol::{peek_packet_type, Flags, Frame, PacketReader};

fuzz_target!(|data: &[u8]| {
    let [flags, comp, payload @ ..] = data else {
        return;
    };
    if payload.is_empty() {
        return;
    }
    let flags = Flags::from_bits(flags & 0x19);
    let frame = Frame::new(flags, *comp, 0, Bytes::copy_from_slice(payload));
    let peeked = peek_packet_type(&frame);
    let mut reader = PacketReader::new(1 << 22);
    if let Ok(Some(packet)) = reader.push(frame) {
        if let (Ok(p), Ok(full)) = (peeked, packet.packet_type()) {
            assert_eq!(p, full);
        }
    }
});
