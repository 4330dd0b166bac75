//! Issue #6: TLS, WebSocket and HTTP on the gateway's shared port, with real xpra clients (3.1.3
//! and 6.5.5) reaching real sessions, `openssl s_client` verifying the chain, the web files, and
//! bad input that closes only its own connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{World, PASSWORD, PIXELS_TIMEOUT, USER};
use xgate_integration_tests::harness::certs::{Certs, OPENSSL};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    run_with_timeout, strip_ansi, Attach, Gateway, TestDir, Version,
};
use xgate_integration_tests::test_table;

/// `SCHEME://alice:secret@127.0.0.1:PORT/PATH`.
fn url(w: &World, scheme: &str, path: &str) -> String {
    format!(
        "{scheme}://{USER}:{PASSWORD}@127.0.0.1:{}/{path}",
        w.gateway.port
    )
}

/// Attaches over `scheme` and waits for xterm's pixels in the session; the gateway's log must
/// show the connection upgraded to the transport of that name.
fn attach_shows_xterm(version: Version, scheme: &str) {
    let transport = scheme;
    let certs = Certs::make();
    let w = World::by_display(version, &format!("attach-{scheme}"), &certs.server_args());
    let n = w.session.number().to_string();
    let extra = if scheme == "ssl" || scheme == "wss" {
        vec![format!("--ssl-ca-certs={}", certs.ca.display())]
    } else {
        Vec::new()
    };
    let mut client = Attach::start_with(version, &url(&w, scheme, &n), w.dir.path(), &extra, None);
    let shot = format!("{scheme}-{}", version.name());
    w.session
        .wait_for_pixels_through(&shot, PIXELS_TIMEOUT, &mut client, &w.gateway);
    assert!(
        client.process.running(),
        "the {scheme} client exited: {}",
        client.process.log_tail()
    );
    let log = strip_ansi(&w.gateway.log());
    assert!(
        log.contains(&format!("transport={transport}")),
        "the gateway did not log a {transport} connection:\n{}",
        w.gateway.process.log_tail()
    );
}

test_table! {
    attach_shows_xterm:
    xpra_3_ssl_attach_verified_by_ca_shows_xterm(Version::V3, "ssl");
    xpra_3_ws_attach_shows_xterm(Version::V3, "ws");
    xpra_3_wss_attach_shows_xterm(Version::V3, "wss");
    xpra_6_ws_attach_shows_xterm(Version::V6, "ws");
    xpra_6_wss_attach_shows_xterm(Version::V6, "wss");
}

/// On one port: `openssl s_client` verifies the chain, `xpra info` works over ssl://, ws://,
/// wss:// (both versions of the client where the scheme is theirs) and plain tcp://.
#[test]
fn one_port_serves_tcp_ssl_ws_wss_and_s_client_verifies() {
    let certs = Certs::make();
    let w = World::by_display(Version::V3, "one-port", &certs.server_args());
    let port = w.gateway.port.to_string();
    let mut s_client = Command::new(OPENSSL);
    s_client
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(&certs.ca)
        .stdin(std::process::Stdio::null());
    let out = run_with_timeout(&mut s_client, Duration::from_secs(30));
    assert!(
        out.stdout.contains("Verify return code: 0 (ok)"),
        "s_client did not verify the gateway's chain: {out}"
    );
    let n = w.session.number().to_string();
    let ca = format!("--ssl-ca-certs={}", certs.ca.display());
    for scheme in ["tcp", "ssl", "ws", "wss"] {
        let u = url(&w, scheme, &n);
        w.client_ok(&["info", &u, &ca], &format!("xpra info {u}"));
    }
    // 6.5.5's client over ssl:// too, verified against the same CA.
    let home = client_home_in(w.dir.path());
    let out = Version::V6.run(
        &home,
        &["version", &format!("ssl://127.0.0.1:{port}/"), &ca],
    );
    assert!(out.success(), "xpra 6.5.5 version over ssl://: {out}");
}

/// A default certificate is generated on first run (mode 0600) and its SHA-256 fingerprint
/// printed; s_client sees that very certificate.
#[test]
fn default_certificate_is_generated_private_and_fingerprinted() {
    let dir = TestDir::new("default-cert");
    let gw = Gateway::start(dir.path(), &[]);
    let cert = dir.join("xgate-state/ssl-cert.pem");
    let meta = std::fs::metadata(&cert).expect("the generated certificate");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let log = strip_ansi(&gw.log());
    let line = log
        .lines()
        .find(|l| l.contains("SHA-256 fingerprint"))
        .unwrap_or_else(|| panic!("no fingerprint printed:\n{log}"));
    let printed = line.rsplit(' ').next().unwrap_or("").to_string();
    let mut c = Command::new(OPENSSL);
    c.args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert);
    let out = run_with_timeout(&mut c, Duration::from_secs(10));
    assert!(
        out.stdout.trim().ends_with(&printed) && printed.len() == 95,
        "printed {printed:?}, openssl says {out}"
    );
}

// ---- raw peers for the web files and bad input

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to xgate");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s
}

/// Everything the gateway sends until it closes (bounded by the read timeout).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the gateway neither answered nor closed: {e} (got {out:?})"),
        }
    }
    out
}

fn request(port: u16, raw: &[u8]) -> String {
    let mut s = connect(port);
    s.write_all(raw).expect("send a request");
    String::from_utf8_lossy(&read_all(&mut s)).into_owned()
}

