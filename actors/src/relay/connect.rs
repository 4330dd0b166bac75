//! Connecting to an xpra server: unix sockets, `tcp://`, and `ssl://`, `ws://`, `wss://` targets
//! ([`super::transport`]), retrying while a server starts, and `ssh://` targets through
//! [`crate::ssh::client`].

use std::io;
use std::time::{Duration, Instant};

use tracing::debug;
use xgate_messages::{BoxedStream, TargetAddress};

use super::transport::{self, TargetTls};

/// Why a target could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The target's transport is not served yet.
    #[error("{0} targets are not supported yet")]
    Unsupported(&'static str),
    /// Every attempt failed; the last error is kept.
    #[error("cannot connect to {target}: {source}")]
    Failed {
        /// The target.
        target: String,
        /// The last attempt's error.
        source: io::Error,
    },
}

impl ConnectError {
    /// Whether trying again later may help (the server may be starting or restarting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConnectError::Failed { .. })
    }
}

/// Whether an error means "nobody listens yet" rather than "cannot ever work".
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NotFound
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
    )
}

async fn connect_once(
    address: &TargetAddress,
    timeout: Duration,
    tls: &TargetTls,
) -> Result<BoxedStream, io::Error> {
    let attempt = async {
        match address {
            TargetAddress::Unix { path } => {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok(Box::new(s) as BoxedStream)
            }
            TargetAddress::Tcp { host, port } => {
                Ok(Box::new(transport::tcp(host, *port).await?) as BoxedStream)
            }
            TargetAddress::Ssl { host, port } => {
                let s = transport::tcp(host, *port).await?;
                Ok(Box::new(transport::tls(s, host, tls).await?) as BoxedStream)
            }
            TargetAddress::Ws { host, port, path } => {
                let s = transport::tcp(host, *port).await?;
                Ok(Box::new(transport::websocket(s, host, *port, path).await?) as BoxedStream)
            }
            TargetAddress::Wss { host, port, path } => {
                let s = transport::tcp(host, *port).await?;
                let s = transport::tls(s, host, tls).await?;
                Ok(Box::new(transport::websocket(s, host, *port, path).await?) as BoxedStream)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unsupported target",
            )),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))?
}

/// Connects to `address`, each attempt bounded by `timeout`, retrying refused or missing
/// sockets for up to `retry_for` (a session that is still starting). `tls` says how `ssl://`
/// and `wss://` servers are verified.
pub async fn connect(
    address: &TargetAddress,
    timeout: Duration,
    retry_for: Duration,
    tls: &TargetTls,
) -> Result<BoxedStream, ConnectError> {
    match address {
        TargetAddress::Unix { .. }
        | TargetAddress::Tcp { .. }
        | TargetAddress::Ssl { .. }
        | TargetAddress::Ws { .. }
        | TargetAddress::Wss { .. } => {}
        TargetAddress::Ssh { .. } => {
            return crate::ssh::client::connect(address, timeout)
                .await
                .map_err(|e| ConnectError::Failed {
                    target: address.to_string(),
                    source: io::Error::other(e),
                })
        }
    }
    let give_up = Instant::now() + retry_for;
    let mut pause = Duration::from_millis(100);
    loop {
        match connect_once(address, timeout, tls).await {
            Ok(s) => return Ok(s),
            Err(e) if transient(&e) && Instant::now() + pause < give_up => {
                debug!(target: "xgate::proxy", %address, "connect failed ({e}), retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(source) => {
                return Err(ConnectError::Failed {
                    target: address.to_string(),
                    source,
                })
            }
        }
    }
}
