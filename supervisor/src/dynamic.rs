//! The dynamic supervisor: many children of one kind, started on demand (OTP
//! `simple_one_for_one`, Elixir's `DynamicSupervisor`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, MessageResult, Running,
    StreamHandler,
};
use xgate_messages::supervision::{
    ChildKind, ChildSnapshot, ChildState, StrategyKind, SupervisionEvent, TreeSnapshot,
};

use crate::error::SupervisorError;
use crate::events::EventBus;
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::link::{Control, ExitNotice, Link};
use crate::node::Node;
use crate::reason::{ExitReason, REACHED_MAX_RESTART_INTENSITY};
use crate::shutdown::RootHandle;
use crate::snapshot::{supervisor_node, GetSnapshot, Subscribe};
use crate::spec::{ChildSpec, Shutdown, StartCtx};

/// The id of a dynamic child; it keeps its id across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Starts a child with these arguments (OTP `supervisor:start_child(Sup, Args)`); the spec's
/// factory gets them on every restart.
#[derive(Debug, Clone)]
pub struct StartChild<Args>(pub Args);

impl<Args: 'static> Message for StartChild<Args> {
    type Result = Result<ChildId, SupervisorError>;
}

/// Stops a dynamic child within its shutdown timeout and forgets it, whatever its restart type
/// (OTP `supervisor:terminate_child(Sup, Pid)`). Answers once the stop has been requested.
#[derive(Debug, Clone, Copy)]
pub struct TerminateChild(pub ChildId);

impl Message for TerminateChild {
    type Result = Result<(), SupervisorError>;
}

/// Asks for child counts (OTP `supervisor:count_children`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountChildren;

impl Message for CountChildren {
    type Result = ChildCounts;
}

/// Answer to [`CountChildren`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// Children known to the supervisor: running, or waiting for a restart (OTP `specs`).
    pub children: usize,
    /// Children running now (OTP `active`).
    pub active: usize,
    /// Restarts done since the supervisor started.
    pub restarts: u64,
}

/// Bookkeeping for one dynamic child; kept small, there may be many.
struct DynChild<Args> {
    args: Args,
    control: Option<Arc<Control>>,
    started_at: Option<Instant>,
    last_exit: Option<Box<ExitReason>>,
    incarnation: u32,
    restart_count: u32,
    /// Restarts in a row without running longer than MaxT, for the backoff.
    consecutive: u32,
    state: ChildState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Stopped,
}

/// An OTP `simple_one_for_one` supervisor, as an actix actor: it starts no child by itself; each
/// [`StartChild`] starts one more child from the same [`ChildSpec`] with its own arguments. Each
/// child is restarted on its own, as its restart type says (a `transient` child only after an
/// abnormal exit); a child that is not restarted is forgotten. Restart intensity and backoff work
/// as in [`Supervisor`](crate::Supervisor). On shutdown all children are asked to stop at once
/// (their order is unspecified, as in OTP) and those still running after the spec's shutdown
/// timeout are aborted.
///
/// ```no_run
/// # use actix::prelude::*;
/// # use xgate_supervisor::*;
/// # struct Relay(u32); impl Actor for Relay { type Context = Context<Self>; }
/// # async fn demo() -> Result<(), SupervisorError> {
/// let spec = ChildSpec::actor_with_args("relay", |port: &u32, _ctx, _exit| Relay(*port))
///     .restart(Restart::Transient);
/// let root = DynamicSupervisor::new("connections", spec).start_root();
/// let id = start_child(root.addr().expect("started"), 10000).await?;
/// # Ok(()) }
/// ```
pub struct DynamicSupervisor<Args: Clone + Unpin + 'static> {
    /// Its place in the tree and restart policy.
    pub(crate) node: Node,
    spec: ChildSpec<Args>,
    max_children: Option<usize>,
    children: HashMap<u64, DynChild<Args>>,
    next_id: u64,
    running: usize,
    restarts: u64,
    phase: Phase,
}

