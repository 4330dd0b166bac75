//! `xgate run`: load the configuration, bind, drop root, and run the supervision tree until a
//! signal (or an allowed `stop` request) ends it.

use std::sync::Arc;
use std::time::Duration;

use xgate_actors::auth::AuthSettings;
use xgate_actors::gateway::GatewayIdentity;
use xgate_actors::listener::ConnectionLimits;
use xgate_actors::registry::RegistryConfig;
use xgate_actors::relay::transport::TargetTls;
use xgate_actors::relay::RelaySettings;
use xgate_actors::upgrade::UpgradeSettings;
use xgate_config::Config;

use crate::{bind, control, privileges, state, tree};

/// How long the tree has to stop gracefully before what is left is aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn init_logging(cfg: &Config) -> control::LogHandle {
    let directives = match std::env::var("XGATE_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            let debug = cfg.debug_filter();
            if debug.is_empty() {
                "info".to_string()
            } else {
                format!("info,{debug}")
            }
        }
    };
    control::init_logging(&directives)
}

/// Runs the gateway with `xgate run`'s options.
pub(crate) fn run(options: &[String]) -> Result<(), String> {
    let cfg = xgate_config::load_from_args(options).map_err(|e| e.to_string())?;
    let log = init_logging(&cfg);
    let owner = privileges::service_ids(cfg.uid.as_ref(), cfg.gid.as_ref());
    let created = state::ensure_password_files(&cfg, owner)?;
    // TLS files are read (and a default certificate generated) before root is dropped.
    let (upgrade, tls_notes) =
        UpgradeSettings::from_config(&cfg, owner).map_err(|e| e.to_string())?;
    // The CAs of ssl:// and wss:// targets, read before root is dropped too.
    let target_tls = TargetTls::new(
        cfg.ssl_server_verify_mode,
        cfg.ssl_server_ca_certs.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let bound = bind::bind_all(&cfg, owner)?;
    // How relays log in to ssh:// targets.
    xgate_actors::ssh::client::configure(xgate_actors::ssh::client::ClientSettings::from_config(
        &cfg,
    ));
    // The control socket and the metrics listener, bound as root too; plug-ins checked.
    let control_bind = control::bind_control(cfg.control_socket.as_deref(), owner);
    let metrics_bind = control::bind_metrics(cfg.bind_metrics)?;
    let kinds = xgate_actors::plugin::PluginKinds::builtin();
    let actors = control::plugin_configs(&cfg, &kinds)?;
    let user = privileges::drop_root(cfg.uid.as_ref(), cfg.gid.as_ref())?;
    let identity = GatewayIdentity::new();

    // What an operator (and the tests) need to reach the gateway. The `listening on` lines come
    // after the notes: whoever waits for them (a script, a test) then has every note too.
    for note in &tls_notes {
        println!("xgate: {note}");
    }
    for (path, password) in &created {
        println!("xgate: generated a password in {path}: {password}");
    }
    for b in &bound {
        println!(
            "xgate: listening on {} ({})",
            b.socket.local_name(),
            b.info.name
        );
    }
    let password = created.first().map(|(_, p)| p.clone());
    for b in &bound {
        if let xgate_actors::listener::BoundSocket::Tcp(l) = &b.socket {
            if let Ok(addr) = l.local_addr() {
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                let cred = match &password {
                    Some(p) => format!("{user}:{p}@"),
                    None => String::new(),
                };
                // ssl://, ws://, ssh://... as the listener speaks (a `tcp` one sniffs them all).
                println!(
                    "xgate: attach with: xpra attach {}://{cred}{host}:{}/",
                    b.info.kind.xpra_name(),
                    addr.port()
                );
            }
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let auth = AuthSettings::from_config(&cfg, identity.clone()).map_err(|e| e.to_string())?;
    let registry = RegistryConfig::from(&cfg);
    let limits = ConnectionLimits::new(
        cfg.max_connections as usize,
        cfg.max_connections_per_address as usize,
    );
    let live = control::Live::new(
        registry.clone(),
        auth.clone(),
        options.to_vec(),
        identity.clone(),
        log,
        Arc::clone(&limits),
    );
    let extras = control::Extras {
        live: std::rc::Rc::clone(&live),
        control: control_bind,
        metrics: metrics_bind,
        actors,
        kinds,
    };
    let system = actix::System::new();
    system.block_on(async move {
        // One arbiter per core carries the relays; handshakes and actors stay on this one.
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let arbiters: Vec<actix::Arbiter> = (0..cores).map(|_| actix::Arbiter::new()).collect();
        // The EncoderPool probes its encoders once (and logs which one each codec uses); relays
        // of sessions with the `reencode` option send it their frames.
        let encoder = actix::Actor::start(xgate_actors::encoder::EncoderPool::new(
            xgate_actors::encoder::EncoderSettings::from_config(&cfg),
        ));
        let relay = Arc::new(RelaySettings {
            connect_timeout: cfg.connect_timeout,
            connect_retry: cfg.connect_retry,
            handshake_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(5),
            max_packet_size: u32::try_from(cfg.max_packet_size).unwrap_or(u32::MAX),
            identity,
            arbiters: arbiters.iter().map(actix::Arbiter::handle).collect(),
            target_tls,
            encoder: Some(encoder.clone()),
            reencode: cfg.reencode,
        });
        let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel();
        let root = tree::build(tree::TreeParts {
            registry,
            auth,
            relay,
            upgrade: Arc::new(upgrade),
            bound,
            limits,
            stop: stop_tx,
            extras,
        })
        .start_root();
        live.root.replace(root.addr().cloned());
        live.encoder.replace(Some(encoder));
        let signals = xgate_supervisor::ShutdownSignals::install().map_err(|e| e.to_string())?;
        let reason = tokio::select! {
            reason = xgate_supervisor::shutdown_on_signals(root, signals, SHUTDOWN_GRACE) => reason,
            _ = stop_rx.recv() => {
                tracing::info!(target: "xgate::supervisor", "stop requested by a client");
                // Give the requesting client its answer, then stop.
                tokio::time::sleep(Duration::from_millis(200)).await;
                actix::System::current().stop();
                xgate_supervisor::ExitReason::Shutdown
            }
        };
        tracing::info!(target: "xgate::supervisor", "gateway stopped: {reason}");
        for a in arbiters {
            a.stop();
        }
        Ok::<(), String>(())
    })
}
