//! The configuration struct, its defaults, expansion and semantic validation.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use xgate_messages::TargetAddress;

use crate::de;
use crate::error::{ConfigError, Origin};
use crate::expand::Expander;
use crate::values::{
    AuthSpec, BindSpec, ClientVerifyMode, DebugCategory, ReencodeMode, SslMode, TargetSpec,
    UnixBindSpec, UserSpec,
};

/// xpra's standard socket dirs, in xpra's order (protocol notes §7).
pub const DEFAULT_SOCKET_DIRS: &[&str] = &["$XDG_RUNTIME_DIR/xpra", "/run/xpra", "~/.xpra"];

/// Video encoders tried in order when re-encoding is enabled.
pub const DEFAULT_VIDEO_ENCODERS: &[&str] = &["h264_nvenc", "libx264"];

/// The whole configuration. Field names are xpra's option names in kebab case
/// (`bind_tcp` ↔ `bind-tcp`); repeatable options are `Vec`s that take a string or an array
/// in TOML.
///
/// Obtain one from [`crate::ConfigLoader`], which parses, expands and validates it; a value
/// built by hand should go through [`Config::expand`] and [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Config {
    // ---- listeners (§5)
    /// TCP listeners; on these ports xpra, TLS, WebSocket and SSH are sniffed (shared port).
    #[serde(deserialize_with = "de::list")]
    pub bind_tcp: Vec<BindSpec>,
    /// TLS-only listeners (xpra over TLS, or wss when the client speaks HTTP inside).
    #[serde(deserialize_with = "de::list")]
    pub bind_ssl: Vec<BindSpec>,
    /// WebSocket listeners (HTTP; TLS is upgraded to wss).
    #[serde(deserialize_with = "de::list")]
    pub bind_ws: Vec<BindSpec>,
    /// WebSocket-over-TLS listeners.
    #[serde(deserialize_with = "de::list")]
    pub bind_wss: Vec<BindSpec>,
    /// SSH-only listeners.
    #[serde(deserialize_with = "de::list")]
    pub bind_ssh: Vec<BindSpec>,
    /// Unix-socket listeners (xpra's `bind`; `none` entries are skipped).
    #[serde(deserialize_with = "de::unix_binds")]
    pub bind: Vec<UnixBindSpec>,

    // ---- authentication (§4.2): each a chain of modules, tried as xpra does
    /// Auth chain for unix-socket connections (xpra's `auth`).
    #[serde(deserialize_with = "de::list")]
    pub auth: Vec<AuthSpec>,
    /// Auth chain for plain xpra over TCP.
    #[serde(deserialize_with = "de::list")]
    pub tcp_auth: Vec<AuthSpec>,
    /// Auth chain for xpra over TLS (empty: `tcp-auth`, see [`Config::auth_for`]).
    #[serde(deserialize_with = "de::list")]
    pub ssl_auth: Vec<AuthSpec>,
    /// Auth chain for WebSocket connections (empty: `tcp-auth`).
    #[serde(deserialize_with = "de::list")]
    pub ws_auth: Vec<AuthSpec>,
    /// Auth chain for WebSocket-over-TLS connections (empty: `ssl-auth`, then `tcp-auth`).
    #[serde(deserialize_with = "de::list")]
    pub wss_auth: Vec<AuthSpec>,
    /// Auth chain for SSH connections (empty: `tcp-auth`).
    #[serde(deserialize_with = "de::list")]
    pub ssh_auth: Vec<AuthSpec>,

    // ---- sessions (§7)
    /// Directories scanned for local xpra session sockets, in order. They are templates, kept
    /// unexpanded (`$XDG_RUNTIME_DIR/xpra`, `~/.xpra`): the registry expands them for each user
    /// whose sessions it looks up, so that one gateway serves many users.
    #[serde(deserialize_with = "de::list")]
    pub socket_dirs: Vec<PathBuf>,
    /// Static targets: display numbers relayed to fixed URIs (key `target`).
    #[serde(deserialize_with = "de::list")]
    pub target: Vec<TargetSpec>,

    // ---- limits and timeouts
    /// Connections open at once, all listeners together; more are refused at accept.
    #[serde(deserialize_with = "de::one")]
    pub max_connections: u32,
    /// Connections open at once from one client address.
    #[serde(deserialize_with = "de::one")]
    pub max_connections_per_address: u32,
    /// Time from accept to a completed login (xpra's proxy: 31 s).
    #[serde(deserialize_with = "de::duration")]
    pub login_timeout: Duration,
    /// How long to wait for a client's first bytes to sniff the protocol (xpra: 1 s).
    #[serde(deserialize_with = "de::duration")]
    pub peek_timeout: Duration,
    /// Time allowed to connect to a target session.
    #[serde(deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// How long a relay keeps retrying a session that is still starting.
    #[serde(deserialize_with = "de::duration")]
    pub connect_retry: Duration,
    /// Absolute cap on one packet in a relay (xpra refuses ≥ 256 MiB); at most 4 GiB - 1, the
    /// most the 32-bit length field can say.
    #[serde(deserialize_with = "de::size")]
    pub max_packet_size: u64,
    /// Cap on packets before authentication completes, so an unauthenticated client cannot
    /// make the proxy buffer much.
    #[serde(deserialize_with = "de::size")]
    pub max_initial_packet_size: u64,
    /// Delay before answering a failed login (xpra: 1 s); it holds no thread.
    #[serde(deserialize_with = "de::duration")]
    pub auth_failure_delay: Duration,
    /// Failed logins allowed from one address within `auth-failure-window` before it is
    /// refused for `auth-failure-ban-time` (0 = no limit).
    #[serde(deserialize_with = "de::one")]
    pub max_auth_failures: u32,
    /// The window over which `max-auth-failures` is counted.
    #[serde(deserialize_with = "de::duration")]
    pub auth_failure_window: Duration,
    /// How long an address that hit `max-auth-failures` is refused.
    #[serde(deserialize_with = "de::duration")]
    pub auth_failure_ban_time: Duration,
    /// Close relays idle this long (0 = never).
    #[serde(deserialize_with = "de::duration")]
    pub idle_timeout: Duration,
    /// Compression level (0-9) for packets the proxy itself sends.
    #[serde(deserialize_with = "de::one")]
    pub compression_level: u8,

    // ---- TLS / HTTP / SSH (later issues)
    /// PEM certificate (chain) for TLS; without it the binary generates one in `state-dir`.
    #[serde(deserialize_with = "de::opt")]
    pub ssl_cert: Option<PathBuf>,
    /// PEM private key (default: inside `ssl-cert`).
    #[serde(deserialize_with = "de::opt")]
    pub ssl_key: Option<PathBuf>,
    /// CA certificates for verifying client certificates.
    #[serde(deserialize_with = "de::opt")]
    pub ssl_ca_certs: Option<PathBuf>,
    /// Whether TLS clients must present a certificate (unset: none without `ssl-ca-certs`).
    #[serde(deserialize_with = "de::opt")]
    pub ssl_client_verify_mode: Option<ClientVerifyMode>,
    /// What runs inside TLS on a shared port.
    #[serde(deserialize_with = "de::one")]
    pub ssl_mode: SslMode,
    /// Whether the certificates of `ssl://` and `wss://` target servers are verified (xpra's
    /// client option of that name): `required` (the default) or `optional` verify the chain
    /// against `ssl-server-ca-certs` and the host name against the target's host (a TLS server
    /// always presents a certificate, so the two are the same); `none` skips verification.
    #[serde(deserialize_with = "de::one")]
    pub ssl_server_verify_mode: ClientVerifyMode,
    /// CA certificates (PEM) that sign the certificates of `ssl://` and `wss://` target servers;
    /// unset: the system's trust store.
    #[serde(deserialize_with = "de::opt")]
    pub ssl_server_ca_certs: Option<PathBuf>,
    /// SSH host key file; without it the binary generates one in `state-dir`.
    #[serde(deserialize_with = "de::opt")]
    pub ssh_host_key: Option<PathBuf>,
    /// Where the builtin SSH server finds a user's authorized keys, with OpenSSH's tokens: `%u`
    /// the user name, `%h` the user's home directory, `%%` a `%` (unset:
    /// `%h/.ssh/authorized_keys`).
    #[serde(deserialize_with = "de::opt")]
    pub ssh_authorized_keys: Option<String>,
    /// The private key the gateway logs in with to `ssh://` targets (unset: the first of
    /// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` of the user the gateway runs as).
    #[serde(deserialize_with = "de::opt")]
    pub ssh_key: Option<PathBuf>,
    /// The known_hosts file that `ssh://` targets' host keys are checked against (unset:
    /// `~/.ssh/known_hosts` of the user the gateway runs as).
    #[serde(deserialize_with = "de::opt")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Whether an `ssh://` target whose host is not in `ssh-known-hosts` is accepted and its
    /// key recorded there (OpenSSH's `StrictHostKeyChecking=accept-new`); off: refused. A host
    /// whose key changed is refused either way.
    #[serde(deserialize_with = "de::one")]
    pub ssh_accept_new_host_keys: bool,
    /// Directory served over HTTP (xpra's HTML5 client); unset = no web files.
    #[serde(deserialize_with = "de::opt")]
    pub www: Option<PathBuf>,
    /// File or directory of extra HTTP response headers (as xpra's `http-headers` dir).
    #[serde(deserialize_with = "de::opt")]
    pub http_headers: Option<PathBuf>,

    // ---- service
    /// Unix socket for `xgate ctl`; unset = no control socket.
    #[serde(deserialize_with = "de::opt")]
    pub control_socket: Option<PathBuf>,
    /// A plain-HTTP listener answering only `GET /metrics` (Prometheus text), for scrapers that
    /// cannot reach the shared port; unset = none.
    #[serde(deserialize_with = "de::opt")]
    pub bind_metrics: Option<std::net::SocketAddr>,
    /// Plug-in actors placed under the `plugins` supervisor (see [`crate::ActorSpec`]).
    #[serde(deserialize_with = "crate::actor::actors")]
    pub actor: Vec<crate::ActorSpec>,
    /// Where generated files live (certificate, password file, host key); `$STATE_DIR`.
    #[serde(deserialize_with = "de::one")]
    pub state_dir: PathBuf,
    /// User to drop to after binding when started as root (name or number).
    #[serde(deserialize_with = "de::opt")]
    pub uid: Option<UserSpec>,
    /// Group to drop to after binding when started as root (name or number).
    #[serde(deserialize_with = "de::opt")]
    pub gid: Option<UserSpec>,
    /// Whether clients may send xpra's `stop` request to the proxy itself.
    #[serde(deserialize_with = "de::one")]
    pub allow_stop: bool,
    /// xpra's `proxy-start-sessions`: whether a client may have the gateway start a new session
    /// (`xpra start tcp://gateway/...`, the hello's `start-new-session`, SSH's `_proxy_start`).
    /// Sessions start as the user the gateway runs as, so only for that user. Off by default:
    /// starting programs for a client is a decision for the operator.
    #[serde(deserialize_with = "de::one")]
    pub proxy_start_sessions: bool,
    /// The xpra the gateway starts sessions with: the executable, then fixed options placed
    /// before the subcommand's own (`/usr/bin/xpra --mdns=no`), split on whitespace.
    #[serde(deserialize_with = "de::one")]
    pub proxy_start_command: String,
    /// How long a started session may take to answer on its socket.
    #[serde(deserialize_with = "de::duration")]
    pub proxy_start_timeout: Duration,
    /// Debug categories (`-d auth,network`); see [`Config::debug_filter`].
    #[serde(deserialize_with = "de::debug")]
    pub debug: Vec<DebugCategory>,
    /// Video encoders in order of preference.
    #[serde(deserialize_with = "de::names")]
    pub video_encoders: Vec<String>,
    /// The `reencode` session option's default: whether sessions whose options do not say get
    /// video made by the gateway (docs/reencode.md).
    #[serde(deserialize_with = "de::one")]
    pub reencode: ReencodeMode,

    /// Where each key's effective value came from (keys not listed: the built-in defaults).
    #[serde(skip)]
    origins: BTreeMap<String, Origin>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_tcp: Vec::new(),
            bind_ssl: Vec::new(),
            bind_ws: Vec::new(),
            bind_wss: Vec::new(),
            bind_ssh: Vec::new(),
            bind: Vec::new(),
            auth: Vec::new(),
            tcp_auth: Vec::new(),
            ssl_auth: Vec::new(),
            ws_auth: Vec::new(),
            wss_auth: Vec::new(),
            ssh_auth: Vec::new(),
            socket_dirs: DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
            target: Vec::new(),
            max_connections: 1024,
            max_connections_per_address: 64,
            login_timeout: Duration::from_secs(31),
            peek_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            connect_retry: Duration::from_secs(5),
            max_packet_size: 256 << 20,
            max_initial_packet_size: 16 << 20,
            auth_failure_delay: Duration::from_secs(1),
            max_auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
            auth_failure_ban_time: Duration::from_secs(60),
            idle_timeout: Duration::ZERO,
            compression_level: 1,
            ssl_cert: None,
            ssl_key: None,
            ssl_ca_certs: None,
            ssl_client_verify_mode: None,
            ssl_mode: SslMode::Auto,
            ssl_server_verify_mode: ClientVerifyMode::Required,
            ssl_server_ca_certs: None,
            ssh_host_key: None,
            ssh_authorized_keys: None,
            ssh_key: None,
            ssh_known_hosts: None,
            ssh_accept_new_host_keys: false,
            www: None,
            http_headers: None,
            control_socket: None,
            bind_metrics: None,
            actor: Vec::new(),
            state_dir: PathBuf::from("$XDG_STATE_HOME/xgate"),
            uid: None,
            gid: None,
            allow_stop: false,
            proxy_start_sessions: false,
            proxy_start_command: "xpra".to_owned(),
            proxy_start_timeout: Duration::from_secs(60),
            debug: Vec::new(),
            reencode: ReencodeMode::No,
            video_encoders: DEFAULT_VIDEO_ENCODERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            origins: BTreeMap::new(),
        }
    }
}

