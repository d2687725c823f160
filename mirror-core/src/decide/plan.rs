//! The plan: a pure function of (configuration, inventory, history) and a plain value.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{Config, IntegrationType, Mapping, RetireMode};
use crate::decide::conflict::ConflictReason;
use crate::decide::drift::Drift;
use crate::decide::patterns::glob_match;
use crate::decide::rules::{History, MAX_ORG_NAME, Placement, Sighting, SkipReason, done_reason};
use crate::decide::scope::{Decision, Estate};
use crate::error::Error;
use crate::ids::{GroupId, OrgId, RepoUuid, Timestamp};
use crate::read::inventory::{Inventory, OrgInventory};
use crate::read::ports::Repo;

mod both_sides;
pub(crate) mod make;

pub use crate::decide::action::{Action, ImportAction, MetadataChange, OrgRef, RetireReason};
/// Words shared by the core's messages and whoever renders its values.
pub use crate::decide::conflict::{counted, repositories};
pub(crate) use make::{plan, plan_focused};

/// The plan format's version; a plan of another version is refused.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// What the plan does, in numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    /// Orgs to create.
    pub orgs_to_create: usize,
    /// Integrations to add.
    pub integrations_to_add: usize,
    /// Repositories to import.
    pub imports: usize,
    /// Skips by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Conflicts.
    pub conflicts: usize,
    /// Repositories held back by conflicts.
    pub held_back: usize,
    /// Repositories renamed (imported under the new name, the old target retired).
    #[serde(default)]
    pub renamed: usize,
    /// Repositories moved to another org.
    #[serde(default)]
    pub moved: usize,
    /// Targets to retire (repository gone, or out of scope).
    #[serde(default)]
    pub retired: usize,
    /// Targets whose projects move to a new default branch.
    #[serde(default)]
    pub branches: usize,
    /// Orgs renamed after their workspace.
    #[serde(default)]
    pub orgs_renamed: usize,
    /// Repositories recorded by uuid from now on.
    #[serde(default)]
    pub tracked: usize,
    /// Workspaces no longer visible.
    #[serde(default)]
    pub workspaces_gone: usize,
    /// Mirrored repositories now out of scope.
    #[serde(default)]
    pub out_of_scope: usize,
    /// Repositories whose state Bitbucket's answers do not settle, and workspaces that could
    /// not be listed: nothing of them changes, and the run counts as failed (exit 1).
    #[serde(default)]
    pub uncertain: usize,
    /// Targets deactivated with `retire = "delete"` that are not deleted yet.
    #[serde(default)]
    pub quarantined: usize,
    /// Targets whose projects are activated again (`undo`).
    #[serde(default)]
    pub reactivated: usize,
    /// Differences between Snyk and Bitbucket named, by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub differences: BTreeMap<String, usize>,
    /// Projects whose managed tags and attributes change (`[[metadata]]`).
    #[serde(default)]
    pub metadata: usize,
}

/// The repository and workspace patterns of the configuration that match nothing listed.
fn unused_rules(config: &Config, inventory: &Inventory) -> Vec<Action> {
    let s = &config.source;
    let b = &inventory.bitbucket;
    let repos: Vec<&Repo> = b.workspaces.iter().flat_map(|w| &w.repositories).collect();
    let workspaces: Vec<&str> = b
        .workspaces
        .iter()
        .map(|w| w.slug.as_str())
        .chain(b.excluded_workspaces.iter().map(|(w, _)| w.as_str()))
        .collect();
    let repo_matches = |p: &str, r: &Repo| {
        if p.contains('/') {
            glob_match(p, &r.full_name())
        } else {
            glob_match(p, &r.slug)
        }
    };
    let mut unused = Vec::new();
    for (setting, patterns) in [
        ("source.include_repositories", &s.include_repositories),
        ("source.exclude_repositories", &s.exclude_repositories),
    ] {
        for p in patterns {
            if !repos.iter().any(|r| repo_matches(p, r)) {
                unused.push((setting, p));
            }
        }
    }
    for (setting, patterns) in [
        ("source.include_workspaces", &s.include_workspaces),
        ("source.exclude_workspaces", &s.exclude_workspaces),
    ] {
        for p in patterns {
            if !workspaces.iter().any(|w| glob_match(p, w)) {
                unused.push((setting, p));
            }
        }
    }
    unused
        .into_iter()
        .map(|(setting, pattern)| Action::UnusedRule {
            setting: setting.to_owned(),
            pattern: pattern.clone(),
        })
        .collect()
}

