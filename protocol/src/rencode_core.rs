//! The type table and the encoder/decoder shared by rencodeplus and classic rencode (§2.1, §2.2).
//!
//! The two dialects differ only in strings (rencodeplus has a `/` form for bytes and decodes the
//! short form as text; classic rencode has one string kind) and in the default float width.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::value::Value;

/// How deep lists and dicts may nest before decoding (or encoding) stops with `TooDeep`.
pub const MAX_DEPTH: usize = 64;

pub(crate) const CHR_FLOAT64: u8 = 44;
pub(crate) const CHR_LIST: u8 = 59;
pub(crate) const CHR_DICT: u8 = 60;
pub(crate) const CHR_INT: u8 = 61;
pub(crate) const CHR_INT1: u8 = 62;
pub(crate) const CHR_INT2: u8 = 63;
pub(crate) const CHR_INT4: u8 = 64;
pub(crate) const CHR_INT8: u8 = 65;
pub(crate) const CHR_FLOAT32: u8 = 66;
pub(crate) const CHR_TRUE: u8 = 67;
pub(crate) const CHR_FALSE: u8 = 68;
pub(crate) const CHR_NONE: u8 = 69;
pub(crate) const CHR_TERM: u8 = 127;
const INT_POS_FIXED_COUNT: i64 = 44;
const INT_NEG_FIXED_START: u8 = 70;
const INT_NEG_FIXED_COUNT: i64 = 32;
const DICT_FIXED_START: u8 = 102;
const DICT_FIXED_COUNT: usize = 25;
const STR_FIXED_START: u8 = 128;
const STR_FIXED_COUNT: usize = 64;
const LIST_FIXED_START: u8 = 192;
const LIST_FIXED_COUNT: usize = 64;
/// python-rencode's `MAX_INT_LENGTH`: big integers are shorter than this many characters.
const MAX_INT_LENGTH: usize = 64;
/// Longest decimal length prefix accepted (u64 has 20 digits).
const MAX_LENGTH_DIGITS: usize = 20;

/// Which flavour of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// xpra's rencodeplus: `str` and `bytes` are distinct.
    Plus,
    /// python-rencode: one string kind.
    Classic,
}

/// Encoder settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodeOptions {
    /// The dialect.
    pub(crate) dialect: Dialect,
    /// Write floats as float32 (`0x42`) instead of float64 (`0x2C`).
    pub(crate) float32: bool,
}

pub(crate) fn encode_into(
    v: &Value,
    out: &mut Vec<u8>,
    opts: EncodeOptions,
    depth: usize,
) -> Result<(), EncodeError> {
    match v {
        Value::Int(i) => encode_int(*i, out),
        Value::BigInt(s) => encode_big_int(s, out)?,
        Value::Float(f) => {
            if opts.float32 {
                out.push(CHR_FLOAT32);
                out.extend_from_slice(&(*f as f32).to_be_bytes());
            } else {
                out.push(CHR_FLOAT64);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Bool(true) => out.push(CHR_TRUE),
        Value::Bool(false) => out.push(CHR_FALSE),
        Value::None => out.push(CHR_NONE),
        Value::Str(s) => encode_str(s.as_bytes(), out),
        Value::Bytes(b) => match opts.dialect {
            Dialect::Plus => encode_long(b, b'/', out),
            Dialect::Classic => encode_str(b, out),
        },
        Value::StrOrBytes(b) => match opts.dialect {
            // rencodeplus must pick one: text when it is valid UTF-8.
            Dialect::Plus if std::str::from_utf8(b).is_err() => encode_long(b, b'/', out),
            _ => encode_str(b, out),
        },
        Value::List(items) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            let fixed = items.len() < LIST_FIXED_COUNT;
            if fixed {
                out.push(LIST_FIXED_START + items.len() as u8);
            } else {
                out.push(CHR_LIST);
            }
            for item in items {
                encode_into(item, out, opts, depth + 1)?;
            }
            if !fixed {
                out.push(CHR_TERM);
            }
        }
        Value::Dict(pairs) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep { max: MAX_DEPTH });
            }
            let fixed = pairs.len() < DICT_FIXED_COUNT;
            if fixed {
                out.push(DICT_FIXED_START + pairs.len() as u8);
            } else {
                out.push(CHR_DICT);
            }
            for (k, v) in pairs {
                encode_into(k, out, opts, depth + 1)?;
                encode_into(v, out, opts, depth + 1)?;
            }
            if !fixed {
                out.push(CHR_TERM);
            }
        }
    }
    Ok(())
}

