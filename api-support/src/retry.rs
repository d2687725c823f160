//! When to try again, and how long to wait first.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// Doubling waits: `first` after one failure, twice as long after each further failure in a
/// row, never longer than `max`. The one backoff of the workspace: the request loop's retries
/// ([`RetryPolicy`], which adds jitter), a watch's failed rounds, `serve`'s failed full
/// reconciles and its deliveries that keep failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Waits from `first`, doubling, up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after `failures` failures in a row (1 for the first; 0 is taken as 1).
    pub fn after(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// How the request loop retries.
///
/// A failure is retried when [`crate::Error::is_retryable`] says so, up to `max_attempts`
/// requests in all. The wait before each retry is the server's `Retry-After` when it sent one
/// (seconds or an HTTP date, honoured as given), otherwise exponential backoff with full jitter:
/// a random delay between zero and `min(max_delay, base_delay × 2^(retry − 1))`. When the next
/// wait would take the total time spent waiting past `max_total_wait`, the loop stops with the
/// last error instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests in all, the first included. `1` disables retries.
    pub max_attempts: u32,
    /// The backoff's base delay.
    pub base_delay: Duration,
    /// The cap on one computed backoff delay.
    pub max_delay: Duration,
    /// The cap on the time one request may spend waiting between attempts.
    pub max_total_wait: Duration,
    /// How long one request may go on while its attempts get no answer at all (time-outs,
    /// refused or broken connections): once this much has passed since its first attempt, it
    /// is given up rather than tried again. With the default transport's 30-second time-out, a
    /// service that accepts connections and never answers is given up within about 90 seconds.
    pub unanswered_budget: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 1 s base, 60 s cap per delay, 10 minutes in all: a burst of errors of up to
    /// about half a minute is ridden out (backoff with full jitter of at most 1, 2, 4, 8 and
    /// 16 s), while a dead service is given up on quickly.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_total_wait: Duration::from_secs(600),
            unanswered_budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The ceiling of the backoff before retry number `retry` (1 for the first retry).
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        Backoff::new(self.base_delay, self.max_delay).after(retry)
    }

    /// A full-jitter backoff delay before retry number `retry`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// Reads `Retry-After` as seconds or as an HTTP date (relative to the wall clock).
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ceiling(1), Duration::from_secs(1));
        assert_eq!(p.backoff_ceiling(2), Duration::from_secs(2));
        assert_eq!(p.backoff_ceiling(4), Duration::from_secs(8));
        assert_eq!(p.backoff_ceiling(7), Duration::from_secs(60));
        assert_eq!(p.backoff_ceiling(200), Duration::from_secs(60));
        for retry in 1..10 {
            assert!(p.backoff(retry) <= p.backoff_ceiling(retry));
        }
    }

    #[test]
    fn retry_after_forms() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            parse_retry_after(&m)
        };
        assert_eq!(h("7"), Some(Duration::from_secs(7)));
        assert_eq!(h("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(h("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let d = h(&future).unwrap();
        assert!(
            d > Duration::from_secs(97) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(h("soon"), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }
}
