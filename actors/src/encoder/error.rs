//! The encoder's and the frame source's errors.

use thiserror::Error;

/// Why an encoder could not be opened or could not encode a frame.
#[derive(Debug, Error)]
pub enum EncoderError {
    /// xgate does not know how to drive this FFmpeg encoder.
    #[error("unsupported encoder {0:?} (xgate drives h264_nvenc, libx264, libvpx, libvpx-vp9)")]
    Unsupported(String),
    /// The FFmpeg build has no encoder of that name.
    #[error("{0} is not in this FFmpeg build")]
    NotInBuild(String),
    /// A CUDA encoder without the NVIDIA driver's `libcuda.so.1`.
    #[error("no libcuda.so.1: the NVIDIA driver is not installed")]
    NoCuda,
    /// An FFmpeg call failed.
    #[error("{what}: {source}")]
    Ffmpeg {
        /// What was being done (`"opening libx264"`, `"sending a frame"`, ...).
        what: String,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },
    /// The frame does not fit the stream or is unusable.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The encoder kept the frame (it would need a delay, which xpra's decoders do not allow).
    #[error("{0} produced no packet for the frame")]
    NoOutput(&'static str),
}

impl EncoderError {
    /// Wraps an FFmpeg error with what was being done.
    pub(crate) fn ff(what: impl Into<String>) -> impl FnOnce(ffmpeg_next::Error) -> EncoderError {
        let what = what.into();
        move |source| EncoderError::Ffmpeg { what, source }
    }
}

/// Why the X frame source failed.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The display could not be opened.
    #[error("cannot open X display {display}: {source}")]
    Connect {
        /// The display name (`:99`).
        display: String,
        /// x11rb's error.
        #[source]
        source: x11rb::errors::ConnectError,
    },
    /// The connection to the X server failed.
    #[error("X connection: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    /// The X server refused the request.
    #[error("X request: {0}")]
    Reply(#[from] x11rb::errors::ReplyError),
    /// The screen's pixel layout is not one xgate captures.
    #[error("unsupported X visual: {0}")]
    Unsupported(String),
}
