//! The start-up probe: which encoders open and encode a test frame here, and why the others do not.
//!
//! `h264_nvenc` is in Debian's FFmpeg, but it loads the NVIDIA driver's `libcuda.so.1` when opened
//! and fails without it; GPUs without an NVENC engine (H100, H200) fail later, at open. The probe
//! looks for the driver first, so that the reason it gives is "no libcuda.so.1" rather than
//! FFmpeg's generic error code.

use std::path::Path;

use bytes::Bytes;
use xgate_messages::encode::{EncoderStatus, PixelFormat, RawFrame, VideoCodec};

use super::error::EncoderError;
use super::stream::{codec_of, static_name, StreamEncoder};

/// The encoders probed when the configuration names none for a codec: VP8 and VP9 for clients
/// without an H.264 decoder (the 6.5.5 client from PyPI).
pub const VPX_ENCODERS: &[&str] = &["libvpx", "libvpx-vp9"];

/// The size of the probe's test frames (above every encoder's minimum).
const PROBE_SIZE: u32 = 256;

/// The encoders to probe, in order: the configured ones, then VP8/VP9 if not named.
pub fn probe_order(configured: &[String]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for name in configured
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if !order.iter().any(|n| n == name) {
            order.push(name.to_string());
        }
    }
    for name in VPX_ENCODERS {
        if !order.iter().any(|n| n == name) {
            order.push((*name).to_string());
        }
    }
    order
}

/// Probes every encoder in `order` (see [`probe_order`]): opens it and encodes two test frames.
/// Blocking: a few milliseconds per encoder without a GPU, longer with one.
pub fn probe(order: &[String]) -> Vec<EncoderStatus> {
    order.iter().map(|name| probe_one(name)).collect()
}

/// Probes one encoder.
pub fn probe_one(name: &str) -> EncoderStatus {
    let codec = codec_of(name);
    let result = try_encoder(name);
    EncoderStatus {
        name: name.to_string(),
        codec: codec.map(|c| c.xpra_name()).unwrap_or("?").to_string(),
        available: result.is_ok(),
        reason: result.err().map(|e| e.to_string()),
    }
}

/// Opens `name` at a small size and encodes a keyframe and a second frame.
pub fn try_encoder(name: &str) -> Result<(), EncoderError> {
    let name = static_name(name).ok_or_else(|| EncoderError::Unsupported(name.into()))?;
    super::stream::init();
    if ffmpeg_next::encoder::find_by_name(name).is_none() {
        return Err(EncoderError::NotInBuild(name.into()));
    }
    if super::stream::is_nvenc(name) && !has_library("libcuda.so.1") {
        return Err(EncoderError::NoCuda);
    }
    let mut enc = StreamEncoder::open(name, PROBE_SIZE, PROBE_SIZE, PixelFormat::Bgrx)?;
    for i in 0..2u8 {
        let frame = test_frame(PROBE_SIZE, PROBE_SIZE, i);
        let (data, number, _key) = enc.encode(&frame, false)?;
        if data.is_empty() || number != u64::from(i) {
            return Err(EncoderError::NoOutput(name));
        }
    }
    Ok(())
}

/// A BGRX test picture: a gradient shifted by `phase`.
pub fn test_frame(width: u32, height: u32, phase: u8) -> RawFrame {
    let stride = width as usize * 4;
    let mut data = vec![0u8; stride * height as usize];
    for (y, row) in data.chunks_mut(stride).enumerate() {
        for (x, px) in row.chunks_mut(4).enumerate() {
            px[0] = (x as u8).wrapping_add(phase.wrapping_mul(8));
            px[1] = y as u8;
            px[2] = ((x + y) / 2) as u8;
        }
    }
    RawFrame {
        width,
        height,
        stride,
        format: PixelFormat::Bgrx,
        data: Bytes::from(data),
    }
}

/// The H.264 encoder new streams get: the first available H.264 encoder in probe order.
pub fn active_for(statuses: &[EncoderStatus], codec: VideoCodec) -> Option<String> {
    statuses
        .iter()
        .find(|s| s.available && s.codec == codec.xpra_name())
        .map(|s| s.name.clone())
}

/// Whether the dynamic loader can find `lib`: in `LD_LIBRARY_PATH`, in the loader cache
/// (`/etc/ld.so.cache` holds the names it knows), or in the usual library directories.
pub fn has_library(lib: &str) -> bool {
    let mut dirs: Vec<String> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/lib64",
            "/lib",
            "/usr/local/nvidia/lib64",
            "/usr/local/cuda/lib64/stubs",
            "/usr/lib/wsl/lib",
        ]
        .map(str::to_string),
    );
    if dirs.iter().any(|d| Path::new(d).join(lib).exists()) {
        return true;
    }
    std::fs::read("/etc/ld.so.cache")
        .map(|cache| {
            let needle = format!("{lib}\0");
            cache.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keeps_configured_first_and_adds_vpx() {
        let order = probe_order(&["h264_nvenc".into(), "libx264".into(), "libx264".into()]);
        assert_eq!(order, ["h264_nvenc", "libx264", "libvpx", "libvpx-vp9"]);
        let order = probe_order(&["libvpx-vp9".into()]);
        assert_eq!(order, ["libvpx-vp9", "libvpx"]);
    }

    #[test]
    fn unknown_names_say_why() {
        let s = probe_one("h264_vaapi");
        assert!(!s.available);
        assert!(s.reason.unwrap_or_default().contains("unsupported encoder"));
    }

    #[test]
    fn libc_is_found_and_nonsense_is_not() {
        assert!(has_library("libc.so.6"));
        assert!(!has_library("libxgate-does-not-exist.so.9"));
    }
}
