//! Starting and driving real processes for the tests: xgate (and its `xgate ctl`), xpra 3.1.3
//! and 6.5.5, Xvfb, and fake xpra peers written on the protocol crate.
//!
//! Every process a test starts is owned by a guard that kills it on drop (also when the test
//! panics), every wait is bounded, and every resource (TCP port, X display, temporary directory)
//! is private to the test that allocated it, so the tests can run in parallel. A missing tool is
//! a loud failure, never a skip.

pub mod alloc;
pub mod certs;
pub mod ctl;
pub mod fake;
pub mod gateway;
pub mod proc;
pub mod ssh;
pub mod user;
pub mod xpra;

pub use alloc::{free_port, DisplayLock};

/// A table of tests that run one scenario with other arguments (each xpra version, each
/// scheme): `test_table! { scenario: test_name(ARGS); other_name(ARGS); }` makes one `#[test]`
/// per row, named by it, that calls `scenario(ARGS)`.
#[macro_export]
macro_rules! test_table {
    ($run:path: $($name:ident($($arg:expr),* $(,)?);)+) => {
        $(
            #[test]
            fn $name() {
                $run($($arg),*);
            }
        )+
    };
}
pub use gateway::Gateway;
pub use proc::{run_with_timeout, wait_until, CmdOutput, Guarded};
pub use user::TestUser;
pub use xpra::{Attach, Session, Version, Xvfb};

use std::path::PathBuf;

/// A private directory for one test's files (logs, user files, screenshots), readable by the
/// dropped gateway and by the test user. Removed on drop unless the test panicked, so that the
/// logs of a failure can be read afterwards.
#[derive(Debug)]
pub struct TestDir {
    /// The directory; `None` once handed over to [`TestDir::keep`].
    dir: Option<tempfile::TempDir>,
    /// Its path, kept apart so it survives `keep`.
    path: PathBuf,
}

impl TestDir {
    /// A new directory named after `name`, mode 1777 so that the test user can read what the
    /// test puts in it and write its own files (pid files, screenshots) there.
    pub fn new(name: &str) -> TestDir {
        let base = std::env::temp_dir().join("xgate-integ");
        std::fs::create_dir_all(&base).expect("create the tests' temp base directory");
        set_mode(&base, 0o1777);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&base)
            .expect("create a test directory");
        set_mode(dir.path(), 0o1777);
        let path = dir.path().to_path_buf();
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a file readable by everyone (0644).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, contents).expect("write a test file");
        set_mode(&p, 0o644);
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.dir.take() {
                let kept = d.keep();
                eprintln!("test files kept in {}", kept.display());
            }
        }
    }
}

/// Sets a path's permission bits.
pub fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// The last `max` bytes of a file, for failure messages.
pub fn tail(path: &std::path::Path, max: usize) -> String {
    let data = std::fs::read(path).unwrap_or_default();
    let start = data.len().saturating_sub(max);
    format!(
        "---- {} (last {} bytes) ----\n{}",
        path.display(),
        data.len() - start,
        String::from_utf8_lossy(&data[start..])
    )
}

/// A log without its ANSI colour sequences (tracing colours its fields), for substring checks.
pub fn strip_ansi(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
