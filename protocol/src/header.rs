//! The 8-byte chunk header (§1.1): `!BBBBL` = magic `'P'`, protocol flags, compression byte,
//! chunk index, payload length (u32 big-endian).

use std::fmt;

/// Size of a chunk header on the wire.
pub const HEADER_SIZE: usize = 8;

/// The first byte of every header.
pub const MAGIC: u8 = b'P';

/// xpra's absolute payload limit (`abs_max_packet_size`): 256 MiB, whatever the connection allows.
pub const ABS_MAX_PACKET_SIZE: u32 = 256 * 1024 * 1024;

/// xpra's normal per-chunk limit once a connection is accepted (`MAX_PACKET_SIZE`, 16 MiB).
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 16 * 1024 * 1024;

/// Highest chunk index plus one: raw chunks use indexes 1..=15.
pub const MAX_CHUNK_INDEX: u8 = 16;

/// The protocol flags byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No encoder bit: bencode (legacy).
    pub const BENCODE: Flags = Flags(0x00);
    /// Classic rencode (legacy).
    pub const RENCODE: Flags = Flags(0x01);
    /// The payload is AES-encrypted.
    pub const CIPHER: Flags = Flags(0x02);
    /// YAML payload.
    pub const YAML: Flags = Flags(0x04);
    /// "Nothing else queued behind this packet": a scheduling hint, main chunks only.
    pub const FLUSH: Flags = Flags(0x08);
    /// rencodeplus payload.
    pub const RENCODEPLUS: Flags = Flags(0x10);
    /// Every bit a valid header may carry.
    pub const ALL: Flags = Flags(0x1F);
    /// The bits that name an encoder.
    pub const ENCODER_MASK: Flags = Flags(0x01 | 0x04 | 0x10);

    /// Flags from the raw byte, keeping unknown bits (validation reports them).
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Only the encoder bits.
    pub const fn encoder_bits(self) -> Flags {
        Flags(self.0 & Self::ENCODER_MASK.0)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags(0x{:02x}", self.0)?;
        for (bit, name) in [
            (0x01, "RENCODE"),
            (0x02, "CIPHER"),
            (0x04, "YAML"),
            (0x08, "FLUSH"),
            (0x10, "RENCODEPLUS"),
        ] {
            if self.0 & bit != 0 {
                write!(f, " {name}")?;
            }
        }
        write!(f, ")")
    }
}

/// Why a header was refused. One variant per rule of §1.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The first byte is not `'P'`.
    #[error("invalid header magic 0x{0:02x}")]
    BadMagic(u8),
    /// A flag bit outside `0x1F`.
    #[error("unknown protocol flags 0x{0:02x}")]
    UnknownFlags(u8),
    /// A raw chunk (index > 0) carries an encoder or flush bit.
    #[error("raw chunk {index} carries encoder or flush flags 0x{flags:02x}")]
    RawChunkFlags {
        /// The chunk index.
        index: u8,
        /// The flags byte.
        flags: u8,
    },
    /// More than one encoder bit.
    #[error("more than one encoder flag in 0x{0:02x}")]
    MultipleEncoders(u8),
    /// A compression byte with level 0 but an algorithm bit.
    #[error("compression byte 0x{0:02x} has level 0")]
    ZeroCompressionLevel(u8),
    /// A compression byte with more than one algorithm bit.
    #[error("compression byte 0x{0:02x} names more than one algorithm")]
    MultipleAlgorithms(u8),
    /// The chunk index is 16 or more.
    #[error("chunk index {0} out of range (max 15)")]
    IndexOutOfRange(u8),
    /// A zero-length payload.
    #[error("empty payload")]
    EmptyPayload,
    /// The payload is larger than the connection allows.
    #[error("payload of {length} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        length: u32,
        /// The limit in force.
        max: u32,
    },
}

/// A parsed chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol flags: encoder, cipher, flush.
    pub flags: Flags,
    /// Compression byte: low nibble the level, high nibble the algorithm (0 = uncompressed).
    pub compression: u8,
    /// 0 for the main packet, 1..=15 for a raw chunk replacing that packet item.
    pub index: u8,
    /// Payload bytes following the header.
    pub length: u32,
}

impl Header {
    /// A header for a main packet (index 0).
    pub fn main(flags: Flags, compression: u8, length: u32) -> Header {
        Header {
            flags,
            compression,
            index: 0,
            length,
        }
    }

