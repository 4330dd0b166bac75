//! Typed values parsed from xpra's option syntax.
//!
//! Every parser returns a [`ValueError`] (`"VALUE": reason`); the loader adds the key and the
//! origin. The parsers are public so that other crates (auth backends reading user databases,
//! the control socket) reuse exactly the same syntax.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use xgate_messages::TargetAddress;

use crate::error::ValueError;

/// xpra's default TCP port, used when a `tcp://` target omits the port.
pub const XPRA_DEFAULT_PORT: u16 = 14500;

/// An ordered list of `key=value` options: order matters (chained `auth=` options) and a key
/// may repeat, so this is a list and not a map.
pub type Options = Vec<(String, String)>;

/// Splits `text` on `sep` into `key=value` pairs (the value may contain further `=`).
/// Empty items are skipped; an item without `=` or with an empty key is refused.
pub fn parse_options(text: &str, sep: char) -> Result<Options, ValueError> {
    let mut out = Vec::new();
    for item in text.split(sep) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_owned(), v.trim().to_owned()))
            }
            _ => {
                return Err(ValueError::new(
                    text,
                    format!("option {item:?} is not of the form key=value"),
                ))
            }
        }
    }
    Ok(out)
}

/// Parses xpra's `session_options` / `env_options` strings (`k=v;k2=v2`), as found after a
/// target URI and in user databases (sqlite, multifile).
pub fn parse_session_options(text: &str) -> Result<Options, ValueError> {
    parse_options(text, ';')
}

fn option_value<'a>(options: &'a Options, key: &str) -> Option<&'a str> {
    options
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn write_options(f: &mut fmt::Formatter<'_>, options: &Options, sep: char) -> fmt::Result {
    for (k, v) in options {
        write!(f, "{sep}{k}={v}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Hosts and ports

/// The host part of a listener address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindHost {
    /// `*` or an empty host: every interface, as xpra does.
    Any,
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name, resolved when binding.
    Name(String),
}

impl fmt::Display for BindHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindHost::Any => f.write_str("*"),
            BindHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            BindHost::Ip(ip) => write!(f, "{ip}"),
            BindHost::Name(n) => f.write_str(n),
        }
    }
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {p:?}"));
    }
    p.parse::<u16>().map_err(|_| "port out of range".to_owned())
}

/// Splits `HOST:PORT`, `[V6]:PORT` (and, when `default_port` is given, `HOST` alone).
/// Returns the host text without brackets.
fn split_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("missing ']' after IPv6 address")?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 address {ip:?}"))?;
        let port = match (after.strip_prefix(':'), default_port) {
            (Some(p), _) => parse_port(p)?,
            (None, Some(d)) if after.is_empty() => d,
            _ => return Err("expected [IPV6]:PORT".to_owned()),
        };
        return Ok((ip.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => {
            Err("IPv6 addresses must be in brackets, e.g. [::1]:14501".to_owned())
        }
        Some((h, p)) => Ok((h.to_owned(), parse_port(p)?)),
        None => match default_port {
            Some(d) => Ok((s.to_owned(), d)),
            None => Err("expected HOST:PORT".to_owned()),
        },
    }
}

fn check_target_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() || valid_hostname(host) {
        Ok(())
    } else if host.is_empty() {
        Err("missing host".to_owned())
    } else {
        Err(format!("invalid host {host:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Listeners

/// A network listener: `HOST:PORT[,opt=value...]` (`bind-tcp`, `bind-ssl`, `bind-ws`,
/// `bind-wss`, `bind-ssh`).
///
/// Port 0 is allowed (tests bind an ephemeral port). Options are kept in order; every `auth=`
/// option is also parsed into [`BindSpec::auth`], the per-listener chain that overrides
/// `tcp-auth` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Address to bind.
    pub host: BindHost,
    /// Port to bind (0 = any free port).
    pub port: u16,
    /// All `opt=value` options as written, in order (including `auth=`).
    pub options: Options,
    /// The per-listener auth chain from `auth=` options. As in xpra, the listener's other
    /// options are socket options that every module of the chain also sees: they are merged
    /// into each module's options unless the module sets them itself. Empty = use the
    /// listener type's `*-auth` option.
    pub auth: Vec<AuthSpec>,
}

impl BindSpec {
    /// The value of option `key` (the last one if repeated).
    pub fn option(&self, key: &str) -> Option<&str> {
        option_value(&self.options, key)
    }
}

fn parse_listener_options(text: &str, raw: &str) -> Result<(Options, Vec<AuthSpec>), ValueError> {
    let options = parse_options(text, ',').map_err(|e| ValueError::new(raw, e.reason))?;
    let mut auth = Vec::new();
    for (k, v) in &options {
        if k == "auth" {
            let mut spec: AuthSpec = v
                .parse()
                .map_err(|e: ValueError| ValueError::new(raw, e.reason))?;
            for (k2, v2) in &options {
                if k2 != "auth" && spec.option(k2).is_none() {
                    spec.options.push((k2.clone(), v2.clone()));
                }
            }
            auth.push(spec);
        }
    }
    Ok((options, auth))
}

impl FromStr for BindSpec {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let (addr, opts) = s.split_once(',').unwrap_or((s, ""));
        let (host, port) = split_host_port(addr, None).map_err(|r| ValueError::new(raw, r))?;
        let host = if host.is_empty() || host == "*" {
            BindHost::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            BindHost::Ip(ip)
        } else if valid_hostname(&host) {
            BindHost::Name(host)
        } else {
            return Err(ValueError::new(raw, format!("invalid host {host:?}")));
        };
        let (options, auth) = parse_listener_options(opts, raw)?;
        Ok(BindSpec {
            host,
            port,
            options,
            auth,
        })
    }
}

impl fmt::Display for BindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        write_options(f, &self.options, ',')
    }
}

