//! Imports only the repositories that match a custom predicate (Python, updated since a date)
//! into one existing org, using the two clients directly.
//!
//! Shows: streaming listings with a filter, one import per repository, waiting for each job,
//! and Snyk's per-project results.
//!
//! Run: `cargo run -p examples --example import_matching`
//! (real services: also set EXAMPLE_ORG_ID, the org to import into).

use bitbucket_cloud_client::Repository;
use bitbucket_cloud_client::api_support::time::Timestamp;
use examples::connect;
use futures_util::TryStreamExt;
use snyk_client::{ImportRequest, IntegrationType};

/// Mid-2025, as an instant: Bitbucket's times compare as instants whatever their offset.
const MID_2025: Timestamp = Timestamp::constant(1_748_736_000, 0);

/// The predicate: Python repositories with a main branch, updated since mid-2025.
fn wanted(r: &Repository) -> bool {
    r.language.as_deref() == Some("python")
        && r.main_branch().is_some()
        && r.updated_on.is_some_and(|u| u >= MID_2025)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let org_id = match std::env::var("EXAMPLE_ORG_ID") {
        Ok(id) => id,
        Err(_) => {
            env.snyk
                .create_org(&env.group_id, "python-repositories", None)
                .await?
                .id
        }
    };
    let integrations = env.snyk.integrations(&org_id).await?;
    let Some(integration) = integrations.id_of(&IntegrationType::BitbucketCloud) else {
        anyhow::bail!("org {org_id} has no bitbucket-cloud integration");
    };
    let workspaces: Vec<String> = match &env.workspaces {
        Some(w) => w.clone(),
        None => env
            .bitbucket
            .user_workspaces(None)
            .collect()
            .await?
            .into_iter()
            .filter_map(|w| w.workspace.slug)
            .collect(),
    };
    let mut imported = 0;
    for ws in workspaces {
        let mut repos = std::pin::pin!(env.bitbucket.repositories(&ws).items());
        while let Some(repo) = repos.try_next().await? {
            if !wanted(&repo) {
                continue;
            }
            let request = ImportRequest::new(&ws, &repo.slug, repo.main_branch());
            let job = env.snyk.import(&org_id, integration, &request).await?;
            let done = env.snyk.wait_for_import(&job).await?;
            println!(
                "imported {ws}/{}: {:?}, {} projects",
                repo.slug,
                done.job.status,
                done.job.created_projects().count()
            );
            imported += 1;
        }
    }
    println!("{imported} repositories matched and were imported into {org_id}");
    Ok(())
}
