//! Auth backends with xpra's semantics (reference §4.2): `none`, `allow`, `fail`, `reject`,
//! `password`, `env`, `file`, `multifile`, `sqlite`, `sql` (sqlite or PostgreSQL), `exec`,
//! `peercred`, xgate's `certificate` (a verified TLS client certificate names the user) and, when
//! built with the cargo feature `pam`, `pam` (`sys`).
//!
//! A backend answers up to three questions: which passwords may the client have proven (checked
//! against the challenge response by the handshake, in constant time; `pam` instead checks the
//! password the client reveals with an `xor` challenge), whether a client is let in
//! without a password (`exec`, `peercred`, `certificate`), and where are the sessions of the user
//! it accepted.
//! Reading files, querying databases and running commands block, so the handshake calls these
//! from a blocking task.
//!
//! Every module takes the option `role=`, which splits the password check from the session list
//! (a chain such as `tcp-auth = ["pam", "sqlite:filename=users.sdb,role=sessions"]`):
//! - `role=both` (the default): checks the client and, if it is the first to do so, supplies the
//!   sessions;
//! - `role=password`: only checks; its own idea of the sessions is ignored;
//! - `role=sessions`: checks nothing (no challenge) and supplies the sessions of the user the
//!   checking modules accepted. The first `role=sessions` module wins over any `role=both` one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xgate_config::AuthSpec;
use xgate_messages::{CertificateSubject, Peer, SessionSource, UserIdentity};

use super::certificate::CertificateAuth;
use super::exec::ExecAuth;
use super::peercred::PeerCred;
use super::sql::{Access, DbError, DbLocation, UserDb, UserRow};
use crate::users;

/// A configured auth module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// No authentication at all; the user is the gateway's own.
    None,
    /// A challenge whose response is never checked.
    Allow,
    /// Always fails (xpra raises at construction; here every attempt fails).
    Fail,
    /// A challenge that always fails.
    Reject,
    /// A fixed password from the `value=` option.
    Password {
        /// The password.
        value: String,
    },
    /// A password from an environment variable (`name=`, default `XPRA_PASSWORD`).
    Env {
        /// The variable's name.
        name: String,
    },
    /// A password file: the whole file is the password, trailing newline included (as xpra).
    File {
        /// The file.
        path: PathBuf,
    },
    /// One line per user: `username|password|uid|gid|displays|env_options|session_options`.
    Multifile {
        /// The file.
        path: PathBuf,
    },
    /// xpra's `users` table in sqlite (`sqlite`, `filename=`) or PostgreSQL (`sql`, `uri=`).
    Sql {
        /// The database and its connection pool (shared by clones).
        db: UserDb,
    },
    /// A command whose exit status decides (`command=`, `timeout=`).
    Exec(ExecAuth),
    /// The unix peer's uid/gid (`uid=`, `gid=`, `allow-owner=`).
    Peercred(PeerCred),
    /// The system's PAM stack checks the password (`service=`, `check-account=`).
    #[cfg(feature = "pam")]
    Pam(super::pam::PamAuth),
    /// A verified TLS client certificate; its subject's `field=` (CN) is the user name.
    Certificate(CertificateAuth),
    /// A plug-in actor with `role = "auth"` decides (`hook:name=X`; see [`super::hook`]).
    Hook(super::hook::HookAuth),
    /// Another module with a `role=` other than `both`.
    Role {
        /// What the module is used for.
        role: Role,
        /// The module.
        inner: Box<Backend>,
    },
}

/// What a module in a chain is used for (option `role=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Checks the client and supplies sessions (the default).
    Both,
    /// Only checks the client.
    Password,
    /// Only supplies the sessions of the user the other modules accepted.
    Sessions,
}

