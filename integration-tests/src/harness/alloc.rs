//! Private TCP ports and X display numbers, so that tests can run side by side (also beside
//! other test binaries and sessions on the same machine).

use std::net::TcpListener;
use std::path::PathBuf;

use super::proc::pid_alive;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// An X display number reserved for this test: a lock file under /tmp names the owning
/// process, and the display has no X server lock or socket. Released on drop.
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

impl DisplayLock {
    /// Reserves a free display number.
    pub fn new() -> DisplayLock {
        let start = rand::random::<u32>() % COUNT;
        for i in 0..COUNT {
            let n = FIRST + (start + i) % COUNT;
            if std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let path = PathBuf::from(format!("/tmp/xgate-integ-display-{n}.lock"));
            for _ in 0..2 {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(mut f) => {
                        use std::io::Write;
                        let _ = write!(f, "{}", std::process::id());
                        return DisplayLock { number: n, path };
                    }
                    Err(_) => {
                        // Stale: its owner is gone.
                        let owner = std::fs::read_to_string(&path)
                            .ok()
                            .and_then(|s| s.trim().parse::<u32>().ok());
                        if owner.is_some_and(pid_alive) {
                            break;
                        }
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        panic!(
            "no free X display number in :{FIRST}-:{}",
            FIRST + COUNT - 1
        )
    }
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
