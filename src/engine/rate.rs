//! Transfer rates from byte counters, smoothed over a few seconds.

use std::time::Instant;

/// Turns a growing byte counter into bytes per second (exponential moving average).
#[derive(Debug, Clone)]
pub struct RateMeter {
    last_total: u64,
    last_at: Instant,
    rate: f64,
}

/// Weight of the newest sample.
const ALPHA: f64 = 0.4;

impl RateMeter {
    pub fn new(total: u64) -> Self {
        Self {
            last_total: total,
            last_at: Instant::now(),
            rate: 0.0,
        }
    }

    /// Feeds the counter's current value and returns the smoothed rate.
    pub fn update(&mut self, total: u64) -> u64 {
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64();
        if secs >= 0.05 {
            let sample = total.saturating_sub(self.last_total) as f64 / secs;
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                ALPHA * sample + (1.0 - ALPHA) * self.rate
            };
            if self.rate < 1.0 {
                self.rate = 0.0;
            }
            self.last_total = total;
            self.last_at = now;
        }
        self.rate as u64
    }

    pub fn rate(&self) -> u64 {
        self.rate as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_decays() {
        let mut m = RateMeter::new(0);
        m.last_at -= std::time::Duration::from_secs(1);
        assert!((990..=1010).contains(&m.update(1000)));
        m.last_at -= std::time::Duration::from_secs(1);
        let decayed = m.update(1000);
        assert!(decayed < 1000 && decayed > 0);
    }
}
