//! `plan` (and `apply --dry-run`): both sides read, nothing written; saved plans checked before they are applied.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use mirror_core::{Mirror, Plan};

use crate::context::{Ctx, colour};
use crate::output::Out;
use crate::{Usage, exit};

/// Reads both sides (with a spinner on a terminal) and plans.
pub async fn make_plan(mirror: &Mirror, out: Out) -> Result<Plan> {
    let spinner = out.spinner("reading Bitbucket and Snyk…");
    let plan = mirror.plan().await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(plan?)
}

/// Refuses a `plan --out` file that exists, unless `force` and it holds a plan: a file that is
/// not a plan (the configuration, say) is never replaced.
pub fn check_plan_file(path: &Path, force: bool) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return match path.try_exists() {
            Ok(false) => Ok(()),
            _ => Err(Usage(format!(
                "{} exists and is not a plan: it is not replaced; choose another --out file",
                path.display()
            ))
            .into()),
        };
    };
    if Plan::from_json(&text).is_err() {
        return Err(Usage(format!(
            "{} exists and is not a plan: it is not replaced; choose another --out file",
            path.display()
        ))
        .into());
    }
    if !force {
        return Err(Usage(format!(
            "{} holds an earlier plan: add --force to replace it, or choose another --out file",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// Where a plan is made: this run's Bitbucket and Snyk.
pub fn origin(ctx: &Ctx) -> mirror_core::plan::PlanOrigin {
    mirror_core::plan::PlanOrigin {
        bitbucket: ctx
            .bitbucket
            .client()
            .http()
            .base_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
        snyk: ctx.snyk.client().host().trim_end_matches('/').to_owned(),
    }
}

/// How long a saved plan may be applied after it was made. Older plans are refused: Bitbucket
/// and Snyk have likely moved on, and a fresh plan costs only a listing.
pub const SAVED_PLAN_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Refuses a saved plan made for another group, or more than [`SAVED_PLAN_MAX_AGE`] ago (or
/// without the time it was made, or dated in the future), naming what to do instead.
pub fn check_saved_plan(
    plan: &Plan,
    ctx: &Ctx,
    path: &Path,
    now: std::time::SystemTime,
) -> Result<()> {
    let shown = path.display();
    if plan.group_id != ctx.config.snyk.group_id {
        return Err(Usage(format!(
            "{shown} was made for group {}, and this run is for group {}: make a new plan with `bb-snyk-mirror plan --out {shown}`, or set SNYK_GROUP_ID to the plan's group",
            plan.group_id, ctx.config.snyk.group_id
        ))
        .into());
    }
    let here = origin(ctx);
    match &plan.made_against {
        Some(there) if *there == here => {}
        Some(there) => {
            return Err(Usage(format!(
                "{shown} was made against Bitbucket {} and Snyk {}, and this run is against Bitbucket {} and Snyk {}: make a new plan here with `bb-snyk-mirror plan --out {shown}`",
                there.bitbucket, there.snyk, here.bitbucket, here.snyk
            ))
            .into());
        }
        None => {
            return Err(Usage(format!(
                "{shown} does not say which Bitbucket and Snyk it was made against (an older version wrote it): make a new one with `bb-snyk-mirror plan --out {shown}`"
            ))
            .into());
        }
    }
    let made = plan.created_at.map(std::time::SystemTime::from);
    let age = made.map(|m| now.duration_since(m));
    match age {
        Some(Ok(age)) if age <= SAVED_PLAN_MAX_AGE => Ok(()),
        Some(Ok(age)) => Err(Usage(format!(
            "{shown} was made {} ago; plans older than 24 hours are not applied, because Bitbucket and Snyk have likely changed since: make a new one with `bb-snyk-mirror plan --out {shown}`",
            humantime::format_duration(Duration::from_secs(age.as_secs() / 60 * 60))
        ))
        .into()),
        Some(Err(_)) => Err(Usage(format!(
            "{shown} is dated in the future ({}): check this machine's clock, or make a new plan",
            plan.created_at.map(|t| t.to_string()).unwrap_or_default()
        ))
        .into()),
        None => Err(Usage(format!(
            "{shown} does not say when it was made (an older version wrote it): make a new one with `bb-snyk-mirror plan --out {shown}`"
        ))
        .into()),
    }
}

/// A plan read fresh from both sides, without taking the journal's lock (planning and
/// verifying may run beside a sync). With `kept`, orgs the group's audit log shows unchanged
/// since their last read answer from it (`snyk.full_read_every`); `verify` reads every org.
pub async fn read_plan(ctx: &Ctx, out: Out, kept: bool) -> Result<Plan> {
    let spinner = out.spinner("reading Bitbucket and Snyk…");
    let plan = mirror_core::advanced::plan_unlocked(
        &ctx.config,
        ctx.bitbucket.clone(),
        ctx.snyk.clone(),
        &ctx.state_dir,
        !kept,
    )
    .await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(plan?)
}

pub async fn plan_command(ctx: &Ctx, out: Out, file: Option<&Path>, summary: bool) -> Result<u8> {
    let mut plan = read_plan(ctx, out, true).await?;
    let now = mirror_core::ids::Timestamp::now();
    plan.created_at = mirror_core::ids::Timestamp::from_second(now.as_second()).ok();
    plan.made_against = Some(origin(ctx));
    if let Some(path) = file {
        std::fs::write(path, plan.to_json()?)
            .map_err(|e| Usage(format!("cannot write {}: {e}", path.display())))?;
        out.status(&format!("plan written to {}", path.display()));
    }
    if out.human() {
        let options = mirror_render::RenderOptions::default()
            .summary_only(summary)
            .colour(colour(std::io::stdout().is_terminal()));
        print!("{}", plan_text(&plan, options));
    } else {
        println!(
            "{}",
            serde_json::json!({"plan": plan, "summary": plan.summary(), "exit_code": 0})
        );
    }
    Ok(exit::OK)
}

/// The plan on stderr for people (stdout carries the report); nothing with --quiet.
pub fn show_plan(out: Out, plan: &Plan) {
    if out.human() && !out.quiet {
        // Skips are counted by reason; a run of a mirrored estate is not a page per repository.
        let options = mirror_render::RenderOptions::default()
            .colour(colour(std::io::stderr().is_terminal()))
            .without_skips(!out.verbose);
        // Before applying, only an estate already equal gets its closing line: what differs
        // now is what this sync changes.
        let text = if mirror_core::Verification::of(plan).holds() {
            plan_text(plan, options)
        } else {
            format!(
                "{}{}",
                mirror_render::plan_with(plan, options),
                crate::advice::for_plan(plan)
            )
        };
        eprint!("{text}");
    }
}

/// A plan for people as `options` ask, with the hints its conflicts call for.
pub fn plan_text(plan: &Plan, options: mirror_render::RenderOptions) -> String {
    format!(
        "{}{}{}",
        mirror_render::plan_with(plan, options),
        crate::advice::for_plan(plan),
        closing(plan)
    )
}

/// The plan's closing line on both sides, when it read Snyk in full: "Snyk equals Bitbucket
/// …" only when every difference is explained, else how many are not.
pub fn closing(plan: &Plan) -> String {
    if plan.compared.is_none() {
        return String::new();
    }
    format!("{}\n", mirror_core::Verification::of(plan).closing_line())
}
