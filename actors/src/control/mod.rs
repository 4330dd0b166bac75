//! The ControlSocket actor: a unix socket (mode 0600) speaking JSON lines for scripts and
//! `xgate ctl`: `info`, `sessions`, `connections`, `stop`, `tree`, `reload`, `log-level`,
//! `subscribe`, `metrics`, `kill` and `help` ([`protocol`] has the shapes; docs/control.md
//! documents them).
//!
//! What only the binary knows (the supervision tree, the configuration to reload, the log
//! filter) comes through the [`ControlHooks`] trait object it provides, so this crate needs no
//! dependency on the supervisor crate. Connection events come from the SessionRegistry's event
//! hub ([`crate::registry::EventHub`]).
//!
//! Each client connection is served inside the actor's own future: when the actor stops (or is
//! restarted), its connections close with it. A bad line gets an error answer and the connection
//! stays usable; lines are bounded ([`protocol::MAX_REQUEST_LINE`]).

pub mod http;
pub mod metrics;
pub mod protocol;
pub mod terminate;
pub mod xpra;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tracing::{debug, info, warn};
use xgate_messages::encode::EncoderInfo;
use xgate_messages::plugin::{PluginEvent, EVENT_NAMES};
use xgate_messages::supervision::{SupervisionEvent, TreeSnapshot};
use xgate_messages::{
    ConnectionId, GatewayEvent, ListConnections, LookupSessions, SessionSource, StopConnectionById,
    UserIdentity,
};

use crate::registry::{GetRegistryInfo, SessionRegistry};
pub use protocol::{ControlError, ErrorKind, Request};

/// The tracing target of the control socket.
pub const LOG_TARGET: &str = "xgate::control";

/// What the control socket asks of the binary: the parts of the gateway this crate cannot see.
pub trait ControlHooks {
    /// The gateway's identity and listeners, for `info`.
    fn gateway_info(&self) -> Value;
    /// A snapshot of the whole supervision tree; `None` when the root does not answer.
    fn tree(&self) -> LocalBoxFuture<'static, Option<TreeSnapshot>>;
    /// A receiver of supervision events from now on.
    fn supervision_events(&self) -> Option<broadcast::Receiver<SupervisionEvent>>;
    /// Re-reads the configuration and applies what can be applied without touching live
    /// connections; answers a report of what changed.
    fn reload(&self) -> LocalBoxFuture<'static, Result<Value, String>>;
    /// Shows (`None`) or replaces the log filter; answers the filter in effect.
    fn log_level(&self, filter: Option<String>) -> Result<String, String>;
    /// Makes the worker at `path` exit abnormally with `reason`, so that its supervisor restarts
    /// it; `Err` when there is no such worker (or it cannot be killed).
    fn kill(&self, path: &str, reason: &str) -> Result<(), ControlError>;
    /// The EncoderPool's probe results and counters, for `info` and the metrics; `None` when the
    /// gateway runs no pool (or it does not answer).
    fn encoder(&self) -> LocalBoxFuture<'static, Option<EncoderInfo>> {
        Box::pin(async { None })
    }
}

