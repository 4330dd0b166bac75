//! One connection to the builtin SSH server: russh runs the protocol, this handler decides the
//! logins and the channels.
//!
//! - Logins: `publickey` against the user's `authorized_keys` ([`super::keys`]); `password` and
//!   `none` through the Authenticator's chain for the connection ([`crate::auth::ssh`]).
//! - Channels: session channels only, at most [`super::MAX_OPEN_CHANNELS`] open at once and
//!   [`super::MAX_CHANNELS_PER_CONNECTION`] in all; pty, shell and subsystems are refused.
//! - `exec`: probes get their canned answers (stdout, `exit-status`, EOF, close); `xpra _proxy
//!   [DISPLAY]` turns the channel into the connection's xpra byte stream, handed to the
//!   Authenticator as an [`Upgraded`] connection of transport `ssh` whose user SSH already
//!   authenticated. Everything else gets a line on stderr and a non-zero exit status.
//!
//! The connection's place in the limits and its number go with its (single) xpra channel: real
//! clients open one per connection, and a second one is refused.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::Recipient;
use bytes::Bytes;
use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::{debug, info, warn};
use xgate_messages::{ConnectionInfo, TransportKind};

use super::exec::{self, ExecRequest};
use super::{keys, SshSettings, MAX_CHANNELS_PER_CONNECTION, MAX_OPEN_CHANNELS};
use crate::auth::ssh::{SshLogin, SshProof};
use crate::listener::ConnectionPermit;
use crate::pipeline::Upgraded;
use crate::registry::start::{StartMode, StartRequest};

/// SSH's `exit-status` for a command that does not exist, as a shell reports it.
const NOT_FOUND: u32 = 127;

/// Where an SSH connection's logins and xpra channels go.
#[derive(Clone)]
pub struct SshPeers {
    /// The Authenticator, for xpra channels.
    pub upgraded: Recipient<Upgraded>,
    /// The Authenticator, for `password` and `none` logins; `None`: only `publickey` works.
    pub login: Option<Recipient<SshLogin>>,
}

