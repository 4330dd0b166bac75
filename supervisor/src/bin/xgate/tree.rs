//! The gateway's supervision tree:
//!
//! ```text
//! root (rest_for_one)
//!  |- registry        SessionRegistry, permanent
//!  |- connections     dynamic supervisor of ProxyRelays, temporary children
//!  |- starter         hands authenticated clients to `connections`, permanent
//!  |- authenticator   Authenticator, permanent
//!  |- upgrade         TransportUpgrade, permanent
//!  '- listeners       one_for_one supervisor: a Listener per bound socket, permanent
//! ```
//! Later children hold the addresses of earlier ones; `rest_for_one` restarts them when an
//! earlier one restarts, so they always hold live addresses. Relays are `temporary`: a restarted
//! relay would have no client (its socket is gone with it); a relay retries its server itself
//! while the server starts.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use xgate_actors::auth::{AuthSettings, Authenticator, StopGateway};
use xgate_actors::listener::{ConnectionLimits, Listener};
use xgate_actors::pipeline::Authenticated;
use xgate_actors::registry::{RegistryConfig, SessionRegistry};
use xgate_actors::relay::{ProxyRelay, RelaySettings};
use xgate_actors::upgrade::{TransportUpgrade, UpgradeSettings};
use xgate_supervisor::{
    ChildSpec, DynamicSupervisor, Intensity, Restart, StartChild, Strategy, Supervisor,
};

use crate::bind::Bound;

/// A client waiting to be taken by the relay started for it.
pub(crate) type RelaySlot = Arc<Mutex<Option<Authenticated>>>;

/// What the tree is built from.
pub(crate) struct TreeParts {
    /// Registry configuration.
    pub(crate) registry: RegistryConfig,
    /// Authenticator settings.
    pub(crate) auth: AuthSettings,
    /// Relay settings.
    pub(crate) relay: Arc<RelaySettings>,
    /// The upgrade stage's settings (timeouts, TLS, web files).
    pub(crate) upgrade: Arc<UpgradeSettings>,
    /// The bound listeners.
    pub(crate) bound: Vec<Bound>,
    /// Connection limits shared by the listeners.
    pub(crate) limits: Arc<ConnectionLimits>,
    /// Where an allowed `stop` request goes.
    pub(crate) stop: tokio::sync::mpsc::UnboundedSender<()>,
    /// The control socket, metrics listener and plug-ins, and the state reloads change.
    pub(crate) extras: crate::control::Extras,
}

/// A cell holding the current address of a supervised actor, for the children started after it.
type Cell<T> = Rc<RefCell<Option<T>>>;

fn cell<T>() -> Cell<T> {
    Rc::new(RefCell::new(None))
}

/// Hands authenticated clients to the connections supervisor.
struct Starter {
    connections: Option<Addr<DynamicSupervisor<RelaySlot>>>,
}

impl Actor for Starter {
    type Context = Context<Self>;
}

impl Handler<Authenticated> for Starter {
    type Result = ();

    fn handle(&mut self, msg: Authenticated, _ctx: &mut Self::Context) {
        if let Some(connections) = &self.connections {
            connections.do_send(StartChild(Arc::new(Mutex::new(Some(msg)))));
        }
    }
}

/// Turns an allowed `stop` request into a graceful shutdown of the tree.
struct Stopper(tokio::sync::mpsc::UnboundedSender<()>);

impl Actor for Stopper {
    type Context = Context<Self>;
}

impl Handler<StopGateway> for Stopper {
    type Result = ();

    fn handle(&mut self, _msg: StopGateway, _ctx: &mut Self::Context) {
        let _ = self.0.send(());
    }
}

