//! The Authenticator actor: runs xpra's handshake (hello, challenge, response) for each upgraded
//! connection against the auth chain of its transport, answers one-shot requests, asks the
//! SessionRegistry for the user's sessions and hands the client on to a ProxyRelay.
//!
//! Each handshake is its own task, so a slow client or a slow backend delays nobody else; the
//! actor holds what handshakes share (settings, failure limits, used salts) and can swap the
//! settings on reload without touching handshakes already under way.

pub mod backends;
pub mod certificate;
pub mod challenge;
pub mod exec;
pub mod failures;
pub mod handshake;
pub mod hook;
#[cfg(feature = "pam")]
pub mod pam;
pub mod peercred;
pub mod sql;
pub mod ssh;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use xgate_config::{Config, ListenerKind};
use xgate_messages::{ConnectionInfo, TransportKind};

use crate::gateway::GatewayIdentity;
use crate::pipeline::{Authenticated, Upgraded};
use crate::registry::SessionRegistry;
use backends::{Backend, BackendError};
use challenge::SaltLedger;
use failures::FailureLimiter;

/// Asks the gateway to stop, after an allowed `stop` request.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopGateway;

/// What the handshakes need from the configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The auth chain of each transport (`tcp-auth`, `auth`, ...).
    pub chains: HashMap<TransportKind, Vec<Backend>>,
    /// Per-listener `auth=` overrides, by listener name.
    pub listener_chains: HashMap<String, Vec<Backend>>,
    /// `login-timeout`: from the connection to an accepted hello.
    pub login_timeout: Duration,
    /// How long a client may take to answer a challenge (xpra's 120 s).
    pub challenge_timeout: Duration,
    /// `auth-failure-delay`: how long a failed client waits for its `disconnect`.
    pub failure_delay: Duration,
    /// `max-initial-packet-size`: the chunk cap before authentication.
    pub max_initial_packet_size: u32,
    /// `max-packet-size`: the chunk cap once authenticated.
    pub max_packet_size: u32,
    /// `compression-level` for packets the gateway sends when the client does not say.
    pub compression_level: u8,
    /// `allow-stop`: whether an authenticated `stop` request stops the gateway.
    pub allow_stop: bool,
    /// `max-auth-failures`, `auth-failure-window`, `auth-failure-ban-time`.
    pub failure_limits: (u32, Duration, Duration),
    /// The gateway's own identity, for one-shot replies.
    pub identity: GatewayIdentity,
    /// `proxy-start-sessions` and its command: whether and how clients' sessions start.
    pub start: crate::registry::start::StartSettings,
}

impl AuthSettings {
    /// Settings from a validated configuration.
    pub fn from_config(cfg: &Config, identity: GatewayIdentity) -> Result<Self, BackendError> {
        let build = |specs: &[xgate_config::AuthSpec]| {
            specs
                .iter()
                .map(Backend::from_spec)
                .collect::<Result<Vec<_>, _>>()
        };
        let mut chains = HashMap::new();
        for (transport, kind) in [
            (TransportKind::Tcp, ListenerKind::Tcp),
            (TransportKind::Ssl, ListenerKind::Ssl),
            (TransportKind::Ws, ListenerKind::Ws),
            (TransportKind::Wss, ListenerKind::Wss),
            (TransportKind::Ssh, ListenerKind::Ssh),
            (TransportKind::Unix, ListenerKind::Unix),
        ] {
            chains.insert(transport, build(cfg.auth_for(kind))?);
        }
        let mut listener_chains = HashMap::new();
        // The names are the listeners' own (`supervisor`'s bind: `PREFIX:SPEC`).
        for (prefix, specs) in [
            ("tcp", &cfg.bind_tcp),
            ("ssl", &cfg.bind_ssl),
            ("ws", &cfg.bind_ws),
            ("wss", &cfg.bind_wss),
            ("ssh", &cfg.bind_ssh),
        ] {
            for b in specs {
                if !b.auth.is_empty() {
                    listener_chains.insert(format!("{prefix}:{b}"), build(&b.auth)?);
                }
            }
        }
        for b in &cfg.bind {
            if !b.auth.is_empty() {
                listener_chains.insert(format!("unix:{}", b.path.display()), build(&b.auth)?);
            }
        }
        Ok(AuthSettings {
            chains,
            listener_chains,
            login_timeout: cfg.login_timeout,
            challenge_timeout: Duration::from_secs(120),
            failure_delay: cfg.auth_failure_delay,
            max_initial_packet_size: u32::try_from(cfg.max_initial_packet_size).unwrap_or(u32::MAX),
            max_packet_size: u32::try_from(cfg.max_packet_size).unwrap_or(u32::MAX),
            compression_level: cfg.compression_level,
            allow_stop: cfg.allow_stop,
            start: crate::registry::start::StartSettings::from_config(cfg),
            failure_limits: (
                cfg.max_auth_failures,
                cfg.auth_failure_window,
                cfg.auth_failure_ban_time,
            ),
            identity,
        })
    }

    /// The chain for a connection: its listener's override, else its transport's.
    pub fn chain_for(&self, info: &ConnectionInfo) -> &[Backend] {
        self.listener_chains
            .get(&info.listener.name)
            .or_else(|| self.chains.get(&info.transport))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Replaces the settings for connections that arrive from now on (a reload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplaceAuthSettings(pub AuthSettings);

/// The Authenticator actor.
pub struct Authenticator {
    /// What every handshake shares: limits, used salts, peers. It survives a reload.
    shared: Arc<handshake::Shared>,
    /// The settings for connections arriving from now on.
    settings: Arc<AuthSettings>,
}

impl Authenticator {
    /// An Authenticator consulting `registry` and handing authenticated clients to `relays`.
    pub fn new(
        settings: AuthSettings,
        registry: Addr<SessionRegistry>,
        relays: Recipient<Authenticated>,
        shutdown: Recipient<StopGateway>,
    ) -> Self {
        let (max, window, ban) = settings.failure_limits;
        Authenticator {
            shared: Arc::new(handshake::Shared {
                by_address: Mutex::new(FailureLimiter::new(max, window, ban)),
                by_user: Mutex::new(FailureLimiter::new(max, window, ban)),
                ledger: Mutex::new(SaltLedger::default()),
                registry,
                relays,
                shutdown,
                starter: crate::registry::start::Starter::default(),
            }),
            settings: Arc::new(settings),
        }
    }
}

impl Actor for Authenticator {
    type Context = Context<Self>;
}

impl Handler<Upgraded> for Authenticator {
    type Result = ();

    fn handle(&mut self, msg: Upgraded, _ctx: &mut Self::Context) {
        tokio::spawn(handshake::run(
            Arc::clone(&self.shared),
            Arc::clone(&self.settings),
            msg,
        ));
    }
}

impl Handler<ReplaceAuthSettings> for Authenticator {
    type Result = ();

    fn handle(&mut self, msg: ReplaceAuthSettings, _ctx: &mut Self::Context) {
        self.settings = Arc::new(msg.0);
    }
}
