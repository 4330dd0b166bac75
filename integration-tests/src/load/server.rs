//! A fake xpra server: answers a hello (with a challenge when it has a password), then streams
//! draw-like packets on command and answers pings.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use xgate_protocol::{digest, peek_packet_type, Flags, Frame, PacketType, Value};

use super::wire::{ping_echo, Conn, LoadError, Wire, WriteSide};
use super::{CMD_STOP, CMD_STREAM};

/// How the fake server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// What it sends with.
    pub wire: Wire,
    /// When set, every client must answer an `hmac+sha256` challenge with this password.
    pub password: Option<String>,
    /// The `version` in its hello.
    pub version: String,
    /// Pixel bytes per draw packet (1 MiB by default: a 512x512 rgb32 region).
    pub draw_size: usize,
    /// How long a client may take to send its hello.
    pub hello_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            wire: Wire::default(),
            password: None,
            version: "6.5".into(),
            draw_size: 1 << 20,
            hello_timeout: Duration::from_secs(30),
        }
    }
}

/// Accepts connections forever, serving each on its own task. Errors of one connection are
/// printed to stderr when `verbose` and never end the loop.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    verbose: bool,
) -> Result<(), LoadError> {
    let mut pixels = vec![0u8; config.draw_size];
    rand::thread_rng().fill_bytes(&mut pixels);
    let pixels = Bytes::from(pixels);
    let config = Arc::new(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                eprintln!("xgate-load server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let config = Arc::clone(&config);
        let pixels = pixels.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &config, pixels).await {
                if verbose {
                    eprintln!("xgate-load server: {peer}: {e}");
                }
            }
        });
    }
}

/// The server's hello caps.
fn hello_caps(config: &ServerConfig) -> Value {
    let mut caps = config.wire.caps();
    let more: Vec<(&str, Value)> = vec![
        ("version", config.version.as_str().into()),
        ("build.version", config.version.as_str().into()),
        ("server_type", "base".into()),
        ("server.mode", "seamless".into()),
        ("session_name", "xgate-load".into()),
        ("hostname", "xgate-load".into()),
        ("uuid", "00000000000000000000000000000000".into()),
        ("machine_id", "xgate-load".into()),
        ("platform", "linux".into()),
        ("display", ":100".into()),
        ("start_time", Value::Int(0)),
        ("current_time", Value::Int(0)),
        ("elapsed_time", Value::Int(0)),
        (
            "max_desktop_size",
            Value::list([Value::Int(8192), Value::Int(8192)]),
        ),
        (
            "actual_desktop_size",
            Value::list([Value::Int(1920), Value::Int(1080)]),
        ),
        (
            "desktop_size",
            Value::list([Value::Int(1920), Value::Int(1080)]),
        ),
        ("encodings", Value::list(["rgb24", "rgb32"])),
        ("encodings.core", Value::list(["rgb24", "rgb32"])),
        ("encoding", "rgb".into()),
        ("chunks", true.into()),
        ("flush", true.into()),
        ("windows", true.into()),
        ("keyboard", false.into()),
        ("pointer", false.into()),
        ("clipboard", false.into()),
        ("notifications", false.into()),
        ("bell", false.into()),
        ("cursors", false.into()),
        ("sound.send", false.into()),
        ("sound.receive", false.into()),
        ("file-transfer", false.into()),
        ("printing", false.into()),
        ("webcam", false.into()),
    ];
    caps.extend(more.into_iter().map(|(k, v)| (Value::from(k), v)));
    Value::Dict(caps)
}

/// Reads the client's hello, running the challenge round when configured.
async fn handshake(conn: &mut Conn, config: &ServerConfig) -> Result<(), LoadError> {
    let hello = conn
        .packet_within(config.hello_timeout, "waiting for the client hello")
        .await?;
    if hello.type_name() != Some("hello") {
        return Err(LoadError::Unexpected(format!(
            "expected hello, got {}",
            hello.type_name().unwrap_or("?")
        )));
    }
    if let Some(password) = &config.password {
        let mut salt = vec![0u8; 64];
        rand::thread_rng().fill_bytes(&mut salt);
        let challenge = Value::list([
            Value::from("challenge"),
            Value::Bytes(Bytes::from(salt.clone())),
            Value::from(""),
            Value::from("hmac+sha256"),
            Value::from("hmac+sha256"),
            Value::from("password"),
        ]);
        conn.send(&challenge).await?;
        let answer = conn
            .packet_within(config.hello_timeout, "waiting for the challenge response")
            .await?;
        let caps = answer.get(1).cloned().unwrap_or(Value::None);
        let response = caps
            .get("challenge_response")
            .and_then(Value::as_bytes)
            .unwrap_or(&[]);
        let client_salt = caps
            .get("challenge_client_salt")
            .and_then(Value::as_bytes)
            .unwrap_or(&[]);
        let ok = digest::verify_response(
            "hmac+sha256",
            "hmac+sha256",
            &digest::password_bytes(password),
            &salt,
            client_salt,
            response,
        )
        .unwrap_or(false);
        if !ok {
            let _ = conn
                .send(&Value::list(["disconnect", "authentication failed"]))
                .await;
            return Err(LoadError::Unexpected("client failed the challenge".into()));
        }
    }
    conn.send(&Value::list([Value::from("hello"), hello_caps(config)]))
        .await
}

