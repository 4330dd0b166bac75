//! From what an auth backend said ([`SessionSource`]) to the sessions a user may reach
//! ([`SessionTarget`]s), given the probed local sockets and the static targets.
//!
//! Pure functions: the socket scan happens before (see [`super::discovery`]); display strings are
//! parsed by the config crate's [`xgate_config::parse_display`], the same syntax as everywhere
//! else in xgate.

use std::collections::{BTreeMap, HashSet};

use xgate_config::{Display, TargetSpec};
use xgate_messages::{SessionSource, SessionTarget, TargetAddress};

use super::discovery::{DiscoveredSocket, SocketState};

/// `source` of targets found by the socket-dir scan.
pub const SOURCE_SOCKET_DIR: &str = "socket-dir";
/// `source` of static targets from the configuration.
pub const SOURCE_CONFIG: &str = "config";
/// `source` of targets listed by a user database row (multifile, sqlite...).
pub const SOURCE_LISTED: &str = "listed";

/// A static target from the configuration (`target = "100=tcp://127.0.0.1:14600/;k=v"`): display
/// `:N`, the URI's address, the options after the URI (a repeated key keeps its last value).
pub fn static_target(spec: &TargetSpec) -> SessionTarget {
    SessionTarget {
        display: spec.display_name(),
        address: spec.uri.address.clone(),
        options: spec.options.iter().cloned().collect(),
        env: BTreeMap::new(),
        source: SOURCE_CONFIG.to_owned(),
    }
}

/// The LIVE sockets as sessions, one per display (the first socket found for a display wins).
pub fn local_sessions(sockets: &[DiscoveredSocket]) -> Vec<SessionTarget> {
    let mut seen = HashSet::new();
    sockets
        .iter()
        .filter(|s| s.state == SocketState::Live)
        .filter(|s| seen.insert(s.display.clone()))
        .map(|s| SessionTarget {
            display: s.display.clone(),
            address: TargetAddress::Unix {
                path: s.path.clone(),
            },
            options: BTreeMap::new(),
            env: BTreeMap::new(),
            source: SOURCE_SOCKET_DIR.to_owned(),
        })
        .collect()
}

/// Whether resolving `source` needs the local socket scan: always for
/// [`SessionSource::SocketScan`], and for a list that names a local display (`:N` or `N`).
pub fn needs_scan(source: &SessionSource) -> bool {
    match source {
        SessionSource::SocketScan => true,
        SessionSource::Listed { displays, .. } => displays
            .iter()
            .any(|d| matches!(xgate_config::parse_display(d.trim()), Ok(Display::Local(_)))),
    }
}