/// The plan: what to create, what to import, what to skip and why, what conflicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// [`PLAN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The group orgs are created in.
    pub group_id: GroupId,
    /// The integration imports go through.
    pub integration: IntegrationType,
    /// The template org new orgs copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_org_id: Option<OrgId>,
    /// The steps, in order: org creations, integrations to add, org renames, imports, branch
    /// changes, retirements, repositories to record, conflicts, notices, skips.
    pub actions: Vec<Action>,
    /// What retiring a target does, for the old targets of renames and moves found while
    /// applying (the plan's own retirements carry their mode).
    #[serde(default, skip_serializing_if = "is_deactivate")]
    pub retire: RetireMode,
    /// When the plan was made, when whoever made it said so: the binary refuses a saved plan
    /// older than a day (RFC 3339 in the file; one that does not parse counts as unsaid).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bitbucket_cloud_client::api_support::time::lenient"
    )]
    pub created_at: Option<Timestamp>,
    /// Settings apply changes around the plan's actions (from `[apply]`): shown with the plan,
    /// and done only when the plan shows them.
    #[serde(default, skip_serializing_if = "PlanSettings::is_unchanged")]
    pub settings: PlanSettings,
    /// Where the plan was made, when whoever made it said so: the binary refuses to apply a
    /// saved plan against another Bitbucket or Snyk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_against: Option<PlanOrigin>,
    /// What the plan compared, when it read Snyk in full (every org in scope, its targets
    /// and projects): only such a plan may say that Snyk equals Bitbucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<Compared>,
}

/// What a plan compared on both sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// Repositories in scope.
    pub repositories: usize,
    /// Orgs they go to.
    pub orgs: usize,
}

/// The services a plan was made against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOrigin {
    /// The Bitbucket API's base URL.
    pub bitbucket: String,
    /// The Snyk API host.
    pub snyk: String,
}

/// Settings apply changes around the plan's actions, as the plan shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// Each org's integration has its PR checks and fix PRs off during the org's imports, and
    /// put back after (`apply.quiet_integrations`).
    #[serde(default)]
    pub quiet_integrations: bool,
    /// New orgs get their notifications turned off (`apply.notifications_off_for_new_orgs`).
    #[serde(default)]
    pub notifications_off_for_new_orgs: bool,
}

impl PlanSettings {
    /// Whether apply changes no setting.
    fn is_unchanged(&self) -> bool {
        *self == Self::default()
    }
}

impl Plan {
    /// A plan of these actions for `config`'s group, integration and settings.
    pub fn with_actions(config: &Config, actions: Vec<Action>) -> Self {
        Self {
            schema_version: PLAN_SCHEMA_VERSION,
            group_id: config.snyk.group_id.clone(),
            integration: config.snyk.integration.clone(),
            template_org_id: config.snyk.template_org_id.as_deref().map(OrgId::from),
            actions,
            retire: config.drift.retire,
            created_at: None,
            settings: PlanSettings {
                quiet_integrations: config.apply.quiet_integrations,
                notifications_off_for_new_orgs: config.apply.notifications_off_for_new_orgs,
            },
            made_against: None,
            compared: None,
        }
    }

