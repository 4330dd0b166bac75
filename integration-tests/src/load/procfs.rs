//! Resident memory of a process and its descendants, read from `/proc`.

use std::fs;

/// `VmRSS` of a process in bytes, or `None` if it is gone or unreadable.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Proportional set size of a process in bytes (`Pss` in `/proc/PID/smaps_rollup`: shared pages
/// divided among the processes sharing them), or `None` if unreadable.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// PSS of `pid` plus all its descendants (for forking servers, where RSS counts shared pages once
/// per process).
pub fn tree_pss_bytes(pid: u32) -> Option<u64> {
    let mut total = pss_bytes(pid)?;
    total += descendants(pid)
        .into_iter()
        .filter_map(pss_bytes)
        .sum::<u64>();
    Some(total)
}

/// The parent pid of a process, from `/proc/PID/stat`.
fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `pid` (children, grandchildren, ...).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                if let Some(pp) = parent(p) {
                    all.push((p, pp));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, _) in all.iter().filter(|(_, pp)| *pp == p) {
            out.push(child);
            frontier.push(child);
        }
    }
    out
}

/// RSS of `pid` plus all its descendants, with the number of processes counted.
pub fn tree_rss_bytes(pid: u32) -> Option<(u64, usize)> {
    let mut total = rss_bytes(pid)?;
    let kids = descendants(pid);
    let n = kids.len();
    total += kids.into_iter().filter_map(rss_bytes).sum::<u64>();
    Some((total, n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_readable() {
        let me = std::process::id();
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(tree_rss_bytes(me).is_some());
    }
}
