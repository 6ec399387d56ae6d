//! When a failed delivery is tried again: after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
//! (Svix's schedule), each with ±20 % jitter so receivers recovering from an outage are not
//! hit by every retry at once. Tests shrink the schedule.

use std::time::Duration;

/// The default delays between attempts (the first attempt is immediate).
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The retry schedule of a host.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_SCHEDULE.to_vec(),
        }
    }
}

impl RetrySchedule {
    /// A schedule with these delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The delay before attempt `next` (2 for the first retry), jittered by `jitter` in
    /// [-1, 1] times 20 %; `None` when retries have run out.
    pub fn delay_before(&self, next: u32, jitter: f64) -> Option<Duration> {
        let base = *self.delays.get(usize::try_from(next.checked_sub(2)?).ok()?)?;
        let factor = 1.0 + 0.2 * jitter.clamp(-1.0, 1.0);
        Some(base.mul_f64(factor))
    }

    /// Attempts in all (the first plus every retry).
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }
}

/// A jitter value in [-1, 1] from the system's randomness.
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) as f64 / u64::MAX as f64) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_after_seven_retries_with_bounded_jitter() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.delay_before(2, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_before(2, 1.0), Some(Duration::from_secs(6)));
        assert_eq!(s.delay_before(2, -1.0), Some(Duration::from_secs(4)));
        assert_eq!(s.delay_before(8, 0.0), Some(Duration::from_secs(36_000)));
        assert_eq!(s.delay_before(9, 0.0), None);
        assert_eq!(s.delay_before(1, 0.0), None, "the first attempt has no delay");
        for _ in 0..100 {
            let j = random_jitter();
            assert!((-1.0..=1.0).contains(&j));
        }
    }
}
