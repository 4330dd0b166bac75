//! One client's handshake: hello, the challenge rounds of its auth chain, one-shot requests, and
//! the choice of its session. It runs in its own task; nothing in it blocks a thread (file-reading
//! backends run on the blocking pool, the failure delay is a timer).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};
use xgate_messages::{GatewayEvent, LookupSessions, SessionTarget, UserIdentity};
use xgate_protocol::{PacketEncoder, Value};

use super::backends::{Backend, CheckContext, Grant, Role};
use super::challenge::{Challenge, ChallengeError, SaltLedger};
use super::failures::FailureLimiter;
use super::AuthSettings;
use crate::conn::{writer_for_hello, ConnError, PacketConn};
use crate::gateway::json_to_value;
use crate::pipeline::{Authenticated, Upgraded};
use crate::registry;
use crate::registry::start::{wait_for_session, StartError, StartRequest, Starter};

/// What the handshake shares with every other: settings, limits, the salt ledger and its peers.
pub struct Shared {
    /// Failures per address.
    pub by_address: Mutex<FailureLimiter>,
    /// Failures per user name.
    pub by_user: Mutex<FailureLimiter>,
    /// Combined salts already used.
    pub ledger: Mutex<SaltLedger>,
    /// The session registry.
    pub registry: actix::Addr<registry::SessionRegistry>,
    /// Where authenticated clients go.
    pub relays: actix::Recipient<Authenticated>,
    /// Asks the gateway to stop (an allowed `stop` request).
    pub shutdown: actix::Recipient<super::StopGateway>,
    /// Starts sessions clients ask for, one display number each.
    pub starter: Starter,
}

/// How long a refused client may take to close after its `disconnect` before the gateway
/// closes.
const DISCONNECT_LINGER: Duration = Duration::from_secs(2);

/// How a handshake ended without a relay.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Send `disconnect` with this reason and extras, after `delay` times the failure delay.
    Disconnect {
        reason: String,
        extra: Vec<String>,
        delay: u32,
    },
    /// The connection is gone or answered already.
    Done,
}

pub(super) fn refuse(reason: &str, extra: impl Into<String>) -> Refusal {
    Refusal::Disconnect {
        reason: reason.into(),
        extra: vec![extra.into()],
        delay: 0,
    }
}

/// Runs the handshake of one upgraded connection to its end.
pub async fn run(shared: Arc<Shared>, settings: Arc<AuthSettings>, upgraded: Upgraded) {
    let Upgraded {
        info,
        stream,
        permit,
        ssh_user,
        start,
    } = upgraded;
    let peer_key = info.peer.limit_key();
    let banned = lock(&shared.by_address).banned_for(&peer_key, Instant::now());
    if let Some(left) = banned {
        info!(target: "xgate::auth", id = %info.id, peer = %info.peer, "refused: too many authentication failures ({}s left)", left.as_secs());
        let mut stream = stream;
        let line = xgate_protocol::plain_text_disconnect(
            "authentication failed, too many failures from this address",
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&line)).await;
        return;
    }
    let writer = xgate_protocol::PacketWriter::new(
        PacketEncoder::RencodePlus,
        xgate_protocol::Compressor::None,
        0,
    );
    let mut conn = PacketConn::new(stream, settings.max_initial_packet_size, writer);

    // The first hello, within the login timeout.
    let deadline = Instant::now() + settings.login_timeout;
    let (hello, encoder, _compression) = match read_hello(&mut conn, deadline).await {
        Ok(h) => h,
        Err(ConnError::Timeout) => {
            info!(target: "xgate::auth", id = %info.id, peer = %info.peer, "login timeout");
            let (mut stream, _) = conn.into_parts();
            let line = xgate_protocol::plain_text_disconnect("login timeout");
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&line)).await;
            return;
        }
        Err(e) => {
            debug!(target: "xgate::auth", id = %info.id, peer = %info.peer, "no hello: {e}");
            if let ConnError::Protocol(_) = e {
                let (mut stream, _) = conn.into_parts();
                let line = xgate_protocol::plain_text_disconnect("protocol error");
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&line)).await;
            }
            return;
        }
    };
    conn.writer = writer_for_hello(&hello, encoder, settings.compression_level);

    let delay = settings.failure_delay;
    let ssh_user = ssh_user.as_deref();
    match authenticate(
        &shared, &settings, &info, &mut conn, hello, deadline, ssh_user,
    )
    .await
    {
        Ok((hello, grant)) => {
            // A one-shot request is the gateway's to answer, except over an SSH `_proxy_start`:
            // that channel is a pipe to the new session, which answers it (as with xpra).
            if let Some(request) = request_of(&hello).filter(|_| start.is_none()) {
                let refusal = answer_request(
                    &shared, &settings, &info, &mut conn, &hello, &grant, &request,
                )
                .await;
                finish(conn, delay, refusal).await;
                return;
            }
            if grant.user.uid == Some(0) {
                warn!(target: "xgate::auth", id = %info.id, user = %grant.user.username, "refused: sessions mapped to uid 0");
                finish(
                    conn,
                    delay,
                    refuse("permission error", "cannot run proxy instances as root"),
                )
                .await;
                return;
            }
            match session_for(&shared, &settings, &info, &mut conn, &hello, &grant, start).await {
                Ok(target) => {
                    info!(target: "xgate::auth", id = %info.id, peer = %info.peer, user = %grant.user.username, display = %target.display, "authenticated");
                    conn.set_max_size(settings.max_packet_size);
                    shared.relays.do_send(Authenticated {
                        info,
                        client: conn,
                        hello,
                        user: grant.user,
                        target,
                        permit,
                    });
                }
                Err(refusal) => finish(conn, delay, refusal).await,
            }
        }
        Err(refusal) => finish(conn, delay, refusal).await,
    }
}

