//! Requests about live connections: the connection table behind `info`, `connections` and `stop`.

use actix::{Message, Recipient};
use serde::{Deserialize, Serialize};

use crate::connection::{ConnectionId, Peer, TransportKind};

/// One row of the connection table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    /// The connection's number.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: Peer,
    /// The transport after upgrades.
    pub transport: TransportKind,
    /// The authenticated user.
    pub username: String,
    /// The display the client reached.
    pub display: String,
    /// Where that display is.
    pub target: String,
    /// The client's xpra version, from its hello.
    pub client_version: String,
    /// When the relay started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
}

/// Asks a relay to end its connection; the client gets xpra's `disconnect` with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub struct StopConnection {
    /// Why, as the client will see it (xpra's reasons: `server shutdown`, `client request`...).
    pub reason: String,
}

/// Adds a relayed connection to the SessionRegistry's table.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RegisterConnection {
    /// The row to show.
    pub summary: ConnectionSummary,
    /// Where to send `stop`.
    pub stop: Recipient<StopConnection>,
}

/// Removes a connection from the SessionRegistry's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub struct UnregisterConnection(pub ConnectionId);

/// Lists the live connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "Vec<ConnectionSummary>")]
pub struct ListConnections;

/// Stops one connection by its number; answers whether it existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "bool")]
pub struct StopConnectionById {
    /// Which connection.
    pub id: ConnectionId,
    /// Why, as the client will see it.
    pub reason: String,
}
