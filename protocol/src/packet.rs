//! Packets: the list a main chunk decodes to, and the two directions between packets and frames.
//!
//! [`PacketWriter`] turns a packet into frames (raw chunks for large binary items, then the main
//! chunk, compressed when larger than xpra's 378-byte threshold). [`PacketReader`] takes frames,
//! decompresses, reassembles raw chunks and decodes. [`peek_packet_type`] reads only the packet
//! type, for a relay that decodes nothing else.

use std::fmt;

use bytes::Bytes;

use crate::chunks::{extract_raw_chunks, Reassembler, RAW_CHUNK_MIN_SIZE};
use crate::codec::Frame;
use crate::compression::{self, Compressor, MAX_DECOMPRESSED_SIZE};
use crate::encoding::PacketEncoder;
use crate::error::{DecodeError, EncodeError, ProtocolError, Result};
use crate::header::{Flags, ABS_MAX_PACKET_SIZE, MAX_CHUNK_INDEX};
use crate::value::Value;

/// Main packets are compressed only above this size (xpra's `MIN_COMPRESS_SIZE`).
pub const MIN_COMPRESS_SIZE: usize = 378;

/// How much of a compressed main packet [`peek_packet_type`] inflates before looking.
const PEEK_PREFIX: usize = 1024;

/// A packet's type: a name, or (xpra 3.x after `aliases`) an integer alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// The usual case: `"hello"`, `"draw"`, ...
    Name(String),
    /// An integer from the peer's `aliases` table.
    Alias(i64),
}

impl PacketType {
    /// The name, if this is not an alias.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            PacketType::Name(n) => Some(n),
            PacketType::Alias(_) => None,
        }
    }

    /// Reads a packet type from a packet's first item.
    pub fn from_value(v: &Value) -> Result<PacketType, DecodeError> {
        match v {
            Value::Int(i) => Ok(PacketType::Alias(*i)),
            Value::Str(_) | Value::StrOrBytes(_) | Value::Bytes(_) => v
                .as_str()
                .map(|s| PacketType::Name(s.to_owned()))
                .ok_or(DecodeError::InvalidPacketType("non-UTF-8 string")),
            other => Err(DecodeError::InvalidPacketType(other.kind())),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketType::Name(n) => f.write_str(n),
            PacketType::Alias(i) => write!(f, "alias {i}"),
        }
    }
}

/// A decoded packet: a non-empty list whose first item is its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet(pub Vec<Value>);

impl Packet {
    /// A packet from its type name and arguments.
    pub fn new(packet_type: &str, args: impl IntoIterator<Item = Value>) -> Packet {
        let mut items = vec![Value::from(packet_type)];
        items.extend(args);
        Packet(items)
    }

    /// A packet from a decoded value, which must be a non-empty list.
    pub fn from_value(v: Value) -> Result<Packet, DecodeError> {
        match v {
            Value::List(items) if !items.is_empty() => Ok(Packet(items)),
            _ => Err(DecodeError::NotAPacket),
        }
    }

    /// The packet type (first item).
    pub fn packet_type(&self) -> Result<PacketType, DecodeError> {
        PacketType::from_value(self.0.first().ok_or(DecodeError::NotAPacket)?)
    }

    /// The packet type when it is a name (`None` for aliases and invalid types).
    pub fn type_name(&self) -> Option<&str> {
        self.0.first().and_then(Value::as_str)
    }

    /// Item `i` (0 is the type).
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i)
    }

    /// The items.
    pub fn items(&self) -> &[Value] {
        &self.0
    }

    /// The packet as a list value.
    pub fn into_value(self) -> Value {
        Value::List(self.0)
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::List(self.0.clone()))
    }
}

/// Turns packets into frames, with one connection's send settings.
#[derive(Debug, Clone, Copy)]
pub struct PacketWriter {
    /// The packet encoder (header flag).
    pub encoder: PacketEncoder,
    /// The compressor for main packets and raw chunks.
    pub compressor: Compressor,
    /// The compression level; 0 turns compression off.
    pub level: u8,
    /// Send large binary items as raw chunks (the peer's `chunks` cap, default true).
    pub chunks: bool,
    /// Set the FLUSH flag on main packets (6.x always does; older peers ignore it).
    pub flush: bool,
}

