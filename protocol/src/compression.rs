//! Payload compressors (§1.1 compression byte): zlib, lz4, brotli, zstd.
//!
//! Decompression is always bounded: the output never grows past the caller's `max_out`, the lz4
//! size prefix is checked before anything is allocated, and the streaming formats (zlib, brotli,
//! zstd) are decoded incrementally instead of trusting any size the input claims.

use std::io::Read;

use bytes::Bytes;

/// xpra's cap on decompressed data (`MAX_DECOMPRESSED_SIZE`): 256 MiB.
pub const MAX_DECOMPRESSED_SIZE: usize = 256 * 1024 * 1024;

/// Compression byte bit for lz4.
pub const LZ4_FLAG: u8 = 0x10;
/// Compression byte bit for lzo (legacy, unsupported).
pub const LZO_FLAG: u8 = 0x20;
/// Compression byte bit for brotli.
pub const BROTLI_FLAG: u8 = 0x40;
/// Compression byte bit for zstd.
pub const ZSTD_FLAG: u8 = 0x80;

/// Why a payload could not be compressed or decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// An algorithm xpra knows but this crate does not implement (lzo).
    #[error("unsupported compressor {name} (compression byte 0x{byte:02x})")]
    Unsupported {
        /// The algorithm's name.
        name: &'static str,
        /// The compression byte.
        byte: u8,
    },
    /// A compression byte that names no algorithm (level 0 with a bit, several bits).
    #[error("invalid compression byte 0x{0:02x}")]
    InvalidByte(u8),
    /// The decompressed data (or the size an lz4 prefix claims) is over the cap.
    #[error("decompressed size {size} exceeds the limit of {max}")]
    TooLarge {
        /// The size reached or claimed (a lower bound for streaming formats).
        size: u64,
        /// The cap.
        max: usize,
    },
    /// The lz4 payload is shorter than its 4-byte size prefix.
    #[error("lz4 payload too short for its size prefix")]
    MissingSizePrefix,
    /// The lz4 block decompressed to a size other than its prefix says.
    #[error("lz4 size prefix says {expected} bytes, block holds {actual}")]
    SizeMismatch {
        /// The prefix's size.
        expected: usize,
        /// What the block produced.
        actual: usize,
    },
    /// The stream ended before the compressed data did.
    #[error("{0} stream is truncated")]
    Truncated(&'static str),
    /// The compressed data is corrupt.
    #[error("corrupt {algorithm} data: {detail}")]
    Corrupt {
        /// The algorithm.
        algorithm: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The compressor itself failed (should not happen for in-memory buffers).
    #[error("{algorithm} compression failed: {detail}")]
    CompressFailed {
        /// The algorithm.
        algorithm: &'static str,
        /// The compressor's message.
        detail: String,
    },
}

/// A network compressor, as named in xpra's `compressors` caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compressor {
    /// No compression (compression byte 0).
    None,
    /// zlib stream with RFC 1950 header; level 1..=9 and no algorithm bit (xpra <= 5.x).
    Zlib,
    /// 4-byte little-endian size, then one raw lz4 block (python-lz4 `store_size=True`).
    Lz4,
    /// A plain brotli stream.
    Brotli,
    /// A plain zstd frame (xpra 6.6).
    Zstd,
}

impl Compressor {
    /// Every compressor this crate implements, in xpra's preference order.
    pub const ALL: [Compressor; 5] = [
        Compressor::Lz4,
        Compressor::Zstd,
        Compressor::Brotli,
        Compressor::Zlib,
        Compressor::None,
    ];

    /// The compressor named by a compression byte (0 = [`Compressor::None`]).
    pub fn from_byte(byte: u8) -> Result<Compressor, CompressionError> {
        if byte == 0 {
            return Ok(Compressor::None);
        }
        if byte & 0x0F == 0 {
            return Err(CompressionError::InvalidByte(byte));
        }
        match byte & 0xF0 {
            0 => Ok(Compressor::Zlib),
            LZ4_FLAG => Ok(Compressor::Lz4),
            BROTLI_FLAG => Ok(Compressor::Brotli),
            ZSTD_FLAG => Ok(Compressor::Zstd),
            LZO_FLAG => Err(CompressionError::Unsupported { name: "lzo", byte }),
            _ => Err(CompressionError::InvalidByte(byte)),
        }
    }

