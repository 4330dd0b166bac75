//! Re-encoding a session's pictures (issue #9): the server is asked for raw rgb only
//! ([`hello`]), and the server-to-client direction ([`direction`], with its per-window
//! bookkeeping in [`windows`]) composites its raw draws into one framebuffer per window
//! ([`framebuffer`]), has the EncoderPool turn each finished update
//! into one H.264 or VP8/VP9 frame and sends the client the video `draw` its decoder expects
//! ([`draw`]), keeping the server's `packet_sequence` so that the client's `damage-sequence` acks
//! reach the server unchanged. The client-to-server direction ([`acks`]) relays everything
//! unchanged, and tells the other direction of the client's decode errors.
//!
//! Enabled per session with the session option `reencode` (a target's `;reencode=yes`, a
//! database row's session options), whose default is the global `reencode` option:
//! `yes`/`auto` picks H.264 when the client decodes it, else VP8, else VP9; `h264`/`vp8`/`vp9`
//! asks for that codec first; `no` (the default) relays unchanged.
//! When the client decodes none of the codecs the EncoderPool can make, the session is relayed
//! unchanged and the log says why.

pub mod acks;
pub mod direction;
pub mod draw;
pub mod framebuffer;
pub mod hello;
pub mod packets;
pub mod windows;

#[cfg(test)]
mod pump_tests;

use std::collections::BTreeMap;

use xgate_config::ReencodeMode;
use xgate_messages::encode::{EncoderInfo, VideoCodec};
use xgate_protocol::Value;

pub use direction::{pump, Downstream};

/// The client-to-server direction of a re-encoded session.
pub use acks::pump as pump_upstream;

/// The session option that turns re-encoding on.
pub const OPTION: &str = "reencode";

/// What a session's `reencode` option asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Relay unchanged.
    Off,
    /// Re-encode with the best codec the client decodes.
    Auto,
    /// Re-encode, with this codec first.
    Codec(VideoCodec),
}

impl From<ReencodeMode> for Request {
    fn from(mode: ReencodeMode) -> Request {
        match mode {
            ReencodeMode::No => Request::Off,
            ReencodeMode::Auto => Request::Auto,
            ReencodeMode::H264 => Request::Codec(VideoCodec::H264),
            ReencodeMode::Vp8 => Request::Codec(VideoCodec::Vp8),
            ReencodeMode::Vp9 => Request::Codec(VideoCodec::Vp9),
        }
    }
}

impl Request {
    /// The request in a session's options, else the gateway's default (the global `reencode`);
    /// an unknown value is an error naming it.
    pub fn from_options(
        options: &BTreeMap<String, String>,
        default: ReencodeMode,
    ) -> Result<Request, String> {
        let Some(value) = options.get(OPTION) else {
            return Ok(default.into());
        };
        value
            .parse::<ReencodeMode>()
            .map(Request::from)
            .map_err(|e| format!("{OPTION}={value}: {}", e.reason))
    }
}

/// How a re-encoded session's pictures are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The codec the client gets.
    pub codec: VideoCodec,
    /// The client's `video_max_size`: larger windows pass through as rgb.
    pub max_size: (u32, u32),
    /// The client's `auto_refresh_delay` (`None`: no lossless refresh).
    pub refresh_delay: Option<std::time::Duration>,
}

/// What the relay does for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Relay unchanged (the option is off).
    Off,
    /// Relay unchanged although re-encoding was asked for; says why.
    Unavailable(String),
    /// Re-encode.
    Reencode(Plan),
}