impl PacketWriter {
    /// A writer with raw chunks and the flush flag on.
    pub fn new(encoder: PacketEncoder, compressor: Compressor, level: u8) -> Self {
        PacketWriter {
            encoder,
            compressor,
            level,
            chunks: true,
            flush: true,
        }
    }

    fn compressing(&self) -> bool {
        self.level > 0 && self.compressor != Compressor::None
    }

    fn frame(&self, flags: Flags, index: u8, data: Bytes, compress: bool) -> Result<Frame> {
        if compress {
            let z = compression::compress(self.compressor, self.level, &data)?;
            Ok(Frame::new(
                flags,
                self.compressor.to_byte(self.level),
                index,
                z,
            ))
        } else {
            Ok(Frame::new(flags, 0, index, data))
        }
    }

    /// Encodes a packet (a non-empty list) into its raw chunks followed by its main chunk.
    pub fn encode(&self, packet: &Value) -> Result<Vec<Frame>> {
        let items = match packet {
            Value::List(items) if !items.is_empty() => items,
            _ => return Err(EncodeError::NotAPacket.into()),
        };
        let wants_chunk = |v: &Value| matches!(v, Value::Bytes(b) if b.len() > RAW_CHUNK_MIN_SIZE);
        let mut frames = Vec::with_capacity(1);
        let mut payload = Vec::with_capacity(256);
        let chunked = self.chunks
            && items
                .iter()
                .take(usize::from(MAX_CHUNK_INDEX))
                .skip(1)
                .any(wants_chunk);
        if chunked {
            let mut items = items.clone();
            // Data compressed here leaves '' (like xpra's large raw bytes), data sent as is b''
            // (like xpra's pre-compressed items).
            let placeholder = if self.compressing() {
                Value::from("")
            } else {
                Value::Bytes(Bytes::new())
            };
            for c in extract_raw_chunks(&mut items, RAW_CHUNK_MIN_SIZE, &placeholder) {
                frames.push(self.frame(Flags::default(), c.index, c.data, self.compressing())?);
            }
            self.encoder
                .encode_into(&Value::List(items), &mut payload)?;
        } else {
            self.encoder.encode_into(packet, &mut payload)?;
        }
        let mut flags = self.encoder.flag();
        if self.flush {
            flags |= Flags::FLUSH;
        }
        let compress = self.compressing() && payload.len() > MIN_COMPRESS_SIZE;
        frames.push(self.frame(flags, 0, payload.into(), compress)?);
        Ok(frames)
    }
}

/// Encodes a packet with default writer settings (raw chunks and flush on).
pub fn encode_packet(
    packet: &Value,
    encoder: PacketEncoder,
    compressor: Compressor,
    level: u8,
) -> Result<Vec<Frame>> {
    PacketWriter::new(encoder, compressor, level).encode(packet)
}

/// Turns frames back into packets, for one direction of one connection.
#[derive(Debug)]
pub struct PacketReader {
    /// Raw chunks waiting for their main packet.
    reassembler: Reassembler,
    /// Cap on each decompressed payload.
    max_decompressed: usize,
}

impl Default for PacketReader {
    fn default() -> Self {
        PacketReader::new(MAX_DECOMPRESSED_SIZE)
    }
}

impl PacketReader {
    /// A reader capping each decompressed payload at `max_decompressed` bytes.
    pub fn new(max_decompressed: usize) -> Self {
        PacketReader {
            reassembler: Reassembler::new(),
            max_decompressed,
        }
    }

    /// Raw chunks pending.
    pub fn pending_chunks(&self) -> usize {
        self.reassembler.len()
    }

    /// Takes one frame: a raw chunk is stored (`Ok(None)`), a main packet is decoded with the
    /// encoder its flags name, its raw chunks are spliced in, and it is returned.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Packet>> {
        let h = frame.header;
        h.validate(ABS_MAX_PACKET_SIZE)?;
        if h.flags.contains(Flags::CIPHER) {
            return Err(ProtocolError::Unsupported("AES-encrypted chunks"));
        }
        let data =
            compression::decompress_bytes(h.compression, frame.payload, self.max_decompressed)?;
        if h.index > 0 {
            self.reassembler.add(h.index, data)?;
            return Ok(None);
        }
        let result = decode_main(h.flags, &data, &mut self.reassembler);
        self.reassembler.clear();
        result.map(Some)
    }
}

