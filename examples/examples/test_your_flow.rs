//! How to test a flow of your own with the sandboxes: no account, no network, real HTTP.
//!
//! Shows: a function of "your tool" that takes clients, and a test that starts both sandboxes,
//! points the clients at them, runs the function and checks the result and the requests made.
//!
//! Run: `cargo run -p examples --example test_your_flow`; its test runs with `cargo test`.

use bitbucket_cloud_client::BitbucketClient;
use examples::connect;

/// Your tool's logic: the workspaces that have repositories without a main branch (empty).
async fn workspaces_with_empty_repositories(
    bitbucket: &BitbucketClient,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for access in bitbucket.user_workspaces(None).collect().await? {
        let Some(slug) = access.workspace.slug else {
            continue;
        };
        let repos = bitbucket.repositories(&slug).collect().await?;
        if repos.iter().any(|r| r.main_branch().is_none()) {
            found.push(slug);
        }
    }
    Ok(found)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    let found = workspaces_with_empty_repositories(&env.bitbucket).await?;
    println!("workspaces with empty repositories: {}", found.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitbucket_cloud_client::Auth;
    use bitbucket_cloud_client::sandbox::{Estate, SAMPLE_API_TOKEN, SAMPLE_EMAIL, Sandbox};

    #[tokio::test]
    async fn finds_the_workspace_with_an_empty_repository() {
        // 1. Start a sandbox with the estate your test needs (here the sample).
        let sandbox = Sandbox::builder()
            .estate(Estate::sample())
            .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
            .start()
            .await
            .unwrap();
        // 2. Point a client at it.
        let client = BitbucketClient::builder()
            .base_url(sandbox.base_url())
            .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
            .build()
            .unwrap();
        // 3. Run your flow and check what it returns and what it asked for.
        let found = workspaces_with_empty_repositories(&client).await.unwrap();
        assert_eq!(found, ["acme-platform"]);
        let stats = sandbox.stats();
        assert_eq!(stats.route("GET /user/workspaces"), 1);
        assert_eq!(stats.route("GET /repositories/{workspace}"), 3);
    }
}
