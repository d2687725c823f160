//! A plan for people: the summary table, one line per action under its org, and the
//! summary's line again at the end.

use std::fmt::Write as _;

use mirror_core::plan::{
    Action, ImportAction, MetadataChange, OrgRef, Plan, RetireReason, counted, repositories,
};

/// The plan for people, as `options` ask: the summary table; unless `summary_only`, one
/// line per action under a heading per org (in the plan's order of first appearance), and
/// the summary's line again at the end, so that a long plan shows it where the reader is.
/// With `colour`, each line's sign is coloured (ANSI).
pub fn plan_with(plan: &Plan, options: RenderOptions) -> String {
    let s = plan.summary();
    let skipped: usize = s.skipped.values().sum();
    let mut out = String::new();
    let _ = writeln!(out, "Plan for group {}", plan.group_id);
    let _ = writeln!(out, "  orgs to create      {:>6}", s.orgs_to_create);
    if s.integrations_to_add > 0 {
        let _ = writeln!(out, "  integrations to add {:>6}", s.integrations_to_add);
    }
    let _ = writeln!(out, "  repositories        {:>6} to import", s.imports);
    let _ = writeln!(out, "  skipped             {skipped:>6}");
    for (reason, n) in &s.skipped {
        let _ = writeln!(out, "    {reason:<30}{n:>4}");
    }
    let _ = writeln!(
        out,
        "  conflicts           {:>6} ({} held back)",
        s.conflicts,
        repositories(s.held_back)
    );
    for (label, n) in [
        ("renamed", s.renamed),
        ("moved", s.moved),
        ("branches to update", s.branches),
        ("to retire", s.retired),
        ("orgs to rename", s.orgs_renamed),
        ("recorded by uuid", s.tracked),
        ("workspaces gone", s.workspaces_gone),
        ("out of scope", s.out_of_scope),
        ("uncertain", s.uncertain),
        ("in quarantine", s.quarantined),
        ("to reactivate", s.reactivated),
        ("tags/attributes", s.metadata),
    ] {
        if n > 0 {
            let _ = writeln!(out, "  {label:<20}{n:>6}");
        }
    }
    for (kind, n) in &s.differences {
        let _ = writeln!(out, "  {:<20}{n:>6}", format!("≠ {kind}"));
    }
    if plan.settings.quiet_integrations && s.imports > 0 {
        let _ = writeln!(
            out,
            "  during imports      PR checks and fix PRs off in each org's integration, then put back"
        );
    }
    if plan.settings.notifications_off_for_new_orgs && s.orgs_to_create > 0 {
        let _ = writeln!(out, "  new orgs            notifications turned off");
    }
    if options.summary_only {
        return out;
    }
    // The actions by org, each org once, in the order the plan first names it.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for a in &plan.actions {
        if options.without_skips && matches!(a, Action::Skip { .. }) {
            continue;
        }
        let Some(line) = line(plan, a) else { continue };
        let heading = group_of(a);
        let line = if options.colour { paint(line) } else { line };
        match groups.iter_mut().find(|(h, _)| *h == heading) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((heading, vec![line])),
        }
    }
    for (heading, lines) in &groups {
        let _ = writeln!(out, "\n{heading}");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    if options.without_skips && skipped > 0 {
        let _ = writeln!(
            out,
            "\n({skipped} skipped not listed: `bb-snyk-mirror plan` or -v lists each with its reason)"
        );
    }
    if !groups.is_empty() {
        let _ = writeln!(
            out,
            "\nIn all: {} to create, {} to import, {skipped} skipped, {}{}.",
            counted(s.orgs_to_create, "org", "orgs"),
            repositories(s.imports),
            counted(s.conflicts, "conflict", "conflicts"),
            if s.retired > 0 {
                format!(", {} to retire", s.retired)
            } else {
                String::new()
            }
        );
    }
    out
}

/// `✎ acme/api (package.json) tags bb-project CORE → PLATFORM; criticality → high`.
fn metadata_line(m: &MetadataChange) -> String {
    let manifest = m
        .target_file
        .as_deref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    let changes: Vec<String> = m
        .changes
        .iter()
        .map(|c| match &c.from {
            Some(from) => format!("{} {from} → {}", c.field, c.to),
            None => format!("{} → {}", c.field, c.to),
        })
        .collect();
    format!("✎ {}{manifest} {}", m.repository, changes.join("; "))
}

