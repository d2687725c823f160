//! Mirrors by Bitbucket project: one Snyk org per project, named by a custom template.
//!
//! Shows: a mirror-core configuration built in code, and the `Mirror` handle: plan (read both
//! sides, then the pure plan) and apply with a journal (a rerun resumes and has nothing left to
//! do).
//!
//! Run: `cargo run -p examples --example mirror_by_project`

use examples::connect;
use mirror_core::config::Mapping;
use mirror_render::Render as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let mut config = env.config()?;
    config.mapping = Mapping::OrgPerProject {
        name: "bb-{workspace}-{project}".to_owned(),
    };
    config.validate()?;

    let state = tempfile::tempdir()?;
    let mirror = env.mirror(&config, state.path())?;
    let plan = mirror.plan().await?;
    print!("{}", plan.render());
    let report = mirror.apply(&plan).await?;
    print!("{}", report.render());
    Ok(())
}
