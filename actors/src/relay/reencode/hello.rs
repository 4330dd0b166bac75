//! The hello rewrites of a re-encoded session (reference `xpra-video.md` §1.4, §1.5).
//!
//! Toward the server: the client's picture encodings are replaced by raw rgb only (`rgb24`,
//! `rgb32`), with lz4 as the only pixel compression, no delta frames, no mmap, no scrolling, and
//! `send-window-size` and `flush` on, so that every draw the server sends can be composited into
//! the gateway's framebuffer. A 3.1.3 client's hello is flat (`encodings.core`), a 6.5.5 client's is
//! nested (`encoding: {core: ...}`); each is rewritten in its own form (6.5.5 servers also resolve
//! flat keys, 3.1.3 servers only read flat ones).
//!
//! Toward the client: the server's hello (3.1.3) advertises `rgb` only; the gateway adds the codec
//! it encodes, and gives back the encoding the client asked for, so that the client's menus and
//! its `encoding` setting stay its own.

use xgate_protocol::Value;

/// Pixel formats the gateway composites (4 bytes per pixel; the server converts the others).
pub const RGB_FORMATS: [&str; 4] = ["BGRX", "BGRA", "RGBX", "RGBA"];

/// Sets `key` in a dict's entries, replacing an existing entry.
fn set(entries: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
        Some(entry) => entry.1 = value,
        None => entries.push((Value::from(key), value)),
    }
}

/// Removes every entry whose key starts with one of `prefixes`.
fn remove_prefixed(entries: &mut Vec<(Value, Value)>, prefixes: &[&str]) {
    entries.retain(|(k, _)| {
        !k.as_str()
            .is_some_and(|k| prefixes.iter().any(|p| k.starts_with(p)))
    });
}

fn strings(items: &[&str]) -> Value {
    Value::list(items.iter().copied())
}

/// The flat keys that make a server send raw rgb only (3.1.3's form; 6.5.5 resolves them too).
fn flat_rgb_only(entries: &mut Vec<(Value, Value)>) {
    set(entries, "encodings", strings(&["rgb"]));
    set(entries, "encodings.core", strings(&["rgb24", "rgb32"]));
    set(entries, "encoding", Value::from("rgb"));
    set(
        entries,
        "encoding.supports_delta",
        Value::list(Vec::<Value>::new()),
    );
    set(entries, "encoding.delta_buckets", Value::from(0i64));
    set(entries, "encoding.rgb_zlib", Value::from(false));
    set(entries, "encoding.rgb_lzo", Value::from(false));
    set(entries, "encoding.rgb_brotli", Value::from(false));
    set(entries, "encoding.rgb_lz4", Value::from(true));
    set(entries, "encoding.rgb_formats", strings(&RGB_FORMATS));
    set(entries, "encoding.flush", Value::from(true));
    set(entries, "encoding.send-window-size", Value::from(true));
    set(entries, "encoding.scrolling", Value::from(false));
    set(entries, "encoding.full_csc_modes", Value::Dict(Vec::new()));
    remove_prefixed(entries, &["encoding.proxy.video", "encoding.video_"]);
}

/// The nested `encoding` dict of a 6.5.5 client, rewritten to raw rgb only.
fn nested_rgb_only(dict: &[(Value, Value)]) -> Value {
    let mut inner: Vec<(Value, Value)> = dict
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), Some("" | "setting")))
        .cloned()
        .collect();
    set(&mut inner, "options", strings(&["rgb"]));
    set(&mut inner, "core", strings(&["rgb24", "rgb32"]));
    set(&mut inner, "rgb_formats", strings(&RGB_FORMATS));
    set(&mut inner, "rgb_lz4", Value::from(true));
    set(&mut inner, "full_csc_modes", Value::Dict(Vec::new()));
    inner.retain(|(k, _)| !matches!(k.as_str(), Some("h264" | "video_scaling")));
    Value::Dict(inner)
}

