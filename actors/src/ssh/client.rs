//! `ssh://user@host[:port]/DISPLAY` targets: the gateway logs in with russh (its key from
//! `ssh-key`), checks the host key against `ssh-known-hosts` (an unknown host is refused unless
//! `ssh-accept-new-host-keys`; a changed key always is), runs the remote `xpra _proxy DISPLAY`
//! and relays the channel. Output of the remote shell's start-up files before the session's first
//! packet is skipped ([`SkipJunk`]), as xpra 6.5.5's own client does.
//!
//! The relay's connect function knows only a target address, so the client's settings are set
//! once for the process ([`configure`]) when the gateway starts.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use russh::client::{self, Handle, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::ChannelStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::{debug, info, warn};
use xgate_config::Config;
use xgate_messages::{BoxedStream, TargetAddress};

use super::keys;

/// The most bytes skipped before the session's first packet: a chatty `.bashrc`, not a stream.
const MAX_JUNK: usize = 64 * 1024;

/// The key files tried, in order, when `ssh-key` is unset (as OpenSSH does).
const DEFAULT_KEYS: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

/// How the gateway logs in to `ssh://` targets.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `ssh-key`: the private key; `None`: `~/.ssh/id_*` of the gateway's user.
    pub key: Option<PathBuf>,
    /// `ssh-known-hosts`: `None`: `~/.ssh/known_hosts` of the gateway's user.
    pub known_hosts: Option<PathBuf>,
    /// `ssh-accept-new-host-keys`: record an unknown host's key instead of refusing it.
    pub accept_new: bool,
}

impl ClientSettings {
    /// The settings of the configuration.
    pub fn from_config(cfg: &Config) -> ClientSettings {
        ClientSettings {
            key: cfg.ssh_key.clone(),
            known_hosts: cfg.ssh_known_hosts.clone(),
            accept_new: cfg.ssh_accept_new_host_keys,
        }
    }
}

/// The process's client settings (see the module documentation for why this is global).
static SETTINGS: RwLock<Option<Arc<ClientSettings>>> = RwLock::new(None);

/// Sets the client settings used from now on (the binary calls it at start).
pub fn configure(settings: ClientSettings) {
    let mut s = SETTINGS.write().unwrap_or_else(|p| p.into_inner());
    *s = Some(Arc::new(settings));
}

fn settings() -> Arc<ClientSettings> {
    SETTINGS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| {
            Arc::new(ClientSettings {
                key: None,
                known_hosts: None,
                accept_new: false,
            })
        })
}

/// Why an `ssh://` target could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum SshClientError {
    /// Not an `ssh://` address.
    #[error("not an ssh:// target")]
    NotSsh,
    /// No key to log in with.
    #[error("no SSH key: set ssh-key (tried {0})")]
    NoKey(String),
    /// The key file could not be loaded.
    #[error("ssh-key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The host key is not in known_hosts (and new ones are not accepted).
    #[error("unknown host key {fingerprint} for {host}; add it to {known_hosts} or set ssh-accept-new-host-keys")]
    UnknownHost {
        /// `[host]:port`.
        host: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// The file consulted.
        known_hosts: String,
    },
    /// The host presented another key than the one recorded.
    #[error("host key for {host} changed ({fingerprint}, {known_hosts} line {line}): refused")]
    HostKeyChanged {
        /// `[host]:port`.
        host: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// The file consulted.
        known_hosts: String,
        /// The line holding the recorded key.
        line: usize,
    },
    /// The server refused the key.
    #[error("the server refused the key for user {0}")]
    Refused(String),
    /// The connection or the SSH protocol failed.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    /// Nothing within the connect timeout.
    #[error("timed out")]
    Timeout,
}

/// What the host key check concluded, for the error message (the handler can only say no).
#[derive(Debug, Clone, Default)]
struct Verdict(Arc<std::sync::Mutex<Option<SshClientError>>>);