/// The session an authenticated client goes to: a new one when it asked for one (the hello's
/// `start-new-session`, SSH's `_proxy_start`) or has none at all and the gateway may start one,
/// as xpra's proxy does; otherwise its choice among its sessions. A client that asked not to
/// connect (`connect: False`, `xpra start --attach=no`) is told the new display and let go.
async fn session_for(
    shared: &Shared,
    settings: &AuthSettings,
    info: &xgate_messages::ConnectionInfo,
    conn: &mut PacketConn,
    hello: &Value,
    grant: &Grant,
    ssh_start: Option<StartRequest>,
) -> Result<SessionTarget, Refusal> {
    let requested = requested_display(hello, info);
    let sessions = shared
        .registry
        .send(LookupSessions {
            user: grant.user.clone(),
            source: grant.sessions.clone(),
        })
        .await
        .unwrap_or_default();
    let start_refused = |e: StartError| {
        warn!(target: "xgate::auth", id = %info.id, user = %grant.user.username, "no session started: {e}");
        refuse(e.reason(), e.to_string())
    };
    // Over SSH the channel is a pipe to the new session, which answers whatever the client
    // asks (a `detach` request when it does not attach), as behind xpra's `_proxy_start`.
    let over_ssh = ssh_start.is_some();
    let asked = match (ssh_start, hello.get("start-new-session")) {
        (Some(r), _) => Some(r),
        (None, Some(sns)) => {
            Some(StartRequest::from_hello(sns).map_err(|e| start_refused(e.into()))?)
        }
        (None, None) => None,
    };
    // xpra's proxy starts a session for a client that has none, when it may.
    let request = asked.or_else(|| {
        (sessions.is_empty() && settings.start.enabled).then(|| {
            StartRequest::for_display(
                requested
                    .as_deref()
                    .and_then(|d| d.trim_start_matches(':').parse().ok()),
            )
        })
    });
    let Some(request) = request else {
        return registry::choose(&sessions, requested.as_deref())
            .cloned()
            .map_err(|e| {
                info!(target: "xgate::auth", id = %info.id, user = %grant.user.username, "session not found: {e}");
                refuse(registry::SESSION_NOT_FOUND, e.to_string())
            });
    };
    let display = shared
        .starter
        .start(&settings.start, &request, &grant.user, &sessions)
        .await
        .map_err(start_refused)?;
    let target = wait_for_session(
        &shared.registry,
        &grant.user,
        display,
        settings.start.timeout,
    )
    .await
    .map_err(start_refused)?;
    if !over_ssh && hello.get("connect").and_then(Value::as_bool) == Some(false) {
        let mode = hello
            .get("start-new-session")
            .and_then(|sns| sns.get("mode"))
            .and_then(Value::as_str)
            .unwrap_or(request.mode.name());
        info!(target: "xgate::auth", id = %info.id, user = %grant.user.username, display = %target.display, "session started for a client that does not attach");
        return reply(
            conn,
            Value::dict([
                ("display", Value::from(target.display.as_str())),
                // The mode as the client named it (3.x `start`, 6.x `seamless`).
                ("mode", Value::from(mode)),
            ]),
        )
        .await;
    }
    Ok(target)
}

