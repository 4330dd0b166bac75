//! The string types of [`Value`](crate::value::Value): [`Text`] for
//! [`Value::Str`](crate::value::Value::Str) and [`ByteStr`] for
//! [`Value::StrOrBytes`](crate::value::Value::StrOrBytes).
//!
//! Decoding a hello makes hundreds or thousands of short strings, and a `String` (or a `Bytes`
//! slice, with its reference count) per string made allocation, atomics and freeing the tree the
//! bulk of decoding time. Both types keep up to [`Text::INLINE_CAPACITY`] bytes inline (no
//! allocation, no reference count), and longer strings as a [`Bytes`] that shares the decoded
//! payload's buffer (or owns a `String`'s or `Vec`'s buffer) without copying.
//!
//! The UTF-8 check happens once, when a `Text` is built; every constructor checks or takes a
//! `str`. This crate forbids `unsafe`, so [`Text::as_str`] cannot skip the (cheap, linear, ASCII
//! fast-pathed) check when it hands out a `&str`: prefer [`Text::as_bytes`], `==` and the `Value`
//! lookups, which compare bytes, in hot paths.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

/// `PartialEq`, `Eq`, `PartialOrd` and `Ord` for a type with an `as_bytes` method, by its bytes:
/// [`Text`] compares and sorts as `str` does, [`ByteStr`] as `[u8]` does.
macro_rules! byte_order {
    ($t:ty) => {
        impl PartialEq for $t {
            #[inline]
            fn eq(&self, other: &$t) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &$t) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            /// Byte order, which for `Text` is `str`'s order.
            fn cmp(&self, other: &$t) -> Ordering {
                self.as_bytes().cmp(other.as_bytes())
            }
        }
    };
}

/// `$t == $other` by the bytes, for each `$other` (`AsRef<[u8]>`), so that a [`Text`] or
/// [`ByteStr`] compares with the plain types it stands for; with `; both ways` also
/// `$other == $t`.
macro_rules! eq_by_bytes {
    ($t:ty: $($other:ty),+; both ways) => {
        eq_by_bytes!($t: $($other),+);
        $(
            impl PartialEq<$t> for $other {
                fn eq(&self, other: &$t) -> bool {
                    AsRef::<[u8]>::as_ref(self) == other.as_bytes()
                }
            }
        )+
    };
    ($t:ty: $($other:ty),+) => {$(
        impl PartialEq<$other> for $t {
            fn eq(&self, other: &$other) -> bool {
                self.as_bytes() == AsRef::<[u8]>::as_ref(other)
            }
        }
    )+};
}

/// How many bytes are kept inline (what fits beside `Bytes`' non-null field in 32 bytes).
const INLINE: usize = 23;

/// Immutable UTF-8 text: short strings inline, longer ones in a shared [`Bytes`].
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
pub(crate) enum Repr {
    /// `buf[..len]` is the text; the rest is zero.
    Inline { len: u8, buf: [u8; INLINE] },
    /// Longer text (always valid UTF-8).
    Shared(Bytes),
}

impl Text {
    /// Text up to this many bytes long is stored inline, without allocating.
    pub const INLINE_CAPACITY: usize = INLINE;

    /// The empty string.
    pub const fn new() -> Text {
        Text(Repr::EMPTY)
    }

    /// Text from a `'static` string, without copying long ones.
    pub fn from_static(s: &'static str) -> Text {
        Text(Repr::from_bytes(Bytes::from_static(s.as_bytes())))
    }

