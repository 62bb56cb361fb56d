//! Replication lag from a series of samples of the source: its current LSN, the slot's
//! confirmed_flush LSN and the walsender's own time measure. Lag in seconds (the server's),
//! the drain trend and its catch-up estimate, the chart's time buckets, and the "low and steady"
//! gate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::lsn::Lsn;
use super::observed::{Sender, Side};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSample {
    pub at: Instant,
    /// The side whose slot was read: after a switch the series goes on from the other side.
    pub source: Side,
    /// Source `pg_current_wal_lsn()`.
    pub current: Lsn,
    /// The slot's `confirmed_flush_lsn`.
    pub confirmed: Lsn,
    pub time: LagTime,
}

impl LagSample {
    pub fn lag_bytes(&self) -> u64 {
        self.current.bytes_since(self.confirmed)
    }
}

/// Lag in seconds as the source's walsender measures it: the time between the source flushing
/// WAL and its consumer reporting it written, flushed and applied (`pg_stat_replication`). It
/// comes from the server's clock, so the dashboard's refresh rate or a pause of the dashboard
/// does not change it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LagTime {
    /// Nothing pending, or the walsender reports no lag (its lag columns are NULL once the
    /// consumer has caught up).
    CaughtUp,
    /// The largest of write, flush and replay lag; `since_reply` when the consumer has not
    /// replied for a while (its lag figures are then as old as that).
    Behind {
        lag: Duration,
        since_reply: Option<Duration>,
    },
    /// Bytes are pending and no walsender streams the slot: no time can be measured.
    NoSender,
    /// The walsender's row is hidden from the monitoring role (needs `pg_read_all_stats`).
    Hidden,
}

/// The consumer is said to have stopped replying after this long: a live apply worker answers
/// the walsender's keepalives well within it.
pub const REPLY_SILENCE: Duration = Duration::from_secs(15);

fn secs(v: Option<f64>) -> Option<Duration> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

impl LagTime {
    pub fn of(pending_bytes: u64, sender: Option<&Sender>) -> LagTime {
        let Some(s) = sender else {
            return if pending_bytes == 0 {
                LagTime::CaughtUp
            } else {
                LagTime::NoSender
            };
        };
        if s.state.is_none() {
            return LagTime::Hidden;
        }
        let lag = [s.write_lag_s, s.flush_lag_s, s.replay_lag_s]
            .into_iter()
            .filter_map(secs)
            .max();
        match lag {
            Some(lag) if pending_bytes > 0 => LagTime::Behind {
                lag,
                since_reply: secs(s.reply_age_s).filter(|a| *a >= REPLY_SILENCE),
            },
            _ => LagTime::CaughtUp,
        }
    }

    /// In seconds: 0 when caught up, `None` when unknown.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            LagTime::CaughtUp => Some(0.0),
            LagTime::Behind { lag, .. } => Some(lag.as_secs_f64()),
            LagTime::NoSender | LagTime::Hidden => None,
        }
    }

    /// The header's short form: the time, or `caught up`; nothing when unknown (the panel
    /// says why).
    pub fn short(&self) -> Option<String> {
        match self {
            LagTime::CaughtUp => Some("caught up".into()),
            LagTime::Behind { lag, .. } => Some(crate::format::seconds(*lag)),
            LagTime::NoSender | LagTime::Hidden => None,
        }
    }

    /// For people: `caught up`, `0.4 s`, `2.1 s, no reply for 40 s`, `? (no walsender)`.
    pub fn describe(&self) -> String {
        match self {
            LagTime::CaughtUp => "caught up".into(),
            LagTime::Behind { lag, since_reply } => {
                let mut s = crate::format::seconds(*lag);
                if let Some(r) = since_reply {
                    s.push_str(&format!(", no reply for {} s", r.as_secs()));
                }
                s
            }
            LagTime::NoSender => "? (no walsender)".into(),
            LagTime::Hidden => "? (grant pg_read_all_stats)".into(),
        }
    }
}

/// Where the lag is going, from a line fitted through the samples of the last [`TREND_SPAN`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trend {
    CaughtUp,
    /// Neither draining nor growing beyond the noise.
    Steady,
    Draining {
        bytes_per_s: f64,
        eta: Duration,
    },
    Growing {
        bytes_per_s: f64,
    },
}

