//! A rolling window: at most `limit` events in any span of `window`. The clients' budgets per
//! credential and the sandboxes' server-side rate limits both count with it, on tokio's clock
//! (so tests on the paused clock see exact waits).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The times of the events inside the current window.
#[derive(Clone, Debug)]
pub struct RollingWindow {
    limit: usize,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl RollingWindow {
    /// A window admitting `limit` events (zero is treated as one) in any span of `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            sent: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.sent.pop_front();
        }
    }

    /// When the next event fits: `None` if now, else the instant the oldest event leaves the
    /// window.
    pub fn next_free(&mut self, now: Instant) -> Option<Instant> {
        self.prune(now);
        if self.sent.len() < self.limit {
            return None;
        }
        self.sent.front().map(|oldest| *oldest + self.window)
    }

    /// How many events are inside the window at `now`.
    pub fn count(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.sent.len()
    }

    /// How much of the window's limit the events inside it at `now` use, from 0 to 1 (or more,
    /// when events were counted that did not fit).
    pub fn share_used(&mut self, now: Instant) -> f64 {
        self.count(now) as f64 / self.limit as f64
    }

    /// Counts an event at `now` (whether or not it fitted).
    pub fn record(&mut self, now: Instant) {
        self.record_many(now, 1);
    }

    /// Counts `n` events at `now` (whether or not they fitted).
    pub fn record_many(&mut self, now: Instant, n: usize) {
        self.sent.extend(std::iter::repeat_n(now, n));
    }

    /// Counts an event at `now` if it fits and returns how many more would fit now; when it
    /// does not fit, counts nothing and returns how long until it would.
    pub fn admit(&mut self, now: Instant) -> Result<usize, Duration> {
        match self.next_free(now) {
            Some(at) => Err(at.duration_since(now)),
            None => {
                self.record(now);
                Ok(self.limit - self.sent.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn admits_the_limit_then_waits_for_the_oldest_to_leave() {
        let mut w = RollingWindow::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(w.admit(t0), Ok(1));
        assert_eq!(w.admit(t0 + Duration::from_secs(10)), Ok(0));
        assert_eq!(
            w.admit(t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        // The refused event was not counted: the first one leaves at 60 s.
        assert_eq!(w.admit(t0 + Duration::from_secs(60)), Ok(0));
        assert_eq!(
            w.next_free(t0 + Duration::from_secs(61)),
            Some(t0 + Duration::from_secs(70))
        );
        assert_eq!(
            RollingWindow::new(0, Duration::from_secs(1)).admit(t0),
            Ok(0)
        );
    }
}
