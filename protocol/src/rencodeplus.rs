//! xpra's rencodeplus (§2.1, header flag 0x10): rencode with distinct `str` and `bytes`.
//!
//! The encoder writes exactly what xpra's Cython encoder writes (smallest integer form, float64,
//! bytes always as `<len>/data`, short strings below 64 UTF-8 bytes, fixed lists below 64 items,
//! fixed dicts below 25 pairs). The decoder is lenient about widths (a small int sent as int64,
//! float32) and strict about structure: it never panics, nests at most
//! [`MAX_DEPTH`](crate::rencode_core::MAX_DEPTH) levels and never allocates more than the input holds.
//!
//! A [`Value::StrOrBytes`] is written as text when it is valid UTF-8, else as bytes.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::rencode_core::{self, Decoder, Dialect, EncodeOptions};
use crate::value::Value;

const OPTIONS: EncodeOptions = EncodeOptions {
    dialect: Dialect::Plus,
    float32: false,
};

/// Encodes a value.
pub fn encode(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode_into(v, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a value to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    rencode_core::encode_into(v, out, OPTIONS, 0)
}

/// Decodes one value that must span the whole input. Binary values are copied.
pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(data, None, Dialect::Plus).decode_all()
}

/// Decodes one value that must span the whole input; binary values share `data`'s buffer.
pub fn decode_bytes(data: &Bytes) -> Result<Value, DecodeError> {
    Decoder::new(data, Some(data), Dialect::Plus).decode_all()
}

/// Decodes one value at the start of `data` and says how many bytes it used.
pub fn decode_prefix(data: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder::new(data, None, Dialect::Plus);
    let v = d.value_at_top()?;
    Ok((v, d.position()))
}

