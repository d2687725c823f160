//! The mirror's configuration: a typed struct, loadable from TOML.
//!
//! ```toml
//! [snyk]
//! group_id = "4a18d42f-0706-4ad0-b127-24078731fbed"
//! integration = "bitbucket-cloud"      # or "bitbucket-cloud-app"
//! template_org_id = "…"                # optional: new orgs copy its integrations and settings
//!
//! [source]
//! workspaces = ["acme", "acme-data"]   # omit to mirror every workspace the credentials see
//! exclude_repositories = ["*-archive"]
//! skip_forks = true
//!
//! [mapping]
//! kind = "org-per-workspace"           # or "org-per-project", or "single-org"
//! name = "{workspace}"
//!
//! [import]
//! exclusion_globs = ["fixtures", "tests"]
//! ```

pub use crate::decide::patterns::{Visibility, glob_match, glob_pattern};
use serde::{Deserialize, Serialize};
pub use snyk_client::IntegrationType;

use crate::error::Error;
use crate::ids::GroupId;
use crate::ids::Timestamp;

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The Snyk side.
    #[serde(default)]
    pub snyk: SnykSettings,
    /// What to mirror from Bitbucket.
    #[serde(default)]
    pub source: Source,
    /// How workspaces map to orgs.
    #[serde(default)]
    pub mapping: Mapping,
    /// What each import asks for.
    #[serde(default)]
    pub import: ImportOptions,
    /// How apply runs.
    #[serde(default)]
    pub apply: ApplyOptions,
    /// How Snyk follows what changed in Bitbucket.
    #[serde(default)]
    pub drift: DriftOptions,
    /// `[[metadata]]`: tags and attributes for the projects of matching repositories (the
    /// first rule that matches a repository is its rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<crate::decide::metadata::MetadataRule>,
}

/// What retiring a target does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetireMode {
    /// Deactivate its projects: they stop being tested, and can be activated again.
    #[default]
    Deactivate,
    /// Delete the target, then whatever projects are left of it.
    Delete,
    /// Change nothing in Snyk; the plan and the report name it.
    Report,
}

impl RetireMode {
    /// The name as the configuration writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
            Self::Report => "report",
        }
    }
}

/// What happens to a mirrored repository that is now out of scope (excluded by a rule, now a
/// fork, or emptied).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutOfScope {
    /// Name it in the plan and the report; leave it in Snyk.
    #[default]
    Report,
    /// Retire it as a deleted repository would be.
    Retire,
}

/// How Snyk follows what changed in Bitbucket (`[drift]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftOptions {
    /// What retiring a target does (default `deactivate`, which is reversible).
    #[serde(default)]
    pub retire: RetireMode,
    /// What happens to a repository now out of scope (default `report`).
    #[serde(default)]
    pub out_of_scope: OutOfScope,
    /// Let a run retire more than `max(10, 10%)` of an org's active targets (default false:
    /// the rest is held back as a conflict).
    #[serde(default)]
    pub allow_mass_retire: bool,
    /// With `retire = "delete"`: how long a target stays deactivated before it is deleted
    /// (default `7d`). A target is deleted only when this mirror deactivated it at least that
    /// long before and its repository is found gone again then; until then it is only
    /// deactivated (reversible, and `bb-snyk-mirror undo` brings it back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<String>,
    /// Retire targets in Snyk that this mirror never imported and whose repository is not in
    /// Bitbucket or not in scope, as it retires its own (default false: they are only named).
    #[serde(default)]
    pub adopt: bool,
    /// Retire the second target of a repository (or of a name), keeping the one this mirror
    /// made (default false: duplicates are only named; `--dedupe`).
    #[serde(default)]
    pub dedupe: bool,
}

/// How long a target stays deactivated before `retire = "delete"` deletes it, by default.
pub const DELETE_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl DriftOptions {
    /// [`DriftOptions::delete_after`] as a duration (7 days when unset; [`Config::validate`]
    /// refuses an unreadable one).
    pub fn delete_after(&self) -> std::time::Duration {
        self.delete_after
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(DELETE_AFTER)
    }
}

/// Reads an integration type as users write it (`bitbucket-cloud`, `bitbucket-cloud-app`,
/// `bitbucket-connect-app`): the two Bitbucket Cloud integrations imports can go through.
///
/// # Errors
/// [`Error::Config`] naming the valid values.
pub fn integration_type(name: &str) -> Result<IntegrationType, Error> {
    match IntegrationType::parse(name) {
        IntegrationType::Other(other) => Err(Error::Config(format!(
            "unknown integration type `{other}`: use bitbucket-cloud or bitbucket-cloud-app"
        ))),
        known => Ok(known),
    }
}

