//! Issue #6: xpra's HTML5 client, served by xgate from Debian's `/usr/share/xpra/www`, opened in
//! Debian's headless chromium (driven by playwright-core, `integration-tests/html5/attach.js`),
//! connects over wss through xgate to a real xpra 3.1.3 session and shows the remote xterm.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{World, PASSWORD, USER};
use xgate_integration_tests::harness::xpra::png_stats;
use xgate_integration_tests::harness::{run_with_timeout, Version};

/// The node project with playwright-core (installed by scripts/setup-deps).
fn html5_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("html5")
}

#[test]
fn html5_client_over_wss_shows_the_remote_xterm() {
    for (what, path) in [
        ("chromium", PathBuf::from("/usr/bin/chromium")),
        ("node", PathBuf::from("/usr/bin/node")),
        (
            "playwright-core",
            html5_dir().join("node_modules/playwright-core/package.json"),
        ),
        (
            "xpra's HTML5 client",
            PathBuf::from("/usr/share/xpra/www/index.html"),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing ({}): run scripts/setup-deps",
            path.display()
        );
    }
    // The gateway's own generated certificate, and the default web root.
    let w = World::by_display(Version::V3, "html5", &[]);
    let port = w.gateway.port;
    let n = w.session.number();
    let url = format!(
        "https://127.0.0.1:{port}/index.html?server=127.0.0.1&port={port}&ssl=true\
         &username={USER}&password={PASSWORD}&path=/{n}&submit=true&sound=false\
         &floating_menu=false&clock=false"
    );
    let shot = w.dir.join("html5.png");
    let mut node = Command::new("/usr/bin/node");
    node.current_dir(html5_dir())
        .arg("attach.js")
        .arg(&url)
        .arg(&shot)
        .arg("60000");
    let out = run_with_timeout(&mut node, Duration::from_secs(120));
    let report = out.stdout.lines().last().unwrap_or("").to_string();
    assert!(
        out.success(),
        "the HTML5 client did not show a remote window: {out}\n{}",
        w.gateway.process.log_tail()
    );
    let json: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("bad report {report:?}: {e}"));
    let windows = json["windows"].as_array().cloned().unwrap_or_default();
    assert!(
        // xterm's title is `xterm` until the session user's shell sets it to `USER@HOST: DIR`;
        // either is the remote xterm (the page also holds the session's `xmessage`).
        windows.iter().any(|w| {
            let title = w["title"].as_str().unwrap_or("");
            w["colours"].as_i64().unwrap_or(0) >= 2
                && w["width"].as_i64().unwrap_or(0) >= 100
                && (title == "xterm" || title.starts_with("xgtest@"))
        }),
        "no drawn xterm window in the page: {report}"
    );
    let logs = json["logs"].to_string();
    assert!(
        logs.contains("connection-established") || logs.contains("startup complete"),
        "the page did not log its connection: {logs}"
    );
    // The screenshot of the page shows it too.
    let stats = png_stats(&shot).unwrap_or_else(|e| panic!("screenshot {}: {e}", shot.display()));
    assert!(
        stats.looks_like_a_window() && stats.colours > 16,
        "the page's screenshot shows no window: {stats:?} ({})",
        shot.display()
    );
    let log = w.gateway.log();
    assert!(
        log.contains("wss"),
        "the gateway did not log a wss connection:\n{}",
        w.gateway.process.log_tail()
    );
}
