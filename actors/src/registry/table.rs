//! The table of live relayed connections (for `info`, `connections` and `stop`) and the
//! gateway-wide counters kept from [`GatewayEvent`]s.

use std::collections::BTreeMap;

use actix::dev::SendError;
use actix::Recipient;
use serde_json::{json, Value};
use xgate_messages::{ConnectionId, ConnectionSummary, GatewayEvent, StopConnection};

/// One row: what to show, and where to send `stop`.
#[derive(Debug)]
struct Row {
    /// The row as registered by the relay.
    summary: ConnectionSummary,
    /// The relay's mailbox for [`StopConnection`].
    stop: Recipient<StopConnection>,
}

/// The live connections, by id.
#[derive(Debug, Default)]
pub struct ConnectionTable {
    /// Ordered by id so that listings are stable.
    rows: BTreeMap<ConnectionId, Row>,
}

impl ConnectionTable {
    /// Adds (or replaces) a connection's row.
    pub fn insert(&mut self, summary: ConnectionSummary, stop: Recipient<StopConnection>) {
        self.rows.insert(summary.id, Row { summary, stop });
    }

    /// Removes a row; answers whether it was there.
    pub fn remove(&mut self, id: ConnectionId) -> bool {
        self.rows.remove(&id).is_some()
    }

    /// Drops rows whose relay is gone without unregistering (a crashed relay), so that the table
    /// never shows connections that cannot be stopped. Answers how many were dropped.
    pub fn prune(&mut self) -> usize {
        let before = self.rows.len();
        self.rows.retain(|id, row| {
            let alive = row.stop.connected();
            if !alive {
                tracing::debug!(target: "xgate::registry", id = %id, "relay gone without unregistering, row dropped");
            }
            alive
        });
        before - self.rows.len()
    }

    /// The rows, by id.
    pub fn list(&self) -> Vec<ConnectionSummary> {
        self.rows.values().map(|r| r.summary.clone()).collect()
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Asks a connection's relay to stop; answers whether the connection was in the table with a
    /// live relay. The row stays until the relay unregisters; a row whose relay is gone is
    /// dropped here and counts as absent.
    pub fn stop(&mut self, id: ConnectionId, reason: &str) -> bool {
        let Some(row) = self.rows.get(&id) else {
            return false;
        };
        let msg = StopConnection {
            reason: reason.to_owned(),
        };
        match row.stop.try_send(msg) {
            Ok(()) => true,
            Err(SendError::Full(msg)) => {
                // a busy relay: queue it past the mailbox limit rather than drop it
                row.stop.do_send(msg);
                true
            }
            Err(SendError::Closed(_)) => {
                tracing::debug!(target: "xgate::registry", id = %id, "relay gone without unregistering, row dropped");
                self.rows.remove(&id);
                false
            }
        }
    }

    /// The `connections` info tree: one entry per connection, keyed by its id, as xpra's info
    /// dictionaries are (`connections.<id>.display`).
    pub fn info(&self) -> Value {
        let rows: serde_json::Map<String, Value> = self
            .rows
            .values()
            .map(|r| {
                let s = &r.summary;
                (
                    s.id.to_string(),
                    json!({
                        "id": s.id.0,
                        "username": s.username,
                        "peer": s.peer.to_string(),
                        "display": s.display,
                        "target": s.target,
                        "transport": s.transport.xpra_name(),
                        "client-version": s.client_version,
                        "start-time": s.started_unix_ms,
                    }),
                )
            })
            .collect();
        Value::Object(rows)
    }
}

/// Gateway-wide totals, from [`GatewayEvent`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `ConnectionOpened` events.
    pub connections_opened: u64,
    /// `ConnectionClosed` events.
    pub connections_closed: u64,
    /// `AuthFailed` events.
    pub auth_failures: u64,
    /// Bytes received from clients, summed over closed connections.
    pub bytes_from_clients: u64,
    /// Bytes sent to clients, summed over closed connections.
    pub bytes_to_clients: u64,
}

impl Counters {
    /// Counts one event.
    pub fn record(&mut self, event: &GatewayEvent) {
        match event {
            GatewayEvent::ConnectionOpened { .. } => {
                self.connections_opened = self.connections_opened.saturating_add(1)
            }
            GatewayEvent::ConnectionClosed {
                bytes_from_client,
                bytes_to_client,
                ..
            } => {
                self.connections_closed = self.connections_closed.saturating_add(1);
                self.bytes_from_clients =
                    self.bytes_from_clients.saturating_add(*bytes_from_client);
                self.bytes_to_clients = self.bytes_to_clients.saturating_add(*bytes_to_client);
            }
            GatewayEvent::AuthFailed { .. } => {
                self.auth_failures = self.auth_failures.saturating_add(1)
            }
        }
    }

    /// The counters as an info tree.
    pub fn info(&self) -> Value {
        json!({
            "connections-opened": self.connections_opened,
            "connections-closed": self.connections_closed,
            "auth-failures": self.auth_failures,
            "bytes-from-clients": self.bytes_from_clients,
            "bytes-to-clients": self.bytes_to_clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_messages::Peer;

    #[test]
    fn counters_add_up() {
        let mut c = Counters::default();
        let peer = Peer::Unix {
            uid: None,
            gid: None,
            pid: None,
        };
        c.record(&GatewayEvent::AuthFailed {
            peer,
            username: None,
            reason: "x".into(),
        });
        c.record(&GatewayEvent::ConnectionClosed {
            id: ConnectionId(1),
            username: "u".into(),
            target: "t".into(),
            reason: "r".into(),
            bytes_from_client: 10,
            bytes_to_client: 20,
            duration_ms: 1,
        });
        assert_eq!(c.auth_failures, 1);
        assert_eq!(c.connections_closed, 1);
        assert_eq!(c.bytes_from_clients, 10);
        assert_eq!(c.bytes_to_clients, 20);
        assert_eq!(c.info()["bytes-to-clients"], 20);
    }
}
