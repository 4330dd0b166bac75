//! `xgate ctl`: the control socket's client. Readable output by default, the answer's JSON
//! lines with `--json` (docs/control.md has the shapes).
//!
//! ```text
//! xgate ctl [--socket PATH | --config FILE] [--json] COMMAND [ARGS...]
//! ```
//! The socket is `--socket`, else `$XGATE_CONTROL_SOCKET`, else `control-socket` from `--config`
//! (or the embedded default). Exit status: 0 for an `ok` answer, 1 for an error answer, 2 when
//! the gateway cannot be reached.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

/// `xgate ctl`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The control socket (default: `$XGATE_CONTROL_SOCKET`, else the configuration's
    /// `control-socket`).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The configuration file naming the control socket.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the answer's JSON lines as they come.
    #[arg(long)]
    json: bool,
    /// The command: info, sessions [USER], connections, stop ID [REASON], tree, reload,
    /// log-level [FILTER], subscribe [EVENTS], metrics, kill CHILD [REASON], help.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn socket_path(args: &CtlArgs) -> Result<PathBuf, String> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    if let Some(s) = std::env::var_os("XGATE_CONTROL_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    let options: Vec<String> = args
        .config
        .iter()
        .map(|c| format!("--config={}", c.display()))
        .collect();
    let cfg = xgate_config::load_from_args(&options).map_err(|e| e.to_string())?;
    cfg.control_socket
        .ok_or_else(|| "no control-socket in the configuration; use --socket PATH".to_string())
}

/// Runs `xgate ctl`.
pub(crate) fn ctl(args: &CtlArgs) -> ExitCode {
    let path = match socket_path(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xgate ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "xgate ctl: cannot reach the gateway at {}: {e}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let line = args.command.join(" ");
    if let Err(e) = writeln!(stream, "{line}") {
        eprintln!("xgate ctl: {e}");
        return ExitCode::from(2);
    }
    let subscribing = args.command.first().map(String::as_str) == Some("subscribe");
    let mut reader = BufReader::new(stream);
    let mut first = true;
    let mut status = ExitCode::SUCCESS;
    loop {
        let mut text = String::new();
        match reader.read_line(&mut text) {
            Ok(0) => {
                if first {
                    eprintln!("xgate ctl: the gateway closed the connection");
                    return ExitCode::from(2);
                }
                return status;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("xgate ctl: {e}");
                return ExitCode::from(2);
            }
        }
        let value: Value = match serde_json::from_str(text.trim()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("xgate ctl: unreadable answer ({e}): {text}");
                return ExitCode::from(2);
            }
        };
        if args.json {
            println!("{value}");
        } else if first {
            status = print_answer(&value);
        } else {
            print_event(&value);
        }
        let _ = std::io::stdout().flush();
        if first && (!subscribing || value["ok"] != Value::Bool(true)) {
            return if value["ok"] == Value::Bool(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        first = false;
    }
}

fn print_answer(answer: &Value) -> ExitCode {
    if answer["ok"] != Value::Bool(true) {
        eprintln!(
            "xgate ctl: {}: {}",
            answer["error"]["kind"].as_str().unwrap_or("error"),
            answer["error"]["message"].as_str().unwrap_or("")
        );
        return ExitCode::from(1);
    }
    let data = &answer["data"];
    match answer["command"].as_str().unwrap_or("") {
        "connections" => print_connections(data),
        "tree" => print_node(&data["root"], 0),
        "metrics" => print!("{}", data["text"].as_str().unwrap_or("")),
        "help" => {
            if let Value::Object(m) = data {
                for (c, h) in m {
                    println!("{c:<22} {}", h.as_str().unwrap_or(""));
                }
            }
        }
        "stop" => println!("connection {} stopped", data["stopped"]),
        "kill" => println!("{} killed", data["killed"].as_str().unwrap_or("")),
        "log-level" => println!("{}", data["filter"].as_str().unwrap_or("")),
        "subscribe" => eprintln!("subscribed to {}", data["events"]),
        _ => print_flat("", data),
    }
    ExitCode::SUCCESS
}

fn print_connections(data: &Value) {
    let rows = data.as_array().cloned().unwrap_or_default();
    println!(
        "{:>5}  {:<12} {:<8} {:<22} {:<10} {:<8} TARGET",
        "ID", "USER", "DISPLAY", "PEER", "TRANSPORT", "CLIENT"
    );
    for r in rows {
        println!(
            "{:>5}  {:<12} {:<8} {:<22} {:<10} {:<8} {}",
            r["id"],
            r["username"].as_str().unwrap_or(""),
            r["display"].as_str().unwrap_or(""),
            r["peer"].as_str().unwrap_or(""),
            r["transport"].as_str().unwrap_or(""),
            r["client-version"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
        );
    }
}

fn print_node(node: &Value, depth: usize) {
    let mut line = format!(
        "{}{} ({}",
        "  ".repeat(depth),
        node["name"].as_str().unwrap_or("?"),
        node["kind"].as_str().unwrap_or("?")
    );
    if let Some(s) = node["strategy"].as_str() {
        line.push_str(&format!(", {s}"));
    }
    if let Some(r) = node["restart"].as_str() {
        line.push_str(&format!(", {r}"));
    }
    line.push_str(&format!(
        ") {} restarts={}",
        node["state"].as_str().unwrap_or("?"),
        node["restart_count"]
    ));
    if let Some(e) = node["last_exit"].as_str() {
        line.push_str(&format!(" last-exit={e:?}"));
    }
    println!("{line}");
    for c in node["children"].as_array().into_iter().flatten() {
        print_node(c, depth + 1);
    }
}

/// Prints nested objects as sorted dotted `key=value` lines, as `xpra info` does.
fn print_flat(prefix: &str, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                print_flat(&p, &m[k]);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object()) => {
            for (i, x) in a.iter().enumerate() {
                print_flat(&format!("{prefix}.{i}"), x);
            }
        }
        Value::String(s) => println!("{prefix}={s}"),
        other => println!("{prefix}={other}"),
    }
}

fn print_event(v: &Value) {
    println!(
        "{:<12} {:<26} {}",
        v["source"]
            .as_str()
            .unwrap_or(v["type"].as_str().unwrap_or("")),
        v["name"].as_str().unwrap_or(""),
        v["event"]
    );
}