impl<Args: Clone + Unpin + 'static> fmt::Debug for DynamicSupervisor<Args> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("path", &self.node.path)
            .field("spec", &self.spec)
            .field("children", &self.children.len())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<Args: Clone + Unpin + 'static> DynamicSupervisor<Args> {
    /// A dynamic supervisor named `name` whose children are all built from `spec`, with OTP's
    /// default intensity (1 restart in 5 s) and no backoff.
    pub fn new(name: impl Into<String>, spec: ChildSpec<Args>) -> Self {
        Self {
            node: Node::new(name.into()),
            spec,
            max_children: None,
            children: HashMap::new(),
            next_id: 0,
            running: 0,
            restarts: 0,
            phase: Phase::Running,
        }
    }

    /// Sets the restart intensity (MaxR in MaxT), counted over all children.
    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.node.window = RestartWindow::new(intensity);
        self
    }

    /// Waits between a child's consecutive restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.node.backoff = Some(backoff);
        self
    }

    /// Refuses [`StartChild`] beyond this many children (Elixir's `max_children`).
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// Publishes events on `events` instead of a bus of its own.
    pub fn events(mut self, events: EventBus) -> Self {
        self.node.events = events;
        self
    }

    /// A receiver of this supervisor's events.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SupervisionEvent> {
        self.node.subscribe()
    }

    /// Starts it as the root of a tree on the current arbiter.
    pub fn start_root(mut self) -> RootHandle<Self> {
        RootHandle::spawn(move |exit| {
            self.node.exit = Some(exit);
            self
        })
    }

    fn child_name(&self, id: u64) -> String {
        format!("{}#{id}", self.spec.name)
    }

    fn start(&mut self, id: u64) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let (control, link) =
            Link::next_incarnation(&self.node.exits_tx, id, &mut child.incarnation);
        child.control = Some(control);
        child.state = ChildState::Running;
        child.started_at = Some(Instant::now());
        self.running += 1;
        let path = match self.spec.kind {
            ChildKind::Supervisor => format!("{}/{}#{id}", self.node.path, self.spec.name),
            ChildKind::Worker => String::new(),
        };
        (self.spec.start)(
            &child.args,
            StartCtx {
                link,
                events: &self.node.events,
                path,
            },
        );
        let restart_count = child.restart_count;
        self.node.events.emit(|| SupervisionEvent::ChildStarted {
            supervisor: self.node.path.clone(),
            child: self.child_name(id),
            kind: self.spec.kind,
            restart_count,
        });
    }

    fn emit_exit(&self, id: u64, reason: &ExitReason, will_restart: bool) {
        self.node.events.emit(|| SupervisionEvent::ChildExited {
            supervisor: self.node.path.clone(),
            child: self.child_name(id),
            reason: reason.to_string(),
            abnormal: reason.is_abnormal(),
            will_restart,
        });
    }

    fn on_notice(&mut self, notice: ExitNotice, ctx: &mut Context<Self>) {
        let id = notice.key;
        // Dynamic children start concurrently; their start acks are not awaited.
        let Some(reason) = notice.reason else {
            return;
        };
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        if child.incarnation != notice.incarnation || child.control.is_none() {
            return;
        }
        child.control = None;
        self.running -= 1;
        let terminating = child.state == ChildState::Stopping;
        if self.phase != Phase::Running || terminating || !reason.restarts(self.spec.restart) {
            self.emit_exit(id, &reason, false);
            self.children.remove(&id);
            if self.phase == Phase::ShuttingDown && self.running == 0 {
                self.finish(ctx);
            }
            return;
        }
        let now = Instant::now();
        if !self.node.window.record(now) {
            self.emit_exit(id, &reason, false);
            self.node
                .events
                .emit(|| self.node.window.reached_event(&self.node.path));
            self.children.remove(&id);
            self.begin_shutdown(ExitReason::Error(REACHED_MAX_RESTART_INTENSITY.into()), ctx);
            return;
        }
        self.emit_exit(id, &reason, true);
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let delay = self.node.window.restart_delay(
            self.node.backoff,
            child.started_at,
            now,
            &mut child.consecutive,
        );
        child.last_exit = Some(Box::new(reason));
        child.state = ChildState::Restarting;
        child.restart_count += 1;
        self.restarts += 1;
        if delay.is_zero() {
            self.start(id);
        } else {
            let incarnation = child.incarnation;
            ctx.run_later(delay, move |act, _| {
                let due = act.children.get(&id).is_some_and(|c| {
                    c.incarnation == incarnation && c.state == ChildState::Restarting
                });
                if due && act.phase == Phase::Running {
                    act.start(id);
                }
            });
        }
    }

    /// Asks child `id` to stop within the spec's shutdown, as OTP's `terminate_child`.
    fn stop_child(&mut self, id: u64, ctx: &mut Context<Self>) {
        let shutdown = self.spec.shutdown;
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let Some(control) = &child.control else {
            return;
        };
        child.state = ChildState::Stopping;
        if let Some(timeout) = shutdown.begin(control) {
            let incarnation = child.incarnation;
            ctx.run_later(timeout, move |act, _| act.kill_stopping(id, incarnation));
        }
    }

    fn kill_stopping(&mut self, id: u64, incarnation: u32) {
        let Some(child) = self.children.get(&id) else {
            return;
        };
        if child.incarnation == incarnation && child.state == ChildState::Stopping {
            if let Some(control) = &child.control {
                control.kill();
                self.node.events.emit(|| SupervisionEvent::ChildKilled {
                    supervisor: self.node.path.clone(),
                    child: self.child_name(id),
                });
            }
        }
    }

    fn begin_shutdown(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::ShuttingDown;
        self.node.exit_reason = reason;
        self.children.retain(|_, c| c.control.is_some());
        let shutdown = self.spec.shutdown;
        for child in self.children.values_mut() {
            child.state = ChildState::Stopping;
            if let Some(control) = &child.control {
                // The timeout, if any, is armed once for all children below.
                shutdown.begin(control);
            }
        }
        if let Shutdown::Timeout(timeout) = shutdown {
            if !crate::child::has_runtime() {
                // Dropped while the runtime goes away: no timer can run, abort now.
                for child in self.children.values() {
                    if let Some(control) = &child.control {
                        control.kill();
                    }
                }
                return;
            }
            ctx.run_later(timeout, |act, _| {
                for (&id, child) in &act.children {
                    if let Some(control) = &child.control {
                        control.kill();
                        act.node.events.emit(|| SupervisionEvent::ChildKilled {
                            supervisor: act.node.path.clone(),
                            child: act.child_name(id),
                        });
                    }
                }
            });
        }
        if self.running == 0 {
            self.finish(ctx);
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Stopped;
        self.node.report_failure();
        ctx.stop();
    }
}

