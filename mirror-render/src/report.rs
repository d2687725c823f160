//! A run's report for people: the summary, then one line per conflict, failure, change and
//! warning.

use std::fmt::Write as _;

use mirror_core::config::RetireMode;
use mirror_core::differences::{Difference, Response};
use mirror_core::plan::{counted, repositories};
use mirror_core::report::Report;

/// The report for people.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let skipped: usize = report.skipped.values().sum();
    let _ = writeln!(out, "Mirror report");
    let _ = writeln!(
        out,
        "  orgs        {} created, {} already there",
        report.orgs_created.len(),
        report.orgs_adopted.len()
    );
    if !report.integrations_added.is_empty() {
        let _ = writeln!(
            out,
            "  integrations {} added ({})",
            report.integrations_added.len(),
            report.integrations_added.join(", ")
        );
    }
    imports(report, &mut out);
    let _ = writeln!(out, "  skipped     {skipped}");
    for (reason, n) in &report.skipped {
        let _ = writeln!(out, "    {reason:<30}{n:>4}");
    }
    if !report.integrations_quieted.is_empty() {
        let _ = writeln!(
            out,
            "  quiet       PR checks and fix PRs off during the run, then back, in {}",
            report.integrations_quieted.join(", ")
        );
    }
    if !report.notifications_off.is_empty() {
        let _ = writeln!(
            out,
            "  notifications off in new orgs {}",
            report.notifications_off.join(", ")
        );
    }
    changes(report, &mut out);
    let failures =
        report.org_failures.len() + report.imports_failed.len() + report.failed_changes.len();
    if failures > 0 {
        let _ = writeln!(
            out,
            "  failures    {failures} (API calls that failed; a rerun tries them again)"
        );
    }
    let _ = writeln!(out, "  conflicts   {}", report.conflicts.len());
    if !report.differences.is_empty() {
        // What this run restored or retired is acted on, not left unexplained.
        let acted = |d: &&Difference| matches!(d.response, Response::Restored | Response::Retired);
        let done = report.differences.iter().filter(acted).count();
        let unexplained = report
            .differences
            .iter()
            .filter(|d| !acted(d) && !d.explained())
            .count();
        let _ = writeln!(
            out,
            "  differences {} between Snyk and Bitbucket named ({done} acted on by this run, {unexplained} not explained)",
            report.differences.len()
        );
    }
    if !report.uncertain.is_empty() {
        let _ = writeln!(
            out,
            "  uncertain   {} (Bitbucket's answers did not settle them: nothing of them changed)",
            report.uncertain.len()
        );
    }
    let requests: Vec<String> = report
        .requests
        .iter()
        .map(|(api, n)| format!("{api} {n}"))
        .collect();
    let _ = writeln!(out, "  requests    {}", requests.join(", "));
    if let Some(run) = &report.run {
        let deactivated = report
            .retired
            .iter()
            .chain(&report.replaced)
            .any(|r| r.mode == RetireMode::Deactivate && !r.already_gone);
        let hint = if deactivated {
            format!(" (`bb-snyk-mirror undo {run}` activates again what it deactivated)")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  run         {run}{hint}");
    }
    lines(report, &mut out);
    out
}

/// The summary's lines for the imports and the projects they created.
fn imports(report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "  imports     {} accepted, {} completed, {} failed{}{}",
        report.imports_accepted,
        report.imports_completed,
        report.imports_failed.len(),
        if report.imports_not_attempted > 0 {
            format!(", {} not attempted", report.imports_not_attempted)
        } else {
            String::new()
        },
        if report.imports_resumed > 0 {
            format!(", {} resumed from an earlier run", report.imports_resumed)
        } else {
            String::new()
        }
    );
    if report.imports_found_in_snyk > 0 {
        let _ = writeln!(
            out,
            "  imports     {} found in Snyk just before their post (imported by another process meanwhile); not posted",
            report.imports_found_in_snyk
        );
    }
    let _ = writeln!(
        out,
        "  projects    {} created ({} had none)",
        report.projects_created,
        repositories(report.zero_project_imports)
    );
}

/// The summary's lines for what changed in Snyk besides imports: drift, org renames,
/// metadata.
fn changes(report: &Report, out: &mut String) {
    if report.renamed + report.moved > 0 || !report.retired.is_empty() {
        let _ = writeln!(
            out,
            "  drift       {} renamed, {} moved, {} retired, {} branches updated",
            report.renamed,
            report.moved,
            report.retired.len(),
            report.branches_updated.len()
        );
    } else if !report.branches_updated.is_empty() {
        let _ = writeln!(
            out,
            "  drift       {} branches updated",
            report.branches_updated.len()
        );
    }
    for r in &report.orgs_renamed {
        let _ = writeln!(out, "  org renamed {} → {}", r.from, r.to);
    }
    if report.metadata_set > 0 {
        let _ = writeln!(
            out,
            "  metadata    tags and attributes set on {} (metadata rules)",
            counted(report.metadata_set, "project", "projects")
        );
    }
}

/// One line per conflict, failure, change and warning.
fn lines(report: &Report, out: &mut String) {
    for u in &report.uncertain {
        let _ = writeln!(out, "! uncertain {u}");
    }
    for d in &report.differences {
        let _ = writeln!(out, "≠ {}", d.explain());
    }
    for c in &report.carried {
        let _ = writeln!(out, "↪ {c}");
    }
    for c in &report.conflicts {
        let _ = writeln!(out, "! {c}");
    }
    for f in &report.org_failures {
        let _ = writeln!(out, "x {f}");
    }
    for f in &report.imports_failed {
        let _ = writeln!(out, "x {} into {}: {}", f.repository, f.org, f.message);
    }
    for line in &report.branches_updated {
        let _ = writeln!(out, "⇄ {line}");
    }
    for line in &report.replaced {
        let _ = writeln!(out, "~ {line}");
    }
    for line in &report.retired {
        let _ = writeln!(out, "- {line}");
    }
    for name in &report.reactivated {
        let _ = writeln!(out, "+ reactivated {name}");
    }
    for f in &report.failed_changes {
        let _ = writeln!(out, "x {} in {}: {}", f.repository, f.org, f.message);
    }
    for w in &report.warnings {
        let _ = writeln!(out, "? {w}");
    }
    if report.interrupted {
        let _ = writeln!(
            out,
            "Interrupted: run the same command again to resume where it stopped."
        );
    }
}