/// Ends a refused handshake: the failure delay, the `disconnect`, then a clean close.
async fn finish(mut conn: PacketConn, failure_delay: Duration, refusal: Refusal) {
    if let Refusal::Disconnect {
        reason,
        extra,
        delay,
    } = refusal
    {
        if delay > 0 {
            // The delay is a timer: it holds no thread, and the failure counters already moved.
            tokio::time::sleep(failure_delay * delay).await;
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        conn.disconnect_and_close(&reason, &extra, DISCONNECT_LINGER)
            .await;
    }
}

async fn read_hello(
    conn: &mut PacketConn,
    deadline: Instant,
) -> Result<(Value, PacketEncoder, u8), ConnError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (packet, encoder, compression) = conn.read_timeout(left).await?;
        match packet.type_name() {
            Some("hello") => {
                let caps = packet.get(1).cloned().unwrap_or(Value::Dict(Vec::new()));
                return Ok((caps, encoder, compression));
            }
            // Before the hello, nothing else is meaningful; xpra drops such packets too.
            other => debug!(target: "xgate::auth", "ignoring {:?} before hello", other),
        }
    }
}

/// The one-shot request a hello carries, if any (`request`, or 3.x's `<x>_request: True`).
fn request_of(hello: &Value) -> Option<String> {
    if let Some(r) = hello.lookup("request").and_then(Value::as_str) {
        return Some(r.to_string());
    }
    for r in [
        "info",
        "version",
        "id",
        "connect_test",
        "stop",
        "screenshot",
        "command",
        "exit",
        "detach",
    ] {
        if hello
            .lookup(&format!("{r}_request"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Some(r.to_string());
        }
    }
    None
}

/// The major version of the client's xpra, from its hello (0 when it does not say).
fn client_major(hello: &Value) -> u32 {
    hello
        .lookup("version")
        .and_then(Value::as_str)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(0)
}

/// The display a client asked for (see [`registry::requested_display`]); 6.5.5 GUI clients send
/// `display` as a dict of display caps, so only a string counts. Over SSH, `request_path` is
/// the display of the `xpra _proxy DISPLAY` command, which is what the client's URL named.
fn requested_display(hello: &Value, info: &xgate_messages::ConnectionInfo) -> Option<String> {
    let request_path = info.request_path.as_deref();
    if info.transport == xgate_messages::TransportKind::Ssh && request_path.is_some() {
        return registry::requested_display(None, None, request_path);
    }
    registry::requested_display(
        hello.get("display").and_then(Value::as_str),
        hello
            .get("session")
            .and_then(|s| s.get("display"))
            .and_then(Value::as_str),
        request_path,
    )
}

/// Runs the auth chain (skipped for `ssh_user`, whom SSH authenticated) and answers one-shot
/// requests. On success returns the client's last hello and what the backends granted.
async fn authenticate(
    shared: &Arc<Shared>,
    settings: &AuthSettings,
    info: &xgate_messages::ConnectionInfo,
    conn: &mut PacketConn,
    mut hello: Value,
    deadline: Instant,
    ssh_user: Option<&str>,
) -> Result<(Value, Grant), Refusal> {
    let encoder = conn.writer.encoder;
    let request = request_of(&hello);
    // Requests xpra answers before authentication.
    // xpra 3.x answers only `version` before authentication, and its clients expect a challenge
    // for the rest when they have a password; 6.x also answers `id` and `connect_test`.
    let modern = client_major(&hello) >= 6;
    let challenge_expected = hello.lookup("challenge").and_then(Value::as_bool) == Some(true);
    match request.as_deref() {
        Some("version") => return reply(conn, settings.identity.version_reply()).await,
        Some("connect_test") if modern && !challenge_expected => {
            let echo = hello
                .lookup("connect_test_request")
                .cloned()
                .unwrap_or(Value::from(""));
            return reply(conn, Value::dict([("connect_test_response", echo)])).await;
        }
        Some("id") if modern && !challenge_expected => {
            return reply(conn, settings.identity.id_reply()).await
        }
        _ => {}
    }
    // SSH authenticated its user already: no module runs, only the user's sessions are looked up.
    let chain = if ssh_user.is_some() {
        &[]
    } else {
        settings.chain_for(info)
    };
    let client_username = hello
        .lookup("username")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let wants_challenge = hello.lookup("challenge").and_then(Value::as_bool) == Some(true);
    let ctx = CheckContext {
        username: client_username.clone(),
        display: requested_display(&hello, info),
        peer: info.peer.clone(),
        transport: info.transport.to_string(),
        prompt: "password".into(),
        certificate: info.client_certificate.clone(),
    };
    let mut grant: Option<Grant> = None;
    // The user the checking modules accepted, whose sessions `role=sessions` modules look up.
    let mut accepted_user: Option<String> = None;
    let mut challenged = false;
    for backend in chain.iter() {
        if backend.role() == Role::Sessions {
            continue;
        }
        let username = match backend.established_username(&ctx) {
            Some(name) => name,
            None if backend.uses_client_username() => client_username.clone(),
            None => crate::users::own_name(),
        };
        if matches!(backend, Backend::Fail) {
            return Err(failed(shared, info, Some(&client_username), "fail module").await);
        }
        if backend.decides() {
            let b = backend.clone();
            let c = ctx.clone();
            let allowed = blocking(backend, move || b.decide(&c)).await?;
            if !allowed {
                return Err(failed(
                    shared,
                    info,
                    Some(&client_username),
                    &format!("{} refused the client", backend.name()),
                )
                .await);
            }
        }
        let mut matched: Option<Vec<u8>> = None;
        if backend.needs_challenge() {
            let banned = lock(&shared.by_user).banned_for(&client_username, Instant::now());
            if let Some(left) = banned {
                debug!(target: "xgate::auth", user = %username, "user refused for {}s", left.as_secs());
                return Err(failed(
                    shared,
                    info,
                    Some(&client_username),
                    "too many failures for this user",
                )
                .await);
            }
            let plain = backend.wants_plain_password();
            if plain && !info.transport.is_confidential() && !backend.allows_unencrypted_password()
            {
                warn!(target: "xgate::auth", id = %info.id, transport = %info.transport, "{} needs the password in clear ('xor'): refused over a transport that is not encrypted (allow-unencrypted=yes allows it)", backend.name());
                return Err(refuse(
                    "authentication error",
                    format!(
                        "the {} module only takes passwords over an encrypted transport (ssl, wss, ssh) or a unix socket",
                        backend.name()
                    ),
                ));
            }
            let challenge = if plain {
                Challenge::for_hello_xor(&hello)
            } else {
                Challenge::for_hello(&hello)
            }
            .map_err(|e| refuse("authentication error", e.to_string()))?;
            let prompt = format!("password for user '{username}'");
            send(conn, &challenge.packet(encoder, &prompt)).await?;
            challenged = true;
            let (reply_hello, _, _) = read_hello(
                conn,
                deadline.max(Instant::now() + settings.challenge_timeout),
            )
            .await
            .map_err(|e| {
                if matches!(e, ConnError::Timeout) {
                    refuse("login timeout", "no challenge response")
                } else {
                    Refusal::Done
                }
            })?;
            hello = reply_hello;
            let verdict = if plain {
                check_plain(shared, backend, &challenge, &hello, &username).await?
            } else {
                check_digest(shared, backend, &challenge, &hello, &username).await?
            };
            if let Ok(m) = &verdict {
                matched.clone_from(m);
            }
            if let Err(e) = verdict {
                // Counted against the name the client claims: for modules that ignore it (`password`,
                // `file`...) the gateway's own name would make one attacker lock out everyone.
                let _ = lock(&shared.by_user).record(&client_username, Instant::now());
                return Err(failed(
                    shared,
                    info,
                    Some(&username),
                    &format!("{}: {e}", backend.name()),
                )
                .await);
            }
        }
        if backend.supplies_sessions() {
            let g = grant_of(backend, username.clone(), matched, &ctx).await?;
            accepted_user.get_or_insert_with(|| g.user.username.clone());
            grant.get_or_insert(g);
        }
        accepted_user.get_or_insert(username);
    }
    // The session list from another source than the password check (`role=sessions`): the
    // sessions of the accepted user (the gateway's own when no module checked anyone).
    if let Some(backend) = chain.iter().find(|b| b.role() == Role::Sessions) {
        let user = accepted_user.unwrap_or_else(crate::users::own_name);
        grant = Some(grant_of(backend, user, None, &ctx).await?);
    }
    if let Some(user) = ssh_user {
        grant = Some(super::ssh::grant_for_verified(settings, info, user).await?);
    } else if chain.is_empty() {
        // xpra's proxy needs an auth module; without one it has no sessions to offer.
        return Err(refuse("session not found error", "no sessions found"));
    }
    if wants_challenge && !challenged {
        // The client has a password and waits for a challenge: send a fake one and take whatever
        // comes back, as xpra does.
        let challenge = Challenge::for_hello(&hello)
            .map_err(|e| refuse("authentication error", e.to_string()))?;
        send(conn, &challenge.packet(encoder, "password")).await?;
        let (reply_hello, _, _) = read_hello(
            conn,
            deadline.max(Instant::now() + settings.challenge_timeout),
        )
        .await
        .map_err(|_| Refusal::Done)?;
        hello = reply_hello;
    }
    let grant = grant.unwrap_or_else(|| Grant {
        user: UserIdentity {
            username: client_username.clone(),
            uid: None,
            gid: None,
        },
        sessions: xgate_messages::SessionSource::SocketScan,
    });
    Ok((hello, grant))
}

/// Answers a one-shot request of an authenticated client (`info`, `id`, `command`, `stop`...)
/// as xpra's proxy does, and ends the connection.
async fn answer_request(
    shared: &Shared,
    settings: &AuthSettings,
    info: &xgate_messages::ConnectionInfo,
    conn: &mut PacketConn,
    hello: &Value,
    grant: &Grant,
    request: &str,
) -> Refusal {
    let answered: Result<(), Refusal> = match request {
        "version" => reply(conn, settings.identity.version_reply()).await,
        "id" => reply(conn, settings.identity.id_reply()).await,
        "connect_test" => {
            let echo = hello
                .lookup("connect_test_request")
                .cloned()
                .unwrap_or(Value::from(""));
            reply(conn, Value::dict([("connect_test_response", echo)])).await
        }
        "info" => {
            let table = shared
                .registry
                .send(registry::GetRegistryInfo)
                .await
                .map(|j| json_to_value(&j))
                .unwrap_or(Value::Dict(Vec::new()));
            let mut tree = vec![(Value::from("server"), settings.identity.info())];
            if let Value::Dict(entries) = table {
                tree.extend(entries);
            }
            tree.push((Value::from("auth"), auth_info(shared)));
            reply(conn, Value::Dict(tree)).await
        }
        "command" => {
            // xpra's `control` request: one control command, answered by `command_response`.
            let args = crate::control::xpra::command_args(hello);
            info!(target: "xgate::auth", id = %info.id, user = %grant.user.username, command = ?args, "control command");
            let (code, text) = crate::control::xpra::run_command(&shared.registry, &args).await;
            reply(conn, crate::control::xpra::command_reply(code, &text)).await
        }
        "stop" if settings.allow_stop => {
            info!(target: "xgate::auth", id = %info.id, user = %grant.user.username, "stop requested");
            let hello = Value::List(vec![
                Value::from("hello"),
                settings.identity.version_reply(),
            ]);
            if send(conn, &hello).await.is_ok() {
                // The client follows up with `shutdown-server`; either way the gateway stops.
                let _ = conn.read_timeout(Duration::from_secs(2)).await;
            }
            shared.shutdown.do_send(super::StopGateway);
            Err(Refusal::Done)
        }
        "stop" => Err(refuse(
            "permission error",
            "`stop` requests are not enabled on this gateway (allow-stop)",
        )),
        other => Err(Refusal::Disconnect {
            reason: format!(
                "error: invalid request, '{other}' is not supported by the proxy server"
            ),
            extra: Vec::new(),
            delay: 0,
        }),
    };
    answered.err().unwrap_or(Refusal::Done)
}

/// Checks a digest response against the passwords `backend` knows for `username`; on success,
/// the password that matched (`None` with `allow`). The outer error ends the handshake (the
/// backend failed), the inner one is the client's failure.
async fn check_digest(
    shared: &Shared,
    backend: &Backend,
    challenge: &Challenge,
    hello: &Value,
    username: &str,
) -> Result<Result<Option<Vec<u8>>, ChallengeError>, Refusal> {
    let b = backend.clone();
    let user = username.to_string();
    let passwords = blocking(backend, move || b.passwords(&user)).await?;
    let verdict = {
        let mut ledger = lock(&shared.ledger);
        challenge.verify_matched(hello, passwords.as_deref(), &mut ledger)
    };
    Ok(verdict.map(|i| i.and_then(|i| passwords.as_ref()?.get(i).cloned())))
}

/// Recovers the password of an `xor` response and has `backend` (`pam`) check it for
/// `username`. Like [`check_digest`]; on success there is no stored password to name.
async fn check_plain(
    shared: &Shared,
    backend: &Backend,
    challenge: &Challenge,
    hello: &Value,
    username: &str,
) -> Result<Result<Option<Vec<u8>>, ChallengeError>, Refusal> {
    let password = {
        let mut ledger = lock(&shared.ledger);
        challenge.recover_password(hello, &mut ledger)
    };
    let password = match password {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let b = backend.clone();
    let user = username.to_string();
    let ok = blocking(backend, move || b.check_password(&user, &password)).await?;
    Ok(if ok {
        Ok(None)
    } else {
        Err(ChallengeError::Mismatch)
    })
}

/// Runs a blocking backend call on the blocking pool; a failure of the backend ends the
/// handshake with `authentication error` (and is logged with the backend's name).
pub(super) async fn blocking<T: Send + 'static>(
    backend: &Backend,
    call: impl FnOnce() -> Result<T, super::backends::BackendError> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| refuse("server error", "auth backend failed"))?
        .map_err(|e| {
            warn!(target: "xgate::auth", "{} backend: {e}", backend.name());
            refuse("authentication error", "auth backend failed")
        })
}

