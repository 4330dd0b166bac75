//! xpra's user database on sqlite or PostgreSQL, through diesel: the `sqlite` and `sql` auth
//! modules and `xgate auth-db` share it.
//!
//! The table is xpra's own (reference §4.2), so a `xpra-auth.sdb` made by xpra's tool works
//! unchanged, and a database made here works with xpra's tool. New databases are made by the
//! embedded diesel migration, which runs xpra's exact `CREATE TABLE` (plus an index on `username`
//! that xpra neither needs nor sees). The gateway never migrates a database it authenticates
//! against: it only reads, and opens sqlite files read-only.
//!
//! Every call blocks (file or network I/O); the handshake runs them on tokio's blocking pool.
//! Connections are pooled per database (r2d2), and the pool is shared by the clones of a backend.

#[allow(missing_docs, unreachable_pub)]
#[cfg(any(test, feature = "test-support"))]
pub mod pg_cluster;
pub mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use schema::users;

/// The migrations that make a new user database: xpra's `CREATE TABLE users` and an index.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/auth/sql/migrations");

/// Where a user database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A sqlite file (`filename=` of the `sqlite` module, or a `sqlite:///PATH` URI).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URI (`postgresql://user:password@host:port/dbname?...`).
    Postgres(String),
}

impl DbLocation {
    /// Parses a database argument: `postgresql://...` or `postgres://...` for PostgreSQL,
    /// `sqlite:///PATH` (SQLAlchemy's form, as in xpra's `sql` module: `sqlite:///rel.db`,
    /// `sqlite:////abs.db`) or a plain file path for sqlite.
    pub fn parse(text: &str) -> Result<DbLocation, DbError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(DbError::Uri("empty database name".into()));
        }
        if t.starts_with("postgresql://") || t.starts_with("postgres://") {
            return Ok(DbLocation::Postgres(t.to_string()));
        }
        if let Some(rest) = t.strip_prefix("sqlite://") {
            let path = rest.strip_prefix('/').unwrap_or(rest);
            if path.is_empty() {
                return Err(DbError::Uri(format!(
                    "{t}: in-memory sqlite databases hold no users"
                )));
            }
            return Ok(DbLocation::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = t.split_once("://") {
            return Err(DbError::Uri(format!(
                "unsupported database '{scheme}' (use a sqlite file or postgresql://...)"
            )));
        }
        Ok(DbLocation::Sqlite(PathBuf::from(t)))
    }
}

impl fmt::Display for DbLocation {
    /// The location for logs and errors, with any password in a PostgreSQL URI hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(uri) => f.write_str(&redact_uri(uri)),
        }
    }
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

/// What went wrong with a user database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The database argument cannot be used.
    #[error("{0}")]
    Uri(String),
    /// The sqlite file does not exist (the gateway never creates one).
    #[error("cannot find the database file '{0}'")]
    Missing(String),
    /// No connection could be made.
    #[error("cannot connect to {db}: {reason}")]
    Connect {
        /// The database, without its password.
        db: String,
        /// Why.
        reason: String,
    },
    /// A query failed.
    #[error("{db}: {reason}")]
    Query {
        /// The database, without its password.
        db: String,
        /// Why.
        reason: String,
    },
    /// The schema could not be made.
    #[error("cannot create the users table in {db}: {reason}")]
    Migration {
        /// The database, without its password.
        db: String,
        /// Why.
        reason: String,
    },
}

/// One row of xpra's `users` table. Every column but `username` may be NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// The login name.
    pub username: String,
    /// The plain-text password.
    pub password: Option<String>,
    /// uid (number or name).
    pub uid: Option<String>,
    /// gid (number or name).
    pub gid: Option<String>,
    /// Comma-separated displays or URIs.
    pub displays: Option<String>,
    /// `K=V;...` for starting sessions.
    pub env_options: Option<String>,
    /// `K=V;...` applied on the server side.
    pub session_options: Option<String>,
}