    /// The existing orgs whose targets, projects or integrations the plan changes.
    pub fn orgs_changed(&self) -> BTreeSet<OrgId> {
        self.actions
            .iter()
            .flat_map(|a| match a {
                Action::Import(i) => vec![
                    i.org.id().cloned(),
                    i.replaces.as_ref().map(|r| r.org_id.clone()),
                ],
                Action::AddIntegration { org_id, .. } => vec![org_id.clone()],
                Action::RenameOrg { org_id, .. } | Action::Branch { org_id, .. } => {
                    vec![Some(org_id.clone())]
                }
                Action::Retire { placement, .. } | Action::Reactivate { placement, .. } => {
                    vec![Some(placement.org_id.clone())]
                }
                Action::Metadata(m) => vec![Some(m.org_id.clone())],
                _ => Vec::new(),
            })
            .flatten()
            .collect()
    }

    /// The plan in numbers.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a {
                Action::CreateOrg { .. } => s.orgs_to_create += 1,
                Action::AddIntegration { .. } => s.integrations_to_add += 1,
                Action::Import(i) => {
                    s.imports += 1;
                    let ImportAction { replaces, org, .. } = &**i;
                    match replaces {
                        Some(old) if org.id() == Some(&old.org_id) => s.renamed += 1,
                        Some(_) => s.moved += 1,
                        None => {}
                    }
                }
                Action::RenameOrg { .. } => s.orgs_renamed += 1,
                Action::Branch { .. } => s.branches += 1,
                Action::Retire { why, .. } => {
                    if matches!(why, RetireReason::Deleted | RetireReason::OutOfScope { .. }) {
                        s.retired += 1;
                    }
                }
                Action::Track(_) => s.tracked += 1,
                Action::Reactivate { .. } => s.reactivated += 1,
                Action::Quarantined { .. } => s.quarantined += 1,
                Action::WorkspaceGone { .. } => s.workspaces_gone += 1,
                Action::OutOfScope { .. } => s.out_of_scope += 1,
                Action::Uncertain { .. } | Action::WorkspaceUnread { .. } => s.uncertain += 1,
                Action::UnusedRule { .. } => {}
                Action::Differs(d) => {
                    *s.differences.entry(d.label().to_owned()).or_default() += 1;
                }
                Action::Metadata(_) => s.metadata += 1,
                Action::Skip { reason, .. } => {
                    *s.skipped.entry(reason.label().to_owned()).or_default() += 1;
                }
                Action::Conflict { repositories, .. } => {
                    s.conflicts += 1;
                    s.held_back += repositories.len();
                }
            }
        }
        s
    }

    /// Whether there is nothing to create, import, change or record.
    pub fn is_noop(&self) -> bool {
        !self.actions.iter().any(|a| {
            !matches!(
                a,
                Action::Skip { .. }
                    | Action::Conflict { .. }
                    | Action::WorkspaceGone { .. }
                    | Action::WorkspaceUnread { .. }
                    | Action::Uncertain { .. }
                    | Action::Quarantined { .. }
                    | Action::OutOfScope { .. }
                    | Action::UnusedRule { .. }
                    | Action::Differs(_)
            )
        })
    }

    /// The plan as pretty JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Config(format!("cannot write the plan: {e}")))
    }

    /// Reads a plan written by [`Plan::to_json`].
    ///
    /// # Errors
    /// [`Error::Config`] for malformed JSON (with its line and column) or another schema
    /// version.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<u32>,
        }
        let v: Version = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("the plan file is not valid JSON: {e}")))?;
        match v.schema_version {
            Some(PLAN_SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(Error::Config(format!(
                    "the plan has schema version {other}; this bb-snyk-mirror reads version {PLAN_SCHEMA_VERSION}: make a new plan"
                )));
            }
            None => {
                return Err(Error::Config(
                    "the plan file has no schema_version: is it a bb-snyk-mirror plan?".to_owned(),
                ));
            }
        }
        serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("the plan file is malformed: {e}")))
    }
}

fn is_deactivate(mode: &RetireMode) -> bool {
    *mode == RetireMode::Deactivate
}

