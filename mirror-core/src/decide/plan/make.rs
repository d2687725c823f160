//! Making the plan: a pure function of the configuration, both sides as read, and the
//! journal's history.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Makes the plan. Pure: the same inputs give the same plan, in the same order.
pub fn plan(config: &Config, inventory: &Inventory, history: &History) -> Plan {
    plan_within(config, inventory, history, None)
}

/// The plan for the repositories `focus` names alone (a targeted reconcile): `inventory`
/// holds only them, as they are now (the ones found gone among its confirmations), and what
/// the journal says of every other repository is left alone.
pub fn plan_focused(
    config: &Config,
    inventory: &Inventory,
    history: &History,
    focus: &BTreeSet<RepoUuid>,
) -> Plan {
    plan_within(config, inventory, history, Some(focus))
}

fn plan_within(
    config: &Config,
    inventory: &Inventory,
    history: &History,
    focus: Option<&BTreeSet<RepoUuid>>,
) -> Plan {
    // Scope and destination as the inventory decided them when it read Bitbucket; an
    // inventory built by hand or read from a file is decided here, once.
    let decided;
    let estate = if inventory.estate.is_decided() {
        &inventory.estate
    } else {
        decided = Estate::decide(config, inventory.bitbucket.repositories());
        &decided
    };
    let d = destinations(config, inventory, estate);
    let drift = crate::decide::drift::analyse(config, inventory, estate, history, focus);
    let mut planner = Planner::new(config, inventory, estate, history, drift);
    planner.note_drift_branches();
    planner.skips = d.skips;
    // Most repositories become a skip (done before) or an import (not yet): room for each
    // at once, rather than vectors of 100,000 actions grown by doubling.
    let total: usize = inventory
        .bitbucket
        .workspaces
        .iter()
        .map(|w| w.repositories.len())
        .sum();
    let done = history.completed.len().min(total);
    planner.skips.reserve(done);
    planner.imports.reserve(total - done);
    // Rules that matched nothing are judged on whole listings only.
    if focus.is_none() {
        planner
            .drift
            .actions
            .extend(unused_rules(config, inventory));
    }
    for (dest, repos) in &d.repos {
        planner.destination(dest, repos, d.workspaces.get(dest));
    }
    let mut plan = planner.finish();
    if focus.is_none() && inventory.snyk.read_in_full {
        plan.compared = Some(Compared {
            repositories: d.repos.values().map(Vec::len).sum(),
            orgs: d.repos.len(),
        });
    }
    plan
}
