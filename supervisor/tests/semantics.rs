//! Each OTP semantic of the supervisor, proved on real actix actors.

mod common;

use std::time::{Duration, Instant};

use actix::prelude::*;
use common::*;
use xgate_supervisor::Supervisor;
use xgate_supervisor::*;

fn tree(h: &Harness, strategy: Strategy) -> Supervisor {
    Supervisor::new("root", strategy)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(h.probe("a"))
        .child(h.probe("b"))
        .child(h.probe("c"))
}

/// Starts [`tree`] under `strategy`, crashes b and waits until `restarted_last`, the last child
/// the strategy restarts, has started again.
async fn crash_b(strategy: Strategy, restarted_last: &str) -> (Harness, RootHandle<Supervisor>) {
    let h = Harness::default();
    let (mut rx, root) = start_tree(tree(&h, strategy), "c").await;
    h.tell("b", Crash);
    wait_event(&mut rx, |e| started(e, restarted_last, 1)).await;
    settle().await;
    (h, root)
}

#[actix::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (h, root) = crash_b(Strategy::OneForOne, "b").await;
    assert_eq!((h.starts("a"), h.starts("b"), h.starts("c")), (1, 2, 1));
    assert_eq!(h.log.with_prefix("stop:"), vec!["b"]);
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn one_for_all_restarts_every_sibling_stopping_them_in_reverse() {
    let (h, root) = crash_b(Strategy::OneForAll, "c").await;
    assert_eq!((h.starts("a"), h.starts("b"), h.starts("c")), (2, 2, 2));
    // b crashed; the others were stopped in reverse start order, then all started in order.
    assert_eq!(h.log.with_prefix("stop:"), vec!["b", "c", "a"]);
    let entries = h.log.entries();
    assert_eq!(
        entries[entries.len() - 3..],
        ["start:a", "start:b", "start:c"].map(String::from)
    );
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let (h, root) = crash_b(Strategy::RestForOne, "c").await;
    assert_eq!((h.starts("a"), h.starts("b"), h.starts("c")), (1, 2, 2));
    assert_eq!(h.log.with_prefix("stop:"), vec!["b", "c"]);
    // c was stopped with `shutdown` by the supervisor, not counted as a crash.
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    assert_eq!(
        snap.find(&["c"]).unwrap().last_exit.as_deref(),
        Some("shutdown")
    );
    assert!(snap
        .find(&["b"])
        .unwrap()
        .last_exit
        .as_deref()
        .unwrap()
        .contains("crash of b"));
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn transient_is_restarted_after_a_panic_or_error_but_not_after_a_normal_exit() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(h.probe("quits").restart(Restart::Transient))
        .child(h.probe("panics").restart(Restart::Transient))
        .child(h.probe("fails").restart(Restart::Transient));
    let (mut rx, root) = start_tree(sup, "fails").await;

    h.tell("quits", Quit);
    assert_exit(&mut rx, "quits", "normal", false).await;

    h.tell("panics", Crash);
    assert_exit(&mut rx, "panics", "panic: crash of panics", true).await;
    wait_event(&mut rx, |e| started(e, "panics", 1)).await;

    h.tell("fails", Fail("lost server".into()));
    assert_exit(&mut rx, "fails", "lost server", true).await;
    wait_event(&mut rx, |e| started(e, "fails", 1)).await;

    settle().await;
    assert_eq!(h.starts("quits"), 1);
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    let quits = snap.find(&["quits"]).unwrap();
    assert_eq!((quits.state, quits.restart_count), (ChildState::Stopped, 0));
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn temporary_is_never_restarted_even_with_its_group() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForAll)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(h.probe("perm"))
        .child(h.probe("temp").restart(Restart::Temporary));
    let (mut rx, root) = start_tree(sup, "temp").await;

    // A sibling's restart stops the temporary child and does not start it again.
    h.tell("perm", Crash);
    wait_event(&mut rx, |e| started(e, "perm", 1)).await;
    settle().await;
    assert_eq!(h.starts("temp"), 1);

    let root2_h = Harness::default();
    let sup2 = Supervisor::new("root2", Strategy::OneForOne)
        .child(root2_h.probe("temp").restart(Restart::Temporary));
    let (mut rx2, root2) = start_tree(sup2, "temp").await;
    root2_h.tell("temp", Crash);
    assert_exit(&mut rx2, "temp", "panic: crash of temp", false).await;
    settle().await;
    assert_eq!(root2_h.starts("temp"), 1);
    let snap = root2.addr().unwrap().send(GetSnapshot).await.unwrap();
    assert_eq!(snap.find(&["temp"]).unwrap().state, ChildState::Stopped);

    root.shutdown_within(Duration::from_secs(5)).await;
    root2.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn intensity_exceeded_escalates_to_the_parent_and_up() {
    let h = Harness::default();
    let inner_h = h.clone();
    // Parent: 1 restart in 5 s (OTP's default). Child supervisor: 1 restart in 5 s.
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .child(h.probe("sibling"))
        .child(ChildSpec::supervisor("inner", move || {
            Supervisor::new("inner", Strategy::OneForOne).child(inner_h.probe("w"))
        }));
    let (mut rx, mut root) = start_tree(sup, "w").await;

    // Two crashes of `w` in a row exceed inner's intensity: inner exits and escalates.
    h.tell("w", Crash);
    wait_event(&mut rx, |e| started(e, "w", 1)).await;
    h.tell("w", Crash);
    let ev = wait_event(&mut rx, |e| {
        matches!(e, SupervisionEvent::RestartIntensityReached { supervisor, .. } if supervisor == "root/inner")
    })
    .await;
    assert!(matches!(
        ev,
        SupervisionEvent::RestartIntensityReached {
            max_restarts: 1,
            period_ms: 5000,
            ..
        }
    ));
    // The parent sees the child supervisor exit abnormally and restarts it.
    assert_exit(&mut rx, "inner", REACHED_MAX_RESTART_INTENSITY, true).await;
    // The new inner supervisor reports started once its own child did.
    wait_event(&mut rx, |e| started(e, "w", 0)).await;
    wait_event(&mut rx, |e| started(e, "inner", 1)).await;

    // Again: now the parent's own intensity is exceeded and the whole tree stops.
    h.tell("w", Crash);
    wait_event(&mut rx, |e| started(e, "w", 1)).await;
    h.tell("w", Crash);
    let reason = tokio::time::timeout(Duration::from_secs(5), root.wait())
        .await
        .expect("root exits");
    assert_eq!(
        reason,
        ExitReason::Error(REACHED_MAX_RESTART_INTENSITY.into())
    );
    assert!(h.log.with_prefix("stop:").contains(&"sibling".to_owned()));
}

