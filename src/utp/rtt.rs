//! The retransmission timeout (RFC 6298, as BEP 29 asks): a smoothed round-trip time and its
//! variance from packets acknowledged after one transmission only (Karn), a 500 ms floor as
//! libtorrent has, and a doubling per consecutive timeout up to a minute.

use std::time::Duration;

const INITIAL: Duration = Duration::from_secs(1);
const FLOOR: Duration = Duration::from_millis(500);
const CEILING: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct RttEstimator {
    /// Smoothed round-trip time and its mean deviation, once a sample arrived.
    smoothed: Option<(Duration, Duration)>,
    /// Timeouts in a row, each doubling the timeout.
    backoff: u32,
}

impl RttEstimator {
    /// A round trip measured on a packet sent once.
    pub fn sample(&mut self, rtt: Duration) {
        self.smoothed = Some(match self.smoothed {
            None => (rtt, rtt / 2),
            Some((srtt, var)) => {
                let delta = srtt.abs_diff(rtt);
                // rttvar = 3/4 rttvar + 1/4 |srtt - r|; srtt = 7/8 srtt + 1/8 r
                (srtt * 7 / 8 + rtt / 8, var * 3 / 4 + delta / 4)
            }
        });
    }

    /// The smoothed round-trip time, once known.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed.map(|(srtt, _)| srtt)
    }

    /// How long an unacknowledged packet may wait before it is sent again.
    pub fn timeout(&self) -> Duration {
        let base = match self.smoothed {
            None => INITIAL,
            Some((srtt, var)) => (srtt + var * 4).max(FLOOR),
        };
        base.saturating_mul(1 << self.backoff.min(7)).min(CEILING)
    }

    /// A timeout fired: the next one waits twice as long.
    pub fn backed_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// The peer answered: timeouts are as measured again.
    pub fn answered(&mut self) {
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_at_a_second_and_keeps_a_500_ms_floor() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.timeout(), ms(1000));
        for _ in 0..20 {
            rtt.sample(ms(10));
        }
        assert_eq!(rtt.timeout(), ms(500));
    }

    #[test]
    fn follows_rfc_6298() {
        let mut rtt = RttEstimator::default();
        rtt.sample(ms(200));
        // srtt 200, var 100: 200 + 400
        assert_eq!(rtt.timeout(), ms(600));
        rtt.sample(ms(600));
        // var = 75 + 100 = 175, srtt = 175 + 75 = 250: 250 + 700
        assert_eq!(rtt.timeout(), ms(950));
        assert_eq!(rtt.smoothed(), Some(ms(250)));
    }

    #[test]
    fn timeouts_double_up_to_a_minute_and_an_answer_resets_them() {
        let mut rtt = RttEstimator::default();
        let mut seen = Vec::new();
        for _ in 0..9 {
            seen.push(rtt.timeout().as_millis());
            rtt.backed_off();
        }
        assert_eq!(
            seen,
            [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        rtt.answered();
        assert_eq!(rtt.timeout(), ms(1000));
    }
}