/// How the gateway or the tool opens a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads (the gateway): sqlite files are opened read-only and never created.
    Read,
    /// Reads and writes an existing database (`add`, `remove`, `list`).
    Write,
    /// May create the sqlite file (`create`).
    Create,
}

/// The two kinds of pool.
#[derive(Clone)]
enum Pools {
    /// sqlite connections.
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    /// PostgreSQL connections.
    Pg(Pool<ConnectionManager<PgConnection>>),
}

/// A user database with its connection pool. Clones share the pool.
#[derive(Clone)]
pub struct UserDb {
    /// Where it is.
    location: DbLocation,
    /// How it was opened: only `Create` may make a missing sqlite file.
    access: Access,
    /// Pooled connections, made on first use (building the pool connects to nothing).
    pool: Pools,
}

impl PartialEq for UserDb {
    fn eq(&self, other: &Self) -> bool {
        self.location == other.location
    }
}

impl Eq for UserDb {}

impl fmt::Debug for UserDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserDb({})", self.location)
    }
}

/// Sets a busy timeout on each sqlite connection, so that a writer (`xgate auth-db add`, xpra's
/// tool) makes readers wait a little instead of failing.
#[derive(Debug)]
struct SqliteSetup;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("PRAGMA busy_timeout = 5000;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A sqlite URI for `path` in `mode` (`ro`, `rw`, `rwc`); `%`, `?` and `#` are escaped.
fn sqlite_uri(path: &Path, mode: &str) -> String {
    let mut out = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str("?mode=");
    out.push_str(mode);
    out
}

/// Most connections a pool keeps open.
const POOL_SIZE: u32 = 8;
/// How long a caller waits for a connection before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `$body` with `$conn` bound to a pooled connection of either kind; errors become
/// [`DbError`]s naming the database.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &UserDb = $db;
        match &db.pool {
            Pools::Sqlite(pool) => {
                db.check_file()?;
                let mut pooled = pool.get().map_err(|e| db.connect_error(e))?;
                let $conn: &mut SqliteConnection = &mut pooled;
                $body.map_err(|e| db.query_error(e))
            }
            Pools::Pg(pool) => {
                let mut pooled = pool.get().map_err(|e| db.connect_error(e))?;
                let $conn: &mut PgConnection = &mut pooled;
                $body.map_err(|e| db.query_error(e))
            }
        }
    }};
}

impl UserDb {
    /// A database at `location`, opened for `access`. Connects to nothing yet.
    pub fn open(location: DbLocation, access: Access) -> UserDb {
        let pool = match &location {
            DbLocation::Sqlite(path) => {
                let mode = match access {
                    Access::Read => "ro",
                    Access::Write => "rw",
                    Access::Create => "rwc",
                };
                Pools::Sqlite(
                    Pool::builder()
                        .max_size(POOL_SIZE)
                        .min_idle(Some(0))
                        .connection_timeout(CONNECT_TIMEOUT)
                        .connection_customizer(Box::new(SqliteSetup))
                        .build_unchecked(ConnectionManager::new(sqlite_uri(path, mode))),
                )
            }
            DbLocation::Postgres(uri) => Pools::Pg(
                Pool::builder()
                    .max_size(POOL_SIZE)
                    .min_idle(Some(0))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .build_unchecked(ConnectionManager::new(uri.clone())),
            ),
        };
        UserDb {
            location,
            access,
            pool,
        }
    }

