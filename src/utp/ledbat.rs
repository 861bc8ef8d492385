//! LEDBAT (RFC 6817), the congestion control that makes uTP yield: the one-way delay the
//! peer measures (echoed in every packet) minus its lowest value of the last ten minutes is
//! the queuing delay our traffic causes. Below the 100 ms target the window grows (by up to
//! 3000 bytes a round trip, as libtorrent), above it the window shrinks, so a TCP flow
//! through the same queue takes the bandwidth and a video call keeps its latency.
//!
//! The decrease is LEDBAT++'s (draft-irtf-iccrg-ledbat-plus-plus): multiplicative, by the
//! window times how far the delay is above the target, at most half the window per round
//! trip. RFC 6817's linear decrease (the mirror of the increase) gives back a large window at
//! a few kilobytes a round trip: measured through a 20 Mbit/s link with a 300 ms buffer, uTP
//! kept 40% of the link beside a TCP flow for half a minute with it, and twice the target's
//! delay on its own.
//!
//! As in libtorrent, the window starts in slow start (doubling each round trip) until the
//! delay reaches the target or a packet is lost; a loss halves it at most every 100 ms, a
//! timeout brings it down to one packet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The queuing delay LEDBAT aims for.
pub const TARGET: Duration = Duration::from_millis(100);
/// Bytes the window may grow per round trip with no queuing delay.
const GAIN_BYTES_PER_RTT: f64 = 3000.0;
/// One-minute minima of the delay kept for the base (RFC 6817's BASE_HISTORY).
const BASE_HISTORY: usize = 10;
/// A minute's slot closes only once this many samples arrived in it (as libtorrent), so a
/// quiet connection keeps its base.
const SAMPLES_PER_SLOT: u32 = 120;
/// Delay samples the current delay is the minimum of (filters out one late packet).
const CURRENT_FILTER: usize = 3;
/// The shortest time between two window cuts for loss.
const CUT_SPACING: Duration = Duration::from_millis(100);

/// The history of one-way delays: the base delay and the current queuing delay.
#[derive(Debug, Clone)]
pub struct DelayHistory {
    /// Minima of past minutes, oldest first.
    minutes: VecDeque<u32>,
    /// The minimum of this minute, its sample count and start.
    current: Option<u32>,
    samples: u32,
    minute_start: Option<Instant>,
    /// The latest queuing delays.
    recent: VecDeque<u32>,
}

impl Default for DelayHistory {
    fn default() -> Self {
        Self {
            minutes: VecDeque::with_capacity(BASE_HISTORY),
            current: None,
            samples: 0,
            minute_start: None,
            recent: VecDeque::with_capacity(CURRENT_FILTER),
        }
    }
}

/// The smaller of two microsecond timestamps on the 32-bit circle.
fn wrapping_min(a: u32, b: u32) -> u32 {
    if a.wrapping_sub(b) < 0x8000_0000 {
        b
    } else {
        a
    }
}

impl DelayHistory {
    /// Takes a one-way delay sample (microseconds on the peer's clock minus ours, so only
    /// differences mean anything) and returns the queuing delay now.
    pub fn add(&mut self, sample_us: u32, now: Instant) -> Duration {
        let start = *self.minute_start.get_or_insert(now);
        if now.duration_since(start) >= Duration::from_secs(60) && self.samples > SAMPLES_PER_SLOT {
            if let Some(minimum) = self.current.take() {
                if self.minutes.len() == BASE_HISTORY {
                    self.minutes.pop_front();
                }
                self.minutes.push_back(minimum);
            }
            self.samples = 0;
            self.minute_start = Some(now);
        }
        self.samples += 1;
        self.current = Some(match self.current {
            Some(minimum) => wrapping_min(minimum, sample_us),
            None => sample_us,
        });
        let base = self
            .minutes
            .iter()
            .fold(sample_us, |low, &m| wrapping_min(low, m));
        let base = self.current.map_or(base, |c| wrapping_min(base, c));
        if self.recent.len() == CURRENT_FILTER {
            self.recent.pop_front();
        }
        self.recent.push_back(sample_us.wrapping_sub(base));
        self.queuing_delay()
    }

    /// The lowest of the last few queuing delays.
    pub fn queuing_delay(&self) -> Duration {
        let lowest = self.recent.iter().copied().min().unwrap_or(0);
        Duration::from_micros(u64::from(lowest))
    }
}

