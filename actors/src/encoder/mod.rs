//! The EncoderPool: turns raw window frames into the video frames xpra's clients decode.
//!
//! - [`probe`]: at start, which encoders open here and why the others do not (for example
//!   `h264_nvenc`: "no libcuda.so.1: the NVIDIA driver is not installed"); logged and kept in
//!   [`EncoderInfo`].
//! - [`worker`]: encode workers, each a `SyncArbiter` thread owning the encoder state of the
//!   streams (one per connection and window) routed to it by hash. A stream is re-created when its
//!   size, pixel format or codec changes (or a keyframe is asked for) and dropped after an idle
//!   timeout or on [`DropStreams`].
//! - [`stream`]: one stream on FFmpeg: swscale to limited-range BT.601 YUV420P, then `h264_nvenc`
//!   or `libx264` (ultrafast, zerolatency; Annex-B with in-band SPS/PPS), or libvpx VP8/VP9
//!   (realtime, no lag) for clients without an H.264 decoder.
//! - [`capture`]: an X display (Xvfb) as a frame source, for tests and benchmarks.
//!
//! Backpressure: the pool holds at most `queue_limit` waiting frames (all streams together) plus
//! one in flight per worker. A frame whose stream already has one waiting replaces it (the older
//! request is answered [`EncodeRefused::Coalesced`] and its tag travels in the newer frame's
//! [`Encoded::covers`]); a frame of another stream finding the queue full is refused at once with
//! [`EncodeRefused::QueueFull`]. Memory is bounded by `(queue_limit + workers)` frames.

pub mod capture;
#[cfg(any(test, feature = "test-support"))]
pub mod decode;
pub mod error;
pub mod probe;
pub mod stream;
pub mod worker;

#[cfg(test)]
mod tests;

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::{info, warn};
use xgate_messages::encode::{
    DropStreams, EncodeFrame, EncodeRefused, Encoded, EncoderCounters, EncoderInfo, EncoderStatus,
    GetEncoderInfo, VideoCodec,
};

pub use capture::X11Capture;
pub use error::{CaptureError, EncoderError};
pub use stream::StreamEncoder;
use worker::{EncodeWorker, Forget, Job, Shared, Sweep};

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct EncoderSettings {
    /// Encoders in order of preference (`video-encoders`); per codec, the first that works is used.
    /// VP8/VP9 (`libvpx`, `libvpx-vp9`) are added when not named.
    pub encoders: Vec<String>,
    /// Worker threads.
    pub workers: usize,
    /// The most frames waiting (all streams together).
    pub queue_limit: usize,
    /// A stream unused this long is dropped (xpra's own proxy used 5 s).
    pub idle_timeout: Duration,
    /// The most NVENC sessions open at once (consumer NVIDIA GPUs limit them; xpra used 3).
    pub max_nvenc_sessions: u64,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        EncoderSettings {
            encoders: xgate_config::DEFAULT_VIDEO_ENCODERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            workers,
            queue_limit: 4 * workers,
            idle_timeout: Duration::from_secs(5),
            max_nvenc_sessions: 3,
        }
    }
}

impl EncoderSettings {
    /// The defaults with the configuration's `video-encoders`.
    pub fn from_config(config: &xgate_config::Config) -> Self {
        EncoderSettings {
            encoders: config.video_encoders.clone(),
            ..EncoderSettings::default()
        }
    }
}

/// A frame waiting for its worker.
struct Pending {
    /// The request.
    request: EncodeFrame,
    /// Tags of the older frames it replaced.
    covers: Vec<u64>,
    /// When it arrived.
    queued_at: Instant,
    /// Where its answer goes.
    reply: oneshot::Sender<Result<Encoded, EncodeRefused>>,
}

/// The EncoderPool actor (a permanent singleton on an async arbiter; the work runs on its workers).
pub struct EncoderPool {
    /// Settings.
    settings: EncoderSettings,
    /// The probe's findings, in order of preference.
    statuses: Vec<EncoderStatus>,
    /// Encoder order and live counts, shared with the workers.
    shared: Arc<Shared>,
    /// The workers' addresses (started in `started`).
    workers: Vec<Addr<EncodeWorker>>,
    /// Frames waiting, per worker.
    queues: Vec<VecDeque<Pending>>,
    /// Whether each worker has a frame in flight.
    busy: Vec<bool>,
    /// Frames waiting, all queues together.
    waiting: usize,
    /// Counters (streams and NVENC sessions live in `shared`).
    counters: EncoderCounters,
}

