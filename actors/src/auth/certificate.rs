//! The `certificate` auth module: a TLS client whose certificate verified against
//! `ssl-ca-certs` logs in, without a password, under a field of the certificate's subject
//! (`field=CN`, the default, or `emailAddress`, `UID`, ... in openssl's short names).
//!
//! xpra has no such module; it is how the issue's "a verified client certificate's subject can be
//! the username" is configured: `ssl-auth = "certificate"` (with `ssl-ca-certs` and, to refuse
//! clients without a certificate during the TLS handshake already, `ssl-client-verify-mode =
//! "required"`). A client without a verified certificate (plain TCP, WebSocket, or TLS without
//! one) is refused with `authentication failed`. The user name the client's hello carries is
//! ignored: the certificate is the identity.
//!
//! The accepted user reaches the sessions of the local account with that name (a socket scan
//! under its uid), or none when there is no such account; a `role=sessions` module in the same
//! chain (`"multifile:filename=...,role=sessions"`) gives the sessions instead.

use xgate_messages::{CertificateSubject, SessionSource, UserIdentity};

use super::backends::{BackendError, Grant};
use crate::users;

/// A configured `certificate` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuth {
    /// The subject field that names the user (`CN` unless `field=` says otherwise).
    pub field: String,
}

impl CertificateAuth {
    /// From the module's `field=` option.
    pub fn from_options(field: Option<&str>) -> Result<CertificateAuth, BackendError> {
        let field = field.map(str::trim).unwrap_or("CN");
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(BackendError::BadOption {
                module: "certificate".into(),
                option: "field",
                reason: format!("'{field}' is not a subject field name such as CN or emailAddress"),
            });
        }
        Ok(CertificateAuth {
            field: field.to_string(),
        })
    }

    /// The user name a verified certificate gives; `None` without one, or when its subject has
    /// no such field (or an empty one).
    pub fn username(&self, subject: Option<&CertificateSubject>) -> Option<String> {
        subject?
            .get(&self.field)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    }

    /// What an accepted `username` reaches: the sessions of the local account of that name.
    pub fn grant(&self, username: &str) -> Grant {
        match users::by_name(username) {
            Some(account) => Grant {
                user: UserIdentity {
                    username: username.to_string(),
                    uid: Some(account.uid),
                    gid: Some(account.gid),
                },
                sessions: SessionSource::SocketScan,
            },
            None => {
                tracing::debug!(target: "xgate::auth", user = %username, "certificate: no local account of that name, so no sessions");
                Grant {
                    user: UserIdentity {
                        username: username.to_string(),
                        uid: None,
                        gid: None,
                    },
                    sessions: SessionSource::Listed {
                        displays: Vec::new(),
                        options: Default::default(),
                        env: Default::default(),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(entries: &[(&str, &str)]) -> CertificateSubject {
        CertificateSubject {
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_field_names_the_user() {
        let cn = CertificateAuth::from_options(None).expect("default");
        let s = subject(&[("O", "example"), ("CN", "carol"), ("emailAddress", "c@x")]);
        assert_eq!(cn.username(Some(&s)).as_deref(), Some("carol"));
        assert_eq!(cn.username(None), None);
        assert_eq!(cn.username(Some(&subject(&[("O", "example")]))), None);
        assert_eq!(cn.username(Some(&subject(&[("CN", " ")]))), None);
        let mail = CertificateAuth::from_options(Some("emailaddress")).expect("field");
        assert_eq!(mail.username(Some(&s)).as_deref(), Some("c@x"));
        assert!(CertificateAuth::from_options(Some("C N")).is_err());
        assert!(CertificateAuth::from_options(Some("")).is_err());
    }

    #[test]
    fn accounts_give_sessions_and_strangers_none() {
        let c = CertificateAuth::from_options(None).expect("default");
        let root = c.grant("root");
        assert_eq!(root.user.uid, Some(0));
        assert_eq!(root.sessions, SessionSource::SocketScan);
        let nobody = c.grant("no-such-account-xgate");
        assert_eq!(nobody.user.uid, None);
        assert!(
            matches!(nobody.sessions, SessionSource::Listed { ref displays, .. } if displays.is_empty())
        );
    }
}
