//! When to poll an import job: soon after it ends, with few polls.
//!
//! A job's slot (one of the imports in flight) is held until the job is *seen* to end, so the
//! wait between its end and the poll that sees it is time lost for every import behind it.
//! After the first poll, each wait is `lag_percent` of the time waited so far (at least
//! `min_delay`, at most `max_delay`), which keeps that lag to a small share of the job's time.
//!
//! The first poll is learned, and what it teaches is *censored*: a job found ended at its first
//! poll says only "ended at or before then", never how long it took, so a schedule that learned
//! durations from such polls could never move below where it started. Instead the first poll is
//! moved by what first polls find:
//!
//! - at the start it searches: while first polls keep finding their jobs ended, each halves the
//!   wait (down to [`FLOOR`]), for jobs end sooner than that by an unknown margin; while they
//!   keep finding them running, each doubles it (up to the longest wait between polls); the
//!   first that finds the other goes back half the last step (in proportion), and the search
//!   is over;
//! - from then on it tracks a low quantile of the durations: a first poll that finds its job
//!   ended moves the wait down by [`DOWN`], one that finds it running moves it up by [`UP`]
//!   (about one first poll in four finds its job ended when these balance), so a job is rarely
//!   polled long after it ended;
//! - moves in the same direction, more than [`STEADY`] in a row, grow (each the square of the
//!   one before, up to a doubling or a halving), so jobs that got much quicker or slower are
//!   followed within a few waves.
//!
//! Each move is taken from the wait the poll was *issued* with, and only toward where that poll
//! points, so the fifteen first polls of one wave move the schedule once, not fifteen times.

use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The shortest first poll the schedule learns.
pub(crate) const FLOOR: Duration = Duration::from_millis(200);
/// A first poll that found its job ended: the next first poll comes this much sooner.
pub(crate) const DOWN: f64 = 0.915;
/// A first poll that found its job running: the next first poll comes this much later.
pub(crate) const UP: f64 = 1.03;
/// Moves in one direction in a row before they grow.
pub(crate) const STEADY: u32 = 3;

/// What the first polls of one client's jobs found, shared by its clones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durations {
    inner: Arc<Mutex<Learned>>,
}

#[derive(Debug, Default)]
struct Learned {
    /// The learned first poll; `None` until a first poll found something.
    first: Option<Duration>,
    /// Whether the search is over.
    tracking: bool,
    /// Moves in a row in one direction: positive up, negative down.
    moves: i32,
}

impl Learned {
    /// The step of a tracking move `up` or down, grown by the moves before it that way.
    fn step(&mut self, up: bool) -> f64 {
        let same = if up { self.moves > 0 } else { self.moves < 0 };
        let run = if same {
            self.moves.unsigned_abs() + 1
        } else {
            1
        };
        let signed = i32::try_from(run).unwrap_or(i32::MAX);
        self.moves = if up { signed } else { -signed };
        let base: f64 = if up { UP } else { DOWN };
        let grown = base.powi(1 << run.saturating_sub(STEADY).min(8));
        if up { grown.min(2.0) } else { grown.max(0.5) }
    }

    /// Where a first poll issued `issued` points, or `None` where it leaves the schedule.
    fn moved(&mut self, issued: Duration, ended: bool) -> Option<Duration> {
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
        let base = if up { UP } else { DOWN };
        let to = issued.mul_f64(base);
        if (up && to <= current) || (!up && to >= current) {
            return None;
        }
        let grown = issued.mul_f64(self.step(up));
        Some(if up {
            grown.max(current)
        } else {
            grown.min(current)
        })
    }
}

impl Durations {
    /// When to poll a new job first: the learned wait, or `default` before anything is learned.
    pub(crate) fn first(&self, default: Duration) -> Duration {
        self.inner
            .lock()
            .ok()
            .and_then(|l| l.first)
            .unwrap_or(default)
    }

    /// A first poll issued `issued` after its job's acceptance found it ended or running.
    /// `ceiling` bounds how late a first poll may be learned to come.
    pub(crate) fn first_poll_found(&self, issued: Duration, ended: bool, ceiling: Duration) {
        let Ok(mut l) = self.inner.lock() else {
            return;
        };
        if let Some(to) = l.moved(issued, ended) {
            l.first = Some(to.clamp(FLOOR, ceiling.max(FLOOR)));
        }
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

    const CEILING: Duration = Duration::from_secs(30);

    /// Runs `jobs` jobs of `duration`, in waves of `wave` whose first polls are all issued with
    /// the schedule of the wave's start; returns the first poll of each wave.
    fn waves(d: &Durations, duration: Duration, waves: usize, wave: usize) -> Vec<Duration> {
        let mut firsts = Vec::new();
        for _ in 0..waves {
            let issued = d.first(Duration::from_secs(2));
            firsts.push(issued);
            for _ in 0..wave {
                d.first_poll_found(issued, duration <= issued, CEILING);
            }
        }
        firsts
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
            settled.iter().all(|f| (400..=560).contains(&f.as_millis())),
            "it stays close to the jobs' half second: {settled:?}"
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
        let before = d.first(Duration::from_secs(2));
        assert!(before >= Duration::from_secs(3), "{before:?}");
        let firsts = waves(&d, Duration::from_millis(300), 14, 15);
        assert!(
            firsts.last().unwrap() <= &Duration::from_millis(400),
            "{firsts:?}"
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
