//! Fake xpra peers written on the protocol crate: a challenge-checking server, for the real
//! clients (it proves the codec and the digests) or as a session target behind the gateway that
//! records the hellos it relays, and a flooding server plus a counting client that prove the
//! gateway's ordering guarantees.
//!
//! Each fake runs on its own small tokio runtime in a background thread, so the tests that use
//! them stay plain `#[test]`s that drive real processes. Dropping the fake stops its runtime.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use xgate_protocol::{
    digest, Compressor, Frame, FrameCodec, Packet, PacketEncoder, PacketReader, PacketWriter,
    Value, ABS_MAX_PACKET_SIZE,
};

/// How long a fake waits for any one packet before it gives up on the connection.
const PACKET_TIMEOUT: Duration = Duration::from_secs(60);

/// The digest the fake auth server asks for.
pub const FAKE_DIGEST: &str = "hmac+sha256";

/// The server name the fake auth server reports in its info tree.
pub const FAKE_SERVER_NAME: &str = "xgate-fake-info-server";

/// The version string the fake auth server answers `version` with.
pub const FAKE_VERSION: &str = "6.5.5";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for a fake peer")
}

/// A framed connection with its packet reader and writer.
pub struct Conn {
    /// Frames in both directions.
    framed: Framed<TcpStream, FrameCodec>,
    /// Reassembles and decodes what arrives.
    reader: PacketReader,
    /// Encodes what is sent (the peer's encoder once known).
    pub writer: PacketWriter,
}

impl Conn {
    /// Wraps a connected stream; the writer starts on rencodeplus without compression.
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            framed: Framed::new(stream, FrameCodec::new(ABS_MAX_PACKET_SIZE)),
            reader: PacketReader::default(),
            writer: PacketWriter::new(PacketEncoder::RencodePlus, Compressor::None, 0),
        }
    }

    /// The next packet, with the encoder its main frame used; `Ok(None)` at end of stream.
    pub async fn recv(&mut self) -> Result<Option<(Packet, PacketEncoder)>, String> {
        loop {
            let frame = match tokio::time::timeout(PACKET_TIMEOUT, self.framed.next()).await {
                Err(_) => return Err(format!("no packet within {PACKET_TIMEOUT:?}")),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(format!("framing error: {e}")),
                Ok(Some(Ok(f))) => f,
            };
            let enc = PacketEncoder::from_flags(frame.header.flags).ok();
            match self.reader.push(frame) {
                Err(e) => return Err(format!("decode error: {e}")),
                Ok(None) => {}
                Ok(Some(mut p)) => {
                    for v in &mut p.0 {
                        v.resolve_strings();
                    }
                    return Ok(Some((p, enc.unwrap_or(PacketEncoder::RencodePlus))));
                }
            }
        }
    }

    /// Encodes and buffers a packet (sent at the next flush or when the buffer fills).
    pub async fn feed(&mut self, packet: &Value) -> Result<(), String> {
        let frames: Vec<Frame> = self
            .writer
            .encode(packet)
            .map_err(|e| format!("encode: {e}"))?;
        for f in frames {
            self.framed
                .feed(f)
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        Ok(())
    }

    /// Encodes, sends and flushes a packet.
    pub async fn send(&mut self, packet: &Value) -> Result<(), String> {
        self.feed(packet).await?;
        self.flush().await
    }

    /// Flushes what was fed.
    pub async fn flush(&mut self) -> Result<(), String> {
        SinkExt::<Frame>::flush(&mut self.framed)
            .await
            .map_err(|e| format!("flush: {e}"))
    }

    /// Closes the write side after flushing.
    pub async fn close(&mut self) {
        let _ = SinkExt::<Frame>::close(&mut self.framed).await;
    }
}

fn packet(name: &str, args: impl IntoIterator<Item = Value>) -> Value {
    let mut items = vec![Value::from(name)];
    items.extend(args);
    Value::List(items)
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_list)
        .map(|l| {
            l.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What the fake auth server saw, for the tests' assertions.
#[derive(Debug, Default, Clone)]
pub struct AuthLog {
    /// Every hello's caps, in order (the tests look for the session options the gateway
    /// applied, `compression_level` for one).
    pub hellos: Vec<Value>,
    /// Challenges sent.
    pub challenges: usize,
    /// Responses that proved the password.
    pub accepted: usize,
    /// Responses that did not.
    pub rejected: usize,
    /// Protocol errors.
    pub errors: Vec<String>,
}

/// What the fake auth server is the peer of, which decides what it asks and how it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeRole {
    /// A server the real xpra clients talk to directly: they must offer `hmac+sha256` in
    /// `digest` and `salt-digest`, and a client that is in gets the info tree.
    InfoServer,
    /// A session target behind the gateway, which answers the challenge itself and strips the
    /// client's digest lists from the hello it relays: no digest list is asked for, and a
    /// client that is in gets `disconnect` (the hello is what the test wanted to see).
    RecordingTarget,
}

/// A small xpra server on the protocol crate: answers `version` without auth, challenges every
/// other hello with `hmac+sha256` when it has a password, answers a wrong response with
/// `disconnect: authentication failed`, and a client that is in as its [`FakeRole`] says.
pub struct FakeAuthServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What happened.
    pub log: Arc<Mutex<AuthLog>>,
    /// Its runtime; dropping it stops the server.
    _rt: tokio::runtime::Runtime,
}