/// Rewrites the hello the server receives (`["hello", caps]`) so that it sends raw rgb only.
pub fn rgb_only_for_server(hello: &Value) -> Value {
    let mut items = hello.as_list().map(<[Value]>::to_vec).unwrap_or_default();
    if let Some(Value::Dict(entries)) = items.get_mut(1) {
        // Shared memory only works on one host, and bypasses the packets the gateway rewrites.
        remove_prefixed(entries, &["mmap"]);
        let nested = entries
            .iter()
            .find(|(k, _)| k.as_str() == Some("encoding"))
            .and_then(|(_, v)| v.as_dict().map(<[(Value, Value)]>::to_vec));
        match nested {
            Some(dict) => {
                // 6.5.5: the nested dict, the legacy `encodings` copy, and the flat lz4 key that
                // wins over the network `lz4` cap.
                set(entries, "encoding", nested_rgb_only(&dict));
                set(
                    entries,
                    "encodings",
                    Value::dict([
                        ("", strings(&["rgb"])),
                        ("core", strings(&["rgb24", "rgb32"])),
                        ("all", strings(&["rgb24", "rgb32"])),
                    ]),
                );
                set(entries, "encoding.rgb_lz4", Value::from(true));
            }
            None => flat_rgb_only(entries),
        }
    }
    Value::List(items)
}