/// What the modules that decide without a password (`exec`, `peercred`, `certificate`) and the
/// session lookups
/// may look at.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The name in the client's hello.
    pub username: String,
    /// The display the client asked for, if any.
    pub display: Option<String>,
    /// The client's address (with its credentials on unix sockets).
    pub peer: Peer,
    /// The transport after upgrades (`tcp`, `ssl`, `ws`, ...).
    pub transport: String,
    /// The prompt the gateway would show.
    pub prompt: String,
    /// The subject of the client's verified TLS certificate, if it presented one.
    pub certificate: Option<CertificateSubject>,
}

/// Why a backend could not be configured or consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A module this gateway does not implement (yet).
    #[error("auth module '{0}' is not supported")]
    Unsupported(String),
    /// A required option is missing.
    #[error("auth module '{module}' needs the option '{option}'")]
    MissingOption {
        /// The module.
        module: String,
        /// The option.
        option: &'static str,
    },
    /// A password or user file could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// The user file has an entry the gateway cannot use.
    #[error("{path}: {reason}")]
    BadEntry {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An option has a value the module cannot use.
    #[error("auth module '{module}', option '{option}': {reason}")]
    BadOption {
        /// The module.
        module: String,
        /// The option.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The user database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A module that needs a cargo feature this binary was built without.
    #[error("auth module '{module}' needs xgate built with the cargo feature '{feature}'")]
    NotBuilt {
        /// The module.
        module: String,
        /// The feature (`cargo build --features ...`).
        feature: &'static str,
    },
    /// PAM could not run the service's stack (as opposed to refusing the user).
    #[error("pam service '{service}': {reason}")]
    Pam {
        /// The service.
        service: String,
        /// libpam's reason.
        reason: String,
    },
    /// A user accepted by a module that maps users to local accounts has none.
    #[error("no local account '{0}'")]
    NoAccount(String),
    /// The `exec` command could not be run.
    #[error("exec auth: cannot run '{command}': {reason}")]
    Exec {
        /// The program.
        command: String,
        /// Why.
        reason: String,
    },
}

/// What a backend says about a user it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user, with the uid whose sessions they reach.
    pub user: UserIdentity,
    /// Where the user's sessions are.
    pub sessions: SessionSource,
}

impl Backend {
    /// Builds a backend from its configuration (with its `role=`).
    pub fn from_spec(spec: &AuthSpec) -> Result<Backend, BackendError> {
        let inner = Backend::from_spec_no_role(spec)?;
        let role = match spec.option("role").map(str::to_ascii_lowercase).as_deref() {
            None | Some("both") => Role::Both,
            Some("password") => Role::Password,
            Some("sessions") => Role::Sessions,
            Some(other) => {
                return Err(BackendError::BadOption {
                    module: spec.module.clone(),
                    option: "role",
                    reason: format!("'{other}' is not one of both, password, sessions"),
                })
            }
        };
        Ok(match role {
            Role::Both => inner,
            role => Backend::Role {
                role,
                inner: Box::new(inner),
            },
        })
    }

