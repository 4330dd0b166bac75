//! The server-to-client direction of a re-encoded session.
//!
//! Chunks are read with the protocol's [`FrameCodec`]; a main chunk's type is peeked, and only the
//! packets the gateway acts on are decoded: `draw` (raw rgb and `scroll` draws are composited into
//! the window's framebuffer, other codings pass through), and the window lifecycle packets
//! (`new-window`, `new-override-redirect`, `window-resized`, `window-move-resize`: the
//! framebuffer follows the size and the encoder restarts at the new size; `lost-window`: the
//! window's state and stream are dropped). Everything else is relayed as it came.
//!
//! When an update is complete (a draw without `flush` > 0), the window's whole framebuffer goes to
//! the EncoderPool. A window has at most one frame at the pool: updates arriving meanwhile are
//! composited and sent as one frame when it returns, so memory stays at one framebuffer (and one
//! copy at the pool) per window, at most [`super::windows::MAX_WINDOWS`] windows per connection. The video draw
//! carries the newest server `packet_sequence` it covers; the older ones it covers are acked to
//! the server at once with decode time 0 ("skipped"), so every server draw is acked exactly once
//! and the server stays paced by the client's own acks. When the pool's queue is full the frame
//! is retried shortly (backpressure); when the pool cannot encode it, the framebuffer goes to
//! the client as an lz4 rgb draw.
//!
//! Video is lossy; the real server will not refresh it, since it sent lossless rgb. So, as
//! xpra's own servers do after lossy frames, a window whose video has been idle for the client's
//! `auto_refresh_delay` gets its framebuffer once as a lossless rgb draw. That draw carries the
//! sequence of the window's last video frame: the server takes the second ack of a sequence as
//! unknown and ignores it.

use std::time::{Duration, Instant};

use actix::Recipient;
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use xgate_messages::encode::{DropStreams, EncodeFrame, VideoCodec};
use xgate_protocol::{Frame, PacketWriter, Value};

use super::draw;
use super::packets::{self, Common, Packets};
use super::windows::{State, RETRY};
use crate::relay::pump::{End, Finished, Inject, Watch};

/// What the re-encoding direction needs besides its streams.
pub struct Downstream {
    /// The gateway's connection id (the EncoderPool's stream key).
    pub connection: u64,
    /// The codec the client decodes.
    pub codec: VideoCodec,
    /// The client's largest video size; larger windows pass through as rgb.
    pub max_size: (u32, u32),
    /// Where frames are encoded.
    pub encode: Recipient<EncodeFrame>,
    /// Told when windows (or the connection) go away.
    pub drop_streams: Recipient<DropStreams>,
    /// How packets are written to the client.
    pub client_writer: PacketWriter,
    /// The client-to-server direction's injection channel (for the gateway's acks).
    pub to_server: mpsc::Sender<Inject>,
    /// How long a window's video stays idle before its lossless refresh (the client's
    /// `auto_refresh_delay`); `None`: never refresh.
    pub refresh_delay: Option<Duration>,
    /// Windows whose video the client failed to decode, from the client-to-server direction
    /// ([`super::acks`]): their next frame starts a new stream.
    pub decode_errors: Option<mpsc::Receiver<u64>>,
}

/// Relays the server's packets to the client, re-encoding its raw draws, until one side ends.
/// `buf` holds bytes already read from `src`. The same contract as [`crate::relay::pump::pump`].
pub async fn pump<R, W>(
    src: R,
    mut dst: W,
    buf: BytesMut,
    watch: Watch,
    mut inject: mpsc::Receiver<Inject>,
    mut down: Downstream,
) -> Finished<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut packets = Packets::new(src, &buf, watch.max_size);
    let mut decode_errors = down.decode_errors.take();
    let mut st = State::new(down);
    let mut inject_open = true;
    let end = loop {
        if !st.acks.is_empty() {
            ack(&st.down, std::mem::take(&mut st.acks)).await;
        }
        let deadline = st.next_deadline();
        let timer = tokio::time::sleep_until(
            deadline.map_or_else(|| tokio::time::Instant::now() + RETRY, Into::into),
        );
        tokio::select! {
            biased;
            msg = inject.recv(), if inject_open => {
                if let Some(end) = packets::injected(msg, &mut dst, &watch, &mut inject_open).await {
                    break end;
                }
            }
            Some(wid) = recv(&mut decode_errors), if decode_errors.is_some() => st.restart(wid),
            Some((wid, answer)) = st.answers.next(), if !st.answers.is_empty() => {
                let to_client = st.answered(wid, answer);
                if let Err(e) = send(&mut dst, &st.down.client_writer, &to_client, &watch).await {
                    break End::Io(e);
                }
                st.submit(wid);
            }
            _ = timer, if deadline.is_some() => {
                let refreshes = st.timers(Instant::now());
                if let Err(e) = send(&mut dst, &st.down.client_writer, &refreshes, &watch).await {
                    break End::Io(e);
                }
            }
            next = packets.next() => {
                let chunks = match next {
                    Ok(c) => c,
                    Err(end) => break end,
                };
                match handle(&mut st, &mut packets, &chunks, &watch) {
                    Handled::Common(common) => {
                        if let Some(end) = packets::apply(common, &mut dst, &chunks, &watch).await {
                            break end;
                        }
                    }
                    Handled::Consumed(wid) => st.submit(wid),
                    Handled::Invalid(e) => break End::Protocol(e),
                }
            }
        }
    };
    packets.finish(end, dst)
}

