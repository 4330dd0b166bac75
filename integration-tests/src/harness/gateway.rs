//! The real `xgate` binary, started as root with `--uid/--gid` of the test user (so every test
//! also goes through the privilege drop), on a port it picks itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::proc::{wait_until, Guarded};
use super::user::TestUser;

/// How long xgate has to bind and say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `xgate` binary: `$XGATE_BIN`, or `xgate` in the target directory this test executable
/// was built into (`target/debug/deps/TEST` -> `target/debug/xgate`). Panics with the command
/// that builds it when it is missing.
pub fn xgate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XGATE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "XGATE_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut candidates = Vec::new();
    for dir in exe.ancestors().skip(1).take(3) {
        candidates.push(dir.join("xgate"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the xgate binary is missing (looked at {candidates:?}); build it first with \
                 `cargo build -p xgate-supervisor --bin xgate` using the same target directory \
                 and profile as the tests, or set XGATE_BIN"
            )
        })
}

/// A running gateway, stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Gateway {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The process; its stdout and stderr are in its log.
    pub process: Guarded,
}

impl Gateway {
    /// Starts `xgate run --bind-tcp=127.0.0.1:0 --uid=xgtest --gid=xgtest ARGS` and waits for
    /// its `xgate: listening on 127.0.0.1:PORT (...)` line.
    pub fn start(dir: &Path, args: &[String]) -> Gateway {
        let user = TestUser::get();
        let log = dir.join("xgate.log");
        let state = dir.join("xgate-state");
        std::fs::create_dir_all(&state).expect("create xgate's state dir");
        super::set_mode(&state, 0o777);
        std::fs::File::create(&log).expect("create xgate's log");
        // Appending, so that the `[stdout]` lines copied in below are not overwritten.
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open xgate's log");
        let mut cmd = Command::new(xgate_bin());
        cmd.arg("run")
            .arg("--bind-tcp=127.0.0.1:0")
            .arg(format!("--uid={}", user.name))
            .arg(format!("--gid={}", user.name))
            .arg(format!("--state-dir={}", state.display()))
            .args(args)
            // The harness's own variable: xgate would take it for an option (`XGATE_*`).
            .env_remove("XGATE_BIN")
            .env(
                "XGATE_LOG",
                std::env::var("XGATE_LOG").unwrap_or_else(|_| "info,xgate=debug".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut process = Guarded::spawn_with("xgate", &mut cmd, &log);
        let stdout = process
            .child_mut()
            .and_then(|c| c.stdout.take())
            .expect("xgate's stdout");
        // Copy stdout into the log and hand each line to the waiting test.
        let (tx, rx) = mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().append(true).open(&log2).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = out.as_mut() {
                    let _ = writeln!(f, "[stdout] {line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(p) = parse_listening(&line) {
                        break p;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() && process.running() => {}
                _ => panic!(
                    "xgate did not print `xgate: listening on 127.0.0.1:PORT` within \
                     {START_TIMEOUT:?} (exit status {:?})\n{}",
                    process.poll(),
                    process.log_tail()
                ),
            }
        };
        Gateway { port, process }
    }

    /// `tcp://[CRED@]127.0.0.1:PORT/PATH`.
    pub fn url(&self, cred: Option<(&str, &str)>, path: &str) -> String {
        let cred = cred.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        format!("tcp://{cred}127.0.0.1:{}/{path}", self.port)
    }

    /// The address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its log so far (stderr and stdout).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether one line of its log (colours stripped) holds every one of `needles`.
    pub fn logged(&self, needles: &[&str]) -> bool {
        super::strip_ansi(&self.log())
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }

    /// Waits (up to `timeout`) for a line of its log that holds every one of `needles`; panics
    /// with the log tail otherwise.
    pub fn wait_logged(&self, needles: &[&str], timeout: Duration) {
        let found = wait_until(timeout, || self.logged(needles).then_some(()));
        assert!(
            found.is_some(),
            "the gateway never logged a line with {needles:?} within {timeout:?}\n{}",
            self.process.log_tail()
        );
    }

    /// Waits (a minute at most) until its log shows `user` authenticated for `display` (the
    /// session it resolved: `:N`, a socket path or a URL).
    pub fn wait_authenticated(&self, user: &str, display: &str) {
        self.wait_logged(
            &[
                "authenticated",
                &format!("user={user}"),
                &format!("display={display}"),
            ],
            Duration::from_secs(60),
        );
    }

    /// Panics with the log unless the gateway still runs.
    pub fn assert_running(&mut self) {
        let alive = self.process.running();
        assert!(
            alive,
            "xgate exited: {:?}\n{}",
            self.process.poll(),
            self.process.log_tail()
        );
    }
}

fn parse_listening(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("xgate: listening on 127.0.0.1:")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A multifile user file (`user|password|uid|gid|displays`), readable by the dropped gateway.
pub fn write_multifile(dir: &super::TestDir, lines: &[(&str, &str, &[String])]) -> PathBuf {
    let user = TestUser::get();
    let text: String = lines
        .iter()
        .map(|(u, p, displays)| {
            format!(
                "{u}|{p}|{}|{}|{}\n",
                user.name,
                user.name,
                displays.join(",")
            )
        })
        .collect();
    dir.write("users.txt", &text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            super::parse_listening("xgate: listening on 127.0.0.1:4321 (tcp)"),
            Some(4321)
        );
        assert_eq!(super::parse_listening("xgate: attach with: ..."), None);
    }
}
