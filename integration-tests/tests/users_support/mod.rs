//! Helpers of the user-database suites (issue #5): `xgate auth-db`, xpra 6.5.5's own sqlite
//! tool, a throwaway PostgreSQL cluster, and a fake xpra server that records the hellos it gets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use xgate_integration_tests::harness::fake::Conn;
use xgate_integration_tests::harness::gateway::xgate_bin;
use xgate_integration_tests::harness::{run_with_timeout, wait_until, CmdOutput, TestUser};
use xgate_protocol::{digest, Compressor, PacketWriter, Value};

/// How long a database command may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// `xgate auth-db DATABASE ARGS`.
pub(crate) fn auth_db(database: &str, args: &[&str]) -> CmdOutput {
    run_with_timeout(
        Command::new(xgate_bin())
            .arg("auth-db")
            .arg(database)
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// `xgate auth-db DATABASE ARGS`, which must succeed.
pub(crate) fn auth_db_ok(database: &str, args: &[&str]) -> CmdOutput {
    let out = auth_db(database, args);
    assert!(out.success(), "xgate auth-db {database} {args:?}: {out}");
    out
}

/// xpra 6.5.5's Python, whose `-m xpra.auth.sqlite` is xpra's own database tool.
pub(crate) fn xpra6_python() -> PathBuf {
    let venv = std::env::var_os("XPRA6_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/xgate/xpra-6.5.5"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "xpra 6.5.5 is not installed at {} (run scripts/setup-deps)",
        venv.display()
    );
    py
}

/// `python -m xpra.auth.sqlite FILE ARGS` (xpra 6.5.5's tool), run in `dir`.
pub(crate) fn xpra_tool(dir: &Path, file: &Path, args: &[&str]) -> CmdOutput {
    run_with_timeout(
        Command::new(xpra6_python())
            .current_dir(dir)
            .env("XPRA_SKIP_UI", "1")
            .args(["-m", "xpra.auth.sqlite"])
            .arg(file)
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// xpra 6.5.5's sqlite `Authenticator` itself (what its proxy runs): the passwords of `user`,
/// then, when `password` is one of them, the sessions of the matching row, as Python prints
/// them. `None` when the password does not match. (xpra 6.5.5's `authenticate` command cannot
/// be used: it raises `TypeError: Authenticator.__init__() takes from 1 to 2 positional
/// arguments but 3 were given`.)
pub(crate) fn xpra_authenticator(
    dir: &Path,
    file: &Path,
    user: &str,
    password: &str,
) -> Option<String> {
    let script = "import sys\n\
from xpra.auth.sqlite import Authenticator\n\
a = Authenticator(filename=sys.argv[1], username=sys.argv[2], connection=None)\n\
if sys.argv[3] not in a.get_passwords():\n    sys.exit(3)\n\
a.password_used = sys.argv[3]\n\
print(a.get_sessions())\n";
    let out = run_with_timeout(
        Command::new(xpra6_python())
            .current_dir(dir)
            .arg("-c")
            .arg(script)
            .arg(file)
            .arg(user)
            .arg(password),
        TOOL_TIMEOUT,
    );
    match out.status.and_then(|s| s.code()) {
        Some(0) => Some(out.stdout.trim().to_string()),
        Some(3) => None,
        _ => panic!("xpra's sqlite Authenticator failed: {out}"),
    }
}

/// Makes a database file readable by the gateway after its privilege drop.
pub(crate) fn readable(path: &Path) {
    xgate_integration_tests::harness::set_mode(path, 0o644);
}

/// The test user's uid and gid as strings, for `add ... uid gid ...`.
pub(crate) fn ids() -> (String, String) {
    let u = TestUser::get();
    (u.uid.to_string(), u.gid.to_string())
}

/// `text` without ANSI colour sequences (the gateway's log is coloured).
pub(crate) fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the gateway logged `authenticated` for `user` on `display`.
pub(crate) fn authenticated(log: &str, user: &str, display: &str) -> bool {
    plain(log).lines().any(|l| {
        l.contains("authenticated")
            && l.contains(&format!("user={user}"))
            && l.contains(&format!("display={display}"))
    })
}

/// Waits (bounded) until the gateway's log shows `user` authenticated on `display`.
pub(crate) fn wait_authenticated(log: impl Fn() -> String, user: &str, display: &str) {
    let found = wait_until(Duration::from_secs(60), || {
        authenticated(&log(), user, display).then_some(())
    });
    assert!(
        found.is_some(),
        "the gateway never logged `authenticated user={user} display={display}`:\n{}",
        log()
    );
}

/// What the recording server saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded {
    /// Every hello's caps, in order.
    pub(crate) hellos: Vec<Value>,
    /// Challenge responses that proved the session password.
    pub(crate) proved: usize,
    /// Responses that did not.
    pub(crate) wrong: usize,
}

/// A fake xpra server on the protocol crate that records the hellos it receives: the server side
/// of a target whose `session_options` the gateway must apply. With a password it challenges
/// (`hmac+sha256`) and counts the gateway's answers; then it ends each connection with a
/// `disconnect`.
pub(crate) struct Recorder {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// What it saw.
    log: Arc<Mutex<Recorded>>,
    /// Its runtime; dropping it stops the server.
    _rt: tokio::runtime::Runtime,
}

impl Recorder {
    /// Starts it on a free port of 127.0.0.1.
    pub(crate) fn start(password: Option<&str>) -> Recorder {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the recorder");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the recorder");
        let addr = listener.local_addr().expect("its address");
        let log = Arc::new(Mutex::new(Recorded::default()));
        let log2 = log.clone();
        let password = password.map(str::to_string);
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log2.clone();
                let password = password.clone();
                tokio::spawn(async move {
                    let _ = serve(Conn::new(stream), password, &log).await;
                });
            }
        });
        Recorder { addr, log, _rt: rt }
    }

    /// `tcp://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("tcp://{}/", self.addr)
    }

    /// A copy of what it saw.
    pub(crate) fn recorded(&self) -> Recorded {
        self.log.lock().expect("recorder log").clone()
    }
}

