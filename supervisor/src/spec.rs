//! Child specifications: how to start a child and how to treat its exits.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use actix::{Actor, Context, Recipient};
use xgate_messages::supervision::{ChildKind, RestartType, StrategyKind};

use crate::child::{spawn_actor, spawn_task, TaskFuture};
use crate::dynamic::DynamicSupervisor;
use crate::events::EventBus;
use crate::link::{Control, ExitHandle, Link, ShutdownSignal};
use crate::snapshot::GetSnapshot;
use crate::supervisor::Supervisor;

/// A child's restart type (OTP's `restart` key): `Permanent`, `Transient` or `Temporary`.
pub type Restart = RestartType;

/// How a child is stopped (OTP's `shutdown` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop, and abort it if it has not exited after this long (OTP: an integer
    /// timeout). Default for workers: 5 seconds, like OTP.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (OTP `infinity`); the default for supervisor
    /// children, which stop their own children within their own timeouts.
    Infinity,
    /// Abort it at once without asking (OTP `brutal_kill`).
    BrutalKill,
}

impl Shutdown {
    /// Starts stopping a child through its `control`: aborts it for `BrutalKill`, asks it to
    /// stop otherwise; returns how long to wait before aborting it (`Timeout`), if at all.
    pub(crate) fn begin(self, control: &Control) -> Option<Duration> {
        match self {
            Shutdown::BrutalKill => {
                control.kill();
                None
            }
            Shutdown::Infinity => {
                control.request_stop();
                None
            }
            Shutdown::Timeout(timeout) => {
                control.request_stop();
                Some(timeout)
            }
        }
    }
}

/// What the supervisor hands a factory when it starts a child.
pub(crate) struct StartCtx<'a> {
    pub(crate) link: Link,
    pub(crate) events: &'a EventBus,
    /// Path of the child in the tree (`root/listeners`).
    pub(crate) path: String,
}

/// What a started child tells its supervisor.
#[derive(Default)]
pub(crate) struct Started {
    /// For a supervisor child: where to ask for its subtree's snapshot.
    pub(crate) snapshot: Option<Recipient<GetSnapshot>>,
    /// For a supervisor child: its strategy.
    pub(crate) strategy: Option<StrategyKind>,
}

type StartFn<Args> = Box<dyn FnMut(&Args, StartCtx<'_>) -> Started>;

/// How to start a child and what to do when it exits (OTP's child specification).
///
/// `Args` is `()` for the children of a [`Supervisor`]; for the children of a
/// [`DynamicSupervisor`] it is what [`StartChild`](crate::StartChild) carries, handed to the
/// factory on every (re)start.
///
/// Every (re)start calls the factory again, so a restarted child begins from fresh state.
pub struct ChildSpec<Args = ()> {
    pub(crate) name: String,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) start: StartFn<Args>,
}

impl<Args> std::fmt::Debug for ChildSpec<Args> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// OTP's default shutdown for workers.
const WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

