//! Test actors and helpers shared by the supervisor tests.
#![allow(dead_code, unreachable_pub)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::broadcast;
use xgate_supervisor::{ChildSpec, ExitHandle, RootHandle, SupervisionEvent, Supervisor};

/// An ordered record of what the test actors did ("start:a", "stop:a", ...).
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: String) {
        self.0.borrow_mut().push(entry);
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    pub fn count(&self, entry: &str) -> usize {
        self.0.borrow().iter().filter(|e| *e == entry).count()
    }
    /// Entries starting with `prefix`, in order, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| e.strip_prefix(prefix).map(str::to_owned))
            .collect()
    }
}

/// What a probe does, shared by all its incarnations.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Panic in `started` this many more times.
    pub panic_in_started: Rc<Cell<u32>>,
    /// Panic in `stopping` this many more times.
    pub panic_in_stopping: Rc<Cell<u32>>,
    /// Refuse to stop (`stopping` returns `Running::Continue`).
    pub stubborn: bool,
}

/// The latest address of each probe, by name.
#[derive(Clone, Default)]
pub struct Addrs(Rc<RefCell<HashMap<String, Addr<Probe>>>>);

impl Addrs {
    pub fn get(&self, name: &str) -> Addr<Probe> {
        self.0
            .borrow()
            .get(name)
            .cloned()
            .expect("probe registered")
    }
}

pub struct Probe {
    name: String,
    log: Log,
    behaviour: Behaviour,
    exit: ExitHandle,
}

impl Probe {
    pub fn new(name: &str, log: Log, behaviour: Behaviour, exit: ExitHandle) -> Self {
        Self {
            name: name.to_owned(),
            log,
            behaviour,
            exit,
        }
    }
}

impl Actor for Probe {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.log.push(format!("start:{}", self.name));
        let left = self.behaviour.panic_in_started.get();
        if left > 0 {
            self.behaviour.panic_in_started.set(left - 1);
            panic!("boom in started of {}", self.name);
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if self.behaviour.stubborn {
            self.log.push(format!("refuse:{}", self.name));
            return Running::Continue;
        }
        let left = self.behaviour.panic_in_stopping.get();
        if left > 0 {
            self.behaviour.panic_in_stopping.set(left - 1);
            panic!("boom in stopping of {}", self.name);
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.push(format!("stop:{}", self.name));
    }
}

/// Panics in the handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// Stops normally.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Quit;

/// Stops with an error reason.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fail(pub String);

/// Answers 42.
#[derive(Message)]
#[rtype(result = "u32")]
pub struct Ping;

impl Handler<Crash> for Probe {
    type Result = ();
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("crash of {}", self.name);
    }
}

impl Handler<Quit> for Probe {
    type Result = ();
    fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Fail> for Probe {
    type Result = ();
    fn handle(&mut self, msg: Fail, ctx: &mut Context<Self>) {
        self.exit.fail(msg.0);
        ctx.stop();
    }
}

impl Handler<Ping> for Probe {
    type Result = u32;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u32 {
        42
    }
}

/// Everything a test shares with its probes.
#[derive(Clone, Default)]
pub struct Harness {
    pub log: Log,
    pub addrs: Addrs,
}

impl Harness {
    pub fn probe(&self, name: &str) -> ChildSpec {
        self.probe_with(name, Behaviour::default())
    }

    pub fn probe_with(&self, name: &str, behaviour: Behaviour) -> ChildSpec {
        let (log, addrs, owned) = (self.log.clone(), self.addrs.clone(), name.to_owned());
        ChildSpec::actor_with(name, move |ctx: &mut Context<Probe>, exit| {
            addrs.0.borrow_mut().insert(owned.clone(), ctx.address());
            Probe {
                name: owned.clone(),
                log: log.clone(),
                behaviour: behaviour.clone(),
                exit,
            }
        })
    }

    pub fn starts(&self, name: &str) -> usize {
        self.log.count(&format!("start:{name}"))
    }

    /// Sends `msg` to the probe's current incarnation without waiting (it may not answer).
    pub fn tell<M>(&self, name: &str, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        Probe: Handler<M>,
    {
        self.addrs.get(name).do_send(msg);
    }
}

/// Waits up to 5 s for an event matching `pred`.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<SupervisionEvent>,
    pred: impl Fn(&SupervisionEvent) -> bool,
) -> SupervisionEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("event bus closed"),
            }
        }
    })
    .await
    .expect("expected event did not come within 5 s")
}

/// Starts `sup` as the root of a tree, subscribed to its events, and waits until its child
/// `last` (the last to start) has started: the whole tree is up.
pub async fn start_tree(
    sup: Supervisor,
    last: &str,
) -> (
    broadcast::Receiver<SupervisionEvent>,
    RootHandle<Supervisor>,
) {
    let mut rx = sup.subscribe();
    let root = sup.start_root();
    wait_event(&mut rx, |e| started(e, last, 0)).await;
    (rx, root)
}

/// Waits for the next exit of `child` and checks its reason and whether it will be restarted.
pub async fn assert_exit(
    rx: &mut broadcast::Receiver<SupervisionEvent>,
    child: &str,
    reason: &str,
    will_restart: bool,
) {
    let ev = wait_event(rx, |e| exited(e, child).is_some()).await;
    assert_eq!(
        exited(&ev, child),
        Some((reason, will_restart)),
        "exit of {child}"
    );
}

/// Whether `ev` is the start of `child` with this restart count.
pub fn started(ev: &SupervisionEvent, child: &str, count: u32) -> bool {
    matches!(ev, SupervisionEvent::ChildStarted { child: c, restart_count, .. }
        if c == child && *restart_count == count)
}

/// The exit of `child`, if `ev` is one: (reason, will_restart).
pub fn exited<'a>(ev: &'a SupervisionEvent, child: &str) -> Option<(&'a str, bool)> {
    match ev {
        SupervisionEvent::ChildExited {
            child: c,
            reason,
            will_restart,
            ..
        } if c == child => Some((reason.as_str(), *will_restart)),
        _ => None,
    }
}

/// Lets already-queued work run (a few scheduler turns).
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
