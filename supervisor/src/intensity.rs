//! Restart intensity (MaxR restarts in MaxT) and backoff between restarts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use xgate_messages::supervision::SupervisionEvent;

/// OTP's restart intensity: more than `max_restarts` restarts within `period` make the supervisor
/// stop all its children and exit with [`REACHED_MAX_RESTART_INTENSITY`], which escalates to its
/// parent. The default is OTP's: 1 restart in 5 seconds.
///
/// [`REACHED_MAX_RESTART_INTENSITY`]: crate::REACHED_MAX_RESTART_INTENSITY
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// MaxR (OTP `intensity`).
    pub max_restarts: u32,
    /// MaxT (OTP `period`).
    pub period: Duration,
}

impl Intensity {
    /// MaxR restarts allowed in MaxT.
    pub fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period,
        }
    }
}

impl Default for Intensity {
    fn default() -> Self {
        Self::new(1, Duration::from_secs(5))
    }
}

/// The sliding window of recent restart times.
#[derive(Debug)]
pub(crate) struct RestartWindow {
    pub(crate) intensity: Intensity,
    times: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(intensity: Intensity) -> Self {
        Self {
            intensity,
            times: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; `false` when it makes more than MaxR restarts within MaxT.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        self.times.push_back(now);
        while let Some(&first) = self.times.front() {
            if now.saturating_duration_since(first) >= self.intensity.period {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.len() <= self.intensity.max_restarts as usize
    }

    /// The event a supervisor at `supervisor` publishes when this window refuses a restart.
    pub(crate) fn reached_event(&self, supervisor: &str) -> SupervisionEvent {
        SupervisionEvent::RestartIntensityReached {
            supervisor: supervisor.to_owned(),
            max_restarts: self.intensity.max_restarts,
            period_ms: self.intensity.period.as_millis() as u64,
        }
    }

    /// How long to wait before restarting a child that started at `started_at` and exited at
    /// `now`, with `backoff`; counts the restart into the child's `consecutive` quick restarts,
    /// which start again from zero when it ran at least MaxT.
    pub(crate) fn restart_delay(
        &self,
        backoff: Option<Backoff>,
        started_at: Option<Instant>,
        now: Instant,
        consecutive: &mut u32,
    ) -> Duration {
        let ran_long =
            started_at.is_some_and(|t| now.saturating_duration_since(t) >= self.intensity.period);
        *consecutive = if ran_long { 0 } else { *consecutive + 1 };
        backoff.map_or(Duration::ZERO, |b| b.delay(consecutive.saturating_sub(1)))
    }
}

/// Exponential backoff between a child's consecutive restarts: `initial`, then doubled on each
/// restart up to `max`. A child that ran longer than its supervisor's MaxT is back to `initial`.
/// The supervisor keeps serving messages while it waits (the restart is a timer, not a sleep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Backoff from `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// Delay before restart number `consecutive` (0 for the first) of a child.
    pub(crate) fn delay(&self, consecutive: u32) -> Duration {
        let factor = 1u32.checked_shl(consecutive.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_one_in_five_seconds() {
        let mut w = RestartWindow::new(Intensity::default());
        let t = Instant::now();
        assert!(w.record(t));
        assert!(!w.record(t + Duration::from_secs(1)));
    }

    #[test]
    fn window_slides() {
        let mut w = RestartWindow::new(Intensity::new(2, Duration::from_secs(1)));
        let t = Instant::now();
        assert!(w.record(t));
        assert!(w.record(t + Duration::from_millis(500)));
        assert!(w.record(t + Duration::from_millis(1200)));
        assert!(!w.record(t + Duration::from_millis(1300)));
    }

    #[test]
    fn zero_allows_no_restart() {
        let mut w = RestartWindow::new(Intensity::new(0, Duration::from_secs(1)));
        assert!(!w.record(Instant::now()));
    }

    #[test]
    fn backoff_doubles_to_max() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(b.delay(0), Duration::from_millis(10));
        assert_eq!(b.delay(1), Duration::from_millis(20));
        assert_eq!(b.delay(2), Duration::from_millis(40));
        assert_eq!(b.delay(3), Duration::from_millis(50));
        assert_eq!(b.delay(100), Duration::from_millis(50));
    }
}
