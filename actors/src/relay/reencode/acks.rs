//! The client-to-server direction of a re-encoded session: everything is relayed unchanged (the
//! client's `damage-sequence` acks carry the server's own sequences, see [`super::direction`]),
//! but an ack reporting a decode error (`decode_time` < 0) tells the server-to-client direction
//! that the window's stream is broken, so that its next frame starts a new one (reference
//! `xpra-video.md` §4.3, step 5).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::debug;
use xgate_protocol::Value;

use super::packets::{self, Common, Packets};
use crate::relay::pump::{End, Finished, Inject, Watch};

/// Relays the client's packets to the server until one side ends, reporting the windows whose
/// frames the client failed to decode on `decode_errors`. The same contract as
/// [`crate::relay::pump::pump`].
pub async fn pump<R, W>(
    src: R,
    mut dst: W,
    buf: BytesMut,
    watch: Watch,
    mut inject: mpsc::Receiver<Inject>,
    decode_errors: mpsc::Sender<u64>,
) -> Finished<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut packets = Packets::new(src, &buf, watch.max_size);
    let mut inject_open = true;
    let end = loop {
        tokio::select! {
            biased;
            msg = inject.recv(), if inject_open => {
                if let Some(end) = packets::injected(msg, &mut dst, &watch, &mut inject_open).await {
                    break end;
                }
            }
            next = packets.next() => {
                let chunks = match next {
                    Ok(c) => c,
                    Err(end) => break end,
                };
                let name = match packets::name(&chunks) {
                    Ok(n) => n.unwrap_or_default(),
                    Err(e) => break End::Protocol(e),
                };
                let acts = name == "damage-sequence" || packets::is_common(&name);
                let common = if acts {
                    match packets.decode(&chunks) {
                        Ok(p) if name == "damage-sequence" => {
                            if let Some(wid) = failed_window(&p) {
                                debug!(target: "xgate::encoder::relay", wid, "client decode error");
                                // Full: the other direction is behind; it gets the next one.
                                let _ = decode_errors.try_send(wid);
                            }
                            Common::Forward
                        }
                        Ok(p) => packets::common(&name, &p, &watch),
                        Err(e) => break End::Protocol(e),
                    }
                } else {
                    Common::Forward
                };
                if let Some(end) = packets::apply(common, &mut dst, &chunks, &watch).await {
                    break end;
                }
            }
        }
    };
    packets.finish(end, dst)
}

/// The window of a `damage-sequence` ack that reports a decode error:
/// `["damage-sequence", packet_sequence, wid, width, height, decode_time, message]`, with
/// `decode_time` -1 (error) or -2 (6.5.5: window not found, which needs no new stream).
fn failed_window(p: &xgate_protocol::Packet) -> Option<u64> {
    let decode_time = p.get(5).and_then(Value::as_int)?;
    if decode_time != -1 {
        return None;
    }
    p.get(2)
        .and_then(Value::as_int)
        .and_then(|w| u64::try_from(w).ok())
}
