//! The re-encoding direction against a real EncoderPool (libx264, libvpx): what the client
//! receives for raw draws, what the server gets as acks, and what passes through unchanged.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use xgate_messages::encode::{PixelFormat, VideoCodec};
use xgate_protocol::{
    compression, Compressor, FrameCodec, Packet, PacketEncoder, PacketReader, PacketWriter, Value,
};

use super::{draw, pump, Downstream};
use crate::encoder::{EncoderPool, EncoderSettings};
use crate::relay::pump::{End, Inject, Watch};

fn writer() -> PacketWriter {
    PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0)
}

async fn send(server: &mut DuplexStream, packet: Value) {
    for f in writer().encode(&packet).unwrap() {
        server.write_all(&f.to_wire()).await.unwrap();
    }
}

/// A raw BGRX draw of one colour, lz4-compressed as xpra's servers send it.
fn raw_draw(wid: u64, rect: (u32, u32, u32, u32), seq: u64, bgrx: [u8; 4], flush: i64) -> Value {
    let (_, _, w, h) = rect;
    let pixels: Vec<u8> = bgrx.repeat((w * h) as usize);
    let data = compression::compress(Compressor::Lz4, 1, &pixels).unwrap();
    let options = Value::dict([
        ("rgb_format", Value::from("BGRX")),
        ("lz4", Value::from(1i64)),
        ("flush", Value::from(flush)),
    ]);
    draw::packet(wid, rect, "rgb24", Value::from(data), seq, w * 4, options)
}

/// A [`raw_draw`] of all of window `wid`, `size` large, that says the window's size (so that it
/// needs no `new-window` first).
fn full_draw(wid: u64, size: (u32, u32), seq: u64, bgrx: [u8; 4]) -> Value {
    let mut draw = raw_draw(wid, (0, 0, size.0, size.1), seq, bgrx, 0);
    if let Value::List(items) = &mut draw {
        if let Value::Dict(opts) = &mut items[10] {
            opts.push((
                Value::from("window-size"),
                Value::list([Value::from(size.0), Value::from(size.1)]),
            ));
        }
    }
    draw
}

/// The server's `new-window` for window `wid` of `w` x `h` at 0,0, with no metadata.
fn new_window(wid: i64, w: i64, h: i64) -> Value {
    Value::list([
        Value::from("new-window"),
        Value::from(wid),
        Value::from(0i64),
        Value::from(0i64),
        Value::from(w),
        Value::from(h),
        Value::Dict(Vec::new()),
        Value::Dict(Vec::new()),
    ])
}

/// What a direction's pump watches for: the gateway's ping sid "gw" and 64 MiB chunks.
fn watch() -> Watch {
    Watch {
        ping_sid: "gw".into(),
        bytes: Arc::new(AtomicU64::new(0)),
        max_size: 1 << 26,
        writer: writer(),
    }
}

/// Reads the next packet the client receives (bounded wait).
async fn next(
    client: &mut FramedRead<DuplexStream, FrameCodec>,
    reader: &mut PacketReader,
) -> Packet {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("a packet for the client in time")
            .unwrap()
            .unwrap();
        if let Some(p) = reader.push(frame).unwrap() {
            return p;
        }
    }
}

struct Rig {
    server: DuplexStream,
    client: FramedRead<DuplexStream, FrameCodec>,
    reader: PacketReader,
    acks: mpsc::Receiver<Inject>,
    /// Reports client decode errors, as the client-to-server direction does.
    decode_errors: mpsc::Sender<u64>,
    task: tokio::task::JoinHandle<End>,
}

fn rig(codec: VideoCodec, refresh_delay: Option<Duration>) -> Rig {
    let pool = EncoderPool::new(EncoderSettings {
        encoders: vec!["libx264".into()],
        ..EncoderSettings::default()
    })
    .start();
    let (server, src) = tokio::io::duplex(1 << 22);
    let (dst, client) = tokio::io::duplex(1 << 22);
    let (to_server, acks) = mpsc::channel(16);
    let (_inject_tx, inject) = mpsc::channel(1);
    let (decode_errors, errors_rx) = mpsc::channel(4);
    let down = Downstream {
        connection: 9,
        codec,
        max_size: (4096, 4096),
        encode: pool.clone().recipient(),
        drop_streams: pool.recipient(),
        client_writer: writer(),
        to_server,
        refresh_delay,
        decode_errors: Some(errors_rx),
    };
    let watch = watch();
    let task = tokio::spawn(async move {
        let _keep = _inject_tx;
        pump(src, dst, BytesMut::new(), watch, inject, down)
            .await
            .end
    });
    Rig {
        server,
        client: FramedRead::new(client, FrameCodec::new(1 << 26)),
        reader: PacketReader::default(),
        acks,
        decode_errors,
        task,
    }
}

