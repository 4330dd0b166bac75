//! Sessions: where a user's xpra sessions are and how to reach them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use actix::Message;
use serde::{Deserialize, Serialize};

/// How the gateway reaches an xpra server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum TargetAddress {
    /// A local unix socket (`/run/user/1000/xpra/host-100`).
    Unix {
        /// The socket's path.
        path: PathBuf,
    },
    /// xpra over TCP (`tcp://host:port/`).
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// xpra over TLS (`ssl://host:port/`).
    Ssl {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// xpra over WebSocket (`ws://host:port/path`).
    Ws {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// The request path.
        path: String,
    },
    /// xpra over secure WebSocket (`wss://host:port/path`).
    Wss {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// The request path.
        path: String,
    },
    /// xpra over SSH (`ssh://user@host:port/DISPLAY`), through the remote `xpra _proxy`.
    Ssh {
        /// The remote login name, if given.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// SSH port.
        port: u16,
        /// The remote display, passed to `xpra _proxy`.
        display: Option<String>,
    },
}

/// A host as it stands in a URI: an IPv6 address in brackets.
fn uri_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl fmt::Display for TargetAddress {
    /// The URI form that parses back to the same address (`tcp://[::1]:14500/`,
    /// `ssh://user@host:22/100`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddress::Unix { path } => write!(f, "{}", path.display()),
            TargetAddress::Tcp { host, port } => write!(f, "tcp://{}:{port}/", uri_host(host)),
            TargetAddress::Ssl { host, port } => write!(f, "ssl://{}:{port}/", uri_host(host)),
            TargetAddress::Ws { host, port, path } => {
                write!(f, "ws://{}:{port}{path}", uri_host(host))
            }
            TargetAddress::Wss { host, port, path } => {
                write!(f, "wss://{}:{port}{path}", uri_host(host))
            }
            TargetAddress::Ssh {
                user,
                host,
                port,
                display,
            } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                let display = display.as_deref().unwrap_or("");
                write!(
                    f,
                    "{}:{port}/{}",
                    uri_host(host),
                    display.trim_start_matches(':')
                )
            }
        }
    }
}

/// One session a user may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTarget {
    /// The name a client uses to choose it: `:100` for local displays, or the display string as the
    /// user database wrote it (`tcp://192.168.1.200:10100/`).
    pub display: String,
    /// Where the server is.
    pub address: TargetAddress,
    /// Per-session options applied on the server side (`compression_level`, `lz4`, `password`...),
    /// from the user database's `session_options` or the target's `;k=v` suffix.
    pub options: BTreeMap<String, String>,
    /// Environment options for starting the session (`env_options`); kept for on-demand starts.
    pub env: BTreeMap<String, String>,
    /// Where the gateway learnt of this session (`socket-dir`, `config`, `multifile`, ...).
    pub source: String,
}

/// The identity an Authenticator established for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdentity {
    /// The authenticated user name (the hello's `username`, or the gateway's own for `none`).
    pub username: String,
    /// The uid whose sessions the user may reach, if known.
    pub uid: Option<u32>,
    /// The gid to go with it, if known.
    pub gid: Option<u32>,
}

/// Where a user's session list comes from, as the auth backend that accepted the user decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionSource {
    /// Scan the local socket dirs for the LIVE sessions owned by the user's uid (xpra's default
    /// `get_sessions()`), plus the static targets from the configuration.
    SocketScan,
    /// A fixed list given by the backend (multifile or database rows: display strings or URIs).
    Listed {
        /// Display strings or URIs, as the user database wrote them.
        displays: Vec<String>,
        /// The row's `session_options`.
        options: BTreeMap<String, String>,
        /// The row's `env_options`.
        env: BTreeMap<String, String>,
    },
}

/// A request to the SessionRegistry: which sessions may this user reach?
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<SessionTarget>")]
pub struct LookupSessions {
    /// The authenticated user.
    pub user: UserIdentity,
    /// What the auth backend said about where the user's sessions are.
    pub source: SessionSource,
}
