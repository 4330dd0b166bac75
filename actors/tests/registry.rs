//! SessionRegistry against real unix sockets in temporary directories: discovery and probing,
//! resolution of session sources, display choice, and the actor's lookups, connection table,
//! counters and info tree.

use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, ActorContext, Context, Handler};
use xgate_actors::registry::discovery::{self, DiscoveredSocket, SocketState};
use xgate_actors::registry::resolve;
use xgate_actors::registry::{
    choose, requested_display, ChooseError, GetRegistryInfo, RegistryConfig, SessionRegistry,
    UpdateRegistryConfig, SESSION_NOT_FOUND,
};
use xgate_messages::{
    ConnectionId, ConnectionSummary, GatewayEvent, ListConnections, LookupSessions, Peer,
    RegisterConnection, SessionSource, SessionTarget, StopConnection, StopConnectionById,
    TargetAddress, TransportKind, UnregisterConnection, UserIdentity,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HOST: &str = "testhost";
const TIMEOUT: Duration = Duration::from_secs(2);

fn uid() -> u32 {
    xgate_actors::users::process_uid().expect("/proc/self is readable")
}

/// Binds a real listener at `path` (creating parent dirs) and keeps it.
fn listen(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    UnixListener::bind(path)
}

/// Leaves a socket file behind with nobody listening (the listener is dropped, the file stays).
fn stale_socket(path: &Path) -> std::io::Result<()> {
    drop(listen(path)?);
    assert!(path.exists());
    Ok(())
}

fn dirs(d: &Path) -> Vec<PathBuf> {
    vec![d.to_path_buf()]
}

fn by_display(found: &[DiscoveredSocket], display: &str) -> Vec<DiscoveredSocket> {
    found
        .iter()
        .filter(|s| s.display == display)
        .cloned()
        .collect()
}

fn listed(displays: &[&str], options: &[(&str, &str)]) -> SessionSource {
    SessionSource::Listed {
        displays: displays.iter().map(|s| s.to_string()).collect(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env: [("XPRA_X".to_string(), "1".to_string())].into(),
    }
}

fn target(display: &str) -> SessionTarget {
    SessionTarget {
        display: display.to_owned(),
        address: TargetAddress::Tcp {
            host: "127.0.0.1".into(),
            port: 10100,
        },
        options: BTreeMap::new(),
        env: BTreeMap::new(),
        source: "test".into(),
    }
}

// ------------------------------------------------------------------------------------------
// discovery

#[tokio::test]
async fn discovery_finds_live_hostname_and_session_dir_sockets() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let _a = listen(&tmp.path().join(format!("{HOST}-100")))?;
    let _b = listen(&tmp.path().join("101").join("socket"))?;
    let found = discovery::discover(dirs(tmp.path()), uid(), HOST.into(), TIMEOUT).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        by_display(&found, ":100"),
        vec![DiscoveredSocket {
            display: ":100".into(),
            path: tmp.path().join(format!("{HOST}-100")),
            state: SocketState::Live
        }]
    );
    assert_eq!(
        by_display(&found, ":101"),
        vec![DiscoveredSocket {
            display: ":101".into(),
            path: tmp.path().join("101/socket"),
            state: SocketState::Live
        }]
    );
    Ok(())
}

#[tokio::test]
async fn socket_left_by_a_dead_server_is_unknown_as_in_xpra() -> TestResult {
    // xpra's get_server_state: ECONNREFUSED → UNKNOWN (maybe still starting); `xpra list` then
    // re-probes. Only a missing path (ENOENT) is DEAD.
    let tmp = tempfile::tempdir()?;
    let stale = tmp.path().join(format!("{HOST}-102"));
    stale_socket(&stale)?;
    assert_eq!(
        discovery::probe(&stale, TIMEOUT).await,
        SocketState::Unknown
    );
    let found = discovery::discover(dirs(tmp.path()), uid(), HOST.into(), TIMEOUT).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].state, SocketState::Unknown);
    assert!(stale.exists(), "discovery never deletes");

    let missing = tmp.path().join(format!("{HOST}-103"));
    assert_eq!(discovery::probe(&missing, TIMEOUT).await, SocketState::Dead);
    Ok(())
}