/// The next window whose stream the client failed to decode (`None` forever without a channel).
async fn recv(errors: &mut Option<mpsc::Receiver<u64>>) -> Option<u64> {
    match errors {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What became of one packet from the server.
enum Handled {
    /// Relayed, dropped or ending the direction, as for every direction's packets.
    Common(Common),
    /// Composited into this window's framebuffer.
    Consumed(u64),
    /// Not xpra.
    Invalid(String),
}

/// Counts a server draw relayed unchanged, and relays it.
fn passed(st: &mut State) -> Handled {
    st.count_passed();
    Handled::Common(Common::Forward)
}

fn handle<R: AsyncRead + Unpin>(
    st: &mut State,
    packets: &mut Packets<R>,
    chunks: &[Frame],
    watch: &Watch,
) -> Handled {
    let name = match packets::name(chunks) {
        Ok(Some(n)) => n,
        Ok(None) => return Handled::Common(Common::Forward),
        Err(e) => return Handled::Invalid(e),
    };
    let acts = packets::is_common(&name)
        || matches!(
            name.as_str(),
            "draw"
                | "new-window"
                | "new-override-redirect"
                | "window-resized"
                | "window-move-resize"
                | "lost-window"
        );
    if !acts {
        return Handled::Common(Common::Forward);
    }
    let packet = match packets.decode(chunks) {
        Ok(p) => p,
        Err(e) => return Handled::Invalid(e),
    };
    let int = |i: usize| packet.get(i).and_then(Value::as_int);
    let wid = int(1).and_then(|w| u64::try_from(w).ok());
    let dims =
        |wi: usize, hi: usize| Some((u32::try_from(int(wi)?).ok()?, u32::try_from(int(hi)?).ok()?));
    match name.as_str() {
        "draw" => {
            let Some(coding) = draw::coding(&packet) else {
                return passed(st);
            };
            if !draw::is_composited(coding) {
                return passed(st);
            }
            let parsed = match draw::parse(&packet, watch.max_size as usize) {
                Ok(d) => d,
                Err(e) => {
                    debug!(target: "xgate::encoder::relay", ?wid, "draw passed through: {e}");
                    return passed(st);
                }
            };
            match st.composite(&parsed) {
                Ok(true) => {
                    st.trim_pending(parsed.wid);
                    Handled::Consumed(parsed.wid)
                }
                Ok(false) => passed(st),
                Err(e) => {
                    debug!(target: "xgate::encoder::relay", wid = parsed.wid, "draw passed through: {e}");
                    passed(st)
                }
            }
        }
        "new-window" | "new-override-redirect" | "window-move-resize" | "window-resized" => {
            // window-resized carries only the size; the others the geometry x, y, w, h.
            let size = if name == "window-resized" {
                dims(2, 3)
            } else {
                dims(4, 5)
            };
            if let (Some(wid), Some(size)) = (wid, size) {
                st.size_window(wid, size);
            }
            Handled::Common(Common::Forward)
        }
        "lost-window" => {
            if let Some(wid) = wid {
                st.lost(wid);
            }
            Handled::Common(Common::Forward)
        }
        _ => Handled::Common(packets::common(&name, &packet, watch)),
    }
}

/// Writes the gateway's own draws to the client. Their data travels inline in the main chunk,
/// as xpra's servers send video frames up to 32 KiB: a 6.5.5 client hands an uncompressed raw
/// chunk to its decoder as a `memoryview`, which its vpx decoder rejects ("expected bytes").
async fn send<W: AsyncWrite + Unpin>(
    dst: &mut W,
    writer: &PacketWriter,
    packets: &[Value],
    watch: &Watch,
) -> std::io::Result<()> {
    let writer = PacketWriter {
        chunks: false,
        ..*writer
    };
    for p in packets {
        match writer.encode(p) {
            Ok(frames) => packets::write_frames(dst, &frames, watch).await?,
            Err(e) => {
                warn!(target: "xgate::encoder::relay", "cannot encode a draw for the client: {e}")
            }
        }
    }
    Ok(())
}

/// Sends the gateway's acks to the server through the client-to-server direction.
async fn ack(down: &Downstream, acks: Vec<Value>) {
    for a in acks {
        let _ = down.to_server.send(Inject::Packet(a)).await;
    }
}
