//! When to poll an import job: soon after it ends, with few polls.
//!
//! A job's slot (one of the imports in flight) is held until the job is *seen* to end, so the
//! wait between its end and the poll that sees it is time lost for every import behind it.
//! The schedule keeps that lag to a fraction of the job's own time: after the first poll, each
//! wait is `lag_percent` of the time waited so far (at least `min_delay`, at most `max_delay`).
//! And it learns: once a few jobs of this client have ended, the first poll comes when the
//! quickest tenth of them had ended, so a job is not polled while it certainly still runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Jobs remembered.
const WINDOW: usize = 256;
/// Jobs needed before the first poll is learned.
const LEARN_AFTER: usize = 5;

/// How long the jobs of one client took, shared by its clones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durations {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    /// When each job was seen ended, after its acceptance.
    ended: VecDeque<Duration>,
    /// First polls handed out.
    asked: u64,
}

/// One first poll in this many comes at half the usual time, so that the schedule learns when
/// jobs get quicker (rarely: each probe of a job that did not get quicker costs a poll, and
/// when Snyk's rate limit binds, polls are what it binds).
const PROBE_EVERY: u64 = 50;

impl Durations {
    /// A job was seen ended `hi` after it was accepted.
    pub(crate) fn record(&self, hi: Duration) {
        if let Ok(mut seen) = self.inner.lock() {
            if seen.ended.len() == WINDOW {
                seen.ended.pop_front();
            }
            seen.ended.push_back(hi);
        }
    }

    /// When to poll a new job first, once enough jobs ended: when the quickest tenth of them
    /// were seen ended (a job that ends sooner is seen at that time, one that ends later is
    /// polled on from there); or, one time in [`PROBE_EVERY`], half that first, and that
    /// second if the probe finds the job running.
    pub(crate) fn early(&self) -> Option<(Duration, Option<Duration>)> {
        let mut seen = self.inner.lock().ok()?;
        if seen.ended.len() < LEARN_AFTER {
            return None;
        }
        let mut sorted: Vec<Duration> = seen.ended.iter().copied().collect();
        sorted.sort_unstable();
        let early = sorted[sorted.len() / 10];
        seen.asked += 1;
        Some(if seen.asked % PROBE_EVERY == 0 {
            (early / 2, Some(early))
        } else {
            (early, None)
        })
    }
}

/// The wait before the next poll of a job polled `waited` after it was accepted.
pub(crate) fn next_delay(
    waited: Duration,
    lag_percent: u32,
    min_delay: Duration,
    max_delay: Duration,
) -> Duration {
    (waited * lag_percent / 100).clamp(min_delay, max_delay.max(min_delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_poll_is_learned_from_the_quickest_tenth_with_a_probe_now_and_then() {
        let d = Durations::default();
        for s in [30, 20, 21, 22] {
            d.record(Duration::from_secs(s));
        }
        assert_eq!(d.early(), None, "four jobs teach nothing yet");
        d.record(Duration::from_secs(25));
        let firsts: Vec<_> = (0..PROBE_EVERY).filter_map(|_| d.early()).collect();
        let last = firsts.len() - 1;
        assert!(
            firsts[..last]
                .iter()
                .all(|f| *f == (Duration::from_secs(20), None))
        );
        assert_eq!(
            firsts[last],
            (Duration::from_secs(10), Some(Duration::from_secs(20))),
            "one in PROBE_EVERY probes earlier, then polls when the others"
        );
    }

    #[test]
    fn waits_grow_with_the_time_waited_within_their_bounds() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        assert_eq!(next_delay(Duration::from_secs(2), 8, min, max), min);
        assert_eq!(
            next_delay(Duration::from_secs(100), 8, min, max),
            Duration::from_secs(8)
        );
        assert_eq!(next_delay(Duration::from_secs(3600), 8, min, max), max);
    }
}
