//! The xpra wire protocol, as spoken by xpra 3.x to 6.x, for xgate.
//!
//! Pure and synchronous (apart from the `tokio_util` codec), fuzzed, and free of actors.
//!
//! - [`header`]: the 8-byte chunk header and its validation rules.
//! - [`codec`]: a `tokio_util` codec splitting a byte stream into [`Frame`]s without copying.
//! - [`compression`]: zlib, lz4, brotli and zstd payloads, with bounded decompression.
//! - [`value`]: the [`Value`] model that keeps `str`, `bytes` and "either" apart; [`text`]: its
//!   string types, [`Text`] and [`ByteStr`].
//! - [`rencodeplus`], [`rencode`], [`bencode`]: the three packet encoders; [`encoding`] picks one
//!   from header flags or caps names.
//! - [`chunks`]: raw-chunk reassembly (receiving) and extraction (sending).
//! - [`packet`]: packets to frames and back, and a cheap packet-type peek for relays.
//! - [`digest`]: challenge digests for authentication.
//! - [`error`]: [`ProtocolError`], the one error type at the crate boundary.
//!
//! Section numbers (§) in the docs refer to xgate's wire reference, `xpra-protocol.md`.
//!
//! ```
//! use xgate_protocol::{encode_packet, Compressor, PacketEncoder, PacketReader, Value};
//!
//! let hello = Value::list([Value::from("hello"), Value::dict([("version", "6.0")])]);
//! let frames = encode_packet(&hello, PacketEncoder::RencodePlus, Compressor::Lz4, 1)?;
//! let mut reader = PacketReader::default();
//! let packet = frames
//!     .into_iter()
//!     .find_map(|f| reader.push(f).transpose())
//!     .transpose()?;
//! assert_eq!(packet.and_then(|p| p.type_name().map(str::to_owned)).as_deref(), Some("hello"));
//! # Ok::<(), xgate_protocol::ProtocolError>(())
//! ```
#![forbid(unsafe_code)]

pub mod bencode;
pub mod chunks;
pub mod codec;
pub mod compression;
pub mod digest;
pub mod encoding;
pub mod error;
pub mod header;
pub mod packet;
pub mod rencode;
mod rencode_core;
pub mod rencodeplus;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod value;

pub use codec::{Frame, FrameCodec};
pub use compression::{compress, decompress, Compressor};
pub use encoding::PacketEncoder;
pub use error::{DecodeError, EncodeError, ErrorSource, ProtocolError};
pub use header::{Flags, Header, HeaderError, ABS_MAX_PACKET_SIZE};
pub use packet::{
    encode_packet, peek_packet_type, plain_text_disconnect, Packet, PacketReader, PacketType,
    PacketWriter,
};
pub use rencode_core::MAX_DEPTH;
pub use text::{ByteStr, Text};
pub use value::Value;

/// Target for this crate's `tracing` events.
pub const LOG_TARGET: &str = "xgate::protocol";
