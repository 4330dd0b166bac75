//! Criterion benchmarks of xgate-protocol: frame splitting, hello decode/encode, lz4.
//!
//! Run with `CARGO_TARGET_DIR=/work/target-proto cargo bench -p xgate-protocol`.
//! Figures and the comparison with xpra's own decoders are in BENCHMARKS.md.

// Benchmarks abort on a broken fixture; that is the right outcome.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_main, BatchSize, Criterion, Throughput};
use tokio_util::codec::Decoder;
use xgate_protocol::compression::{decompress, MAX_DECOMPRESSED_SIZE};
use xgate_protocol::{
    encode_packet, rencode, rencodeplus, Compressor, FrameCodec, PacketEncoder, Value,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// The decompressed payload of a capture (header stripped).
fn payload(name: &str) -> (u8, Bytes, Bytes) {
    let path = format!("{VECTORS}/{name}");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("capture {path} is missing: {e}"));
    let compressed = Bytes::copy_from_slice(&data[8..]);
    let plain = decompress(data[2], &compressed, MAX_DECOMPRESSED_SIZE).unwrap();
    (data[2], compressed, plain)
}

/// A stream of `n` draw packets, each a 1 MiB raw pixel chunk plus its small main packet.
fn draw_stream(n: usize) -> Vec<u8> {
    let pixels = Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut out = Vec::new();
    for seq in 0..n as i64 {
        let draw = Value::list([
            Value::from("draw"),
            1.into(),
            0.into(),
            0.into(),
            512.into(),
            512.into(),
            "rgb32".into(),
            Value::Bytes(pixels.clone()),
            seq.into(),
            2048.into(),
            Value::Dict(vec![]),
        ]);
        for f in encode_packet(&draw, PacketEncoder::RencodePlus, Compressor::None, 0).unwrap() {
            out.extend_from_slice(&f.to_wire());
        }
    }
    out
}

fn frame_splitting(c: &mut Criterion) {
    let stream = draw_stream(32);
    let mut g = c.benchmark_group("frame_split_1MiB_draws");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    // The stream is already in the read buffer: splitting alone (zero-copy).
    g.bench_function("split_only", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut buf| {
                let mut codec = FrameCodec::new(xgate_protocol::ABS_MAX_PACKET_SIZE);
                let mut n = 0;
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    n += f.payload.len();
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        )
    });
    // As from a socket: 64 KiB reads copied into the buffer, frames split as they complete.
    g.bench_function("read_64KiB_and_split", |b| {
        b.iter(|| {
            let mut codec = FrameCodec::new(xgate_protocol::ABS_MAX_PACKET_SIZE);
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut n = 0;
            for chunk in stream.chunks(64 * 1024) {
                buf.extend_from_slice(chunk);
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    n += f.payload.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn hellos(c: &mut Criterion) {
    let mut g = c.benchmark_group("hello");
    for (name, file, enc) in [
        (
            "attach-3.1.3_rencode",
            "hello-attach-3.1.3.bin",
            PacketEncoder::Rencode,
        ),
        (
            "attach-6.5.5_rencodeplus",
            "hello-attach-6.5.5.bin",
            PacketEncoder::RencodePlus,
        ),
        (
            "info-6.5.5_rencodeplus",
            "hello-info-6.5.5.bin",
            PacketEncoder::RencodePlus,
        ),
    ] {
        let (byte, compressed, plain) = payload(file);
        g.throughput(Throughput::Bytes(plain.len() as u64));
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| enc.decode_bytes(black_box(&plain)).unwrap())
        });
        g.bench_function(format!("decompress_and_decode/{name}"), |b| {
            b.iter(|| {
                let p = decompress(byte, black_box(&compressed), MAX_DECOMPRESSED_SIZE).unwrap();
                enc.decode_bytes(&p).unwrap()
            })
        });
        let value = enc.decode_bytes(&plain).unwrap();
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| match enc {
                PacketEncoder::Rencode => rencode::encode(black_box(&value)).unwrap(),
                _ => rencodeplus::encode(black_box(&value)).unwrap(),
            })
        });
    }
    g.finish();
}

fn lz4(c: &mut Criterion) {
    let mut g = c.benchmark_group("lz4_decompress");
    let (byte, compressed, plain) = payload("hello-attach-6.5.5.bin");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("attach-6.5.5", |b| {
        b.iter(|| decompress(byte, black_box(&compressed), MAX_DECOMPRESSED_SIZE).unwrap())
    });
    let (_, _, big_plain) = payload("hello-attach-3.1.3.bin");
    let big: Vec<u8> = big_plain.iter().copied().cycle().take(1 << 20).collect();
    let z = xgate_protocol::compress(Compressor::Lz4, 1, &big).unwrap();
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("1MiB_hello_text", |b| {
        b.iter(|| decompress(0x11, black_box(&z), MAX_DECOMPRESSED_SIZE).unwrap())
    });
    g.finish();
}

// The macro defines an undocumented `benches` function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::frame_splitting, super::hellos, super::lz4);
}
criterion_main!(group::benches);
