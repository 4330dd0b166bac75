//! Local session discovery (xpra's `DotXpra.socket_details` and `get_server_state`, protocol
//! reference §7): which xpra server sockets a uid owns in the socket dirs, and whether a server
//! answers on each.
//!
//! The scan is blocking filesystem work ([`find_sockets`]); the probes are async connects with a
//! timeout ([`probe`]); [`discover`] runs the first on tokio's blocking pool and the second
//! concurrently. Nothing is ever deleted (unlike `xpra list`).

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::net::UnixStream;

use crate::users;

/// How long a probe may wait for `connect()`, as xpra's `get_server_state(path, timeout=5)`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The state of a server socket, as xpra's `get_server_state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SocketState {
    /// `connect()` succeeded: a server is listening.
    Live,
    /// The path is gone (`ENOENT`) or the listen queue is full (`EWOULDBLOCK`).
    Dead,
    /// `EACCES`: the socket exists but this process may not connect to it.
    Inaccessible,
    /// `ECONNREFUSED` (maybe still starting, or its server died and left the file), a timeout, or
    /// any other error.
    Unknown,
}

impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketState::Live => "LIVE",
            SocketState::Dead => "DEAD",
            SocketState::Inaccessible => "INACCESSIBLE",
            SocketState::Unknown => "UNKNOWN",
        })
    }
}

/// A server socket found in a socket dir, before probing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketCandidate {
    /// The display it serves, normalised to `:N`.
    pub display: String,
    /// The socket's path.
    pub path: PathBuf,
}

/// A server socket found in a socket dir, with its probed state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DiscoveredSocket {
    /// The display it serves, normalised to `:N`.
    pub display: String,
    /// The socket's path.
    pub path: PathBuf,
    /// What the probe found.
    pub state: SocketState,
}

