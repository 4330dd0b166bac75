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
//! copy at the pool) per window, at most [`MAX_WINDOWS`] windows per connection. The video draw
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

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::Recipient;
use bytes::BytesMut;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};
use xgate_messages::encode::{
    DropStreams, EncodeFrame, EncodeRefused, Encoded, StreamKey, VideoCodec,
};
use xgate_protocol::{
    peek_packet_type, Frame, FrameCodec, Packet, PacketReader, PacketType, PacketWriter,
    ProtocolError, Value,
};

use super::draw::{self, Content, ServerDraw};
use super::framebuffer::Framebuffer;
use crate::relay::pump::{End, Inject, Watch};

/// The most windows per connection that get a framebuffer; draws of further windows pass through.
pub const MAX_WINDOWS: usize = 32;
/// How long a frame refused for a full queue waits before it is offered again.
const RETRY: Duration = Duration::from_millis(10);
/// The most server sequences waiting in one window before the oldest are acked as skipped.
const MAX_PENDING_SEQUENCES: usize = 256;

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
    /// How the gateway's own acks are written to the server.
    pub server_writer: PacketWriter,
    /// The client-to-server direction's injection channel (for the gateway's acks).
    pub to_server: mpsc::Sender<Inject>,
    /// How long a window's video stays idle before its lossless refresh (the client's
    /// `auto_refresh_delay`); `None`: never refresh.
    pub refresh_delay: Option<Duration>,
}

/// One window's state.
struct Window {
    /// Its picture; `None` while it is too small or too large to encode (draws pass through).
    fb: Option<Framebuffer>,
    /// Its size, as the server last said.
    size: (u32, u32),
    /// Server sequences composited since the last frame was handed to the pool.
    pending: Vec<u64>,
    /// Whether an update is complete and waits to be encoded.
    ready: bool,
    /// Server sequences covered by the frame at the pool, if one is there.
    in_flight: Option<Vec<u64>>,
    /// Start a new stream with the next frame.
    keyframe: bool,
    /// When the lossless refresh is due (the last video frame's time plus the refresh delay).
    refresh_at: Option<Instant>,
    /// The server sequence of the last video frame sent (the refresh draw carries it).
    last_sequence: u64,
}

/// An answer from the pool, with its window.
type Answer = Pin<Box<dyn Future<Output = (u64, Result<Encoded, EncodeRefused>)> + Send>>;

/// The direction's state.
struct State {
    /// Settings and channels.
    down: Downstream,
    /// Windows by id.
    windows: HashMap<u64, Window>,
    /// Frames at the pool.
    answers: FuturesUnordered<Answer>,
    /// When frames refused for a full queue are offered again, if some are.
    retry_at: Option<Instant>,
    /// Acks the gateway owes the server (sequences it consumed without a client draw carrying
    /// them), sent after each packet.
    acks: Vec<Value>,
    /// What happened to the server's draws, for the log.
    counts: Counts,
}

/// What the direction did, logged when it ends (and used by the tests).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Raw rgb draws composited.
    composited: u64,
    /// `scroll` draws applied to a framebuffer.
    scrolls: u64,
    /// Server draws passed through unchanged.
    passed: u64,
    /// Video frames sent.
    frames: u64,
    /// Lossless refreshes sent.
    refreshes: u64,
}

impl State {
    fn encodable(&self, (w, h): (u32, u32)) -> bool {
        let min = match self.down.codec {
            // openh264 needs 32x32; the crop to even sizes must leave that.
            VideoCodec::H264 => 33,
            VideoCodec::Vp8 | VideoCodec::Vp9 => 16,
        };
        w >= min && h >= min && w <= self.down.max_size.0 && h <= self.down.max_size.1
    }