/// Decodes only the first item of a top-level list (the packet type), without the rest.
pub fn decode_first_item(data: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(data, None, Dialect::Plus).first_item()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn check(v: Value, expected: &[u8]) {
        assert_eq!(encode(&v).unwrap(), expected, "encoding {v}");
        assert_eq!(decode(expected).unwrap(), v, "decoding {expected:02x?}");
    }

    #[test]
    fn rencode_js_vectors() {
        check(Value::Bool(true), &hex("43"));
        check(Value::Bool(false), &hex("44"));
        check(Value::Int(-10), &hex("4F"));
        check(Value::Int(-29), &hex("62"));
        check(Value::Int(1), &hex("01"));
        check(Value::Int(40), &hex("28"));
        check(Value::Int(100), &hex("3E 64"));
        check(Value::Int(-100), &hex("3E 9C"));
        check(Value::Int(27123), &hex("3F 69 F3"));
        check(Value::Int(-27123), &hex("3F 96 0D"));
        check(Value::Int(7483648), &hex("40 00 72 31 00"));
        check(Value::Int(-7483648), &hex("40 FF 8D CF 00"));
        check(
            Value::Int(8223372036854775808),
            &hex("41 72 1F 49 4C 58 9C 00 00"),
        );
        check(Value::from("\x00"), &hex("81 00"));
        check(
            Value::from("foobarbaz"),
            &hex("89 66 6F 6F 62 61 72 62 61 7A"),
        );
        check(Value::from("fööbar"), &hex("88 66 C3 B6 C3 B6 62 61 72"));
    }

    #[test]
    fn worked_examples() {
        check(
            crate::test_support::hello_example(),
            &hex("C2 85 68 65 6C 6C 6F 67 87 76 65 72 73 69 6F 6E 83 36 2E 30"),
        );
        let mut ex2 = vec![0xC2, 0x8A];
        ex2.extend_from_slice(b"disconnect");
        ex2.push(0x95);
        ex2.extend_from_slice(b"authentication failed");
        assert_eq!(ex2.len(), 34);
        check(Value::list(["disconnect", "authentication failed"]), &ex2);
        let mut ex3 = vec![0xC6, 0x89];
        ex3.extend_from_slice(b"challenge");
        ex3.extend_from_slice(b"4/SSSS");
        ex3.extend_from_slice(&[0x66, 0x8B]);
        ex3.extend_from_slice(b"hmac+sha256");
        ex3.push(0x8B);
        ex3.extend_from_slice(b"hmac+sha256");
        ex3.push(0x88);
        ex3.extend_from_slice(b"password");
        check(
            Value::list([
                Value::from("challenge"),
                Value::from(b"SSSS".to_vec()),
                Value::Dict(vec![]),
                "hmac+sha256".into(),
                "hmac+sha256".into(),
                "password".into(),
            ]),
            &ex3,
        );
        check(Value::Int(300), &hex("3F 01 2C"));
        check(Value::Int(-33), &hex("3E DF"));
        check(Value::Float(1.5), &hex("2C 3F F8 00 00 00 00 00 00"));
        check(Value::None, &hex("45"));
        check(Value::from(vec![0u8, 1]), &hex("32 2F 00 01"));
        check(Value::from(Vec::<u8>::new()), &hex("30 2F"));
        check(Value::dict([("a", 1)]), &hex("67 81 61 01"));
        let s64 = "x".repeat(64);
        let mut e = b"64:".to_vec();
        e.extend_from_slice(s64.as_bytes());
        check(Value::from(s64.as_str()), &e);
        let s63 = "y".repeat(63);
        assert_eq!(encode(&Value::from(s63.as_str())).unwrap()[0], 0xBF);
        let l64 = Value::List(vec![Value::Int(0); 64]);
        let enc = encode(&l64).unwrap();
        assert_eq!((enc[0], enc[65], enc.len()), (0x3B, 0x7F, 66));
        assert_eq!(decode(&enc).unwrap(), l64);
        assert_eq!(
            encode(&Value::List(vec![Value::Int(0); 63])).unwrap()[0],
            0xFF
        );
        let d25 = Value::Dict((0..25).map(|i| (Value::Int(i), Value::None)).collect());
        let enc = encode(&d25).unwrap();
        assert_eq!((enc[0], *enc.last().unwrap()), (0x3C, 0x7F));
        assert_eq!(decode(&enc).unwrap(), d25);
        let d24 = Value::Dict((0..24).map(|i| (Value::Int(i), Value::None)).collect());
        assert_eq!(encode(&d24).unwrap()[0], 0x7E);
        let mut big = vec![0x3D];
        big.extend_from_slice(b"9223372036854775808");
        big.push(0x7F);
        check(Value::BigInt("9223372036854775808".into()), &big);
        check(Value::Int(i64::MIN), &hex("41 80 00 00 00 00 00 00 00"));
        check(Value::Int(i64::from(i32::MIN)), &hex("40 80 00 00 00"));
        check(Value::Int(-32), &hex("65"));
        check(Value::Int(43), &hex("2B"));
        check(Value::Int(44), &hex("3E 2C"));
    }

    #[test]
    fn decoder_is_lenient_about_widths() {
        assert_eq!(
            decode(&hex("41 00 00 00 00 00 00 00 05")).unwrap(),
            Value::Int(5)
        );
        assert_eq!(decode(&hex("42 3F C0 00 00")).unwrap(), Value::Float(1.5));
        let mut small_big = vec![0x3D];
        small_big.extend_from_slice(b"12");
        small_big.push(0x7F);
        assert_eq!(decode(&small_big).unwrap(), Value::Int(12));
    }

    #[test]
    fn str_or_bytes_picks_a_form() {
        let text = Value::StrOrBytes(crate::ByteStr::from_static(b"abc"));
        assert_eq!(encode(&text).unwrap(), b"\x83abc");
        let bin = Value::StrOrBytes(crate::ByteStr::from_static(b"\xff"));
        assert_eq!(encode(&bin).unwrap(), b"1/\xff");
    }

    #[test]
    fn malformed_input_gives_typed_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert!(matches!(
            decode(&hex("C2 81")),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"99999999:abc"),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            decode(b"999999999999999999999:"),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            decode(b"3x"),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            decode(&hex("7F")),
            Err(DecodeError::InvalidTypeCode { code: 0x7F, .. })
        ));
        assert!(matches!(
            decode(&hex("2D")),
            Err(DecodeError::InvalidTypeCode { .. })
        ));
        assert!(matches!(
            decode(&hex("81 FF")),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        assert!(matches!(
            decode(&hex("01 02")),
            Err(DecodeError::TrailingData { .. })
        ));
        assert!(matches!(
            decode(&hex("3B 01")),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"\x3D12"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"\x3D1-2\x7F"),
            Err(DecodeError::InvalidInteger { .. })
        ));
        let long = [&[0x3D][..], &[b'1'; 80][..], &[0x7F][..]].concat();
        assert!(matches!(
            decode(&long),
            Err(DecodeError::InvalidInteger { .. })
        ));
        let deep = [vec![0xC1u8; 65], vec![0x00]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep { max: 64 }));
        let ok = [vec![0xC1u8; 64], vec![0x00]].concat();
        assert!(decode(&ok).is_ok());
        let deep_var = vec![0x3Bu8; 100_000];
        assert_eq!(decode(&deep_var), Err(DecodeError::TooDeep { max: 64 }));
        let mut v = Value::Int(0);
        for _ in 0..65 {
            v = Value::List(vec![v]);
        }
        assert_eq!(encode(&v), Err(EncodeError::TooDeep { max: 64 }));
    }

    #[test]
    fn first_item_only() {
        let data = encode(&Value::list([Value::from("draw"), Value::Int(1)])).unwrap();
        assert_eq!(decode_first_item(&data).unwrap(), Value::from("draw"));
        // The rest is never looked at.
        assert_eq!(
            decode_first_item(&hex("C3 11 FF FF")).unwrap(),
            Value::Int(17)
        );
        assert_eq!(decode_first_item(&hex("C0")), Err(DecodeError::NotAPacket));
        assert_eq!(
            decode_first_item(&hex("3B 7F")),
            Err(DecodeError::NotAPacket)
        );
        assert_eq!(decode_first_item(&hex("01")), Err(DecodeError::NotAPacket));
    }

    #[test]
    fn decode_bytes_shares_the_buffer() {
        let data = Bytes::from(encode(&Value::list([Value::from(vec![7u8; 100])])).unwrap());
        let v = decode_bytes(&data).unwrap();
        let Value::List(l) = v else { panic!() };
        let Value::Bytes(b) = &l[0] else { panic!() };
        assert_eq!(b.as_ptr(), data[data.len() - 100..].as_ptr());
    }
}