impl FakeAuthServer {
    /// Starts an [`FakeRole::InfoServer`] with `password` on a free port of 127.0.0.1.
    pub fn start(password: &str) -> FakeAuthServer {
        FakeAuthServer::start_as(FakeRole::InfoServer, Some(password))
    }

    /// Starts one as `role` on a free port of 127.0.0.1; without a password every hello is in.
    pub fn start_as(role: FakeRole, password: Option<&str>) -> FakeAuthServer {
        let log = Arc::new(Mutex::new(AuthLog::default()));
        let password = password.map(str::to_string);
        let (addr, rt) = serve_each(log.clone(), move |stream, log| {
            let password = password.clone();
            async move {
                if let Err(e) = serve_auth(stream, role, password.as_deref(), &log).await {
                    log.lock().expect("log").errors.push(e);
                }
            }
        });
        FakeAuthServer { addr, log, _rt: rt }
    }

    /// `tcp://127.0.0.1:PORT/`, a target URL for the gateway.
    pub fn url(&self) -> String {
        format!("tcp://{}/", self.addr)
    }

    /// A copy of what it saw.
    pub fn log(&self) -> AuthLog {
        self.log.lock().expect("log").clone()
    }
}

/// Listens on a free port of 127.0.0.1 in a runtime of its own and runs `serve` for each
/// connection with the shared `log`; the runtime is returned to be kept alive by the fake.
fn serve_each<L, F, Fut>(log: Arc<Mutex<L>>, serve: F) -> (SocketAddr, tokio::runtime::Runtime)
where
    L: Send + 'static,
    F: Fn(TcpStream, Arc<Mutex<L>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = runtime();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind a fake server");
    let addr = listener.local_addr().expect("its address");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, log.clone()));
        }
    });
    (addr, rt)
}

fn info_tree(client_version: &str) -> Value {
    Value::dict([
        ("version", Value::from("6.5")),
        ("encoders", Value::list(["rencodeplus", "rencode"])),
        ("compressors", Value::list(["none"])),
        (
            "server",
            Value::dict([
                ("name", Value::from(FAKE_SERVER_NAME)),
                ("type", Value::from("fake")),
                ("answer", Value::from(42i64)),
            ]),
        ),
        (
            "xgate-test",
            Value::dict([
                ("client-version", Value::from(client_version)),
                ("digest", Value::from(FAKE_DIGEST)),
            ]),
        ),
    ])
}

/// The reason the fake auth server gives when a [`FakeRole::RecordingTarget`] ends a connection.
pub const RECORDED_DISCONNECT_REASON: &str = "server shutdown";