/// The congestion window.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cwnd: f64,
    slow_start: bool,
    ssthresh: Option<f64>,
    last_cut: Option<Instant>,
    mss: f64,
    max: f64,
}

impl Ledbat {
    /// A window of two packets of `mss` bytes that may grow to `max` bytes.
    pub fn new(mss: usize, max: usize) -> Self {
        Self {
            cwnd: 2.0 * mss as f64,
            slow_start: true,
            ssthresh: None,
            last_cut: None,
            mss: mss as f64,
            max: max as f64,
        }
    }

    /// A new cap on the window (it shrinks to it at once).
    pub fn set_max(&mut self, max: usize) {
        self.max = max as f64;
        self.cwnd = self.cwnd.min(self.max);
    }

    /// Bytes that may be in flight.
    pub fn window(&self) -> usize {
        self.cwnd as usize
    }

    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// `acked` bytes were acknowledged while `flight_before` were in flight, with the queuing
    /// delay at `delay`.
    pub fn on_ack(&mut self, acked: usize, flight_before: usize, delay: Duration) {
        if acked == 0 || flight_before == 0 {
            return;
        }
        let target = TARGET.as_secs_f64();
        let window_factor = (acked as f64 / flight_before as f64).min(1.0);
        if delay >= TARGET {
            // Above the target: back off in proportion to the window and the excess delay.
            let excess = delay.as_secs_f64() / target - 1.0;
            let cut = (self.cwnd * excess).min(self.cwnd / 2.0) * window_factor;
            if self.slow_start {
                self.slow_start = false;
                self.ssthresh = Some(self.cwnd);
            }
            self.cwnd = (self.cwnd - cut).clamp(self.mss, self.max);
            return;
        }
        let delay_factor = (target - delay.as_secs_f64()) / target;
        let linear = GAIN_BYTES_PER_RTT * window_factor * delay_factor;
        // Growing only counts when the window was what held the sender back.
        let limited = flight_before as f64 + acked as f64 + self.mss > self.cwnd;
        if self.slow_start && limited {
            self.cwnd += (acked as f64).max(linear);
            if self.ssthresh.is_some_and(|t| self.cwnd > t) {
                self.slow_start = false;
            }
        } else if limited {
            self.cwnd += linear;
        }
        self.cwnd = self.cwnd.clamp(self.mss, self.max);
    }

    /// A packet sent after the last cut was lost: the window halves, unless it was cut less
    /// than 100 ms ago. Returns whether it was cut.
    pub fn on_loss(&mut self, now: Instant) -> bool {
        if self
            .last_cut
            .is_some_and(|at| now.duration_since(at) < CUT_SPACING)
        {
            return false;
        }
        self.cwnd = (self.cwnd / 2.0).max(self.mss);
        self.slow_start = false;
        self.ssthresh = Some(self.cwnd);
        self.last_cut = Some(now);
        true
    }

    /// The retransmission timer fired with packets in flight: one packet, slow start again.
    pub fn on_timeout(&mut self, now: Instant) {
        self.cwnd = self.mss;
        self.slow_start = true;
        self.last_cut = Some(now);
    }