impl<Args: Clone + Unpin + 'static> Actor for DynamicSupervisor<Args> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(rx) = self.node.exits_rx.take() {
            ctx.add_stream(rx);
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        self.begin_shutdown(ExitReason::Shutdown, ctx);
        if self.phase == Phase::Stopped {
            Running::Stop
        } else {
            Running::Continue
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.node.emit_stopped();
    }
}

impl<Args: Clone + Unpin + 'static> Drop for DynamicSupervisor<Args> {
    /// Takes the children with it when it goes away, like linked OTP processes.
    fn drop(&mut self) {
        for child in self.children.values() {
            if let Some(control) = &child.control {
                control.kill();
            }
        }
    }
}

impl<Args: Clone + Unpin + 'static> StreamHandler<ExitNotice> for DynamicSupervisor<Args> {
    fn handle(&mut self, notice: ExitNotice, ctx: &mut Context<Self>) {
        self.on_notice(notice, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl<Args: Clone + Unpin + 'static> Handler<StartChild<Args>> for DynamicSupervisor<Args> {
    type Result = Result<ChildId, SupervisorError>;

    fn handle(&mut self, msg: StartChild<Args>, _: &mut Context<Self>) -> Self::Result {
        if self.phase != Phase::Running {
            return Err(SupervisorError::ShuttingDown {
                supervisor: self.node.path.clone(),
            });
        }
        if let Some(max) = self.max_children {
            if self.children.len() >= max {
                return Err(SupervisorError::MaxChildren {
                    supervisor: self.node.path.clone(),
                    max,
                });
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.children.insert(
            id,
            DynChild {
                args: msg.0,
                control: None,
                started_at: None,
                last_exit: None,
                incarnation: 0,
                restart_count: 0,
                consecutive: 0,
                state: ChildState::Starting,
            },
        );
        self.start(id);
        Ok(ChildId(id))
    }
}

impl<Args: Clone + Unpin + 'static> Handler<TerminateChild> for DynamicSupervisor<Args> {
    type Result = Result<(), SupervisorError>;

    fn handle(&mut self, msg: TerminateChild, ctx: &mut Context<Self>) -> Self::Result {
        let id = msg.0 .0;
        match self.children.get(&id) {
            Some(child) if child.control.is_some() => {
                self.stop_child(id, ctx);
                Ok(())
            }
            Some(_) => {
                // Waiting for a restart: forget it.
                self.children.remove(&id);
                Ok(())
            }
            None => Err(SupervisorError::NoSuchChild {
                supervisor: self.node.path.clone(),
                child: self.child_name(id),
            }),
        }
    }
}

impl<Args: Clone + Unpin + 'static> Handler<CountChildren> for DynamicSupervisor<Args> {
    type Result = MessageResult<CountChildren>;

    fn handle(&mut self, _: CountChildren, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ChildCounts {
            children: self.children.len(),
            active: self.running,
            restarts: self.restarts,
        })
    }
}