/// The span the trend is fitted over: long enough that a burst of commits does not swing it.
pub const TREND_SPAN: Duration = Duration::from_mins(2);
/// A trend needs this much time covered, and at least [`TREND_MIN_SAMPLES`] samples.
pub const TREND_MIN_COVER: Duration = Duration::from_secs(20);
pub const TREND_MIN_SAMPLES: usize = 5;
/// A change over the span smaller than this (or than a quarter of the mean lag) is noise.
pub const TREND_NOISE_BYTES: f64 = 64.0 * 1024.0;

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

    /// The newest sample, when it was read from `source` (after a switch, the old direction's
    /// figures are not the lag any more).
    pub fn latest(&self, source: Side) -> Option<&LagSample> {
        self.samples.back().filter(|s| s.source == source)
    }

    pub fn lag_bytes(&self, source: Side) -> Option<u64> {
        self.latest(source).map(LagSample::lag_bytes)
    }

    pub fn lag_time(&self, source: Side) -> Option<LagTime> {
        self.latest(source).map(|s| s.time)
    }

    /// The trend over [`TREND_SPAN`]: a least-squares line through lag bytes against time.
    /// `None` until enough samples cover enough time; `Steady` when the change it predicts over
    /// the span is within the noise.
    pub fn trend(&self, source: Side) -> Option<Trend> {
        let last = self.latest(source)?;
        if last.lag_bytes() == 0 || last.time == LagTime::CaughtUp {
            return Some(Trend::CaughtUp);
        }
        let pts: Vec<(f64, f64)> = self
            .samples
            .iter()
            .rev()
            .take_while(|s| s.source == source && last.at.duration_since(s.at) <= TREND_SPAN)
            .map(|s| {
                #[allow(clippy::cast_precision_loss)] // a rate for people
                let y = s.lag_bytes() as f64;
                (-last.at.duration_since(s.at).as_secs_f64(), y)
            })
            .collect();
        let cover = pts.last().map_or(0.0, |p| -p.0);
        if pts.len() < TREND_MIN_SAMPLES || cover < TREND_MIN_COVER.as_secs_f64() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        if (slope * cover).abs() < TREND_NOISE_BYTES.max(my / 4.0) {
            return Some(Trend::Steady);
        }
        #[allow(clippy::cast_precision_loss)]
        let lag = last.lag_bytes() as f64;
        Some(if slope < 0.0 {
            Trend::Draining {
                bytes_per_s: -slope,
                eta: Duration::from_secs_f64(lag / -slope),
            }
        } else {
            Trend::Growing { bytes_per_s: slope }
        })
    }

    /// The largest lag in each of `n` equal spans of the `window` that ends at `now`, oldest
    /// first; `None` for a span without samples.
    pub fn buckets(&self, now: Instant, window: Duration, n: usize) -> Vec<Option<u64>> {
        let mut out = vec![None; n];
        if n == 0 || window.is_zero() {
            return out;
        }
        let w = window.as_secs_f64();
        for s in &self.samples {
            let age = now.saturating_duration_since(s.at).as_secs_f64();
            if age >= w {
                continue;
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )] // 0 ≤ age < w: the index is within n
            let i = n - 1 - ((age / w) * n as f64).floor() as usize;
            let b = &mut out[i.min(n - 1)];
            *b = Some(b.unwrap_or(0).max(s.lag_bytes()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t0: Instant, ms: u64, cur: u64, conf: u64, time: LagTime) -> LagSample {
        LagSample {
            at: t0 + Duration::from_millis(ms),
            source: Side::Blue,
            current: Lsn::from_u64(cur),
            confirmed: Lsn::from_u64(conf),
            time,
        }
    }

    fn series(points: &[(u64, u64, u64)]) -> (LagSeries, Instant) {
        let t0 = Instant::now();
        let mut s = LagSeries::new(Duration::from_mins(15));
        for &(ms, cur, conf) in points {
            let time = LagTime::Behind {
                lag: Duration::from_millis(400),
                since_reply: None,
            };
            s.push(sample(t0, ms, cur, conf, time));
        }
        (s, t0)
    }

    fn sender(lags: [Option<f64>; 3], reply_age: f64) -> Sender {
        Sender {
            state: Some("streaming".into()),
            write_lag_s: lags[0],
            flush_lag_s: lags[1],
            replay_lag_s: lags[2],
            reply_age_s: Some(reply_age),
        }
    }

    #[test]
    fn lag_time_is_the_walsenders_largest_lag() {
        let s = sender([Some(0.1), Some(0.7), Some(0.3)], 0.2);
        assert_eq!(
            LagTime::of(5000, Some(&s)),
            LagTime::Behind {
                lag: Duration::from_millis(700),
                since_reply: None
            }
        );
        assert_eq!(LagTime::of(5000, Some(&s)).describe(), "0.7 s");
        // NULL lags: the walsender says its consumer caught up.
        let s = sender([None, None, None], 0.2);
        assert_eq!(LagTime::of(120, Some(&s)), LagTime::CaughtUp);
        assert_eq!(LagTime::of(0, None), LagTime::CaughtUp);
        assert_eq!(LagTime::of(10, None), LagTime::NoSender);
        let hidden = Sender::default();
        assert_eq!(LagTime::of(10, Some(&hidden)), LagTime::Hidden);
        // A consumer that stopped replying: its figures are as old as its last reply.
        let s = sender([Some(0.5), Some(0.5), Some(0.5)], 42.0);
        assert_eq!(
            LagTime::of(10, Some(&s)).describe(),
            "0.5 s, no reply for 42 s"
        );
    }

    #[test]
    fn lag_seconds_do_not_change_with_refresh_rate_or_a_freeze() {
        let server = sender([Some(0.3), Some(0.4), Some(0.35)], 0.1);
        let t0 = Instant::now();
        let mut fast = LagSeries::new(Duration::from_mins(15));
        let mut slow = LagSeries::new(Duration::from_mins(15));
        let mut frozen = LagSeries::new(Duration::from_mins(15));
        for i in 0..40u64 {
            let cur = 2_000 + i * 100;
            let t = LagTime::of(1_200, Some(&server));
            fast.push(sample(t0, i * 250, cur, cur - 1_200, t));
            if i % 4 == 0 {
                slow.push(sample(t0, i * 250, cur, cur - 1_200, t));
            }
        }
        // The dashboard stopped for 10 s, then read again.
        frozen.push(sample(t0, 0, 1_000, 0, LagTime::of(1_000, Some(&server))));
        frozen.push(sample(
            t0,
            10_000,
            1_200,
            0,
            LagTime::of(1_200, Some(&server)),
        ));
        let want = Some(LagTime::Behind {
            lag: Duration::from_millis(400),
            since_reply: None,
        });
        assert_eq!(fast.lag_time(Side::Blue), want);
        assert_eq!(slow.lag_time(Side::Blue), want);
        assert_eq!(frozen.lag_time(Side::Blue), want);
    }

    #[test]
    fn after_a_switch_the_old_directions_figures_are_not_the_lag() {
        let (s, _) = series(&[(0, 1_000, 500)]);
        assert_eq!(s.lag_bytes(Side::Blue), Some(500));
        assert_eq!(s.lag_bytes(Side::Green), None);
        assert_eq!(s.trend(Side::Green), None);
    }

    #[test]
    fn trend_drains_with_an_eta_from_the_fitted_rate() {
        // 1 MB of lag draining by 10 kB/s, read every second for a minute.
        let pts: Vec<(u64, u64, u64)> = (0..60)
            .map(|i| {
                (
                    i * 1000,
                    10_000_000 + i * 1000,
                    10_000_000 + i * 1000 - (1_000_000 - i * 10_000),
                )
            })
            .collect();
        let (s, _) = series(&pts);
        let Some(Trend::Draining { bytes_per_s, eta }) = s.trend(Side::Blue) else {
            panic!("{:?}", s.trend(Side::Blue));
        };
        assert!((bytes_per_s - 10_000.0).abs() < 1.0, "{bytes_per_s}");
        // 410 kB left at 10 kB/s
        assert_eq!(eta.as_secs(), 41);
    }

    #[test]
    fn no_eta_at_steady_state_or_before_enough_samples() {
        // A small lag going up and down with each commit: no trend worth a number.
        let pts: Vec<(u64, u64, u64)> = (0..120)
            .map(|i| {
                (
                    i * 1000,
                    1_000_000 + i * 500,
                    1_000_000 + i * 500 - [1800, 1000, 1200][usize::try_from(i % 3).unwrap()],
                )
            })
            .collect();
        let (s, _) = series(&pts);
        assert_eq!(s.trend(Side::Blue), Some(Trend::Steady));
        let (s, _) = series(&pts[..3]);
        assert_eq!(s.trend(Side::Blue), None, "three samples are not a trend");
        let (s, _) = series(&[(0, 100, 100)]);
        assert_eq!(s.trend(Side::Blue), Some(Trend::CaughtUp));
    }

    #[test]
    fn trend_grows() {
        let pts: Vec<(u64, u64, u64)> = (0..30)
            .map(|i| (i * 1000, 5_000_000 + i * 50_000, 5_000_000))
            .collect();
        let (s, _) = series(&pts);
        let Some(Trend::Growing { bytes_per_s }) = s.trend(Side::Blue) else {
            panic!("{:?}", s.trend(Side::Blue));
        };
        assert!((bytes_per_s - 50_000.0).abs() < 1.0);
    }

    #[test]
    fn buckets_take_the_largest_lag_of_each_span_of_the_window() {
        let (s, t0) = series(&[
            (0, 100, 0),
            (500, 300, 0),
            (59_000, 1_000, 950),
            (899_000, 2_000, 1_990),
        ]);
        let now = t0 + Duration::from_mins(15);
        let b = s.buckets(now, Duration::from_mins(15), 15);
        assert_eq!(b.len(), 15);
        assert_eq!(b[0], Some(300), "max of the first minute");
        assert_eq!(b[1..14], [None; 13]);
        assert_eq!(b[14], Some(10));
        // Samples older than the window are left out.
        let b = s.buckets(now + Duration::from_mins(1), Duration::from_mins(15), 15);
        assert_eq!(b[0], None);
    }

    #[test]
    fn old_samples_fall_out_and_out_of_order_ones_are_ignored() {
        let t0 = Instant::now();
        let mut s = LagSeries::new(Duration::from_secs(10));
        for i in 0..30u64 {
            s.push(sample(t0, i * 1000, i, i, LagTime::CaughtUp));
        }
        assert_eq!(s.samples.len(), 11);
        s.push(sample(t0, 0, 0, 0, LagTime::CaughtUp));
        assert_eq!(s.latest(Side::Blue).unwrap().current, Lsn::from_u64(29));
    }
}