impl<Args: 'static> ChildSpec<Args> {
    fn new(name: impl Into<String>, kind: ChildKind, start: StartFn<Args>) -> Self {
        Self {
            name: name.into(),
            restart: Restart::Permanent,
            shutdown: match kind {
                ChildKind::Worker => WORKER_SHUTDOWN,
                ChildKind::Supervisor => Shutdown::Infinity,
            },
            kind,
            start,
        }
    }

    /// A worker actor built from the start arguments by `make` on each (re)start. `make` also
    /// gets the actor's context (for its address: `ctx.address()`) and an [`ExitHandle`].
    pub fn actor_with_args<A, F>(name: impl Into<String>, mut make: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: FnMut(&Args, &mut Context<A>, ExitHandle) -> A + 'static,
    {
        Self::new(
            name,
            ChildKind::Worker,
            Box::new(move |args, start| {
                let exit = start.link.exit_handle();
                spawn_actor(start.link, true, |ctx| make(args, ctx, exit));
                Started::default()
            }),
        )
    }

    /// A worker task: the future `make` builds from the start arguments on each (re)start.
    /// `Ok(())` is a normal exit, `Err(e)` an abnormal one with `e`'s text; the
    /// [`ShutdownSignal`] resolves when the supervisor asks the task to stop.
    pub fn task_with_args<F, Fut, E>(name: impl Into<String>, mut make: F) -> Self
    where
        F: FnMut(&Args, ShutdownSignal) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: Display,
    {
        Self::new(
            name,
            ChildKind::Worker,
            Box::new(move |args, start| {
                spawn_task(start.link, |signal| -> TaskFuture {
                    let fut = make(args, signal);
                    Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
                });
                Started::default()
            }),
        )
    }

    /// Sets the restart type (default `Permanent`).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped (default `Timeout(5 s)` for a worker, `Infinity` for a
    /// supervisor).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The child's id.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl ChildSpec<()> {
    /// A worker actor built by `make` on each (re)start.
    ///
    /// ```no_run
    /// # use actix::prelude::*;
    /// # use xgate_supervisor::{ChildSpec, Restart};
    /// struct Registry;
    /// impl Actor for Registry { type Context = Context<Self>; }
    /// let spec = ChildSpec::actor("registry", || Registry).restart(Restart::Permanent);
    /// ```
    pub fn actor<A, F>(name: impl Into<String>, mut make: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: FnMut() -> A + 'static,
    {
        Self::actor_with_args(name, move |_: &(), _: &mut Context<A>, _| make())
    }

    /// A worker actor built by `make` from its context (for its address: `ctx.address()`, to
    /// register it) and an [`ExitHandle`].
    pub fn actor_with<A, F>(name: impl Into<String>, mut make: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: FnMut(&mut Context<A>, ExitHandle) -> A + 'static,
    {
        Self::actor_with_args(name, move |_: &(), ctx: &mut Context<A>, exit| {
            make(ctx, exit)
        })
    }

    /// A worker task built by `make` on each (re)start (see [`ChildSpec::task_with_args`]).
    pub fn task<F, Fut, E>(name: impl Into<String>, mut make: F) -> Self
    where
        F: FnMut(ShutdownSignal) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: Display,
    {
        Self::task_with_args(name, move |_: &(), signal| make(signal))
    }

    /// A child supervisor built by `make` on each (re)start (OTP `type => supervisor`). It
    /// publishes to its parent's [`EventBus`], appears in its parent's snapshots, and when it
    /// reaches its restart intensity its parent sees it exit with
    /// [`REACHED_MAX_RESTART_INTENSITY`](crate::REACHED_MAX_RESTART_INTENSITY).
    pub fn supervisor<F>(name: impl Into<String>, mut make: F) -> Self
    where
        F: FnMut() -> Supervisor + 'static,
    {
        Self::new(
            name,
            ChildKind::Supervisor,
            Box::new(move |_, start| {
                let mut sup = make();
                let strategy = sup.strategy_kind();
                sup.node
                    .attach(start.path, start.events.clone(), start.link.exit_handle());
                let addr = spawn_actor(start.link, false, move |_| sup);
                Started {
                    snapshot: addr.map(|a| a.recipient()),
                    strategy: Some(strategy),
                }
            }),
        )
    }

    /// A child [`DynamicSupervisor`] built by `make` on each (re)start; see
    /// [`ChildSpec::supervisor`]. Its address is handed to `make`'s caller through `on_start`,
    /// so children can be started in it.
    pub fn dynamic_supervisor<B, F, G>(
        name: impl Into<String>,
        mut make: F,
        mut on_start: G,
    ) -> Self
    where
        B: Clone + Unpin + 'static,
        F: FnMut() -> DynamicSupervisor<B> + 'static,
        G: FnMut(actix::Addr<DynamicSupervisor<B>>) + 'static,
    {
        Self::new(
            name,
            ChildKind::Supervisor,
            Box::new(move |_, start| {
                let mut sup = make();
                sup.node
                    .attach(start.path, start.events.clone(), start.link.exit_handle());
                let addr = spawn_actor(start.link, true, move |_| sup);
                if let Some(addr) = &addr {
                    on_start(addr.clone());
                }
                Started {
                    snapshot: addr.map(|a| a.recipient()),
                    strategy: Some(StrategyKind::SimpleOneForOne),
                }
            }),
        )
    }
}