/// A unix-socket listener (`bind`): `PATH[,opt=value...]`.
///
/// The path is expanded (`~`, `$UID`, `$XDG_RUNTIME_DIR`, ...) when the configuration is
/// loaded. A leading `@` names a Linux abstract socket. `none` in the list is skipped, as
/// xpra's `--bind=none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixBindSpec {
    /// Socket path (expanded after loading).
    pub path: PathBuf,
    /// All options in order, including `auth=`.
    pub options: Options,
    /// Per-socket auth chain from `auth=` options (overrides `auth`), as for [`BindSpec`].
    pub auth: Vec<AuthSpec>,
}

impl UnixBindSpec {
    /// The value of option `key` (the last one if repeated).
    pub fn option(&self, key: &str) -> Option<&str> {
        option_value(&self.options, key)
    }
}

impl FromStr for UnixBindSpec {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let (path, opts) = s.split_once(',').unwrap_or((s, ""));
        if path.is_empty() {
            return Err(ValueError::new(raw, "missing socket path"));
        }
        if path.contains("://") {
            return Err(ValueError::new(
                raw,
                "expected a unix socket path (use bind-tcp for network addresses)",
            ));
        }
        let (options, auth) = parse_listener_options(opts, raw)?;
        Ok(UnixBindSpec {
            path: PathBuf::from(path),
            options,
            auth,
        })
    }
}

impl fmt::Display for UnixBindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        write_options(f, &self.options, ',')
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication modules

/// xpra's auth module names (§4.2 of the protocol notes). Whether xgate implements a given
/// module is for the auth crate to say; the configuration only refuses names that xpra
/// itself would not know, so that a typo is caught at start.
pub const KNOWN_AUTH_MODULES: &[&str] = &[
    "none",
    "allow",
    "fail",
    "reject",
    "env",
    "password",
    "file",
    "multifile",
    "sqlite",
    "sql",
    "mysql",
    "exec",
    "pam",
    "peercred",
    "hosts",
    "capability",
    "ratelimit",
    "otp",
    "u2f",
    "fido2",
    "kerberos-password",
    "kerberos-token",
    "kerberos-ticket",
    "gss",
    "ldap",
    "ldap3",
    "keycloak",
    "oauth",
    "http-header",
    "scram",
    // xgate's own: a plug-in actor with role = "auth" decides (docs/control.md).
    "hook",
    // xgate's own: a verified TLS client certificate's subject is the user name.
    "certificate",
];

/// One auth module with its options, in xpra's syntax: `name`, `name:opt=v,opt2=v`,
/// `name,opt=v` or `name(opt=v,...)`.
///
/// `sys` is normalised to `pam` as on Linux xpra. Option values may contain `=`; they cannot
/// contain `,` (xpra has no quoting either). A chain is a list of these (`tcp-auth` repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSpec {
    /// Module name, lower case, one of [`KNOWN_AUTH_MODULES`].
    pub module: String,
    /// Module options in order (e.g. `filename`, `value`, `uri`).
    pub options: Options,
}

impl AuthSpec {
    /// The value of option `key` (the last one if repeated).
    pub fn option(&self, key: &str) -> Option<&str> {
        option_value(&self.options, key)
    }
}

