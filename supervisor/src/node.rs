//! What every supervisor, static ([`Supervisor`](crate::Supervisor)) or dynamic
//! ([`DynamicSupervisor`](crate::DynamicSupervisor)), keeps about its place in the tree: its
//! path, restart policy, event bus, the channel its children's exits come back on, and how it
//! tells its parent that it exits.

use futures::channel::mpsc;
use tokio::sync::broadcast;
use xgate_messages::supervision::SupervisionEvent;

use crate::events::EventBus;
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::link::{ExitHandle, ExitNotice};
use crate::reason::ExitReason;

/// A supervisor's place in the tree and its restart policy.
pub(crate) struct Node {
    /// Its path in the tree (`root/listeners`), which names it in events.
    pub(crate) path: String,
    /// The restart intensity over all its children's restarts.
    pub(crate) window: RestartWindow,
    /// The wait between a child's consecutive restarts, if any.
    pub(crate) backoff: Option<Backoff>,
    /// Where it publishes its events (the tree's bus once it is attached under a parent).
    pub(crate) events: EventBus,
    /// Handed to every child's link, which reports the child's start and exit on it.
    pub(crate) exits_tx: mpsc::UnboundedSender<ExitNotice>,
    /// The children's reports, until the actor starts and takes them as a stream.
    pub(crate) exits_rx: Option<mpsc::UnboundedReceiver<ExitNotice>>,
    /// Set when the supervisor runs under a parent (or as a root), to report an escalation.
    pub(crate) exit: Option<ExitHandle>,
    /// Why it exits, once its shutdown has begun.
    pub(crate) exit_reason: ExitReason,
}

impl Node {
    /// A supervisor named `name` with OTP's default intensity (1 restart in 5 s), no backoff and
    /// a bus of its own.
    pub(crate) fn new(name: String) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded();
        Self {
            path: name,
            window: RestartWindow::new(Intensity::default()),
            backoff: None,
            events: EventBus::new(),
            exits_tx,
            exits_rx: Some(exits_rx),
            exit: None,
            exit_reason: ExitReason::Shutdown,
        }
    }

    /// Places the supervisor under a parent: its path, the tree's bus, its exit handle.
    pub(crate) fn attach(&mut self, path: String, events: EventBus, exit: ExitHandle) {
        self.path = path;
        self.events = events;
        self.exit = Some(exit);
    }

    /// A receiver of the events published on its bus.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Tells the parent, when the supervisor exits with an error, that it failed (an escalation).
    pub(crate) fn report_failure(&self) {
        if let (Some(exit), ExitReason::Error(reason)) = (&self.exit, &self.exit_reason) {
            exit.fail(reason.clone());
        }
    }

    /// Publishes that the supervisor stopped, and why.
    pub(crate) fn emit_stopped(&self) {
        self.events.emit(|| SupervisionEvent::SupervisorStopped {
            supervisor: self.path.clone(),
            reason: self.exit_reason.to_string(),
        });
    }
}
