//! The ProxyRelay actor: one per authenticated client. It connects to the chosen session, forwards
//! the client's filtered hello, answers the server's challenge when the target carries a password
//! (or passes it to the client), relays the server's hello, then splices the two streams
//! ([`pump`]) until either side leaves. The gateway pings both sides to notice dead peers.
//! A session with the `reencode` option gets raw rgb from its server and video from the
//! EncoderPool ([`reencode`]) in the server-to-client direction.
//!
//! Failures of one relay never touch another: each runs in its own task, owns its sockets, and
//! reports its end to the SessionRegistry.

pub mod connect;
pub mod hello;
pub mod pump;
pub mod reencode;
pub mod transport;
pub mod zerocopy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use futures::future::Either;
use rand::RngCore;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use xgate_messages::{
    ConnectionSummary, GatewayEvent, RegisterConnection, StopConnection, UnregisterConnection,
};
use xgate_protocol::{PacketWriter, Value};

use crate::conn::{writer_for_hello, ConnError, PacketConn};
use crate::encoder::EncoderPool;
use crate::gateway::GatewayIdentity;
use crate::pipeline::Authenticated;
use crate::registry::SessionRegistry;
use pump::{End, Inject, Watch, ZeroCopy};
use xgate_messages::BoxedStream;
use zerocopy::{SharedSocket, Side};

/// What every relay needs from the configuration.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `connect-timeout`: one connection attempt to a server.
    pub connect_timeout: Duration,
    /// `connect-retry`: how long to retry a server that refuses (it may be starting).
    pub connect_retry: Duration,
    /// How long the server may take to answer the hello.
    pub handshake_timeout: Duration,
    /// How often the gateway pings both sides.
    pub ping_interval: Duration,
    /// `max-packet-size`: the chunk cap both ways.
    pub max_packet_size: u32,
    /// The gateway's identity: its `proxy` caps and ping sid.
    pub identity: GatewayIdentity,
    /// Arbiters (one per core) the relays are spread over; empty: the current one.
    pub arbiters: Vec<actix::ArbiterHandle>,
    /// How `ssl://` and `wss://` targets are verified (`ssl-server-verify-mode`,
    /// `ssl-server-ca-certs`).
    pub target_tls: transport::TargetTls,
    /// The EncoderPool, for sessions with the `reencode` option (`None`: they relay unchanged).
    pub encoder: Option<Addr<EncoderPool>>,
    /// The global `reencode` option: the default of sessions whose options do not say.
    pub reencode: xgate_config::ReencodeMode,
}

/// The ProxyRelay actor.
pub struct ProxyRelay {
    /// The client and its session, until `started` takes them.
    pending: Option<Authenticated>,
    /// Settings.
    settings: Arc<RelaySettings>,
    /// The registry: connection table and events.
    registry: Addr<SessionRegistry>,
    /// Sends a stop request into the running relay.
    stop_tx: Option<mpsc::Sender<String>>,
    /// Whether the relay task has finished (then the actor may stop).
    finished: bool,
}

impl ProxyRelay {
    /// A relay for an authenticated client.
    /// `None` makes a relay that stops at once (a restart has no client to serve).
    pub fn new(
        client: Option<Authenticated>,
        settings: Arc<RelaySettings>,
        registry: Addr<SessionRegistry>,
    ) -> Self {
        ProxyRelay {
            pending: client,
            settings,
            registry,
            stop_tx: None,
            finished: false,
        }
    }
}

/// The relay's end, reported to the actor.
struct Finished;

