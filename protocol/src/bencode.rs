//! bencode as xpra 3.x–5.x use it (§2.3, header flag 0x00).
//!
//! `i<n>e` integers (booleans are written as `i1e`/`i0e`), `<len>:data` strings (decoded as
//! [`Value::StrOrBytes`]), `u<len>:utf8` (decoded as [`Value::Str`]), `l…e` lists and `d…e` dicts in
//! insertion order with keys of any type. `None` and floats cannot be encoded. Leading zeros and
//! `-0` are rejected when decoding, in integers and in string lengths.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::rencode_core::MAX_DEPTH;
use crate::text::{ByteStr, Text};
use crate::value::Value;

/// Longest integer text accepted (python's bencode has none; this bounds the work).
const MAX_INT_DIGITS: usize = 64;

/// Encodes a value.
pub fn encode(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode_into(v, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a value to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_value(v, out, 0)
}

fn encode_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    match v {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"i1e" } else { b"i0e" }),
        Value::BigInt(s) => match Value::big_int(s) {
            Some(Value::Int(i)) => encode_value(&Value::Int(i), out, depth)?,
            Some(Value::BigInt(norm)) => {
                out.push(b'i');
                out.extend_from_slice(norm.as_bytes());
                out.push(b'e');
            }
            _ => return Err(EncodeError::InvalidBigInt(s.clone())),
        },
        Value::Float(_) => {
            return Err(EncodeError::Unsupported {
                encoder: "bencode",
                what: "float",
            })
        }
        Value::None => {
            return Err(EncodeError::Unsupported {
                encoder: "bencode",
                what: "None",
            })
        }
        Value::Str(s) => encode_string(s.as_bytes(), out),
        Value::Bytes(b) => encode_string(b, out),
        Value::StrOrBytes(b) => encode_string(b, out),
        Value::List(items) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            out.push(b'l');
            for item in items {
                encode_value(item, out, depth + 1)?;
            }
            out.push(b'e');
        }
        Value::Dict(pairs) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            out.push(b'd');
            for (k, v) in pairs {
                encode_value(k, out, depth + 1)?;
                encode_value(v, out, depth + 1)?;
            }
            out.push(b'e');
        }
    }
    Ok(())
}

fn encode_string(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes one value that must span the whole input. Strings are copied.
pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
    Decoder {
        data,
        owner: None,
        pos: 0,
    }
    .decode_all()
}

/// Decodes one value that must span the whole input; strings share `data`'s buffer.
pub fn decode_bytes(data: &Bytes) -> Result<Value, DecodeError> {
    Decoder {
        data,
        owner: Some(data),
        pos: 0,
    }
    .decode_all()
}

/// Decodes one value at the start of `data` and says how many bytes it used (xpra's `bdecode`).
pub fn decode_prefix(data: &[u8]) -> Result<(Value, usize), DecodeError> {
    if data.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut d = Decoder {
        data,
        owner: None,
        pos: 0,
    };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

/// Decodes only the first item of a top-level list (the packet type), without the rest.
pub fn decode_first_item(data: &[u8]) -> Result<Value, DecodeError> {
    if data.first() != Some(&b'l') || data.get(1) == Some(&b'e') {
        return Err(DecodeError::NotAPacket);
    }
    let mut d = Decoder {
        data,
        owner: None,
        pos: 1,
    };
    d.value(1)
}

struct Decoder<'a> {
    data: &'a [u8],
    /// When set, strings are sliced from it instead of copied.
    owner: Option<&'a Bytes>,
    pos: usize,
}

