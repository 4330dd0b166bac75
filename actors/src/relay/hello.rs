//! What the gateway changes in the hellos it relays (reference §4.1, step 7).
//!
//! Client to server: the client's caps minus what belongs to the client-gateway link (its
//! challenge fields, digests, AES caps and packet-type aliases), plus the gateway's `proxy` caps and
//! the session's whitelisted options. The client's encoder and compressor lists pass unchanged, so
//! that the server sends what the client decodes and the relay need not re-encode anything.
//! Server to client: the server's caps minus its aliases, plus the gateway's `proxy` caps.

use std::collections::BTreeMap;

use xgate_protocol::Value;

/// Key prefixes removed from the client's hello before it goes to the server.
const CLIENT_ONLY_PREFIXES: &[&str] = &[
    "cipher",
    "challenge",
    "digest",
    "salt-digest",
    "aliases",
    "encryption",
    "request",
    "connect_test",
];

fn strip(caps: &Value, prefixes: &[&str]) -> Vec<(Value, Value)> {
    caps.as_dict()
        .unwrap_or(&[])
        .iter()
        .filter(|(k, _)| {
            !k.as_str()
                .is_some_and(|k| prefixes.iter().any(|p| k.starts_with(p)))
        })
        .cloned()
        .collect()
}

fn set(entries: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
        Some(entry) => entry.1 = value,
        None => entries.push((Value::from(key), value)),
    }
}

/// The hello the server receives for a client's hello.
pub fn for_server(
    client_caps: &Value,
    proxy_caps: &Value,
    session_options: &BTreeMap<String, String>,
) -> Value {
    let mut entries = strip(client_caps, CLIENT_ONLY_PREFIXES);
    set(&mut entries, "proxy", proxy_caps.clone());
    // Whitelisted session options (xpra's proxy takes compression_level, lz4, rencodeplus).
    for (key, value) in session_options {
        let key = match key.as_str() {
            "compression" => "compression_level",
            k => k,
        };
        match key {
            "compression_level" => {
                if let Ok(level) = value.trim().parse::<i64>() {
                    set(
                        &mut entries,
                        "compression_level",
                        Value::from(level.clamp(0, 9)),
                    );
                }
            }
            "lz4" | "rencodeplus" => {
                let on = matches!(value.trim(), "1" | "true" | "yes" | "on");
                set(&mut entries, key, Value::from(on));
            }
            _ => {}
        }
    }
    Value::List(vec![Value::from("hello"), Value::Dict(entries)])
}

/// The hello the client receives for the server's hello.
pub fn for_client(server_caps: &Value, proxy_caps: &Value) -> Value {
    let mut entries = strip(server_caps, &["aliases"]);
    set(&mut entries, "proxy", proxy_caps.clone());
    Value::List(vec![Value::from("hello"), Value::Dict(entries)])
}

/// The client's hello with a response to the server's challenge added (the gateway answering for
/// the client with the target's password).
pub fn with_response(hello: &Value, response: Vec<u8>, client_salt: Vec<u8>) -> Value {
    let mut items = hello.as_list().map(<[Value]>::to_vec).unwrap_or_default();
    if let Some(Value::Dict(entries)) = items.get_mut(1) {
        set(entries, "challenge_response", Value::from(response));
        set(entries, "challenge_client_salt", Value::from(client_salt));
    }
    Value::List(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_link_caps_are_removed_and_options_applied() {
        let caps = Value::dict([
            ("version", Value::from("3.1.3")),
            ("challenge_response", Value::from("abc")),
            ("digest", Value::list(["hmac"])),
            ("aliases", Value::dict([("hello", 1i64)])),
            ("compression_level", Value::from(1i64)),
            ("encoders", Value::list(["rencode"])),
        ]);
        let mut opts = BTreeMap::new();
        opts.insert("compression".to_string(), "0".to_string());
        let out = for_server(&caps, &Value::dict([("", true)]), &opts);
        let d = out.as_list().unwrap()[1].clone();
        assert!(d.get("challenge_response").is_none());
        assert!(d.get("digest").is_none());
        assert!(d.get("aliases").is_none());
        assert_eq!(d.get("compression_level").and_then(Value::as_int), Some(0));
        assert!(d.get("proxy").is_some());
        assert_eq!(d.get("encoders"), caps.get("encoders"));
    }
}
