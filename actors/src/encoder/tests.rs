//! Tests of the encoder with real FFmpeg (libx264, libvpx): the bitstreams decode frame by frame
//! with FFmpeg's own decoders, as xpra 3.1.3's avcodec2 decoder feeds them, in limited range; and
//! the pool's queue, coalescing, stream lifecycle and info.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use ffmpeg_next as ff;
use xgate_messages::encode::{
    DropStreams, EncodeFrame, EncodeRefused, GetEncoderInfo, PixelFormat, RawFrame, StreamKey,
    VideoCodec,
};

use super::decode::decode_each;
use super::probe::{probe_one, test_frame};
use super::{EncoderPool, EncoderSettings, StreamEncoder};

/// A solid-colour frame with a padded stride.
fn solid(width: u32, height: u32, format: PixelFormat, rgb: [u8; 3]) -> RawFrame {
    let bpp = format.bytes_per_pixel();
    let stride = width as usize * bpp + 12;
    let px: Vec<u8> = match format {
        PixelFormat::Bgrx | PixelFormat::Bgra => vec![rgb[2], rgb[1], rgb[0], 255],
        PixelFormat::Rgbx | PixelFormat::Rgba => vec![rgb[0], rgb[1], rgb[2], 255],
        PixelFormat::Rgb => rgb.to_vec(),
        PixelFormat::Bgr => vec![rgb[2], rgb[1], rgb[0]],
    };
    let mut data = vec![0u8; stride * height as usize];
    for row in data.chunks_mut(stride) {
        for p in row[..width as usize * bpp].chunks_mut(bpp) {
            p.copy_from_slice(&px);
        }
    }
    RawFrame {
        width,
        height,
        stride,
        format,
        data: Bytes::from(data),
    }
}

/// Opens encoder `name` at `width` x `height` and encodes `count` frames of one colour; checks
/// that they are numbered from 0 and that only the first is a keyframe.
fn encode_solid(
    name: &'static str,
    (width, height): (u32, u32),
    format: PixelFormat,
    colour: [u8; 3],
    count: u64,
) -> Vec<Bytes> {
    let mut enc = StreamEncoder::open(name, width, height, format).unwrap();
    (0..count)
        .map(|i| {
            let (data, number, key) = enc
                .encode(&solid(width, height, format, colour), false)
                .unwrap();
            assert_eq!(number, i, "{name}: frame number");
            assert_eq!(key, i == 0, "{name}: only frame 0 is a keyframe, not {i}");
            data
        })
        .collect()
}

fn close(a: &[u8], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

#[test]
fn x264_is_annexb_with_inband_headers_limited_range_and_decodes_at_once() {
    let colour = [0xe0, 0x80, 0x20];
    let frames = encode_solid("libx264", (320, 240), PixelFormat::Bgrx, colour, 5);
    // Annex-B: a start code, and SPS (7) and PPS (8) in the first access unit.
    let first = &frames[0];
    assert!(first.starts_with(&[0, 0, 0, 1]) || first.starts_with(&[0, 0, 1]));
    let nal_types: Vec<u8> = first
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3] & 0x1f)
        .collect();
    assert!(nal_types.contains(&7) && nal_types.contains(&8) && nal_types.contains(&5));
    let pics = decode_each(VideoCodec::H264, &frames).unwrap();
    for (pic, rgb) in &pics {
        // yuvj420p (full range) would be refused by 3.1.3's decoder.
        assert_eq!(pic.format(), ff::format::Pixel::YUV420P);
        assert_ne!(pic.color_range(), ff::color::Range::JPEG);
        assert!(close(&rgb[..3], colour, 6), "{:?}", &rgb[..3]);
    }
}

#[test]
fn odd_sizes_are_cropped_for_h264_but_not_for_vpx() {
    let mut enc = StreamEncoder::open("libx264", 101, 77, PixelFormat::Rgb).unwrap();
    assert_eq!(enc.size(), (100, 76));
    let (data, _, _) = enc
        .encode(&solid(101, 77, PixelFormat::Rgb, [10, 200, 30]), false)
        .unwrap();
    let pics = decode_each(VideoCodec::H264, &[data]).unwrap();
    assert_eq!((pics[0].0.width(), pics[0].0.height()), (100, 76));
    let enc = StreamEncoder::open("libvpx", 101, 77, PixelFormat::Bgra).unwrap();
    assert_eq!(enc.size(), (101, 77));
}

#[test]
fn vp8_and_vp9_decode_frame_by_frame() {
    for (name, codec) in [("libvpx", VideoCodec::Vp8), ("libvpx-vp9", VideoCodec::Vp9)] {
        let colour = [0x30, 0xa0, 0x60];
        let frames = encode_solid(name, (192, 108), PixelFormat::Rgbx, colour, 4);
        for (pic, rgb) in decode_each(codec, &frames).unwrap() {
            assert_eq!(pic.format(), ff::format::Pixel::YUV420P);
            assert!(close(&rgb[..3], colour, 8), "{name}: {:?}", &rgb[..3]);
        }
    }
}

