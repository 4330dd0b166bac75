//! `xgate ctl`, the gateway's control-socket client, as the tests drive it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::gateway::xgate_bin;
use super::proc::{run_with_timeout, CmdOutput};

/// How long one `xgate ctl` may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(30);

/// `xgate ctl --socket SOCK ARGS`, whatever its exit status.
fn run_ctl(sock: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(xgate_bin());
    cmd.arg("ctl").arg("--socket").arg(sock).args(args);
    run_with_timeout(&mut cmd, CTL_TIMEOUT)
}

/// `xgate ctl --socket SOCK --json ARGS`: its answer line (the first), `ok` or not (a refused
/// command answers with `error`); panics when that line is not JSON.
pub fn ctl_json(sock: &Path, args: &[&str]) -> Value {
    let mut json = vec!["--json"];
    json.extend_from_slice(args);
    let out = run_ctl(sock, &json);
    let line = out.stdout.lines().next().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("xgate ctl {args:?}: {e}: {out}"))
}

/// `xgate ctl --socket SOCK ARGS` in its readable form, which must succeed.
pub fn ctl_text(sock: &Path, args: &[&str]) -> String {
    let out = run_ctl(sock, args);
    assert!(out.success(), "xgate ctl {args:?}: {out}");
    out.stdout
}

/// The node called `name` in a supervision tree as `ctl tree` answers it (`name`, `children`).
pub fn tree_node<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    if node["name"] == name {
        return Some(node);
    }
    node["children"]
        .as_array()?
        .iter()
        .find_map(|c| tree_node(c, name))
}
