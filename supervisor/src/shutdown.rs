//! The root of a tree: stopping it gracefully, aborting what is left, and doing so on
//! SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context};
use futures::channel::oneshot;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::child::spawn_actor;
use crate::error::SupervisorError;
use crate::events::LOG_TARGET;
use crate::link::{Control, ExitHandle, Link};
use crate::reason::ExitReason;

/// The handle of a tree's root supervisor: its address, a way to stop it (OTP:
/// `exit(Root, shutdown)`) or abort it (`exit(Root, kill)`), and its exit reason.
///
/// Dropping the handle leaves the tree running.
#[derive(Debug)]
pub struct RootHandle<A: Actor> {
    addr: Option<Addr<A>>,
    control: Arc<Control>,
    exit: Option<oneshot::Receiver<ExitReason>>,
    reason: Option<ExitReason>,
}

impl<A: Actor<Context = Context<A>>> RootHandle<A> {
    /// Runs the actor `make` builds (given the root's [`ExitHandle`]) on the current arbiter.
    pub(crate) fn spawn(make: impl FnOnce(ExitHandle) -> A) -> Self {
        let control = Arc::new(Control::default());
        let (tx, rx) = oneshot::channel();
        let link = Link::root(control.clone(), tx);
        let exit = link.exit_handle();
        let addr = spawn_actor(link, true, move |_| make(exit));
        Self {
            addr,
            control,
            exit: Some(rx),
            reason: None,
        }
    }

    /// The root supervisor's address (for [`GetSnapshot`](crate::GetSnapshot),
    /// [`Subscribe`](crate::Subscribe), [`StartChild`](crate::StartChild)...); `None` if building
    /// it panicked.
    pub fn addr(&self) -> Option<&Addr<A>> {
        self.addr.as_ref()
    }

    /// Asks the root to stop: it stops its children in reverse start order, each within its
    /// shutdown timeout, then exits with `shutdown`.
    pub fn shutdown(&self) {
        self.control.request_stop();
    }

    /// Aborts the root now; it aborts its children as it goes (OTP `kill`).
    pub fn kill(&self) {
        self.control.kill();
    }

    /// Waits until the root has exited and returns its reason (also after it has returned once).
    pub async fn wait(&mut self) -> ExitReason {
        if let Some(reason) = &self.reason {
            return reason.clone();
        }
        // Borrowed, not taken: this future may be dropped (as in `select!`) and awaited again.
        let reason = match self.exit.as_mut() {
            Some(rx) => rx.await.unwrap_or(ExitReason::Killed),
            None => ExitReason::Killed,
        };
        self.exit = None;
        self.reason = Some(reason.clone());
        reason
    }

    /// Stops the tree gracefully and, if it has not exited after `grace`, aborts what is left.
    /// Returns the root's exit reason.
    pub async fn shutdown_within(mut self, grace: Duration) -> ExitReason {
        self.shutdown();
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(reason) => reason,
            Err(_) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    grace_ms = grace.as_millis() as u64,
                    "tree did not stop within its grace period; aborting what is left"
                );
                self.kill();
                self.wait().await
            }
        }
    }
}

/// SIGTERM and SIGINT listeners. Installing them replaces the default action (terminating the
/// process) for the rest of the process's life.
#[derive(Debug)]
pub struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    /// Installs the listeners; call it early so that a signal arriving before the tree is up is
    /// not lost. Needs a tokio runtime (actix-rt's is one).
    pub fn install() -> Result<Self, SupervisorError> {
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(SupervisorError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(SupervisorError::Signals)?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs the tree until it exits on its own or a SIGTERM/SIGINT arrives; on a signal, stops it
/// gracefully within the children's shutdown timeouts and aborts what is left after `grace`.
/// Returns the root's exit reason.
pub async fn run_until_shutdown<A: Actor<Context = Context<A>>>(
    root: RootHandle<A>,
    grace: Duration,
) -> Result<ExitReason, SupervisorError> {
    let signals = ShutdownSignals::install()?;
    Ok(shutdown_on_signals(root, signals, grace).await)
}

/// [`run_until_shutdown`] with listeners installed beforehand.
pub async fn shutdown_on_signals<A: Actor<Context = Context<A>>>(
    mut root: RootHandle<A>,
    mut signals: ShutdownSignals,
    grace: Duration,
) -> ExitReason {
    tokio::select! {
        reason = root.wait() => return reason,
        name = signals.recv() => {
            tracing::info!(target: LOG_TARGET, signal = name, "shutting the supervision tree down");
        }
    }
    root.shutdown_within(grace).await
}
