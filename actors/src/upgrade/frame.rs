//! The WebSocket frame codec (RFC 6455, as xpra uses it; reference §5.3): header parsing with
//! the size checked before anything is buffered, masking, and an incremental decoder that hands
//! out payload bytes as they arrive. Pure (no I/O), so that it is fuzzed on its own
//! (`fuzz/fuzz_targets/ws_frames.rs` includes this file).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Close code: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: protocol error.
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: message too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation,
    /// UTF-8 text (xpra treats it as binary).
    Text,
    /// Binary data.
    Binary,
    /// Close, with an optional code and reason.
    Close,
    /// Ping: the peer wants a pong with the same payload.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_u8(b: u8) -> Option<Opcode> {
        Some(match b {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }

    fn to_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0,
            Opcode::Text => 1,
            Opcode::Binary => 2,
            Opcode::Close => 8,
            Opcode::Ping => 9,
            Opcode::Pong => 10,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// The frame's type.
    pub opcode: Opcode,
    /// The masking key, when the sender masked (browsers do; xpra's client does not).
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Bytes taken by the header itself (2 to 14).
    pub header_len: usize,
}

/// Why incoming frames are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RSV bits set, but no extension was negotiated.
    #[error("reserved bits set in a frame header")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    #[error("invalid control frame")]
    BadControl,
    /// A frame larger than the connection may carry.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooBig {
        /// The length the frame claims.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A continuation frame with no fragmented message to continue.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new message started before the fragmented one finished.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
}

impl FrameError {
    /// The close code that answers this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooBig { .. } => CLOSE_TOO_BIG,
            _ => CLOSE_PROTOCOL,
        }
    }
}

/// Parses a frame header from the start of `data`: `Ok(None)` when more bytes are needed.
/// Lengths are checked against `max_payload` before anything is buffered.
pub fn parse_header(data: &[u8], max_payload: u64) -> Result<Option<FrameHeader>, FrameError> {
    let (Some(&b0), Some(&b1)) = (data.first(), data.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::Reserved);
    }
    let opcode = Opcode::from_u8(b0 & 0x0f).ok_or(FrameError::Opcode(b0 & 0x0f))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7f;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext + if masked { 4 } else { 0 };
    if data.len() < header_len {
        return Ok(None);
    }
    let len = match ext {
        2 => u64::from(u16::from_be_bytes([data[2], data[3]])),
        8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&data[2..10]);
            u64::from_be_bytes(raw)
        }
        _ => u64::from(len7),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(FrameError::BadControl);
    }
    if len > max_payload {
        return Err(FrameError::TooBig {
            len,
            max: max_payload,
        });
    }
    let mask = masked.then(|| {
        let m = &data[2 + ext..2 + ext + 4];
        [m[0], m[1], m[2], m[3]]
    });
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        len,
        header_len,
    }))
}

/// XORs `data` with `mask`, `offset` bytes into the payload.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset % 4);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        c[0] ^= m[0];
        c[1] ^= m[1];
        c[2] ^= m[2];
        c[3] ^= m[3];
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(m) {
        *b ^= k;
    }
}

/// Appends an unmasked frame header (FIN set) for `len` payload bytes to `out`.
pub fn encode_header(opcode: Opcode, len: u64, out: &mut BytesMut) {
    out.put_u8(0x80 | opcode.to_u8());
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(l);
    } else {
        out.put_u8(127);
        out.put_u64(len);
    }
}

/// Appends a masked frame header (FIN set, mask bit and key) for `len` payload bytes to `out`,
/// as a client sends; the payload that follows must be masked with `key` ([`apply_mask`]).
pub fn encode_masked_header(opcode: Opcode, len: u64, key: [u8; 4], out: &mut BytesMut) {
    let start = out.len();
    encode_header(opcode, len, out);
    out[start + 1] |= 0x80;
    out.put_slice(&key);
}

/// A whole control frame (close, ping or pong) with its payload.
pub fn control_frame(opcode: Opcode, payload: &[u8], out: &mut BytesMut) {
    encode_header(opcode, payload.len() as u64, out);
    out.put_slice(payload);
}

/// A close frame's payload: the code and a reason cut to fit in 125 bytes.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

/// What the decoder found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Payload bytes of a data frame (binary, text or continuation), unmasked.
    Data(Bytes),
    /// A ping with its payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close, with its code when it had one.
    Close(Option<u16>),
    /// The input holds no complete next item.
    NeedMore,
}

