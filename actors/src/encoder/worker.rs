//! An encode worker: a `SyncArbiter` actor (one thread, since FFmpeg blocks) that owns the encoder
//! state of the streams routed to it. The pool sends every frame of a stream to the same worker,
//! so a stream's state never moves between threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Handler, Message, SyncContext};
use tracing::{debug, info, warn};
use xgate_messages::encode::{EncodeFrame, EncodeRefused, Encoded, StreamKey, VideoCodec};

use super::error::EncoderError;
use super::stream::{check_frame, is_nvenc, StreamEncoder};

/// What every worker shares with the pool: the encoder order per codec and the live counts.
#[derive(Debug)]
pub struct Shared {
    /// Available H.264 encoders, in order of preference.
    pub h264: Vec<&'static str>,
    /// Available VP8 encoders.
    pub vp8: Vec<&'static str>,
    /// Available VP9 encoders.
    pub vp9: Vec<&'static str>,
    /// The most NVENC sessions open at once (consumer GPUs allow few).
    pub max_nvenc_sessions: u64,
    /// NVENC sessions open now.
    pub nvenc_sessions: AtomicU64,
    /// Streams that wanted NVENC but were given the next encoder because of the limit.
    pub nvenc_limited: AtomicU64,
    /// Streams open now.
    pub streams: AtomicU64,
    /// A stream unused this long is dropped.
    pub idle_timeout: Duration,
}

impl Shared {
    /// The encoders for a codec, in order.
    pub fn order(&self, codec: VideoCodec) -> &[&'static str] {
        match codec {
            VideoCodec::H264 => &self.h264,
            VideoCodec::Vp8 => &self.vp8,
            VideoCodec::Vp9 => &self.vp9,
        }
    }
}

/// One stream's state.
struct Stream {
    /// The open encoder.
    encoder: StreamEncoder,
    /// When it last encoded (for the idle timeout).
    last_used: Instant,
    /// The pool's counters, to give the stream (and its NVENC session) back on drop.
    shared: Arc<Shared>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.streams.fetch_sub(1, Ordering::Relaxed);
        if is_nvenc(self.encoder.name()) {
            self.shared.nvenc_sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A frame handed to a worker by the pool.
#[derive(Debug)]
pub struct Job {
    /// The request.
    pub request: EncodeFrame,
    /// Tags of older frames of the stream this one replaced while queued.
    pub covers: Vec<u64>,
    /// When the request reached the pool.
    pub queued_at: Instant,
}

impl Message for Job {
    type Result = Result<Encoded, EncodeRefused>;
}

/// Drops streams idle for longer than the idle timeout; answers how many remain.
#[derive(Debug, Clone, Copy)]
pub struct Sweep;

impl Message for Sweep {
    type Result = usize;
}

/// Drops the streams of a connection, or of one of its windows.
#[derive(Debug, Clone, Copy)]
pub struct Forget {
    /// The connection.
    pub connection: u64,
    /// One window or all.
    pub window: Option<u64>,
}

impl Message for Forget {
    type Result = ();
}

/// The worker actor.
pub struct EncodeWorker {
    /// Its number, for logs.
    index: usize,
    /// Encoder order and counts.
    shared: Arc<Shared>,
    /// The streams routed here.
    streams: HashMap<StreamKey, Stream>,
}

impl EncodeWorker {
    /// A worker with no streams.
    pub fn new(index: usize, shared: Arc<Shared>) -> Self {
        EncodeWorker {
            index,
            shared,
            streams: HashMap::new(),
        }
    }

    /// Opens a stream for `key`'s frame with the first encoder that opens (NVENC only while
    /// sessions are left).
    fn open_stream(&mut self, job: &Job) -> Result<Stream, EncodeRefused> {
        let req = &job.request;
        let order = self.shared.order(req.codec);
        if order.is_empty() {
            return Err(EncodeRefused::NoEncoder(req.codec));
        }
        let mut last_error = None;
        for &name in order {
            let nvenc = is_nvenc(name);
            if nvenc {
                let open = self.shared.nvenc_sessions.fetch_add(1, Ordering::Relaxed);
                if open >= self.shared.max_nvenc_sessions {
                    self.shared.nvenc_sessions.fetch_sub(1, Ordering::Relaxed);
                    self.shared.nvenc_limited.fetch_add(1, Ordering::Relaxed);
                    debug!(target: "xgate::encoder", key = ?req.key,
                        "NVENC session limit ({}) reached, trying the next encoder",
                        self.shared.max_nvenc_sessions);
                    continue;
                }
            }
            match StreamEncoder::open(name, req.frame.width, req.frame.height, req.frame.format) {
                Ok(encoder) => {
                    self.shared.streams.fetch_add(1, Ordering::Relaxed);
                    debug!(target: "xgate::encoder", worker = self.index, key = ?req.key,
                        encoder = name, width = req.frame.width, height = req.frame.height,
                        "new stream");
                    return Ok(Stream {
                        encoder,
                        last_used: Instant::now(),
                        shared: Arc::clone(&self.shared),
                    });
                }
                Err(e) => {
                    if nvenc {
                        self.shared.nvenc_sessions.fetch_sub(1, Ordering::Relaxed);
                    }
                    warn!(target: "xgate::encoder", key = ?req.key, "{e}; trying the next encoder");
                    last_error = Some(e);
                }
            }
        }
        Err(match last_error {
            Some(EncoderError::BadFrame(why)) => EncodeRefused::BadFrame(why),
            Some(e) => EncodeRefused::Failed(e.to_string()),
            None => EncodeRefused::NoEncoder(req.codec),
        })
    }
}

impl Actor for EncodeWorker {
    type Context = SyncContext<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.streams.is_empty() {
            info!(target: "xgate::encoder", worker = self.index,
                "stopping with {} streams", self.streams.len());
        }
    }
}

impl Handler<Job> for EncodeWorker {
    type Result = Result<Encoded, EncodeRefused>;