impl<Args: Clone + Unpin + 'static> Handler<GetSnapshot> for DynamicSupervisor<Args> {
    type Result = MessageResult<GetSnapshot>;

    /// Dynamic children are listed by id; a dynamic child that is itself a supervisor is shown
    /// without its own children.
    fn handle(&mut self, _: GetSnapshot, _: &mut Context<Self>) -> Self::Result {
        let mut ids: Vec<u64> = self.children.keys().copied().collect();
        ids.sort_unstable();
        let children = ids
            .into_iter()
            .filter_map(|id| {
                let c = self.children.get(&id)?;
                Some(ChildSnapshot {
                    name: self.child_name(id),
                    kind: self.spec.kind,
                    restart: Some(self.spec.restart),
                    strategy: None,
                    state: c.state,
                    restart_count: c.restart_count,
                    last_exit: c.last_exit.as_ref().map(|r| r.to_string()),
                    children: Vec::new(),
                })
            })
            .collect();
        let state = match self.phase {
            Phase::Running => ChildState::Running,
            Phase::ShuttingDown => ChildState::Stopping,
            Phase::Stopped => ChildState::Stopped,
        };
        MessageResult(TreeSnapshot {
            root: supervisor_node(
                &self.node.path,
                StrategyKind::SimpleOneForOne,
                state,
                children,
            ),
        })
    }
}

impl<Args: Clone + Unpin + 'static> Handler<Subscribe> for DynamicSupervisor<Args> {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, _: Subscribe, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.node.events.subscribe())
    }
}

/// Starts a child in a dynamic supervisor and waits for its id (OTP `supervisor:start_child`).
pub async fn start_child<Args: Clone + Unpin + Send + 'static>(
    sup: &Addr<DynamicSupervisor<Args>>,
    args: Args,
) -> Result<ChildId, SupervisorError> {
    sup.send(StartChild(args))
        .await
        .map_err(|source| SupervisorError::Unreachable {
            supervisor: "dynamic supervisor".into(),
            source,
        })?
}