/// Binds the control socket at `path` with mode 0600: creates the parent directory (0700) if
/// needed and replaces a stale socket, but refuses to steal one that answers.
pub fn bind_control_socket(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another gateway", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // No window where the socket is open to others: bind under a umask-free mode, then chmod.
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// What a served connection needs; shared by every connection of one actor incarnation.
struct Env {
    /// The session registry.
    registry: Addr<SessionRegistry>,
    /// Connection events.
    events: broadcast::Sender<GatewayEvent>,
    /// The binary's side.
    hooks: Rc<dyn ControlHooks>,
}

/// The ControlSocket actor.
pub struct ControlSocket {
    /// The bound socket, shared with every incarnation (bound by the binary before it drops root).
    socket: Arc<std::os::unix::net::UnixListener>,
    /// Its path, for logs.
    path: PathBuf,
    /// What connections are served with.
    env: Rc<Env>,
}

impl ControlSocket {
    /// A control socket on a bound listener.
    pub fn new(
        socket: Arc<std::os::unix::net::UnixListener>,
        path: PathBuf,
        registry: Addr<SessionRegistry>,
        events: broadcast::Sender<GatewayEvent>,
        hooks: Rc<dyn ControlHooks>,
    ) -> Self {
        ControlSocket {
            socket,
            path,
            env: Rc::new(Env {
                registry,
                events,
                hooks,
            }),
        }
    }
}

impl Actor for ControlSocket {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let env = Rc::clone(&self.env);
        let socket = Arc::clone(&self.socket);
        info!(target: LOG_TARGET, path = %self.path.display(), "control socket listening");
        ctx.spawn(
            async move { accept_loop(socket, env).await }
                .into_actor(self)
                .map(|result, _act, ctx| {
                    if let Err(e) = result {
                        warn!(target: LOG_TARGET, "control socket failed: {e}");
                    }
                    ctx.stop();
                }),
        );
    }
}

/// Who may use the socket besides the file mode: root and the gateway's own user.
fn peer_allowed(stream: &tokio::net::UnixStream) -> bool {
    match stream.peer_cred() {
        Ok(c) => c.uid() == 0 || c.uid() == crate::users::own_uid(),
        Err(_) => false,
    }
}

async fn accept_loop(
    socket: Arc<std::os::unix::net::UnixListener>,
    env: Rc<Env>,
) -> io::Result<()> {
    let std = socket.try_clone()?;
    std.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(std)?;
    let mut clients = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    clients.push(serve(stream, Rc::clone(&env)));
                }
                Err(e) => {
                    warn!(target: LOG_TARGET, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            },
            Some(()) = clients.next(), if !clients.is_empty() => {}
        }
    }
}

type Writer = FramedWrite<tokio::net::unix::OwnedWriteHalf, LinesCodec>;

async fn write(out: &mut Writer, v: &Value) -> bool {
    out.send(v.to_string()).await.is_ok()
}

/// Serves one client until it closes.
async fn serve(stream: tokio::net::UnixStream, env: Rc<Env>) {
    let allowed = peer_allowed(&stream);
    let (rd, wr) = stream.into_split();
    let mut lines = FramedRead::new(
        rd,
        LinesCodec::new_with_max_length(protocol::MAX_REQUEST_LINE),
    );
    let mut out = FramedWrite::new(wr, LinesCodec::new());
    if !allowed {
        let e = ControlError::new(
            ErrorKind::Forbidden,
            "only root and the gateway's user may use this socket",
        );
        let _ = write(&mut out, &protocol::answer(None, None, Err(e))).await;
        return;
    }
    debug!(target: LOG_TARGET, "control client connected");
    loop {
        let line = match lines.next().await {
            Some(Ok(line)) => line,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                let e = ControlError::new(
                    ErrorKind::BadRequest,
                    format!("request longer than {} bytes", protocol::MAX_REQUEST_LINE),
                );
                if !write(&mut out, &protocol::answer(None, None, Err(e))).await {
                    return;
                }
                continue;
            }
            Some(Err(_)) | None => return,
        };
        if line.trim().is_empty() {
            continue;
        }
        let parsed = protocol::parse_line(&line);
        let command = parsed.command.clone();
        let tag = parsed.tag.clone();
        let request = match parsed.request {
            Ok(r) => r,
            Err(e) => {
                debug!(target: LOG_TARGET, "bad request: {e}");
                if !write(
                    &mut out,
                    &protocol::answer(command.as_deref(), tag.as_ref(), Err(e)),
                )
                .await
                {
                    return;
                }
                continue;
            }
        };
        debug!(target: LOG_TARGET, command = request.name(), "request");
        if let Request::Subscribe { events } = &request {
            match Filter::new(events.as_deref()) {
                Ok(filter) => {
                    subscribe(&env, filter, tag, &mut lines, &mut out).await;
                    return;
                }
                Err(e) => {
                    if !write(
                        &mut out,
                        &protocol::answer(Some("subscribe"), tag.as_ref(), Err(e)),
                    )
                    .await
                    {
                        return;
                    }
                    continue;
                }
            }
        }
        let result = handle(&env, request.clone()).await;
        if let Err(e) = &result {
            debug!(target: LOG_TARGET, command = request.name(), "refused: {e}");
        }
        if !write(
            &mut out,
            &protocol::answer(Some(request.name()), tag.as_ref(), result),
        )
        .await
        {
            return;
        }
    }
}

