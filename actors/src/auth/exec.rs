//! The `exec` auth module (xpra's `xpra/auth/exec.py`): runs a command for each connection and
//! lets the client in when it exits with 0.
//!
//! As in xpra, the command is split like a shell would (`shlex.split`) and run directly, without a
//! shell, after the substitutions are made in each argument: a value can never become shell
//! syntax. Substitutions (`${name}` or `$name`): `username` (the client's, reduced to letters and
//! digits as xpra's `alnum`), `display` (the display the client asked for, empty if none), `info`
//! (`Connection request from PEER`), `timeout` (seconds), `prompt`, `peer` and `transport`.
//! A command still running after `timeout=` seconds (default xpra's 600; 0 for none) is killed
//! and the client refused. `require-challenge=yes` (the password as an extra substitution) is not supported.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::backends::{BackendError, CheckContext};

/// xpra's `XPRA_EXEC_AUTH_TIMEOUT` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A configured `exec` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecAuth {
    /// The command's arguments before substitution (`command=`, split like a shell).
    pub argv: Vec<String>,
    /// How long the command may run (`timeout=`).
    pub timeout: Duration,
}

impl ExecAuth {
    /// From the module's options; `command=` is required (xpra's default runs a desktop dialog,
    /// which a gateway has no screen for).
    pub fn from_options(
        command: Option<&str>,
        timeout: Option<&str>,
        require_challenge: Option<&str>,
    ) -> Result<ExecAuth, BackendError> {
        let bad = |option: &'static str, reason: String| BackendError::BadOption {
            module: "exec".into(),
            option,
            reason,
        };
        let command = command.ok_or(BackendError::MissingOption {
            module: "exec".into(),
            option: "command",
        })?;
        let argv = shell_split(command).map_err(|r| bad("command", r))?;
        if argv.is_empty() {
            return Err(bad("command", "empty command".into()));
        }
        let timeout = match timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => Duration::from_secs(
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| bad("timeout", format!("'{t}' is not a number of seconds")))?,
            ),
        };
        if require_challenge
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "on"))
        {
            return Err(bad(
                "require-challenge",
                "not supported by xgate: the command gets no password".into(),
            ));
        }
        Ok(ExecAuth { argv, timeout })
    }

    /// The arguments for one connection, substitutions made.
    pub fn command_for(&self, ctx: &CheckContext) -> Vec<String> {
        let username: String = ctx
            .username
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let subs = [
            ("username", username),
            ("display", ctx.display.clone().unwrap_or_default()),
            ("info", format!("Connection request from {}", ctx.peer)),
            ("timeout", self.timeout.as_secs().to_string()),
            ("prompt", ctx.prompt.clone()),
            ("peer", ctx.peer.to_string()),
            ("transport", ctx.transport.clone()),
        ];
        self.argv.iter().map(|a| substitute(a, &subs)).collect()
    }

    /// Runs the command; `Ok(true)` when it exited with 0 within the timeout. Blocking.
    pub fn run(&self, ctx: &CheckContext) -> Result<bool, BackendError> {
        let argv = self.command_for(ctx);
        let failed = |reason: String| BackendError::Exec {
            command: argv[0].clone(),
            reason,
        };
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        // As in xpra, a zero timeout means none.
        let deadline = (!self.timeout.is_zero()).then(|| Instant::now() + self.timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    tracing::warn!(target: "xgate::auth", command = %argv[0], "exec auth: timed out after {}s", self.timeout.as_secs());
                    return Ok(false);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(failed(e.to_string())),
            }
        }
    }
}

/// xpra's `shellsub`: `${name}` and `$name` replaced by their values.
fn substitute(arg: &str, subs: &[(&str, String)]) -> String {
    let mut out = arg.to_string();
    for (name, value) in subs {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    for (name, value) in subs {
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// Splits a command line like POSIX `sh` (and Python's `shlex.split`): blanks separate words,
/// `'...'` is literal, `"..."` keeps blanks and honours `\"`, `\\`, `\$` and `` \` ``, and a
/// backslash outside quotes escapes the next character.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_messages::Peer;

    fn ctx(username: &str, display: Option<&str>) -> CheckContext {
        CheckContext {
            username: username.into(),
            display: display.map(str::to_string),
            peer: Peer::Tcp("127.0.0.1:5555".parse().expect("addr")),
            transport: "tcp".into(),
            certificate: None,
            prompt: "password".into(),
        }
    }

    #[test]
    fn splits_like_shlex() {
        assert_eq!(
            shell_split(r#"/bin/check "a b" 'c $d' e\ f "x\"y" ''"#).expect("split"),
            vec!["/bin/check", "a b", "c $d", "e f", "x\"y", ""]
        );
        assert!(shell_split("'open").is_err());
        assert!(shell_split("\"open").is_err());
        assert!(shell_split("a\\").is_err());
        assert!(shell_split("  ").expect("split").is_empty());
    }

    #[test]
    fn substitutions_cannot_inject() {
        let e = ExecAuth::from_options(
            Some("/bin/check ${username} --display=$display ${timeout}"),
            Some("7"),
            None,
        )
        .expect("exec");
        assert_eq!(
            e.command_for(&ctx("al;ice $(rm -rf /)", Some(":100"))),
            vec!["/bin/check", "alicermrf", "--display=:100", "7"]
        );
        assert!(ExecAuth::from_options(None, None, None).is_err());
        assert!(ExecAuth::from_options(Some("x"), Some("soon"), None).is_err());
        assert!(ExecAuth::from_options(Some("x"), None, Some("yes")).is_err());
        assert_eq!(
            ExecAuth::from_options(Some("x"), None, Some("no"))
                .expect("exec")
                .timeout,
            DEFAULT_TIMEOUT
        );
    }

    #[test]
    fn exit_status_decides_and_timeout_refuses() {
        let ok =
            ExecAuth::from_options(Some("sh -c 'test \"$0\" = alice' ${username}"), None, None)
                .expect("exec");
        assert_eq!(ok.run(&ctx("alice", None)).ok(), Some(true));
        assert_eq!(ok.run(&ctx("bob", None)).ok(), Some(false));
        let slow = ExecAuth::from_options(Some("sleep 5"), Some("1"), None).expect("exec");
        let t0 = Instant::now();
        assert_eq!(slow.run(&ctx("a", None)).ok(), Some(false));
        assert!(t0.elapsed() < Duration::from_secs(3));
        let missing =
            ExecAuth::from_options(Some("/nonexistent/xgate-check"), None, None).expect("exec");
        assert!(missing.run(&ctx("a", None)).is_err());
    }
}
