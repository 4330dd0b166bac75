//! Binding the configured listeners, before privileges are dropped.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use xgate_actors::listener::BoundSocket;
use xgate_config::{BindHost, Config, UnixBindSpec};
use xgate_messages::{ListenerInfo, TransportKind};

/// A bound listener and what its connections will say about it.
pub(crate) struct Bound {
    /// Name, transport and auth override.
    pub(crate) info: ListenerInfo,
    /// The socket.
    pub(crate) socket: BoundSocket,
}

/// Binds every `bind-tcp`, `bind-ssl`, `bind-ws`, `bind-wss`, `bind-ssh` and `bind` (unix)
/// listener, in that order (the first is the one whose address is printed first). Unix sockets
/// are given to `owner`, the service user the gateway drops to (bound as root, they would
/// otherwise be root's and nobody else could connect), with their `socket-permissions=`.
pub(crate) fn bind_all(cfg: &Config, owner: Option<(u32, u32)>) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    let tcp_like = [
        ("bind-tcp", "tcp", TransportKind::Tcp, &cfg.bind_tcp),
        ("bind-ssl", "ssl", TransportKind::Ssl, &cfg.bind_ssl),
        ("bind-ws", "ws", TransportKind::Ws, &cfg.bind_ws),
        ("bind-wss", "wss", TransportKind::Wss, &cfg.bind_wss),
        ("bind-ssh", "ssh", TransportKind::Ssh, &cfg.bind_ssh),
    ];
    for (option, prefix, kind, specs) in tcp_like {
        for spec in specs {
            let addr = match &spec.host {
                BindHost::Any => format!("0.0.0.0:{}", spec.port),
                host => format!("{host}:{}", spec.port),
            };
            let listener =
                std::net::TcpListener::bind(&addr).map_err(|e| format!("{option}={spec}: {e}"))?;
            let name = format!("{prefix}:{spec}");
            out.push(Bound {
                info: ListenerInfo {
                    name,
                    kind,
                    auth: (!spec.auth.is_empty()).then(|| spec.to_string()),
                },
                socket: BoundSocket::Tcp(Arc::new(listener)),
            });
        }
    }
    for spec in &cfg.bind {
        let path = spec.path.clone();
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // A stale socket from an earlier run would make bind fail.
        if std::os::unix::net::UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let mode = socket_mode(spec)?;
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("bind={}: {e}", path.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| format!("bind={}: chown {uid}:{gid}: {e}", path.display()))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("bind={}: chmod {mode:o}: {e}", path.display()))?;
        let name = format!("unix:{}", path.display());
        out.push(Bound {
            info: ListenerInfo {
                name,
                kind: TransportKind::Unix,
                auth: (!spec.auth.is_empty()).then(|| format!("{}", path.display())),
            },
            socket: BoundSocket::Unix(Arc::new(listener), path),
        });
    }
    Ok(out)
}

/// The mode of a unix listener's socket: its `socket-permissions=` option, octal as xpra's
/// `--socket-permissions` (`666` lets every local user connect, for `auth=peercred`), else 660:
/// the service user and its group.
fn socket_mode(spec: &UnixBindSpec) -> Result<u32, String> {
    match spec.option("socket-permissions") {
        None => Ok(0o660),
        Some(text) => u32::from_str_radix(text.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                format!(
                    "bind={}: socket-permissions={text}: expected an octal mode such as 600 or 666",
                    spec.path.display()
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::socket_mode;

    #[test]
    fn socket_permissions_are_octal() {
        let spec = |t: &str| t.parse().expect("bind spec");
        assert_eq!(socket_mode(&spec("/run/x.sock")), Ok(0o660));
        assert_eq!(
            socket_mode(&spec("/run/x.sock,socket-permissions=666")),
            Ok(0o666)
        );
        assert_eq!(
            socket_mode(&spec("/run/x.sock,socket-permissions=0600")),
            Ok(0o600)
        );
        assert!(socket_mode(&spec("/run/x.sock,socket-permissions=999")).is_err());
        assert!(socket_mode(&spec("/run/x.sock,socket-permissions=7777")).is_err());
    }
}
