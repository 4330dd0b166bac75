//! The splice: moves xpra chunks from one stream to the other without copying their payloads.
//!
//! A direction reads into a buffer sized for the chunk in progress, splits each complete chunk
//! (header and payload together) off as one `Bytes` and writes batches of them with vectored
//! writes. Only headers are parsed. A main packet's type is peeked (never fully decoded) when it is
//! cheap to do so, to act on the few packets the gateway must see: `disconnect`, and the
//! `ping_echo` answers to the gateway's own pings.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use xgate_protocol::chunks::MAX_PENDING_CHUNKS;
use xgate_protocol::header::HEADER_SIZE;
use xgate_protocol::{peek_packet_type, Frame, Header, PacketType};

/// Main packets larger than this are not peeked when compressed: inflating them would cost more
/// than the relay should spend, and none of the packets the gateway acts on is that large.
const PEEK_COMPRESSED_MAX: usize = 4096;
/// The smallest read buffer; a chunk larger than this gets a buffer of its own size.
const READ_CHUNK: usize = 64 * 1024;
/// The most chunks one vectored write carries.
const MAX_IOV: usize = 64;

/// How one direction ended.
#[derive(Debug)]
pub enum End {
    /// The source closed its stream without a `disconnect`.
    Eof,
    /// The source sent `disconnect`; it was forwarded. Carries the reason.
    Disconnect(String),
    /// The gateway injected its own `disconnect` and stopped (a stop request).
    Stopped,
    /// A read or write failed.
    Io(io::Error),
    /// The source sent something that is not xpra.
    Protocol(String),
}

/// Packets the gateway itself sends into a direction (pings, a final disconnect).
pub enum Inject {
    /// Encoded chunks to write between two relayed packets.
    Packet(Vec<Frame>),
    /// Encoded chunks to write, then end this direction.
    Last(Vec<Frame>),
}

/// What a direction looks for in the packets it relays.
pub struct Watch {
    /// The gateway's ping `sid`: echoes carrying it are the gateway's and are not relayed.
    pub ping_sid: String,
    /// Bytes moved in this direction, readable from outside while the relay runs.
    pub bytes: Arc<AtomicU64>,
    /// Largest chunk accepted.
    pub max_size: u32,
}