#[actix::test]
async fn panics_in_started_handler_and_stopping_are_restarted_and_reported() {
    let h = Harness::default();
    let in_started = Behaviour::default();
    in_started.panic_in_started.set(1);
    let in_stopping = Behaviour::default();
    in_stopping.panic_in_stopping.set(1);
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(h.probe_with("s", in_started))
        .child(h.probe("h"))
        .child(h.probe_with("t", in_stopping));
    let mut rx = sup.subscribe();
    let root = sup.start_root();

    assert_exit(&mut rx, "s", "panic: boom in started of s", true).await;
    wait_event(&mut rx, |e| started(e, "s", 1)).await;

    wait_event(&mut rx, |e| started(e, "h", 0)).await;
    h.tell("h", Crash);
    assert_exit(&mut rx, "h", "panic: crash of h", true).await;
    wait_event(&mut rx, |e| started(e, "h", 1)).await;

    h.tell("t", Quit);
    assert_exit(&mut rx, "t", "panic: boom in stopping of t", true).await;
    wait_event(&mut rx, |e| started(e, "t", 1)).await;

    // The restarted children serve requests.
    for name in ["s", "h", "t"] {
        assert_eq!(h.addrs.get(name).send(Ping).await.unwrap(), 42);
    }
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    let s = snap.find(&["s"]).unwrap();
    assert_eq!(s.restart_count, 1);
    assert_eq!(s.last_exit.as_deref(), Some("panic: boom in started of s"));
    root.shutdown_within(Duration::from_secs(5)).await;
}

/// An actor outside the tree, on the same arbiter.
struct Bystander;
impl Actor for Bystander {
    type Context = Context<Self>;
}
impl Handler<Ping> for Bystander {
    type Result = u32;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u32 {
        7
    }
}