/// `snyk.integration`: one of the two Bitbucket Cloud integrations.
fn known_integration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IntegrationType, D::Error> {
    let name = String::deserialize(d)?;
    integration_type(&name).map_err(serde::de::Error::custom)
}

/// How long an org's kept read is trusted when the audit log names no change in it, by
/// default (`snyk.full_every`).
pub const SNYK_FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The Snyk side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnykSettings {
    /// The group whose orgs are listed and created.
    #[serde(default)]
    pub group_id: GroupId,
    /// The integration imports go through (`bitbucket-cloud`, the default, or the Bitbucket
    /// Cloud App, `bitbucket-cloud-app`).
    #[serde(default, deserialize_with = "known_integration")]
    pub integration: IntegrationType,
    /// A template org: new orgs copy its integrations (with credentials) and settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_org_id: Option<String>,
    /// What to do about targets removed and projects deactivated in Snyk by someone other
    /// than this mirror (default `respect`: leave them, and name them on every plan).
    #[serde(default)]
    pub people_changes: PeopleChanges,
    /// How long an org's kept read may be trusted when the group's audit log names no change
    /// in it (default `24h`; `0s` reads every org in full every time). Without an audit log,
    /// every org is read in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_read_every: Option<String>,
}

impl SnykSettings {
    /// [`SnykSettings::full_read_every`] as a duration (24 hours when unset; [`Config::validate`]
    /// refuses an unreadable one).
    pub fn full_every(&self) -> std::time::Duration {
        self.full_read_every
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(SNYK_FULL_EVERY)
    }
}

/// What a run does about changes people made in Snyk to what this mirror imported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeopleChanges {
    /// Leave them as they are, and name each one with how to restore it or exclude it.
    #[default]
    Respect,
    /// Undo them: import a removed target again, reactivate deactivated projects.
    Restore,
}

/// What to mirror from Bitbucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The workspaces to mirror; `None` for every workspace the credentials can see (access
    /// tokens cannot list workspaces and need this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    /// Glob patterns (`*`, `?`) a workspace slug must match, if any are given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_workspaces: Vec<String>,
    /// Glob patterns of workspace slugs to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_workspaces: Vec<String>,
    /// Glob patterns a repository must match, if any are given: against the slug, or against
    /// `workspace/slug` when the pattern has a `/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_repositories: Vec<String>,
    /// Glob patterns of repositories to leave out (same matching).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_repositories: Vec<String>,
    /// Leave forks out.
    #[serde(default)]
    pub skip_forks: bool,
    /// Public, private or both.
    #[serde(default)]
    pub visibility: Visibility,
    /// Only repositories of these Bitbucket project keys, if any are given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_keys: Vec<String>,
    /// Only repositories updated after this time: a date (`2026-11-01`), an RFC 3339 date-time
    /// (`2026-11-01T00:00:00Z`) or a duration back from now (`24h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<String>,
    /// Create no org for a workspace without repositories to import.
    #[serde(default = "yes")]
    pub skip_empty_workspaces: bool,
    /// How often each workspace is listed in full (default `24h`); in between, a re-sync asks
    /// Bitbucket only what changed since the last listing, and how many repositories there
    /// are (see [`crate::read::listing`]). `0s` lists in full every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_listing_every: Option<String>,
}

impl Source {
    /// [`Source::updated_since`] as an instant (a duration counted back from now, to the
    /// second; a date taken at midnight UTC; a date-time with its offset); `Err` with the
    /// setting's message when it is none of the forms.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting and the forms it accepts.
    pub fn updated_since_time(&self) -> Result<Option<Timestamp>, Error> {
        let Some(text) = self.updated_since.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if let Ok(back) = humantime::parse_duration(text) {
            let at = std::time::SystemTime::now()
                .checked_sub(back)
                .unwrap_or(std::time::UNIX_EPOCH);
            let at = Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH);
            return Ok(Some(
                Timestamp::from_second(at.as_second()).unwrap_or(Timestamp::UNIX_EPOCH),
            ));
        }
        if let Some(at) = bitbucket_cloud_client::api_support::time::parse(text) {
            return Ok(Some(at));
        }
        let midnight = format!("{text}T00:00:00Z");
        if text.len() == 10
            && let Some(at) = bitbucket_cloud_client::api_support::time::parse(&midnight)
        {
            return Ok(Some(at));
        }
        Err(Error::Config(format!(
            "source.updated_since is `{text}`: write a date (2026-11-01), a date-time (2026-11-01T00:00:00Z) or a duration back from now (24h, 7d)"
        )))
    }

    /// [`Source::full_listing_every`] as a duration (24 hours when unset or unreadable;
    /// [`Config::validate`] refuses an unreadable one).
    pub fn full_every(&self) -> std::time::Duration {
        self.full_listing_every
            .as_deref()
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(crate::read::listing::FULL_EVERY)
    }
}