impl EncoderPool {
    /// Probes the encoders (blocking, a few milliseconds per encoder on a CPU) and logs which one
    /// each codec will use and why the others will not. The workers start with the actor.
    pub fn new(settings: EncoderSettings) -> Self {
        let order = probe::probe_order(&settings.encoders);
        let statuses = probe::probe(&order);
        Self::with_statuses(settings, statuses)
    }

    /// A pool over already probed encoders (tests: pretend an encoder is missing).
    pub fn with_statuses(settings: EncoderSettings, statuses: Vec<EncoderStatus>) -> Self {
        let pick = |codec: VideoCodec| -> Vec<&'static str> {
            statuses
                .iter()
                .filter(|s| s.available && s.codec == codec.xpra_name())
                .filter_map(|s| stream::static_name(&s.name))
                .collect()
        };
        let shared = Arc::new(Shared {
            h264: pick(VideoCodec::H264),
            vp8: pick(VideoCodec::Vp8),
            vp9: pick(VideoCodec::Vp9),
            max_nvenc_sessions: settings.max_nvenc_sessions,
            nvenc_sessions: AtomicU64::new(0),
            nvenc_limited: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            idle_timeout: settings.idle_timeout,
        });
        for s in &statuses {
            match (&s.available, &s.reason) {
                (true, _) => {
                    info!(target: "xgate::encoder", encoder = %s.name, codec = %s.codec, "available")
                }
                (false, Some(why)) => {
                    info!(target: "xgate::encoder", encoder = %s.name, codec = %s.codec, "not available: {why}")
                }
                (false, None) => {
                    info!(target: "xgate::encoder", encoder = %s.name, "not available")
                }
            }
        }
        match probe::active_for(&statuses, VideoCodec::H264) {
            Some(active) => {
                let skipped: Vec<String> = statuses
                    .iter()
                    .take_while(|s| s.name != active)
                    .filter(|s| s.codec == "h264")
                    .map(|s| format!("{} ({})", s.name, s.reason.as_deref().unwrap_or("?")))
                    .collect();
                if skipped.is_empty() {
                    info!(target: "xgate::encoder", "H.264 encoder: {active}");
                } else {
                    info!(target: "xgate::encoder", "H.264 encoder: {active}; not used: {}", skipped.join(", "));
                }
            }
            None => {
                warn!(target: "xgate::encoder", "no H.264 encoder works: H.264 clients get VP8/VP9 or rgb")
            }
        }
        let workers = settings.workers.max(1);
        EncoderPool {
            queues: (0..workers).map(|_| VecDeque::new()).collect(),
            busy: vec![false; workers],
            settings: EncoderSettings {
                workers,
                ..settings
            },
            statuses,
            shared,
            workers: Vec::new(),
            waiting: 0,
            counters: EncoderCounters::default(),
        }
    }

    /// The probe's findings.
    pub fn statuses(&self) -> &[EncoderStatus] {
        &self.statuses
    }

    /// The info snapshot.
    fn info(&self) -> EncoderInfo {
        let mut counters = self.counters.clone();
        counters.queue_depth = self.waiting as u64;
        counters.streams = self.shared.streams.load(Ordering::Relaxed);
        counters.nvenc_sessions = self.shared.nvenc_sessions.load(Ordering::Relaxed);
        counters.nvenc_limited = self.shared.nvenc_limited.load(Ordering::Relaxed);
        EncoderInfo {
            active_h264: probe::active_for(&self.statuses, VideoCodec::H264),
            encoders: self.statuses.clone(),
            workers: self.settings.workers,
            queue_limit: self.settings.queue_limit,
            counters,
        }
    }

    /// The worker that owns a stream.
    fn route(&self, key: &xgate_messages::encode::StreamKey) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.queues.len() as u64) as usize
    }

    /// Hands worker `i` its next frame if it is idle.
    fn dispatch(&mut self, i: usize, ctx: &mut Context<Self>) {
        if self.busy[i] {
            return;
        }
        let Some(p) = self.queues[i].pop_front() else {
            return;
        };
        let Some(worker) = self.workers.get(i).cloned() else {
            let _ = p.reply.send(Err(EncodeRefused::Unavailable));
            return;
        };
        self.waiting -= 1;
        self.busy[i] = true;
        let reply = p.reply;
        let job = Job {
            request: p.request,
            covers: p.covers,
            queued_at: p.queued_at,
        };
        worker
            .send(job)
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.busy[i] = false;
                let res = res.unwrap_or(Err(EncodeRefused::Unavailable));
                match &res {
                    Ok(e) => {
                        act.counters.frames += 1;
                        act.counters.bytes_out += e.data.len() as u64;
                    }
                    Err(_) => act.counters.failed += 1,
                }
                let _ = reply.send(res);
                act.dispatch(i, ctx);
            })
            .spawn(ctx);
    }
}

