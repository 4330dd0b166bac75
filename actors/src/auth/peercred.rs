//! The `peercred` auth module (xpra's `xpra/auth/peercred.py`): on unix sockets, lets in the peer
//! processes whose uid or gid the kernel reports (SO_PEERCRED) is allowed, with no challenge.
//!
//! Options as in xpra: `uid=` and `gid=` (colon-separated numbers or names) and `allow-owner=`
//! (default yes: the gateway's own uid is allowed). The accepted peer reaches the sessions of its
//! own uid (a socket scan), under its own login name. TCP peers are always refused.

use xgate_messages::Peer;

use super::backends::BackendError;
use crate::users;

/// A configured `peercred` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    /// uids allowed by `uid=` (`None`: the option was not given).
    pub uids: Option<Vec<u32>>,
    /// gids allowed by `gid=`.
    pub gids: Option<Vec<u32>>,
    /// `allow-owner`: the gateway's own uid is allowed.
    pub allow_owner: bool,
}

impl PeerCred {
    /// From the module's options.
    pub fn from_options(
        uid: Option<&str>,
        gid: Option<&str>,
        allow_owner: Option<&str>,
    ) -> Result<PeerCred, BackendError> {
        let list = |option: &'static str,
                    text: &str,
                    resolve: fn(&str) -> Option<u32>|
         -> Result<Vec<u32>, BackendError> {
            text.split(':')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse()
                        .ok()
                        .or_else(|| resolve(t))
                        .ok_or_else(|| BackendError::BadOption {
                            module: "peercred".into(),
                            option,
                            reason: format!("unknown {option} '{t}'"),
                        })
                })
                .collect()
        };
        let allow_owner = match allow_owner.map(str::to_ascii_lowercase).as_deref() {
            None | Some("yes" | "true" | "1" | "on") => true,
            Some("no" | "false" | "0" | "off") => false,
            Some(other) => {
                return Err(BackendError::BadOption {
                    module: "peercred".into(),
                    option: "allow-owner",
                    reason: format!("'{other}' is not yes or no"),
                })
            }
        };
        Ok(PeerCred {
            uids: uid
                .map(|t| list("uid", t, |n| users::by_name(n).map(|a| a.uid)))
                .transpose()?,
            gids: gid.map(|t| list("gid", t, users::parse_gid)).transpose()?,
            allow_owner,
        })
    }

    /// Whether `peer` may come in.
    pub fn allows(&self, peer: &Peer) -> bool {
        let Peer::Unix { uid, gid, .. } = peer else {
            return false;
        };
        let uid_ok = uid.is_some_and(|u| {
            (self.allow_owner && u == users::own_uid())
                || self.uids.as_ref().is_some_and(|l| l.contains(&u))
        });
        let gid_ok = gid.is_some_and(|g| self.gids.as_ref().is_some_and(|l| l.contains(&g)));
        uid_ok || gid_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uid: u32, gid: u32) -> Peer {
        Peer::Unix {
            uid: Some(uid),
            gid: Some(gid),
            pid: Some(1),
        }
    }

    #[test]
    fn uid_gid_lists_and_owner() {
        let own = users::own_uid();
        let p = PeerCred::from_options(Some("4001:4002"), Some("5000"), None).expect("peercred");
        assert!(p.allows(&unix(4002, 1)));
        assert!(p.allows(&unix(9, 5000)));
        assert!(!p.allows(&unix(4003, 1)));
        assert!(p.allows(&unix(own, 1)), "owner allowed by default");
        let strict = PeerCred::from_options(Some("4001"), None, Some("no")).expect("peercred");
        assert!(!strict.allows(&unix(own, 1)) || own == 4001);
        assert!(!p.allows(&Peer::Tcp("127.0.0.1:1".parse().expect("addr"))));
        assert!(!p.allows(&Peer::Unix {
            uid: None,
            gid: None,
            pid: None
        }));
        assert!(PeerCred::from_options(Some("no-such-user-xgate"), None, None).is_err());
        assert!(PeerCred::from_options(None, None, Some("maybe")).is_err());
        let root = PeerCred::from_options(Some("root"), None, Some("no")).expect("by name");
        assert_eq!(root.uids, Some(vec![0]));
    }
}
