//! Bad input, dying servers and ordering, through the real gateway:
//! - a wrong password, an unknown display, random bytes and a silent client each get their
//!   clear answer, and none of them disturbs a GUI client attached meanwhile;
//! - killing the xpra server under an attached client gives the client a clean disconnect,
//!   and the gateway keeps serving the others;
//! - packets a server sends before its `disconnect` all reach the client, in order, before it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{World, PASSWORD, PIXELS_TIMEOUT, USER};
use xgate_integration_tests::harness::fake::{
    flood_client, FloodServer, FloodSpec, FLOOD_DISCONNECT_REASON,
};
use xgate_integration_tests::harness::gateway::write_multifile;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{wait_until, Attach, Gateway, Session, TestDir, Version};

/// Reads what the gateway sends on a raw connection until it closes it (bounded).
fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, Duration, bool) {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, start.elapsed(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (got, start.elapsed(), true),
        }
        if start.elapsed() > timeout {
            return (got, start.elapsed(), false);
        }
    }
}

/// Wrong password, unknown display, random bytes and a client that never says hello, while a
/// GUI client stays attached (and keeps drawing) through the same gateway.
#[test]
fn bad_clients_get_clear_answers_and_do_not_disturb_an_attached_client() {
    let w = World::by_display(
        Version::V3,
        "bad-clients",
        &["--login-timeout=2s".to_string()],
    );
    let n = w.session.number().to_string();
    let mut client = w.attach(&w.url(&n));
    w.wait_for_pixels(&mut client, "before.png");

    // A wrong password.
    let out = w.client(&["info", &w.gateway.url(Some((USER, "wrong")), &n)]);
    assert!(
        !out.success() && !out.timed_out(),
        "a wrong password was accepted: {out}"
    );
    assert!(
        out.all().to_lowercase().contains("authentication failed"),
        "the client does not report the authentication failure: {out}"
    );

    // An unknown display: a GUI client asking for it is turned away with xpra's reason.
    w.attach_refused(&w.url("9"), "session not found error");

    // Random bytes: the plain-text disconnect line.
    let mut s = TcpStream::connect(w.gateway.addr()).expect("connect to xgate");
    let junk: Vec<u8> = (0..256u32)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 % 36) as usize])
        .collect();
    s.write_all(&junk).expect("send junk");
    let (got, took, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    let text = String::from_utf8_lossy(&got);
    assert!(
        closed,
        "xgate kept a connection that sent junk open for {took:?}: {text:?}"
    );
    assert!(
        text.starts_with("disconnect: "),
        "junk did not get the plain-text disconnect line: {text:?}"
    );

    // A client that connects and never sends a hello: dropped at the login timeout (2 s).
    let mut s = TcpStream::connect(w.gateway.addr()).expect("connect to xgate");
    let (got, took, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    let text = String::from_utf8_lossy(&got);
    assert!(closed, "a silent client was not dropped within {took:?}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "a silent client was dropped after {took:?}, not at the 2 s login timeout: {text:?}"
    );
    assert!(
        text.contains("login timeout"),
        "a silent client was not told 'login timeout': {text:?}"
    );

    // The attached client saw none of it: still running, still drawing.
    client.assert_running("after the bad clients");
    w.wait_for_pixels(&mut client, "after.png");
    // The gateway's own info still counts exactly the one attached client.
    let out = w.client(&["info", &w.url(&n)]);
    assert!(out.success(), "the gateway stopped serving: {out}");
    assert!(
        out.stdout.lines().any(|l| l.trim() == "connection-count=1"),
        "the gateway's info does not show the one attached client: {out}"
    );
    client.assert_running("at the end");
}

/// SIGKILL of the xpra server under an attached client: the gateway tells the client
/// (`disconnect: server shutdown`), the client exits without a traceback, and the gateway still
/// serves another session.
fn kill_server_under_client(version: Version) {
    let dir = TestDir::new(&format!("kill-server-{}", version.name()));
    let mut victim = Session::start(version, false, dir.path());
    let other = Session::start(version, false, dir.path());
    let users = write_multifile(
        &dir,
        &[(
            USER,
            PASSWORD,
            &[
                format!(":{}", victim.number()),
                format!(":{}", other.number()),
            ],
        )],
    );
    let mut gateway = Gateway::start(
        dir.path(),
        &[format!("--tcp-auth=multifile:filename={}", users.display())],
    );
    let port = gateway.port;
    let url = |d: u32| format!("tcp://{USER}:{PASSWORD}@127.0.0.1:{port}/{d}");
    let mut client = Attach::start(version, &url(victim.number()), dir.path());
    victim.wait_for_pixels_through("victim.png", PIXELS_TIMEOUT, &mut client, &gateway);

    let before = client.log().len();
    victim.kill();
    let status = client.process.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some(),
        "the client did not exit within 60 s of its server's death\n{}\n{}",
        client.process.log_tail(),
        gateway.process.log_tail()
    );
    // What the client said after its server died (startup noise, such as a dbus traceback of
    // the 6.5.5 client, does not count).
    let full = client.log();
    let log = full.get(before..).unwrap_or(&full).to_string();
    let lower = log.to_lowercase();
    // A traceback counts as a crash unless it is the dbus noise of a client that has no
    // session bus (6.5.5 re-initialises its keyboard, and dbus, when it tries to reconnect).
    let crashes = log
        .split("Traceback (most recent call last):")
        .skip(1)
        .filter(|t| !t.chars().take(2000).collect::<String>().contains("dbus"))
        .count();
    assert!(
        crashes == 0 && !lower.contains("segmentation fault"),
        "the client crashed instead of disconnecting cleanly:\n{log}"
    );
    // The gateway's own last word, written on the client's stream when the server's end died.
    assert!(
        lower.contains("server shutdown"),
        "the client's log does not show the gateway's 'server shutdown' disconnect:\n{log}"
    );

    // The gateway serves the others.
    gateway.assert_running();
    let home = client_home_in(dir.path());
    let out = version.run(&home, &["connect-test", &url(other.number())]);
    assert!(
        out.success(),
        "connect-test to the other session: {out}\n{}",
        gateway.process.log_tail()
    );
    let out = version.run(&home, &["version", &gateway.url(None, "")]);
    assert!(out.success(), "xpra version through xgate: {out}");
    let mut again = Attach::start(version, &url(other.number()), dir.path());
    other.wait_for_pixels_through("other.png", PIXELS_TIMEOUT, &mut again, &gateway);
    again.assert_running("on the other session");
}

