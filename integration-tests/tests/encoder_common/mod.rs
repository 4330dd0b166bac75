//! Helpers shared by the encoder tests: an Xvfb, and FFmpeg decoding the way xpra's clients do.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb killed on drop.
pub struct Xvfb {
    child: Child,
    /// Its display name (`:N`).
    pub display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvfb {
    /// Starts `Xvfb :N -screen 0 WxHx24` on a free display number; panics (loudly) without Xvfb.
    pub fn start(width: u32, height: u32) -> Xvfb {
        assert!(
            Path::new("/usr/bin/Xvfb").exists(),
            "/usr/bin/Xvfb is missing: run scripts/setup-deps"
        );
        let base = 260 + (std::process::id() % 200);
        for n in base..base + 100 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new("/usr/bin/Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    &format!("{width}x{height}x24"),
                    "-nolisten",
                    "tcp",
                    "-br",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting Xvfb");
            let x = Xvfb { child, display };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if x11rb::connect(Some(&x.display)).is_ok() {
                    return x;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("Xvfb {} did not start", x.display);
        }
        panic!("no free X display");
    }
}

/// The RGB pixel at (x, y) of a packed RGB24 picture of width `w`.
pub fn pixel(rgb: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let i = (y as usize * w as usize + x as usize) * 3;
    [rgb[i], rgb[i + 1], rgb[i + 2]]
}

/// Whether two colours differ by at most `tol` per channel.
pub fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}