impl FromStr for AuthSpec {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let (name, opts) = match s.find([':', ',', '(']) {
            None => (s, ""),
            Some(i) if s[i..].starts_with('(') => match s[i + 1..].strip_suffix(')') {
                Some(inner) => (&s[..i], inner),
                None => return Err(ValueError::new(raw, "missing ')' after module options")),
            },
            Some(i) => (&s[..i], &s[i + 1..]),
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(ValueError::new(raw, "missing auth module name"));
        }
        let module = if name == "sys" {
            "pam".to_owned()
        } else {
            name
        };
        if !KNOWN_AUTH_MODULES.contains(&module.as_str()) {
            return Err(ValueError::new(
                raw,
                format!(
                    "unknown auth module {module:?} (known: {}, sys)",
                    KNOWN_AUTH_MODULES.join(", ")
                ),
            ));
        }
        let options = parse_options(opts, ',').map_err(|e| ValueError::new(raw, e.reason))?;
        let spec = AuthSpec { module, options };
        let required = match spec.module.as_str() {
            "file" | "multifile" => Some("filename"),
            "password" => Some("value"),
            _ => None,
        };
        if let Some(opt) = required {
            if spec.option(opt).is_none_or(str::is_empty) {
                return Err(ValueError::new(
                    raw,
                    format!("auth module {:?} needs the option {opt}=...", spec.module),
                ));
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for AuthSpec {
    /// Renders in the `name:opt=v,opt2=v` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.module)?;
        for (i, (k, v)) in self.options.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Targets and display strings

/// Where a session can be reached, as written in a display string or a `target`: the address
/// the gateway connects to and, for `tcp://`/`ssl://`, the display the URI's path names.
///
/// Forms: a unix socket path (`/run/user/1000/xpra/host-101`, `~/...`, `$XDG_RUNTIME_DIR/...`
/// or `socket:///path`), `tcp://host[:port]/[display]` (port 14500 by default),
/// `ssl://host[:port]/[display]` (443), `ws://host[:port]/path` (80), `wss://host[:port]/path`
/// (443) and `ssh://[user@]host[:port]/display` (22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUri {
    /// Where to connect: the actors' own [`TargetAddress`], so that what the configuration
    /// parsed is what the relay dials.
    pub address: TargetAddress,
    /// The display a `tcp://` or `ssl://` path names, normalised to `:N`. It is not part of
    /// the address (the server on that port is the session) but is kept so the URI reads back
    /// as written. An `ssh://` display is in the address: the remote `xpra _proxy` needs it.
    pub display: Option<String>,
}

impl TargetUri {
    /// A unix socket target.
    pub fn unix(path: impl Into<PathBuf>) -> TargetUri {
        TargetUri {
            address: TargetAddress::Unix { path: path.into() },
            display: None,
        }
    }
}

fn display_from_path(path: &str, raw: &str) -> Result<Option<String>, ValueError> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        return Ok(None);
    }
    let n = p.strip_prefix(':').unwrap_or(p);
    match n.parse::<u32>() {
        Ok(n) if n.to_string() == p.trim_start_matches(':') => Ok(Some(format!(":{n}"))),
        _ => Err(ValueError::new(
            raw,
            format!("display {p:?} is not a number"),
        )),
    }
}

impl FromStr for TargetUri {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        // `~` and `$VAR` paths are expanded when the configuration is loaded.
        if s.starts_with(['/', '~', '$']) {
            return Ok(TargetUri::unix(s));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(ValueError::new(
                raw,
                "expected a socket path or a URI such as tcp://host:port/",
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "socket" || scheme == "unix" {
            return if rest.starts_with('/') {
                Ok(TargetUri::unix(rest))
            } else {
                Err(ValueError::new(raw, "socket:// needs an absolute path"))
            };
        }
        let default_port = match scheme.as_str() {
            "tcp" => XPRA_DEFAULT_PORT,
            "ssl" | "wss" => 443,
            "ws" => 80,
            "ssh" => 22,
            other => {
                return Err(ValueError::new(
                    raw,
                    format!("unknown scheme {other:?} (expected tcp, ssl, ws, wss, ssh or socket)"),
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if let Some(u) = user {
            if scheme != "ssh" {
                return Err(ValueError::new(
                    raw,
                    "credentials in a target URI are not supported; use the session option password=...",
                ));
            }
            if u.is_empty() || u.contains(':') {
                return Err(ValueError::new(
                    raw,
                    "invalid ssh user (passwords do not belong in the URI)",
                ));
            }
        }
        let (host, port) =
            split_host_port(hostport, Some(default_port)).map_err(|r| ValueError::new(raw, r))?;
        check_target_host(&host).map_err(|r| ValueError::new(raw, r))?;
        let request_path = || {
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        };
        let (address, display) = match scheme.as_str() {
            "tcp" => (
                TargetAddress::Tcp { host, port },
                display_from_path(path, raw)?,
            ),
            "ssl" => (
                TargetAddress::Ssl { host, port },
                display_from_path(path, raw)?,
            ),
            "ws" => (
                TargetAddress::Ws {
                    host,
                    port,
                    path: request_path(),
                },
                None,
            ),
            "wss" => (
                TargetAddress::Wss {
                    host,
                    port,
                    path: request_path(),
                },
                None,
            ),
            _ => (
                TargetAddress::Ssh {
                    user: user.map(str::to_owned),
                    host,
                    port,
                    display: display_from_path(path, raw)?,
                },
                None,
            ),
        };
        Ok(TargetUri { address, display })
    }
}

impl fmt::Display for TargetUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The address ends in `/` for tcp:// and ssl://: the display number follows.
        write!(f, "{}", self.address)?;
        if let Some(d) = &self.display {
            f.write_str(d.trim_start_matches(':'))?;
        }
        Ok(())
    }
}

/// A display string as found in user databases and hello packets: a local display number or
/// a [`TargetUri`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// A local display `:N` (written `:N` or `N`), found through the socket dirs.
    Local(u32),
    /// A remote or explicitly addressed session.
    Remote(TargetUri),
}

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Display::Local(n) => write!(f, ":{n}"),
            Display::Remote(u) => u.fmt(f),
        }
    }
}

fn parse_display_number(s: &str) -> Option<u32> {
    let n = s.strip_prefix(':').unwrap_or(s);
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Parses a display string: `:100` or `100` (→ [`Display::Local`]), a unix socket path, or a
/// `tcp://` / `ssl://` / `ws://` / `wss://` / `ssh://` / `socket://` URI.
pub fn parse_display(text: &str) -> Result<Display, ValueError> {
    let s = text.trim();
    if let Some(n) = parse_display_number(s) {
        return Ok(Display::Local(n));
    }
    if s.starts_with(['/', '~', '$']) || s.contains("://") {
        return s
            .parse()
            .map(Display::Remote)
            .map_err(|e: ValueError| ValueError::new(text, e.reason));
    }
    Err(ValueError::new(
        text,
        "not a display (expected :N, N, a socket path or a URI such as tcp://host:port/)",
    ))
}

/// A static target (`target`, repeatable): `DISPLAY=URI[;k=v...]`, e.g.
/// `100=tcp://127.0.0.1:14600/;compression_level=0;password=x` or
/// `:101=/run/user/1000/xpra/host-101`.
///
/// Clients asking for display `:N` are relayed to `uri`, with `options` as the session options
/// (xpra's `session_options` syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The display number clients ask for (`N` of `:N`).
    pub display: u32,
    /// Where that session is.
    pub uri: TargetUri,
    /// Session options after the URI, in order.
    pub options: Options,
}

impl TargetSpec {
    /// The display as xpra writes it: `:N`.
    pub fn display_name(&self) -> String {
        format!(":{}", self.display)
    }
}

impl FromStr for TargetSpec {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let Some((display, rest)) = s.split_once('=') else {
            return Err(ValueError::new(
                raw,
                "expected DISPLAY=URI, e.g. 100=tcp://127.0.0.1:14600/",
            ));
        };
        let display = parse_display_number(display.trim()).ok_or_else(|| {
            ValueError::new(raw, format!("display {:?} is not :N or N", display.trim()))
        })?;
        let (uri, opts) = rest.split_once(';').unwrap_or((rest, ""));
        let uri: TargetUri = uri
            .parse()
            .map_err(|e: ValueError| ValueError::new(raw, e.reason))?;
        let options = parse_session_options(opts).map_err(|e| ValueError::new(raw, e.reason))?;
        if let Some(level) = option_value(&options, "compression_level") {
            if !matches!(level.parse::<u8>(), Ok(0..=9)) {
                return Err(ValueError::new(raw, "compression_level must be 0 to 9"));
            }
        }
        if let Some(mode) = option_value(&options, "reencode") {
            mode.parse::<ReencodeMode>()
                .map_err(|e| ValueError::new(raw, format!("reencode={mode}: {}", e.reason)))?;
        }
        Ok(TargetSpec {
            display,
            uri,
            options,
        })
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.display, self.uri)?;
        write_options(f, &self.options, ';')
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars

/// Parses a duration: an integer number of seconds as xpra writes them (`31`), or a number
/// with a unit: `500ms`, `31s`, `2m`/`2min`, `1h`; fractions such as `1.5s` are allowed.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let millis_per_unit: u64 = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1000,
        "ms" => 1,
        "m" | "min" | "mins" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(ValueError::new(
                text,
                format!("unknown duration unit {other:?} (use ms, s, m or h)"),
            ))
        }
    };
    if num.is_empty() {
        return Err(ValueError::new(
            text,
            "expected a number of seconds, e.g. 31 or \"500ms\"",
        ));
    }
    if num.contains('.') {
        let v: f64 = num
            .parse()
            .map_err(|_| ValueError::new(text, "invalid number"))?;
        return Duration::try_from_secs_f64(v * millis_per_unit as f64 / 1000.0)
            .map_err(|_| ValueError::new(text, "duration out of range"));
    }
    let v: u64 = num
        .parse()
        .map_err(|_| ValueError::new(text, "duration out of range"))?;
    v.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| ValueError::new(text, "duration out of range"))
}