impl Actor for ProxyRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(client) = self.pending.take() else {
            ctx.stop();
            return;
        };
        let (stop_tx, stop_rx) = mpsc::channel(1);
        self.stop_tx = Some(stop_tx);
        let summary = ConnectionSummary {
            id: client.info.id,
            peer: client.info.peer.clone(),
            transport: client.info.transport,
            username: client.user.username.clone(),
            display: client.target.display.clone(),
            target: client.target.address.to_string(),
            client_version: client
                .hello
                .lookup("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            started_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        };
        self.registry.do_send(RegisterConnection {
            summary: summary.clone(),
            stop: ctx.address().recipient(),
        });
        self.registry.do_send(GatewayEvent::ConnectionOpened {
            id: summary.id,
            peer: summary.peer.clone(),
            transport: summary.transport,
            username: summary.username.clone(),
            display: summary.display.clone(),
            target: summary.target.clone(),
        });
        let settings = Arc::clone(&self.settings);
        let registry = self.registry.clone();
        let id = summary.id;
        let task = async move {
            let started = Instant::now();
            let counters = Counters::default();
            let reason = run(client, &settings, stop_rx, &counters).await;
            registry.do_send(UnregisterConnection(summary.id));
            registry.do_send(GatewayEvent::ConnectionClosed {
                id: summary.id,
                username: summary.username,
                target: summary.target,
                reason,
                bytes_from_client: counters.from_client.load(Ordering::Relaxed),
                bytes_to_client: counters.to_client.load(Ordering::Relaxed),
                duration_ms: started.elapsed().as_millis() as u64,
            });
        };
        // The relay runs as its own task, on one of the per-core arbiters, so that relays use
        // every core and the actor's mailbox never waits on socket I/O.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let task = async move {
            task.await;
            let _ = done_tx.send(());
        };
        let arbiters = &self.settings.arbiters;
        if arbiters.is_empty() {
            tokio::spawn(task);
        } else {
            let index = (id.0 as usize) % arbiters.len();
            arbiters[index].spawn(task);
        }
        ctx.spawn(
            async move {
                // An error means the task panicked: the relay is over either way.
                let _ = done_rx.await;
                Finished
            }
            .into_actor(self)
            .map(|_f: Finished, act, ctx| {
                act.finished = true;
                ctx.stop();
            }),
        );
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        if self.finished {
            return Running::Stop;
        }
        // Stopped from outside (shutdown): tell the client, then stop once the task has ended.
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.try_send("server shutdown".into());
        }
        Running::Continue
    }
}

impl Handler<StopConnection> for ProxyRelay {
    type Result = ();

    fn handle(&mut self, msg: StopConnection, _ctx: &mut Self::Context) {
        if let Some(tx) = &self.stop_tx {
            let _ = tx.try_send(msg.reason);
        }
    }
}

/// Bytes moved each way.
#[derive(Default)]
struct Counters {
    from_client: Arc<AtomicU64>,
    to_client: Arc<AtomicU64>,
}

