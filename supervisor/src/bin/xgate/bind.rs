//! Binding the configured listeners, before privileges are dropped.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use xgate_actors::listener::BoundSocket;
use xgate_config::{BindHost, Config};
use xgate_messages::{ListenerInfo, TransportKind};

/// A bound listener and what its connections will say about it.
pub(crate) struct Bound {
    /// Name, transport and auth override.
    pub(crate) info: ListenerInfo,
    /// The socket.
    pub(crate) socket: BoundSocket,
}

/// Binds every `bind-tcp`, `bind-ssl`, `bind-ws`, `bind-wss`, `bind-ssh` and `bind` (unix) listener, in that
/// order (the first is the one whose address is printed first).
pub(crate) fn bind_all(cfg: &Config) -> Result<Vec<Bound>, String> {
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
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("bind={}: {e}", path.display()))?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660));
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