/// Where the decoder is in the frame stream.
#[derive(Debug, Clone, Copy)]
enum DecodeState {
    /// Waiting for a frame header.
    Header,
    /// Inside a data frame's payload.
    Payload {
        /// Payload bytes still to come.
        remaining: u64,
        /// The frame's mask.
        mask: Option<[u8; 4]>,
        /// Payload bytes already passed, for the mask's phase.
        pos: usize,
    },
    /// A control frame's header was read; its payload is awaited whole.
    Control(FrameHeader),
}

/// An incremental frame decoder: payload bytes are handed out as they arrive, so a large frame
/// is never buffered whole.
#[derive(Debug)]
pub struct Decoder {
    /// Where it is.
    state: DecodeState,
    /// The largest frame payload accepted.
    max_payload: u64,
    /// Inside a fragmented message (a data frame without FIN was seen).
    in_message: bool,
    /// A first frame was seen (before it, stray `\r\n` bytes are skipped as xpra does).
    started: bool,
    /// Text frames seen (they are taken as binary; counted for the log).
    pub text_frames: u64,
}

impl Decoder {
    /// A decoder refusing frames over `max_payload` bytes.
    pub fn new(max_payload: u64) -> Decoder {
        Decoder {
            state: DecodeState::Header,
            max_payload,
            in_message: false,
            started: false,
            text_frames: 0,
        }
    }

    /// Whether the decoder stands between frames (an EOF there is clean).
    pub fn between_frames(&self) -> bool {
        matches!(self.state, DecodeState::Header) && !self.in_message
    }

    /// Takes the next item from `input`, handing out at most `limit` payload bytes.
    pub fn next(&mut self, input: &mut BytesMut, limit: usize) -> Result<Event, FrameError> {
        loop {
            match self.state {
                DecodeState::Header => {
                    if !self.started {
                        let skip = input
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        input.advance(skip);
                    }
                    let Some(h) = parse_header(input, self.max_payload)? else {
                        return Ok(Event::NeedMore);
                    };
                    self.started = true;
                    input.advance(h.header_len);
                    if h.opcode.is_control() {
                        self.state = DecodeState::Control(h);
                        continue;
                    }
                    match (h.opcode, self.in_message) {
                        (Opcode::Continuation, false) => {
                            return Err(FrameError::UnexpectedContinuation)
                        }
                        (Opcode::Text | Opcode::Binary, true) => {
                            return Err(FrameError::ExpectedContinuation)
                        }
                        (Opcode::Text, _) => self.text_frames += 1,
                        _ => {}
                    }
                    self.in_message = !h.fin;
                    if h.len > 0 {
                        self.state = DecodeState::Payload {
                            remaining: h.len,
                            mask: h.mask,
                            pos: 0,
                        };
                    }
                }
                DecodeState::Payload {
                    remaining,
                    mask,
                    pos,
                } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len())
                        .min(limit);
                    if n == 0 {
                        return Ok(Event::NeedMore);
                    }
                    let mut data = input.split_to(n);
                    if let Some(m) = mask {
                        apply_mask(&mut data, m, pos);
                    }
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        DecodeState::Header
                    } else {
                        DecodeState::Payload {
                            remaining,
                            mask,
                            pos: pos.wrapping_add(n),
                        }
                    };
                    return Ok(Event::Data(data.freeze()));
                }
                DecodeState::Control(h) => {
                    // Control payloads are at most 125 bytes (checked by parse_header).
                    let len = h.len as usize;
                    if input.len() < len {
                        return Ok(Event::NeedMore);
                    }
                    let mut payload = input.split_to(len);
                    if let Some(m) = h.mask {
                        apply_mask(&mut payload, m, 0);
                    }
                    self.state = DecodeState::Header;
                    return match h.opcode {
                        Opcode::Ping => Ok(Event::Ping(payload.freeze())),
                        Opcode::Pong => Ok(Event::Pong),
                        _ => match payload.len() {
                            0 => Ok(Event::Close(None)),
                            1 => Err(FrameError::BadControl),
                            _ => Ok(Event::Close(Some(u16::from_be_bytes([
                                payload[0], payload[1],
                            ])))),
                        },
                    };
                }
            }
        }
    }
}