/// Parses a size in bytes: an integer, or a number with a binary unit: `16K`/`16KB`/`16KiB`,
/// `16M`/`16MB`/`16MiB`, `1G`/`1GB`/`1GiB` (all multiples of 1024, as xpra's limits are).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(ValueError::new(
                text,
                format!("unknown size unit {other:?} (use K, M, G, KiB, MiB or GiB)"),
            ))
        }
    };
    if num.is_empty() {
        return Err(ValueError::new(
            text,
            "expected a size in bytes, e.g. 16777216 or \"16M\"",
        ));
    }
    num.parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(mult))
        .ok_or_else(|| ValueError::new(text, "size out of range"))
}

/// Parses xpra's boolean spellings: `yes/no`, `true/false`, `on/off`, `1/0`,
/// `enabled/disabled` (any case).
pub fn parse_bool(text: &str) -> Result<bool, ValueError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "enabled" => Ok(true),
        "no" | "false" | "off" | "0" | "disabled" => Ok(false),
        _ => Err(ValueError::new(
            text,
            "expected yes or no (true/false, on/off, 1/0)",
        )),
    }
}

/// A user or group for `uid` / `gid`: a number or a name, as xpra's `parse_uid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    /// A numeric id.
    Id(u32),
    /// A name, looked up in the password or group database by the binary.
    Name(String),
}

