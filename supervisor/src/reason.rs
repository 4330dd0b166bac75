//! How a child exited: OTP's exit reasons.

use std::any::Any;
use std::fmt;

/// The reason a supervisor uses to escalate after more than MaxR restarts in MaxT: OTP's
/// `{shutdown, reached_max_restart_intensity}`.
pub const REACHED_MAX_RESTART_INTENSITY: &str = "shutdown: reached_max_restart_intensity";

/// Why a child exited (OTP's exit reason).
///
/// `Normal` and `Shutdown` are normal exits; `Panic`, `Error` and `Killed` are abnormal ones. The
/// difference decides whether a `transient` child is restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The child finished on its own (OTP `normal`): an actor that called `ctx.stop()`, a task
    /// that returned `Ok(())`.
    Normal,
    /// The child stopped because its supervisor asked it to (OTP `shutdown`).
    Shutdown,
    /// The child panicked in `started`, a handler, `stopping`, `stopped` or its factory; the
    /// panic message.
    Panic(String),
    /// The child failed: a task returned `Err`, an actor reported an error through its
    /// [`ExitHandle`](crate::ExitHandle), or a child supervisor escalated
    /// ([`REACHED_MAX_RESTART_INTENSITY`]).
    Error(String),
    /// The child did not stop within its shutdown timeout, or had `Shutdown::BrutalKill`, and was
    /// aborted (OTP `killed`).
    Killed,
}

impl ExitReason {
    /// Whether the exit is abnormal: a panic, an error or a kill (OTP: any reason other than
    /// `normal` and `shutdown`).
    pub fn is_abnormal(&self) -> bool {
        matches!(self, Self::Panic(_) | Self::Error(_) | Self::Killed)
    }

    /// Whether a child with restart type `restart` is restarted after exiting for this reason:
    /// permanent always, transient only after an abnormal exit, temporary never.
    pub(crate) fn restarts(&self, restart: crate::spec::Restart) -> bool {
        match restart {
            crate::spec::Restart::Permanent => true,
            crate::spec::Restart::Transient => self.is_abnormal(),
            crate::spec::Restart::Temporary => false,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Panic(msg) => write!(f, "panic: {msg}"),
            Self::Error(msg) => f.write_str(msg),
            Self::Killed => f.write_str("killed"),
        }
    }
}

/// The message of a caught panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abnormal_and_display() {
        assert!(!ExitReason::Normal.is_abnormal());
        assert!(!ExitReason::Shutdown.is_abnormal());
        assert!(ExitReason::Killed.is_abnormal());
        assert_eq!(ExitReason::Panic("boom".into()).to_string(), "panic: boom");
        assert_eq!(
            ExitReason::Error(REACHED_MAX_RESTART_INTENSITY.into()).to_string(),
            REACHED_MAX_RESTART_INTENSITY
        );
    }

    #[test]
    fn panic_payloads() {
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
        let n = 3;
        let p = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(&*p), "formatted 3");
    }
}
