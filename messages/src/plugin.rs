//! The plug-in contract: what a plug-in actor is given, what it may answer, and how it is named
//! and configured.
//!
//! A plug-in written in Rust implements [`Plugin`] in a crate that depends only on this one; a
//! factory ([`PluginFactory`]) registered under a kind name builds it from its `[[actor]]`
//! configuration ([`PluginConfig`]). The gateway runs each plug-in in an actor of its own under
//! the `plugins` supervisor, feeds it the events its configuration subscribes to, and asks it for
//! authentication decisions when it is used as an auth hook. A plug-in that returns an error
//! exits abnormally and is restarted with fresh state, like any supervised actor.
//!
//! A plug-in in any other language is an `exec` actor: a child process that receives the same
//! values as JSON lines on its stdin ([`PluginInput`]) and answers auth queries on its stdout
//! ([`AuthAnswer`]).

use std::collections::BTreeMap;
use std::fmt;

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::events::GatewayEvent;
use crate::supervision::SupervisionEvent;

/// An event delivered to a plug-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PluginEvent {
    /// Something that happened to a connection.
    Gateway(GatewayEvent),
    /// Something that happened in the supervision tree.
    Supervision(SupervisionEvent),
}

impl PluginEvent {
    /// The event's name as configurations list it (`connection-opened`, `connection-closed`,
    /// `auth-failed`, `child-started`, `child-exited`, `child-killed`,
    /// `restart-intensity-reached`, `supervisor-stopped`).
    pub fn name(&self) -> &'static str {
        match self {
            PluginEvent::Gateway(GatewayEvent::ConnectionOpened { .. }) => "connection-opened",
            PluginEvent::Gateway(GatewayEvent::ConnectionClosed { .. }) => "connection-closed",
            PluginEvent::Gateway(GatewayEvent::AuthFailed { .. }) => "auth-failed",
            PluginEvent::Supervision(SupervisionEvent::ChildStarted { .. }) => "child-started",
            PluginEvent::Supervision(SupervisionEvent::ChildExited { .. }) => "child-exited",
            PluginEvent::Supervision(SupervisionEvent::ChildKilled { .. }) => "child-killed",
            PluginEvent::Supervision(SupervisionEvent::RestartIntensityReached { .. }) => {
                "restart-intensity-reached"
            }
            PluginEvent::Supervision(SupervisionEvent::SupervisorStopped { .. }) => {
                "supervisor-stopped"
            }
        }
    }

    /// Whether this is a supervision event (rather than a connection event).
    pub fn is_supervision(&self) -> bool {
        matches!(self, PluginEvent::Supervision(_))
    }
}

/// Every event name [`PluginEvent::name`] can return, for validating configurations.
pub const EVENT_NAMES: &[&str] = &[
    "connection-opened",
    "connection-closed",
    "auth-failed",
    "child-started",
    "child-exited",
    "child-killed",
    "restart-intensity-reached",
    "supervisor-stopped",
];

/// An authentication question put to a plug-in used as an auth hook (auth module `hook:name=X`).
///
/// The password is `None` with xpra's challenge digests (hmac), which never reveal it: a hook
/// decides from the user name, the address and the transport, after (or instead of) the
/// password modules of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "Result<bool, PluginError>")]
pub struct AuthQuery {
    /// The user name the client sent.
    pub username: String,
    /// The password in clear, only when the transport revealed it; `None` otherwise.
    pub password: Option<String>,
    /// The client's address (`127.0.0.1:40000`, or `unix` with credentials).
    pub peer: String,
    /// The transport after upgrades (`tcp`, `ssl`, `ws`, ...).
    pub transport: String,
    /// The display the client asked for, if any.
    pub display: Option<String>,
    /// The subject of the client's verified TLS certificate (`O=example,CN=carol`), when it
    /// presented one; absent from the JSON line otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// A plug-in's answer to an [`AuthQuery`], as an `exec` plug-in writes it on its stdout
/// (`{"allow": true}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAnswer {
    /// Whether the client may come in.
    pub allow: bool,
}

/// One line written to an `exec` plug-in's stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PluginInput {
    /// An event the plug-in subscribed to: `{"type":"event","name":"connection-opened","event":{...}}`.
    Event {
        /// The event's name ([`PluginEvent::name`]).
        name: String,
        /// The event as the control socket shows it.
        event: PluginEvent,
    },
    /// An authentication question; the plug-in answers with one [`AuthAnswer`] line.
    Auth(AuthQuery),
}

