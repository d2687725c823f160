//! Reading both sides for a plan: the workspaces in scope, their repositories (and a second
//! look at the ones missing), and the Snyk orgs they map to.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The workspaces in scope: `source.workspaces` when given, or every workspace the credentials
/// see, less those the include and exclude patterns leave out; sorted.
///
/// # Errors
/// When the workspaces cannot be listed.
pub async fn workspaces_in_scope(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
) -> Result<Vec<String>, Error> {
    let mut slugs: Vec<String> = match &config.source.workspaces {
        Some(list) => list.iter().map(|s| s.trim().to_owned()).collect(),
        None => bitbucket.workspaces().await?,
    };
    slugs.retain(|s| workspace_selected(config, s).is_ok());
    slugs.sort();
    slugs.dedup();
    Ok(slugs)
}

/// Reads the Bitbucket side. A workspace whose listing fails is named among
/// [`BitbucketInventory::unlisted`] and the others go on, unless the failure ends the run
/// (credentials refused outright, or a workspace named in `source.workspaces` that does not
/// exist).
///
/// # Errors
/// A listing failure that ends the run, or the workspaces cannot be listed.
pub async fn gather_bitbucket(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
) -> Result<BitbucketInventory, Error> {
    let configured = config.source.workspaces.is_some();
    let mut slugs = match &config.source.workspaces {
        Some(list) => list.iter().map(|s| s.trim().to_owned()).collect(),
        None => bitbucket.workspaces().await?,
    };
    slugs.sort();
    slugs.dedup();
    let mut inventory = BitbucketInventory::default();
    let mut selected = Vec::new();
    for slug in slugs {
        match workspace_selected(config, &slug) {
            Ok(()) => selected.push(slug),
            Err(why) => inventory.excluded_workspaces.push((slug, why)),
        }
    }
    let query = RepoQuery {
        project_keys: config.source.project_keys.clone(),
        // Validated with the configuration; a duration is counted back from now.
        updated_since: config.source.updated_since_time().unwrap_or_default(),
    };
    let query = &query;
    let listed: Vec<(String, Result<Listing, Error>)> = stream::iter(selected)
        .map(|slug| async move {
            let listing = bitbucket.repositories(&slug, query).await;
            (slug, listing)
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .collect()
        .await;
    for (slug, listing) in listed {
        match listing {
            Ok(listing) => inventory.add_listing(slug, listing, config),
            Err(e) if e.ends_the_run() || (configured && e.kind() == ErrorKind::NotFound) => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(workspace = %slug, error = %e, "the workspace could not be listed; nothing of it changes this run");
                inventory.unlisted.push((slug, e.to_string()));
            }
        }
    }
    inventory.workspaces.sort_by(|a, b| a.slug.cmp(&b.slug));
    inventory.unlisted.sort();
    Ok(inventory)
}

impl BitbucketInventory {
    /// Adds a workspace's listing: its repositories, sorted and each once, and the entries
    /// that could not be read.
    fn add_listing(&mut self, slug: String, listing: Listing, config: &Config) {
        let Listing {
            mut repositories,
            unreadable,
            ..
        } = listing;
        let trim = trimmer(config);
        for repo in &mut repositories {
            trim(repo);
        }
        repositories.sort_by(|a, b| a.slug.cmp(&b.slug));
        repositories.dedup_by(|a, b| a.slug == b.slug);
        // A listing collected in place keeps the larger buffer of the raw models (five times
        // the room at 100,000 repositories): keep only what is used.
        repositories.shrink_to_fit();
        if !unreadable.is_empty() {
            self.unreadable.insert(slug.clone(), unreadable);
        }
        self.workspaces
            .push(WorkspaceInventory { slug, repositories });
    }
}

/// Looks up by uuid every mirrored repository that no listing showed, when its last workspace
/// was listed (a listing narrowed on the server proves nothing by omission); a repository
/// whose workspace is not visible any more is not looked up (the plan names the workspace
/// instead), nor one whose entry in a listing could not be read (it is there, and uncertain).
///
/// # Errors
/// A lookup whose failure ends the run ([`Error::ends_the_run`]); any other failure leaves
/// its repository [`Lookup::Uncertain`].
async fn confirm_missing(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    inventory: &mut BitbucketInventory,
    history: &History,
    now: u64,
) -> Result<(), Error> {
    if !config.source.project_keys.is_empty() || config.source.updated_since.is_some() {
        return Ok(());
    }
    let listed: BTreeSet<&RepoUuid> = inventory
        .workspaces
        .iter()
        .flat_map(|w| &w.repositories)
        .filter_map(|r| r.uuid.as_ref())
        .collect();
    let workspaces: BTreeSet<String> = inventory
        .workspaces
        .iter()
        .map(|w| w.slug.clone())
        .collect();
    // Targets in quarantine whose time is up must be found gone again before their deletion.
    let due = due_for_deletion(config, history, now);
    let missing: Vec<(RepoUuid, String, bool)> = history
        .repos
        .iter()
        .map(|(uuid, record)| (uuid, &record.current))
        .chain(due.map(|q| (&q.uuid, &q.placement)))
        .filter(|(uuid, _)| !listed.contains(uuid) && inventory.unreadable_entry(uuid).is_none())
        .filter_map(|(uuid, placement)| {
            let (workspace, _) = placement.full_name.split_once('/')?;
            workspaces.contains(workspace).then(|| {
                let complete = inventory.lists_in_full(workspace);
                (uuid.clone(), workspace.to_owned(), complete)
            })
        })
        .collect();
    let workspaces = &workspaces;
    let found: Vec<(RepoUuid, Lookup)> = stream::iter(missing)
        .map(|(uuid, workspace, complete)| async move {
            let lookup = look_up(bitbucket, &workspace, &uuid, workspaces, complete).await?;
            Ok::<_, Error>((uuid, lookup))
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .try_collect()
        .await?;
    inventory.confirmations.extend(found);
    Ok(())
}

/// The targets in quarantine whose repository was deleted and whose `drift.delete_after` is
/// up at `now` (none unless `retire = "delete"`).
pub(crate) fn due_for_deletion<'a>(
    config: &'a Config,
    history: &'a History,
    now: u64,
) -> impl Iterator<Item = &'a Quarantined> + 'a {
    let deleting = config.drift.retire == crate::config::RetireMode::Delete;
    history
        .quarantined
        .iter()
        .filter(move |q| deleting && q.reason == Retired::Deleted && now >= q.due_at(config))
}

/// Looks a repository missing from `workspace`'s listing up by its uuid, and judges the
/// answer (see [`Lookup`]): 404 is [`Lookup::Gone`] only when the listing was `complete`; an
/// answer naming another workspace is a transfer only when that workspace, asked by uuid,
/// shows it too, and never when that workspace's listing (in `listed`) lacks it.
async fn look_up(
    bitbucket: &dyn BitbucketPort,
    workspace: &str,
    uuid: &RepoUuid,
    listed: &BTreeSet<String>,
    complete: bool,
) -> Result<Lookup, Error> {
    let uncertain = |why: String| Ok(Lookup::Uncertain { why });
    let repo = match bitbucket.repository_by_uuid(workspace, uuid).await {
        Ok(Some(repo)) => repo,
        Ok(None) if complete => return Ok(Lookup::Gone),
        Ok(None) => {
            return uncertain(format!(
                "Bitbucket answered 404 by uuid, but entries of {workspace}'s listing could not be read, and one of them may be this repository"
            ));
        }
        Err(e) if e.ends_the_run() => return Err(e),
        Err(e) => return uncertain(format!("looking it up by uuid failed: {e}")),
    };
    let now = repo.workspace.clone();
    if now.eq_ignore_ascii_case(workspace) {
        return Ok(Lookup::Found { repository: repo });
    }
    if listed.contains(&now) {
        return uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, whose listing does not show it"
        ));
    }
    match bitbucket.repository_by_uuid(&now, uuid).await {
        Ok(Some(there)) if there.workspace.eq_ignore_ascii_case(&now) => {
            Ok(Lookup::Found { repository: there })
        }
        Ok(_) => uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, where a lookup by uuid does not find it"
        )),
        Err(e) if e.ends_the_run() => Err(e),
        Err(e) => uncertain(format!(
            "Bitbucket's answer by uuid puts it in workspace {now}, and looking it up there failed: {e}"
        )),
    }
}