/// Serves one SSH connection to its end. `stream` must replay the bytes a sniff already read.
pub async fn serve<S>(
    settings: Arc<SshSettings>,
    peers: SshPeers,
    info: ConnectionInfo,
    permit: ConnectionPermit,
    stream: S,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = info.id;
    let peer = info.peer.clone();
    let logged_in = Arc::new(AtomicBool::new(false));
    let handler = SshConnection {
        settings: Arc::clone(&settings),
        peers,
        info,
        permit: Some(permit),
        user: None,
        logged_in: Arc::clone(&logged_in),
        channels: HashMap::new(),
        opened: 0,
    };
    info!(target: "xgate::ssh", %id, %peer, "SSH connection");
    let kill = CancellationToken::new();
    let stream = Killable::new(stream, kill.clone());
    let session =
        match russh::server::run_stream(Arc::clone(&settings.russh), stream, handler).await {
            Ok(s) => s,
            Err(e) => {
                info!(target: "xgate::ssh", %id, %peer, "SSH handshake failed: {e}");
                return;
            }
        };
    let mut session = std::pin::pin!(session);
    let ended = tokio::select! {
        r = &mut session => Some(r),
        () = tokio::time::sleep(settings.login_timeout) => None,
    };
    let ended = match ended {
        Some(r) => r,
        None => {
            if !logged_in.load(Ordering::Relaxed) {
                // russh handles no request of ours while a key exchange is stalled: cut the
                // socket under it.
                info!(target: "xgate::ssh", %id, %peer, "login timeout");
                kill.cancel();
            }
            session.await
        }
    };
    match ended {
        Ok(()) => debug!(target: "xgate::ssh", %id, "SSH connection closed"),
        // paramiko closes the socket without a disconnect message: the normal end.
        Err(russh::Error::IO(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            debug!(target: "xgate::ssh", %id, "SSH connection closed by the peer")
        }
        Err(e) => info!(target: "xgate::ssh", %id, %peer, "SSH connection ended: {e}"),
    }
}

/// The russh handler of one connection.
struct SshConnection {
    /// Shared settings (the `authorized_keys` template).
    settings: Arc<SshSettings>,
    /// Where logins are checked and xpra channels go.
    peers: SshPeers,
    /// The connection's facts (transport `ssh` once a channel is handed on).
    info: ConnectionInfo,
    /// The connection's place in the limits; taken by its xpra channel.
    permit: Option<ConnectionPermit>,
    /// The user SSH authenticated, once it has.
    user: Option<String>,
    /// Set at the login, for the login timeout in [`serve`].
    logged_in: Arc<AtomicBool>,
    /// Session channels open and not yet handed on, by id; a channel leaves when the client
    /// closes it or when it becomes the xpra stream.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels opened so far.
    opened: usize,
}

impl SshConnection {
    /// Records a successful login.
    fn accepted(&mut self, user: &str) {
        self.user = Some(user.to_string());
        self.logged_in.store(true, Ordering::Relaxed);
    }

    /// Ends a channel the way a finished command does: exit status, EOF, close.
    fn finish(&mut self, channel: ChannelId, status: u32, session: &mut Session) {
        let _ = session.exit_status_request(channel, status);
        let _ = session.eof(channel);
        let _ = session.close(channel);
    }

    /// Writes a line on the channel's stderr, then ends it with `status`.
    fn fail(&mut self, channel: ChannelId, status: u32, message: &str, session: &mut Session) {
        let _ = session.extended_data(channel, 1, Bytes::from(format!("xgate: {message}\n")));
        self.finish(channel, status, session);
    }

    /// Checks a password or `none` login with the Authenticator.
    async fn login(&mut self, user: &str, proof: SshProof) -> Auth {
        let method = match proof {
            SshProof::Nothing => "none",
            SshProof::Password(_) => "password",
        };
        let Some(login) = &self.peers.login else {
            return reject();
        };
        let verdict = login
            .send(SshLogin {
                info: self.ssh_info(),
                username: user.to_string(),
                proof,
            })
            .await;
        match verdict {
            Ok(Ok(())) => {
                info!(target: "xgate::ssh", id = %self.info.id, user, method, "SSH login accepted");
                self.accepted(user);
                Auth::Accept
            }
            Ok(Err(e)) => {
                // `none` is every client's first probe: not worth a line at info level.
                if method == "none" {
                    debug!(target: "xgate::ssh", id = %self.info.id, user, "none: {e}");
                } else {
                    info!(target: "xgate::ssh", id = %self.info.id, peer = %self.info.peer, user, method, "SSH login refused: {e}");
                }
                reject()
            }
            Err(e) => {
                warn!(target: "xgate::ssh", id = %self.info.id, "the Authenticator did not answer: {e}");
                reject()
            }
        }
    }

    /// The connection's facts as an SSH transport (for the chain `ssh-auth`).
    fn ssh_info(&self) -> ConnectionInfo {
        let mut info = self.info.clone();
        info.transport = TransportKind::Ssh;
        info
    }

    /// Whether `key` is in `user`'s `authorized_keys` (read off the event loop).
    async fn key_allowed(&self, user: &str, key: &PublicKey) -> bool {
        let Some(path) = keys::authorized_keys_path(&self.settings.authorized_keys, user) else {
            debug!(target: "xgate::ssh", user, "no account, so no authorized_keys");
            return false;
        };
        let key = key.clone();
        tokio::task::spawn_blocking(move || keys::is_authorized(&path, &key))
            .await
            .unwrap_or(false)
    }

    /// `xpra _proxy [DISPLAY]`: the channel becomes this connection's xpra stream. With
    /// `start` (`_proxy_start`), the handshake starts that session first.
    fn proxy(
        &mut self,
        channel: ChannelId,
        display: Option<String>,
        start: Option<StartRequest>,
        session: &mut Session,
    ) {
        let (Some(user), Some(permit)) = (self.user.clone(), self.permit.take()) else {
            self.fail(
                channel,
                1,
                "this SSH connection already carries an xpra session; open another connection",
                session,
            );
            return;
        };
        let Some(ch) = self.channels.remove(&channel) else {
            self.permit = Some(permit);
            return;
        };
        let mut info = self.ssh_info();
        info.request_path = display;
        info!(target: "xgate::ssh", id = %info.id, user = %user, display = ?info.request_path, "xpra channel");
        self.peers.upgraded.do_send(Upgraded {
            info,
            stream: Box::new(ch.into_stream()),
            permit,
            ssh_user: Some(user),
            start,
        });
    }
}

/// A refusal that lists the methods the client may still try.
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(
            &[MethodKind::PublicKey, MethodKind::Password][..],
        )),
        partial_success: false,
    }
}

