//! The captures of real xpra 3.1.3 and 6.5.5 hellos in `shared/vectors` decode completely, match
//! the facts of their `.decoded.txt`, and re-encode to the same payload bytes.

// Test helpers panic on a broken fixture; that is the right outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use xgate_protocol::compression::{decompress, MAX_DECOMPRESSED_SIZE};
use xgate_protocol::{
    peek_packet_type, Flags, Frame, FrameCodec, PacketEncoder, PacketReader, PacketType, Value,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{VECTORS}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("capture {path} is missing: {e}"))
}

/// Splits a capture into its single frame, checking nothing is left over.
fn frame(name: &str) -> Frame {
    let mut buf = BytesMut::from(&read(name)[..]);
    let mut codec = FrameCodec::new(xgate_protocol::ABS_MAX_PACKET_SIZE);
    let f = codec.decode(&mut buf).unwrap().expect("one whole frame");
    assert!(buf.is_empty(), "{name}: bytes after the first frame");
    f
}

struct Decoded {
    frame: Frame,
    plain: Vec<u8>,
    hello: Value,
}

fn decode(name: &str) -> Decoded {
    let frame = frame(name);
    let plain = decompress(
        frame.header.compression,
        &frame.payload,
        MAX_DECOMPRESSED_SIZE,
    )
    .unwrap()
    .to_vec();
    let mut reader = PacketReader::default();
    let packet = reader.push(frame.clone()).unwrap().expect("a main packet");
    assert_eq!(packet.type_name(), Some("hello"));
    assert_eq!(
        peek_packet_type(&frame).unwrap(),
        PacketType::Name("hello".into())
    );
    assert_eq!(packet.0.len(), 2);
    let hello = packet.0[1].clone();
    Decoded {
        frame,
        plain,
        hello,
    }
}

fn keys(v: &Value) -> usize {
    v.as_dict().expect("caps dict").len()
}

fn str_of<'a>(v: &'a Value, path: &str) -> &'a str {
    v.lookup(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {path}"))
}

#[test]
fn vectors_directory_is_present() {
    let readme = std::fs::read_to_string(format!("{VECTORS}/README.md"))
        .unwrap_or_else(|e| panic!("{VECTORS} is missing: {e}"));
    assert!(readme.contains("hello-attach-3.1.3.bin"));
}

#[test]
fn attach_3_1_3_rencode_zlib() {
    let d = decode("hello-attach-3.1.3.bin");
    assert_eq!(d.frame.header.flags, Flags::RENCODE);
    assert_eq!(d.frame.header.compression, 0x01);
    assert_eq!(d.frame.payload.len() + 8, 22699);
    assert_eq!(keys(&d.hello), 224);
    assert_eq!(str_of(&d.hello, "version"), "3.1.3");
    assert_eq!(str_of(&d.hello, "build.version"), "3.1.3");
    let rencode_version = d
        .hello
        .get("rencode.version")
        .and_then(Value::as_list)
        .unwrap();
    assert_eq!(rencode_version[0].as_str(), Some("Cython"));
    // Classic rencode: every string is of unknown kind.
    assert!(matches!(d.hello.get("version"), Some(Value::StrOrBytes(_))));
    assert_eq!(
        d.hello.lookup("aliases.hello").and_then(Value::as_int),
        Some(1)
    );
    // Floats are float32 in classic rencode, so re-encoding reproduces the exact bytes.
    let packet = Value::list([Value::from("hello"), d.hello.clone()]);
    assert_eq!(xgate_protocol::rencode::encode(&packet).unwrap(), d.plain);
}

#[test]
fn info_3_1_3_rencode_zlib() {
    let d = decode("hello-info-3.1.3.bin");
    assert_eq!(d.frame.header.flags, Flags::RENCODE);
    assert_eq!(d.frame.header.compression, 0x01);
    assert_eq!(d.frame.header.length, 1224);
    assert_eq!(keys(&d.hello), 63);
    assert_eq!(str_of(&d.hello, "request"), "info");
    assert_eq!(d.hello.get("info_request"), Some(&Value::Bool(true)));
    assert_eq!(str_of(&d.hello, "version"), "3.1.3");
    assert_eq!(str_of(&d.hello, "username"), "root");
    assert_eq!(str_of(&d.hello, "lz4.version"), "4.0.2+dfsg");
    assert_eq!(
        d.hello.lookup("aliases.disconnect").and_then(Value::as_int),
        Some(17)
    );
    assert_eq!(
        d.hello
            .lookup("aliases")
            .and_then(Value::as_dict)
            .map(<[_]>::len),
        Some(56)
    );
    let digests = d.hello.get("salt-digest").and_then(Value::as_list).unwrap();
    assert_eq!(digests.len(), 12);
    assert_eq!(digests[0].as_str(), Some("hmac+sha512"));
    let py = d
        .hello
        .get("python.version")
        .and_then(Value::as_list)
        .unwrap();
    assert_eq!(py, &[Value::Int(3), Value::Int(11), Value::Int(2)]);
    let packet = Value::list([Value::from("hello"), d.hello.clone()]);
    assert_eq!(xgate_protocol::rencode::encode(&packet).unwrap(), d.plain);
}