#[tokio::test]
async fn discovery_ignores_non_sockets_other_names_and_proxy_sockets() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    std::fs::write(d.join(format!("{HOST}-5")), b"not a socket")?;
    std::fs::create_dir_all(d.join("6"))?;
    std::fs::write(d.join("6/socket"), b"not a socket")?;
    std::fs::create_dir_all(d.join("7"))?; // a session dir without a socket
    let _other_host = listen(&d.join("otherhost-8"))?;
    let _other_name = listen(&d.join("foo"))?;
    let _not_number = listen(&d.join(format!("{HOST}-abc")))?;
    let _proxy = listen(&d.join(format!("{HOST}-proxy-1234")))?;
    let _wrong_inner = listen(&d.join("9").join("other"))?;
    let _live = listen(&d.join(format!("{HOST}-10")))?;
    let found = discovery::discover(dirs(d), uid(), HOST.into(), TIMEOUT).await;
    assert_eq!(
        found.iter().map(|s| s.display.as_str()).collect::<Vec<_>>(),
        vec![":10"]
    );
    Ok(())
}

#[tokio::test]
async fn discovery_skips_missing_dirs_and_scans_each_dir_once() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let _l = listen(&tmp.path().join(format!("{HOST}-11")))?;
    let raw = tmp.path().to_string_lossy().into_owned();
    let configured = vec![
        raw.clone(),
        format!("{raw}/"),
        format!("{raw}/does-not-exist"),
    ];
    let expanded = discovery::expand_socket_dirs(&configured, uid());
    assert_eq!(expanded.len(), 2, "{expanded:?}");
    let found = discovery::discover(expanded, uid(), HOST.into(), TIMEOUT).await;
    assert_eq!(found.len(), 1);
    Ok(())
}

#[tokio::test]
async fn discovery_checks_the_owner() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join(format!("{HOST}-12"));
    let _l = listen(&path)?;
    let other = uid().wrapping_add(4321);
    if std::os::unix::fs::chown(&path, Some(other), None).is_err() {
        // not root: cannot give a socket away; an owned socket must at least be found
        let found = discovery::find_sockets(&dirs(tmp.path()), uid(), HOST);
        assert_eq!(found.len(), 1);
        assert!(discovery::find_sockets(&dirs(tmp.path()), other, HOST).is_empty());
        return Ok(());
    }
    assert!(discovery::find_sockets(&dirs(tmp.path()), uid(), HOST).is_empty());
    let found = discovery::find_sockets(&dirs(tmp.path()), other, HOST);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].display, ":12");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// resolve

#[tokio::test]
async fn resolve_listed_displays_paths_and_uris() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let _a = listen(&tmp.path().join(format!("{HOST}-100")))?;
    let _b = listen(&tmp.path().join("101/socket"))?;
    stale_socket(&tmp.path().join(format!("{HOST}-102")))?;
    let sockets = discovery::discover(dirs(tmp.path()), uid(), HOST.into(), TIMEOUT).await;
    let explicit = tmp.path().join("explicit.sock");
    let source = listed(
        &[
            ":100",
            "101",
            ":102", // not LIVE: left out
            ":103", // no socket: left out
            &explicit.to_string_lossy(),
            "tcp://127.0.0.1:10100/",
            "not a display",
        ],
        &[("compression_level", "0")],
    );
    let out = resolve::resolve(&source, &sockets, &[target(":999")]);
    let names: Vec<&str> = out.iter().map(|t| t.display.as_str()).collect();
    let explicit_name = explicit.to_string_lossy();
    assert_eq!(
        names,
        vec![
            ":100",
            ":101",
            explicit_name.as_ref(),
            "tcp://127.0.0.1:10100/"
        ]
    );
    assert_eq!(
        out[0].address,
        TargetAddress::Unix {
            path: tmp.path().join(format!("{HOST}-100"))
        }
    );
    assert_eq!(
        out[1].address,
        TargetAddress::Unix {
            path: tmp.path().join("101/socket")
        }
    );
    assert_eq!(out[2].address, TargetAddress::Unix { path: explicit });
    assert_eq!(
        out[3].address,
        TargetAddress::Tcp {
            host: "127.0.0.1".into(),
            port: 10100
        }
    );
    for t in &out {
        assert_eq!(
            t.options.get("compression_level").map(String::as_str),
            Some("0")
        );
        assert_eq!(t.env.get("XPRA_X").map(String::as_str), Some("1"));
        assert_eq!(t.source, resolve::SOURCE_LISTED);
    }
    Ok(())
}