    /// Text from bytes, if they are valid UTF-8; long text keeps `bytes`' buffer.
    pub fn from_utf8(bytes: Bytes) -> Result<Text, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Text(Repr::from_bytes(bytes)))
    }

    /// Text from the slice `data[start..end]` of a payload, if it is valid UTF-8: inline when
    /// short, else a slice of `owner` (when given, `data` must be `owner`'s bytes) or a copy.
    pub(crate) fn from_payload(
        data: &[u8],
        owner: Option<&Bytes>,
        start: usize,
        end: usize,
    ) -> Option<Text> {
        let mut t = Text::new();
        t.set_from_payload(data, owner, start, end).then_some(t)
    }

    /// [`Text::from_payload`] for a range already checked to be UTF-8.
    #[inline(always)]
    pub(crate) fn from_valid_payload(
        data: &[u8],
        owner: Option<&Bytes>,
        start: usize,
        end: usize,
    ) -> Text {
        Text(Repr::from_payload(data, owner, start, end))
    }

    /// Like [`Text::from_payload`], but overwrites an empty `Text` in place (the decoder's hot
    /// path: building the text where it ends up saves copying it); `false` if not UTF-8 or out of
    /// range, leaving `self` empty.
    #[inline]
    pub(crate) fn set_from_payload(
        &mut self,
        data: &[u8],
        owner: Option<&Bytes>,
        start: usize,
        end: usize,
    ) -> bool {
        match data.get(start..end) {
            Some(s) if std::str::from_utf8(s).is_ok() => {
                self.0.set_from_payload(s, owner, start, end);
                true
            }
            _ => false,
        }
    }

    /// The UTF-8 bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The text. Linear in the length: see the module docs.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Every constructor checked the bytes, so this never falls back to "".
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The UTF-8 bytes as a [`Bytes`] (copied when inline, shared otherwise).
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Repr::from_slice(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text(Repr::inline(s.as_bytes()))
        } else {
            Text(Repr::Shared(Bytes::from(s)))
        }
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::from(s.as_str())
    }
}