fn encode_int(x: i64, out: &mut Vec<u8>) {
    if (0..INT_POS_FIXED_COUNT).contains(&x) {
        out.push(x as u8);
    } else if (-INT_NEG_FIXED_COUNT..0).contains(&x) {
        out.push((i64::from(INT_NEG_FIXED_START) - 1 - x) as u8);
    } else if let Ok(v) = i8::try_from(x) {
        out.push(CHR_INT1);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i16::try_from(x) {
        out.push(CHR_INT2);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(x) {
        out.push(CHR_INT4);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(CHR_INT8);
        out.extend_from_slice(&x.to_be_bytes());
    }
}

fn encode_big_int(s: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match Value::big_int(s) {
        Some(Value::Int(i)) => encode_int(i, out),
        Some(Value::BigInt(norm)) if norm.len() < MAX_INT_LENGTH => {
            out.push(CHR_INT);
            out.extend_from_slice(norm.as_bytes());
            out.push(CHR_TERM);
        }
        _ => return Err(EncodeError::InvalidBigInt(s.to_owned())),
    }
    Ok(())
}

fn encode_str(b: &[u8], out: &mut Vec<u8>) {
    if b.len() < STR_FIXED_COUNT {
        out.push(STR_FIXED_START + b.len() as u8);
        out.extend_from_slice(b);
    } else {
        encode_long(b, b':', out);
    }
}

fn encode_long(b: &[u8], sep: u8, out: &mut Vec<u8>) {
    let mut digits = [0u8; MAX_LENGTH_DIGITS];
    let mut n = b.len();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - i + 1 + b.len());
    out.extend_from_slice(&digits[i..]);
    out.push(sep);
    out.extend_from_slice(b);
}

/// A cursor over one payload.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    /// When the payload is a `Bytes`, binary values are sliced from it instead of copied.
    owner: Option<&'a Bytes>,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(data: &'a [u8], owner: Option<&'a Bytes>, dialect: Dialect) -> Self {
        Decoder {
            data,
            owner,
            pos: 0,
            dialect,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Decodes one value and requires the input to end there.
    pub(crate) fn decode_all(mut self) -> Result<Value, DecodeError> {
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

    /// Decodes one value at the cursor (top level), leaving the cursor after it.
    pub(crate) fn value_at_top(&mut self) -> Result<Value, DecodeError> {
        if self.data.is_empty() {
            return Err(DecodeError::Empty);
        }
        self.value(0)
    }

    /// Decodes only the first item of a top-level list.
    pub(crate) fn first_item(mut self) -> Result<Value, DecodeError> {
        let code = self.byte()?;
        let count_ok = match code {
            CHR_LIST => self.data.get(self.pos) != Some(&CHR_TERM),
            c if c >= LIST_FIXED_START => c > LIST_FIXED_START,
            _ => false,
        };
        if !count_ok {
            return Err(DecodeError::NotAPacket);
        }
        self.value(1)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.data.len() - self.pos;
        if n > remaining {
            return Err(DecodeError::Truncated {
                offset: self.data.len(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn bytes_value(&self, start: usize, end: usize) -> Bytes {
        match self.owner {
            Some(b) => b.slice(start..end),
            None => Bytes::copy_from_slice(&self.data[start..end]),
        }
    }

    fn text(&self, start: usize, end: usize) -> Result<String, DecodeError> {
        std::str::from_utf8(&self.data[start..end])
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { offset: start })
    }

    /// A string of `len` bytes at the cursor, typed by the dialect and separator.
    fn string(&mut self, len: usize, binary: bool) -> Result<Value, DecodeError> {
        let start = self.pos;
        self.take(len)?;
        let end = self.pos;
        Ok(match (self.dialect, binary) {
            (Dialect::Classic, _) => Value::StrOrBytes(self.bytes_value(start, end)),
            (Dialect::Plus, true) => Value::Bytes(self.bytes_value(start, end)),
            (Dialect::Plus, false) => Value::Str(self.text(start, end)?),
        })
    }

    /// `<digits>:` or `<digits>/` then data; the first digit has been consumed.
    fn long_string(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos - 1;
        let mut len: u64 = 0;
        self.pos = start;
        let sep = loop {
            let c = self.byte()?;
            match c {
                b'0'..=b'9' => {
                    if self.pos - start > MAX_LENGTH_DIGITS {
                        return Err(DecodeError::InvalidLength { offset: start });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(u64::from(c - b'0')))
                        .ok_or(DecodeError::InvalidLength { offset: start })?;
                }
                b':' => break c,
                b'/' if self.dialect == Dialect::Plus => break c,
                _ => return Err(DecodeError::InvalidLength { offset: start }),
            }
        };
        let remaining = self.data.len() - self.pos;
        if len > remaining as u64 {
            return Err(DecodeError::LengthTooLarge {
                length: len,
                offset: self.pos,
                remaining,
            });
        }
        self.string(len as usize, sep == b'/')
    }

    fn big_int(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos;
        let window = &self.data[start..self.data.len().min(start + MAX_INT_LENGTH + 1)];
        let Some(end) = window.iter().position(|&b| b == CHR_TERM) else {
            return Err(if window.len() > MAX_INT_LENGTH {
                DecodeError::InvalidInteger { offset: start }
            } else {
                DecodeError::Truncated {
                    offset: self.data.len(),
                }
            });
        };
        let text = std::str::from_utf8(&window[..end])
            .map_err(|_| DecodeError::InvalidInteger { offset: start })?;
        let text = text.strip_prefix('+').unwrap_or(text);
        let v = Value::big_int(text).ok_or(DecodeError::InvalidInteger { offset: start })?;
        self.pos = start + end + 1;
        Ok(v)
    }

    fn at_term(&self) -> Result<bool, DecodeError> {
        match self.data.get(self.pos) {
            Some(&b) => Ok(b == CHR_TERM),
            None => Err(DecodeError::Truncated { offset: self.pos }),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let code = self.byte()?;
        Ok(match code {
            0..=43 => Value::Int(i64::from(code)),
            CHR_FLOAT64 => Value::Float(f64::from_be_bytes(self.take_array()?)),
            b'0'..=b'9' => self.long_string()?,
            CHR_LIST => {
                check_depth(depth)?;
                let mut items = Vec::new();
                while !self.at_term()? {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Value::List(items)
            }
            CHR_DICT => {
                check_depth(depth)?;
                let mut pairs = Vec::new();
                while !self.at_term()? {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                }
                self.pos += 1;
                Value::Dict(pairs)
            }
            CHR_INT => self.big_int()?,
            CHR_INT1 => Value::Int(i64::from(i8::from_be_bytes(self.take_array()?))),
            CHR_INT2 => Value::Int(i64::from(i16::from_be_bytes(self.take_array()?))),
            CHR_INT4 => Value::Int(i64::from(i32::from_be_bytes(self.take_array()?))),
            CHR_INT8 => Value::Int(i64::from_be_bytes(self.take_array()?)),
            CHR_FLOAT32 => Value::Float(f64::from(f32::from_be_bytes(self.take_array()?))),
            CHR_TRUE => Value::Bool(true),
            CHR_FALSE => Value::Bool(false),
            CHR_NONE => Value::None,
            70..=101 => Value::Int(i64::from(INT_NEG_FIXED_START) - 1 - i64::from(code)),
            102..=126 => {
                check_depth(depth)?;
                let n = usize::from(code - DICT_FIXED_START);
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Dict(pairs)
            }
            128..=191 => self.string(usize::from(code - STR_FIXED_START), false)?,
            192..=255 => {
                check_depth(depth)?;
                let n = usize::from(code - LIST_FIXED_START);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            // 45..=47 (unused), 58 (':'), CHR_TERM where a value is expected.
            _ => return Err(DecodeError::InvalidTypeCode { code, offset }),
        })
    }
}

fn check_depth(depth: usize) -> Result<(), DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep { max: MAX_DEPTH });
    }
    Ok(())
}
