//! The `draw` packets of a re-encoded session: reading the server's raw rgb draws (reference
//! `xpra-video.md` §2) and writing the video and rgb draws the client decodes (§3).
//!
//! Layout, both generations: `["draw", wid, x, y, w, h, coding, data, packet_sequence,
//! rowstride, client_options]`.

use bytes::Bytes;
use xgate_messages::encode::{Encoded, PixelFormat};
use xgate_protocol::{compression, Compressor, Packet, Value};

/// Raw rgb below this size is sent uncompressed (as xpra's servers do).
const COMPRESS_MIN: usize = 512;

/// Why a server draw cannot be composited (it then passes through unchanged).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DrawError {
    /// A field is missing or has the wrong type.
    #[error("malformed draw: {0}")]
    Malformed(&'static str),
    /// The pixel layout is not one the gateway composites.
    #[error("unsupported rgb_format {0:?}")]
    Format(String),
    /// Compressed with something other than lz4 (the hello asked for lz4 only).
    #[error("unsupported pixel compression {0:?}")]
    Compression(String),
    /// lz4 data that does not inflate.
    #[error("corrupt lz4 pixels: {0}")]
    Corrupt(String),
    /// An XOR delta frame (the hello turns them off).
    #[error("delta frames are not supported")]
    Delta,
}

/// One `scroll` entry: the region at (x, y, w, h) moves by (dx, dy).
pub type ScrollEntry = (i64, i64, u32, u32, i64, i64);

/// What a server draw carries, for the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Raw pixels (already decompressed).
    Pixels {
        /// Their layout.
        format: PixelFormat,
        /// Bytes per row (0: `w * bpp`).
        stride: usize,
        /// The pixels.
        data: Bytes,
    },
    /// Regions to move.
    Scroll(Vec<ScrollEntry>),
}

/// A server draw the gateway composites.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDraw {
    /// Window id.
    pub wid: u64,
    /// Region position.
    pub x: i64,
    /// Region position.
    pub y: i64,
    /// Region width.
    pub w: u32,
    /// Region height.
    pub h: u32,
    /// The server's `packet_sequence`, acked back to it.
    pub sequence: u64,
    /// What to do with the framebuffer.
    pub content: Content,
    /// The window's size when the server drew (`window-size`), if it said.
    pub window_size: Option<(u32, u32)>,
    /// More draws of this update follow (`flush` > 0): encode after the last one.
    pub more_follow: bool,
}

fn int(p: &Packet, i: usize, what: &'static str) -> Result<i64, DrawError> {
    p.get(i)
        .and_then(Value::as_int)
        .ok_or(DrawError::Malformed(what))
}

fn size(v: i64, what: &'static str) -> Result<u32, DrawError> {
    u32::try_from(v).map_err(|_| DrawError::Malformed(what))
}

/// The coding of a draw packet, if it is one.
pub fn coding(p: &Packet) -> Option<&str> {
    p.get(6).and_then(Value::as_str)
}

/// Whether the gateway composites draws of this coding (the rest passes through).
pub fn is_composited(coding: &str) -> bool {
    matches!(coding, "rgb24" | "rgb32" | "scroll")
}

