//! The error type at the crate boundary.

use actix::MailboxError;

/// An error from the supervision API: says which supervisor it concerns and, through
/// [`SupervisorError::is_retryable`], whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor is shutting down (or has escalated) and starts no more children.
    #[error("supervisor {supervisor} is shutting down and starts no new child")]
    ShuttingDown {
        /// Path of the supervisor.
        supervisor: String,
    },
    /// The dynamic supervisor already runs its maximum number of children
    /// (`max_children`, like Elixir's `DynamicSupervisor`).
    #[error("supervisor {supervisor} already runs its maximum of {max} children")]
    MaxChildren {
        /// Path of the supervisor.
        supervisor: String,
        /// The configured maximum.
        max: usize,
    },
    /// No running child has that id.
    #[error("supervisor {supervisor} has no child {child}")]
    NoSuchChild {
        /// Path of the supervisor.
        supervisor: String,
        /// The id asked for.
        child: String,
    },
    /// The supervisor's mailbox is closed or full: it has exited.
    #[error("supervisor {supervisor} did not answer: {source}")]
    Unreachable {
        /// Path or name of the supervisor.
        supervisor: String,
        /// Why actix could not deliver the request.
        #[source]
        source: MailboxError,
    },
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("cannot listen for SIGTERM/SIGINT: {0}")]
    Signals(#[source] std::io::Error),
}

impl SupervisorError {
    /// Whether the same request may succeed later: only `MaxChildren` (children exit and free
    /// room) and a full mailbox are transient conditions.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::MaxChildren { .. } => true,
            Self::Unreachable { source, .. } => matches!(source, MailboxError::Timeout),
            Self::ShuttingDown { .. } | Self::NoSuchChild { .. } | Self::Signals(_) => false,
        }
    }
}
