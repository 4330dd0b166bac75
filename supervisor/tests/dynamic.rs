//! The dynamic supervisor (OTP `simple_one_for_one`).

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use common::*;
use xgate_supervisor::Supervisor;
use xgate_supervisor::*;

/// Addresses of the dynamic probes by their argument.
type Registry = Rc<RefCell<HashMap<u32, Addr<Probe>>>>;

fn spec(h: &Harness, reg: &Registry, restart: Restart) -> ChildSpec<u32> {
    let (h, reg) = (h.clone(), reg.clone());
    ChildSpec::actor_with_args("conn", move |n: &u32, ctx: &mut Context<Probe>, exit| {
        reg.borrow_mut().insert(*n, ctx.address());
        make_probe(&h, &format!("c{n}"), exit)
    })
    .restart(restart)
}

fn make_probe(h: &Harness, name: &str, exit: ExitHandle) -> Probe {
    Probe::new(name, h.log.clone(), Behaviour::default(), exit)
}

#[actix::test]
async fn start_child_restart_terminate_and_snapshot() {
    let h = Harness::default();
    let reg = Registry::default();
    let sup = DynamicSupervisor::new("connections", spec(&h, &reg, Restart::Transient))
        .intensity(Intensity::new(100, Duration::from_secs(1)));
    let mut rx = sup.subscribe();
    let root = sup.start_root();
    let addr = root.addr().unwrap().clone();
    let mut ids = Vec::new();
    for n in 0..5u32 {
        ids.push(start_child(&addr, n).await.unwrap());
    }
    assert_eq!(ids, (0..5).map(ChildId).collect::<Vec<_>>());
    wait_event(&mut rx, |e| started(e, "conn#4", 0)).await;

    // Crashes are restarted with the same arguments and id.
    reg.borrow()[&1].do_send(Crash);
    reg.borrow()[&3].do_send(Crash);
    wait_event(&mut rx, |e| started(e, "conn#1", 1)).await;
    wait_event(&mut rx, |e| started(e, "conn#3", 1)).await;
    assert_eq!(h.log.count("start:c1"), 2);
    let one = reg.borrow()[&1].clone();
    assert_eq!(one.send(Ping).await.unwrap(), 42);

    // A transient child that exits normally is forgotten.
    reg.borrow()[&2].do_send(Quit);
    let ev = wait_event(&mut rx, |e| exited(e, "conn#2").is_some()).await;
    assert_eq!(exited(&ev, "conn#2"), Some(("normal", false)));

    // terminate_child stops it whatever its restart type.
    addr.send(TerminateChild(ChildId(0)))
        .await
        .unwrap()
        .unwrap();
    let ev = wait_event(&mut rx, |e| exited(e, "conn#0").is_some()).await;
    assert_eq!(exited(&ev, "conn#0"), Some(("shutdown", false)));
    assert!(matches!(
        addr.send(TerminateChild(ChildId(0))).await.unwrap(),
        Err(SupervisorError::NoSuchChild { .. })
    ));

    let counts = addr.send(CountChildren).await.unwrap();
    assert_eq!(
        counts,
        ChildCounts {
            children: 3,
            active: 3,
            restarts: 2
        }
    );
    let snap = addr.send(GetSnapshot).await.unwrap();
    assert_eq!(snap.root.strategy, Some(StrategyKind::SimpleOneForOne));
    let names: Vec<_> = snap.root.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["conn#1", "conn#3", "conn#4"]);
    assert_eq!(snap.root.children[0].restart_count, 1);
    assert_eq!(
        snap.root.children[0].last_exit.as_deref(),
        Some("panic: crash of c1")
    );

    assert_eq!(
        root.shutdown_within(Duration::from_secs(5)).await,
        ExitReason::Shutdown
    );
    assert!(matches!(
        start_child(&addr, 9).await,
        Err(SupervisorError::Unreachable { .. })
    ));
}

#[actix::test]
async fn temporary_dynamic_children_are_never_restarted_and_max_children_holds() {
    let h = Harness::default();
    let reg = Registry::default();
    let root = DynamicSupervisor::new("d", spec(&h, &reg, Restart::Temporary))
        .max_children(2)
        .start_root();
    let addr = root.addr().unwrap().clone();
    start_child(&addr, 0).await.unwrap();
    start_child(&addr, 1).await.unwrap();
    let err = start_child(&addr, 2).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    settle().await;
    reg.borrow()[&0].do_send(Crash);
    settle().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.log.count("start:c0"), 1);
    assert_eq!(addr.send(CountChildren).await.unwrap().children, 1);
    start_child(&addr, 2).await.unwrap();
    root.shutdown_within(Duration::from_secs(5)).await;
}

#[actix::test]
async fn dynamic_intensity_escalates() {
    let h = Harness::default();
    let reg = Registry::default();
    let sup = DynamicSupervisor::new("d", spec(&h, &reg, Restart::Permanent));
    let mut rx = sup.subscribe();
    let mut root = sup.start_root();
    let addr = root.addr().unwrap().clone();
    start_child(&addr, 0).await.unwrap();
    start_child(&addr, 1).await.unwrap();
    wait_event(&mut rx, |e| started(e, "conn#1", 0)).await;
    reg.borrow()[&0].do_send(Crash);
    wait_event(&mut rx, |e| started(e, "conn#0", 1)).await;
    reg.borrow()[&1].do_send(Crash);
    let reason = tokio::time::timeout(Duration::from_secs(5), root.wait())
        .await
        .unwrap();
    assert_eq!(
        reason,
        ExitReason::Error(REACHED_MAX_RESTART_INTENSITY.into())
    );
}

#[actix::test]
async fn dynamic_supervisor_as_a_child() {
    let h = Harness::default();
    let reg = Registry::default();
    let slot: Rc<RefCell<Option<Addr<DynamicSupervisor<u32>>>>> = Rc::default();
    let (h2, reg2, slot2) = (h.clone(), reg.clone(), slot.clone());
    let sup = Supervisor::new("root", Strategy::OneForOne).child(ChildSpec::dynamic_supervisor(
        "connections",
        move || DynamicSupervisor::new("connections", spec(&h2, &reg2, Restart::Transient)),
        move |addr| *slot2.borrow_mut() = Some(addr),
    ));
    let mut rx = sup.subscribe();
    let root = sup.start_root();
    settle().await;
    let dynsup = slot.borrow().clone().unwrap();
    start_child(&dynsup, 7).await.unwrap();
    let ev = wait_event(&mut rx, |e| started(e, "conn#0", 0)).await;
    assert!(
        matches!(ev, SupervisionEvent::ChildStarted { ref supervisor, .. } if supervisor == "root/connections")
    );
    let snap = root.addr().unwrap().send(GetSnapshot).await.unwrap();
    let node = snap.find(&["connections"]).unwrap();
    assert_eq!(node.strategy, Some(StrategyKind::SimpleOneForOne));
    assert_eq!(node.children.len(), 1);
    assert_eq!(
        root.shutdown_within(Duration::from_secs(5)).await,
        ExitReason::Shutdown
    );
    assert_eq!(h.log.with_prefix("stop:"), vec!["c7"]);
}
