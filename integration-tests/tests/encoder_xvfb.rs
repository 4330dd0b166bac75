//! The EncoderPool end to end on real pixels: coloured boxes drawn on a real Xvfb, captured with
//! x11rb, encoded through the pool (H.264 with libx264, VP8, VP9), decoded frame by frame with
//! FFmpeg as xpra's clients do, and compared with what was drawn.
#![allow(clippy::unwrap_used)]

mod encoder_common;

use actix::Actor;
use encoder_common::{close, pixel, Xvfb};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, Rectangle};
use xgate_actors::encoder::decode::decode_each;
use xgate_actors::encoder::{EncoderPool, EncoderSettings, X11Capture};
use xgate_messages::encode::{EncodeFrame, GetEncoderInfo, PixelFormat, StreamKey, VideoCodec};

/// Boxes: (x, y, colour as 0xRRGGBB).
const BOXES: [(i16, i16, u32); 4] = [
    (40, 40, 0xe02020),
    (360, 40, 0x20c040),
    (40, 260, 0x2040e0),
    (360, 260, 0xf0f0f0),
];

fn rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

#[actix::test]
async fn xvfb_frames_encode_and_decode_to_the_same_picture() {
    let x = Xvfb::start(640, 480);
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    for (bx, by, colour) in BOXES {
        let gc = conn.generate_id().unwrap();
        conn.create_gc(gc, root, &CreateGCAux::new().foreground(colour))
            .unwrap();
        conn.poly_fill_rectangle(
            root,
            gc,
            &[Rectangle {
                x: bx,
                y: by,
                width: 200,
                height: 160,
            }],
        )
        .unwrap();
    }
    conn.get_input_focus().unwrap().reply().unwrap();

    let cap = X11Capture::connect(Some(&x.display)).unwrap();
    assert_eq!(cap.size(), (640, 480));
    let frame = cap.capture().unwrap();
    assert_eq!(frame.format, PixelFormat::Bgrx);
    assert_eq!((frame.width, frame.height, frame.stride), (640, 480, 2560));
    // The capture itself: BGRX bytes of the first box's colour.
    let at = (100 * 640 + 100) * 4;
    assert_eq!(&frame.data[at..at + 3], &[0x20, 0x20, 0xe0]);

    let settings = EncoderSettings {
        encoders: vec!["h264_nvenc".into(), "libx264".into()],
        ..EncoderSettings::default()
    };
    let pool = EncoderPool::new(settings).start();
    for (window, codec) in [
        (1, VideoCodec::H264),
        (2, VideoCodec::Vp8),
        (3, VideoCodec::Vp9),
    ] {
        let mut out = Vec::new();
        for i in 0..3 {
            let e = pool
                .send(EncodeFrame {
                    key: StreamKey {
                        connection: 7,
                        window,
                    },
                    codec,
                    frame: frame.clone(),
                    keyframe: false,
                    tag: i,
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e.frame, i);
            assert_eq!(
                (e.width, e.height, e.csc, e.full_range),
                (640, 480, "YUV420P", false)
            );
            out.push(e.data);
        }
        let pictures = decode_each(codec, &out).expect("the pool's frames decode");
        for (decoded, pic) in pictures {
            let (w, h) = (decoded.width(), decoded.height());
            assert_eq!((w, h), (640, 480));
            assert_eq!(
                decoded.format(),
                ffmpeg_next::format::Pixel::YUV420P,
                "{codec:?}"
            );
            for (bx, by, colour) in BOXES {
                let got = pixel(&pic, w, bx as u32 + 100, by as u32 + 80);
                assert!(
                    close(got, rgb(colour), 12),
                    "{codec:?}: box at {bx},{by}: got {got:?}, drew {:?}",
                    rgb(colour)
                );
            }
            // Xvfb -br: black background.
            assert!(close(pixel(&pic, w, 620, 460), [0, 0, 0], 12));
        }
    }
    let info = pool.send(GetEncoderInfo).await.unwrap();
    assert_eq!(info.counters.frames, 9);
    println!("encoder info: {info:?}");
}
