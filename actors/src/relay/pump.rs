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
use tracing::debug;
use xgate_protocol::chunks::MAX_PENDING_CHUNKS;
use xgate_protocol::header::HEADER_SIZE;
use xgate_protocol::{peek_packet_type, Frame, Header, PacketType, PacketWriter, Value};

use super::zerocopy::{Pipe, SharedSocket, SpliceError};

/// Main packets larger than this are not peeked when compressed: inflating them would cost more
/// than the relay should spend, and none of the packets the gateway acts on is that large.
const PEEK_COMPRESSED_MAX: usize = 4096;
/// The smallest read buffer; a chunk larger than this gets a buffer of its own size.
const READ_CHUNK: usize = 64 * 1024;
/// The most chunks one vectored write carries.
const MAX_IOV: usize = 64;
/// A raw chunk with at least this many bytes still to come is spliced rather than read, when
/// both sides are plain sockets.
const SPLICE_MIN: usize = 64 * 1024;

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

/// Where the destination's stream stands when a direction ends: whether the gateway can still
/// write a packet of its own to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Between packets.
    Clean,
    /// Raw chunks of a packet went out (spliced) and its main chunk did not: the receiver will
    /// put those chunks into the next main packet, at indices up to `last_index`.
    Open {
        /// The highest raw chunk index written.
        last_index: u8,
    },
    /// Cut inside a chunk: nothing more can be written that the receiver would parse.
    Cut,
}

/// How a direction ended, with its streams given back.
#[derive(Debug)]
pub struct Finished<R, W> {
    /// Why it ended.
    pub end: End,
    /// Where the destination's stream stands.
    pub wire: Wire,
    /// The source.
    pub src: R,
    /// The destination, for a last packet of the gateway's own.
    pub dst: W,
    /// Payload bytes that moved by splice(2) rather than through the gateway's memory.
    pub spliced: u64,
}

/// Packets the gateway itself sends into a direction (pings, a final disconnect), encoded by
/// the direction with its destination's writer.
pub enum Inject {
    /// A packet to write between two relayed packets.
    Packet(Value),
    /// A packet to write, then end this direction.
    Last(Value),
}

/// What a direction looks for in the packets it relays.
pub struct Watch {
    /// The gateway's ping `sid`: echoes carrying it are the gateway's and are not relayed.
    pub ping_sid: String,
    /// Bytes moved in this direction, readable from outside while the relay runs.
    pub bytes: Arc<AtomicU64>,
    /// Largest chunk accepted.
    pub max_size: u32,
    /// How the destination wants the gateway's own packets encoded.
    pub writer: PacketWriter,
}

/// Both sides of a direction as plain sockets, so that large raw chunks are spliced.
pub struct ZeroCopy {
    /// The source socket (the same one the direction reads from).
    pub src: SharedSocket,
    /// The destination socket (the same one the direction writes to).
    pub dst: SharedSocket,
    /// The pipe, made on the first large chunk; `Err` once making one failed (the direction
    /// then copies, as on any other transport).
    pipe: Option<Result<Pipe, ()>>,
}

impl ZeroCopy {
    /// Splices between `src` and `dst`, which must be the direction's own streams.
    pub fn new(src: SharedSocket, dst: SharedSocket) -> Self {
        ZeroCopy {
            src,
            dst,
            pipe: None,
        }
    }

    /// Whether splicing can go on: makes the pipe on first use.
    fn ready(&mut self) -> bool {
        let pipe = self.pipe.get_or_insert_with(|| {
            Pipe::new().map_err(|e| {
                debug!(target: "xgate::proxy", "no pipe for splicing, copying instead: {e}");
            })
        });
        pipe.is_ok()
    }

    /// Moves `len` bytes of the source to the destination (after [`ZeroCopy::ready`]).
    async fn transfer(&self, len: usize) -> Result<(), SpliceError> {
        match &self.pipe {
            Some(Ok(pipe)) => pipe.transfer(&self.src, &self.dst, len).await,
            _ => Err(SpliceError::Destination(io::Error::other("no pipe"))),
        }
    }
}

