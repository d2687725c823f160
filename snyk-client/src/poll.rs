//! When to poll an import job: soon after it ends, with few polls.
//!
//! A job's slot (one of the imports in flight) is held until the job is *seen* to end, so the
//! wait between its end and the poll that sees it is time lost for every import behind it.
//! After a poll that found its job running, the next comes where the schedule learned from
//! the durations later polls saw puts it (the `later` module: the least lag after the job's
//! end plus a poll's worth for each poll, a poll worth more as Snyk's v1 budget fills), or,
//! until fifteen jobs were seen end that way, after `lag_percent` of the time waited so far;
//! at least `min_delay`, at most `max_delay`.
//!
//! The first poll is learned, and what it teaches is *censored*: a job found ended at its first
//! poll says only "ended at or before then", never how long it took, so a schedule that learned
//! durations from such polls could never move below where it started. Instead the first poll is
//! moved by what first polls find:
//!
//! - at the start it searches: while first polls keep finding their jobs ended, each halves the
//!   wait (down to [`FLOOR`]), for jobs end sooner than that by an unknown margin; while they
//!   keep finding them running, each doubles it (up to the longest wait between polls), until
//!   a later poll sees one of those jobs end, which puts the first poll half a step (in
//!   proportion) below that time; the first that finds the other goes back half the last
//!   step, and the search is over;
//! - from then on it tracks two quantiles of the durations, the *early* and the *sure* aim
//!   ([`Aim`]). A first poll aimed early that finds its job ended moves that aim down by
//!   [`DOWN`], one that finds it running moves it up by [`UP`] (about one first poll in four
//!   finds its job ended when these balance), so a job is rarely polled long after it ended;
//!   the sure aim moves by [`SURE_DOWN`] and [`SURE_UP`], where about fifty-five in
//!   fifty-six find their job ended: one poll a job. A sure aim starts a little above the
//!   early one ([`SURE_START`]) and comes down by the early aim's [`DOWN`] once a wave until a
//!   first poll finds its job running, then tracks;
//! - the sure aim is taken when the jobs' times are close (it is within [`NARROW`] of the early
//!   one) and waiting for it costs less than the poll after an early one that found its job
//!   running would wait, or when the rolling budget is nearly spent ([`PRESSED`]); otherwise
//!   the early aim, with later polls close together. A few first polls ([`EXPLORE`]) keep the
//!   other aim learned while the budget allows. Jobs of one length (0.3 s or 20 s) are seen
//!   with about one poll each, a little after they end; jobs whose times spread widely are
//!   polled early and again, each seen within `lag_percent` of its time;
//! - moves in the same direction, more than [`STEADY`] in a row, grow (each the square of the
//!   one before, up to a doubling or a halving), so jobs that got much quicker or slower are
//!   followed within a few waves.
//!
//! Each move is taken from the wait the poll was *issued* with, and only toward where that poll
//! points, so the fifteen first polls of one wave move the schedule once, not fifteen times.

use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::PollPolicy;

mod later;

/// The shortest first poll the schedule learns.
pub(crate) const FLOOR: Duration = Duration::from_millis(200);
/// A first poll aimed early that found its job ended: the next comes this much sooner.
pub(crate) const DOWN: f64 = 0.915;
/// A first poll aimed early that found its job running: the next comes this much later.
pub(crate) const UP: f64 = 1.03;
/// Moves in one direction in a row before they grow.
pub(crate) const STEADY: u32 = 3;
/// A first poll aimed sure that found its job ended: the next comes this much sooner.
pub(crate) const SURE_DOWN: f64 = 0.9975;
/// A first poll aimed sure that found its job running: the next comes this much later (about
/// fifty-five in fifty-six find their job ended when these balance).
pub(crate) const SURE_UP: f64 = 1.15;
/// Moves of the sure aim in one direction in a row before they grow (each by a quarter of
/// the first: slowly, so that its usual swing around the jobs' time does not grow).
pub(crate) const SURE_STEADY: u32 = 8;
/// Where the sure aim starts, from the early one, once the search is over: just above it, as
/// if the jobs' times were close; if they are not, its first polls find jobs running and move
/// it past [`NARROW`] within a few waves.
pub(crate) const SURE_START: f64 = 1.15;
/// The sure aim is taken while it is at most this many times the early one: jobs whose times
/// are that close are seen ended by one poll for little more wait.
pub(crate) const NARROW: f64 = 1.6;
/// One first poll in this many is aimed the other way, so that both aims stay learned.
pub(crate) const EXPLORE: u64 = 32;
/// Above this share of the rolling budget used, polls are spent sparingly: the sure aim is
/// taken whenever the jobs' times are close, and later polls come at twice the lag.
pub(crate) const PRESSED: f64 = 0.9;
/// Above this share of the budget used, no first poll is aimed the other way.
pub(crate) const EXPLORE_BELOW: f64 = 0.25;