#[actix::test]
async fn the_arbiter_keeps_serving_other_actors_through_a_panic() {
    let bystander = Bystander.start();
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne).child(h.probe("p"));
    let (mut rx, root) = start_tree(sup, "p").await;
    let old = h.addrs.get("p");
    let pending = old.send(Ping);
    old.do_send(Crash);
    assert_eq!(bystander.send(Ping).await.unwrap(), 7);
    wait_event(&mut rx, |e| started(e, "p", 1)).await;
    // The panicked incarnation is gone; its pending request failed; the new one answers.
    let _ = pending.await;
    assert!(!old.connected());
    assert_eq!(bystander.send(Ping).await.unwrap(), 7);
    assert_eq!(h.addrs.get("p").send(Ping).await.unwrap(), 42);
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn children_start_in_order_and_stop_in_reverse_order() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .child(h.probe("a"))
        .child(ChildSpec::supervisor("mid", {
            let h = h.clone();
            move || {
                Supervisor::new("mid", Strategy::OneForOne)
                    .child(h.probe("m1"))
                    .child(h.probe("m2"))
            }
        }))
        .child(h.probe("c"));
    let (_rx, root) = start_tree(sup, "c").await;
    settle().await;
    assert_eq!(h.log.with_prefix("start:"), vec!["a", "m1", "m2", "c"]);
    let reason = root.shutdown_within(Duration::from_secs(5)).await;
    assert_eq!(reason, ExitReason::Shutdown);
    assert_eq!(h.log.with_prefix("stop:"), vec!["c", "m2", "m1", "a"]);
}

#[actix::test]
async fn a_child_that_ignores_shutdown_is_killed_after_its_timeout() {
    let h = Harness::default();
    let stubborn = Behaviour {
        stubborn: true,
        ..Behaviour::default()
    };
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .child(h.probe("first"))
        .child(
            h.probe_with("stubborn", stubborn)
                .shutdown(Shutdown::Timeout(Duration::from_millis(300))),
        );
    let (mut rx, root) = start_tree(sup, "stubborn").await;
    let t0 = Instant::now();
    let reason = root.shutdown_within(Duration::from_secs(5)).await;
    let took = t0.elapsed();
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(
        took >= Duration::from_millis(300),
        "killed too early: {took:?}"
    );
    assert!(took < Duration::from_millis(1000), "shutdown took {took:?}");
    assert!(h.log.entries().contains(&"refuse:stubborn".to_owned()));
    wait_event(
        &mut rx,
        |e| matches!(e, SupervisionEvent::ChildKilled { child, .. } if child == "stubborn"),
    )
    .await;
    assert_exit(&mut rx, "stubborn", "killed", false).await;
    // The sibling started before it was stopped after it.
    assert_exit(&mut rx, "first", "shutdown", false).await;
}

#[actix::test]
async fn brutal_kill_does_not_ask() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .child(h.probe("k").shutdown(Shutdown::BrutalKill));
    let (mut rx, root) = start_tree(sup, "k").await;
    root.shutdown_within(Duration::from_secs(5)).await;
    assert_exit(&mut rx, "k", "killed", false).await;
}

#[actix::test]
async fn the_grace_period_aborts_a_tree_that_does_not_stop() {
    let h = Harness::default();
    let stubborn = Behaviour {
        stubborn: true,
        ..Behaviour::default()
    };
    let sup = Supervisor::new("root", Strategy::OneForOne).child(
        h.probe_with("forever", stubborn)
            .shutdown(Shutdown::Infinity),
    );
    let (_rx, root) = start_tree(sup, "forever").await;
    let addr = h.addrs.get("forever");
    let t0 = Instant::now();
    let reason = root.shutdown_within(Duration::from_millis(200)).await;
    assert_eq!(reason, ExitReason::Killed);
    assert!(t0.elapsed() < Duration::from_secs(2));
    settle().await;
    // Killing the root took its child with it.
    assert!(!addr.connected());
}

