//! The Listener actor: one per bind address. It accepts connections, applies the connection
//! limits, numbers each connection and hands it to the TransportUpgrade stage.
//!
//! Sockets are bound before the actor starts (by the binary, before it drops root), so a restart
//! of the actor re-uses the same socket: a clone of the bound descriptor, never a new bind.
//! Accept errors (EMFILE, ENOBUFS, ...) back off from 1 s doubling to 64 s instead of spinning.

mod limits;

pub use limits::{ConnectionLimits, ConnectionPermit, LimitError};

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};
use xgate_messages::{BoxedStream, ConnectionId, ConnectionInfo, ListenerInfo, Peer};

use crate::pipeline::Accepted;

/// A socket bound by the binary, shared with every incarnation of its Listener.
#[derive(Debug, Clone)]
pub enum BoundSocket {
    /// A bound TCP socket.
    Tcp(Arc<std::net::TcpListener>),
    /// A bound unix socket and its path (removed when the gateway stops).
    Unix(Arc<std::os::unix::net::UnixListener>, PathBuf),
}

impl BoundSocket {
    /// The local address, for logs and for tests that bind port 0.
    pub fn local_name(&self) -> String {
        match self {
            BoundSocket::Tcp(l) => match l.local_addr() {
                Ok(a) => a.to_string(),
                Err(_) => "tcp:?".into(),
            },
            BoundSocket::Unix(_, p) => p.display().to_string(),
        }
    }
}

/// Numbers connections gateway-wide.
#[derive(Debug, Default)]
pub struct ConnectionIds(AtomicU64);

impl ConnectionIds {
    /// The next connection number (starting at 1).
    pub fn next(&self) -> ConnectionId {
        ConnectionId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The Listener actor.
pub struct Listener {
    /// What the connections will say about where they came in.
    info: ListenerInfo,
    /// The bound socket.
    socket: BoundSocket,
    /// Where accepted connections go.
    upgrade: Recipient<Accepted>,
    /// Limits shared by every listener.
    limits: Arc<ConnectionLimits>,
    /// Connection numbering shared by every listener.
    ids: Arc<ConnectionIds>,
}

impl Listener {
    /// A listener on a bound socket, handing connections to `upgrade`.
    pub fn new(
        info: ListenerInfo,
        socket: BoundSocket,
        upgrade: Recipient<Accepted>,
        limits: Arc<ConnectionLimits>,
        ids: Arc<ConnectionIds>,
    ) -> Self {
        Listener {
            info,
            socket,
            upgrade,
            limits,
            ids,
        }
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let accept = AcceptLoop {
            info: self.info.clone(),
            upgrade: self.upgrade.clone(),
            limits: Arc::clone(&self.limits),
            ids: Arc::clone(&self.ids),
        };
        let socket = self.socket.clone();
        info!(target: "xgate::listener", listener = %self.info.name, "listening on {}", socket.local_name());
        ctx.spawn(
            async move { accept.run(socket).await }
                .into_actor(self)
                .map(|result, _act, ctx| {
                    if let Err(e) = result {
                        warn!(target: "xgate::listener", "listener failed: {e}");
                    }
                    ctx.stop();
                }),
        );
    }
}

/// The accept loop, owned by the future the Listener runs.
struct AcceptLoop {
    info: ListenerInfo,
    upgrade: Recipient<Accepted>,
    limits: Arc<ConnectionLimits>,
    ids: Arc<ConnectionIds>,
}

/// The first accept-error backoff; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest accept-error backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(64);

impl AcceptLoop {
    async fn run(self, socket: BoundSocket) -> io::Result<()> {
        match socket {
            BoundSocket::Tcp(l) => {
                let std = l.try_clone()?;
                std.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(std)?;
                let mut backoff = FIRST_BACKOFF;
                loop {
                    match listener.accept().await {
                        Ok((stream, addr)) => {
                            backoff = FIRST_BACKOFF;
                            let _ = stream.set_nodelay(true);
                            self.hand_on(Box::new(stream), Peer::Tcp(addr)).await;
                        }
                        Err(e) => backoff = self.back_off(e, backoff).await,
                    }
                }
            }
            BoundSocket::Unix(l, _) => {
                let std = l.try_clone()?;
                std.set_nonblocking(true)?;
                let listener = tokio::net::UnixListener::from_std(std)?;
                let mut backoff = FIRST_BACKOFF;
                loop {
                    match listener.accept().await {
                        Ok((stream, _addr)) => {
                            backoff = FIRST_BACKOFF;
                            let peer = match stream.peer_cred() {
                                Ok(c) => Peer::Unix {
                                    uid: Some(c.uid()),
                                    gid: Some(c.gid()),
                                    pid: c.pid(),
                                },
                                Err(_) => Peer::Unix {
                                    uid: None,
                                    gid: None,
                                    pid: None,
                                },
                            };
                            self.hand_on(Box::new(stream), peer).await;
                        }
                        Err(e) => backoff = self.back_off(e, backoff).await,
                    }
                }
            }
        }
    }

    async fn back_off(&self, e: io::Error, backoff: Duration) -> Duration {
        warn!(target: "xgate::listener", listener = %self.info.name, "accept failed: {e}; retrying in {backoff:?}");
        tokio::time::sleep(backoff).await;
        (backoff * 2).min(MAX_BACKOFF)
    }

    async fn hand_on(&self, mut stream: BoxedStream, peer: Peer) {
        let id = self.ids.next();
        let permit = match self.limits.try_acquire(peer.limit_key()) {
            Ok(p) => p,
            Err(e) => {
                warn!(target: "xgate::listener", %peer, "refused: {e}");
                // Encoders are not known yet: xpra's plain-text form of a disconnect.
                let line = crate::upgrade::setup_failed(&e.to_string());
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), stream.write_all(&line)).await;
                });
                return;
            }
        };
        debug!(target: "xgate::listener", %id, %peer, "accepted");
        let info = ConnectionInfo {
            id,
            peer,
            listener: self.info.clone(),
            transport: self.info.kind,
            request_path: None,
            client_certificate: None,
        };
        self.upgrade.do_send(Accepted {
            info,
            stream,
            permit,
        });
    }
}