/// A backend's grant for `username`, from the blocking pool.
pub(super) async fn grant_of(
    backend: &Backend,
    username: String,
    matched: Option<Vec<u8>>,
    ctx: &CheckContext,
) -> Result<Grant, Refusal> {
    let b = backend.clone();
    let c = ctx.clone();
    blocking(backend, move || b.grant(&username, matched.as_deref(), &c)).await
}

/// The `auth` subtree of `info`: failure counts and what is refused now, with seconds left.
fn auth_info(shared: &Shared) -> Value {
    let now = Instant::now();
    let tree = |l: &FailureLimiter| {
        let refused: Vec<(Value, Value)> = l
            .banned(now)
            .into_iter()
            .map(|(k, left)| (Value::from(k), Value::from(left.as_secs() as i64)))
            .collect();
        let failing: Vec<(Value, Value)> = l
            .failing(now)
            .into_iter()
            .map(|(k, n)| (Value::from(k), Value::from(n as i64)))
            .collect();
        Value::dict([
            ("refused", Value::Dict(refused)),
            ("failures", Value::Dict(failing)),
        ])
    };
    Value::dict([
        ("addresses", tree(&lock(&shared.by_address))),
        ("users", tree(&lock(&shared.by_user))),
    ])
}

async fn send(conn: &mut PacketConn, packet: &Value) -> Result<(), Refusal> {
    conn.send(packet).await.map_err(|_| Refusal::Done)
}