impl Rig {
    /// Closes the server's side and checks that the direction ends at its end of stream.
    async fn end_at_eof(self) {
        drop(self.server);
        assert!(matches!(self.task.await.unwrap(), End::Eof));
    }
}

fn ack_of(inject: Inject) -> Packet {
    let Inject::Packet(packet) = inject else {
        panic!("an ack is not a last packet")
    };
    Packet::from_value(packet).unwrap()
}

#[actix::test]
async fn an_update_becomes_one_video_draw_with_the_newest_sequence() {
    let mut r = rig(VideoCodec::H264, None);
    let new_window = new_window(1, 64, 48);
    send(&mut r.server, new_window.clone()).await;
    // One update in two regions: red top half (flush 1), blue bottom half (flush 0).
    send(
        &mut r.server,
        raw_draw(1, (0, 0, 64, 24), 1, [0, 0, 255, 0], 1),
    )
    .await;
    send(
        &mut r.server,
        raw_draw(1, (0, 24, 64, 24), 2, [255, 0, 0, 0], 0),
    )
    .await;
    // Packets the gateway does not act on pass unchanged, in order.
    let metadata = Value::list([
        Value::from("window-metadata"),
        Value::from(1i64),
        Value::dict([("title", "t")]),
    ]);
    send(&mut r.server, metadata.clone()).await;

    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(p.into_value(), new_window);
    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(p.into_value(), metadata);
    let draw = next(&mut r.client, &mut r.reader).await;
    assert_eq!(draw.type_name(), Some("draw"));
    let ints: Vec<i64> = [1, 2, 3, 4, 5, 8, 9]
        .iter()
        .map(|&i| draw.get(i).unwrap().as_int().unwrap())
        .collect();
    assert_eq!(
        ints,
        vec![1, 0, 0, 64, 48, 2, 0],
        "wid, x, y, w, h, sequence 2, rowstride 0"
    );
    assert_eq!(draw.get(6).and_then(Value::as_str), Some("h264"));
    let opts = draw.get(10).unwrap();
    assert_eq!(opts.get("csc").and_then(Value::as_str), Some("YUV420P"));
    assert_eq!(opts.get("frame").and_then(Value::as_int), Some(0));
    assert_eq!(opts.get("full-range").and_then(Value::as_bool), Some(false));
    assert_eq!(opts.get("flush").and_then(Value::as_int), Some(0));
    // Annex-B with in-band SPS first.
    let data = draw.get(7).and_then(Value::as_bytes).unwrap();
    assert_eq!(&data[..5], &[0, 0, 0, 1, 0x67]);
    // Sequence 1 went into the same frame: the gateway acks it to the server as skipped.
    let ack = ack_of(r.acks.recv().await.unwrap());
    let ack: Vec<Value> = ack.items().to_vec();
    assert_eq!(ack[0].as_str(), Some("damage-sequence"));
    assert_eq!(
        ack[1..6]
            .iter()
            .map(|v| v.as_int().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 1, 64, 48, 0]
    );
    assert!(
        r.acks.try_recv().is_err(),
        "sequence 2 is the client's to ack"
    );

    send(&mut r.server, Value::list(["disconnect", "bye"])).await;
    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(p.type_name(), Some("disconnect"));
    assert!(matches!(r.task.await.unwrap(), End::Disconnect(ref why) if why == "bye"));
}

