//! Shared scenarios of the gateway suites (issue #4), run once per xpra version.
#![allow(dead_code)]

use std::time::Duration;

use xgate_integration_tests::harness::gateway::write_multifile;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    wait_until, Attach, CmdOutput, Gateway, Session, TestDir, Version,
};

/// The multifile user the suites log in as.
pub(crate) const USER: &str = "alice";
/// Their password.
pub(crate) const PASSWORD: &str = "secret";

/// Time allowed for a GUI client to attach and draw.
pub(crate) const PIXELS_TIMEOUT: Duration = Duration::from_secs(60);

/// One test's world: a session running xterm and a gateway whose multifile gives alice the
/// session's display (and, with a TCP socket, its `tcp://` URL too).
pub(crate) struct World {
    /// Which xpra.
    pub(crate) version: Version,
    /// The session; dropped before the directory.
    pub(crate) session: Session,
    /// The gateway.
    pub(crate) gateway: Gateway,
    /// Logs and files.
    pub(crate) dir: TestDir,
}

impl World {
    /// Starts a session (with a TCP socket when `tcp`) and a gateway. The multifile lists
    /// `displays(session)` for alice.
    pub(crate) fn start(
        version: Version,
        name: &str,
        tcp: bool,
        displays: impl Fn(&Session) -> Vec<String>,
        extra_args: &[String],
    ) -> World {
        let dir = TestDir::new(&format!("{name}-{}", version.name()));
        let session = Session::start(version, tcp, dir.path());
        let users = write_multifile(&dir, &[(USER, PASSWORD, &displays(&session))]);
        let mut args = vec![format!("--tcp-auth=multifile:filename={}", users.display())];
        args.extend_from_slice(extra_args);
        let gateway = Gateway::start(dir.path(), &args);
        World {
            version,
            session,
            gateway,
            dir,
        }
    }

    /// [`World::start`] without a TCP socket, the multifile giving alice the session's display.
    pub(crate) fn by_display(version: Version, name: &str, extra_args: &[String]) -> World {
        World::start(
            version,
            name,
            false,
            |s| vec![format!(":{}", s.number())],
            extra_args,
        )
    }

    /// The gateway's URL for alice and `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        self.gateway.url(Some((USER, PASSWORD)), path)
    }

    /// A one-shot `xpra ARGS` from a client home of this test.
    pub(crate) fn client(&self, args: &[&str]) -> CmdOutput {
        self.version.run(&client_home_in(self.dir.path()), args)
    }

    /// A one-shot `xpra ARGS` that must succeed (`what` names it; the gateway's log on failure).
    pub(crate) fn client_ok(&self, args: &[&str], what: &str) -> CmdOutput {
        let out = self.client(args);
        assert!(
            out.success(),
            "{what}: {out}\n{}",
            self.gateway.process.log_tail()
        );
        out
    }

    /// A GUI client attached to `url`.
    pub(crate) fn attach(&self, url: &str) -> Attach {
        Attach::start(self.version, url, self.dir.path())
    }

    /// Waits for the session to show xterm's pixels, with the client's log on failure.
    pub(crate) fn wait_for_pixels(&self, client: &mut Attach, name: &str) {
        self.session
            .wait_for_pixels_through(name, PIXELS_TIMEOUT, client, &self.gateway);
    }

    /// A GUI client attached to `url` is turned away: it exits (within a minute) with a
    /// failure, and its log gives `reason`.
    pub(crate) fn attach_refused(&self, url: &str, reason: &str) {
        let mut client = self.attach(url);
        let ended = client.process.wait_exit(Duration::from_secs(60));
        assert!(
            ended.is_some_and(|s| !s.success()),
            "the client of {url} was not refused ({ended:?})\n{}",
            client.process.log_tail()
        );
        assert!(
            client.log().contains(reason),
            "the client of {url} does not report {reason:?}\n{}\n{}",
            client.process.log_tail(),
            self.gateway.process.log_tail()
        );
    }

    /// The session still answers directly and its socket is LIVE.
    pub(crate) fn assert_session_alive(&self, what: &str) {
        let n = format!(":{}", self.session.number());
        let v = self.session.as_user(&["version", &n]);
        assert!(
            v.success(),
            "{what}: `xpra version {n}` on the session fails: {v}"
        );
        let i = self.session.as_user(&["info", &n]);
        assert!(
            i.success(),
            "{what}: `xpra info {n}` on the session fails: {i}"
        );
        let live = wait_until(Duration::from_secs(10), || {
            self.session.listed_live().then_some(())
        });
        assert!(
            live.is_some(),
            "{what}: the session's socket is not LIVE: {}",
            self.session.as_user(&["list"])
        );
    }
}

