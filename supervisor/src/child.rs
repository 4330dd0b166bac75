//! Running a child: the wrapper futures that turn an actix actor or a future into a supervised
//! child.
//!
//! Each child runs in its own task on the current arbiter, inside a wrapper that
//! * catches a panic in the actor's `started`, handlers, `stopping` or `stopped` (or in the task)
//!   with `catch_unwind`, so the reason carries the panic message and the arbiter's other actors
//!   keep running;
//! * on a stop request calls `ctx.stop()` on the actor's context (an actor may refuse by returning
//!   `Running::Continue` from `stopping`);
//! * on a kill request drops the actor's context future, which makes even a stubborn actor go
//!   away (OTP `kill` cannot be trapped either). A child blocking its thread cannot be killed.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::dev::ContextFut;
use actix::{Actor, ActorContext, Addr, Context};

use crate::link::{Link, ShutdownSignal};
use crate::reason::{panic_message, ExitReason};

/// Runs one actor under a [`Link`].
struct ActorTask<A: Actor<Context = Context<A>>> {
    fut: Option<ContextFut<A, Context<A>>>,
    /// Keeps the actor alive while nothing else holds its address, like an OTP process that lives
    /// until it exits; dropped with the context.
    addr: Option<Addr<A>>,
    link: Link,
    stop_sent: bool,
    /// Whether the supervisor was told that the actor finished starting.
    acked: bool,
    /// Ack as soon as `started` ran (workers); otherwise when the actor marks itself ready
    /// (supervisors, once their children started).
    auto_ready: bool,
}

impl<A: Actor<Context = Context<A>>> ActorTask<A> {
    fn finish(&mut self, reason: ExitReason) -> Poll<()> {
        self.addr = None;
        if let Some(fut) = self.fut.take() {
            // Dropping an unfinished context runs `stopping`/`stopped`, which may panic again.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(fut))) {
                tracing::debug!(
                    target: "xgate::supervisor",
                    "panic while dropping a stopped actor: {}",
                    panic_message(&*payload)
                );
            }
        }
        self.link.report(reason);
        Poll::Ready(())
    }
}

impl<A: Actor<Context = Context<A>>> Future for ActorTask<A> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.link.control.register_task(cx);
        if this.link.control.kill_requested() {
            return this.finish(ExitReason::Killed);
        }
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(());
        };
        if !this.stop_sent && this.link.control.stop_requested() {
            this.stop_sent = true;
            fut.ctx().stop();
        }
        match catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Pending) => {
                if !this.acked && (this.auto_ready || this.link.control.is_ready()) {
                    this.acked = true;
                    this.link.ack();
                }
                Poll::Pending
            }
            Ok(Poll::Ready(())) => {
                let reason = if this.stop_sent {
                    ExitReason::Shutdown
                } else {
                    ExitReason::Normal
                };
                this.finish(reason)
            }
            Err(payload) => this.finish(ExitReason::Panic(panic_message(&*payload))),
        }
    }
}

impl<A: Actor<Context = Context<A>>> Drop for ActorTask<A> {
    fn drop(&mut self) {
        // Dropped by the runtime before it finished (the arbiter stopped): the link reports
        // `Killed` when it drops after this.
        self.addr = None;
    }
}

/// Builds an actor with `make` and runs it under `link` on the current arbiter. A panic in
/// `make` is reported as the child's exit. Returns the actor's address, unless `make` panicked.
/// With `auto_ready`, the supervisor hears that the child started once its `started` ran;
/// otherwise once the actor marked itself ready through its [`ExitHandle`](crate::ExitHandle).
pub(crate) fn spawn_actor<A, F>(mut link: Link, auto_ready: bool, make: F) -> Option<Addr<A>>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A,
{
    let mut ctx = Context::<A>::new();
    let actor = match catch_unwind(AssertUnwindSafe(|| make(&mut ctx))) {
        Ok(actor) => actor,
        Err(payload) => {
            link.report(ExitReason::Panic(panic_message(&*payload)));
            return None;
        }
    };
    let fut = ctx.into_future(actor);
    let addr = fut.address();
    actix_rt::spawn(ActorTask {
        fut: Some(fut),
        addr: Some(addr.clone()),
        link,
        stop_sent: false,
        acked: false,
        auto_ready,
    });
    Some(addr)
}

/// The boxed future of a task child.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// Runs one future under a [`Link`].
struct TaskChild {
    fut: Option<TaskFuture>,
    link: Link,
    acked: bool,
}

impl Future for TaskChild {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.link.control.register_task(cx);
        let reason = if this.link.control.kill_requested() {
            ExitReason::Killed
        } else {
            let Some(fut) = this.fut.as_mut() else {
                return Poll::Ready(());
            };
            match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(Poll::Pending) => {
                    if !this.acked {
                        this.acked = true;
                        this.link.ack();
                    }
                    return Poll::Pending;
                }
                Ok(Poll::Ready(Ok(()))) if this.link.control.stop_requested() => {
                    ExitReason::Shutdown
                }
                Ok(Poll::Ready(Ok(()))) => ExitReason::Normal,
                Ok(Poll::Ready(Err(e))) => ExitReason::Error(e),
                Err(payload) => ExitReason::Panic(panic_message(&*payload)),
            }
        };
        if let Some(fut) = this.fut.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
        }
        this.link.report(reason);
        Poll::Ready(())
    }
}

/// Builds a future with `make` and runs it under `link` on the current arbiter.
pub(crate) fn spawn_task<F>(mut link: Link, make: F)
where
    F: FnOnce(ShutdownSignal) -> TaskFuture,
{
    let signal = ShutdownSignal::new(link.control.clone());
    match catch_unwind(AssertUnwindSafe(|| make(signal))) {
        Ok(fut) => {
            actix_rt::spawn(TaskChild {
                fut: Some(fut),
                link,
                acked: false,
            });
        }
        Err(payload) => link.report(ExitReason::Panic(panic_message(&*payload))),
    }
}

/// Whether a tokio runtime is there to run timers (not the case while it is being torn down).
pub(crate) fn has_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}