fn yes() -> bool {
    true
}

impl Default for Source {
    /// Every visible workspace and repository, forks included; no org for an empty workspace.
    fn default() -> Self {
        Self {
            workspaces: None,
            include_workspaces: Vec::new(),
            exclude_workspaces: Vec::new(),
            include_repositories: Vec::new(),
            exclude_repositories: Vec::new(),
            skip_forks: false,
            visibility: Visibility::All,
            project_keys: Vec::new(),
            updated_since: None,
            skip_empty_workspaces: true,
            full_listing_every: None,
        }
    }
}

/// How workspaces (or projects) map to Snyk orgs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mapping {
    /// One org per workspace, named by a template over `{workspace}`.
    OrgPerWorkspace {
        /// The org name template (default `{workspace}`).
        #[serde(default = "workspace_template")]
        name: String,
    },
    /// One org per Bitbucket project, named by a template over `{workspace}` and `{project}`
    /// (the project key). Repositories without a project go to `{project}` = `no-project`.
    OrgPerProject {
        /// The org name template (default `{workspace}-{project}`).
        #[serde(default = "project_template")]
        name: String,
    },
    /// Everything into one existing org.
    SingleOrg {
        /// The org id.
        org_id: String,
    },
}

fn workspace_template() -> String {
    "{workspace}".to_owned()
}

fn project_template() -> String {
    "{workspace}-{project}".to_owned()
}

impl Default for Mapping {
    fn default() -> Self {
        Self::OrgPerWorkspace {
            name: workspace_template(),
        }
    }
}

/// The project key used for repositories that belong to no project.
pub const NO_PROJECT: &str = "no-project";

impl Mapping {
    /// The org name for a workspace and project key, or `None` for [`Mapping::SingleOrg`].
    pub fn org_name(&self, workspace: &str, project: Option<&str>) -> Option<String> {
        match self {
            Self::OrgPerWorkspace { name } => Some(name.replace("{workspace}", workspace)),
            Self::OrgPerProject { name } => Some(
                name.replace("{workspace}", workspace)
                    .replace("{project}", project.unwrap_or(NO_PROJECT)),
            ),
            Self::SingleOrg { .. } => None,
        }
    }
}

/// What each import asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// Only these manifest paths (passed through as `files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Paths to leave out (passed through as `exclusionGlobs`; at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_globs: Vec<String>,
}

/// How apply runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyOptions {
    /// Imports in flight at once (default 15, at most 50).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Imports in flight at once per org (default: no cap of its own, so one workspace can use
    /// all of `concurrency`). A cap helps when orgs share something the imports strain: an
    /// org-level integration whose Bitbucket credential is near its hourly budget, or a few
    /// huge repositories that would otherwise fill every slot of one org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_org_concurrency: Option<usize>,
    /// Seconds to wait, after a crash, for the target of an import whose acceptance was not
    /// recorded to appear before posting it again (default 30).
    #[serde(default = "default_grace")]
    pub resume_grace_seconds: u64,
    /// Turn the integration's PR checks and fix PRs off in every org that receives imports,
    /// for the length of the run, and put them back after (default false). Snyk advises it
    /// for bulk imports, so that new projects do not open a flood of pull requests.
    #[serde(default)]
    pub quiet_integrations: bool,
    /// Turn off the notifications of the orgs the run creates (default false), as Snyk's own
    /// import tool does.
    #[serde(default)]
    pub notifications_off_for_new_orgs: bool,
}

fn default_concurrency() -> usize {
    15
}
fn default_grace() -> u64 {
    30
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            per_org_concurrency: None,
            resume_grace_seconds: default_grace(),
            quiet_integrations: false,
            notifications_off_for_new_orgs: false,
        }
    }
}

/// The most imports in flight Snyk tolerates well.
pub const MAX_CONCURRENCY: usize = 50;

