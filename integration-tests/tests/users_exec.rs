//! Issue #5, the `exec` auth module end to end: the real gateway (dropped to the test user) runs
//! a real command for each real xpra client, with xpra's substitutions; exit 0 lets the client in
//! to its session, another status refuses it, and a command that hangs is killed at its timeout
//! and refuses.

mod users_support;

use std::path::Path;
use std::time::{Duration, Instant};

use users_support::reaches;
use xgate_integration_tests::harness::proc::pid_alive;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{set_mode, Attach, Gateway, Session, TestDir, Version};

/// `exec`'s `timeout=` in the test, in seconds.
const TIMEOUT_S: u64 = 3;

/// The command the gateway runs: it records its arguments (one line per call), lets `alice` in,
/// hangs for `slow` (after writing its pid, so the test can see it killed) and refuses the rest.
fn write_check_script(dir: &TestDir) -> std::path::PathBuf {
    let calls = dir.join("exec-calls.log");
    let pid = dir.join("slow.pid");
    let script = format!(
        "#!/bin/sh\n\
         printf '%s|%s|%s\\n' \"$1\" \"$2\" \"$3\" >> '{calls}'\n\
         case \"$1\" in\n\
         \x20 alice) exit 0 ;;\n\
         \x20 slow) echo $$ > '{pid}'; exec sleep 600 ;;\n\
         \x20 *) exit 1 ;;\n\
         esac\n",
        calls = calls.display(),
        pid = pid.display()
    );
    let path = dir.write("check.sh", &script);
    set_mode(&path, 0o755);
    // The gateway runs as the test user: it must be able to append to the record.
    std::fs::write(&calls, "").expect("create the call record");
    set_mode(&calls, 0o666);
    path
}

fn calls(dir: &TestDir) -> String {
    std::fs::read_to_string(dir.join("exec-calls.log")).unwrap_or_default()
}

fn refused(v: Version, home: &Path, url: &str) {
    v.run(home, &["info", url]).assert_auth_failed(url);
}

#[test]
fn exec_command_decides_with_substitutions_and_timeout() {
    let v = Version::V3;
    let dir = TestDir::new("users-exec");
    let session = Session::start(v, false, dir.path());
    let n = session.number();
    let script = write_check_script(&dir);
    let gw = Gateway::start(
        dir.path(),
        &[format!(
            "--tcp-auth=exec:command={} ${{username}} ${{display}} ${{transport}},timeout={TIMEOUT_S}",
            script.display()
        )],
    );
    let home = client_home_in(dir.path());

    // Exit 0: alice reaches the session she names, and the command saw her name, that display
    // and the transport.
    let alice = Attach::start(
        v,
        &gw.url(Some(("alice", "any")), &n.to_string()),
        dir.path(),
    );
    reaches(
        alice,
        &session,
        "exec-alice.png",
        &gw,
        "alice",
        &format!(":{n}"),
    );
    assert!(
        calls(&dir).lines().any(|l| l == format!("alice|:{n}|tcp")),
        "the command did not get alice's substitutions: {:?}",
        calls(&dir)
    );

    // Another exit status refuses; without a display in the URL, ${display} is empty.
    refused(v, &home, &gw.url(Some(("mallory", "any")), ""));
    assert!(
        calls(&dir).lines().any(|l| l == "mallory||tcp"),
        "the command did not run for mallory: {:?}",
        calls(&dir)
    );

    // A command that hangs is killed at its timeout, and the client is refused.
    let t0 = Instant::now();
    refused(v, &home, &gw.url(Some(("slow", "any")), ""));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(TIMEOUT_S),
        "refused after {took:?}, before the {TIMEOUT_S} s timeout"
    );
    let pid: u32 = std::fs::read_to_string(dir.join("slow.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the hanging command left no pid: {:?}", calls(&dir)));
    assert!(
        !pid_alive(pid),
        "the hanging command (pid {pid}) still runs after the refusal"
    );
    assert!(
        gw.logged(&["exec auth: timed out after", "xgate::auth"]),
        "the gateway did not log the timeout:\n{}",
        gw.process.log_tail()
    );
}
