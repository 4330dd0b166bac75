//! The ordinary account the sessions run as, and the gateway drops to (xpra refuses to serve a
//! proxy as root; xgate refuses to relay as root).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::proc::run_with_timeout;

/// The test account's name.
pub const TEST_USER: &str = "xgtest";

/// The test account, created on first use.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its home directory.
    pub home: PathBuf,
    /// `/run/user/UID`, owned by it, mode 0700.
    pub runtime_dir: PathBuf,
}

fn id(flag: &str) -> Option<u32> {
    let out = run_with_timeout(
        Command::new("id").arg(flag).arg(TEST_USER),
        Duration::from_secs(10),
    );
    out.success()
        .then(|| out.stdout.trim().parse().ok())
        .flatten()
}

fn own_uid() -> u32 {
    let out = run_with_timeout(Command::new("id").arg("-u"), Duration::from_secs(10));
    out.stdout.trim().parse().expect("parse `id -u`")
}

impl TestUser {
    /// The test account: created with `useradd -m` if missing, its runtime directory made.
    /// Panics (loudly) when the tests do not run as root, which they need to create it and
    /// to start the gateway that drops privileges.
    pub fn get() -> &'static TestUser {
        static USER: OnceLock<TestUser> = OnceLock::new();
        USER.get_or_init(|| {
            assert_eq!(
                own_uid(),
                0,
                "the integration tests must run as root (as in CI): they create the account \
                 '{TEST_USER}', run xpra sessions as it and start xgate with --uid/--gid"
            );
            if id("-u").is_none() {
                let out = run_with_timeout(
                    Command::new("useradd").args(["-m", "-s", "/bin/sh", TEST_USER]),
                    Duration::from_secs(30),
                );
                // Another test binary may have created it meanwhile.
                assert!(
                    out.success() || id("-u").is_some(),
                    "cannot create the test user: {out}"
                );
            }
            let uid = id("-u").expect("uid of the test user");
            let gid = id("-g").expect("gid of the test user");
            let home = PathBuf::from(format!("/home/{TEST_USER}"));
            let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
            std::fs::create_dir_all(&runtime_dir).expect("create /run/user/UID");
            run_with_timeout(
                Command::new("chown")
                    .arg(format!("{uid}:{gid}"))
                    .arg(&runtime_dir)
                    .arg(&home),
                Duration::from_secs(10),
            )
            .expect_success();
            super::set_mode(&runtime_dir, 0o700);
            TestUser {
                name: TEST_USER.to_string(),
                uid,
                gid,
                home,
                runtime_dir,
            }
        })
    }

    /// A command that runs `program` as this user, with its home and runtime directory.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg(program);
        c
    }
}
