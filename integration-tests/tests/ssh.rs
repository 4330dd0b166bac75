//! Issue #8: xpra over SSH through xgate's builtin SSH server (russh), with real xpra 3.1.3 and
//! 6.5.5 clients, each with its paramiko backend and with the OpenSSH backend (`--ssh=ssh ...`),
//! by key and by password, on a `bind-ssh` listener and on the shared port (sniffed on `SSH-`);
//! and what is refused: wrong keys and passwords, shells, other commands, `_proxy_start` while
//! starting sessions is off, and a
//! client opening 1,000 channels, none of which disturbs an attached client. Also `ssh://`
//! targets: the gateway as an SSH client of a real OpenSSH server, with host key checking.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{World, PASSWORD, USER};
use xgate_integration_tests::harness::ssh::{
    client_options, fingerprint_of, keygen, public_key_of, ssh_command, write_known_hosts, Sshd,
};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    free_port, run_with_timeout, Attach, CmdOutput, DisplayLock, Session, TestDir, Version, Xvfb,
};

/// Time allowed for a client to attach (SSH handshake, probes, xpra hello).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// A gateway with an SSH listener, a session, and a client home whose `~/.ssh` has alice's key
/// (the one 3.1.3's paramiko looks for: `id_rsa`) and known_hosts lines for the gateway's host
/// key on both ports.
struct SshWorld {
    /// Session, gateway and test directory.
    w: World,
    /// The `bind-ssh` port.
    ssh_port: u16,
    /// Alice's private key.
    key: PathBuf,
    /// The known_hosts file (also `~/.ssh/known_hosts` of the client home).
    known_hosts: PathBuf,
    /// Where the authorized keys live (kept for the world's life).
    _keys: TestDir,
}

impl SshWorld {
    fn start(version: Version, name: &str, extra_args: &[String]) -> SshWorld {
        SshWorld::start_listing(version, name, &[], extra_args)
    }

    /// [`SshWorld::start`], with `more` displays in alice's multifile row besides the
    /// session's.
    fn start_listing(
        version: Version,
        name: &str,
        more: &[String],
        extra_args: &[String],
    ) -> SshWorld {
        let keys = TestDir::new(&format!("{name}-keys"));
        let key = keys.join("id_rsa");
        let public = keygen(&key, "rsa");
        let authorized = std::fs::read_to_string(&public).expect("read the public key");
        keys.write(&format!("{USER}.pub"), &authorized);
        let ssh_port = free_port();
        let w = World::start(
            version,
            name,
            false,
            |s| [vec![format!(":{}", s.number())], more.to_vec()].concat(),
            &[
                vec![
                    format!("--bind-ssh=127.0.0.1:{ssh_port}"),
                    format!("--ssh-authorized-keys={}/%u.pub", keys.path().display()),
                ],
                extra_args.to_vec(),
            ]
            .concat(),
        );
        // The host key the gateway generated, and the fingerprint it printed for it.
        let host_key = w.dir.join("xgate-state/ssh_host_ed25519_key");
        let printed = fingerprint_of(&host_key);
        assert!(
            w.gateway
                .log()
                .lines()
                .any(|l| l.contains("SSH host key") && l.contains(&printed)),
            "the gateway did not print its host key's fingerprint {printed}\n{}",
            w.gateway.process.log_tail()
        );
        let home = client_home_in(w.dir.path());
        let dot_ssh = home.join(".ssh");
        std::fs::create_dir_all(&dot_ssh).expect("create ~/.ssh");
        std::fs::copy(&key, dot_ssh.join("id_rsa")).expect("copy the key");
        let known_hosts = dot_ssh.join("known_hosts");
        write_known_hosts(
            &known_hosts,
            &public_key_of(&host_key),
            &[w.gateway.port, ssh_port],
        );
        SshWorld {
            w,
            ssh_port,
            key,
            known_hosts,
            _keys: keys,
        }
    }

    /// `ssh://alice[:secret]@127.0.0.1:PORT/N`.
    fn url(&self, port: u16, password: bool) -> String {
        let cred = if password {
            format!("{USER}:{PASSWORD}")
        } else {
            USER.to_string()
        };
        format!("ssh://{cred}@127.0.0.1:{port}/{}", self.w.session.number())
    }

