//! WebSocket (RFC 6455) as xpra speaks it (reference §5.3): the server side of the upgrade, a
//! small frame codec, and [`WsStream`], which turns a framed connection back into the byte stream
//! the rest of the gateway relays.
//!
//! The codec is written here rather than taken from tungstenite because it is about 300 lines,
//! it must accept what xpra's own client sends (unmasked client frames, text frames, leading
//! `\r\n`), it must stream large payloads without buffering whole frames, and it is fuzzed on its
//! own (`fuzz/fuzz_targets/ws_frames.rs`).
//!
//! What goes out: every `write`/`write_vectored` call of the relay becomes **one binary frame**
//! (FIN set, unmasked as a server must). The relay writes each batch of whole xpra chunks with
//! one vectored write, so a frame holds whole packets, as xpra's own server sends them; when the
//! socket takes only part of a large frame, the rest of that frame's payload is taken from the
//! caller's next writes, which carry exactly those bytes. Receivers treat the payloads as a byte
//! stream anyway (both xpra's Python client and the HTML5 client re-parse xpra headers).
//!
//! What comes in: binary, text (taken as binary) and continuation frames are payload bytes, in
//! order; masked and unmasked frames are both accepted; a ping is answered with a pong; a close
//! is answered with a close and ends the stream; a frame larger than the connection's limit is
//! answered with close 1009 and an error.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};

pub use super::frame::*;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use super::http::Request;

/// The GUID that RFC 6455 appends to `Sec-WebSocket-Key`.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frames up to this size are copied whole into one buffer and sent with one write; larger ones
/// send their header, then the caller's bytes without a copy.
const COALESCE: usize = 64 * 1024;

/// How much is read from the socket at once.
const READ_SIZE: usize = 64 * 1024;

/// The most iovecs passed down in one vectored write.
const MAX_IOV: usize = 64;

/// The largest frame a client-side stream sends: a client masks its payload, which means a copy,
/// so a large write goes out as several frames of this size (the receiver reassembles a byte
/// stream either way, reference §5.3).
const CLIENT_FRAME_MAX: usize = 256 * 1024;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = openssl::sha::Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    openssl::base64::encode_block(&h.finish())
}

/// Why a WebSocket upgrade request is refused, with the HTTP status it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// `Sec-WebSocket-Version` is missing or not 7, 8 or 13.
    #[error("unsupported Sec-WebSocket-Version (expected 13)")]
    Version,
    /// `Sec-WebSocket-Key` is missing or empty.
    #[error("missing Sec-WebSocket-Key")]
    Key,
    /// The client did not offer xpra's `binary` subprotocol.
    #[error("the 'binary' subprotocol is required")]
    Subprotocol,
    /// The `Origin` header names another host than the one the client connected to.
    #[error("origin {0:?} is not allowed")]
    Origin(String),
    /// The request is not a `GET`.
    #[error("a WebSocket upgrade must be a GET")]
    Method,
}