    /// Creates or resizes a window's state.
    fn size_window(&mut self, wid: u64, size: (u32, u32)) {
        let encodable = self.encodable(size);
        if !self.windows.contains_key(&wid) && self.windows.len() >= MAX_WINDOWS {
            debug!(target: "xgate::encoder::relay", wid, "window limit reached: its draws pass through");
            return;
        }
        let w = self.windows.entry(wid).or_insert_with(|| Window {
            fb: None,
            size,
            pending: Vec::new(),
            ready: false,
            in_flight: None,
            keyframe: true,
            refresh_at: None,
            last_sequence: 0,
        });
        w.size = size;
        match (&mut w.fb, encodable) {
            (Some(fb), true) => fb.resize(size.0, size.1),
            (fb @ None, true) => {
                *fb = Some(Framebuffer::new(size.0, size.1));
                w.keyframe = true;
            }
            (fb, false) => {
                if fb.take().is_some() {
                    // Updates composited but not encoded are given up; the server is told.
                    w.ready = false;
                    w.refresh_at = None;
                    let (ww, wh) = size;
                    self.acks.extend(
                        w.pending
                            .drain(..)
                            .map(|s| draw::skipped_ack(s, wid, ww, wh)),
                    );
                }
            }
        }
    }

    /// Composites a server draw; `false` when the window is not re-encoded (pass it through).
    fn composite(&mut self, d: &ServerDraw) -> Result<bool, String> {
        if let Some(size) = d.window_size {
            if self.windows.get(&d.wid).map(|w| w.size) != Some(size) {
                self.size_window(d.wid, size);
            }
        }
        let Some(w) = self.windows.get_mut(&d.wid) else {
            return Ok(false);
        };
        let Some(fb) = w.fb.as_mut() else {
            return Ok(false);
        };
        let r = match &d.content {
            Content::Pixels {
                format,
                stride,
                data,
            } => fb.paint((d.x, d.y, d.w, d.h), *format, *stride, data),
            Content::Scroll(entries) => entries
                .iter()
                .try_for_each(|&(x, y, sw, sh, dx, dy)| fb.scroll(x, y, sw, sh, dx, dy)),
        };
        r.map_err(|e| e.to_string())?;
        match d.content {
            Content::Pixels { .. } => self.counts.composited += 1,
            Content::Scroll(_) => self.counts.scrolls += 1,
        }
        // A new picture is coming: the refresh waits for its frame.
        w.refresh_at = None;
        w.pending.push(d.sequence);
        if !d.more_follow {
            w.ready = true;
        }
        Ok(true)
    }

    /// Hands a window's complete update to the pool, unless a frame of it is there already.
    fn submit(&mut self, wid: u64) {
        let Some(w) = self.windows.get_mut(&wid) else {
            return;
        };
        if w.in_flight.is_some() || !w.ready || w.pending.is_empty() {
            return;
        }
        let Some(fb) = w.fb.as_ref() else {
            return;
        };
        let sequences = std::mem::take(&mut w.pending);
        let tag = sequences.last().copied().unwrap_or(0);
        let request = EncodeFrame {
            key: StreamKey {
                connection: self.down.connection,
                window: wid,
            },
            codec: self.down.codec,
            frame: fb.frame(),
            keyframe: std::mem::take(&mut w.keyframe),
            tag,
        };
        w.in_flight = Some(sequences);
        w.ready = false;
        let encode = self.down.encode.clone();
        self.answers.push(Box::pin(async move {
            let answer = encode
                .send(request)
                .await
                .unwrap_or(Err(EncodeRefused::Unavailable));
            (wid, answer)
        }));
    }

    /// Bounds a window's waiting sequences: the oldest are acked as skipped.
    fn trim_pending(&mut self, wid: u64) {
        let Some(w) = self.windows.get_mut(&wid) else {
            return;
        };
        if w.pending.len() <= MAX_PENDING_SEQUENCES {
            return;
        }
        let extra = w.pending.len() - MAX_PENDING_SEQUENCES;
        let (ww, wh) = w.size;
        self.acks.extend(
            w.pending
                .drain(..extra)
                .map(|s| draw::skipped_ack(s, wid, ww, wh)),
        );
    }

