//! xgate's actors, one module each, with their backends beside them.
//!
//! A connection's way through: [`listener`] accepts, [`upgrade`] sniffs the transport,
//! [`auth`] runs xpra's hello/challenge/response against the configured backends and asks the
//! [`registry`] for the user's sessions, and [`relay`] connects to the chosen session and moves
//! packets both ways.
#![forbid(unsafe_code)]

pub mod auth;
pub mod conn;
pub mod control;
pub mod encoder;
pub mod gateway;
pub mod listener;
pub mod pipeline;
pub mod plugin;
pub mod registry;
pub mod relay;
pub mod ssh;
pub mod upgrade;
pub mod users;
mod write_through;