/// ` (carrying …)` after a rename or a move.
fn carrying_note(carrying: Option<&str>) -> String {
    carrying
        .map(|c| format!(" (carrying {c})"))
        .unwrap_or_default()
}

/// How [`plan_with`] shows a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Only the summary table.
    pub summary_only: bool,
    /// ANSI colours for each line's sign.
    pub colour: bool,
    /// No line per skipped repository (they are counted by reason in the summary).
    pub without_skips: bool,
}

impl RenderOptions {
    /// Only the summary, or everything.
    pub fn summary_only(mut self, yes: bool) -> Self {
        self.summary_only = yes;
        self
    }

    /// With colours, or without.
    pub fn colour(mut self, yes: bool) -> Self {
        self.colour = yes;
        self
    }

    /// Without a line per skipped repository, or with.
    pub fn without_skips(mut self, yes: bool) -> Self {
        self.without_skips = yes;
        self
    }
}

/// The heading an action's line is shown under: its org, else its workspace, else the plan's
/// notes.
fn group_of(a: &Action) -> String {
    match a {
        Action::CreateOrg { name } => format!("org {name}"),
        Action::AddIntegration { org, .. }
        | Action::Branch { org, .. }
        | Action::Retire { org, .. }
        | Action::Quarantined { org, .. }
        | Action::Reactivate { org, .. }
        | Action::Conflict { org, .. } => format!("org {org}"),
        Action::Import(i) => format!("org {}", i.org.name()),
        Action::Differs(d) => format!("org {}", d.org),
        Action::Metadata(m) => format!("org {}", m.org),
        Action::RenameOrg { to, .. } => format!("org {to}"),
        Action::WorkspaceGone { org: Some(org), .. }
        | Action::WorkspaceUnread { org: Some(org), .. }
        | Action::Uncertain { org: Some(org), .. } => format!("org {org}"),
        Action::WorkspaceGone { workspace, .. }
        | Action::WorkspaceUnread { workspace, .. }
        | Action::Skip { workspace, .. } => {
            format!("workspace {workspace}")
        }
        Action::Uncertain { repository, .. } => {
            format!(
                "workspace {}",
                repository.split('/').next().unwrap_or(repository)
            )
        }
        // Recording by uuid, unused rules, out-of-scope notes, and whatever a newer core adds.
        _ => "notes".to_owned(),
    }
}

/// A line with its sign coloured: additions green, removals and conflicts red, changes yellow,
/// notes and skips dimmed.
fn paint(line: String) -> String {
    use anstyle::{AnsiColor, Effects, Style};
    let style = match line.chars().next() {
        Some('+') => AnsiColor::Green.on_default(),
        Some('-') => AnsiColor::Red.on_default(),
        Some('!') => AnsiColor::Red.on_default().effects(Effects::BOLD),
        Some('~' | '→' | '⇄' | '≠' | '✎') => AnsiColor::Yellow.on_default(),
        Some('?' | '=') => Style::new().effects(Effects::DIMMED),
        _ => return line,
    };
    format!("{}{line}{}", style.render(), style.render_reset())
}