/// What the reading side asks the writing side to do.
enum Cmd {
    /// Write these bytes (an encoded packet).
    Send(Bytes),
    /// Start or stop streaming draws.
    Stream(bool),
}

async fn handle(stream: TcpStream, config: &ServerConfig, pixels: Bytes) -> Result<(), LoadError> {
    let mut conn = Conn::new(stream, config.wire);
    handshake(&mut conn, config).await?;
    let Conn {
        mut reader,
        writer,
        mut packets,
        wire,
        ..
    } = conn;
    let (tx, rx) = mpsc::unbounded_channel();
    let writing = tokio::spawn(write_loop(writer, rx, wire, pixels));
    let result = async {
        use futures::StreamExt;
        while let Some(frame) = reader.next().await {
            let frame = frame?;
            if frame.header.index != 0 {
                // A raw chunk: keep it for its main packet only if small (the fake client sends none).
                packets.push(frame)?;
                continue;
            }
            let name = match peek_packet_type(&frame)? {
                PacketType::Name(n) => n,
                PacketType::Alias(_) => continue,
            };
            match name.as_str() {
                "ping" => {
                    if let Some(p) = packets.push(frame)? {
                        let _ = tx.send(Cmd::Send(wire.encode(&ping_echo(&p))?));
                    }
                }
                n if n == CMD_STREAM => {
                    let _ = tx.send(Cmd::Stream(true));
                }
                n if n == CMD_STOP => {
                    let _ = tx.send(Cmd::Stream(false));
                }
                "disconnect" | "connection-close" => return Ok(()),
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    writing.abort();
    result
}

/// The draw packet's frames: the pixels as raw chunk 7 (uncompressed, like xpra's pixel data) and
/// the small main packet `["draw", wid, x, y, w, h, "rgb32", b"", seq, rowstride, {}]`.
fn draw_frames(wire: Wire, pixels: &Bytes, seq: i64) -> Result<[Bytes; 3], LoadError> {
    // 512 x 512 x 4 bytes for 1 MiB; other sizes keep a width of 512 pixels.
    let (w, h) = (
        512i64,
        i64::try_from(pixels.len() / 2048)
            .unwrap_or(i64::MAX)
            .max(1),
    );
    let main = Value::list([
        Value::from("draw"),
        Value::Int(1),
        Value::Int(0),
        Value::Int(0),
        Value::Int(w),
        Value::Int(h),
        Value::from("rgb32"),
        Value::Bytes(Bytes::new()),
        Value::Int(seq),
        Value::Int(w * 4),
        Value::Dict(vec![]),
    ]);
    let mut writer = wire.writer();
    writer.chunks = false;
    let frames = writer.encode(&main)?;
    let mut main_wire = Vec::new();
    for f in &frames {
        main_wire.extend_from_slice(&f.header.to_bytes());
        main_wire.extend_from_slice(&f.payload);
    }
    let chunk = Frame::new(Flags::default(), 0, 7, pixels.clone());
    Ok([
        Bytes::copy_from_slice(&chunk.header.to_bytes()),
        pixels.clone(),
        Bytes::from(main_wire),
    ])
}

async fn write_loop(
    mut writer: WriteSide,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    wire: Wire,
    pixels: Bytes,
) -> Result<(), LoadError> {
    let mut streaming = false;
    let mut seq = 0i64;
    loop {
        let cmd = if streaming {
            match rx.try_recv() {
                Ok(c) => Some(c),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
            }
        } else {
            match rx.recv().await {
                Some(c) => Some(c),
                None => return Ok(()),
            }
        };
        match cmd {
            Some(Cmd::Send(bytes)) => writer
                .write_all(&bytes)
                .await
                .map_err(|e| LoadError::io("sending a packet", e))?,
            Some(Cmd::Stream(on)) => streaming = on,
            None => {
                seq += 1;
                for part in draw_frames(wire, &pixels, seq)? {
                    writer
                        .write_all(&part)
                        .await
                        .map_err(|e| LoadError::io("sending a draw", e))?;
                }
            }
        }
    }
}
