//! Introspection messages: a snapshot of the tree and a subscription to its events.

use actix::Message;
use tokio::sync::broadcast;
use xgate_messages::supervision::{
    ChildKind, ChildSnapshot, ChildState, StrategyKind, SupervisionEvent, TreeSnapshot,
};

/// The snapshot node of the supervisor at `path` (named by the path's last segment), static or
/// dynamic alike.
pub(crate) fn supervisor_node(
    path: &str,
    strategy: StrategyKind,
    state: ChildState,
    children: Vec<ChildSnapshot>,
) -> ChildSnapshot {
    ChildSnapshot {
        name: path.rsplit('/').next().unwrap_or(path).to_owned(),
        kind: ChildKind::Supervisor,
        restart: None,
        strategy: Some(strategy),
        state,
        restart_count: 0,
        last_exit: None,
        children,
    }
}

/// Asks a supervisor for a snapshot of its subtree (OTP `which_children`, recursively). Child
/// supervisors are asked in turn; one that does not answer is shown without its children.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetSnapshot;

impl Message for GetSnapshot {
    type Result = TreeSnapshot;
}

/// Asks a supervisor for a receiver of its subtree's [`SupervisionEvent`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subscribe;

impl Message for Subscribe {
    type Result = broadcast::Receiver<SupervisionEvent>;
}
