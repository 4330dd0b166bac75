//! Issue #5: databases are interchangeable with xpra 6.5.5's own sqlite tool
//! (`python3 -m xpra.auth.sqlite FILE create|add|remove|list`) and its sqlite `Authenticator`.

mod users_support;

use users_support::{
    auth_db, auth_db_ok, ids, readable, sqlite_auth, xpra_authenticator, xpra_tool,
};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{Gateway, Session, TestDir, Version};

/// A database made by xpra's tool works with `xgate auth-db` and with the gateway.
#[test]
fn database_made_by_xpra_tool_works_with_xgate() {
    let dir = TestDir::new("users-xpra-tool");
    let session = Session::start(Version::V3, false, dir.path());
    let db = dir.join("xpra-auth.sdb");
    let dbs = db.display().to_string();
    let (uid, gid) = ids();
    let display = format!(":{}", session.number());
    let create = xpra_tool(dir.path(), &db, &["create"]);
    assert!(create.success(), "xpra's tool: create: {create}");
    let add = xpra_tool(
        dir.path(),
        &db,
        &[
            "add",
            "alice",
            "secret",
            &uid,
            &gid,
            &display,
            "",
            "compression=0",
        ],
    );
    assert!(add.success(), "xpra's tool: add: {add}");
    // xpra's tool with its defaults (the caller's uid and gid, empty displays).
    let add = xpra_tool(dir.path(), &db, &["add", "bob", "pw"]);
    assert!(add.success(), "xpra's tool: add: {add}");
    readable(&db);

    // Both tools list the same table, the same way.
    let theirs = xpra_tool(dir.path(), &db, &["list"]);
    let ours = auth_db_ok(&dbs, &["list"]);
    assert_eq!(
        ours.stdout.trim_end(),
        theirs.stdout.trim_end(),
        "list output differs:\nxgate:\n{ours}\nxpra:\n{theirs}"
    );
    auth_db_ok(&dbs, &["authenticate", "alice", "secret"]);
    assert!(!auth_db(&dbs, &["authenticate", "alice", "nope"]).success());

    // The gateway authenticates against it and routes alice to her display.
    let gw = Gateway::start(dir.path(), &[sqlite_auth(&dbs)]);
    let home = client_home_in(dir.path());
    let out = Version::V3.run(&home, &["id", &gw.url(Some(("alice", "secret")), "")]);
    assert!(
        out.success(),
        "alice through xgate: {out}\n{}",
        gw.process.log_tail()
    );
    let out = Version::V6.run(&home, &["info", &gw.url(Some(("alice", "secret")), "")]);
    assert!(
        out.success(),
        "alice (6.5.5) through xgate: {out}\n{}",
        gw.process.log_tail()
    );
    let out = Version::V3.run(&home, &["id", &gw.url(Some(("alice", "wrong")), "")]);
    assert!(!out.success(), "a wrong password got in: {out}");
}

/// A database made by `xgate auth-db` works with xpra's tool.
#[test]
fn database_made_by_xgate_works_with_xpra_tool() {
    let dir = TestDir::new("users-xgate-tool");
    let db = dir.join("made-by-xgate.sdb");
    let dbs = db.display().to_string();
    auth_db_ok(&dbs, &["create"]);
    auth_db_ok(
        &dbs,
        &[
            "add",
            "alice",
            "secret",
            "1000",
            "1000",
            ":100,tcp://127.0.0.1:10100/",
            "A=1",
            "compression=0",
        ],
    );
    auth_db_ok(&dbs, &["add", "bob", "pw"]);
    // xpra's own Authenticator reads the row, sessions and options included.
    assert_eq!(
        xpra_authenticator(dir.path(), &db, "alice", "secret").as_deref(),
        Some("(1000, 1000, [':100', 'tcp://127.0.0.1:10100/'], {'A': '1'}, {'compression': '0'})")
    );
    assert_eq!(xpra_authenticator(dir.path(), &db, "alice", "wrong"), None);
    assert!(xpra_authenticator(dir.path(), &db, "bob", "pw").is_some());
    let theirs = xpra_tool(dir.path(), &db, &["list"]);
    assert!(theirs.success(), "xpra's tool: list: {theirs}");
    let ours = auth_db_ok(&dbs, &["list"]);
    assert_eq!(ours.stdout.trim_end(), theirs.stdout.trim_end());
    // xpra's tool writes to it too, and xgate reads what it wrote.
    let add = xpra_tool(dir.path(), &db, &["add", "carol", "cpw"]);
    assert!(add.success(), "xpra's tool: add: {add}");
    auth_db_ok(&dbs, &["authenticate", "carol", "cpw"]);
    let rm = xpra_tool(dir.path(), &db, &["remove", "alice"]);
    assert!(rm.success(), "xpra's tool: remove: {rm}");
    assert!(!auth_db(&dbs, &["authenticate", "alice", "secret"]).success());
}
