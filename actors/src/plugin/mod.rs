//! Plug-in actors: kinds registered by name, the actor that hosts a Rust [`Plugin`], the `exec`
//! kind (a child process speaking JSON lines), and the table of auth hooks the Authenticator
//! consults (`hook:name=X` in an auth chain).
//!
//! The binary places one actor per `[[actor]]` entry under a `plugins` one_for_one supervisor
//! (permanent children). A plug-in that fails (an error from [`Plugin::on_event`], an `exec`
//! child that exits) exits abnormally through its [`FailFn`] and is restarted.
//!
//! Shipped kinds: [`audit_log`] (the Rust example: JSON lines of opened and closed connections
//! with user, target and bytes) and [`exec`].

pub mod audit_log;
pub mod exec;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use actix::prelude::*;
use tokio::sync::broadcast;
use tracing::{info, warn};
use xgate_messages::plugin::{
    AuthQuery, Plugin, PluginConfig, PluginError, PluginEvent, PluginFactory, EVENT_NAMES,
};
use xgate_messages::supervision::SupervisionEvent;
use xgate_messages::GatewayEvent;

/// The tracing target of plug-ins.
pub const LOG_TARGET: &str = "xgate::plugin";

/// Records an abnormal exit reason for the plug-in's supervisor (the binary passes the child's
/// exit handle here); the actor stops itself after calling it.
pub type FailFn = Box<dyn Fn(String)>;

/// Plug-in kinds by name.
#[derive(Clone)]
pub struct PluginKinds {
    /// The factories of Rust kinds; `exec` is built in and not listed here.
    factories: BTreeMap<String, PluginFactory>,
}

impl std::fmt::Debug for PluginKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginKinds")
            .field("kinds", &self.names())
            .finish()
    }
}

/// The kind name of [`exec`] plug-ins.
pub const EXEC_KIND: &str = "exec";

impl PluginKinds {
    /// The built-in kinds: `audit-log` (and `exec`, which is always there).
    pub fn builtin() -> Self {
        let mut k = PluginKinds {
            factories: BTreeMap::new(),
        };
        k.register(audit_log::KIND, audit_log::factory);
        k
    }

    /// Registers (or replaces) a kind.
    pub fn register(&mut self, kind: &str, factory: PluginFactory) {
        self.factories.insert(kind.to_owned(), factory);
    }

    /// Every kind name.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.factories.keys().cloned().collect();
        v.push(EXEC_KIND.into());
        v.sort();
        v
    }

    /// The factory of a Rust kind.
    pub fn factory(&self, kind: &str) -> Option<PluginFactory> {
        self.factories.get(kind).copied()
    }

    /// Checks a configuration: a known kind, known event names, the options its kind needs.
    pub fn check(&self, config: &PluginConfig) -> Result<(), PluginError> {
        for e in &config.events {
            if e != "all" && !EVENT_NAMES.contains(&e.as_str()) {
                return Err(PluginError::new(format!(
                    "actor '{}': unknown event '{e}' (all, {})",
                    config.name,
                    EVENT_NAMES.join(", ")
                )));
            }
        }
        if let Some(role) = config.option("role") {
            if role != "auth" && role != "events" {
                return Err(PluginError::new(format!(
                    "actor '{}': role must be auth or events, not '{role}'",
                    config.name
                )));
            }
        }
        if config.kind == EXEC_KIND {
            exec::ExecConfig::from_config(config).map(|_| ())
        } else if self.factory(&config.kind).is_some() {
            // The factory checks the rest when the actor starts (after privileges are dropped,
            // so that files are created by the service user).
            Ok(())
        } else {
            Err(PluginError::new(format!(
                "actor '{}': unknown kind '{}' (known: {})",
                config.name,
                config.kind,
                self.names().join(", ")
            )))
        }
    }
}

/// Whether a plug-in answers auth queries (`role = "auth"`).
pub fn is_auth_hook(config: &PluginConfig) -> bool {
    config.option("role") == Some("auth")
}

fn hooks() -> &'static Mutex<HashMap<String, Recipient<AuthQuery>>> {
    static HOOKS: OnceLock<Mutex<HashMap<String, Recipient<AuthQuery>>>> = OnceLock::new();
    HOOKS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Makes `recipient` the auth hook named `name` (each incarnation registers itself).
