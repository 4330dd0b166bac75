//! The supervisor of a fixed, ordered list of children: `one_for_one`, `one_for_all`,
//! `rest_for_one`.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, MessageResult, Recipient, ResponseFuture,
    Running, StreamHandler,
};
use futures::future::join_all;
use xgate_messages::supervision::{
    ChildSnapshot, ChildState, StrategyKind, SupervisionEvent, TreeSnapshot,
};

use crate::events::EventBus;
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::link::{Control, ExitNotice, Link};
use crate::node::Node;
use crate::reason::{ExitReason, REACHED_MAX_RESTART_INTENSITY};
use crate::shutdown::RootHandle;
use crate::snapshot::{supervisor_node, GetSnapshot, Subscribe};
use crate::spec::{ChildSpec, Restart, StartCtx};
use crate::strategy::Strategy;

/// One child of a [`Supervisor`], with its bookkeeping.
struct Child {
    spec: ChildSpec,
    state: ChildState,
    /// The running incarnation's control; `None` when it is not running.
    control: Option<Arc<Control>>,
    incarnation: u32,
    restart_count: u32,
    last_exit: Option<ExitReason>,
    snapshot: Option<Recipient<GetSnapshot>>,
    strategy: Option<StrategyKind>,
    started_at: Option<Instant>,
    /// Restarts in a row without running longer than MaxT, for the backoff.
    consecutive: u32,
    /// The token of the restart scheduled for this child; a timer carrying another token is stale.
    scheduled: u64,
}

/// What the supervisor is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping the siblings of a failed child, to restart them (`one_for_all`, `rest_for_one`).
    Restarting,
    /// Stopping all children before exiting.
    ShuttingDown,
    /// All children stopped; exiting.
    Stopped,
}

/// What to do once the children in the stop queue have exited.
#[derive(Debug)]
enum AfterStop {
    /// Restart these children, after this backoff delay.
    Restart(Range<usize>, Duration),
    Exit,
}

