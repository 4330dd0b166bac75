//! The EncoderPool's vocabulary: raw frames in, compressed video frames out, and the pool's info.
//!
//! A relay that re-encodes keeps one framebuffer per window, and hands the pool a full frame of it
//! ([`EncodeFrame`]); the pool answers with one compressed frame ([`Encoded`]) in the form xpra's
//! client decoders expect (H.264 Annex-B access units, raw VP8/VP9 frames, limited-range BT.601
//! YUV420P), or says why it did not ([`EncodeRefused`]).
//! Everything here is plain data, so that plug-ins can submit frames or read the pool's counters.

use actix::Message;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Which stream a frame belongs to: one per (connection, window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    /// The gateway's connection id (see `ConnectionId`).
    pub connection: u64,
    /// The xpra window id on that connection.
    pub window: u64,
}

/// The byte layout of a raw frame's pixels, named as xpra's `rgb_format` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PixelFormat {
    /// 4 bytes: blue, green, red, unused (X11's 24-bit ZPixmap on little-endian; ffmpeg `bgr0`).
    Bgrx,
    /// 4 bytes: blue, green, red, alpha.
    Bgra,
    /// 4 bytes: red, green, blue, unused.
    Rgbx,
    /// 4 bytes: red, green, blue, alpha.
    Rgba,
    /// 3 bytes: red, green, blue.
    Rgb,
    /// 3 bytes: blue, green, red.
    Bgr,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb | PixelFormat::Bgr => 3,
            _ => 4,
        }
    }

    /// The format from xpra's `rgb_format` option value (`"BGRX"`, `"RGB"`, ...).
    pub fn from_xpra(name: &str) -> Option<PixelFormat> {
        Some(match name {
            "BGRX" => PixelFormat::Bgrx,
            "BGRA" => PixelFormat::Bgra,
            "RGBX" => PixelFormat::Rgbx,
            "RGBA" => PixelFormat::Rgba,
            "RGB" => PixelFormat::Rgb,
            "BGR" => PixelFormat::Bgr,
            _ => return None,
        })
    }

    /// xpra's name for the format.
    pub fn xpra_name(self) -> &'static str {
        match self {
            PixelFormat::Bgrx => "BGRX",
            PixelFormat::Bgra => "BGRA",
            PixelFormat::Rgbx => "RGBX",
            PixelFormat::Rgba => "RGBA",
            PixelFormat::Rgb => "RGB",
            PixelFormat::Bgr => "BGR",
        }
    }
}

/// A video codec a client can decode, by xpra's coding name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VideoCodec {
    /// H.264, Annex-B access units (`h264_nvenc` or `libx264`).
    H264,
    /// VP8 (`libvpx`).
    Vp8,
    /// VP9 (`libvpx-vp9`).
    Vp9,
}

impl VideoCodec {
    /// xpra's coding name: `"h264"`, `"vp8"`, `"vp9"`.
    pub fn xpra_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
        }
    }

    /// The codec for xpra's coding name.
    pub fn from_xpra(name: &str) -> Option<VideoCodec> {
        Some(match name {
            "h264" => VideoCodec::H264,
            "vp8" => VideoCodec::Vp8,
            "vp9" => VideoCodec::Vp9,
            _ => return None,
        })
    }

    /// The codec to use for a client that decodes `codings` (its `encodings.core`), in the
    /// gateway's order of preference: H.264, then VP8 (cheaper to encode than VP9), then VP9.
    pub fn for_client<S: AsRef<str>>(codings: &[S]) -> Option<VideoCodec> {
        [VideoCodec::H264, VideoCodec::Vp8, VideoCodec::Vp9]
            .into_iter()
            .find(|c| codings.iter().any(|n| n.as_ref() == c.xpra_name()))
    }
}

/// One raw frame: the whole picture of a window (not a damaged region).
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row, padding included (at least `width * bytes_per_pixel`).
    pub stride: usize,
    /// Pixel layout.
    pub format: PixelFormat,
    /// `stride * height` bytes (the last row may be short: `width * bytes_per_pixel`).
    pub data: Bytes,
}

/// Asks the EncoderPool to encode one frame of a stream.
///
/// The answer comes once the frame is encoded, or at once if the pool refuses it. A frame still
/// waiting in the queue when a newer frame of the same stream arrives is replaced by it
/// ("coalesced"): the older request is answered [`EncodeRefused::Coalesced`], and the newer frame's
/// [`Encoded::covers`] lists the older frame's tag, so the caller can ack both.
#[derive(Debug, Clone)]
pub struct EncodeFrame {
    /// The stream: (connection, window).
    pub key: StreamKey,
    /// The codec the client decodes.
    pub codec: VideoCodec,
    /// The picture.
    pub frame: RawFrame,
    /// Start a new stream (frame 0, a keyframe with in-band headers): after a refresh or a
    /// client decode error.
    pub keyframe: bool,
    /// The caller's tag, returned in [`Encoded::covers`] (the relay uses the server's
    /// `packet_sequence`).
    pub tag: u64,
}

