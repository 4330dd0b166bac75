//! The control socket's requests and answers: one JSON object per line each way
//! (docs/control.md has every shape).
//!
//! A request is `{"command": "NAME", ...arguments, "tag": any?}`; a plain-text line
//! `NAME ARG...` is accepted too, for `socat` and shells. Every request gets exactly one answer
//! line `{"ok": true, "command": NAME, "data": ...}` or
//! `{"ok": false, "command": NAME?, "error": {"kind": KIND, "message": TEXT}}`, carrying the
//! request's `tag` back when it had one. After a successful `subscribe`, event lines follow:
//! `{"type": "event", "source": "gateway"|"supervision", "name": NAME, "event": {...}}`.

use serde::Deserialize;
use serde_json::{json, Value};

/// Longest request line accepted; a longer one gets a `bad-request` answer and is skipped.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// A request, after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The gateway's identity, listeners, connection table and counters.
    Info,
    /// The sessions a user may reach (default: the gateway's own user).
    Sessions {
        /// Whose sessions (a login name).
        #[serde(default)]
        user: Option<String>,
    },
    /// The live connections.
    Connections,
    /// Stops one connection; its client gets xpra's `disconnect`.
    Stop {
        /// The connection's number.
        connection: u64,
        /// The reason its client sees (default xpra's `detach request`).
        #[serde(default)]
        reason: Option<String>,
    },
    /// The supervision tree with restart counts and last exit reasons.
    Tree,
    /// Re-reads the configuration: new listeners, auth and targets apply to new connections.
    Reload,
    /// Shows (without `filter`) or replaces the log filter (`info`, `debug`, `info,xgate::auth=trace`).
    LogLevel {
        /// The new filter, in `XGATE_LOG` syntax.
        #[serde(default)]
        filter: Option<String>,
    },
    /// Streams events: names from the plug-in list, or `gateway`, `supervision`, `all` (default).
    Subscribe {
        /// What to receive.
        #[serde(default)]
        events: Option<Vec<String>>,
    },
    /// Prometheus text metrics, as the `text` field of the answer.
    Metrics,
    /// Makes a worker exit abnormally so that its supervisor restarts it (`root/listeners/NAME`).
    Kill {
        /// The child's path in the tree (as `tree` shows it, with or without `root/`).
        child: String,
        /// Why, recorded as its exit reason.
        #[serde(default)]
        reason: Option<String>,
    },
    /// The list of commands.
    Help,
}

impl Request {
    /// The request's command name, as written on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Info => "info",
            Request::Sessions { .. } => "sessions",
            Request::Connections => "connections",
            Request::Stop { .. } => "stop",
            Request::Tree => "tree",
            Request::Reload => "reload",
            Request::LogLevel { .. } => "log-level",
            Request::Subscribe { .. } => "subscribe",
            Request::Metrics => "metrics",
            Request::Kill { .. } => "kill",
            Request::Help => "help",
        }
    }
}

/// Every command with its arguments, for `help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "info",
        "gateway identity, listeners, connection table and counters",
    ),
    (
        "sessions [USER]",
        "the sessions USER (default: the gateway's user) may reach",
    ),
    ("connections", "the live connections"),
    ("stop ID [REASON]", "disconnect one connection"),
    (
        "tree",
        "the supervision tree with restart counts and last exits",
    ),
    (
        "reload",
        "re-read the configuration (new listeners, auth, targets)",
    ),
    ("log-level [FILTER]", "show or set the log filter"),
    (
        "subscribe [EVENTS]",
        "stream events (gateway, supervision, all, or event names)",
    ),
    ("metrics", "Prometheus text metrics"),
    (
        "kill CHILD [REASON]",
        "make a worker exit abnormally (its supervisor restarts it)",
    ),
    ("help", "this list"),
];

/// The kinds of error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The line is not a request (bad JSON, unknown command, missing argument).
    BadRequest,
    /// The thing named does not exist (connection, child, user).
    NotFound,
    /// The command ran and failed (a reload whose configuration is invalid...).
    Failed,
    /// The part of the gateway that answers it is not running.
    Unavailable,
    /// The peer may not use the control socket.
    Forbidden,
}

impl ErrorKind {
    /// The kind as written in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Failed => "failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ControlError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// For people.
    pub message: String,
}

impl ControlError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

/// A parsed line: the request (or why it is not one), and its tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The command name, when one could be read (for the answer).
    pub command: Option<String>,
    /// The request's `tag`, echoed in the answer.
    pub tag: Option<Value>,
    /// The request.
    pub request: Result<Request, ControlError>,
}