fn skip_key(a: &Action) -> (&str, &str) {
    match a {
        Action::Skip {
            workspace,
            repository,
            ..
        } => (workspace.as_str(), repository.as_deref().unwrap_or("")),
        _ => ("", ""),
    }
}

/// The skip of `repo` when it needs no import into the existing org `org_id` (see
/// [`done_reason`]).
fn skip_if_done(
    repo: &Repo,
    imported: Option<&BTreeSet<String>>,
    org_id: Option<&OrgId>,
    history: &History,
) -> Option<Action> {
    done_reason(repo, imported, org_id, history).map(|reason| Action::Skip {
        workspace: repo.workspace.clone(),
        repository: Some(repo.slug.clone()),
        reason,
    })
}

/// The repositories in scope, grouped by where they go.
struct Destinations<'a> {
    /// Destination (org name, or the single org's id) → repositories to import there, in order.
    repos: BTreeMap<String, Vec<&'a Repo>>,
    /// Destination → the workspaces it serves (for empty-workspace skips).
    workspaces: BTreeMap<String, BTreeSet<String>>,
    /// Workspaces and repositories out of scope.
    skips: Vec<Action>,
}

/// Sorts every repository into its destination, or into a skip with the reason it is out of
/// scope. Workspaces and repositories are sorted here, so the plan does not depend on the order
/// the inventory came in.
fn destinations<'a>(
    config: &Config,
    inventory: &'a Inventory,
    estate: &Estate,
) -> Destinations<'a> {
    let mut d = Destinations {
        repos: BTreeMap::new(),
        workspaces: BTreeMap::new(),
        skips: inventory
            .bitbucket
            .excluded_workspaces
            .iter()
            .map(|(ws, why)| Action::Skip {
                workspace: ws.clone(),
                repository: None,
                reason: SkipReason::Excluded { rule: why.clone() },
            })
            .collect(),
    };
    let mut workspaces: Vec<_> = inventory.bitbucket.workspaces.iter().collect();
    workspaces.sort_by(|a, b| a.slug.cmp(&b.slug));
    for ws in workspaces {
        let mut repositories: Vec<&Repo> = ws.repositories.iter().collect();
        repositories.sort_by(|a, b| a.slug.cmp(&b.slug));
        // Every workspace has its org, even with nothing to import (per project, only the
        // projects that have repositories do).
        match &config.mapping {
            Mapping::OrgPerProject { .. } => {}
            Mapping::SingleOrg { org_id } => {
                d.repos.entry(org_id.clone()).or_default();
            }
            mapping => {
                if let Some(name) = mapping.org_name(&ws.slug, None) {
                    d.workspaces
                        .entry(name.clone())
                        .or_default()
                        .insert(ws.slug.clone());
                    d.repos.entry(name).or_default();
                }
            }
        }
        for repo in repositories {
            let dest = match estate.of(repo) {
                Decision::Mirror(dest) => dest.to_string(),
                Decision::Skip(reason) => {
                    d.skips.push(Action::Skip {
                        workspace: ws.slug.clone(),
                        repository: Some(repo.slug.clone()),
                        reason,
                    });
                    continue;
                }
            };
            d.workspaces
                .entry(dest.clone())
                .or_default()
                .insert(ws.slug.clone());
            d.repos.entry(dest).or_default().push(repo);
        }
    }
    d
}