#[tokio::test]
async fn resolve_socket_scan_gives_live_sessions_and_static_targets() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let _a = listen(&tmp.path().join(format!("{HOST}-100")))?;
    stale_socket(&tmp.path().join(format!("{HOST}-102")))?;
    let sockets = discovery::discover(dirs(tmp.path()), uid(), HOST.into(), TIMEOUT).await;
    let out = resolve::resolve(&SessionSource::SocketScan, &sockets, &[target(":200")]);
    let names: Vec<&str> = out.iter().map(|t| t.display.as_str()).collect();
    assert_eq!(names, vec![":200", ":100"]);
    assert_eq!(out[1].source, resolve::SOURCE_SOCKET_DIR);
    assert!(out[1].options.is_empty());
    Ok(())
}

// ------------------------------------------------------------------------------------------
// choose

#[test]
fn choose_exact_match() -> TestResult {
    let c = [target(":100"), target("tcp://127.0.0.1:10100/")];
    assert_eq!(choose(&c, Some(":100"))?.display, ":100");
    assert_eq!(
        choose(&c, Some("tcp://127.0.0.1:10100/"))?.display,
        "tcp://127.0.0.1:10100/"
    );
    Ok(())
}

#[test]
fn choose_normalises_n_and_colon_n_both_ways() -> TestResult {
    let c = [target(":100"), target("101")];
    assert_eq!(choose(&c, Some("100"))?.display, ":100");
    assert_eq!(choose(&c, Some(":101"))?.display, "101");
    Ok(())
}

#[test]
fn choose_single_candidate_without_request() -> TestResult {
    let c = [target(":100")];
    assert_eq!(choose(&c, None)?.display, ":100");
    Ok(())
}

#[test]
fn choose_errors_carry_xpra_texts() {
    let c = [target(":101"), target(":100")];
    let err = choose(&c, None).err();
    assert_eq!(
        err.as_ref().map(ToString::to_string).as_deref(),
        Some("please specify a display, more than one is available: :100, :101")
    );
    let err = choose(&c, Some("7")).err();
    assert_eq!(err, Some(ChooseError::NotFound("7".into())));
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("display '7' not found")
    );
    let err = choose(&[], None).err();
    assert_eq!(
        err.as_ref().map(ToString::to_string).as_deref(),
        Some("no displays found")
    );
    assert_eq!(err.map(|e| e.reason()), Some(SESSION_NOT_FOUND));
    assert_eq!(SESSION_NOT_FOUND, "session not found error");
}

#[test]
fn choose_with_the_requested_display_of_a_websocket_client() -> TestResult {
    let c = [target(":100"), target(":101")];
    let wanted = requested_display(None, None, Some("/101"));
    assert_eq!(choose(&c, wanted.as_deref())?.display, ":101");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// the actor

fn registry_for(dir: &Path, static_targets: Vec<SessionTarget>) -> RegistryConfig {
    let mut config = RegistryConfig::new(vec![dir.to_string_lossy().into_owned()], static_targets);
    config.hostname = Some(HOST.into());
    config.probe_timeout = TIMEOUT;
    config
}

fn me() -> UserIdentity {
    UserIdentity {
        username: "tester".into(),
        uid: None, // the gateway's own uid
        gid: None,
    }
}

#[actix_rt::test]
async fn actor_lookup_returns_live_sessions() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let _a = listen(&tmp.path().join(format!("{HOST}-100")))?;
    let _b = listen(&tmp.path().join("101/socket"))?;
    stale_socket(&tmp.path().join(format!("{HOST}-102")))?;
    std::fs::write(tmp.path().join(format!("{HOST}-103")), b"")?;
    let registry = SessionRegistry::new(registry_for(tmp.path(), vec![target(":200")])).start();
    let found = registry
        .send(LookupSessions {
            user: me(),
            source: SessionSource::SocketScan,
        })
        .await?;
    let mut names: Vec<&str> = found.iter().map(|t| t.display.as_str()).collect();
    names.sort();
    assert_eq!(names, vec![":100", ":101", ":200"]);

    let found = registry
        .send(LookupSessions {
            user: UserIdentity {
                uid: Some(uid()),
                ..me()
            },
            source: listed(&["100", "tcp://127.0.0.1:10100/"], &[]),
        })
        .await?;
    let names: Vec<&str> = found.iter().map(|t| t.display.as_str()).collect();
    assert_eq!(names, vec![":100", "tcp://127.0.0.1:10100/"]);
    let chosen = choose(&found, Some(":100"))?;
    assert_eq!(
        chosen.address,
        TargetAddress::Unix {
            path: tmp.path().join(format!("{HOST}-100"))
        }
    );
    Ok(())
}

