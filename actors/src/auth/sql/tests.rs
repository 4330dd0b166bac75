//! The database layer against real sqlite files and a real PostgreSQL server (started by the test
//! itself as the `postgres` user, on a free port in a temporary directory).

use super::pg_cluster::PgCluster;
use super::*;
use std::process::Command;

fn row(name: &str, pw: &str, displays: &str, session_options: &str) -> UserRow {
    UserRow {
        username: name.into(),
        password: Some(pw.into()),
        uid: Some("1000".into()),
        gid: Some("1000".into()),
        displays: Some(displays.into()),
        env_options: Some("A=1;B=2".into()),
        session_options: Some(session_options.into()),
    }
}

/// What every backend must do the same way, sqlite or PostgreSQL.
fn exercise(db: &UserDb, reader: &UserDb) {
    db.create().expect("create");
    assert!(
        db.create().is_err(),
        "a second create fails, as xpra's tool"
    );
    db.add(&row("alice", "secret", ":100", "compression_level=0"))
        .expect("add");
    db.add(&row("alice", "other", "tcp://127.0.0.1:1/", ""))
        .expect("add");
    db.add(&row("bob", "pw", ":101,:102", "")).expect("add");
    let mut pws = reader.passwords("alice").expect("passwords");
    pws.sort();
    assert_eq!(pws, vec!["other", "secret"]);
    assert!(reader.passwords("nobody-here").expect("query").is_empty());
    let r = reader
        .session_row("alice", "other")
        .expect("query")
        .expect("row");
    assert_eq!(r.displays.as_deref(), Some("tcp://127.0.0.1:1/"));
    let r = reader.authenticate("alice", "secret").expect("query");
    assert_eq!(
        r.and_then(|r| r.session_options).as_deref(),
        Some("compression_level=0")
    );
    assert_eq!(reader.authenticate("alice", "wrong").expect("query"), None);
    assert_eq!(
        reader
            .first_row("bob")
            .expect("query")
            .and_then(|r| r.displays),
        Some(":101,:102".into())
    );
    assert_eq!(reader.list().expect("list").len(), 3);
    assert_eq!(db.remove("alice", Some("other")).expect("remove"), 1);
    assert_eq!(db.remove("alice", None).expect("remove"), 1);
    assert_eq!(reader.list().expect("list").len(), 1);
}

#[test]
fn sqlite_create_add_query_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth db?#%.sdb");
    let db = UserDb::open(DbLocation::Sqlite(path.clone()), Access::Create);
    let reader = UserDb::open(DbLocation::Sqlite(path.clone()), Access::Read);
    exercise(&db, &reader);
    // The file holds xpra's table exactly: xpra's tool reads these columns by name.
    let out = Command::new("sqlite3")
        .arg(&path)
        .arg(".schema users")
        .output()
        .expect("sqlite3 (Debian package sqlite3) must be installed");
    let schema = String::from_utf8_lossy(&out.stdout);
    assert!(
        schema.contains("CREATE TABLE users (username VARCHAR(255) NOT NULL, password VARCHAR(255), uid VARCHAR(63), gid VARCHAR(63), displays VARCHAR(8191), env_options VARCHAR(8191), session_options VARCHAR(8191))"),
        "{schema}"
    );
}

#[test]
fn sqlite_reader_never_creates_or_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.sdb");
    let reader = UserDb::open(DbLocation::Sqlite(path.clone()), Access::Read);
    assert!(matches!(reader.passwords("a"), Err(DbError::Missing(_))));
    assert!(!path.exists());
    let writer = UserDb::open(DbLocation::Sqlite(path.clone()), Access::Write);
    assert!(matches!(
        writer.add(&UserRow::default()),
        Err(DbError::Missing(_))
    ));
    UserDb::open(DbLocation::Sqlite(path.clone()), Access::Create)
        .create()
        .expect("create");
    let reader = UserDb::open(DbLocation::Sqlite(path), Access::Read);
    assert!(reader.add(&row("a", "b", "", "")).is_err(), "read-only");
}

#[test]
fn sqlite_reads_a_database_made_like_xpra_does() {
    // xpra's tool: its CREATE TABLE, no migration table, no index, ints for uid/gid, NULLs.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("xpra-auth.sdb");
    let mut conn =
        SqliteConnection::establish(&path.display().to_string()).expect("sqlite connection");
    conn.batch_execute(
        "CREATE TABLE users (username VARCHAR(255) NOT NULL, password VARCHAR(255), uid VARCHAR(63), gid VARCHAR(63), displays VARCHAR(8191), env_options VARCHAR(8191), session_options VARCHAR(8191));
         INSERT INTO users VALUES('alice', 'secret', 1000, 1000, ':100', '', 'compression=0');
         INSERT INTO users(username, password) VALUES('bob', 'pw');
         INSERT INTO users(username) VALUES('carol');",
    )
    .expect("xpra's schema");
    drop(conn);
    let db = UserDb::open(DbLocation::Sqlite(path), Access::Read);
    let r = db.authenticate("alice", "secret").expect("q").expect("row");
    assert_eq!(r.uid.as_deref(), Some("1000"));
    let r = db.authenticate("bob", "pw").expect("q").expect("row");
    assert_eq!(r.displays, None);
    assert!(db.passwords("carol").expect("q").is_empty());
}

#[test]
fn locations_parse_and_hide_passwords() {
    assert_eq!(
        DbLocation::parse("./a.sdb").ok(),
        Some(DbLocation::Sqlite("./a.sdb".into()))
    );
    assert_eq!(
        DbLocation::parse("sqlite:////var/lib/a.sdb").ok(),
        Some(DbLocation::Sqlite("/var/lib/a.sdb".into()))
    );
    assert_eq!(
        DbLocation::parse("sqlite:///rel.sdb").ok(),
        Some(DbLocation::Sqlite("rel.sdb".into()))
    );
    assert!(DbLocation::parse("sqlite://").is_err());
    assert!(DbLocation::parse("mysql://u@h/db").is_err());
    assert!(DbLocation::parse(" ").is_err());
    let pg = DbLocation::parse("postgresql://xgate:s3cret@db.example:5432/auth?sslmode=require")
        .expect("pg");
    assert_eq!(
        pg.to_string(),
        "postgresql://xgate:***@db.example:5432/auth?sslmode=require"
    );
    assert_eq!(
        DbLocation::parse("postgres://h/db").map(|l| l.to_string()),
        Ok("postgres://h/db".to_string())
    );
    assert_eq!(
        sqlite_uri(Path::new("/a b/c?#%.db"), "ro"),
        "file:/a b/c%3f%23%25.db?mode=ro"
    );
}

#[test]
fn postgres_create_add_query_remove() {
    let pg = PgCluster::start("unit");
    let location = DbLocation::parse(&pg.uri()).expect("uri");
    let db = UserDb::open(location.clone(), Access::Create);
    let reader = UserDb::open(location, Access::Read);
    exercise(&db, &reader);
}

#[test]
fn postgres_down_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let db = UserDb::open(
        DbLocation::Postgres(format!("postgresql://x:pw@127.0.0.1:{port}/none")),
        Access::Read,
    );
    let t0 = std::time::Instant::now();
    let e = db.passwords("a").expect_err("nothing listens");
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(!e.to_string().contains(":pw@"), "{e}");
}