#[test]
fn probe_finds_the_cpu_encoders() {
    for name in ["libx264", "libvpx", "libvpx-vp9"] {
        let s = probe_one(name);
        assert!(s.available, "{name}: {:?}", s.reason);
    }
}

#[test]
fn short_or_tiny_frames_are_refused() {
    let mut f = test_frame(64, 64, 0);
    f.data = f.data.slice(..100);
    assert!(super::stream::check_frame(&f).is_err());
    assert!(super::stream::check_frame(&test_frame(8, 64, 0)).is_err());
}

fn settings(workers: usize, queue_limit: usize) -> EncoderSettings {
    EncoderSettings {
        encoders: vec!["libx264".into()],
        workers,
        queue_limit,
        idle_timeout: Duration::from_millis(300),
        max_nvenc_sessions: 3,
    }
}

fn request(window: u64, tag: u64, frame: RawFrame) -> EncodeFrame {
    EncodeFrame {
        key: StreamKey {
            connection: 1,
            window,
        },
        codec: VideoCodec::H264,
        frame,
        keyframe: false,
        tag,
    }
}

#[actix::test]
async fn pool_encodes_restarts_on_resize_and_reports() {
    let pool = actix::Actor::start(EncoderPool::new(settings(2, 8)));
    let a = pool
        .send(request(1, 10, test_frame(128, 96, 0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.frame, a.keyframe, a.encoder), (0, true, "libx264"));
    assert_eq!(a.covers, vec![10]);
    let b = pool
        .send(request(1, 11, test_frame(128, 96, 1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.frame, b.keyframe), (1, false));
    // A new size starts a new stream (frame 0, keyframe).
    let c = pool
        .send(request(1, 12, test_frame(160, 96, 2)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.frame, c.keyframe, c.width), (0, true, 160));
    // A forced keyframe too.
    let mut r = request(1, 13, test_frame(160, 96, 3));
    r.keyframe = true;
    let d = pool.send(r).await.unwrap().unwrap();
    assert_eq!((d.frame, d.keyframe), (0, true));
    // VP8 without a VP8 encoder configured: libvpx is probed anyway.
    let mut r = request(2, 1, test_frame(64, 64, 0));
    r.codec = VideoCodec::Vp8;
    let e = pool.send(r).await.unwrap().unwrap();
    assert_eq!(e.encoder, "libvpx");
    let info = pool.send(GetEncoderInfo).await.unwrap();
    assert_eq!(info.active_h264.as_deref(), Some("libx264"));
    assert_eq!(info.counters.frames, 5);
    assert_eq!(info.counters.streams, 2);
    assert!(info
        .encoders
        .iter()
        .any(|s| s.name == "libvpx-vp9" && s.available));
    // Dropped on request, and after the idle timeout.
    pool.send(DropStreams {
        connection: 1,
        window: Some(2),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let info = pool.send(GetEncoderInfo).await.unwrap();
    assert_eq!(info.counters.streams, 0);
}

#[actix::test]
async fn full_queue_refuses_and_same_window_coalesces() {
    // One worker, one waiting frame at most.
    let pool = actix::Actor::start(EncoderPool::new(settings(1, 1)));
    let big = test_frame(1280, 720, 0);
    // Window 1: the first goes in flight, the second waits, the third replaces the second.
    let f1 = pool.send(request(1, 1, big.clone()));
    let f2 = pool.send(request(1, 2, big.clone()));
    let f3 = pool.send(request(1, 3, big.clone()));
    // Window 2 finds the queue full.
    let f4 = pool.send(request(2, 4, big.clone()));
    let (r1, r2, r3, r4) = futures::join!(f1, f2, f3, f4);
    assert_eq!(r1.unwrap().unwrap().covers, vec![1]);
    assert_eq!(r2.unwrap().unwrap_err(), EncodeRefused::Coalesced);
    assert_eq!(r3.unwrap().unwrap().covers, vec![2, 3]);
    assert_eq!(r4.unwrap().unwrap_err(), EncodeRefused::QueueFull);
    let info = pool.send(GetEncoderInfo).await.unwrap();
    assert_eq!(
        (
            info.counters.frames,
            info.counters.coalesced,
            info.counters.skipped
        ),
        (2, 1, 1)
    );
    assert_eq!(info.counters.peak_queue_depth, 1);
    assert_eq!(info.counters.queue_depth, 0);
}

#[actix::test]
async fn no_encoder_for_a_codec_is_said_at_once() {
    let statuses = vec![probe_one("libx264")];
    let pool = actix::Actor::start(EncoderPool::with_statuses(settings(1, 4), statuses));
    let mut r = request(1, 1, test_frame(64, 64, 0));
    r.codec = VideoCodec::Vp9;
    let res = pool.send(r).await.unwrap();
    assert_eq!(res.unwrap_err(), EncodeRefused::NoEncoder(VideoCodec::Vp9));
}
