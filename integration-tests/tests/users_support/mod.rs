//! Helpers of the user-database suites (issue #5): `xgate auth-db`, xpra 6.5.5's own sqlite
//! tool, a throwaway PostgreSQL cluster, users and routes set up in a database, the checks that a
//! user reached their session, and the harness's fake xpra server as a recording target.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xgate_integration_tests::harness::fake::{AuthLog, FakeAuthServer, FakeRole};
use xgate_integration_tests::harness::gateway::xgate_bin;
use xgate_integration_tests::harness::{
    run_with_timeout, wait_until, Attach, CmdOutput, Gateway, Session, TestDir, TestUser,
};
use xgate_protocol::Value;

/// How long a database command may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// `xgate auth-db DATABASE ARGS`.
pub(crate) fn auth_db(database: &str, args: &[&str]) -> CmdOutput {
    run_with_timeout(
        Command::new(xgate_bin())
            .arg("auth-db")
            .arg(database)
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// `xgate auth-db DATABASE ARGS`, which must succeed.
pub(crate) fn auth_db_ok(database: &str, args: &[&str]) -> CmdOutput {
    let out = auth_db(database, args);
    assert!(out.success(), "xgate auth-db {database} {args:?}: {out}");
    out
}

/// xpra 6.5.5's Python, whose `-m xpra.auth.sqlite` is xpra's own database tool.
pub(crate) fn xpra6_python() -> PathBuf {
    let venv = std::env::var_os("XPRA6_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/xgate/xpra-6.5.5"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "xpra 6.5.5 is not installed at {} (run scripts/setup-deps)",
        venv.display()
    );
    py
}

/// `python -m xpra.auth.sqlite FILE ARGS` (xpra 6.5.5's tool), run in `dir`.
pub(crate) fn xpra_tool(dir: &Path, file: &Path, args: &[&str]) -> CmdOutput {
    run_with_timeout(
        Command::new(xpra6_python())
            .current_dir(dir)
            .env("XPRA_SKIP_UI", "1")
            .args(["-m", "xpra.auth.sqlite"])
            .arg(file)
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// xpra 6.5.5's sqlite `Authenticator` itself (what its proxy runs): the passwords of `user`,
/// then, when `password` is one of them, the sessions of the matching row, as Python prints
/// them. `None` when the password does not match. (xpra 6.5.5's `authenticate` command cannot
/// be used: it raises `TypeError: Authenticator.__init__() takes from 1 to 2 positional
/// arguments but 3 were given`.)
pub(crate) fn xpra_authenticator(
    dir: &Path,
    file: &Path,
    user: &str,
    password: &str,
) -> Option<String> {
    let script = "import sys\n\
from xpra.auth.sqlite import Authenticator\n\
a = Authenticator(filename=sys.argv[1], username=sys.argv[2], connection=None)\n\
if sys.argv[3] not in a.get_passwords():\n    sys.exit(3)\n\
a.password_used = sys.argv[3]\n\
print(a.get_sessions())\n";
    let out = run_with_timeout(
        Command::new(xpra6_python())
            .current_dir(dir)
            .arg("-c")
            .arg(script)
            .arg(file)
            .arg(user)
            .arg(password),
        TOOL_TIMEOUT,
    );
    match out.status.and_then(|s| s.code()) {
        Some(0) => Some(out.stdout.trim().to_string()),
        Some(3) => None,
        _ => panic!("xpra's sqlite Authenticator failed: {out}"),
    }
}

/// Makes a database file readable by the gateway after its privilege drop.
pub(crate) fn readable(path: &Path) {
    xgate_integration_tests::harness::set_mode(path, 0o644);
}

/// The test user's uid and gid as strings, for `add ... uid gid ...`.
pub(crate) fn ids() -> (String, String) {
    let u = TestUser::get();
    (u.uid.to_string(), u.gid.to_string())
}

/// `xgate auth-db DATABASE create`, then one `add` per row: user, password, then what the row
/// holds after the uid and gid (sessions, env, options), which are the test user's.
pub(crate) fn create_users(database: &str, rows: &[&[&str]]) {
    let (uid, gid) = ids();
    auth_db_ok(database, &["create"]);
    for row in rows {
        let mut args = vec!["add"];
        args.extend(row.iter().take(2));
        args.extend([uid.as_str(), gid.as_str()]);
        args.extend(row.iter().skip(2));
        auth_db_ok(database, &args);
    }
}

/// [`create_users`] in a new sqlite file `name` of `dir`, made readable by the gateway; its path.
pub(crate) fn sqlite_users(dir: &TestDir, name: &str, rows: &[&[&str]]) -> String {
    let db = dir.join(name);
    let dbs = db.display().to_string();
    create_users(&dbs, rows);
    readable(&db);
    dbs
}

/// The gateway's `--tcp-auth` for the sqlite file `dbs`.
pub(crate) fn sqlite_auth(dbs: &str) -> String {
    format!("--tcp-auth=sqlite:filename={dbs}")
}

/// A GUI `client` of `user` reaches `session`, named `display` in the gateway's log: the
/// session shows its pixels (screenshot `shot`), the client stays attached, and the gateway
/// logged the user authenticated for it. The client is handed back, still attached.
pub(crate) fn reaches(
    mut client: Attach,
    session: &Session,
    shot: &str,
    gw: &Gateway,
    user: &str,
    display: &str,
) -> Attach {
    session.wait_for_pixels_through(shot, Duration::from_secs(60), &mut client, gw);
    client.assert_running(&format!("after {user} attached"));
    gw.wait_authenticated(user, display);
    client
}

/// A fake xpra server on a free port, as a `tcp://` target of the gateway: it records the
/// hellos the gateway relays (the session options it applied), challenges them when it has a
/// `password`, and ends each connection once the gateway is in.
pub(crate) fn recording_target(password: Option<&str>) -> FakeAuthServer {
    FakeAuthServer::start_as(FakeRole::RecordingTarget, password)
}

/// Waits (a minute at most) for the recording target to have seen what `done` wants.
pub(crate) fn wait_recorded(
    target: &FakeAuthServer,
    done: impl Fn(&AuthLog) -> bool,
) -> Option<AuthLog> {
    wait_until(Duration::from_secs(60), || {
        let seen = target.log();
        done(&seen).then_some(seen)
    })
}

/// The `compression_level` a recorded hello carried.
pub(crate) fn compression_level(hello: &Value) -> Option<i64> {
    hello.lookup("compression_level").and_then(Value::as_int)
}
