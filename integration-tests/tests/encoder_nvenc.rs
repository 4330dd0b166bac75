//! NVENC: runs where an NVENC-capable GPU and driver exist, and otherwise prints why it did not
//! run (and passes). Also checks that without NVENC everything falls back to libx264 and says why.
#![allow(clippy::unwrap_used)]

mod encoder_common;

use actix::Actor;
use encoder_common::{close, pixel};
use xgate_actors::encoder::decode::decode_each;
use xgate_actors::encoder::probe::{has_library, test_frame, try_encoder};
use xgate_actors::encoder::{EncoderPool, EncoderSettings, StreamEncoder};
use xgate_messages::encode::{EncodeFrame, GetEncoderInfo, PixelFormat, StreamKey, VideoCodec};

#[test]
fn nvenc_encodes_decodable_h264_where_available() {
    if let Err(why) = try_encoder("h264_nvenc") {
        println!("h264_nvenc unavailable, NVENC test did not run: {why}");
        eprintln!("h264_nvenc unavailable, NVENC test did not run: {why}");
        return;
    }
    let mut enc = StreamEncoder::open("h264_nvenc", 1280, 720, PixelFormat::Bgrx).unwrap();
    let mut out = Vec::new();
    for i in 0..30u8 {
        let (data, number, key) = enc.encode(&test_frame(1280, 720, i), false).unwrap();
        assert_eq!(number, u64::from(i));
        assert_eq!(key, i == 0);
        out.push(data);
    }
    assert!(out[0].starts_with(&[0, 0, 0, 1]) || out[0].starts_with(&[0, 0, 1]));
    let pics = decode_each(VideoCodec::H264, &out).expect("NVENC's frames decode");
    let reference = test_frame(1280, 720, 29);
    let (last_pic, last) = pics.last().expect("30 pictures");
    let w = last_pic.width();
    let at = (360 * 1280 + 640) * 4;
    let drawn = [
        reference.data[at + 2],
        reference.data[at + 1],
        reference.data[at],
    ];
    assert!(close(pixel(last, w, 640, 360), drawn, 16));
    for (pic, _) in &pics {
        assert_eq!(pic.format(), ffmpeg_next::format::Pixel::YUV420P);
    }
}

#[actix::test]
async fn nvenc_session_limit_falls_back_to_libx264() {
    if let Err(why) = try_encoder("h264_nvenc") {
        println!("h264_nvenc unavailable, NVENC session-limit test did not run: {why}");
        return;
    }
    let pool = EncoderPool::new(EncoderSettings {
        encoders: vec!["h264_nvenc".into(), "libx264".into()],
        max_nvenc_sessions: 1,
        ..EncoderSettings::default()
    })
    .start();
    let mut encoders = Vec::new();
    for window in 1..=2 {
        let e = pool
            .send(EncodeFrame {
                key: StreamKey {
                    connection: 1,
                    window,
                },
                codec: VideoCodec::H264,
                frame: test_frame(640, 480, 0),
                keyframe: false,
                tag: window,
            })
            .await
            .unwrap()
            .unwrap();
        encoders.push(e.encoder);
    }
    assert_eq!(encoders, ["h264_nvenc", "libx264"]);
    let info = pool.send(GetEncoderInfo).await.unwrap();
    assert_eq!(
        (info.counters.nvenc_sessions, info.counters.nvenc_limited),
        (1, 1)
    );
}

#[actix::test]
async fn without_nvenc_everything_runs_on_libx264_and_says_why() {
    let pool = EncoderPool::new(EncoderSettings::default()).start();
    let info = pool.send(GetEncoderInfo).await.unwrap();
    let nvenc = info
        .encoders
        .iter()
        .find(|s| s.name == "h264_nvenc")
        .unwrap();
    println!(
        "h264_nvenc: available={} reason={:?}; active H.264 encoder: {:?}",
        nvenc.available, nvenc.reason, info.active_h264
    );
    if nvenc.available {
        assert_eq!(info.active_h264.as_deref(), Some("h264_nvenc"));
        return;
    }
    assert!(nvenc.reason.as_deref().is_some_and(|r| !r.is_empty()));
    if !has_library("libcuda.so.1") {
        assert_eq!(
            nvenc.reason.as_deref(),
            Some("no libcuda.so.1: the NVIDIA driver is not installed")
        );
    }
    assert_eq!(info.active_h264.as_deref(), Some("libx264"));
    let e = pool
        .send(EncodeFrame {
            key: StreamKey {
                connection: 1,
                window: 1,
            },
            codec: VideoCodec::H264,
            frame: test_frame(640, 480, 0),
            keyframe: false,
            tag: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.encoder, "libx264");
}
