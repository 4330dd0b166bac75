//! What a fake peer speaks (encoder, compressor) and a frame-level connection: TCP, any stream
//! split in two (such as a WebSocket inside TLS), or the stdin/stdout of a command
//! (`ssh ... xpra _proxy 100`, for the SSH benchmarks).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use xgate_protocol::{
    Compressor, Frame, FrameCodec, Packet, PacketEncoder, PacketReader, PacketWriter,
    ProtocolError, Value, ABS_MAX_PACKET_SIZE,
};

/// Errors of the load generator, with enough context to be printed as they are.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The peer sent something that is not valid xpra.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer closed the connection.
    #[error("connection closed by the peer ({0})")]
    Closed(String),
    /// The peer sent `disconnect`.
    #[error("disconnected by the peer: {0}")]
    Disconnected(String),
    /// The peer did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The exchange went somewhere the load generator does not handle.
    #[error("{0}")]
    Unexpected(String),
}

impl LoadError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> LoadError {
        LoadError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The packet encoding a fake peer sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// Packet encoder for main packets.
    pub encoder: PacketEncoder,
    /// Compressor for main packets over 378 bytes (pixel chunks are never compressed).
    pub compressor: Compressor,
    /// Compression level (0 turns compression off).
    pub level: u8,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            encoder: PacketEncoder::RencodePlus,
            compressor: Compressor::Lz4,
            level: 1,
        }
    }
}

impl Wire {
    /// The packet writer for these settings (raw chunks on, flush flag only for rencodeplus).
    pub fn writer(&self) -> PacketWriter {
        let mut w = PacketWriter::new(self.encoder, self.compressor, self.level);
        w.flush = self.encoder == PacketEncoder::RencodePlus;
        w
    }

    /// Encodes a packet to wire bytes (its frames, concatenated).
    pub fn encode(&self, packet: &Value) -> Result<Bytes, LoadError> {
        let frames = self.writer().encode(packet)?;
        let mut out = Vec::with_capacity(frames.iter().map(Frame::wire_len).sum());
        for f in &frames {
            out.extend_from_slice(&f.header.to_bytes());
            out.extend_from_slice(&f.payload);
        }
        Ok(Bytes::from(out))
    }

    /// The caps advertising this encoder and compressor (and what a 3.x peer looks for).
    pub fn caps(&self) -> Vec<(Value, Value)> {
        let encoders: Vec<Value> = match self.encoder {
            PacketEncoder::RencodePlus => vec!["rencodeplus".into()],
            PacketEncoder::Rencode => vec!["rencode".into(), "bencode".into()],
            PacketEncoder::Bencode => vec!["bencode".into()],
        };
        let compressors: Vec<Value> = match self.compressor {
            Compressor::None => vec![],
            c => vec![c.name().into()],
        };
        let mut caps: Vec<(Value, Value)> = vec![
            ("encoders".into(), Value::List(encoders)),
            ("compressors".into(), Value::List(compressors)),
            (
                "compression_level".into(),
                Value::from(i64::from(self.level)),
            ),
        ];
        // 3.x picks its encoder and compressor from boolean caps.
        for e in PacketEncoder::ALL {
            caps.push((e.name().into(), Value::from(e == self.encoder)));
        }
        for c in [Compressor::Lz4, Compressor::Zlib, Compressor::Brotli] {
            caps.push((c.name().into(), Value::from(c == self.compressor)));
        }
        caps
    }
}

/// Parses an encoder name for the command line.
pub fn parse_encoder(s: &str) -> Result<PacketEncoder, String> {
    PacketEncoder::from_name(s)
        .ok_or_else(|| format!("unknown encoder {s:?} (rencodeplus, rencode, bencode)"))
}

/// Parses a compressor name for the command line.
pub fn parse_compressor(s: &str) -> Result<Compressor, String> {
    Compressor::from_name(s)
        .ok_or_else(|| format!("unknown compressor {s:?} (lz4, zlib, brotli, none)"))
}