/// Reads a raw rgb or scroll draw; `max_bytes` bounds the inflated pixel data.
pub fn parse(p: &Packet, max_bytes: usize) -> Result<ServerDraw, DrawError> {
    let wid = u64::try_from(int(p, 1, "wid")?).map_err(|_| DrawError::Malformed("wid"))?;
    let x = int(p, 2, "x")?;
    let y = int(p, 3, "y")?;
    let w = size(int(p, 4, "width")?, "width")?;
    let h = size(int(p, 5, "height")?, "height")?;
    let coding = coding(p).ok_or(DrawError::Malformed("coding"))?;
    let sequence = u64::try_from(int(p, 8, "packet_sequence")?)
        .map_err(|_| DrawError::Malformed("packet_sequence"))?;
    let empty = Value::Dict(Vec::new());
    let options = p.get(10).unwrap_or(&empty);
    let window_size = options
        .get("window-size")
        .and_then(Value::as_list)
        .and_then(|l| match l {
            [w, h] => Some((
                u32::try_from(w.as_int()?).ok()?,
                u32::try_from(h.as_int()?).ok()?,
            )),
            _ => None,
        });
    let more_follow = options
        .get("flush")
        .and_then(Value::as_int)
        .is_some_and(|f| f > 0);
    let content = if coding == "scroll" {
        let entries = p
            .get(7)
            .and_then(Value::as_list)
            .ok_or(DrawError::Malformed("scroll data"))?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let f: Vec<i64> = e
                .as_list()
                .ok_or(DrawError::Malformed("scroll entry"))?
                .iter()
                .filter_map(Value::as_int)
                .collect();
            let [sx, sy, sw, sh, dx, dy] = f[..] else {
                return Err(DrawError::Malformed("scroll entry"));
            };
            out.push((
                sx,
                sy,
                size(sw, "scroll width")?,
                size(sh, "scroll height")?,
                dx,
                dy,
            ));
        }
        Content::Scroll(out)
    } else {
        if options.get("delta").and_then(Value::as_int).unwrap_or(-1) >= 0 {
            return Err(DrawError::Delta);
        }
        for key in ["zlib", "lzo", "brotli", "zstd"] {
            if options.get(key).and_then(Value::as_int).unwrap_or(0) > 0 {
                return Err(DrawError::Compression(key.into()));
            }
        }
        let format_name = options
            .get("rgb_format")
            .and_then(Value::as_str)
            .unwrap_or(if coding == "rgb32" { "RGBX" } else { "RGB" });
        let format = PixelFormat::from_xpra(format_name)
            .ok_or_else(|| DrawError::Format(format_name.into()))?;
        let raw = p
            .get(7)
            .and_then(Value::as_bytes)
            .ok_or(DrawError::Malformed("pixel data"))?;
        let data = if options.get("lz4").and_then(Value::as_int).unwrap_or(0) > 0 {
            compression::decompress_with(Compressor::Lz4, raw, max_bytes)
                .map(Bytes::from)
                .map_err(|e| DrawError::Corrupt(e.to_string()))?
        } else {
            match p.get(7) {
                Some(Value::Bytes(b)) => b.clone(),
                _ => Bytes::copy_from_slice(raw),
            }
        };
        let stride = usize::try_from(int(p, 9, "rowstride")?)
            .map_err(|_| DrawError::Malformed("rowstride"))?;
        Content::Pixels {
            format,
            stride,
            data,
        }
    };
    Ok(ServerDraw {
        wid,
        x,
        y,
        w,
        h,
        sequence,
        content,
        window_size,
        more_follow,
    })
}

/// The video draw for an encoded frame (§3.2's minimal set, accepted by both clients):
/// painted at 0,0 at the encoded size, carrying the server's `sequence` so that the client's ack
/// reaches the server unchanged.
pub fn video(
    wid: u64,
    sequence: u64,
    frame: &Encoded,
    window_size: (u32, u32),
    flush: u32,
) -> Value {
    let options = Value::dict([
        ("csc", Value::from(frame.csc)),
        ("frame", Value::from(frame.frame)),
        ("full-range", Value::from(frame.full_range)),
        ("flush", Value::from(flush)),
        (
            "window-size",
            Value::list([Value::from(window_size.0), Value::from(window_size.1)]),
        ),
        ("encoder", Value::from(frame.encoder)),
    ]);
    packet(
        wid,
        (0, 0, frame.width, frame.height),
        frame.codec.xpra_name(),
        Value::from(frame.data.clone()),
        sequence,
        0,
        options,
    )
}

/// A plain rgb24 draw of BGRX pixels (lz4-compressed when large enough, which both clients
/// decode): the odd edge strips next to an H.264 frame, and the fallback when a frame cannot be
/// encoded.
pub fn rgb(
    wid: u64,
    (x, y, w, h): (u32, u32, u32, u32),
    sequence: u64,
    pixels: Vec<u8>,
    window_size: (u32, u32),
    flush: u32,
) -> Value {
    let mut options = vec![
        (Value::from("rgb_format"), Value::from("BGRX")),
        (Value::from("flush"), Value::from(flush)),
        (
            Value::from("window-size"),
            Value::list([Value::from(window_size.0), Value::from(window_size.1)]),
        ),
    ];
    let data = if pixels.len() >= COMPRESS_MIN {
        match compression::compress(Compressor::Lz4, 1, &pixels) {
            Ok(z) => {
                options.push((Value::from("lz4"), Value::from(1i64)));
                z
            }
            Err(_) => Bytes::from(pixels),
        }
    } else {
        Bytes::from(pixels)
    };
    packet(
        wid,
        (x, y, w, h),
        "rgb24",
        Value::from(data),
        sequence,
        w * 4,
        Value::Dict(options),
    )
}

