//! SIGTERM shuts the tree down gracefully. In its own test binary: once tokio listens for
//! SIGTERM, the signal no longer terminates the process, and no other test shares it.

mod common;

use std::time::Duration;

use common::*;
use xgate_supervisor::Supervisor;
use xgate_supervisor::*;

#[actix::test]
async fn sigterm_stops_the_tree_in_reverse_order() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .child(h.probe("a"))
        .child(h.probe("b"))
        .child(h.probe("c"));
    let (_rx, root) = start_tree(sup, "c").await;

    let signals = ShutdownSignals::install().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reason = tokio::time::timeout(
        Duration::from_secs(5),
        shutdown_on_signals(root, signals, Duration::from_secs(5)),
    )
    .await
    .expect("the tree stops within the grace period");
    assert_eq!(reason, ExitReason::Shutdown);
    assert_eq!(h.log.with_prefix("stop:"), vec!["c", "b", "a"]);
}
