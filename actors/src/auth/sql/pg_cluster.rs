//! A throwaway PostgreSQL cluster for tests of the `sql` backend: `initdb` and `pg_ctl` (as the
//! `postgres` account when run as root) on a free port, everything in a temporary directory,
//! stopped on drop. Shared by this crate's unit tests and the integration suites (feature
//! `test-support`), so that both run PostgreSQL the same way.

use std::path::PathBuf;
use std::process::Command;

/// A running cluster with an empty database `xgate`.
pub struct PgCluster {
    /// Holds the data directory, the socket directory and the log.
    dir: tempfile::TempDir,
    /// PostgreSQL's programs (`/usr/lib/postgresql/N/bin`).
    bin: PathBuf,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
}

impl PgCluster {
    /// Starts a cluster (`name` goes into its directory's name, for the logs of a failure);
    /// panics with the reason when PostgreSQL is missing or fails to start.
    pub fn start(name: &str) -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            })
            .expect("PostgreSQL is not installed (scripts/setup-deps installs postgresql)");
        let dir = tempfile::Builder::new()
            .prefix(&format!("xgate-pg-{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        if crate::users::own_uid() == 0 {
            let pg = crate::users::by_name("postgres").expect("the postgres account");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the cluster directory");
            for p in [dir.path(), data.as_path()] {
                std::os::unix::fs::chown(p, Some(pg.uid), Some(pg.gid))
                    .expect("chown the cluster directory");
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let cluster = PgCluster { dir, bin, port };
        let d = data.display().to_string();
        cluster.run(
            "initdb",
            &[
                "-D",
                &d,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("log").display().to_string();
        cluster.run(
            "pg_ctl",
            &["-D", &d, "-o", &opts, "-l", &log, "-w", "start"],
        );
        cluster.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "xgate",
            ],
        );
        cluster
    }

    /// The URI of its `xgate` database.
    pub fn uri(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/xgate", self.port)
    }

    /// `program` of this PostgreSQL, run as the `postgres` account when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let tool = self.bin.join(program);
        if crate::users::own_uid() == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        }
    }

    /// Runs `program ARGS`; panics with its output and the server's log when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
