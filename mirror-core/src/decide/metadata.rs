//! Tags and attributes from Bitbucket, as code: `[[metadata]]` rules of the configuration
//! give the projects of matching repositories tags (templates over the repository's facts),
//! criticality, environment, lifecycle and test frequency. The first rule that matches a
//! repository is its rule. Only what a rule names is managed: a tag key it sets, an attribute
//! it gives; a person's tags of other keys and attributes no rule names are never touched.

use serde::{Deserialize, Serialize};

use crate::decide::patterns::{Visibility, glob_match};
use crate::error::Error;
use crate::ids::{OrgId, ProjectId};
use crate::read::ports::{ProjectSettings, Repo, SnykPort};

/// One `[[metadata]]` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataRule {
    /// Which repositories it applies to (all when empty).
    #[serde(default, rename = "match")]
    pub matching: MetadataMatch,
    /// Tag key → value template: `{workspace}`, `{repository}`, `{project.key}`, `{language}`.
    /// A tag whose value comes out empty (a repository in no project, say) is not set.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// `critical`, `high`, `medium`, `low`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criticality: Vec<String>,
    /// `frontend`, `backend`, `internal`, `external`, `mobile`, `saas`, `onprem`, `hosted`,
    /// `distributed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// `production`, `development`, `sandbox`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<String>,
    /// `daily`, `weekly` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_frequency: Option<String>,
}

/// What a rule matches; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataMatch {
    /// A glob of the workspace slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// A glob of the Bitbucket project key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_key: Option<String>,
    /// A glob of the repository slug, or of `workspace/slug` when it has a `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The main language as Bitbucket guesses it (without regard to case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `private` or `public` (`all` matches both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

const CRITICALITY: &[&str] = &["critical", "high", "medium", "low"];
const ENVIRONMENT: &[&str] = &[
    "frontend",
    "backend",
    "internal",
    "external",
    "mobile",
    "saas",
    "onprem",
    "hosted",
    "distributed",
];
const LIFECYCLE: &[&str] = &["production", "development", "sandbox"];
const FREQUENCY: &[&str] = &["daily", "weekly", "never"];
const PLACEHOLDERS: &[&str] = &["workspace", "repository", "project.key", "language"];

impl MetadataMatch {
    fn matches(&self, repo: &Repo) -> bool {
        let glob = |p: &Option<String>, v: Option<&str>| {
            p.as_ref()
                .is_none_or(|p| v.is_some_and(|v| glob_match(p, v)))
        };
        let repository = self.repository.as_ref().is_none_or(|p| {
            if p.contains('/') {
                glob_match(p, &repo.full_name())
            } else {
                glob_match(p, &repo.slug)
            }
        });
        let visibility = match self.visibility {
            None | Some(Visibility::All) => true,
            Some(Visibility::Private) => repo.is_private,
            Some(Visibility::Public) => !repo.is_private,
        };
        glob(&self.workspace, Some(&repo.workspace))
            && glob(&self.project_key, repo.project_key.as_deref())
            && repository
            && self.language.as_ref().is_none_or(|l| {
                repo.language
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(l))
            })
            && visibility
    }
}

/// What a rule asks of one repository's projects: the managed values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// Tags (key, value), values filled in.
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) criticality: Vec<String>,
    pub(crate) environment: Vec<String>,
    pub(crate) lifecycle: Vec<String>,
    pub(crate) test_frequency: Option<String>,
}

/// One managed value that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldChange {
    /// `tags bb-project`, `criticality`, `environment`, `lifecycle`, `test frequency`.
    pub field: String,
    /// What it is now (none when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// What the rule says.
    pub to: String,
}

/// What the first rule matching `repo` asks of its projects; `None` when no rule matches.
pub(crate) fn wanted(rules: &[MetadataRule], repo: &Repo) -> Option<Wanted> {
    let rule = rules.iter().find(|r| r.matching.matches(repo))?;
    let tags = rule
        .tags
        .iter()
        .filter_map(|(k, template)| {
            let value = fill(template, repo);
            (!value.is_empty()).then(|| (k.clone(), value))
        })
        .collect();
    Some(Wanted {
        tags,
        criticality: rule.criticality.clone(),
        environment: rule.environment.clone(),
        lifecycle: rule.lifecycle.clone(),
        test_frequency: rule.test_frequency.clone(),
    })
}