/// Which events a subscription wants.
struct Filter {
    /// Event names (an empty list never happens: `all` expands).
    names: Vec<&'static str>,
}

impl Filter {
    fn new(events: Option<&[String]>) -> Result<Filter, ControlError> {
        let asked: Vec<&str> = match events {
            None => vec!["all"],
            Some([]) => vec!["all"],
            Some(e) => e.iter().map(String::as_str).collect(),
        };
        let mut names = Vec::new();
        for a in asked {
            let add: Vec<&'static str> = match a {
                "all" => EVENT_NAMES.to_vec(),
                "gateway" => EVENT_NAMES[..3].to_vec(),
                "supervision" => EVENT_NAMES[3..].to_vec(),
                other => match EVENT_NAMES.iter().find(|n| **n == other) {
                    Some(n) => vec![*n],
                    None => {
                        return Err(ControlError::new(
                            ErrorKind::BadRequest,
                            format!(
                                "unknown event '{other}' (all, gateway, supervision, {})",
                                EVENT_NAMES.join(", ")
                            ),
                        ))
                    }
                },
            };
            for n in add {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Ok(Filter { names })
    }

    fn wants(&self, e: &PluginEvent) -> bool {
        self.names.contains(&e.name())
    }
}

/// The line an event is sent as.
pub fn event_line(e: &PluginEvent) -> Value {
    json!({
        "type": "event",
        "source": if e.is_supervision() { "supervision" } else { "gateway" },
        "name": e.name(),
        "event": e,
    })
}

async fn subscribe(
    env: &Env,
    filter: Filter,
    tag: Option<Value>,
    lines: &mut FramedRead<tokio::net::unix::OwnedReadHalf, LinesCodec>,
    out: &mut Writer,
) {
    let mut gateway = env.events.subscribe();
    let mut supervision = env.hooks.supervision_events();
    let ok = protocol::answer(
        Some("subscribe"),
        tag.as_ref(),
        Ok(json!({"events": filter.names})),
    );
    if !write(out, &ok).await {
        return;
    }
    info!(target: LOG_TARGET, events = ?filter.names, "subscriber connected");
    loop {
        let event = tokio::select! {
            e = gateway.recv() => match e {
                Ok(e) => PluginEvent::Gateway(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    if !write(out, &json!({"type": "lagged", "missed": n})).await { return; }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            e = async {
                match supervision.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => futures::future::pending().await,
                }
            } => match e {
                Ok(e) => PluginEvent::Supervision(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    if !write(out, &json!({"type": "lagged", "missed": n})).await { return; }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => { supervision = None; continue; }
            },
            // Input during a subscription is ignored; the end of input ends it.
            l = lines.next() => match l {
                Some(Ok(_)) | Some(Err(LinesCodecError::MaxLineLengthExceeded)) => continue,
                _ => return,
            },
        };
        if filter.wants(&event) && !write(out, &event_line(&event)).await {
            return;
        }
    }
}

fn unavailable(what: &str) -> ControlError {
    ControlError::new(ErrorKind::Unavailable, format!("{what} does not answer"))
}

/// Answers one request (all but `subscribe`).
async fn handle(env: &Env, request: Request) -> Result<Value, ControlError> {
    match request {
        Request::Help => Ok(Value::Object(
            protocol::COMMANDS
                .iter()
                .map(|(c, h)| ((*c).to_owned(), json!(h)))
                .collect(),
        )),
        Request::Info => {
            let registry = env
                .registry
                .send(GetRegistryInfo)
                .await
                .map_err(|_| unavailable("the session registry"))?;
            let encoder = env
                .hooks
                .encoder()
                .await
                .and_then(|e| serde_json::to_value(e).ok());
            Ok(
                json!({"gateway": env.hooks.gateway_info(), "registry": registry, "encoder": encoder}),
            )
        }
        Request::Connections => {
            let rows = env
                .registry
                .send(ListConnections)
                .await
                .map_err(|_| unavailable("the session registry"))?;
            Ok(connections_json(&rows))
        }
        Request::Sessions { user } => {
            let name = user.unwrap_or_else(crate::users::own_name);
            let account = crate::users::by_name(&name).ok_or_else(|| {
                ControlError::new(ErrorKind::NotFound, format!("no user '{name}'"))
            })?;
            let targets = env
                .registry
                .send(LookupSessions {
                    user: UserIdentity {
                        username: name.clone(),
                        uid: Some(account.uid),
                        gid: Some(account.gid),
                    },
                    source: SessionSource::SocketScan,
                })
                .await
                .map_err(|_| unavailable("the session registry"))?;
            let sessions: Vec<Value> = targets
                .iter()
                .map(|t| {
                    json!({
                        "display": t.display,
                        "address": t.address.to_string(),
                        "source": t.source,
                    })
                })
                .collect();
            Ok(json!({"user": name, "sessions": sessions}))
        }
        Request::Stop { connection, reason } => {
            let id = ConnectionId(connection);
            let found = env
                .registry
                .send(StopConnectionById {
                    id,
                    reason: reason.unwrap_or_else(|| xpra::STOP_REASON.into()),
                })
                .await
                .map_err(|_| unavailable("the session registry"))?;
            if found {
                info!(target: LOG_TARGET, %id, "connection stopped through the control socket");
                Ok(json!({"stopped": connection}))
            } else {
                Err(ControlError::new(
                    ErrorKind::NotFound,
                    format!("no connection {connection}"),
                ))
            }
        }
        Request::Tree => {
            let tree = env
                .hooks
                .tree()
                .await
                .ok_or_else(|| unavailable("the supervision tree"))?;
            serde_json::to_value(&tree)
                .map_err(|e| ControlError::new(ErrorKind::Failed, e.to_string()))
        }
        Request::Reload => {
            info!(target: LOG_TARGET, "reload requested");
            env.hooks
                .reload()
                .await
                .map_err(|e| ControlError::new(ErrorKind::Failed, e))
        }
        Request::LogLevel { filter } => env
            .hooks
            .log_level(filter)
            .map(|f| json!({"filter": f}))
            .map_err(|e| ControlError::new(ErrorKind::BadRequest, e)),
        Request::Metrics => {
            let tree = env.hooks.tree().await;
            let encoder = env.hooks.encoder().await;
            let text = metrics::collect(&env.registry, tree, encoder.as_ref()).await;
            Ok(json!({"content-type": metrics::CONTENT_TYPE, "text": text}))
        }
        Request::Kill { child, reason } => {
            let reason = reason.unwrap_or_else(|| "killed through the control socket".into());
            env.hooks.kill(&child, &reason)?;
            info!(target: LOG_TARGET, child, reason, "child killed through the control socket");
            Ok(json!({"killed": child}))
        }
        Request::Subscribe { .. } => Err(ControlError::new(
            ErrorKind::BadRequest,
            "subscribe is answered by the connection loop",
        )),
    }
}

/// The connection table as the control socket shows it.
pub fn connections_json(rows: &[xgate_messages::ConnectionSummary]) -> Value {
    Value::Array(
        rows.iter()
            .map(|s| {
                json!({
                    "id": s.id.0,
                    "username": s.username,
                    "peer": s.peer.to_string(),
                    "transport": s.transport.xpra_name(),
                    "display": s.display,
                    "target": s.target,
                    "client-version": s.client_version,
                    "started-unix-ms": s.started_unix_ms,
                })
            })
            .collect(),
    )
}
