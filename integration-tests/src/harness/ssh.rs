//! OpenSSH's tools for the SSH tests: client keys, known_hosts files for the gateway's host key,
//! and `ssh`/`sshpass` command lines that read nothing from the invoking user's own `~/.ssh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::proc::{run_with_timeout, CmdOutput};

/// Debian's OpenSSH client.
pub const SSH: &str = "/usr/bin/ssh";
/// Debian's key tool.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// Debian's `sshpass`, which xpra's OpenSSH backend uses for a password in the URL.
pub const SSHPASS: &str = "/usr/bin/sshpass";

/// Panics with the install hint unless `tool` exists.
pub fn require(tool: &str) {
    assert!(
        Path::new(tool).exists(),
        "{tool} is missing: run scripts/setup-deps (Debian's openssh-client, openssh-server, sshpass)"
    );
}

/// Makes an unencrypted key pair `PATH` and `PATH.pub` of type `kind` (`rsa`, `ed25519`).
pub fn keygen(path: &Path, kind: &str) -> PathBuf {
    require(SSH_KEYGEN);
    let _ = std::fs::remove_file(path);
    let mut c = Command::new(SSH_KEYGEN);
    c.args(["-q", "-t", kind, "-N", "", "-C", "xgate-test", "-f"])
        .arg(path);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    run_with_timeout(&mut c, Duration::from_secs(30)).expect_success();
    path.with_extension("pub")
}

/// What `ssh-keygen OPTION -f KEY` prints; panics unless it succeeds.
fn keygen_read(option: &str, key: &Path) -> String {
    require(SSH_KEYGEN);
    let out = run_with_timeout(
        Command::new(SSH_KEYGEN).arg(option).arg("-f").arg(key),
        Duration::from_secs(30),
    );
    out.expect_success();
    out.stdout
}

/// The public key (`TYPE BASE64`) of a private key file, as `ssh-keygen -y` prints it.
pub fn public_key_of(private: &Path) -> String {
    keygen_read("-y", private).trim().to_string()
}

/// The SHA-256 fingerprint (`SHA256:...`) of a key file, as `ssh-keygen -l` prints it.
pub fn fingerprint_of(key: &Path) -> String {
    keygen_read("-l", key)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// A known_hosts file naming `host_key` (`TYPE BASE64`) for 127.0.0.1 bare (xpra 3.1.3's
/// paramiko looks up the host without its port) and for `[127.0.0.1]:PORT` of each port (6.5.5
/// and OpenSSH).
pub fn write_known_hosts(path: &Path, host_key: &str, ports: &[u16]) {
    let mut text = format!("127.0.0.1 {host_key}\n");
    for p in ports {
        text.push_str(&format!("[127.0.0.1]:{p} {host_key}\n"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the known_hosts directory");
    }
    std::fs::write(path, text).expect("write known_hosts");
}

/// OpenSSH client options that use only `known_hosts` (strictly) and, if given, `key`: nothing
/// from the invoking user's `~/.ssh` or agent.
pub fn client_options(known_hosts: &Path, key: Option<&Path>) -> Vec<String> {
    let mut o = vec![
        "-F".to_string(),
        "/dev/null".to_string(),
        "-o".to_string(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".to_string(),
        "GlobalKnownHostsFile=/dev/null".to_string(),
        "-o".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        "-o".to_string(),
        "IdentitiesOnly=yes".to_string(),
        "-o".to_string(),
        "IdentityAgent=none".to_string(),
        "-o".to_string(),
        "ConnectTimeout=20".to_string(),
    ];
    match key {
        Some(k) => {
            o.push("-i".into());
            o.push(k.display().to_string());
            o.push("-o".into());
            o.push("PasswordAuthentication=no".into());
            o.push("-o".into());
            o.push("KbdInteractiveAuthentication=no".into());
        }
        None => {
            o.push("-o".into());
            o.push("PubkeyAuthentication=no".into());
        }
    }
    o
}

/// `ssh OPTIONS -p PORT USER@127.0.0.1 [COMMAND]`, with `password` through sshpass when given;
/// stdin is empty.
pub fn ssh_command(
    options: &[String],
    port: u16,
    user: &str,
    password: Option<&str>,
    command: Option<&str>,
) -> CmdOutput {
    require(SSH);
    let mut c = match password {
        Some(p) => {
            require(SSHPASS);
            let mut c = Command::new(SSHPASS);
            c.arg("-e").arg(SSH).env("SSHPASS", p);
            c
        }
        None => Command::new(SSH),
    };
    c.args(options)
        .arg("-p")
        .arg(port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .stdin(std::process::Stdio::null());
    if let Some(cmd) = command {
        c.arg(cmd);
    }
    run_with_timeout(&mut c, Duration::from_secs(60))
}

/// Debian's OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A private OpenSSH server on 127.0.0.1 (`sshd -D -e -f CONFIG`, not a daemon), with its own
/// host key and an `authorized_keys` file for the test user only; killed on drop.
#[derive(Debug)]
pub struct Sshd {
    /// The port it listens on.
    pub port: u16,
    /// Its host key's public half (`TYPE BASE64`), for known_hosts files.
    pub host_key: String,
    /// The server process; its log holds sshd's own (`-e`).
    pub process: super::proc::Guarded,
}

impl Sshd {
    /// Starts sshd in `dir` letting `user` in with `authorized_key` (a public key line), and
    /// waits (bounded) until it accepts connections.
    pub fn start(dir: &Path, user: &str, authorized_key: &str) -> Sshd {
        require(SSHD);
        // Privilege separation needs its empty directory (systemd makes it on a booted host).
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let host_key = dir.join("sshd_host_ed25519_key");
        keygen(&host_key, "ed25519");
        let keys_dir = dir.join("sshd-authorized");
        std::fs::create_dir_all(&keys_dir).expect("create the authorized keys dir");
        std::fs::write(keys_dir.join(user), format!("{authorized_key}\n"))
            .expect("write authorized_keys");
        super::set_mode(&keys_dir.join(user), 0o644);
        let port = super::alloc::free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}/%u\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowUsers {user}\nPrintMotd no\n\
                 LogLevel VERBOSE\n",
                host_key.display(),
                dir.join("sshd.pid").display(),
                keys_dir.display()
            ),
        )
        .expect("write sshd_config");
        let mut process = super::proc::Guarded::spawn(
            "sshd",
            Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config),
            &dir.join("sshd.log"),
        );
        let up = super::proc::wait_until(Duration::from_secs(15), || {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(true);
            }
            (!process.running()).then_some(false)
        });
        assert_eq!(
            up,
            Some(true),
            "sshd did not start on port {port}\n{}",
            process.log_tail()
        );
        Sshd {
            port,
            host_key: public_key_of(&host_key),
            process,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(3));
    }
}
