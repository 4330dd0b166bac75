//! Real xpra: sessions run as the test user, one-shot client commands, GUI clients under Xvfb,
//! and the screenshot that proves pixels flow.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::alloc::DisplayLock;
use super::gateway::Gateway;
use super::proc::{kill_pid, pid_alive, run_with_timeout, wait_until, CmdOutput, Guarded};
use super::user::TestUser;

/// Time allowed for one-shot xpra commands (a 3.1.3 client retries a refused TCP connection
/// for 20 s on its own).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(45);

/// Which real xpra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Debian 12's xpra 3.1.3, `/usr/bin/xpra`.
    V3,
    /// xpra 6.5.5 from PyPI, in the venv `scripts/setup-deps` builds.
    V6,
}

impl Version {
    /// The `xpra` executable; panics with a clear message when it is not installed.
    pub fn bin(self) -> PathBuf {
        let p = PathBuf::from(match self {
            Version::V3 => "/usr/bin/xpra",
            Version::V6 => "/var/cache/xgate/xpra-6.5.5/bin/xpra",
        });
        assert!(
            p.exists(),
            "{} is missing: run scripts/setup-deps (as root) to install xpra {}",
            p.display(),
            self.name()
        );
        p
    }

    /// "3.1.3" or "6.5.5".
    pub fn name(self) -> &'static str {
        match self {
            Version::V3 => "3.1.3",
            Version::V6 => "6.5.5",
        }
    }

    /// Options every command of this version gets.
    fn common_args(self) -> Vec<&'static str> {
        match self {
            Version::V3 => vec![],
            // Debian's /etc/xpra lists encoders 6.5 rejects.
            Version::V6 => vec!["--packet-encoders=rencodeplus"],
        }
    }

    /// `xpra` with the options of every test session ([`QUIET_SERVER_ARGS`] and this version's
    /// own), as one line: the gateway's `proxy-start-command`, which splits it on blanks.
    pub fn server_command(self) -> String {
        let bin = self.bin().to_string_lossy().into_owned();
        std::iter::once(bin.as_str())
            .chain(QUIET_SERVER_ARGS.iter().copied())
            .chain(self.common_args())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A client command run as root (the tests' own identity) in a private home.
    pub fn client(self, home: &Path) -> Command {
        let mut c = Command::new(self.bin());
        c.env("HOME", home)
            .env("XDG_RUNTIME_DIR", home)
            .env_remove("DISPLAY")
            .env("XPRA_PING_TIMEOUT", "60");
        c
    }

    /// Runs `xpra ARGS` as a client (bounded by [`CMD_TIMEOUT`]).
    pub fn run(self, home: &Path, args: &[&str]) -> CmdOutput {
        let mut c = self.client(home);
        c.args(args).args(self.common_args());
        run_with_timeout(&mut c, CMD_TIMEOUT)
    }
}

fn client_home(dir: &Path) -> PathBuf {
    let home = dir.join("client-home");
    std::fs::create_dir_all(&home).expect("create a client home");
    super::set_mode(&home, 0o700);
    home
}

/// A real xpra session (`xpra start :N --start=xterm`) run as the test user, stopped on drop.
#[derive(Debug)]
pub struct Session {
    /// Which xpra runs it.
    pub version: Version,
    /// Its display (reserved for this test).
    pub display: DisplayLock,
    /// The TCP port it also listens on, if any.
    pub tcp_port: Option<u16>,
    /// The server's pid file.
    pidfile: PathBuf,
    /// The server's pid, once known.
    pid: Option<u32>,
    /// The test directory (screenshots, logs).
    dir: PathBuf,
    /// Whether it was stopped or killed already.
    stopped: bool,
}

/// Server options every test session gets: nothing the test machine lacks or that would
/// outlive the test (mDNS, sound, notifications, a dbus session, systemd scopes), and no
/// application menu: 3.1.3 loads the xdg menus before it says "xpra is ready", and under CI's
/// load that once took more than a minute, during which the session answered nothing.
pub const QUIET_SERVER_ARGS: &[&str] = &[
    "--start-new-commands=no",
    "--mdns=no",
    "--pulseaudio=no",
    "--notifications=no",
    "--dbus-launch=no",
    "--webcam=no",
    "--speaker=no",
    "--microphone=no",
    "--systemd-run=no",
];

impl Session {
    /// Takes charge of a session someone else started on `display` (the gateway, for a
    /// client's `xpra start`): waits (bounded) until it answers `xpra version :N` as the test
    /// user, finds its server's pid in `xpra info`, and stops it on drop like any other.
    pub fn adopt(version: Version, display: DisplayLock, dir: &Path) -> Session {
        let n = display.number;
        let mut s = Session {
            version,
            display,
            tcp_port: None,
            pidfile: dir.join(format!("xpra-{n}.pid")),
            pid: None,
            dir: dir.to_path_buf(),
            stopped: false,
        };
        s.wait_up("was not started by anyone");
        let info = s.as_user(&["info", &format!(":{n}")]);
        s.pid = info
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("server.pid="))
            .and_then(|p| p.trim().parse().ok());
        s
    }

    /// Starts a session running xterm and waits (bounded) until it answers `xpra version :N`.
    /// With `tcp`, it also listens on a free port on 127.0.0.1 (no auth).
    pub fn start(version: Version, tcp: bool, dir: &Path) -> Session {
        Session::start_with(version, tcp, dir, &[])
    }

    /// As [`Session::start`], with extra server options: `--bind-ssl=...`, `--ssl-cert=...`, or
    /// `--socket-dir=DIR` (xpra 3.1.3 keeps the socket in the usual directory too): a gateway
    /// given only that directory (`--socket-dirs`) finds this session alone among the test
    /// user's, which a client that names no display (a unix-socket URL) needs.
    pub fn start_with(version: Version, tcp: bool, dir: &Path, extra: &[String]) -> Session {
        let user = TestUser::get();
        let display = DisplayLock::new();
        let n = display.number;
        let tcp_port = tcp.then(super::alloc::free_port);
        let pidfile = dir.join(format!("xpra-{n}.pid"));
        let mut c = user.command(&version.bin().to_string_lossy());
        c.arg("start")
            .arg(format!(":{n}"))
            .args(["--start=xterm", "--daemon=yes"])
            .args(QUIET_SERVER_ARGS)
            .arg(format!("--pidfile={}", pidfile.display()))
            .args(version.common_args());
        if let Some(p) = tcp_port {
            c.arg(format!("--bind-tcp=127.0.0.1:{p}"));
        }
        c.args(extra);
        let out = run_with_timeout(&mut c, Duration::from_secs(60));
        let mut s = Session {
            version,
            display,
            tcp_port,
            pidfile,
            pid: None,
            dir: dir.to_path_buf(),
            stopped: false,
        };
        assert!(
            out.success(),
            "xpra {} start :{n} failed: {out}\n{}",
            version.name(),
            s.server_log()
        );
        s.wait_up("did not come up");
        s.pid = std::fs::read_to_string(&s.pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        s
    }

    /// Waits (bounded) until the session answers `xpra version :N` as the test user; panics
    /// with `what` happened instead and the server's log otherwise.
    fn wait_up(&self, what: &str) {
        let n = self.number();
        let mut last = None;
        let up = wait_until(Duration::from_secs(90), || {
            let out = self.as_user(&["version", &format!(":{n}")]);
            let ok = out.success();
            last = Some(out);
            ok.then_some(())
        });
        assert!(
            up.is_some(),
            "xpra {} session :{n} {what} within 90 s; the last `xpra version :{n}`: {}\n{}",
            self.version.name(),
            last.map_or_else(|| "(none ran)".to_owned(), |o| o.to_string()),
            self.server_log()
        );
    }

    /// The display number.
    pub fn number(&self) -> u32 {
        self.display.number
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// `tcp://127.0.0.1:PORT/` of its TCP socket.
    pub fn tcp_url(&self) -> String {
        format!(
            "tcp://127.0.0.1:{}/",
            self.tcp_port
                .expect("the session was started without --bind-tcp")
        )
    }

    /// Runs `xpra ARGS` as the test user (so that it reaches the session's unix socket).
    pub fn as_user(&self, args: &[&str]) -> CmdOutput {
        let mut c = TestUser::get().command(&self.version.bin().to_string_lossy());
        c.args(args).args(self.version.common_args());
        run_with_timeout(&mut c, CMD_TIMEOUT)
    }

    /// The server's log file (3.1.3 and 6.5.5 keep it in different places).
    pub fn server_log(&self) -> String {
        let user = TestUser::get();
        let n = self.number();
        let dir = user.runtime_dir.join("xpra");
        // Only this version's place: another version's log for the same number would be an
        // earlier session's and would hide why this one failed.
        let p = match self.version {
            Version::V6 => dir.join(n.to_string()).join(format!(":{n}.log")),
            Version::V3 => dir.join(format!(":{n}.log")),
        };
        if p.exists() {
            return super::tail(&p, 4000);
        }
        format!("(no server log for :{n} at {})", p.display())
    }

    /// Whether `xpra list` (as the test user) shows this session as LIVE.
    pub fn listed_live(&self) -> bool {
        let out = self.as_user(&["list"]);
        let n = format!(":{}", self.number());
        out.all().lines().any(|l| {
            l.contains("LIVE")
                && l.match_indices(&n).any(|(i, _)| {
                    !l[i + n.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
                })
        })
    }

    /// Takes `xpra screenshot` directly on the session; the PNG's path if one was written.
    pub fn screenshot(&self, name: &str) -> Option<PathBuf> {
        let path = self.dir.join(name);
        let _ = std::fs::remove_file(&path);
        let out = self.as_user(&[
            "screenshot",
            &path.to_string_lossy(),
            &format!(":{}", self.number()),
        ]);
        (out.success() && path.metadata().is_ok_and(|m| m.len() > 0)).then_some(path)
    }

    /// Waits (up to `timeout`) for a screenshot that shows the xterm: a PNG of more than 4 KB
    /// with several colours and a non-black mean; panics with the evidence otherwise.
    pub fn wait_for_pixels(&self, name: &str, timeout: Duration) -> PngStats {
        let mut last = String::from("no screenshot was written");
        let stats = wait_until(timeout, || {
            let p = self.screenshot(name)?;
            match png_stats(&p) {
                Ok(s) if s.looks_like_a_window() => Some(s),
                Ok(s) => {
                    last = format!("{}: {s:?}", p.display());
                    None
                }
                Err(e) => {
                    last = e;
                    None
                }
            }
        });
        stats.unwrap_or_else(|| {
            panic!(
                "no screenshot showing the xterm of :{} within {timeout:?}: {last}\n{}",
                self.number(),
                self.server_log()
            )
        })
    }

    /// [`Session::wait_for_pixels`] for a `client` attached through `gateway`: on failure, the
    /// client's state and log and the gateway's log are printed before the panic goes on.
    pub fn wait_for_pixels_through(
        &self,
        name: &str,
        timeout: Duration,
        client: &mut Attach,
        gateway: &Gateway,
    ) -> PngStats {
        let shot = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.wait_for_pixels(name, timeout)
        }));
        shot.unwrap_or_else(|e| {
            eprintln!(
                "client running: {}\n{}\n{}",
                client.running(),
                client.process.log_tail(),
                gateway.process.log_tail()
            );
            std::panic::resume_unwind(e)
        })
    }

    /// SIGKILLs the server (a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid {
            kill_pid(pid, "KILL");
            wait_until(Duration::from_secs(10), || (!pid_alive(pid)).then_some(()));
        }
    }

    /// Whether the server process is alive.
    pub fn alive(&self) -> bool {
        self.pid.is_some_and(pid_alive)
    }

    /// Stops the session: `xpra stop`, then kills what is left (server and its X server).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let n = self.number();
        if self.alive() {
            let _ = self.as_user(&["stop", &format!(":{n}")]);
            if let Some(pid) = self.pid {
                wait_until(Duration::from_secs(10), || (!pid_alive(pid)).then_some(()));
                if pid_alive(pid) {
                    kill_pid(pid, "KILL");
                }
            }
        }
        // The session's Xvfb (left behind if the server was killed).
        if let Some(xpid) = std::fs::read_to_string(format!("/tmp/.X{n}-lock"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            if pid_alive(xpid) {
                kill_pid(xpid, "TERM");
                wait_until(Duration::from_secs(5), || (!pid_alive(xpid)).then_some(()));
                if pid_alive(xpid) {
                    kill_pid(xpid, "KILL");
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[session :{}] {}", self.number(), self.server_log());
        }
        self.stop();
    }
}

/// What a screenshot shows, measured with ImageMagick.
#[derive(Debug, Clone, PartialEq)]
pub struct PngStats {
    /// File size in bytes.
    pub bytes: u64,
    /// Width and height.
    pub size: (u32, u32),
    /// Distinct colours.
    pub colours: u64,
    /// Mean intensity, 0 (black) to 1 (white).
    pub mean: f64,
}

impl PngStats {
    /// A real window's pixels: a few KB of PNG, more than one colour, not all black.
    pub fn looks_like_a_window(&self) -> bool {
        self.bytes > 4096 && self.colours >= 2 && self.mean > 0.005 && self.size.0 >= 100
    }
}

/// Measures a PNG with `convert FILE -format '%w %h %k %[fx:mean]' info:`.
pub fn png_stats(path: &Path) -> Result<PngStats, String> {
    let convert = Path::new("/usr/bin/convert");
    if !convert.exists() {
        panic!("/usr/bin/convert (ImageMagick) is missing: run scripts/setup-deps");
    }
    let out = run_with_timeout(
        Command::new(convert)
            .arg(path)
            .args(["-format", "%w %h %k %[fx:mean]", "info:"]),
        Duration::from_secs(30),
    );
    if !out.success() {
        return Err(out.to_string());
    }
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    let parse_err = || format!("cannot parse ImageMagick's answer: {out}");
    if f.len() != 4 {
        return Err(parse_err());
    }
    Ok(PngStats {
        bytes: path.metadata().map(|m| m.len()).unwrap_or(0),
        size: (
            f[0].parse().map_err(|_| parse_err())?,
            f[1].parse().map_err(|_| parse_err())?,
        ),
        colours: f[2].parse().map_err(|_| parse_err())?,
        mean: f[3].parse().map_err(|_| parse_err())?,
    })
}

/// An Xvfb for a GUI client, killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    /// Its display (reserved for this test).
    pub display: DisplayLock,
    /// The server process.
    process: Guarded,
}