#[actix_rt::test]
async fn actor_reload_swaps_dirs_and_static_targets() -> TestResult {
    let first = tempfile::tempdir()?;
    let second = tempfile::tempdir()?;
    let _a = listen(&first.path().join(format!("{HOST}-1")))?;
    let _b = listen(&second.path().join(format!("{HOST}-2")))?;
    let registry = SessionRegistry::new(registry_for(first.path(), vec![])).start();
    let lookup = || LookupSessions {
        user: me(),
        source: SessionSource::SocketScan,
    };
    let found = registry.send(lookup()).await?;
    assert_eq!(
        found.iter().map(|t| t.display.as_str()).collect::<Vec<_>>(),
        vec![":1"]
    );
    registry
        .send(UpdateRegistryConfig(registry_for(
            second.path(),
            vec![target(":300")],
        )))
        .await?;
    let found = registry.send(lookup()).await?;
    assert_eq!(
        found.iter().map(|t| t.display.as_str()).collect::<Vec<_>>(),
        vec![":300", ":2"]
    );
    Ok(())
}

/// A stand-in relay that records the stop requests it gets.
struct FakeRelay {
    /// The reasons of the stop requests received.
    stops: Arc<Mutex<Vec<String>>>,
    /// Whether to stop on a request without unregistering (like a relay that crashes).
    vanish: bool,
}

impl Actor for FakeRelay {
    type Context = Context<Self>;
}

impl Handler<StopConnection> for FakeRelay {
    type Result = ();
    fn handle(&mut self, msg: StopConnection, ctx: &mut Context<Self>) {
        if let Ok(mut stops) = self.stops.lock() {
            stops.push(msg.reason);
        }
        if self.vanish {
            ctx.stop();
        }
    }
}

fn summary(id: u64) -> ConnectionSummary {
    ConnectionSummary {
        id: ConnectionId(id),
        peer: Peer::Tcp(([127, 0, 0, 1], 40000 + id as u16).into()),
        transport: TransportKind::Wss,
        username: "alice".into(),
        display: ":100".into(),
        target: "/run/user/1000/xpra/host-100".into(),
        client_version: "6.5.5".into(),
        started_unix_ms: 1_700_000_000_000,
    }
}

