//! Arbitrary bytes into the bencode decoder: no panic, the zero-copy decode agrees with the copying
//! one, and whatever decodes re-encodes stably. A decoded `u<len>:` string is a `Str`, which the
//! encoder writes as a plain `<len>:` string (xpra's encoder never writes the `u` marker), so the
//! value after a round trip may be `StrOrBytes` where it was `Str`: compare encodings instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_protocol::bencode;

fuzz_target!(|data: &[u8]| {
    let _ = bencode::decode_first_item(data);
    let _ = bencode::decode_prefix(data);
    let Ok(value) = bencode::decode(data) else {
        return;
    };
    let bytes = bytes::Bytes::copy_from_slice(data);
    assert_eq!(bencode::decode_bytes(&bytes).ok().as_ref(), Some(&value));
    if let Ok(encoded) = bencode::encode(&value) {
        let again = bencode::decode(&encoded).expect("re-encoded value decodes");
        assert_eq!(bencode::encode(&again).ok(), Some(encoded));
    }
});
