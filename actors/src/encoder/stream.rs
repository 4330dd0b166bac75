//! One video stream on top of FFmpeg (safe `ffmpeg-next` API only): a swscale conversion from
//! the window's pixel format to limited-range BT.601 YUV420P, then one FFmpeg encoder opened with
//! the settings xpra's client decoders need (reference `xpra-video.md` §3.3):
//! - H.264: Annex-B with SPS/PPS in-band on every keyframe (no global header), no B-frames, no
//!   lookahead or frame delay: every frame in gives one access unit out;
//! - VP8/VP9: libvpx realtime, `lag-in-frames 0`, `auto-alt-ref 0`: one visible frame per frame.

use std::sync::Once;

use bytes::Bytes;
use ff::software::scaling;
use ffmpeg_next as ff;
use xgate_messages::encode::{PixelFormat, RawFrame, VideoCodec};

use super::error::EncoderError;

/// Frames per second the encoders are told (xpra paces frames itself; this only scales rate control).
/// The same as the `rawvideo` default of the ffmpeg command line, so benchmarks compare like with like.
pub const NOMINAL_FPS: i32 = 25;

/// The swscale filter for the RGB to YUV conversion: the ffmpeg command line's default (`bicubic`).
pub const SWS_FLAGS: scaling::Flags = scaling::Flags::BICUBIC;

/// Smallest frame the decoders take (vpx 16x16; openh264 needs 32x32, which the relay checks).
pub const MIN_SIZE: u32 = 16;

/// Initialises FFmpeg once: registration and a log level that keeps libx264's banner quiet.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ff::init() {
            tracing::warn!(target: "xgate::encoder", "FFmpeg initialisation: {e}");
        }
        ff::log::set_level(ff::log::Level::Error);
    });
}

/// The codec an encoder name makes, for the names xgate drives.
pub fn codec_of(name: &str) -> Option<VideoCodec> {
    Some(match name {
        "h264_nvenc" | "libx264" => VideoCodec::H264,
        "libvpx" => VideoCodec::Vp8,
        "libvpx-vp9" => VideoCodec::Vp9,
        _ => return None,
    })
}

/// The static name for a known encoder name (so that frames carry `&'static str`).
pub fn static_name(name: &str) -> Option<&'static str> {
    ["h264_nvenc", "libx264", "libvpx", "libvpx-vp9"]
        .into_iter()
        .find(|n| *n == name)
}

/// Whether the encoder runs on an NVIDIA GPU (and counts against the NVENC session limit).
pub fn is_nvenc(name: &str) -> bool {
    name.ends_with("_nvenc")
}

/// FFmpeg's pixel format for an xpra `rgb_format`.
fn pixel(format: PixelFormat) -> ff::format::Pixel {
    use ff::format::Pixel;
    match format {
        PixelFormat::Bgrx => Pixel::BGRZ,
        PixelFormat::Bgra => Pixel::BGRA,
        PixelFormat::Rgbx => Pixel::RGBZ,
        PixelFormat::Rgba => Pixel::RGBA,
        PixelFormat::Rgb => Pixel::RGB24,
        PixelFormat::Bgr => Pixel::BGR24,
    }
}

/// The encoder's private options, as `ffmpeg -c:v NAME` would take them.
pub fn encoder_options(name: &str) -> Vec<(&'static str, &'static str)> {
    match name {
        "libx264" => vec![
            ("preset", "ultrafast"),
            ("tune", "zerolatency"),
            ("forced-idr", "1"),
        ],
        "h264_nvenc" => vec![
            ("preset", "p1"),
            ("tune", "ull"),
            ("zerolatency", "1"),
            ("delay", "0"),
            ("rc-lookahead", "0"),
            ("forced-idr", "1"),
        ],
        "libvpx" => vec![
            ("deadline", "realtime"),
            ("cpu-used", "8"),
            ("lag-in-frames", "0"),
            ("auto-alt-ref", "0"),
            ("crf", "10"),
        ],
        "libvpx-vp9" => vec![
            ("deadline", "realtime"),
            ("cpu-used", "8"),
            ("lag-in-frames", "0"),
            ("auto-alt-ref", "0"),
            ("row-mt", "1"),
            ("crf", "32"),
        ],
        _ => Vec::new(),
    }
}