#[actix_rt::test]
async fn actor_connection_table_register_list_stop_unregister() -> TestResult {
    let registry = SessionRegistry::new(RegistryConfig::new(vec![], vec![])).start();
    let stops = Arc::new(Mutex::new(Vec::new()));
    let relay = FakeRelay {
        stops: Arc::clone(&stops),
        vanish: false,
    }
    .start();
    for id in [2, 1] {
        registry
            .send(RegisterConnection {
                summary: summary(id),
                stop: relay.clone().recipient(),
            })
            .await?;
    }
    let rows = registry.send(ListConnections).await?;
    assert_eq!(rows, vec![summary(1), summary(2)]);

    let stopped = registry
        .send(StopConnectionById {
            id: ConnectionId(2),
            reason: "server shutdown".into(),
        })
        .await?;
    assert!(stopped);
    // the relay's mailbox is served after this round trip
    for _ in 0..50 {
        if stops.lock().map(|s| !s.is_empty()).unwrap_or(false) {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stops.lock().map(|s| s.clone()).unwrap_or_default(),
        vec!["server shutdown".to_string()]
    );

    registry.send(UnregisterConnection(ConnectionId(2))).await?;
    assert_eq!(registry.send(ListConnections).await?, vec![summary(1)]);
    registry.send(UnregisterConnection(ConnectionId(1))).await?;
    assert!(registry.send(ListConnections).await?.is_empty());
    Ok(())
}

#[actix_rt::test]
async fn actor_stop_of_an_unknown_id_is_false() -> TestResult {
    let registry = SessionRegistry::new(RegistryConfig::new(vec![], vec![])).start();
    let stopped = registry
        .send(StopConnectionById {
            id: ConnectionId(77),
            reason: "client request".into(),
        })
        .await?;
    assert!(!stopped);
    Ok(())
}

#[actix_rt::test]
async fn actor_drops_rows_of_relays_that_are_gone() -> TestResult {
    let registry = SessionRegistry::new(RegistryConfig::new(vec![], vec![])).start();
    let relay = FakeRelay {
        stops: Arc::default(),
        vanish: true,
    }
    .start();
    registry
        .send(RegisterConnection {
            summary: summary(5),
            stop: relay.clone().recipient(),
        })
        .await?;
    let stop = |reason: &str| StopConnectionById {
        id: ConnectionId(5),
        reason: reason.into(),
    };
    // the relay stops on this request and never unregisters
    assert!(registry.send(stop("first")).await?);
    for _ in 0..50 {
        if !relay.connected() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!relay.connected());
    assert!(registry.send(ListConnections).await?.is_empty());
    assert!(!registry.send(stop("again")).await?);
    Ok(())
}

#[actix_rt::test]
async fn actor_info_tree_has_the_table_and_counters() -> TestResult {
    let registry = SessionRegistry::new(RegistryConfig::new(
        vec!["/run/xpra".into()],
        vec![target(":200")],
    ))
    .start();
    let relay = FakeRelay {
        stops: Arc::default(),
        vanish: false,
    }
    .start();
    registry
        .send(RegisterConnection {
            summary: summary(3),
            stop: relay.clone().recipient(),
        })
        .await?;
    let peer = Peer::Tcp(([127, 0, 0, 1], 40003).into());
    registry
        .send(GatewayEvent::ConnectionOpened {
            id: ConnectionId(3),
            peer: peer.clone(),
            transport: TransportKind::Wss,
            username: "alice".into(),
            display: ":100".into(),
            target: "x".into(),
        })
        .await?;
    registry
        .send(GatewayEvent::AuthFailed {
            peer,
            username: Some("mallory".into()),
            reason: "bad password".into(),
        })
        .await?;
    let info = registry.send(GetRegistryInfo).await?;
    let row = &info["connections"]["3"];
    assert_eq!(row["id"], 3);
    assert_eq!(row["username"], "alice");
    assert_eq!(row["peer"], "127.0.0.1:40003");
    assert_eq!(row["display"], ":100");
    assert_eq!(row["target"], "/run/user/1000/xpra/host-100");
    assert_eq!(row["transport"], "wss");
    assert_eq!(row["client-version"], "6.5.5");
    assert_eq!(row["start-time"], 1_700_000_000_000u64);
    assert_eq!(info["connection-count"], 1);
    assert_eq!(info["counters"]["connections-opened"], 1);
    assert_eq!(info["counters"]["auth-failures"], 1);
    assert_eq!(info["socket-dirs"][0], "/run/xpra");
    assert_eq!(info["static-targets"][":200"], "tcp://127.0.0.1:10100/");

    registry
        .send(GatewayEvent::ConnectionClosed {
            id: ConnectionId(3),
            username: "alice".into(),
            target: "x".into(),
            reason: "client exit".into(),
            bytes_from_client: 100,
            bytes_to_client: 2000,
            duration_ms: 5,
        })
        .await?;
    let info = registry.send(GetRegistryInfo).await?;
    assert_eq!(info["connection-count"], 0);
    assert_eq!(info["counters"]["connections-closed"], 1);
    assert_eq!(info["counters"]["bytes-from-clients"], 100);
    assert_eq!(info["counters"]["bytes-to-clients"], 2000);
    Ok(())
}
