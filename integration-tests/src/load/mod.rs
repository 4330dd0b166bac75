//! The load generator: fake xpra clients and servers on the protocol crate.
//!
//! - [`server`]: a fake xpra server that answers a hello (with a challenge when it has a password),
//!   streams 1 MiB draw-like packets on command as fast as the socket takes them, and answers
//!   `ping` with `ping_echo`.
//! - [`client`]: a fake xpra client that sends a realistic hello (answering a challenge), counts
//!   the frames it receives without decoding large packets, and times ping round trips.
//! - [`stats`]: percentiles of latency samples.
//! - [`procfs`]: resident memory of a process and its descendants, from `/proc`.
//! - [`wire`]: the encoder and compressor a fake peer speaks, and a frame-level connection.
//!
//! The binary `xgate-load` drives all of them; `scripts/bench-relay` runs the relay benchmarks.

pub mod client;
pub mod procfs;
pub mod server;
pub mod stats;
pub mod wire;

pub use client::{Client, ClientConfig, StreamStats, Transport};
pub use server::{serve, ServerConfig};
pub use wire::{LoadError, Wire};

/// The packet a fake client sends to make the fake server start streaming draws.
pub const CMD_STREAM: &str = "xgate-load-stream";
/// The packet a fake client sends to make the fake server stop streaming draws.
pub const CMD_STOP: &str = "xgate-load-stop";
