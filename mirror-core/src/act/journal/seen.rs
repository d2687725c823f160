//! The deliveries' request ids remembered for [`DELIVERY_MEMORY_SECONDS`], so that a retry or
//! a replay acts once, in memory that has a cap: [`MAX_REMEMBERED`] ids of 16 bytes, about
//! 33 bytes each with the set and the order (under 9 MB at the cap), whatever arrives. The
//! arrival times are kept once per second, not once per id.
//!
//! Past the cap the oldest are forgotten first: a replay of one of them is then reconciled
//! again, which reads the repository and changes nothing (a reconcile acts on Bitbucket as it
//! is, not on the delivery), so the cap costs requests, never correctness.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use super::{DELIVERY_MEMORY_SECONDS, DeliveryId};

/// The most request ids remembered at once: more than a day of 2 deliveries a second, and
/// retries come within minutes (`serve`'s memory stays under 64 MiB through a flood).
pub const MAX_REMEMBERED: usize = 200_000;

/// A request id as 128 bits: a UUID as it is, anything else hashed.
pub(super) type Key = [u64; 2];

/// The 128 bits `id` is remembered by.
pub(super) fn key(id: &DeliveryId) -> Key {
    match id {
        DeliveryId::Uuid(n) => [(n >> 64) as u64, *n as u64],
        DeliveryId::Other(text) => {
            let hash = |salt: u8| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                salt.hash(&mut h);
                text.hash(&mut h);
                h.finish()
            };
            [hash(1), hash(2)]
        }
    }
}

/// The request ids seen lately, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SeenRequests {
    set: HashSet<Key>,
    /// The ids in arrival order.
    order: VecDeque<Key>,
    /// Arrival times, run-length: (second, how many of `order` arrived then), oldest first.
    times: VecDeque<(u64, u32)>,
}

impl SeenRequests {
    /// Whether `id` was seen (and not forgotten yet).
    pub(super) fn contains(&self, id: &DeliveryId) -> bool {
        self.set.contains(&key(id))
    }

    /// Remembers `id`, seen at `at` (seconds), forgetting those seen more than
    /// [`DELIVERY_MEMORY_SECONDS`] before it and, past the cap, the oldest. Returns whether it
    /// is new.
    pub(super) fn insert(&mut self, id: &DeliveryId, at: u64) -> bool {
        while let Some(&(oldest, _)) = self.times.front() {
            let expired = oldest.saturating_add(DELIVERY_MEMORY_SECONDS) < at;
            if !expired && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.forget_oldest();
        }
        let k = key(id);
        if !self.set.insert(k) {
            return false;
        }
        self.order.push_back(k);
        match self.times.back_mut() {
            Some((second, n)) if *second == at && *n < u32::MAX => *n += 1,
            _ => self.times.push_back((at, 1)),
        }
        true
    }

    /// Forgets the oldest id.
    fn forget_oldest(&mut self) {
        if let Some(old) = self.order.pop_front() {
            self.set.remove(&old);
        }
        match self.times.front_mut() {
            Some((_, n)) if *n > 1 => *n -= 1,
            _ => {
                self.times.pop_front();
            }
        }
    }

    /// When the newest delivery remembered arrived (seconds since the Unix epoch).
    pub(super) fn newest(&self) -> Option<u64> {
        self.times.back().map(|(at, _)| *at)
    }

    /// How many are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_second_share_a_time_and_go_together() {
        let mut seen = SeenRequests::default();
        let id = |n: usize| DeliveryId::parse(&format!("{{00000000-0000-4000-8000-{n:012}}}"));
        for n in 0..5 {
            seen.insert(&id(n), 10);
        }
        seen.insert(&id(5), 11);
        assert_eq!(seen.times.len(), 2, "one time per second");
        seen.insert(&id(6), 11 + DELIVERY_MEMORY_SECONDS);
        assert!(
            (0..5).all(|n| !seen.contains(&id(n))),
            "second 10 forgotten whole"
        );
        assert!(seen.contains(&id(5)) && seen.contains(&id(6)));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn ids_are_forgotten_after_a_day_or_past_the_cap_oldest_first() {
        let mut seen = SeenRequests::default();
        let id = |n: usize| DeliveryId::parse(&format!("{{00000000-0000-4000-8000-{n:012}}}"));
        assert!(seen.insert(&id(0), 100));
        assert!(!seen.insert(&id(0), 101), "a repeat");
        assert!(seen.insert(&DeliveryId::parse("not-a-uuid"), 102));
        assert!(seen.contains(&DeliveryId::parse("not-a-uuid")));
        assert!(seen.insert(&id(1), 102 + DELIVERY_MEMORY_SECONDS));
        assert!(!seen.contains(&id(0)), "a day and more later");
        assert!(
            seen.contains(&DeliveryId::parse("not-a-uuid")),
            "seen a day ago to the second: still remembered"
        );
        assert_eq!(seen.newest(), Some(102 + DELIVERY_MEMORY_SECONDS));
        for n in 2..MAX_REMEMBERED + 10 {
            seen.insert(&id(n), 200 + DELIVERY_MEMORY_SECONDS);
        }
        assert_eq!(seen.len(), MAX_REMEMBERED);
        assert!(!seen.contains(&id(2)), "the oldest went first");
        assert!(seen.contains(&id(MAX_REMEMBERED + 9)));
    }
}