impl Decoder<'_> {
    fn decode_all(mut self) -> Result<Value, DecodeError> {
        if self.data.is_empty() {
            return Err(DecodeError::Empty);
        }
        let v = self.value(0)?;
        if self.pos != self.data.len() {
            return Err(DecodeError::TrailingData {
                offset: self.pos,
                count: self.data.len() - self.pos,
            });
        }
        Ok(v)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated { offset: self.pos })
    }

    /// Reads up to (not including) `end`, at most `max` bytes, and steps over `end`.
    fn until(&mut self, end: u8, max: usize, err: DecodeError) -> Result<&[u8], DecodeError> {
        let start = self.pos;
        let window = &self.data[start..self.data.len().min(start + max + 1)];
        match window.iter().position(|&b| b == end) {
            Some(n) => {
                self.pos = start + n + 1;
                Ok(&self.data[start..start + n])
            }
            None if window.len() > max => Err(err),
            None => Err(DecodeError::Truncated {
                offset: self.data.len(),
            }),
        }
    }

    fn int(&mut self) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let bad = DecodeError::InvalidInteger { offset };
        let text = self.until(b'e', MAX_INT_DIGITS + 1, bad.clone())?;
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let valid = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && !(digits[0] == b'0' && (digits.len() > 1 || text.len() != digits.len()));
        if !valid {
            return Err(bad);
        }
        let text = std::str::from_utf8(text).map_err(|_| bad.clone())?;
        Value::big_int(text).ok_or(bad)
    }

    fn string(&mut self, utf8: bool) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let bad = DecodeError::InvalidLength { offset };
        let digits = self.until(b':', 20, bad.clone())?;
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits[0] == b'0' && digits.len() > 1)
        {
            return Err(bad);
        }
        let len = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(bad)?;
        let remaining = self.data.len() - self.pos;
        if len > remaining as u64 {
            return Err(DecodeError::LengthTooLarge {
                length: len,
                offset: self.pos,
                remaining,
            });
        }
        let (start, end) = (self.pos, self.pos + len as usize);
        self.pos = end;
        if utf8 {
            return Text::from_payload(self.data, self.owner, start, end)
                .map(Value::Str)
                .ok_or(DecodeError::InvalidUtf8 { offset: start });
        }
        let mut b = ByteStr::new();
        b.set_from_payload(self.data, self.owner, start, end);
        Ok(Value::StrOrBytes(b))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let code = self.peek()?;
        match code {
            b'i' => {
                self.pos += 1;
                self.int()
            }
            b'0'..=b'9' => self.string(false),
            b'u' => {
                self.pos += 1;
                self.string(true)
            }
            b'l' | b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep { max: MAX_DEPTH });
                }
                self.pos += 1;
                let mut items = Vec::new();
                let mut pairs = Vec::new();
                while self.peek()? != b'e' {
                    let v = self.value(depth + 1)?;
                    if code == b'l' {
                        items.push(v);
                    } else {
                        let val = self.value(depth + 1)?;
                        pairs.push((v, val));
                    }
                }
                self.pos += 1;
                Ok(if code == b'l' {
                    Value::List(items)
                } else {
                    Value::Dict(pairs)
                })
            }
            _ => Err(DecodeError::InvalidTypeCode { code, offset }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{hello_example, hello_example_decoded, sob};

    #[test]
    fn example_of_section_2_3() {
        let enc = encode(&hello_example()).unwrap();
        assert_eq!(enc, b"l5:hellod7:version3:6.0ee");
        assert_eq!(enc.len(), 25);
        assert_eq!(decode(&enc).unwrap(), hello_example_decoded());
    }

    #[test]
    fn integers_booleans_and_refusals() {
        assert_eq!(encode(&Value::Bool(true)).unwrap(), b"i1e");
        assert_eq!(encode(&Value::Int(-42)).unwrap(), b"i-42e");
        assert_eq!(decode(b"i-42e").unwrap(), Value::Int(-42));
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(
            decode(b"i123456789012345678901234567890e").unwrap(),
            Value::BigInt("123456789012345678901234567890".into())
        );
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"i-01e",
            b"ie",
            b"i-e",
            b"i1x2e",
            b"i+1e",
        ] {
            assert!(
                matches!(decode(bad), Err(DecodeError::InvalidInteger { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            decode(b"01:a"),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            decode(b"9:a"),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            decode(b"l1:a"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"x"),
            Err(DecodeError::InvalidTypeCode { .. })
        ));
        assert_eq!(decode(b"u2:\xc3\xa9").unwrap(), Value::from("é"));
        // Found by fuzzing: `u0:` is an empty Str, re-encoded as the untyped `0:`.
        assert_eq!(decode(b"u0:").unwrap(), Value::from(""));
        assert_eq!(encode(&Value::from("")).unwrap(), b"0:");
        assert!(matches!(
            decode(b"u1:\xff"),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        assert!(matches!(
            encode(&Value::None),
            Err(EncodeError::Unsupported { what: "None", .. })
        ));
        assert!(matches!(
            encode(&Value::Float(1.0)),
            Err(EncodeError::Unsupported { what: "float", .. })
        ));
        // Non-string keys, insertion order.
        let d = Value::Dict(vec![
            (Value::Int(2), Value::Int(1)),
            (sob(b"a"), Value::Int(0)),
        ]);
        assert_eq!(encode(&d).unwrap(), b"di2ei1e1:ai0ee");
        assert_eq!(decode(b"di2ei1e1:ai0ee").unwrap(), d);
        assert_eq!(decode_prefix(b"i1exyz").unwrap(), (Value::Int(1), 3));
        let deep = vec![b'l'; 100_000];
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
    }

    #[test]
    fn first_item_only() {
        assert_eq!(decode_first_item(b"l4:drawi1e").unwrap(), sob(b"draw"));
        assert_eq!(decode_first_item(b"li17e???").unwrap(), Value::Int(17));
        assert_eq!(decode_first_item(b"le"), Err(DecodeError::NotAPacket));
    }
}
