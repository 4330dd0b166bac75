//! The type table and the encoder/decoder shared by rencodeplus and classic rencode (§2.1, §2.2).
//!
//! The two dialects differ only in strings (rencodeplus has a `/` form for bytes and decodes the
//! short form as text; classic rencode has one string kind) and in the default float width.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::text::{ByteStr, Text};
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
            let terminated = LIST.open(items.len(), out, depth)?;
            for item in items {
                encode_into(item, out, opts, depth + 1)?;
            }
            close(terminated, out);
        }
        Value::Dict(pairs) => {
            let terminated = DICT.open(pairs.len(), out, depth)?;
            for (k, v) in pairs {
                encode_into(k, out, opts, depth + 1)?;
                encode_into(v, out, opts, depth + 1)?;
            }
            close(terminated, out);
        }
    }
    Ok(())
}

/// How rencode frames a list or a dict: small ones as one byte that holds the count, larger ones
/// between an opening byte and [`CHR_TERM`].
#[derive(Clone, Copy)]
struct Container {
    /// The byte for an empty container; `fixed_start + n` for `n` entries.
    fixed_start: u8,
    /// Containers with fewer entries than this use the one-byte form.
    fixed_count: usize,
    /// The opening byte of the terminated form.
    marker: u8,
}

const LIST: Container = Container {
    fixed_start: LIST_FIXED_START,
    fixed_count: LIST_FIXED_COUNT,
    marker: CHR_LIST,
};

const DICT: Container = Container {
    fixed_start: DICT_FIXED_START,
    fixed_count: DICT_FIXED_COUNT,
    marker: CHR_DICT,
};

impl Container {
    /// Writes the start of a container of `len` entries at nesting `depth`, refusing to nest
    /// deeper than [`MAX_DEPTH`]; `true` when it must be [`close`]d with a terminator.
    #[inline]
    fn open(self, len: usize, out: &mut Vec<u8>, depth: usize) -> Result<bool, EncodeError> {
        if depth >= MAX_DEPTH {
            return Err(EncodeError::TooDeep { max: MAX_DEPTH });
        }
        if len < self.fixed_count {
            out.push(self.fixed_start + len as u8);
            Ok(false)
        } else {
            out.push(self.marker);
            Ok(true)
        }
    }
}