/// One action for people; `None` for what has no line of its own (recording a
/// repository by uuid, and the retirement that completes a rename or a move).
fn line(plan: &Plan, a: &Action) -> Option<String> {
    Some(match a {
        Action::CreateOrg { name } => {
            let from = plan
                .template_org_id
                .as_ref()
                .map(|t| format!(" from template {t}"))
                .unwrap_or_default();
            format!("+ create org {name}{from}")
        }
        Action::AddIntegration { org, .. } => {
            format!("+ add a bitbucket-cloud integration to org {org}")
        }
        Action::Import(i) => {
            let ImportAction {
                org,
                workspace,
                repository,
                branch,
                replaces,
                ..
            } = &**i;
            let new = if matches!(org, OrgRef::New { .. }) {
                " (new)"
            } else {
                ""
            };
            match replaces {
                Some(old) if org.id() == Some(&old.org_id) => {
                    format!(
                        "~ rename {} → {workspace}/{repository}{}",
                        old.full_name,
                        carrying_note(i.carrying.as_deref())
                    )
                }
                Some(old) => format!(
                    "→ move {} → {workspace}/{repository} (into {}{new}){}",
                    old.full_name,
                    org.name(),
                    carrying_note(i.carrying.as_deref())
                ),
                None => format!(
                    "+ import {workspace}/{repository} ({branch}) into {}{new}",
                    org.name()
                ),
            }
        }
        Action::RenameOrg { from, to, .. } => format!("~ rename org {from} → {to}"),
        Action::Branch {
            repository,
            from,
            to,
            ..
        } => format!("⇄ branch {repository} {from} → {to}"),
        Action::Retire { .. }
        | Action::Quarantined { .. }
        | Action::Reactivate { .. }
        | Action::Track(_)
        | Action::WorkspaceGone { .. } => return drift_line(a),
        Action::OutOfScope { repository, rule } => {
            format!("? out of scope {repository} ({rule})")
        }
        Action::Differs(d) => format!("≠ {}", d.explain()),
        Action::Metadata(m) => metadata_line(m),
        Action::UnusedRule { setting, pattern } => format!(
            "? rule `{pattern}` ({setting}) matches nothing here (patterns match without regard to case)"
        ),
        Action::Conflict {
            org,
            reason,
            repositories: held,
        } => format!(
            "! conflict {org}: {} [{} held back]",
            reason.explain(org),
            repositories(held.len())
        ),
        Action::Skip {
            workspace,
            repository,
            reason,
        } => {
            let what = match repository {
                Some(r) => format!("{workspace}/{r}"),
                None => format!("workspace {workspace}"),
            };
            format!("= skip {what}: {}", reason.explain())
        }
        // What Bitbucket left uncertain or unread, and whatever a newer core adds.
        _ => return drift_line(a),
    })
}
/// The line of an action that follows Bitbucket's changes or says what it could not follow;
/// `None` for what has no line of its own (recording a repository by uuid, and the retirement
/// that completes a rename or a move).
fn drift_line(a: &Action) -> Option<String> {
    Some(match a {
        Action::Retire {
            placement,
            why,
            mode,
            delete_after,
            ..
        } => match (why, delete_after) {
            (RetireReason::Renamed { .. } | RetireReason::Moved { .. }, None) => return None,
            (_, None) => format!(
                "- retire {} ({}; {})",
                placement.full_name,
                why.explain(),
                mode.name()
            ),
            (_, Some(after)) => format!(
                "- retire {} ({}; deactivate now, delete after {after} if still so)",
                placement.full_name,
                why.explain(),
            ),
        },
        Action::Quarantined {
            repository,
            delete_after,
            why,
            ..
        } => format!(
            "= quarantined {repository}: deactivated; {why} (deleted after {delete_after} at the earliest)"
        ),
        Action::Reactivate {
            placement,
            run,
            projects,
            ..
        } => format!(
            "+ reactivate {} ({} deactivated {})",
            placement.full_name,
            counted(projects.len(), "project", "projects"),
            match run {
                Some(run) => format!("by run {run}"),
                None => "by someone else".to_owned(),
            }
        ),
        Action::Track(_) => return None,
        Action::WorkspaceGone {
            workspace,
            org,
            repositories: n,
        } => format!(
            "! workspace {workspace} ({}{}) is no longer visible: nothing of it is retired; check that the credentials can still see it",
            org.as_ref()
                .map(|o| format!("org {o}, "))
                .unwrap_or_default(),
            repositories(*n)
        ),
        Action::Uncertain {
            uuid,
            repository,
            why,
            ..
        } => format!(
            "! uncertain {repository}{}: {why}; nothing of it is imported, moved or retired, and the next run looks again",
            uuid.as_ref().map(|u| format!(" {u}")).unwrap_or_default()
        ),
        Action::WorkspaceUnread {
            workspace,
            org,
            repositories: n,
            why,
        } => format!(
            "! workspace {workspace} could not be listed ({}{} mirrored): {why}; nothing of it is imported, moved or retired, and the next run looks again",
            org.as_ref()
                .map(|o| format!("org {o}, "))
                .unwrap_or_default(),
            repositories(*n)
        ),
        _ => return None,
    })
}