impl Message for EncodeFrame {
    type Result = Result<Encoded, EncodeRefused>;
}

/// One compressed frame.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The stream.
    pub key: StreamKey,
    /// The codec of `data`.
    pub codec: VideoCodec,
    /// The FFmpeg encoder that made it (`"libx264"`, `"h264_nvenc"`, `"libvpx"`, ...).
    pub encoder: &'static str,
    /// One access unit (H.264, Annex-B, SPS/PPS in-band on keyframes) or one VP8/VP9 frame.
    pub data: Bytes,
    /// The frame number in its stream: 0 starts a new stream (the client resets its decoder).
    pub frame: u64,
    /// Whether this frame is a keyframe (IDR).
    pub keyframe: bool,
    /// Encoded width (the frame's width).
    pub width: u32,
    /// Encoded height.
    pub height: u32,
    /// The client-side colourspace: xpra's `csc` draw option (always `"YUV420P"`).
    pub csc: &'static str,
    /// Whether the stream is full-range (always false: limited-range BT.601).
    pub full_range: bool,
    /// Tags of the frames this one stands for: its own tag last, coalesced older ones first.
    pub covers: Vec<u64>,
    /// Microseconds spent waiting in the queue.
    pub queued_us: u64,
    /// Microseconds spent converting and encoding.
    pub encode_us: u64,
}

/// Why the pool did not encode a frame. The caller acks the frame's draw with 0 ("skipped").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeRefused {
    /// A newer frame of the same stream replaced this one while it waited; that frame's
    /// [`Encoded::covers`] lists this one's tag.
    Coalesced,
    /// The queue was full (backpressure): the caller should send this frame later or drop it.
    QueueFull,
    /// No encoder for this codec (the probe found none): the caller should fall back to rgb.
    NoEncoder(VideoCodec),
    /// The frame cannot be encoded (too small, odd size for H.264, short data, ...).
    BadFrame(String),
    /// The encoder failed; the stream is reset and the next frame starts a new one.
    Failed(String),
    /// The pool is stopping or a worker went away.
    Unavailable,
}

impl std::fmt::Display for EncodeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeRefused::Coalesced => write!(f, "coalesced into a newer frame"),
            EncodeRefused::QueueFull => write!(f, "encoder queue full"),
            EncodeRefused::NoEncoder(c) => write!(f, "no {} encoder available", c.xpra_name()),
            EncodeRefused::BadFrame(why) => write!(f, "bad frame: {why}"),
            EncodeRefused::Failed(why) => write!(f, "encoder failed: {why}"),
            EncodeRefused::Unavailable => write!(f, "encoder pool unavailable"),
        }
    }
}

impl std::error::Error for EncodeRefused {}

/// Forgets the streams of a connection (it ended) or of one window (`lost-window`).
#[derive(Debug, Clone, Copy)]
pub struct DropStreams {
    /// The connection.
    pub connection: u64,
    /// One window, or all of the connection's windows.
    pub window: Option<u64>,
}

impl Message for DropStreams {
    type Result = ();
}

/// What the probe found about one encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderStatus {
    /// FFmpeg's encoder name.
    pub name: String,
    /// The codec it makes (`"h264"`, `"vp8"`, `"vp9"`).
    pub codec: String,
    /// Whether it opened and encoded a test frame.
    pub available: bool,
    /// Why it is not available (for example `"no libcuda.so.1: NVIDIA driver not installed"`).
    pub reason: Option<String>,
}

/// The pool's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderCounters {
    /// Frames encoded.
    pub frames: u64,
    /// Frames refused because the queue was full.
    pub skipped: u64,
    /// Frames replaced by a newer frame of the same stream while queued.
    pub coalesced: u64,
    /// Frames that failed to encode.
    pub failed: u64,
    /// Frames waiting now.
    pub queue_depth: u64,
    /// The most frames that ever waited at once.
    pub peak_queue_depth: u64,
    /// Streams (encoder states) open now.
    pub streams: u64,
    /// NVENC sessions open now.
    pub nvenc_sessions: u64,
    /// Streams that wanted NVENC but got the next encoder because of the session limit.
    pub nvenc_limited: u64,
    /// Compressed bytes produced.
    pub bytes_out: u64,
}

/// The pool's state, for `xgate ctl info` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// The H.264 encoder new streams get (`None`: none works, H.264 clients get VP8/VP9 or rgb).
    pub active_h264: Option<String>,
    /// Every encoder probed, in order of preference, with why it is not used.
    pub encoders: Vec<EncoderStatus>,
    /// Worker threads.
    pub workers: usize,
    /// Queue bound (frames waiting, all streams together).
    pub queue_limit: usize,
    /// Counters.
    pub counters: EncoderCounters,
}

/// Asks the EncoderPool for its [`EncoderInfo`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GetEncoderInfo;

impl Message for GetEncoderInfo {
    type Result = EncoderInfo;
}