fn decode_main(flags: Flags, data: &Bytes, chunks: &mut Reassembler) -> Result<Packet> {
    let encoder = PacketEncoder::from_flags(flags)?;
    let mut value = encoder.decode_bytes(data)?;
    chunks.splice(&mut value)?;
    Ok(Packet::from_value(value)?)
}

/// Reads only the packet type of a main frame: decompresses as little as the algorithm allows and
/// decodes only the list's first item (a name, or an integer alias), for all three encoders.
pub fn peek_packet_type(frame: &Frame) -> Result<PacketType> {
    let h = frame.header;
    if h.index != 0 {
        return Err(DecodeError::NotMainPacket(h.index).into());
    }
    if h.flags.contains(Flags::CIPHER) {
        return Err(ProtocolError::Unsupported("AES-encrypted chunks"));
    }
    let encoder = PacketEncoder::from_flags(h.flags)?;
    let first = if h.compression == 0 {
        encoder.decode_first_item(&frame.payload)?
    } else {
        let prefix = compression::decompress_prefix(
            h.compression,
            &frame.payload,
            PEEK_PREFIX,
            MAX_DECOMPRESSED_SIZE,
        )?;
        match encoder.decode_first_item(&prefix) {
            // The first item did not fit in the prefix: inflate everything.
            Err(DecodeError::Truncated { .. } | DecodeError::LengthTooLarge { .. })
                if prefix.len() >= PEEK_PREFIX =>
            {
                let all =
                    compression::decompress(h.compression, &frame.payload, MAX_DECOMPRESSED_SIZE)?;
                encoder.decode_first_item(&all)?
            }
            r => r?,
        }
    };
    Ok(PacketType::from_value(&first)?)
}

