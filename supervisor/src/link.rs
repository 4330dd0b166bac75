//! The link between a running child and its supervisor: stop and kill requests one way, the exit
//! reason the other (OTP's link and exit signals).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::{mpsc, oneshot};
use futures::task::AtomicWaker;

use crate::reason::ExitReason;

const STOP: u8 = 1;
const KILL: u8 = 2;
const READY: u8 = 4;

/// Shared between a supervisor and one incarnation of a child.
#[derive(Debug, Default)]
pub(crate) struct Control {
    flags: AtomicU8,
    /// The waker of the child's task (the wrapper future), woken by stop and kill requests.
    task: AtomicWaker,
    /// The waker of a task child's [`ShutdownSignal`], which may be polled from another task.
    signal: AtomicWaker,
    /// An abnormal reason the child recorded before it stopped.
    error: Mutex<Option<String>>,
}

impl Control {
    /// Asks the child to stop (OTP: exit signal `shutdown`).
    pub(crate) fn request_stop(&self) {
        self.flags.fetch_or(STOP, Ordering::AcqRel);
        self.task.wake();
        self.signal.wake();
    }

    /// Aborts the child (OTP: exit signal `kill`).
    pub(crate) fn kill(&self) {
        self.flags.fetch_or(KILL, Ordering::AcqRel);
        self.task.wake();
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.flags.load(Ordering::Acquire) & STOP != 0
    }

    pub(crate) fn kill_requested(&self) -> bool {
        self.flags.load(Ordering::Acquire) & KILL != 0
    }

    /// Marks the child as done starting (OTP `init_ack`).
    pub(crate) fn mark_ready(&self) {
        self.flags.fetch_or(READY, Ordering::AcqRel);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.flags.load(Ordering::Acquire) & READY != 0
    }

    pub(crate) fn register_task(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
    }

    fn set_error(&self, reason: String) {
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(reason);
        }
    }

    pub(crate) fn take_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// A child's news for its supervisor: it finished starting, or it exited.
#[derive(Debug)]
pub(crate) struct ExitNotice {
    /// Which child: its start index in a [`Supervisor`](crate::Supervisor), its id in a
    /// [`DynamicSupervisor`](crate::DynamicSupervisor).
    pub(crate) key: u64,
    /// Which incarnation of it, so a late notice from an earlier one is ignored.
    pub(crate) incarnation: u32,
    /// How it exited; `None` when it finished starting instead (OTP `init_ack`): its `started`
    /// ran, and for a supervisor, all its children started.
    pub(crate) reason: Option<ExitReason>,
}

/// Where a child's exit is reported.
#[derive(Debug)]
enum Notify {
    Supervisor {
        tx: mpsc::UnboundedSender<ExitNotice>,
        key: u64,
        incarnation: u32,
    },
    Root(oneshot::Sender<ExitReason>),
}

/// Held by the wrapper future that runs a child; reports its exit exactly once.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) control: Arc<Control>,
    notify: Option<Notify>,
}

impl Link {
    pub(crate) fn supervised(
        control: Arc<Control>,
        tx: mpsc::UnboundedSender<ExitNotice>,
        key: u64,
        incarnation: u32,
    ) -> Self {
        Self {
            control,
            notify: Some(Notify::Supervisor {
                tx,
                key,
                incarnation,
            }),
        }
    }

    /// The link of a new incarnation of supervised child `key`: bumps `incarnation` and returns
    /// the child's new control block with the link that reports its exit on `tx`.
    pub(crate) fn next_incarnation(
        tx: &mpsc::UnboundedSender<ExitNotice>,
        key: u64,
        incarnation: &mut u32,
    ) -> (Arc<Control>, Self) {
        *incarnation = incarnation.wrapping_add(1);
        let control = Arc::new(Control::default());
        let link = Self::supervised(control.clone(), tx.clone(), key, *incarnation);
        (control, link)
    }

    pub(crate) fn root(control: Arc<Control>, tx: oneshot::Sender<ExitReason>) -> Self {
        Self {
            control,
            notify: Some(Notify::Root(tx)),
        }
    }

    /// An [`ExitHandle`] for the child itself.
    pub(crate) fn exit_handle(&self) -> ExitHandle {
        ExitHandle {
            control: self.control.clone(),
        }
    }

    /// Reports the exit (once; later calls do nothing). A recorded error overrides a normal exit.
    pub(crate) fn report(&mut self, reason: ExitReason) {
        let reason = match (reason, self.control.take_error()) {
            (ExitReason::Normal | ExitReason::Shutdown, Some(error)) => ExitReason::Error(error),
            (reason, _) => reason,
        };
        match self.notify.take() {
            Some(Notify::Supervisor {
                tx,
                key,
                incarnation,
            }) => {
                // The supervisor may be gone already; nobody is left to tell then.
                let _ = tx.unbounded_send(ExitNotice {
                    key,
                    incarnation,
                    reason: Some(reason),
                });
            }
            Some(Notify::Root(tx)) => {
                let _ = tx.send(reason);
            }
            None => {}
        }
    }
}

impl Link {
    /// Tells the supervisor that the child finished starting.
    pub(crate) fn ack(&self) {
        if let Some(Notify::Supervisor {
            tx,
            key,
            incarnation,
        }) = &self.notify
        {
            let _ = tx.unbounded_send(ExitNotice {
                key: *key,
                incarnation: *incarnation,
                reason: None,
            });
        }
    }
}

impl Drop for Link {
    /// A child dropped before it reported (its task was dropped by the runtime, or unwound) exited
    /// abnormally.
    fn drop(&mut self) {
        if self.notify.is_some() {
            let reason = if std::thread::panicking() {
                ExitReason::Panic("panicked while its task was torn down".into())
            } else {
                ExitReason::Killed
            };
            self.report(reason);
        }
    }
}

/// Given to a supervised child so it can make its next exit abnormal
/// (OTP: `exit(Reason)` with a reason other than `normal`).
///
/// An actor that stops itself after `exit.fail("lost server")` exits with
/// [`ExitReason::Error`], so a `transient` child is restarted.
#[derive(Debug, Clone)]
pub struct ExitHandle {
    control: Arc<Control>,
}

impl ExitHandle {
    /// Records `reason` as the child's exit reason; the child still has to stop
    /// (`ctx.stop()`).
    pub fn fail(&self, reason: impl Into<String>) {
        self.control.set_error(reason.into());
    }

    /// Tells the supervisor that this child (a supervisor) finished starting its children.
    pub(crate) fn ready(&self) {
        self.control.mark_ready();
    }

    /// Whether the supervisor has asked the child to stop.
    pub fn stop_requested(&self) -> bool {
        self.control.stop_requested()
    }
}

/// Resolves when the supervisor asks a task child to stop (OTP: exit signal `shutdown`).
///
/// A task that does not finish after it resolved is aborted after its shutdown timeout.
#[derive(Debug)]
pub struct ShutdownSignal {
    control: Arc<Control>,
}

impl ShutdownSignal {
    pub(crate) fn new(control: Arc<Control>) -> Self {
        Self { control }
    }

    /// Whether the stop was requested already.
    pub fn is_requested(&self) -> bool {
        self.control.stop_requested()
    }
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.control.stop_requested() {
            return Poll::Ready(());
        }
        self.control.signal.register(cx.waker());
        if self.control.stop_requested() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
