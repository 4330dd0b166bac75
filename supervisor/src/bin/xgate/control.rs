//! The binary's side of the control socket, the metrics listener and the plug-ins: the
//! [`ControlHooks`] (tree snapshots, reload, log level, kill), the children they add to the tree
//! and the state they share with the tree's factories.
//!
//! ```text
//! root (rest_for_one)
//!  |- ... registry, connections, starter, authenticator, upgrade
//!  |- listeners      one_for_one: a Listener per bound socket, and `added`, a dynamic
//!  |                 supervisor of the listeners a reload adds
//!  |- control        ControlSocket, permanent
//!  |- metrics        the bind-metrics listener, permanent (when configured)
//!  '- plugins        one_for_one: one actor per [[actor]], permanent
//! ```
//! The control socket, the metrics listener and the plug-ins come after the listeners so that,
//! under `rest_for_one`, their failures restart nothing but themselves, while a restart of the
//! registry (which they talk to) restarts them too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::LocalBoxFuture;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use xgate_actors::auth::{AuthSettings, Authenticator, ReplaceAuthSettings};
use xgate_actors::control::terminate::Terminate;
use xgate_actors::control::{
    http::MetricsHttp, ControlError, ControlHooks, ControlSocket, ErrorKind,
};
use xgate_actors::encoder::EncoderPool;
use xgate_actors::gateway::GatewayIdentity;
use xgate_actors::listener::{BoundSocket, ConnectionIds, ConnectionLimits, Listener};
use xgate_actors::plugin::{
    exec::ExecPlugin, EventSources, FailFn, PluginHost, PluginKinds, EXEC_KIND,
};
use xgate_actors::registry::{EventHub, RegistryConfig, SessionRegistry, UpdateRegistryConfig};
use xgate_actors::upgrade::TransportUpgrade;
use xgate_messages::encode::{EncoderInfo, GetEncoderInfo};
use xgate_messages::plugin::PluginConfig;
use xgate_messages::supervision::{SupervisionEvent, TreeSnapshot};
use xgate_messages::ListenerInfo;
use xgate_supervisor::{
    ChildSpec, DynamicSupervisor, EventBus, ExitHandle, GetSnapshot, Intensity, StartChild,
    Strategy, Supervisor,
};

/// Changes the log filter at run time.
pub(crate) type LogHandle = Box<dyn Fn(Option<&str>) -> Result<String, String>>;

/// Starts logging to stderr with `directives`, behind a filter `log-level` can replace.
pub(crate) fn init_logging(directives: &str) -> LogHandle {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let (filter, handle) = reload::Layer::new(EnvFilter::new(directives));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init();
    let current = RefCell::new(directives.to_owned());
    Box::new(move |new: Option<&str>| {
        if let Some(new) = new {
            let f = EnvFilter::try_new(new).map_err(|e| format!("invalid filter '{new}': {e}"))?;
            handle.reload(f).map_err(|e| e.to_string())?;
            current.replace(new.to_owned());
            tracing::info!(target: "xgate::control", filter = new, "log filter replaced");
        }
        Ok(current.borrow().clone())
    })
}

/// A worker the `kill` command can stop abnormally.
struct Killable {
    /// Records the abnormal exit reason.
    exit: ExitHandle,
    /// Stops the actor.
    stop: Recipient<Terminate>,
}

/// The arguments of a listener added by a reload.
pub(crate) type AddedArgs = (ListenerInfo, BoundSocket);