/// A `draw` packet: `["draw", wid, x, y, w, h, coding, data, sequence, rowstride, options]`,
/// the layout [`parse`] reads and both clients paint.
pub fn packet(
    wid: u64,
    (x, y, w, h): (u32, u32, u32, u32),
    coding: &str,
    data: Value,
    sequence: u64,
    rowstride: u32,
    options: Value,
) -> Value {
    Value::list([
        Value::from("draw"),
        Value::from(wid),
        Value::from(x),
        Value::from(y),
        Value::from(w),
        Value::from(h),
        Value::from(coding),
        data,
        Value::from(sequence),
        Value::from(rowstride),
        options,
    ])
}

/// The `damage-sequence` ack the gateway sends the server for a draw it consumed without the
/// client painting it as such (merged into a later frame): `decode_time` 0 means "skipped"
/// (§4.3: never -1, which makes the server warn and refresh).
pub fn skipped_ack(sequence: u64, wid: u64, w: u32, h: u32) -> Value {
    Value::list([
        Value::from("damage-sequence"),
        Value::from(sequence),
        Value::from(wid),
        Value::from(w),
        Value::from(h),
        Value::from(0i64),
        Value::from(""),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(coding: &str, data: Value, options: Value) -> Packet {
        Packet::from_value(packet(7, (1, 2, 2, 1), coding, data, 42, 8, options)).unwrap()
    }

    #[test]
    fn reads_lz4_pixels_and_window_size() {
        let pixels = vec![3u8; 8];
        let z = compression::compress(Compressor::Lz4, 1, &pixels).unwrap();
        let p = draw(
            "rgb24",
            Value::from(z),
            Value::dict([
                ("rgb_format", Value::from("BGRX")),
                ("lz4", Value::from(1i64)),
                ("flush", Value::from(2i64)),
                (
                    "window-size",
                    Value::list([Value::from(100i64), Value::from(50i64)]),
                ),
            ]),
        );
        let d = parse(&p, 1 << 20).unwrap();
        assert_eq!((d.wid, d.sequence, d.window_size), (7, 42, Some((100, 50))));
        assert!(d.more_follow);
        assert_eq!(
            d.content,
            Content::Pixels {
                format: PixelFormat::Bgrx,
                stride: 8,
                data: Bytes::from(pixels)
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_composite() {
        let opts =
            |k: &str| Value::dict([("rgb_format", Value::from("BGRX")), (k, Value::from(1i64))]);
        let data = Value::from(vec![0u8; 8]);
        assert_eq!(
            parse(&draw("rgb24", data.clone(), opts("zlib")), 1 << 20),
            Err(DrawError::Compression("zlib".into()))
        );
        assert_eq!(
            parse(&draw("rgb24", data.clone(), opts("delta")), 1 << 20),
            Err(DrawError::Delta)
        );
        let r210 = Value::dict([("rgb_format", Value::from("r210"))]);
        assert_eq!(
            parse(&draw("rgb32", data.clone(), r210), 1 << 20),
            Err(DrawError::Format("r210".into()))
        );
        let bomb = Value::dict([
            ("rgb_format", Value::from("BGRX")),
            ("lz4", Value::from(1i64)),
        ]);
        let z = compression::compress(Compressor::Lz4, 1, &[0u8; 4096]).unwrap();
        assert!(matches!(
            parse(&draw("rgb24", Value::from(z), bomb), 1024),
            Err(DrawError::Corrupt(_))
        ));
    }

    #[test]
    fn reads_scroll_entries() {
        let entries = Value::list([Value::list([0i64, 13, 484, 300, 0, -13])]);
        let d = parse(&draw("scroll", entries, Value::Dict(Vec::new())), 1 << 20).unwrap();
        assert_eq!(d.content, Content::Scroll(vec![(0, 13, 484, 300, 0, -13)]));
        assert!(!d.more_follow);
    }

    #[test]
    fn rgb_draw_compresses_large_strips() {
        let v = rgb(1, (10, 0, 1, 200), 5, vec![9u8; 800], (11, 200), 0);
        let p = Packet::from_value(v).unwrap();
        assert!(p.get(10).unwrap().get("lz4").is_some());
        let d = parse(&p, 1 << 20).unwrap();
        assert_eq!((d.x, d.w, d.h, d.sequence), (10, 1, 200, 5));
    }
}