#[actix::test]
async fn task_children_report_errors_panics_and_are_killed_when_deaf() {
    use std::cell::Cell;
    use std::rc::Rc;
    let runs = Rc::new(Cell::new(0u32));
    let runs2 = runs.clone();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(ChildSpec::task("erring", move |signal: ShutdownSignal| {
            let n = runs2.get();
            runs2.set(n + 1);
            async move {
                if n == 0 {
                    Err("bind failed")
                } else {
                    signal.await;
                    Ok(())
                }
            }
        }))
        .child(
            ChildSpec::task("panicking", |_signal| async {
                panic!("task boom");
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            })
            .restart(Restart::Temporary),
        )
        .child(ChildSpec::task(
            "polite",
            |signal: ShutdownSignal| async move {
                signal.await;
                Ok::<(), String>(())
            },
        ))
        .child(
            ChildSpec::task("deaf", |_signal| async {
                std::future::pending::<()>().await;
                Ok::<(), String>(())
            })
            .shutdown(Shutdown::Timeout(Duration::from_millis(100))),
        );
    let mut rx = sup.subscribe();
    let root = sup.start_root();
    assert_exit(&mut rx, "erring", "bind failed", true).await;
    wait_event(&mut rx, |e| started(e, "erring", 1)).await;
    assert_exit(&mut rx, "panicking", "panic: task boom", false).await;
    root.shutdown_within(Duration::from_secs(5)).await;
    assert_exit(&mut rx, "deaf", "killed", false).await;
    assert_exit(&mut rx, "polite", "shutdown", false).await;
}

#[actix::test]
async fn backoff_delays_restarts_without_blocking_the_supervisor() {
    let h = Harness::default();
    let sup = Supervisor::new("root", Strategy::OneForOne)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .backoff(Backoff::new(
            Duration::from_millis(150),
            Duration::from_secs(1),
        ))
        .child(h.probe("p"));
    let (mut rx, root) = start_tree(sup, "p").await;
    let t0 = Instant::now();
    h.tell("p", Crash);
    wait_event(&mut rx, |e| exited(e, "p").is_some()).await;
    // The supervisor answers while the restart waits.
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    assert_eq!(snap.find(&["p"]).unwrap().state, ChildState::Restarting);
    wait_event(&mut rx, |e| started(e, "p", 1)).await;
    let first = t0.elapsed();
    assert!(first >= Duration::from_millis(150), "{first:?}");
    let t1 = Instant::now();
    h.tell("p", Crash);
    wait_event(&mut rx, |e| started(e, "p", 2)).await;
    assert!(
        t1.elapsed() >= Duration::from_millis(300),
        "doubled: {:?}",
        t1.elapsed()
    );
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn snapshot_shows_the_tree() {
    let h = Harness::default();
    let inner_h = h.clone();
    let sup = Supervisor::new("root", Strategy::RestForOne)
        .intensity(Intensity::new(10, Duration::from_secs(5)))
        .child(h.probe("registry"))
        .child(ChildSpec::supervisor("listeners", move || {
            Supervisor::new("ignored-name", Strategy::OneForOne)
                .child(inner_h.probe("tcp").restart(Restart::Transient))
        }));
    let (mut rx, root) = start_tree(sup, "tcp").await;
    h.tell("tcp", Crash);
    let ev = wait_event(&mut rx, |e| started(e, "tcp", 1)).await;
    assert!(
        matches!(ev, SupervisionEvent::ChildStarted { ref supervisor, .. } if supervisor == "root/listeners")
    );
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    assert_eq!(snap.root.name, "root");
    assert_eq!(snap.root.strategy, Some(StrategyKind::RestForOne));
    assert_eq!(snap.root.children.len(), 2);
    let registry = snap.find(&["registry"]).unwrap();
    assert_eq!(registry.kind, ChildKind::Worker);
    assert_eq!(registry.restart, Some(Restart::Permanent));
    assert_eq!(registry.state, ChildState::Running);
    let listeners = snap.find(&["listeners"]).unwrap();
    assert_eq!(listeners.kind, ChildKind::Supervisor);
    assert_eq!(listeners.strategy, Some(StrategyKind::OneForOne));
    let tcp = snap.find(&["listeners", "tcp"]).unwrap();
    assert_eq!(tcp.restart, Some(Restart::Transient));
    assert_eq!(tcp.restart_count, 1);
    assert_eq!(tcp.last_exit.as_deref(), Some("panic: crash of tcp"));
    root.shutdown_within(Duration::from_secs(5)).await;
}