    /// The `--ssh=` option of xpra's OpenSSH backend: this world's known_hosts, and the key
    /// unless the password is used.
    fn openssh_option(&self, key: bool) -> String {
        let key = key.then_some(self.key.as_path());
        format!(
            "--ssh=ssh {}",
            client_options(&self.known_hosts, key).join(" ")
        )
    }

    /// A GUI client attached through SSH.
    fn attach(&self, url: &str, backend: &str) -> Attach {
        Attach::start_with_env(
            self.w.version,
            url,
            self.w.dir.path(),
            &[backend.to_string()],
            &[],
        )
    }

    /// `ssh` to the gateway as alice, by key or with `password`.
    fn ssh(
        &self,
        port: u16,
        key: Option<&Path>,
        password: Option<&str>,
        cmd: Option<&str>,
    ) -> CmdOutput {
        ssh_command(
            &client_options(&self.known_hosts, key),
            port,
            USER,
            password,
            cmd,
        )
    }
}

/// `_proxy_start` over the builtin SSH server: `xpra start ssh://alice@gateway/N --start=xterm
/// --attach=no` (3.1.3, paramiko, by key) has the gateway start the session, and an attach over
/// SSH then shows the xterm the start asked for.
#[test]
fn xpra_3_start_over_ssh_then_attach() {
    let version = Version::V3;
    let display = DisplayLock::new();
    let n = display.number;
    // Alice's row lists the display to be started, so that she may attach to it afterwards.
    let sw = SshWorld::start_listing(
        version,
        "ssh-start",
        &[format!(":{n}")],
        &[
            "--proxy-start-sessions=yes".to_string(),
            format!("--proxy-start-command={}", version.server_command()),
        ],
    );
    let url = format!("ssh://{USER}@127.0.0.1:{}/{n}", sw.ssh_port);
    let screen = Xvfb::start(sw.w.dir.path());
    let mut start = version.client(&client_home_in(sw.w.dir.path()));
    start.env("DISPLAY", screen.name()).args([
        "start",
        url.as_str(),
        "--start=xterm",
        "--attach=no",
        "--ssh=paramiko",
    ]);
    let out = run_with_timeout(&mut start, Duration::from_secs(90));
    assert!(
        out.success(),
        "xpra start over SSH failed: {out}\n{}",
        sw.w.gateway.process.log_tail()
    );
    let session = Session::adopt(version, display, sw.w.dir.path());
    assert!(
        sw.w.gateway.log().contains("session started"),
        "the gateway did not start the session\n{}",
        sw.w.gateway.process.log_tail()
    );
    assert!(
        session.listed_live(),
        "the new session is not LIVE: {}",
        session.as_user(&["list"])
    );
    let mut client = sw.attach(&url, "--ssh=paramiko");
    session.wait_for_pixels_through(
        "ssh-started.png",
        ATTACH_TIMEOUT,
        &mut client,
        &sw.w.gateway,
    );
    client.assert_running("attached over SSH to the session the gateway started");
}

/// Attaches with one backend and credential, waits for `Attached to`, then kills the client
/// (6.5.5's GUI client hangs on SIGTERM) and checks that the gateway still runs.
fn attach_and_kill(sw: &mut SshWorld, what: &str, url: &str, backend: &str) {
    let mut client = sw.attach(url, backend);
    client.wait_attached(ATTACH_TIMEOUT);
    client.assert_running(what);
    client.process.signal("KILL");
    client.process.wait_exit(Duration::from_secs(10));
    sw.w.gateway.assert_running();
}

/// Every way in for one client version: paramiko by key on the shared port (proven by the
/// session's pixels), paramiko by password on `bind-ssh`, OpenSSH by key on `bind-ssh`, OpenSSH
/// by password (sshpass) on the shared port.
fn attach_every_way(version: Version) {
    let mut sw = SshWorld::start(version, "ssh-attach", &[]);
    let shared = sw.w.gateway.port;
    let ssh_port = sw.ssh_port;

    let url = sw.url(shared, false);
    let mut client = sw.attach(&url, "--ssh=paramiko");
    sw.w.wait_for_pixels(&mut client, "ssh-paramiko-key.png");
    client.wait_attached(ATTACH_TIMEOUT);
    client.process.signal("KILL");
    client.process.wait_exit(Duration::from_secs(10));
    sw.w.assert_session_alive("after the paramiko attach");

    let url = sw.url(ssh_port, true);
    attach_and_kill(
        &mut sw,
        "paramiko, password, bind-ssh",
        &url,
        "--ssh=paramiko",
    );

    let url = sw.url(ssh_port, false);
    let opt = sw.openssh_option(true);
    attach_and_kill(&mut sw, "OpenSSH, key, bind-ssh", &url, &opt);

    let url = sw.url(shared, true);
    let opt = sw.openssh_option(false);
    attach_and_kill(
        &mut sw,
        "OpenSSH, password (sshpass), shared port",
        &url,
        &opt,
    );

    // The relays of the four attaches reached the session itself.
    let log = sw.w.gateway.log();
    let relayed = log.matches("xpra channel").count();
    assert!(
        relayed >= 4,
        "expected 4 xpra channels in the gateway's log, saw {relayed}\n{}",
        sw.w.gateway.process.log_tail()
    );
    sw.w.assert_session_alive("after every SSH attach");
}