/// Relays from `src` to `dst` until one of them ends. `buf` holds bytes already read from `src`.
pub async fn pump<R, W>(
    mut src: R,
    mut dst: W,
    mut buf: BytesMut,
    watch: Watch,
    mut inject: mpsc::Receiver<Inject>,
) -> (End, R, W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out: VecDeque<Bytes> = VecDeque::new();
    let mut inject_open = true;
    // Raw chunks (index > 0) of the packet in progress, held until its main chunk arrives: a
    // packet is written whole or not at all, so a packet of the gateway's own (a ping, a final
    // disconnect) can be written at any moment without landing between a packet's chunks, and a
    // source that dies mid-packet leaves no stray chunks for the receiver to splice.
    let mut partial: Vec<Bytes> = Vec::new();
    loop {
        // Split every complete chunk in the buffer.
        let mut end = None;
        loop {
            match split_chunk(&mut buf, watch.max_size) {
                Ok(Some((header, wire))) if header.index != 0 => {
                    if partial.len() >= MAX_PENDING_CHUNKS {
                        end = Some(End::Protocol(format!(
                            "more than {MAX_PENDING_CHUNKS} raw chunks before a main chunk"
                        )));
                        break;
                    }
                    partial.push(wire);
                }
                Ok(Some((header, wire))) => {
                    let action = inspect(&header, &wire, &watch.ping_sid);
                    match action {
                        Action::Forward => {
                            out.extend(partial.drain(..));
                            out.push_back(wire);
                        }
                        Action::Swallow => partial.clear(),
                        Action::ForwardThenEnd(reason) => {
                            out.extend(partial.drain(..));
                            out.push_back(wire);
                            end = Some(End::Disconnect(reason));
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    end = Some(End::Protocol(e));
                    break;
                }
            }
        }
        if !out.is_empty() {
            let n: usize = out.iter().map(Bytes::len).sum();
            if let Err(e) = write_all(&mut dst, &mut out).await {
                return (End::Io(e), src, dst);
            }
            watch.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        if let Some(end) = end {
            let _ = dst.flush().await;
            return (end, src, dst);
        }
        // Make room for the chunk in progress (or a batch of small ones), then wait for data or
        // for a packet of the gateway's own.
        let want = pending_len(&buf).map_or(READ_CHUNK, |need| {
            need.saturating_sub(buf.len()).max(READ_CHUNK)
        });
        buf.reserve(want);
        tokio::select! {
            biased;
            msg = inject.recv(), if inject_open => match msg {
                Some(Inject::Packet(frames)) => {
                    out.extend(frames.into_iter().map(|f| Bytes::from(f.to_wire())));
                }
                Some(Inject::Last(frames)) => {
                    out.extend(frames.into_iter().map(|f| Bytes::from(f.to_wire())));
                    let result = write_all(&mut dst, &mut out).await;
                    let _ = dst.flush().await;
                    return match result {
                        Ok(()) => (End::Stopped, src, dst),
                        Err(e) => (End::Io(e), src, dst),
                    };
                }
                None => inject_open = false,
            },
            read = src.read_buf(&mut buf) => match read {
                Ok(0) => return (End::Eof, src, dst),
                Ok(_) => {}
                Err(e) => return (End::Io(e), src, dst),
            },
        }
    }
}

/// What to do with one chunk.
enum Action {
    Forward,
    Swallow,
    ForwardThenEnd(String),
}

fn inspect(header: &Header, wire: &Bytes, ping_sid: &str) -> Action {
    if header.index != 0 {
        return Action::Forward;
    }
    let payload_len = wire.len() - HEADER_SIZE;
    if header.compression != 0 && payload_len > PEEK_COMPRESSED_MAX {
        return Action::Forward;
    }
    let frame = Frame {
        header: *header,
        payload: wire.slice(HEADER_SIZE..),
    };
    match peek_packet_type(&frame) {
        Ok(PacketType::Name(name)) => match name.as_str() {
            "disconnect" | "connection-close" => ActionDecoder::reason(&frame).map_or(
                Action::ForwardThenEnd("disconnect".into()),
                Action::ForwardThenEnd,
            ),
            "ping_echo" | "ping-echo" if echo_is_ours(&frame, ping_sid) => Action::Swallow,
            _ => Action::Forward,
        },
        _ => Action::Forward,
    }
}

/// Decodes the few small packets whose contents matter.
struct ActionDecoder;

impl ActionDecoder {
    fn decode(frame: &Frame) -> Option<xgate_protocol::Packet> {
        let mut reader = xgate_protocol::PacketReader::new(PEEK_COMPRESSED_MAX * 16);
        reader.push(frame.clone()).ok().flatten()
    }

    fn reason(frame: &Frame) -> Option<String> {
        let packet = Self::decode(frame)?;
        packet
            .get(1)
            .and_then(xgate_protocol::Value::as_str)
            .map(str::to_string)
    }
}

fn echo_is_ours(frame: &Frame, sid: &str) -> bool {
    ActionDecoder::decode(frame)
        .and_then(|p| {
            p.get(6)
                .and_then(xgate_protocol::Value::as_str)
                .map(|s| s == sid)
        })
        .unwrap_or(false)
}

/// The total length of the chunk at the front of `buf`, once its header has arrived.
fn pending_len(buf: &BytesMut) -> Option<usize> {
    if buf.len() < HEADER_SIZE {
        return None;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    Some(HEADER_SIZE + len)
}

/// Splits the complete chunk at the front of `buf`, header included, without copying.
fn split_chunk(buf: &mut BytesMut, max_size: u32) -> Result<Option<(Header, Bytes)>, String> {
    if buf.len() < HEADER_SIZE {
        return Ok(None);
    }
    let mut raw = [0u8; HEADER_SIZE];
    raw.copy_from_slice(&buf[..HEADER_SIZE]);
    let header = Header::decode(&raw, max_size).map_err(|e| e.to_string())?;
    let total = HEADER_SIZE + header.length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((header, buf.split_to(total).freeze())))
}

/// Writes every queued chunk with as few vectored writes as the socket allows.
async fn write_all<W: AsyncWrite + Unpin>(
    dst: &mut W,
    out: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !out.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(out.iter()) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        let mut written = dst.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "peer stopped reading",
            ));
        }
        while written > 0 {
            let Some(front) = out.front_mut() else { break };
            if front.len() <= written {
                written -= front.len();
                out.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_protocol::{Compressor, PacketEncoder, PacketWriter, Value};

    fn wire(packet: Value) -> Vec<u8> {
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::Lz4, 1);
        w.encode(&packet)
            .unwrap()
            .iter()
            .flat_map(Frame::to_wire)
            .collect()
    }

    fn watch() -> Watch {
        Watch {
            ping_sid: "gw".into(),
            bytes: Arc::new(AtomicU64::new(0)),
            max_size: 1 << 28,
        }
    }

    #[tokio::test]
    async fn relays_everything_in_order_up_to_disconnect() {
        let mut input = Vec::new();
        for i in 0..100i64 {
            input.extend(wire(Value::list([
                Value::from("draw"),
                Value::from(i),
                Value::from(vec![7u8; 40_000]),
            ])));
        }
        input.extend(wire(Value::list([
            "ping_echo",
            "1",
            "0",
            "0",
            "0",
            "0",
            "gw",
        ])));
        input.extend(wire(Value::list(["disconnect", "server shutdown"])));
        input.extend(wire(Value::list(["draw", "after"])));
        let expected_len = input.len()
            - wire(Value::list(["draw", "after"])).len()
            - wire(Value::list(["ping_echo", "1", "0", "0", "0", "0", "gw"])).len();
        let (_tx, rx) = mpsc::channel(1);
        let (end, _, out) = pump(&input[..], Vec::new(), BytesMut::new(), watch(), rx).await;
        assert!(
            matches!(end, End::Disconnect(ref r) if r == "server shutdown"),
            "{end:?}"
        );
        assert_eq!(out.len(), expected_len);
        assert!(input.starts_with(
            &out[..out.len() - wire(Value::list(["disconnect", "server shutdown"])).len()]
        ));
    }

    /// A source that hands out `parts` one read at a time, waiting for `gate` before the
    /// second part, so that a test can inject a packet at a chosen point.
    struct Gated {
        parts: Vec<Vec<u8>>,
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
    }

    impl AsyncRead for Gated {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            use std::future::Future;
            use std::task::Poll;
            if self.parts.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if self.parts.len() == 1 {
                if let Some(gate) = self.gate.as_mut() {
                    match std::pin::Pin::new(gate).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => self.gate = None,
                    }
                }
            }
            let n = self.parts[0].len().min(buf.remaining());
            let part: Vec<u8> = self.parts[0].drain(..n).collect();
            if self.parts[0].is_empty() {
                self.parts.remove(0);
            }
            buf.put_slice(&part);
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn injected_packets_never_split_a_packet_from_its_raw_chunks() {
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0);
        let big = w
            .encode(&Value::list([
                Value::from("draw"),
                Value::from(1i64),
                Value::from(vec![9u8; 100_000]),
            ]))
            .unwrap();
        assert!(
            big.len() == 2 && big[0].header.index != 0,
            "a raw chunk, then the main one"
        );
        let disconnect = wire(Value::list(["disconnect", "done"]));
        let mut second = big[1].to_wire();
        second.extend_from_slice(&disconnect);
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
        let src = Gated {
            parts: vec![big[0].to_wire(), second],
            gate: Some(gate_rx),
        };
        let (tx, rx) = mpsc::channel(4);
        let ping = w.encode(&Value::list(["ping", "1"])).unwrap();
        let task = tokio::spawn(pump(src, Vec::new(), BytesMut::new(), watch(), rx));
        // The raw chunk is relayed and the pump waits for the main chunk: inject now.
        tokio::task::yield_now().await;
        tx.send(Inject::Packet(ping.clone())).await.unwrap();
        tokio::task::yield_now().await;
        gate_tx.send(()).unwrap();
        let (end, _, out) = task.await.unwrap();
        assert!(matches!(end, End::Disconnect(_)), "{end:?}");
        // The raw chunk is held until its main chunk arrives, so the ping goes out first and
        // the draw follows whole.
        let mut expected = ping[0].to_wire();
        expected.extend(big[0].to_wire());
        expected.extend(big[1].to_wire());
        expected.extend(disconnect);
        assert!(
            out == expected,
            "the ping must not split the draw packet ({} vs {} bytes)",
            out.len(),
            expected.len()
        );
    }

    #[tokio::test]
    async fn garbage_ends_the_direction_with_a_protocol_error() {
        let (_tx, rx) = mpsc::channel(1);
        let (end, _, out) = pump(
            &b"GARBAGE!garbage"[..],
            Vec::new(),
            BytesMut::new(),
            watch(),
            rx,
        )
        .await;
        assert!(matches!(end, End::Protocol(_)));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn a_final_disconnect_mid_packet_leaves_no_stray_raw_chunk() {
        use tokio::io::AsyncWriteExt;
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0);
        let draw = w
            .encode(&Value::list([
                Value::from("draw"),
                Value::from(vec![1u8; 100_000]),
            ]))
            .unwrap();
        assert!(
            draw.len() > 1,
            "the draw must travel as a raw chunk and a main chunk"
        );
        let (mut server, src) = tokio::io::duplex(1 << 20);
        // Only the raw chunk arrives; the server then hangs.
        server.write_all(&draw[0].to_wire()).await.unwrap();
        let (tx, rx) = mpsc::channel(1);
        let bye = w
            .encode(&Value::list(["disconnect", "server shutdown"]))
            .unwrap();
        let expected: Vec<u8> = bye.iter().flat_map(Frame::to_wire).collect();
        let pumping = tokio::spawn(pump(src, Vec::new(), BytesMut::new(), watch(), rx));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send(Inject::Last(bye)).await.unwrap();
        let (end, _, out) = pumping.await.unwrap();
        assert!(matches!(end, End::Stopped), "{end:?}");
        assert_eq!(
            out, expected,
            "only the whole disconnect packet may be written"
        );
        drop(server);
    }
}