/// The size actually encoded for a frame: H.264 4:2:0 needs even sizes, so the odd last column
/// or row is left out (xpra's own server sends it as a separate rgb "edge" draw).
pub fn encoded_size(codec: VideoCodec, width: u32, height: u32) -> (u32, u32) {
    match codec {
        VideoCodec::H264 => (width & !1, height & !1),
        VideoCodec::Vp8 | VideoCodec::Vp9 => (width, height),
    }
}

/// Checks that a raw frame's buffer holds what its size, stride and format say.
pub fn check_frame(frame: &RawFrame) -> Result<(), EncoderError> {
    let bpp = frame.format.bytes_per_pixel();
    let row = frame.width as usize * bpp;
    if frame.width < MIN_SIZE || frame.height < MIN_SIZE {
        return Err(EncoderError::BadFrame(format!(
            "{}x{} is below the {MIN_SIZE}x{MIN_SIZE} minimum",
            frame.width, frame.height
        )));
    }
    if frame.stride < row {
        return Err(EncoderError::BadFrame(format!(
            "stride {} below width {} x {bpp} bytes",
            frame.stride, frame.width
        )));
    }
    let need = frame.stride * (frame.height as usize - 1) + row;
    if frame.data.len() < need {
        return Err(EncoderError::BadFrame(format!(
            "{} bytes for {}x{} with stride {} (need {need})",
            frame.data.len(),
            frame.width,
            frame.height,
            frame.stride
        )));
    }
    Ok(())
}

/// One open encoder with its conversion and buffers, for frames of one size and format.
pub struct StreamEncoder {
    /// The FFmpeg encoder's name.
    name: &'static str,
    /// The codec it makes.
    codec: VideoCodec,
    /// The opened encoder.
    encoder: ff::encoder::video::Encoder,
    /// RGB to YUV420P (same size).
    scaler: scaling::Context,
    /// The input picture, in the window's pixel format (reused for every frame).
    input: ff::frame::Video,
    /// The converted picture the encoder takes (reused).
    yuv: ff::frame::Video,
    /// Reused output packet.
    packet: ff::Packet,
    /// The source frames' width and height (before cropping to even sizes).
    source_size: (u32, u32),
    /// The encoded size.
    size: (u32, u32),
    /// The source pixel format.
    format: PixelFormat,
    /// Frames encoded so far: the next frame's number (0 = the stream's first).
    next_frame: u64,
}