/// The kind of listener a connection arrived on (after sniffing), for [`Config::auth_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerKind {
    /// A unix socket (`bind`).
    Unix,
    /// Plain xpra over TCP.
    Tcp,
    /// xpra over TLS.
    Ssl,
    /// WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
    /// SSH.
    Ssh,
}

fn first_set<'a>(chains: &[&'a Vec<AuthSpec>]) -> &'a [AuthSpec] {
    chains
        .iter()
        .find(|c| !c.is_empty())
        .map_or(&[], |c| c.as_slice())
}

const AUTH_PATH_OPTIONS: &[&str] = &["filename", "socket-dirs", "socket-dir"];

fn expand_auth(chain: &mut [AuthSpec], ex: &Expander) {
    for spec in chain {
        for (k, v) in &mut spec.options {
            if AUTH_PATH_OPTIONS.contains(&k.as_str()) {
                *v = ex.expand(v);
            }
        }
    }
}

impl Config {
    /// Where the effective value of `key` came from ([`Origin::Default`] when no layer set it).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    pub(crate) fn set_origins(&mut self, origins: BTreeMap<String, Origin>) {
        self.origins = origins;
    }

    /// The auth chain for a connection of `kind`, before any per-listener `auth=` override
    /// (which the caller takes from [`BindSpec::auth`] / [`UnixBindSpec::auth`] first).
    ///
    /// An empty `ssl-auth`, `ws-auth` or `ssh-auth` falls back to `tcp-auth`, and an empty
    /// `wss-auth` to `ssl-auth` then `tcp-auth`: connections upgraded on a shared TCP port
    /// would otherwise get no authentication when only `tcp-auth` is set. An empty result
    /// means xpra's default (no authentication).
    pub fn auth_for(&self, kind: ListenerKind) -> &[AuthSpec] {
        match kind {
            ListenerKind::Unix => &self.auth,
            ListenerKind::Tcp => &self.tcp_auth,
            ListenerKind::Ssl => first_set(&[&self.ssl_auth, &self.tcp_auth]),
            ListenerKind::Ws => first_set(&[&self.ws_auth, &self.tcp_auth]),
            ListenerKind::Ssh => first_set(&[&self.ssh_auth, &self.tcp_auth]),
            ListenerKind::Wss => first_set(&[&self.wss_auth, &self.ssl_auth, &self.tcp_auth]),
        }
    }

    /// Expands `~`, `$UID`, `$USER`, `$HOME`, `$XDG_RUNTIME_DIR`, `$XDG_STATE_HOME` and
    /// `$STATE_DIR` in every path: `state-dir` first (it defines `$STATE_DIR`), then
    /// `bind` paths (not `socket-dirs`, which are per-user templates), unix targets, TLS/SSH/HTTP files, the control socket, and
    /// the `filename` / `socket-dirs` options of auth modules (not other module options, so an
    /// `exec` command keeps its `${username}`). [`crate::ConfigLoader::load`] calls this.
    pub fn expand(&mut self, ex: &Expander) {
        let mut ex = ex.clone();
        self.state_dir = ex.expand_path(&self.state_dir);
        ex.set("STATE_DIR", self.state_dir.to_string_lossy());
        for b in &mut self.bind {
            b.path = ex.expand_path(&b.path);
            expand_auth(&mut b.auth, &ex);
        }
        for b in [
            &mut self.bind_tcp,
            &mut self.bind_ssl,
            &mut self.bind_ws,
            &mut self.bind_wss,
        ]
        .into_iter()
        .chain([&mut self.bind_ssh])
        {
            for spec in b.iter_mut() {
                expand_auth(&mut spec.auth, &ex);
            }
        }
        for chain in [
            &mut self.auth,
            &mut self.tcp_auth,
            &mut self.ssl_auth,
            &mut self.ws_auth,
            &mut self.wss_auth,
            &mut self.ssh_auth,
        ] {
            expand_auth(chain, &ex);
        }
        for a in &mut self.actor {
            if let Some(p) = a.options.get_mut("path") {
                *p = ex.expand(p);
            }
        }
        for t in &mut self.target {
            if let TargetAddress::Unix { path } = &mut t.uri.address {
                *path = ex.expand_path(path);
            }
        }
        for p in [
            &mut self.ssl_cert,
            &mut self.ssl_key,
            &mut self.ssl_ca_certs,
            &mut self.ssl_server_ca_certs,
            &mut self.ssh_host_key,
            &mut self.ssh_key,
            &mut self.ssh_known_hosts,
            &mut self.www,
            &mut self.http_headers,
            &mut self.control_socket,
        ]
        .into_iter()
        .flatten()
        {
            *p = ex.expand_path(p);
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(key, &self.origin(key), reason)
    }

    /// Checks the rules that involve more than one value, or ranges that the parsers do not
    /// know. Errors name the key and its origin.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listeners: [(&str, &Vec<BindSpec>); 5] = [
            ("bind-tcp", &self.bind_tcp),
            ("bind-ssl", &self.bind_ssl),
            ("bind-ws", &self.bind_ws),
            ("bind-wss", &self.bind_wss),
            ("bind-ssh", &self.bind_ssh),
        ];
        if listeners.iter().all(|(_, l)| l.is_empty()) && self.bind.is_empty() {
            return Err(self.invalid(
                "bind-tcp",
                "no listener configured: set bind-tcp, bind-ssl, bind-ws, bind-wss, bind-ssh or bind",
            ));
        }
        let mut seen = HashSet::new();
        for (key, list) in listeners {
            for spec in list {
                if spec.port != 0 && !seen.insert((spec.host.clone(), spec.port)) {
                    return Err(self.invalid(
                        key,
                        format!(
                            "\"{}:{}\": address used by more than one listener",
                            spec.host, spec.port
                        ),
                    ));
                }
            }
        }
        if self.proxy_start_command.split_whitespace().next().is_none() {
            return Err(self.invalid(
                "proxy-start-command",
                "empty: name the xpra executable, e.g. \"xpra\" or \"/usr/bin/xpra\"",
            ));
        }
        let mut paths = HashSet::new();
        for b in &self.bind {
            if !paths.insert(&b.path) {
                return Err(self.invalid(
                    "bind",
                    format!("{:?}: socket path used twice", b.path.display().to_string()),
                ));
            }
        }
        let mut displays = HashSet::new();
        for t in &self.target {
            if !displays.insert(t.display) {
                return Err(self.invalid(
                    "target",
                    format!("\"{}\": more than one target for display :{}", t, t.display),
                ));
            }
        }
        if self.max_connections == 0 {
            return Err(self.invalid("max-connections", "must be at least 1"));
        }
        if self.max_connections_per_address == 0 {
            return Err(self.invalid("max-connections-per-address", "must be at least 1"));
        }
        // Only an explicit value is checked: the default (64) above a lowered
        // max-connections is harmless, the total limit applies first.
        if self.max_connections_per_address > self.max_connections
            && self.origins.contains_key("max-connections-per-address")
        {
            return Err(self.invalid(
                "max-connections-per-address",
                format!(
                    "{} is more than max-connections ({})",
                    self.max_connections_per_address, self.max_connections
                ),
            ));
        }
        if self.max_packet_size > u64::from(u32::MAX) {
            return Err(self.invalid(
                "max-packet-size",
                format!(
                    "{} is more than the 32-bit packet length can say",
                    self.max_packet_size
                ),
            ));
        }
        if self.max_initial_packet_size < 1024 {
            return Err(self.invalid("max-initial-packet-size", "must be at least 1KiB"));
        }
        if self.max_initial_packet_size > self.max_packet_size {
            return Err(self.invalid(
                "max-initial-packet-size",
                format!(
                    "{} is more than max-packet-size ({})",
                    self.max_initial_packet_size, self.max_packet_size
                ),
            ));
        }
        for (key, d) in [
            ("login-timeout", self.login_timeout),
            ("peek-timeout", self.peek_timeout),
            ("connect-timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(self.invalid(key, "must be more than 0"));
            }
        }
        if self.compression_level > 9 {
            return Err(self.invalid(
                "compression-level",
                format!("{}: must be 0 to 9", self.compression_level),
            ));
        }
        if self.ssl_key.is_some() && self.ssl_cert.is_none() {
            return Err(self.invalid("ssl-key", "ssl-key is set but ssl-cert is not"));
        }
        if self.ssl_client_verify_mode == Some(ClientVerifyMode::Required)
            && self.ssl_ca_certs.is_none()
        {
            return Err(self.invalid(
                "ssl-client-verify-mode",
                "\"required\" needs ssl-ca-certs to verify client certificates",
            ));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(self.invalid("state-dir", "empty path"));
        }
        Ok(())
    }

    /// A tracing `EnvFilter` directive for the `debug` categories, e.g.
    /// `xgate::auth=debug,xgate::network=debug` (`all`: `xgate=debug`); empty when `debug` is
    /// empty, so the caller keeps its default level.
    ///
    /// Categories: auth, network, proxy, registry, listener, upgrade, ssl, ws, http, ssh,
    /// encoder, supervisor, control, protocol (and all). Code logs with
    /// `target: "xgate::<category>"` to be selected.
    pub fn debug_filter(&self) -> String {
        if self.debug.contains(&DebugCategory::All) {
            return "xgate=debug".to_owned();
        }
        self.debug
            .iter()
            .map(|c| format!("{}=debug", c.target()))
            .collect::<Vec<_>>()
            .join(",")
    }
}