/// The plan being made: one list per kind of action, joined in order at the end.
struct Planner<'a> {
    config: &'a Config,
    history: &'a History,
    /// What changed in Bitbucket since the journal's records.
    drift: Drift,
    /// Repositories to record by uuid.
    tracks: Vec<Action>,
    /// The integration type imports go through.
    integration: &'a str,
    /// An integration can be added through the API only for `bitbucket-cloud`, and only when
    /// the Snyk port holds Snyk-side Bitbucket credentials.
    can_add: bool,
    /// A new org copies the template's integrations.
    template_has: bool,
    /// The group's orgs, sorted by name then id.
    orgs: Vec<&'a OrgInventory>,
    creates: Vec<Action>,
    adds: Vec<Action>,
    imports: Vec<Action>,
    conflicts: Vec<Action>,
    skips: Vec<Action>,
    /// What the Snyk side shows beyond what Bitbucket and the journal explain, named.
    differs: Vec<Action>,
    /// What the plan changes in Snyk because of what it read there: branches, reactivations
    /// (restore), retirements (`drift.adopt`, `--dedupe`).
    fixes: Vec<Action>,
    /// Facts the Snyk-side comparison reads, made once.
    facts: both_sides::Facts<'a>,
}

impl<'a> Planner<'a> {
    fn new(
        config: &'a Config,
        inventory: &'a Inventory,
        estate: &'a Estate,
        history: &'a History,
        drift: Drift,
    ) -> Self {
        let integration = config.snyk.integration.as_str();
        let mut orgs: Vec<&OrgInventory> = inventory.snyk.orgs.iter().collect();
        orgs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Self {
            config,
            history,
            drift,
            tracks: Vec::new(),
            integration,
            can_add: config.snyk.integration == IntegrationType::BitbucketCloud
                && inventory.snyk.can_add_integrations,
            template_has: config.snyk.template_org_id.is_some()
                && inventory
                    .snyk
                    .template_integrations
                    .as_ref()
                    .is_some_and(|m| m.contains_key(integration)),
            orgs,
            creates: Vec::new(),
            adds: Vec::new(),
            imports: Vec::new(),
            conflicts: Vec::new(),
            skips: Vec::new(),
            differs: Vec::new(),
            fixes: Vec::new(),
            facts: both_sides::Facts::new(config, inventory, estate, history),
        }
    }

    fn conflict(&mut self, org: &str, reason: ConflictReason, repos: &[&Repo]) {
        self.conflicts.push(Action::Conflict {
            org: org.to_owned(),
            reason,
            repositories: repos.iter().map(|r| r.full_name()).collect(),
        });
    }

    /// Plans one destination: conflicts that hold it back, or the org to import into and
    /// each repository's import or skip; where Snyk was read in full, what differs there.
    fn destination(&mut self, dest: &str, repos: &[&Repo], workspaces: Option<&BTreeSet<String>>) {
        let single = matches!(self.config.mapping, Mapping::SingleOrg { .. });
        let existing: Vec<&'a OrgInventory> = self
            .orgs
            .iter()
            .copied()
            .filter(|o| {
                if single {
                    o.id == dest
                } else {
                    self.drift.org_names.get(&o.id).unwrap_or(&o.name) == dest
                }
            })
            .collect();
        if !single && dest.chars().count() > MAX_ORG_NAME {
            let length = dest.chars().count();
            return self.conflict(dest, ConflictReason::NameTooLong { length }, repos);
        }
        // An org that could not be read holds back its repositories this run, alone.
        if let Some(why) = existing.iter().find_map(|o| o.unread.clone()) {
            return self.conflict(dest, ConflictReason::OrgUnread { why }, repos);
        }
        let org = match existing.as_slice() {
            [] => None,
            [one] => Some(*one),
            several => match self.pick_org(several) {
                Some(org) => Some(org),
                None => {
                    let org_ids = several.iter().map(|o| o.id.clone()).collect();
                    let reason = ConflictReason::DuplicateOrgName { org_ids };
                    return self.conflict(dest, reason, repos);
                }
            },
        };
        if let Some(org) = org.filter(|o| o.read_in_full()) {
            self.snyk_only(org, repos);
        }
        // Each repository once: already there (a skip), still to import, or removed in Snyk
        // by someone (named; imported again only to restore it).
        let mut skips = Vec::new();
        let mut pending: Vec<(&Repo, bool)> = Vec::new();
        // Skips name the org by its name (one shared copy per org).
        let org_name: Option<std::sync::Arc<str>> = org.map(|o| o.name.as_str().into());
        for repo in repos {
            if let Some(org) = org.filter(|o| o.read_in_full()) {
                match self.removed_in_snyk(org, repo) {
                    Some(true) => {
                        pending.push((*repo, true));
                        continue;
                    }
                    Some(false) => continue,
                    None => self.compare_target(org, repo),
                }
            }
            let imported = org.and_then(|o| o.imported.as_ref());
            match skip_if_done(repo, imported, org.map(|o| &o.id), self.history) {
                Some(mut skip) => {
                    if let Action::Skip {
                        reason:
                            SkipReason::AlreadyImported { org, .. }
                            | SkipReason::ImportedBeforeWithZeroProjects { org, .. },
                        ..
                    } = &mut skip
                    {
                        org.clone_from(&org_name);
                    }
                    if let Some(org) = org {
                        self.track(org, repo);
                    }
                    skips.push(skip);
                }
                None => pending.push((*repo, false)),
            }
        }
        let org_ref = match org {
            // Nothing left to import: no integration, cap or conflict matters (and the
            // inventory may not have read this org at all).
            Some(_) if pending.is_empty() => {
                self.skips.extend(skips);
                return;
            }
            Some(org) => self.existing_org(org, repos),
            None => self.new_org(dest, repos, workspaces),
        };
        // An org held back by a conflict holds back all its repositories, done ones included.
        let Some(org_ref) = org_ref else {
            return;
        };
        self.skips.extend(skips);
        for (repo, restore) in pending {
            let action = self.import(&org_ref, repo, restore);
            self.imports.push(action);
        }
    }

