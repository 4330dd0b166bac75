//! Prometheus text metrics (exposition format 0.0.4): connections, bytes each way, auth
//! failures, supervision restarts and encoder frames.
//!
//! [`render_metrics`] is a pure function of the registry's counters and a tree snapshot, so the
//! control socket's `metrics` command, the `bind-metrics` listener and the HTTP layer of the
//! shared port all serve the same text; [`collect`] gathers its inputs from the running gateway.

use std::fmt::Write;

use actix::Addr;
use serde_json::Value;
use xgate_messages::encode::EncoderInfo;
use xgate_messages::supervision::{ChildSnapshot, TreeSnapshot};

use crate::registry::{Counters, GetRegistryInfo, SessionRegistry};

/// The `Content-Type` of [`render_metrics`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics are computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsInput {
    /// Totals from gateway events.
    pub counters: Counters,
    /// Connections in the table now.
    pub live_connections: u64,
    /// The supervision tree, for restart counts; `None` when it could not be asked.
    pub tree: Option<TreeSnapshot>,
    /// Frames the EncoderPool encoded (0 when the gateway runs none).
    pub encoder_frames: u64,
}

impl MetricsInput {
    /// Reads the counters from the registry's `info` tree ([`GetRegistryInfo`]).
    pub fn from_registry_info(info: &Value, tree: Option<TreeSnapshot>) -> Self {
        let c = &info["counters"];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        MetricsInput {
            counters: Counters {
                connections_opened: n(&c["connections-opened"]),
                connections_closed: n(&c["connections-closed"]),
                auth_failures: n(&c["auth-failures"]),
                bytes_from_clients: n(&c["bytes-from-clients"]),
                bytes_to_clients: n(&c["bytes-to-clients"]),
            },
            live_connections: n(&info["connection-count"]),
            tree,
            encoder_frames: 0,
        }
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn walk<'a>(node: &'a ChildSnapshot, path: &str, out: &mut Vec<(String, &'a ChildSnapshot)>) {
    for child in &node.children {
        let p = format!("{path}/{}", child.name);
        out.push((p.clone(), child));
        walk(child, &p, out);
    }
}

/// The metrics as Prometheus text.
pub fn render_metrics(input: &MetricsInput) -> String {
    let c = &input.counters;
    let mut out = String::new();
    header(
        &mut out,
        "xgate_up",
        "gauge",
        "Whether the gateway answers (always 1).",
    );
    out.push_str("xgate_up 1\n");
    header(
        &mut out,
        "xgate_connections",
        "gauge",
        "Relayed connections open now.",
    );
    let _ = writeln!(out, "xgate_connections {}", input.live_connections);
    header(
        &mut out,
        "xgate_connections_opened_total",
        "counter",
        "Connections authenticated and relayed since the gateway started.",
    );
    let _ = writeln!(
        out,
        "xgate_connections_opened_total {}",
        c.connections_opened
    );
    header(
        &mut out,
        "xgate_connections_closed_total",
        "counter",
        "Relayed connections that ended since the gateway started.",
    );
    let _ = writeln!(
        out,
        "xgate_connections_closed_total {}",
        c.connections_closed
    );
    header(
        &mut out,
        "xgate_bytes_total",
        "counter",
        "Bytes relayed, by direction, summed over connections that have ended.",
    );
    let _ = writeln!(
        out,
        "xgate_bytes_total{{direction=\"from_client\"}} {}",
        c.bytes_from_clients
    );
    let _ = writeln!(
        out,
        "xgate_bytes_total{{direction=\"to_client\"}} {}",
        c.bytes_to_clients
    );
    header(
        &mut out,
        "xgate_auth_failures_total",
        "counter",
        "Failed authentications.",
    );
    let _ = writeln!(out, "xgate_auth_failures_total {}", c.auth_failures);
    header(
        &mut out,
        "xgate_restarts_total",
        "counter",
        "Restarts of each supervised child (dynamic children excluded), by path in the tree.",
    );
    let mut total = 0u64;
    if let Some(tree) = &input.tree {
        let mut nodes = Vec::new();
        walk(&tree.root, &tree.root.name, &mut nodes);
        for (path, node) in nodes {
            // Dynamic children (relays) come and go; their counts would make unbounded series.
            if node.name.contains('#') {
                continue;
            }
            total += u64::from(node.restart_count);
            let _ = writeln!(
                out,
                "xgate_restarts_total{{child=\"{}\"}} {}",
                label(&path),
                node.restart_count
            );
        }
    }
    header(
        &mut out,
        "xgate_supervision_restarts_total",
        "counter",
        "Restarts of all supervised children together.",
    );
    let _ = writeln!(out, "xgate_supervision_restarts_total {total}");
    header(
        &mut out,
        "xgate_encoder_frames_total",
        "counter",
        "Frames re-encoded by the EncoderPool (sessions with the reencode option).",
    );
    let _ = writeln!(out, "xgate_encoder_frames_total {}", input.encoder_frames);
    out
}

/// Gathers the inputs from the registry and a tree snapshot and renders them. For the HTTP
/// layer: `collect(&registry, tree, encoder).await` answers `GET /metrics`.
pub async fn collect(
    registry: &Addr<SessionRegistry>,
    tree: Option<TreeSnapshot>,
    encoder: Option<&EncoderInfo>,
) -> String {
    let info = registry.send(GetRegistryInfo).await.unwrap_or(Value::Null);
    let mut input = MetricsInput::from_registry_info(&info, tree);
    input.encoder_frames = encoder.map_or(0, |e| e.counters.frames);
    render_metrics(&input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_messages::supervision::{ChildKind, ChildState, RestartType, StrategyKind};

    fn node(name: &str, restarts: u32, children: Vec<ChildSnapshot>) -> ChildSnapshot {
        ChildSnapshot {
            name: name.into(),
            kind: if children.is_empty() {
                ChildKind::Worker
            } else {
                ChildKind::Supervisor
            },
            restart: Some(RestartType::Permanent),
            strategy: (!children.is_empty()).then_some(StrategyKind::OneForOne),
            state: ChildState::Running,
            restart_count: restarts,
            last_exit: None,
            children,
        }
    }

    #[test]
    fn text_has_every_family_with_help_and_type() {
        let tree = TreeSnapshot {
            root: node(
                "root",
                0,
                vec![
                    node("registry", 0, vec![]),
                    node(
                        "listeners",
                        1,
                        vec![node("tcp:\"q\"\\", 2, vec![]), node("relay#3", 9, vec![])],
                    ),
                ],
            ),
        };
        let info = serde_json::json!({
            "connection-count": 2,
            "counters": {"connections-opened": 5, "connections-closed": 3, "auth-failures": 1,
                         "bytes-from-clients": 10, "bytes-to-clients": 20}
        });
        let text = render_metrics(&MetricsInput::from_registry_info(&info, Some(tree)));
        assert!(text.contains("xgate_connections 2\n"));
        assert!(text.contains("xgate_bytes_total{direction=\"to_client\"} 20\n"));
        assert!(
            text.contains("xgate_restarts_total{child=\"root/listeners/tcp:\\\"q\\\"\\\\\"} 2\n")
        );
        assert!(!text.contains("relay#3"));
        assert!(text.contains("xgate_supervision_restarts_total 3\n"));
        assert!(text.contains("xgate_encoder_frames_total 0\n"));
        let mut input = MetricsInput::from_registry_info(&info, None);
        input.encoder_frames = 42;
        assert!(render_metrics(&input).contains("xgate_encoder_frames_total 42\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
