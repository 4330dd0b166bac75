//! Issue #5 benchmark: authenticated handshakes per second (hmac+sha256) through the real
//! gateway, against a sqlite file and a PostgreSQL database holding 100,000 users.
//!
//! A measurement, not a test (it is not run by `cargo test`). The gateway binary of the same
//! profile is used, so build it first:
//! `cargo build --release --bin xgate && cargo bench -p xgate-integration-tests --bench users_bench`
//!
//! Each handshake: connect, hello (`request=id`, `challenge=True`, digest `hmac+sha256`), the
//! gateway's challenge, the response, the gateway's `SELECT password` and sessions queries, its
//! hello reply; the client then closes. Clients run in this process (sharing the machine's cores
//! with the gateway) with a fixed concurrency, for a fixed time, each as a random user.

#[path = "../tests/users_support/mod.rs"]
mod users_support;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, RngCore};
use tokio::net::TcpStream;
use users_support::{auth_db_ok, ids, readable};
use xgate_actors::auth::sql::pg_cluster::PgCluster;
use xgate_integration_tests::harness::fake::Conn;
use xgate_integration_tests::harness::{run_with_timeout, Gateway, TestDir};
use xgate_protocol::{digest, Value};

/// Users in the database.
const USERS: u32 = 100_000;
/// Handshakes in flight at once.
const CONCURRENCY: usize = 16;
/// How long each measurement runs.
const RUN: Duration = Duration::from_secs(10);
/// The digest measured.
const DIGEST: &str = "hmac+sha256";

/// SQL that fills xpra's table with `user1..userN` (password `pwK`), portable to sqlite and
/// PostgreSQL.
fn fill_sql(uid: &str, gid: &str) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {USERS}) \
         INSERT INTO users (username, password, uid, gid, displays, env_options, session_options) \
         SELECT 'user' || x, 'pw' || x, '{uid}', '{gid}', ':100', '', '' FROM c;"
    )
}

/// One handshake as user `n`; true when the gateway answered with its hello.
async fn handshake(addr: std::net::SocketAddr, n: u32) -> Result<bool, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut conn = Conn::new(stream);
    let mut caps: Vec<(Value, Value)> = vec![
        ("version".into(), "6.5".into()),
        ("username".into(), format!("user{n}").into()),
        ("request".into(), "id".into()),
        ("challenge".into(), true.into()),
        ("digest".into(), Value::list([DIGEST])),
        ("salt-digest".into(), Value::list([DIGEST])),
    ];
    conn.send(&Value::list([
        Value::from("hello"),
        Value::Dict(caps.clone()),
    ]))
    .await?;
    let (challenge, _) = conn.recv().await?.ok_or("closed before the challenge")?;
    if challenge.type_name() != Some("challenge") {
        return Err(format!("expected a challenge: {:?}", challenge.type_name()));
    }
    let server_salt = challenge
        .get(1)
        .and_then(Value::as_bytes)
        .ok_or("no salt")?
        .to_vec();
    let mut client_salt = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut client_salt);
    let response = digest::client_response(
        DIGEST,
        DIGEST,
        &digest::password_bytes(&format!("pw{n}")),
        &server_salt,
        &client_salt,
    )
    .map_err(|e| e.to_string())?;
    caps.push((
        "challenge_response".into(),
        String::from_utf8(response)
            .map_err(|e| e.to_string())?
            .into(),
    ));
    caps.push((
        "challenge_client_salt".into(),
        Value::Bytes(Bytes::from(client_salt)),
    ));
    conn.send(&Value::list([Value::from("hello"), Value::Dict(caps)]))
        .await?;
    let (reply, _) = conn.recv().await?.ok_or("closed before the reply")?;
    Ok(reply.type_name() == Some("hello"))
}