async fn serve_auth(
    stream: TcpStream,
    role: FakeRole,
    password: Option<&str>,
    log: &Mutex<AuthLog>,
) -> Result<(), String> {
    let mut conn = Conn::new(stream);
    // The salt of the challenge in flight; single use.
    let mut salt: Option<Vec<u8>> = None;
    while let Some((p, enc)) = conn.recv().await? {
        if p.type_name() != Some("hello") {
            continue;
        }
        let caps = p.get(1).cloned().unwrap_or(Value::Dict(Vec::new()));
        // Answer in the client's own encoder.
        conn.writer = PacketWriter::new(enc, Compressor::None, 0);
        let request = caps
            .lookup("request")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let version = caps
            .lookup("version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let is_3x = version.starts_with("3.");
        log.lock().expect("log").hellos.push(caps.clone());
        let version_request = request == "version"
            || caps.lookup("version_request").and_then(Value::as_bool) == Some(true);
        if version_request {
            let reply = Value::dict([("version", FAKE_VERSION)]);
            conn.send(&packet("hello", [reply])).await?;
            continue;
        }
        let accepted = match (password, caps.lookup("challenge_response")) {
            (None, _) => true,
            (Some(password), Some(resp)) => {
                let Some(server_salt) = salt.take() else {
                    return Err("a challenge response without a challenge".into());
                };
                let client_salt = caps
                    .lookup("challenge_client_salt")
                    .and_then(Value::as_bytes)
                    .unwrap_or_default();
                let ok = digest::verify_response(
                    FAKE_DIGEST,
                    FAKE_DIGEST,
                    &digest::password_bytes(password),
                    &server_salt,
                    client_salt,
                    resp.as_bytes().unwrap_or_default(),
                )
                .map_err(|e| format!("verify: {e}"))?;
                if !ok {
                    log.lock().expect("log").rejected += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    conn.send(&packet(
                        "disconnect",
                        [Value::from("authentication failed")],
                    ))
                    .await?;
                    conn.close().await;
                    return Ok(());
                }
                log.lock().expect("log").accepted += 1;
                true
            }
            (Some(_), None) => false,
        };
        if accepted {
            match role {
                FakeRole::InfoServer => {
                    conn.send(&packet("hello", [info_tree(&version)])).await?;
                    continue;
                }
                FakeRole::RecordingTarget => {
                    conn.send(&packet(
                        "disconnect",
                        [
                            Value::from(RECORDED_DISCONNECT_REASON),
                            Value::from("recorded by the xgate test"),
                        ],
                    ))
                    .await?;
                    conn.close().await;
                    return Ok(());
                }
            }
        }
        if role == FakeRole::InfoServer {
            let offered = str_list(caps.lookup("digest"));
            let salts = str_list(caps.lookup("salt-digest"));
            if !offered.iter().any(|d| d == FAKE_DIGEST) || !salts.iter().any(|d| d == FAKE_DIGEST)
            {
                return Err(format!(
                    "the client offers no {FAKE_DIGEST}: digest={offered:?} salt-digest={salts:?}"
                ));
            }
        }
        let s: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
        salt = Some(s.clone());
        let auth_caps = if is_3x {
            Value::from("")
        } else {
            Value::Dict(Vec::new())
        };
        log.lock().expect("log").challenges += 1;
        conn.send(&packet(
            "challenge",
            [
                Value::Bytes(Bytes::from(s)),
                auth_caps,
                Value::from(FAKE_DIGEST),
                Value::from(FAKE_DIGEST),
                Value::from("password"),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// What the flood server sends after the hello exchange.
#[derive(Debug, Clone, Copy)]
pub struct FloodSpec {
    /// Number of large draw packets.
    pub large: usize,
    /// Payload bytes of each large packet.
    pub large_size: usize,
    /// Number of small draw packets.
    pub small: usize,
    /// Payload bytes of each small packet.
    pub small_size: usize,
}

impl FloodSpec {
    /// All packets, in sending order: large ones spread evenly among the small ones.
    pub fn sizes(&self) -> Vec<usize> {
        let total = self.large + self.small;
        let mut out = Vec::with_capacity(total);
        let mut large_sent = 0;
        for i in 0..total {
            // Place the k-th large packet at about k * total / large.
            let due =
                self.large > 0 && large_sent < self.large && i * self.large >= large_sent * total;
            if due {
                out.push(self.large_size);
                large_sent += 1;
            } else {
                out.push(self.small_size);
            }
        }
        out
    }
}

/// A cheap 64-bit checksum of a payload (fast enough in debug builds for hundreds of MiB).
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        h = (h ^ x).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The payload of packet `seq`: a shared random block with the sequence number written in.
fn payload(base: &[u8], size: usize, seq: u64) -> Bytes {
    let mut v = base[..size].to_vec();
    let n = size.min(8);
    v[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
    if size >= 16 {
        v[size - 8..].copy_from_slice(&seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    }
    Bytes::from(v)
}

/// The draw packet `seq` carries: `["draw", wid, x, y, w, h, "rgb32", pixels, seq, rowstride,
/// {"checksum": hex}]`.
fn draw_packet(seq: u64, pixels: Bytes) -> Value {
    let sum = checksum(&pixels);
    let width = 64i64;
    let rowstride = width * 4;
    let height = (pixels.len() as i64 / rowstride).max(1);
    packet(
        "draw",
        [
            Value::from(1i64),
            Value::from(0i64),
            Value::from(0i64),
            Value::from(width),
            Value::from(height),
            Value::from("rgb32"),
            Value::Bytes(pixels),
            Value::from(seq),
            Value::from(rowstride),
            Value::dict([("checksum", format!("{sum:016x}"))]),
        ],
    )
}

/// What the flood server did.
#[derive(Debug, Default, Clone)]
pub struct FloodLog {
    /// Connections accepted.
    pub connections: usize,
    /// Packets sent on the last connection, the disconnect excluded.
    pub sent: usize,
    /// Whether the disconnect was sent and the socket closed.
    pub finished: bool,
    /// Errors.
    pub errors: Vec<String>,
}

/// A fake xpra server that answers the first hello with a server hello, then sends the flood
/// and `disconnect`, and closes (gracefully: it reads until the gateway closes too).
pub struct FloodServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it did.
    pub log: Arc<Mutex<FloodLog>>,
    /// Its runtime; dropping it stops the server.
    _rt: tokio::runtime::Runtime,
}

/// The reason the flood server gives in its final `disconnect`.
pub const FLOOD_DISCONNECT_REASON: &str = "server shutdown";

impl FloodServer {
    /// Starts it on a free port of 127.0.0.1.
    pub fn start(spec: FloodSpec) -> FloodServer {
        let log = Arc::new(Mutex::new(FloodLog::default()));
        let base: Arc<Vec<u8>> = Arc::new(
            (0..spec.large_size.max(spec.small_size))
                .map(|_| rand::random::<u8>())
                .collect(),
        );
        let (addr, rt) = serve_each(log.clone(), move |stream, log| {
            log.lock().expect("log").connections += 1;
            let base = base.clone();
            async move {
                if let Err(e) = serve_flood(stream, spec, &base, &log).await {
                    log.lock().expect("log").errors.push(e);
                }
            }
        });
        FloodServer { addr, log, _rt: rt }
    }

    /// A copy of what it did.
    pub fn log(&self) -> FloodLog {
        self.log.lock().expect("log").clone()
    }
}

async fn serve_flood(
    stream: TcpStream,
    spec: FloodSpec,
    base: &[u8],
    log: &Mutex<FloodLog>,
) -> Result<(), String> {
    let mut conn = Conn::new(stream);
    loop {
        let Some((p, _)) = conn.recv().await? else {
            return Err("the gateway closed before its hello".into());
        };
        if p.type_name() == Some("hello") {
            break;
        }
    }
    let hello = Value::dict([
        ("version", Value::from("6.5")),
        ("encoders", Value::list(["rencodeplus"])),
        ("compressors", Value::list(["none", "lz4"])),
        ("chunks", Value::from(true)),
        ("flush", Value::from(true)),
        ("server.mode", Value::from("seamless")),
    ]);
    conn.send(&packet("hello", [hello])).await?;
    for (seq, size) in spec.sizes().into_iter().enumerate() {
        let seq = seq as u64;
        conn.feed(&draw_packet(seq, payload(base, size, seq)))
            .await?;
        log.lock().expect("log").sent += 1;
    }
    conn.feed(&packet(
        "disconnect",
        [Value::from(FLOOD_DISCONNECT_REASON)],
    ))
    .await?;
    conn.flush().await?;
    conn.close().await;
    // A graceful close, as xpra's server makes one: its FIN follows the data, and what the
    // gateway still sends (pings) is read until the gateway closes. Dropping a socket with
    // unread input would reset the connection and discard whatever of the flood still sat in
    // this side's send buffer, a loss the gateway could not prevent.
    let drain = async { while let Ok(Some(_)) = conn.recv().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(60), drain).await;
    log.lock().expect("log").finished = true;
    Ok(())
}

/// What the counting client received through the gateway.
#[derive(Debug, Default, Clone)]
pub struct FloodReport {
    /// Draw packets received in order with the right checksum.
    pub draws: usize,
    /// Large ones among them (payload > 64 KiB).
    pub large: usize,
    /// Payload bytes received.
    pub bytes: u64,
    /// The first problem seen (gap, reordering, bad checksum, packet after disconnect).
    pub problems: Vec<String>,
    /// The disconnect's reason, if one came.
    pub disconnect: Option<String>,
    /// Packets (other than ping) that came after the disconnect.
    pub after_disconnect: usize,
    /// Other packet types seen, with counts.
    pub others: Vec<(String, usize)>,
    /// Whether the stream ended (EOF) after the disconnect.
    pub eof: bool,
}

/// Connects to `addr` (the gateway), logs in as `user`/`password` asking for `display`, and
/// counts the draw packets until `disconnect` and end of stream.
pub fn flood_client(
    addr: SocketAddr,
    user: &str,
    password: &str,
    display: &str,
    timeout: Duration,
) -> Result<FloodReport, String> {
    let rt = runtime();
    let (user, password, display) = (user.to_string(), password.to_string(), display.to_string());
    rt.block_on(async move {
        tokio::time::timeout(timeout, run_flood_client(addr, &user, &password, &display))
            .await
            .map_err(|_| format!("the flood client did not finish within {timeout:?}"))?
    })
}

/// The hello a modern (6.x-like) client sends.
pub fn client_hello(user: &str, display: &str, extra: Vec<(&str, Value)>) -> Value {
    let mut caps = vec![
        ("version", Value::from("6.5")),
        ("username", Value::from(user)),
        ("display", Value::from(display)),
        ("session", Value::dict([("display", display)])),
        ("encoders", Value::list(["rencodeplus"])),
        ("compressors", Value::list(["none", "lz4"])),
        ("compression_level", Value::from(0i64)),
        ("digest", Value::list([FAKE_DIGEST, "hmac+sha512"])),
        ("salt-digest", Value::list([FAKE_DIGEST, "hmac+sha512"])),
        ("chunks", Value::from(true)),
        ("flush", Value::from(true)),
        ("uuid", Value::from("0123456789abcdef0123456789abcdef")),
        ("client_type", Value::from("xgate-test")),
        ("windows", Value::from(true)),
    ];
    caps.extend(extra);
    Value::dict(caps)
}

async fn run_flood_client(
    addr: SocketAddr,
    user: &str,
    password: &str,
    display: &str,
) -> Result<FloodReport, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to the gateway: {e}"))?;
    let mut conn = Conn::new(stream);
    conn.send(&packet("hello", [client_hello(user, display, vec![])]))
        .await?;
    let mut report = FloodReport::default();
    let mut next_seq: u64 = 0;
    let mut got_hello = false;
    loop {
        let Some((p, _)) = conn.recv().await? else {
            report.eof = true;
            break;
        };
        let name = p.type_name().unwrap_or("").to_string();
        if report.disconnect.is_some() && name != "ping" {
            report.after_disconnect += 1;
            continue;
        }
        match name.as_str() {
            "challenge" => {
                let server_salt = p
                    .get(1)
                    .and_then(Value::as_bytes)
                    .unwrap_or_default()
                    .to_vec();
                let d = p
                    .get(3)
                    .and_then(Value::as_str)
                    .unwrap_or(FAKE_DIGEST)
                    .to_string();
                let sd = p
                    .get(4)
                    .and_then(Value::as_str)
                    .unwrap_or(FAKE_DIGEST)
                    .to_string();
                let client_salt: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
                let resp = digest::client_response(
                    &d,
                    &sd,
                    &digest::password_bytes(password),
                    &server_salt,
                    &client_salt,
                )
                .map_err(|e| format!("digest: {e}"))?;
                let hello = client_hello(
                    user,
                    display,
                    vec![
                        ("challenge_response", Value::Bytes(resp.into())),
                        ("challenge_client_salt", Value::Bytes(client_salt.into())),
                    ],
                );
                conn.send(&packet("hello", [hello])).await?;
            }
            "hello" => got_hello = true,
            "ping" => {
                let echo = p.get(1).cloned().unwrap_or(Value::from(0i64));
                let mut args = vec![
                    echo,
                    Value::from(0i64),
                    Value::from(0i64),
                    Value::from(0i64),
                    Value::from(-1i64),
                ];
                if let Some(sid) = p.get(3) {
                    args.push(sid.clone());
                }
                conn.send(&packet("ping_echo", args)).await?;
            }
            "draw" => {
                if !got_hello {
                    report
                        .problems
                        .push("a draw before the server's hello".into());
                }
                let seq = p.get(8).and_then(Value::as_int).unwrap_or(-1);
                let pixels = p.get(7).and_then(Value::as_bytes).unwrap_or_default();
                let want = p
                    .get(10)
                    .and_then(|d| d.get("checksum"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let got = format!("{:016x}", checksum(pixels));
                if seq != next_seq as i64 && report.problems.len() < 10 {
                    report
                        .problems
                        .push(format!("draw #{seq} arrived where #{next_seq} was due"));
                }
                if got != want && report.problems.len() < 10 {
                    report
                        .problems
                        .push(format!("draw #{seq}: checksum {got}, sent {want}"));
                }
                next_seq = u64::try_from(seq).unwrap_or(next_seq) + 1;
                report.draws += 1;
                report.bytes += pixels.len() as u64;
                if pixels.len() > 64 * 1024 {
                    report.large += 1;
                }
            }
            "disconnect" | "connection-close" => {
                report.disconnect =
                    Some(p.get(1).and_then(Value::as_str).unwrap_or("").to_string());
            }
            other => match report.others.iter_mut().find(|(n, _)| n == other) {
                Some((_, c)) => *c += 1,
                None => report.others.push((other.to_string(), 1)),
            },
        }
    }
    Ok(report)
}
