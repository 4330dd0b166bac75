//! The `audit-log` plug-in, and the example of a plug-in written in Rust: it depends only on
//! `xgate-messages` (this file could be its own crate unchanged, with `xgate_messages` in place
//! of the crate paths) and appends one JSON line per event to a file.
//!
//! ```toml
//! [[actor]]
//! kind = "audit-log"
//! path = "/var/log/xgate/audit.jsonl"
//! events = ["connection-opened", "connection-closed"]
//! ```
//! Lines (`time` in milliseconds since the Unix epoch):
//! ```text
//! {"time":..,"event":"connection-opened","id":3,"user":"alice","display":":10","target":"/run/user/1000/xpra/host-10","peer":"127.0.0.1:40000","transport":"tcp"}
//! {"time":..,"event":"connection-closed","id":3,"user":"alice","target":"...","reason":"client exit","bytes_from_client":1234,"bytes_to_client":567890,"duration_ms":5000}
//! {"time":..,"event":"auth-failed","user":"mallory","peer":"...","reason":"..."}
//! {"time":..,"event":"child-exited","detail":{...}}
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use xgate_messages::plugin::{Plugin, PluginConfig, PluginError, PluginEvent};
use xgate_messages::GatewayEvent;

/// The kind name.
pub const KIND: &str = "audit-log";

/// The audit log.
#[derive(Debug)]
pub struct AuditLog {
    /// Where lines go.
    path: PathBuf,
    /// The file, opened in append mode (every line is one `write`).
    file: File,
}

/// Builds an [`AuditLog`] from `path=` (required).
pub fn factory(config: &PluginConfig) -> Result<Box<dyn Plugin>, PluginError> {
    let path = config.option("path").ok_or_else(|| {
        PluginError::new(format!(
            "actor '{}' (audit-log) needs path = \"...\"",
            config.name
        ))
    })?;
    let path = PathBuf::from(path);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| PluginError::new(format!("audit-log {}: {e}", path.display())))?;
    Ok(Box::new(AuditLog { path, file }))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The line written for an event.
pub fn line(event: &PluginEvent) -> Value {
    let time = now_ms();
    match event {
        PluginEvent::Gateway(GatewayEvent::ConnectionOpened {
            id,
            peer,
            transport,
            username,
            display,
            target,
        }) => json!({
            "time": time, "event": event.name(), "id": id.0, "user": username,
            "display": display, "target": target, "peer": peer.to_string(),
            "transport": transport.xpra_name(),
        }),
        PluginEvent::Gateway(GatewayEvent::ConnectionClosed {
            id,
            username,
            target,
            reason,
            bytes_from_client,
            bytes_to_client,
            duration_ms,
        }) => json!({
            "time": time, "event": event.name(), "id": id.0, "user": username,
            "target": target, "reason": reason, "bytes_from_client": bytes_from_client,
            "bytes_to_client": bytes_to_client, "duration_ms": duration_ms,
        }),
        PluginEvent::Gateway(GatewayEvent::AuthFailed {
            peer,
            username,
            reason,
        }) => json!({
            "time": time, "event": event.name(), "user": username,
            "peer": peer.to_string(), "reason": reason,
        }),
        other => json!({"time": time, "event": other.name(), "detail": other}),
    }
}

impl Plugin for AuditLog {
    fn kind(&self) -> &str {
        KIND
    }

    fn on_event(&mut self, event: &PluginEvent) -> Result<(), PluginError> {
        let mut text = line(event).to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| PluginError::new(format!("audit-log {}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_messages::{ConnectionId, Peer, TransportKind};

    #[test]
    fn writes_opened_and_closed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = PluginConfig {
            kind: KIND.into(),
            name: "audit".into(),
            events: vec!["connection-opened".into(), "connection-closed".into()],
            options: [("path".to_string(), path.display().to_string())].into(),
        };
        let mut p = factory(&config).unwrap();
        p.on_event(&PluginEvent::Gateway(GatewayEvent::ConnectionOpened {
            id: ConnectionId(1),
            peer: Peer::Tcp("127.0.0.1:5".parse().unwrap()),
            transport: TransportKind::Tcp,
            username: "alice".into(),
            display: ":10".into(),
            target: "/tmp/s".into(),
        }))
        .unwrap();
        p.on_event(&PluginEvent::Gateway(GatewayEvent::ConnectionClosed {
            id: ConnectionId(1),
            username: "alice".into(),
            target: "/tmp/s".into(),
            reason: "client exit".into(),
            bytes_from_client: 10,
            bytes_to_client: 20,
            duration_ms: 30,
        }))
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["user"], "alice");
        assert_eq!(lines[0]["target"], "/tmp/s");
        assert_eq!(lines[1]["bytes_to_client"], 20);
        let missing = PluginConfig {
            kind: KIND.into(),
            name: "a".into(),
            ..PluginConfig::default()
        };
        assert!(factory(&missing).is_err());
    }
}