impl Xvfb {
    /// Starts `Xvfb :M -screen 0 1024x768x24` and waits for its socket.
    pub fn start(dir: &Path) -> Xvfb {
        let xvfb = Path::new("/usr/bin/Xvfb");
        assert!(
            xvfb.exists(),
            "/usr/bin/Xvfb is missing: run scripts/setup-deps"
        );
        let display = DisplayLock::new();
        let n = display.number;
        let mut process = Guarded::spawn(
            "Xvfb",
            Command::new(xvfb).arg(format!(":{n}")).args([
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ]),
            &dir.join(format!("xvfb-{n}.log")),
        );
        let sock = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let up = wait_until(Duration::from_secs(15), || {
            (sock.exists() || !process.running()).then_some(())
        });
        assert!(
            up.is_some() && process.running(),
            "Xvfb :{n} did not start\n{}",
            process.log_tail()
        );
        Xvfb { display, process }
    }

    /// `:M`.
    pub fn name(&self) -> String {
        format!(":{}", self.display.number)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(3));
    }
}

/// A GUI client: `xpra attach URL` on an Xvfb, killed on drop.
#[derive(Debug)]
pub struct Attach {
    /// Which xpra it is.
    pub version: Version,
    /// The client process (its log holds its output).
    pub process: Guarded,
    /// Its display; dropped after the client.
    _xvfb: Xvfb,
}