    /// The import of `repo` into `org`.
    fn import(&self, org: &OrgRef, repo: &Repo, restore: bool) -> Action {
        let replaces = repo
            .uuid
            .as_ref()
            .and_then(|u| self.drift.replaces.get(u))
            .cloned();
        let carrying = replaces.as_ref().map(|old| self.carrying(old));
        let metadata = crate::decide::metadata::wanted(&self.config.metadata, repo)
            .map(|w| crate::decide::metadata::for_new_project(&w))
            .filter(|s| !s.is_empty());
        Action::Import(Box::new(ImportAction {
            carrying,
            metadata,
            org: org.clone(),
            workspace: repo.workspace.clone(),
            repository: repo.slug.clone(),
            branch: repo.main_branch.clone().unwrap_or_default(),
            files: self.config.import.files.clone(),
            exclusion_globs: self.config.import.exclusion_globs.clone(),
            uuid: repo.uuid.clone(),
            workspace_uuid: repo.workspace_uuid.clone(),
            replaces,
            restore,
        }))
    }

    /// Records by uuid a repository found already in `org` that the journal does not know by
    /// uuid (imported before this tool, or by another).
    fn track(&mut self, org: &OrgInventory, repo: &Repo) {
        let Some(uuid) = &repo.uuid else {
            return;
        };
        if self.history.repos.contains_key(uuid) {
            return;
        }
        let full_name = repo.full_name();
        self.tracks.push(Action::Track(Sighting {
            uuid: uuid.clone(),
            placement: Placement {
                org_id: org.id.clone(),
                target_id: org.target_ids.get(&full_name.to_lowercase()).cloned(),
                full_name,
            },
            branch: repo.main_branch.clone(),
            workspace_uuid: repo.workspace_uuid.clone(),
        }));
    }

