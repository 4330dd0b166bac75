//! Issue #2, live part: the real `xpra version` and `xpra info` of 3.1.3 and 6.5.5 against a
//! small server written on the protocol crate, which challenges with `hmac+sha256` and checks
//! the response. Right password: exit 0 and our info tree printed; wrong password: a non-zero
//! exit and "authentication failed". This proves the codec (rencode/zlib from 3.1.3,
//! rencodeplus/lz4 from 6.5.5) and the digests against the real clients.

use xgate_integration_tests::harness::fake::{FakeAuthServer, FAKE_SERVER_NAME, FAKE_VERSION};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{TestDir, Version};

fn check_version_and_info(version: Version) {
    let dir = TestDir::new(&format!("protocol-live-{}", version.name()));
    let home = client_home_in(dir.path());
    let server = FakeAuthServer::start("s3cret-pw");
    let port = server.addr.port();

    // version: answered without authentication.
    let out = version.run(&home, &["version", &format!("tcp://127.0.0.1:{port}/")]);
    assert!(out.success(), "xpra {} version: {out}", version.name());
    assert!(
        out.stdout.contains(FAKE_VERSION),
        "xpra {} version did not print the fake server's version: {out}",
        version.name()
    );

    // info with the right password: challenged, verified, answered with our tree.
    let out = version.run(
        &home,
        &["info", &format!("tcp://alice:s3cret-pw@127.0.0.1:{port}/")],
    );
    assert!(
        out.success(),
        "xpra {} info (right password): {out}\n{:?}",
        version.name(),
        server.log()
    );
    let all = out.all();
    assert!(
        all.contains(FAKE_SERVER_NAME) && all.contains("answer=42"),
        "xpra {} info did not print the fake info tree: {out}",
        version.name()
    );
    let log = server.log();
    assert!(log.challenges >= 1 && log.accepted == 1, "{log:?}");

    // info with a wrong password: refused, and the client says so.
    let out = version.run(
        &home,
        &["info", &format!("tcp://alice:wrong@127.0.0.1:{port}/")],
    );
    assert!(
        !out.success() && !out.timed_out(),
        "xpra {} info with a wrong password should fail: {out}",
        version.name()
    );
    assert!(
        out.all().to_lowercase().contains("authentication failed"),
        "xpra {} info with a wrong password does not report the authentication failure: {out}",
        version.name()
    );
    let log = server.log();
    assert_eq!(log.rejected, 1, "{log:?}");
    assert!(
        log.errors.is_empty(),
        "the fake server saw protocol errors: {log:?}"
    );
}

xgate_integration_tests::test_table! {
    check_version_and_info:
    xpra_3_version_and_info_against_a_protocol_crate_server(Version::V3);
    xpra_6_version_and_info_against_a_protocol_crate_server(Version::V6);
}