impl Actor for EncoderPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // One SyncArbiter of one thread per worker, so that a stream always meets its state.
        self.workers = (0..self.settings.workers)
            .map(|i| {
                let shared = Arc::clone(&self.shared);
                SyncArbiter::start(1, move || EncodeWorker::new(i, Arc::clone(&shared)))
            })
            .collect();
        let every = (self.settings.idle_timeout / 2).max(Duration::from_millis(100));
        ctx.run_interval(every, |act, _ctx| {
            for w in &act.workers {
                w.do_send(Sweep);
            }
        });
        info!(target: "xgate::encoder", workers = self.settings.workers,
            queue_limit = self.settings.queue_limit, "EncoderPool started");
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        for q in &mut self.queues {
            for p in q.drain(..) {
                let _ = p.reply.send(Err(EncodeRefused::Unavailable));
            }
        }
    }
}

impl Handler<EncodeFrame> for EncoderPool {
    type Result = ResponseFuture<Result<Encoded, EncodeRefused>>;

    fn handle(&mut self, msg: EncodeFrame, ctx: &mut Self::Context) -> Self::Result {
        if self.shared.order(msg.codec).is_empty() {
            self.counters.failed += 1;
            let codec = msg.codec;
            return Box::pin(async move { Err(EncodeRefused::NoEncoder(codec)) });
        }
        if let Err(e) = stream::check_frame(&msg.frame) {
            self.counters.failed += 1;
            let why = e.to_string();
            return Box::pin(async move { Err(EncodeRefused::BadFrame(why)) });
        }
        let i = self.route(&msg.key);
        let (tx, rx) = oneshot::channel();
        let queue = &mut self.queues[i];
        if let Some(old) = queue.iter_mut().find(|p| p.request.key == msg.key) {
            // The stream already has a frame waiting: the newer picture replaces it.
            let keyframe = old.request.keyframe || msg.keyframe;
            let mut covers = std::mem::take(&mut old.covers);
            covers.push(old.request.tag);
            let replaced = std::mem::replace(
                old,
                Pending {
                    request: EncodeFrame { keyframe, ..msg },
                    covers,
                    queued_at: old.queued_at,
                    reply: tx,
                },
            );
            let _ = replaced.reply.send(Err(EncodeRefused::Coalesced));
            self.counters.coalesced += 1;
        } else if self.waiting >= self.settings.queue_limit {
            self.counters.skipped += 1;
            return Box::pin(async { Err(EncodeRefused::QueueFull) });
        } else {
            queue.push_back(Pending {
                request: msg,
                covers: Vec::new(),
                queued_at: Instant::now(),
                reply: tx,
            });
            self.waiting += 1;
            self.counters.peak_queue_depth =
                self.counters.peak_queue_depth.max(self.waiting as u64);
        }
        self.dispatch(i, ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(EncodeRefused::Unavailable)) })
    }
}

impl Handler<DropStreams> for EncoderPool {
    type Result = ();

    fn handle(&mut self, msg: DropStreams, _ctx: &mut Self::Context) {
        let matches = |k: &xgate_messages::encode::StreamKey| {
            k.connection == msg.connection && msg.window.is_none_or(|w| w == k.window)
        };
        for q in &mut self.queues {
            let before = q.len();
            let mut kept = VecDeque::with_capacity(before);
            for p in q.drain(..) {
                if matches(&p.request.key) {
                    let _ = p.reply.send(Err(EncodeRefused::Unavailable));
                } else {
                    kept.push_back(p);
                }
            }
            self.waiting -= before - kept.len();
            *q = kept;
        }
        let forget = Forget {
            connection: msg.connection,
            window: msg.window,
        };
        for w in &self.workers {
            w.do_send(forget);
        }
    }
}

impl Handler<GetEncoderInfo> for EncoderPool {
    type Result = MessageResult<GetEncoderInfo>;

    fn handle(&mut self, _msg: GetEncoderInfo, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.info())
    }
}
