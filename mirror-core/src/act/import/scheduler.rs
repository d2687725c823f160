//! The scheduler: which queued task starts next. Orgs are taken in turn, so one large org
//! does not starve the others; at most `concurrency` tasks run at once, and at most
//! `per_org` of them in one org. It holds no tasks in flight itself: the caller starts what
//! [`Scheduler::next`] hands out and reports each end with [`Scheduler::finished`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::ids::OrgId;

/// Queues per org, and the slots in use.
#[derive(Debug)]
pub(crate) struct Scheduler<T> {
    queues: BTreeMap<OrgId, VecDeque<T>>,
    orgs: Vec<OrgId>,
    cursor: usize,
    in_flight: HashMap<OrgId, usize>,
    total: usize,
    concurrency: usize,
    per_org: usize,
}

impl<T> Scheduler<T> {
    /// Queues of tasks by org, each in its order; caps of at least one.
    pub(crate) fn new(
        queues: BTreeMap<OrgId, VecDeque<T>>,
        concurrency: usize,
        per_org: usize,
    ) -> Self {
        Self {
            orgs: queues.keys().cloned().collect(),
            queues,
            cursor: 0,
            in_flight: HashMap::new(),
            total: 0,
            concurrency: concurrency.max(1),
            per_org: per_org.max(1),
        }
    }

    /// The next task to start and its org, counted as in flight; `None` when every slot is
    /// taken or no org with a free slot has work.
    pub(crate) fn next(&mut self) -> Option<(OrgId, T)> {
        if self.total >= self.concurrency {
            return None;
        }
        let n = self.orgs.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let org = &self.orgs[i];
            if self.in_flight.get(org).copied().unwrap_or(0) >= self.per_org {
                continue;
            }
            let Some(task) = self.queues.get_mut(org).and_then(VecDeque::pop_front) else {
                continue;
            };
            let org = org.clone();
            *self.in_flight.entry(org.clone()).or_default() += 1;
            self.total += 1;
            self.cursor = (i + 1) % n;
            return Some((org, task));
        }
        None
    }

    /// A task of `org` ended: its slot is free.
    pub(crate) fn finished(&mut self, org: &OrgId) {
        if let Some(n) = self.in_flight.get_mut(org) {
            *n = n.saturating_sub(1);
        }
        self.total = self.total.saturating_sub(1);
    }

    /// Takes every task still queued for `org` (they will not be started).
    pub(crate) fn drain(&mut self, org: &OrgId) -> VecDeque<T> {
        self.queues
            .get_mut(org)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether `org` has nothing running and nothing queued.
    pub(crate) fn org_done(&self, org: &OrgId) -> bool {
        self.in_flight.get(org).is_none_or(|n| *n == 0)
            && self.queues.get(org).is_none_or(VecDeque::is_empty)
    }

    /// Whether any task is still queued.
    pub(crate) fn has_queued(&self) -> bool {
        self.queues.values().any(|q| !q.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(spec: &[(&str, usize)]) -> BTreeMap<OrgId, VecDeque<String>> {
        spec.iter()
            .map(|(org, n)| {
                (
                    OrgId::from(*org),
                    (0..*n).map(|i| format!("{org}{i}")).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn orgs_are_taken_in_turn_within_both_caps() {
        let mut s = Scheduler::new(queues(&[("a", 5), ("b", 1), ("c", 2)]), 4, 2);
        let started: Vec<String> = std::iter::from_fn(|| s.next().map(|(_, t)| t)).collect();
        // One from each org in turn, then a second from `a`: four slots.
        assert_eq!(started, ["a0", "b0", "c0", "a1"]);
        assert!(s.next().is_none(), "all four slots are taken");
        s.finished(&OrgId::from("b"));
        // `b` has nothing left and `a` is at its cap of 2: `c` gets the free slot.
        assert_eq!(s.next().map(|(_, t)| t).as_deref(), Some("c1"));
        assert!(s.org_done(&OrgId::from("b")));
        assert!(!s.org_done(&OrgId::from("a")));
        assert_eq!(s.drain(&OrgId::from("a")).len(), 3);
        assert!(!s.has_queued());
    }

    #[test]
    fn one_org_alone_gets_its_own_cap_and_no_more() {
        let mut s = Scheduler::new(queues(&[("a", 10)]), 15, 5);
        let started = std::iter::from_fn(|| s.next()).count();
        assert_eq!(started, 5);
    }
}
