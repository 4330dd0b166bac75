//! Failure limits: after too many authentication failures from one address (or for one user name)
//! within a window, further attempts are refused for a while without being checked.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Recent failures per key, and the keys refused until some instant.
#[derive(Debug)]
pub struct FailureLimiter {
    /// Failures allowed within `window` before a key is refused.
    max_failures: u32,
    /// How far back failures count.
    window: Duration,
    /// How long a key is refused once it reached `max_failures`.
    ban: Duration,
    /// Failure times per key, oldest first (at most `max_failures` kept).
    recent: HashMap<String, VecDeque<Instant>>,
    /// Keys refused until the instant.
    banned: HashMap<String, Instant>,
}

impl FailureLimiter {
    /// A limiter; `max_failures` 0 turns it off.
    pub fn new(max_failures: u32, window: Duration, ban: Duration) -> Self {
        FailureLimiter {
            max_failures,
            window,
            ban,
            recent: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    /// How much longer `key` is refused, if it is.
    pub fn banned_for(&mut self, key: &str, now: Instant) -> Option<Duration> {
        match self.banned.get(key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                self.banned.remove(key);
                None
            }
            None => None,
        }
    }

    /// Records a failure for `key`; true when this failure got the key refused.
    pub fn record(&mut self, key: &str, now: Instant) -> bool {
        self.record_counted(key, now).0
    }

    /// Records a failure for `key`; returns whether it got the key refused, and how many
    /// failures `key` has within the window, this one included (the failure delay grows with it).
    pub fn record_counted(&mut self, key: &str, now: Instant) -> (bool, usize) {
        if self.max_failures == 0 {
            return (false, 1);
        }
        let times = self.recent.entry(key.to_string()).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            times.pop_front();
        }
        let count = times.len();
        if count >= self.max_failures as usize {
            self.recent.remove(key);
            self.banned.insert(key.to_string(), now + self.ban);
            return (true, count);
        }
        self.prune(now);
        (false, count)
    }

    /// How many failures `key` has within the window.
    pub fn recent_count(&self, key: &str, now: Instant) -> usize {
        self.recent.get(key).map_or(0, |t| {
            t.iter()
                .filter(|t| now.duration_since(**t) <= self.window)
                .count()
        })
    }

    /// Keys with failures within the window, and how many (for `info`).
    pub fn failing(&self, now: Instant) -> Vec<(String, usize)> {
        self.recent
            .keys()
            .map(|k| (k.clone(), self.recent_count(k, now)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Forgets what no longer matters, so memory stays bounded by recent activity.
    fn prune(&mut self, now: Instant) {
        if self.recent.len() > 4096 {
            let window = self.window;
            self.recent.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) <= window)
            });
        }
        if self.banned.len() > 4096 {
            self.banned.retain(|_, until| *until > now);
        }
    }

    /// The keys refused now and for how long, for `info`.
    pub fn banned(&self, now: Instant) -> Vec<(String, Duration)> {
        self.banned
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, until)| (k.clone(), *until - now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_after_max_failures_within_window_then_expires() {
        let mut l = FailureLimiter::new(3, Duration::from_secs(60), Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(!l.record("1.2.3.4", t0));
        assert!(!l.record("1.2.3.4", t0 + Duration::from_secs(1)));
        assert!(l.banned_for("1.2.3.4", t0).is_none());
        assert!(l.record("1.2.3.4", t0 + Duration::from_secs(2)));
        assert!(l
            .banned_for("1.2.3.4", t0 + Duration::from_secs(3))
            .is_some());
        assert!(l.banned_for("5.6.7.8", t0).is_none());
        assert!(l
            .banned_for("1.2.3.4", t0 + Duration::from_secs(40))
            .is_none());
    }

    #[test]
    fn counts_grow_within_the_window() {
        let mut l = FailureLimiter::new(3, Duration::from_secs(10), Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(l.record_counted("a", t0), (false, 1));
        assert_eq!(
            l.record_counted("a", t0 + Duration::from_secs(1)),
            (false, 2)
        );
        assert_eq!(l.recent_count("a", t0 + Duration::from_secs(1)), 2);
        assert_eq!(l.recent_count("a", t0 + Duration::from_secs(30)), 0);
        assert_eq!(
            l.failing(t0 + Duration::from_secs(2)),
            vec![("a".to_string(), 2)]
        );
        assert_eq!(
            l.record_counted("a", t0 + Duration::from_secs(2)),
            (true, 3)
        );
        assert_eq!(l.banned(t0 + Duration::from_secs(3)).len(), 1);
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let mut l = FailureLimiter::new(2, Duration::from_secs(10), Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(!l.record("a", t0));
        assert!(!l.record("a", t0 + Duration::from_secs(20)));
    }
}
