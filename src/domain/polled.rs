//! A polled value with its freshness: errors are data, shown beside the last good value.

use std::time::{Duration, SystemTime};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PollError {
    pub at: SystemTime,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Polled<T> {
    /// The last value read successfully, kept while later polls fail.
    pub value: Option<T>,
    pub last_ok: Option<SystemTime>,
    pub last_error: Option<PollError>,
}

impl<T> Default for Polled<T> {
    fn default() -> Self {
        Polled {
            value: None,
            last_ok: None,
            last_error: None,
        }
    }
}

impl<T> Polled<T> {
    pub fn record(&mut self, at: SystemTime, result: Result<T, String>) {
        match result {
            Ok(v) => {
                self.value = Some(v);
                self.last_ok = Some(at);
                self.last_error = None;
            }
            Err(message) => self.last_error = Some(PollError { at, message }),
        }
    }

    /// Age of the value at `now`; `None` if there never was one.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.last_ok
            .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO))
    }

    /// Stale after three missed intervals (or never read).
    pub fn is_stale(&self, now: SystemTime, interval: Duration) -> bool {
        self.age(now).is_none_or(|a| a > interval * 3)
    }

    /// The value, only if the latest poll succeeded: for decisions that must not act on old data.
    /// Neither a value nor an error yet: the first read is under way.
    pub fn unanswered(&self) -> bool {
        self.last_ok.is_none() && self.last_error.is_none()
    }

    pub fn fresh(&self) -> Option<&T> {
        if self.last_error.is_some() {
            None
        } else {
            self.value.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_keeps_last_value_but_not_freshness() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut p = Polled::default();
        assert!(p.is_stale(t0, Duration::from_secs(1)));
        p.record(t0, Ok(5));
        assert_eq!(p.fresh(), Some(&5));
        assert!(!p.is_stale(t0 + Duration::from_secs(3), Duration::from_secs(1)));
        assert!(p.is_stale(t0 + Duration::from_secs(4), Duration::from_secs(1)));
        p.record(
            t0 + Duration::from_secs(1),
            Err("connection refused".into()),
        );
        assert_eq!(p.value, Some(5));
        assert_eq!(p.fresh(), None);
        assert_eq!(p.last_error.as_ref().unwrap().message, "connection refused");
        p.record(t0 + Duration::from_secs(2), Ok(6));
        assert_eq!(p.fresh(), Some(&6));
    }
}