    fn from_spec_no_role(spec: &AuthSpec) -> Result<Backend, BackendError> {
        let need = |option: &'static str| {
            spec.option(option)
                .map(str::to_string)
                .ok_or(BackendError::MissingOption {
                    module: spec.module.clone(),
                    option,
                })
        };
        Ok(match spec.module.as_str() {
            "none" => Backend::None,
            "allow" => Backend::Allow,
            "fail" => Backend::Fail,
            "reject" => Backend::Reject,
            "password" => Backend::Password {
                value: need("value")?,
            },
            "env" => Backend::Env {
                name: spec.option("name").unwrap_or("XPRA_PASSWORD").to_string(),
            },
            "file" => Backend::File {
                path: need("filename")?.into(),
            },
            "multifile" => Backend::Multifile {
                path: need("filename")?.into(),
            },
            "sqlite" | "sql" => {
                // xpra's `sqlite` defaults to `sqlite.sdb` in the working directory; `sql` needs
                // a URI (`postgresql://...`, `sqlite:///PATH`).
                let location = match (spec.module.as_str(), spec.option("uri")) {
                    (_, Some(uri)) => DbLocation::parse(uri)?,
                    ("sqlite", None) => {
                        DbLocation::Sqlite(spec.option("filename").unwrap_or("sqlite.sdb").into())
                    }
                    _ => DbLocation::parse(&need("uri")?)?,
                };
                Backend::Sql {
                    db: UserDb::open(location, Access::Read),
                }
            }
            "exec" => Backend::Exec(ExecAuth::from_options(
                spec.option("command"),
                spec.option("timeout"),
                spec.option("require-challenge"),
            )?),
            "peercred" => Backend::Peercred(PeerCred::from_options(
                spec.option("uid"),
                spec.option("gid"),
                spec.option("allow-owner"),
            )?),
            "hook" => Backend::Hook(super::hook::HookAuth::from_options(spec.option("name"))?),
            "certificate" => {
                Backend::Certificate(CertificateAuth::from_options(spec.option("field"))?)
            }
            #[cfg(feature = "pam")]
            "pam" => Backend::Pam(super::pam::PamAuth::from_options(
                spec.option("service"),
                spec.option("check-account"),
                spec.option("allow-unencrypted"),
            )?),
            #[cfg(not(feature = "pam"))]
            "pam" => {
                return Err(BackendError::NotBuilt {
                    module: "pam".into(),
                    feature: "pam",
                })
            }
            other => return Err(BackendError::Unsupported(other.to_string())),
        })
    }

    /// The module's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Allow => "allow",
            Backend::Fail => "fail",
            Backend::Reject => "reject",
            Backend::Password { .. } => "password",
            Backend::Env { .. } => "env",
            Backend::File { .. } => "file",
            Backend::Multifile { .. } => "multifile",
            Backend::Sql { db } => match db.location() {
                DbLocation::Sqlite(_) => "sqlite",
                DbLocation::Postgres(_) => "sql",
            },
            Backend::Exec(_) => "exec",
            Backend::Peercred(_) => "peercred",
            Backend::Hook(_) => "hook",
            #[cfg(feature = "pam")]
            Backend::Pam(_) => "pam",
            Backend::Certificate(_) => "certificate",
            Backend::Role { inner, .. } => inner.name(),
        }
    }

    /// What the module is used for in its chain.
    pub fn role(&self) -> Role {
        match self {
            Backend::Role { role, .. } => *role,
            _ => Role::Both,
        }
    }

    /// Whether the module checks the password itself rather than a digest of it (`pam`): its
    /// challenge uses the `xor` digest, which reveals the password, and the handshake hands that
    /// to [`Backend::check_password`].
    pub fn wants_plain_password(&self) -> bool {
        match self {
            Backend::Role { inner, .. } => inner.wants_plain_password(),
            #[cfg(feature = "pam")]
            Backend::Pam(_) => true,
            _ => false,
        }
    }

    /// For the modules that [want the plain password](Backend::wants_plain_password): whether
    /// the `xor` challenge may also go over transports that are not confidential (plain tcp, ws).
    pub fn allows_unencrypted_password(&self) -> bool {
        match self {
            Backend::Role { inner, .. } => inner.allows_unencrypted_password(),
            #[cfg(feature = "pam")]
            Backend::Pam(p) => p.allow_unencrypted,
            _ => false,
        }
    }

    /// For the modules that [want the plain password](Backend::wants_plain_password): whether
    /// `password` is right for `username`. Blocking (PAM). Other modules accept nothing here.
    // Without the `pam` feature no module reads the arguments: they only pass through roles.
    #[cfg_attr(not(feature = "pam"), allow(clippy::only_used_in_recursion))]
    pub fn check_password(&self, username: &str, password: &[u8]) -> Result<bool, BackendError> {
        match self {
            Backend::Role { inner, .. } => inner.check_password(username, password),
            #[cfg(feature = "pam")]
            Backend::Pam(p) => p.check(username, password),
            _ => Ok(false),
        }
    }

    /// Whether the module sends a challenge.
    pub fn needs_challenge(&self) -> bool {
        match self {
            Backend::Role {
                role: Role::Sessions,
                ..
            } => false,
            Backend::Role { inner, .. } => inner.needs_challenge(),
            Backend::None
            | Backend::Fail
            | Backend::Exec(_)
            | Backend::Peercred(_)
            | Backend::Certificate(_)
            | Backend::Hook(_) => false,
            _ => true,
        }
    }

    /// Whether the module lets a client in or not without a password ([`Backend::decide`]).
    pub fn decides(&self) -> bool {
        match self {
            Backend::Role {
                role: Role::Sessions,
                ..
            } => false,
            Backend::Role { inner, .. } => inner.decides(),
            Backend::Exec(_)
            | Backend::Peercred(_)
            | Backend::Certificate(_)
            | Backend::Hook(_) => true,
            _ => false,
        }
    }

    /// Whether the module's sessions count ([`Backend::grant`]).
    pub fn supplies_sessions(&self) -> bool {
        self.role() != Role::Password
    }

    /// Whether the module takes the user name from the client's hello (xpra's `CLIENT_USERNAME`).
    pub fn uses_client_username(&self) -> bool {
        match self {
            Backend::Role { inner, .. } => inner.uses_client_username(),
            Backend::Multifile { .. }
            | Backend::Sql { .. }
            | Backend::Exec(_)
            | Backend::Hook(_) => true,
            // xgate drops root after binding: like xpra's proxy running as root, it checks the
            // name the client gives.
            #[cfg(feature = "pam")]
            Backend::Pam(_) => true,
            _ => false,
        }
    }

    /// The user name the module itself establishes, whatever the hello says: the subject field
    /// of the client's verified certificate for `certificate`; `None` for the other modules
    /// (and for a client without a certificate).
    pub fn established_username(&self, ctx: &CheckContext) -> Option<String> {
        match self {
            Backend::Role { inner, .. } => inner.established_username(ctx),
            Backend::Certificate(c) => c.username(ctx.certificate.as_ref()),
            _ => None,
        }
    }

    /// For the modules that [decide](Backend::decides) without a password: whether this client
    /// comes in. Blocking (`exec` runs a command).
    pub fn decide(&self, ctx: &CheckContext) -> Result<bool, BackendError> {
        match self {
            Backend::Role { inner, .. } => inner.decide(ctx),
            Backend::Exec(e) => e.run(ctx),
            Backend::Hook(h) => h.decide(ctx),
            Backend::Peercred(p) => Ok(p.allows(&ctx.peer)),
            Backend::Certificate(c) => Ok(c.username(ctx.certificate.as_ref()).is_some()),
            _ => Ok(true),
        }
    }

    /// The passwords a response may prove for `username`. `Ok(None)` means any response is
    /// accepted (`allow`); an empty list means none can succeed. Blocking (reads files).
    pub fn passwords(&self, username: &str) -> Result<Option<Vec<Vec<u8>>>, BackendError> {
        let pw = xgate_protocol::digest::password_bytes;
        Ok(match self {
            Backend::Role { inner, .. } => return inner.passwords(username),
            Backend::Sql { db } => Some(db.passwords(username)?.iter().map(|p| pw(p)).collect()),
            Backend::Allow => None,
            Backend::None
            | Backend::Fail
            | Backend::Reject
            | Backend::Exec(_)
            | Backend::Hook(_)
            | Backend::Certificate(_)
            | Backend::Peercred(_) => Some(Vec::new()),
            // No digest can match: the password is checked by PAM (`check_password`).
            #[cfg(feature = "pam")]
            Backend::Pam(_) => Some(Vec::new()),
            Backend::Password { value } => Some(vec![pw(value)]),
            Backend::Env { name } => Some(
                std::env::var(name)
                    .map(|v| vec![pw(&v)])
                    .unwrap_or_default(),
            ),
            Backend::File { path } => {
                let data = std::fs::read(path).map_err(|e| BackendError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Some(vec![data])
            }
            Backend::Multifile { path } => Some(
                read_multifile(path)?
                    .into_iter()
                    .filter(|e| e.username == username)
                    .map(|e| pw(&e.password))
                    .collect(),
            ),
        })
    }

    /// The identity and session source of an accepted `username`; `matched` is the password the
    /// client proved, when there was one (the `sqlite`/`sql` row is the one with that password).
    /// Blocking (reads files, queries databases).
    pub fn grant(
        &self,
        username: &str,
        matched: Option<&[u8]>,
        ctx: &CheckContext,
    ) -> Result<Grant, BackendError> {
        match self {
            Backend::Role { inner, .. } => return inner.grant(username, matched, ctx),
            Backend::Sql { db } => {
                let row = match matched {
                    Some(pw) => db.session_row(username, &password_text(pw))?,
                    None => db.first_row(username)?,
                };
                return Ok(grant_from_row(username, row));
            }
            // xpra's `SysAuthenticator`: the uid and gid of the user's passwd entry, whose
            // sessions a socket scan finds.
            #[cfg(feature = "pam")]
            Backend::Pam(_) => {
                let account = users::by_name(username)
                    .ok_or_else(|| BackendError::NoAccount(username.to_string()))?;
                return Ok(Grant {
                    user: UserIdentity {
                        username: username.to_string(),
                        uid: Some(account.uid),
                        gid: Some(account.gid),
                    },
                    sessions: SessionSource::SocketScan,
                });
            }
            Backend::Certificate(c) => return Ok(c.grant(username)),
            Backend::Peercred(_) => {
                if let Peer::Unix {
                    uid: Some(uid),
                    gid,
                    ..
                } = ctx.peer
                {
                    let account = users::by_uid(uid);
                    return Ok(Grant {
                        user: UserIdentity {
                            username: account
                                .as_ref()
                                .map(|a| a.name.clone())
                                .unwrap_or_else(|| uid.to_string()),
                            uid: Some(uid),
                            gid: gid.or(account.map(|a| a.gid)),
                        },
                        sessions: SessionSource::SocketScan,
                    });
                }
            }
            _ => {}
        }
        if let Backend::Multifile { path } = self {
            let entry = read_multifile(path)?
                .into_iter()
                .find(|e| e.username == username)
                .ok_or_else(|| BackendError::BadEntry {
                    path: path.display().to_string(),
                    reason: format!("no entry for '{username}'"),
                })?;
            return Ok(Grant {
                user: UserIdentity {
                    username: username.to_string(),
                    uid: entry.uid,
                    gid: entry.gid,
                },
                sessions: SessionSource::Listed {
                    displays: entry.displays,
                    options: entry.session_options,
                    env: entry.env_options,
                },
            });
        }
        Ok(Grant {
            user: UserIdentity {
                username: username.to_string(),
                uid: Some(users::own_uid()),
                gid: Some(users::own_gid()),
            },
            sessions: SessionSource::SocketScan,
        })
    }
}