/// An OTP supervisor over a fixed, ordered list of children, as an actix actor.
///
/// Children are started in order when the supervisor starts and stopped in reverse order when it
/// stops, each within its [`Shutdown`]. When a child exits, its [`Restart`] type decides whether it
/// is restarted (`permanent`: always; `transient`: after an abnormal exit; `temporary`: never) and
/// the [`Strategy`] decides which siblings go with it. More restarts than the [`Intensity`] allows
/// make the supervisor stop its children and exit with
/// [`REACHED_MAX_RESTART_INTENSITY`], which its own supervisor sees as an abnormal exit.
///
/// ```no_run
/// # use actix::prelude::*;
/// # use std::time::Duration;
/// # use xgate_supervisor::*;
/// # use xgate_supervisor::Supervisor;
/// # struct Registry; impl Actor for Registry { type Context = Context<Self>; }
/// # async fn demo() {
/// let root = Supervisor::new("root", Strategy::RestForOne)
///     .intensity(Intensity::new(3, Duration::from_secs(5)))
///     .child(ChildSpec::actor("registry", || Registry))
///     .child(ChildSpec::supervisor("listeners", || Supervisor::new("listeners", Strategy::OneForOne)))
///     .start_root();
/// let reason = run_until_shutdown(root, Duration::from_secs(10)).await;
/// # }
/// ```
pub struct Supervisor {
    /// Its place in the tree and restart policy.
    pub(crate) node: Node,
    strategy: Strategy,
    children: Vec<Child>,
    phase: Phase,
    stop_queue: VecDeque<usize>,
    after_stop: Option<AfterStop>,
    /// Exits of children outside the group being restarted, handled once it is restarted.
    deferred: VecDeque<ExitNotice>,
    /// Children waiting to be started, by start index: started one at a time, in order.
    start_queue: BTreeSet<usize>,
    /// The child started last, until it says it finished starting (or exits).
    awaiting: Option<usize>,
    /// Whether the initial start of all children is over (and the parent was told).
    initial_done: bool,
    next_token: u64,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("path", &self.node.path)
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor named `name` with the given strategy, OTP's default intensity (1 restart in
    /// 5 s), no backoff and no children yet.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            node: Node::new(name.into()),
            strategy,
            children: Vec::new(),
            phase: Phase::Running,
            stop_queue: VecDeque::new(),
            after_stop: None,
            deferred: VecDeque::new(),
            start_queue: BTreeSet::new(),
            awaiting: None,
            initial_done: false,
            next_token: 0,
        }
    }

    /// Sets the restart intensity (MaxR in MaxT).
    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.node.window = RestartWindow::new(intensity);
        self
    }

    /// Waits between a child's consecutive restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.node.backoff = Some(backoff);
        self
    }

    /// Publishes events on `events` (a bus shared with other trees) instead of a bus of its own.
    pub fn events(mut self, events: EventBus) -> Self {
        self.node.events = events;
        self
    }

    /// Appends a child; children start in the order they were added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(Child {
            spec,
            state: ChildState::Starting,
            control: None,
            incarnation: 0,
            restart_count: 0,
            last_exit: None,
            snapshot: None,
            strategy: None,
            started_at: None,
            consecutive: 0,
            scheduled: 0,
        });
        self
    }

    /// A receiver of this tree's events, taken before the supervisor starts so that none is
    /// missed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SupervisionEvent> {
        self.node.subscribe()
    }

    /// Starts the supervisor as the root of a tree on the current arbiter; the handle stops it
    /// and tells how it exited.
    pub fn start_root(mut self) -> RootHandle<Self> {
        RootHandle::spawn(move |exit| {
            self.node.exit = Some(exit);
            self
        })
    }

    pub(crate) fn strategy_kind(&self) -> StrategyKind {
        self.strategy.kind()
    }

    fn start_child(&mut self, index: usize) {
        let path = &self.node.path;
        let Some(child) = self.children.get_mut(index) else {
            return;
        };
        let (control, link) =
            Link::next_incarnation(&self.node.exits_tx, index as u64, &mut child.incarnation);
        child.control = Some(control);
        child.state = ChildState::Running;
        child.started_at = Some(Instant::now());
        let started = (child.spec.start)(
            &(),
            StartCtx {
                link,
                events: &self.node.events,
                path: format!("{path}/{}", child.spec.name),
            },
        );
        child.snapshot = started.snapshot;
        child.strategy = started.strategy;
    }

    /// Starts the next child in the start queue unless one is still starting; once the queue is
    /// empty after the supervisor's own start, tells its parent it is ready.
    fn start_next(&mut self) {
        while self.phase == Phase::Running && self.awaiting.is_none() {
            let Some(index) = self.start_queue.pop_first() else {
                if !self.initial_done {
                    self.initial_done = true;
                    if let Some(exit) = &self.node.exit {
                        exit.ready();
                    }
                }
                return;
            };
            let child = &mut self.children[index];
            if child.control.is_some() {
                continue;
            }
            if child.state == ChildState::Restarting {
                child.restart_count += 1;
            }
            self.awaiting = Some(index);
            self.start_child(index);
        }
    }

    /// Child `index` finished starting.
    fn on_started(&mut self, index: usize) {
        if self.awaiting == Some(index) {
            self.awaiting = None;
        }
        let child = &self.children[index];
        let (name, kind, restart_count) = (&child.spec.name, child.spec.kind, child.restart_count);
        let path = &self.node.path;
        self.node.events.emit(|| SupervisionEvent::ChildStarted {
            supervisor: path.clone(),
            child: name.clone(),
            kind,
            restart_count,
        });
        self.start_next();
    }

    fn on_notice(&mut self, notice: ExitNotice, ctx: &mut Context<Self>) {
        let index = notice.key as usize;
        let Some(child) = self.children.get(index) else {
            return;
        };
        if child.incarnation != notice.incarnation || child.control.is_none() {
            return; // a late notice from an incarnation already dealt with
        }
        let Some(reason) = notice.reason else {
            self.on_started(index);
            return;
        };
        if self.awaiting == Some(index) {
            self.awaiting = None;
        }
        match self.phase {
            Phase::Running => {
                self.on_exit(index, reason, ctx);
                self.start_next();
            }
            Phase::Restarting | Phase::ShuttingDown => {
                let in_group = match &self.after_stop {
                    Some(AfterStop::Restart(range, _)) => range.contains(&index),
                    _ => true,
                };
                if in_group {
                    self.mark_exited(index, reason, false);
                    self.advance(ctx);
                } else {
                    self.deferred.push_back(ExitNotice {
                        reason: Some(reason),
                        ..notice
                    });
                }
            }
            Phase::Stopped => {}
        }
    }

    /// Records the exit of child `index` and publishes it.
    fn mark_exited(&mut self, index: usize, reason: ExitReason, will_restart: bool) {
        let path = &self.node.path;
        let child = &mut self.children[index];
        child.control = None;
        child.snapshot = None;
        child.state = if will_restart {
            ChildState::Restarting
        } else {
            ChildState::Stopped
        };
        let name = &child.spec.name;
        self.node.events.emit(|| SupervisionEvent::ChildExited {
            supervisor: path.clone(),
            child: name.clone(),
            reason: reason.to_string(),
            abnormal: reason.is_abnormal(),
            will_restart,
        });
        child.last_exit = Some(reason);
    }

    /// A child exited while the supervisor was running normally.
    fn on_exit(&mut self, index: usize, reason: ExitReason, ctx: &mut Context<Self>) {
        if !reason.restarts(self.children[index].spec.restart) {
            self.mark_exited(index, reason, false);
            return;
        }
        let now = Instant::now();
        if !self.node.window.record(now) {
            self.mark_exited(index, reason, false);
            let (window, path) = (&self.node.window, &self.node.path);
            self.node.events.emit(|| window.reached_event(path));
            self.begin_shutdown(ExitReason::Error(REACHED_MAX_RESTART_INTENSITY.into()), ctx);
            return;
        }
        let child = &mut self.children[index];
        let delay = self.node.window.restart_delay(
            self.node.backoff,
            child.started_at,
            now,
            &mut child.consecutive,
        );
        self.mark_exited(index, reason, true);
        let range = self.strategy.affected(index, self.children.len());
        // Stop the rest of the group in reverse start order, then restart it in order.
        self.stop_queue = range
            .clone()
            .rev()
            .filter(|&i| self.children[i].control.is_some())
            .collect();
        self.after_stop = Some(AfterStop::Restart(range, delay));
        self.phase = Phase::Restarting;
        self.advance(ctx);
    }

    /// Stops the children in the stop queue one after the other, then does what `after_stop`
    /// says.
    fn advance(&mut self, ctx: &mut Context<Self>) {
        while let Some(&index) = self.stop_queue.front() {
            let child = &mut self.children[index];
            let Some(control) = child.control.clone() else {
                self.stop_queue.pop_front();
                continue;
            };
            if child.state == ChildState::Stopping {
                return; // waiting for its exit notice
            }
            child.state = ChildState::Stopping;
            if let Some(timeout) = child.spec.shutdown.begin(&control) {
                let incarnation = child.incarnation;
                if crate::child::has_runtime() {
                    ctx.run_later(timeout, move |act, _| {
                        act.kill_after_timeout(index, incarnation);
                    });
                } else {
                    // Dropped while the runtime goes away: no timer can run, abort now.
                    control.kill();
                }
            }
            return;
        }
        match self.after_stop.take() {
            Some(AfterStop::Restart(range, delay)) => {
                self.phase = Phase::Running;
                self.schedule_restart(range, delay, ctx);
                while self.phase == Phase::Running {
                    let Some(notice) = self.deferred.pop_front() else {
                        break;
                    };
                    self.on_notice(notice, ctx);
                }
            }
            Some(AfterStop::Exit) | None => {
                if self.phase == Phase::ShuttingDown {
                    self.phase = Phase::Stopped;
                    self.node.report_failure();
                    ctx.stop();
                }
            }
        }
    }

    fn kill_after_timeout(&mut self, index: usize, incarnation: u32) {
        let path = &self.node.path;
        let Some(child) = self.children.get_mut(index) else {
            return;
        };
        if child.incarnation != incarnation || child.state != ChildState::Stopping {
            return;
        }
        if let Some(control) = &child.control {
            control.kill();
            let name = &child.spec.name;
            self.node.events.emit(|| SupervisionEvent::ChildKilled {
                supervisor: path.clone(),
                child: name.clone(),
            });
        }
    }

    /// Queues the non-temporary children of `range` for a start in order, now or after `delay`.
    fn schedule_restart(&mut self, range: Range<usize>, delay: Duration, ctx: &mut Context<Self>) {
        self.next_token += 1;
        let token = self.next_token;
        for child in &mut self.children[range.clone()] {
            if child.spec.restart != Restart::Temporary {
                child.scheduled = token;
                child.state = ChildState::Restarting;
            }
        }
        if delay.is_zero() {
            self.queue_restart(range, token);
        } else {
            ctx.run_later(delay, move |act, _| act.queue_restart(range, token));
        }
    }

    fn queue_restart(&mut self, range: Range<usize>, token: u64) {
        if self.phase != Phase::Running {
            return;
        }
        for index in range {
            let child = &self.children[index];
            if child.scheduled == token
                && child.control.is_none()
                && child.state == ChildState::Restarting
            {
                self.start_queue.insert(index);
            }
        }
        self.start_next();
    }

    /// Stops every child in reverse start order, then exits with `reason`.
    fn begin_shutdown(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::ShuttingDown | Phase::Stopped) {
            return;
        }
        self.phase = Phase::ShuttingDown;
        self.node.exit_reason = reason;
        self.deferred.clear();
        self.start_queue.clear();
        for child in &mut self.children {
            if child.control.is_none() {
                child.state = ChildState::Stopped;
            }
        }
        self.stop_queue = (0..self.children.len())
            .rev()
            .filter(|&i| self.children[i].control.is_some())
            .collect();
        self.after_stop = Some(AfterStop::Exit);
        self.advance(ctx);
    }

    fn snapshot_node(&self) -> ChildSnapshot {
        let state = match self.phase {
            Phase::Running | Phase::Restarting => ChildState::Running,
            Phase::ShuttingDown => ChildState::Stopping,
            Phase::Stopped => ChildState::Stopped,
        };
        let children = self
            .children
            .iter()
            .map(|c| ChildSnapshot {
                name: c.spec.name.clone(),
                kind: c.spec.kind,
                restart: Some(c.spec.restart),
                strategy: c.strategy,
                state: c.state,
                restart_count: c.restart_count,
                last_exit: c.last_exit.as_ref().map(ToString::to_string),
                children: Vec::new(),
            })
            .collect();
        supervisor_node(&self.node.path, self.strategy.kind(), state, children)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(rx) = self.node.exits_rx.take() {
            ctx.add_stream(rx);
        }
        self.start_queue = (0..self.children.len()).collect();
        self.start_next();
    }

    /// A stop request (from the parent, a root handle or `ctx.stop()`) first stops the children
    /// in reverse order.
    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if self.phase != Phase::Stopped {
            self.begin_shutdown(ExitReason::Shutdown, ctx);
        }
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

