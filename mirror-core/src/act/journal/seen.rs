//! The deliveries' request ids remembered for [`DELIVERY_MEMORY_SECONDS`], so that a retry or
//! a replay acts once, in memory that has a cap: [`MAX_REMEMBERED`] ids of 16 bytes, about
//! 40 bytes each with the set and the order (about 20 MB at the cap), whatever arrives.
//!
//! Past the cap the oldest are forgotten first: a replay of one of them is then reconciled
//! again, which reads the repository and changes nothing (a reconcile acts on Bitbucket as it
//! is, not on the delivery), so the cap costs requests, never correctness.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use super::{DELIVERY_MEMORY_SECONDS, DeliveryId};

/// The most request ids remembered at once (more than a day of 4 deliveries a second).
pub const MAX_REMEMBERED: usize = 400_000;

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
    order: VecDeque<(u64, Key)>,
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
        while let Some(&(oldest, old)) = self.order.front() {
            let expired = oldest.saturating_add(DELIVERY_MEMORY_SECONDS) < at;
            if !expired && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            self.set.remove(&old);
        }
        let k = key(id);
        if !self.set.insert(k) {
            return false;
        }
        self.order.push_back((at, k));
        true
    }

    /// When the newest delivery remembered arrived (seconds since the Unix epoch).
    pub(super) fn newest(&self) -> Option<u64> {
        self.order.back().map(|(at, _)| *at)
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
    fn ids_are_forgotten_after_a_day_or_past_the_cap_oldest_first() {
        let mut seen = SeenRequests::default();
        let id = |n: usize| DeliveryId::parse(&format!("{{00000000-0000-4000-8000-{n:012}}}"));
        assert!(seen.insert(&id(0), 100));
        assert!(!seen.insert(&id(0), 101), "a repeat");
        assert!(seen.insert(&DeliveryId::parse("not-a-uuid"), 102));
        assert!(seen.contains(&DeliveryId::parse("not-a-uuid")));
        assert!(seen.insert(&id(1), 102 + DELIVERY_MEMORY_SECONDS));
        assert!(!seen.contains(&id(0)), "a day and more later");
        for n in 2..MAX_REMEMBERED + 10 {
            seen.insert(&id(n), 200 + DELIVERY_MEMORY_SECONDS);
        }
        assert_eq!(seen.len(), MAX_REMEMBERED);
        assert!(!seen.contains(&id(2)), "the oldest went first");
        assert!(seen.contains(&id(MAX_REMEMBERED + 9)));
    }
}
