//! The packet encoders a header's flags can name, with their caps names.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError, ProtocolError};
use crate::header::Flags;
use crate::value::Value;
use crate::{bencode, rencode, rencodeplus};

/// A packet encoder (the payload format of main packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketEncoder {
    /// xpra's rencodeplus (flag 0x10), the only one xpra 6.x speaks.
    RencodePlus,
    /// Classic python-rencode (flag 0x01), xpra <= 4.x.
    Rencode,
    /// bencode (no flag bit), xpra <= 5.x.
    Bencode,
}

impl PacketEncoder {
    /// Every encoder, in xpra's preference order.
    pub const ALL: [PacketEncoder; 3] = [
        PacketEncoder::RencodePlus,
        PacketEncoder::Rencode,
        PacketEncoder::Bencode,
    ];

    /// The header flag naming this encoder.
    pub fn flag(self) -> Flags {
        match self {
            PacketEncoder::RencodePlus => Flags::RENCODEPLUS,
            PacketEncoder::Rencode => Flags::RENCODE,
            PacketEncoder::Bencode => Flags::BENCODE,
        }
    }

    /// The encoder named by a main chunk's flags. YAML (0x04) is not implemented; several encoder
    /// bits at once are refused (header validation already rejects them).
    pub fn from_flags(flags: Flags) -> Result<PacketEncoder, ProtocolError> {
        match flags.encoder_bits().bits() {
            0x10 => Ok(PacketEncoder::RencodePlus),
            0x01 => Ok(PacketEncoder::Rencode),
            0x00 => Ok(PacketEncoder::Bencode),
            0x04 => Err(ProtocolError::Unsupported("yaml packet encoder")),
            _ => Err(ProtocolError::Unsupported("several packet encoder flags")),
        }
    }

    /// The name used in xpra's `encoders` caps.
    pub fn name(self) -> &'static str {
        match self {
            PacketEncoder::RencodePlus => "rencodeplus",
            PacketEncoder::Rencode => "rencode",
            PacketEncoder::Bencode => "bencode",
        }
    }

    /// The encoder with this caps name.
    pub fn from_name(name: &str) -> Option<PacketEncoder> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Encodes a value.
    pub fn encode(self, v: &Value) -> Result<Vec<u8>, EncodeError> {
        match self {
            PacketEncoder::RencodePlus => rencodeplus::encode(v),
            PacketEncoder::Rencode => rencode::encode(v),
            PacketEncoder::Bencode => bencode::encode(v),
        }
    }

    /// Appends the encoding of a value to `out`.
    pub fn encode_into(self, v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            PacketEncoder::RencodePlus => rencodeplus::encode_into(v, out),
            PacketEncoder::Rencode => rencode::encode_into(v, out),
            PacketEncoder::Bencode => bencode::encode_into(v, out),
        }
    }

    /// Decodes a payload (which must hold exactly one value); binary values are copied.
    pub fn decode(self, data: &[u8]) -> Result<Value, DecodeError> {
        match self {
            PacketEncoder::RencodePlus => rencodeplus::decode(data),
            PacketEncoder::Rencode => rencode::decode(data),
            PacketEncoder::Bencode => bencode::decode(data),
        }
    }

    /// Decodes a payload; binary values share the payload's buffer.
    pub fn decode_bytes(self, data: &Bytes) -> Result<Value, DecodeError> {
        match self {
            PacketEncoder::RencodePlus => rencodeplus::decode_bytes(data),
            PacketEncoder::Rencode => rencode::decode_bytes(data),
            PacketEncoder::Bencode => bencode::decode_bytes(data),
        }
    }

    /// Decodes only the first item of the top-level list (the packet type).
    pub fn decode_first_item(self, data: &[u8]) -> Result<Value, DecodeError> {
        match self {
            PacketEncoder::RencodePlus => rencodeplus::decode_first_item(data),
            PacketEncoder::Rencode => rencode::decode_first_item(data),
            PacketEncoder::Bencode => bencode::decode_first_item(data),
        }
    }
}

impl std::fmt::Display for PacketEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_names() {
        for e in PacketEncoder::ALL {
            assert_eq!(
                PacketEncoder::from_flags(e.flag() | Flags::FLUSH).unwrap(),
                e
            );
            assert_eq!(PacketEncoder::from_name(e.name()), Some(e));
        }
        assert!(PacketEncoder::from_flags(Flags::YAML).is_err());
        assert_eq!(PacketEncoder::from_name("yaml"), None);
        assert_eq!(PacketEncoder::RencodePlus.flag().bits(), 0x10);
        assert_eq!(PacketEncoder::Rencode.flag().bits(), 0x01);
        assert_eq!(PacketEncoder::Bencode.flag().bits(), 0x00);
    }
}