    /// The packets for the client that a pool answer makes (acks for the server go to
    /// `self.acks`).
    fn answered(&mut self, wid: u64, answer: Result<Encoded, EncodeRefused>) -> Vec<Value> {
        let Some(w) = self.windows.get_mut(&wid) else {
            // The window went away meanwhile: the server forgot its sequences.
            return Vec::new();
        };
        let covered = w.in_flight.take().unwrap_or_default();
        let mut to_client = Vec::new();
        let Some(fb) = w.fb.as_ref() else {
            // The window stopped being encodable meanwhile: its draws pass through now.
            let (ww, wh) = w.size;
            self.acks
                .extend(covered.iter().map(|&s| draw::skipped_ack(s, wid, ww, wh)));
            return to_client;
        };
        let size = fb.size();
        let Some((&carried, older)) = covered.split_last() else {
            return to_client;
        };
        match answer {
            Ok(frame) => {
                let right =
                    (frame.width < size.0).then(|| (frame.width, 0, size.0 - frame.width, size.1));
                let bottom = (frame.height < size.1)
                    .then(|| (0, frame.height, frame.width, size.1 - frame.height));
                let edges: Vec<_> = right.into_iter().chain(bottom).collect();
                let mut flush = edges.len() as u32;
                to_client.push(draw::video(wid, carried, &frame, size, flush));
                for (x, y, ew, eh) in edges {
                    flush -= 1;
                    let pixels = fb.region(x, y, ew, eh);
                    to_client.push(draw::rgb(wid, (x, y, ew, eh), carried, pixels, size, flush));
                }
                w.last_sequence = carried;
                w.refresh_at = self.down.refresh_delay.map(|d| Instant::now() + d);
                if self.counts.frames == 0 {
                    info!(target: "xgate::encoder::relay", connection = self.down.connection, wid,
                        codec = frame.codec.xpra_name(), encoder = frame.encoder,
                        width = frame.width, height = frame.height, "first re-encoded frame");
                }
                self.counts.frames += 1;
            }
            Err(EncodeRefused::QueueFull | EncodeRefused::Coalesced) => {
                // Backpressure: the same picture (with what arrived since) is offered again.
                let mut again = covered;
                again.append(&mut w.pending);
                w.pending = again;
                w.ready = true;
                self.retry_at = Some(Instant::now() + RETRY);
                return to_client;
            }
            Err(why) => {
                warn!(target: "xgate::encoder::relay", connection = self.down.connection, wid,
                    "frame not encoded ({why}): sent as rgb");
                w.keyframe = true;
                let pixels = fb.region(0, 0, size.0, size.1);
                to_client.push(draw::rgb(
                    wid,
                    (0, 0, size.0, size.1),
                    carried,
                    pixels,
                    size,
                    0,
                ));
            }
        }
        self.acks.extend(
            older
                .iter()
                .map(|&s| draw::skipped_ack(s, wid, size.0, size.1)),
        );
        to_client
    }

    /// Counts a server draw relayed unchanged.
    fn passed(&mut self) -> Handled {
        self.counts.passed += 1;
        Handled::Forward
    }