/// `xpra version`, `id`, `info` and `connect-test` through the gateway, by display.
pub(crate) fn one_shot_commands(version: Version) {
    let w = World::by_display(version, "oneshot", &[]);
    let n = w.session.number().to_string();
    let url = w.url(&n);

    // `version` is asked without credentials: a 3.1.3 client that has a password and is not
    // challenged exits with "the server did not request our password" (as against xpra itself).
    let out = w.client_ok(
        &["version", &w.gateway.url(None, &n)],
        "xpra version through xgate",
    );
    // The gateway answers `version` itself (as xpra's proxy does), with an xpra version.
    assert!(
        out.stdout.lines().any(|l| {
            let l = l.trim();
            l.split('.').count() >= 2
                && l.split('.')
                    .all(|p| !p.is_empty() && p.chars().next().is_some_and(|c| c.is_ascii_digit()))
        }),
        "xpra version through xgate did not print a version: {out}"
    );

    let out = w.client_ok(&["id", &url], "xpra id through xgate");
    assert!(
        out.stdout.contains("uuid="),
        "xpra id printed no uuid: {out}"
    );

    let out = w.client_ok(&["info", &url], "xpra info through xgate");
    // The gateway answers `info` with its own tree (as xpra's proxy does).
    let lines = out.stdout.lines().filter(|l| l.contains('=')).count();
    assert!(
        lines >= 5,
        "xpra info through xgate printed only {lines} key=value lines: {out}"
    );

    w.client_ok(&["connect-test", &url], "xpra connect-test through xgate");
}

/// A GUI attach through the gateway by display number, proven by pixels; the client's detach
/// leaves the session running.
pub(crate) fn attach_by_display_then_detach(version: Version) {
    let w = World::by_display(version, "attach-display", &[]);
    let url = w.url(&w.session.number().to_string());
    let mut client = w.attach(&url);
    w.wait_for_pixels(&mut client, "attach-display.png");
    client.assert_running("while attached");

    // Detach: SIGINT makes the client disconnect cleanly.
    client.process.signal("INT");
    let status = client.process.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "the client did not exit on SIGINT\n{}",
        client.process.log_tail()
    );
    w.assert_session_alive("after the client detached");
    w.gateway.process.log_tail();
}

/// A GUI attach through the gateway to a `tcp://` display listed in the multifile (the client
/// names no display: the gateway takes the user's only one), proven by pixels; then a kill of
/// the client leaves the session running.
pub(crate) fn attach_tcp_target_then_kill_client(version: Version) {
    let w = World::start(version, "attach-tcp", true, |s| vec![s.tcp_url()], &[]);
    let url = w.url("");
    let mut client = w.attach(&url);
    w.wait_for_pixels(&mut client, "attach-tcp.png");
    client.assert_running("while attached");
    client.process.signal("KILL");
    let status = client.process.wait_exit(Duration::from_secs(10));
    assert!(status.is_some(), "the client did not die on SIGKILL");
    w.assert_session_alive("after the client was killed");
    // And the session can be reached through the gateway again.
    let mut again = w.attach(&url);
    w.wait_for_pixels(&mut again, "attach-tcp-again.png");
    again.assert_running("on the second attach");
}
