//! Connection limits: at most so many connections in all and per client address.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts live connections against the configured limits; shared by every listener.
#[derive(Debug)]
pub struct ConnectionLimits {
    /// `max-connections`: the most connections the gateway holds at once.
    max_total: usize,
    /// `max-connections-per-address`: the most from one IP (or one uid on unix sockets).
    max_per_address: usize,
    /// Live connections in all.
    total: AtomicUsize,
    /// Live connections per address key.
    per_address: Mutex<HashMap<String, usize>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The gateway holds `max-connections` already.
    #[error("too many connections ({0})")]
    Total(usize),
    /// This address holds `max-connections-per-address` already.
    #[error("too many connections from {0}")]
    PerAddress(String),
}

impl ConnectionLimits {
    /// Limits with the given maxima (0 means no limit).
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total: if max_total == 0 {
                usize::MAX
            } else {
                max_total
            },
            max_per_address: if max_per_address == 0 {
                usize::MAX
            } else {
                max_per_address
            },
            total: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `key`, or says which limit was reached.
    pub fn try_acquire(self: &Arc<Self>, key: String) -> Result<ConnectionPermit, LimitError> {
        let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let total = self.total.load(Ordering::Relaxed);
        if total >= self.max_total {
            return Err(LimitError::Total(self.max_total));
        }
        let count = map.entry(key.clone()).or_insert(0);
        if *count >= self.max_per_address {
            return Err(LimitError::PerAddress(key));
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionPermit {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Live connections in all.
    pub fn current(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// A connection's place in the limits; dropping it (when the connection ends, however it ends)
/// gives the place back.
#[derive(Debug)]
pub struct ConnectionPermit {
    /// The limits this place was taken from.
    limits: Arc<ConnectionLimits>,
    /// The address key it counts against.
    key: String,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut map = self
            .limits
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
        self.limits.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_and_released() {
        let limits = ConnectionLimits::new(3, 2);
        let a1 = limits.try_acquire("a".into()).unwrap();
        let _a2 = limits.try_acquire("a".into()).unwrap();
        assert_eq!(
            limits.try_acquire("a".into()).unwrap_err(),
            LimitError::PerAddress("a".into())
        );
        let _b1 = limits.try_acquire("b".into()).unwrap();
        assert_eq!(
            limits.try_acquire("c".into()).unwrap_err(),
            LimitError::Total(3)
        );
        drop(a1);
        assert_eq!(limits.current(), 2);
        let _c1 = limits.try_acquire("c".into()).unwrap();
    }
}
