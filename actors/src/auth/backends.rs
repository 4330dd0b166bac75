//! Auth backends with xpra's semantics (reference §4.2): `none`, `allow`, `fail`, `reject`,
//! `password`, `env`, `file` and `multifile`.
//!
//! A backend answers two questions: which passwords may the client have proven (checked against
//! the challenge response by the handshake, in constant time), and where are the sessions of the
//! user it accepted. Reading files is blocking, so the handshake calls these from a blocking task.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xgate_config::AuthSpec;
use xgate_messages::{SessionSource, UserIdentity};

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
    /// Builds a backend from its configuration.
    pub fn from_spec(spec: &AuthSpec) -> Result<Backend, BackendError> {
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
        }
    }

    /// Whether the module sends a challenge.
    pub fn needs_challenge(&self) -> bool {
        !matches!(self, Backend::None | Backend::Fail)
    }

    /// Whether the module takes the user name from the client's hello (xpra's `CLIENT_USERNAME`).
    pub fn uses_client_username(&self) -> bool {
        matches!(self, Backend::Multifile { .. })
    }

    /// The passwords a response may prove for `username`. `Ok(None)` means any response is
    /// accepted (`allow`); an empty list means none can succeed. Blocking (reads files).
    pub fn passwords(&self, username: &str) -> Result<Option<Vec<Vec<u8>>>, BackendError> {
        let pw = xgate_protocol::digest::password_bytes;
        Ok(match self {
            Backend::Allow => None,
            Backend::None | Backend::Fail | Backend::Reject => Some(Vec::new()),
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

    /// The identity and session source of an accepted `username`. Blocking (reads files).
    pub fn grant(&self, username: &str) -> Result<Grant, BackendError> {
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
    fn options_split_on_first_equals() {
        let o = parse_options(" a = 1 ; b=x=y;;c");
        assert_eq!(o.get("a").map(String::as_str), Some("1"));
        assert_eq!(o.get("b").map(String::as_str), Some("x=y"));
        assert!(!o.contains_key("c"));
    }
}