xgate_integration_tests::test_table! {
    kill_server_under_client:
    xpra_3_killing_the_server_disconnects_its_client_cleanly(Version::V3);
    xpra_6_killing_the_server_disconnects_its_client_cleanly(Version::V6);
}

/// A server that sends 300 x 1 MiB and 20,000 small draw packets and then `disconnect`: a
/// client through xgate gets every one, in order, with intact payloads, then the disconnect,
/// then the end of the stream.
#[test]
fn every_packet_sent_before_disconnect_arrives_in_order_before_it() {
    let dir = TestDir::new("flood");
    let spec = FloodSpec {
        large: 300,
        large_size: 1024 * 1024,
        small: 20_000,
        small_size: 256,
    };
    let server = FloodServer::start(spec);
    let gateway = Gateway::start(
        dir.path(),
        &[
            format!("--target=100=tcp://127.0.0.1:{}/", server.addr.port()),
            format!("--tcp-auth=password:value={PASSWORD}"),
        ],
    );
    let report = flood_client(
        gateway.addr(),
        USER,
        PASSWORD,
        "100",
        Duration::from_secs(240),
    )
    .unwrap_or_else(|e| {
        panic!(
            "the flood client failed: {e}\n{:?}\n{}",
            server.log(),
            gateway.process.log_tail()
        )
    });
    let total = spec.large + spec.small;
    assert!(
        report.problems.is_empty(),
        "ordering or payload problems: {:?}",
        report.problems
    );
    assert_eq!(
        (report.draws, report.large),
        (total, spec.large),
        "packets lost before the disconnect: {report:?}\nserver: {:?}\n{}",
        server.log(),
        gateway.process.log_tail()
    );
    assert_eq!(
        report.disconnect.as_deref(),
        Some(FLOOD_DISCONNECT_REASON),
        "the server's disconnect did not come last: {report:?}"
    );
    assert_eq!(
        report.after_disconnect, 0,
        "packets after the disconnect: {report:?}"
    );
    assert!(
        report.eof,
        "the stream did not end after the disconnect: {report:?}"
    );
    let expected_bytes = (spec.large * spec.large_size + spec.small * spec.small_size) as u64;
    assert_eq!(report.bytes, expected_bytes);
    // The server sees its connection close a moment after the client saw the end.
    let finished = wait_until(Duration::from_secs(10), || {
        server.log().finished.then_some(())
    });
    let log = server.log();
    assert!(
        finished.is_some() && log.errors.is_empty(),
        "server: {log:?}"
    );
}
