//! SSH logins against the auth chains: the builtin SSH server asks the Authenticator whether a
//! `password` (or `none`) login may proceed, through the same chain (`ssh-auth`, falling back to
//! `tcp-auth`, or the listener's `auth=`) and the same failure limits as xpra's own handshake.
//! Once SSH has authenticated a user, its xpra channels carry no challenge: the handshake then
//! only looks up the user's sessions ([`grant_for_verified`]).

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use subtle::ConstantTimeEq;
use tracing::info;
use xgate_messages::ConnectionInfo;

use super::backends::{Backend, CheckContext, Grant, Role};
use super::handshake::{blocking, failed, grant_of, lock, refuse, Refusal, Shared};
use super::{AuthSettings, Authenticator};

/// What an SSH client proved.
#[derive(Debug, Clone)]
pub enum SshProof {
    /// Nothing (SSH's `none` method): accepted only where the chain is `none`.
    Nothing,
    /// A password (SSH's `password` method), checked against the chain's passwords.
    Password(String),
}

/// Asks the Authenticator whether an SSH login may proceed.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), SshLoginRefused>")]
pub struct SshLogin {
    /// The connection (its listener picks the chain).
    pub info: ConnectionInfo,
    /// The SSH user name.
    pub username: String,
    /// What the client proved.
    pub proof: SshProof,
}

/// Why an SSH login was refused (logged; the client only learns that it failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshLoginRefused {
    /// The chain does not let this method in (`none` where the chain is not `none`).
    #[error("method not allowed by {0}")]
    MethodNotAllowed(&'static str),
    /// The address or the user is refused for a while after too many failures.
    #[error("too many authentication failures")]
    Banned,
    /// The password is wrong, or a module refused the user.
    #[error("authentication failed")]
    Failed,
    /// A backend could not be consulted.
    #[error("auth backend failed")]
    Backend,
}

impl Handler<SshLogin> for Authenticator {
    type Result = ResponseFuture<Result<(), SshLoginRefused>>;

    fn handle(&mut self, msg: SshLogin, _ctx: &mut Self::Context) -> Self::Result {
        let shared = Arc::clone(&self.shared);
        let settings = Arc::clone(&self.settings);
        Box::pin(async move { check(&shared, &settings, msg).await })
    }
}

/// Runs the chain for an SSH login.
async fn check(
    shared: &Shared,
    settings: &AuthSettings,
    login: SshLogin,
) -> Result<(), SshLoginRefused> {
    let SshLogin {
        info,
        username,
        proof,
    } = login;
    let chain = settings.chain_for(&info);
    let checking: Vec<&Backend> = chain
        .iter()
        .filter(|b| b.role() != Role::Sessions)
        .collect();
    let password = match proof {
        SshProof::Nothing => {
            return if !checking.is_empty() && checking.iter().all(|b| matches!(b, Backend::None)) {
                Ok(())
            } else {
                Err(SshLoginRefused::MethodNotAllowed(
                    info.transport.auth_option(),
                ))
            };
        }
        SshProof::Password(p) => p,
    };
    let now = Instant::now();
    if lock(&shared.by_address)
        .banned_for(&info.peer.limit_key(), now)
        .is_some()
        || lock(&shared.by_user).banned_for(&username, now).is_some()
    {
        info!(target: "xgate::ssh", id = %info.id, peer = %info.peer, user = %username, "refused: too many authentication failures");
        return Err(SshLoginRefused::Banned);
    }
    if checking.is_empty() {
        // Without a module there are no sessions to offer either (as in the xpra handshake).
        return Err(SshLoginRefused::MethodNotAllowed(
            info.transport.auth_option(),
        ));
    }
    let ctx = context(&info, &username);
    let given = xgate_protocol::digest::password_bytes(&password);
    for backend in checking {
        let user = user_for(backend, &username);
        if matches!(backend, Backend::Fail) {
            failed(shared, &info, Some(&username), "fail module").await;
            return Err(SshLoginRefused::Failed);
        }
        if backend.decides() {
            let (b, c) = (backend.clone(), ctx.clone());
            let allowed = blocking(backend, move || b.decide(&c))
                .await
                .map_err(|_| SshLoginRefused::Backend)?;
            if !allowed {
                let why = format!("{} refused the client", backend.name());
                failed(shared, &info, Some(&username), &why).await;
                return Err(SshLoginRefused::Failed);
            }
        }
        if backend.needs_challenge() {
            let (b, u) = (backend.clone(), user.clone());
            let matched = if backend.wants_plain_password() {
                // `pam`: the module checks the password itself (SSH carried it in clear,
                // inside the encrypted session).
                let plain = given.clone();
                blocking(backend, move || b.check_password(&u, &plain))
                    .await
                    .map_err(|_| SshLoginRefused::Backend)?
            } else {
                let passwords = blocking(backend, move || b.passwords(&u))
                    .await
                    .map_err(|_| SshLoginRefused::Backend)?;
                // `None`: any password (`allow`). Every candidate is compared, in constant time.
                passwords.is_none_or(|list| {
                    list.iter()
                        .fold(false, |ok, p| ok | bool::from(p.ct_eq(&given)))
                })
            };
            if !matched {
                let _ = lock(&shared.by_user).record(&username, Instant::now());
                let why = format!("{}: wrong password", backend.name());
                failed(shared, &info, Some(&user), &why).await;
                return Err(SshLoginRefused::Failed);
            }
        }
    }
    info!(target: "xgate::ssh", id = %info.id, peer = %info.peer, user = %username, "password accepted");
    Ok(())
}

