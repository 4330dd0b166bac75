//! The `hook` auth module (`hook:name=X`): asks the plug-in actor
//! named X (an `[[actor]]` with `role = "auth"`, such as an `exec` script) whether a client may
//! come in. Like `exec` and `peercred`, it decides without a password: chain it after a password
//! module (`tcp-auth=multifile:...` then `tcp-auth=hook:name=X`) to add a policy, or use it
//! alone.
//!
//! The hook is looked up at each connection, so a restarted plug-in (a new process after the
//! old one was killed) is used as soon as it has registered. A hook that is not running, fails
//! or does not answer in time refuses the client.

use std::time::Duration;

use xgate_messages::plugin::AuthQuery;

use super::backends::{BackendError, CheckContext};

/// How long the module waits for the hook's actor (the hook has its own, shorter, timeout).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// A configured `hook` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAuth {
    /// The plug-in's name.
    pub name: String,
}

impl HookAuth {
    /// From the module's `name=` option (required).
    pub fn from_options(name: Option<&str>) -> Result<HookAuth, BackendError> {
        let name = name
            .filter(|n| !n.trim().is_empty())
            .ok_or(BackendError::MissingOption {
                module: "hook".into(),
                option: "name",
            })?;
        Ok(HookAuth {
            name: name.trim().to_owned(),
        })
    }

    /// The question put to the hook for a client.
    pub fn query(ctx: &CheckContext) -> AuthQuery {
        AuthQuery {
            username: ctx.username.clone(),
            password: None,
            peer: ctx.peer.to_string(),
            transport: ctx.transport.clone(),
            display: ctx.display.clone(),
            certificate: ctx.certificate.as_ref().map(ToString::to_string),
        }
    }

    /// Asks the hook. Blocking: runs on the blocking pool, like every deciding module.
    pub fn decide(&self, ctx: &CheckContext) -> Result<bool, BackendError> {
        let unavailable = |reason: String| BackendError::Exec {
            command: format!("hook:{}", self.name),
            reason,
        };
        let hook = crate::plugin::auth_hook(&self.name)
            .ok_or_else(|| unavailable("no such auth hook is running".into()))?;
        let answer = futures::executor::block_on(async {
            tokio::time::timeout(ASK_TIMEOUT, hook.send(Self::query(ctx))).await
        });
        match answer {
            Ok(Ok(Ok(allow))) => {
                tracing::debug!(target: "xgate::auth", hook = %self.name, user = %ctx.username, allow, "auth hook answered");
                Ok(allow)
            }
            Ok(Ok(Err(e))) => Err(unavailable(e.to_string())),
            Ok(Err(_)) => Err(unavailable("the hook stopped".into())),
            Err(_) => Err(unavailable("no answer in time".into())),
        }
    }
}
