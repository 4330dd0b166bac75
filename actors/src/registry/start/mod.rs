//! Starting sessions on demand, as xpra's proxy does with `proxy-start-sessions`: a client that
//! runs `xpra start tcp://user@gateway/N --start=xterm` (the hello's `start-new-session`) or
//! `xpra start ssh://user@gateway/N` (SSH's `_proxy_start`) gets a new session, started by the
//! gateway with `xpra start` and then reached like any other.
//!
//! Sessions start as the user the gateway runs as (after its privilege drop it cannot become
//! anyone else), so only a client whose sessions are that user's may start one. The client's
//! options reach `xpra start` only from an allow-list ([`OVERRIDABLE`]), each as one argv item
//! (no shell): start commands, environment and display settings, never listeners or auth.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use xgate_messages::{LookupSessions, SessionSource, SessionTarget, UserIdentity};

use crate::users;

pub mod request;

pub use request::{RequestError, StartMode, StartRequest, OVERRIDABLE};

/// Log target of this module.
const LOG_TARGET: &str = "xgate::registry";

/// The display numbers tried when the client names none.
const AUTO_DISPLAYS: std::ops::RangeInclusive<u32> = 100..=999;

/// How much of the start command's output is kept for the log and the error.
const MAX_OUTPUT: u64 = 8 * 1024;

/// What the configuration says about starting sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSettings {
    /// `proxy-start-sessions`.
    pub enabled: bool,
    /// `proxy-start-command`: the xpra executable and its fixed leading options.
    pub command: Vec<String>,
    /// `proxy-start-timeout`: for the start command and then for the session's socket.
    pub timeout: Duration,
}

impl StartSettings {
    /// The settings of a validated configuration.
    pub fn from_config(cfg: &xgate_config::Config) -> Self {
        StartSettings {
            enabled: cfg.proxy_start_sessions,
            command: cfg
                .proxy_start_command
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            timeout: cfg.proxy_start_timeout,
        }
    }
}

impl Default for StartSettings {
    /// Off, as in the embedded configuration.
    fn default() -> Self {
        StartSettings {
            enabled: false,
            command: vec!["xpra".to_owned()],
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why no session was started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `proxy-start-sessions` is off.
    #[error("starting sessions is not enabled on this gateway (proxy-start-sessions)")]
    Disabled,
    /// The client's sessions belong to another user than the gateway's.
    #[error("cannot start a session for uid {uid}: the gateway runs as uid {own}")]
    OtherUser {
        /// The client's uid.
        uid: u32,
        /// The gateway's.
        own: u32,
    },
    /// The request itself is invalid.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// The display asked for already has a session or an X server.
    #[error("display :{0} is already active")]
    DisplayInUse(u32),
    /// No display number was free.
    #[error("no free display between :{} and :{}", AUTO_DISPLAYS.start(), AUTO_DISPLAYS.end())]
    NoFreeDisplay,
    /// The xpra command could not be run.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The executable.
        command: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The xpra command failed.
    #[error("xpra {mode} :{display} failed ({status}): {output}")]
    Failed {
        /// The subcommand.
        mode: &'static str,
        /// The display.
        display: u32,
        /// Its exit status.
        status: String,
        /// The end of what it printed.
        output: String,
    },
    /// The session did not come up in time.
    #[error("the session on :{0} did not come up within {1:?}")]
    Timeout(u32, Duration),
}

impl StartError {
    /// The `disconnect` reason xpra's proxy sends for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            StartError::Disabled | StartError::DisplayInUse(_) => super::SESSION_NOT_FOUND,
            StartError::OtherUser { .. } => "permission error",
            StartError::BadRequest(_) => "invalid start request",
            _ => "server error",
        }
    }

    /// Whether trying again later can help (the machine was busy or out of displays).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            StartError::NoFreeDisplay | StartError::Timeout(..) | StartError::DisplayInUse(_)
        )
    }
}

/// Whether display `n` has an X server (its lock file or socket), as xpra checks before using
/// a display number.
fn x_display_in_use(n: u32) -> bool {
    Path::new(&format!("/tmp/.X{n}-lock")).exists()
        || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
}

/// The environment a started session gets: the account's own (home, names, runtime dir), the
/// gateway's `PATH` and locale; nothing else of the gateway's.
fn session_env(account: Option<&users::Account>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    env.push(("PATH".to_owned(), path));
    for key in ["LANG", "LC_ALL", "TZ"] {
        if let Ok(v) = std::env::var(key) {
            env.push((key.to_owned(), v));
        }
    }
    if let Some(a) = account {
        env.push(("HOME".to_owned(), a.home.to_string_lossy().into_owned()));
        env.push(("USER".to_owned(), a.name.clone()));
        env.push(("LOGNAME".to_owned(), a.name.clone()));
        let runtime = PathBuf::from(format!("/run/user/{}", a.uid));
        if runtime.is_dir() {
            env.push((
                "XDG_RUNTIME_DIR".to_owned(),
                runtime.to_string_lossy().into_owned(),
            ));
        }
    }
    env
}