const DIGEST: &str = "hmac+sha256";

async fn serve(
    mut conn: Conn,
    password: Option<String>,
    log: &Mutex<Recorded>,
) -> Result<(), String> {
    let mut salt: Option<Vec<u8>> = None;
    while let Some((p, enc)) = conn.recv().await? {
        if p.type_name() != Some("hello") {
            continue;
        }
        let caps = p.get(1).cloned().unwrap_or(Value::Dict(Vec::new()));
        conn.writer = PacketWriter::new(enc, Compressor::None, 0);
        log.lock().expect("log").hellos.push(caps.clone());
        if let (Some(pw), Some(resp)) = (password.as_deref(), caps.lookup("challenge_response")) {
            let server_salt = salt.take().ok_or("a response without a challenge")?;
            let client_salt = caps
                .lookup("challenge_client_salt")
                .and_then(Value::as_bytes)
                .unwrap_or_default();
            let ok = digest::verify_response(
                DIGEST,
                DIGEST,
                &digest::password_bytes(pw),
                &server_salt,
                client_salt,
                resp.as_bytes().unwrap_or_default(),
            )
            .map_err(|e| e.to_string())?;
            if ok {
                log.lock().expect("log").proved += 1;
            } else {
                log.lock().expect("log").wrong += 1;
            }
        } else if password.is_some() {
            let s: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
            salt = Some(s.clone());
            let auth_caps = if caps
                .lookup("version")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("3."))
            {
                Value::from("")
            } else {
                Value::Dict(Vec::new())
            };
            conn.send(&Value::List(vec![
                Value::from("challenge"),
                Value::Bytes(Bytes::from(s)),
                auth_caps,
                Value::from(DIGEST),
                Value::from(DIGEST),
                Value::from("password"),
            ]))
            .await?;
            continue;
        }
        conn.send(&Value::List(vec![
            Value::from("disconnect"),
            Value::from("server shutdown"),
            Value::from("recorded by the xgate test"),
        ]))
        .await?;
        conn.close().await;
        return Ok(());
    }
    Ok(())
}

/// A throwaway PostgreSQL cluster for one test: `initdb` and `pg_ctl` as the `postgres` account,
/// on a free port of 127.0.0.1, in a temporary directory; trust authentication on 127.0.0.1
/// only. Stopped on drop. Panics loudly when PostgreSQL is not installed.
pub(crate) struct PgCluster {
    /// Data directory, socket directory and log.
    dir: PathBuf,
    /// `/usr/lib/postgresql/N/bin`.
    bin: PathBuf,
    /// Its port.
    pub(crate) port: u16,
}

impl PgCluster {
    /// Starts a cluster with a database `xgate`.
    pub(crate) fn start(name: &str) -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            })
            .expect("PostgreSQL is not installed (scripts/setup-deps installs postgresql)");
        let dir = std::env::temp_dir().join(format!(
            "xgate-pg-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        run_with_timeout(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
            TOOL_TIMEOUT,
        )
        .expect_success();
        let port = xgate_integration_tests::harness::free_port();
        let cluster = PgCluster { dir, bin, port };
        let data = cluster.dir.join("data").display().to_string();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
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
            cluster.dir.display()
        );
        let log = cluster.dir.join("log").display().to_string();
        cluster.pg(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        cluster.pg(
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

    fn pg(&self, program: &str, args: &[&str]) -> CmdOutput {
        let out = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(program))
                .args(args),
            TOOL_TIMEOUT,
        );
        assert!(
            out.success(),
            "{program} {args:?}: {out}\n{}",
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
        out
    }

    /// `postgresql://postgres@127.0.0.1:PORT/xgate`.
    pub(crate) fn uri(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/xgate", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"]),
            TOOL_TIMEOUT,
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
