//! Private TCP ports and X display numbers, so that tests can run side by side (also beside
//! other test binaries and sessions on the same machine).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::proc::pid_alive;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// An X display number reserved for this test: a lock file under /tmp names the owning
/// process, and the display has no X server lock or socket. Released on drop.
///
/// A number is handed out at most once per process: a session that just stopped leaves
/// state behind for a moment (its Xvfb exiting, xpra's per-display directory, a log that a
/// later session's failure report would show instead of its own), so a later test in the
/// same binary takes a fresh number rather than racing that clean-up.
#[derive(Debug)]
pub struct DisplayLock {
    /// The display number.
    pub number: u32,
    /// Our lock file.
    path: PathBuf,
}

/// Displays the tests use; away from the usual :0-:100 and from xgate's own examples.
const FIRST: u32 = 400;
const COUNT: u32 = 500;

/// The numbers this process has already handed out.
static HANDED_OUT: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

impl DisplayLock {
    /// Reserves a free display number.
    pub fn new() -> DisplayLock {
        let start = rand::random::<u32>() % COUNT;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..COUNT {
            let n = FIRST + (start + i) % COUNT;
            if handed_out.contains(&n)
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || recently_used(n)
            {
                continue;
            }
            let path = PathBuf::from(format!("/tmp/xgate-integ-display-{n}.lock"));
            if take_lock_file(&path) {
                handed_out.insert(n);
                return DisplayLock { number: n, path };
            }
        }
        panic!(
            "no free X display number in :{FIRST}-:{}",
            FIRST + COUNT - 1
        )
    }
}

/// Whether an xpra session on display `n` wrote its log in the last two minutes (an earlier
/// test binary's, maybe still cleaning up): such a number is left alone.
fn recently_used(n: u32) -> bool {
    let dir = super::TestUser::get().runtime_dir.join("xpra");
    [
        dir.join(format!(":{n}.log")),
        dir.join(n.to_string()).join(format!(":{n}.log")),
    ]
    .iter()
    .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok())
    .any(|t| t.elapsed().map_or(true, |age| age < RECENT))
}

/// How long a display number rests after a session used it.
const RECENT: std::time::Duration = std::time::Duration::from_secs(120);

/// Creates `path` holding our pid, atomically: the pid is written to a private file first and
/// hard-linked into place, so another process never reads a half-written (empty) lock and
/// takes it for stale. A lock whose owner is gone is removed and taken.
fn take_lock_file(path: &Path) -> bool {
    let pid = std::process::id();
    let tmp = path.with_extension(format!("{pid}.tmp"));
    if std::fs::write(&tmp, pid.to_string()).is_err() {
        return false;
    }
    let mut taken = false;
    for _ in 0..2 {
        if std::fs::hard_link(&tmp, path).is_ok() {
            taken = true;
            break;
        }
        let owner = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if owner.is_some_and(pid_alive) {
            break;
        }
        // Stale: its owner is gone.
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(&tmp);
    taken
}

impl Default for DisplayLock {
    fn default() -> Self {
        DisplayLock::new()
    }
}

impl Drop for DisplayLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