    /// When the next timer is due: a retry or a refresh.
    fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter_map(|w| w.refresh_at)
            .chain(self.retry_at)
            .min()
    }

    /// Runs what is due at `now`: frames waiting for a retry go to the pool again, and idle
    /// windows get their lossless refresh (returned for the client).
    fn timers(&mut self, now: Instant) -> Vec<Value> {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            let waiting: Vec<u64> = self
                .windows
                .iter()
                .filter(|(_, w)| w.ready && w.in_flight.is_none())
                .map(|(id, _)| *id)
                .collect();
            for wid in waiting {
                self.submit(wid);
            }
        }
        let mut refreshes = Vec::new();
        for (&wid, w) in &mut self.windows {
            if !w.refresh_at.is_some_and(|t| t <= now) {
                continue;
            }
            w.refresh_at = None;
            if w.in_flight.is_some() || !w.pending.is_empty() {
                continue;
            }
            if let Some(fb) = &w.fb {
                let (ww, wh) = fb.size();
                let pixels = fb.region(0, 0, ww, wh);
                self.counts.refreshes += 1;
                refreshes.push(draw::rgb(
                    wid,
                    (0, 0, ww, wh),
                    w.last_sequence,
                    pixels,
                    (ww, wh),
                    0,
                ));
            }
        }
        refreshes
    }
}

/// Relays the server's packets to the client, re-encoding its raw draws, until one side ends.
/// `buf` holds bytes already read from `src`. The same contract as [`crate::relay::pump::pump`].
pub async fn pump<R, W>(
    src: R,
    mut dst: W,
    buf: BytesMut,
    watch: Watch,
    mut inject: mpsc::Receiver<Inject>,
    down: Downstream,
) -> (End, R, W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = FramedRead::new(src, FrameCodec::new(watch.max_size));
    frames.read_buffer_mut().extend_from_slice(&buf);
    let mut reader = PacketReader::new(watch.max_size as usize);
    let mut st = State {
        down,
        windows: HashMap::new(),
        answers: FuturesUnordered::new(),
        retry_at: None,
        acks: Vec::new(),
        counts: Counts::default(),
    };
    let mut partial: Vec<Frame> = Vec::new();
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
            msg = inject.recv(), if inject_open => match msg {
                Some(Inject::Packet(f)) => {
                    if let Err(e) = write_frames(&mut dst, &f, &watch).await {
                        break End::Io(e);
                    }
                }
                Some(Inject::Last(f)) => {
                    let r = write_frames(&mut dst, &f, &watch).await;
                    let _ = dst.flush().await;
                    break match r {
                        Ok(()) => End::Stopped,
                        Err(e) => End::Io(e),
                    };
                }
                None => inject_open = false,
            },
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
            next = frames.next() => {
                let frame = match next {
                    None => break End::Eof,
                    Some(Ok(f)) => f,
                    Some(Err(ProtocolError::Io(e))) => break End::Io(e),
                    Some(Err(e)) => break End::Protocol(e.to_string()),
                };
                if frame.header.index != 0 {
                    if partial.len() >= xgate_protocol::chunks::MAX_PENDING_CHUNKS {
                        break End::Protocol("too many raw chunks before a main chunk".into());
                    }
                    partial.push(frame);
                    continue;
                }
                let chunks: Vec<Frame> = partial.drain(..).chain(std::iter::once(frame)).collect();
                match handle(&mut st, &mut reader, &chunks, &watch) {
                    Handled::Forward => {
                        if let Err(e) = write_frames(&mut dst, &chunks, &watch).await {
                            break End::Io(e);
                        }
                    }
                    Handled::Swallow => {}
                    Handled::Consumed(wid) => st.submit(wid),
                    Handled::End(reason) => {
                        let r = write_frames(&mut dst, &chunks, &watch).await;
                        let _ = dst.flush().await;
                        break match r {
                            Ok(()) => End::Disconnect(reason),
                            Err(e) => End::Io(e),
                        };
                    }
                    Handled::Invalid(e) => break End::Protocol(e),
                }
            }
        }
    };
    (end, frames.into_inner(), dst)
}

impl Drop for State {
    /// The direction ended (or the splice dropped it): the connection's streams are freed at once
    /// rather than at the pool's idle timeout, and the log says what the direction did.
    fn drop(&mut self) {
        let connection = self.down.connection;
        self.down.drop_streams.do_send(DropStreams {
            connection,
            window: None,
        });
        let c = self.counts;
        info!(target: "xgate::encoder::relay", connection, frames = c.frames,
            composited = c.composited, scrolls = c.scrolls, passed_through = c.passed,
            refreshes = c.refreshes, "re-encoding direction ended");
    }
}

