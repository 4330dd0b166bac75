//! A fake xpra client: a realistic hello (with the challenge answered), a cheap receive path that
//! counts frames without decoding draws, and ping round trips.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::RngCore;
use tokio::net::TcpStream;
use xgate_protocol::{digest, header::HEADER_SIZE, peek_packet_type, Packet, PacketType, Value};

use super::wire::{ping_echo, Conn, LoadError, Wire};
use super::{CMD_STOP, CMD_STREAM};

/// Compressed main packets larger than this are counted, not peeked.
const PEEK_MAX: usize = 4096;

/// How the fake client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the server, the gateway or the proxy.
    pub target: String,
    /// What it sends with.
    pub wire: Wire,
    /// `username` in the hello.
    pub username: String,
    /// The password used to answer a challenge.
    pub password: Option<String>,
    /// The display asked for (`display` and `session.display`), if any.
    pub display: Option<String>,
    /// The `version` in its hello.
    pub version: String,
    /// How long the handshake may take.
    pub timeout: Duration,
    /// What carries the xpra packets.
    pub transport: Transport,
}

/// What carries a fake client's packets.
#[derive(Debug, Clone, Default)]
pub enum Transport {
    /// Plain TCP.
    #[default]
    Tcp,
    /// A WebSocket inside TLS (`wss://`), with the gateway's own client side of both
    /// ([`xgate_actors::relay::transport`]), the server's certificate checked as these settings
    /// say.
    Wss(xgate_actors::relay::transport::TargetTls),
    /// A command whose stdin/stdout is the connection (`ssh -p PORT USER@HOST xpra _proxy
    /// 100`), used instead of a TCP connection to `target`.
    Command(Vec<String>),
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            target: "127.0.0.1:14500".into(),
            wire: Wire::default(),
            username: "xgbench".into(),
            password: None,
            display: None,
            version: "6.5".into(),
            timeout: Duration::from_secs(30),
            transport: Transport::Tcp,
        }
    }
}

/// What a stream of draws delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamStats {
    /// Wire bytes received in the measured window (headers included).
    pub bytes: u64,
    /// Draw packets received in the measured window.
    pub draws: u64,
    /// Frames received in the measured window.
    pub frames: u64,
    /// The measured window (from the first byte of the first draw).
    pub elapsed: Duration,
}