/// The client's russh handler: checks the host key.
struct HostKeyCheck {
    /// Host as written in known_hosts lookups.
    host: String,
    /// Port.
    port: u16,
    /// The known_hosts file.
    known_hosts: PathBuf,
    /// Whether unknown hosts are recorded and accepted.
    accept_new: bool,
    /// Why the key was refused, if it was.
    verdict: Verdict,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = server_public_key.public_key();
        let (host, port, path, accept_new) = (
            self.host.clone(),
            self.port,
            self.known_hosts.clone(),
            self.accept_new,
        );
        let checked =
            tokio::task::spawn_blocking(move || check_host(&host, port, &key, &path, accept_new))
                .await
                .map_err(|_| russh::Error::Disconnect)?;
        match checked {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.verdict.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}

/// Checks `key` for `host:port` against `known_hosts` (blocking: reads, maybe writes the file).
fn check_host(
    host: &str,
    port: u16,
    key: &PublicKey,
    known_hosts: &Path,
    accept_new: bool,
) -> Result<(), SshClientError> {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let fingerprint = keys::fingerprint(key);
    let file = known_hosts.display().to_string();
    match russh::keys::check_known_hosts_path(host, port, key, known_hosts) {
        Ok(true) => Ok(()),
        Err(russh::keys::Error::KeyChanged { line }) => Err(SshClientError::HostKeyChanged {
            host: name,
            fingerprint,
            known_hosts: file,
            line,
        }),
        // Unknown (a missing file is unknown too).
        Ok(false) | Err(_) if accept_new => {
            russh::keys::known_hosts::learn_known_hosts_path(host, port, key, known_hosts)
                .map_err(|e| SshClientError::Key {
                    path: file.clone(),
                    reason: format!("cannot record the host key: {e}"),
                })?;
            info!(target: "xgate::ssh", host = %name, %fingerprint, known_hosts = %file, "recorded a new host key");
            Ok(())
        }
        Ok(false) | Err(_) => Err(SshClientError::UnknownHost {
            host: name,
            fingerprint,
            known_hosts: file,
        }),
    }
}

/// The gateway user's `~/.ssh`.
fn dot_ssh() -> PathBuf {
    let home = crate::users::by_uid(crate::users::own_uid())
        .map(|a| a.home)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".ssh")
}

/// The key to log in with: `ssh-key`, else the first `~/.ssh/id_*` that exists.
fn load_key(settings: &ClientSettings) -> Result<PrivateKey, SshClientError> {
    let candidates: Vec<PathBuf> = match &settings.key {
        Some(k) => vec![k.clone()],
        None => DEFAULT_KEYS.iter().map(|k| dot_ssh().join(k)).collect(),
    };
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(SshClientError::NoKey(tried.join(", ")));
    };
    russh::keys::load_secret_key(path, None).map_err(|e| SshClientError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The remote command: `xpra _proxy DISPLAY` (the display always, since `_proxy` without one
/// fails when the user has several sessions). The display is shell-quoted.
fn remote_command(display: Option<&str>) -> String {
    match display {
        Some(d) if !d.is_empty() => format!("xpra _proxy '{}'", d.replace('\'', r"'\''")),
        _ => "xpra _proxy".to_string(),
    }
}

/// Connects to an `ssh://` target: login, host key check, `xpra _proxy DISPLAY`. Each step is
/// bounded by `timeout`.
pub async fn connect(
    address: &TargetAddress,
    timeout: Duration,
) -> Result<BoxedStream, SshClientError> {
    let TargetAddress::Ssh {
        user,
        host,
        port,
        display,
    } = address
    else {
        return Err(SshClientError::NotSsh);
    };
    let settings = settings();
    let key = {
        let s = Arc::clone(&settings);
        tokio::task::spawn_blocking(move || load_key(&s))
            .await
            .map_err(|_| SshClientError::Timeout)??
    };
    let user = user.clone().unwrap_or_else(crate::users::own_name);
    let verdict = Verdict::default();
    let handler = HostKeyCheck {
        host: host.clone(),
        port: *port,
        known_hosts: settings
            .known_hosts
            .clone()
            .unwrap_or_else(|| dot_ssh().join("known_hosts")),
        accept_new: settings.accept_new,
        verdict: verdict.clone(),
    };
    let config = Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..client::Config::default()
    });
    let connected = tokio::time::timeout(
        timeout,
        client::connect(config, (host.as_str(), *port), handler),
    )
    .await
    .map_err(|_| SshClientError::Timeout)?;
    let mut handle: Handle<HostKeyCheck> = match connected {
        Ok(h) => h,
        Err(e) => {
            let refused = verdict.0.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(refused.unwrap_or(SshClientError::Ssh(e)));
        }
    };
    let hash = handle.best_supported_rsa_hash().await?.flatten();
    let auth = tokio::time::timeout(
        timeout,
        handle.authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)),
    )
    .await
    .map_err(|_| SshClientError::Timeout)??;
    if !auth.success() {
        return Err(SshClientError::Refused(user));
    }
    let channel = tokio::time::timeout(timeout, handle.channel_open_session())
        .await
        .map_err(|_| SshClientError::Timeout)??;
    let command = remote_command(display.as_deref());
    debug!(target: "xgate::ssh", %address, %command, "exec on the target");
    channel.exec(true, command).await?;
    let stream = SshTarget {
        stream: channel.into_stream(),
        _handle: handle,
    };
    Ok(Box::new(SkipJunk::new(stream, address.to_string())))
}

/// A channel to a target, with the connection it lives on (dropping the handle would end it).
struct SshTarget {
    /// The channel of the remote `xpra _proxy`.
    stream: ChannelStream<Msg>,
    /// The SSH connection.
    _handle: Handle<HostKeyCheck>,
}