/// How a tracked wait's moves grow once more than its `steady` moves in a row went one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Growth {
    /// Each the square of the one before: jobs that got much quicker or slower are followed
    /// within a few waves.
    Squaring,
    /// Each by a quarter of the first: slowly, so that a usual swing does not grow.
    Quarters,
}

/// Which learned wait a first poll was issued with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aim {
    /// Where about one job in four has ended: with later polls close together, for jobs whose
    /// times spread widely.
    Early,
    /// Where nearly every job has ended: one poll a job, for jobs whose times are close.
    /// `sparing` while the budget is nearly spent: a poll that finds its job ended moves the
    /// aim half as far down, so still fewer find their job running.
    Sure {
        /// Whether the budget was nearly spent when the poll was issued.
        sparing: bool,
    },
}

/// What the first polls of one client's jobs found, shared by its clones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durations {
    inner: Arc<Mutex<Aims>>,
}

/// Both learned waits, and how many first polls were issued.
#[derive(Debug)]
struct Aims {
    early: Learned,
    sure: Learned,
    /// Whether the last first poll found the sure aim worth taking.
    sure_in_use: bool,
    issued: u64,
    /// The durations later polls saw, and the schedule of later polls worked out from them.
    later: later::Later,
}

impl Default for Aims {
    fn default() -> Self {
        Self {
            early: Learned::new((DOWN, UP), STEADY, Growth::Squaring, false),
            sure: Learned {
                descent: Some(DOWN),
                ..Learned::new((SURE_DOWN, SURE_UP), SURE_STEADY, Growth::Quarters, true)
            },
            sure_in_use: false,
            issued: 0,
            later: later::Later::default(),
        }
    }
}

/// One learned wait: a quantile of the jobs' durations, tracked from censored first polls.
#[derive(Debug)]
struct Learned {
    /// The learned first poll; `None` until a first poll found something.
    first: Option<Duration>,
    /// Whether the search is over.
    tracking: bool,
    /// Moves in a row in one direction: positive up, negative down.
    moves: i32,
    down: f64,
    up: f64,
    steady: u32,
    growth: Growth,
    /// The down step taken, without growth, from a start until the first move up: a wait that
    /// starts above the jobs' time comes down to it in a few waves, not a few dozen.
    descent: Option<f64>,
    /// Whether no move up was taken since the start.
    descending: bool,
}

impl Learned {
    fn new((down, up): (f64, f64), steady: u32, growth: Growth, tracking: bool) -> Self {
        Self {
            first: None,
            tracking,
            moves: 0,
            down,
            up,
            steady,
            growth,
            descent: None,
            descending: false,
        }
    }

    /// Starts again at `at`, descending by the [`Learned::descent`] step until a move up.
    fn restart(&mut self, at: Duration) {
        self.first = Some(at);
        self.moves = 0;
        self.descending = self.descent.is_some();
    }

