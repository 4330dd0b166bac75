//! The messages that carry a live connection from one stage to the next.
//!
//! They hold the connection's stream, so they live here rather than in `xgate-messages`, which is
//! plain data.

use actix::Message;
use xgate_messages::{BoxedStream, ConnectionInfo};

use crate::listener::ConnectionPermit;

/// A connection the Listener accepted, for the TransportUpgrade stage.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Accepted {
    /// What is known so far (the transport is still the listener's).
    pub info: ConnectionInfo,
    /// The raw socket.
    pub stream: BoxedStream,
    /// The connection's place in the limits, released when the connection ends.
    pub permit: ConnectionPermit,
}

/// A connection whose transport is known and unwrapped, for the Authenticator.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Upgraded {
    /// The connection's facts, with the transport after upgrades.
    pub info: ConnectionInfo,
    /// A byte stream carrying xpra packets, whatever the transport was.
    pub stream: BoxedStream,
    /// The connection's place in the limits.
    pub permit: ConnectionPermit,
    /// The user the builtin SSH server authenticated, for an SSH channel: the handshake then
    /// sends no challenge (real xpra clients expect none over SSH) and only looks up the
    /// user's sessions. `None` for every other transport.
    pub ssh_user: Option<String>,
    /// A new session to start before choosing one: SSH's `xpra _proxy_start` (a hello's
    /// `start-new-session` is read from the hello itself). `None` for everything else.
    pub start: Option<crate::registry::start::StartRequest>,
}

/// An authenticated client with its session chosen, for the connections supervisor to start a
/// ProxyRelay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Authenticated {
    /// The connection's facts.
    pub info: ConnectionInfo,
    /// The client side, mid-handshake: its hello was read, the gateway's hello not yet sent.
    pub client: crate::conn::PacketConn,
    /// The client's last hello (the one that carried the challenge response, if any).
    pub hello: xgate_protocol::Value,
    /// Who the client is.
    pub user: xgate_messages::UserIdentity,
    /// The session it reaches.
    pub target: xgate_messages::SessionTarget,
    /// The connection's place in the limits.
    pub permit: ConnectionPermit,
}