/// Parses one request line (JSON object or plain text).
pub fn parse_line(line: &str) -> Parsed {
    let line = line.trim();
    if line.starts_with('{') {
        return parse_json(line);
    }
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else {
        return Parsed {
            command: None,
            tag: None,
            request: Err(ControlError::new(ErrorKind::BadRequest, "empty request")),
        };
    };
    let rest: Vec<&str> = words.collect();
    let joined = (!rest.is_empty()).then(|| rest.join(" "));
    let mut obj = serde_json::Map::new();
    obj.insert("command".into(), Value::String(command.to_owned()));
    match command {
        "sessions" => {
            if let Some(u) = rest.first() {
                obj.insert("user".into(), json!(u));
            }
        }
        "stop" | "kill" => {
            let key = if command == "stop" {
                "connection"
            } else {
                "child"
            };
            if let Some(first) = rest.first() {
                let v = match (command, first.parse::<u64>()) {
                    ("stop", Ok(n)) => json!(n),
                    _ => json!(first),
                };
                obj.insert(key.into(), v);
            }
            if rest.len() > 1 {
                obj.insert("reason".into(), json!(rest[1..].join(" ")));
            }
        }
        "log-level" => {
            if let Some(f) = joined {
                obj.insert("filter".into(), json!(f));
            }
        }
        "subscribe" => {
            if !rest.is_empty() {
                let events: Vec<&str> = rest
                    .iter()
                    .flat_map(|w| w.split(','))
                    .filter(|e| !e.is_empty())
                    .collect();
                obj.insert("events".into(), json!(events));
            }
        }
        _ => {
            if !rest.is_empty() {
                return Parsed {
                    command: Some(command.to_owned()),
                    tag: None,
                    request: Err(ControlError::new(
                        ErrorKind::BadRequest,
                        format!("'{command}' takes no arguments"),
                    )),
                };
            }
        }
    }
    from_object(obj)
}

fn parse_json(line: &str) -> Parsed {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => from_object(obj),
        Ok(_) => Parsed {
            command: None,
            tag: None,
            request: Err(ControlError::new(
                ErrorKind::BadRequest,
                "a request is a JSON object",
            )),
        },
        Err(e) => Parsed {
            command: None,
            tag: None,
            request: Err(ControlError::new(
                ErrorKind::BadRequest,
                format!("invalid JSON: {e}"),
            )),
        },
    }
}

fn from_object(mut obj: serde_json::Map<String, Value>) -> Parsed {
    let tag = obj.remove("tag");
    let command = obj
        .get("command")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if command.is_none() {
        return Parsed {
            command: None,
            tag,
            request: Err(ControlError::new(
                ErrorKind::BadRequest,
                "missing \"command\" (try {\"command\":\"help\"})",
            )),
        };
    }
    let has_arguments = obj.len() > 1;
    let request = serde_json::from_value::<Request>(Value::Object(obj)).map_err(|e| {
        let msg = e.to_string();
        let msg = if msg.starts_with("unknown variant") {
            format!(
                "unknown command '{}' (try help)",
                command.as_deref().unwrap_or("")
            )
        } else {
            msg
        };
        ControlError::new(ErrorKind::BadRequest, msg)
    });
    // serde does not refuse unknown fields next to a variant without arguments.
    let request = match request {
        Ok(
            r @ (Request::Info
            | Request::Connections
            | Request::Tree
            | Request::Reload
            | Request::Metrics
            | Request::Help),
        ) if has_arguments => Err(ControlError::new(
            ErrorKind::BadRequest,
            format!("'{}' takes no arguments", r.name()),
        )),
        other => other,
    };
    Parsed {
        command,
        tag,
        request,
    }
}

/// The answer line to a request.
pub fn answer(
    command: Option<&str>,
    tag: Option<&Value>,
    result: Result<Value, ControlError>,
) -> Value {
    let mut obj = serde_json::Map::new();
    match result {
        Ok(data) => {
            obj.insert("ok".into(), Value::Bool(true));
            if let Some(c) = command {
                obj.insert("command".into(), json!(c));
            }
            obj.insert("data".into(), data);
        }
        Err(e) => {
            obj.insert("ok".into(), Value::Bool(false));
            if let Some(c) = command {
                obj.insert("command".into(), json!(c));
            }
            obj.insert(
                "error".into(),
                json!({"kind": e.kind.as_str(), "message": e.message}),
            );
        }
    }
    if let Some(t) = tag {
        obj.insert("tag".into(), t.clone());
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_forms_agree() {
        let a = parse_line(r#"{"command":"stop","connection":3,"tag":7}"#);
        let b = parse_line("stop 3");
        assert_eq!(a.request, b.request);
        assert_eq!(a.tag, Some(json!(7)));
        assert_eq!(
            parse_line("stop 3 bye now").request,
            Ok(Request::Stop {
                connection: 3,
                reason: Some("bye now".into())
            })
        );
        assert_eq!(
            parse_line("log-level info,xgate=debug").request,
            Ok(Request::LogLevel {
                filter: Some("info,xgate=debug".into())
            })
        );
        assert_eq!(
            parse_line("subscribe gateway,child-exited").request,
            Ok(Request::Subscribe {
                events: Some(vec!["gateway".into(), "child-exited".into()])
            })
        );
        assert_eq!(parse_line("tree").request, Ok(Request::Tree));
        assert_eq!(
            parse_line("kill root/listeners/tcp:x").request,
            Ok(Request::Kill {
                child: "root/listeners/tcp:x".into(),
                reason: None
            })
        );
    }

    #[test]
    fn bad_lines_get_errors_not_panics() {
        for line in [
            "",
            "{",
            "[1,2]",
            "{\"command\":5}",
            "{\"nope\":1}",
            "{\"command\":\"stop\"}",
            "{\"command\":\"stop\",\"connection\":\"x\"}",
            "{\"command\":\"tree\",\"extra\":1}",
            "frobnicate",
            "tree now",
            "stop abc",
        ] {
            let p = parse_line(line);
            let e = p.request.expect_err(line);
            assert_eq!(e.kind, ErrorKind::BadRequest, "{line}");
            let a = answer(p.command.as_deref(), p.tag.as_ref(), Err(e));
            assert_eq!(a["ok"], json!(false));
        }
        let p = parse_line("frobnicate");
        assert!(p.request.unwrap_err().message.contains("unknown command"));
    }
}