/// Builds the root supervisor.
pub(crate) fn build(parts: TreeParts) -> Supervisor {
    let TreeParts {
        registry,
        auth,
        relay,
        upgrade,
        bound,
        limits,
        stop,
        extras,
    } = parts;
    // Restarted registries and authenticators take the configuration a reload left.
    let live = Rc::clone(&extras.live);
    live.registry_config.replace(registry);
    live.auth_settings.replace(auth);
    let registry_addr: Cell<Addr<SessionRegistry>> = cell();
    let connections_addr: Cell<Addr<DynamicSupervisor<RelaySlot>>> = cell();
    let starter_addr: Cell<Addr<Starter>> = cell();
    let auth_addr: Cell<Addr<Authenticator>> = cell();
    let upgrade_addr: Cell<Addr<TransportUpgrade>> = cell();
    let stopper = Stopper(stop).start();
    let ids = Arc::clone(&live.ids);

    let registry_spec = {
        let out = Rc::clone(&registry_addr);
        let live = Rc::clone(&live);
        ChildSpec::actor_with(
            "registry",
            move |ctx: &mut Context<SessionRegistry>, _exit| {
                out.replace(Some(ctx.address()));
                live.registry.replace(Some(ctx.address()));
                SessionRegistry::new(live.registry_config.borrow().clone())
                    .with_events(live.hub.clone())
            },
        )
    };

    let connections_spec = {
        let registry_addr = Rc::clone(&registry_addr);
        let out = Rc::clone(&connections_addr);
        ChildSpec::dynamic_supervisor(
            "connections",
            move || {
                let registry_addr = Rc::clone(&registry_addr);
                let relay = Arc::clone(&relay);
                let spec = ChildSpec::actor_with_args(
                    "relay",
                    move |slot: &RelaySlot, _ctx: &mut Context<ProxyRelay>, _exit| {
                        let client = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                        let registry = registry_addr.borrow().clone();
                        match registry {
                            Some(registry) => ProxyRelay::new(client, Arc::clone(&relay), registry),
                            None => ProxyRelay::new(
                                None,
                                Arc::clone(&relay),
                                SessionRegistry::new(RegistryConfig::default()).start(),
                            ),
                        }
                    },
                )
                .restart(Restart::Temporary);
                // Many clients may come and go; their failures are theirs alone.
                DynamicSupervisor::new("connections", spec)
                    .intensity(Intensity::new(1000, std::time::Duration::from_secs(1)))
            },
            move |addr| {
                out.replace(Some(addr));
            },
        )
    };

    let starter_spec = {
        let connections_addr = Rc::clone(&connections_addr);
        let out = Rc::clone(&starter_addr);
        ChildSpec::actor_with("starter", move |ctx: &mut Context<Starter>, _exit| {
            out.replace(Some(ctx.address()));
            Starter {
                connections: connections_addr.borrow().clone(),
            }
        })
    };

    let auth_spec = {
        let live = Rc::clone(&live);
        let registry_addr = Rc::clone(&registry_addr);
        let starter_addr = Rc::clone(&starter_addr);
        let out = Rc::clone(&auth_addr);
        ChildSpec::actor_with(
            "authenticator",
            move |ctx: &mut Context<Authenticator>, _exit| {
                out.replace(Some(ctx.address()));
                live.authenticator.replace(Some(ctx.address()));
                let registry = registry_addr
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| SessionRegistry::new(RegistryConfig::default()).start());
                let starter = starter_addr
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| Starter { connections: None }.start());
                Authenticator::new(
                    live.auth_settings.borrow().clone(),
                    registry,
                    starter.recipient(),
                    stopper.clone().recipient(),
                )
            },
        )
    };

    let upgrade_spec = {
        let live = Rc::clone(&live);
        let auth_addr = Rc::clone(&auth_addr);
        let out = Rc::clone(&upgrade_addr);
        ChildSpec::actor_with(
            "upgrade",
            move |ctx: &mut Context<TransportUpgrade>, _exit| {
                out.replace(Some(ctx.address()));
                live.upgrade.replace(Some(ctx.address()));
                let auth = auth_addr.borrow().clone();
                match auth {
                    Some(auth) => {
                        TransportUpgrade::new(Arc::clone(&upgrade), auth.clone().recipient())
                            .with_ssh_login(auth.recipient())
                    }
                    None => unreachable_auth(Arc::clone(&upgrade)),
                }
            },
        )
    };

    let listeners_spec = {
        let upgrade_addr = Rc::clone(&upgrade_addr);
        let live = Rc::clone(&live);
        for b in &bound {
            let entry = (b.info.name.clone(), b.socket.local_name());
            live.listeners.borrow_mut().push(entry);
        }
        let bound = Rc::new(bound);
        ChildSpec::supervisor("listeners", move || {
            let mut sup = Supervisor::new("listeners", Strategy::OneForOne)
                .intensity(Intensity::new(5, std::time::Duration::from_secs(10)));
            for b in bound.iter() {
                let upgrade_addr = Rc::clone(&upgrade_addr);
                let info = b.info.clone();
                let socket = b.socket.clone();
                let limits = Arc::clone(&limits);
                let ids = Arc::clone(&ids);
                let live = Rc::clone(&live);
                let path = format!("root/listeners/{}", info.name);
                sup = sup.child(ChildSpec::actor_with(
                    info.name.clone(),
                    move |ctx: &mut Context<Listener>, exit| {
                        live.register_killable(path.clone(), exit, ctx.address().recipient());
                        let upgrade = upgrade_addr.borrow().clone();
                        let upgrade = match upgrade {
                            Some(u) => u.recipient(),
                            None => unreachable_auth(Arc::new(UpgradeSettings::plain(
                                std::time::Duration::from_secs(1),
                            )))
                            .start()
                            .recipient(),
                        };
                        Listener::new(
                            info.clone(),
                            socket.clone(),
                            upgrade,
                            Arc::clone(&limits),
                            Arc::clone(&ids),
                        )
                    },
                ));
            }
            sup.child(crate::control::added_listeners_spec(&live))
        })
    };

    let root = Supervisor::new("root", Strategy::RestForOne)
        .intensity(Intensity::new(3, std::time::Duration::from_secs(10)))
        .events(live.bus.clone())
        .child(registry_spec)
        .child(connections_spec)
        .child(starter_spec)
        .child(auth_spec)
        .child(upgrade_spec)
        .child(listeners_spec);
    crate::control::children(extras)
        .into_iter()
        .fold(root, Supervisor::child)
}

/// An upgrade stage with nowhere to send connections. The tree starts children in order, so this
/// is never used; it exists so that a missing address is not a panic.
fn unreachable_auth(settings: Arc<UpgradeSettings>) -> TransportUpgrade {
    struct Nowhere;
    impl Actor for Nowhere {
        type Context = Context<Self>;
    }
    impl Handler<xgate_actors::pipeline::Upgraded> for Nowhere {
        type Result = ();
        fn handle(&mut self, _msg: xgate_actors::pipeline::Upgraded, _ctx: &mut Self::Context) {}
    }
    TransportUpgrade::new(settings, Nowhere.start().recipient())
}
