//! Plain data describing xgate's supervision tree: snapshots for the control socket and events for
//! logs and plugins.
//!
//! These types carry no behaviour and do no I/O; the `xgate-supervisor` crate fills them in. Names
//! follow Erlang/OTP's `supervisor` module so that an Erlang user recognises them: a child is a
//! `worker` or a `supervisor`, a supervisor has a restart strategy (`one_for_one`, `one_for_all`,
//! `rest_for_one`, `simple_one_for_one`), and a child has a restart type (`permanent`, `transient`,
//! `temporary`).

use serde::{Deserialize, Serialize};

/// Whether a child is a worker or a supervisor of its own subtree (OTP's `type` child spec key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// A process doing work: an actor or a task (OTP `worker`).
    Worker,
    /// A supervisor heading its own subtree (OTP `supervisor`).
    Supervisor,
}

/// When a child is restarted after it exits (OTP's `restart` child spec key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartType {
    /// Always restarted (OTP `permanent`).
    Permanent,
    /// Restarted only after an abnormal exit: a panic, an error or a kill (OTP `transient`).
    Transient,
    /// Never restarted (OTP `temporary`).
    Temporary,
}

/// A supervisor's restart strategy, as shown in snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Only the child that exited is restarted.
    OneForOne,
    /// Every child is stopped and restarted when one exits.
    OneForAll,
    /// The child that exited and the children started after it are restarted.
    RestForOne,
    /// Many dynamically started children of one kind, each restarted on its own
    /// (OTP `simple_one_for_one`, Elixir's `DynamicSupervisor`).
    SimpleOneForOne,
}

/// Where a child is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Not started yet.
    Starting,
    /// Started and not known to have exited.
    Running,
    /// Asked to stop (OTP `shutdown`), waiting for it to exit or for its shutdown timeout.
    Stopping,
    /// Exited; a restart is scheduled (possibly after a backoff delay).
    Restarting,
    /// Exited and not going to be restarted.
    Stopped,
}

/// One node of a supervision tree: a worker, or a supervisor with its own children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSnapshot {
    /// The child's id in its supervisor (OTP's `id` child spec key); for a dynamic child, the
    /// spec's name followed by `#` and a number.
    pub name: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// The child's restart type; `None` for the root of the tree, which has no supervisor.
    pub restart: Option<RestartType>,
    /// The restart strategy, for a supervisor; `None` for a worker.
    pub strategy: Option<StrategyKind>,
    /// Life-cycle state.
    pub state: ChildState,
    /// How many times the supervisor restarted this child.
    pub restart_count: u32,
    /// How the child last exited (for example `panic: index out of bounds`), if it ever did.
    pub last_exit: Option<String>,
    /// The children of a supervisor, in start order; empty for a worker.
    pub children: Vec<ChildSnapshot>,
}

/// A snapshot of a whole supervision tree, answered to the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    /// The supervisor the snapshot was asked of, with everything below it.
    pub root: ChildSnapshot,
}

impl TreeSnapshot {
    /// Finds a node by its path of names below the root (`["listeners", "tcp:0.0.0.0:10000"]`).
    pub fn find(&self, path: &[&str]) -> Option<&ChildSnapshot> {
        let mut node = &self.root;
        for name in path {
            node = node.children.iter().find(|c| c.name == *name)?;
        }
        Some(node)
    }
}

/// Something that happened in a supervision tree, for logs and plugins.
///
/// `supervisor` is the path of the supervisor it happened in, its ancestors' names joined with `/`
/// (`root/listeners`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SupervisionEvent {
    /// A child was started or restarted (OTP progress report `started`).
    ChildStarted {
        /// Path of the supervisor.
        supervisor: String,
        /// The child's id.
        child: String,
        /// Worker or supervisor.
        kind: ChildKind,
        /// How many times it had been restarted before this start.
        restart_count: u32,
    },
    /// A child exited (OTP `child_terminated` when abnormal).
    ChildExited {
        /// Path of the supervisor.
        supervisor: String,
        /// The child's id.
        child: String,
        /// The exit reason, for example `normal`, `shutdown` or `panic: boom`.
        reason: String,
        /// Whether the exit counts as abnormal (a panic, an error, a kill).
        abnormal: bool,
        /// Whether the supervisor is going to restart it (or the group it belongs to).
        will_restart: bool,
    },
    /// A child did not stop within its shutdown timeout and was aborted (OTP `brutal_kill`
    /// after `shutdown` timed out).
    ChildKilled {
        /// Path of the supervisor.
        supervisor: String,
        /// The child's id.
        child: String,
    },
    /// More than MaxR restarts happened within MaxT; the supervisor stops all its children and
    /// exits, escalating to its parent (OTP `reached_max_restart_intensity`).
    RestartIntensityReached {
        /// Path of the supervisor.
        supervisor: String,
        /// MaxR, the number of restarts allowed within the period.
        max_restarts: u32,
        /// MaxT, the period in milliseconds.
        period_ms: u64,
    },
    /// A supervisor finished stopping its children and exited.
    SupervisorStopped {
        /// Path of the supervisor.
        supervisor: String,
        /// Its exit reason.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_through_json_with_otp_names() {
        let snap = TreeSnapshot {
            root: ChildSnapshot {
                name: "root".into(),
                kind: ChildKind::Supervisor,
                restart: None,
                strategy: Some(StrategyKind::RestForOne),
                state: ChildState::Running,
                restart_count: 0,
                last_exit: None,
                children: vec![ChildSnapshot {
                    name: "registry".into(),
                    kind: ChildKind::Worker,
                    restart: Some(RestartType::Permanent),
                    strategy: None,
                    state: ChildState::Running,
                    restart_count: 2,
                    last_exit: Some("panic: boom".into()),
                    children: vec![],
                }],
            },
        };
        let json = serde_json::to_string(&snap).unwrap();
        assert!(json.contains("\"rest_for_one\""));
        assert!(json.contains("\"permanent\""));
        let back: TreeSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        assert_eq!(back.find(&["registry"]).unwrap().restart_count, 2);
        assert!(back.find(&["nope"]).is_none());
    }

    #[test]
    fn events_are_tagged() {
        let ev = SupervisionEvent::RestartIntensityReached {
            supervisor: "root".into(),
            max_restarts: 1,
            period_ms: 5000,
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains("\"event\":\"restart_intensity_reached\""));
        assert_eq!(serde_json::from_str::<SupervisionEvent>(&json).unwrap(), ev);
    }
}
