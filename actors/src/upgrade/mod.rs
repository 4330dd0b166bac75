//! The TransportUpgrade actor: decides what a new connection speaks and unwraps it into a plain
//! xpra byte stream for the Authenticator, so that nothing after it needs to know the transport.
//!
//! Detection is one bounded read with a timeout ([`sniff`]). Plain xpra goes straight on. TLS,
//! HTTP/WebSocket and SSH are recognised and, until their transports are served, refused with a
//! clear answer in the peer's own language; anything else gets xpra's plain-text
//! `disconnect: ...` line. Each connection is handled in its own future: a slow or hostile client
//! holds nothing but its own task.

mod prefixed;
pub mod sniff;

pub use prefixed::Prefixed;

use std::time::Duration;

use actix::prelude::*;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use crate::pipeline::{Accepted, Upgraded};
use sniff::Sniffed;

/// How long a refused connection's answer may take to write before the socket is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The TransportUpgrade actor.
pub struct TransportUpgrade {
    /// `peek-timeout`: how long to wait for a client's first bytes.
    peek_timeout: Duration,
    /// Where unwrapped xpra streams go.
    auth: Recipient<Upgraded>,
}

impl TransportUpgrade {
    /// An upgrade stage handing xpra streams to `auth`.
    pub fn new(peek_timeout: Duration, auth: Recipient<Upgraded>) -> Self {
        TransportUpgrade { peek_timeout, auth }
    }
}

impl Actor for TransportUpgrade {
    type Context = Context<Self>;
}

impl Handler<Accepted> for TransportUpgrade {
    type Result = ();

    fn handle(&mut self, msg: Accepted, _ctx: &mut Self::Context) {
        let timeout = self.peek_timeout;
        let auth = self.auth.clone();
        // A spawned task, not a context future: the connection's fate must not depend on this
        // actor staying up, and a panic in one connection's handling stays in its task.
        tokio::spawn(async move {
            let Accepted {
                info,
                mut stream,
                permit,
            } = msg;
            let (prefix, verdict) = match sniff::sniff(&mut stream, timeout).await {
                Ok(v) => v,
                Err(e) => {
                    debug!(target: "xgate::upgrade", id = %info.id, peer = %info.peer, "closed before sniffing: {e}");
                    return;
                }
            };
            debug!(target: "xgate::upgrade", id = %info.id, peer = %info.peer, ?verdict, "sniffed");
            let refusal: &[u8] = match verdict {
                Sniffed::Xpra => {
                    let stream = Box::new(Prefixed::new(prefix, stream));
                    auth.do_send(Upgraded { info, stream, permit });
                    return;
                }
                Sniffed::Http => b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 45\r\n\r\nthis port does not support HTTP requests yet\n",
                Sniffed::Ssh => b"disconnect: connection setup failed, SSH is not enabled on this port?\n",
                // A TLS client cannot read plain text; closing is the clearest answer until
                // TLS is configured.
                Sniffed::Tls => b"",
                Sniffed::Unknown => b"disconnect: connection setup failed, invalid packet header?\n",
            };
            info!(target: "xgate::upgrade", id = %info.id, peer = %info.peer, ?verdict, "refused");
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
                let _ = stream.write_all(refusal).await;
                let _ = stream.shutdown().await;
            })
            .await;
            drop(permit);
        });
    }
}
