//! Client-side rate limiting per credential, and pools of credentials used in turn.
//!
//! Each credential has its own budget ([`RateLimit`]): a sliding window that admits at most
//! `requests` in any `window`, which is how Bitbucket's and Snyk's rolling limits are counted.
//! The pool hands out the least-used credential that has budget left, so requests spread evenly;
//! a credential the server throttled rests until its `Retry-After` while the others carry on; when
//! every credential is out of budget or resting, [`CredentialPool::acquire`] waits for the first
//! to return. Waiting happens on tokio's clock, so tests run it on a paused clock.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::window::RollingWindow;

use crate::Authorizer;

/// Waits at least this long are logged as warnings.
const LONG_WAIT: Duration = Duration::from_secs(10);

/// A request budget: at most `requests` in any rolling `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// How many requests the window admits. Zero is treated as one.
    pub requests: u32,
    /// The length of the rolling window.
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per rolling hour.
    pub fn per_hour(requests: u32) -> Self {
        Self {
            requests,
            window: Duration::from_secs(3600),
        }
    }

    /// `requests` per rolling minute.
    pub fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            window: Duration::from_secs(60),
        }
    }
}

/// One credential with its optional client-side budget.
#[derive(Clone, Debug)]
pub struct Credential {
    auth: Arc<dyn Authorizer>,
    limit: Option<RateLimit>,
}

impl Credential {
    /// A credential without a client-side budget.
    pub fn new(auth: Arc<dyn Authorizer>) -> Self {
        Self { auth, limit: None }
    }

    /// Sets this credential's client-side budget.
    pub fn with_limit(mut self, limit: RateLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The authorizer.
    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.auth
    }
}

/// The bookkeeping of one credential.
#[derive(Debug)]
struct SlotState {
    limit: Option<RateLimit>,
    /// The requests inside the current window (only kept with a limit).
    window: Option<RollingWindow>,
    /// The server throttled this credential; it rests until then.
    resting_until: Option<Instant>,
    /// A minimum spacing between requests, set when the server says the budget is nearly spent.
    pace: Option<Duration>,
    last: Option<Instant>,
    used: u64,
}

impl SlotState {
    /// When this slot can next send a request (`metered`: one that counts against the budget):
    /// `None` if now.
    fn next_free(&mut self, now: Instant, metered: bool) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut later = |t: Instant| {
            if t > now {
                at = Some(at.map_or(t, |a: Instant| a.max(t)));
            }
        };
        if let Some(until) = self.resting_until {
            later(until);
        }
        if !metered {
            return at;
        }
        if let (Some(pace), Some(last)) = (self.pace, self.last) {
            later(last + pace);
        }
        if let Some(free) = self.window.as_mut().and_then(|w| w.next_free(now)) {
            later(free);
        }
        at
    }

    fn record(&mut self, now: Instant, metered: bool) {
        if metered {
            if let Some(window) = &mut self.window {
                window.record(now);
            }
            self.last = Some(now);
        }
        self.used += 1;
    }
}

/// A credential handed out for one attempt.
#[derive(Clone, Debug)]
pub struct Lease {
    index: usize,
    auth: Arc<dyn Authorizer>,
}

impl Lease {
    /// The position of the credential in its pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The credential's authorizer.
    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.auth
    }
}

/// One or more credentials used in turn, each with its own budget. Cloning is cheap and clones
/// share the budgets.
#[derive(Clone)]
pub struct CredentialPool {
    auths: Arc<[Arc<dyn Authorizer>]>,
    state: Arc<Mutex<Vec<SlotState>>>,
}