/// The plain-text line sent instead of a packet before any encoder is negotiated (§1.3):
/// `disconnect: <reason>\n`, no header. Line breaks in `reason` become spaces.
pub fn plain_text_disconnect(reason: &str) -> Bytes {
    let reason: String = reason
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    Bytes::from(format!("disconnect: {reason}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameCodec;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use crate::test_support::{draw_example, hello_example};

    fn draw(pixels: Bytes) -> Value {
        draw_example(Value::Bytes(pixels))
    }

    #[test]
    fn worked_example_of_section_1_2_decodes() {
        let mut stream = vec![0x50, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x2c];
        stream.extend_from_slice(&[0xAB; 300]);
        stream.extend_from_slice(&[0x50, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16]);
        stream.extend_from_slice(&[
            0xcb, 0x84, 0x64, 0x72, 0x61, 0x77, 0x01, 0x00, 0x00, 0x0a, 0x0a, 0x85, 0x72, 0x67,
            0x62, 0x32, 0x34, 0x30, 0x2f, 0x05, 0x1e, 0x66,
        ]);
        let mut buf = BytesMut::from(&stream[..]);
        let mut codec = FrameCodec::default();
        let mut reader = PacketReader::default();
        let f1 = codec.decode(&mut buf).unwrap().unwrap();
        assert!(reader.push(f1).unwrap().is_none());
        let f2 = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            peek_packet_type(&f2).unwrap(),
            PacketType::Name("draw".into())
        );
        let p = reader.push(f2).unwrap().unwrap();
        assert_eq!(p.into_value(), draw(Bytes::from_static(&[0xAB; 300])));
        // And our writer produces the same main packet for uncompressed small pixels.
        let frames = encode_packet(
            &draw(Bytes::new()),
            PacketEncoder::RencodePlus,
            Compressor::None,
            0,
        )
        .unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].to_wire(), stream[308..]);
    }

    #[test]
    fn example_1_framing() {
        let hello = hello_example();
        let frames = encode_packet(&hello, PacketEncoder::RencodePlus, Compressor::Lz4, 1).unwrap();
        assert_eq!(
            &frames[0].to_wire()[..8],
            &[0x50, 0x18, 0, 0, 0, 0, 0, 0x14]
        );
        let mut w = PacketWriter::new(PacketEncoder::Rencode, Compressor::Zlib, 1);
        w.flush = false;
        assert_eq!(
            &w.encode(&hello).unwrap()[0].to_wire()[..8],
            &[0x50, 1, 0, 0, 0, 0, 0, 0x14]
        );
        let b = encode_packet(&hello, PacketEncoder::Bencode, Compressor::None, 0).unwrap();
        assert_eq!(&b[0].to_wire()[..8], &[0x50, 0x08, 0, 0, 0, 0, 0, 0x19]);
    }

    #[test]
    fn large_items_become_raw_chunks_and_round_trip() {
        let pixels = Bytes::from((0..100_000u32).map(|i| (i % 7) as u8).collect::<Vec<_>>());
        for enc in PacketEncoder::ALL {
            for (comp, level) in [
                (Compressor::None, 0),
                (Compressor::Lz4, 1),
                (Compressor::Zlib, 6),
            ] {
                let frames = encode_packet(&draw(pixels.clone()), enc, comp, level).unwrap();
                assert_eq!(frames.len(), 2);
                assert_eq!(frames[0].header.index, 7);
                assert_eq!(frames[0].header.compression, comp.to_byte(level));
                let mut reader = PacketReader::default();
                assert!(reader.push(frames[0].clone()).unwrap().is_none());
                assert_eq!(
                    peek_packet_type(&frames[1]).unwrap().as_name(),
                    Some("draw")
                );
                let p = reader.push(frames[1].clone()).unwrap().unwrap();
                let Value::Bytes(b) = &p.0[7] else {
                    panic!("{enc:?}")
                };
                assert_eq!(b, &pixels);
            }
        }
    }

    #[test]
    fn compresses_only_above_the_threshold() {
        let small = Value::list([Value::from("x"), Value::from("y".repeat(300))]);
        let big = Value::list([Value::from("x"), Value::from("y".repeat(400))]);
        let f = encode_packet(&small, PacketEncoder::RencodePlus, Compressor::Lz4, 1).unwrap();
        assert_eq!(f[0].header.compression, 0);
        let f = encode_packet(&big, PacketEncoder::RencodePlus, Compressor::Lz4, 1).unwrap();
        assert_eq!(f[0].header.compression, 0x11);
        assert_eq!(peek_packet_type(&f[0]).unwrap().as_name(), Some("x"));
        let mut r = PacketReader::default();
        assert_eq!(r.push(f[0].clone()).unwrap().unwrap().into_value(), big);
    }

    #[test]
    fn peek_handles_aliases_and_long_types() {
        let alias = Value::list([Value::Int(35), Value::from("z".repeat(2000))]);
        let long = Value::list([Value::from("t".repeat(3000))]);
        for comp in [
            Compressor::Zlib,
            Compressor::Brotli,
            Compressor::Zstd,
            Compressor::Lz4,
        ] {
            let f = encode_packet(&alias, PacketEncoder::Rencode, comp, 3).unwrap();
            assert_eq!(peek_packet_type(&f[0]).unwrap(), PacketType::Alias(35));
            let f = encode_packet(&long, PacketEncoder::RencodePlus, comp, 3).unwrap();
            assert_eq!(
                peek_packet_type(&f[0]).unwrap().as_name().map(str::len),
                Some(3000)
            );
        }
        let raw = Frame::new(Flags::default(), 0, 3, Bytes::from_static(b"x"));
        assert!(peek_packet_type(&raw).is_err());
    }

    #[test]
    fn reader_errors() {
        let mut r = PacketReader::default();
        let not_list = Frame::new(Flags::RENCODEPLUS, 0, 0, Bytes::from_static(b"\x01"));
        assert!(matches!(
            r.push(not_list),
            Err(ProtocolError::Decode(DecodeError::NotAPacket))
        ));
        let yaml = Frame::new(Flags::YAML, 0, 0, Bytes::from_static(b"- x"));
        assert!(matches!(r.push(yaml), Err(ProtocolError::Unsupported(_))));
        // A failed main packet drops the pending chunks.
        r.push(Frame::new(Flags::default(), 0, 1, Bytes::from_static(b"x")))
            .unwrap();
        let bad = Frame::new(Flags::RENCODEPLUS, 0, 0, Bytes::from_static(b"\xc1\x01"));
        assert!(matches!(r.push(bad), Err(ProtocolError::Chunk(_))));
        assert_eq!(r.pending_chunks(), 0);
    }

    #[test]
    fn plain_text() {
        assert_eq!(
            plain_text_disconnect("protocol error\nx"),
            Bytes::from_static(b"disconnect: protocol error x\n")
        );
    }
}
