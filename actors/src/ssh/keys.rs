//! Keys of the builtin SSH server: its host keys (from `ssh-host-key`, or generated once in the
//! state dir) and the users' `authorized_keys` files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::{AuthorizedKeys, LineEnding};
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use tracing::{debug, warn};

use crate::users;

/// The file name of the host key generated in the state dir.
pub const DEFAULT_HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// The `authorized_keys` path used when `ssh-authorized-keys` is unset (OpenSSH's default).
pub const DEFAULT_AUTHORIZED_KEYS: &str = "%h/.ssh/authorized_keys";

/// Why a host key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("ssh host key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The key file is not an unencrypted OpenSSH private key.
    #[error("ssh host key {path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Loads an OpenSSH private key file (unencrypted) as a host key.
pub fn load_host_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| KeyError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if key.is_encrypted() {
        return Err(KeyError::Format {
            path: path.display().to_string(),
            reason: "the key is encrypted; the gateway needs it without a passphrase".into(),
        });
    }
    Ok(key)
}

/// The host key in the state dir, generated (Ed25519, mode 0600, owned by `owner`) when it does
/// not exist yet. Returns its path and whether it was created now.
pub fn ensure_default_host_key(
    state_dir: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(PathBuf, bool), KeyError> {
    let path = state_dir.join(DEFAULT_HOST_KEY_FILE);
    if path.exists() {
        return Ok((path, false));
    }
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io)?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        "xgate host key",
    )
    .map_err(|e| KeyError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io)?;
    }
    Ok((path, true))
}

/// A host key's fingerprint as OpenSSH prints it (`SHA256:...`) with its algorithm.
pub fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

/// The `authorized_keys` file of `user`: `template` with OpenSSH's `AuthorizedKeysFile` tokens
/// replaced, `%u` by the user name, `%h` by the user's home directory, `%%` by `%`. `None` when
/// the template needs a home the user does not have (no such account).
pub fn authorized_keys_path(template: &str, user: &str) -> Option<PathBuf> {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(user),
            Some('h') => out.push_str(&users::by_name(user)?.home.to_string_lossy()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Some(PathBuf::from(out))
}

/// `authorized_keys` options that only take rights away, which the gateway (no shell, no
/// forwarding) grants none of anyway. A key with any other option (`from=`, `command=`,
/// `expiry-time=`, ...) is not used, since the gateway does not enforce those.
const HARMLESS_OPTIONS: &[&str] = &[
    "restrict",
    "no-pty",
    "no-port-forwarding",
    "no-agent-forwarding",
    "no-x11-forwarding",
    "no-user-rc",
];

/// Whether `key` is listed in the `authorized_keys` file at `path` (blocking: reads the file).
/// Unreadable files and unusable lines count as "not listed" and are logged.
pub fn is_authorized(path: &Path, key: &PublicKey) -> bool {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            debug!(target: "xgate::ssh", path = %path.display(), "no authorized_keys: {e}");
            return false;
        }
    };
    for (n, entry) in AuthorizedKeys::new(&text).enumerate() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warn!(target: "xgate::ssh", path = %path.display(), "authorized_keys entry {}: {e}", n + 1);
                continue;
            }
        };
        if entry.public_key().key_data() != key.key_data() {
            continue;
        }
        let options = entry.config_opts();
        let refused: Vec<&str> = options
            .iter()
            .filter(|o| {
                let name = o.split('=').next().unwrap_or(o);
                !HARMLESS_OPTIONS
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
            })
            .collect();
        if refused.is_empty() {
            return true;
        }
        warn!(target: "xgate::ssh", path = %path.display(), ?refused, "key listed with options the gateway does not enforce: not used");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_host_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (path, created) = ensure_default_host_key(dir.path(), None).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let key = load_host_key(&path).unwrap();
        let (again, created) = ensure_default_host_key(dir.path(), None).unwrap();
        assert!(!created);
        assert_eq!(
            load_host_key(&again).unwrap().public_key(),
            key.public_key()
        );
        assert!(fingerprint(key.public_key()).starts_with("ssh-ed25519 SHA256:"));
    }

    #[test]
    fn a_garbage_host_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "not a key").unwrap();
        assert!(matches!(load_host_key(&p), Err(KeyError::Format { .. })));
        assert!(matches!(
            load_host_key(&dir.path().join("missing")),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn path_tokens() {
        assert_eq!(
            authorized_keys_path("/etc/xgate/keys/%u.pub", "alice"),
            Some(PathBuf::from("/etc/xgate/keys/alice.pub"))
        );
        assert_eq!(
            authorized_keys_path("%h/.ssh/authorized_keys", "root"),
            Some(PathBuf::from("/root/.ssh/authorized_keys"))
        );
        assert_eq!(
            authorized_keys_path("/k/100%%/%x", "a"),
            Some(PathBuf::from("/k/100%/%x"))
        );
        assert_eq!(authorized_keys_path("%h/k", "no-such-user-here"), None);
    }

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::new(
            KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn authorized_keys_matching() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("authorized_keys");
        let a = key(1);
        let b = key(2);
        let c = key(3);
        let text = format!(
            "# comment\n\n{}\nno-pty,restrict {}\nfrom=\"10.0.0.1\" {}\n",
            a.public_key().to_openssh().unwrap(),
            b.public_key().to_openssh().unwrap(),
            c.public_key().to_openssh().unwrap(),
        );
        std::fs::write(&p, text).unwrap();
        assert!(is_authorized(&p, a.public_key()));
        assert!(is_authorized(&p, b.public_key()));
        // `from=` is not enforced by the gateway, so the key is not used.
        assert!(!is_authorized(&p, c.public_key()));
        assert!(!is_authorized(&p, key(4).public_key()));
        assert!(!is_authorized(&dir.path().join("none"), a.public_key()));
    }
}
