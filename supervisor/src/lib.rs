//! OTP-grade supervision for actix actors.
//!
//! The semantics and names are Erlang/OTP's `supervisor`:
//! * a [`Supervisor`] starts a fixed list of children in order with a [`Strategy`]:
//!   `one_for_one`, `one_for_all` or `rest_for_one`; a [`DynamicSupervisor`] starts many
//!   children of one kind on demand (`simple_one_for_one`);
//! * a [`ChildSpec`] says how to build a child (an actix actor, a future, or a supervisor; a
//!   restart builds it afresh), its [`Restart`] type (`permanent`, `transient`, `temporary`), its
//!   [`Shutdown`] (`Timeout`, `infinity`, `brutal_kill`) and its [`ChildKind`];
//! * more than MaxR restarts in MaxT ([`Intensity`], default 1 in 5 s) make a supervisor stop its
//!   children and exit with [`REACHED_MAX_RESTART_INTENSITY`], escalating to its parent; an
//!   optional [`Backoff`] spaces restarts;
//! * a panic in a child's `started`, handlers or `stopping` is an abnormal exit
//!   ([`ExitReason::Panic`] with its message) and the arbiter it ran on keeps serving its other
//!   actors;
//! * children stop in reverse start order, each within its shutdown timeout, after which it is
//!   aborted; [`run_until_shutdown`] does this for the whole tree on SIGTERM/SIGINT;
//! * [`GetSnapshot`] returns the tree ([`TreeSnapshot`]) and [`Subscribe`] / [`EventBus`] deliver
//!   [`SupervisionEvent`]s, also logged with tracing target [`LOG_TARGET`].
//!
//! Children run on the arbiter of the supervisor that starts them, each in its own task.
#![forbid(unsafe_code)]

mod child;
mod dynamic;
mod error;
mod events;
mod intensity;
mod link;
mod node;
mod reason;
mod shutdown;
mod snapshot;
mod spec;
mod strategy;
mod supervisor;

pub use dynamic::{
    start_child, ChildCounts, ChildId, CountChildren, DynamicSupervisor, StartChild, TerminateChild,
};
pub use error::SupervisorError;
pub use events::{EventBus, LOG_TARGET};
pub use intensity::{Backoff, Intensity};
pub use link::{ExitHandle, ShutdownSignal};
pub use reason::{ExitReason, REACHED_MAX_RESTART_INTENSITY};
pub use shutdown::{run_until_shutdown, shutdown_on_signals, RootHandle, ShutdownSignals};
pub use snapshot::{GetSnapshot, Subscribe};
pub use spec::{ChildSpec, Restart, Shutdown};
pub use strategy::Strategy;
pub use supervisor::Supervisor;
pub use xgate_messages::supervision::{
    ChildKind, ChildSnapshot, ChildState, StrategyKind, SupervisionEvent, TreeSnapshot,
};
