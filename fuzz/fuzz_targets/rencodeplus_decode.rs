//! Arbitrary bytes into the rencodeplus decoder: no panic, the zero-copy decode agrees with the copying
//! one, and whatever decodes re-encodes canonically (encode(decode(encode(v))) == encode(v)).
//! Values are compared through their encodings because a decoded NaN is not equal to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_protocol::rencodeplus;

fuzz_target!(|data: &[u8]| {
    let _ = rencodeplus::decode_first_item(data);
    let _ = rencodeplus::decode_prefix(data);
    let Ok(value) = rencodeplus::decode(data) else {
        return;
    };
    let shared =
        rencodeplus::decode_bytes(&bytes::Bytes::copy_from_slice(data)).expect("same result");
    let Ok(encoded) = rencodeplus::encode(&value) else {
        return;
    };
    assert_eq!(rencodeplus::encode(&shared).ok().as_ref(), Some(&encoded));
    let again = rencodeplus::decode(&encoded).expect("re-encoded value decodes");
    assert_eq!(rencodeplus::encode(&again).ok(), Some(encoded));
});
