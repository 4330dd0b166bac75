//! Property tests: exact round trips for every encoder and compressor, and no panics (only typed
//! errors) for arbitrary bytes fed to every decoder, decompressor, the header parser, the codec,
//! the packet reader and the peek.

// Test helpers panic on a broken invariant; that is the right outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use xgate_protocol::compression::{decompress, decompress_prefix, Compressor};
use xgate_protocol::{
    bencode, peek_packet_type, rencode, rencodeplus, ByteStr, Flags, Frame, FrameCodec, Header,
    PacketReader, Value,
};

fn big_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        (i64::MAX as i128 + 1)..=i128::MAX,
        i128::MIN..(i64::MIN as i128),
    ]
    .prop_map(|i| Value::BigInt(i.to_string()))
}

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

/// Values rencodeplus represents exactly: everything but `StrOrBytes` (which it must resolve).
fn plus_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        big_int(),
        float().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::None),
        ".{0,70}".prop_map(|s: String| Value::Str(s.into())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 300, 70, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..70).prop_map(Value::List),
            proptest::collection::vec((inner.clone(), inner), 0..30).prop_map(Value::Dict),
        ]
    })
}

/// What classic rencode gives back for a value: one string kind, float32 floats.
fn classic_normal(v: &Value) -> Value {
    match v {
        Value::Str(s) => Value::StrOrBytes(s.as_bytes().into()),
        Value::Bytes(b) => Value::StrOrBytes(b.clone().into()),
        Value::Float(f) => Value::Float(f64::from(*f as f32)),
        Value::List(l) => Value::List(l.iter().map(classic_normal).collect()),
        Value::Dict(d) => Value::Dict(
            d.iter()
                .map(|(k, v)| (classic_normal(k), classic_normal(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Values bencode can represent (no None, no floats).
fn bencode_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        big_int(),
        any::<bool>().prop_map(Value::Bool),
        ".{0,70}".prop_map(|s: String| Value::Str(s.into())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 200, 20, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::List),
            proptest::collection::vec((inner.clone(), inner), 0..10).prop_map(Value::Dict),
        ]
    })
}

/// What bencode gives back: one string kind, booleans as integers.
fn bencode_normal(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Int(i64::from(*b)),
        Value::Str(s) => Value::StrOrBytes(s.as_bytes().into()),
        Value::Bytes(b) => Value::StrOrBytes(b.clone().into()),
        Value::List(l) => Value::List(l.iter().map(bencode_normal).collect()),
        Value::Dict(d) => Value::Dict(
            d.iter()
                .map(|(k, v)| (bencode_normal(k), bencode_normal(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn compressor() -> impl Strategy<Value = Compressor> {
    prop::sample::select(Compressor::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rencodeplus_round_trips_exactly(v in plus_value()) {
        let enc = rencodeplus::encode(&v).unwrap();
        prop_assert_eq!(rencodeplus::decode(&enc).unwrap(), v.clone());
        prop_assert_eq!(rencodeplus::decode_bytes(&Bytes::from(enc.clone())).unwrap(), v);
        // Canonical: decoding then encoding again gives the same bytes.
        let again = rencodeplus::encode(&rencodeplus::decode(&enc).unwrap()).unwrap();
        prop_assert_eq!(again, enc.clone());
        // Every strict prefix is an error, never a panic.
        for cut in [0, enc.len() / 3, enc.len() / 2, enc.len().saturating_sub(1)] {
            if cut < enc.len() {
                prop_assert!(rencodeplus::decode(&enc[..cut]).is_err());
            }
        }
    }

    #[test]
    fn rencode_round_trips_what_it_represents(v in plus_value()) {
        let enc = rencode::encode(&v).unwrap();
        prop_assert_eq!(rencode::decode(&enc).unwrap(), classic_normal(&v));
        let again = rencode::encode(&rencode::decode(&enc).unwrap()).unwrap();
        prop_assert_eq!(again, enc);
    }

    #[test]
    fn bencode_round_trips_what_it_represents(v in bencode_value()) {
        let enc = bencode::encode(&v).unwrap();
        prop_assert_eq!(bencode::decode(&enc).unwrap(), bencode_normal(&v));
        prop_assert_eq!(bencode::decode_prefix(&enc).unwrap().1, enc.len());
    }

    #[test]
    fn compressors_round_trip(c in compressor(), level in 1u8..10, data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let z = xgate_protocol::compress(c, level, &data).unwrap();
        let back = decompress(c.to_byte(level), &z, data.len()).unwrap();
        prop_assert_eq!(&back[..], &data[..]);
        if !data.is_empty() && c != Compressor::None {
            // One byte short of the real size is over the cap.
            prop_assert!(decompress(c.to_byte(level), &z, data.len() - 1).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let b = Bytes::from(data.clone());
        let _ = rencodeplus::decode(&data);
        let _ = rencodeplus::decode_bytes(&b);
        let _ = rencodeplus::decode_prefix(&data);
        let _ = rencodeplus::decode_first_item(&data);
        let _ = rencode::decode(&data);
        let _ = rencode::decode_first_item(&data);
        let _ = bencode::decode(&data);
        let _ = bencode::decode_bytes(&b);
        let _ = bencode::decode_first_item(&data);
    }

    #[test]
    fn structured_garbage_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just(vec![0x3B]), Just(vec![0x3C]), Just(vec![0x7F]), Just(vec![0xC3]), Just(vec![0x68]),
        Just(b"99999999999:".to_vec()), Just(b"3/".to_vec()), Just(vec![0x3D, b'1', 0x7F]),
        Just(b"l".to_vec()), Just(b"d".to_vec()), Just(b"e".to_vec()), Just(b"i-0e".to_vec()),
        Just(b"u3:".to_vec()), any::<u8>().prop_map(|b| vec![b]),
    ], 0..64)) {
        let data = parts.concat();
        let _ = rencodeplus::decode(&data);
        let _ = rencode::decode(&data);
        let _ = bencode::decode(&data);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decompressors(byte in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decompress(byte, &data, 1 << 20);
        let _ = decompress_prefix(byte, &data, 64, 1 << 20);
        for c in [0x01, 0x11, 0x41, 0x81] {
            let _ = decompress(c, &data, 1 << 20);
        }
    }

    #[test]
    fn headers_never_panic(bytes in any::<[u8; 8]>(), max in any::<u32>()) {
        if let Ok(h) = Header::parse(&bytes) {
            if h.validate(max).is_ok() {
                prop_assert!(h.length <= xgate_protocol::ABS_MAX_PACKET_SIZE);
                prop_assert!(h.length > 0 && h.length <= max);
                prop_assert_eq!(h.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn codec_reader_and_peek_never_panic(stream in proptest::collection::vec(any::<u8>(), 0..2048), split in 1usize..64) {
        let mut codec = FrameCodec::new(1 << 16);
        let mut reader = PacketReader::new(1 << 20);
        let mut buf = BytesMut::new();
        'outer: for chunk in stream.chunks(split) {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => {
                        let _ = peek_packet_type(&f);
                        let _ = reader.push(f);
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn valid_headers_with_garbage_payloads(flags in prop::sample::select(vec![0u8, 1, 0x10, 0x18, 0x09]),
                                           comp in prop::sample::select(vec![0u8, 1, 0x11, 0x41, 0x81, 0x21]),
                                           index in 0u8..4,
                                           payload in proptest::collection::vec(any::<u8>(), 1..300)) {
        let flags = if index > 0 { 0 } else { flags };
        let f = Frame::new(Flags::from_bits(flags), comp, index, Bytes::from(payload));
        let _ = peek_packet_type(&f);
        let mut reader = PacketReader::new(1 << 20);
        let _ = reader.push(f);
    }
}

#[test]
fn huge_claims_are_refused_cheaply() {
    // lz4 claiming 4 GiB.
    let mut lz4 = vec![0xFF, 0xFF, 0xFF, 0xFF];
    lz4.extend_from_slice(&[0x10, 0x41]);
    assert!(decompress(0x11, &lz4, usize::MAX).is_err());
    // A string length of 2^60 with a few bytes behind it.
    assert!(rencodeplus::decode(b"1152921504606846976:ab").is_err());
    assert!(bencode::decode(b"1152921504606846976:ab").is_err());
    // A header claiming 4 GiB.
    let mut codec = FrameCodec::new(u32::MAX);
    let mut buf = BytesMut::from(&[b'P', 0x10, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    assert!(codec.decode(&mut buf).is_err());
    assert!(
        buf.capacity() < 1 << 20,
        "nothing reserved for a refused frame"
    );
    // Deep nesting of each kind.
    assert!(rencodeplus::decode(&vec![0xC1; 10_000]).is_err());
    assert!(rencodeplus::decode(&vec![0x67; 10_000]).is_err());
    assert!(rencode::decode(&vec![0x3C; 10_000]).is_err());
    assert!(bencode::decode(&vec![b'd'; 10_000]).is_err());
}

#[test]
fn zip_bombs_over_the_cap_are_refused() {
    let zeros = vec![0u8; 8 << 20];
    for c in [
        Compressor::Zlib,
        Compressor::Lz4,
        Compressor::Brotli,
        Compressor::Zstd,
    ] {
        let bomb = xgate_protocol::compress(c, 9, &zeros).unwrap();
        let mut reader = PacketReader::new(1 << 20);
        let f = Frame::new(Flags::RENCODEPLUS, c.to_byte(9), 0, bomb);
        let err = reader.push(f).unwrap_err();
        assert!(
            matches!(err, xgate_protocol::ProtocolError::Compression(_)),
            "{c:?}: {err}"
        );
        assert!(!err.is_retryable());
        assert_eq!(err.disconnect_reason(), "protocol error");
    }
}

#[test]
fn str_or_bytes_resolves_in_rencodeplus() {
    let v = Value::list([
        Value::StrOrBytes(ByteStr::from_static(b"text")),
        Value::StrOrBytes(ByteStr::from_static(b"\xff\xfe")),
    ]);
    let back = rencodeplus::decode(&rencodeplus::encode(&v).unwrap()).unwrap();
    assert_eq!(
        back,
        Value::list([
            Value::from("text"),
            Value::Bytes(Bytes::from_static(b"\xff\xfe"))
        ])
    );
}
