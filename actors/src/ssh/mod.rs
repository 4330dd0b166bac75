//! xpra's SSH transport: the builtin SSH server ([`server`]) that `bind-ssh` listeners and the
//! shared port (on `SSH-`) hand their connections to, and `ssh://` targets ([`client`]).
//!
//! The server gives SSH's authentication and encryption but no shell: a connection can only run
//! xpra's probes ([`exec`]) and `xpra _proxy [DISPLAY]`, whose channel becomes the xpra byte
//! stream that the Authenticator, the SessionRegistry and a ProxyRelay handle as for any other
//! transport. Host keys and `authorized_keys` files are in [`keys`].

pub mod client;
pub mod exec;
pub mod keys;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::Config as RusshConfig;
use russh::{MethodKind, MethodSet, SshId};
use xgate_config::Config;

pub use keys::KeyError;

/// Session channels one SSH connection may hold open at once (paramiko opens one per probe, and
/// the next before the last one's close completes).
pub const MAX_OPEN_CHANNELS: usize = 8;

/// Session channels one SSH connection may open in its life (a 6.5.5 paramiko attach uses 5).
pub const MAX_CHANNELS_PER_CONNECTION: usize = 64;

/// What the builtin SSH server needs, shared by every connection.
#[derive(Debug)]
pub struct SshSettings {
    /// russh's configuration: host keys, offered methods, timeouts and window sizes.
    pub russh: Arc<RusshConfig>,
    /// `ssh-authorized-keys`: the template of a user's `authorized_keys` path.
    pub authorized_keys: String,
    /// `login-timeout`: from the connection to a successful SSH login; then it is closed.
    pub login_timeout: Duration,
    /// `proxy-start-sessions`: whether `xpra _proxy_start` is taken (else refused at once, with
    /// the reason on stderr, rather than after the client's hello).
    pub start_sessions: bool,
}

impl SshSettings {
    /// Settings with these host keys; the login must complete within `login_timeout`.
    pub fn new(
        host_keys: Vec<PrivateKey>,
        authorized_keys: String,
        login_timeout: Duration,
        failure_delay: Duration,
    ) -> SshSettings {
        let russh = RusshConfig {
            server_id: SshId::Standard(concat!("SSH-2.0-xgate_", env!("CARGO_PKG_VERSION")).into()),
            // `none` is asked first by every client and answered with this list (6.5.5 drops
            // the methods it does not see); `none` itself is judged per connection.
            methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
            auth_rejection_time: failure_delay,
            // OpenSSH and paramiko start with a `none` probe: do not make every login wait.
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: host_keys,
            max_auth_attempts: 6,
            // After the login, the connection is idle-bounded; an attached xpra client pings
            // every few seconds, so only a dead or silent peer hits this.
            inactivity_timeout: Some(login_timeout.max(Duration::from_secs(60)) * 2),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..RusshConfig::default()
        };
        SshSettings {
            russh: Arc::new(russh),
            authorized_keys,
            login_timeout,
            start_sessions: false,
        }
    }

    /// Settings from the configuration: the `ssh-host-key` file, or a key generated in the
    /// state dir on first run (owned by `owner`, the user the gateway drops to). Returns lines
    /// for the operator: the host key in use and its fingerprint.
    pub fn from_config(
        cfg: &Config,
        owner: Option<(u32, u32)>,
    ) -> Result<(SshSettings, Vec<String>), KeyError> {
        let mut notes = Vec::new();
        let path: PathBuf = match &cfg.ssh_host_key {
            Some(p) => p.clone(),
            None => {
                let (path, created) = keys::ensure_default_host_key(&cfg.state_dir, owner)?;
                if created {
                    notes.push(format!("generated an SSH host key in {}", path.display()));
                }
                path
            }
        };
        let key = keys::load_host_key(&path)?;
        notes.push(format!(
            "SSH host key {} fingerprint {}",
            path.display(),
            keys::fingerprint(key.public_key())
        ));
        let template = cfg
            .ssh_authorized_keys
            .clone()
            .unwrap_or_else(|| keys::DEFAULT_AUTHORIZED_KEYS.to_string());
        let mut settings = SshSettings::new(
            vec![key],
            template,
            cfg.login_timeout,
            cfg.auth_failure_delay,
        );
        settings.start_sessions = cfg.proxy_start_sessions;
        Ok((settings, notes))
    }
}
