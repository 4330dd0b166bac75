//! The SessionRegistry: which sessions a user may reach and where they are, and the table of live
//! connections for `info` and `stop`.
//!
//! A permanent singleton actor. Its concerns, one module each:
//! - [`discovery`]: the user's local sessions, found in the socket dirs and probed LIVE/DEAD as
//!   xpra does (protocol reference §7);
//! - [`resolve`]: a [`SessionSource`] (socket scan, or a user database's list of displays and
//!   URIs) to [`SessionTarget`]s, plus the static targets from the configuration;
//! - [`choose`](mod@choose): the display choice for a client's request, with xpra's error texts (§4.1, §4.3);
//! - [`start`]: new sessions started on a client's request (`proxy-start-sessions`);
//! - [`table`]: the connection table and the counters kept from [`GatewayEvent`]s.
//!
//! Lookups scan the filesystem on tokio's blocking pool and probe sockets asynchronously, so the
//! registry's mailbox keeps moving while they run.

pub mod choose;
pub mod discovery;
pub mod resolve;
pub mod start;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, MessageResult, ResponseFuture};
use serde_json::{json, Value};
use xgate_messages::{
    ConnectionSummary, GatewayEvent, ListConnections, LookupSessions, RegisterConnection,
    SessionSource, SessionTarget, StopConnectionById, UnregisterConnection,
};

pub use choose::{choose, requested_display, ChooseError, SESSION_NOT_FOUND};
pub use discovery::{DiscoveredSocket, SocketState, DEFAULT_PROBE_TIMEOUT};
pub use table::{ConnectionTable, Counters};

/// What the registry needs from the configuration, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Socket dirs to scan, in order (`socket-dirs`). `$UID`, `$XDG_RUNTIME_DIR`, `~`, `$HOME`
    /// and `$USER` are expanded for the uid being looked up, so one gateway serves many users
    /// from `/run/user/$UID/xpra`; already expanded paths are used as they are.
    pub socket_dirs: Vec<String>,
    /// Static targets (`target` entries), offered to every socket-scan user ahead of the local
    /// sessions.
    pub static_targets: Vec<SessionTarget>,
    /// The host name in `<HOSTNAME>-N` socket names; `None` = `$XPRA_SOCKET_HOSTNAME` or the
    /// system's host name, read at each lookup.
    pub hostname: Option<String>,
    /// How long one socket probe may wait for `connect()`.
    pub probe_timeout: Duration,
}

impl RegistryConfig {
    /// Socket dirs and static targets, with the default host name and probe timeout.
    pub fn new(socket_dirs: Vec<String>, static_targets: Vec<SessionTarget>) -> Self {
        RegistryConfig {
            socket_dirs,
            static_targets,
            hostname: None,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
        }
    }
}

impl Default for RegistryConfig {
    /// xpra's default socket dirs, no static targets.
    fn default() -> Self {
        RegistryConfig::new(
            xgate_config::DEFAULT_SOCKET_DIRS
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            Vec::new(),
        )
    }
}

impl From<&xgate_config::Config> for RegistryConfig {
    /// `socket-dirs` and `target` from a loaded configuration.
    fn from(config: &xgate_config::Config) -> Self {
        RegistryConfig::new(
            config
                .socket_dirs
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect(),
            config.target.iter().map(resolve::static_target).collect(),
        )
    }
}

/// Asks for the registry's `info` tree: the `connections` table, the `counters`, the socket dirs
/// and the static targets.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "serde_json::Value")]
pub struct GetRegistryInfo;

/// Replaces the registry's configuration (on reload). Lookups already running finish with the
/// old one; the connection table and counters are kept.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct UpdateRegistryConfig(pub RegistryConfig);

/// Where the registry republishes every [`GatewayEvent`] it receives, for the control socket's
/// `subscribe` and for plug-ins. Made by the binary and handed to each registry incarnation
/// ([`SessionRegistry::with_events`]), so that subscriptions outlive a registry restart.
pub type EventHub = tokio::sync::broadcast::Sender<GatewayEvent>;

/// A new [`EventHub`]; a subscriber more than 1024 events behind misses the oldest.
pub fn event_hub() -> EventHub {
    tokio::sync::broadcast::channel(1024).0
}

/// The SessionRegistry actor. Start it once (`SessionRegistry::new(config).start()`).
#[derive(Debug)]
pub struct SessionRegistry {
    /// Shared with running lookups, which must not borrow the actor; replaced whole on reload.
    config: Arc<RegistryConfig>,
    /// The live relayed connections.
    connections: ConnectionTable,
    /// Totals from gateway events.
    counters: Counters,
    /// Session lookups answered, for `info`.
    lookups: u64,
    /// Where events are republished, if anyone listens.
    events: Option<EventHub>,
}

impl SessionRegistry {
    /// A registry with this configuration and an empty connection table.
    pub fn new(config: RegistryConfig) -> Self {
        SessionRegistry {
            config: Arc::new(config),
            connections: ConnectionTable::default(),
            counters: Counters::default(),
            lookups: 0,
            events: None,
        }
    }