pub fn register_auth_hook(name: &str, recipient: Recipient<AuthQuery>) {
    hooks()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), recipient);
}

/// The current incarnation of the auth hook named `name`, if it is running.
pub fn auth_hook(name: &str) -> Option<Recipient<AuthQuery>> {
    hooks()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .filter(|r| r.connected())
        .cloned()
}

/// A stream of a broadcast receiver's values (lagging skips what was missed).
fn stream_of<T: Clone + Send + 'static, U: 'static>(
    rx: broadcast::Receiver<T>,
    wrap: fn(T) -> U,
) -> impl futures::Stream<Item = U> {
    futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => return Some((wrap(v), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(target: LOG_TARGET, "plug-in fell behind: {n} events missed");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Where a plug-in's events come from.
pub struct EventSources {
    /// Connection events (the registry's hub).
    pub gateway: Option<broadcast::Receiver<GatewayEvent>>,
    /// Supervision events (the tree's bus).
    pub supervision: Option<broadcast::Receiver<SupervisionEvent>>,
}

impl EventSources {
    /// Adds the streams a configuration subscribes to to an actor's context.
    fn attach<A>(self, config: &PluginConfig, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>> + StreamHandler<PluginEvent>,
    {
        let wants = |supervision: bool| {
            config
                .events
                .iter()
                .any(|e| e == "all" || EVENT_NAMES[3..].contains(&e.as_str()) == supervision)
        };
        if let (Some(rx), true) = (self.gateway, wants(false)) {
            ctx.add_stream(stream_of(rx, PluginEvent::Gateway));
        }
        if let (Some(rx), true) = (self.supervision, wants(true)) {
            ctx.add_stream(stream_of(rx, PluginEvent::Supervision));
        }
    }
}

/// The actor hosting a Rust [`Plugin`].
pub struct PluginHost {
    /// Its configuration.
    config: PluginConfig,
    /// The plug-in.
    plugin: Box<dyn Plugin>,
    /// Taken when the actor starts.
    sources: Option<EventSources>,
    /// Records an abnormal exit.
    fail: FailFn,
}

impl PluginHost {
    /// Builds the plug-in with `factory`; the error is the factory's.
    pub fn new(
        config: PluginConfig,
        factory: PluginFactory,
        sources: EventSources,
        fail: FailFn,
    ) -> Result<Self, PluginError> {
        let plugin = factory(&config)?;
        Ok(PluginHost {
            config,
            plugin,
            sources: Some(sources),
            fail,
        })
    }
}

impl Actor for PluginHost {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        info!(target: LOG_TARGET, name = %self.config.name, kind = self.plugin.kind(), "plug-in started");
        if let Some(s) = self.sources.take() {
            s.attach(&self.config, ctx);
        }
        if is_auth_hook(&self.config) {
            register_auth_hook(&self.config.name, ctx.address().recipient());
        }
    }
}

impl StreamHandler<PluginEvent> for PluginHost {
    fn handle(&mut self, event: PluginEvent, ctx: &mut Context<Self>) {
        if !self.config.wants(&event) {
            return;
        }
        if let Err(e) = self.plugin.on_event(&event) {
            warn!(target: LOG_TARGET, name = %self.config.name, "plug-in failed: {e}");
            (self.fail)(format!("plug-in {}: {e}", self.config.name));
            ctx.stop();
        }
    }

    /// The event sources live as long as the gateway; a closed one is not a reason to stop.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<AuthQuery> for PluginHost {
    type Result = Result<bool, PluginError>;

    fn handle(&mut self, q: AuthQuery, _ctx: &mut Context<Self>) -> Self::Result {
        Ok(self.plugin.authorize(&q).unwrap_or(false))
    }
}

/// A [`PluginConfig`] from the configuration's `[[actor]]` entry.
pub fn plugin_config(spec: &xgate_config::ActorSpec) -> PluginConfig {
    PluginConfig {
        kind: spec.kind.clone(),
        name: spec.name.clone(),
        events: spec.events.clone(),
        options: spec.options.clone(),
    }
}