impl Config {
    /// Reads a TOML configuration and checks it.
    ///
    /// # Errors
    /// [`Error::Config`] with the line and column of a syntax error or unknown key, or naming
    /// the setting that is wrong.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config = Self::from_toml_unchecked(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML configuration without [`Config::validate`], so that other sources (the
    /// environment, flags) can be layered on top before checking.
    ///
    /// # Errors
    /// [`Error::Config`] with the line and column of a syntax error, unknown key or wrong type.
    pub fn from_toml_unchecked(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            Error::Config(crate::error::fit_screen(&format!(
                "invalid configuration: {e}"
            )))
        })
    }

    /// Writes the configuration as TOML.
    ///
    /// # Errors
    /// Never in practice; [`Error::Config`] if serialisation fails.
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string(self).map_err(|e| Error::Config(format!("cannot write configuration: {e}")))
    }

    /// Checks the settings that the types alone cannot.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        let needs_group = !matches!(self.mapping, Mapping::SingleOrg { .. });
        if needs_group && self.snyk.group_id.as_str().trim().is_empty() {
            return Err(Error::MissingGroupId);
        }
        match &self.mapping {
            Mapping::OrgPerWorkspace { name } => check_template(name, &["{workspace}"])?,
            Mapping::OrgPerProject { name } => check_template(name, &["{workspace}", "{project}"])?,
            Mapping::SingleOrg { org_id } if org_id.trim().is_empty() => {
                return Err(Error::Config(
                    "mapping.org_id is empty: give the id of the org to import into".to_owned(),
                ));
            }
            Mapping::SingleOrg { .. } => {}
        }
        if self.apply.concurrency == 0 || self.apply.concurrency > MAX_CONCURRENCY {
            return Err(Error::Config(format!(
                "apply.concurrency is {}: use 1 to {MAX_CONCURRENCY}",
                self.apply.concurrency
            )));
        }
        if self.apply.per_org_concurrency == Some(0) {
            return Err(Error::Config(
                "apply.per_org_concurrency must be at least 1".to_owned(),
            ));
        }
        if let Some(after) = &self.drift.delete_after
            && humantime::parse_duration(after).is_err()
        {
            return Err(Error::Config(format!(
                "drift.delete_after is `{after}`: write a duration such as 7d, 48h or 0s"
            )));
        }
        if let Some(every) = &self.snyk.full_read_every
            && humantime::parse_duration(every).is_err()
        {
            return Err(Error::Config(format!(
                "snyk.full_read_every is `{every}`: write a duration such as 24h, 6h or 0s"
            )));
        }
        crate::decide::metadata::validate(&self.metadata)?;
        let s = &self.source;
        s.updated_since_time()?;
        if let Some(every) = &s.full_listing_every
            && humantime::parse_duration(every).is_err()
        {
            return Err(Error::Config(format!(
                "source.full_listing_every is `{every}`: write a duration such as 24h, 6h or 0s"
            )));
        }
        for (key, patterns) in [
            ("source.include_workspaces", &s.include_workspaces),
            ("source.exclude_workspaces", &s.exclude_workspaces),
            ("source.include_repositories", &s.include_repositories),
            ("source.exclude_repositories", &s.exclude_repositories),
        ] {
            for p in patterns {
                glob_pattern(p).map_err(|e| Error::Config(format!("{key}: {e}")))?;
            }
        }
        if self.import.exclusion_globs.len() > 10 {
            return Err(Error::Config(format!(
                "import.exclusion_globs has {} entries; Snyk accepts at most 10",
                self.import.exclusion_globs.len()
            )));
        }
        if let Some(ws) = &self.source.workspaces
            && let Some(bad) = ws.iter().find(|w| w.trim().is_empty() || w.contains('/'))
        {
            return Err(Error::Config(format!(
                "source.workspaces has an invalid slug `{bad}`"
            )));
        }
        Ok(())
    }
}