/// The command line of a start: the configured command, the subcommand, the display, the
/// gateway's own settings (no daemon prompt, no attach, no system proxy), then the client's.
pub fn command_line(settings: &StartSettings, req: &StartRequest, display: u32) -> Vec<String> {
    let mut argv = settings.command.clone();
    argv.push(req.mode.name().to_owned());
    argv.push(format!(":{display}"));
    for fixed in ["--daemon=yes", "--attach=no", "--start-via-proxy=no"] {
        argv.push(fixed.to_owned());
    }
    argv.extend(req.options.iter().map(|(k, v)| format!("--{k}={v}")));
    argv
}

/// Reads what a finished start command printed, bounded in size and time: the daemon it left
/// behind may still hold the pipe open.
async fn output_of<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let Some(pipe) = pipe else {
        return String::new();
    };
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        pipe.take(MAX_OUTPUT).read_to_end(&mut buf),
    )
    .await;
    String::from_utf8_lossy(&buf).trim().to_owned()
}

/// Starts sessions, one display at a time: the displays being started are reserved so that two
/// clients starting at once get different numbers.
#[derive(Debug, Default)]
pub struct Starter {
    /// Displays whose start is under way.
    starting: Mutex<HashSet<u32>>,
}

/// Releases a reserved display number when the start is over, however it ended.
struct Reservation<'a> {
    /// The starter holding the reservation.
    starter: &'a Starter,
    /// The display.
    display: u32,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.starter.lock().remove(&self.display);
    }
}

impl Starter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.starting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the requested display, or the first free one.
    fn reserve(
        &self,
        requested: Option<u32>,
        existing: &[SessionTarget],
    ) -> Result<Reservation<'_>, StartError> {
        let known: HashSet<&str> = existing.iter().map(|t| t.display.as_str()).collect();
        let free = |n: u32, starting: &HashSet<u32>| {
            !starting.contains(&n)
                && !known.contains(format!(":{n}").as_str())
                && !x_display_in_use(n)
        };
        let mut starting = self.lock();
        let display = match requested {
            Some(n) if free(n, &starting) => n,
            Some(n) => return Err(StartError::DisplayInUse(n)),
            None => AUTO_DISPLAYS
                .clone()
                .find(|n| free(*n, &starting))
                .ok_or(StartError::NoFreeDisplay)?,
        };
        starting.insert(display);
        Ok(Reservation {
            starter: self,
            display,
        })
    }

    /// Runs `xpra start` (or `start-desktop`, `shadow`) for `user` and returns the display once
    /// the command has daemonized the server. `existing` are the user's known sessions (their
    /// displays are not reused). The caller then waits for the session's socket.
    pub async fn start(
        &self,
        settings: &StartSettings,
        req: &StartRequest,
        user: &UserIdentity,
        existing: &[SessionTarget],
    ) -> Result<u32, StartError> {
        if !settings.enabled {
            return Err(StartError::Disabled);
        }
        let own = users::own_uid();
        if let Some(uid) = user.uid.filter(|u| *u != own) {
            return Err(StartError::OtherUser { uid, own });
        }
        if !req.ignored.is_empty() {
            tracing::warn!(target: LOG_TARGET, user = %user.username, ignored = ?req.ignored, "start options a client may not set were ignored");
        }
        let reservation = self.reserve(req.display, existing)?;
        let number = reservation.display;
        let argv = command_line(settings, req, number);
        let account = users::by_uid(own);
        let cwd = account
            .as_ref()
            .map(|a| a.home.clone())
            .filter(|h| h.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        tracing::info!(target: LOG_TARGET, user = %user.username, display = %format!(":{number}"), command = ?argv, "starting a session");
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(session_env(account.as_ref()))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
            command: argv[0].clone(),
            source,
        })?;
        let status = match tokio::time::timeout(settings.timeout, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(source)) => {
                return Err(StartError::Spawn {
                    command: argv[0].clone(),
                    source,
                })
            }
            Err(_) => return Err(StartError::Timeout(number, settings.timeout)),
        };
        if !status.success() {
            let mut output = output_of(child.stderr.take()).await;
            if output.is_empty() {
                output = output_of(child.stdout.take()).await;
            }
            let tail: String = output.lines().rev().take(6).collect::<Vec<_>>().join(" / ");
            return Err(StartError::Failed {
                mode: req.mode.name(),
                display: number,
                status: status.to_string(),
                output: tail,
            });
        }
        tracing::info!(target: LOG_TARGET, user = %user.username, display = %format!(":{number}"), "session started");
        Ok(number)
    }
}

