//! A token bucket shared by every connection: the global download or upload limit.

use crate::sync::MutexExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Limits the bytes per second that pass; a rate of 0 means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    rate: AtomicU64,
    bucket: Mutex<(f64, Instant)>,
    /// When a transfer last had to wait for the limit, in milliseconds after `created`
    /// (0: never), for the swarm doctor.
    throttled_at: AtomicU64,
    created: Instant,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            rate: AtomicU64::new(bytes_per_sec),
            bucket: Mutex::new((0.0, Instant::now())),
            throttled_at: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Whether the limit (still set) made a transfer wait within the last `window`.
    pub fn throttled_within(&self, window: Duration) -> bool {
        let at = self.throttled_at.load(Ordering::Relaxed);
        at > 0
            && self.rate() > 0
            && self.created.elapsed().as_millis() as u64 <= at + window.as_millis() as u64
    }

    /// Takes `n` bytes' worth of tokens, waiting as long as the limit requires. The wait is
    /// looked at again every second, so a limit raised or removed meanwhile applies at once.
    pub async fn acquire(&self, n: usize) {
        let mut wait = self.take(n);
        while let Some(w) = wait {
            tokio::time::sleep(w.min(Duration::from_secs(1))).await;
            wait = self.take(0);
        }
    }

    /// Takes the tokens (going into debt if needed) and says how long to wait to pay it back.
    fn take(&self, n: usize) -> Option<Duration> {
        let rate = self.rate() as f64;
        if rate == 0.0 {
            return None;
        }
        let mut bucket = self.bucket.locked();
        let (tokens, last) = &mut *bucket;
        let now = Instant::now();
        // At most a quarter second of burst.
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate / 4.0);
        *last = now;
        *tokens -= n as f64;
        if *tokens >= 0.0 {
            return None;
        }
        let since_created = now.duration_since(self.created).as_millis() as u64;
        self.throttled_at
            .store(since_created.max(1), Ordering::Relaxed);
        Some(Duration::from_secs_f64(-*tokens / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits_and_limited_does() {
        assert!(RateLimiter::new(0).take(1 << 30).is_none());
        let limited = RateLimiter::new(1000);
        let wait = limited.take(2000).unwrap();
        assert!(
            wait >= Duration::from_millis(1900) && wait <= Duration::from_millis(2100),
            "{wait:?}"
        );
        assert!(limited.throttled_within(Duration::from_secs(1)));
        assert!(!RateLimiter::new(1000).throttled_within(Duration::from_secs(1)));
        limited.set_rate(0);
        assert!(
            !limited.throttled_within(Duration::from_secs(1)),
            "a limit removed holds nothing back"
        );
    }
}
