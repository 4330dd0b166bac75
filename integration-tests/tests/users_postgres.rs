//! Issue #5 with PostgreSQL: the same users and routes in a real PostgreSQL server (started by
//! the test on a free port), shared by two gateways.

mod users_support;

use users_support::{
    auth_db_ok, compression_level, create_users, reaches, recording_target, wait_recorded,
};
use xgate_actors::auth::sql::pg_cluster::PgCluster;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{Attach, Gateway, Session, TestDir, Version};

/// Two gateways on one PostgreSQL database: a user added once logs in through both, each user
/// reaches their own session (local socket, `tcp://` target), a wrong password fails on both,
/// a user removed through one tool invocation is refused by both, and `compression=0` reaches
/// the server side.
#[test]
fn postgres_users_shared_by_two_gateways() {
    let v = Version::V3;
    let dir = TestDir::new("users-postgres");
    let pg = PgCluster::start("users");
    let uri = pg.uri();
    let local = Session::start(v, false, dir.path());
    let remote = Session::start(v, true, dir.path());
    let recorder = recording_target(None);
    let a = format!(":{}", local.number());
    create_users(
        &uri,
        &[
            &["alice", "apw", &a],
            &["bob", "bpw", &remote.tcp_url()],
            &["dave", "dpw", &recorder.url(), "", "compression=0"],
        ],
    );
    let auth = format!("--tcp-auth=sql:uri={uri}");
    let dir1 = TestDir::new("users-postgres-gw1");
    let dir2 = TestDir::new("users-postgres-gw2");
    let gw1 = Gateway::start(dir1.path(), std::slice::from_ref(&auth));
    let gw2 = Gateway::start(dir2.path(), std::slice::from_ref(&auth));
    let home = client_home_in(dir.path());

    // Both gateways know alice and bob, and refuse wrong passwords.
    for gw in [&gw1, &gw2] {
        for (user, pw) in [("alice", "apw"), ("bob", "bpw")] {
            let out = v.run(&home, &["id", &gw.url(Some((user, pw)), "")]);
            assert!(
                out.success(),
                "{user} on :{}: {out}\n{}",
                gw.port,
                gw.process.log_tail()
            );
        }
        let out = v.run(&home, &["id", &gw.url(Some(("alice", "bpw")), "")]);
        assert!(
            !out.success(),
            "a wrong password got in on :{}: {out}",
            gw.port
        );
    }

    // alice through the first gateway reaches the local session, bob through the second the
    // tcp:// target.
    let alice = Attach::start(v, &gw1.url(Some(("alice", "apw")), ""), dir.path());
    reaches(alice, &local, "pg-alice.png", &gw1, "alice", &a);
    let bob = Attach::start(v, &gw2.url(Some(("bob", "bpw")), ""), dir.path());
    reaches(bob, &remote, "pg-bob.png", &gw2, "bob", &remote.tcp_url());

    // compression=0 from the shared row reaches the server side.
    let dave = Attach::start(v, &gw2.url(Some(("dave", "dpw")), ""), dir.path());
    let seen = wait_recorded(&recorder, |r| !r.hellos.is_empty());
    drop(dave);
    let seen =
        seen.unwrap_or_else(|| panic!("no hello reached the server\n{}", gw2.process.log_tail()));
    assert_eq!(compression_level(&seen.hellos[0]), Some(0));

    // A change made once is seen by both gateways at once.
    auth_db_ok(&uri, &["remove", "alice"]);
    for gw in [&gw1, &gw2] {
        let out = v.run(&home, &["id", &gw.url(Some(("alice", "apw")), "")]);
        assert!(
            !out.success(),
            "a removed user got in on :{}: {out}",
            gw.port
        );
    }
}