/// The picture encodings a client decodes: its `encodings.core` (flat or nested), else its
/// `encodings` list.
pub fn client_codings(client_caps: &Value) -> Vec<String> {
    let list = client_caps
        .lookup("encodings.core")
        .or_else(|| client_caps.lookup("encoding.core"))
        .or_else(|| client_caps.lookup("encodings"))
        .and_then(Value::as_list)
        .unwrap_or(&[]);
    list.iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Whether the client's `full_csc_modes` (flat or nested) accept `YUV420P` for `codec`; a client
/// that sends no such list is taken at its word (`encodings.core`).
pub fn client_takes_yuv420p(
    client_caps: &Value,
    codec: xgate_messages::encode::VideoCodec,
) -> bool {
    let Some(modes) = client_caps.lookup_raw("encoding.full_csc_modes") else {
        return true;
    };
    modes
        .get(codec.xpra_name())
        .and_then(Value::as_list)
        .is_some_and(|l| l.iter().any(|m| m.str_eq("YUV420P")))
}

/// The client's largest video size (`encoding.video_max_size`), 4096x4096 when it says nothing.
pub fn client_video_max_size(client_caps: &Value) -> (u32, u32) {
    let pair = client_caps
        .lookup("encoding.video_max_size")
        .and_then(Value::as_list)
        .unwrap_or(&[]);
    match pair {
        [w, h] => (
            w.as_int().map_or(4096, |w| w.clamp(16, 16384) as u32),
            h.as_int().map_or(4096, |h| h.clamp(16, 16384) as u32),
        ),
        _ => (4096, 4096),
    }
}

/// The client's `auto_refresh_delay` (ms): how long after lossy frames it wants a lossless
/// refresh. 150 ms (xpra's default) when it says nothing; 0 or less turns the refresh off.
pub fn client_refresh_delay(client_caps: &Value) -> Option<std::time::Duration> {
    let ms = client_caps
        .lookup("auto_refresh_delay")
        .and_then(Value::as_int)
        .unwrap_or(150);
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}

/// Adjusts the hello the client receives (`["hello", caps]`): the codec the gateway encodes is
/// added to the server's encoding lists, and the `encoding` setting is the client's own again
/// (the server answers `rgb`, which the client would otherwise adopt).
pub fn for_client(hello: &Value, client_caps: &Value, codec: &str) -> Value {
    let mut items = hello.as_list().map(<[Value]>::to_vec).unwrap_or_default();
    if let Some(Value::Dict(entries)) = items.get_mut(1) {
        for key in ["encodings", "encodings.core"] {
            let Some((_, Value::List(list))) =
                entries.iter_mut().find(|(k, _)| k.as_str() == Some(key))
            else {
                continue;
            };
            if !list.iter().any(|v| v.str_eq(codec)) {
                list.insert(0, Value::from(codec));
            }
        }
        if entries
            .iter()
            .any(|(k, v)| k.as_str() == Some("encoding") && v.as_str().is_some())
        {
            let wanted = client_caps
                .lookup("encoding")
                .and_then(Value::as_str)
                .unwrap_or("auto");
            set(entries, "encoding", Value::from(wanted));
        }
    }
    Value::List(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(hello: &Value) -> Value {
        hello.as_list().unwrap()[1].clone()
    }

    #[test]
    fn flat_client_hello_becomes_rgb_only() {
        let hello = Value::list([
            Value::from("hello"),
            Value::dict([
                ("version", Value::from("3.1.3")),
                (
                    "encodings.core",
                    strings(&["h264", "vp8", "png", "rgb24", "rgb32"]),
                ),
                ("encoding.rgb_zlib", Value::from(true)),
                ("encoding.supports_delta", strings(&["png", "rgb24"])),
                ("mmap_file", Value::from("/dev/shm/x")),
                ("mmap", Value::from(true)),
            ]),
        ]);
        let c = caps(&rgb_only_for_server(&hello));
        assert_eq!(c.get("encodings.core"), Some(&strings(&["rgb24", "rgb32"])));
        assert_eq!(
            c.get("encoding.rgb_zlib").and_then(Value::as_bool),
            Some(false)
        );
        assert_eq!(
            c.get("encoding.rgb_lz4").and_then(Value::as_bool),
            Some(true)
        );
        assert_eq!(
            c.get("encoding.scrolling").and_then(Value::as_bool),
            Some(false)
        );
        assert_eq!(
            c.get("encoding.supports_delta")
                .and_then(Value::as_list)
                .map(<[Value]>::len),
            Some(0)
        );
        assert!(c.get("mmap").is_none() && c.get("mmap_file").is_none());
        assert_eq!(c.get("version").and_then(Value::as_str), Some("3.1.3"));
    }

    #[test]
    fn nested_client_hello_becomes_rgb_only() {
        let hello = Value::list([
            Value::from("hello"),
            Value::dict([
                (
                    "encoding",
                    Value::dict([
                        ("core", strings(&["vp9", "vp8", "webp", "rgb24", "rgb32"])),
                        ("setting", strings(&["vp8"])),
                        ("rgb_lz4", Value::from(true)),
                    ]),
                ),
                ("mmap", Value::dict([("file", "/dev/shm/x")])),
            ]),
        ]);
        let c = caps(&rgb_only_for_server(&hello));
        assert_eq!(
            c.lookup("encoding.core"),
            Some(&strings(&["rgb24", "rgb32"]))
        );
        assert!(c.lookup("encoding.setting").is_none());
        assert_eq!(
            c.lookup("encodings.core"),
            Some(&strings(&["rgb24", "rgb32"]))
        );
        assert_eq!(
            c.get("encoding.rgb_lz4").and_then(Value::as_bool),
            Some(true)
        );
        assert!(c.get("mmap").is_none());
    }

    #[test]
    fn codings_are_read_in_both_forms() {
        let flat = Value::dict([("encodings.core", strings(&["h264", "rgb24"]))]);
        assert_eq!(client_codings(&flat), vec!["h264", "rgb24"]);
        let nested = Value::dict([("encoding", Value::dict([("core", strings(&["vp8"]))]))]);
        assert_eq!(client_codings(&nested), vec!["vp8"]);
        let max = Value::dict([(
            "encoding.video_max_size",
            Value::list([Value::from(2048i64), Value::from(1024i64)]),
        )]);
        assert_eq!(client_video_max_size(&max), (2048, 1024));
        assert_eq!(client_video_max_size(&flat), (4096, 4096));
        let refresh = |ms: i64| Value::dict([("auto_refresh_delay", Value::from(ms))]);
        assert_eq!(
            client_refresh_delay(&refresh(250)),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(client_refresh_delay(&refresh(0)), None);
        assert_eq!(
            client_refresh_delay(&flat),
            Some(std::time::Duration::from_millis(150))
        );
    }

    #[test]
    fn colourspaces_are_checked_when_listed() {
        use xgate_messages::encode::VideoCodec;
        let nested = Value::dict([(
            "encoding",
            Value::dict([(
                "full_csc_modes",
                Value::dict([
                    ("vp8", strings(&["YUV420P"])),
                    ("h264", strings(&["YUV444P"])),
                ]),
            )]),
        )]);
        assert!(client_takes_yuv420p(&nested, VideoCodec::Vp8));
        assert!(!client_takes_yuv420p(&nested, VideoCodec::H264));
        assert!(!client_takes_yuv420p(&nested, VideoCodec::Vp9));
        let flat = Value::dict([(
            "encoding.full_csc_modes",
            Value::dict([("h264", strings(&["BGRX", "YUV420P"]))]),
        )]);
        assert!(client_takes_yuv420p(&flat, VideoCodec::H264));
        assert!(client_takes_yuv420p(
            &Value::Dict(Vec::new()),
            VideoCodec::H264
        ));
    }

    #[test]
    fn client_gets_its_encoding_back_and_the_codec_listed() {
        let server = Value::list([
            Value::from("hello"),
            Value::dict([
                ("encoding", Value::from("rgb")),
                ("encodings", strings(&["rgb"])),
            ]),
        ]);
        let client = Value::dict([("encoding", Value::from("auto"))]);
        let c = caps(&for_client(&server, &client, "h264"));
        assert_eq!(c.get("encoding").and_then(Value::as_str), Some("auto"));
        assert_eq!(c.get("encodings"), Some(&strings(&["h264", "rgb"])));
    }
}