/// Runs one relay to its end and says why it ended.
async fn run(
    client: Authenticated,
    settings: &RelaySettings,
    mut stop_rx: mpsc::Receiver<String>,
    counters: &Counters,
) -> String {
    let Authenticated {
        info,
        client: mut client_conn,
        hello: client_hello,
        target,
        permit,
        ..
    } = client;
    let id = info.id;
    // Connect, with retries while the server starts; a stop request cancels the wait.
    let server_stream = tokio::select! {
        r = connect::connect(&target.address, settings.connect_timeout, settings.connect_retry, &settings.target_tls) => r,
        Some(reason) = stop_rx.recv() => {
            client_conn.disconnect(&reason, &[]).await;
            return reason;
        }
    };
    let server_stream = match server_stream {
        Ok(s) => s,
        Err(e) => {
            warn!(target: "xgate::proxy", %id, "{e}");
            client_conn
                .disconnect("connection error", &[&e.to_string()])
                .await;
            return format!("connection error: {e}");
        }
    };
    info!(target: "xgate::proxy", %id, target = %target.address, "connected to server");
    // The server side speaks what the client spoke; the server answers in kind.
    let mut server_writer = client_conn.writer;
    server_writer.level = target
        .options
        .get("compression_level")
        .or_else(|| target.options.get("compression"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut server_conn = PacketConn::new(server_stream, settings.max_packet_size, server_writer);
    let proxy_caps = settings.identity.proxy_caps();
    let video = reencode_decision(id, &target.options, &client_hello, settings).await;
    let for_server = |caps: &Value| {
        let h = hello::for_server(caps, &proxy_caps, &target.options);
        match video {
            Some(_) => reencode::hello::rgb_only_for_server(&h),
            None => h,
        }
    };
    let server_hello = for_server(&client_hello);
    if let Err(e) = server_conn.send(&server_hello).await {
        client_conn
            .disconnect("connection error", &[&format!("server: {e}")])
            .await;
        return format!("connection error: {e}");
    }
    // The server's answer: a hello, a challenge or a disconnect.
    let mut current_hello = server_hello;
    loop {
        let read = server_conn.read_timeout(settings.handshake_timeout).await;
        let (packet, encoder, _) = match read {
            Ok(p) => p,
            Err(e) => {
                let why = match e {
                    ConnError::Timeout => "the server did not answer".to_string(),
                    e => e.to_string(),
                };
                client_conn.disconnect("connection error", &[&why]).await;
                return format!("connection error: {why}");
            }
        };
        match packet.type_name() {
            Some("hello") => {
                let caps = packet.get(1).cloned().unwrap_or(Value::Dict(Vec::new()));
                // Send to the server as it asks; to the client as the client asked.
                server_conn.writer = writer_for_hello(&caps, encoder, server_conn.writer.level);
                let mut reply = hello::for_client(&caps, &proxy_caps);
                if let Some(plan) = video {
                    reply =
                        reencode::hello::for_client(&reply, &client_hello, plan.codec.xpra_name());
                }
                if client_conn.send(&reply).await.is_err() {
                    return "client exit".into();
                }
                break;
            }
            Some("challenge") => {
                if let Some(password) = target.options.get("password") {
                    match answer_challenge(&packet, password, &current_hello) {
                        Ok(h) => {
                            current_hello = h;
                            if server_conn.send(&current_hello).await.is_err() {
                                client_conn
                                    .disconnect("connection error", &["server closed"])
                                    .await;
                                return "connection error".into();
                            }
                        }
                        Err(why) => {
                            client_conn
                                .disconnect("authentication error", &[&why])
                                .await;
                            return format!("authentication error: {why}");
                        }
                    }
                } else {
                    // Pass the challenge to the client; its next hello goes to the server.
                    if client_conn
                        .send(&packet.clone().into_value())
                        .await
                        .is_err()
                    {
                        return "client exit".into();
                    }
                    match client_conn.read_timeout(Duration::from_secs(120)).await {
                        Ok((p, _, _)) if p.type_name() == Some("hello") => {
                            let caps = p.get(1).cloned().unwrap_or(Value::Dict(Vec::new()));
                            let mut h = for_server(&caps);
                            if let (Some(resp), Some(salt)) = (
                                caps.get("challenge_response").and_then(Value::as_bytes),
                                caps.get("challenge_client_salt").and_then(Value::as_bytes),
                            ) {
                                h = hello::with_response(&h, resp.to_vec(), salt.to_vec());
                            }
                            current_hello = h;
                            if server_conn.send(&current_hello).await.is_err() {
                                client_conn
                                    .disconnect("connection error", &["server closed"])
                                    .await;
                                return "connection error".into();
                            }
                        }
                        _ => return "client exit".into(),
                    }
                }
            }
            Some("disconnect") | Some("connection-close") => {
                let reason = packet
                    .get(1)
                    .and_then(Value::as_str)
                    .unwrap_or("server error")
                    .to_string();
                let extra: Vec<String> = packet
                    .items()
                    .iter()
                    .skip(2)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                client_conn.disconnect(&reason, &extra).await;
                return format!("server: {reason}");
            }
            other => {
                debug!(target: "xgate::proxy", %id, "ignoring {other:?} during the server handshake")
            }
        }
    }
    let reason = splice(
        id,
        client_conn,
        server_conn,
        settings,
        stop_rx,
        counters,
        video,
    )
    .await;
    // The connection counts against the limits until its relay has ended.
    drop(permit);
    reason
}

/// Whether this session's server-to-client pictures are re-encoded, and with which codec and
/// largest size; logs why not when the session asked for it.
async fn reencode_decision(
    id: xgate_messages::ConnectionId,
    options: &std::collections::BTreeMap<String, String>,
    client_hello: &Value,
    settings: &RelaySettings,
) -> Option<reencode::Plan> {
    let request = match reencode::Request::from_options(options, settings.reencode) {
        Ok(reencode::Request::Off) => return None,
        Ok(r) => r,
        Err(e) => {
            warn!(target: "xgate::encoder::relay", %id, "session option ignored: {e}");
            return None;
        }
    };
    let info = match &settings.encoder {
        Some(pool) => pool.send(xgate_messages::encode::GetEncoderInfo).await.ok(),
        None => None,
    };
    match reencode::decide(request, client_hello, info.as_ref()) {
        reencode::Decision::Reencode(plan) => {
            let codec = plan.codec.xpra_name();
            info!(target: "xgate::encoder::relay", %id, codec, refresh = ?plan.refresh_delay,
                "re-encoding this session: the server sends raw rgb, the client gets {codec}");
            Some(plan)
        }
        reencode::Decision::Unavailable(why) => {
            info!(target: "xgate::encoder::relay", %id, "re-encoding asked for but not done, relaying unchanged: {why}");
            None
        }
        reencode::Decision::Off => None,
    }
}

/// Computes the gateway's own response to a server's challenge, with the target's password.
fn answer_challenge(
    packet: &xgate_protocol::Packet,
    password: &str,
    hello: &Value,
) -> Result<Value, String> {
    let salt = packet
        .get(1)
        .and_then(Value::as_bytes)
        .ok_or("challenge without salt")?;
    let digest = packet.get(3).and_then(Value::as_str).unwrap_or("hmac+md5");
    let salt_digest = packet.get(4).and_then(Value::as_str).unwrap_or("xor");
    if matches!(salt_digest, "xor" | "des") || matches!(digest, "xor" | "des") {
        return Err(format!(
            "the server asks for a legacy digest ({digest}/{salt_digest}), refused"
        ));
    }
    let mut client_salt = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut client_salt);
    let pw = xgate_protocol::digest::password_bytes(password);
    let response =
        xgate_protocol::digest::client_response(digest, salt_digest, &pw, salt, &client_salt)
            .map_err(|e| e.to_string())?;
    Ok(hello::with_response(hello, response, client_salt))
}

/// Splices the two sides until one leaves, then tells the other.
async fn splice(
    id: xgate_messages::ConnectionId,
    client: PacketConn,
    server: PacketConn,
    settings: &RelaySettings,
    mut stop_rx: mpsc::Receiver<String>,
    counters: &Counters,
    video: Option<reencode::Plan>,
) -> String {
    // The handshakes count too: what the client sent (its hellos) and received before the splice.
    counters
        .from_client
        .fetch_add(client.bytes_in, Ordering::Relaxed);
    counters
        .to_client
        .fetch_add(client.bytes_out, Ordering::Relaxed);
    let client_writer = client.writer;
    let server_writer = server.writer;
    let (client_stream, client_buf) = client.into_parts();
    let (server_stream, server_buf) = server.into_parts();
    let (to_client_tx, to_client_rx) = mpsc::channel::<Inject>(4);
    let (to_server_tx, to_server_rx) = mpsc::channel::<Inject>(4);
    let sid = settings.identity.uuid.clone();
    let watch = |bytes: &Arc<AtomicU64>, writer: PacketWriter| Watch {
        ping_sid: sid.clone(),
        bytes: Arc::clone(bytes),
        max_size: settings.max_packet_size,
        writer,
    };
    let up_watch = watch(&counters.from_client, server_writer);
    let down_watch = watch(&counters.to_client, client_writer);
    let plan = video.zip(settings.encoder.clone());
    // Two plain sockets and no re-encoding: large payloads are spliced.
    let (client, server) = if plan.is_none() {
        (
            SharedSocket::recover(client_stream, client_buf),
            SharedSocket::recover(server_stream, server_buf),
        )
    } else {
        (
            Err((client_stream, client_buf)),
            Err((server_stream, server_buf)),
        )
    };
    let (upstream, downstream) = match (client, server) {
        (Ok((client, client_buf)), Ok((server, server_buf))) => {
            debug!(target: "xgate::proxy", %id, "both sides are plain sockets: splicing");
            let up = pump::pump(
                Side::Plain(client.clone()),
                Side::Plain(server.clone()),
                client_buf,
                up_watch,
                to_server_rx,
                Some(ZeroCopy::new(client.clone(), server.clone())),
            );
            let down = pump::pump(
                Side::Plain(server.clone()),
                Side::Plain(client.clone()),
                server_buf,
                down_watch,
                to_client_rx,
                Some(ZeroCopy::new(server, client)),
            );
            (Either::Left(up), Either::Left(down))
        }
        (client, server) => {
            let (client_stream, client_buf) =
                client.map_or_else(|b| b, |(s, b)| (Box::new(s) as BoxedStream, b));
            let (server_stream, server_buf) =
                server.map_or_else(|b| b, |(s, b)| (Box::new(s) as BoxedStream, b));
            let (client_r, client_w) = tokio::io::split(client_stream);
            let (server_r, server_w) = tokio::io::split(server_stream);
            let (client_r, client_w) = (Side::Read(client_r), Side::Write(client_w));
            let (server_r, server_w) = (Side::Read(server_r), Side::Write(server_w));
            match plan {
                // A re-encoded session gets packet-aware directions both ways.
                Some((plan, pool)) => {
                    let (errors_tx, errors_rx) = mpsc::channel(16);
                    let up = reencode::pump_upstream(
                        client_r,
                        server_w,
                        client_buf,
                        up_watch,
                        to_server_rx,
                        errors_tx,
                    );
                    let down = reencode::pump(
                        server_r,
                        client_w,
                        server_buf,
                        down_watch,
                        to_client_rx,
                        reencode::Downstream {
                            connection: id.0,
                            codec: plan.codec,
                            max_size: plan.max_size,
                            encode: pool.clone().recipient(),
                            drop_streams: pool.recipient(),
                            client_writer,
                            to_server: to_server_tx.clone(),
                            refresh_delay: plan.refresh_delay,
                            decode_errors: Some(errors_rx),
                        },
                    );
                    (Either::Right(up), Either::Right(down))
                }
                None => (
                    Either::Left(pump::pump(
                        client_r,
                        server_w,
                        client_buf,
                        up_watch,
                        to_server_rx,
                        None,
                    )),
                    Either::Left(pump::pump(
                        server_r,
                        client_w,
                        server_buf,
                        down_watch,
                        to_client_rx,
                        None,
                    )),
                ),
            }
        }
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.tick().await;
    let started = Instant::now();
    let disconnect = |reason: &str| Value::list([Value::from("disconnect"), Value::from(reason)]);
    // A direction whose source is gone still holds its destination: the gateway's last word to
    // that peer is written there directly (the direction no longer reads its inject channel).
    let last_word = |writer: PacketWriter, packet: Value| {
        move |mut fin: pump::Finished<Side, Side>| async move {
            let said = pump::farewell(&mut fin.dst, &writer, fin.wire, packet);
            let _ = tokio::time::timeout(Duration::from_secs(2), said).await;
        }
    };
    let reason = loop {
        tokio::select! {
            fin = &mut upstream => {
                // The client left (or said disconnect, which went to the server already).
                debug!(target: "xgate::proxy", %id, end = ?fin.end, wire = ?fin.wire, spliced = fin.spliced, "client direction ended");
                let (reason, tell_server) = match &fin.end {
                    End::Disconnect(r) => (format!("client: {r}"), false),
                    End::Eof => ("client exit".into(), true),
                    End::Protocol(e) => (format!("client protocol error: {e}"), true),
                    End::Io(e) => (format!("client connection error: {e}"), true),
                    End::Stopped => ("stopped".into(), false),
                };
                if tell_server {
                    last_word(server_writer, disconnect("client exit"))(fin).await;
                }
                // Let the server direction deliver what it had, briefly.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut downstream).await;
                break reason;
            }
            fin = &mut downstream => {
                debug!(target: "xgate::proxy", %id, end = ?fin.end, wire = ?fin.wire, spliced = fin.spliced, "server direction ended");
                let (reason, farewell) = match &fin.end {
                    End::Disconnect(r) => (format!("server: {r}"), None),
                    End::Eof | End::Io(_) => ("server connection lost".into(), Some(Value::list([
                        "disconnect",
                        "server shutdown",
                        "the connection to the xpra server was lost",
                    ]))),
                    End::Protocol(e) => (format!("server protocol error: {e}"), Some(Value::list([
                        "disconnect",
                        "server error",
                        "invalid data from the xpra server",
                    ]))),
                    End::Stopped => ("stopped".into(), None),
                };
                let pump::Finished { src: server_r, dst: mut client_w, wire, .. } = fin;
                if let Some(packet) = farewell {
                    let said = pump::farewell(&mut client_w, &client_writer, wire, packet);
                    let _ = tokio::time::timeout(Duration::from_secs(2), said).await;
                }
                // The client direction ends too (its server is gone) and the server's connection
                // closes at once; the client's only once it has read the gateway's last word.
                drop(server_r);
                let _ = to_server_tx.try_send(Inject::Last(disconnect("client exit")));
                if let Ok(up) = tokio::time::timeout(Duration::from_secs(2), &mut upstream).await {
                    drop(up.dst);
                    pump::close_gracefully(up.src, client_w, Duration::from_secs(2)).await;
                }
                break reason;
            }
            Some(reason) = stop_rx.recv() => {
                info!(target: "xgate::proxy", %id, "stopping: {reason}");
                let _ = to_client_tx.send(Inject::Last(disconnect(&reason))).await;
                let _ = to_server_tx.send(Inject::Last(disconnect("client exit"))).await;
                let both = async { ((&mut upstream).await, (&mut downstream).await) };
                if let Ok((up, down)) = tokio::time::timeout(Duration::from_secs(2), both).await {
                    // The server's connection closes at once; the client's (up reads from it,
                    // down writes to it) once it has read its disconnect.
                    drop((up.dst, down.src));
                    pump::close_gracefully(up.src, down.dst, Duration::from_secs(2)).await;
                }
                break format!("stopped: {reason}");
            }
            _ = ping.tick() => {
                let now_ms = started.elapsed().as_millis() as i64;
                let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
                let ping = || Value::list([Value::from("ping"), Value::from(now_ms), Value::from(wall), Value::from(sid.as_str())]);
                let _ = to_client_tx.try_send(Inject::Packet(ping()));
                let _ = to_server_tx.try_send(Inject::Packet(ping()));
            }
        }
    };
    info!(target: "xgate::proxy", %id, "relay ended: {reason}");
    reason
}
