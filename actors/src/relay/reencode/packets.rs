//! What both packet-aware directions of a re-encoded session share: whole packets read from a
//! stream (raw chunks held until their main chunk), the gateway's injected packets, the packets
//! every direction acts on (`disconnect`, echoes of the gateway's own pings), and writing chunks.
//! The same behaviour as the plain splice ([`crate::relay::pump`]), on decoded packet types.

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use xgate_protocol::chunks::MAX_PENDING_CHUNKS;
use xgate_protocol::{
    peek_packet_type, Frame, FrameCodec, Packet, PacketReader, PacketType, ProtocolError, Value,
};

use crate::relay::pump::{own_packet, End, Finished, Inject, Watch, Wire};

/// Whole packets from one stream, as their chunks.
pub struct Packets<R> {
    /// The stream, split into chunks.
    frames: FramedRead<R, FrameCodec>,
    /// Raw chunks of the packet in progress (kept across cancelled reads).
    partial: Vec<Frame>,
    /// Decodes the packets the direction acts on.
    reader: PacketReader,
}

impl<R: AsyncRead + Unpin> Packets<R> {
    /// Reads `src`, starting with the bytes in `buf`; chunks over `max_size` are refused.
    pub fn new(src: R, buf: &BytesMut, max_size: u32) -> Self {
        let mut frames = FramedRead::new(src, FrameCodec::new(max_size));
        frames.read_buffer_mut().extend_from_slice(buf);
        Packets {
            frames,
            partial: Vec::new(),
            reader: PacketReader::new(max_size as usize),
        }
    }

    /// The next whole packet's chunks, its main chunk last. Cancel-safe: a packet's raw chunks
    /// read before a cancellation are kept for the next call.
    pub async fn next(&mut self) -> Result<Vec<Frame>, End> {
        loop {
            let frame = match self.frames.next().await {
                None => return Err(End::Eof),
                Some(Ok(f)) => f,
                Some(Err(ProtocolError::Io(e))) => return Err(End::Io(e)),
                Some(Err(e)) => return Err(End::Protocol(e.to_string())),
            };
            if frame.header.index == 0 {
                return Ok(self
                    .partial
                    .drain(..)
                    .chain(std::iter::once(frame))
                    .collect());
            }
            if self.partial.len() >= MAX_PENDING_CHUNKS {
                return Err(End::Protocol(
                    "too many raw chunks before a main chunk".into(),
                ));
            }
            self.partial.push(frame);
        }
    }

    /// Decodes a whole packet (its chunks from [`Packets::next`]).
    pub fn decode(&mut self, chunks: &[Frame]) -> Result<Packet, String> {
        let mut packet = None;
        for c in chunks {
            packet = self.reader.push(c.clone()).map_err(|e| e.to_string())?;
        }
        packet.ok_or_else(|| "no main chunk".to_string())
    }

    /// The stream back.
    pub fn into_inner(self) -> R {
        self.frames.into_inner()
    }

    /// How a direction that read these packets and wrote `dst` ended, with both streams.
    pub fn finish<W>(self, end: End, dst: W) -> Finished<R, W> {
        Finished {
            end,
            // Whole packets only: the destination is always between two of them.
            wire: Wire::Clean,
            src: self.into_inner(),
            dst,
            spliced: 0,
        }
    }
}

/// A packet's name, peeked from its main chunk; `Err` when the chunk is not xpra.
pub fn name(chunks: &[Frame]) -> Result<Option<String>, String> {
    let Some(main) = chunks.last() else {
        return Ok(None);
    };
    match peek_packet_type(main) {
        Ok(PacketType::Name(n)) => Ok(Some(n)),
        Ok(_) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether every direction acts on packets of this name ([`common`]).
pub fn is_common(name: &str) -> bool {
    matches!(
        name,
        "disconnect" | "connection-close" | "ping_echo" | "ping-echo"
    )
}

/// What a direction does with a packet every direction acts on.
pub enum Common {
    /// Relay it, then end the direction (`disconnect`); carries the reason.
    End(String),
    /// Drop it: an echo of the gateway's own ping (its sid at index 6).
    Swallow,
    /// Relay it.
    Forward,
}

/// Acts on `disconnect` and ping echoes (see [`is_common`]).
pub fn common(name: &str, packet: &Packet, watch: &Watch) -> Common {
    match name {
        "disconnect" | "connection-close" => Common::End(
            packet
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or("disconnect")
                .to_string(),
        ),
        _ if packet
            .get(6)
            .and_then(Value::as_str)
            .is_some_and(|s| s == watch.ping_sid) =>
        {
            Common::Swallow
        }
        _ => Common::Forward,
    }
}

/// Writes a packet of the gateway's own ([`Inject`]), encoded for this direction's destination;
/// `Some` when the direction must end. `open` turns false once the sender is gone.
pub async fn injected<W: AsyncWrite + Unpin>(
    msg: Option<Inject>,
    dst: &mut W,
    watch: &Watch,
    open: &mut bool,
) -> Option<End> {
    let (packet, last) = match msg {
        Some(Inject::Packet(p)) => (p, false),
        Some(Inject::Last(p)) => (p, true),
        None => {
            *open = false;
            return None;
        }
    };
    // This direction writes whole packets only: its wire is always between two of them.
    let chunks = own_packet(&watch.writer, Wire::Clean, packet).unwrap_or_default();
    let mut written = Ok(());
    for chunk in &chunks {
        written = dst.write_all(chunk).await;
        if written.is_err() {
            break;
        }
        watch.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    if !last {
        return written.err().map(End::Io);
    }
    let _ = dst.flush().await;
    Some(match written {
        Ok(()) => End::Stopped,
        Err(e) => End::Io(e),
    })
}

/// Does what [`common`] decided for a packet's chunks: relays them, drops them, or relays them and
/// ends the direction; `Some` when the direction must end.
pub async fn apply<W: AsyncWrite + Unpin>(
    common: Common,
    dst: &mut W,
    chunks: &[Frame],
    watch: &Watch,
) -> Option<End> {
    match common {
        Common::Forward => write_frames(dst, chunks, watch).await.err().map(End::Io),
        Common::Swallow => None,
        Common::End(reason) => Some(last(dst, chunks, watch, reason).await),
    }
}

/// Relays the chunks of a `disconnect`, then ends the direction.
pub async fn last<W: AsyncWrite + Unpin>(
    dst: &mut W,
    chunks: &[Frame],
    watch: &Watch,
    reason: String,
) -> End {
    let r = write_frames(dst, chunks, watch).await;
    let _ = dst.flush().await;
    match r {
        Ok(()) => End::Disconnect(reason),
        Err(e) => End::Io(e),
    }
}

/// Writes chunks and counts their bytes.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    dst: &mut W,
    frames: &[Frame],
    watch: &Watch,
) -> std::io::Result<()> {
    for f in frames {
        let wire = f.to_wire();
        dst.write_all(&wire).await?;
        watch.bytes.fetch_add(wire.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}
