//! Issue #6: sessions behind another xpra server reached over TLS and WebSocket. A real xpra
//! 3.1.3 session listens with `--bind-ssl`, `--bind-ws` or `--bind-wss` (its own certificate,
//! signed by the test CA); a plain `tcp://` GUI client attaches through the gateway, whose
//! multifile row names the session by its `ssl://`, `ws://` or `wss://` URI; the session's pixels
//! prove the relay. The gateway verifies the server against `ssl-server-ca-certs`, refuses a
//! server its CAs do not vouch for, and skips the check with `ssl-server-verify-mode=none`.

mod common;

use std::time::Duration;

use common::{PASSWORD, PIXELS_TIMEOUT, USER};
use xgate_integration_tests::harness::certs::Certs;
use xgate_integration_tests::harness::gateway::write_multifile;
use xgate_integration_tests::harness::{
    free_port, strip_ansi, Attach, Gateway, Session, TestDir, Version,
};

/// A session listening on `--bind-SCHEME`, and a gateway whose multifile gives alice that
/// session's `SCHEME://` URI.
struct Remote {
    session: Session,
    gateway: Gateway,
    dir: TestDir,
    /// The URI the multifile lists.
    uri: String,
}

impl Remote {
    fn start(scheme: &str, gateway_args: impl FnOnce(&Certs) -> Vec<String>) -> (Remote, Certs) {
        let dir = TestDir::new(&format!("remote-{scheme}"));
        let certs = Certs::make();
        let port = free_port();
        let mut server_args = vec![format!("--bind-{scheme}=127.0.0.1:{port}")];
        if scheme != "ws" {
            server_args.extend(certs.server_args());
        }
        let session = Session::start_with(Version::V3, false, dir.path(), &server_args);
        let uri = format!("{scheme}://127.0.0.1:{port}/");
        let users = write_multifile(&dir, &[(USER, PASSWORD, std::slice::from_ref(&uri))]);
        let mut args = vec![format!("--tcp-auth=multifile:filename={}", users.display())];
        args.extend(gateway_args(&certs));
        let gateway = Gateway::start(dir.path(), &args);
        (
            Remote {
                session,
                gateway,
                dir,
                uri,
            },
            certs,
        )
    }

    /// A GUI client on the gateway's plain tcp:// port (alice has one session: no display).
    fn attach(&self) -> Attach {
        Attach::start(
            Version::V3,
            &self.gateway.url(Some((USER, PASSWORD)), ""),
            self.dir.path(),
        )
    }

    /// Attaches and waits for the session's xterm, then checks the gateway connected to the URI.
    fn attach_shows_xterm(&self, name: &str) {
        let mut client = self.attach();
        self.session
            .wait_for_pixels_through(name, PIXELS_TIMEOUT, &mut client, &self.gateway);
        client.assert_running("while attached through the gateway");
        let log = strip_ansi(&self.gateway.log());
        assert!(
            log.lines()
                .any(|l| l.contains("connected to server") && l.contains(&self.uri)),
            "the gateway did not log its connection to {}:\n{}",
            self.uri,
            self.gateway.process.log_tail()
        );
    }
}

fn verified(certs: &Certs) -> Vec<String> {
    vec![format!("--ssl-server-ca-certs={}", certs.ca.display())]
}

/// A plain tcp:// client reaches the session behind the gateway's `SCHEME://` target, the
/// gateway started with `gateway_args`.
fn tcp_client_reaches(scheme: &str, gateway_args: fn(&Certs) -> Vec<String>) {
    let (r, _certs) = Remote::start(scheme, gateway_args);
    r.attach_shows_xterm(&format!("remote-{scheme}.png"));
}

xgate_integration_tests::test_table! {
    tcp_client_reaches:
    tcp_client_reaches_an_ssl_target_verified_by_ca("ssl", verified);
    tcp_client_reaches_a_ws_target("ws", |_| Vec::new());
    tcp_client_reaches_a_wss_target_verified_by_ca("wss", verified);
}

/// Without the test CA the server's certificate does not verify: the client is told, the
/// gateway says why, and nothing is relayed. `ssl-server-verify-mode=none` then lets it through.
#[test]
fn unverified_ssl_target_is_refused_unless_verification_is_off() {
    let (r, _certs) = Remote::start("ssl", |_| Vec::new());
    let mut client = r.attach();
    let exited = client.process.wait_exit(Duration::from_secs(45));
    assert!(
        exited.is_some_and(|s| !s.success()),
        "the client was not refused ({exited:?}):\n{}",
        client.process.log_tail()
    );
    let log = strip_ansi(&r.gateway.log());
    assert!(
        log.contains("certificate verify failed"),
        "the gateway did not say the certificate failed:\n{}",
        r.gateway.process.log_tail()
    );
    assert!(
        client.log().contains("connection error"),
        "the client was not told `connection error`:\n{}",
        client.process.log_tail()
    );
    drop(client);

    let (r, _certs) = Remote::start("wss", |_| vec!["--ssl-server-verify-mode=none".into()]);
    r.attach_shows_xterm("remote-wss-unverified.png");
}