/// The read half of a connection, whatever its transport.
pub type ReadSide = Box<dyn AsyncRead + Send + Unpin>;

/// The write half of a connection, whatever its transport.
pub type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection read as frames and written as bytes.
pub struct Conn {
    /// Frames from the peer.
    pub reader: FramedRead<ReadSide, FrameCodec>,
    /// Bytes to the peer.
    pub writer: WriteSide,
    /// The command whose stdin/stdout is the connection, if any; killed with the connection.
    _command: Option<tokio::process::Child>,
    /// Decodes whole packets (used for the handshake and small packets only).
    pub packets: PacketReader,
    /// How this side encodes.
    pub wire: Wire,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream, wire: Wire) -> Conn {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Conn::from_halves(Box::new(r), Box::new(w), wire)
    }

    /// Starts `command` (program and arguments) and talks through its stdin and stdout, as
    /// xpra's SSH transport does with `ssh HOST xpra _proxy DISPLAY`. Its stderr is inherited.
    pub fn spawn(command: &[String], wire: Wire) -> Result<Conn, LoadError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| LoadError::Unexpected("an empty command".into()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LoadError::io(format!("starting {program}"), e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(LoadError::Unexpected(format!("{program}: no pipes")));
        };
        let mut conn = Conn::from_halves(Box::new(stdout), Box::new(stdin), wire);
        conn._command = Some(child);
        Ok(conn)
    }

    /// Wraps the two halves of a connected stream of any transport.
    pub fn from_halves(r: ReadSide, w: WriteSide, wire: Wire) -> Conn {
        Conn {
            reader: FramedRead::with_capacity(r, FrameCodec::new(ABS_MAX_PACKET_SIZE), 256 * 1024),
            writer: w,
            _command: None,
            packets: PacketReader::default(),
            wire,
        }
    }

    /// The next frame; `Closed` at end of stream.
    pub async fn frame(&mut self) -> Result<Frame, LoadError> {
        match self.reader.next().await {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => {
                // Before a packet encoder is agreed, xpra peers (and xgate) refuse in plain text.
                let buf = self.reader.read_buffer();
                if buf.starts_with(b"disconnect") {
                    let text = String::from_utf8_lossy(&buf[..buf.len().min(200)]);
                    return Err(LoadError::Disconnected(text.trim().to_string()));
                }
                Err(e.into())
            }
            None => Err(LoadError::Closed("end of stream".into())),
        }
    }

    /// The next whole packet (raw chunks spliced in).
    pub async fn packet(&mut self) -> Result<Packet, LoadError> {
        loop {
            let f = self.frame().await?;
            if let Some(p) = self.packets.push(f)? {
                return Ok(p);
            }
        }
    }

    /// The next whole packet, or `Timeout` after `limit`.
    pub async fn packet_within(
        &mut self,
        limit: Duration,
        what: &str,
    ) -> Result<Packet, LoadError> {
        tokio::time::timeout(limit, self.packet())
            .await
            .map_err(|_| LoadError::Timeout(what.to_string()))?
    }

    /// Encodes and sends a packet.
    pub async fn send(&mut self, packet: &Value) -> Result<(), LoadError> {
        let bytes = self.wire.encode(packet)?;
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| LoadError::io("sending a packet", e))?;
        self.writer
            .flush()
            .await
            .map_err(|e| LoadError::io("sending a packet", e))
    }
}

/// `["ping_echo", echoed, load1, load5, load15, latency, sid?]` for a `ping` packet.
pub fn ping_echo(ping: &Packet) -> Value {
    let mut items = vec![
        Value::from("ping_echo"),
        ping.get(1).cloned().unwrap_or(Value::Int(0)),
        Value::Int(0),
        Value::Int(0),
        Value::Int(0),
        Value::Int(-1),
    ];
    if let Some(sid) = ping.get(3) {
        items.push(sid.clone());
    }
    Value::List(items)
}
