//! [`Terminate`]: asks a worker to stop, so that the `kill` control command can make a listener
//! (or a plug-in) exit and be restarted by its supervisor. The binary records the abnormal exit
//! reason through the child's exit handle before sending it.

use actix::prelude::*;
use tracing::warn;

use crate::listener::Listener;

/// Asks an actor to stop now.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Terminate {
    /// Why, for the log.
    pub reason: String,
}

impl Handler<Terminate> for Listener {
    type Result = ();

    fn handle(&mut self, msg: Terminate, ctx: &mut Context<Self>) {
        warn!(target: super::LOG_TARGET, reason = %msg.reason, "listener terminated");
        ctx.stop();
    }
}

impl Handler<Terminate> for crate::plugin::PluginHost {
    type Result = ();

    fn handle(&mut self, msg: Terminate, ctx: &mut Context<Self>) {
        warn!(target: super::LOG_TARGET, reason = %msg.reason, "plug-in terminated");
        ctx.stop();
    }
}

impl Handler<Terminate> for crate::plugin::exec::ExecPlugin {
    type Result = ();

    fn handle(&mut self, msg: Terminate, ctx: &mut Context<Self>) {
        warn!(target: super::LOG_TARGET, reason = %msg.reason, "exec plug-in terminated");
        ctx.stop();
    }
}