impl FromStr for UserSpec {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(UserSpec::Id)
                .map_err(|_| ValueError::new(raw, "id out of range"));
        }
        if s.is_empty()
            || s.starts_with('-')
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
        {
            return Err(ValueError::new(
                raw,
                "expected a user or group name or a number",
            ));
        }
        Ok(UserSpec::Name(s.to_owned()))
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserSpec::Id(n) => write!(f, "{n}"),
            UserSpec::Name(n) => f.write_str(n),
        }
    }
}

/// What runs inside TLS on a shared port (`ssl-mode`), as xpra's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Guess from the pre-TLS peek and ALPN, then from the decrypted stream (xpra's default).
    #[default]
    Auto,
    /// Always xpra over TLS (`ssl`).
    Tcp,
    /// Always HTTP over TLS (`wss` and the HTML client).
    Www,
}

impl FromStr for SslMode {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SslMode::Auto),
            "tcp" | "ssl" => Ok(SslMode::Tcp),
            "www" | "http" | "wss" => Ok(SslMode::Www),
            _ => Err(ValueError::new(raw, "expected auto, tcp or www")),
        }
    }
}

/// Whether the gateway re-encodes a session's pictures (the session option `reencode`, and the
/// global `reencode` that is its default): the server sends raw rgb and the gateway's EncoderPool
/// makes the video the client decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReencodeMode {
    /// Relay pictures unchanged.
    #[default]
    No,
    /// H.264 when the client decodes it, else VP8, else VP9.
    Auto,
    /// H.264 first.
    H264,
    /// VP8 first.
    Vp8,
    /// VP9 first.
    Vp9,
}

impl FromStr for ReencodeMode {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "no" | "false" | "0" | "off" | "none" => Ok(ReencodeMode::No),
            "yes" | "true" | "1" | "on" | "auto" => Ok(ReencodeMode::Auto),
            "h264" => Ok(ReencodeMode::H264),
            "vp8" => Ok(ReencodeMode::Vp8),
            "vp9" => Ok(ReencodeMode::Vp9),
            _ => Err(ValueError::new(
                raw,
                "expected yes, no, auto, h264, vp8 or vp9",
            )),
        }
    }
}

/// Whether TLS clients must present a certificate (`ssl-client-verify-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientVerifyMode {
    /// No client certificate is requested.
    None,
    /// A certificate is requested and checked if given.
    Optional,
    /// A valid client certificate is required.
    Required,
}

impl FromStr for ClientVerifyMode {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientVerifyMode::None),
            "optional" => Ok(ClientVerifyMode::Optional),
            "required" => Ok(ClientVerifyMode::Required),
            _ => Err(ValueError::new(raw, "expected none, optional or required")),
        }
    }
}

/// An xpra-like debug category (`debug`, `-d auth,network`).
///
/// Each maps to the tracing target `xgate::<name>`; crates log with
/// `tracing::debug!(target: "xgate::auth", ...)` so that `-d auth` selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DebugCategory {
    /// Every category (`all` or `*`): the whole `xgate` target tree.
    All,
    /// Authentication modules and challenges.
    Auth,
    /// Sockets, reads and writes.
    Network,
    /// Relaying between client and session.
    Proxy,
    /// Session discovery and the registry of targets.
    Registry,
    /// Listeners and accepted connections.
    Listener,
    /// Protocol sniffing and upgrades on shared ports.
    Upgrade,
    /// TLS.
    Ssl,
    /// WebSocket framing.
    Ws,
    /// HTTP requests and the HTML client.
    Http,
    /// The SSH server and client.
    Ssh,
    /// Video encoders.
    Encoder,
    /// Actor supervision and restarts.
    Supervisor,
    /// The control socket.
    Control,
    /// xpra packet framing and encoders (rencode, bencode).
    Protocol,
}

impl DebugCategory {
    /// Every category name accepted by `debug`, besides `all`.
    pub const NAMES: &'static [&'static str] = &[
        "auth",
        "network",
        "proxy",
        "registry",
        "listener",
        "upgrade",
        "ssl",
        "ws",
        "http",
        "ssh",
        "encoder",
        "supervisor",
        "control",
        "protocol",
    ];

    /// The tracing target this category enables.
    pub fn target(self) -> &'static str {
        match self {
            DebugCategory::All => "xgate",
            DebugCategory::Auth => "xgate::auth",
            DebugCategory::Network => "xgate::network",
            DebugCategory::Proxy => "xgate::proxy",
            DebugCategory::Registry => "xgate::registry",
            DebugCategory::Listener => "xgate::listener",
            DebugCategory::Upgrade => "xgate::upgrade",
            DebugCategory::Ssl => "xgate::ssl",
            DebugCategory::Ws => "xgate::ws",
            DebugCategory::Http => "xgate::http",
            DebugCategory::Ssh => "xgate::ssh",
            DebugCategory::Encoder => "xgate::encoder",
            DebugCategory::Supervisor => "xgate::supervisor",
            DebugCategory::Control => "xgate::control",
            DebugCategory::Protocol => "xgate::protocol",
        }
    }
}