/// The host name in socket names `<HOSTNAME>-N`: `$XPRA_SOCKET_HOSTNAME`, else the kernel's
/// host name (what `gethostname()` returns), else `localhost`.
pub fn socket_hostname() -> String {
    if let Ok(name) = std::env::var("XPRA_SOCKET_HOSTNAME") {
        if !name.is_empty() {
            return name;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Expands the configured socket dirs for `uid` (`$UID`, `$XDG_RUNTIME_DIR` → `/run/user/<uid>`,
/// `~` and `$HOME` → that uid's home, `$USER`) and removes duplicates, keeping the first
/// occurrence. Two spellings of one existing directory (a symlink such as `/var/run` → `/run`)
/// count as one. A dir that still holds an unexpanded `~` or `$` (an unknown home, say) is left
/// out.
pub fn expand_socket_dirs(dirs: &[String], uid: u32) -> Vec<PathBuf> {
    let own = users::process_uid() == Some(uid);
    let mut vars = vec![("UID".to_owned(), uid.to_string())];
    let pw = users::by_uid(uid);
    let env_home = std::env::var("HOME").ok().filter(|_| own);
    if let Some(home) =
        env_home.or_else(|| pw.as_ref().map(|a| a.home.to_string_lossy().into_owned()))
    {
        vars.push(("HOME".to_owned(), home));
    }
    if let Some(account) = &pw {
        vars.push(("USER".to_owned(), account.name.clone()));
    }
    if let Some(xdg) = std::env::var("XDG_RUNTIME_DIR").ok().filter(|_| own) {
        vars.push(("XDG_RUNTIME_DIR".to_owned(), xdg));
    }
    let expander = xgate_config::Expander::with_vars(vars);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let expanded = expander.expand(dir);
        if expanded.is_empty() || expanded.starts_with('~') || expanded.contains('$') {
            tracing::debug!(target: "xgate::registry", dir = %dir, uid, "socket dir cannot be expanded for this uid, skipped");
            continue;
        }
        let path = PathBuf::from(expanded);
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(key) {
            out.push(path);
        }
    }
    out
}

/// `N` as a display number, or `None` when `name` is not all digits.
fn display_number(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Whether `path` is a unix socket owned by `uid` (following symlinks, as xpra's `os.stat`).
fn is_socket_of(path: &Path, uid: u32) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            tracing::trace!(target: "xgate::registry", path = %path.display(), "not a socket");
            false
        }
        Ok(meta) if meta.uid() != uid => {
            tracing::trace!(target: "xgate::registry", path = %path.display(), owner = meta.uid(), uid, "socket owned by another uid");
            false
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Lists the server sockets of `uid` in `dirs` (already expanded and de-duplicated), in dir
/// order and by name within a dir: `<dir>/N/socket` (xpra 4.3+) and `<dir>/<hostname>-N`.
/// Proxy-instance sockets (`<hostname>-proxy-PID`), other names, non-sockets and sockets owned
/// by other uids are skipped; missing dirs are skipped. Blocking.
pub fn find_sockets(dirs: &[PathBuf], uid: u32, hostname: &str) -> Vec<SocketCandidate> {
    let prefix = format!("{hostname}-");
    let mut out = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::trace!(target: "xgate::registry", dir = %dir.display(), error = %e, "socket dir not readable");
                continue;
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let (n, path) = if let Some(n) = display_number(&name) {
                (n, dir.join(&name).join("socket"))
            } else if let Some(suffix) = name.strip_prefix(&prefix) {
                if suffix.starts_with("proxy-") {
                    tracing::trace!(target: "xgate::registry", name = %name, "proxy instance socket skipped");
                    continue;
                }
                match display_number(suffix) {
                    Some(n) => (n, dir.join(&name)),
                    None => continue,
                }
            } else {
                continue;
            };
            if is_socket_of(&path, uid) {
                out.push(SocketCandidate {
                    display: format!(":{n}"),
                    path,
                });
            }
        }
    }
    out
}

/// The state xpra reports for a failed `connect()`.
pub fn state_for_error(err: &io::Error) -> SocketState {
    match err.raw_os_error() {
        Some(libc::EACCES) => SocketState::Inaccessible,
        Some(libc::ECONNREFUSED) => SocketState::Unknown,
        Some(code) if code == libc::ENOENT || code == libc::EWOULDBLOCK => SocketState::Dead,
        _ => SocketState::Unknown,
    }
}

/// Probes one socket: connects with `timeout` and closes at once without a word.
/// Success is LIVE; errors map as [`state_for_error`]; a timeout is UNKNOWN.
pub async fn probe(path: &Path, timeout: Duration) -> SocketState {
    match tokio::time::timeout(timeout, UnixStream::connect(path)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            SocketState::Live
        }
        Ok(Err(e)) => state_for_error(&e),
        Err(_) => SocketState::Unknown,
    }
}

/// Scans `dirs` for the sockets of `uid` (on the blocking pool) and probes them concurrently.
pub async fn discover(
    dirs: Vec<PathBuf>,
    uid: u32,
    hostname: String,
    timeout: Duration,
) -> Vec<DiscoveredSocket> {
    let candidates =
        match tokio::task::spawn_blocking(move || find_sockets(&dirs, uid, &hostname)).await {
            Ok(candidates) => candidates,
            Err(e) => {
                tracing::warn!(target: "xgate::registry", error = %e, "socket dir scan failed");
                return Vec::new();
            }
        };
    let probes = candidates.into_iter().map(|c| async move {
        let state = probe(&c.path, timeout).await;
        tracing::debug!(target: "xgate::registry", display = %c.display, path = %c.path.display(), %state, "probed");
        DiscoveredSocket {
            display: c.display,
            path: c.path,
            state,
        }
    });
    futures::future::join_all(probes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_follows_xpra() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert_eq!(state_for_error(&e(libc::EACCES)), SocketState::Inaccessible);
        assert_eq!(
            state_for_error(&e(libc::ECONNREFUSED)),
            SocketState::Unknown
        );
        assert_eq!(state_for_error(&e(libc::ENOENT)), SocketState::Dead);
        assert_eq!(state_for_error(&e(libc::EAGAIN)), SocketState::Dead);
        assert_eq!(state_for_error(&e(libc::EPERM)), SocketState::Unknown);
        let other = io::Error::other("x");
        assert_eq!(state_for_error(&other), SocketState::Unknown);
    }

    #[test]
    fn display_numbers() {
        assert_eq!(display_number("100"), Some(100));
        assert_eq!(display_number(""), None);
        assert_eq!(display_number("1a"), None);
        assert_eq!(display_number("+1"), None);
        assert_eq!(display_number("99999999999"), None);
    }

    #[test]
    fn dirs_expand_for_the_uid_and_deduplicate() {
        let dirs = vec![
            "/run/user/$UID/xpra".to_owned(),
            "/run/user/${UID}/xpra".to_owned(),
            "/run/xpra".to_owned(),
        ];
        let out = expand_socket_dirs(&dirs, 4242);
        assert_eq!(
            out,
            vec![
                PathBuf::from("/run/user/4242/xpra"),
                PathBuf::from("/run/xpra")
            ]
        );
    }

    #[test]
    fn runtime_dir_of_another_uid() {
        // a uid that is not this process's: no environment leaks in
        let uid = users::process_uid().map_or(4243, |u| u.wrapping_add(4243));
        let out = expand_socket_dirs(&["$XDG_RUNTIME_DIR/xpra".to_owned()], uid);
        assert_eq!(out, vec![PathBuf::from(format!("/run/user/{uid}/xpra"))]);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!socket_hostname().is_empty());
    }

    #[test]
    fn states_print_as_xpra() {
        assert_eq!(SocketState::Live.to_string(), "LIVE");
        assert_eq!(SocketState::Inaccessible.to_string(), "INACCESSIBLE");
    }
}