    /// The compression byte xpra writes for this compressor at `level` (0 for `None` or level 0).
    ///
    /// zlib levels are clamped to 1..=9, lz4 to 1..=15, brotli to 1..=11, zstd to 1..=15.
    pub fn to_byte(self, level: u8) -> u8 {
        if level == 0 {
            return 0;
        }
        match self {
            Compressor::None => 0,
            Compressor::Zlib => level.min(9),
            Compressor::Lz4 => level.min(15) | LZ4_FLAG,
            Compressor::Brotli => level.min(11) | BROTLI_FLAG,
            Compressor::Zstd => level.min(15) | ZSTD_FLAG,
        }
    }

    /// The name used in xpra's caps.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::None => "none",
            Compressor::Zlib => "zlib",
            Compressor::Lz4 => "lz4",
            Compressor::Brotli => "brotli",
            Compressor::Zstd => "zstd",
        }
    }

    /// The compressor with this caps name.
    pub fn from_name(name: &str) -> Option<Compressor> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

fn corrupt(algorithm: &'static str, e: impl std::fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        algorithm,
        detail: e.to_string(),
    }
}

fn compress_failed(algorithm: &'static str, e: impl std::fmt::Display) -> CompressionError {
    CompressionError::CompressFailed {
        algorithm,
        detail: e.to_string(),
    }
}

/// Compresses `data` in the payload format of `comp` (the lz4 result carries its size prefix).
///
/// `level` 0 means the fastest setting of the algorithm, not "uncompressed": callers decide
/// whether to compress at all. `Compressor::None` returns a copy of the input.
pub fn compress(comp: Compressor, level: u8, data: &[u8]) -> Result<Bytes, CompressionError> {
    match comp {
        Compressor::None => Ok(Bytes::copy_from_slice(data)),
        Compressor::Lz4 => {
            let len = u32::try_from(data.len()).map_err(|_| CompressionError::TooLarge {
                size: data.len() as u64,
                max: u32::MAX as usize,
            })?;
            let mut out =
                Vec::with_capacity(4 + lz4_flex::block::get_maximum_output_size(data.len()));
            out.extend_from_slice(&len.to_le_bytes());
            out.resize(out.capacity(), 0);
            let n = lz4_flex::block::compress_into(data, &mut out[4..])
                .map_err(|e| compress_failed("lz4", e))?;
            out.truncate(4 + n);
            Ok(out.into())
        }
        Compressor::Zlib => {
            use std::io::Write;
            let level = flate2::Compression::new(u32::from(level.clamp(1, 9)));
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
            enc.write_all(data)
                .map_err(|e| compress_failed("zlib", e))?;
            Ok(enc.finish().map_err(|e| compress_failed("zlib", e))?.into())
        }
        Compressor::Brotli => {
            // xpra: level capped at 11, or 9 when the input is over 1 MiB.
            let cap = if data.len() > 1024 * 1024 { 9 } else { 11 };
            let params = brotli::enc::BrotliEncoderParams {
                quality: i32::from(level.min(cap)),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(data.len() / 2 + 64);
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)
                .map_err(|e| compress_failed("brotli", e))?;
            Ok(out.into())
        }
        Compressor::Zstd => {
            let out = zstd::bulk::compress(data, i32::from(level.clamp(1, 19)))
                .map_err(|e| compress_failed("zstd", e))?;
            Ok(out.into())
        }
    }
}

/// Decompresses a payload according to its compression byte, producing at most `max_out` bytes.
///
/// An uncompressed payload (byte 0) is copied; use [`decompress_bytes`] to avoid that.
pub fn decompress(byte: u8, data: &[u8], max_out: usize) -> Result<Bytes, CompressionError> {
    match Compressor::from_byte(byte)? {
        Compressor::None => {
            check_size(data.len() as u64, max_out)?;
            Ok(Bytes::copy_from_slice(data))
        }
        comp => decompress_with(comp, data, max_out).map(Bytes::from),
    }
}