impl CredentialPool {
    /// A pool of the given credentials. An empty list gives a pool of one [`crate::Anonymous`].
    pub fn new(credentials: impl IntoIterator<Item = Credential>) -> Self {
        let mut auths: Vec<Arc<dyn Authorizer>> = Vec::new();
        let mut state = Vec::new();
        for c in credentials {
            auths.push(c.auth);
            state.push(SlotState {
                limit: c.limit,
                window: c
                    .limit
                    .map(|l| RollingWindow::new(l.requests as usize, l.window)),
                resting_until: None,
                pace: None,
                last: None,
                used: 0,
            });
        }
        if auths.is_empty() {
            return Self::new([Credential::new(Arc::new(crate::Anonymous))]);
        }
        Self {
            auths: auths.into(),
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A pool of one credential.
    pub fn single(credential: Credential) -> Self {
        Self::new([credential])
    }

    /// How many credentials the pool holds.
    pub fn len(&self) -> usize {
        self.auths.len()
    }

    /// Always false: a pool holds at least one credential.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The authorizers, in order.
    pub fn authorizers(&self) -> &[Arc<dyn Authorizer>] {
        &self.auths
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SlotState>> {
        // The state stays consistent even if a holder panicked: every update is a single step.
        crate::sync::lock(&self.state)
    }

    /// Takes a credential for one request: the least-used one with budget left, waiting for the
    /// first to become free when none is.
    pub async fn acquire(&self) -> Lease {
        self.acquire_for(true).await
    }

    /// Takes a credential for one request. A `metered` request counts against the credential's
    /// budget and waits for it; an unmetered one (an endpoint outside the rate-limited resource)
    /// only waits while the credential rests after a 429.
    pub async fn acquire_for(&self, metered: bool) -> Lease {
        loop {
            let wake = {
                let now = Instant::now();
                let mut slots = self.lock();
                let mut best: Option<(usize, u64)> = None;
                let mut earliest: Option<Instant> = None;
                for (i, slot) in slots.iter_mut().enumerate() {
                    match slot.next_free(now, metered) {
                        None => {
                            if best.is_none_or(|(_, used)| slot.used < used) {
                                best = Some((i, slot.used));
                            }
                        }
                        Some(t) => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                    }
                }
                if let Some((i, _)) = best {
                    slots[i].record(now, metered);
                    return Lease {
                        index: i,
                        auth: self.auths[i].clone(),
                    };
                }
                earliest.unwrap_or(now)
            };
            let wait = wake.saturating_duration_since(Instant::now());
            if wait >= LONG_WAIT {
                // Worth telling people: a long pause is the budget, not a hang.
                tracing::warn!(
                    wait_s = wait.as_secs(),
                    "every credential has spent its request budget; waiting for the rolling window"
                );
            } else {
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "every credential is out of budget; waiting"
                );
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Lets the credential at `index` rest until `until` (the server throttled it).
    pub fn rest(&self, index: usize, until: Instant) {
        if let Some(slot) = self.lock().get_mut(index) {
            slot.resting_until = Some(slot.resting_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Sets or clears a minimum spacing between requests on the credential at `index`, used when
    /// the server says its budget is nearly spent.
    pub fn set_pace(&self, index: usize, pace: Option<Duration>) {
        if let Some(slot) = self.lock().get_mut(index) {
            slot.pace = pace;
        }
    }

    /// The configured budget of the credential at `index`.
    pub fn limit(&self, index: usize) -> Option<RateLimit> {
        self.lock().get(index).and_then(|s| s.limit)
    }

    /// Whether some credential other than `index` can send right now.
    pub fn another_is_free(&self, index: usize) -> bool {
        let now = Instant::now();
        self.lock()
            .iter_mut()
            .enumerate()
            .any(|(i, s)| i != index && s.next_free(now, true).is_none())
    }

    /// How much of the pool's budget its rolling windows hold now, from 0 to 1: the requests
    /// inside the credentials' windows over what the windows admit. `None` when no credential
    /// has a budget. Callers that can spend fewer requests (a poll later rather than sooner) do
    /// so as it nears 1.
    pub fn budget_used(&self) -> Option<f64> {
        let now = Instant::now();
        let mut slots = self.lock();
        let (used, limited) = slots
            .iter_mut()
            .filter_map(|s| s.window.as_mut().map(|w| w.share_used(now)))
            .fold((0.0, 0u32), |(sum, n), share| (sum + share, n + 1));
        (limited > 0).then(|| used / f64::from(limited))
    }

    /// How many requests each credential has been handed, in order.
    pub fn usage(&self) -> Vec<u64> {
        self.lock().iter().map(|s| s.used).collect()
    }

    /// Removes every credential's secrets from `text`.
    pub fn redact(&self, text: &mut String) {
        for a in self.auths.iter() {
            a.redact(text);
        }
    }
}

impl fmt::Debug for CredentialPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialPool")
            .field("credentials", &self.auths)
            .field("usage", &self.usage())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticAuth;
    use secrecy::SecretString;

    fn pool(n: usize, limit: Option<RateLimit>) -> CredentialPool {
        CredentialPool::new((0..n).map(|i| {
            let c = Credential::new(Arc::new(StaticAuth::bearer(
                "t",
                SecretString::from(format!("secret-{i}")),
            )));
            match limit {
                Some(l) => c.with_limit(l),
                None => c,
            }
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_used_is_the_share_of_the_window_spent_and_leaves_with_it() {
        assert_eq!(pool(1, None).budget_used(), None);
        let p = pool(2, Some(RateLimit::per_minute(4)));
        assert_eq!(p.budget_used(), Some(0.0));
        for _ in 0..3 {
            p.acquire().await;
        }
        assert_eq!(p.budget_used(), Some(3.0 / 8.0));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(p.budget_used(), Some(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_waits_rather_than_overspends() {
        let p = pool(1, Some(RateLimit::per_minute(2)));
        let start = Instant::now();
        p.acquire().await;
        p.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        p.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_spread_evenly_and_resting_credentials_are_skipped() {
        let p = pool(3, Some(RateLimit::per_hour(5)));
        let start = Instant::now();
        for _ in 0..15 {
            p.acquire().await;
        }
        assert_eq!(p.usage(), vec![5, 5, 5]);
        assert_eq!(start.elapsed(), Duration::ZERO);

        let q = pool(2, None);
        q.rest(0, Instant::now() + Duration::from_secs(30));
        assert!(q.another_is_free(0));
        assert_eq!(q.acquire().await.index(), 1);
        assert_eq!(q.acquire().await.index(), 1);
        q.rest(1, Instant::now() + Duration::from_secs(10));
        // Both rest: the first to return (1, after 10 s) is used.
        let lease = q.acquire().await;
        assert_eq!(lease.index(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn pace_spaces_requests() {
        let p = pool(1, None);
        p.set_pace(0, Some(Duration::from_secs(2)));
        let start = Instant::now();
        for _ in 0..3 {
            p.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
