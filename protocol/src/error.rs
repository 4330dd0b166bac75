//! The crate-boundary error type, [`ProtocolError`], and the leaf errors shared by the three
//! packet encoders ([`DecodeError`], [`EncodeError`]).
//!
//! Every leaf module has its own error enum (header, compression, chunks, digests); `ProtocolError`
//! wraps them, records where the error came from ([`ErrorSource`]) and answers the two questions a
//! caller has: may a retry help ([`ProtocolError::is_retryable`]), and what does xpra tell the peer
//! ([`ProtocolError::disconnect_reason`]).

use crate::chunks::ChunkError;
use crate::compression::CompressionError;
use crate::digest::DigestError;
use crate::header::HeaderError;

/// Why a payload could not be decoded by rencodeplus, rencode or bencode.
///
/// Offsets are byte positions in the decoded payload, to make a bad capture easy to inspect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("truncated input at offset {offset}")]
    Truncated {
        /// Where more data was needed.
        offset: usize,
    },
    /// A type code that the format does not define (or the terminator where a value was expected).
    #[error("invalid type code 0x{code:02x} at offset {offset}")]
    InvalidTypeCode {
        /// The offending byte.
        code: u8,
        /// Its position.
        offset: usize,
    },
    /// A malformed length prefix (no digits, too many digits, bad separator, leading zeros...).
    #[error("invalid length prefix at offset {offset}")]
    InvalidLength {
        /// Where the length started.
        offset: usize,
    },
    /// A length that claims more bytes than the input holds.
    #[error("length {length} at offset {offset} exceeds the {remaining} bytes left")]
    LengthTooLarge {
        /// The claimed length.
        length: u64,
        /// Where the data would start.
        offset: usize,
        /// How many bytes remain in the input.
        remaining: usize,
    },
    /// A malformed integer (bad digits, leading zeros, `-0`, too long).
    #[error("invalid integer at offset {offset}")]
    InvalidInteger {
        /// Where the integer started.
        offset: usize,
    },
    /// A string declared as text is not valid UTF-8.
    #[error("invalid UTF-8 in string at offset {offset}")]
    InvalidUtf8 {
        /// Where the string data started.
        offset: usize,
    },
    /// Lists and dicts are nested deeper than the decoder allows.
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Bytes are left after the top-level value.
    #[error("{count} trailing bytes after the value at offset {offset}")]
    TrailingData {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The payload decoded, but a packet must be a non-empty list.
    #[error("a packet must be a non-empty list")]
    NotAPacket,
    /// A packet's first item is neither a string nor an integer alias.
    #[error("packet type is a {0}, not a string or an integer alias")]
    InvalidPacketType(&'static str),
    /// A raw chunk (index > 0) was given where a main packet was expected.
    #[error("raw chunk {0} is not a main packet")]
    NotMainPacket(u8),
}

/// Why a [`Value`](crate::value::Value) could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The format has no representation for this kind of value (bencode: None and floats).
    #[error("{encoder} cannot encode {what}")]
    Unsupported {
        /// The encoder's name.
        encoder: &'static str,
        /// What was refused.
        what: &'static str,
    },
    /// A big integer whose text is not a decimal integer, or too long for the format.
    #[error("invalid big integer {0:?}")]
    InvalidBigInt(String),
    /// Lists and dicts are nested deeper than the encoder allows.
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A packet must be a non-empty list.
    #[error("a packet must be a non-empty list")]
    NotAPacket,
}

/// Where a [`ProtocolError`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    /// The 8-byte chunk header.
    Header,
    /// Decompression (or compression) of a payload.
    Compression,
    /// Decoding a payload into values.
    Decode,
    /// Encoding values into a payload.
    Encode,
    /// Raw chunk reassembly.
    Chunk,
    /// Challenge digests.
    Digest,
    /// A feature the crate does not implement (AES, YAML, lzo).
    Unsupported,
    /// The transport under the codec.
    Io,
}

/// The one error type at the crate boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A chunk header failed validation.
    #[error("header: {0}")]
    Header(#[from] HeaderError),
    /// A payload could not be (de)compressed.
    #[error("compression: {0}")]
    Compression(#[from] CompressionError),
    /// A payload could not be decoded.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A value could not be encoded.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// Raw chunks did not fit the main packet.
    #[error("chunk: {0}")]
    Chunk(#[from] ChunkError),
    /// A challenge digest could not be computed.
    #[error("digest: {0}")]
    Digest(#[from] DigestError),
    /// The peer uses a feature this crate does not implement.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// Where the error came from.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            Self::Header(_) => ErrorSource::Header,
            Self::Compression(_) => ErrorSource::Compression,
            Self::Decode(_) => ErrorSource::Decode,
            Self::Encode(_) => ErrorSource::Encode,
            Self::Chunk(_) => ErrorSource::Chunk,
            Self::Digest(_) => ErrorSource::Digest,
            Self::Unsupported(_) => ErrorSource::Unsupported,
            Self::Io(_) => ErrorSource::Io,
        }
    }

    /// Whether trying the same operation again may succeed.
    ///
    /// Always false for malformed input: the same bytes fail the same way. Only transient
    /// transport conditions (interrupted, would block, timed out) are retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether the peer sent something wrong (as opposed to a local failure).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::Header(_)
                | Self::Compression(_)
                | Self::Decode(_)
                | Self::Chunk(_)
                | Self::Unsupported(_)
        )
    }

    /// The reason string xpra puts in its `disconnect` packet for this error (§3.6).
    pub fn disconnect_reason(&self) -> &'static str {
        match self {
            Self::Header(_)
            | Self::Compression(_)
            | Self::Decode(_)
            | Self::Chunk(_)
            | Self::Unsupported(_) => "protocol error",
            Self::Digest(_) => "authentication error",
            Self::Encode(_) => "server error",
            Self::Io(_) => "connection error",
        }
    }
}

/// Shorthand for results at the crate boundary.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_not_retryable() {
        let e = ProtocolError::from(DecodeError::Truncated { offset: 3 });
        assert!(!e.is_retryable());
        assert!(e.is_peer_fault());
        assert_eq!(e.source_kind(), ErrorSource::Decode);
        assert_eq!(e.disconnect_reason(), "protocol error");
        let io = ProtocolError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(io.is_retryable());
        assert_eq!(io.disconnect_reason(), "connection error");
    }
}
