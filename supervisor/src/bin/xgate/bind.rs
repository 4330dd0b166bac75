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

/// Binds every `bind-tcp` and `bind` (unix) listener.
pub(crate) fn bind_all(cfg: &Config) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for spec in &cfg.bind_tcp {
        let addr = match &spec.host {
            BindHost::Any => format!("0.0.0.0:{}", spec.port),
            host => format!("{host}:{}", spec.port),
        };
        let listener =
            std::net::TcpListener::bind(&addr).map_err(|e| format!("bind-tcp={spec}: {e}"))?;
        let name = format!("tcp:{spec}");
        out.push(Bound {
            info: ListenerInfo {
                name,
                kind: TransportKind::Tcp,
                auth: (!spec.auth.is_empty()).then(|| spec.to_string()),
            },
            socket: BoundSocket::Tcp(Arc::new(listener)),
        });
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
