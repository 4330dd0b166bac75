//! The TransportUpgrade actor: decides what a new connection speaks and unwraps it into a plain
//! xpra byte stream for the Authenticator, so that nothing after it needs to know the transport.
//!
//! Detection is one bounded read with a timeout ([`sniff`]); a client that stays silent is taken
//! for an xpra client. Then (reference §5.2):
//! - xpra goes straight on (`tcp`);
//! - TLS is accepted with openssl ([`tls`]) and the decrypted stream is sniffed again as
//!   `ssl-mode` says: xpra inside TLS is `ssl`, HTTP inside TLS is `wss`;
//! - HTTP is served ([`http`]): a WebSocket upgrade becomes `ws` (or `wss`) through
//!   [`ws::WsStream`], other requests get the HTML5 client's files or a clear error;
//! - SSH goes to the builtin SSH server ([`crate::ssh::server`]), whose `xpra _proxy` channels
//!   come back to the Authenticator as `ssh` connections (refused with a clear answer when the
//!   gateway has no SSH settings);
//! - anything else gets xpra's plain-text `disconnect: ...` line.
//!
//! Dedicated listeners narrow this: `bind-ssl` and `bind-wss` require TLS (or silence, which
//! starts the handshake), `bind-wss` always speaks HTTP inside, `bind-ws` requires HTTP or TLS,
//! `bind-ssh` speaks only SSH (nothing is sniffed: the server speaks first).
//! Each connection is handled in its own task, bounded by timeouts: a slow or hostile client
//! holds nothing but its own task.

pub mod frame;
pub mod http;
mod prefixed;
pub mod request;
pub mod sniff;
pub mod tls;
pub mod ws;

pub use prefixed::Prefixed;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};
use xgate_config::{Config, SslMode};
use xgate_messages::{BoxedStream, ConnectionInfo, TransportKind};

use crate::auth::ssh::SshLogin;
use crate::listener::ConnectionPermit;
use crate::pipeline::{Accepted, Upgraded};
use sniff::Sniffed;

/// How long a refused connection's answer may take to write before the socket is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an HTTP connection may stay idle between two requests.
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The most requests one HTTP connection may carry.
const HTTP_MAX_REQUESTS: usize = 1000;

/// Where Debian's xpra package installs the HTML5 client, served when `www` is unset.
pub const DEFAULT_WWW: &str = "/usr/share/xpra/www";

/// What the upgrade stage needs to know, shared by every connection.
pub struct UpgradeSettings {
    /// `peek-timeout`: how long to wait for a client's first bytes (also inside TLS).
    pub peek_timeout: Duration,
    /// Time allowed for a TLS handshake and for each HTTP request head.
    pub handshake_timeout: Duration,
    /// The TLS acceptor; `None`: TLS connections are closed.
    pub tls: Option<SslAcceptor>,
    /// `ssl-mode`: what runs inside TLS on a shared port.
    pub ssl_mode: SslMode,
    /// The HTML5 client's files and the extra headers.
    pub files: http::StaticFiles,
    /// The largest WebSocket frame payload accepted: a whole packet with its chunk headers.
    pub max_frame: u64,
    /// The builtin SSH server's settings; `None`: SSH clients are refused.
    pub ssh: Option<Arc<crate::ssh::SshSettings>>,
}

impl std::fmt::Debug for UpgradeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeSettings")
            .field("peek_timeout", &self.peek_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("tls", &self.tls.is_some())
            .field("ssl_mode", &self.ssl_mode)
            .field("files", &self.files)
            .field("max_frame", &self.max_frame)
            .field("ssh", &self.ssh.is_some())
            .finish()
    }
}

