//! The per-window bookkeeping of a re-encoded session: each window's framebuffer, the server
//! sequences it has composited, the frame it has at the EncoderPool, and its lossless refresh
//! (see [`super::direction`] for how the direction drives it). It decides what the client and
//! the server are sent; the direction does the I/O.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use tracing::{debug, info, warn};
use xgate_messages::encode::{
    DropStreams, EncodeFrame, EncodeRefused, Encoded, StreamKey, VideoCodec,
};
use xgate_protocol::Value;

use super::direction::Downstream;
use super::draw::{self, Content, ServerDraw};
use super::framebuffer::Framebuffer;

/// The most windows per connection that get a framebuffer; draws of further windows pass through.
pub const MAX_WINDOWS: usize = 32;
/// How long a frame refused for a full queue waits before it is offered again.
pub(super) const RETRY: Duration = Duration::from_millis(10);
/// The most server sequences waiting in one window before the oldest are acked as skipped.
const MAX_PENDING_SEQUENCES: usize = 256;

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
pub(super) type Answer =
    Pin<Box<dyn Future<Output = (u64, Result<Encoded, EncodeRefused>)> + Send>>;

/// The direction's state.
pub(super) struct State {
    /// Settings and channels.
    pub(super) down: Downstream,
    /// Windows by id.
    windows: HashMap<u64, Window>,
    /// Frames at the pool.
    pub(super) answers: FuturesUnordered<Answer>,
    /// When frames refused for a full queue are offered again, if some are.
    pub(super) retry_at: Option<Instant>,
    /// Acks the gateway owes the server (sequences it consumed without a client draw carrying
    /// them), sent after each packet.
    pub(super) acks: Vec<Value>,
    /// What happened to the server's draws, for the log.
    pub(super) counts: Counts,
}

/// What the direction did, logged when it ends (the integration tests read that line).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    /// Raw rgb draws composited.
    pub(super) composited: u64,
    /// `scroll` draws applied to a framebuffer.
    pub(super) scrolls: u64,
    /// Server draws passed through unchanged.
    pub(super) passed: u64,
    /// Video frames sent.
    pub(super) frames: u64,
    /// Lossless refreshes sent.
    pub(super) refreshes: u64,
}

impl State {
    /// The state of a direction that has seen no window yet.
    pub(super) fn new(down: Downstream) -> State {
        State {
            down,
            windows: HashMap::new(),
            answers: FuturesUnordered::new(),
            retry_at: None,
            acks: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// The client failed to decode a frame of this window (it acked -1): the stream is broken, so
    /// the next frame starts a new one. (The ack reaches the server too, which redraws the window.)
    pub(super) fn restart(&mut self, wid: u64) {
        if let Some(w) = self.windows.get_mut(&wid) {
            debug!(target: "xgate::encoder::relay", connection = self.down.connection, wid,
                "the client failed to decode: the next frame starts a new stream");
            w.keyframe = true;
        }
    }

    /// A window went away (`lost-window`): its state and its stream are dropped. Its pending
    /// sequences are not acked: the server forgot them with the window.
    pub(super) fn lost(&mut self, wid: u64) {
        if self.windows.remove(&wid).is_some() {
            self.down.drop_streams.do_send(DropStreams {
                connection: self.down.connection,
                window: Some(wid),
            });
        }
    }

    pub(super) fn encodable(&self, (w, h): (u32, u32)) -> bool {
        let min = match self.down.codec {
            // openh264 needs 32x32; the crop to even sizes must leave that.
            VideoCodec::H264 => 33,
            VideoCodec::Vp8 | VideoCodec::Vp9 => 16,
        };
        w >= min && h >= min && w <= self.down.max_size.0 && h <= self.down.max_size.1
    }

    /// Creates or resizes a window's state.
    pub(super) fn size_window(&mut self, wid: u64, size: (u32, u32)) {
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
    pub(super) fn composite(&mut self, d: &ServerDraw) -> Result<bool, String> {
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
    pub(super) fn submit(&mut self, wid: u64) {
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
    pub(super) fn trim_pending(&mut self, wid: u64) {
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
    pub(super) fn answered(
        &mut self,
        wid: u64,
        answer: Result<Encoded, EncodeRefused>,
    ) -> Vec<Value> {
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
    pub(super) fn count_passed(&mut self) {
        self.counts.passed += 1;
    }

    /// When the next timer is due: a retry or a refresh.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter_map(|w| w.refresh_at)
            .chain(self.retry_at)
            .min()
    }

    /// Runs what is due at `now`: frames waiting for a retry go to the pool again, and idle
    /// windows get their lossless refresh (returned for the client).
    pub(super) fn timers(&mut self, now: Instant) -> Vec<Value> {
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
            if w.refresh_at.is_none_or(|t| t > now) {
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