impl From<Box<str>> for Text {
    fn from(s: Box<str>) -> Text {
        Text::from(String::from(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

impl From<Text> for Bytes {
    fn from(t: Text) -> Bytes {
        t.into_bytes()
    }
}

impl TryFrom<Bytes> for Text {
    type Error = std::str::Utf8Error;
    fn try_from(b: Bytes) -> Result<Text, Self::Error> {
        Text::from_utf8(b)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

byte_order!(Text);
eq_by_bytes!(Text: str, &str, String; both ways);

impl Hash for Text {
    /// Hashes like `str`, so that `Borrow<str>` lookups work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Repr {
    /// `data[start..end]` (`start <= end <= data.len()`): inline when short, else a slice of
    /// `owner` or a copy. Short strings are read as a fixed-size window where the payload has
    /// one, which compiles to a couple of wide loads and stores instead of a `memcpy` call.
    #[inline(always)]
    fn from_payload(data: &[u8], owner: Option<&Bytes>, start: usize, end: usize) -> Repr {
        let len = end.saturating_sub(start);
        if len <= INLINE {
            let window: Option<[u8; INLINE]> = data
                .get(start..start + INLINE)
                .and_then(|w| w.try_into().ok());
            return match window {
                Some(buf) => Repr::Inline {
                    len: len as u8,
                    buf,
                },
                None => Repr::inline(data.get(start..end).unwrap_or_default()),
            };
        }
        match (owner, data.get(start..end)) {
            (Some(b), _) => Repr::Shared(b.slice(start..end)),
            (None, Some(s)) => Repr::Shared(Bytes::copy_from_slice(s)),
            (None, None) => Repr::EMPTY,
        }
    }

    const EMPTY: Repr = Repr::Inline {
        len: 0,
        buf: [0; INLINE],
    };

    /// `s` must be at most `INLINE` bytes long.
    #[inline]
    fn inline(s: &[u8]) -> Repr {
        let mut buf = [0; INLINE];
        buf[..s.len()].copy_from_slice(s);
        Repr::Inline {
            len: s.len() as u8,
            buf,
        }
    }

    #[inline]
    fn from_bytes(b: Bytes) -> Repr {
        if b.len() <= INLINE {
            Repr::inline(&b)
        } else {
            Repr::Shared(b)
        }
    }

    #[inline]
    fn from_slice(s: &[u8]) -> Repr {
        if s.len() <= INLINE {
            Repr::inline(s)
        } else {
            Repr::Shared(Bytes::copy_from_slice(s))
        }
    }

    /// Overwrites `self` (which must own nothing: a fresh `EMPTY`) with `data[start..end]`,
    /// in place: inline when short, else a slice of `owner` or a copy. `end <= data.len()`.
    #[inline]
    fn set_from_payload(&mut self, s: &[u8], owner: Option<&Bytes>, start: usize, end: usize) {
        if s.len() <= INLINE {
            if let Repr::Inline { len, buf } = self {
                buf[..s.len()].copy_from_slice(s);
                *len = s.len() as u8;
                return;
            }
        }
        let shared = Repr::Shared(match owner {
            Some(b) => b.slice(start..end),
            None => Bytes::copy_from_slice(s),
        });
        // `self` owns nothing: skip its drop glue.
        std::mem::forget(std::mem::replace(self, shared));
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Shared(b) => b,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            Repr::Inline { len, .. } => usize::from(*len),
            Repr::Shared(b) => b.len(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Repr::Inline { len, buf } => Bytes::copy_from_slice(&buf[..usize::from(len)]),
            Repr::Shared(b) => b,
        }
    }
}

/// Immutable bytes, short ones inline, longer ones in a shared [`Bytes`]: the payload of
/// [`Value::StrOrBytes`](crate::value::Value::StrOrBytes), a string of a format that cannot tell
/// text from binary. Dereferences to `[u8]`.
#[derive(Clone)]
pub struct ByteStr(Repr);

impl ByteStr {
    /// The empty string.
    pub const fn new() -> ByteStr {
        ByteStr(Repr::EMPTY)
    }

    /// Bytes from a `'static` slice, without copying long ones.
    pub fn from_static(s: &'static [u8]) -> ByteStr {
        ByteStr(Repr::from_bytes(Bytes::from_static(s)))
    }

    /// `data[start..end]` (`start <= end <= data.len()`): inline when short, else a slice of
    /// `owner` (which must hold `data`) or a copy.
    #[inline(always)]
    pub(crate) fn from_payload(
        data: &[u8],
        owner: Option<&Bytes>,
        start: usize,
        end: usize,
    ) -> ByteStr {
        ByteStr(Repr::from_payload(data, owner, start, end))
    }

    /// Overwrites an empty `ByteStr` with `data[start..end]` in place (see
    /// [`Text::set_from_payload`]).
    #[inline]
    pub(crate) fn set_from_payload(
        &mut self,
        data: &[u8],
        owner: Option<&Bytes>,
        start: usize,
        end: usize,
    ) {
        if let Some(s) = data.get(start..end) {
            self.0.set_from_payload(s, owner, start, end);
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if the bytes are valid UTF-8.
    pub fn to_text(&self) -> Option<Text> {
        std::str::from_utf8(self.as_bytes()).ok()?;
        Some(Text(self.0.clone()))
    }

    /// Converts to [`Text`] if the bytes are valid UTF-8 (without copying), else gives them back.
    pub fn into_text(self) -> Result<Text, ByteStr> {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(_) => Ok(Text(self.0)),
            Err(_) => Err(self),
        }
    }

    /// The bytes as a [`Bytes`] (copied when inline, shared otherwise).
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Default for ByteStr {
    fn default() -> ByteStr {
        ByteStr::new()
    }
}

impl From<Bytes> for ByteStr {
    fn from(b: Bytes) -> ByteStr {
        ByteStr(Repr::from_bytes(b))
    }
}

impl From<&[u8]> for ByteStr {
    fn from(s: &[u8]) -> ByteStr {
        ByteStr(Repr::from_slice(s))
    }
}

impl<const N: usize> From<&[u8; N]> for ByteStr {
    fn from(s: &[u8; N]) -> ByteStr {
        ByteStr(Repr::from_slice(s))
    }
}

impl From<Vec<u8>> for ByteStr {
    fn from(v: Vec<u8>) -> ByteStr {
        ByteStr(Repr::from_bytes(Bytes::from(v)))
    }
}

impl From<&str> for ByteStr {
    fn from(s: &str) -> ByteStr {
        ByteStr(Repr::from_slice(s.as_bytes()))
    }
}

impl From<Text> for ByteStr {
    fn from(t: Text) -> ByteStr {
        ByteStr(t.0)
    }
}

impl From<ByteStr> for Bytes {
    fn from(b: ByteStr) -> Bytes {
        b.into_bytes()
    }
}

impl Deref for ByteStr {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for ByteStr {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for ByteStr {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

byte_order!(ByteStr);
eq_by_bytes!(ByteStr: [u8], &[u8], Bytes);
impl<const N: usize> PartialEq<[u8; N]> for ByteStr {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_bytes() == other
    }
}
impl<const N: usize> PartialEq<&[u8; N]> for ByteStr {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_bytes() == *other
    }
}

impl Hash for ByteStr {
    /// Hashes like `[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for ByteStr {
    /// Like [`Bytes`]: `b"..."` with escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_shared() {
        let short = Text::from("hello");
        assert!(matches!(short.0, Repr::Inline { len: 5, .. }));
        assert_eq!(short.as_str(), "hello");
        let long = "x".repeat(INLINE + 1);
        let t = Text::from(long.clone());
        assert!(matches!(t.0, Repr::Shared(_)));
        assert_eq!(t, long);
        assert_eq!(Text::from(&long[..INLINE]).len(), INLINE);
        assert_eq!(Text::from_static("a"), Text::from(String::from("a")));
        assert_eq!(Text::default(), "");
        assert!(Text::new().is_empty());
        assert_eq!(
            format!("{:?} {}", Text::from("é"), Text::from("é")),
            "\"é\" é"
        );
        assert!(Text::from_utf8(Bytes::from_static(b"\xff")).is_err());
        let payload = Bytes::from(long.clone().into_bytes());
        let t = Text::from_payload(&payload, Some(&payload), 0, payload.len()).unwrap();
        assert_eq!(t.into_bytes().as_ptr(), payload.as_ptr());
        assert!(Text::from_payload(b"\xc3", None, 0, 1).is_none());
        assert!(Text::from_payload(b"ab", None, 1, 3).is_none());
    }

    #[test]
    fn byte_str() {
        let b = ByteStr::from(&b"\xffab"[..]);
        assert_eq!(format!("{b:?}"), r#"b"\xffab""#);
        assert_eq!(b, b"\xffab");
        assert!(b.clone().into_text().is_err());
        assert_eq!(ByteStr::from("é").into_text().unwrap(), "é");
        let long = vec![7u8; INLINE + 5];
        let shared = Bytes::from(long.clone());
        let b = ByteStr::from(shared.clone());
        assert_eq!(b.clone().into_bytes().as_ptr(), shared.as_ptr());
        assert_eq!(b, ByteStr::from(long));
        assert_eq!(ByteStr::from_static(b"x").len(), 1);
        assert!(ByteStr::default().is_empty());
        let mut e = ByteStr::new();
        e.set_from_payload(&shared, Some(&shared), 1, INLINE + 5);
        assert_eq!(e.as_bytes(), &shared[1..]);
        let mut e = ByteStr::new();
        e.set_from_payload(&shared, None, 1, 3);
        assert_eq!(e, [7u8, 7]);
    }

    #[test]
    fn sizes() {
        // Inline capacity is what fits without growing `Value` past 40 bytes.
        assert_eq!(std::mem::size_of::<Text>(), 32);
        assert_eq!(std::mem::size_of::<ByteStr>(), 32);
        assert_eq!(std::mem::size_of::<crate::Value>(), 40);
    }
}
