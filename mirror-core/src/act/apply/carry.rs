//! A project's history survives a rename or a transfer: before an old target is retired,
//! each of its projects' ignores, tags, attributes, test frequency and owner are copied to the
//! project of the new target that tests the same manifest (its twin). Each step reads the new
//! project first and writes only what it lacks, so a run stopped anywhere and run again adds
//! nothing twice.

use crate::act::report::Carried;
use crate::decide::rules::Placement;
use crate::error::Error;
use crate::ids::TargetId;
use crate::read::ports::{Ignore, ProjectSettings, SnykPort, SnykProject};

/// Where the history goes from and to: an old target and the new one.
pub(crate) struct Twins<'a> {
    pub(crate) old: &'a Placement,
    pub(crate) old_target: &'a TargetId,
    pub(crate) new: &'a Placement,
    pub(crate) new_target: &'a TargetId,
}

/// The manifest a project tests, by which twins are found.
fn manifest(p: &SnykProject) -> (Option<&str>, Option<&str>) {
    (p.target_file.as_deref(), p.project_type.as_deref())
}

/// Copies the history of `t.old`'s projects to their twins in `t.new`, and names the projects
/// without a twin on either side.
///
/// # Errors
/// A request that fails (the caller then does not retire the old target).
pub(crate) async fn carry_over(snyk: &dyn SnykPort, t: &Twins<'_>) -> Result<Carried, Error> {
    let old = snyk.projects(&t.old.org_id, t.old_target).await?;
    let new = snyk.projects(&t.new.org_id, t.new_target).await?;
    let mut carried = Carried::default();
    let mut tags_refused = false;
    for project in &new {
        let Some(twin) = old.iter().find(|o| manifest(o) == manifest(project)) else {
            carried.without_twin.push(label(project));
            continue;
        };
        carried.ignores += carry_ignores(snyk, t, twin, project).await?;
        carry_settings(snyk, t, twin, project, &mut carried, &mut tags_refused).await?;
    }
    for gone in old
        .iter()
        .filter(|o| !new.iter().any(|n| manifest(n) == manifest(o)))
    {
        carried.manifest_gone.push(label(gone));
    }
    Ok(carried)
}

fn label(p: &SnykProject) -> String {
    p.target_file.clone().unwrap_or_else(|| p.id.to_string())
}

/// Copies the ignores `new` lacks (by issue and path), keeping the original author and date in
/// the reason (Snyk sets who and when itself). A port that cannot read ignores copies none.
async fn carry_ignores(
    snyk: &dyn SnykPort,
    t: &Twins<'_>,
    old: &SnykProject,
    new: &SnykProject,
) -> Result<usize, Error> {
    let from = match snyk.ignores(&t.old.org_id, &old.id).await {
        Ok(ignores) => ignores,
        Err(Error::Unsupported { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    if from.is_empty() {
        return Ok(0);
    }
    let there = snyk.ignores(&t.new.org_id, &new.id).await?;
    let mut added = 0;
    for ignore in from {
        let same = |i: &Ignore| i.issue_id == ignore.issue_id && i.path == ignore.path;
        if there.iter().any(same) {
            continue;
        }
        let mut copy = ignore.clone();
        copy.reason = carried_reason(&ignore, &t.old.full_name);
        snyk.add_ignore(&t.new.org_id, &new.id, &copy).await?;
        added += 1;
    }
    Ok(added)
}

/// The reason of a carried ignore: the original, then who added it, when, and where.
fn carried_reason(ignore: &Ignore, old: &str) -> String {
    let who = ignore.ignored_by.as_deref().unwrap_or("someone");
    let when = ignore
        .created
        .map(|c| format!(" on {}", c.strftime("%Y-%m-%d")))
        .unwrap_or_default();
    format!(
        "{} (ignored by {who}{when} in {old}; carried over by bb-snyk-mirror)",
        ignore.reason
    )
}

/// Copies tags (of keys the new project lacks), attributes (where the new has none), test
/// frequency and owner; one write when anything differs. Tags refused by Snyk (plans without
/// them answer 403 or 422) are named once and the rest is written without them.
async fn carry_settings(
    snyk: &dyn SnykPort,
    t: &Twins<'_>,
    old: &SnykProject,
    new: &SnykProject,
    carried: &mut Carried,
    tags_refused: &mut bool,
) -> Result<(), Error> {
    let (merged, counts) = merge(&old.settings, &new.settings);
    if merged == new.settings {
        return Ok(());
    }
    let mut write = merged;
    let mut counts = counts;
    // Refused for an earlier project of this target: the tags are not written again, nor
    // counted as copied.
    if *tags_refused {
        write.tags = new.settings.tags.clone();
        counts.tags = 0;
    }
    let tags_changed = counts.tags > 0;
    match crate::decide::metadata::write_settings(
        snyk,
        &t.new.org_id,
        &new.id,
        &write,
        tags_changed,
    )
    .await
    {
        Ok(None) => carried.add(&counts),
        Ok(Some(why)) => {
            *tags_refused = true;
            carried.tags_refused = Some(why);
            carried.add(&Counts { tags: 0, ..counts });
        }
        Err(Error::Unsupported { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// What a merge adds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) tags: usize,
    pub(crate) attributes: usize,
    pub(crate) test_frequency: bool,
    pub(crate) owner: bool,
}

impl Carried {
    /// Adds what one project's merge copied.
    fn add(&mut self, c: &Counts) {
        self.tags += c.tags;
        self.attributes += c.attributes;
        self.test_frequency += usize::from(c.test_frequency);
        self.owner += usize::from(c.owner);
    }
}

/// The new project's settings with the old one's added: tags of keys it lacks, attributes it
/// has none of, the old test frequency and owner.
fn merge(old: &ProjectSettings, new: &ProjectSettings) -> (ProjectSettings, Counts) {
    let mut merged = new.clone();
    let mut counts = Counts::default();
    for (key, value) in &old.tags {
        if !merged.tags.iter().any(|(k, _)| k == key) {
            merged.tags.push((key.clone(), value.clone()));
            counts.tags += 1;
        }
    }
    for (from, to) in [
        (&old.criticality, &mut merged.criticality),
        (&old.environment, &mut merged.environment),
        (&old.lifecycle, &mut merged.lifecycle),
    ] {
        if to.is_empty() && !from.is_empty() {
            to.clone_from(from);
            counts.attributes += 1;
        }
    }
    if old.test_frequency.is_some() && old.test_frequency != merged.test_frequency {
        merged.test_frequency.clone_from(&old.test_frequency);
        counts.test_frequency = true;
    }
    if old.owner.is_some() && old.owner != merged.owner {
        merged.owner.clone_from(&old.owner);
        counts.owner = true;
    }
    (merged, counts)
}