/// Sends a one-shot reply hello and ends the connection.
async fn reply<T>(conn: &mut PacketConn, caps: Value) -> Result<T, Refusal> {
    send(conn, &Value::List(vec![Value::from("hello"), caps])).await?;
    // Give the client time to read before closing; it closes first in the normal case.
    let _ = conn.read_timeout(Duration::from_secs(5)).await;
    Err(Refusal::Done)
}

pub(super) async fn failed(
    shared: &Shared,
    info: &xgate_messages::ConnectionInfo,
    username: Option<&str>,
    why: &str,
) -> Refusal {
    info!(target: "xgate::auth", id = %info.id, peer = %info.peer, user = username.unwrap_or(""), "authentication failed: {why}");
    let now = Instant::now();
    let (banned, count) = lock(&shared.by_address).record_counted(&info.peer.limit_key(), now);
    let user_count = username.map_or(0, |u| lock(&shared.by_user).recent_count(u, now));
    // The delay doubles with each recent failure from the address (or for the user): 1, 2, 4, 8
    // times `auth-failure-delay`, no more.
    let exponent = count.max(user_count).clamp(1, 4) - 1;
    if banned {
        warn!(target: "xgate::auth", peer = %info.peer, "too many authentication failures: refusing this address for a while");
    }
    shared.registry.do_send(GatewayEvent::AuthFailed {
        peer: info.peer.clone(),
        username: username.map(str::to_string),
        reason: why.to_string(),
    });
    Refusal::Disconnect {
        reason: "authentication failed".into(),
        extra: Vec::new(),
        delay: 1 << exponent,
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