/// What the tree's factories and the control hooks share.
pub(crate) struct Live {
    /// The registry configuration, replaced by a reload (a restarted registry gets the new one).
    pub(crate) registry_config: RefCell<RegistryConfig>,
    /// The auth settings, replaced by a reload.
    pub(crate) auth_settings: RefCell<AuthSettings>,
    /// The root supervisor, once started.
    pub(crate) root: RefCell<Option<Addr<Supervisor>>>,
    /// The tree's event bus.
    pub(crate) bus: EventBus,
    /// Connection events.
    pub(crate) hub: EventHub,
    /// The current registry.
    pub(crate) registry: RefCell<Option<Addr<SessionRegistry>>>,
    /// The current authenticator.
    pub(crate) authenticator: RefCell<Option<Addr<Authenticator>>>,
    /// The current upgrade stage (for listeners added later).
    pub(crate) upgrade: RefCell<Option<Addr<TransportUpgrade>>>,
    /// The EncoderPool, once started (for `info` and the metrics).
    pub(crate) encoder: RefCell<Option<Addr<EncoderPool>>>,
    /// Workers `kill` can reach, by path (`root/listeners/NAME`).
    killables: RefCell<HashMap<String, Killable>>,
    /// Every listener's name and address, for `info` and to tell new listeners from old ones.
    pub(crate) listeners: RefCell<Vec<(String, String)>>,
    /// The `added` supervisor.
    added: RefCell<Option<Addr<DynamicSupervisor<AddedArgs>>>>,
    /// The listeners reloads added, restarted with `added`.
    added_list: RefCell<Vec<AddedArgs>>,
    /// `xgate run`'s options, to load the configuration again.
    options: Vec<String>,
    /// The gateway's identity.
    identity: GatewayIdentity,
    /// The log filter.
    log: LogHandle,
    /// Limits and numbering, shared with listeners added later.
    pub(crate) limits: Arc<ConnectionLimits>,
    /// Connection numbering.
    pub(crate) ids: Arc<ConnectionIds>,
}

impl Live {
    /// The shared state at start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        registry_config: RegistryConfig,
        auth_settings: AuthSettings,
        options: Vec<String>,
        identity: GatewayIdentity,
        log: LogHandle,
        limits: Arc<ConnectionLimits>,
    ) -> Rc<Live> {
        Rc::new(Live {
            registry_config: RefCell::new(registry_config),
            auth_settings: RefCell::new(auth_settings),
            root: RefCell::new(None),
            bus: EventBus::new(),
            hub: xgate_actors::registry::event_hub(),
            registry: RefCell::new(None),
            authenticator: RefCell::new(None),
            upgrade: RefCell::new(None),
            encoder: RefCell::new(None),
            killables: RefCell::new(HashMap::new()),
            listeners: RefCell::new(Vec::new()),
            added: RefCell::new(None),
            added_list: RefCell::new(Vec::new()),
            options,
            identity,
            log,
            limits,
            ids: Arc::new(ConnectionIds::default()),
        })
    }

    pub(crate) fn register_killable(
        &self,
        path: String,
        exit: ExitHandle,
        stop: Recipient<Terminate>,
    ) {
        self.killables
            .borrow_mut()
            .insert(path, Killable { exit, stop });
    }

    /// A listener actor for a bound socket, registered for `kill` under `path`.
    pub(crate) fn listener(
        self: &Rc<Self>,
        path: String,
        info: ListenerInfo,
        socket: BoundSocket,
        ctx: &mut Context<Listener>,
        exit: ExitHandle,
    ) -> Listener {
        self.register_killable(path, exit, ctx.address().recipient());
        let upgrade = self.upgrade.borrow().clone();
        let upgrade = match upgrade {
            Some(u) => u.recipient(),
            // The tree starts children in order, so this is never used.
            None => Nowhere.start().recipient(),
        };
        Listener::new(
            info,
            socket,
            upgrade,
            Arc::clone(&self.limits),
            Arc::clone(&self.ids),
        )
    }
}

/// Drops connections; stands in for an upgrade stage that is not there.
struct Nowhere;

impl Actor for Nowhere {
    type Context = Context<Self>;
}

impl Handler<xgate_actors::pipeline::Accepted> for Nowhere {
    type Result = ();
    fn handle(&mut self, _msg: xgate_actors::pipeline::Accepted, _ctx: &mut Self::Context) {}
}

