//! Issue #5 with sqlite: users, passwords and routes from one `xgate auth-db` file, real xpra
//! clients through the real gateway (dropped to the test user), real sessions and a fake server
//! that records what reaches the server side.

mod users_support;

use std::time::Duration;

use users_support::{
    auth_db, auth_db_ok, compression_level, reaches, recording_target, sqlite_auth, sqlite_users,
    wait_recorded,
};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{Attach, Gateway, Session, TestDir, Version};

/// Two users reach two different sessions (a local socket and a `tcp://` target) with their
/// own passwords; a wrong password fails; a user with two displays picks one by URL (and gets
/// none without); `compression=0` and a session password reach the server side.
#[test]
fn sqlite_users_reach_their_own_sessions() {
    let v = Version::V3;
    let dir = TestDir::new("users-sqlite");
    let local = Session::start(v, false, dir.path());
    let remote = Session::start(v, true, dir.path());
    let recorder = recording_target(Some("server-pw"));
    let a = format!(":{}", local.number());
    let b = format!(":{}", remote.number());
    let dbs = sqlite_users(
        &dir,
        "xpra-auth.sdb",
        &[
            &["alice", "apw", &a],
            &["bob", "bpw", &remote.tcp_url()],
            &["carol", "cpw", &format!("{a},{b}")],
            &[
                "dave",
                "dpw",
                &recorder.url(),
                "XDG_SESSION_TYPE=x11",
                "compression=0;password=server-pw",
            ],
        ],
    );
    let list = auth_db_ok(&dbs, &["list"]);
    assert!(list.stdout.starts_with("4 rows found:"), "{list}");

    let gw = Gateway::start(dir.path(), &[sqlite_auth(&dbs)]);
    let home = client_home_in(dir.path());

    // alice: the local session, proven by its pixels.
    let alice = Attach::start(v, &gw.url(Some(("alice", "apw")), ""), dir.path());
    reaches(alice, &local, "alice.png", &gw, "alice", &a);

    // bob: the tcp:// target, proven by its pixels.
    let bob = Attach::start(v, &gw.url(Some(("bob", "bpw")), ""), dir.path());
    reaches(bob, &remote, "bob.png", &gw, "bob", &remote.tcp_url());

    // Wrong passwords, and a password that is another user's, fail.
    for (user, pw) in [("alice", "wrong"), ("alice", "bpw"), ("nobody", "apw")] {
        v.run(&home, &["id", &gw.url(Some((user, pw)), "")])
            .assert_auth_failed(&format!("{user}:{pw}"));
    }
    // A right one is answered (the gateway's own `id`, after authentication).
    let out = v.run(&home, &["id", &gw.url(Some(("alice", "apw")), "")]);
    assert!(
        out.success(),
        "alice's id: {out}\n{}",
        gw.process.log_tail()
    );

    // carol has two displays: the URL picks one; without one the gateway cannot choose.
    let mut carol = Attach::start(
        v,
        &gw.url(Some(("carol", "cpw")), &remote.number().to_string()),
        dir.path(),
    );
    gw.wait_authenticated("carol", &b);
    carol.assert_running("carol attached to her second display");
    drop(carol);
    let carol = Attach::start(
        v,
        &gw.url(Some(("carol", "cpw")), &local.number().to_string()),
        dir.path(),
    );
    gw.wait_authenticated("carol", &a);
    drop(carol);
    let carol = Attach::start(v, &gw.url(Some(("carol", "cpw")), ""), dir.path());
    gw.wait_logged(
        &["user=carol", "session not found"],
        Duration::from_secs(60),
    );
    drop(carol);

    // dave: compression=0 and the session password reach the server side.
    let dave = Attach::start(v, &gw.url(Some(("dave", "dpw")), ""), dir.path());
    let seen = wait_recorded(&recorder, |r| r.accepted > 0);
    drop(dave);
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "the server never got dave's hello with the session password: {:?}\n{}",
            recorder.log().hellos.len(),
            gw.process.log_tail()
        )
    });
    assert_eq!(seen.rejected, 0);
    for hello in &seen.hellos {
        assert_eq!(
            compression_level(hello),
            Some(0),
            "compression=0 did not reach the server: {hello:?}"
        );
    }
    // The database is read, never written, by the gateway.
    assert_eq!(auth_db(&dbs, &["list"]).stdout, list.stdout);
}

/// xpra 6.5.5's client: the display travels in `session.display`; the sqlite routes pick it.
#[test]
fn sqlite_routes_for_a_6_5_5_client_by_display() {
    let v = Version::V6;
    let dir = TestDir::new("users-sqlite-6");
    let s1 = Session::start(v, false, dir.path());
    let s2 = Session::start(v, false, dir.path());
    let d1 = format!(":{}", s1.number());
    let d2 = format!(":{}", s2.number());
    let dbs = sqlite_users(&dir, "auth.sdb", &[&["erin", "epw", &format!("{d1},{d2}")]]);
    let gw = Gateway::start(dir.path(), &[sqlite_auth(&dbs)]);
    let c = Attach::start(
        v,
        &gw.url(Some(("erin", "epw")), &s2.number().to_string()),
        dir.path(),
    );
    let _erin = reaches(c, &s2, "erin.png", &gw, "erin", &d2);
    let home = client_home_in(dir.path());
    // 6.x clients get `id` without authentication (as from xpra); `info` needs it.
    let out = v.run(&home, &["info", &gw.url(Some(("erin", "nope")), "")]);
    assert!(!out.success(), "a wrong password got in: {out}");
    let out = v.run(&home, &["info", &gw.url(Some(("erin", "epw")), "")]);
    assert!(out.success(), "erin's info: {out}");
}

/// The session list from another source than the password check: `exec` decides who comes in
/// (by the client's name), the sqlite file only says where they go (`role=sessions`, whose
/// passwords are never checked).
#[test]
fn sessions_from_sqlite_password_from_exec() {
    let v = Version::V3;
    let dir = TestDir::new("users-split");
    let session = Session::start(v, false, dir.path());
    let d = format!(":{}", session.number());
    // The row's password is not the one the client gives: only exec checks.
    let dbs = sqlite_users(&dir, "routes.sdb", &[&["frank", "unused", &d]]);
    let gw = Gateway::start(
        dir.path(),
        &[
            "--tcp-auth=exec:command=/bin/sh -c 'test \"$0\" = frank' ${username}".to_string(),
            format!("--tcp-auth=sqlite:filename={dbs},role=sessions"),
        ],
    );
    let mut frank = Attach::start(v, &gw.url(Some(("frank", "anything")), ""), dir.path());
    gw.wait_authenticated("frank", &d);
    frank.assert_running("frank attached");
    drop(frank);
    let home = client_home_in(dir.path());
    let out = v.run(&home, &["info", &gw.url(Some(("grace", "anything")), "")]);
    assert!(!out.success(), "exec let grace in: {out}");
}
