//! Replication lag from a series of samples of the source: its current LSN and the slot's
//! confirmed_flush LSN. Rates, catch-up ETA, lag in seconds and the "low and steady" gate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::lsn::Lsn;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSample {
    pub at: Instant,
    /// Source `pg_current_wal_lsn()`.
    pub current: Lsn,
    /// The slot's `confirmed_flush_lsn`.
    pub confirmed: Lsn,
}

impl LagSample {
    pub fn lag_bytes(&self) -> u64 {
        self.current.bytes_since(self.confirmed)
    }
}

#[derive(Debug, Clone)]
pub struct LagSeries {
    samples: VecDeque<LagSample>,
    keep: Duration,
}

impl LagSeries {
    /// Keeps samples no older than `keep` behind the newest one.
    pub fn new(keep: Duration) -> Self {
        LagSeries {
            samples: VecDeque::new(),
            keep,
        }
    }

    pub fn push(&mut self, s: LagSample) {
        // A sample older than the newest (clock or ordering mistake) would break the rates.
        if self.samples.back().is_some_and(|b| s.at < b.at) {
            return;
        }
        self.samples.push_back(s);
        while let Some(f) = self.samples.front() {
            if s.at.duration_since(f.at) > self.keep {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    pub fn samples(&self) -> impl Iterator<Item = &LagSample> {
        self.samples.iter()
    }

    pub fn latest(&self) -> Option<&LagSample> {
        self.samples.back()
    }

    pub fn lag_bytes(&self) -> Option<u64> {
        self.latest().map(LagSample::lag_bytes)
    }

    /// Rates over the samples within `window` of the newest: (WAL produced, WAL confirmed), in
    /// bytes per second. `None` with fewer than two samples or no time between them.
    pub fn rates(&self, window: Duration) -> Option<(f64, f64)> {
        let last = self.latest()?;
        let first = self
            .samples
            .iter()
            .find(|s| last.at.duration_since(s.at) <= window)?;
        let dt = last.at.duration_since(first.at).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // rates in bytes/s: 52 bits of mantissa are plenty
        let produced = last.current.diff(first.current) as f64 / dt;
        #[allow(clippy::cast_precision_loss)]
        let confirmed = last.confirmed.diff(first.confirmed) as f64 / dt;
        Some((produced, confirmed))
    }

    /// Time until the lag reaches zero at the current rates; `Some(ZERO)` when there is no lag,
    /// `None` when the consumer is not gaining on the producer.
    pub fn eta(&self, window: Duration) -> Option<Duration> {
        let lag = self.lag_bytes()?;
        if lag == 0 {
            return Some(Duration::ZERO);
        }
        let (produced, confirmed) = self.rates(window)?;
        let gain = confirmed - produced;
        if gain <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let lag = lag as f64;
        Some(Duration::from_secs_f64(lag / gain))
    }

    /// How long ago the source was where the consumer has confirmed now: lag in seconds. Taken
    /// from the oldest sample whose current LSN had already reached the confirmed position.
    pub fn lag_time(&self) -> Option<Duration> {
        let last = self.latest()?;
        if last.confirmed >= last.current {
            return Some(Duration::ZERO);
        }
        let reached = self
            .samples
            .iter()
            .rev()
            .find(|s| s.current <= last.confirmed)?;
        // `reached` is the last moment the source was at or before the confirmed point; the
        // source passed that point somewhere between it and the next sample.
        Some(last.at.duration_since(reached.at))
    }

    /// The cutover gate: the last `n` samples all below `max_bytes`.
    pub fn steady_below(&self, max_bytes: u64, n: usize) -> bool {
        n > 0
            && self.samples.len() >= n
            && self
                .samples
                .iter()
                .rev()
                .take(n)
                .all(|s| s.lag_bytes() < max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(u64, u64, u64)]) -> (LagSeries, Instant) {
        let t0 = Instant::now();
        let mut s = LagSeries::new(Duration::from_mins(15));
        for &(ms, cur, conf) in points {
            s.push(LagSample {
                at: t0 + Duration::from_millis(ms),
                current: Lsn::from_u64(cur),
                confirmed: Lsn::from_u64(conf),
            });
        }
        (s, t0)
    }

    #[test]
    fn eta_when_catching_up() {
        // produce 1000 B/s, confirm 3000 B/s: gaining 2000 B/s on a 4000 B lag
        let (s, _) = series(&[(0, 10_000, 0), (1000, 11_000, 3_000), (2000, 12_000, 8_000)]);
        assert_eq!(s.lag_bytes(), Some(4_000));
        let (p, c) = s.rates(Duration::from_mins(1)).unwrap();
        assert_eq!((p, c), (1000.0, 4000.0));
        assert_eq!(
            s.eta(Duration::from_mins(1)),
            Some(Duration::from_secs_f64(4_000.0 / 3_000.0))
        );
    }

    #[test]
    fn no_eta_when_falling_behind_and_zero_when_caught_up() {
        let (s, _) = series(&[(0, 1_000, 0), (1000, 3_000, 500)]);
        assert_eq!(s.eta(Duration::from_mins(1)), None);
        let (s, _) = series(&[(0, 1_000, 1_000)]);
        assert_eq!(s.eta(Duration::from_mins(1)), Some(Duration::ZERO));
        let (s, _) = series(&[(0, 1_000, 500)]);
        assert_eq!(
            s.eta(Duration::from_mins(1)),
            None,
            "one sample has no rate"
        );
    }

    #[test]
    fn lag_time_looks_back_to_when_the_source_was_there() {
        let (s, _) = series(&[
            (0, 100, 0),
            (1000, 200, 100),
            (2000, 300, 150),
            (3000, 400, 200),
        ]);
        // confirmed 200 now; the source was at 200 at t=1000 → 2 s behind
        assert_eq!(s.lag_time(), Some(Duration::from_secs(2)));
        let (s, _) = series(&[(0, 100, 100)]);
        assert_eq!(s.lag_time(), Some(Duration::ZERO));
    }

    #[test]
    fn steady_gate_needs_n_low_samples() {
        let (s, _) = series(&[
            (0, 500_000, 0),
            (1000, 500_100, 500_000),
            (2000, 500_200, 500_150),
        ]);
        assert!(!s.steady_below(100_000, 3), "first sample is far behind");
        assert!(s.steady_below(100_000, 2));
        assert!(!s.steady_below(100_000, 4), "not enough samples");
        assert!(!s.steady_below(100_000, 0));
    }

    #[test]
    fn old_samples_fall_out_and_out_of_order_ones_are_ignored() {
        let t0 = Instant::now();
        let mut s = LagSeries::new(Duration::from_secs(10));
        for i in 0..30u64 {
            s.push(LagSample {
                at: t0 + Duration::from_secs(i),
                current: Lsn::from_u64(i),
                confirmed: Lsn::from_u64(i),
            });
        }
        assert_eq!(s.samples().count(), 11);
        s.push(LagSample {
            at: t0,
            current: Lsn::ZERO,
            confirmed: Lsn::ZERO,
        });
        assert_eq!(s.latest().unwrap().current, Lsn::from_u64(29));
    }
}
