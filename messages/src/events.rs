//! Events the gateway publishes about connections, for the SessionRegistry's connection table, the
//! control socket's `subscribe`, metrics and plugins.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::connection::{ConnectionId, Peer, TransportKind};

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum GatewayEvent {
    /// A client was authenticated and its relay to a session is being set up.
    ConnectionOpened {
        /// The connection.
        id: ConnectionId,
        /// The client's address.
        peer: Peer,
        /// The transport after upgrades.
        transport: TransportKind,
        /// The authenticated user.
        username: String,
        /// The display the client reached.
        display: String,
        /// Where that display is (`tcp://...`, a socket path).
        target: String,
    },
    /// A relayed connection ended.
    ConnectionClosed {
        /// The connection.
        id: ConnectionId,
        /// The authenticated user.
        username: String,
        /// The target it was relayed to.
        target: String,
        /// Why it ended, in xpra's words where there are some (`server shutdown`, `client exit`...).
        reason: String,
        /// Bytes received from the client.
        bytes_from_client: u64,
        /// Bytes sent to the client.
        bytes_to_client: u64,
        /// How long the relay ran, in milliseconds.
        duration_ms: u64,
    },
    /// A client failed authentication.
    AuthFailed {
        /// The client's address.
        peer: Peer,
        /// The user name it claimed, if any.
        username: Option<String>,
        /// Why, for logs (the client only sees xpra's `authentication failed`).
        reason: String,
    },
}