/// A plug-in's `[[actor]]` configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginConfig {
    /// The kind it was registered under (`audit-log`, `exec`, ...).
    pub kind: String,
    /// Its name in the supervision tree and for `hook:name=`; unique among plug-ins.
    pub name: String,
    /// The event names it receives (see [`EVENT_NAMES`]); empty means none.
    pub events: Vec<String>,
    /// Its other keys (`path`, `command`, `role`, ...), as text.
    pub options: BTreeMap<String, String>,
}

impl PluginConfig {
    /// Whether the plug-in subscribed to `event`.
    pub fn wants(&self, event: &PluginEvent) -> bool {
        let name = event.name();
        self.events.iter().any(|e| e == name || e == "all")
    }

    /// An option's value.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// Why a plug-in could not be built or failed while running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// What went wrong, for logs and for the exit reason the supervisor records.
    pub message: String,
}

impl PluginError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        PluginError {
            message: message.into(),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

/// A plug-in written in Rust. The gateway calls it from its own actor, one call at a time; a
/// call should not block for long (write to a buffered file, not to a slow network).
pub trait Plugin: Send + 'static {
    /// The kind's name, for logs.
    fn kind(&self) -> &str;

    /// Called once per subscribed event. An error stops the plug-in's actor abnormally; its
    /// supervisor builds a fresh one.
    fn on_event(&mut self, event: &PluginEvent) -> Result<(), PluginError>;

    /// An authentication decision, when the plug-in is used as an auth hook: `Some(true)` lets
    /// the client in, `Some(false)` refuses it, `None` (the default) means the plug-in has no
    /// opinion, which refuses.
    fn authorize(&mut self, _query: &AuthQuery) -> Option<bool> {
        None
    }
}

/// Builds a plug-in from its configuration; registered under a kind name.
pub type PluginFactory = fn(&PluginConfig) -> Result<Box<dyn Plugin>, PluginError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ConnectionId;

    #[test]
    fn exec_lines_are_tagged() {
        let ev = PluginEvent::Gateway(GatewayEvent::ConnectionClosed {
            id: ConnectionId(3),
            username: "alice".into(),
            target: ":10".into(),
            reason: "client exit".into(),
            bytes_from_client: 1,
            bytes_to_client: 2,
            duration_ms: 3,
        });
        let line = serde_json::to_string(&PluginInput::Event {
            name: ev.name().into(),
            event: ev.clone(),
        })
        .unwrap();
        assert!(line.contains("\"type\":\"event\""), "{line}");
        assert!(line.contains("\"event\":\"connection-closed\""), "{line}");
        let q = PluginInput::Auth(AuthQuery {
            username: "bob".into(),
            password: None,
            peer: "127.0.0.1:1".into(),
            transport: "tcp".into(),
            display: None,
            certificate: None,
        });
        let line = serde_json::to_string(&q).unwrap();
        assert!(line.starts_with("{\"type\":\"auth\""), "{line}");
        assert!(line.contains("\"username\":\"bob\""), "{line}");
        assert!(!line.contains("certificate"), "{line}");
        let q = PluginInput::Auth(AuthQuery {
            username: "carol".into(),
            password: None,
            peer: "127.0.0.1:1".into(),
            transport: "ssl".into(),
            display: None,
            certificate: Some("CN=carol".into()),
        });
        let line = serde_json::to_string(&q).unwrap();
        assert!(line.contains("\"certificate\":\"CN=carol\""), "{line}");
        let a: AuthAnswer = serde_json::from_str("{\"allow\":true}").unwrap();
        assert!(a.allow);
    }

    #[test]
    fn subscriptions_by_name() {
        let cfg = PluginConfig {
            events: vec!["connection-opened".into()],
            ..PluginConfig::default()
        };
        let ev = PluginEvent::Gateway(GatewayEvent::AuthFailed {
            peer: crate::Peer::Unix {
                uid: None,
                gid: None,
                pid: None,
            },
            username: None,
            reason: "x".into(),
        });
        assert!(!cfg.wants(&ev));
        assert!(EVENT_NAMES.contains(&ev.name()));
    }
}
