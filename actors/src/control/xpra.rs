//! xpra's `command` request against the gateway (`xpra control tcp://gateway/ CMD ARGS`): the
//! answer is `hello{"command_response": [code, text]}`, code 0 on success.
//!
//! Commands: `connections` (also `list`), `stop-connection ID` (also `stop ID`, `disconnect ID`)
//! which stops one proxied connection as the control socket's `stop` does, and `help`. Anything
//! else answers code [`INVALID`].

use actix::Addr;
use xgate_messages::{ConnectionId, ListConnections, StopConnectionById};

use crate::registry::SessionRegistry;

/// The code for success.
pub const OK: i64 = 0;
/// The code for an unknown command or bad arguments (xpra's control commands use 6 for
/// "invalid command").
pub const INVALID: i64 = 6;
/// The code when the thing named does not exist.
pub const NOT_FOUND: i64 = 7;
/// The code when the gateway could not answer.
pub const FAILED: i64 = 8;

/// The reason a stopped connection's client sees: the server asked it to detach.
pub const STOP_REASON: &str = "detach request";

const HELP: &str = "gateway control commands: connections, stop-connection ID (stop ID), help";

/// The command and its arguments from a hello's `command_request` (strings or bytes).
pub fn command_args(hello: &xgate_protocol::Value) -> Vec<String> {
    hello
        .lookup("command_request")
        .and_then(xgate_protocol::Value::as_list)
        .map(|l| {
            l.iter()
                .map(|v| match v.as_str() {
                    Some(s) => s.to_owned(),
                    None => v.as_int().map(|i| i.to_string()).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one control command; answers `(code, text)`.
pub async fn run_command(registry: &Addr<SessionRegistry>, args: &[String]) -> (i64, String) {
    let Some((cmd, rest)) = args.split_first() else {
        return (INVALID, format!("no command given; {HELP}"));
    };
    match cmd.as_str() {
        "help" => (OK, HELP.to_owned()),
        "connections" | "list" => match registry.send(ListConnections).await {
            Ok(rows) => {
                let mut text = format!("{} connection(s)", rows.len());
                for r in rows {
                    text.push_str(&format!(
                        "\n{} user={} display={} target={} peer={} transport={}",
                        r.id.0,
                        r.username,
                        r.display,
                        r.target,
                        r.peer,
                        r.transport.xpra_name()
                    ));
                }
                (OK, text)
            }
            Err(_) => (FAILED, "the session registry does not answer".into()),
        },
        "stop-connection" | "stop" | "disconnect" => {
            let Some(id) = rest.first().and_then(|a| a.trim().parse::<u64>().ok()) else {
                return (INVALID, format!("usage: {cmd} ID (a connection number)"));
            };
            let stop = StopConnectionById {
                id: ConnectionId(id),
                reason: STOP_REASON.into(),
            };
            match registry.send(stop).await {
                Ok(true) => {
                    tracing::info!(target: super::LOG_TARGET, id, "connection stopped by an xpra control command");
                    (OK, format!("connection {id} stopped"))
                }
                Ok(false) => (NOT_FOUND, format!("no connection {id}")),
                Err(_) => (FAILED, "the session registry does not answer".into()),
            }
        }
        other => (INVALID, format!("invalid command '{other}'; {HELP}")),
    }
}

/// The reply caps for a `command` request.
pub fn command_reply(code: i64, text: &str) -> xgate_protocol::Value {
    use xgate_protocol::Value;
    Value::dict([(
        "command_response",
        Value::List(vec![Value::from(code), Value::from(text)]),
    )])
}
