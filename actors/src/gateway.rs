//! The gateway's own identity and its answers to one-shot requests (`version`, `id`,
//! `connect_test`, `info`), as xpra's proxy server answers them (reference §3.7, §4.5).

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use xgate_protocol::Value;

/// The xpra protocol generation the gateway speaks; clients compare versions, and this one is
/// accepted by 3.x to 6.x clients.
pub const XPRA_COMPAT_VERSION: &str = "6.5";

/// Facts about this gateway process, for `id`, `version` and `info`.
#[derive(Debug, Clone)]
pub struct GatewayIdentity {
    /// A random id for this run, also used as the `sid` of the gateway's own pings.
    pub uuid: String,
    /// The host name.
    pub hostname: String,
    /// When the gateway started, seconds since the Unix epoch.
    pub start_time: u64,
    /// The gateway's process id.
    pub pid: u32,
}

impl GatewayIdentity {
    /// A new identity for this process.
    pub fn new() -> Self {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        GatewayIdentity {
            uuid: hex::encode(raw),
            hostname: hostname(),
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            pid: std::process::id(),
        }
    }

    /// The `proxy` caps the gateway adds to the hellos it relays.
    pub fn proxy_caps(&self) -> Value {
        Value::dict([
            ("", Value::from(true)),
            ("session-type", Value::from("proxy")),
            ("version", Value::from(XPRA_COMPAT_VERSION)),
            ("hostname", Value::from(self.hostname.as_str())),
            ("platform", Value::from("linux")),
            (
                "gateway",
                Value::from(format!("xgate {}", env!("CARGO_PKG_VERSION"))),
            ),
        ])
    }

    /// The reply to `version`.
    pub fn version_reply(&self) -> Value {
        Value::dict([
            ("version", Value::from(XPRA_COMPAT_VERSION)),
            ("xgate.version", Value::from(env!("CARGO_PKG_VERSION"))),
        ])
    }

    /// The reply to `id`.
    pub fn id_reply(&self) -> Value {
        Value::dict([
            ("session-type", Value::from("proxy")),
            (
                "session-name",
                Value::from(format!("xgate on {}", self.hostname)),
            ),
            ("uuid", Value::from(self.uuid.as_str())),
            ("platform", Value::from("linux")),
            ("pid", Value::from(u64::from(self.pid))),
            ("machine-id", Value::from(machine_id())),
            ("version", Value::from(XPRA_COMPAT_VERSION)),
            ("display", Value::from("")),
        ])
    }

    /// The `server` part of the info tree.
    pub fn info(&self) -> Value {
        Value::dict([
            ("type", Value::from("xgate")),
            ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            ("xpra-compatible", Value::from(XPRA_COMPAT_VERSION)),
            ("uuid", Value::from(self.uuid.as_str())),
            ("hostname", Value::from(self.hostname.as_str())),
            ("pid", Value::from(u64::from(self.pid))),
            ("start_time", Value::from(self.start_time)),
        ])
    }
}

impl Default for GatewayIdentity {
    fn default() -> Self {
        GatewayIdentity::new()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Converts JSON (the registry's info tree) to an xpra value for an `info` reply.
pub fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(""),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Dict(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_to_value(v)))
                .collect(),
        ),
    }
}