/// The `added` dynamic supervisor: listeners started by reloads. When it (re)starts, it starts
/// again every listener added so far.
pub(crate) fn added_listeners_spec(live: &Rc<Live>) -> ChildSpec {
    let make_live = Rc::clone(live);
    let start_live = Rc::clone(live);
    ChildSpec::dynamic_supervisor(
        "added",
        move || {
            let live = Rc::clone(&make_live);
            let spec = ChildSpec::actor_with_args(
                "listener",
                move |args: &AddedArgs, ctx: &mut Context<Listener>, exit| {
                    let path = format!("root/listeners/added/{}", args.0.name);
                    live.listener(path, args.0.clone(), args.1.clone(), ctx, exit)
                },
            );
            DynamicSupervisor::new("added", spec)
                .intensity(Intensity::new(5, std::time::Duration::from_secs(10)))
        },
        move |addr| {
            for args in start_live.added_list.borrow().iter() {
                addr.do_send(StartChild(args.clone()));
            }
            start_live.added.replace(Some(addr));
        },
    )
}

/// The control hooks over the shared state.
struct Hooks(Rc<Live>);

impl ControlHooks for Hooks {
    fn gateway_info(&self) -> Value {
        let id = &self.0.identity;
        let listeners: Vec<Value> = self
            .0
            .listeners
            .borrow()
            .iter()
            .map(|(n, a)| json!({"name": n, "address": a}))
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uuid": id.uuid,
            "hostname": id.hostname,
            "pid": id.pid,
            "start-time": id.start_time,
            "listeners": listeners,
        })
    }

    fn tree(&self) -> LocalBoxFuture<'static, Option<TreeSnapshot>> {
        let root = self.0.root.borrow().clone();
        Box::pin(async move { root?.send(GetSnapshot).await.ok() })
    }

    fn supervision_events(&self) -> Option<broadcast::Receiver<SupervisionEvent>> {
        Some(self.0.bus.subscribe())
    }

    fn reload(&self) -> LocalBoxFuture<'static, Result<Value, String>> {
        let live = Rc::clone(&self.0);
        Box::pin(async move { reload(&live).await })
    }

    fn log_level(&self, filter: Option<String>) -> Result<String, String> {
        (self.0.log)(filter.as_deref())
    }

    fn encoder(&self) -> LocalBoxFuture<'static, Option<EncoderInfo>> {
        let pool = self.0.encoder.borrow().clone();
        Box::pin(async move { pool?.send(GetEncoderInfo).await.ok() })
    }

    fn kill(&self, path: &str, reason: &str) -> Result<(), ControlError> {
        let path = if path.starts_with("root/") {
            path.to_owned()
        } else {
            format!("root/{path}")
        };
        let killables = self.0.killables.borrow();
        let k = killables
            .get(&path)
            .filter(|k| k.stop.connected())
            .ok_or_else(|| {
                let mut known: Vec<&String> = killables
                    .iter()
                    .filter(|(_, k)| k.stop.connected())
                    .map(|(p, _)| p)
                    .collect();
                known.sort();
                ControlError::new(
                    ErrorKind::NotFound,
                    format!("no worker '{path}' that can be killed (known: {known:?})"),
                )
            })?;
        k.exit.fail(reason.to_owned());
        k.stop.do_send(Terminate {
            reason: reason.to_owned(),
        });
        Ok(())
    }
}

