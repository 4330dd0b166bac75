//! Issue #5, the `peercred` auth module end to end: a unix-socket listener of the real gateway
//! (`bind=PATH,auth=peercred,...`), real xpra clients run as different local users; the kernel's
//! peer credentials decide who comes in, and the allowed uid reaches its own session.

mod users_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use users_support::reaches;
use xgate_integration_tests::harness::xpra::CMD_TIMEOUT;
use xgate_integration_tests::harness::{
    run_with_timeout, set_mode, Attach, CmdOutput, Gateway, Session, TestDir, TestUser, Version,
};

/// The account of the refused client (Debian's `nobody`).
const NOBODY: u32 = 65534;

/// A private home for a client run as `uid`.
fn home_for(dir: &TestDir, uid: u32) -> PathBuf {
    let home = dir.join(&format!("home-{uid}"));
    std::fs::create_dir_all(&home).expect("create a client home");
    std::os::unix::fs::chown(&home, Some(uid), Some(uid)).expect("chown the client home");
    set_mode(&home, 0o700);
    home
}

/// `xpra ARGS` run as `uid:gid` (no supplementary groups) with its own home.
fn run_as(v: Version, uid: u32, home: &Path, args: &[&str]) -> CmdOutput {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("env")
        .arg(format!("HOME={}", home.display()))
        .arg(format!("XDG_RUNTIME_DIR={}", home.display()))
        .arg(v.bin())
        .args(args);
    run_with_timeout(&mut c, CMD_TIMEOUT)
}

#[test]
fn peercred_lets_the_allowed_uid_reach_its_session_and_refuses_others() {
    let v = Version::V3;
    let dir = TestDir::new("users-peercred");
    let user = TestUser::get();
    // A socket URL names no display: the gateway is given a socket directory of its own, where
    // this session is the test user's only one.
    let sockets = dir.join("sockets");
    std::fs::create_dir_all(&sockets).expect("create the session socket directory");
    std::os::unix::fs::chown(&sockets, Some(user.uid), Some(user.gid)).expect("chown it");
    set_mode(&sockets, 0o700);
    let session = Session::start_with(
        v,
        false,
        dir.path(),
        &[format!("--socket-dir={}", sockets.display())],
    );
    let n = session.number();
    let sock = dir.join("xgate.sock");
    // Every local user may connect (socket-permissions=666); peercred decides. The gateway runs
    // as the test user, so allow-owner=no makes the uid list, not ownership, let it in.
    let gw = Gateway::start(
        dir.path(),
        &[
            format!(
                "--bind={},auth=peercred,uid={},allow-owner=no,socket-permissions=666",
                sock.display(),
                user.uid
            ),
            format!("--socket-dirs={}", sockets.display()),
        ],
    );
    let meta = std::fs::metadata(&sock).expect("the unix listener's socket");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (user.uid, 0o666),
        "the socket belongs to the service user, with its socket-permissions"
    );
    let sock_url = format!("socket://{}", sock.display());

    // The allowed uid: its client reaches its own session through the socket, named by path.
    let allowed = Attach::start_with(v, &sock_url, dir.path(), &[], Some(user));
    reaches(
        allowed,
        &session,
        "peercred.png",
        &gw,
        &user.name,
        &format!(":{n}"),
    );

    // Another uid (nobody) and root are refused, over the same socket.
    run_as(v, NOBODY, &home_for(&dir, NOBODY), &["info", &sock_url]).assert_auth_failed("nobody");
    v.run(
        &xgate_integration_tests::harness::xpra::client_home_in(dir.path()),
        &["info", &sock_url],
    )
    .assert_auth_failed("root");
    for uid in [NOBODY, 0] {
        assert!(
            gw.logged(&[
                "peercred refused the client",
                &format!("peer=unix(uid={uid},")
            ]),
            "the gateway did not log peercred's refusal of uid {uid}:\n{}",
            gw.process.log_tail()
        );
    }
    // The allowed uid's one-shot request is answered after the check.
    let ok = run_as(v, user.uid, &home_for(&dir, user.uid), &["info", &sock_url]);
    assert!(ok.success(), "the allowed uid's info: {ok}");
}
