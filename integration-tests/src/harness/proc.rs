//! Child processes that die with their guard, and commands that cannot run forever.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// Its exit status; `None` when it was killed at its timeout.
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Whether it ran past its timeout.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// Standard output and standard error together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with the whole output unless the command failed and said `authentication failed`
    /// (an xpra client refused by the gateway's or a server's auth); `what` names the attempt.
    pub fn assert_auth_failed(&self, what: &str) {
        assert!(!self.success(), "{what} got in: {self}");
        assert!(
            self.all().contains("authentication failed"),
            "{what} was not refused as an authentication failure: {self}"
        );
    }

    /// Panics with the whole output unless the command succeeded.
    pub fn expect_success(&self) -> &CmdOutput {
        assert!(self.success(), "command failed: {self}");
        self
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at its timeout".to_string(),
        };
        write!(
            f,
            "`{}`: {status}\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion, killing it (and its process group) after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let command = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let out = child.stdout.take().map(reader_thread);
    let err = child.stderr.take().map(reader_thread);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(child.id(), "KILL");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    // A grandchild may keep the pipes open (a daemon); don't wait for it forever.
    let join = |h: Option<std::thread::JoinHandle<String>>| {
        h.map(|h| {
            let until = Instant::now() + Duration::from_secs(5);
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                h.join().unwrap_or_default()
            } else {
                "(output still open after exit: a daemon kept it)".to_string()
            }
        })
        .unwrap_or_default()
    };
    CmdOutput {
        command,
        status,
        stdout: join(out),
        stderr: join(err),
    }
}

fn reader_thread(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Sends `signal` (a name such as `TERM`) to a process group, through kill(1).
pub fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Sends `signal` to one process, through kill(1).
pub fn kill_pid(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a process exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !matches!(state.and_then(|s| s.chars().next()), Some('Z') | None)
        }
        Err(_) => false,
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or gives up after `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A long-running child in its own process group, with its output in a log file. Dropping it
/// kills the whole group (TERM, then KILL after a grace period) and reaps it.
#[derive(Debug)]
pub struct Guarded {
    /// The child; `None` once reaped.
    child: Option<Child>,
    /// Its exit status, once known.
    status: Option<ExitStatus>,
    /// Where its stdout and stderr go.
    log: PathBuf,
    /// What it is, for messages.
    name: String,
}

impl Guarded {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Guarded {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let file2 = file.try_clone().expect("dup a log file");
        Self::spawn_with(name, cmd.stdout(file).stderr(file2), log)
    }

    /// Starts `cmd` whose stdio the caller has set up; `log` is what [`Guarded::log`] reads.
    pub fn spawn_with(name: &str, cmd: &mut Command, log: &Path) -> Guarded {
        let command = describe(cmd);
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (`{command}`): {e}"));
        Guarded {
            child: Some(child),
            status: None,
            log: log.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The child itself (for its pipes).
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.poll().is_none()
    }

    /// Its exit status if it has exited (reaping it).
    pub fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.poll())
    }

    /// Sends a signal to the child only (not its group).
    pub fn signal(&self, signal: &str) {
        if self.status.is_none() {
            kill_pid(self.pid(), signal);
        }
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The end of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        format!("[{}] {}", self.name, super::tail(&self.log, 6000))
    }

    /// Kills the process group now: TERM, then KILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if self.status.is_none() {
            kill_group(pid, "TERM");
            let exited = wait_until(grace, || child.try_wait().ok().flatten());
            if exited.is_none() {
                kill_group(pid, "KILL");
                let _ = child.kill();
            }
        }
        // Whatever else was left in the group.
        kill_group(pid, "KILL");
        self.status = self.status.or_else(|| child.wait().ok());
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.stop(Duration::from_secs(3));
    }
}