/// Like [`decompress`], but an uncompressed payload is returned as is (no copy).
pub fn decompress_bytes(byte: u8, data: Bytes, max_out: usize) -> Result<Bytes, CompressionError> {
    match Compressor::from_byte(byte)? {
        Compressor::None => {
            check_size(data.len() as u64, max_out)?;
            Ok(data)
        }
        comp => decompress_with(comp, &data, max_out).map(Bytes::from),
    }
}

/// Decompresses with a known compressor. `Compressor::None` copies.
pub fn decompress_with(
    comp: Compressor,
    data: &[u8],
    max_out: usize,
) -> Result<Vec<u8>, CompressionError> {
    let max_out = max_out.min(MAX_DECOMPRESSED_SIZE);
    match comp {
        Compressor::None => {
            check_size(data.len() as u64, max_out)?;
            Ok(data.to_vec())
        }
        Compressor::Lz4 => lz4_decompress(data, max_out),
        Compressor::Zlib => zlib_decompress(data, max_out, None),
        Compressor::Brotli => read_bounded("brotli", brotli_reader(data), max_out),
        Compressor::Zstd => read_bounded("zstd", zstd_reader(data, max_out)?, max_out),
    }
}

/// Decompresses at most the first `prefix` bytes of a payload: enough to peek at the start of a
/// packet without inflating all of it. lz4 blocks cannot be decoded partially and are decoded whole.
pub fn decompress_prefix(
    byte: u8,
    data: &[u8],
    prefix: usize,
    max_out: usize,
) -> Result<Vec<u8>, CompressionError> {
    let max_out = max_out.min(MAX_DECOMPRESSED_SIZE);
    match Compressor::from_byte(byte)? {
        Compressor::None => Ok(data[..data.len().min(prefix)].to_vec()),
        Compressor::Lz4 => lz4_decompress(data, max_out),
        Compressor::Zlib => zlib_decompress(data, max_out, Some(prefix)),
        Compressor::Brotli => read_prefix("brotli", brotli_reader(data), prefix),
        Compressor::Zstd => read_prefix("zstd", zstd_reader(data, max_out)?, prefix),
    }
}

/// A streaming brotli decoder over `data`, read through [`read_bounded`] or [`read_prefix`].
fn brotli_reader(data: &[u8]) -> brotli::Decompressor<&[u8]> {
    brotli::Decompressor::new(data, 4096)
}

/// A streaming decoder of one zstd frame in `data`, whose window may not exceed what `max_out`
/// bytes of output need: a frame header never makes it allocate more than that (xpra's payloads
/// are small; 2^10 is zstd's minimum window).
fn zstd_reader(
    data: &[u8],
    max_out: usize,
) -> Result<zstd::stream::read::Decoder<'_, &[u8]>, CompressionError> {
    let mut dec = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt("zstd", e))?;
    let window_log = (usize::BITS - max_out.max(1024).leading_zeros()).clamp(10, 27);
    dec.window_log_max(window_log)
        .map_err(|e| corrupt("zstd", e))?;
    Ok(dec.single_frame())
}

fn check_size(size: u64, max: usize) -> Result<(), CompressionError> {
    if size > max as u64 {
        return Err(CompressionError::TooLarge { size, max });
    }
    Ok(())
}

/// The largest output an lz4 block of `input_len` bytes can produce: every input byte of a
/// match-length extension adds at most 255 output bytes.
fn lz4_max_output(input_len: usize) -> u64 {
    (input_len as u64) * 255 + 64
}