/// Loads the configuration again and applies it to new connections.
async fn reload(live: &Rc<Live>) -> Result<Value, String> {
    let cfg = xgate_config::load_from_args(&live.options).map_err(|e| e.to_string())?;
    let auth = AuthSettings::from_config(&cfg, live.identity.clone()).map_err(|e| e.to_string())?;
    let registry = RegistryConfig::from(&cfg);

    // Listeners: bind the new ones only (the old ones keep their sockets).
    let current: Vec<String> = live
        .listeners
        .borrow()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let mut fresh = cfg.clone();
    fresh
        .bind_tcp
        .retain(|b| !current.contains(&format!("tcp:{b}")));
    fresh
        .bind
        .retain(|b| !current.contains(&format!("unix:{}", b.path.display())));
    let bound = if fresh.bind_tcp.is_empty() && fresh.bind.is_empty() {
        Vec::new()
    } else {
        // After the privilege drop: the service user binds, and owns, the new sockets itself.
        crate::bind::bind_all(&fresh, None)?
    };
    let wanted: Vec<String> = cfg
        .bind_tcp
        .iter()
        .map(|b| format!("tcp:{b}"))
        .chain(
            cfg.bind
                .iter()
                .map(|b| format!("unix:{}", b.path.display())),
        )
        .collect();
    let not_removed: Vec<&String> = current.iter().filter(|n| !wanted.contains(n)).collect();

    // Everything is checked: apply.
    live.auth_settings.replace(auth.clone());
    if let Some(a) = live.authenticator.borrow().as_ref() {
        a.do_send(ReplaceAuthSettings(auth));
    }
    live.registry_config.replace(registry.clone());
    if let Some(r) = live.registry.borrow().as_ref() {
        r.do_send(UpdateRegistryConfig(registry.clone()));
    }
    let mut added = Vec::new();
    for b in bound {
        let address = b.socket.local_name();
        let args: AddedArgs = (b.info.clone(), b.socket.clone());
        live.added_list.borrow_mut().push(args.clone());
        live.listeners
            .borrow_mut()
            .push((b.info.name.clone(), address.clone()));
        if let Some(sup) = live.added.borrow().as_ref() {
            sup.do_send(StartChild(args));
        }
        println!("xgate: listening on {address} ({})", b.info.name);
        added.push(json!({"name": b.info.name, "address": address}));
    }
    tracing::info!(target: "xgate::control", added = added.len(), "configuration reloaded");
    Ok(json!({
        "listeners": {"added": added, "kept": current, "not-removed": not_removed},
        "auth": "replaced for new connections",
        "socket-dirs": registry.socket_dirs,
        "static-targets": registry.static_targets.len(),
        "note": "live connections are left alone; removed listeners and [[actor]] changes need a restart",
    }))
}

/// The control socket, bound before privileges are dropped.
pub(crate) struct ControlBind {
    /// The socket.
    pub(crate) socket: Arc<std::os::unix::net::UnixListener>,
    /// Its path.
    pub(crate) path: PathBuf,
}

/// Binds the control socket (mode 0600, owned by `owner` so that the service user can use it);
/// a failure is logged and the gateway runs without one.
pub(crate) fn bind_control(
    path: Option<&std::path::Path>,
    owner: Option<(u32, u32)>,
) -> Option<ControlBind> {
    let path = path?;
    match xgate_actors::control::bind_control_socket(path) {
        Ok(l) => {
            if let Some((uid, gid)) = owner {
                let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
                if let Some(parent) = path.parent() {
                    let _ = std::os::unix::fs::chown(parent, Some(uid), Some(gid));
                }
            }
            println!("xgate: control socket {}", path.display());
            Some(ControlBind {
                socket: Arc::new(l),
                path: path.to_owned(),
            })
        }
        Err(e) => {
            eprintln!("xgate: no control socket at {}: {e}", path.display());
            None
        }
    }
}

/// Binds the `bind-metrics` listener.
pub(crate) fn bind_metrics(
    addr: Option<std::net::SocketAddr>,
) -> Result<Option<Arc<std::net::TcpListener>>, String> {
    let Some(addr) = addr else { return Ok(None) };
    let l = std::net::TcpListener::bind(addr).map_err(|e| format!("bind-metrics={addr}: {e}"))?;
    if let Ok(a) = l.local_addr() {
        println!("xgate: metrics on http://{a}/metrics");
    }
    Ok(Some(Arc::new(l)))
}

/// What the extra children are built from.
pub(crate) struct Extras {
    /// The shared state.
    pub(crate) live: Rc<Live>,
    /// The control socket, if bound.
    pub(crate) control: Option<ControlBind>,
    /// The metrics listener, if configured.
    pub(crate) metrics: Option<Arc<std::net::TcpListener>>,
    /// The plug-ins.
    pub(crate) actors: Vec<PluginConfig>,
    /// The kinds they are built from.
    pub(crate) kinds: PluginKinds,
}