    /// The step of a tracking move `up` or down, grown by the moves before it that way.
    fn step(&mut self, up: bool) -> f64 {
        if up {
            self.descending = false;
        } else if let Some(descent) = self.descent.filter(|_| self.descending) {
            return descent;
        }
        let same = if up { self.moves > 0 } else { self.moves < 0 };
        let run = if same {
            self.moves.unsigned_abs() + 1
        } else {
            1
        };
        let signed = i32::try_from(run).unwrap_or(i32::MAX);
        self.moves = if up { signed } else { -signed };
        let base = if up { self.up } else { self.down };
        let beyond = run.saturating_sub(self.steady);
        let grown = match self.growth {
            Growth::Squaring => base.powi(1 << beyond.min(8)),
            Growth::Quarters => base.powf(1.0 + f64::from(beyond.min(64)) / 4.0),
        };
        if up { grown.min(2.0) } else { grown.max(0.5) }
    }

    /// Where a first poll issued `issued` points, or `None` where it leaves the schedule.
    fn moved(&mut self, issued: Duration, ended: bool, sparing: bool) -> Option<Duration> {
        let current = self.first.unwrap_or(issued);
        let up = !ended;
        if !self.tracking {
            let searching_up = self.moves > 0;
            if self.moves != 0 && searching_up != up {
                // The search crossed the jobs' time: back one step, and track from there.
                self.tracking = true;
                self.moves = 0;
                let back = issued.mul_f64(if up { SQRT_2 } else { FRAC_1_SQRT_2 });
                return Some(if up {
                    back.max(current)
                } else {
                    back.min(current)
                });
            }
            self.moves = if up { 1 } else { -1 };
            let to = if up { issued * 2 } else { issued / 2 };
            return ((up && to > current) || (!up && to < current) || self.first.is_none())
                .then_some(to);
        }
        let base = if up { self.up } else { self.down };
        let to = issued.mul_f64(base);
        if (up && to <= current) || (!up && to >= current) {
            return None;
        }
        let step = self.step(up);
        let grown = issued.mul_f64(if sparing && !up { step.sqrt() } else { step });
        Some(if up {
            grown.max(current)
        } else {
            grown.min(current)
        })
    }
}

impl Durations {
    /// When to poll a new job first, and with which aim: the learned wait, or the policy's
    /// `first_delay` before anything is learned. `budget_used` is the share of the rolling
    /// budget spent (see `CredentialPool::budget_used`).
    ///
    /// The sure aim is taken when the jobs' times are close (it is within [`NARROW`] of the
    /// early one) and either the budget is nearly spent or waiting for it costs less than the
    /// poll after an early one that found its job running would wait. One first poll in
    /// [`EXPLORE`] is spent keeping the other aim learned, unless a quarter of the budget is spent
    /// ([`EXPLORE_BELOW`]); when
    /// the sure aim is not taken, that poll tries it again from just above the early one.
    pub(crate) fn first(&self, policy: &PollPolicy, budget_used: Option<f64>) -> (Duration, Aim) {
        let default = policy.first_delay;
        let Ok(mut a) = self.inner.lock() else {
            return (default, Aim::Early);
        };
        let early = a.early.first.unwrap_or(default);
        if !a.early.tracking {
            return (early, Aim::Early);
        }
        // A sure aim below the early one, when it is not being taken, is stale (the jobs got
        // slower): it starts again above. (When it is taken, the early one overshot.)
        let in_use = a.sure_in_use;
        let sure = match a.sure.first.filter(|sure| in_use || *sure >= early) {
            Some(sure) => sure,
            None => {
                let start = early.mul_f64(SURE_START);
                a.sure.restart(start);
                start
            }
        };
        let pressed = budget_used.is_some_and(|used| used >= PRESSED);
        let sure_pays = sure <= early.mul_f64(NARROW)
            && (pressed || sure.saturating_sub(early) <= next_delay(early, policy, budget_used));
        a.issued += 1;
        let explore =
            a.issued % EXPLORE == 0 && budget_used.is_none_or(|used| used < EXPLORE_BELOW);
        a.sure_in_use = sure_pays;
        match (sure_pays, explore) {
            (true, false) => (sure, Aim::Sure { sparing: pressed }),
            (false, true) => {
                let retry = early.mul_f64(SURE_START);
                a.sure.restart(retry);
                (retry, Aim::Sure { sparing: false })
            }
            _ => (early, Aim::Early),
        }
    }

