//! The value model shared by every packet encoder.
//!
//! It keeps `str` and `bytes` apart (rencodeplus does), and has a third string kind,
//! [`Value::StrOrBytes`], for what classic rencode and bencode decode: those formats cannot tell
//! text from binary, so the receiver decides per field.

use std::fmt;

use bytes::Bytes;

pub use crate::text::{ByteStr, Text};

/// One decoded (or to-be-encoded) xpra value.
///
/// `repr(C, u8)` puts every payload at offset 8, so that moving a `Value` copies aligned words
/// (the default layout puts `Bool` at offset 1, and the unaligned copies that follow stall the
/// decoder's stores). It stays 40 bytes.
#[derive(Debug, Clone, PartialEq)]
#[repr(C, u8)]
pub enum Value {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer with |x| >= 2^63, kept as normalised decimal text (`-?[1-9][0-9]*`).
    /// Build it with [`Value::big_int`], which turns small values into [`Value::Int`].
    BigInt(String),
    /// A float (rencodeplus sends float64, classic rencode float32).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Python's `None`.
    None,
    /// Text (see [`Text`]: short strings inline, longer ones sharing the decoded payload).
    Str(Text),
    /// Binary data.
    Bytes(Bytes),
    /// A string from a format that cannot tell text from binary (classic rencode, bencode); see
    /// [`ByteStr`] (short strings inline, longer ones sharing the decoded payload).
    StrOrBytes(ByteStr),
    /// A list or tuple.
    List(Vec<Value>),
    /// A dict, in insertion order; keys may be of any type.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// An integer from decimal text: [`Value::Int`] when it fits in an i64, otherwise
    /// [`Value::BigInt`]. `None` if the text is not a decimal integer.
    pub fn big_int(text: &str) -> Option<Value> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::Int(i));
        }
        let negative = text.starts_with('-');
        let trimmed = digits.trim_start_matches('0');
        Some(Value::BigInt(if negative {
            format!("-{trimmed}")
        } else {
            trimmed.to_owned()
        }))
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::BigInt(_) => "bigint",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::None => "None",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::StrOrBytes(_) => "str-or-bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }

    /// Text of a `Str`, or of a `StrOrBytes`/`Bytes` that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            Value::StrOrBytes(b) => std::str::from_utf8(b).ok(),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The raw bytes of any string kind (`Str` as UTF-8).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s.as_bytes()),
            Value::StrOrBytes(b) => Some(b),
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// An integer; booleans count as 0 and 1, as in Python.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// A float; integers convert.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// A boolean, with Python's truth for integers.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The pairs of a dict.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Whether this is an empty string of any kind (a raw-chunk placeholder).
    pub fn is_empty_string(&self) -> bool {
        matches!(self.as_bytes(), Some(b) if b.is_empty())
    }

    /// Whether this value is a string of any kind equal to `s`.
    pub fn str_eq(&self, s: &str) -> bool {
        self.as_bytes() == Some(s.as_bytes())
    }

    /// A dict's value for a string key (matching `Str`, `StrOrBytes` and `Bytes` keys).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.str_eq(key))
            .map(|(_, v)| v)
    }

    /// A dict's value for a key of any type.
    pub fn get_value(&self, key: &Value) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// xpra's `typedict` lookup of a dotted key (§3.2).
    ///
    /// 3.x sends flat keys (`"lz4.version"`), 5.x+ nested dicts (`{"lz4": {"version": ..}}`), and a
    /// nested dict's `""` key is the value of the dict itself. This finds `path` in any of those
    /// shapes: the exact key first, then each dotted prefix that names a dict, searched with the
    /// rest of the path. When the match is a dict with a `""` key, that entry is returned.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        self.lookup_raw(path).map(|v| match v.get("") {
            Some(inner) if v.as_dict().is_some() => inner,
            _ => v,
        })
    }

    /// Like [`Value::lookup`], but returns a matched dict itself even when it has a `""` key.
    pub fn lookup_raw(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.get(path) {
            return Some(v);
        }
        for (i, _) in path.match_indices('.') {
            let (head, rest) = (&path[..i], &path[i + 1..]);
            if let Some(inner @ Value::Dict(_)) = self.get(head) {
                if let Some(v) = inner.lookup_raw(rest) {
                    return Some(v);
                }
            }
        }
        None
    }

    /// Converts strings of unknown kind in place (recursively): valid UTF-8 becomes `Str`,
    /// the rest `Bytes`. Useful after decoding classic rencode or bencode.
    pub fn resolve_strings(&mut self) {
        match self {
            Value::StrOrBytes(b) => {
                *self = match std::mem::take(b).into_text() {
                    Ok(t) => Value::Str(t),
                    Err(b) => Value::Bytes(b.into_bytes()),
                }
            }
            Value::List(l) => l.iter_mut().for_each(Value::resolve_strings),
            Value::Dict(d) => d.iter_mut().for_each(|(k, v)| {
                k.resolve_strings();
                v.resolve_strings();
            }),
            _ => {}
        }
    }

    /// Builds a dict from string keys.
    pub fn dict<K: Into<Value>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Builds a list.
    pub fn list<V: Into<Value>>(items: impl IntoIterator<Item = V>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(Text::from(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Text::from(s))
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(Text::from(s.as_str()))
    }
}
impl From<Text> for Value {
    fn from(s: Text) -> Value {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u64> for Value {
    fn from(i: u64) -> Value {
        match i64::try_from(i) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(i.to_string()),
        }
    }
}
impl From<i128> for Value {
    fn from(i: i128) -> Value {
        match i64::try_from(i) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(i.to_string()),
        }
    }
}
impl From<usize> for Value {
    fn from(i: usize) -> Value {
        Value::from(i as u64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
impl From<Bytes> for Value {
    fn from(b: Bytes) -> Value {
        Value::Bytes(b)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b.into())
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(Bytes::copy_from_slice(b))
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::None, Into::into)
    }
}

fn write_bytes_repr(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    f.write_str("b'")?;
    for &c in b {
        match c {
            b'\\' => f.write_str("\\\\")?,
            b'\'' => f.write_str("\\'")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", c as char)?,
            _ => write!(f, "\\x{c:02x}")?,
        }
    }
    f.write_str("'")
}

/// Python-like `repr`: `'text'`, `b'bytes'`, `[..]`, `{k: v}`; a `StrOrBytes` shows as text when
/// it is valid UTF-8 (prefixed with `?` to mark the unknown kind).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(s) => f.write_str(s),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::None => f.write_str("None"),
            Value::Str(s) => write!(f, "{:?}", s.as_str()),
            Value::Bytes(b) => write_bytes_repr(f, b),
            Value::StrOrBytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "?{s:?}"),
                Err(_) => {
                    f.write_str("?")?;
                    write_bytes_repr(f, b)
                }
            },
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Dict(d) => {
                f.write_str("{")?;
                for (i, (k, v)) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        assert_eq!(Value::from("x").as_str(), Some("x"));
        assert_eq!(
            Value::StrOrBytes(ByteStr::from_static(b"x")).as_str(),
            Some("x")
        );
        assert_eq!(
            Value::StrOrBytes(ByteStr::from_static(b"\xff")).as_str(),
            None
        );
        assert_eq!(Value::Bool(true).as_int(), Some(1));
        assert_eq!(Value::from(3i64).as_int(), Some(3));
        assert_eq!(
            Value::from(u64::MAX),
            Value::BigInt("18446744073709551615".into())
        );
        assert_eq!(Value::big_int("-0012"), Some(Value::Int(-12)));
        assert_eq!(
            Value::big_int("-009223372036854775809"),
            Some(Value::BigInt("-9223372036854775809".into()))
        );
        assert_eq!(Value::big_int("1x"), None);
        assert_eq!(Value::big_int("-"), None);
    }

    #[test]
    fn typedict_lookup_of_flat_and_nested_keys() {
        let caps = Value::dict([
            ("lz4.version", Value::from("4.0.2")),
            ("session", Value::dict([("display", "171")])),
            ("brotli", Value::dict([("", true)])),
            (
                "encoding",
                Value::dict([(
                    "proxy.video",
                    Value::dict([("", Value::from(true)), ("x", 1.into())]),
                )]),
            ),
        ]);
        assert_eq!(
            caps.lookup("lz4.version").and_then(Value::as_str),
            Some("4.0.2")
        );
        assert_eq!(
            caps.lookup("session.display").and_then(Value::as_str),
            Some("171")
        );
        assert_eq!(caps.lookup("brotli"), Some(&Value::Bool(true)));
        assert!(caps.lookup_raw("brotli").and_then(Value::as_dict).is_some());
        assert_eq!(
            caps.lookup("encoding.proxy.video"),
            Some(&Value::Bool(true))
        );
        assert_eq!(caps.lookup("encoding.proxy.video.x"), Some(&Value::Int(1)));
        assert_eq!(caps.lookup("session.name"), None);
        let key = Value::StrOrBytes(ByteStr::from_static(b"k"));
        let d = Value::Dict(vec![(key, Value::Int(1))]);
        assert_eq!(d.get("k"), Some(&Value::Int(1)));
    }

    #[test]
    fn display_is_python_like() {
        let v = Value::list([
            Value::from("hello"),
            Value::dict([("a", Value::Bytes(Bytes::from_static(b"\x00'")))]),
            Value::None,
            Value::Bool(true),
            Value::Float(1.5),
        ]);
        assert_eq!(
            v.to_string(),
            r#"["hello", {"a": b'\x00\''}, None, True, 1.5]"#
        );
    }

    #[test]
    fn resolve_strings_splits_text_from_binary() {
        let mut v = Value::list([
            Value::StrOrBytes(ByteStr::from_static(b"abc")),
            Value::StrOrBytes(ByteStr::from_static(b"\xff")),
        ]);
        v.resolve_strings();
        assert_eq!(
            v,
            Value::list([
                Value::from("abc"),
                Value::Bytes(Bytes::from_static(b"\xff"))
            ])
        );
    }
}