/// Resolves a user's session source.
///
/// - [`SessionSource::SocketScan`]: the static targets, then the LIVE local sessions (a static
///   target shadows a local session with the same display name).
/// - [`SessionSource::Listed`]: each display string in order, with the row's options and env:
///   `:N`/`N` is the LIVE local socket of display N (left out when there is none: the session is
///   not there), a socket path or a `tcp://`/`ssl://`/`ws://`/`wss://`/`ssh://` URI is that
///   address, named by the string as written. Unparsable strings are logged and left out.
///   Static targets are not added: the row is the user's whole list.
///
/// Duplicate display names keep their first entry.
pub fn resolve(
    source: &SessionSource,
    sockets: &[DiscoveredSocket],
    static_targets: &[SessionTarget],
) -> Vec<SessionTarget> {
    fn push(t: SessionTarget, out: &mut Vec<SessionTarget>) {
        if out.iter().any(|o| o.display == t.display) {
            tracing::debug!(target: "xgate::registry", display = %t.display, source = %t.source, "duplicate display left out");
        } else {
            out.push(t);
        }
    }
    let mut out: Vec<SessionTarget> = Vec::new();
    match source {
        SessionSource::SocketScan => {
            for t in static_targets
                .iter()
                .cloned()
                .chain(local_sessions(sockets))
            {
                push(t, &mut out);
            }
        }
        SessionSource::Listed {
            displays,
            options,
            env,
        } => {
            for raw in displays {
                let written = raw.trim();
                if written.is_empty() {
                    continue;
                }
                let (display, address) = match xgate_config::parse_display(written) {
                    Ok(Display::Local(n)) => {
                        let name = format!(":{n}");
                        let found = sockets
                            .iter()
                            .find(|s| s.state == SocketState::Live && s.display == name);
                        match found {
                            Some(s) => (
                                name,
                                TargetAddress::Unix {
                                    path: s.path.clone(),
                                },
                            ),
                            None => {
                                tracing::debug!(target: "xgate::registry", display = %name, "listed local display has no LIVE socket, left out");
                                continue;
                            }
                        }
                    }
                    Ok(Display::Remote(uri)) => (written.to_owned(), uri.address),
                    Err(e) => {
                        tracing::warn!(target: "xgate::registry", display = %written, error = %e, "invalid display string in the user's session list, left out");
                        continue;
                    }
                };
                push(
                    SessionTarget {
                        display,
                        address,
                        options: options.clone(),
                        env: env.clone(),
                        source: SOURCE_LISTED.to_owned(),
                    },
                    &mut out,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn sock(display: &str, path: &str, state: SocketState) -> DiscoveredSocket {
        DiscoveredSocket {
            display: display.to_owned(),
            path: PathBuf::from(path),
            state,
        }
    }

    #[test]
    fn local_sessions_keep_live_ones_once() {
        let sockets = [
            sock(":100", "/d/100/socket", SocketState::Live),
            sock(":100", "/d/h-100", SocketState::Live),
            sock(":101", "/d/h-101", SocketState::Unknown),
            sock(":102", "/d/h-102", SocketState::Dead),
        ];
        let out = local_sessions(&sockets);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].display, ":100");
        assert_eq!(
            out[0].address,
            TargetAddress::Unix {
                path: PathBuf::from("/d/100/socket")
            }
        );
    }

    #[test]
    fn static_target_from_config_spec() -> Result<(), xgate_config::ValueError> {
        let spec: TargetSpec = "100=tcp://127.0.0.1:14600/;compression_level=0".parse()?;
        let t = static_target(&spec);
        assert_eq!(t.display, ":100");
        assert_eq!(
            t.address,
            TargetAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 14600
            }
        );
        assert_eq!(
            t.options.get("compression_level").map(String::as_str),
            Some("0")
        );
        assert_eq!(t.source, SOURCE_CONFIG);
        Ok(())
    }

    #[test]
    fn static_targets_shadow_local_ones() {
        let sockets = [sock(":100", "/d/h-100", SocketState::Live)];
        let st = SessionTarget {
            display: ":100".into(),
            address: TargetAddress::Tcp {
                host: "h".into(),
                port: 1,
            },
            options: BTreeMap::new(),
            env: BTreeMap::new(),
            source: SOURCE_CONFIG.into(),
        };
        let out = resolve(
            &SessionSource::SocketScan,
            &sockets,
            std::slice::from_ref(&st),
        );
        assert_eq!(out, vec![st]);
    }

    #[test]
    fn needs_scan_only_for_local_displays() {
        let listed = |d: &[&str]| SessionSource::Listed {
            displays: d.iter().map(|s| s.to_string()).collect(),
            options: BTreeMap::new(),
            env: BTreeMap::new(),
        };
        assert!(needs_scan(&SessionSource::SocketScan));
        assert!(needs_scan(&listed(&["tcp://h:1/", ":100"])));
        assert!(needs_scan(&listed(&["100"])));
        assert!(!needs_scan(&listed(&["tcp://h:1/", "/run/x.sock"])));
        assert!(!needs_scan(&listed(&[])));
    }

    #[test]
    fn ssh_and_ws_uris() {
        let source = SessionSource::Listed {
            displays: vec![
                "ssh://bob@host:2222/7".into(),
                "wss://host/xpra".into(),
                "nonsense".into(),
            ],
            options: BTreeMap::new(),
            env: BTreeMap::new(),
        };
        let out = resolve(&source, &[], &[]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].display, "ssh://bob@host:2222/7");
        assert_eq!(
            out[0].address,
            TargetAddress::Ssh {
                user: Some("bob".into()),
                host: "host".into(),
                port: 2222,
                display: Some(":7".into())
            }
        );
        assert_eq!(
            out[1].address,
            TargetAddress::Wss {
                host: "host".into(),
                port: 443,
                path: "/xpra".into()
            }
        );
    }
}
