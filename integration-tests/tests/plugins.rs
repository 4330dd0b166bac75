//! Issue #7: plug-in actors against the real gateway with real xpra 6.5.5 clients: the
//! audit-log plug-in records opened and closed connections with user, target and bytes; the
//! shipped exec auth hook (examples/auth-hook.sh) allows and refuses, and when its process is
//! killed its supervisor restarts it and authentication keeps working.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use xgate_integration_tests::harness::ctl::{ctl_json as ctl, tree_node};
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    wait_until, Attach, Gateway, Session, TestDir, TestUser, Version,
};

/// The pids of processes whose command line mentions `needle`.
fn pids_of(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("examples")
}

#[test]
fn audit_log_and_exec_auth_hook() {
    let v = Version::V6;
    let dir = TestDir::new("plugins");
    let session = Session::start(v, false, dir.path());
    let user = TestUser::get();
    let display = format!(":{}", session.number());
    let users = dir.write(
        "users.txt",
        &format!(
            "alice|secret|{u}|{u}|{display}\nbob|secret|{u}|{u}|{display}\n",
            u = user.name
        ),
    );
    let hook = dir.join("auth-hook.sh");
    std::fs::copy(examples_dir().join("auth-hook.sh"), &hook).expect("copy the example hook");
    xgate_integration_tests::harness::set_mode(&hook, 0o755);
    let audit = dir.join("audit.jsonl");
    let sock = dir.join("control.sock");
    let config = dir.write(
        "xgate.toml",
        &format!(
            "tcp-auth = [\"multifile:filename={users}\", \"hook:name=hook\"]\n\
             control-socket = \"{sock}\"\n\n\
             [[actor]]\nkind = \"audit-log\"\npath = \"{audit}\"\n\
             events = [\"connection-opened\", \"connection-closed\"]\n\n\
             [[actor]]\nkind = \"exec\"\nname = \"hook\"\ncommand = \"{hook} alice\"\nrole = \"auth\"\n",
            users = users.display(),
            sock = sock.display(),
            audit = audit.display(),
            hook = hook.display(),
        ),
    );
    let gateway = Gateway::start(dir.path(), &[format!("--config={}", config.display())]);
    let home = client_home_in(dir.path());
    let n = session.number().to_string();
    let alice = gateway.url(Some(("alice", "secret")), &n);
    let bob = gateway.url(Some(("bob", "secret")), &n);
    let hook_path = hook.display().to_string();
    let first = wait_until(Duration::from_secs(10), || {
        pids_of(&hook_path).first().copied()
    })
    .expect("the hook process is not running");

    // The hook allows alice and refuses bob (whose password is right).
    let hook_decides = |when: &str| {
        let out = v.run(&home, &["info", &alice]);
        assert!(
            out.success(),
            "alice refused {when}: {out}\n{}",
            gateway.process.log_tail()
        );
        v.run(&home, &["info", &bob])
            .assert_auth_failed(&format!("bob {when}"));
    };
    hook_decides("before the restart");

    // Kill the hook's process: it is restarted and authentication keeps working.
    xgate_integration_tests::harness::proc::kill_pid(first, "KILL");
    let restarted = wait_until(Duration::from_secs(20), || {
        let t = ctl(&sock, &["tree"]);
        let node = tree_node(&t["data"]["root"], "hook")?.clone();
        let pid = pids_of(&hook_path).into_iter().find(|p| *p != first)?;
        (node["restart_count"].as_u64() >= Some(1) && node["state"] == "running")
            .then_some((node, pid))
    });
    let (node, second) = restarted
        .unwrap_or_else(|| panic!("the hook was not restarted\n{}", gateway.process.log_tail()));
    assert!(
        node["last_exit"]
            .as_str()
            .is_some_and(|e| e.contains("exited")),
        "{node}"
    );
    assert_ne!(first, second);
    hook_decides("after the restart");

    // The audit log: a GUI session opened and closed, with user, target and bytes.
    let mut client = Attach::start(v, &alice, dir.path());
    let listed = wait_until(Duration::from_secs(60), || {
        let c = ctl(&sock, &["connections"]);
        c["data"]
            .as_array()
            .filter(|a| a.len() == 1)
            .map(|a| a[0].clone())
    })
    .unwrap_or_else(|| panic!("no connection\n{}", client.log()));
    session.wait_for_pixels("plugins.png", Duration::from_secs(60));
    client.process.signal("INT");
    assert!(client.process.wait_exit(Duration::from_secs(20)).is_some());
    let lines: Vec<Value> = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&audit).ok()?;
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
            .collect();
        lines
            .iter()
            .any(|l| l["event"] == "connection-closed")
            .then_some(lines)
    })
    .expect("no connection-closed line in the audit log");
    // The connection's line for `event`, with alice and the listed target.
    let line_of = |event: &str| {
        let line = lines
            .iter()
            .find(|l| l["event"] == event && l["id"] == listed["id"])
            .unwrap_or_else(|| panic!("no {event} line: {lines:?}"));
        assert_eq!(line["user"], "alice");
        assert_eq!(line["target"], listed["target"]);
        line
    };
    line_of("connection-opened");
    let closed = line_of("connection-closed");
    assert!(closed["bytes_to_client"].as_u64() > Some(0), "{closed}");
    assert!(closed["bytes_from_client"].as_u64() > Some(0), "{closed}");
    // Only the subscribed events, and the refused connections were never opened.
    assert!(lines
        .iter()
        .all(|l| l["event"] == "connection-opened" || l["event"] == "connection-closed"));
    assert!(lines.iter().all(|l| l["user"] != "bob"));
}