impl StreamStats {
    /// Throughput in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// A connected, handshaken fake client.
pub struct Client {
    conn: Conn,
    next_ping: i64,
    /// The server's hello caps.
    pub server_caps: Value,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A value as plain text when it is a string, else its repr.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn hello_caps(config: &ClientConfig) -> Vec<(Value, Value)> {
    let mut caps = config.wire.caps();
    let digests = Value::list([
        "hmac+sha512",
        "hmac+sha384",
        "hmac+sha256",
        "hmac+sha224",
        "hmac+sha1",
        "hmac",
    ]);
    let salt_digests = Value::list([
        "hmac+sha512",
        "hmac+sha384",
        "hmac+sha256",
        "hmac+sha224",
        "hmac+sha1",
    ]);
    let mut uuid = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut uuid);
    let more: Vec<(&str, Value)> = vec![
        ("version", config.version.as_str().into()),
        ("build.version", config.version.as_str().into()),
        ("username", config.username.as_str().into()),
        ("name", "xgate-load".into()),
        ("client_type", "xgate-load".into()),
        ("platform", "linux".into()),
        ("hostname", "xgate-load".into()),
        ("uuid", hex::encode(uuid).into()),
        ("session-id", hex::encode(uuid).into()),
        ("digest", digests),
        ("salt-digest", salt_digests),
        ("flush", true.into()),
        ("chunks", true.into()),
        ("share", false.into()),
        ("steal", true.into()),
        ("windows", true.into()),
        ("keyboard", false.into()),
        ("mouse", false.into()),
        ("clipboard", false.into()),
        ("notifications", false.into()),
        ("cursors", false.into()),
        ("bell", false.into()),
        ("sound.send", false.into()),
        ("sound.receive", false.into()),
        ("file-transfer", false.into()),
        ("printing", false.into()),
        ("webcam", false.into()),
        ("encodings", Value::list(["rgb24", "rgb32"])),
        ("encodings.core", Value::list(["rgb24", "rgb32"])),
        ("encoding", "rgb".into()),
        (
            "desktop_size",
            Value::list([Value::Int(1920), Value::Int(1080)]),
        ),
        ("screen_sizes", Value::List(vec![])),
        ("wants", Value::list(["packet-types"])),
    ];
    caps.extend(more.into_iter().map(|(k, v)| (Value::from(k), v)));
    if let Some(d) = &config.display {
        caps.push(("display".into(), d.as_str().into()));
        caps.push(("session".into(), Value::dict([("display", d.as_str())])));
    }
    caps
}

/// The hello answering a `challenge` packet: the first hello's caps plus the response.
fn challenge_answer(
    caps: &[(Value, Value)],
    challenge: &Packet,
    password: &str,
) -> Result<Value, LoadError> {
    let server_salt = challenge
        .get(1)
        .and_then(Value::as_bytes)
        .ok_or_else(|| LoadError::Unexpected("challenge without a salt".into()))?;
    let digest_name = challenge.get(3).and_then(Value::as_str).unwrap_or("hmac");
    let salt_digest = challenge.get(4).and_then(Value::as_str).unwrap_or("xor");
    let mut client_salt = vec![
        0u8;
        if salt_digest == "xor" {
            server_salt.len()
        } else {
            32
        }
    ];
    rand::thread_rng().fill_bytes(&mut client_salt);
    let response = digest::client_response(
        digest_name,
        salt_digest,
        &digest::password_bytes(password),
        server_salt,
        &client_salt,
    )
    .map_err(|e| LoadError::Unexpected(format!("cannot answer the challenge: {e}")))?;
    let mut caps = caps.to_vec();
    // Hex text for hmac digests (3.x sends str); raw bytes otherwise.
    let response = match String::from_utf8(response) {
        Ok(text) => Value::from(text),
        Err(e) => Value::Bytes(Bytes::from(e.into_bytes())),
    };
    caps.push(("challenge_response".into(), response));
    caps.push((
        "challenge_client_salt".into(),
        Value::Bytes(Bytes::from(client_salt)),
    ));
    Ok(Value::list([Value::from("hello"), Value::Dict(caps)]))
}

impl Client {
    /// Connects, sends the hello, answers a challenge and waits for the server's hello.
    /// Returns the client and the time from `connect` to the server's hello.
    pub async fn connect(config: &ClientConfig) -> Result<(Client, Duration), LoadError> {
        let start = Instant::now();
        let tcp = || async {
            tokio::time::timeout(config.timeout, TcpStream::connect(&config.target))
                .await
                .map_err(|_| LoadError::Timeout(format!("connecting to {}", config.target)))?
                .map_err(|e| LoadError::io(format!("connecting to {}", config.target), e))
        };
        let mut conn = match &config.transport {
            Transport::Command(command) => Conn::spawn(command, config.wire)?,
            Transport::Tcp => Conn::new(tcp().await?, config.wire),
            Transport::Wss(tls) => {
                let stream = tcp().await?;
                let _ = stream.set_nodelay(true);
                let (host, port) = config
                    .target
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse().ok()?)))
                    .ok_or_else(|| {
                        LoadError::Unexpected(format!("{} is not host:port", config.target))
                    })?;
                use xgate_actors::relay::transport::{tls as tls_client, websocket};
                let upgrade = async {
                    let s = tls_client(stream, host, tls).await?;
                    websocket(s, host, port, "/").await
                };
                let ws = tokio::time::timeout(config.timeout, upgrade)
                    .await
                    .map_err(|_| LoadError::Timeout("the TLS and WebSocket upgrade".into()))?
                    .map_err(|e| LoadError::io("the TLS and WebSocket upgrade", e))?;
                let (r, w) = tokio::io::split(ws);
                Conn::from_halves(Box::new(r), Box::new(w), config.wire)
            }
        };
        let caps = hello_caps(config);
        conn.send(&Value::list([
            Value::from("hello"),
            Value::Dict(caps.clone()),
        ]))
        .await?;
        let deadline = start + config.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let packet = conn
                .packet_within(left, "waiting for the server's hello")
                .await?;
            match packet.type_name() {
                Some("hello") => {
                    let elapsed = start.elapsed();
                    let server_caps = packet.get(1).cloned().unwrap_or(Value::None);
                    return Ok((
                        Client {
                            conn,
                            next_ping: 1,
                            server_caps,
                        },
                        elapsed,
                    ));
                }
                Some("challenge") => {
                    let password = config.password.as_deref().ok_or_else(|| {
                        LoadError::Unexpected(
                            "the server sent a challenge and no --password was given".into(),
                        )
                    })?;
                    let answer = challenge_answer(&caps, &packet, password)?;
                    conn.send(&answer).await?;
                }
                Some("disconnect") | Some("connection-close") => {
                    let reason: Vec<String> = packet.items()[1..].iter().map(text).collect();
                    return Err(LoadError::Disconnected(reason.join(", ")));
                }
                Some("ping") => conn.send(&ping_echo(&packet)).await?,
                _ => {}
            }
        }
    }

    /// Sends a packet.
    pub async fn send(&mut self, packet: &Value) -> Result<(), LoadError> {
        self.conn.send(packet).await
    }

    /// Sends `disconnect` (errors ignored: the peer may be gone).
    pub async fn disconnect(mut self) {
        let _ = self
            .conn
            .send(&Value::list(["disconnect", "client request"]))
            .await;
    }

    /// One ping round trip: sends `ping` and waits for the `ping_echo` carrying it. Pings from the
    /// peer are answered on the way; other packets are skipped.
    pub async fn ping(&mut self, limit: Duration) -> Result<Duration, LoadError> {
        let id = self.next_ping;
        self.next_ping += 1;
        let ping = Value::list([
            Value::from("ping"),
            Value::Int(id),
            Value::Int(now_ms()),
            Value::from("xgate-load"),
        ]);
        let encoded = self.conn.wire.encode(&ping)?;
        let start = Instant::now();
        {
            use tokio::io::AsyncWriteExt;
            self.conn
                .writer
                .write_all(&encoded)
                .await
                .map_err(|e| LoadError::io("sending a ping", e))?;
        }
        let deadline = start + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let p = self
                .conn
                .packet_within(left, "waiting for ping_echo")
                .await?;
            match p.type_name() {
                Some("ping_echo") | Some("ping-echo")
                    if p.get(1).and_then(Value::as_int) == Some(id) =>
                {
                    return Ok(start.elapsed())
                }
                Some("ping") => self.conn.send(&ping_echo(&p)).await?,
                Some("disconnect") | Some("connection-close") => {
                    return Err(LoadError::Disconnected(
                        p.get(1).map(text).unwrap_or_default(),
                    ))
                }
                _ => {}
            }
        }
    }

    /// Asks the server to stream draws, counts what arrives for `duration` (from the first frame),
    /// then asks it to stop. Draws are never decoded: frames are split by the codec and only small
    /// main packets are peeked for their type.
    pub async fn stream(
        &mut self,
        duration: Duration,
        limit: Duration,
    ) -> Result<StreamStats, LoadError> {
        self.conn.send(&Value::list([CMD_STREAM])).await?;
        let mut stats = StreamStats::default();
        let first = self.conn.frame();
        let first = tokio::time::timeout(limit, first)
            .await
            .map_err(|_| LoadError::Timeout("waiting for the first draw".into()))??;
        let start = Instant::now();
        let end = start + duration;
        let mut frame = first;
        loop {
            stats.frames += 1;
            stats.bytes += (HEADER_SIZE + frame.payload.len()) as u64;
            if frame.header.index == 0 {
                let small = frame.header.compression == 0 || frame.payload.len() <= PEEK_MAX;
                let peeked = if small {
                    peek_packet_type(&frame).ok()
                } else {
                    None
                };
                match peeked.as_ref().and_then(PacketType::as_name) {
                    Some("draw") => stats.draws += 1,
                    Some("ping") => {
                        if let Some(p) = self.conn.packets.push(frame)? {
                            self.conn.send(&ping_echo(&p)).await?;
                        }
                    }
                    Some("disconnect") | Some("connection-close") => {
                        return Err(LoadError::Disconnected("during the stream".into()))
                    }
                    _ => {}
                }
            }
            if Instant::now() >= end {
                break;
            }
            frame = match tokio::time::timeout_at(end.into(), self.conn.frame()).await {
                Ok(f) => f?,
                Err(_) => break,
            };
        }
        stats.elapsed = start.elapsed();
        self.conn.send(&Value::list([CMD_STOP])).await?;
        Ok(stats)
    }

    /// Reads and answers pings until the connection ends (for idle connections held open).
    pub async fn idle(mut self) -> Result<(), LoadError> {
        loop {
            let p = self.conn.packet().await?;
            if p.type_name() == Some("ping") {
                self.conn.send(&ping_echo(&p)).await?;
            }
        }
    }
}