    fn handle(&mut self, job: Job, _ctx: &mut Self::Context) -> Self::Result {
        let started = Instant::now();
        let req = &job.request;
        check_frame(&req.frame).map_err(|e| EncodeRefused::BadFrame(e.to_string()))?;
        // A new size, format or codec, or a forced keyframe, starts a new stream (frame 0).
        let fits = self
            .streams
            .get(&req.key)
            .is_some_and(|s| s.encoder.fits(req.codec, &req.frame));
        if !fits || req.keyframe {
            self.streams.remove(&req.key);
            let stream = self.open_stream(&job)?;
            self.streams.insert(req.key, stream);
        }
        let Some(stream) = self.streams.get_mut(&req.key) else {
            return Err(EncodeRefused::Unavailable);
        };
        stream.last_used = started;
        match stream.encoder.encode(&req.frame, false) {
            Ok((data, frame, keyframe)) => {
                let (width, height) = stream.encoder.size();
                let mut covers = job.covers;
                covers.push(req.tag);
                Ok(Encoded {
                    key: req.key,
                    codec: req.codec,
                    encoder: stream.encoder.name(),
                    data,
                    frame,
                    keyframe,
                    width,
                    height,
                    csc: "YUV420P",
                    full_range: false,
                    covers,
                    queued_us: started.duration_since(job.queued_at).as_micros() as u64,
                    encode_us: started.elapsed().as_micros() as u64,
                })
            }
            Err(e) => {
                // The stream's state is unknown now: the next frame starts a new one.
                warn!(target: "xgate::encoder", key = ?req.key, "{e}; resetting the stream");
                self.streams.remove(&req.key);
                Err(match e {
                    EncoderError::BadFrame(why) => EncodeRefused::BadFrame(why),
                    e => EncodeRefused::Failed(e.to_string()),
                })
            }
        }
    }
}

impl Handler<Sweep> for EncodeWorker {
    type Result = usize;

    fn handle(&mut self, _msg: Sweep, _ctx: &mut Self::Context) -> usize {
        let timeout = self.shared.idle_timeout;
        let before = self.streams.len();
        self.streams.retain(|_, s| s.last_used.elapsed() < timeout);
        let dropped = before - self.streams.len();
        if dropped > 0 {
            debug!(target: "xgate::encoder", worker = self.index, dropped, "idle streams dropped");
        }
        self.streams.len()
    }
}

impl Handler<Forget> for EncodeWorker {
    type Result = ();

    fn handle(&mut self, msg: Forget, _ctx: &mut Self::Context) {
        self.streams.retain(|k, _| {
            k.connection != msg.connection || msg.window.is_some_and(|w| w != k.window)
        });
    }
}
