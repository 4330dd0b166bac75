//! First-run state: the password file the embedded default configuration authenticates with.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;
use xgate_config::Config;

/// For every `file` auth module whose password file is missing under the state dir, creates it
/// with a random password (mode 0600) and returns the paths and passwords to print once. When
/// the gateway will drop root to `owner`, the state dir and the new files are given to that user
/// so that it can still read them.
pub(crate) fn ensure_password_files(
    cfg: &Config,
    owner: Option<(u32, u32)>,
) -> Result<Vec<(String, String)>, String> {
    let mut created = Vec::new();
    let specs = cfg
        .tcp_auth
        .iter()
        .chain(cfg.auth.iter())
        .chain(cfg.bind_tcp.iter().flat_map(|b| b.auth.iter()));
    for spec in specs {
        if spec.module != "file" {
            continue;
        }
        let Some(file) = spec.option("filename") else {
            continue;
        };
        let path = Path::new(file);
        if path.exists() || !path.starts_with(&cfg.state_dir) {
            continue;
        }
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| format!("state-dir {}: {e}", cfg.state_dir.display()))?;
        let _ = std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o700));
        let mut raw = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut raw);
        let password = hex::encode(raw);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // No trailing newline: xpra's `file` module takes the whole file as the password.
        f.write_all(password.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some((uid, gid)) = owner {
            for p in [path, cfg.state_dir.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", p.display()))?;
            }
        }
        created.push((path.display().to_string(), password));
    }
    Ok(created)
}
