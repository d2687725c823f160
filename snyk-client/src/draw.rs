//! Seeded log-normal job durations, shared by the sandbox's import jobs and the simulation of
//! the poll schedule, so that the simulation draws exactly what the sandbox draws.

use std::time::Duration;

/// A duration drawn from a log-normal distribution of `median` and spread `sigma` (σ of the
/// logarithm), clipped to `min..=max`.
pub(crate) fn log_normal(
    rng: &mut fastrand::Rng,
    median: Duration,
    sigma: f64,
    min: Duration,
    max: Duration,
) -> Duration {
    // Box–Muller: a standard normal from two uniforms in (0, 1].
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let secs = median.as_secs_f64() * (sigma * z).exp();
    Duration::from_secs_f64(secs.clamp(min.as_secs_f64(), max.as_secs_f64()))
}
