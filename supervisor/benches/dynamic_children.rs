//! 10,000 dynamic children under one supervisor: start them all, crash 1 % of them, wait until
//! all are restarted; prints starts per second, restarts per second and bytes per child.
//!
//! Run: `cargo bench -p xgate-supervisor --bench dynamic_children` (ROUNDS=n to change the number
//! of rounds, default 5). Each round uses a fresh supervisor.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use xgate_supervisor::{
    ChildSpec, CountChildren, DynamicSupervisor, Intensity, Restart, StartChild,
};

/// Counts live heap bytes, to measure what each child costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { SystemAlloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { SystemAlloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { SystemAlloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CHILDREN: usize = 10_000;
const CRASHES: usize = CHILDREN / 100;

/// Resident set size in bytes, from /proc/self/status.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A minimal worker: counts its starts, panics on `Crash`.
struct Worker {
    started: Rc<Cell<usize>>,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.started.set(self.started.get() + 1);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Crash> for Worker {
    type Result = ();
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("benchmark crash");
    }
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
    }
}

struct Round {
    start: Duration,
    restart: Duration,
    heap_per_child: f64,
    rss_per_child: f64,
    stop: Duration,
}

async fn round() -> Round {
    let started = Rc::new(Cell::new(0usize));
    let addrs: Rc<RefCell<Vec<Option<Addr<Worker>>>>> = Rc::new(RefCell::new(vec![None; CHILDREN]));
    let (s, a) = (started.clone(), addrs.clone());
    let spec = ChildSpec::actor_with_args("worker", move |n: &usize, ctx, _exit| {
        a.borrow_mut()[*n] = Some(ctx.address());
        Worker { started: s.clone() }
    })
    .restart(Restart::Permanent);
    let root = DynamicSupervisor::new("bench", spec)
        .intensity(Intensity::new(1000, Duration::from_secs(1)))
        .start_root();
    let sup = root.addr().expect("supervisor started").clone();
    tokio::task::yield_now().await;

    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss());
    let t0 = Instant::now();
    let replies = futures::future::join_all((0..CHILDREN).map(|n| sup.send(StartChild(n)))).await;
    assert!(replies.iter().all(|r| matches!(r, Ok(Ok(_)))));
    drop(replies);
    wait_until("all started", || started.get() == CHILDREN).await;
    let start = t0.elapsed();
    let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss());

    let t1 = Instant::now();
    for n in (0..CHILDREN).step_by(CHILDREN / CRASHES) {
        if let Some(addr) = &addrs.borrow()[n] {
            addr.do_send(Crash);
        }
    }
    wait_until("all restarted", || started.get() == CHILDREN + CRASHES).await;
    let restart = t1.elapsed();
    let counts = sup.send(CountChildren).await.expect("supervisor alive");
    assert_eq!((counts.active, counts.restarts), (CHILDREN, CRASHES as u64));

    // Drop our addresses so that the stop measures the supervisor, not our references.
    addrs.borrow_mut().clear();
    let t2 = Instant::now();
    root.shutdown_within(Duration::from_secs(30)).await;
    let stop = t2.elapsed();

    Round {
        start,
        restart,
        heap_per_child: (heap1 - heap0) as f64 / CHILDREN as f64,
        rss_per_child: rss1.saturating_sub(rss0) as f64 / CHILDREN as f64,
        stop,
    }
}

fn main() {
    // Bench harness flags (`--bench`) are ignored.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // The 100 crashes per round are expected; keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    let system = System::new();
    let results = system.block_on(async {
        let mut results = Vec::new();
        for _ in 0..rounds {
            results.push(round().await);
        }
        results
    });
    println!(
        "dynamic supervisor, {CHILDREN} children, {CRASHES} crashes per round, {rounds} rounds"
    );
    for (i, r) in results.iter().enumerate() {
        println!(
            "round {i}: start all {:>8.2} ms ({:>9.0} starts/s), restart {CRASHES} {:>7.2} ms ({:>9.0} restarts/s), heap {:>6.0} B/child, RSS {:>6.0} B/child, stop all {:>7.2} ms",
            r.start.as_secs_f64() * 1e3,
            CHILDREN as f64 / r.start.as_secs_f64(),
            r.restart.as_secs_f64() * 1e3,
            CRASHES as f64 / r.restart.as_secs_f64(),
            r.heap_per_child,
            r.rss_per_child,
            r.stop.as_secs_f64() * 1e3,
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median: {:.0} starts/s, {:.0} restarts/s, {:.0} heap B/child, {:.0} RSS B/child, stop all {:.2} ms",
        median(results.iter().map(|r| CHILDREN as f64 / r.start.as_secs_f64()).collect()),
        median(results.iter().map(|r| CRASHES as f64 / r.restart.as_secs_f64()).collect()),
        median(results.iter().map(|r| r.heap_per_child).collect()),
        median(results.iter().map(|r| r.rss_per_child).collect()),
        median(results.iter().map(|r| r.stop.as_secs_f64() * 1e3).collect()),
    );
}