/// Chooses the codec: the requested one first, then H.264, VP8, VP9; each must be in the client's
/// decodable encodings and have an available encoder in the pool.
pub fn decide(request: Request, client_caps: &Value, pool: Option<&EncoderInfo>) -> Decision {
    let order = match request {
        Request::Off => return Decision::Off,
        Request::Auto => vec![VideoCodec::H264, VideoCodec::Vp8, VideoCodec::Vp9],
        Request::Codec(c) => {
            let mut v = vec![c];
            v.extend(
                [VideoCodec::H264, VideoCodec::Vp8, VideoCodec::Vp9]
                    .into_iter()
                    .filter(|o| *o != c),
            );
            v
        }
    };
    let Some(pool) = pool else {
        return Decision::Unavailable("the EncoderPool is not running".into());
    };
    let codings = hello::client_codings(client_caps);
    // In the client's core, and (when it lists colourspaces) taking the YUV420P the pool makes.
    let decodes = |c: VideoCodec| {
        codings.iter().any(|n| n == c.xpra_name()) && hello::client_takes_yuv420p(client_caps, c)
    };
    let encodes = |c: VideoCodec| {
        pool.encoders
            .iter()
            .any(|s| s.available && s.codec == c.xpra_name())
    };
    match order.iter().copied().find(|c| decodes(*c) && encodes(*c)) {
        Some(codec) => Decision::Reencode(Plan {
            codec,
            max_size: hello::client_video_max_size(client_caps),
            refresh_delay: hello::client_refresh_delay(client_caps),
        }),
        None => {
            let client: Vec<&str> = order
                .iter()
                .filter(|c| decodes(**c))
                .map(|c| c.xpra_name())
                .collect();
            let gateway: Vec<&str> = order
                .iter()
                .filter(|c| encodes(**c))
                .map(|c| c.xpra_name())
                .collect();
            Decision::Unavailable(format!(
                "the client decodes [{}] and the gateway encodes [{}]: no codec in common",
                client.join(", "),
                gateway.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_messages::encode::EncoderStatus;

    fn pool(codecs: &[&str]) -> EncoderInfo {
        EncoderInfo {
            encoders: codecs
                .iter()
                .map(|c| EncoderStatus {
                    name: format!("enc-{c}"),
                    codec: (*c).into(),
                    available: true,
                    reason: None,
                })
                .collect(),
            ..EncoderInfo::default()
        }
    }

    fn client(codings: &[&str]) -> Value {
        Value::dict([("encodings.core", Value::list(codings.iter().copied()))])
    }

    #[test]
    fn option_values() {
        let opts = |v: &str| BTreeMap::from([(OPTION.to_string(), v.to_string())]);
        let none = BTreeMap::new();
        let off = ReencodeMode::No;
        assert_eq!(Request::from_options(&none, off), Ok(Request::Off));
        assert_eq!(
            Request::from_options(&none, ReencodeMode::Vp8),
            Ok(Request::Codec(VideoCodec::Vp8))
        );
        assert_eq!(Request::from_options(&opts("yes"), off), Ok(Request::Auto));
        // The session's own option wins over the default.
        assert_eq!(
            Request::from_options(&opts("no"), ReencodeMode::Auto),
            Ok(Request::Off)
        );
        assert_eq!(
            Request::from_options(&opts("VP9"), off),
            Ok(Request::Codec(VideoCodec::Vp9))
        );
        assert!(Request::from_options(&opts("webp"), off)
            .unwrap_err()
            .contains("reencode=webp"));
    }

    #[test]
    fn codec_follows_client_and_pool() {
        let all = pool(&["h264", "vp8", "vp9"]);
        let d = |r, c: &[&str], p: &EncoderInfo| decide(r, &client(c), Some(p));
        assert!(matches!(
            d(Request::Auto, &["h264", "vp8", "rgb24"], &all),
            Decision::Reencode(Plan {
                codec: VideoCodec::H264,
                ..
            })
        ));
        // The 6.5.5 PyPI client decodes VP8/VP9 only.
        assert!(matches!(
            d(Request::Auto, &["vp9", "vp8", "rgb24"], &all),
            Decision::Reencode(Plan {
                codec: VideoCodec::Vp8,
                ..
            })
        ));
        assert!(matches!(
            d(Request::Codec(VideoCodec::Vp9), &["h264", "vp9"], &all),
            Decision::Reencode(Plan {
                codec: VideoCodec::Vp9,
                ..
            })
        ));
        // No H.264 encoder here: an H.264 and VP8 client gets VP8.
        assert!(matches!(
            d(Request::Auto, &["h264", "vp8"], &pool(&["vp8"])),
            Decision::Reencode(Plan {
                codec: VideoCodec::Vp8,
                ..
            })
        ));
        assert!(matches!(
            d(Request::Auto, &["png", "rgb24"], &all),
            Decision::Unavailable(ref why) if why.contains("no codec in common")
        ));
        assert_eq!(
            decide(Request::Off, &client(&["h264"]), Some(&all)),
            Decision::Off
        );
        assert!(matches!(
            decide(Request::Auto, &client(&["h264"]), None),
            Decision::Unavailable(_)
        ));
    }
}
