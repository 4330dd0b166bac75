//! Dropping root after the sockets are bound: the gateway never relays as root.

use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};
use xgate_config::UserSpec;

/// The service user named by the `uid`/`gid` options, with the group to run as.
fn resolve(uid: &UserSpec, gid: Option<&UserSpec>) -> Result<(User, Gid), String> {
    let user = match uid {
        UserSpec::Id(n) => User::from_uid(Uid::from_raw(*n)).ok().flatten(),
        UserSpec::Name(name) => User::from_name(name).ok().flatten(),
    }
    .ok_or_else(|| format!("uid: no such user: {uid}"))?;
    let group = match gid {
        None => user.gid,
        Some(UserSpec::Id(n)) => Gid::from_raw(*n),
        Some(UserSpec::Name(name)) => {
            Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| format!("gid: no such group: {name}"))?
                .gid
        }
    };
    Ok((user, group))
}

/// The uid and gid the gateway will run as after [`drop_root`], when it runs as root and a
/// service user is configured.
pub(crate) fn service_ids(uid: Option<&UserSpec>, gid: Option<&UserSpec>) -> Option<(u32, u32)> {
    if !Uid::effective().is_root() {
        return None;
    }
    let (user, group) = resolve(uid?, gid).ok()?;
    Some((user.uid.as_raw(), group.as_raw()))
}

/// Resolves `uid`/`gid` options and, when running as root, switches to them for good
/// (supplementary groups cleared, gid first, then uid). Returns the user now in effect.
pub(crate) fn drop_root(uid: Option<&UserSpec>, gid: Option<&UserSpec>) -> Result<String, String> {
    if !Uid::effective().is_root() {
        return Ok(User::from_uid(Uid::effective())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| Uid::effective().to_string()));
    }
    let Some(uid) = uid else {
        return Err(
            "running as root: set `uid` (and `gid`) to the service user the gateway runs as \
                    after binding its sockets; xgate never relays as root"
                .into(),
        );
    };
    let (user, group) = resolve(uid, gid)?;
    if user.uid.is_root() {
        return Err("uid: the service user must not be root".into());
    }
    setgroups(&[group]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(group).map_err(|e| format!("setgid({group}): {e}"))?;
    setuid(user.uid).map_err(|e| format!("setuid({}): {e}", user.uid))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err("could regain root after dropping privileges".into());
    }
    Ok(user.name)
}