fn registry_or_dummy(live: &Live) -> Addr<SessionRegistry> {
    live.registry
        .borrow()
        .clone()
        .unwrap_or_else(|| SessionRegistry::new(RegistryConfig::default()).start())
}

/// The control, metrics and plugins children, in that order.
pub(crate) fn children(extras: Extras) -> Vec<ChildSpec> {
    let Extras {
        live,
        control,
        metrics,
        actors,
        kinds,
    } = extras;
    let mut out = Vec::new();
    let hooks: Rc<dyn ControlHooks> = Rc::new(Hooks(Rc::clone(&live)));
    if let Some(c) = control {
        let live = Rc::clone(&live);
        let hooks = Rc::clone(&hooks);
        out.push(ChildSpec::actor("control", move || {
            ControlSocket::new(
                Arc::clone(&c.socket),
                c.path.clone(),
                registry_or_dummy(&live),
                live.hub.clone(),
                Rc::clone(&hooks),
            )
        }));
    }
    if let Some(m) = metrics {
        let live = Rc::clone(&live);
        let hooks = Rc::clone(&hooks);
        out.push(ChildSpec::actor("metrics", move || {
            MetricsHttp::new(Arc::clone(&m), registry_or_dummy(&live), Rc::clone(&hooks))
        }));
    }
    if !actors.is_empty() {
        let actors = Rc::new(actors);
        let kinds = Rc::new(kinds);
        out.push(ChildSpec::supervisor("plugins", move || {
            let mut sup = Supervisor::new("plugins", Strategy::OneForOne)
                .intensity(Intensity::new(10, std::time::Duration::from_secs(10)));
            for cfg in actors.iter() {
                sup = sup.child(plugin_spec(&live, cfg.clone(), &kinds));
            }
            sup
        }));
    }
    out
}

fn sources(live: &Live) -> EventSources {
    EventSources {
        gateway: Some(live.hub.subscribe()),
        supervision: Some(live.bus.subscribe()),
    }
}

fn fail_fn(exit: &ExitHandle) -> FailFn {
    let exit = exit.clone();
    Box::new(move |reason| exit.fail(reason))
}

fn plugin_spec(live: &Rc<Live>, cfg: PluginConfig, kinds: &PluginKinds) -> ChildSpec {
    let live = Rc::clone(live);
    let path = format!("root/plugins/{}", cfg.name);
    if cfg.kind == EXEC_KIND {
        return ChildSpec::actor_with(
            cfg.name.clone(),
            move |ctx: &mut Context<ExecPlugin>, exit| {
                live.register_killable(path.clone(), exit.clone(), ctx.address().recipient());
                match ExecPlugin::new(cfg.clone(), sources(&live), fail_fn(&exit)) {
                    Ok(p) => p,
                    // Checked at start-up; a configuration cannot change under a running tree.
                    Err(e) => panic!("{e}"),
                }
            },
        );
    }
    let factory = kinds.factory(&cfg.kind);
    ChildSpec::actor_with(
        cfg.name.clone(),
        move |ctx: &mut Context<PluginHost>, exit| {
            live.register_killable(path.clone(), exit.clone(), ctx.address().recipient());
            let Some(factory) = factory else {
                panic!("unknown plug-in kind '{}'", cfg.kind)
            };
            match PluginHost::new(cfg.clone(), factory, sources(&live), fail_fn(&exit)) {
                Ok(p) => p,
                // A plug-in that cannot be built (its file cannot be opened) fails its start; the
                // supervisor retries within its intensity.
                Err(e) => panic!("{e}"),
            }
        },
    )
}

/// The plug-in configurations from `[[actor]]`, checked against the known kinds.
pub(crate) fn plugin_configs(
    cfg: &xgate_config::Config,
    kinds: &PluginKinds,
) -> Result<Vec<PluginConfig>, String> {
    cfg.actor
        .iter()
        .map(|a| {
            let p = xgate_actors::plugin::plugin_config(a);
            kinds.check(&p).map_err(|e| e.to_string())?;
            Ok(p)
        })
        .collect()
}
