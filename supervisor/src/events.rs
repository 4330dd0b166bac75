//! Publishing supervision events to subscribers and to the log.

use tokio::sync::broadcast;
use xgate_messages::supervision::SupervisionEvent;

/// The tracing target of every supervision log line.
pub const LOG_TARGET: &str = "xgate::supervisor";

/// How many events a slow subscriber may fall behind before it misses some
/// (`broadcast::error::RecvError::Lagged`).
const CAPACITY: usize = 1024;

/// Where a supervision tree publishes its [`SupervisionEvent`]s: a broadcast channel shared by a
/// supervisor and all the supervisors below it, so one subscription sees the whole subtree.
///
/// Events are also logged with tracing target [`LOG_TARGET`]. A subscriber that falls more than
/// 1024 events behind loses the oldest ones (it sees `RecvError::Lagged`); supervision never waits
/// for a subscriber.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<SupervisionEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscriber yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.tx.subscribe()
    }

    /// Logs and publishes the event built by `make`; builds nothing when nobody listens.
    pub(crate) fn emit(&self, make: impl FnOnce() -> SupervisionEvent) {
        let logging = tracing::enabled!(target: LOG_TARGET, tracing::Level::ERROR);
        if !logging && self.tx.receiver_count() == 0 {
            return;
        }
        let event = make();
        if logging {
            log(&event);
        }
        // No receiver is not an error: events are best effort.
        let _ = self.tx.send(event);
    }
}

fn log(event: &SupervisionEvent) {
    match event {
        SupervisionEvent::ChildStarted {
            supervisor,
            child,
            restart_count,
            ..
        } => tracing::debug!(target: LOG_TARGET, supervisor, child, restart_count, "child started"),
        SupervisionEvent::ChildExited {
            supervisor,
            child,
            reason,
            abnormal: true,
            will_restart,
        } => tracing::warn!(
            target: LOG_TARGET,
            supervisor,
            child,
            reason,
            will_restart,
            "child exited abnormally"
        ),
        SupervisionEvent::ChildExited {
            supervisor,
            child,
            reason,
            will_restart,
            ..
        } => tracing::debug!(
            target: LOG_TARGET,
            supervisor,
            child,
            reason,
            will_restart,
            "child exited"
        ),
        SupervisionEvent::ChildKilled { supervisor, child } => tracing::warn!(
            target: LOG_TARGET,
            supervisor,
            child,
            "child did not stop within its shutdown timeout; killed"
        ),
        SupervisionEvent::RestartIntensityReached {
            supervisor,
            max_restarts,
            period_ms,
        } => tracing::error!(
            target: LOG_TARGET,
            supervisor,
            max_restarts,
            period_ms,
            "reached_max_restart_intensity; shutting down"
        ),
        SupervisionEvent::SupervisorStopped { supervisor, reason } => {
            tracing::info!(target: LOG_TARGET, supervisor, reason, "supervisor stopped")
        }
    }
}
