//! A `tokio_util` codec that splits a byte stream into xpra chunks without copying payloads.
//!
//! Decoding reads the 8-byte header, validates it against the connection's cap, reserves the whole
//! payload at once (so a large chunk arrives in one allocation) and hands the payload out as a
//! `Bytes` split from the read buffer. Nothing is decompressed or decoded here: that is the job of
//! [`PacketReader`](crate::packet::PacketReader), and a relay may never need it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ProtocolError;
use crate::header::{Flags, Header, DEFAULT_MAX_PACKET_SIZE, HEADER_SIZE};

/// One chunk as it travels: its header and its (still compressed) payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The chunk header; `header.length` equals `payload.len()`.
    pub header: Header,
    /// The payload bytes, shared with the read buffer they came from.
    pub payload: Bytes,
}

impl Frame {
    /// A frame whose header length is set from the payload.
    ///
    /// Payloads over `u32::MAX` bytes cannot be framed; their length saturates (and the header
    /// then fails validation at the receiver), which the size caps make unreachable in practice.
    pub fn new(flags: Flags, compression: u8, index: u8, payload: Bytes) -> Frame {
        Frame {
            header: Header {
                flags,
                compression,
                index,
                length: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            },
            payload,
        }
    }

    /// Header plus payload, as written on the wire.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.payload.len());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Bytes on the wire, header included.
    pub fn wire_len(&self) -> usize {
        HEADER_SIZE + self.payload.len()
    }
}

/// Splits a byte stream into [`Frame`]s and writes frames back.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest payload this connection accepts (capped at 256 MiB by header validation).
    max_size: u32,
    /// The header of a frame whose payload has not fully arrived yet.
    pending: Option<Header>,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_PACKET_SIZE)
    }
}

impl FrameCodec {
    /// A codec refusing payloads over `max_size` bytes.
    pub fn new(max_size: u32) -> Self {
        FrameCodec {
            max_size,
            pending: None,
        }
    }

    /// The current per-chunk cap.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    /// Changes the cap (xpra raises it once the hello is accepted). A frame already announced
    /// keeps the cap it was validated against.
    pub fn set_max_size(&mut self, max_size: u32) {
        self.max_size = max_size;
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let header = match self.pending {
            Some(h) => h,
            None => {
                let Some(head) = src.first_chunk::<HEADER_SIZE>() else {
                    return Ok(None);
                };
                let h = Header::decode(head, self.max_size)?;
                if h.flags.contains(Flags::CIPHER) {
                    return Err(ProtocolError::Unsupported("AES-encrypted chunks"));
                }
                src.advance(HEADER_SIZE);
                self.pending = Some(h);
                h
            }
        };
        let len = header.length as usize;
        if src.len() < len {
            // One allocation for the whole payload (bounded by the validated cap).
            src.reserve(len - src.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(Frame {
            header,
            payload: src.split_to(len).freeze(),
        }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let mut header = frame.header;
        header.length = u32::try_from(frame.payload.len())
            .map_err(|_| ProtocolError::Unsupported("payload over 4 GiB"))?;
        dst.reserve(HEADER_SIZE + frame.payload.len());
        dst.put_slice(&header.to_bytes());
        dst.put_slice(&frame.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderError;

    fn wire(index: u8, payload: &[u8]) -> Vec<u8> {
        Frame::new(Flags::default(), 0, index, Bytes::copy_from_slice(payload)).to_wire()
    }

    #[test]
    fn splits_byte_by_byte_and_in_one_go() {
        let mut stream = wire(7, &[1; 300]);
        stream.extend(
            Frame::new(
                Flags::RENCODEPLUS | Flags::FLUSH,
                0,
                0,
                Bytes::from_static(b"\xc1\x01"),
            )
            .to_wire(),
        );
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let mut frames = vec![];
        for b in &stream {
            buf.put_u8(*b);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].header.index, 7);
        assert_eq!(frames[0].payload.len(), 300);
        assert_eq!(&frames[1].payload[..], b"\xc1\x01");
        let mut buf = BytesMut::from(&stream[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), frames[0]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), frames[1]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        let mut out = BytesMut::new();
        codec.encode(&frames[0], &mut out).unwrap();
        codec.encode(frames[1].clone(), &mut out).unwrap();
        assert_eq!(&out[..], &stream[..]);
    }

    #[test]
    fn payload_is_not_copied_and_is_reserved_up_front() {
        let stream = wire(0, &vec![3u8; 1 << 20]);
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&stream[..64]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 1 << 20);
        let ptr = buf.as_ptr();
        buf.extend_from_slice(&stream[64..]);
        assert_eq!(buf.as_ptr(), ptr, "no reallocation after the reserve");
        let f = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.payload.as_ptr(), ptr);
    }

    #[test]
    fn refuses_oversized_and_bad_headers() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&wire(0, &[0; 101])[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ProtocolError::Header(HeaderError::TooLarge {
                length: 101,
                max: 100
            }))
        ));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ProtocolError::Header(HeaderError::BadMagic(b'G')))
        ));
        let mut buf = BytesMut::from(&[b'P', 0x12, 0, 0, 0, 0, 0, 1, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ProtocolError::Unsupported(_))
        ));
    }
}