#[actix::test]
async fn odd_sizes_get_rgb_edges_and_other_codings_pass_through() {
    let mut r = rig(VideoCodec::H264, None);
    // No new-window: the draw's window-size creates the window.
    send(&mut r.server, full_draw(5, (65, 49), 7, [10, 200, 30, 0])).await;
    let video = next(&mut r.client, &mut r.reader).await;
    assert_eq!(video.get(6).and_then(Value::as_str), Some("h264"));
    assert_eq!(
        (
            video.get(4).and_then(Value::as_int),
            video.get(5).and_then(Value::as_int)
        ),
        (Some(64), Some(48))
    );
    assert_eq!(
        video.get(10).unwrap().get("flush").and_then(Value::as_int),
        Some(2)
    );
    let mut edges = Vec::new();
    for _ in 0..2 {
        let e = next(&mut r.client, &mut r.reader).await;
        assert_eq!(e.get(6).and_then(Value::as_str), Some("rgb24"));
        assert_eq!(
            e.get(8).and_then(Value::as_int),
            Some(7),
            "the frame's sequence"
        );
        let rect: Vec<i64> = (2..6)
            .map(|i| e.get(i).unwrap().as_int().unwrap())
            .collect();
        let d = draw::parse(&e, 1 << 20).unwrap();
        let draw::Content::Pixels { format, data, .. } = d.content else {
            panic!("an rgb edge")
        };
        assert_eq!(format, PixelFormat::Bgrx);
        assert_eq!(
            &data[..4],
            &[10, 200, 30, 0],
            "the edge shows the window's pixels"
        );
        edges.push(rect);
    }
    assert_eq!(edges, vec![vec![64, 0, 1, 49], vec![0, 48, 64, 1]]);
    // A png draw (a coding the gateway does not composite) goes to the client as it came.
    let png = draw::packet(
        5,
        (0, 0, 1, 1),
        "png",
        Value::from(vec![1u8, 2, 3]),
        8,
        0,
        Value::Dict(Vec::new()),
    );
    send(&mut r.server, png.clone()).await;
    assert_eq!(next(&mut r.client, &mut r.reader).await.into_value(), png);
    // lost-window is relayed; the window's later draws have no framebuffer and pass through.
    send(
        &mut r.server,
        Value::list([Value::from("lost-window"), Value::from(5i64)]),
    )
    .await;
    assert_eq!(
        next(&mut r.client, &mut r.reader).await.type_name(),
        Some("lost-window")
    );
    let late = raw_draw(5, (0, 0, 2, 2), 9, [1, 2, 3, 0], 0);
    send(&mut r.server, late).await;
    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(p.get(6).and_then(Value::as_str), Some("rgb24"));
    assert_eq!(p.get(8).and_then(Value::as_int), Some(9));
    r.end_at_eof().await;
}

#[actix::test]
async fn an_idle_window_gets_one_lossless_refresh() {
    let mut r = rig(VideoCodec::Vp8, Some(Duration::from_millis(50)));
    send(&mut r.server, full_draw(3, (40, 30), 4, [1, 2, 3, 0])).await;
    let video = next(&mut r.client, &mut r.reader).await;
    assert_eq!(video.get(6).and_then(Value::as_str), Some("vp8"));
    // After the delay, the same picture, lossless, with the frame's sequence.
    let refresh = next(&mut r.client, &mut r.reader).await;
    assert_eq!(refresh.get(6).and_then(Value::as_str), Some("rgb24"));
    assert_eq!(refresh.get(8).and_then(Value::as_int), Some(4));
    let d = draw::parse(&refresh, 1 << 20).unwrap();
    assert_eq!((d.x, d.y, d.w, d.h), (0, 0, 40, 30));
    let draw::Content::Pixels { data, .. } = d.content else {
        panic!("pixels")
    };
    assert!(data.chunks(4).all(|p| p == [1, 2, 3, 0]));
    // Only once: nothing more arrives while the window stays idle.
    let more = tokio::time::timeout(Duration::from_millis(300), r.client.next()).await;
    assert!(more.is_err(), "a second refresh arrived");
    r.end_at_eof().await;
}