impl AsyncRead for SshTarget {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

crate::write_through::write_through!(stream, impl AsyncWrite for SshTarget);

/// A stream whose reads start at the first plausible xpra packet header: bytes before it (a
/// remote shell's greeting) are dropped and logged, at most [`MAX_JUNK`] of them.
pub struct SkipJunk<S> {
    /// The stream.
    inner: S,
    /// Bytes read while looking for the header; once found, what is left to hand out.
    buf: BytesMut,
    /// Whether the header was found (reads then pass through after `buf` is drained).
    found: bool,
    /// Bytes dropped so far.
    skipped: usize,
    /// The target, for the log.
    target: String,
}

impl<S> SkipJunk<S> {
    /// Wraps `inner`, whose first packet is to be looked for.
    pub fn new(inner: S, target: String) -> Self {
        SkipJunk {
            inner,
            buf: BytesMut::new(),
            found: false,
            skipped: 0,
            target,
        }
    }
}

/// Where the first xpra main-packet header in `data` starts, if one is there; otherwise how many
/// leading bytes cannot start one (all but a trailing `P` with fewer than 8 bytes after it).
fn find_header(data: &[u8]) -> Result<usize, usize> {
    let size = xgate_protocol::header::HEADER_SIZE;
    for (i, &b) in data.iter().enumerate() {
        if b != b'P' {
            continue;
        }
        if data.len() - i < size {
            return Err(i);
        }
        if crate::upgrade::sniff::is_xpra_header(&data[i..i + size]) {
            return Ok(i);
        }
    }
    Err(data.len())
}

impl<S: AsyncRead + Unpin> AsyncRead for SkipJunk<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.found {
                if !this.buf.is_empty() {
                    let n = this.buf.len().min(out.remaining());
                    out.put_slice(&this.buf[..n]);
                    this.buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    if !this.buf.is_empty() || this.skipped > 0 {
                        warn!(target: "xgate::ssh", target = %this.target, skipped = this.skipped + this.buf.len(), "the target closed before sending an xpra packet");
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => this.buf.extend_from_slice(rb.filled()),
            }
            let (junk, found) = match find_header(&this.buf) {
                Ok(at) => (at, true),
                Err(keep_from) => (keep_from, false),
            };
            if junk > 0 {
                let dropped = this.buf.split_to(junk);
                this.skipped += junk;
                debug!(target: "xgate::ssh", target = %this.target, junk = %String::from_utf8_lossy(&dropped), "skipped output before the first xpra packet");
            }
            this.found = found;
            if !found && this.skipped + this.buf.len() > MAX_JUNK {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "no xpra packet in the first {MAX_JUNK} bytes from {}",
                        this.target
                    ),
                )));
            }
        }
    }
}

crate::write_through::write_through!(inner, impl<S: AsyncWrite + Unpin> AsyncWrite for SkipJunk<S>);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A real main-packet header (rencodeplus, lz4, 0x10 bytes).
    const HEADER: &[u8] = b"P\x10\x11\x00\x00\x00\x00\x10";

    #[tokio::test]
    async fn junk_before_the_first_header_is_skipped() {
        let mut data = b"Welcome to junk host! PPP P\n".to_vec();
        data.extend_from_slice(HEADER);
        data.extend_from_slice(b"payload");
        let mut s = SkipJunk::new(&data[..], "t".into());
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(b"payload");
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn a_clean_stream_is_unchanged() {
        let mut data = HEADER.to_vec();
        data.extend_from_slice(b"rest");
        let mut s = SkipJunk::new(&data[..], "t".into());
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn endless_junk_is_an_error() {
        let data = vec![b'x'; MAX_JUNK + 10];
        let mut s = SkipJunk::new(&data[..], "t".into());
        let mut out = Vec::new();
        let e = s.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn header_search() {
        assert_eq!(find_header(b"abc"), Err(3));
        assert_eq!(find_header(b"abcP\x10"), Err(3));
        let mut d = b"xx".to_vec();
        d.extend_from_slice(HEADER);
        assert_eq!(find_header(&d), Ok(2));
    }

    #[test]
    fn remote_command_quotes_the_display() {
        assert_eq!(remote_command(Some(":100")), "xpra _proxy ':100'");
        assert_eq!(remote_command(Some("a'b")), r"xpra _proxy 'a'\''b'");
        assert_eq!(remote_command(None), "xpra _proxy");
    }

    #[test]
    fn host_keys_are_checked_against_known_hosts() {
        use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        let key = |seed| {
            PrivateKey::new(
                KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
                "",
            )
            .unwrap()
            .public_key()
            .clone()
        };
        // Unknown: refused, then recorded when new keys are accepted, then known.
        assert!(matches!(
            check_host("127.0.0.1", 2222, &key(1), &kh, false),
            Err(SshClientError::UnknownHost { .. })
        ));
        check_host("127.0.0.1", 2222, &key(1), &kh, true).unwrap();
        check_host("127.0.0.1", 2222, &key(1), &kh, false).unwrap();
        // Another key of the same type for the same host: refused, accepted or not.
        assert!(matches!(
            check_host("127.0.0.1", 2222, &key(2), &kh, true),
            Err(SshClientError::HostKeyChanged { .. })
        ));
    }
}
