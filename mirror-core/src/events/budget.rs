//! Rounds spend Bitbucket's hourly budget so that a flood of deliveries cannot take it all in
//! seconds: the requests rounds make are drawn from a bucket that holds half of what they
//! may spend in an hour and fills at that hourly rate, and never pass what they may spend in
//! any rolling hour, where what they may spend is the budget less a reserve for the full
//! reconcile (what the last one spent, and a fifth more, at least a
//! tenth of the budget and at most half of it). While the bucket is empty no round starts;
//! deliveries are still accepted and queued meanwhile, and coalesce: the round that starts when
//! it fills takes them all (one action per repository, one filtered listing per workspace).
//! A full reconcile's own requests are not drawn from the bucket.
//!
//! A repository just created need not wait behind a flood: while the bucket is empty, a round
//! of created repositories alone may still draw on the reserve (a full reconcile would spend
//! it importing them), never past the whole budget in any rolling hour.

use std::time::Duration;

use bitbucket_cloud_client::api_support::RollingWindow;
use tokio::time::Instant;

/// How often the budget is looked at again while rounds wait.
pub(super) const RECHECK: Duration = Duration::from_secs(5);

/// The bucket rounds draw their Bitbucket requests from.
#[derive(Debug)]
pub(super) struct Budget {
    /// The requests allowed in an hour.
    per_hour: u64,
    /// Kept for the full reconcile.
    reserve: u64,
    /// Requests rounds may make now (negative: owed).
    tokens: f64,
    /// When the bucket was last filled.
    filled_at: Instant,
    /// The port's request counter when last read.
    last_total: u64,
    /// Requests full reconciles made since then (not drawn from the bucket).
    exempt: u64,
    /// What rounds spent over the last hour.
    spent: RollingWindow,
    /// Since when rounds wait for the budget.
    pub(super) waiting_since: Option<Instant>,
}

impl Budget {
    /// A budget of `per_hour` requests; the port's request counter reads `total` now.
    pub(super) fn new(per_hour: u64, total: u64) -> Self {
        let mut b = Self {
            per_hour,
            reserve: per_hour / 10,
            tokens: 0.0,
            filled_at: Instant::now(),
            last_total: total,
            exempt: 0,
            spent: RollingWindow::new(
                usize::try_from(per_hour).unwrap_or(usize::MAX),
                Duration::from_secs(3600),
            ),
            waiting_since: None,
        };
        b.tokens = b.capacity();
        b
    }

    /// What rounds may spend in an hour.
    fn hourly(&self) -> f64 {
        self.per_hour.saturating_sub(self.reserve) as f64
    }

    /// The most the bucket holds: half an hour's spending.
    fn capacity(&self) -> f64 {
        self.hourly() / 2.0
    }

    /// Whether a round of created repositories alone may start while the others wait: the
    /// reserve is theirs too, and the whole budget bounds any rolling hour.
    pub(super) fn may_start_creations(&mut self, total: u64) -> bool {
        let (_, in_the_hour) = self.fill(total);
        self.tokens + self.reserve as f64 > 0.0 && (in_the_hour as u64) < self.per_hour
    }

    /// Fills the bucket for the time since it was last filled, less what rounds spent since
    /// (the port's request counter reads `total`); returns now and what rounds spent in the
    /// last hour.
    fn fill(&mut self, total: u64) -> (Instant, usize) {
        let now = Instant::now();
        let hours = now.saturating_duration_since(self.filled_at).as_secs_f64() / 3600.0;
        let spent = total
            .saturating_sub(self.last_total)
            .saturating_sub(self.exempt);
        self.tokens = (self.tokens + hours * self.hourly() - spent as f64).min(self.capacity());
        (self.filled_at, self.last_total, self.exempt) = (now, total, 0);
        self.spent
            .record_many(now, usize::try_from(spent).unwrap_or(usize::MAX));
        (now, self.spent.count(now))
    }

    /// A full reconcile made `requests`: the reserve follows it, and they are not the rounds'.
    pub(super) fn reconciled(&mut self, requests: u64) {
        self.reserve = (requests + requests / 5).clamp(self.per_hour / 10, self.per_hour / 2);
        self.exempt += requests;
    }

    /// Whether a round may start now, given the port's request counter `total`; when it may
    /// not, rounds wait (`waiting_since` says since when). Logs once when the wait begins and
    /// once when it ends.
    pub(super) fn may_start(&mut self, total: u64, queued: usize) -> bool {
        let (now, in_the_hour) = self.fill(total);
        if self.tokens > 0.0 && (in_the_hour as f64) < self.hourly() {
            if let Some(since) = self.waiting_since.take() {
                tracing::info!(
                    waited_s = now.saturating_duration_since(since).as_secs(),
                    "rounds go on: Bitbucket's budget has room again"
                );
            }
            return true;
        }
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
            tracing::warn!(
                budget = self.per_hour,
                reserve = self.reserve,
                queued,
                "deliveries wait for Bitbucket's hourly budget (rounds spend it evenly and keep a reserve for the full reconcile); they stay queued and coalesce"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_flood_spends_half_at_once_then_the_hourly_rate_and_never_the_reserve() {
        let mut b = Budget::new(1_000, 0);
        b.reconciled(200); // reserve 240: rounds may spend 760 an hour, 380 at once
        let mut total = 200;
        let mut started = Vec::new();
        // A flood: every second a round wants to start, each costing 10 requests.
        for second in 0..3600 {
            if b.may_start(total, 500) {
                started.push(second);
                total += 10;
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(
            started[..16],
            (0..16).collect::<Vec<_>>(),
            "a fifth at once"
        );
        assert!(b.waiting_since.is_some() || started.len() > 16);
        let spent = (started.len() * 10) as u64;
        assert!(
            (750..=770).contains(&spent),
            "within the hour: what rounds may spend (760), never the reserve: {spent}"
        );
        let gaps: Vec<_> = started.windows(2).skip(40).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| (40..=60).contains(g)),
            "then a round of 10 every ~47 s: {gaps:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn created_repositories_draw_on_the_reserve_while_a_flood_waits() {
        let mut b = Budget::new(1_000, 0);
        b.reconciled(200); // reserve 240
        let mut total = 200 + 450; // a flood spent the bucket (450 when it began)
        assert!(!b.may_start(total, 500), "the flood's rounds wait");
        let mut creations = 0;
        while b.may_start_creations(total) {
            creations += 1;
            total += 2; // a created repository read by uuid, and its workspace
        }
        assert_eq!(creations, 120, "the reserve (240), two requests each");
        assert!(!b.may_start(total, 500), "and the others still wait");
        // Later the bucket fills for both again.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(b.may_start_creations(total) && b.may_start(total, 500));
    }

    #[test]
    fn the_reserve_follows_the_full_reconcile_within_bounds() {
        let mut b = Budget::new(1_000, 0);
        b.reconciled(10);
        assert_eq!(b.reserve, 100);
        b.reconciled(300);
        assert_eq!(b.reserve, 360);
        b.reconciled(5_000);
        assert_eq!(b.reserve, 500);
    }
}
