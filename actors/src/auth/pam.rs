//! The `pam` auth module (xpra's `xpra/auth/pam.py`, also reached as `sys`), built with the cargo
//! feature `pam`: the password the client gives is checked by the system's PAM stack, and the
//! accepted user reaches the sessions of the uid in its passwd entry (a socket scan).
//!
//! PAM needs the password itself, so the challenge uses xpra's `xor` digest, which hands it to
//! the gateway: as xpra does, the module requires it. The gateway only sends such a challenge over
//! a confidential transport (ssl, wss, ssh or a unix socket) unless the module says
//! `allow-unencrypted=yes`; xpra's own clients also refuse it elsewhere except to a local address.
//!
//! Options as in xpra: `service=` (the PAM service, default `login`) and `check-account=` (also
//! run PAM's account management: expired or locked accounts are refused; default no). The user
//! name is the client's: xgate binds as root and then drops it, as xpra's proxy running as root
//! (where xpra uses the client's name too). The gateway's service user must be able to check
//! other users' passwords with that service: `pam_unix` can only when it reads `/etc/shadow`
//! (run the gateway with `gid=shadow`); without that, its helper `unix_chkpwd` checks the
//! service user's own password only, and PAM answers "cannot retrieve authentication info".
//!
//! PAM calls block (and modules sleep on failures), so the handshake runs them on the blocking
//! pool.

use pam_client::conv_mock::Conversation;
use pam_client::{Context, ErrorCode, Flag};
use xgate_config::parse_bool;

use super::backends::BackendError;

/// xpra's `XPRA_PAM_AUTH_SERVICE` default.
pub const DEFAULT_SERVICE: &str = "login";

/// A configured `pam` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamAuth {
    /// The PAM service whose stack checks the password (`service=`, a file in `/etc/pam.d`).
    pub service: String,
    /// Whether PAM's account management runs after the password check (`check-account=`).
    pub check_account: bool,
    /// Whether the `xor` challenge, which reveals the password to the gateway, may also be sent
    /// over plain tcp and ws (`allow-unencrypted=`).
    pub allow_unencrypted: bool,
}

impl PamAuth {
    /// From the module's options.
    pub fn from_options(
        service: Option<&str>,
        check_account: Option<&str>,
        allow_unencrypted: Option<&str>,
    ) -> Result<PamAuth, BackendError> {
        let flag = |option: &'static str, value: Option<&str>| {
            value
                .map(|v| {
                    parse_bool(v).map_err(|e| BackendError::BadOption {
                        module: "pam".into(),
                        option,
                        reason: e.reason,
                    })
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let service = service.unwrap_or(DEFAULT_SERVICE).trim();
        // A service is a file name in /etc/pam.d: no path, nothing libpam would refuse.
        if service.is_empty() || service.contains(['/', '\0']) {
            return Err(BackendError::BadOption {
                module: "pam".into(),
                option: "service",
                reason: format!("'{service}' is not a PAM service name"),
            });
        }
        Ok(PamAuth {
            service: service.to_string(),
            check_account: flag("check-account", check_account)?,
            allow_unencrypted: flag("allow-unencrypted", allow_unencrypted)?,
        })
    }

    /// Whether PAM accepts `password` for `username`: `Ok(false)` when the stack refuses the
    /// user or the password (or, with `check-account`, the account), an error when PAM itself
    /// cannot run (no such service, a module missing). Blocking.
    pub fn check(&self, username: &str, password: &[u8]) -> Result<bool, BackendError> {
        // As xpra: the bytes are UTF-8 text, else latin-1.
        let password = match std::str::from_utf8(password) {
            Ok(s) => s.to_string(),
            Err(_) => password.iter().map(|b| char::from(*b)).collect(),
        };
        if username.is_empty() || username.contains('\0') || password.contains('\0') {
            return Ok(false);
        }
        let failed = |e: pam_client::Error| BackendError::Pam {
            service: self.service.clone(),
            reason: if e.code() == ErrorCode::AUTHINFO_UNAVAIL {
                format!("{e} (pam_unix checks other users' passwords only for a gateway that can read /etc/shadow: run it with gid=shadow)")
            } else {
                e.to_string()
            },
        };
        let mut context = Context::new(
            &self.service,
            Some(username),
            Conversation::with_credentials(username, password),
        )
        .map_err(failed)?;
        let mut result = context.authenticate(Flag::DISALLOW_NULL_AUTHTOK);
        if result.is_ok() && self.check_account {
            result = context.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK);
        }
        match result {
            Ok(()) => Ok(true),
            Err(e) if refuses_the_user(e.code()) => {
                tracing::debug!(target: "xgate::auth", service = %self.service, user = %username, "pam refused: {e}");
                Ok(false)
            }
            Err(e) => Err(failed(e)),
        }
    }
}

/// The PAM results that are a verdict on the user (wrong password, unknown or expired account),
/// as opposed to PAM failing to run.
fn refuses_the_user(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AUTH_ERR
            | ErrorCode::USER_UNKNOWN
            | ErrorCode::CRED_INSUFFICIENT
            | ErrorCode::MAXTRIES
            | ErrorCode::PERM_DENIED
            | ErrorCode::ACCT_EXPIRED
            | ErrorCode::NEW_AUTHTOK_REQD
            | ErrorCode::AUTHTOK_EXPIRED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_xpra() {
        let p = PamAuth::from_options(None, None, None).expect("pam");
        assert_eq!(p.service, "login");
        assert!(!p.check_account && !p.allow_unencrypted);
        let p = PamAuth::from_options(Some("xgate"), Some("yes"), Some("on")).expect("pam");
        assert_eq!(p.service, "xgate");
        assert!(p.check_account && p.allow_unencrypted);
        assert!(PamAuth::from_options(Some("../etc/x"), None, None).is_err());
        assert!(PamAuth::from_options(Some(""), None, None).is_err());
        assert!(PamAuth::from_options(None, Some("maybe"), None).is_err());
    }

    /// A service that does not exist makes libpam fall back to its `other` stack, which denies;
    /// a missing service stack and an empty password never succeed.
    #[test]
    fn libpam_refuses_what_it_cannot_check() {
        let p = PamAuth::from_options(Some("xgate-no-such-service"), None, None).expect("pam");
        assert!(!p.check("root", b"not-the-password").unwrap_or(false));
        assert_eq!(p.check("", b"x").ok(), Some(false));
        assert_eq!(p.check("root", b"a\0b").ok(), Some(false));
    }
}