    /// The existing org to import into, with an integration to add if it has none and one can
    /// be added; `None` (and a conflict) when it cannot be used.
    fn existing_org(&mut self, org: &OrgInventory, repos: &[&Repo]) -> Option<OrgRef> {
        if self.history.capped_orgs.contains(&org.id) {
            let reason = ConflictReason::ProjectCap {
                org_id: org.id.clone(),
            };
            self.conflict(&org.name, reason, repos);
            return None;
        }
        let integration_id = org
            .integrations
            .as_ref()
            .and_then(|m| m.get(self.integration))
            .cloned();
        if integration_id.is_none() {
            if !self.can_add {
                let reason = ConflictReason::MissingIntegration {
                    org_id: Some(org.id.clone()),
                    integration: self.integration.to_owned(),
                };
                self.conflict(&org.name, reason, repos);
                return None;
            }
            self.adds.push(Action::AddIntegration {
                org: org.name.clone(),
                org_id: Some(org.id.clone()),
            });
        }
        Some(OrgRef::Existing {
            id: org.id.clone(),
            name: self
                .drift
                .org_names
                .get(&org.id)
                .unwrap_or(&org.name)
                .clone(),
            integration_id,
        })
    }

    /// The org to create for `dest`, with an integration to add unless the template brings
    /// one; `None` when nothing is to be imported there or no integration can be had.
    fn new_org(
        &mut self,
        dest: &str,
        repos: &[&Repo],
        workspaces: Option<&BTreeSet<String>>,
    ) -> Option<OrgRef> {
        if repos.is_empty() && self.config.source.skip_empty_workspaces {
            for ws in workspaces.into_iter().flatten() {
                self.skips.push(Action::Skip {
                    workspace: ws.clone(),
                    repository: None,
                    reason: SkipReason::EmptyWorkspace,
                });
            }
            return None;
        }
        if !self.template_has {
            if !self.can_add {
                let reason = ConflictReason::MissingIntegration {
                    org_id: None,
                    integration: self.integration.to_owned(),
                };
                self.conflict(dest, reason, repos);
                return None;
            }
            self.adds.push(Action::AddIntegration {
                org: dest.to_owned(),
                org_id: None,
            });
        }
        self.creates.push(Action::CreateOrg {
            name: dest.to_owned(),
        });
        Some(OrgRef::New {
            name: dest.to_owned(),
        })
    }

    /// The plan: org creations, integrations to add, imports, conflicts, then skips sorted by
    /// workspace and repository.
    fn finish(mut self) -> Plan {
        self.skips.sort_by(|a, b| skip_key(a).cmp(&skip_key(b)));
        let (renames, drift): (Vec<Action>, Vec<Action>) = self
            .drift
            .actions
            .into_iter()
            .partition(|a| matches!(a, Action::RenameOrg { .. }));
        let (guarded, drift): (Vec<Action>, Vec<Action>) = drift
            .into_iter()
            .partition(|a| matches!(a, Action::Conflict { .. }));
        let (notices, changes): (Vec<Action>, Vec<Action>) = drift
            .into_iter()
            .partition(|a| matches!(a, Action::WorkspaceGone { .. } | Action::OutOfScope { .. }));
        // The actions in their order, built around the largest part (the imports of a first
        // sync, the skips of a re-sync) so that at 100,000 repositories it is never copied
        // into a second vector of its size.
        let before_imports: Vec<Action> = self
            .creates
            .into_iter()
            .chain(self.adds)
            .chain(renames)
            .collect();
        let after_imports: Vec<Action> = changes
            .into_iter()
            .chain(self.fixes)
            .chain(self.tracks)
            .chain(self.conflicts)
            .chain(guarded)
            .chain(self.differs)
            .chain(notices)
            .collect();
        let mut actions = if self.imports.len() >= self.skips.len() {
            let mut actions = self.imports;
            actions.reserve_exact(before_imports.len() + after_imports.len() + self.skips.len());
            actions.splice(0..0, before_imports);
            actions.extend(after_imports);
            actions.extend(self.skips);
            actions
        } else {
            let mut actions = self.skips;
            let front = before_imports.len() + self.imports.len() + after_imports.len();
            actions.reserve_exact(front);
            actions.splice(
                0..0,
                before_imports
                    .into_iter()
                    .chain(self.imports)
                    .chain(after_imports),
            );
            actions
        };
        actions.shrink_to_fit();
        Plan::with_actions(self.config, actions)
    }
}