impl StreamEncoder {
    /// Opens `name` for frames of `width`x`height` in `format`.
    pub fn open(
        name: &'static str,
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<StreamEncoder, EncoderError> {
        init();
        let codec = codec_of(name).ok_or_else(|| EncoderError::Unsupported(name.into()))?;
        let ffcodec =
            ff::encoder::find_by_name(name).ok_or_else(|| EncoderError::NotInBuild(name.into()))?;
        let (w, h) = encoded_size(codec, width, height);
        if w < MIN_SIZE || h < MIN_SIZE {
            return Err(EncoderError::BadFrame(format!(
                "{width}x{height} is too small"
            )));
        }
        let mut video = ff::codec::context::Context::new_with_codec(ffcodec)
            .encoder()
            .video()
            .map_err(EncoderError::ff(format!("{name}: not a video encoder")))?;
        video.set_width(w);
        video.set_height(h);
        video.set_format(ff::format::Pixel::YUV420P);
        video.set_time_base(ff::Rational::new(1, NOMINAL_FPS));
        video.set_frame_rate(Some(ff::Rational::new(NOMINAL_FPS, 1)));
        video.set_max_b_frames(0);
        // Limited-range BT.601, as both client generations paint it (xpra-video.md §3.3).
        video.set_colorspace(ff::color::Space::BT470BG);
        video.set_color_range(ff::color::Range::MPEG);
        match codec {
            // libvpx's VP8 takes `crf` only as constrained quality under a bitrate: the cap must
            // leave crf in charge, or screen text (sharp edges, a keyframe each new stream) is
            // starved to the cap's quality. Two bits a pixel at the nominal rate does that.
            VideoCodec::Vp8 => video
                .set_bit_rate((w as usize * h as usize * 2 * NOMINAL_FPS as usize).max(4_000_000)),
            VideoCodec::Vp9 => video.set_bit_rate(0),
            VideoCodec::H264 => {}
        }
        let mut options = ff::Dictionary::new();
        for (k, v) in encoder_options(name) {
            options.set(k, v);
        }
        let encoder = video
            .open_as_with(ffcodec, options)
            .map_err(EncoderError::ff(format!("opening {name} at {w}x{h}")))?;
        let src = pixel(format);
        let scaler = scaling::Context::get(src, w, h, ff::format::Pixel::YUV420P, w, h, SWS_FLAGS)
            .map_err(EncoderError::ff("creating the swscale context"))?;
        let mut yuv = ff::frame::Video::new(ff::format::Pixel::YUV420P, w, h);
        yuv.set_color_space(ff::color::Space::BT470BG);
        yuv.set_color_range(ff::color::Range::MPEG);
        Ok(StreamEncoder {
            name,
            codec,
            encoder,
            scaler,
            input: ff::frame::Video::new(src, w, h),
            yuv,
            packet: ff::Packet::empty(),
            source_size: (width, height),
            size: (w, h),
            format,
            next_frame: 0,
        })
    }

    /// The encoder's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The encoded size.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Whether frames of this size and format fit this stream (otherwise it must be re-created).
    pub fn fits(&self, codec: VideoCodec, frame: &RawFrame) -> bool {
        self.codec == codec
            && self.source_size == (frame.width, frame.height)
            && self.format == frame.format
    }

    /// The number the next frame will carry (0 until the first frame is encoded).
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// Encodes one frame; returns the compressed frame, its number in the stream and whether it
    /// is a keyframe. `keyframe` forces an IDR (the stream's first frame always is one).
    pub fn encode(
        &mut self,
        frame: &RawFrame,
        keyframe: bool,
    ) -> Result<(Bytes, u64, bool), EncoderError> {
        check_frame(frame)?;
        if (frame.width, frame.height) != self.source_size || frame.format != self.format {
            return Err(EncoderError::BadFrame(format!(
                "{}x{} {:?} does not fit a {}x{} {:?} stream",
                frame.width,
                frame.height,
                frame.format,
                self.source_size.0,
                self.source_size.1,
                self.format
            )));
        }
        // Copy the rows (cropped to the encoded size) into FFmpeg's aligned buffer.
        let row = self.size.0 as usize * frame.format.bytes_per_pixel();
        let dst_stride = self.input.stride(0);
        let dst = self.input.data_mut(0);
        for (y, src_row) in frame
            .data
            .chunks(frame.stride)
            .take(self.size.1 as usize)
            .enumerate()
        {
            let at = y * dst_stride;
            dst[at..at + row].copy_from_slice(&src_row[..row]);
        }
        self.scaler
            .run(&self.input, &mut self.yuv)
            .map_err(EncoderError::ff("converting to YUV420P"))?;
        let number = self.next_frame;
        self.yuv.set_pts(Some(number as i64));
        self.yuv.set_kind(if keyframe || number == 0 {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        });
        self.encoder
            .send_frame(&self.yuv)
            .map_err(EncoderError::ff(format!("{}: sending a frame", self.name)))?;
        let mut out: Option<Vec<u8>> = None;
        let mut key = false;
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    key |= self.packet.is_key();
                    let data = self.packet.data().unwrap_or(&[]);
                    match &mut out {
                        Some(v) => v.extend_from_slice(data),
                        None => out = Some(data.to_vec()),
                    }
                }
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => break,
                Err(ff::Error::Eof) => break,
                Err(e) => {
                    return Err(EncoderError::Ffmpeg {
                        what: format!("{}: receiving a packet", self.name),
                        source: e,
                    })
                }
            }
        }
        let out = out.ok_or(EncoderError::NoOutput(self.name))?;
        self.next_frame += 1;
        Ok((Bytes::from(out), number, key))
    }
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("format", &self.format)
            .field("next_frame", &self.next_frame)
            .finish()
    }
}