impl UpgradeError {
    /// The HTTP status and reason phrase for this refusal.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            UpgradeError::Version => (426, "Upgrade Required"),
            UpgradeError::Origin(_) => (403, "Forbidden"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Whether `req` asks for a WebSocket upgrade (`Upgrade: websocket`).
pub fn is_upgrade(req: &Request) -> bool {
    req.header("upgrade")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Checks a WebSocket upgrade as xpra's handler does (reference §5.3) and returns the `101`
/// response to send.
///
/// The `Origin` check is xpra's `auto` policy: when the browser sends an `Origin`, its host (and
/// port) must be the `Host` the request was sent to. Clients that send no `Origin` (xpra's own)
/// pass.
pub fn check_upgrade(req: &Request) -> Result<String, UpgradeError> {
    if req.method != "GET" {
        return Err(UpgradeError::Method);
    }
    let version = req.header("sec-websocket-version").map(str::trim);
    if !matches!(version, Some("7" | "8" | "13")) {
        return Err(UpgradeError::Version);
    }
    let key = req
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(UpgradeError::Key)?;
    let binary = req
        .header_values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "binary");
    if !binary {
        return Err(UpgradeError::Subprotocol);
    }
    if let Some(origin) = req.header("origin") {
        let origin = origin.trim();
        let host = req.header("host").map(str::trim).unwrap_or("");
        if !origin_matches(origin, host) {
            return Err(UpgradeError::Origin(origin.to_string()));
        }
    }
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
        accept_key(key)
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (`host[:port]`), ignoring case and
/// default ports.
fn origin_matches(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let norm = |hp: &str| -> String {
        let hp = hp.trim_end_matches('/').to_ascii_lowercase();
        // `[::1]:80`, `host:80` or a bare host.
        let has_port = match hp.rfind(':') {
            Some(i) => !hp[i..].contains(']') && hp[i + 1..].chars().all(|c| c.is_ascii_digit()),
            None => false,
        };
        if has_port {
            hp
        } else {
            format!("{hp}:{default_port}")
        }
    };
    !host.is_empty() && norm(rest) == norm(host)
}

/// A WebSocket connection seen as a byte stream: reads return the payloads of incoming data
/// frames, writes go out as binary frames (see the module documentation).
#[derive(Debug)]
pub struct WsStream<S> {
    /// The HTTP or TLS stream underneath.
    inner: S,
    /// Incoming frame decoder.
    decoder: Decoder,
    /// Bytes read from `inner` and not decoded yet.
    rbuf: BytesMut,
    /// A close was received or the input was refused: reads return EOF.
    read_done: bool,
    /// Control frames (pong, close) waiting to go out between two data frames.
    ctrl: BytesMut,
    /// The frame being written: a whole small frame, or a large frame's header.
    wbuf: BytesMut,
    /// Caller bytes copied into `wbuf`, acknowledged once `wbuf` reached the socket.
    copied: usize,
    /// Payload bytes of a large frame still to be written from the caller's next buffers.
    owed: u64,
    /// A close frame was queued; no data frame may follow it.
    close_sent: bool,
    /// This side is the client (an `ws://`/`wss://` target): every frame going out is masked,
    /// as RFC 6455 requires of clients.
    client: bool,
}

impl<S> WsStream<S> {
    /// Wraps an upgraded connection. `leftover` holds bytes the client sent after its request
    /// head; frames larger than `max_payload` close the connection with 1009.
    pub fn new(inner: S, leftover: BytesMut, max_payload: u64) -> WsStream<S> {
        WsStream {
            inner,
            decoder: Decoder::new(max_payload),
            rbuf: leftover,
            read_done: false,
            ctrl: BytesMut::new(),
            wbuf: BytesMut::new(),
            copied: 0,
            owed: 0,
            close_sent: false,
            client: false,
        }
    }

    /// Wraps the client side of an upgraded connection: as [`WsStream::new`], but every frame
    /// going out is masked with a fresh random key.
    pub fn client(inner: S, leftover: BytesMut, max_payload: u64) -> WsStream<S> {
        WsStream {
            client: true,
            ..WsStream::new(inner, leftover, max_payload)
        }
    }

    /// Queues a control frame, masked on the client side.
    fn queue_control(&mut self, opcode: Opcode, payload: &[u8]) {
        if self.client {
            let key: [u8; 4] = rand::random();
            encode_masked_header(opcode, payload.len() as u64, key, &mut self.ctrl);
            let start = self.ctrl.len();
            self.ctrl.put_slice(payload);
            apply_mask(&mut self.ctrl[start..], key, 0);
        } else {
            control_frame(opcode, payload, &mut self.ctrl);
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether no data frame is half written (control frames may go out now).
    fn between_frames(&self) -> bool {
        self.copied == 0 && self.owed == 0 && self.wbuf.is_empty()
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        if !self.close_sent {
            self.close_sent = true;
            self.queue_control(Opcode::Close, &close_payload(code, reason));
        }
    }
}

/// Writes all of `buf` to `inner`.
fn poll_drain<S: AsyncWrite + Unpin>(
    inner: &mut S,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !buf.is_empty() {
        let n = ready!(Pin::new(&mut *inner).poll_write(cx, buf))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        buf.advance(n);
    }
    Poll::Ready(Ok(()))
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Sends queued control frames if no data frame is in the way; `Pending` is fine here (the
    /// next write or flush sends them).
    fn try_send_control(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.ctrl.is_empty() && self.between_frames() {
            if let Poll::Ready(r) = poll_drain(&mut self.inner, &mut self.ctrl, cx) {
                r?;
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            this.try_send_control(cx)?;
            if this.read_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match this.decoder.next(&mut this.rbuf, buf.remaining()) {
                Ok(Event::Data(data)) => {
                    buf.put_slice(&data);
                    return Poll::Ready(Ok(()));
                }
                Ok(Event::Ping(payload)) => {
                    this.queue_control(Opcode::Pong, &payload);
                }
                Ok(Event::Pong) => {}
                Ok(Event::Close(code)) => {
                    debug!(target: "xgate::ws", ?code, "close received");
                    this.queue_close(code.unwrap_or(CLOSE_NORMAL), "");
                    this.read_done = true;
                    this.try_send_control(cx)?;
                    return Poll::Ready(Ok(()));
                }
                Err(e) => {
                    debug!(target: "xgate::ws", "refused frame: {e}");
                    this.queue_close(e.close_code(), &e.to_string());
                    this.read_done = true;
                    let _ = this.try_send_control(cx);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
                Ok(Event::NeedMore) => {
                    this.rbuf.reserve(READ_SIZE);
                    let n = ready!(tokio_util::io::poll_read_buf(
                        Pin::new(&mut this.inner),
                        cx,
                        &mut this.rbuf
                    ))?;
                    if n == 0 {
                        this.read_done = true;
                        if this.decoder.between_frames() {
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed inside a WebSocket frame",
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            // A small frame in flight: acknowledge the caller's bytes once it is out.
            if this.copied > 0 {
                ready!(poll_drain(&mut this.inner, &mut this.wbuf, cx))?;
                let n = std::mem::take(&mut this.copied);
                return Poll::Ready(Ok(n));
            }
            // A large frame: its header (if still here) and payload straight from `bufs`.
            if this.owed > 0 {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut count = 0;
                if !this.wbuf.is_empty() {
                    slices[0] = IoSlice::new(&this.wbuf);
                    count = 1;
                }
                let mut left = this.owed;
                for b in bufs {
                    if left == 0 || count == MAX_IOV {
                        break;
                    }
                    if b.is_empty() {
                        continue;
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(b.len());
                    slices[count] = IoSlice::new(&b[..take]);
                    count += 1;
                    left -= take as u64;
                }
                let n =
                    ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices[..count]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                let header = this.wbuf.len();
                if n <= header {
                    this.wbuf.advance(n);
                    continue;
                }
                this.wbuf.clear();
                let payload = n - header;
                this.owed -= payload as u64;
                return Poll::Ready(Ok(payload));
            }
            // Between frames: control frames first.
            if !this.ctrl.is_empty() {
                ready!(poll_drain(&mut this.inner, &mut this.ctrl, cx))?;
            }
            if this.close_sent {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "WebSocket closed",
                )));
            }
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            if total == 0 {
                return Poll::Ready(Ok(0));
            }
            if this.client {
                // Masked: always a copy, at most CLIENT_FRAME_MAX bytes per frame.
                let n = total.min(CLIENT_FRAME_MAX);
                let key: [u8; 4] = rand::random();
                encode_masked_header(Opcode::Binary, n as u64, key, &mut this.wbuf);
                let start = this.wbuf.len();
                let mut left = n;
                for b in bufs {
                    let take = left.min(b.len());
                    this.wbuf.put_slice(&b[..take]);
                    left -= take;
                    if left == 0 {
                        break;
                    }
                }
                apply_mask(&mut this.wbuf[start..], key, 0);
                this.copied = n;
                continue;
            }
            encode_header(Opcode::Binary, total as u64, &mut this.wbuf);
            if total <= COALESCE {
                for b in bufs {
                    this.wbuf.put_slice(b);
                }
                this.copied = total;
            } else {
                this.owed = total as u64;
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed == 0 {
            ready!(poll_drain(&mut this.inner, &mut this.wbuf, cx))?;
            if this.copied == 0 {
                ready!(poll_drain(&mut this.inner, &mut this.ctrl, cx))?;
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owed == 0 {
            ready!(poll_drain(&mut this.inner, &mut this.wbuf, cx))?;
            this.copied = 0;
            this.queue_close(CLOSE_NORMAL, "");
            ready!(poll_drain(&mut this.inner, &mut this.ctrl, cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(opcode: u8, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u8(if fin { 0x80 } else { 0 } | opcode);
        let m = if mask.is_some() { 0x80 } else { 0 };
        let len = payload.len();
        if len < 126 {
            out.put_u8(m | len as u8);
        } else if len < 65536 {
            out.put_u8(m | 126);
            out.put_u16(len as u16);
        } else {
            out.put_u8(m | 127);
            out.put_u64(len as u64);
        }
        let mut p = payload.to_vec();
        if let Some(k) = mask {
            out.put_slice(&k);
            apply_mask(&mut p, k, 0);
        }
        out.put_slice(&p);
        out.to_vec()
    }

    #[test]
    fn accept_key_matches_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn origin_policy_is_same_host() {
        assert!(origin_matches("http://127.0.0.1:14501", "127.0.0.1:14501"));
        assert!(origin_matches("https://Example.org", "example.org:443"));
        assert!(!origin_matches("http://evil.example", "127.0.0.1:14501"));
        assert!(!origin_matches("null", "127.0.0.1:14501"));
    }

    #[test]
    fn headers_parse_and_refuse() {
        assert_eq!(
            parse_header(&[0x82, 0x05], 100),
            Ok(Some(FrameHeader {
                fin: true,
                opcode: Opcode::Binary,
                mask: None,
                len: 5,
                header_len: 2
            }))
        );
        assert_eq!(parse_header(&[0x82], 100), Ok(None));
        assert_eq!(parse_header(&[0x82, 0xfe, 0x01], 1000), Ok(None));
        let huge = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            parse_header(&huge, 1 << 20),
            Err(FrameError::TooBig { len, .. }) if len == 1 << 63
        ));
        assert_eq!(parse_header(&[0xc2, 0x00], 10), Err(FrameError::Reserved));
        assert_eq!(parse_header(&[0x83, 0x00], 10), Err(FrameError::Opcode(3)));
        assert_eq!(parse_header(&[0x09, 0x00], 10), Err(FrameError::BadControl));
    }

    #[test]
    fn decoder_streams_masked_unmasked_fragmented_and_control() {
        let mut input = BytesMut::new();
        input.put_slice(b"\r\n");
        input.put_slice(&frame(2, false, None, b"hel"));
        input.put_slice(&frame(9, true, Some([1, 2, 3, 4]), b"p"));
        input.put_slice(&frame(0, true, Some([9, 8, 7, 6]), b"lo "));
        input.put_slice(&frame(1, true, None, b"world"));
        input.put_slice(&frame(8, true, None, &[0x03, 0xe8]));
        let mut d = Decoder::new(1000);
        let mut data = Vec::new();
        let mut events = Vec::new();
        loop {
            match d.next(&mut input, 2).expect("valid frames") {
                Event::Data(b) => data.extend_from_slice(&b),
                Event::NeedMore => break,
                e => events.push(e),
            }
        }
        assert_eq!(data, b"hello world");
        assert_eq!(
            events,
            vec![
                Event::Ping(Bytes::from_static(b"p")),
                Event::Close(Some(1000))
            ]
        );
        assert_eq!(d.text_frames, 1);
    }

    #[test]
    fn decoder_refuses_bad_sequences() {
        let mut d = Decoder::new(100);
        let mut input = BytesMut::from(&frame(0, true, None, b"x")[..]);
        assert_eq!(
            d.next(&mut input, 10),
            Err(FrameError::UnexpectedContinuation)
        );
        let mut d = Decoder::new(100);
        let mut input = BytesMut::from(&frame(2, false, None, b"x")[..]);
        input.put_slice(&frame(2, true, None, b"y"));
        assert!(matches!(d.next(&mut input, 10), Ok(Event::Data(_))));
        assert_eq!(
            d.next(&mut input, 10),
            Err(FrameError::ExpectedContinuation)
        );
    }

    #[tokio::test]
    async fn stream_reads_frames_and_writes_one_frame_per_write() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut ws = WsStream::new(a, BytesMut::new(), 1 << 20);
        b.write_all(&frame(2, true, Some([1, 2, 3, 4]), b"abc"))
            .await
            .unwrap();
        b.write_all(&frame(9, true, None, b"hi")).await.unwrap();
        b.write_all(&frame(2, true, None, b"def")).await.unwrap();
        let mut got = [0u8; 6];
        ws.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
        // The pong went out before this write's frame.
        let big = vec![7u8; 200_000];
        let slices = [IoSlice::new(b"xy"), IoSlice::new(b"z")];
        let n = ws.write_vectored(&slices).await.unwrap();
        assert_eq!(n, 3);
        ws.write_all(&big).await.unwrap();
        ws.shutdown().await.unwrap();
        drop(ws);
        let mut out = Vec::new();
        b.read_to_end(&mut out).await.unwrap();
        let mut input = BytesMut::from(&out[..]);
        let mut d = Decoder::new(1 << 20);
        let mut frames = Vec::new();
        while let Ok(Some(h)) = parse_header(&input, 1 << 20) {
            input.advance(h.header_len);
            let p = input.split_to(h.len as usize);
            frames.push((h.opcode, p.to_vec()));
        }
        let _ = &mut d;
        assert_eq!(frames[0], (Opcode::Pong, b"hi".to_vec()));
        assert_eq!(frames[1], (Opcode::Binary, b"xyz".to_vec()));
        assert_eq!(frames[2].0, Opcode::Binary);
        assert_eq!(frames[2].1.len(), 200_000);
        assert_eq!(frames[3], (Opcode::Close, vec![0x03, 0xe8]));
        assert_eq!(frames.len(), 4);
    }

    #[tokio::test]
    async fn client_side_masks_every_frame_and_splits_large_writes() {
        let (a, mut b) = tokio::io::duplex(1 << 22);
        let mut ws = WsStream::client(a, BytesMut::new(), 1 << 20);
        b.write_all(&frame(9, true, None, b"hi")).await.unwrap();
        b.write_all(&frame(2, true, None, b"srv")).await.unwrap();
        let mut got = [0u8; 3];
        ws.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"srv");
        let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        ws.write_all(b"abc").await.unwrap();
        ws.write_all(&big).await.unwrap();
        ws.shutdown().await.unwrap();
        drop(ws);
        let mut out = Vec::new();
        b.read_to_end(&mut out).await.unwrap();
        let mut input = BytesMut::from(&out[..]);
        let mut frames = Vec::new();
        while let Ok(Some(h)) = parse_header(&input, 1 << 20) {
            input.advance(h.header_len);
            let mut p = input.split_to(h.len as usize);
            let key = h.mask.expect("a client frame without a mask");
            apply_mask(&mut p, key, 0);
            frames.push((h.opcode, p.to_vec()));
        }
        assert_eq!(frames[0], (Opcode::Pong, b"hi".to_vec()));
        assert_eq!(frames[1], (Opcode::Binary, b"abc".to_vec()));
        let data: Vec<u8> = frames[2..frames.len() - 1]
            .iter()
            .flat_map(|(op, p)| {
                assert_eq!(*op, Opcode::Binary);
                assert!(p.len() <= CLIENT_FRAME_MAX);
                p.clone()
            })
            .collect();
        assert_eq!(data, big);
        assert!(frames.len() >= 5, "600 KB in frames of 256 KiB at most");
        assert_eq!(
            frames.last().cloned(),
            Some((Opcode::Close, vec![0x03, 0xe8]))
        );
    }

    #[tokio::test]
    async fn oversized_frame_is_answered_with_1009() {
        let (a, mut b) = tokio::io::duplex(4096);
        let mut ws = WsStream::new(a, BytesMut::new(), 1024);
        b.write_all(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        let mut got = [0u8; 4];
        let err = ws.read(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        drop(ws);
        let mut out = Vec::new();
        b.read_to_end(&mut out).await.unwrap();
        assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xf1]);
    }
}