    /// A first poll issued `issued` after its job's acceptance with `aim` found it ended or
    /// running. `ceiling` bounds how late a first poll may be learned to come.
    pub(crate) fn first_poll_found(
        &self,
        aim: Aim,
        issued: Duration,
        ended: bool,
        ceiling: Duration,
    ) {
        let Ok(mut a) = self.inner.lock() else {
            return;
        };
        let (learned, sparing) = match aim {
            Aim::Early => (&mut a.early, false),
            Aim::Sure { sparing } => (&mut a.sure, sparing),
        };
        if let Some(to) = learned.moved(issued, ended, sparing) {
            learned.first = Some(to.clamp(FLOOR, ceiling.max(FLOOR)));
        }
    }

    /// A job whose first poll, aimed early, found it running was seen ended by a later poll
    /// issued `waited` after its acceptance. While the first poll is still searching upward
    /// (it doubles once a wave, which takes many waves to reach jobs of minutes), this ends
    /// the search: the job's time is now known within one later poll, so the first poll goes
    /// back half a step from there (in proportion) and tracks.
    pub(crate) fn later_poll_found_ended(&self, aim: Aim, waited: Duration, ceiling: Duration) {
        let Ok(mut a) = self.inner.lock() else {
            return;
        };
        let early = &mut a.early;
        if aim != Aim::Early || early.tracking || early.moves <= 0 {
            return;
        }
        let back = waited
            .mul_f64(FRAC_1_SQRT_2)
            .clamp(FLOOR, ceiling.max(FLOOR));
        early.first = Some(early.first.map_or(back, |current| current.max(back)));
        early.tracking = true;
        early.moves = 0;
    }

    /// The wait before the next poll of a job a poll `waited` after its acceptance found
    /// running: where the schedule learned from the durations later polls saw puts it
    /// (see the `later` module; never more than [`STALE_GUARD`] of the time waited), or,
    /// before enough is seen (or with `learn` off), [`next_delay`]; between the policy's
    /// `min_delay` and `max_delay` either way.
    pub(crate) fn later(
        &self,
        waited: Duration,
        policy: &PollPolicy,
        budget_used: Option<f64>,
    ) -> Duration {
        let learned = policy
            .learn
            .then(|| self.inner.lock().ok()?.later.after(waited, budget_used))
            .flatten();
        match learned {
            Some(wait) => wait
                .min(waited.mul_f64(STALE_GUARD))
                .clamp(policy.min_delay, policy.max_delay.max(policy.min_delay)),
            None => next_delay(waited, policy, budget_used),
        }
    }

    /// A job a poll `running` after its acceptance found running was seen ended by the poll
    /// `ended` after it.
    pub(crate) fn seen_ended(&self, running: Duration, ended: Duration) {
        if let Ok(mut a) = self.inner.lock() {
            a.later.seen_ended(running, ended);
        }
    }
}

/// One job's polls so far, for what they teach: the wait and aim its first poll was issued
/// with, and when a poll last found it running.
#[derive(Debug)]
pub(crate) struct Watch {
    issued: Duration,
    aim: Aim,
    running: Option<Duration>,
}

impl Watch {
    /// A job whose first poll was issued `issued` after its acceptance with `aim`.
    pub(crate) fn new(issued: Duration, aim: Aim) -> Self {
        Self {
            issued,
            aim,
            running: None,
        }
    }
}