#[test]
fn attach_6_5_5_rencodeplus_lz4() {
    let d = decode("hello-attach-6.5.5.bin");
    assert_eq!(d.frame.header.flags, Flags::RENCODEPLUS | Flags::FLUSH);
    assert_eq!(d.frame.header.compression, 0x11);
    assert_eq!(d.frame.header.length, 3891);
    assert_eq!(keys(&d.hello), 82);
    assert_eq!(d.hello.get("version"), Some(&Value::from("6.5")));
    assert_eq!(d.hello.get("username"), Some(&Value::from("alice")));
    assert_eq!(str_of(&d.hello, "session.display"), "171");
    // `display` is a dict of display caps, not a name.
    assert!(d.hello.get("display").and_then(Value::as_dict).is_some());
    assert_eq!(
        d.hello.lookup("display.desktop_size"),
        Some(&Value::list([1280, 1024]))
    );
    assert_eq!(
        d.hello.lookup("display.dpi.x").and_then(Value::as_int),
        Some(100)
    );
    assert_eq!(
        d.hello.lookup("display.dpi").and_then(Value::as_int),
        Some(100)
    );
    let monitors = d.hello.lookup_raw("display.monitors").unwrap();
    assert_eq!(
        monitors
            .get_value(&Value::Int(0))
            .and_then(|m| m.get("name")),
        Some(&Value::from("screen"))
    );
    assert_eq!(d.hello.lookup("brotli"), Some(&Value::Bool(true)));
    let digests = d.hello.get("digest").and_then(Value::as_list).unwrap();
    assert_eq!(digests.len(), 16);
    assert_eq!(digests[0], Value::from("xor"));
    // rencodeplus is canonical: re-encoding gives back the exact payload.
    let packet = Value::list([Value::from("hello"), d.hello.clone()]);
    assert_eq!(
        xgate_protocol::rencodeplus::encode(&packet).unwrap(),
        d.plain
    );
    // And through the whole writer, the same frame (lz4 level 1, flush).
    let frames = xgate_protocol::encode_packet(
        &packet,
        PacketEncoder::RencodePlus,
        xgate_protocol::Compressor::Lz4,
        1,
    )
    .unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header.flags, d.frame.header.flags);
    assert_eq!(frames[0].header.compression, 0x11);
    let back = decompress(0x11, &frames[0].payload, 1 << 20).unwrap();
    assert_eq!(back, d.plain);
}

#[test]
fn info_6_5_5_rencodeplus_lz4() {
    let d = decode("hello-info-6.5.5.bin");
    assert_eq!(d.frame.header.flags, Flags::RENCODEPLUS | Flags::FLUSH);
    assert_eq!(d.frame.header.compression, 0x11);
    assert_eq!(d.frame.header.length, 590);
    assert_eq!(keys(&d.hello), 25);
    assert_eq!(d.hello.get("request"), Some(&Value::from("info")));
    assert_eq!(d.hello.get("version"), Some(&Value::from("6.5")));
    assert_eq!(d.hello.get("protocol"), Some(&Value::list([5, 1])));
    assert_eq!(
        d.hello.get("encoders"),
        Some(&Value::list(["rencodeplus", "none"]))
    );
    assert_eq!(
        d.hello.get("compressors"),
        Some(&Value::list(["lz4", "brotli", "none"]))
    );
    assert_eq!(d.hello.get("wants"), Some(&Value::list(["packet-types"])));
    assert_eq!(
        d.hello.get("session-id"),
        Some(&Value::from("a1b00f473144487a811780afcf0b6d22"))
    );
    assert_eq!(d.hello.lookup("yaml"), Some(&Value::Bool(false)));
    let packet = Value::list([Value::from("hello"), d.hello.clone()]);
    assert_eq!(
        xgate_protocol::rencodeplus::encode(&packet).unwrap(),
        d.plain
    );
}

#[test]
fn classic_hello_transcodes_to_rencodeplus() {
    // What a proxy does for a 3.1.3 client: resolve string kinds, re-encode as rencodeplus.
    let mut d = decode("hello-info-3.1.3.bin");
    d.hello.resolve_strings();
    let packet = Value::list([Value::from("hello"), d.hello.clone()]);
    let plus = xgate_protocol::rencodeplus::encode(&packet).unwrap();
    let back = xgate_protocol::rencodeplus::decode(&plus).unwrap();
    assert_eq!(back, packet);
    assert_eq!(str_of(&back.as_list().unwrap()[1], "request"), "info");
}