xgate_integration_tests::test_table! {
    attach_every_way:
    xpra_3_attach_over_ssh_paramiko_and_openssh_by_key_and_password(Version::V3);
    xpra_6_attach_over_ssh_paramiko_and_openssh_by_key_and_password(Version::V6);
}

/// A paramiko client that opens 1,000 session channels on one connection without closing any,
/// then closes them and runs a probe on a fresh channel.
const CHANNEL_FLOOD: &str = r#"
import sys, paramiko
known_hosts, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = paramiko.SSHClient()
c.load_host_keys(known_hosts)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect("127.0.0.1", port=port, username="alice", key_filename=key,
          look_for_keys=False, allow_agent=False, timeout=20)
t = c.get_transport()
opened, refused, first = [], 0, None
for i in range(1000):
    try:
        opened.append(t.open_session(timeout=10))
    except paramiko.ChannelException as e:
        refused += 1
        first = first or "%d %s" % (e.code, e.text)
print("opened=%d refused=%d first_error=%s" % (len(opened), refused, first))
for ch in opened:
    ch.close()
ch = t.open_session(timeout=10)
ch.exec_command("which xpra")
status = ch.recv_exit_status()
print("after: status=%d out=%s" % (status, ch.makefile().read().decode().strip()))
c.close()
"#;