/// Why the upgrade stage could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The certificate, key or CA file.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The SSH host key.
    #[error(transparent)]
    Ssh(#[from] crate::ssh::KeyError),
    /// The `http-headers` file.
    #[error("http-headers {path}: {source}")]
    Headers {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl UpgradeSettings {
    /// Plain settings: no TLS, no web files (HTTP is answered with 400).
    pub fn plain(peek_timeout: Duration) -> UpgradeSettings {
        UpgradeSettings {
            peek_timeout,
            handshake_timeout: Duration::from_secs(15),
            tls: None,
            ssl_mode: SslMode::Auto,
            files: http::StaticFiles::default(),
            max_frame: u64::from(xgate_protocol::ABS_MAX_PACKET_SIZE),
            ssh: None,
        }
    }

    /// Settings from the configuration. Without `ssl-cert`, a certificate is generated in the
    /// state dir on first run (owned by `owner`, the user the gateway drops to), and likewise an
    /// SSH host key without `ssh-host-key`. Returns lines for the operator: the certificate in
    /// use and its SHA-256 fingerprint, the SSH host key's fingerprint, the web root.
    pub fn from_config(
        cfg: &Config,
        owner: Option<(u32, u32)>,
    ) -> Result<(UpgradeSettings, Vec<String>), SetupError> {
        let mut notes = Vec::new();
        let (cert, key) = match &cfg.ssl_cert {
            Some(cert) => (cert.clone(), cfg.ssl_key.clone()),
            None => {
                let (path, created) = tls::ensure_default_certificate(&cfg.state_dir, owner)?;
                if created {
                    notes.push(format!(
                        "generated a self-signed TLS certificate in {}",
                        path.display()
                    ));
                }
                (path, None)
            }
        };
        let acceptor = tls::build_acceptor(
            &cert,
            key.as_deref(),
            cfg.ssl_ca_certs.as_deref(),
            cfg.ssl_client_verify_mode,
        )?;
        notes.push(format!(
            "TLS certificate {} SHA-256 fingerprint {}",
            cert.display(),
            tls::fingerprint(&cert)?
        ));
        let root = cfg.www.clone().or_else(|| {
            let d = PathBuf::from(DEFAULT_WWW);
            d.is_dir().then_some(d)
        });
        if let Some(r) = &root {
            notes.push(format!("serving web files from {}", r.display()));
        }
        let headers = match &cfg.http_headers {
            Some(p) => http::load_headers(p).map_err(|source| SetupError::Headers {
                path: p.display().to_string(),
                source,
            })?,
            None => Vec::new(),
        };
        let (ssh, ssh_notes) = crate::ssh::SshSettings::from_config(cfg, owner)?;
        notes.extend(ssh_notes);
        let max_frame = cfg
            .max_packet_size
            .saturating_add(64 * 1024)
            .min(u64::from(u32::MAX));
        Ok((
            UpgradeSettings {
                peek_timeout: cfg.peek_timeout,
                handshake_timeout: cfg.login_timeout.min(Duration::from_secs(15)),
                tls: Some(acceptor),
                ssl_mode: cfg.ssl_mode,
                files: http::StaticFiles { root, headers },
                max_frame,
                ssh: Some(Arc::new(ssh)),
            },
            notes,
        ))
    }
}

/// The TransportUpgrade actor.
pub struct TransportUpgrade {
    /// Timeouts, TLS and web settings.
    settings: Arc<UpgradeSettings>,
    /// Where unwrapped xpra streams go.
    auth: Recipient<Upgraded>,
    /// Where the SSH server's `password` and `none` logins are checked; `None`: only
    /// `publickey` logins succeed.
    ssh_login: Option<Recipient<SshLogin>>,
}

impl TransportUpgrade {
    /// An upgrade stage handing xpra streams to `auth`.
    pub fn new(settings: Arc<UpgradeSettings>, auth: Recipient<Upgraded>) -> Self {
        TransportUpgrade {
            settings,
            auth,
            ssh_login: None,
        }
    }

    /// Checks SSH `password` and `none` logins with `login` (the Authenticator).
    pub fn with_ssh_login(mut self, login: Recipient<SshLogin>) -> Self {
        self.ssh_login = Some(login);
        self
    }
}

impl Actor for TransportUpgrade {
    type Context = Context<Self>;
}

impl Handler<Accepted> for TransportUpgrade {
    type Result = ();

    fn handle(&mut self, msg: Accepted, _ctx: &mut Self::Context) {
        let conn = Conn {
            settings: Arc::clone(&self.settings),
            auth: self.auth.clone(),
            ssh_login: self.ssh_login.clone(),
            info: msg.info,
            permit: msg.permit,
        };
        // A spawned task, not a context future: the connection's fate must not depend on this
        // actor staying up, and a panic in one connection's handling stays in its task.
        tokio::spawn(conn.run(msg.stream));
    }
}

/// One connection in the upgrade stage.
struct Conn {
    /// Shared settings.
    settings: Arc<UpgradeSettings>,
    /// The Authenticator.
    auth: Recipient<Upgraded>,
    /// The Authenticator, for SSH logins.
    ssh_login: Option<Recipient<SshLogin>>,
    /// Its facts; `transport` and `request_path` are set here.
    info: ConnectionInfo,
    /// Its place in the limits, handed on or dropped with it.
    permit: ConnectionPermit,
}

/// The plain-text refusals, in xpra's words.
/// Why bytes that are not xpra are refused.
const NOT_XPRA: &str = "invalid packet header";
/// Why an SSH client is refused when the gateway has no SSH settings, or inside TLS.
const NO_SSH: &str = "SSH is not enabled on this port";
/// Why plain bytes are refused on a TLS-only listener.
const TLS_ONLY: &str = "this port requires TLS";

/// xpra's plain-text answer to a connection it cannot set up (no encoder is known yet):
/// `disconnect: connection setup failed, REASON?`.
pub fn setup_failed(reason: &str) -> Bytes {
    xgate_protocol::plain_text_disconnect(&format!("connection setup failed, {reason}?"))
}

impl Conn {
    async fn run(self, mut stream: BoxedStream) {
        let id = self.info.id;
        let peer = self.info.peer.clone();
        if self.info.listener.kind == TransportKind::Ssh {
            // An SSH server speaks first: nothing to sniff.
            return self.ssh(Bytes::new(), stream).await;
        }
        let (prefix, verdict) = match sniff::sniff(&mut stream, self.settings.peek_timeout).await {
            Ok(v) => v,
            Err(e) => {
                debug!(target: "xgate::upgrade", %id, %peer, "closed before sniffing: {e}");
                return;
            }
        };
        debug!(target: "xgate::upgrade", %id, %peer, ?verdict, "sniffed");
        let listener = self.info.listener.kind;
        let tls_only = matches!(listener, TransportKind::Ssl | TransportKind::Wss);
        match verdict {
            Sniffed::Tls => self.tls(prefix, stream).await,
            // Silence on a TLS-only port: the client may wait for the server; start the handshake.
            Sniffed::Xpra if tls_only && prefix.is_empty() => self.tls(prefix, stream).await,
            _ if tls_only => self.refuse(stream, verdict, &setup_failed(TLS_ONLY)).await,
            Sniffed::Http => {
                let transport = TransportKind::Ws;
                self.http(BytesMut::from(&prefix[..]), stream, transport)
                    .await
            }
            Sniffed::Xpra if listener == TransportKind::Ws => {
                let answer =
                    http::simple_response(400, "Bad Request", "this port speaks HTTP\n", &[]);
                self.refuse(stream, verdict, &answer).await
            }
            Sniffed::Xpra => {
                let stream = Box::new(Prefixed::new(prefix, stream));
                self.hand_on(stream);
            }
            Sniffed::Ssh => self.ssh(prefix, stream).await,
            Sniffed::Unknown => self.refuse(stream, verdict, &setup_failed(NOT_XPRA)).await,
        }
    }

    /// SSH: the builtin server, reading the sniffed bytes first.
    async fn ssh(self, prefix: Bytes, stream: BoxedStream) {
        let Some(settings) = self.settings.ssh.clone() else {
            return self
                .refuse(stream, Sniffed::Ssh, &setup_failed(NO_SSH))
                .await;
        };
        let peers = crate::ssh::server::SshPeers {
            upgraded: self.auth,
            login: self.ssh_login,
        };
        let stream = Prefixed::new(prefix, stream);
        crate::ssh::server::serve(settings, peers, self.info, self.permit, stream).await;
    }

    /// Gives the unwrapped stream to the Authenticator.
    fn hand_on(self, stream: BoxedStream) {
        info!(target: "xgate::upgrade", id = %self.info.id, peer = %self.info.peer, transport = %self.info.transport, "upgraded");
        self.auth.do_send(Upgraded {
            info: self.info,
            stream,
            permit: self.permit,
            ssh_user: None,
            start: None,
        });
    }

    /// Writes a short answer and closes.
    async fn refuse<S: AsyncWrite + Unpin>(self, mut stream: S, verdict: Sniffed, answer: &[u8]) {
        info!(target: "xgate::upgrade", id = %self.info.id, peer = %self.info.peer, ?verdict, "refused");
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
            let _ = stream.write_all(answer).await;
            let _ = stream.shutdown().await;
        })
        .await;
        drop(self.permit);
    }

    /// TLS: handshake, then what `ssl-mode` and the decrypted bytes say.
    async fn tls(mut self, prefix: Bytes, stream: BoxedStream) {
        let id = self.info.id;
        let Some(acceptor) = &self.settings.tls else {
            // A TLS client cannot read plain text: closing is the clearest answer.
            info!(target: "xgate::ssl", %id, peer = %self.info.peer, "TLS is not configured; closed");
            return;
        };
        // xpra's `auto`: a ClientHello offering ALPN http/1.1 comes from a browser.
        let alpn_http = prefix.windows(9).any(|w| w == b"\x08http/1.1");
        let ssl = match Ssl::new(acceptor.context()) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "xgate::ssl", %id, "cannot start TLS: {e}");
                return;
            }
        };
        let mut tls = match tokio_openssl::SslStream::new(ssl, Prefixed::new(prefix, stream)) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "xgate::ssl", %id, "cannot start TLS: {e}");
                return;
            }
        };
        let handshake =
            tokio::time::timeout(self.settings.handshake_timeout, Pin::new(&mut tls).accept())
                .await;
        match handshake {
            Err(_) => {
                info!(target: "xgate::ssl", %id, peer = %self.info.peer, "TLS handshake timed out");
                return;
            }
            Ok(Err(e)) => {
                info!(target: "xgate::ssl", %id, peer = %self.info.peer, "TLS handshake failed: {e}");
                return;
            }
            Ok(Ok(())) => {}
        }
        self.info.client_certificate = tls::verified_peer_subject(tls.ssl());
        let client = self
            .info
            .client_certificate
            .as_ref()
            .map(ToString::to_string);
        debug!(target: "xgate::ssl", %id, version = tls.ssl().version_str(), cipher = tls.ssl().current_cipher().map(|c| c.name()).unwrap_or(""), client = ?client, "TLS established");
        let mode = match self.info.listener.kind {
            TransportKind::Wss | TransportKind::Ws => SslMode::Www,
            _ => self.settings.ssl_mode,
        };
        let www = match mode {
            SslMode::Tcp => false,
            SslMode::Www => true,
            SslMode::Auto if alpn_http => true,
            SslMode::Auto => {
                let (inner_prefix, verdict) = match sniff::sniff(
                    &mut tls,
                    self.settings.peek_timeout,
                )
                .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        debug!(target: "xgate::ssl", %id, "closed inside TLS before sniffing: {e}");
                        return;
                    }
                };
                debug!(target: "xgate::ssl", %id, ?verdict, "sniffed inside TLS");
                match verdict {
                    Sniffed::Xpra => {
                        self.info.transport = TransportKind::Ssl;
                        self.hand_on(Box::new(Prefixed::new(inner_prefix, tls)));
                        return;
                    }
                    Sniffed::Http => {
                        let buf = BytesMut::from(&inner_prefix[..]);
                        return self.http(buf, Box::new(tls), TransportKind::Wss).await;
                    }
                    Sniffed::Ssh => return self.refuse(tls, verdict, &setup_failed(NO_SSH)).await,
                    Sniffed::Tls | Sniffed::Unknown => {
                        return self.refuse(tls, verdict, &setup_failed(NOT_XPRA)).await
                    }
                }
            }
        };
        if www {
            self.http(BytesMut::new(), Box::new(tls), TransportKind::Wss)
                .await
        } else {
            self.info.transport = TransportKind::Ssl;
            self.hand_on(Box::new(tls));
        }
    }

    /// HTTP: requests until a WebSocket upgrade (handed on as `transport`) or the end.
    async fn http(self, mut buf: BytesMut, mut stream: BoxedStream, transport: TransportKind) {
        let id = self.info.id;
        let mut timeout = self.settings.handshake_timeout;
        for _ in 0..HTTP_MAX_REQUESTS {
            let req = match http::read_request(&mut stream, &mut buf, timeout).await {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(http::ReadError::Parse(e)) => {
                    info!(target: "xgate::http", %id, peer = %self.info.peer, "bad request: {e}");
                    let (status, reason) = e.status();
                    let answer = http::simple_response(status, reason, &format!("{e}\n"), &[]);
                    return self.refuse(stream, Sniffed::Http, &answer).await;
                }
                Err(e) => {
                    debug!(target: "xgate::http", %id, "no request: {e}");
                    return;
                }
            };
            debug!(target: "xgate::http", %id, method = %req.method, target = %req.target, "request");
            if ws::is_upgrade(&req) {
                return self.websocket(req, buf, stream, transport).await;
            }
            match self.settings.files.serve(&req, &mut stream).await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.shutdown()).await;
                    return;
                }
            }
            timeout = HTTP_IDLE_TIMEOUT;
        }
    }

    /// A WebSocket upgrade: checked, answered with 101, and handed on as a [`ws::WsStream`].
    async fn websocket(
        mut self,
        req: http::Request,
        leftover: BytesMut,
        mut stream: BoxedStream,
        transport: TransportKind,
    ) {
        let id = self.info.id;
        let answer = match ws::check_upgrade(&req) {
            Ok(a) => a,
            Err(e) => {
                info!(target: "xgate::ws", %id, peer = %self.info.peer, "upgrade refused: {e}");
                let (status, reason) = e.status();
                let mut extra = self.settings.files.headers.clone();
                if status == 426 {
                    extra.push(("Sec-WebSocket-Version".into(), "13".into()));
                }
                let answer = http::simple_response(status, reason, &format!("{e}\n"), &extra);
                return self.refuse(stream, Sniffed::Http, &answer).await;
            }
        };
        let sent = tokio::time::timeout(self.settings.handshake_timeout, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            debug!(target: "xgate::ws", %id, "client left during the upgrade");
            return;
        }
        self.info.transport = transport;
        self.info.request_path = display_path(req.path());
        debug!(target: "xgate::ws", %id, path = ?self.info.request_path, "WebSocket established");
        let ws = ws::WsStream::new(stream, leftover, self.settings.max_frame);
        self.hand_on(Box::new(ws));
    }
}

/// The request path as a display choice: `/100` names display 100; the HTML5 client's own page
/// (`/index.html`, its default path) and `/` choose nothing.
fn display_path(path: &str) -> Option<String> {
    let p = path.trim_matches('/');
    let is_page = Path::new(p)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    (!p.is_empty() && !is_page).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_path_ignores_the_page() {
        assert_eq!(display_path("/100"), Some("/100".into()));
        assert_eq!(display_path("/index.html"), None);
        assert_eq!(display_path("/"), None);
    }
}