    /// Republishes every [`GatewayEvent`] on `hub`.
    pub fn with_events(mut self, hub: EventHub) -> Self {
        self.events = Some(hub);
        self
    }

    /// The info tree (see [`GetRegistryInfo`]).
    fn info(&self) -> Value {
        let targets: serde_json::Map<String, Value> = self
            .config
            .static_targets
            .iter()
            .map(|t| (t.display.clone(), Value::String(t.address.to_string())))
            .collect();
        json!({
            "connections": self.connections.info(),
            "connection-count": self.connections.len(),
            "counters": self.counters.info(),
            "lookups": self.lookups,
            "socket-dirs": self.config.socket_dirs,
            "static-targets": targets,
        })
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        tracing::info!(
            target: "xgate::registry",
            socket_dirs = ?self.config.socket_dirs,
            static_targets = self.config.static_targets.len(),
            "session registry started"
        );
    }
}

/// Looks up a user's sessions: the socket scan when the source needs it, then [`resolve::resolve`].
pub async fn lookup_sessions(config: &RegistryConfig, msg: &LookupSessions) -> Vec<SessionTarget> {
    let sockets = if resolve::needs_scan(&msg.source) {
        match msg.user.uid.or_else(crate::users::process_uid) {
            Some(uid) => {
                let dirs = discovery::expand_socket_dirs(&config.socket_dirs, uid);
                let hostname = config
                    .hostname
                    .clone()
                    .unwrap_or_else(discovery::socket_hostname);
                discovery::discover(dirs, uid, hostname, config.probe_timeout).await
            }
            None => {
                tracing::warn!(target: "xgate::registry", user = %msg.user.username, "no uid for the user and none for this process: no local sessions");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    resolve::resolve(&msg.source, &sockets, &config.static_targets)
}

impl Handler<LookupSessions> for SessionRegistry {
    type Result = ResponseFuture<Vec<SessionTarget>>;

    fn handle(&mut self, msg: LookupSessions, _ctx: &mut Context<Self>) -> Self::Result {
        self.lookups = self.lookups.saturating_add(1);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let targets = lookup_sessions(&config, &msg).await;
            let kind = match msg.source {
                SessionSource::SocketScan => "socket-scan",
                SessionSource::Listed { .. } => "listed",
            };
            tracing::debug!(
                target: "xgate::registry",
                user = %msg.user.username,
                source = kind,
                displays = ?targets.iter().map(|t| t.display.as_str()).collect::<Vec<_>>(),
                "sessions looked up"
            );
            targets
        })
    }
}

impl Handler<RegisterConnection> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: RegisterConnection, _ctx: &mut Context<Self>) {
        tracing::debug!(target: "xgate::registry", id = %msg.summary.id, user = %msg.summary.username, display = %msg.summary.display, "connection registered");
        self.connections.insert(msg.summary, msg.stop);
    }
}

impl Handler<UnregisterConnection> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: UnregisterConnection, _ctx: &mut Context<Self>) {
        if self.connections.remove(msg.0) {
            tracing::debug!(target: "xgate::registry", id = %msg.0, "connection unregistered");
        }
    }
}

impl Handler<ListConnections> for SessionRegistry {
    type Result = Vec<ConnectionSummary>;

    fn handle(
        &mut self,
        _msg: ListConnections,
        _ctx: &mut Context<Self>,
    ) -> Vec<ConnectionSummary> {
        self.connections.prune();
        self.connections.list()
    }
}

impl Handler<StopConnectionById> for SessionRegistry {
    type Result = bool;

    fn handle(&mut self, msg: StopConnectionById, _ctx: &mut Context<Self>) -> bool {
        let found = self.connections.stop(msg.id, &msg.reason);
        tracing::info!(target: "xgate::registry", id = %msg.id, reason = %msg.reason, found, "stop requested");
        found
    }
}

impl Handler<GatewayEvent> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: GatewayEvent, _ctx: &mut Context<Self>) {
        self.counters.record(&msg);
        if let Some(hub) = &self.events {
            // No subscriber is not an error.
            let _ = hub.send(msg.clone());
        }
        if let GatewayEvent::ConnectionClosed { id, .. } = &msg {
            // a relay that ends reports it; its row goes even if it never unregisters
            self.connections.remove(*id);
        }
    }
}

impl Handler<GetRegistryInfo> for SessionRegistry {
    type Result = MessageResult<GetRegistryInfo>;

    fn handle(&mut self, _msg: GetRegistryInfo, _ctx: &mut Context<Self>) -> Self::Result {
        self.connections.prune();
        MessageResult(self.info())
    }
}

impl Handler<UpdateRegistryConfig> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: UpdateRegistryConfig, _ctx: &mut Context<Self>) {
        tracing::info!(
            target: "xgate::registry",
            socket_dirs = ?msg.0.socket_dirs,
            static_targets = msg.0.static_targets.len(),
            "registry configuration replaced"
        );
        self.config = Arc::new(msg.0);
    }
}
