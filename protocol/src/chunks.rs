//! Raw chunks (§1.2): large binary packet items sent outside the encoded list.
//!
//! The sender replaces item `i` with an empty placeholder and sends the bytes first, in a chunk
//! whose header index is `i`; the receiver keeps them until the main packet (index 0) arrives and
//! splices them back in.

use bytes::Bytes;

use crate::header::MAX_CHUNK_INDEX;
use crate::value::Value;

/// Most raw chunks pending for one packet: xpra refuses a fourth.
pub const MAX_PENDING_CHUNKS: usize = 3;

/// Binary items larger than this are sent as raw chunks (xpra's threshold for large
/// uncompressed bytes, 16 KiB).
pub const RAW_CHUNK_MIN_SIZE: usize = 16 * 1024;

/// Why raw chunks could not be reassembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// Index 0 (that is the main packet) or 16 and above.
    #[error("raw chunk index {0} out of range 1..=15")]
    IndexOutOfRange(u8),
    /// A second chunk for the same index before the main packet.
    #[error("duplicate raw chunk for index {0}")]
    Duplicate(u8),
    /// A fourth pending chunk.
    #[error("too many pending raw chunks (max {MAX_PENDING_CHUNKS})")]
    TooMany,
    /// A chunk index beyond the main packet's items.
    #[error("raw chunk index {index} beyond the packet's {len} items")]
    BeyondPacket {
        /// The chunk index.
        index: u8,
        /// The packet's length.
        len: usize,
    },
    /// The packet item a chunk replaces is not an empty string.
    #[error("packet item {0} replaced by a raw chunk is not an empty placeholder")]
    PlaceholderNotEmpty(u8),
    /// Raw chunks arrived but the main packet is not a list.
    #[error("raw chunks for a packet that is not a list")]
    NotAList,
}

/// A raw chunk to send: the packet item index it replaces and its (uncompressed) bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChunk {
    /// The packet item index (1..=15).
    pub index: u8,
    /// The item's bytes.
    pub data: Bytes,
}

/// Receiving side: holds raw chunks until their main packet arrives.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Pending chunks by index, at most [`MAX_PENDING_CHUNKS`], in arrival order.
    pending: Vec<(u8, Bytes)>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many chunks are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no chunk is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every pending chunk.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Stores a (decompressed) raw chunk.
    pub fn add(&mut self, index: u8, data: Bytes) -> Result<(), ChunkError> {
        if index == 0 || index >= MAX_CHUNK_INDEX {
            return Err(ChunkError::IndexOutOfRange(index));
        }
        if self.pending.iter().any(|(i, _)| *i == index) {
            return Err(ChunkError::Duplicate(index));
        }
        if self.pending.len() >= MAX_PENDING_CHUNKS {
            return Err(ChunkError::TooMany);
        }
        self.pending.push((index, data));
        Ok(())
    }

    /// Splices the pending chunks into a decoded main packet, replacing the empty placeholders,
    /// and leaves the reassembler empty (also on error).
    pub fn splice(&mut self, packet: &mut Value) -> Result<(), ChunkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let Value::List(items) = packet else {
            return Err(ChunkError::NotAList);
        };
        for (index, data) in pending {
            let len = items.len();
            let slot = items
                .get_mut(usize::from(index))
                .ok_or(ChunkError::BeyondPacket { index, len })?;
            if !slot.is_empty_string() {
                return Err(ChunkError::PlaceholderNotEmpty(index));
            }
            *slot = Value::Bytes(data);
        }
        Ok(())
    }
}

/// Sending side: takes binary items larger than `min_size` (at most [`MAX_PENDING_CHUNKS`],
/// indexes 1..=15) out of a packet's items, leaving `placeholder` (an empty string) in their place.
pub fn extract_raw_chunks(
    items: &mut [Value],
    min_size: usize,
    placeholder: &Value,
) -> Vec<RawChunk> {
    let mut chunks = Vec::new();
    let last = items.len().min(usize::from(MAX_CHUNK_INDEX));
    for (index, item) in items.iter_mut().enumerate().take(last).skip(1) {
        if chunks.len() >= MAX_PENDING_CHUNKS {
            break;
        }
        if let Value::Bytes(b) = item {
            if b.len() > min_size {
                let data = std::mem::take(b);
                *item = placeholder.clone();
                chunks.push(RawChunk {
                    index: index as u8,
                    data,
                });
            }
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::draw_example as draw;

    #[test]
    fn splices_into_the_placeholder() {
        let mut r = Reassembler::new();
        r.add(7, Bytes::from_static(&[1; 300])).unwrap();
        let mut p = draw(Value::Bytes(Bytes::new()));
        r.splice(&mut p).unwrap();
        assert_eq!(
            p.as_list().unwrap()[7],
            Value::Bytes(Bytes::from_static(&[1; 300]))
        );
        assert!(r.is_empty());
        // '' placeholder too.
        r.add(7, Bytes::from_static(b"x")).unwrap();
        let mut p = draw(Value::from(""));
        r.splice(&mut p).unwrap();
    }

    #[test]
    fn refusals() {
        let mut r = Reassembler::new();
        assert_eq!(r.add(0, Bytes::new()), Err(ChunkError::IndexOutOfRange(0)));
        assert_eq!(
            r.add(16, Bytes::new()),
            Err(ChunkError::IndexOutOfRange(16))
        );
        r.add(1, Bytes::new()).unwrap();
        assert_eq!(r.add(1, Bytes::new()), Err(ChunkError::Duplicate(1)));
        r.add(2, Bytes::new()).unwrap();
        r.add(3, Bytes::new()).unwrap();
        assert_eq!(r.add(4, Bytes::new()), Err(ChunkError::TooMany));
        r.clear();
        r.add(11, Bytes::new()).unwrap();
        let mut p = draw(Value::Bytes(Bytes::new()));
        assert_eq!(
            r.splice(&mut p),
            Err(ChunkError::BeyondPacket { index: 11, len: 11 })
        );
        assert!(r.is_empty());
        r.add(6, Bytes::new()).unwrap();
        assert_eq!(r.splice(&mut p), Err(ChunkError::PlaceholderNotEmpty(6)));
        r.add(6, Bytes::new()).unwrap();
        assert_eq!(r.splice(&mut Value::Int(1)), Err(ChunkError::NotAList));
    }

    #[test]
    fn extracts_large_bytes_only() {
        let big = Bytes::from(vec![9u8; RAW_CHUNK_MIN_SIZE + 1]);
        let mut items = vec![
            Value::from("x"),
            Value::Bytes(big.clone()),
            Value::Bytes(Bytes::from_static(b"small")),
            Value::Bytes(big.clone()),
            Value::Bytes(big.clone()),
            Value::Bytes(big.clone()),
        ];
        let chunks = extract_raw_chunks(&mut items, RAW_CHUNK_MIN_SIZE, &Value::from(""));
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert_eq!(items[1], Value::from(""));
        assert_eq!(items[2], Value::Bytes(Bytes::from_static(b"small")));
        assert_eq!(items[5], Value::Bytes(big));
    }
}