fn lz4_decompress(data: &[u8], max_out: usize) -> Result<Vec<u8>, CompressionError> {
    let (prefix, block) = data
        .split_first_chunk::<4>()
        .ok_or(CompressionError::MissingSizePrefix)?;
    let size = u32::from_le_bytes(*prefix) as usize;
    // Both checks happen before anything is allocated.
    check_size(size as u64, max_out)?;
    if size as u64 > lz4_max_output(block.len()) {
        return Err(corrupt(
            "lz4",
            format!(
                "size prefix {size} impossible for a {}-byte block",
                block.len()
            ),
        ));
    }
    let mut out = vec![0u8; size];
    let n = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| corrupt("lz4", e))?;
    if n != size {
        return Err(CompressionError::SizeMismatch {
            expected: size,
            actual: n,
        });
    }
    Ok(out)
}

/// zlib with an explicit loop: flate2's `Read` adapters report a truncated stream as a clean end,
/// which Python's `zlib.decompress` (xpra's decoder) refuses.
fn zlib_decompress(
    data: &[u8],
    max_out: usize,
    prefix: Option<usize>,
) -> Result<Vec<u8>, CompressionError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let limit = prefix.map_or(max_out, |p| p.min(max_out));
    let mut d = Decompress::new(true);
    let mut out: Vec<u8> =
        Vec::with_capacity(data.len().saturating_mul(4).clamp(64, limit.max(64)));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                if prefix.is_some() {
                    return Ok(out);
                }
                return Err(CompressionError::TooLarge {
                    size: out.len() as u64 + 1,
                    max: max_out,
                });
            }
            // Grow geometrically, never past the limit (+1 to detect overflow past it).
            let want = out
                .capacity()
                .saturating_mul(2)
                .min(limit.saturating_add(1));
            out.reserve_exact(want - out.len());
        }
        let consumed = d.total_in() as usize;
        let produced = out.len();
        let input = data.get(consumed..).unwrap_or_default();
        let status = d
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| corrupt("zlib", e))?;
        if out.len() > limit {
            if prefix.is_some() {
                out.truncate(limit);
                return Ok(out);
            }
            return Err(CompressionError::TooLarge {
                size: out.len() as u64,
                max: max_out,
            });
        }
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                let progressed = d.total_in() as usize != consumed || out.len() != produced;
                if !progressed && out.len() < out.capacity() {
                    // Input exhausted and room left for output: the stream is cut short.
                    return Err(CompressionError::Truncated("zlib"));
                }
            }
        }
    }
}

fn read_bounded(
    algorithm: &'static str,
    reader: impl Read,
    max_out: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    reader
        .take(max_out as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                CompressionError::Truncated(algorithm)
            } else if e.to_string().contains("too much memory") {
                // zstd: the frame's window is larger than the output may be.
                CompressionError::TooLarge {
                    size: max_out as u64 + 1,
                    max: max_out,
                }
            } else {
                corrupt(algorithm, e)
            }
        })?;
    check_size(out.len() as u64, max_out)?;
    Ok(out)
}