/// The user name a module checks: the client's for modules that take it from the client
/// (multifile, sql, exec, hook), the gateway's own for the others (as in the xpra handshake).
fn user_for(backend: &Backend, username: &str) -> String {
    if backend.uses_client_username() {
        username.to_string()
    } else {
        crate::users::own_name()
    }
}

fn context(info: &ConnectionInfo, username: &str) -> CheckContext {
    CheckContext {
        username: username.to_string(),
        display: info.request_path.clone(),
        peer: info.peer.clone(),
        transport: info.transport.to_string(),
        prompt: "password".into(),
        certificate: None,
    }
}

/// The sessions of a user SSH already authenticated: from the chain's `role=sessions` module,
/// else from its first module that supplies sessions (a multifile or database row of that user,
/// the socket scan for the others), as at the end of the xpra handshake. A chain with `fail` or
/// `reject` refuses everyone, key logins included. Modules that decide without a password
/// (`exec`, `peercred`, `hook`) are not consulted for key logins.
pub(super) async fn grant_for_verified(
    settings: &AuthSettings,
    info: &ConnectionInfo,
    username: &str,
) -> Result<Grant, Refusal> {
    let chain = settings.chain_for(info);
    // A chain that lets nobody in (`fail`, `reject`) lets no SSH key in either.
    if let Some(closed) = chain
        .iter()
        .find(|b| b.role() != Role::Sessions && matches!(b.name(), "fail" | "reject"))
    {
        info!(target: "xgate::ssh", id = %info.id, user = %username, "refused: the chain has '{}'", closed.name());
        return Err(refuse(
            "authentication failed",
            "this gateway lets nobody in",
        ));
    }
    let backend = chain
        .iter()
        .find(|b| b.role() == Role::Sessions)
        .or_else(|| chain.iter().find(|b| b.supplies_sessions()))
        .ok_or_else(|| refuse("session not found error", "no sessions found"))?;
    let user = if backend.role() == Role::Sessions {
        username.to_string()
    } else {
        user_for(backend, username)
    };
    grant_of(backend, user, None, &context(info, username)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::GatewayIdentity;
    use xgate_messages::{ConnectionId, ListenerInfo, Peer, SessionSource, TransportKind};

    fn settings(ssh_auth: &[&str]) -> AuthSettings {
        let mut cfg = xgate_config::Config::default();
        cfg.ssh_auth = ssh_auth.iter().map(|s| s.parse().unwrap()).collect();
        AuthSettings::from_config(&cfg, GatewayIdentity::new()).unwrap()
    }

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            id: ConnectionId(1),
            peer: Peer::Tcp("127.0.0.1:5".parse().unwrap()),
            listener: ListenerInfo {
                name: "ssh:127.0.0.1:0".into(),
                kind: TransportKind::Ssh,
                auth: None,
            },
            transport: TransportKind::Ssh,
            client_certificate: None,
            request_path: Some("100".into()),
        }
    }

    #[tokio::test]
    async fn a_key_login_gets_the_chain_s_sessions_unless_the_chain_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "alice|pw|1001|1001|:100,:101\n").unwrap();
        let multifile = format!("multifile:filename={}", users.display());
        let grant = grant_for_verified(&settings(&[&multifile]), &info(), "alice")
            .await
            .unwrap();
        assert_eq!(grant.user.username, "alice");
        assert_eq!(grant.user.uid, Some(1001));
        assert!(
            matches!(grant.sessions, SessionSource::Listed { ref displays, .. } if displays.len() == 2)
        );
        // A user the multifile does not list has no sessions there.
        assert!(grant_for_verified(&settings(&[&multifile]), &info(), "bob")
            .await
            .is_err());
        for closed in ["fail", "reject"] {
            assert!(
                grant_for_verified(&settings(&[closed]), &info(), "alice")
                    .await
                    .is_err(),
                "{closed}"
            );
        }
    }
}