/// What became of one packet from the server.
enum Handled {
    /// Relay its chunks unchanged.
    Forward,
    /// Drop it (an echo of the gateway's own ping).
    Swallow,
    /// Composited into this window's framebuffer.
    Consumed(u64),
    /// Relay it, then end the direction (`disconnect`); carries the reason.
    End(String),
    /// Not xpra.
    Invalid(String),
}

fn decode(reader: &mut PacketReader, chunks: &[Frame]) -> Result<Packet, String> {
    let mut packet = None;
    for c in chunks {
        packet = reader.push(c.clone()).map_err(|e| e.to_string())?;
    }
    packet.ok_or_else(|| "no main chunk".to_string())
}

fn handle(st: &mut State, reader: &mut PacketReader, chunks: &[Frame], watch: &Watch) -> Handled {
    let Some(main) = chunks.last() else {
        return Handled::Forward;
    };
    let name = match peek_packet_type(main) {
        Ok(PacketType::Name(n)) => n,
        Ok(_) => return Handled::Forward,
        Err(e) => return Handled::Invalid(e.to_string()),
    };
    let acts = matches!(
        name.as_str(),
        "draw"
            | "new-window"
            | "new-override-redirect"
            | "window-resized"
            | "window-move-resize"
            | "lost-window"
            | "disconnect"
            | "connection-close"
            | "ping_echo"
            | "ping-echo"
    );
    if !acts {
        return Handled::Forward;
    }
    let packet = match decode(reader, chunks) {
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
                return st.passed();
            };
            if !draw::is_composited(coding) {
                return st.passed();
            }
            let parsed = match draw::parse(&packet, watch.max_size as usize) {
                Ok(d) => d,
                Err(e) => {
                    debug!(target: "xgate::encoder::relay", ?wid, "draw passed through: {e}");
                    return st.passed();
                }
            };
            match st.composite(&parsed) {
                Ok(true) => {
                    st.trim_pending(parsed.wid);
                    Handled::Consumed(parsed.wid)
                }
                Ok(false) => st.passed(),
                Err(e) => {
                    debug!(target: "xgate::encoder::relay", wid = parsed.wid, "draw passed through: {e}");
                    st.passed()
                }
            }
        }
        "new-window" | "new-override-redirect" => {
            if let (Some(wid), Some(size)) = (wid, dims(4, 5)) {
                st.size_window(wid, size);
            }
            Handled::Forward
        }
        "window-resized" => {
            if let (Some(wid), Some(size)) = (wid, dims(2, 3)) {
                st.size_window(wid, size);
            }
            Handled::Forward
        }
        "window-move-resize" => {
            if let (Some(wid), Some(size)) = (wid, dims(4, 5)) {
                st.size_window(wid, size);
            }
            Handled::Forward
        }
        "lost-window" => {
            if let Some(wid) = wid {
                if st.windows.remove(&wid).is_some() {
                    st.down.drop_streams.do_send(DropStreams {
                        connection: st.down.connection,
                        window: Some(wid),
                    });
                }
            }
            Handled::Forward
        }
        "disconnect" | "connection-close" => Handled::End(
            packet
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or("disconnect")
                .to_string(),
        ),
        _ => {
            // A ping echo: the gateway's own (its sid at index 6) is not relayed.
            let ours = packet
                .get(6)
                .and_then(Value::as_str)
                .is_some_and(|s| s == watch.ping_sid);
            if ours {
                Handled::Swallow
            } else {
                Handled::Forward
            }
        }
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
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
            Ok(frames) => write_frames(dst, &frames, watch).await?,
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
        if let Ok(frames) = down.server_writer.encode(&a) {
            let _ = down.to_server.send(Inject::Packet(frames)).await;
        }
    }
}
