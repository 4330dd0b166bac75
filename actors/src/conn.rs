//! Packets over one byte stream, for handshakes: read a whole packet (raw chunks spliced in),
//! send a packet with this side's encoder and compressor, and give the stream back, with any bytes
//! already read, when the relay takes over.

use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio_util::codec::{Framed, FramedParts};
use xgate_messages::BoxedStream;
use xgate_protocol::{
    Compressor, FrameCodec, Packet, PacketEncoder, PacketReader, PacketWriter, ProtocolError, Value,
};

/// Why a packet could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The peer closed the connection.
    #[error("connection closed")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The peer sent something that is not xpra.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// One side of a connection during its handshake.
pub struct PacketConn {
    /// The stream split into chunks.
    framed: Framed<BoxedStream, FrameCodec>,
    /// Turns chunks into packets.
    reader: PacketReader,
    /// How packets are sent to this peer: the encoder and compressor it understands.
    pub writer: PacketWriter,
    /// Wire bytes read from the peer so far (headers included), for the byte counters: the
    /// handshake is part of what a connection moved.
    pub bytes_in: u64,
    /// Wire bytes sent to the peer so far.
    pub bytes_out: u64,
}

impl PacketConn {
    /// Wraps a stream, accepting chunks of at most `max_size` bytes, and sending with `writer`.
    pub fn new(stream: BoxedStream, max_size: u32, writer: PacketWriter) -> Self {
        PacketConn {
            framed: Framed::new(stream, FrameCodec::new(max_size)),
            reader: PacketReader::new(max_size as usize),
            writer,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Re-wraps a stream together with bytes already read from it.
    pub fn from_parts(
        stream: BoxedStream,
        read_buf: BytesMut,
        max_size: u32,
        writer: PacketWriter,
    ) -> Self {
        let mut parts =
            FramedParts::new::<&xgate_protocol::Frame>(stream, FrameCodec::new(max_size));
        parts.read_buf = read_buf;
        PacketConn {
            framed: Framed::from_parts(parts),
            reader: PacketReader::new(max_size as usize),
            writer,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Reads the next whole packet, and the encoder and compression byte of its main chunk (which
    /// tell how the peer wants to be answered).
    pub async fn read(&mut self) -> Result<(Packet, PacketEncoder, u8), ConnError> {
        loop {
            let frame = match self.framed.next().await {
                None => return Err(ConnError::Closed),
                Some(r) => r?,
            };
            let header = frame.header;
            self.bytes_in += frame.wire_len() as u64;
            if let Some(packet) = self.reader.push(frame)? {
                let encoder = PacketEncoder::from_flags(header.flags)?;
                return Ok((packet, encoder, header.compression));
            }
        }
    }

    /// Reads the next packet, waiting at most `timeout`.
    pub async fn read_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<(Packet, PacketEncoder, u8), ConnError> {
        tokio::time::timeout(timeout, self.read())
            .await
            .map_err(|_| ConnError::Timeout)?
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Value) -> Result<(), ConnError> {
        let frames = self.writer.encode(packet)?;
        for frame in frames {
            self.bytes_out += frame.wire_len() as u64;
            self.framed.feed(frame).await?;
        }
        SinkExt::<xgate_protocol::Frame>::flush(&mut self.framed).await?;
        Ok(())
    }

    /// Sends `["disconnect", reason, extra...]` and flushes; errors are ignored since the peer may
    /// already be gone.
    pub async fn disconnect(&mut self, reason: &str, extra: &[&str]) {
        let mut items = vec![Value::from("disconnect"), Value::from(reason)];
        items.extend(extra.iter().map(|s| Value::from(*s)));
        let _ = tokio::time::timeout(Duration::from_secs(2), self.send(&Value::List(items))).await;
    }

    /// Sends `disconnect` like [`PacketConn::disconnect`], then lets the peer close first
    /// (reading and dropping what it still sends, for at most `linger`) and shuts the stream down
    /// (a TLS close_notify, a WebSocket close frame). A peer that finds the connection gone
    /// before it has read the `disconnect` may report a lost connection instead of the reason
    /// (xpra's clients race their reader against their packet parser), so the gateway does not
    /// close first.
    pub async fn disconnect_and_close(&mut self, reason: &str, extra: &[&str], linger: Duration) {
        self.disconnect(reason, extra).await;
        let _ = tokio::time::timeout(linger, async {
            while self.framed.next().await.is_some_and(|r| r.is_ok()) {}
        })
        .await;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncWriteExt::shutdown(self.framed.get_mut()),
        )
        .await;
    }

    /// Sets the largest chunk accepted from now on (raised once a client is authenticated).
    pub fn set_max_size(&mut self, max_size: u32) {
        self.framed.codec_mut().set_max_size(max_size);
    }

    /// The stream and the bytes read from it but not yet consumed.
    pub fn into_parts(self) -> (BoxedStream, BytesMut) {
        let parts = self.framed.into_parts();
        (parts.io, parts.read_buf)
    }
}

/// The writer a peer's hello asks for: the encoder its hello used, and lz4 (else zlib, else none)
/// from its `compressors`, at its `compression_level` (else `default_level`).
pub fn writer_for_hello(hello: &Value, encoder: PacketEncoder, default_level: u8) -> PacketWriter {
    let listed = |name: &str| {
        hello
            .lookup("compressors")
            .and_then(Value::as_list)
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(name)))
    };
    let compressor = if listed("lz4") {
        Compressor::Lz4
    } else if listed("zlib") {
        Compressor::Zlib
    } else if listed("brotli") {
        Compressor::Brotli
    } else {
        Compressor::None
    };
    let level = hello
        .lookup("compression_level")
        .and_then(Value::as_int)
        .map(|l| l.clamp(0, 9) as u8)
        .unwrap_or(default_level);
    let mut writer = PacketWriter::new(encoder, compressor, level);
    // xpra 6.x always sets the flush flag; 3.x's Python client ignores it, but 3.x's HTML5 client
    // (bencode) refuses any flag it does not know ("we can't handle this protocol flag yet: 8").
    // Follow the peer's own hello, else set it only for rencodeplus peers (xpra >= 4.3).
    writer.flush = hello
        .lookup("flush")
        .and_then(Value::as_bool)
        .unwrap_or(encoder == PacketEncoder::RencodePlus);
    writer.chunks = hello
        .lookup("chunks")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    writer
}
