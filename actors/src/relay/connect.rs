//! Connecting to an xpra server: unix sockets and `tcp://` targets, retrying while a server starts,
//! and `ssh://` targets through [`crate::ssh::client`].

use std::io;
use std::time::{Duration, Instant};

use tracing::debug;
use xgate_messages::{BoxedStream, TargetAddress};

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
) -> Result<BoxedStream, io::Error> {
    let attempt = async {
        match address {
            TargetAddress::Unix { path } => {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok(Box::new(s) as BoxedStream)
            }
            TargetAddress::Tcp { host, port } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Ok(Box::new(s) as BoxedStream)
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
/// sockets for up to `retry_for` (a session that is still starting).
pub async fn connect(
    address: &TargetAddress,
    timeout: Duration,
    retry_for: Duration,
) -> Result<BoxedStream, ConnectError> {
    match address {
        TargetAddress::Unix { .. } | TargetAddress::Tcp { .. } => {}
        TargetAddress::Ssl { .. } => return Err(ConnectError::Unsupported("ssl://")),
        TargetAddress::Ws { .. } => return Err(ConnectError::Unsupported("ws://")),
        TargetAddress::Wss { .. } => return Err(ConnectError::Unsupported("wss://")),
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
        match connect_once(address, timeout).await {
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
