//! What the gateway knows about one client connection, from the accept to the end of its relay.

use std::any::{Any, TypeId};
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

/// A gateway-wide unique number for one client connection; it names the connection in logs, in
/// `info`, on the control socket (`stop <id>`) and in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The transport a client used, after sniffing and upgrades. It picks the auth chain
/// (`tcp-auth`, `ssl-auth`, `ws-auth`, `wss-auth`, `ssh-auth`, `auth` for unix sockets) and tells
/// the digest negotiation whether the channel is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// xpra over plain TCP.
    Tcp,
    /// xpra over a local unix socket.
    Unix,
    /// xpra inside TLS.
    Ssl,
    /// xpra inside WebSocket frames over plain HTTP.
    Ws,
    /// xpra inside WebSocket frames over TLS.
    Wss,
    /// xpra over an SSH channel.
    Ssh,
}

impl TransportKind {
    /// The name xpra uses for this socket type (`tcp`, `socket`, `ssl`, `ws`, `wss`, `ssh`).
    pub fn xpra_name(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Unix => "socket",
            TransportKind::Ssl => "ssl",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
            TransportKind::Ssh => "ssh",
        }
    }

    /// The option that configures authentication for this transport, as xpra names it.
    pub fn auth_option(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp-auth",
            TransportKind::Unix => "auth",
            TransportKind::Ssl => "ssl-auth",
            TransportKind::Ws => "ws-auth",
            TransportKind::Wss => "wss-auth",
            TransportKind::Ssh => "ssh-auth",
        }
    }

    /// Whether the channel itself is encrypted, which is when xpra allows `xor` digests that
    /// reveal the password to the server. Unix sockets are local and count as safe too.
    pub fn is_confidential(self) -> bool {
        !matches!(self, TransportKind::Tcp | TransportKind::Ws)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.xpra_name())
    }
}

/// Who is at the other end of a client connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A unix-socket peer, with its credentials when the kernel gave them (for `peercred`).
    Unix {
        /// The peer process's uid, from SO_PEERCRED.
        uid: Option<u32>,
        /// The peer process's gid, from SO_PEERCRED.
        gid: Option<u32>,
        /// The peer process's pid, from SO_PEERCRED.
        pid: Option<i32>,
    },
}

impl Peer {
    /// The key used for per-address limits: the IP for TCP peers, the uid for unix peers.
    pub fn limit_key(&self) -> String {
        match self {
            Peer::Tcp(addr) => addr.ip().to_string(),
            Peer::Unix { uid, .. } => match uid {
                Some(uid) => format!("uid:{uid}"),
                None => "unix".to_string(),
            },
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix {
                uid: Some(uid),
                pid,
                ..
            } => match pid {
                Some(pid) => write!(f, "unix(uid={uid},pid={pid})"),
                None => write!(f, "unix(uid={uid})"),
            },
            Peer::Unix { .. } => f.write_str("unix"),
        }
    }
}

/// Where a connection came in: the listener's configured address and the options given on it
/// (`bind-tcp=0.0.0.0:14501,auth=...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerInfo {
    /// The listener's name as configured, e.g. `tcp:127.0.0.1:14501` or `unix:/run/xgate.sock`.
    pub name: String,
    /// The transport the listener was configured for (`tcp` listeners sniff and may upgrade).
    pub kind: TransportKind,
    /// Per-listener `auth=` override, in xpra's module syntax, if the bind option set one.
    pub auth: Option<String>,
}

/// The facts about a connection that every later stage needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The connection's number.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: Peer,
    /// The listener that accepted it.
    pub listener: ListenerInfo,
    /// The transport after upgrades (a `tcp` listener's connection may become `ssl`, `ws`, ...).
    pub transport: TransportKind,
    /// The HTTP request path of a WebSocket upgrade, which can name the display.
    pub request_path: Option<String>,
    /// The subject of the client certificate that verified against `ssl-ca-certs` (TLS
    /// transports only): the `certificate` auth module logs the client in under one of its
    /// fields. `None` when the client presented no certificate or it did not verify.
    #[serde(default)]
    pub client_certificate: Option<CertificateSubject>,
}

/// The subject name of a verified client certificate, as `(field, value)` pairs in the
/// certificate's order, with openssl's short field names (`CN`, `emailAddress`, `O`, `UID`...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertificateSubject {
    /// The subject's entries.
    pub entries: Vec<(String, String)>,
}

impl CertificateSubject {
    /// The first value of `field` (matched without regard to case: `cn` finds `CN`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for CertificateSubject {
    /// One line, `CN=alice,O=example`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// A byte stream of any transport (TCP, unix, TLS, WebSocket, SSH channel): what the upgrade stage
/// hands on, so that nothing after it needs to know the transport.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The stream as `Any`, so that the relay can recognise a plain socket behind the box and
    /// move payloads between two of them with splice(2) instead of copying them.
    ///
    /// Call it on the trait object (`BoxedStream::into_any(stream)`), not on a `Box` reference:
    /// a `BoxedStream` is itself a `ByteStream`.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;

    /// Whether the concrete stream is a `T`, without giving the box up.
    fn is_a(&self, type_id: TypeId) -> bool;
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn is_a(&self, type_id: TypeId) -> bool {
        TypeId::of::<T>() == type_id
    }
}

/// A boxed byte stream of any transport.
pub type BoxedStream = Box<dyn ByteStream>;