/// Runs the load against `gw` and returns (handshakes per second, failures, mean latency).
fn measure(gw: &Gateway) -> (f64, u64, Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = gw.addr();
    // Warm up (pools, page cache).
    for n in 1..=20 {
        let ok = rt.block_on(handshake(addr, n));
        assert_eq!(
            ok,
            Ok(true),
            "warm-up handshake as user{n}\n{}",
            gw.process.log_tail()
        );
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (ok, failed, latency_us) = (ok.clone(), failed.clone(), latency_us.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < RUN {
                    let n = rand::thread_rng().gen_range(1..=USERS);
                    let t0 = Instant::now();
                    match handshake(addr, n).await {
                        Ok(true) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            latency_us
                                .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    let mean = Duration::from_micros(latency_us.load(Ordering::Relaxed) / n.max(1));
    (n as f64 / secs, failed.load(Ordering::Relaxed), mean)
}

fn report(what: &str, (rate, failed, mean): (f64, u64, Duration)) {
    println!(
        "BENCH {what}: {rate:.0} handshakes/s ({CONCURRENCY} concurrent, {USERS} users, {DIGEST}), mean {:.2} ms, {failed} failed",
        mean.as_secs_f64() * 1e3
    );
    assert_eq!(failed, 0, "{what}: handshakes failed");
}

/// The gateway with its failure limits off (every handshake here comes from 127.0.0.1).
/// Logs only warnings: a debug line per handshake would be measured too.
fn gateway(dir: &TestDir, auth: String) -> Gateway {
    std::env::set_var("XGATE_LOG", "warn");
    Gateway::start(dir.path(), &[auth, "--max-auth-failures=0".into()])
}

fn bench_handshakes_sqlite_100k_users() {
    let (uid, gid) = ids();
    let dir = TestDir::new("users-bench-sqlite");
    // The baseline: the same handshake with no lookup at all (`allow` takes any response).
    let gw = gateway(&dir, "--tcp-auth=allow".into());
    report("baseline, allow (no database)", measure(&gw));
    drop(gw);
    // xgate's schema (xpra's table plus an index on username) and xpra's own (no index).
    for (name, indexed) in [("xgate-auth-db", true), ("xpra-schema", false)] {
        let db = dir.join(&format!("{name}.sdb"));
        let dbs = db.display().to_string();
        let sql = if indexed {
            auth_db_ok(&dbs, &["create"]);
            fill_sql(&uid, &gid)
        } else {
            format!(
                "CREATE TABLE users (username VARCHAR(255) NOT NULL, password VARCHAR(255), uid VARCHAR(63), gid VARCHAR(63), displays VARCHAR(8191), env_options VARCHAR(8191), session_options VARCHAR(8191)); {}",
                fill_sql(&uid, &gid)
            )
        };
        run_with_timeout(
            Command::new("sqlite3").arg(&db).arg(sql),
            Duration::from_secs(120),
        )
        .expect_success();
        readable(&db);
        let gw = gateway(&dir, format!("--tcp-auth=sqlite:filename={dbs}"));
        report(&format!("sqlite ({name})"), measure(&gw));
        drop(gw);
    }
}

fn bench_handshakes_postgres_100k_users() {
    let (uid, gid) = ids();
    let dir = TestDir::new("users-bench-pg");
    let pg = PgCluster::start("bench");
    let uri = pg.uri();
    auth_db_ok(&uri, &["create"]);
    let psql = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin/psql"))
                .max()
        })
        .expect("psql");
    run_with_timeout(
        Command::new(psql)
            .arg(&uri)
            .args(["-v", "ON_ERROR_STOP=1", "-c"])
            .arg(fill_sql(&uid, &gid)),
        Duration::from_secs(120),
    )
    .expect_success();
    let gw = gateway(&dir, format!("--tcp-auth=sql:uri={uri}"));
    report("PostgreSQL", measure(&gw));
}

/// Runs both measurements (sqlite, then PostgreSQL) and prints their figures.
fn main() {
    bench_handshakes_sqlite_100k_users();
    bench_handshakes_postgres_100k_users();
}
