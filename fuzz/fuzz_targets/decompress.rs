//! One target for every decompressor: the first byte selects lz4, zlib, brotli or zstd (and the
//! level nibble), the second the output cap; the rest is the payload. Output never exceeds the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_protocol::compression::{decompress, decompress_prefix};

fuzz_target!(|data: &[u8]| {
    let [sel, cap, payload @ ..] = data else {
        return;
    };
    let algo = [0x10u8, 0x00, 0x40, 0x80][usize::from(sel & 3)];
    let byte = algo | ((sel >> 2) & 0x0F).max(1);
    let max = (usize::from(*cap) + 1) * 4096;
    if let Ok(out) = decompress(byte, payload, max) {
        assert!(out.len() <= max);
    }
    let _ = decompress_prefix(byte, payload, 64, max);
    let _ = decompress(*sel, payload, max);
});
