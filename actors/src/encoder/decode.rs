//! The encoder's output decoded the way xpra's clients decode it, for the tests that prove the
//! bitstreams play (this crate's unit tests and the integration tests, through the
//! `test-support` feature): one packet in, one picture out at once, as xpra's avcodec2 decoder
//! requires, then converted to packed RGB24 to compare colours.

use bytes::Bytes;
use ffmpeg_next as ff;
use xgate_messages::encode::VideoCodec;

use super::EncoderError;

/// Decodes each frame on its own and returns every picture as the decoder produced it (its pixel
/// format, colour range and size) with its pixels as packed RGB24 (`width * 3` bytes a row).
/// Fails if a frame does not give a picture at once, which xpra's clients would not show.
pub fn decode_each(
    codec: VideoCodec,
    frames: &[Bytes],
) -> Result<Vec<(ff::frame::Video, Vec<u8>)>, EncoderError> {
    ff::init().map_err(EncoderError::ff("initialising FFmpeg"))?;
    let id = match codec {
        VideoCodec::H264 => ff::codec::Id::H264,
        VideoCodec::Vp8 => ff::codec::Id::VP8,
        VideoCodec::Vp9 => ff::codec::Id::VP9,
    };
    let dec = ff::decoder::find(id)
        .ok_or_else(|| EncoderError::NotInBuild(format!("the {codec:?} decoder")))?;
    let mut d = ff::codec::context::Context::new_with_codec(dec)
        .decoder()
        .video()
        .map_err(EncoderError::ff("opening the decoder"))?;
    let mut out = Vec::new();
    for (i, data) in frames.iter().enumerate() {
        d.send_packet(&ff::Packet::copy(data))
            .map_err(EncoderError::ff(format!("frame {i}: sending it")))?;
        let mut pic = ff::frame::Video::empty();
        d.receive_frame(&mut pic)
            .map_err(EncoderError::ff(format!("frame {i}: no picture at once")))?;
        let rgb = packed_rgb(&pic).map_err(EncoderError::ff(format!("frame {i}: to RGB24")))?;
        out.push((pic, rgb));
    }
    Ok(out)
}

/// A decoded picture as packed RGB24.
fn packed_rgb(pic: &ff::frame::Video) -> Result<Vec<u8>, ff::Error> {
    let mut rgb = ff::frame::Video::empty();
    ff::software::scaling::Context::get(
        pic.format(),
        pic.width(),
        pic.height(),
        ff::format::Pixel::RGB24,
        pic.width(),
        pic.height(),
        ff::software::scaling::Flags::BICUBIC,
    )?
    .run(pic, &mut rgb)?;
    let w = rgb.width() as usize * 3;
    let stride = rgb.stride(0);
    let mut packed = Vec::with_capacity(w * rgb.height() as usize);
    for row in rgb.data(0).chunks(stride).take(rgb.height() as usize) {
        packed.extend_from_slice(&row[..w]);
    }
    Ok(packed)
}
