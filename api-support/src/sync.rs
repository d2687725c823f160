//! The one way this workspace takes a lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, even when a holder panicked: every value this workspace guards is left
/// consistent at each step (a state replaced whole, a queue of whole items, a counter), so a
/// panic elsewhere must not turn every later lock into a second one.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
