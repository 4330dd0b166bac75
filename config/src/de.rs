//! serde helpers: every value may also arrive as a string (from the environment or the
//! command line), and repeatable keys take a string or an array.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::error::ValueError;
use crate::values::{parse_bool, parse_duration, parse_size, DebugCategory, UnixBindSpec};

/// A value that is written as a string (or an integer, for the few types that take one).
pub(crate) trait Scalar: Sized {
    fn from_text(s: &str) -> Result<Self, ValueError>;
    fn from_int(v: i64) -> Result<Self, ValueError> {
        Self::from_text(&v.to_string())
    }
    const EXPECTING: &'static str = "a string";
}

macro_rules! scalar_from_str {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_text(s: &str) -> Result<Self, ValueError> { s.parse() }
        }
    )*};
}
scalar_from_str!(
    crate::values::BindSpec,
    crate::values::AuthSpec,
    crate::values::TargetSpec,
    crate::values::SslMode,
    crate::values::ClientVerifyMode,
    crate::values::ReencodeMode
);

impl Scalar for crate::values::UserSpec {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        s.parse()
    }
    const EXPECTING: &'static str = "a user name or number";
}

impl Scalar for UnixBindSpec {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl Scalar for std::net::SocketAddr {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        s.trim()
            .parse()
            .map_err(|_| ValueError::new(s, "expected IP:PORT, e.g. 127.0.0.1:9464"))
    }
    const EXPECTING: &'static str = "an address IP:PORT";
}

impl Scalar for String {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        Ok(s.to_owned())
    }
}

impl Scalar for PathBuf {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        if s.trim().is_empty() {
            return Err(ValueError::new(s, "empty path"));
        }
        Ok(PathBuf::from(s.trim()))
    }
}

impl Scalar for bool {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        parse_bool(s)
    }
    fn from_int(v: i64) -> Result<Self, ValueError> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ValueError::new(v.to_string(), "expected yes or no")),
        }
    }
    const EXPECTING: &'static str = "a boolean (yes/no)";
}

/// Integer wrapper for `u32`/`u8` with their own range messages.
macro_rules! scalar_int {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_text(s: &str) -> Result<Self, ValueError> {
                let t = s.trim();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ValueError::new(s, "expected a non-negative integer"));
                }
                t.parse().map_err(|_| ValueError::new(s, format!("out of range (at most {})", <$t>::MAX)))
            }
            const EXPECTING: &'static str = "an integer";
        }
    )*};
}
scalar_int!(u8, u32);

/// A duration (seconds or `"500ms"`).
pub(crate) struct Dur(pub(crate) Duration);
impl Scalar for Dur {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        parse_duration(s).map(Dur)
    }
    const EXPECTING: &'static str = "a number of seconds or a string such as \"500ms\"";
}

/// A size in bytes (`16777216` or `"16M"`).
pub(crate) struct Size(pub(crate) u64);
impl Scalar for Size {
    fn from_text(s: &str) -> Result<Self, ValueError> {
        parse_size(s).map(Size)
    }
    const EXPECTING: &'static str = "a number of bytes or a string such as \"16M\"";
}

struct ScalarVisitor<T>(PhantomData<T>);

impl<'de, T: Scalar> Visitor<'de> for ScalarVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_text(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(ValueError::new(
                v.to_string(),
                "must not be negative",
            )));
        }
        T::from_int(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_text(&v.to_string()).map_err(E::custom)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        T::from_text(if v { "yes" } else { "no" }).map_err(E::custom)
    }
}

fn scalar<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ScalarVisitor(PhantomData))
}

// ---------------------------------------------------------------------------------------------
// Functions used by `#[serde(deserialize_with)]`.

pub(crate) fn one<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<T, D::Error> {
    scalar(d)
}

pub(crate) fn opt<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<Option<T>, D::Error> {
    scalar(d).map(Some)
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    scalar::<D, Dur>(d).map(|x| x.0)
}

pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    scalar::<D, Size>(d).map(|x| x.0)
}

struct ListVisitor<T>(PhantomData<T>);

/// One element of a list: parsed unless it is empty (an empty string clears a list, so that
/// `--bind-tcp=` removes the embedded default's listener).
fn element<T: Scalar>(s: &str) -> Result<Option<T>, ValueError> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        T::from_text(s).map(Some)
    }
}

impl<'de, T: Scalar> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
        Ok(element(v).map_err(E::custom)?.into_iter().collect())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<toml::Value>()? {
            match s {
                toml::Value::String(s) => {
                    out.extend(element(&s).map_err(de::Error::custom)?);
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "expected an array of strings, found {} {other}",
                        other.type_str()
                    )))
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn list<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(ListVisitor(PhantomData))
}

/// `bind`: a list of unix sockets where `none` (xpra's `--bind=none`) is skipped.
pub(crate) fn unix_binds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UnixBindSpec>, D::Error> {
    struct NoneOr(Option<UnixBindSpec>);
    impl Scalar for NoneOr {
        fn from_text(s: &str) -> Result<Self, ValueError> {
            if s.trim().eq_ignore_ascii_case("none") {
                Ok(NoneOr(None))
            } else {
                s.parse().map(|b| NoneOr(Some(b)))
            }
        }
    }
    Ok(list::<D, NoneOr>(d)?
        .into_iter()
        .filter_map(|x| x.0)
        .collect())
}

/// `debug`: a list whose elements may themselves be comma-separated (`-d auth,network`).
pub(crate) fn debug<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DebugCategory>, D::Error> {
    let mut out = Vec::new();
    for item in list::<D, String>(d)? {
        for part in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let cat = part.parse::<DebugCategory>().map_err(de::Error::custom)?;
            if !out.contains(&cat) {
                out.push(cat);
            }
        }
    }
    Ok(out)
}

/// `video-encoders`: a list of encoder names; commas also separate (`--video-encoders=a,b`).
pub(crate) fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut out = Vec::new();
    for item in list::<D, String>(d)? {
        for part in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(de::Error::custom(ValueError::new(
                    part,
                    "invalid encoder name",
                )));
            }
            out.push(part.to_owned());
        }
    }
    Ok(out)
}