impl Drop for Supervisor {
    /// A supervisor that goes away (killed by its parent, or its arbiter stopped) takes its
    /// children with it, like linked OTP processes.
    fn drop(&mut self) {
        for child in &self.children {
            if let Some(control) = &child.control {
                control.kill();
            }
        }
    }
}

impl StreamHandler<ExitNotice> for Supervisor {
    fn handle(&mut self, notice: ExitNotice, ctx: &mut Context<Self>) {
        self.on_notice(notice, ctx);
    }

    /// The supervisor holds a sender, so the stream never ends while it lives.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<GetSnapshot> for Supervisor {
    type Result = ResponseFuture<TreeSnapshot>;

    fn handle(&mut self, _: GetSnapshot, _: &mut Context<Self>) -> Self::Result {
        let mut root = self.snapshot_node();
        let requests: Vec<_> = self
            .children
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.snapshot.as_ref().map(|r| (i, r.send(GetSnapshot))))
            .collect();
        Box::pin(async move {
            let (indexes, requests): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
            for (i, answer) in indexes.into_iter().zip(join_all(requests).await) {
                if let Ok(sub) = answer {
                    root.children[i].children = sub.root.children;
                }
            }
            TreeSnapshot { root }
        })
    }
}

impl Handler<Subscribe> for Supervisor {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, _: Subscribe, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.node.events.subscribe())
    }
}