    /// Parses 8 bytes, checking only the magic. Call [`Header::validate`] before trusting it.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Header, HeaderError> {
        if bytes[0] != MAGIC {
            return Err(HeaderError::BadMagic(bytes[0]));
        }
        Ok(Header {
            flags: Flags(bytes[1]),
            compression: bytes[2],
            index: bytes[3],
            length: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        })
    }

    /// Parses and validates against `max_size` (capped at [`ABS_MAX_PACKET_SIZE`]).
    pub fn decode(bytes: &[u8; HEADER_SIZE], max_size: u32) -> Result<Header, HeaderError> {
        let h = Header::parse(bytes)?;
        h.validate(max_size)?;
        Ok(h)
    }

    /// Applies xpra's header rules (§1.1, backwards-compatible mode, which accepts zlib).
    pub fn validate(&self, max_size: u32) -> Result<(), HeaderError> {
        let flags = self.flags.bits();
        if flags & !Flags::ALL.0 != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        if self.index >= MAX_CHUNK_INDEX {
            return Err(HeaderError::IndexOutOfRange(self.index));
        }
        let encoders = flags & Flags::ENCODER_MASK.0;
        if self.index > 0 {
            if encoders != 0 || flags & Flags::FLUSH.0 != 0 {
                return Err(HeaderError::RawChunkFlags {
                    index: self.index,
                    flags,
                });
            }
        } else if encoders.count_ones() > 1 {
            return Err(HeaderError::MultipleEncoders(flags));
        }
        validate_compression_byte(self.compression)?;
        if self.length == 0 {
            return Err(HeaderError::EmptyPayload);
        }
        let max = max_size.min(ABS_MAX_PACKET_SIZE);
        if self.length > max {
            return Err(HeaderError::TooLarge {
                length: self.length,
                max,
            });
        }
        Ok(())
    }

    /// The 8 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let l = self.length.to_be_bytes();
        [
            MAGIC,
            self.flags.bits(),
            self.compression,
            self.index,
            l[0],
            l[1],
            l[2],
            l[3],
        ]
    }

    /// Appends the 8 wire bytes to `out`.
    pub fn write(&self, out: &mut impl bytes::BufMut) {
        out.put_slice(&self.to_bytes());
    }

    /// The compression level (low nibble of the compression byte).
    pub fn compression_level(&self) -> u8 {
        self.compression & 0x0F
    }

    /// Whether this is the main packet (index 0) rather than a raw chunk.
    pub fn is_main(&self) -> bool {
        self.index == 0
    }
}

/// Checks the compression byte alone: 0, or level >= 1 with at most one algorithm bit
/// (no bit = zlib, which xpra 3.1.3 sends).
pub fn validate_compression_byte(byte: u8) -> Result<(), HeaderError> {
    if byte == 0 {
        return Ok(());
    }
    if byte & 0x0F == 0 {
        return Err(HeaderError::ZeroCompressionLevel(byte));
    }
    if (byte & 0xF0).count_ones() > 1 {
        return Err(HeaderError::MultipleAlgorithms(byte));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bytes: [u8; 8]) -> Result<Header, HeaderError> {
        Header::decode(&bytes, ABS_MAX_PACKET_SIZE)
    }

    #[test]
    fn worked_examples_of_section_1_2() {
        let raw = h([0x50, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x2c]).unwrap();
        assert_eq!(raw.index, 7);
        assert_eq!(raw.length, 300);
        assert_eq!(raw.flags, Flags::BENCODE);
        let main = h([0x50, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16]).unwrap();
        assert_eq!(main.flags, Flags::RENCODEPLUS | Flags::FLUSH);
        assert_eq!(main.length, 22);
        assert!(main.is_main());
        assert_eq!(main.to_bytes(), [0x50, 0x18, 0, 0, 0, 0, 0, 0x16]);
        // §2.1 example 1 framing and the captures' headers.
        assert!(h([0x50, 0x18, 0x11, 0, 0, 0, 0x0f, 0x33]).is_ok());
        assert!(h([0x50, 0x01, 0x01, 0, 0, 0, 0x04, 0xc8]).is_ok());
    }

    #[test]
    fn each_rule_has_its_error() {
        assert_eq!(
            h([b'Q', 0, 0, 0, 0, 0, 0, 1]),
            Err(HeaderError::BadMagic(b'Q'))
        );
        assert_eq!(
            h([b'P', 0x20, 0, 0, 0, 0, 0, 1]),
            Err(HeaderError::UnknownFlags(0x20))
        );
        assert!(matches!(
            h([b'P', 0x10, 0, 1, 0, 0, 0, 1]),
            Err(HeaderError::RawChunkFlags { index: 1, .. })
        ));
        assert!(matches!(
            h([b'P', 0x08, 0, 1, 0, 0, 0, 1]),
            Err(HeaderError::RawChunkFlags { .. })
        ));
        // CIPHER is allowed on raw chunks.
        assert!(h([b'P', 0x02, 0, 1, 0, 0, 0, 1]).is_ok());
        assert_eq!(
            h([b'P', 0x11, 0, 0, 0, 0, 0, 1]),
            Err(HeaderError::MultipleEncoders(0x11))
        );
        assert_eq!(
            h([b'P', 0x10, 0x10, 0, 0, 0, 0, 1]),
            Err(HeaderError::ZeroCompressionLevel(0x10))
        );
        assert_eq!(
            h([b'P', 0x10, 0x51, 0, 0, 0, 0, 1]),
            Err(HeaderError::MultipleAlgorithms(0x51))
        );
        assert_eq!(
            h([b'P', 0x10, 0, 16, 0, 0, 0, 1]),
            Err(HeaderError::IndexOutOfRange(16))
        );
        assert_eq!(
            h([b'P', 0x10, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::EmptyPayload)
        );
        assert_eq!(
            h([b'P', 0x10, 0, 0, 0x10, 0, 0, 1]),
            Err(HeaderError::TooLarge {
                length: 0x1000_0001,
                max: ABS_MAX_PACKET_SIZE
            })
        );
        let small = Header::parse(&[b'P', 0x10, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(
            small.validate(255),
            Err(HeaderError::TooLarge {
                length: 256,
                max: 255
            })
        );
        // The configurable cap never exceeds the absolute one.
        let big = Header::parse(&[b'P', 0x10, 0, 0, 0x10, 0, 0, 1]).unwrap();
        assert!(big.validate(u32::MAX).is_err());
    }
}
