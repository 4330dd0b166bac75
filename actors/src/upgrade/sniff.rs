//! Protocol detection: one bounded read with a timeout, and an explicit "don't know".
//!
//! The rules are xpra's `guess_packet_type` (reference §5.1): an xpra header starts with `P`, TLS
//! with a handshake record `0x16`, SSH with `SSH-`, HTTP with a `GET`/`POST` request line or an
//! `HTTP/` token on its first line. A client that says nothing before the timeout is taken to be an
//! xpra client (there is nothing to judge, and xpra does the same).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What the first bytes of a connection look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// An xpra packet header (or a client that sent nothing in time).
    Xpra,
    /// A TLS ClientHello.
    Tls,
    /// An HTTP request (plain HTTP or a WebSocket upgrade).
    Http,
    /// An SSH client's identification string.
    Ssh,
    /// Something else.
    Unknown,
}

/// How many bytes a sniff reads at most: enough for an HTTP request line and a ClientHello start.
pub const SNIFF_SIZE: usize = 8192;

/// Classifies the first bytes of a stream.
pub fn classify(data: &[u8]) -> Sniffed {
    if data.is_empty() {
        return Sniffed::Xpra;
    }
    match data[0] {
        // `P` starts both an xpra header and `POST`: only a valid header is xpra.
        b'P' if looks_like_xpra(data) => return Sniffed::Xpra,
        0x16 => return Sniffed::Tls,
        _ => {}
    }
    if data.starts_with(b"SSH-") {
        return Sniffed::Ssh;
    }
    let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = &data[..line_end];
    if line.starts_with(b"GET ") || line.starts_with(b"POST ") || line.starts_with(b"HEAD ") {
        return Sniffed::Http;
    }
    if line.len() > 5 && line.windows(5).skip(1).any(|w| w == b"HTTP/") {
        return Sniffed::Http;
    }
    // A partial request line ("GE") cannot be judged; everything else is unknown.
    Sniffed::Unknown
}

/// Whether data starting with `P` is an xpra header: a valid main-packet header when all 8 bytes
/// are there, and anything but the start of `POST ` when fewer arrived.
fn looks_like_xpra(data: &[u8]) -> bool {
    if data.len() < xgate_protocol::header::HEADER_SIZE {
        return !b"POST ".starts_with(data);
    }
    is_xpra_header(data)
}

/// Whether `data` starts with a valid xpra main-packet header (8 bytes, index 0, a size below
/// the absolute cap, known flags and compression); `false` when fewer than 8 bytes are given.
pub fn is_xpra_header(data: &[u8]) -> bool {
    let Some(head) = data.get(..xgate_protocol::header::HEADER_SIZE) else {
        return false;
    };
    let mut raw = [0u8; xgate_protocol::header::HEADER_SIZE];
    raw.copy_from_slice(head);
    xgate_protocol::Header::decode(&raw, xgate_protocol::ABS_MAX_PACKET_SIZE)
        .is_ok_and(|h| h.index == 0)
}

/// Reads once (at most [`SNIFF_SIZE`] bytes, waiting at most `timeout`) and classifies what came.
/// Returns the bytes read, which the caller must replay, and the verdict. An I/O error or EOF
/// before any byte is returned as an error.
pub async fn sniff<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> std::io::Result<(Bytes, Sniffed)> {
    let mut buf = BytesMut::with_capacity(SNIFF_SIZE);
    match tokio::time::timeout(timeout, stream.read_buf(&mut buf)).await {
        Err(_elapsed) => Ok((Bytes::new(), Sniffed::Xpra)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(0)) => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before sending anything",
        )),
        Ok(Ok(_)) => {
            let verdict = classify(&buf);
            Ok((buf.freeze(), verdict))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_first_bytes() {
        assert_eq!(classify(b"P\x10\x11\x00\x00\x00\x01\x00"), Sniffed::Xpra);
        assert_eq!(classify(b"\x16\x03\x01\x02\x00"), Sniffed::Tls);
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2\r\n"), Sniffed::Ssh);
        assert_eq!(classify(b"GET / HTTP/1.1\r\nHost: x\r\n"), Sniffed::Http);
        assert_eq!(classify(b"POST /x HTTP/1.1\r\n"), Sniffed::Http);
        assert_eq!(classify(b"OPTIONS * HTTP/1.1\r\n"), Sniffed::Http);
        assert_eq!(classify(b"\x00\x01random"), Sniffed::Unknown);
        assert_eq!(classify(b""), Sniffed::Xpra);
        assert_eq!(classify(b"PO"), Sniffed::Unknown);
        assert_eq!(classify(b"P\xff\x00\x00\x00\x00\x00\x01"), Sniffed::Unknown);
    }

    #[tokio::test]
    async fn silent_client_is_xpra_after_timeout() {
        let (mut a, _b) = tokio::io::duplex(64);
        let (data, verdict) = sniff(&mut a, Duration::from_millis(20)).await.unwrap();
        assert!(data.is_empty());
        assert_eq!(verdict, Sniffed::Xpra);
    }
}