impl Durations {
    /// The `polls`-th poll of a job, `waited` after its acceptance, found it `ended` or
    /// running. The first poll teaches the aim it was issued with; a later one that saw the
    /// job end (with `learn` on) ends the first poll's search and gives the later schedule the
    /// job's duration, between the last poll that found it running and this one.
    pub(crate) fn found(
        &self,
        watch: &mut Watch,
        polls: u32,
        waited: Duration,
        ended: bool,
        policy: &PollPolicy,
    ) {
        if polls == 1 {
            self.first_poll_found(watch.aim, watch.issued, ended, policy.max_delay);
        } else if ended && policy.learn {
            self.later_poll_found_ended(watch.aim, waited, policy.max_delay);
            if let Some(running) = watch.running {
                self.seen_ended(running, waited);
            }
        }
        if !ended {
            watch.running = Some(waited);
        }
    }
}

/// The longest learned wait, as a share of the time waited: a schedule learned from jobs that
/// have since got much quicker (it would wait for where they used to end) loses at most half
/// a job's time while the new durations come in.
pub(crate) const STALE_GUARD: f64 = 0.5;

/// The wait before the next poll of a job polled `waited` after it was accepted: the policy's
/// `lag_percent` of it, doubled while the budget is nearly spent ([`PRESSED`]: fewer polls,
/// each job seen a little later, rather than every request waiting for the window), between
/// its `min_delay` and `max_delay`.
pub(crate) fn next_delay(
    waited: Duration,
    policy: &PollPolicy,
    budget_used: Option<f64>,
) -> Duration {
    let lag = if budget_used.is_some_and(|used| used >= PRESSED) {
        policy.lag_percent.saturating_mul(2)
    } else {
        policy.lag_percent
    };
    (waited * lag / 100).clamp(policy.min_delay, policy.max_delay.max(policy.min_delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: Duration = Duration::from_secs(30);

    /// The default policy (its longest wait the tests' ceiling) starting at `first`.
    fn starting(first: Duration) -> PollPolicy {
        PollPolicy {
            first_delay: first,
            max_delay: CEILING,
            ..PollPolicy::default()
        }
    }

    /// A policy of `lag_percent` between `min_delay` and `max_delay`.
    fn policy(lag_percent: u32, min_delay: Duration, max_delay: Duration) -> PollPolicy {
        PollPolicy {
            lag_percent,
            min_delay,
            max_delay,
            ..PollPolicy::default()
        }
    }

    /// Runs waves of `wave` jobs of `duration` whose first polls are all issued before any is
    /// found; returns the wait most of each wave's first polls were issued with.
    fn waves(d: &Durations, duration: Duration, waves: usize, wave: usize) -> Vec<Duration> {
        waves_of(d, |_| duration, waves, wave).0
    }

    /// As `waves`, each job's duration given by its number; also counts the first polls that
    /// found their job running.
    fn waves_of(
        d: &Durations,
        duration: impl Fn(usize) -> Duration,
        waves: usize,
        wave: usize,
    ) -> (Vec<Duration>, usize) {
        let mut firsts = Vec::new();
        let mut running = 0;
        for w in 0..waves {
            let issued: Vec<_> = (0..wave)
                .map(|_| d.first(&starting(Duration::from_secs(2)), None))
                .collect();
            let mut counts = std::collections::BTreeMap::new();
            for (wait, _) in &issued {
                *counts.entry(*wait).or_insert(0) += 1;
            }
            firsts.extend(counts.into_iter().max_by_key(|(_, n)| *n).map(|(w, _)| w));
            for (j, (wait, aim)) in issued.into_iter().enumerate() {
                let ended = duration(w * wave + j) <= wait;
                running += usize::from(!ended);
                d.first_poll_found(aim, wait, ended, CEILING);
            }
        }
        (firsts, running)
    }

    #[test]
    fn jobs_that_end_before_the_first_poll_bring_it_down_below_where_it_started() {
        let d = Durations::default();
        let firsts = waves(&d, Duration::from_millis(500), 40, 15);
        assert_eq!(firsts[0], Duration::from_secs(2));
        assert_eq!(firsts[1], Duration::from_secs(1), "a wave halves it, once");
        assert_eq!(firsts[2], Duration::from_millis(500));
        let settled = &firsts[14..];
        assert!(
            settled.iter().all(|f| (440..=620).contains(&f.as_millis())),
            "it stays close to the jobs' half second: {settled:?}"
        );
    }

    #[test]
    fn jobs_of_one_length_are_seen_ended_by_one_poll_nearly_always() {
        let d = Durations::default();
        // The search, then 100 waves aimed sure.
        waves(&d, Duration::from_millis(300), 10, 15);
        let (firsts, running) = waves_of(&d, |_| Duration::from_millis(300), 100, 15);
        assert!(
            running * 100 <= 1500 * 8,
            "{running} of 1,500 first polls found their job running: {firsts:?}"
        );
        let mean = firsts.iter().sum::<Duration>() / 100;
        assert!(
            mean <= Duration::from_millis(345),
            "and they wait little past the jobs' end: {mean:?}"
        );
    }

    #[test]
    fn jobs_whose_times_spread_widely_are_polled_early_and_again() {
        let d = Durations::default();
        // Durations from 0.25 s to 8 s, evenly on a log scale, in a shuffled order.
        let spread = |i: usize| {
            Duration::from_millis(250).mul_f64(32f64.powf(((i * 37) % 100) as f64 / 100.0))
        };
        let (firsts, running) = waves_of(&d, spread, 150, 15);
        let late = &firsts[100..];
        assert!(
            late.iter().all(|f| *f < Duration::from_millis(900)),
            "the early aim, near a quarter of the jobs: {late:?}"
        );
        assert!(
            running > 1500,
            "most first polls find their job running: {running}"
        );
    }

    #[test]
    fn it_never_learns_below_the_floor_and_follows_jobs_that_got_slower() {
        let d = Durations::default();
        let firsts = waves(&d, Duration::from_millis(50), 10, 15);
        assert_eq!(*firsts.last().unwrap(), FLOOR);
        let firsts = waves(&d, Duration::from_secs(1), 40, 15);
        assert!(
            firsts.last().unwrap() >= &Duration::from_millis(600),
            "slower jobs move it up: {firsts:?}"
        );
    }

    #[test]
    fn jobs_that_got_quicker_start_the_halving_again() {
        let d = Durations::default();
        waves(&d, Duration::from_secs(4), 60, 15);
        let before = d.first(&starting(Duration::from_secs(2)), None).0;
        assert!(before >= Duration::from_secs(3), "{before:?}");
        let firsts = waves(&d, Duration::from_millis(300), 14, 15);
        assert!(
            firsts.last().unwrap() <= &Duration::from_millis(400),
            "{firsts:?}"
        );
    }

    #[test]
    fn a_job_seen_ended_by_a_later_poll_ends_the_upward_search() {
        let d = Durations::default();
        // A wave of 20 s jobs: the first poll at 500 ms finds the job running, and a later
        // poll finds it ended at 21 s.
        let (wait, aim) = d.first(&starting(Duration::from_millis(500)), None);
        d.first_poll_found(aim, wait, false, CEILING);
        d.later_poll_found_ended(aim, Duration::from_secs(21), CEILING);
        let (next, aim) = d.first(&starting(Duration::from_millis(500)), None);
        // Half a step back from 21 s (21 / √2 ≈ 14.8 s), tracking: doubling once a wave would
        // have put the next wave's first poll at 1 s.
        assert_eq!(aim, Aim::Early);
        assert!((14_800..=14_900).contains(&next.as_millis()), "{next:?}");
        assert!(d.inner.lock().unwrap().early.tracking);
        // Once tracking, later polls leave it to the first polls.
        d.later_poll_found_ended(Aim::Early, Duration::from_secs(60), CEILING);
        assert_eq!(d.first(&starting(Duration::from_millis(500)), None).0, next);
    }

    #[test]
    fn a_sure_aim_that_starts_above_the_jobs_comes_down_in_a_few_waves() {
        let d = Durations::default();
        {
            let mut a = d.inner.lock().unwrap();
            a.early.first = Some(Duration::from_millis(1_000));
            a.early.tracking = true;
        }
        // Jobs of 1 s: the sure aim starts at 1.15 s and is taken (it costs less than a
        // second poll).
        let (firsts, running) = waves_of(&d, |_| Duration::from_millis(1_000), 12, 15);
        assert_eq!(firsts[0], Duration::from_millis(1_000).mul_f64(SURE_START));
        assert!(
            firsts[1] <= Duration::from_millis(1_060),
            "down by a step a wave, not a quarter percent: {firsts:?}"
        );
        // The step that went below the jobs' time costs about one wave; the aim then tracks
        // from just above the jobs' time.
        assert!(running <= 20, "{running}: {firsts:?}");
        assert!(
            firsts[3..]
                .iter()
                .all(|f| (1_000..=1_110).contains(&f.as_millis())),
            "{firsts:?}"
        );
    }

    #[test]
    fn later_polls_spread_while_the_budget_is_nearly_spent() {
        let p = policy(10, FLOOR, CEILING);
        let waited = Duration::from_secs(100);
        assert_eq!(next_delay(waited, &p, None), Duration::from_secs(10));
        assert_eq!(next_delay(waited, &p, Some(0.5)), Duration::from_secs(10));
        assert_eq!(
            next_delay(waited, &p, Some(PRESSED)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn a_stale_sure_aim_below_the_early_one_starts_again_above_it() {
        let d = Durations::default();
        {
            let mut a = d.inner.lock().unwrap();
            a.early.first = Some(Duration::from_secs(10));
            a.early.tracking = true;
            // Learned when jobs took 5 s, and not taken since they got slower.
            a.sure.first = Some(Duration::from_secs(5));
        }
        let (wait, aim) = d.first(&starting(Duration::from_secs(1)), None);
        assert_eq!((wait, aim), (Duration::from_secs(10), Aim::Early));
        let sure = d.inner.lock().unwrap().sure.first;
        assert_eq!(sure, Some(Duration::from_secs(10).mul_f64(SURE_START)));
        // Taken, a sure aim below the early one means the early one overshot: it stays.
        d.inner.lock().unwrap().sure_in_use = true;
        d.inner.lock().unwrap().sure.first = Some(Duration::from_millis(9_500));
        let (wait, aim) = d.first(&starting(Duration::from_secs(1)), None);
        assert_eq!(
            (wait, aim),
            (Duration::from_millis(9_500), Aim::Sure { sparing: false })
        );
    }

    #[test]
    fn a_schedule_learned_from_slower_jobs_waits_at_most_half_the_time_waited() {
        let d = Durations::default();
        for _ in 0..64 {
            d.seen_ended(Duration::from_millis(19_900), Duration::from_millis(20_100));
        }
        let policy = PollPolicy::default();
        let at = Duration::from_secs(3);
        assert_eq!(d.later(at, &policy, None), Duration::from_millis(1_500));
        // Where the learned schedule has a poll close by, it is taken.
        let near = d.later(Duration::from_millis(19_000), &policy, None);
        assert!(near < Duration::from_millis(1_300), "{near:?}");
    }

    #[test]
    fn waits_grow_with_the_time_waited_within_their_bounds() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        let p = policy(8, min, max);
        assert_eq!(next_delay(Duration::from_secs(2), &p, None), min);
        assert_eq!(
            next_delay(Duration::from_secs(100), &p, None),
            Duration::from_secs(8)
        );
        assert_eq!(next_delay(Duration::from_secs(3600), &p, None), max);
    }
}

/// The schedule as a whole, on a virtual clock: a thousand jobs through fifteen slots, each
/// first poll and each later one made where the schedule says, a rolling minute of requests
/// counted against Snyk's v1 budget as the client counts it.
#[cfg(test)]
mod simulated {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use api_support::RollingWindow;

    use super::*;

    const SLOTS: usize = 15;
    const JOBS: usize = 1000;

    /// Log-normal durations (σ 1) around `median`, clipped as the sync benchmark clips them
    /// (a twentieth to thirty times the median), drawn as the sandbox draws them.
    fn log_normal(rng: &mut fastrand::Rng, median: f64) -> Duration {
        let median = Duration::from_secs_f64(median);
        crate::draw::log_normal(rng, median, 1.0, median / 20, median * 30)
    }

    /// One job in its slot.
    struct Job {
        start: Duration,
        takes: Duration,
        polls: u32,
        watch: Watch,
    }

    /// What the jobs cost: slot time lost after their end as a share of their time, and polls
    /// a job.
    struct Cost {
        lag: f64,
        polls: f64,
    }

    /// Runs [`JOBS`] jobs of durations from `draw` through [`SLOTS`] slots, posting the next
    /// as soon as a poll sees one end.
    fn run(mut draw: impl FnMut() -> Duration) -> Cost {
        let d = Durations::default();
        let policy = PollPolicy::default();
        // The client's own count of the v1 budget's rolling minute, on a virtual clock from
        // `zero`.
        let zero = tokio::time::Instant::now();
        let mut sent = RollingWindow::new(
            usize::try_from(crate::V1_PER_MINUTE).unwrap_or(usize::MAX),
            Duration::from_secs(60),
        );
        let mut jobs: Vec<Job> = Vec::new();
        let mut due = BinaryHeap::new();
        let (mut lag, mut busy, mut polls) = (Duration::ZERO, Duration::ZERO, 0);
        let mut post = |now: Duration, used, jobs: &mut Vec<Job>, due: &mut BinaryHeap<_>| {
            let (first, aim) = d.first(&policy, used);
            jobs.push(Job {
                start: now,
                takes: draw(),
                polls: 0,
                watch: Watch::new(first, aim),
            });
            due.push(Reverse((now + first, jobs.len() - 1)));
        };
        for _ in 0..SLOTS {
            post(Duration::ZERO, None, &mut jobs, &mut due);
        }
        while let Some(Reverse((now, i))) = due.pop() {
            // A post and a poll a job, as the client counts them.
            sent.record(zero + now);
            let used = Some(sent.share_used(zero + now));
            let job = &mut jobs[i];
            job.polls += 1;
            let waited = now - job.start;
            let ended = waited >= job.takes;
            d.found(&mut job.watch, job.polls, waited, ended, &policy);
            if !ended {
                due.push(Reverse((now + d.later(waited, &policy, used), i)));
                continue;
            }
            lag += waited - job.takes;
            busy += job.takes;
            polls += job.polls;
            if jobs.len() < JOBS {
                sent.record(zero + now);
                post(now, used, &mut jobs, &mut due);
            }
        }
        Cost {
            lag: lag.as_secs_f64() / busy.as_secs_f64(),
            polls: f64::from(polls) / JOBS as f64,
        }
    }

    #[test]
    fn log_normal_jobs_are_seen_within_a_tenth_of_their_time_within_the_budget() {
        let mut rng = fastrand::Rng::with_seed(11);
        let cost = run(|| log_normal(&mut rng, 2.0));
        assert!(cost.lag <= 0.11, "lag {:.3} of the jobs' time", cost.lag);
        assert!(cost.polls <= 7.5, "{:.2} polls a job", cost.polls);
        let mut rng = fastrand::Rng::with_seed(11);
        let cost = run(|| log_normal(&mut rng, 20.0));
        assert!(cost.lag <= 0.095, "lag {:.3} of the jobs' time", cost.lag);
        assert!(cost.polls <= 10.0, "{:.2} polls a job", cost.polls);
    }

    #[test]
    fn jobs_of_one_length_are_seen_soon_with_few_polls() {
        for (secs, lag, polls) in [(0.3, 0.16, 1.1), (2.0, 0.07, 2.0), (20.0, 0.025, 2.7)] {
            let cost = run(|| Duration::from_secs_f64(secs));
            assert!(cost.lag <= lag, "{secs} s: lag {:.3}", cost.lag);
            assert!(
                cost.polls <= polls,
                "{secs} s: {:.2} polls a job",
                cost.polls
            );
        }
    }
}
