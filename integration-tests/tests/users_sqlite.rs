//! Issue #5 with sqlite: users, passwords and routes from one `xgate auth-db` file, real xpra
//! clients through the real gateway (dropped to the test user), real sessions and a fake server
//! that records what reaches the server side.

mod users_support;

use std::time::Duration;

use users_support::{auth_db, auth_db_ok, ids, readable, wait_authenticated, Recorder};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{wait_until, Attach, Gateway, Session, TestDir, Version};

/// Two users reach two different sessions (a local socket and a `tcp://` target) with their
/// own passwords; a wrong password fails; a user with two displays picks one by URL (and gets
/// none without); `compression=0` and a session password reach the server side.
#[test]
fn sqlite_users_reach_their_own_sessions() {
    let v = Version::V3;
    let dir = TestDir::new("users-sqlite");
    let local = Session::start(v, false, dir.path());
    let remote = Session::start(v, true, dir.path());
    let recorder = Recorder::start(Some("server-pw"));
    let db = dir.join("xpra-auth.sdb");
    let dbs = db.display().to_string();
    let (uid, gid) = ids();
    let a = format!(":{}", local.number());
    let b = format!(":{}", remote.number());
    auth_db_ok(&dbs, &["create"]);
    auth_db_ok(&dbs, &["add", "alice", "apw", &uid, &gid, &a]);
    auth_db_ok(&dbs, &["add", "bob", "bpw", &uid, &gid, &remote.tcp_url()]);
    auth_db_ok(
        &dbs,
        &["add", "carol", "cpw", &uid, &gid, &format!("{a},{b}")],
    );
    auth_db_ok(
        &dbs,
        &[
            "add",
            "dave",
            "dpw",
            &uid,
            &gid,
            &recorder.url(),
            "XDG_SESSION_TYPE=x11",
            "compression=0;password=server-pw",
        ],
    );
    readable(&db);
    let list = auth_db_ok(&dbs, &["list"]);
    assert!(list.stdout.starts_with("4 rows found:"), "{list}");

    let gw = Gateway::start(dir.path(), &[format!("--tcp-auth=sqlite:filename={dbs}")]);
    let home = client_home_in(dir.path());

    // alice: the local session, proven by its pixels.
    let mut alice = Attach::start(v, &gw.url(Some(("alice", "apw")), ""), dir.path());
    local.wait_for_pixels("alice.png", Duration::from_secs(60));
    alice.assert_running("alice attached");
    wait_authenticated(|| gw.log(), "alice", &a);
    drop(alice);

    // bob: the tcp:// target, proven by its pixels.
    let mut bob = Attach::start(v, &gw.url(Some(("bob", "bpw")), ""), dir.path());
    remote.wait_for_pixels("bob.png", Duration::from_secs(60));
    bob.assert_running("bob attached");
    wait_authenticated(|| gw.log(), "bob", &remote.tcp_url());
    drop(bob);

    // Wrong passwords, and a password that is another user's, fail.
    for (user, pw) in [("alice", "wrong"), ("alice", "bpw"), ("nobody", "apw")] {
        let out = v.run(&home, &["id", &gw.url(Some((user, pw)), "")]);
        assert!(!out.success(), "{user}:{pw} got in: {out}");
        assert!(
            out.all().contains("authentication failed"),
            "{user}:{pw}: {out}"
        );
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
    wait_authenticated(|| gw.log(), "carol", &b);
    carol.assert_running("carol attached to her second display");
    drop(carol);
    let carol = Attach::start(
        v,
        &gw.url(Some(("carol", "cpw")), &local.number().to_string()),
        dir.path(),
    );
    wait_authenticated(|| gw.log(), "carol", &a);
    drop(carol);
    let carol = Attach::start(v, &gw.url(Some(("carol", "cpw")), ""), dir.path());
    let refused = wait_until(Duration::from_secs(60), || {
        users_support::plain(&gw.log())
            .lines()
            .any(|l| l.contains("user=carol") && l.contains("session not found"))
            .then_some(())
    });
    drop(carol);
    assert!(
        refused.is_some(),
        "carol without a display: {}",
        gw.process.log_tail()
    );

    // dave: compression=0 and the session password reach the server side.
    let dave = Attach::start(v, &gw.url(Some(("dave", "dpw")), ""), dir.path());
    let seen = wait_until(Duration::from_secs(60), || {
        let r = recorder.recorded();
        (r.proved > 0).then_some(r)
    });
    drop(dave);
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "the server never got dave's hello with the session password: {:?}\n{}",
            recorder.recorded().hellos.len(),
            gw.process.log_tail()
        )
    });
    assert_eq!(seen.wrong, 0);
    for hello in &seen.hellos {
        assert_eq!(
            hello
                .lookup("compression_level")
                .and_then(xgate_protocol::Value::as_int),
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
    let db = dir.join("auth.sdb");
    let dbs = db.display().to_string();
    let (uid, gid) = ids();
    let d1 = format!(":{}", s1.number());
    let d2 = format!(":{}", s2.number());
    auth_db_ok(&dbs, &["create"]);
    auth_db_ok(
        &dbs,
        &["add", "erin", "epw", &uid, &gid, &format!("{d1},{d2}")],
    );
    readable(&db);
    let gw = Gateway::start(dir.path(), &[format!("--tcp-auth=sqlite:filename={dbs}")]);
    let mut c = Attach::start(
        v,
        &gw.url(Some(("erin", "epw")), &s2.number().to_string()),
        dir.path(),
    );
    s2.wait_for_pixels("erin.png", Duration::from_secs(60));
    c.assert_running("erin attached");
    wait_authenticated(|| gw.log(), "erin", &d2);
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
    let db = dir.join("routes.sdb");
    let dbs = db.display().to_string();
    let (uid, gid) = ids();
    let d = format!(":{}", session.number());
    auth_db_ok(&dbs, &["create"]);
    // The row's password is not the one the client gives: only exec checks.
    auth_db_ok(&dbs, &["add", "frank", "unused", &uid, &gid, &d]);
    readable(&db);
    let gw = Gateway::start(
        dir.path(),
        &[
            "--tcp-auth=exec:command=/bin/sh -c 'test \"$0\" = frank' ${username}".to_string(),
            format!("--tcp-auth=sqlite:filename={dbs},role=sessions"),
        ],
    );
    let mut frank = Attach::start(v, &gw.url(Some(("frank", "anything")), ""), dir.path());
    wait_authenticated(|| gw.log(), "frank", &d);
    frank.assert_running("frank attached");
    drop(frank);
    let home = client_home_in(dir.path());
    let out = v.run(&home, &["info", &gw.url(Some(("grace", "anything")), "")]);
    assert!(!out.success(), "exec let grace in: {out}");
}