    /// Where the database is.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    fn check_file(&self) -> Result<(), DbError> {
        match &self.location {
            DbLocation::Sqlite(path) if self.access != Access::Create && !path.exists() => {
                Err(DbError::Missing(path.display().to_string()))
            }
            _ => Ok(()),
        }
    }

    fn connect_error(&self, e: impl fmt::Display) -> DbError {
        DbError::Connect {
            db: self.location.to_string(),
            reason: e.to_string(),
        }
    }

    fn query_error(&self, e: impl fmt::Display) -> DbError {
        DbError::Query {
            db: self.location.to_string(),
            reason: e.to_string(),
        }
    }

    /// `SELECT password FROM users WHERE username=?`: every password the user may give (several
    /// rows are allowed). NULL passwords match nothing and are left out.
    pub fn passwords(&self, username: &str) -> Result<Vec<String>, DbError> {
        let rows: Vec<Option<String>> = with_conn!(self, |conn| users::table
            .filter(users::username.eq(username))
            .select(users::password)
            .load::<Option<String>>(conn))?;
        Ok(rows.into_iter().flatten().collect())
    }

    /// `SELECT uid, gid, displays, env_options, session_options FROM users WHERE username=? AND
    /// password=?` with the password that matched: the row whose sessions the user reaches.
    pub fn session_row(&self, username: &str, password: &str) -> Result<Option<UserRow>, DbError> {
        with_conn!(self, |conn| users::table
            .filter(users::username.eq(username))
            .filter(users::password.eq(password))
            .select(UserRow::as_select())
            .first::<UserRow>(conn)
            .optional())
    }

    /// The first row for `username` whatever its password: the sessions of a user whose password
    /// another module checked (`role=sessions`).
    pub fn first_row(&self, username: &str) -> Result<Option<UserRow>, DbError> {
        with_conn!(self, |conn| users::table
            .filter(users::username.eq(username))
            .select(UserRow::as_select())
            .first::<UserRow>(conn)
            .optional())
    }

    /// Every row, in the table's order (`list`).
    pub fn list(&self) -> Result<Vec<UserRow>, DbError> {
        with_conn!(self, |conn| users::table
            .select(UserRow::as_select())
            .load::<UserRow>(conn))
    }

    /// Adds a row (`add`).
    pub fn add(&self, row: &UserRow) -> Result<(), DbError> {
        with_conn!(self, |conn| diesel::insert_into(users::table)
            .values(row)
            .execute(conn))
        .map(|_| ())
    }

    /// Adds many rows in one transaction (for tests and benchmarks).
    pub fn add_many(&self, rows: &[UserRow]) -> Result<(), DbError> {
        with_conn!(self, |conn| conn.transaction(|conn| {
            for chunk in rows.chunks(1000) {
                diesel::insert_into(users::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            Ok::<(), diesel::result::Error>(())
        }))
    }

    /// Removes the user's rows, only those with `password` when given (`remove`); returns how
    /// many went.
    pub fn remove(&self, username: &str, password: Option<&str>) -> Result<usize, DbError> {
        match password {
            Some(pw) => with_conn!(self, |conn| diesel::delete(
                users::table
                    .filter(users::username.eq(username))
                    .filter(users::password.eq(pw))
            )
            .execute(conn)),
            None => with_conn!(self, |conn| diesel::delete(
                users::table.filter(users::username.eq(username))
            )
            .execute(conn)),
        }
    }

    /// Makes the `users` table with the embedded migrations (`create`). Fails, as xpra's tool
    /// does, when the table is there already.
    pub fn create(&self) -> Result<(), DbError> {
        let migration_error = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration {
            db: self.location.to_string(),
            reason: e.to_string(),
        };
        let applied = match &self.pool {
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().map_err(|e| self.connect_error(e))?;
                conn.run_pending_migrations(MIGRATIONS)
                    .map_err(migration_error)?
                    .len()
            }
            Pools::Pg(pool) => {
                let mut conn = pool.get().map_err(|e| self.connect_error(e))?;
                conn.run_pending_migrations(MIGRATIONS)
                    .map_err(migration_error)?
                    .len()
            }
        };
        if applied == 0 {
            return Err(DbError::Migration {
                db: self.location.to_string(),
                reason: "table users already exists".into(),
            });
        }
        Ok(())
    }

    /// xpra's `authenticate username password`: the row the user reaches with that password.
    pub fn authenticate(&self, username: &str, password: &str) -> Result<Option<UserRow>, DbError> {
        if !self.passwords(username)?.iter().any(|p| p == password) {
            return Ok(None);
        }
        self.session_row(username, password)
    }
}

#[cfg(test)]
mod tests;
