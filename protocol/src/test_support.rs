//! Values the unit tests of several modules share: the worked examples of the protocol notes,
//! built once so that every codec is checked against the same packet.

use crate::{ByteStr, Value};

/// A [`Value::StrOrBytes`] over a static byte string: what the bencode and rencode decoders make
/// of every string, since those formats cannot tell text from binary.
pub(crate) fn sob(s: &'static [u8]) -> Value {
    Value::StrOrBytes(ByteStr::from_static(s))
}

/// Example 1 of the notes: `["hello", {"version": "6.0"}]`.
pub(crate) fn hello_example() -> Value {
    Value::list([Value::from("hello"), Value::dict([("version", "6.0")])])
}

/// [`hello_example`] as bencode and rencode decode it: every string a [`Value::StrOrBytes`].
pub(crate) fn hello_example_decoded() -> Value {
    Value::list([
        sob(b"hello"),
        Value::Dict(vec![(sob(b"version"), sob(b"6.0"))]),
    ])
}

/// The §1.2 worked example's 10x10 `rgb24` draw packet, with `pixels` as its pixel data (a
/// placeholder, when the pixels travel in a chunk).
pub(crate) fn draw_example(pixels: Value) -> Value {
    Value::list([
        Value::from("draw"),
        1.into(),
        0.into(),
        0.into(),
        10.into(),
        10.into(),
        "rgb24".into(),
        pixels,
        5.into(),
        30.into(),
        Value::Dict(vec![]),
    ])
}