impl FromStr for DebugCategory {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "all" | "*" => DebugCategory::All,
            "auth" => DebugCategory::Auth,
            "network" | "net" => DebugCategory::Network,
            "proxy" => DebugCategory::Proxy,
            "registry" => DebugCategory::Registry,
            "listener" => DebugCategory::Listener,
            "upgrade" => DebugCategory::Upgrade,
            "ssl" => DebugCategory::Ssl,
            "ws" | "websocket" => DebugCategory::Ws,
            "http" => DebugCategory::Http,
            "ssh" => DebugCategory::Ssh,
            "encoder" => DebugCategory::Encoder,
            "supervisor" => DebugCategory::Supervisor,
            "control" => DebugCategory::Control,
            "protocol" => DebugCategory::Protocol,
            _ => {
                return Err(ValueError::new(
                    raw,
                    format!(
                        "unknown debug category (known: all, {})",
                        Self::NAMES.join(", ")
                    ),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = ValueError> + fmt::Debug>(s: &str) -> String {
        s.parse::<T>().unwrap_err().to_string()
    }

    #[test]
    fn bind_spec_forms() {
        let b: BindSpec = "0.0.0.0:14501".parse().unwrap();
        assert_eq!(b.host, BindHost::Ip("0.0.0.0".parse().unwrap()));
        assert_eq!(b.port, 14501);
        assert!(b.options.is_empty() && b.auth.is_empty());

        let b: BindSpec = "[::1]:0".parse().unwrap();
        assert_eq!(b.host, BindHost::Ip("::1".parse().unwrap()));
        assert_eq!(b.port, 0);
        assert_eq!(b.to_string(), "[::1]:0");

        assert_eq!("*:14501".parse::<BindSpec>().unwrap().host, BindHost::Any);
        assert_eq!(":14501".parse::<BindSpec>().unwrap().host, BindHost::Any);
        assert_eq!(
            "localhost:1".parse::<BindSpec>().unwrap().host,
            BindHost::Name("localhost".into())
        );
    }

    #[test]
    fn bind_spec_auth_options() {
        let b: BindSpec = "0.0.0.0:14501,auth=sqlite,filename=/x.sdb,label=a=b"
            .parse()
            .unwrap();
        assert_eq!(
            b.options,
            vec![
                ("auth".to_owned(), "sqlite".to_owned()),
                ("filename".to_owned(), "/x.sdb".to_owned()),
                ("label".to_owned(), "a=b".to_owned()),
            ]
        );
        assert_eq!(b.option("label"), Some("a=b"));
        assert_eq!(b.auth.len(), 1);
        assert_eq!(b.auth[0].module, "sqlite");
        // socket options are shared with the module, as in xpra
        assert_eq!(b.auth[0].option("filename"), Some("/x.sdb"));

        let b: BindSpec = "127.0.0.1:1,auth=multifile:filename=u.txt,auth=allow"
            .parse()
            .unwrap();
        assert_eq!(b.auth.len(), 2);
        assert_eq!(b.auth[0].option("filename"), Some("u.txt"));
        assert_eq!(b.auth[1].module, "allow");
    }

    #[test]
    fn bind_spec_errors() {
        assert_eq!(
            err::<BindSpec>("0.0.0.0:99999"),
            r#""0.0.0.0:99999": port out of range"#
        );
        assert_eq!(
            err::<BindSpec>("0.0.0.0"),
            r#""0.0.0.0": expected HOST:PORT"#
        );
        assert_eq!(
            err::<BindSpec>("0.0.0.0:ab"),
            r#""0.0.0.0:ab": invalid port "ab""#
        );
        assert_eq!(
            err::<BindSpec>("::1:14501"),
            r#""::1:14501": IPv6 addresses must be in brackets, e.g. [::1]:14501"#
        );
        assert_eq!(
            err::<BindSpec>("[::1:1"),
            r#""[::1:1": missing ']' after IPv6 address"#
        );
        assert_eq!(
            err::<BindSpec>("[zz]:1"),
            r#""[zz]:1": invalid IPv6 address "zz""#
        );
        assert_eq!(err::<BindSpec>("a b:1"), r#""a b:1": invalid host "a b""#);
        assert_eq!(
            err::<BindSpec>("h:1,label"),
            r#""h:1,label": option "label" is not of the form key=value"#
        );
        assert!(err::<BindSpec>("h:1,auth=bogus").contains("unknown auth module \"bogus\""));
    }

    #[test]
    fn unix_bind_spec() {
        let b: UnixBindSpec = "$XDG_RUNTIME_DIR/xgate.sock,auth=peercred".parse().unwrap();
        assert_eq!(b.path, PathBuf::from("$XDG_RUNTIME_DIR/xgate.sock"));
        assert_eq!(b.auth[0].module, "peercred");
        assert_eq!(
            err::<UnixBindSpec>(",auth=none"),
            r#"",auth=none": missing socket path"#
        );
        assert!(err::<UnixBindSpec>("tcp://h:1").contains("expected a unix socket path"));
    }

    #[test]
    fn auth_spec_forms() {
        let forms = [
            "multifile,filename=x",
            "multifile:filename=x",
            "multifile(filename=x)",
        ];
        for f in forms {
            let a: AuthSpec = f.parse().unwrap();
            assert_eq!(a.module, "multifile", "{f}");
            assert_eq!(
                a.options,
                vec![("filename".to_owned(), "x".to_owned())],
                "{f}"
            );
        }
        let a: AuthSpec = "sqlite(filename=x)".parse().unwrap();
        assert_eq!(
            (a.module.as_str(), a.option("filename")),
            ("sqlite", Some("x"))
        );
        let a: AuthSpec = "sys".parse().unwrap();
        assert_eq!(a.module, "pam");
        let a: AuthSpec = "none".parse().unwrap();
        assert!(a.options.is_empty());
        let a: AuthSpec = "password:value=a=b=c".parse().unwrap();
        assert_eq!(a.option("value"), Some("a=b=c"));
        let a: AuthSpec = "exec:command=/bin/check ${username},timeout=5"
            .parse()
            .unwrap();
        assert_eq!(a.option("command"), Some("/bin/check ${username}"));
        assert_eq!(
            a.to_string(),
            "exec:command=/bin/check ${username},timeout=5"
        );
        let a: AuthSpec = "SQLite:filename=y".parse().unwrap();
        assert_eq!(a.module, "sqlite");
    }

    #[test]
    fn auth_spec_errors() {
        assert!(err::<AuthSpec>("bogus")
            .starts_with(r#""bogus": unknown auth module "bogus" (known: none, allow"#));
        assert_eq!(err::<AuthSpec>(""), r#""": missing auth module name"#);
        assert_eq!(
            err::<AuthSpec>(":x=1"),
            r#"":x=1": missing auth module name"#
        );
        assert_eq!(
            err::<AuthSpec>("sqlite(filename=x"),
            r#""sqlite(filename=x": missing ')' after module options"#
        );
        assert_eq!(
            err::<AuthSpec>("multifile"),
            r#""multifile": auth module "multifile" needs the option filename=..."#
        );
        assert_eq!(
            err::<AuthSpec>("password"),
            r#""password": auth module "password" needs the option value=..."#
        );
        assert_eq!(
            err::<AuthSpec>("sqlite,filename"),
            r#""sqlite,filename": option "filename" is not of the form key=value"#
        );
    }

    #[test]
    fn display_strings() {
        assert_eq!(parse_display(":100").unwrap(), Display::Local(100));
        assert_eq!(parse_display("100").unwrap(), Display::Local(100));
        assert_eq!(parse_display("100").unwrap().to_string(), ":100");
        assert_eq!(
            parse_display("tcp://192.168.1.200:10100/").unwrap(),
            Display::Remote(TargetUri {
                address: TargetAddress::Tcp {
                    host: "192.168.1.200".into(),
                    port: 10100,
                },
                display: None
            })
        );
        assert_eq!(
            parse_display("tcp://h:1/100").unwrap(),
            Display::Remote(TargetUri {
                address: TargetAddress::Tcp {
                    host: "h".into(),
                    port: 1,
                },
                display: Some(":100".into())
            })
        );
        assert_eq!(
            parse_display("tcp://h").unwrap(),
            Display::Remote(TargetUri {
                address: TargetAddress::Tcp {
                    host: "h".into(),
                    port: 14500,
                },
                display: None
            })
        );
        assert_eq!(
            parse_display("ssh://u@h:22/100").unwrap(),
            Display::Remote(TargetUri {
                address: TargetAddress::Ssh {
                    user: Some("u".into()),
                    host: "h".into(),
                    port: 22,
                    display: Some(":100".into())
                },
                display: None
            })
        );
        assert_eq!(
            parse_display("ssh://h/:7").unwrap().to_string(),
            "ssh://h:22/7"
        );
        assert_eq!(
            parse_display("/run/user/1000/xpra/host-101").unwrap(),
            Display::Remote(TargetUri::unix("/run/user/1000/xpra/host-101"))
        );
        assert_eq!(
            parse_display("socket:///run/x").unwrap(),
            Display::Remote(TargetUri::unix("/run/x"))
        );
        assert_eq!(
            parse_display("ws://[::1]:8080/x").unwrap(),
            Display::Remote(TargetUri {
                address: TargetAddress::Ws {
                    host: "::1".into(),
                    port: 8080,
                    path: "/x".into()
                },
                display: None
            })
        );
        assert_eq!(
            parse_display("wss://h").unwrap().to_string(),
            "wss://h:443/"
        );
        assert_eq!(
            parse_display("ssl://h/3").unwrap().to_string(),
            "ssl://h:443/3"
        );
    }

    #[test]
    fn display_string_errors() {
        let e = |s: &str| parse_display(s).unwrap_err().to_string();
        assert_eq!(
            e("foo"),
            r#""foo": not a display (expected :N, N, a socket path or a URI such as tcp://host:port/)"#
        );
        assert_eq!(
            e("vnc://h:1/"),
            r#""vnc://h:1/": unknown scheme "vnc" (expected tcp, ssl, ws, wss, ssh or socket)"#
        );
        assert_eq!(
            e("tcp://h:70000/"),
            r#""tcp://h:70000/": port out of range"#
        );
        assert_eq!(
            e("tcp://h:1/abc"),
            r#""tcp://h:1/abc": display "abc" is not a number"#
        );
        assert_eq!(e("tcp://:1/"), r#""tcp://:1/": missing host"#);
        assert!(e("tcp://u:p@h:1/").contains("credentials in a target URI are not supported"));
        assert!(e("ssh://u:p@h/1").contains("invalid ssh user"));
    }

    #[test]
    fn target_specs() {
        let t: TargetSpec = "100=tcp://127.0.0.1:14600/;compression_level=0;password=x"
            .parse()
            .unwrap();
        assert_eq!(t.display, 100);
        assert_eq!(t.display_name(), ":100");
        assert_eq!(
            t.uri,
            TargetUri {
                address: TargetAddress::Tcp {
                    host: "127.0.0.1".into(),
                    port: 14600,
                },
                display: None
            }
        );
        assert_eq!(
            t.options,
            vec![
                ("compression_level".to_owned(), "0".to_owned()),
                ("password".to_owned(), "x".to_owned())
            ]
        );
        assert_eq!(
            t.to_string(),
            "100=tcp://127.0.0.1:14600/;compression_level=0;password=x"
        );
        let t: TargetSpec = ":101=/run/user/1000/xpra/host-101".parse().unwrap();
        assert_eq!(t.display, 101);
        assert_eq!(t.uri, TargetUri::unix("/run/user/1000/xpra/host-101"));
        let t: TargetSpec = "7=ssh://bob@example.org:2222/3".parse().unwrap();
        assert!(matches!(
            t.uri.address,
            TargetAddress::Ssh { port: 2222, .. }
        ));

        assert_eq!(
            err::<TargetSpec>("x=tcp://h:1/"),
            r#""x=tcp://h:1/": display "x" is not :N or N"#
        );
        assert_eq!(
            err::<TargetSpec>("100"),
            r#""100": expected DISPLAY=URI, e.g. 100=tcp://127.0.0.1:14600/"#
        );
        assert!(
            err::<TargetSpec>("100=tcp://h:1/;reencode=webp").contains("reencode=webp"),
            "{}",
            err::<TargetSpec>("100=tcp://h:1/;reencode=webp")
        );
        assert!("100=tcp://h:1/;reencode=VP9".parse::<TargetSpec>().is_ok());
        assert_eq!("yes".parse::<ReencodeMode>().unwrap(), ReencodeMode::Auto);
        assert_eq!(" off ".parse::<ReencodeMode>().unwrap(), ReencodeMode::No);
        assert_eq!("H264".parse::<ReencodeMode>().unwrap(), ReencodeMode::H264);
        assert_eq!(
            err::<TargetSpec>("100=tcp://h:1/;compression_level=10"),
            r#""100=tcp://h:1/;compression_level=10": compression_level must be 0 to 9"#
        );
        assert_eq!(
            err::<TargetSpec>("100=ftp://h/"),
            r#""100=ftp://h/": unknown scheme "ftp" (expected tcp, ssl, ws, wss, ssh or socket)"#
        );
        assert_eq!(
            err::<TargetSpec>("100=relative/path"),
            r#""100=relative/path": expected a socket path or a URI such as tcp://host:port/"#
        );
    }

    #[test]
    fn session_options() {
        assert_eq!(
            parse_session_options("A=1;B=x=y;").unwrap(),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned())
            ]
        );
        assert_eq!(
            parse_session_options("A").unwrap_err().to_string(),
            r#""A": option "A" is not of the form key=value"#
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("31").unwrap(), Duration::from_secs(31));
        assert_eq!(parse_duration("31s").unwrap(), Duration::from_secs(31));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("5d").unwrap_err().to_string(),
            r#""5d": unknown duration unit "d" (use ms, s, m or h)"#
        );
        assert_eq!(
            parse_duration("s").unwrap_err().to_string(),
            r#""s": expected a number of seconds, e.g. 31 or "500ms""#
        );
        assert_eq!(
            parse_duration("99999999999999999999h")
                .unwrap_err()
                .to_string(),
            r#""99999999999999999999h": duration out of range"#
        );
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(
            parse_size("16Q").unwrap_err().to_string(),
            r#""16Q": unknown size unit "q" (use K, M, G, KiB, MiB or GiB)"#
        );
        assert_eq!(
            parse_size("99999999999G").unwrap_err().to_string(),
            r#""99999999999G": size out of range"#
        );
    }

    #[test]
    fn scalars() {
        for y in ["yes", "True", "on", "1"] {
            assert!(parse_bool(y).unwrap());
        }
        for n in ["no", "false", "OFF", "0"] {
            assert!(!parse_bool(n).unwrap());
        }
        assert!(parse_bool("maybe").is_err());
        assert_eq!("1000".parse::<UserSpec>().unwrap(), UserSpec::Id(1000));
        assert_eq!(
            "xgate".parse::<UserSpec>().unwrap(),
            UserSpec::Name("xgate".into())
        );
        assert!("a b".parse::<UserSpec>().is_err());
        assert_eq!("www".parse::<SslMode>().unwrap(), SslMode::Www);
        assert!("x".parse::<SslMode>().is_err());
        assert_eq!(
            "required".parse::<ClientVerifyMode>().unwrap(),
            ClientVerifyMode::Required
        );
        assert_eq!(
            "net".parse::<DebugCategory>().unwrap(),
            DebugCategory::Network
        );
        assert!(err::<DebugCategory>("bogus")
            .starts_with(r#""bogus": unknown debug category (known: all, auth"#));
    }
}