/// The audit-log events that say a person removed or deactivated something.
const PEOPLE_EVENTS: &[&str] = &[
    "org.target.delete",
    "org.project.delete",
    "org.project.remove",
    "org.project.stop_monitor",
];

/// How far back the audit log is searched for who removed or deactivated something.
const AUDIT_HORIZON_SECONDS: u64 = 90 * 24 * 3600;

/// The group's orgs the plan may use: the single configured org, the orgs of the wanted names
/// (a targeted reconcile of a few asks for them by name), or the whole group.
async fn list_orgs(
    config: &Config,
    snyk: &dyn SnykPort,
    wanted: &BTreeSet<String>,
    targeted: bool,
) -> Result<Vec<OrgInventory>, Error> {
    let listed = match &config.mapping {
        Mapping::SingleOrg { org_id } => {
            return Ok(vec![OrgInventory::new(
                org_id.as_str().into(),
                org_id.clone(),
            )]);
        }
        _ if targeted && wanted.len() <= NAMED_TARGET_LOOKUPS => {
            let mut found = Vec::new();
            for name in wanted {
                found.extend(snyk.orgs_named(&config.snyk.group_id, name).await?);
            }
            found
        }
        _ => snyk.orgs(&config.snyk.group_id).await?,
    };
    Ok(listed
        .into_iter()
        .map(|o| OrgInventory::new(o.id, o.name))
        .collect())
}