/// A template with the repository's facts in place; characters Snyk refuses in a tag value
/// become `-`, and the value is cut at 256 characters.
fn fill(template: &str, repo: &Repo) -> String {
    let value = template
        .replace("{workspace}", &repo.workspace)
        .replace("{repository}", &repo.slug)
        .replace("{project.key}", repo.project_key.as_deref().unwrap_or(""))
        .replace("{language}", repo.language.as_deref().unwrap_or(""));
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-/:?#@&+=%~. ".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The project's settings with the managed values set, and what differs; `None` when nothing
/// does. Tags of other keys are kept as they are.
pub(crate) fn apply_to(
    current: &ProjectSettings,
    wanted: &Wanted,
) -> Option<(ProjectSettings, Vec<FieldChange>)> {
    let mut next = current.clone();
    let mut changes = Vec::new();
    for (key, value) in &wanted.tags {
        let now = current.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if now != Some(value) {
            next.tags.retain(|(k, _)| k != key);
            next.tags.push((key.clone(), value.clone()));
            changes.push(FieldChange {
                field: format!("tags {key}"),
                from: now.cloned(),
                to: value.clone(),
            });
        }
    }
    for (field, want, have, slot) in [
        (
            "criticality",
            &wanted.criticality,
            &current.criticality,
            &mut next.criticality,
        ),
        (
            "environment",
            &wanted.environment,
            &current.environment,
            &mut next.environment,
        ),
        (
            "lifecycle",
            &wanted.lifecycle,
            &current.lifecycle,
            &mut next.lifecycle,
        ),
    ] {
        if !want.is_empty() && want != have {
            slot.clone_from(want);
            changes.push(FieldChange {
                field: field.to_owned(),
                from: (!have.is_empty()).then(|| have.join(",")),
                to: want.join(","),
            });
        }
    }
    if let Some(f) = &wanted.test_frequency
        && current.test_frequency.as_ref() != Some(f)
    {
        next.test_frequency = Some(f.clone());
        changes.push(FieldChange {
            field: "test frequency".to_owned(),
            from: current.test_frequency.clone(),
            to: f.clone(),
        });
    }
    (!changes.is_empty()).then_some((next, changes))
}

/// Writes `settings` to a project. When it changes tags (`tags_changed`) and Snyk refuses
/// them (403, 422: plans without tags), the rest is written without them and Snyk's answer is
/// returned; `None` when all was written.
///
/// # Errors
/// Any other failure of the write.
pub(crate) async fn write_settings(
    snyk: &dyn SnykPort,
    org_id: &OrgId,
    project_id: &ProjectId,
    settings: &ProjectSettings,
    tags_changed: bool,
) -> Result<Option<String>, Error> {
    match snyk
        .update_project_settings(org_id, project_id, settings)
        .await
    {
        Ok(()) => Ok(None),
        Err(e) if tags_changed && matches!(e.status(), Some(403 | 422)) => {
            let mut without = settings.clone();
            without.tags.clear();
            if !without.is_empty() {
                snyk.update_project_settings(org_id, project_id, &without)
                    .await?;
            }
            Ok(Some(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The settings a new project gets from `wanted` (nothing else set yet).
pub(crate) fn for_new_project(wanted: &Wanted) -> ProjectSettings {
    apply_to(&ProjectSettings::default(), wanted)
        .map(|(s, _)| s)
        .unwrap_or_default()
}

/// Refuses a rule Snyk would refuse: tag keys of more than 30 characters or other than
/// letters, digits, `-` and `_`; unknown placeholders; attribute values and test frequencies
/// Snyk does not know.
///
/// # Errors
/// [`Error::Config`] naming the rule (by its position, from 1) and what to fix.
pub(crate) fn validate(rules: &[MetadataRule]) -> Result<(), Error> {
    for (i, rule) in rules.iter().enumerate() {
        let n = i + 1;
        let bad = |what: String| Err(Error::Config(format!("metadata rule {n}: {what}")));
        for (key, template) in &rule.tags {
            if key.is_empty()
                || key.chars().count() > 30
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return bad(format!(
                    "the tag key `{key}` must be 1 to 30 letters, digits, `-` or `_`"
                ));
            }
            for part in template.split('{').skip(1) {
                let name = part.split('}').next().unwrap_or("");
                if !PLACEHOLDERS.contains(&name) {
                    return bad(format!(
                        "the tag `{key}` uses `{{{name}}}`; the placeholders are {{workspace}}, {{repository}}, {{project.key}} and {{language}}"
                    ));
                }
            }
        }
        for (field, values, known) in [
            ("criticality", &rule.criticality, CRITICALITY),
            ("environment", &rule.environment, ENVIRONMENT),
            ("lifecycle", &rule.lifecycle, LIFECYCLE),
        ] {
            if let Some(v) = values.iter().find(|v| !known.contains(&v.as_str())) {
                return bad(format!("{field} `{v}` is not one of {}", known.join(", ")));
            }
        }
        if let Some(f) = &rule.test_frequency
            && !FREQUENCY.contains(&f.as_str())
        {
            return bad(format!(
                "test_frequency `{f}` is not one of daily, weekly, never"
            ));
        }
    }
    Ok(())
}