/// The gateway still answers a real client.
fn still_serves(gw: &mut Gateway, dir: &TestDir, after: &str) {
    gw.assert_running();
    let out = Version::V3.run(&client_home_in(dir.path()), &["version", &gw.url(None, "")]);
    assert!(
        out.success(),
        "after {after}, xpra version through xgate fails: {out}\n{}",
        gw.process.log_tail()
    );
}

const WS_UPGRADE: &str = "GET /100 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n";

#[test]
fn html5_files_are_served_with_types_head_headers_and_errors() {
    let dir = TestDir::new("www");
    let headers = dir.write("http-headers", "# extra\nX-Test-Header: xgate\n");
    let gw = Gateway::start(
        dir.path(),
        &[
            "--www=/usr/share/xpra/www".into(),
            format!("--http-headers={}", headers.display()),
        ],
    );
    assert!(
        Path::new("/usr/share/xpra/www/index.html").exists(),
        "Debian's xpra HTML5 client is missing: run scripts/setup-deps"
    );
    let p = gw.port;
    let r = request(
        p,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &r[..r.len().min(300)]
    );
    assert!(r.contains("Content-Type: text/html"), "{}", &r[..300]);
    assert!(r.contains("X-Test-Header: xgate\r\n"));
    let want = std::fs::read_to_string("/usr/share/xpra/www/index.html").expect("index.html");
    assert!(r.ends_with(&want), "the body is not index.html");
    let r = request(
        p,
        b"HEAD /js/Client.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    assert!(r.contains("Content-Type: application/javascript"), "{r}");
    // Debian's jquery is a symbolic link out of www: served.
    let r = request(p, b"GET /js/lib/jquery.js HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &r[..r.len().min(200)]
    );
    let r = request(
        p,
        b"GET /nothing-here.js HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    let r = request(p, b"GET /../../etc/passwd HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = request(
        p,
        b"GET /js/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = request(p, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    // Keep-alive: two requests on one connection.
    let r = request(
        p,
        b"GET /favicon.png HTTP/1.1\r\nHost: x\r\n\r\nGET /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "keep-alive");
    assert!(r.contains("image/png") && r.contains("image/x-icon"));
    // WebSocket upgrades that xpra refuses, refused with a clear status.
    let r = request(
        p,
        format!("{}\r\n", WS_UPGRADE.replace("binary", "base64")).as_bytes(),
    );
    assert!(
        r.starts_with("HTTP/1.1 400 ") && r.contains("binary"),
        "{r}"
    );
    let r = request(
        p,
        format!("{WS_UPGRADE}Origin: http://evil.example\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
}

#[test]
fn bad_input_closes_only_that_connection() {
    let dir = TestDir::new("bad-input");
    // login-timeout bounds the TLS handshake (at most 15 s): 3 s keeps the test short.
    let mut gw = Gateway::start(dir.path(), &["--login-timeout=3".into()]);
    let p = gw.port;

    // A TLS client that stops mid-handshake: half a ClientHello, then silence.
    let mut stalled = connect(p);
    stalled
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .expect("send half a ClientHello");
    let started = Instant::now();

    // A ClientHello of garbage: a TLS alert at most, then the connection is closed.
    let mut s = connect(p);
    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a));
    s.write_all(&garbage).expect("send garbage");
    let answer = read_all(&mut s);
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "garbage ClientHello: expected a TLS alert or nothing, got {answer:?}"
    );
    still_serves(&mut gw, &dir, "a garbage ClientHello");

    // An HTTP request with 100 KB of headers: 431.
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while raw.len() < 100_000 {
        raw.extend_from_slice(
            b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    raw.extend_from_slice(b"\r\n");
    let mut s = connect(p);
    // The gateway may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(&raw);
    let answer = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "100 KB of headers: {answer:?}"
    );
    still_serves(&mut gw, &dir, "100 KB of HTTP headers");

    // A WebSocket frame that claims 2^63 bytes: close 1009, then the connection ends.
    let mut s = connect(p);
    s.write_all(format!("{WS_UPGRADE}\r\n").as_bytes())
        .expect("send the upgrade");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).expect("read the 101"),
            1,
            "closed during the upgrade: {head:?}"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 101 ")
            && head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
            && head.contains("Sec-WebSocket-Protocol: binary\r\n"),
        "{head}"
    );
    s.write_all(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0])
        .expect("send the frame header");
    let answer = read_all(&mut s);
    assert!(
        answer.len() >= 4 && answer[0] == 0x88 && answer[2..4] == [0x03, 0xf1],
        "expected a close frame with code 1009, got {answer:?}"
    );
    still_serves(&mut gw, &dir, "a 2^63-byte WebSocket frame");

    // SSH goes to the builtin SSH server (issue #8), which answers with its own banner; unknown
    // bytes get xpra's plain-text answer.
    let mut ssh = connect(p);
    ssh.write_all(b"SSH-2.0-OpenSSH_9.2\r\n")
        .expect("send an SSH banner");
    let mut banner = [0u8; 14];
    ssh.read_exact(&mut banner).expect("read the SSH banner");
    assert_eq!(
        &banner,
        b"SSH-2.0-xgate_",
        "{:?}",
        String::from_utf8_lossy(&banner)
    );
    drop(ssh);
    let r = request(p, b"\x00\x01\x02\x03 hello");
    assert!(r.starts_with("disconnect: "), "{r}");

    // The stalled handshake is closed by the timeout, and nothing else was held up.
    let answer = read_all(&mut stalled);
    assert!(answer.is_empty(), "stalled TLS client got {answer:?}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "the stalled TLS handshake was closed after {took:?}"
    );
    still_serves(&mut gw, &dir, "a TLS client that stopped mid-handshake");
}
