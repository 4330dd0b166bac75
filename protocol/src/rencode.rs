//! Classic python-rencode (§2.2, header flag 0x01), as sent by xpra 3.x and 4.x.
//!
//! Same type table as rencodeplus, but one string kind: `Str`, `Bytes` and `StrOrBytes` are all
//! written in the string forms (`0x80+len` below 64 bytes, else `<len>:`), and every decoded string
//! is a [`Value::StrOrBytes`]; the receiver decides per field (see
//! [`Value::resolve_strings`](crate::value::Value::resolve_strings)). Floats are written as
//! float32 (`0x42`), python-rencode's default `float_bits=32`; [`encode_float64`] writes `0x2C`.
//! The `/` bytes form of rencodeplus is refused when decoding.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::rencode_core::{self, Decoder, Dialect, EncodeOptions};
use crate::value::Value;

/// Encodes a value with float32 floats (python-rencode's default).
pub fn encode(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode_into(v, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a value (float32 floats) to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let opts = EncodeOptions {
        dialect: Dialect::Classic,
        float32: true,
    };
    rencode_core::encode_into(v, out, opts, 0)
}

/// Encodes a value with float64 floats (`rencode.dumps(x, float_bits=64)`).
pub fn encode_float64(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    let opts = EncodeOptions {
        dialect: Dialect::Classic,
        float32: false,
    };
    rencode_core::encode_into(v, &mut out, opts, 0)?;
    Ok(out)
}

/// Decodes one value that must span the whole input. Strings are copied.
pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(data, None, Dialect::Classic).decode_all()
}

/// Decodes one value that must span the whole input; strings share `data`'s buffer.
pub fn decode_bytes(data: &Bytes) -> Result<Value, DecodeError> {
    Decoder::new(data, Some(data), Dialect::Classic).decode_all()
}

/// Decodes one value at the start of `data` and says how many bytes it used.
pub fn decode_prefix(data: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder::new(data, None, Dialect::Classic);
    let v = d.value_at_top()?;
    Ok((v, d.position()))
}

/// Decodes only the first item of a top-level list (the packet type), without the rest.
pub fn decode_first_item(data: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(data, None, Dialect::Classic).first_item()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{hello_example, hello_example_decoded, sob};

    #[test]
    fn example_1_is_the_same_bytes_as_rencodeplus() {
        let v = hello_example();
        let enc = encode(&v).unwrap();
        assert_eq!(enc, crate::rencodeplus::encode(&v).unwrap());
        assert_eq!(enc.len(), 20);
        assert_eq!(decode(&enc).unwrap(), hello_example_decoded());
    }

    #[test]
    fn strings_and_floats() {
        assert_eq!(encode(&Value::from(vec![1u8, 2])).unwrap(), b"\x82\x01\x02");
        assert_eq!(encode(&Value::from(vec![0u8; 64])).unwrap()[..3], *b"64:");
        assert_eq!(
            encode(&Value::Float(1.5)).unwrap(),
            [0x42, 0x3F, 0xC0, 0, 0]
        );
        assert_eq!(encode_float64(&Value::Float(1.5)).unwrap()[0], 0x2C);
        assert_eq!(decode(b"\x81\xff").unwrap(), sob(b"\xff"));
        assert!(matches!(
            decode(b"1/a"),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert_eq!(decode(b"3:abc").unwrap(), sob(b"abc"));
    }
}