#[actix::test]
async fn a_window_shrunk_below_the_codec_minimum_gives_its_sequences_back() {
    let mut r = rig(VideoCodec::H264, None);
    send(&mut r.server, new_window(2, 64, 48)).await;
    // Part of an update (more follows), then the window shrinks to 10x10.
    send(
        &mut r.server,
        raw_draw(2, (0, 0, 8, 8), 11, [9, 9, 9, 0], 1),
    )
    .await;
    send(
        &mut r.server,
        Value::list([
            Value::from("window-resized"),
            Value::from(2i64),
            Value::from(10i64),
            Value::from(10i64),
        ]),
    )
    .await;
    assert_eq!(
        next(&mut r.client, &mut r.reader).await.type_name(),
        Some("new-window")
    );
    assert_eq!(
        next(&mut r.client, &mut r.reader).await.type_name(),
        Some("window-resized")
    );
    // The composited sequence is acked as skipped; the window's draws now pass through.
    let ack = ack_of(
        tokio::time::timeout(Duration::from_secs(10), r.acks.recv())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(ack.get(1).and_then(Value::as_int), Some(11));
    assert_eq!(ack.get(5).and_then(Value::as_int), Some(0));
    send(
        &mut r.server,
        raw_draw(2, (0, 0, 10, 10), 12, [1, 1, 1, 0], 0),
    )
    .await;
    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(
        (
            p.get(6).and_then(Value::as_str),
            p.get(8).and_then(Value::as_int)
        ),
        (Some("rgb24"), Some(12))
    );
    r.end_at_eof().await;
}

#[actix::test]
async fn echoes_of_the_gateways_pings_stay_with_the_gateway() {
    let mut r = rig(VideoCodec::Vp8, None);
    let echo = |sid: &str| {
        Value::list([
            Value::from("ping_echo"),
            Value::from(1i64),
            Value::from(0i64),
            Value::from(0i64),
            Value::from(0i64),
            Value::from(0i64),
            Value::from(sid),
        ])
    };
    send(&mut r.server, echo("gw")).await;
    send(&mut r.server, echo("the-client")).await;
    // Only the client's own echo is relayed.
    let p = next(&mut r.client, &mut r.reader).await;
    assert_eq!(p.into_value(), echo("the-client"));
    r.end_at_eof().await;
}

#[actix::test]
async fn a_client_decode_error_starts_a_new_stream() {
    let mut r = rig(VideoCodec::H264, None);
    let frame_of = |p: &Packet| p.get(10).unwrap().get("frame").and_then(Value::as_int);
    send(&mut r.server, full_draw(6, (64, 48), 1, [0, 0, 200, 0])).await;
    let first = next(&mut r.client, &mut r.reader).await;
    assert_eq!(frame_of(&first), Some(0));
    send(&mut r.server, full_draw(6, (64, 48), 2, [0, 200, 0, 0])).await;
    let second = next(&mut r.client, &mut r.reader).await;
    assert_eq!(frame_of(&second), Some(1));
    // The client could not decode frame 1: the next frame is a new stream (frame 0, an IDR).
    r.decode_errors.send(6).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&mut r.server, full_draw(6, (64, 48), 3, [200, 0, 0, 0])).await;
    let third = next(&mut r.client, &mut r.reader).await;
    assert_eq!(frame_of(&third), Some(0));
    let data = third.get(7).and_then(Value::as_bytes).unwrap();
    assert_eq!(&data[..5], &[0, 0, 0, 1, 0x67], "SPS first: a keyframe");
    r.end_at_eof().await;
}

#[actix::test]
async fn the_client_direction_relays_acks_and_reports_decode_errors() {
    let (mut client, src) = tokio::io::duplex(1 << 20);
    let (dst, server) = tokio::io::duplex(1 << 20);
    let (_inject_tx, inject) = mpsc::channel(1);
    let (errors_tx, mut errors) = mpsc::channel(4);
    let watch = watch();
    let task = tokio::spawn(async move {
        let _keep = _inject_tx;
        super::pump_upstream(src, dst, BytesMut::new(), watch, inject, errors_tx)
            .await
            .end
    });
    let ack = |seq: i64, wid: i64, decode_time: i64| {
        Value::list([
            Value::from("damage-sequence"),
            Value::from(seq),
            Value::from(wid),
            Value::from(64i64),
            Value::from(48i64),
            Value::from(decode_time),
            Value::from(""),
        ])
    };
    let sent = [
        ack(1, 6, 1200),
        ack(2, 6, -1),
        ack(3, 7, -2),
        ack(4, 8, 0),
        Value::list([Value::from("key-action"), Value::from(6i64)]),
    ];
    for p in &sent {
        send(&mut client, p.clone()).await;
    }
    // Everything reaches the server unchanged and in order.
    let mut server = FramedRead::new(server, FrameCodec::new(1 << 26));
    let mut reader = PacketReader::default();
    for p in &sent {
        assert_eq!(&next(&mut server, &mut reader).await.into_value(), p);
    }
    // Only the decode error (-1) is reported, with its window.
    assert_eq!(errors.recv().await, Some(6));
    send(&mut client, Value::list(["disconnect", "done"])).await;
    assert_eq!(
        next(&mut server, &mut reader).await.type_name(),
        Some("disconnect")
    );
    assert!(matches!(task.await.unwrap(), End::Disconnect(ref r) if r == "done"));
    assert!(errors.try_recv().is_err(), "-2 and 0 are not decode errors");
}
