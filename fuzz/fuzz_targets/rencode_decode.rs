//! Arbitrary bytes into the rencode decoder: no panic, the zero-copy decode agrees with the copying
//! one, and whatever decodes re-encodes canonically (encode(decode(encode(v))) == encode(v)).
//! Values are compared through their encodings because a decoded NaN is not equal to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_protocol::rencode;

fuzz_target!(|data: &[u8]| {
    let _ = rencode::decode_first_item(data);
    let _ = rencode::decode_prefix(data);
    let Ok(value) = rencode::decode(data) else {
        return;
    };
    let shared = rencode::decode_bytes(&bytes::Bytes::copy_from_slice(data)).expect("same result");
    let Ok(encoded) = rencode::encode(&value) else {
        return;
    };
    assert_eq!(rencode::encode(&shared).ok().as_ref(), Some(&encoded));
    let again = rencode::decode(&encoded).expect("re-encoded value decodes");
    assert_eq!(rencode::encode(&again).ok(), Some(encoded));
});
