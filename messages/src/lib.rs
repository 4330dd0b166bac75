//! The typed vocabulary of xgate's actors: plain data plus actix `Message` impls, no I/O.
//!
//! This crate is the contract that plug-in actors compile against: a connection's facts
//! ([`connection`]), where sessions are ([`session`]), what happened ([`events`]), the connection
//! table ([`control`]) and the supervision tree ([`supervision`]).
#![forbid(unsafe_code)]

pub mod connection;
pub mod control;
pub mod encode;
pub mod events;
pub mod plugin;
pub mod session;
pub mod supervision;

pub use connection::{
    BoxedStream, ByteStream, CertificateSubject, ConnectionId, ConnectionInfo, ListenerInfo, Peer,
    TransportKind,
};
pub use control::{
    ConnectionSummary, ListConnections, RegisterConnection, StopConnection, StopConnectionById,
    UnregisterConnection,
};
pub use events::GatewayEvent;
pub use session::{LookupSessions, SessionSource, SessionTarget, TargetAddress, UserIdentity};