fn read_prefix(
    algorithm: &'static str,
    reader: impl Read,
    prefix: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    reader
        .take(prefix as u64)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(algorithm, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn bytes_and_names_map_both_ways() {
        assert_eq!(Compressor::from_byte(0), Ok(Compressor::None));
        assert_eq!(Compressor::from_byte(0x01), Ok(Compressor::Zlib));
        assert_eq!(Compressor::from_byte(0x11), Ok(Compressor::Lz4));
        assert_eq!(Compressor::from_byte(0x41), Ok(Compressor::Brotli));
        assert_eq!(Compressor::from_byte(0x83), Ok(Compressor::Zstd));
        assert_eq!(
            Compressor::from_byte(0x21),
            Err(CompressionError::Unsupported {
                name: "lzo",
                byte: 0x21
            })
        );
        assert_eq!(
            Compressor::from_byte(0x10),
            Err(CompressionError::InvalidByte(0x10))
        );
        assert_eq!(
            Compressor::from_byte(0x51),
            Err(CompressionError::InvalidByte(0x51))
        );
        assert_eq!(Compressor::Lz4.to_byte(1), 0x11);
        assert_eq!(Compressor::Lz4.to_byte(20), 0x1F);
        assert_eq!(Compressor::Zlib.to_byte(1), 0x01);
        assert_eq!(Compressor::Brotli.to_byte(3), 0x43);
        assert_eq!(Compressor::Zstd.to_byte(3), 0x83);
        assert_eq!(Compressor::Lz4.to_byte(0), 0);
        for c in Compressor::ALL {
            assert_eq!(Compressor::from_name(c.name()), Some(c));
            if c != Compressor::None {
                assert_eq!(Compressor::from_byte(c.to_byte(1)), Ok(c));
            }
        }
    }

    #[test]
    fn every_compressor_round_trips() {
        let data = sample();
        for c in Compressor::ALL {
            for level in [1, 5, 9] {
                let z = compress(c, level, &data).unwrap();
                let byte = c.to_byte(level);
                let back = decompress(byte, &z, MIB).unwrap();
                assert_eq!(back, data, "{c:?} level {level}");
            }
        }
    }

    #[test]
    fn lz4_uses_python_store_size_format() {
        let z = compress(Compressor::Lz4, 1, b"hello hello hello hello").unwrap();
        assert_eq!(&z[..4], &23u32.to_le_bytes());
        assert_eq!(
            decompress(0x11, &z, 100).unwrap(),
            &b"hello hello hello hello"[..]
        );
    }

    #[test]
    fn lz4_huge_prefix_is_refused_before_allocating() {
        let mut bomb = u32::MAX.to_le_bytes().to_vec();
        bomb.extend_from_slice(&[0x00]);
        assert!(matches!(
            decompress(0x11, &bomb, MAX_DECOMPRESSED_SIZE),
            Err(CompressionError::TooLarge {
                size: 0xFFFF_FFFF,
                ..
            })
        ));
        // Under the cap, but impossible for so short a block.
        let mut lie = (200 * MIB as u32).to_le_bytes().to_vec();
        lie.extend_from_slice(&[0x00; 8]);
        assert!(matches!(
            decompress(0x11, &lie, MAX_DECOMPRESSED_SIZE),
            Err(CompressionError::Corrupt { .. })
        ));
        assert_eq!(
            decompress(0x11, &[1, 2], 100),
            Err(CompressionError::MissingSizePrefix)
        );
    }

    #[test]
    fn lz4_size_mismatch_is_an_error() {
        let mut z = compress(Compressor::Lz4, 1, &[7u8; 1000]).unwrap().to_vec();
        z[..4].copy_from_slice(&999u32.to_le_bytes());
        assert!(decompress(0x11, &z, MIB).is_err());
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let zeros = vec![0u8; 4 * MIB];
        for c in [
            Compressor::Zlib,
            Compressor::Brotli,
            Compressor::Zstd,
            Compressor::Lz4,
        ] {
            let z = compress(c, 9, &zeros).unwrap();
            assert!(z.len() < 64 * 1024, "{c:?} bomb is small");
            let r = decompress(c.to_byte(9), &z, MIB);
            assert!(
                matches!(r, Err(CompressionError::TooLarge { .. })),
                "{c:?}: {r:?}"
            );
            assert_eq!(
                decompress(c.to_byte(9), &z, 4 * MIB).unwrap().len(),
                4 * MIB
            );
        }
    }

    #[test]
    fn truncated_streams_are_errors() {
        let data = sample();
        for c in [
            Compressor::Zlib,
            Compressor::Brotli,
            Compressor::Zstd,
            Compressor::Lz4,
        ] {
            let z = compress(c, 5, &data).unwrap();
            let cut = &z[..z.len() / 2];
            assert!(decompress(c.to_byte(5), cut, MIB).is_err(), "{c:?}");
        }
    }

    #[test]
    fn prefix_decompression_stops_early() {
        let data = sample();
        for c in Compressor::ALL {
            let z = compress(c, 3, &data).unwrap();
            let p = decompress_prefix(c.to_byte(3), &z, 100, MIB).unwrap();
            assert!(p.len() >= 100.min(data.len()));
            assert_eq!(&p[..100], &data[..100]);
        }
    }
}