/// Ends a container that [`Container::open`] said is `terminated`.
#[inline]
fn close(terminated: bool, out: &mut Vec<u8>) {
    if terminated {
        out.push(CHR_TERM);
    }
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

/// The decoder's internal error: boxed, so that `Result<Value, Fail>` is no larger than a `Value`
/// and the hot path moves 40 bytes, not a `Value` beside a `DecodeError`.
type Fail = Box<DecodeError>;

/// Builds an error result (out of line: errors are the cold path).
#[cold]
#[inline(never)]
fn fail<T>(e: DecodeError) -> Result<T, Fail> {
    Err(Box::new(e))
}

/// A cursor over one payload.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    /// When the payload is a `Bytes`, long strings and binary values are sliced from it instead
    /// of copied.
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
        let v = self.value(0).map_err(|e| *e)?;
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
        self.value(0).map_err(|e| *e)
    }

    /// Decodes only the first item of a top-level list.
    pub(crate) fn first_item(mut self) -> Result<Value, DecodeError> {
        let count_ok = match self.data.first() {
            None => return Err(DecodeError::Truncated { offset: 0 }),
            Some(&CHR_LIST) => self.data.get(1) != Some(&CHR_TERM),
            Some(&c) if c >= LIST_FIXED_START => c > LIST_FIXED_START,
            Some(_) => false,
        };
        if !count_ok {
            return Err(DecodeError::NotAPacket);
        }
        self.pos = 1;
        self.value(1).map_err(|e| *e)
    }

    /// Bytes left after the cursor.
    #[inline]
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[inline(always)]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let a: Option<[u8; N]> = self
            .data
            .get(self.pos..self.pos + N)
            .and_then(|s| s.try_into().ok());
        match a {
            Some(a) => {
                self.pos += N;
                Ok(a)
            }
            None => fail(DecodeError::Truncated {
                offset: self.data.len(),
            }),
        }
    }

    fn bytes_value(&self, start: usize, end: usize) -> Bytes {
        match self.owner {
            Some(b) => b.slice(start..end),
            None => Bytes::copy_from_slice(&self.data[start..end]),
        }
    }

    /// A string of `len` bytes at the cursor, typed by the dialect and separator, into `slot`.
    #[inline]
    fn string_into(&mut self, slot: &mut Value, len: usize, binary: bool) -> Result<(), Fail> {
        let start = self.pos;
        if len > self.remaining() {
            return fail(DecodeError::Truncated {
                offset: self.data.len(),
            });
        }
        let end = start + len;
        self.pos = end;
        // Built in place: an empty value of the right kind, then its contents.
        match (self.dialect, binary) {
            (Dialect::Classic, _) => {
                put(
                    slot,
                    Value::StrOrBytes(ByteStr::from_payload(self.data, self.owner, start, end)),
                );
            }
            (Dialect::Plus, true) => put(slot, Value::Bytes(self.bytes_value(start, end))),
            (Dialect::Plus, false) => {
                if std::str::from_utf8(&self.data[start..end]).is_err() {
                    return fail(DecodeError::InvalidUtf8 { offset: start });
                }
                put(
                    slot,
                    Value::Str(Text::from_valid_payload(self.data, self.owner, start, end)),
                );
            }
        }
        Ok(())
    }

    /// `<digits>:` or `<digits>/` then data, into `slot`; the first digit has been consumed.
    fn long_string_into(&mut self, slot: &mut Value) -> Result<(), Fail> {
        let start = self.pos - 1;
        let mut len: u64 = 0;
        self.pos = start;
        let sep = loop {
            let Some(&c) = self.data.get(self.pos) else {
                return fail(DecodeError::Truncated { offset: self.pos });
            };
            self.pos += 1;
            match c {
                b'0'..=b'9' => {
                    if self.pos - start > MAX_LENGTH_DIGITS {
                        return fail(DecodeError::InvalidLength { offset: start });
                    }
                    match len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(u64::from(c - b'0')))
                    {
                        Some(l) => len = l,
                        None => return fail(DecodeError::InvalidLength { offset: start }),
                    }
                }
                b':' => break c,
                b'/' if self.dialect == Dialect::Plus => break c,
                _ => return fail(DecodeError::InvalidLength { offset: start }),
            }
        };
        let remaining = self.remaining();
        if len > remaining as u64 {
            return fail(DecodeError::LengthTooLarge {
                length: len,
                offset: self.pos,
                remaining,
            });
        }
        self.string_into(slot, len as usize, sep == b'/')
    }

    fn big_int(&mut self) -> Result<Value, Fail> {
        let start = self.pos;
        let window = &self.data[start..self.data.len().min(start + MAX_INT_LENGTH + 1)];
        let Some(end) = window.iter().position(|&b| b == CHR_TERM) else {
            return fail(if window.len() > MAX_INT_LENGTH {
                DecodeError::InvalidInteger { offset: start }
            } else {
                DecodeError::Truncated {
                    offset: self.data.len(),
                }
            });
        };
        let Some(v) = std::str::from_utf8(&window[..end])
            .ok()
            .map(|t| t.strip_prefix('+').unwrap_or(t))
            .and_then(Value::big_int)
        else {
            return fail(DecodeError::InvalidInteger { offset: start });
        };
        self.pos = start + end + 1;
        Ok(v)
    }

    /// Whether the cursor is at a terminator (and steps over it if so).
    #[inline]
    fn at_term(&mut self) -> Result<bool, Fail> {
        match self.data.get(self.pos) {
            Some(&CHR_TERM) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => fail(DecodeError::Truncated { offset: self.pos }),
        }
    }

    /// Decodes one value.
    fn value(&mut self, depth: usize) -> Result<Value, Fail> {
        let mut v = Value::None;
        self.value_into(&mut v, depth)?;
        Ok(v)
    }

    /// Decodes one value into `slot`, which holds `Value::None` or a placeholder (both own
    /// nothing, so they are overwritten without being dropped).
    ///
    /// Writing in place, rather than returning the value, lets each value be built where it
    /// ends up (in its list's or dict's buffer): returning 40-byte enums and copying them on
    /// cost more than the decoding itself (store-forwarding stalls on the partial-width copies).
    fn value_into(&mut self, slot: &mut Value, depth: usize) -> Result<(), Fail> {
        let offset = self.pos;
        let Some(&code) = self.data.get(offset) else {
            return fail(DecodeError::Truncated { offset });
        };
        self.pos = offset + 1;
        let v = match code {
            0..=43 => Value::Int(i64::from(code)),
            STR_FIXED_START..=191 => {
                return self.string_into(slot, usize::from(code - STR_FIXED_START), false)
            }
            LIST_FIXED_START..=255 => {
                check_depth(depth)?;
                let n = usize::from(code - LIST_FIXED_START);
                // Every item takes at least one byte: never reserve more than the input holds.
                let mut items: Vec<Value> = Vec::new();
                items.resize_with(n.min(self.remaining()), || Value::None);
                for item in &mut items {
                    self.value_into(item, depth + 1)?;
                }
                if items.len() < n {
                    // The input cannot hold the declared items.
                    return fail(DecodeError::Truncated {
                        offset: self.data.len(),
                    });
                }
                Value::List(items)
            }
            DICT_FIXED_START..=126 => {
                check_depth(depth)?;
                let n = usize::from(code - DICT_FIXED_START);
                let mut pairs: Vec<(Value, Value)> = Vec::new();
                pairs.resize_with(n.min(self.remaining() / 2), || (Value::None, Value::None));
                for (k, v) in &mut pairs {
                    self.value_into(k, depth + 1)?;
                    self.value_into(v, depth + 1)?;
                }
                if pairs.len() < n {
                    return fail(DecodeError::Truncated {
                        offset: self.data.len(),
                    });
                }
                Value::Dict(pairs)
            }
            70..=101 => Value::Int(i64::from(INT_NEG_FIXED_START) - 1 - i64::from(code)),
            CHR_TRUE => Value::Bool(true),
            CHR_FALSE => Value::Bool(false),
            CHR_NONE => Value::None,
            CHR_INT1 => Value::Int(i64::from(i8::from_be_bytes(self.take_array()?))),
            CHR_INT2 => Value::Int(i64::from(i16::from_be_bytes(self.take_array()?))),
            CHR_INT4 => Value::Int(i64::from(i32::from_be_bytes(self.take_array()?))),
            CHR_INT8 => Value::Int(i64::from_be_bytes(self.take_array()?)),
            CHR_FLOAT32 => Value::Float(f64::from(f32::from_be_bytes(self.take_array()?))),
            CHR_FLOAT64 => Value::Float(f64::from_be_bytes(self.take_array()?)),
            b'0'..=b'9' => return self.long_string_into(slot),
            CHR_LIST => {
                check_depth(depth)?;
                let mut items: Vec<Value> = Vec::new();
                let mut n = 0;
                while !self.at_term()? {
                    if n == items.len() {
                        // Room for more items, filled in place (each takes at least a byte).
                        let more = n.max(16).min(self.remaining());
                        items.resize_with(n + more, || Value::None);
                    }
                    if let Some(item) = items.get_mut(n) {
                        self.value_into(item, depth + 1)?;
                    }
                    n += 1;
                }
                items.truncate(n);
                Value::List(items)
            }
            CHR_DICT => {
                check_depth(depth)?;
                let mut pairs: Vec<(Value, Value)> = Vec::new();
                let mut n = 0;
                while !self.at_term()? {
                    if n == pairs.len() {
                        let more = n.max(8).min(self.remaining() / 2 + 1);
                        pairs.resize_with(n + more, || (Value::None, Value::None));
                    }
                    if let Some((k, v)) = pairs.get_mut(n) {
                        self.value_into(k, depth + 1)?;
                        self.value_into(v, depth + 1)?;
                    }
                    n += 1;
                }
                pairs.truncate(n);
                Value::Dict(pairs)
            }
            CHR_INT => self.big_int()?,
            // 45..=47 (unused), 58 (':'), CHR_TERM where a value is expected.
            _ => return fail(DecodeError::InvalidTypeCode { code, offset }),
        };
        put(slot, v);
        Ok(())
    }
}

/// Stores `v` in `slot`, which holds `Value::None` or a placeholder: nothing to drop, so skip
/// the drop glue (a call per value otherwise).
#[inline(always)]
fn put(slot: &mut Value, v: Value) {
    std::mem::forget(std::mem::replace(slot, v));
}

#[inline]
fn check_depth(depth: usize) -> Result<(), Fail> {
    if depth >= MAX_DEPTH {
        return fail(DecodeError::TooDeep { max: MAX_DEPTH });
    }
    Ok(())
}