/// Encodes a packet of the gateway's own for a destination whose stream is in state `wire`:
/// after spliced raw chunks the packet is padded so that the receiver can place them. `None`
/// when nothing can be written any more.
pub fn own_packet(writer: &PacketWriter, wire: Wire, packet: Value) -> Option<Vec<Bytes>> {
    let packet = match (wire, packet) {
        (Wire::Cut, _) => return None,
        (Wire::Open { last_index }, Value::List(mut items)) => {
            let needed = usize::from(last_index) + 1;
            if items.len() < needed {
                items.resize(needed, Value::from(""));
            }
            Value::List(items)
        }
        (_, packet) => packet,
    };
    let frames = writer.encode(&packet).ok()?;
    Some(frames.iter().map(|f| Bytes::from(f.to_wire())).collect())
}

/// Writes a last packet of the gateway's own to a destination in state `wire`, if it can still
/// take one.
pub async fn farewell<W: AsyncWrite + Unpin>(
    dst: &mut W,
    writer: &PacketWriter,
    wire: Wire,
    packet: Value,
) -> io::Result<()> {
    if let Some(chunks) = own_packet(writer, wire, packet) {
        write_all(dst, &mut chunks.into()).await?;
    }
    dst.flush().await
}

/// Ends a peer's connection after the gateway's last packet to it without losing that packet.
/// Closing a socket whose receive queue still holds unread bytes (the peer's acks and pings in
/// flight) sends a reset, and the peer's kernel then drops what its application had not read
/// yet, the final `disconnect` among it. So: flush and half-close (`dst`), then read and discard
/// from `src` until the peer closes too (it does once it has read the disconnect) or `linger`
/// runs out.
pub async fn close_gracefully<R, W>(mut src: R, mut dst: W, linger: std::time::Duration)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(linger, async {
        let _ = dst.shutdown().await;
        let mut scratch = vec![0u8; 16 * 1024];
        while let Ok(n) = src.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The state of one direction between reads.
struct Direction {
    /// Complete chunks waiting to be written.
    out: VecDeque<Bytes>,
    /// Raw chunks (index > 0) of the packet in progress, held until its main chunk arrives: a
    /// packet is written whole or not at all, so a packet of the gateway's own (a ping, a final
    /// disconnect) can be written at any moment without landing between a packet's chunks, and
    /// a source that dies mid-packet leaves no stray chunks for the receiver to splice.
    partial: Vec<Bytes>,
    /// Set once raw chunks of the packet in progress were spliced (and so written early).
    wire: Wire,
    /// The gateway's own packets that arrived while `wire` was open, written after the main
    /// chunk.
    deferred: Vec<Value>,
}

/// Relays from `src` to `dst` until one of them ends. `buf` holds bytes already read from `src`.
/// With `zero_copy`, large raw chunks move by splice(2) between the two sockets.
pub async fn pump<R, W>(
    mut src: R,
    mut dst: W,
    mut buf: BytesMut,
    watch: Watch,
    mut inject: mpsc::Receiver<Inject>,
    mut zero_copy: Option<ZeroCopy>,
) -> Finished<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut dir = Direction {
        out: VecDeque::new(),
        partial: Vec::new(),
        wire: Wire::Clean,
        deferred: Vec::new(),
    };
    let mut inject_open = true;
    let mut spliced = 0u64;
    macro_rules! finish {
        ($end:expr) => {
            return Finished {
                end: $end,
                wire: dir.wire,
                src,
                dst,
                spliced,
            }
        };
    }
    loop {
        // Split every complete chunk in the buffer.
        let mut end = None;
        loop {
            match split_chunk(&mut buf, watch.max_size) {
                Ok(Some((header, wire))) if header.index != 0 => {
                    if let Wire::Open { last_index } = &mut dir.wire {
                        *last_index = (*last_index).max(header.index);
                        dir.out.push_back(wire);
                        continue;
                    }
                    if dir.partial.len() >= MAX_PENDING_CHUNKS {
                        end = Some(End::Protocol(format!(
                            "more than {MAX_PENDING_CHUNKS} raw chunks before a main chunk"
                        )));
                        break;
                    }
                    dir.partial.push(wire);
                }
                Ok(Some((header, wire))) => {
                    let action = inspect(&header, &wire, &watch.ping_sid);
                    let swallow = matches!(action, Action::Swallow);
                    if swallow && dir.wire == Wire::Clean {
                        dir.partial.clear();
                    } else {
                        // A swallowed echo after spliced chunks must still close their packet.
                        dir.out.extend(dir.partial.drain(..));
                        dir.out.push_back(wire);
                    }
                    if dir.wire != Wire::Clean {
                        dir.wire = Wire::Clean;
                        for packet in std::mem::take(&mut dir.deferred) {
                            if let Some(chunks) = own_packet(&watch.writer, Wire::Clean, packet) {
                                dir.out.extend(chunks);
                            }
                        }
                    }
                    if let Action::ForwardThenEnd(reason) = action {
                        end = Some(End::Disconnect(reason));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    end = Some(End::Protocol(e));
                    break;
                }
            }
        }
        if let Err(e) = flush_out(&mut dst, &mut dir.out, &watch).await {
            finish!(End::Io(e));
        }
        if let Some(end) = end {
            let _ = dst.flush().await;
            finish!(end);
        }
        // A large raw chunk between two plain sockets: write what is buffered of it (and the
        // chunks held before it), then splice the rest.
        if let Some(zc) = zero_copy.as_mut() {
            if let Some((index, rest)) = spliceable(&buf, watch.max_size) {
                if zc.ready() {
                    dir.out.extend(dir.partial.drain(..));
                    dir.out.push_back(buf.split().freeze());
                    dir.wire = Wire::Open {
                        last_index: match dir.wire {
                            Wire::Open { last_index } => last_index.max(index),
                            _ => index,
                        },
                    };
                    if let Err(e) = flush_out(&mut dst, &mut dir.out, &watch).await {
                        dir.wire = Wire::Cut;
                        finish!(End::Io(e));
                    }
                    match zc.transfer(rest).await {
                        Ok(()) => {
                            watch.bytes.fetch_add(rest as u64, Ordering::Relaxed);
                            spliced += rest as u64;
                            continue;
                        }
                        Err(e) => {
                            dir.wire = Wire::Cut;
                            finish!(match e {
                                SpliceError::SourceClosed => End::Eof,
                                SpliceError::Source(e) | SpliceError::Destination(e) => {
                                    End::Io(e)
                                }
                            });
                        }
                    }
                }
            }
        }
        // A plain socket is waited on with no buffer (see `read_more`): a connection that
        // sends nothing holds no read memory.
        if buf.is_empty() && zero_copy.is_some() {
            buf = BytesMut::new();
        }
        let want = pending_len(&buf).map_or(READ_CHUNK, |need| {
            need.saturating_sub(buf.len()).max(READ_CHUNK)
        });
        tokio::select! {
            biased;
            msg = inject.recv(), if inject_open => match msg {
                Some(Inject::Packet(packet)) if dir.wire != Wire::Clean => dir.deferred.push(packet),
                Some(Inject::Packet(packet)) => {
                    if let Some(chunks) = own_packet(&watch.writer, dir.wire, packet) {
                        dir.out.extend(chunks);
                    }
                }
                Some(Inject::Last(packet)) => {
                    let result = farewell(&mut dst, &watch.writer, dir.wire, packet).await;
                    finish!(match result {
                        Ok(()) => End::Stopped,
                        Err(e) => End::Io(e),
                    });
                }
                None => inject_open = false,
            },
            read = read_more(&mut src, &mut buf, want, zero_copy.as_ref()) => match read {
                Ok(0) => finish!(End::Eof),
                Ok(_) => {}
                Err(e) => finish!(End::Io(e)),
            },
        }
    }
}

/// Writes the queued chunks and counts them.
async fn flush_out<W: AsyncWrite + Unpin>(
    dst: &mut W,
    out: &mut VecDeque<Bytes>,
    watch: &Watch,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let n: usize = out.iter().map(Bytes::len).sum();
    write_all(dst, out).await?;
    watch.bytes.fetch_add(n as u64, Ordering::Relaxed);
    Ok(())
}

/// Reads more of the source into `buf`, making room for `want` bytes only once a plain socket
/// has something to read.
async fn read_more<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    want: usize,
    zero_copy: Option<&ZeroCopy>,
) -> io::Result<usize> {
    if let Some(zc) = zero_copy {
        zc.src.readable().await?;
    }
    buf.reserve(want);
    src.read_buf(buf).await
}

/// The raw chunk at the front of `buf`, when it is large enough to splice: its index and how
/// many of its bytes are still to come.
fn spliceable(buf: &BytesMut, max_size: u32) -> Option<(u8, usize)> {
    if buf.len() < HEADER_SIZE {
        return None;
    }
    let mut raw = [0u8; HEADER_SIZE];
    raw.copy_from_slice(&buf[..HEADER_SIZE]);
    let header = Header::decode(&raw, max_size).ok()?;
    let rest = (HEADER_SIZE + header.length as usize).checked_sub(buf.len())?;
    (header.index != 0 && rest >= SPLICE_MIN).then_some((header.index, rest))
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
            writer: PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0),
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
        let Finished { end, dst: out, .. } =
            pump(&input[..], Vec::new(), BytesMut::new(), watch(), rx, None).await;
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
        let task = tokio::spawn(pump(src, Vec::new(), BytesMut::new(), watch(), rx, None));
        // The raw chunk is relayed and the pump waits for the main chunk: inject now.
        tokio::task::yield_now().await;
        tx.send(Inject::Packet(Value::list(["ping", "1"])))
            .await
            .unwrap();
        tokio::task::yield_now().await;
        gate_tx.send(()).unwrap();
        let Finished { end, dst: out, .. } = task.await.unwrap();
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
        let Finished { end, dst: out, .. } = pump(
            &b"GARBAGE!garbage"[..],
            Vec::new(),
            BytesMut::new(),
            watch(),
            rx,
            None,
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
        let bye = Value::list(["disconnect", "server shutdown"]);
        let expected: Vec<u8> = w
            .encode(&bye)
            .unwrap()
            .iter()
            .flat_map(Frame::to_wire)
            .collect();
        let pumping = tokio::spawn(pump(src, Vec::new(), BytesMut::new(), watch(), rx, None));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send(Inject::Last(bye)).await.unwrap();
        let Finished { end, dst: out, .. } = pumping.await.unwrap();
        assert!(matches!(end, End::Stopped), "{end:?}");
        assert_eq!(
            out, expected,
            "only the whole disconnect packet may be written"
        );
        drop(server);
    }

    /// Two connected loopback TCP pairs: (client app, relay's client side) and (relay's server
    /// side, server app); the relay's sides are recovered as plain sockets, as the relay does.
    async fn socket_pairs() -> (
        tokio::net::TcpStream,
        SharedSocket,
        SharedSocket,
        tokio::net::TcpStream,
    ) {
        async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            (a.unwrap(), b.unwrap().0)
        }
        let recover = |s: tokio::net::TcpStream| {
            // Behind a sniffing prefix and a box, as the upgrade stage hands it on.
            let boxed: xgate_messages::BoxedStream = Box::new(crate::upgrade::Prefixed::new(
                Bytes::new(),
                Box::new(s) as xgate_messages::BoxedStream,
            ));
            match SharedSocket::recover(boxed, BytesMut::new()) {
                Ok((s, _)) => s,
                Err(_) => panic!("a TcpStream must be recovered"),
            }
        };
        let (client, relay_client) = pair().await;
        let (relay_server, server) = pair().await;
        (client, recover(relay_client), recover(relay_server), server)
    }

    fn spliced_pump(
        from: SharedSocket,
        to: SharedSocket,
        rx: mpsc::Receiver<Inject>,
    ) -> tokio::task::JoinHandle<Finished<SharedSocket, SharedSocket>> {
        tokio::spawn(pump(
            from.clone(),
            to.clone(),
            BytesMut::new(),
            watch(),
            rx,
            Some(ZeroCopy::new(from, to)),
        ))
    }

    #[tokio::test]
    async fn plain_sockets_splice_large_chunks_byte_exactly() {
        use tokio::io::AsyncWriteExt;
        let (mut client, from, to, server) = socket_pairs().await;
        let mut server = server;
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0);
        let mut input = Vec::new();
        for i in 0..20u8 {
            // 1 MiB raw chunks (spliced), small packets between them (read and split).
            let pixels: Vec<u8> = (0..1 << 20).map(|n: u32| (n as u8) ^ i).collect();
            for frame in w
                .encode(&Value::list([
                    Value::from("draw"),
                    Value::from(i64::from(i)),
                    Value::from(pixels),
                ]))
                .unwrap()
            {
                input.extend(frame.to_wire());
            }
            input.extend(wire(Value::list(["cursor", "x"])));
        }
        input.extend(wire(Value::list(["disconnect", "done"])));
        let (_tx, rx) = mpsc::channel(1);
        let pumping = spliced_pump(from, to, rx);
        let writing = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            (client, input)
        });
        let reading = tokio::spawn(async move {
            let mut out = Vec::new();
            server.read_to_end(&mut out).await.unwrap();
            out
        });
        let (_client, input) = writing.await.unwrap();
        let fin = pumping.await.unwrap();
        drop(fin.dst);
        drop(fin.src);
        let out = reading.await.unwrap();
        assert!(
            matches!(fin.end, End::Disconnect(ref r) if r == "done"),
            "{:?}",
            fin.end
        );
        assert_eq!(fin.wire, Wire::Clean);
        assert!(
            fin.spliced > 18 << 20,
            "the 1 MiB chunks must be spliced, not copied: {} bytes spliced",
            fin.spliced
        );
        assert!(out == input, "{} bytes out of {}", out.len(), input.len());
    }

    #[tokio::test]
    async fn a_source_dying_after_a_spliced_raw_chunk_gets_a_padded_farewell() {
        use tokio::io::AsyncWriteExt;
        let (mut client, from, to, mut server) = socket_pairs().await;
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0);
        let draw = w
            .encode(&Value::list([
                Value::from("draw"),
                Value::from(1i64),
                Value::from(2i64),
                Value::from(vec![5u8; 500_000]),
            ]))
            .unwrap();
        assert_eq!(draw[0].header.index, 3, "the pixels travel as raw chunk 3");
        let (_tx, rx) = mpsc::channel(1);
        let pumping = spliced_pump(from, to, rx);
        // The raw chunk only, then the source dies.
        client.write_all(&draw[0].to_wire()).await.unwrap();
        drop(client);
        let mut fin = pumping.await.unwrap();
        assert!(matches!(fin.end, End::Eof), "{:?}", fin.end);
        assert_eq!(fin.wire, Wire::Open { last_index: 3 });
        farewell(
            &mut fin.dst,
            &fin_writer(),
            fin.wire,
            Value::list(["disconnect", "server shutdown"]),
        )
        .await
        .unwrap();
        drop(fin);
        let mut out = Vec::new();
        server.read_to_end(&mut out).await.unwrap();
        // What the receiver makes of it: one disconnect packet carrying the stray chunk.
        let mut reader = xgate_protocol::PacketReader::new(1 << 24);
        let mut buf = BytesMut::from(&out[..]);
        let mut packets = Vec::new();
        while let Some((_, frame)) = split_chunk(&mut buf, 1 << 28).unwrap() {
            let frame = Frame {
                header: Header::decode(frame[..HEADER_SIZE].try_into().unwrap(), 1 << 28).unwrap(),
                payload: frame.slice(HEADER_SIZE..),
            };
            if let Some(packet) = reader.push(frame).unwrap() {
                packets.push(packet);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(packets.len(), 1);
        assert_eq!(
            packets[0].get(0).and_then(Value::as_str),
            Some("disconnect")
        );
        assert_eq!(
            packets[0].get(1).and_then(Value::as_str),
            Some("server shutdown")
        );
    }

    #[tokio::test]
    async fn a_source_dying_inside_a_spliced_chunk_cuts_the_wire() {
        use tokio::io::AsyncWriteExt;
        let (mut client, from, to, _server) = socket_pairs().await;
        let w = PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0);
        let draw = w
            .encode(&Value::list([
                Value::from("draw"),
                Value::from(vec![5u8; 500_000]),
            ]))
            .unwrap();
        let (_tx, rx) = mpsc::channel(1);
        let pumping = spliced_pump(from, to, rx);
        let raw = draw[0].to_wire();
        client.write_all(&raw[..300_000]).await.unwrap();
        drop(client);
        let fin = pumping.await.unwrap();
        assert!(matches!(fin.end, End::Eof), "{:?}", fin.end);
        assert_eq!(fin.wire, Wire::Cut);
        assert!(
            own_packet(&fin_writer(), fin.wire, Value::list(["disconnect", "x"])).is_none(),
            "nothing may follow a cut chunk"
        );
    }

    fn fin_writer() -> PacketWriter {
        PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0)
    }
}
