//! Mirrors by Bitbucket project: one Snyk org per project, named by a custom template.
//!
//! Shows: a mirror-core configuration built in code, inventory, the pure plan, and apply with a
//! journal (a rerun resumes and has nothing left to do).
//!
//! Run: `cargo run -p examples --example mirror_by_project`

use std::sync::Arc;

use examples::connect;
use mirror_core::adapters::BitbucketAdapter;
use mirror_core::{Journal, Mapping};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let mut config = env.config()?;
    config.mapping = Mapping::OrgPerProject {
        name: "bb-{workspace}-{project}".to_owned(),
    };
    config.validate()?;

    let bitbucket = BitbucketAdapter::new(env.bitbucket.clone());
    let snyk = Arc::new(env.snyk_adapter());
    let state = tempfile::tempdir()?;
    let journal = Journal::open(state.path(), None)?;
    let inventory = mirror_core::gather(&config, &bitbucket, snyk.as_ref()).await?;
    let plan = mirror_core::plan(&config, &inventory, &journal.state().history());
    print!("{}", plan.render());
    let report = mirror_core::apply(&plan, snyk, &journal, &config.apply, None, None).await?;
    print!("{}", report.render());
    Ok(())
}
