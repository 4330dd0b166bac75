//! Issue #6: the dedicated `bind-ssl`, `bind-ws` and `bind-wss` listeners with real xpra 3.1.3
//! and 6.5.5 clients (`version`, `info`, `connect-test`), each transport with its own auth chain
//! (`ssl-auth`, `ws-auth`, `wss-auth`) and a per-listener `auth=` override; and what each
//! dedicated port refuses.

use xgate_integration_tests::harness::certs::Certs;
use xgate_integration_tests::harness::gateway::write_multifile;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    free_port, strip_ansi, CmdOutput, Gateway, TestDir, Version,
};

/// The multifile user (`ssl-auth` and the `auth=` override).
const USER: &str = "alice";
/// Their multifile password.
const PASSWORD: &str = "secret";
/// The only password `ws-auth` (`password:value=...`) takes.
const WS_PASSWORD: &str = "ws-only";

/// A gateway with one listener of each dedicated kind (two `bind-wss`: one under `wss-auth`,
/// one with its own `auth=`), beside the harness's `bind-tcp`.
struct Listeners {
    gateway: Gateway,
    ssl: u16,
    ws: u16,
    wss: u16,
    wss_override: u16,
    certs: Certs,
    dir: TestDir,
}

impl Listeners {
    fn start() -> Listeners {
        let dir = TestDir::new("dedicated");
        let certs = Certs::make();
        let users = write_multifile(&dir, &[(USER, PASSWORD, &[])]);
        let multifile = format!("multifile:filename={}", users.display());
        let (ssl, ws, wss, wss_override) = (free_port(), free_port(), free_port(), free_port());
        let mut args = certs.server_args();
        args.extend([
            format!("--bind-ssl=127.0.0.1:{ssl}"),
            format!("--bind-ws=127.0.0.1:{ws}"),
            format!("--bind-wss=127.0.0.1:{wss}"),
            format!("--bind-wss=127.0.0.1:{wss_override},auth={multifile}"),
            format!("--tcp-auth={multifile}"),
            format!("--ssl-auth={multifile}"),
            format!("--ws-auth=password:value={WS_PASSWORD}"),
            "--wss-auth=reject".to_string(),
            // Refusals are part of the test: no growing delays, no ban of 127.0.0.1.
            "--auth-failure-delay=100ms".to_string(),
            "--max-auth-failures=0".to_string(),
        ]);
        let gateway = Gateway::start(dir.path(), &args);
        Listeners {
            gateway,
            ssl,
            ws,
            wss,
            wss_override,
            certs,
            dir,
        }
    }

    /// `xpra COMMAND SCHEME://[CRED@]127.0.0.1:PORT/` with `version`'s client, verifying TLS
    /// against the test CA.
    fn run(
        &self,
        version: Version,
        command: &str,
        scheme: &str,
        port: u16,
        cred: Option<(&str, &str)>,
    ) -> CmdOutput {
        let cred = cred.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        let url = format!("{scheme}://{cred}127.0.0.1:{port}/");
        let ca = format!("--ssl-ca-certs={}", self.certs.ca.display());
        version.run(&client_home_in(self.dir.path()), &[command, &url, &ca])
    }

    fn expect(&self, ok: bool, out: &CmdOutput, what: &str) {
        assert_eq!(
            out.success(),
            ok,
            "{what}: expected {}: {out}\n{}",
            if ok { "success" } else { "a refusal" },
            self.gateway.process.log_tail()
        );
    }
}

#[test]
fn dedicated_listeners_serve_their_transport_under_their_own_auth() {
    let l = Listeners::start();
    let alice = Some((USER, PASSWORD));
    let ws_alice = Some((USER, WS_PASSWORD));
    for v in [Version::V3, Version::V6] {
        let n = v.name();
        // bind-ssl under ssl-auth (the multifile).
        l.expect(
            true,
            &l.run(v, "version", "ssl", l.ssl, None),
            &format!("{n} version on bind-ssl"),
        );
        l.expect(
            true,
            &l.run(v, "info", "ssl", l.ssl, alice),
            &format!("{n} info on bind-ssl with the multifile password"),
        );
        l.expect(
            true,
            &l.run(v, "connect-test", "ssl", l.ssl, alice),
            &format!("{n} connect-test on bind-ssl"),
        );
        l.expect(
            false,
            &l.run(v, "info", "ssl", l.ssl, ws_alice),
            &format!("{n} info on bind-ssl with the ws-auth password"),
        );
        // bind-ws under ws-auth (a fixed password that the multifile does not know).
        l.expect(
            true,
            &l.run(v, "version", "ws", l.ws, None),
            &format!("{n} version on bind-ws"),
        );
        l.expect(
            true,
            &l.run(v, "info", "ws", l.ws, ws_alice),
            &format!("{n} info on bind-ws with the ws-auth password"),
        );
        l.expect(
            true,
            &l.run(v, "connect-test", "ws", l.ws, ws_alice),
            &format!("{n} connect-test on bind-ws"),
        );
        l.expect(
            false,
            &l.run(v, "info", "ws", l.ws, alice),
            &format!("{n} info on bind-ws with the multifile password"),
        );
        // bind-wss under wss-auth = reject, and one with its own auth= (the multifile).
        l.expect(
            true,
            &l.run(v, "version", "wss", l.wss, None),
            &format!("{n} version on bind-wss"),
        );
        l.expect(
            false,
            &l.run(v, "info", "wss", l.wss, alice),
            &format!("{n} info on bind-wss under wss-auth=reject"),
        );
        l.expect(
            true,
            &l.run(v, "info", "wss", l.wss_override, alice),
            &format!("{n} info on the bind-wss with auth=multifile"),
        );
        l.expect(
            true,
            &l.run(v, "connect-test", "wss", l.wss_override, alice),
            &format!("{n} connect-test on the bind-wss with auth=multifile"),
        );
    }
    let log = strip_ansi(&l.gateway.log());
    for transport in ["ssl", "ws", "wss"] {
        assert!(
            log.contains(&format!("transport={transport}")),
            "no {transport} connection in the gateway's log:\n{}",
            l.gateway.process.log_tail()
        );
    }
}

#[test]
fn dedicated_listeners_refuse_other_transports() {
    let l = Listeners::start();
    let alice = Some((USER, PASSWORD));
    // Plain xpra on the TLS-only ports, and on the HTTP port.
    for (port, what) in [(l.ssl, "bind-ssl"), (l.wss, "bind-wss"), (l.ws, "bind-ws")] {
        l.expect(
            false,
            &l.run(Version::V3, "info", "tcp", port, alice),
            &format!("plain tcp:// on {what}"),
        );
    }
    // WebSocket without TLS on the TLS-only ports.
    l.expect(
        false,
        &l.run(Version::V6, "info", "ws", l.ssl, alice),
        "ws:// on bind-ssl",
    );
    // bind-ws upgrades TLS to wss (xpra does): reached, then refused by wss-auth = reject.
    l.expect(
        true,
        &l.run(Version::V6, "version", "wss", l.ws, None),
        "wss:// version on bind-ws",
    );
    l.expect(
        false,
        &l.run(Version::V6, "info", "wss", l.ws, alice),
        "wss:// info on bind-ws under wss-auth=reject",
    );
    // The shared port still serves plain xpra under tcp-auth.
    let out = Version::V3.run(
        &client_home_in(l.dir.path()),
        &["info", &l.gateway.url(alice, "")],
    );
    l.expect(true, &out, "tcp:// info on the shared port");
}
