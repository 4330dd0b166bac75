//! Decodes the captured hellos in a loop, for timing under `perf stat -e task-clock` (CPU time,
//! which a loaded machine distorts less than wall time), beside the Python decoders timed by
//! `scripts/bench-python-decode.py` (which reports CPU time too). See BENCHMARKS.md.
//!
//! ```text
//! perf stat -e task-clock target/release/examples/decode_timing attach-6.5.5
//! ```
//!
//! Prints the iteration count and the min and median wall time of 41 batches; CPU time per
//! decode is perf's task-clock divided by the iteration count.

// A broken fixture should abort the tool.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use xgate_protocol::compression::{decompress, MAX_DECOMPRESSED_SIZE};
use xgate_protocol::PacketEncoder;

const BATCHES: usize = 41;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
    let filter = std::env::args().nth(1).unwrap_or_default();
    for (file, enc) in [
        ("hello-attach-3.1.3.bin", PacketEncoder::Rencode),
        ("hello-attach-6.5.5.bin", PacketEncoder::RencodePlus),
        ("hello-info-6.5.5.bin", PacketEncoder::RencodePlus),
    ] {
        if !file.contains(filter.as_str()) {
            continue;
        }
        let data = std::fs::read(format!("{dir}/{file}")).unwrap();
        let plain = decompress(data[2], &data[8..], MAX_DECOMPRESSED_SIZE).unwrap();
        let iters = (2_000_000 / plain.len()).max(20);
        let mut samples = Vec::with_capacity(BATCHES);
        for _ in 0..BATCHES {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(enc.decode_bytes(std::hint::black_box(&plain)).unwrap());
            }
            samples.push(t.elapsed().as_nanos() as f64 / iters as f64);
        }
        samples.sort_by(f64::total_cmp);
        println!("ITERS,{}", iters * BATCHES);
        println!(
            "{file:28} wall min {:9.0} ns  median {:9.0} ns",
            samples[0],
            samples[BATCHES / 2]
        );
    }
}