/// Bad input while a client is attached: each gets a clear refusal, and the attached client,
/// its session and the gateway carry on.
#[test]
fn ssh_bad_input_is_refused_and_an_attached_client_carries_on() {
    let mut sw = SshWorld::start(Version::V3, "ssh-bad", &["--login-timeout=5".to_string()]);
    let port = sw.ssh_port;
    let url = sw.url(port, false);
    let mut attached = sw.attach(&url, "--ssh=paramiko");
    sw.w.wait_for_pixels(&mut attached, "ssh-bad-before.png");

    // A key that is not in alice's authorized_keys.
    let other = sw.w.dir.join("other_key");
    keygen(&other, "ed25519");
    let out = sw.ssh(port, Some(&other), None, Some("which xpra"));
    assert!(
        !out.success() && out.stderr.contains("Permission denied"),
        "a wrong key was not refused: {out}"
    );
    // A wrong password (sshpass exits 5 for "invalid password").
    let out = sw.ssh(port, None, Some("not-the-password"), Some("which xpra"));
    assert!(
        !out.success() && out.status.and_then(|s| s.code()) == Some(5),
        "a wrong password was not refused: {out}"
    );
    // The right credentials work: the probes get xpra's recorded answers.
    let out = sw.ssh(port, None, Some(PASSWORD), Some("which xpra"));
    assert!(
        out.success() && out.stdout.trim() == "xpra",
        "which xpra: {out}"
    );
    let key = Some(sw.key.clone());
    let out = sw.ssh(port, key.as_deref(), None, Some("echo %OS%"));
    assert!(out.success() && out.stdout == "%OS%\n", "echo %OS%: {out}");
    // Anything else: stderr and 127, nothing on stdout.
    let out = sw.ssh(port, key.as_deref(), None, Some("cat /etc/passwd"));
    assert_eq!(out.status.and_then(|s| s.code()), Some(127), "{out}");
    assert!(out.stdout.is_empty(), "stdout of a refused command: {out}");
    assert!(out.stderr.contains("command not found"), "{out}");
    // Starting sessions is off unless configured.
    let out = sw.ssh(
        port,
        key.as_deref(),
        None,
        Some(r#"xpra "_proxy_start" ":102" "--start=xterm""#),
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(
        out.stderr.contains("starting sessions is not enabled"),
        "{out}"
    );
    // No shell, on either port.
    for p in [port, sw.w.gateway.port] {
        let out = sw.ssh(p, key.as_deref(), None, None);
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
        assert!(out.stderr.contains("no shell here"), "{out}");
    }

    // 1,000 channels on one connection: 8 open at once, the rest refused with a reason; the
    // connection itself still works once they are closed.
    let script = sw.w.dir.write("flood.py", CHANNEL_FLOOD);
    let out = run_with_timeout(
        Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&sw.known_hosts)
            .arg(&sw.key)
            .arg(port.to_string()),
        Duration::from_secs(120),
    );
    assert!(out.success(), "the channel flood script failed: {out}");
    // Code 4 is SSH_OPEN_RESOURCE_SHORTAGE; paramiko logs the server's reason on stderr.
    assert!(
        out.stdout.contains("opened=8 refused=992 first_error=4 ")
            && out.stderr.contains("too many channels"),
        "channel flood: {out}"
    );
    assert!(out.stdout.contains("after: status=0 out=xpra"), "{out}");

    // A client that says hello and never logs in is closed at the login timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).expect("connect to bind-ssh");
    silent
        .write_all(b"SSH-2.0-silent\r\n")
        .expect("send an SSH banner");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    let started = Instant::now();
    let mut sink = Vec::new();
    let read = silent.read_to_end(&mut sink);
    assert!(
        read.is_ok() && started.elapsed() < Duration::from_secs(25),
        "a client that never logs in was not closed at the login timeout: {read:?} after {:?}",
        started.elapsed()
    );

    // The attached client, its session and the gateway carried on.
    attached.assert_running("after the bad input");
    sw.w.gateway.assert_running();
    sw.w.session
        .wait_for_pixels("ssh-bad-after.png", Duration::from_secs(30));
    let out =
        sw.w.client(&["info", &sw.url(port, false), "--ssh=paramiko"]);
    assert!(
        out.success(),
        "xpra info over SSH after the bad input: {out}\n{}",
        sw.w.gateway.process.log_tail()
    );
}

/// An `ssh://` target behind the gateway: a real OpenSSH server (started here, on loopback) in
/// front of a real session, reached by a plain `tcp://` client. While the server's host key is
/// not in the gateway's known_hosts the relay is refused with a clear reason; once it is, the
/// client attaches and the session shows its pixels.
#[test]
fn ssh_target_behind_the_gateway_checks_the_host_key() {
    let sshd_dir = TestDir::new("sshd");
    let gw_key = sshd_dir.join("gateway_key");
    let gw_public = keygen(&gw_key, "ed25519");
    // The gateway drops to the test user: its key must be that user's and private.
    let user = xgate_integration_tests::harness::TestUser::get();
    std::os::unix::fs::chown(&gw_key, Some(user.uid), Some(user.gid)).expect("chown the key");
    let sshd = Sshd::start(
        sshd_dir.path(),
        &user.name,
        std::fs::read_to_string(&gw_public)
            .expect("read the gateway's public key")
            .trim(),
    );
    let known_hosts = sshd_dir.write("gateway_known_hosts", "");
    let target_user = user.name.clone();
    let port = sshd.port;
    let w = World::start(
        Version::V3,
        "ssh-target",
        false,
        move |s| {
            vec![format!(
                "ssh://{target_user}@127.0.0.1:{port}/{}",
                s.number()
            )]
        },
        &[
            format!("--ssh-key={}", gw_key.display()),
            format!("--ssh-known-hosts={}", known_hosts.display()),
        ],
    );
    let url = w.url("");

    // Unknown host key: the client is told why, nothing is relayed.
    w.attach_refused(&url, "unknown host key");

    // Known host key: the relay reaches the session through sshd and `xpra _proxy`.
    write_known_hosts(&known_hosts, &sshd.host_key, &[sshd.port]);
    let mut client = w.attach(&url);
    w.wait_for_pixels(&mut client, "ssh-target.png");
    client.assert_running("attached through the ssh:// target");
    assert!(
        sshd.process
            .log()
            .contains(&format!("Accepted publickey for {}", user.name)),
        "sshd did not log the gateway's login\n{}",
        sshd.process.log_tail()
    );
}