impl Attach {
    /// Starts an Xvfb and `xpra attach URL` on it.
    pub fn start(version: Version, url: &str, dir: &Path) -> Attach {
        Attach::spawn(version, url, dir, &[], None, &[])
    }

    /// Like [`Attach::start`], with `extra` options after the usual ones (`--ssl-ca-certs=...`,
    /// debug categories, encodings), and run as `user` (with its home and runtime directory)
    /// instead of root when one is given: a unix-socket client whose uid the gateway checks
    /// (`peercred`).
    pub fn start_with(
        version: Version,
        url: &str,
        dir: &Path,
        extra: &[String],
        user: Option<&TestUser>,
    ) -> Attach {
        Attach::spawn(version, url, dir, extra, user, &[])
    }

    /// [`Attach::start`] with extra client options (`--ssh=...`) and environment variables.
    pub fn start_with_env(
        version: Version,
        url: &str,
        dir: &Path,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Attach {
        Attach::spawn(version, url, dir, extra, None, env)
    }

    fn spawn(
        version: Version,
        url: &str,
        dir: &Path,
        extra: &[String],
        user: Option<&TestUser>,
        env: &[(&str, &str)],
    ) -> Attach {
        let xvfb = Xvfb::start(dir);
        let mut c = match user {
            None => version.client(&client_home(dir)),
            Some(u) => {
                let mut c = u.command(&version.bin().to_string_lossy());
                c.env("XPRA_PING_TIMEOUT", "60");
                c
            }
        };
        c.env("DISPLAY", xvfb.name())
            .arg("attach")
            .arg(url)
            .args([
                "--mdns=no",
                "--pulseaudio=no",
                "--notifications=no",
                "--speaker=no",
                "--microphone=no",
                "--webcam=no",
                "--tray=no",
                "--opengl=no",
                "--system-tray=no",
            ])
            .args(version.common_args());
        if version == Version::V6 {
            c.arg("--splash=no");
        }
        c.args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        let log = dir.join(format!("attach-{}.log", xvfb.display.number));
        let process = Guarded::spawn(&format!("xpra {} attach", version.name()), &mut c, &log);
        Attach {
            version,
            process,
            _xvfb: xvfb,
        }
    }

    /// The client's X display (`:M`), for screenshots of what it shows.
    pub fn display(&self) -> String {
        self._xvfb.name()
    }

    /// Whether the client still runs.
    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits (up to `timeout`) for the client to log that it attached to a server (`Attached
    /// to ...`, printed once the session's own hello came back); panics with its log otherwise.
    pub fn wait_attached(&mut self, timeout: Duration) {
        let ok = wait_until(timeout, || {
            if self.log().contains("Attached to") {
                return Some(true);
            }
            (!self.running()).then_some(false)
        });
        assert_eq!(
            ok,
            Some(true),
            "xpra {} attach did not attach within {timeout:?}\n{}",
            self.version.name(),
            self.process.log_tail()
        );
    }

    /// Panics with its log unless it is still running.
    pub fn assert_running(&mut self, what: &str) {
        let running = self.running();
        assert!(
            running,
            "the attached client exited {what}\n{}",
            self.process.log_tail()
        );
    }
}

/// A private home for one-shot clients, inside the test directory.
pub fn client_home_in(dir: &Path) -> PathBuf {
    client_home(dir)
}