/// The repositories each destination would import, before looking at Snyk.
fn candidates<'a>(
    bitbucket: &'a BitbucketInventory,
    estate: &Estate,
) -> BTreeMap<String, Vec<&'a Repo>> {
    let mut candidates: BTreeMap<String, Vec<&Repo>> = BTreeMap::new();
    for repo in bitbucket.workspaces.iter().flat_map(|w| &w.repositories) {
        if let Some(dest) = estate.destination(repo) {
            candidates.entry(dest.to_string()).or_default().push(repo);
        }
    }
    candidates
}

/// What one org read holds: integrations, Bitbucket targets, and (on a full read) projects.
struct OrgRead {
    integrations: BTreeMap<String, IntegrationId>,
    targets: Vec<SnykTarget>,
    projects: Option<Vec<SnykProject>>,
}

/// Reads one org: its integrations and Bitbucket targets (those of `names` only, when given),
/// and on a `full` read every project.
async fn read_org(
    snyk: &dyn SnykPort,
    id: OrgId,
    names: Option<Vec<String>>,
    full: bool,
) -> Result<OrgRead, Error> {
    let integrations = snyk.integrations(&id).await?;
    let targets = match names {
        Some(names) => bitbucket_targets_named(snyk, &id, &names).await?,
        None => all_bitbucket_targets(snyk, &id).await?,
    };
    let projects = if full {
        match snyk.org_projects(&id).await {
            Ok(projects) => Some(projects),
            Err(Error::Unsupported { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(OrgRead {
        integrations,
        targets,
        projects,
    })
}

/// Whether `org` shows a target this mirror imported that is gone, or one whose projects
/// are all inactive although this mirror did not retire it: a change someone else made.
fn shows_people_changes(org: &OrgInventory, history: &History) -> bool {
    let Some(imported) = &org.imported else {
        return false;
    };
    // The org's completed imports alone (the journal's keys begin with the org).
    history
        .completed
        .range((org.id.clone(), String::new())..)
        .take_while(|((id, _), _)| *id == org.id)
        .filter(|(_, projects)| **projects > 0)
        .any(|((_, name), _)| match org.target_ids.get(name) {
            None => !imported.contains(name),
            Some(target) => {
                let mut projects = org.projects_of(target).peekable();
                projects.peek().is_some() && projects.all(|p| !p.active)
            }
        })
}

/// Reads the audit log of an org that shows people's changes, to name who made them and
/// when; a plan without audit logs (or any failure) is noted and the run goes on.
async fn read_changes(snyk: &dyn SnykPort, org: &mut OrgInventory, now: u64) {
    let back = now.saturating_sub(AUDIT_HORIZON_SECONDS);
    let from = crate::ids::Timestamp::from_second(i64::try_from(back).unwrap_or(0))
        .unwrap_or(crate::ids::Timestamp::UNIX_EPOCH);
    match snyk.audit_log(&org.id, PEOPLE_EVENTS, from).await {
        Ok(entries) => org.changes = entries,
        Err(e) => {
            tracing::info!(org = %org.name, error = %e, "the audit log could not be read; who changed what is not named");
            org.audit_unread = Some(e.to_string());
        }
    }
}

/// Reads the Snyk side: the group's orgs, and for every org the plan may use its
/// integrations and Bitbucket targets; a full read (`targeted` false) also reads every
/// project of those orgs, and the audit log of an org that shows changes this mirror did not
/// make. A targeted reconcile reads only the orgs with work left and the targets it touches.
///
/// # Errors
/// The first request that fails.
pub(crate) async fn gather_snyk_for(
    config: &Config,
    bitbucket: &BitbucketInventory,
    estate: &Estate,
    snyk: &dyn SnykPort,
    history: &History,
    targeted: bool,
) -> Result<SnykInventory, Error> {
    let wanted = wanted_org_names(config, bitbucket);
    let mut orgs = list_orgs(config, snyk, &wanted, targeted).await?;
    let single = matches!(config.mapping, Mapping::SingleOrg { .. });
    let candidates = candidates(bitbucket, estate);
    let dest_of = |o: &OrgInventory| {
        if single {
            o.id.to_string()
        } else {
            o.name.clone()
        }
    };
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for o in &orgs {
        *by_name.entry(o.name.clone()).or_default() += 1;
    }
    // A full read reads every org in scope; a targeted one only a lone org of its name with
    // work left, and its touched targets by name.
    let to_read: Vec<(usize, Option<Vec<String>>)> = orgs
        .iter()
        .enumerate()
        .filter(|(_, o)| single || wanted.contains(&o.name))
        .filter_map(|(i, o)| {
            let repos = candidates.get(&dest_of(o));
            if !targeted {
                return Some((i, None));
            }
            let has_work = repos
                .is_some_and(|repos| repos.iter().any(|r| pending_by_history(r, &o.id, history)));
            let lone = single || by_name.get(&o.name) == Some(&1);
            let names = repos
                .map(|repos| repos.iter().map(|r| r.full_name()).collect::<Vec<_>>())
                .filter(|names| names.len() <= NAMED_TARGET_LOOKUPS);
            (has_work && lone).then_some((i, names))
        })
        .collect();
    let full = !targeted;
    let ids: Vec<OrgId> = orgs.iter().map(|o| o.id.clone()).collect();
    let ids = &ids;
    let answers: Vec<(usize, Result<OrgRead, Error>)> = stream::iter(to_read)
        .map(|(i, names)| async move { (i, read_org(snyk, ids[i].clone(), names, full).await) })
        .buffer_unordered(ORG_CONCURRENCY)
        .collect()
        .await;
    let mut read_in_full = full;
    let mut details = Vec::new();
    for (i, answer) in answers {
        match answer {
            Ok(d) => details.push((i, d)),
            // Credentials refused end the run; any other failure holds back this org alone.
            Err(e) if e.ends_the_run() => return Err(e),
            Err(e) => {
                tracing::warn!(org = %orgs[i].name, error = %e, "the org could not be read; nothing is imported into it this run");
                read_in_full = false;
                orgs[i].unread = Some(e.to_string());
            }
        }
    }
    let read: BTreeSet<usize> = details.iter().map(|(i, _)| *i).collect();
    for (i, d) in details {
        read_in_full &= d.projects.is_some();
        orgs[i].integrations = Some(d.integrations);
        orgs[i].keep_targets(d.targets);
        orgs[i].projects = d.projects.map(|mut projects| {
            projects.sort_by(|a, b| a.target_id.cmp(&b.target_id));
            projects
        });
    }
    if full {
        let now = unix_now();
        for i in read {
            if shows_people_changes(&orgs[i], history) {
                read_changes(snyk, &mut orgs[i], now).await;
            }
        }
    }
    orgs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let template_integrations = match &config.snyk.template_org_id {
        Some(t) => Some(snyk.integrations(&OrgId::from(t.as_str())).await?),
        None => None,
    };
    Ok(SnykInventory {
        orgs,
        template_integrations,
        can_add_integrations: snyk.can_add_integrations(),
        read_in_full,
    })
}

/// Reads both sides, everything the plan could need whatever the history.
///
/// # Errors
/// The first request that fails.
pub async fn gather(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    snyk: &dyn SnykPort,
) -> Result<Inventory, Error> {
    gather_for(config, bitbucket, snyk, &History::default()).await
}

/// Reads both sides for a plan with this `history` (the journal's): Snyk orgs whose every
/// repository the journal shows imported are not read. The plan made
/// from it is the one [`gather`] would give.
///
/// # Errors
/// The first request that fails.
pub async fn gather_for(
    config: &Config,
    bitbucket: &dyn BitbucketPort,
    snyk: &dyn SnykPort,
    history: &History,
) -> Result<Inventory, Error> {
    // One "now" for the read: what is looked up as due for deletion is what the plan
    // judges due.
    let now = unix_now();
    let mut bb = gather_bitbucket(config, bitbucket).await?;
    confirm_missing(config, bitbucket, &mut bb, history, now).await?;
    let estate = Estate::decide(config, bb.repositories());
    let sn = gather_snyk_for(config, &bb, &estate, snyk, history, false).await?;
    Ok(Inventory {
        bitbucket: bb,
        snyk: sn,
        read_at: Some(now),
        estate,
    })
}
