//! The `exec` plug-in kind: a child process that speaks JSON lines, for plug-ins in any language.
//!
//! ```toml
//! [[actor]]
//! kind = "exec"
//! name = "hook"
//! command = "/etc/xgate/auth-hook.sh"   # run with /bin/sh -c "exec COMMAND"
//! role = "auth"                         # answers auth queries (auth module hook:name=hook)
//! events = ["connection-opened"]        # also receives these events
//! timeout = "5"                         # seconds an auth answer may take (default 10)
//! ```
//! The gateway writes [`PluginInput`] lines to its stdin: events
//! (`{"type":"event","name":"connection-opened","event":{...}}`, no answer expected) and auth
//! queries (`{"type":"auth","username":"alice","password":null,"peer":"...","transport":"tcp","display":null}`),
//! each answered, in order, by one line `{"allow":true}` or `{"allow":false}` on its stdout.
//! Its stderr goes to the gateway's log. When the process exits (or is killed), the actor exits
//! abnormally and its supervisor restarts it, starting a new process; queries that were waiting
//! are refused.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, LinesCodec};
use tracing::{debug, info, warn};
use xgate_messages::plugin::{
    AuthAnswer, AuthQuery, PluginConfig, PluginError, PluginEvent, PluginInput,
};

use super::{is_auth_hook, register_auth_hook, EventSources, FailFn, LOG_TARGET};

/// How long an auth answer may take unless `timeout=` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest answer line read from the process.
const MAX_LINE: usize = 64 * 1024;

/// An `exec` plug-in's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The command line, run by `/bin/sh -c "exec COMMAND"`.
    pub command: String,
    /// How long an auth answer may take.
    pub timeout: Duration,
}

impl ExecConfig {
    /// From `command=` (required) and `timeout=` (seconds).
    pub fn from_config(config: &PluginConfig) -> Result<Self, PluginError> {
        let command = config
            .option("command")
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                PluginError::new(format!(
                    "actor '{}' (exec) needs command = \"...\"",
                    config.name
                ))
            })?;
        let timeout = match config.option("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(t) => Duration::from_secs(t.trim().parse::<u64>().map_err(|_| {
                PluginError::new(format!(
                    "actor '{}': timeout '{t}' is not a number of seconds",
                    config.name
                ))
            })?),
        };
        Ok(ExecConfig {
            command: command.to_owned(),
            timeout,
        })
    }
}

/// What the driver of the process is asked to do.
enum Job {
    /// Write a line; no answer.
    Event(String),
    /// Write a line and hand the next answer line back.
    Ask(String, oneshot::Sender<AuthAnswer>),
}

/// The `exec` plug-in actor.
pub struct ExecPlugin {
    /// Its configuration.
    config: PluginConfig,
    /// Command and timeout.
    exec: ExecConfig,
    /// Taken when the actor starts.
    sources: Option<EventSources>,
    /// Records an abnormal exit.
    fail: std::rc::Rc<FailFn>,
    /// Jobs for the driver; `None` before the process started.
    jobs: Option<mpsc::UnboundedSender<Job>>,
}

impl ExecPlugin {
    /// An exec plug-in; the process starts with the actor.
    pub fn new(
        config: PluginConfig,
        sources: EventSources,
        fail: FailFn,
    ) -> Result<Self, PluginError> {
        let exec = ExecConfig::from_config(&config)?;
        Ok(ExecPlugin {
            config,
            exec,
            sources: Some(sources),
            fail: std::rc::Rc::new(fail),
            jobs: None,
        })
    }
}

impl Actor for ExecPlugin {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut child = match tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec {}", self.exec.command))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                (self.fail)(format!(
                    "exec plug-in {}: cannot start: {e}",
                    self.config.name
                ));
                ctx.stop();
                return;
            }
        };
        info!(target: LOG_TARGET, name = %self.config.name, pid = child.id().unwrap_or(0), command = %self.exec.command, "exec plug-in started");
        let (tx, rx) = mpsc::unbounded_channel();
        self.jobs = Some(tx);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let name = self.config.name.clone();
        ctx.spawn(
            async move { drive(child, stdin, stdout, rx).await }
                .into_actor(self)
                .map(move |reason, act, ctx| {
                    warn!(target: LOG_TARGET, name = %name, "exec plug-in ended: {reason}");
                    (act.fail)(format!("exec plug-in {name}: {reason}"));
                    ctx.stop();
                }),
        );
        if let Some(s) = self.sources.take() {
            s.attach(&self.config, ctx);
        }
        if is_auth_hook(&self.config) {
            register_auth_hook(&self.config.name, ctx.address().recipient());
        }
    }
}

/// Runs the process until it exits; answers why.
async fn drive(
    mut child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) -> String {
    let (Some(mut stdin), Some(stdout)) = (stdin, stdout) else {
        return "no stdin/stdout".into();
    };
    let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
    let mut waiting: VecDeque<oneshot::Sender<AuthAnswer>> = VecDeque::new();
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return "stopped".into() };
                let (line, answer) = match job {
                    Job::Event(l) => (l, None),
                    Job::Ask(l, a) => (l, Some(a)),
                };
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                if let Err(e) = stdin.write_all(&bytes).await {
                    // The process is going away; its exit is reported below.
                    debug!(target: LOG_TARGET, "write to exec plug-in failed: {e}");
                    let status = child.wait().await.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    return format!("process exited ({status})");
                }
                if let Some(a) = answer {
                    waiting.push_back(a);
                }
            }
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<AuthAnswer>(&line) {
                        Ok(answer) => match waiting.pop_front() {
                            Some(w) => { let _ = w.send(answer); }
                            None => warn!(target: LOG_TARGET, "exec plug-in answered a question nobody asked: {line}"),
                        },
                        Err(e) => warn!(target: LOG_TARGET, "exec plug-in wrote a line that is not {{\"allow\":...}} ({e}): {line}"),
                    }
                }
                Some(Err(e)) => warn!(target: LOG_TARGET, "exec plug-in output: {e}"),
                None => {
                    let status = child.wait().await.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    return format!("process exited ({status})");
                }
            },
        }
    }
}

impl StreamHandler<PluginEvent> for ExecPlugin {
    fn handle(&mut self, event: PluginEvent, _ctx: &mut Context<Self>) {
        if !self.config.wants(&event) {
            return;
        }
        let input = PluginInput::Event {
            name: event.name().into(),
            event,
        };
        if let (Some(jobs), Ok(line)) = (&self.jobs, serde_json::to_string(&input)) {
            let _ = jobs.send(Job::Event(line));
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<AuthQuery> for ExecPlugin {
    type Result = ResponseFuture<Result<bool, PluginError>>;

    fn handle(&mut self, q: AuthQuery, _ctx: &mut Context<Self>) -> Self::Result {
        let timeout = self.exec.timeout;
        let name = self.config.name.clone();
        let (tx, rx) = oneshot::channel();
        let sent = match (&self.jobs, serde_json::to_string(&PluginInput::Auth(q))) {
            (Some(jobs), Ok(line)) => jobs.send(Job::Ask(line, tx)).is_ok(),
            _ => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(PluginError::new(format!(
                    "exec plug-in {name} is not running"
                )));
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(a)) => Ok(a.allow),
                Ok(Err(_)) => Err(PluginError::new(format!(
                    "exec plug-in {name} exited before answering"
                ))),
                Err(_) => Err(PluginError::new(format!(
                    "exec plug-in {name} did not answer within {timeout:?}"
                ))),
            }
        })
    }
}
