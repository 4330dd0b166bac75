//! Local accounts: the process's own ids, and names to uids through `/etc/passwd` and
//! `/etc/group` (read as files, so no libc call is needed). Here, not in the actors, because the
//! configuration expands `~` and `$USER` with them before any actor runs.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// One `/etc/passwd` entry, the parts the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory, for `~/.xpra`.
    pub home: PathBuf,
}

/// The (uid, gid) this process runs as: the owner of `/proc/self`; `None` without `/proc`.
pub fn process_ids() -> Option<(u32, u32)> {
    std::fs::metadata("/proc/self")
        .ok()
        .map(|m| (m.uid(), m.gid()))
}

/// The uid this process runs as, if `/proc` says.
pub fn process_uid() -> Option<u32> {
    process_ids().map(|(uid, _)| uid)
}

/// The uid the gateway process runs as; `u32::MAX` (nobody's) if it cannot be read.
pub fn own_uid() -> u32 {
    process_uid().unwrap_or(u32::MAX)
}

/// The gid the gateway process runs as; `u32::MAX` if it cannot be read.
pub fn own_gid() -> u32 {
    process_ids().map_or(u32::MAX, |(_, gid)| gid)
}

fn passwd_entries() -> Vec<Account> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Account {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: PathBuf::from(f[5]),
            })
        })
        .collect()
}

/// The account with this login name.
pub fn by_name(name: &str) -> Option<Account> {
    passwd_entries().into_iter().find(|a| a.name == name)
}

/// The account with this uid.
pub fn by_uid(uid: u32) -> Option<Account> {
    passwd_entries().into_iter().find(|a| a.uid == uid)
}

/// The login name of the gateway process.
pub fn own_name() -> String {
    by_uid(own_uid())
        .map(|a| a.name)
        .unwrap_or_else(|| own_uid().to_string())
}

/// A uid written as a number or a login name (xpra's `parse_uid`); empty means `nobody`.
pub fn parse_uid(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = if t.is_empty() { "nobody" } else { t };
    t.parse().ok().or_else(|| by_name(t).map(|a| a.uid))
}

/// A gid written as a number or a group name (xpra's `parse_gid`); empty means `nogroup`.
pub fn parse_gid(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = if t.is_empty() { "nogroup" } else { t };
    if let Ok(n) = t.parse() {
        return Some(n);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[0] == t)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numbers_resolve() {
        assert_eq!(parse_uid("0"), Some(0));
        assert_eq!(parse_uid("root"), Some(0));
        assert_eq!(parse_gid("root"), Some(0));
        assert!(parse_uid("no-such-user-xgate").is_none());
        assert_eq!(by_uid(0).map(|a| a.name), Some("root".to_string()));
    }
}