impl Handler for SshConnection {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        Ok(self.login(user, SshProof::Nothing).await)
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self
            .login(user, SshProof::Password(password.to_string()))
            .await)
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, offer.public_key).await {
            Auth::Accept
        } else {
            reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.key_allowed(user, key.public_key).await {
            info!(target: "xgate::ssh", id = %self.info.id, user, key = %keys::fingerprint(key.public_key), "SSH login accepted (publickey)");
            self.accepted(user);
            Ok(Auth::Accept)
        } else {
            info!(target: "xgate::ssh", id = %self.info.id, peer = %self.info.peer, user, "SSH key refused: not in the user's authorized_keys");
            Ok(reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_OPEN_CHANNELS || self.opened >= MAX_CHANNELS_PER_CONNECTION {
            debug!(target: "xgate::ssh", id = %self.info.id, open = self.channels.len(), opened = self.opened, "channel refused");
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 4, // SSH_OPEN_RESOURCE_SHORTAGE
                    reason: format!(
                        "too many channels (at most {MAX_OPEN_CHANNELS} open at once and \
                         {MAX_CHANNELS_PER_CONNECTION} per connection)"
                    ),
                })
                .await;
            return Ok(());
        }
        self.opened += 1;
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data);
        let request = exec::parse(&command);
        debug!(target: "xgate::ssh", id = %self.info.id, %command, ?request, "exec");
        // The command "ran": its outcome is in its output and exit status, as with sshd.
        session.channel_success(channel)?;
        match request {
            ExecRequest::Probe { stdout, status } => {
                if !stdout.is_empty() {
                    session.data(channel, Bytes::from_static(stdout.as_bytes()))?;
                }
                self.finish(channel, status, session);
            }
            ExecRequest::Proxy { display } => self.proxy(channel, display, None, session),
            ExecRequest::Subcommand { subcommand, args } => {
                let refused = |why: String| {
                    info!(target: "xgate::ssh", id = %self.info.id, %command, "exec refused: {why}");
                    why
                };
                let started = match StartMode::from_proxy_subcommand(&subcommand) {
                    None => Err(refused(format!(
                        "'{subcommand}' is not supported: this SSH server runs only \
                         `xpra _proxy [DISPLAY]` and `xpra _proxy_start [DISPLAY] [OPTIONS]`"
                    ))),
                    Some(_) if !self.settings.start_sessions => Err(refused(
                        "starting sessions is not enabled on this gateway (proxy-start-sessions): \
                         attach to a running session with `xpra _proxy [DISPLAY]`"
                            .to_owned(),
                    )),
                    Some(mode) => StartRequest::from_proxy_args(mode, &args)
                        .map_err(|e| refused(e.to_string())),
                };
                match started {
                    Ok(request) => {
                        let display = request.display.map(|n| format!(":{n}"));
                        self.proxy(channel, display, Some(request), session)
                    }
                    Err(why) => self.fail(channel, 1, &why, session),
                }
            }
            ExecRequest::Unknown => {
                info!(target: "xgate::ssh", id = %self.info.id, %command, "exec refused");
                self.fail(
                    channel,
                    NOT_FOUND,
                    "command not found: this SSH server only runs `xpra _proxy [DISPLAY]`",
                    session,
                )
            }
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        info!(target: "xgate::ssh", id = %self.info.id, "shell refused");
        session.channel_success(channel)?;
        self.fail(
            channel,
            1,
            "no shell here: this SSH server only reaches xpra sessions (xpra attach ssh://...)",
            session,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        info!(target: "xgate::ssh", id = %self.info.id, name, "subsystem refused");
        session.channel_failure(channel)?;
        self.fail(channel, 1, &format!("no subsystem '{name}' here"), session);
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Accepted and ignored: nothing runs here that would read it (OpenSSH sends LANG).
        session.channel_success(channel)?;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // 6.5.5 asks for agent forwarding on its data channel (want_reply 0); nothing here uses
        // an agent.
        Ok(false)
    }
}

/// A stream that fails every read and write once its token is cancelled (the login timeout),
/// which ends the russh session that owns it whatever state it is in.
struct Killable<S> {
    /// The connection.
    inner: S,
    /// Completes when the token is cancelled.
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Killable<S> {
    fn new(inner: S, token: CancellationToken) -> Self {
        Killable {
            inner,
            killed: Box::pin(token.cancelled_owned()),
        }
    }

    /// Whether the token was cancelled (registers the waker otherwise).
    fn is_killed(&mut self, cx: &mut Context<'_>) -> bool {
        self.killed.as_mut().poll(cx).is_ready()
    }
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "login timeout")
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