    /// The timer fired with nothing in flight: the window decays, since it was not used.
    pub fn on_idle(&mut self) {
        self.cwnd = (self.cwnd * 2.0 / 3.0).max(self.mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_base_is_the_lowest_delay_and_the_queuing_delay_the_rest() {
        let now = Instant::now();
        let mut history = DelayHistory::default();
        assert_eq!(history.add(50_000, now), ms(0));
        history.add(80_000, now);
        history.add(90_000, now);
        // The minimum of the last three: 30, 40, 70 ms above the base.
        assert_eq!(history.add(120_000, now), ms(30));
        history.add(130_000, now);
        assert_eq!(history.add(110_000, now), ms(60));
    }

    #[test]
    fn the_base_wraps_with_the_clock() {
        let now = Instant::now();
        let mut history = DelayHistory::default();
        history.add(u32::MAX - 999, now);
        assert_eq!(
            history.add(9_000, now),
            ms(0),
            "filter holds the old sample"
        );
        history.add(9_000, now);
        assert_eq!(history.add(9_000, now), ms(10));
    }

    #[test]
    fn an_old_minimum_leaves_the_base_after_ten_full_minutes() {
        let start = Instant::now();
        let mut history = DelayHistory::default();
        history.add(10_000, start);
        // Eleven busy minutes at 40 ms: the 10 ms minute falls out of the history.
        for minute in 1..=11u64 {
            for i in 0..=SAMPLES_PER_SLOT {
                let at =
                    start + Duration::from_secs(60 * minute) + Duration::from_millis(u64::from(i));
                history.add(40_000, at);
            }
        }
        assert_eq!(history.queuing_delay(), ms(0));
    }

    #[test]
    fn below_target_the_window_grows_at_most_3000_bytes_a_round_trip() {
        let mut ledbat = Ledbat::new(MSS, 1 << 20);
        ledbat.on_loss(Instant::now()); // out of slow start, window 1000
        let before = ledbat.window();
        // A full window acknowledged with no queuing delay: +3000.
        ledbat.on_ack(before, before, ms(0));
        assert_eq!(ledbat.window(), before + 3000);
        // Half the window at half the target: +750.
        let before = ledbat.window();
        ledbat.on_ack(before / 2, before, ms(50));
        assert_eq!(ledbat.window(), before + 750);
    }

    #[test]
    fn above_target_it_shrinks_but_never_below_one_packet() {
        let mut ledbat = Ledbat::new(MSS, 1 << 20);
        ledbat.on_loss(Instant::now());
        for _ in 0..10 {
            let w = ledbat.window();
            ledbat.on_ack(w, w, ms(0));
        }
        // Twice the target's delay: half the window, over a round trip.
        let w = ledbat.window();
        ledbat.on_ack(w / 2, w, ms(200));
        assert_eq!(ledbat.window(), w - w / 4);
        // 20 ms above it: a fifth of it.
        let w = ledbat.window();
        ledbat.on_ack(w, w, ms(120));
        assert_eq!(ledbat.window(), w - w / 5);
        for _ in 0..100 {
            let w = ledbat.window();
            ledbat.on_ack(w, w, ms(300));
        }
        assert_eq!(ledbat.window(), MSS);
    }

    #[test]
    fn slow_start_doubles_until_the_delay_reaches_the_target() {
        let mut ledbat = Ledbat::new(MSS, 1 << 20);
        assert_eq!(ledbat.window(), 2 * MSS);
        for _ in 0..6 {
            let w = ledbat.window();
            ledbat.on_ack(w, w, ms(10));
            assert!(ledbat.window() >= 2 * w);
        }
        assert!(ledbat.in_slow_start());
        let w = ledbat.window();
        ledbat.on_ack(w, w, ms(100));
        assert!(!ledbat.in_slow_start());
        assert_eq!(ledbat.window(), w, "at the target exactly: no change");
    }

    #[test]
    fn a_window_not_used_does_not_grow() {
        let mut ledbat = Ledbat::new(MSS, 1 << 20);
        ledbat.on_loss(Instant::now());
        for _ in 0..3 {
            let w = ledbat.window();
            ledbat.on_ack(w, w, ms(0));
        }
        assert_eq!(ledbat.window(), 10 * MSS);
        // 1200 bytes in flight out of a 10000-byte window: the sender had nothing more.
        ledbat.on_ack(100, 1100, ms(0));
        assert_eq!(ledbat.window(), 10 * MSS);
        // But a delay above the target shrinks it all the same.
        ledbat.on_ack(100, 1100, ms(200));
        assert!(ledbat.window() < 10 * MSS);
    }

    #[test]
    fn losses_halve_at_most_every_100_ms_and_a_timeout_leaves_one_packet() {
        let now = Instant::now();
        let mut ledbat = Ledbat::new(MSS, 1 << 20);
        ledbat.cwnd = 64_000.0;
        assert!(ledbat.on_loss(now));
        assert_eq!(ledbat.window(), 32_000);
        assert!(!ledbat.on_loss(now + ms(50)));
        assert_eq!(ledbat.window(), 32_000);
        assert!(ledbat.on_loss(now + ms(100)));
        assert_eq!(ledbat.window(), 16_000);
        ledbat.on_idle();
        assert_eq!(ledbat.window(), 10_666);
        ledbat.on_timeout(now + ms(200));
        assert_eq!(ledbat.window(), MSS);
        assert!(ledbat.in_slow_start());
    }
}