fn check_template(template: &str, allowed: &[&str]) -> Result<(), Error> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(Error::Config(format!(
                "mapping.name `{template}` has an unclosed `{{`"
            )));
        };
        let placeholder = &rest[start..start + len + 1];
        if !allowed.contains(&placeholder) {
            return Err(Error::Config(format!(
                "mapping.name `{template}` uses {placeholder}; this mapping offers {}",
                allowed.join(" and ")
            )));
        }
        rest = &rest[start + len + 1..];
    }
    if template.trim().is_empty() {
        return Err(Error::Config("mapping.name is empty".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("acme-*", "ACME-data"));
        assert!(glob_match("*-archive", "x-archive"));
        assert!(!glob_match("*-archive", "x-archived"));
        assert!(glob_match("ws?", "ws1"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        // Character classes: before, `*-00[0-4]*` silently matched nothing.
        assert!(glob_match("*-00[0-4]*", "svc-003-api"));
        assert!(!glob_match("*-00[0-4]*", "svc-007-api"));
        assert!(glob_match("ACME/*", "acme/web"));
        let e = Config::from_toml(
            "[snyk]\ngroup_id = \"g\"\n[source]\nexclude_repositories = [\"[abc\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("source.exclude_repositories: `[abc` is not a pattern"),
            "{e}"
        );
    }

    #[test]
    fn a_full_file_parses_and_round_trips() {
        let text = r#"
[snyk]
group_id = "g-1"
integration = "bitbucket-cloud-app"
template_org_id = "tpl"

[source]
workspaces = ["acme", "acme-data"]
exclude_repositories = ["*-archive"]
skip_forks = true
visibility = "private"
project_keys = ["CORE"]
updated_since = "2026-01-01T00:00:00Z"

[mapping]
kind = "org-per-project"
name = "bb-{workspace}-{project}"

[import]
exclusion_globs = ["fixtures", "tests"]

[apply]
concurrency = 20
"#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.snyk.integration, IntegrationType::BitbucketConnectApp);
        assert_eq!(c.snyk.integration.as_str(), "bitbucket-connect-app");
        assert_eq!(
            c.mapping.org_name("acme", Some("CORE")).as_deref(),
            Some("bb-acme-CORE")
        );
        assert_eq!(c.apply.per_org_concurrency, None);
        // Defaults hold whether or not the section is present.
        assert!(
            Config::from_toml("[snyk]\ngroup_id = \"g\"\n")
                .unwrap()
                .source
                .skip_empty_workspaces
        );
        assert!(c.source.skip_empty_workspaces);
        let again = Config::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_files_name_the_fix() {
        let e = Config::from_toml("[snyk]\ngroup_id = \"g\"\nintegraton = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("integraton"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e =
            Config::from_toml("[snyk]\ngroup_id = \"g\"\nintegration = \"github\"\n").unwrap_err();
        assert!(
            e.to_string().contains("unknown integration type `github`"),
            "{e}"
        );
        assert!(e.to_string().contains("bitbucket-cloud-app"), "{e}");
        let e = Config::from_toml("").unwrap_err();
        assert!(matches!(e, Error::MissingGroupId), "{e}");
        assert!(e.to_string().contains("snyk.group_id"), "{e}");
        let e = Config::from_toml(
            "[snyk]\ngroup_id=\"g\"\n[mapping]\nkind=\"org-per-workspace\"\nname=\"{team}\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("{team}"), "{e}");
        let e = Config::from_toml("[snyk]\ngroup_id=\"g\"\n[apply]\nconcurrency=99\n").unwrap_err();
        assert!(e.to_string().contains("1 to 50"), "{e}");
        let e = Config::from_toml("[snyk]\ngroup_id=\"g\"\n[mapping]\nkind=\"one-big-org\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("one-big-org"), "{e}");
        // A single org needs no group.
        Config::from_toml("[mapping]\nkind=\"single-org\"\norg_id=\"o-1\"\n").unwrap();
    }
}

#[cfg(test)]
mod updated_since_tests {
    use super::Source;

    fn since(text: &str) -> Result<Option<String>, String> {
        let s = Source {
            updated_since: Some(text.to_owned()),
            ..Source::default()
        };
        s.updated_since_time()
            .map(|t| t.map(|t| t.to_string()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_date_a_date_time_or_a_duration_and_nothing_else() {
        assert_eq!(
            since("2026-11-01").unwrap().unwrap(),
            "2026-11-01T00:00:00Z"
        );
        assert_eq!(
            since("2026-11-01T08:30:00Z").unwrap().unwrap(),
            "2026-11-01T08:30:00Z"
        );
        let back = since("24h").unwrap().unwrap();
        assert!(back.starts_with("20") && back.ends_with('Z'), "{back}");
        // An offset is kept as the instant it names (before, its text was compared as is).
        assert_eq!(
            since("2026-11-01T08:30:00+02:00").unwrap().unwrap(),
            "2026-11-01T06:30:00Z"
        );
        let e = since("yesterday").unwrap_err();
        assert!(e.contains("source.updated_since is `yesterday`"), "{e}");
        assert!(since("2026-13-45").is_err());
    }
}