/// Waits (up to `timeout`) until the user's socket scan shows display `display` LIVE, and
/// returns it: a daemonized server takes a few seconds to open its socket.
pub async fn wait_for_session(
    registry: &actix::Addr<super::SessionRegistry>,
    user: &UserIdentity,
    display: u32,
    timeout: Duration,
) -> Result<SessionTarget, StartError> {
    let name = format!(":{display}");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let sessions = registry
            .send(LookupSessions {
                user: user.clone(),
                source: SessionSource::SocketScan,
            })
            .await
            .unwrap_or_default();
        if let Some(t) = sessions.into_iter().find(|t| t.display == name) {
            return Ok(t);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StartError::Timeout(display, timeout));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_protocol::Value;

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn the_command_line_puts_fixed_options_first_and_the_clients_last() {
        let sns = Value::Dict(vec![
            (s("mode"), s("start-desktop")),
            (s("start"), Value::List(vec![s("xterm"), s("xclock")])),
            (s("bind-tcp"), s("0.0.0.0:1")),
            (s("exit-with-children"), Value::Bool(true)),
            (s("dpi"), Value::Int(96)),
        ]);
        let req = StartRequest::from_hello(&sns).expect("valid");
        let settings = StartSettings {
            enabled: true,
            command: vec!["/usr/bin/xpra".into(), "--mdns=no".into()],
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            command_line(&settings, &req, 123),
            [
                "/usr/bin/xpra",
                "--mdns=no",
                "start-desktop",
                ":123",
                "--daemon=yes",
                "--attach=no",
                "--start-via-proxy=no",
                "--start=xterm",
                "--start=xclock",
                "--exit-with-children=yes",
                "--dpi=96"
            ]
        );
    }

    #[test]
    fn displays_are_reserved_once_and_released() {
        let starter = Starter::default();
        let existing = vec![SessionTarget {
            display: ":100".into(),
            address: xgate_messages::TargetAddress::Unix {
                path: "/nonexistent".into(),
            },
            options: Default::default(),
            env: Default::default(),
            source: "socket-dir".into(),
        }];
        let a = starter.reserve(None, &existing).expect("a free display");
        assert_ne!(a.display, 100, "a known session's display is not reused");
        let b = starter
            .reserve(None, &existing)
            .expect("another free display");
        assert_ne!(a.display, b.display);
        assert!(matches!(
            starter.reserve(Some(a.display), &existing),
            Err(StartError::DisplayInUse(_))
        ));
        assert!(matches!(
            starter.reserve(Some(100), &existing),
            Err(StartError::DisplayInUse(100))
        ));
        let n = a.display;
        drop(a);
        assert_eq!(
            starter.reserve(Some(n), &existing).map(|r| r.display).ok(),
            Some(n)
        );
    }

    #[tokio::test]
    async fn a_disabled_or_foreign_start_runs_nothing() {
        let starter = Starter::default();
        let req = StartRequest::for_display(None);
        let user = UserIdentity {
            username: "alice".into(),
            uid: None,
            gid: None,
        };
        let off = StartSettings::default();
        assert!(matches!(
            starter.start(&off, &req, &user, &[]).await,
            Err(StartError::Disabled)
        ));
        let on = StartSettings {
            enabled: true,
            ..StartSettings::default()
        };
        let other = UserIdentity {
            uid: Some(users::own_uid().wrapping_add(1)),
            ..user
        };
        let e = starter.start(&on, &req, &other, &[]).await.unwrap_err();
        assert!(matches!(e, StartError::OtherUser { .. }), "{e}");
        assert_eq!(e.reason(), "permission error");
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_output() {
        let starter = Starter::default();
        let settings = StartSettings {
            enabled: true,
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo cannot start \"$1\" >&2; exit 3".into(),
                "sh".into(),
            ],
            timeout: Duration::from_secs(10),
        };
        let req = StartRequest::for_display(None);
        let user = UserIdentity {
            username: "alice".into(),
            uid: None,
            gid: None,
        };
        let e = starter
            .start(&settings, &req, &user, &[])
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, StartError::Failed { .. }), "{text}");
        assert!(text.contains("cannot start start"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        let missing = StartSettings {
            command: vec!["/nonexistent/xpra".into()],
            ..settings
        };
        assert!(matches!(
            starter.start(&missing, &req, &user, &[]).await,
            Err(StartError::Spawn { .. })
        ));
    }
}