/// The inverse of [`xgate_protocol::digest::password_bytes`]: the stored text of a password the
/// client proved (latin-1 when it is not UTF-8).
fn password_text(bytes: &[u8]) -> String {
    // `password_bytes` makes UTF-8 only for text with a character above U+00FF.
    match std::str::from_utf8(bytes) {
        Ok(s) if s.chars().any(|c| u32::from(c) > 0xFF) => s.to_string(),
        _ => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// What a user database row grants (xpra's `parse_session_data`): the row's uid and gid (numbers
/// or names; empty means `nobody`), its displays, env and session options. No row: no sessions.
fn grant_from_row(username: &str, row: Option<UserRow>) -> Grant {
    let row = row.unwrap_or_else(|| UserRow {
        username: username.to_string(),
        ..UserRow::default()
    });
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Grant {
        user: UserIdentity {
            username: username.to_string(),
            uid: users::parse_uid(&text(&row.uid)),
            gid: users::parse_gid(&text(&row.gid)),
        },
        sessions: SessionSource::Listed {
            displays: text(&row.displays)
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            options: parse_options(&text(&row.session_options)),
            env: parse_options(&text(&row.env_options)),
        },
    }
}

/// One multifile line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultifileEntry {
    /// Login name the client gives.
    pub username: String,
    /// Plain-text password.
    pub password: String,
    /// uid whose sessions the user reaches (`None` when the name does not resolve).
    pub uid: Option<u32>,
    /// gid to go with it.
    pub gid: Option<u32>,
    /// Display strings or URIs.
    pub displays: Vec<String>,
    /// `env_options`, for starting sessions.
    pub env_options: BTreeMap<String, String>,
    /// `session_options`, applied on the server side.
    pub session_options: BTreeMap<String, String>,
}

/// Parses xpra's `k=v;k=v` option strings (split on `;`, then on the first `=`, stripped).
pub fn parse_options(text: &str) -> BTreeMap<String, String> {
    text.split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Parses a multifile's text; `path` only names it in errors.
pub fn parse_multifile(text: &str, path: &str) -> Result<Vec<MultifileEntry>, BackendError> {
    let mut entries: Vec<MultifileEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 2 {
            return Err(BackendError::BadEntry {
                path: path.to_string(),
                reason: format!("line {}: expected at least 'username|password'", n + 1),
            });
        }
        let username = f[0].to_string();
        if entries.iter().any(|e| e.username == username) {
            return Err(BackendError::BadEntry {
                path: path.to_string(),
                reason: format!("line {}: duplicate entry for '{username}'", n + 1),
            });
        }
        let (uid, gid, displays) = if f.len() < 5 {
            (users::parse_uid(""), users::parse_gid(""), Vec::new())
        } else {
            let displays = f[4]
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect();
            (users::parse_uid(f[2]), users::parse_gid(f[3]), displays)
        };
        entries.push(MultifileEntry {
            username,
            password: f[1].to_string(),
            uid,
            gid,
            displays,
            env_options: f.get(5).map(|s| parse_options(s)).unwrap_or_default(),
            session_options: f.get(6).map(|s| parse_options(s)).unwrap_or_default(),
        });
    }
    Ok(entries)
}

fn read_multifile(path: &PathBuf) -> Result<Vec<MultifileEntry>, BackendError> {
    let text = std::fs::read_to_string(path).map_err(|e| BackendError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse_multifile(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multifile_lines_parse_like_xpra() {
        let text = "# comment\n\nalice|secret|0|0|:100,tcp://127.0.0.1:10100/|A=1|compression_level=0;password=x\nbob|pw\n";
        let e = parse_multifile(text, "f").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].username, "alice");
        assert_eq!(e[0].uid, Some(0));
        assert_eq!(e[0].displays, vec![":100", "tcp://127.0.0.1:10100/"]);
        assert_eq!(e[0].env_options.get("A").map(String::as_str), Some("1"));
        assert_eq!(
            e[0].session_options.get("password").map(String::as_str),
            Some("x")
        );
        assert!(e[1].displays.is_empty());
        assert!(parse_multifile("alice|a\nalice|b\n", "f").is_err());
        assert!(parse_multifile("justaname\n", "f").is_err());
    }

    #[test]
    fn password_text_inverts_password_bytes() {
        for pw in ["secret", "pässwörd", "Ã©", "пароль", "日本", ""] {
            let bytes = xgate_protocol::digest::password_bytes(pw);
            assert_eq!(password_text(&bytes), pw);
        }
    }

    fn spec(text: &str) -> Backend {
        Backend::from_spec(&text.parse().expect("auth spec")).expect("backend")
    }

    #[test]
    fn database_modules_and_roles_parse() {
        let b = spec("sqlite:filename=/x/auth.sdb");
        assert_eq!(b.name(), "sqlite");
        assert!(b.needs_challenge() && b.uses_client_username() && b.supplies_sessions());
        assert_eq!(spec("sqlite").name(), "sqlite");
        assert_eq!(
            spec("sql,uri=postgresql://u:p@h:5/db?sslmode=disable").name(),
            "sql"
        );
        assert_eq!(spec("sql:uri=sqlite:////x/a.sdb").name(), "sqlite");
        let s = spec("sqlite:filename=/x.sdb,role=sessions");
        assert_eq!(s.role(), Role::Sessions);
        assert!(!s.needs_challenge() && !s.decides() && s.supplies_sessions());
        let p = spec("password:value=x,role=password");
        assert!(p.needs_challenge() && !p.supplies_sessions());
        let e = |t: &str| Backend::from_spec(&t.parse().expect("auth spec")).err();
        assert!(matches!(e("sql"), Some(BackendError::MissingOption { .. })));
        assert!(matches!(
            e("sql:uri=mysql://h/db"),
            Some(BackendError::Db(_))
        ));
        assert!(matches!(
            e("allow:role=admin"),
            Some(BackendError::BadOption { .. })
        ));
        assert!(matches!(
            e("exec"),
            Some(BackendError::MissingOption { .. })
        ));
        let x = spec("exec:command=/bin/true ${username},timeout=3");
        assert!(x.decides() && !x.needs_challenge());
        assert!(spec("peercred:uid=0").decides());
    }

    #[test]
    fn database_rows_grant_listed_sessions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.sdb");
        let db = UserDb::open(DbLocation::Sqlite(path.clone()), Access::Create);
        db.create().expect("create");
        for (pw, displays) in [("one", ":100, tcp://127.0.0.1:10100/"), ("two", ":200")] {
            db.add(&UserRow {
                username: "alice".into(),
                password: Some(pw.into()),
                uid: Some("1234".into()),
                gid: Some("".into()),
                displays: Some(displays.into()),
                env_options: Some("A=1".into()),
                session_options: Some("compression=0; lz4=no".into()),
            })
            .expect("add");
        }
        let b = spec(&format!("sqlite:filename={}", path.display()));
        let mut pws = b.passwords("alice").expect("passwords").expect("some");
        pws.sort();
        assert_eq!(pws, vec![b"one".to_vec(), b"two".to_vec()]);
        let ctx = CheckContext {
            username: "alice".into(),
            display: None,
            peer: Peer::Tcp("127.0.0.1:1".parse().expect("addr")),
            transport: "tcp".into(),
            prompt: String::new(),
            certificate: None,
        };
        let g = b.grant("alice", Some(b"one"), &ctx).expect("grant");
        assert_eq!(g.user.uid, Some(1234));
        assert_eq!(g.user.gid, users::parse_gid(""));
        let SessionSource::Listed {
            displays,
            options,
            env,
        } = g.sessions
        else {
            panic!("listed sessions expected");
        };
        assert_eq!(displays, vec![":100", "tcp://127.0.0.1:10100/"]);
        assert_eq!(options.get("compression").map(String::as_str), Some("0"));
        assert_eq!(options.get("lz4").map(String::as_str), Some("no"));
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        let g = b.grant("alice", Some(b"two"), &ctx).expect("grant");
        assert!(
            matches!(g.sessions, SessionSource::Listed { ref displays, .. } if displays == &[":200"])
        );
        let g = b.grant("nobody-here", None, &ctx).expect("grant");
        assert!(
            matches!(g.sessions, SessionSource::Listed { ref displays, .. } if displays.is_empty())
        );
        let missing = spec("sqlite:filename=/nonexistent/xgate.sdb");
        assert!(matches!(
            missing.passwords("a"),
            Err(BackendError::Db(DbError::Missing(_)))
        ));
    }

    #[test]
    fn options_split_on_first_equals() {
        let o = parse_options(" a = 1 ; b=x=y;;c");
        assert_eq!(o.get("a").map(String::as_str), Some("1"));
        assert_eq!(o.get("b").map(String::as_str), Some("x=y"));
        assert!(!o.contains_key("c"));
    }
}
