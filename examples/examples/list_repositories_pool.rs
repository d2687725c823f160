//! Lists every repository of every workspace through a pool of access tokens, as one stream.
//!
//! Shows: access tokens cannot list workspaces, so the workspaces come from configuration; a
//! pool spreads requests over several tokens, each with its own hourly budget; listings are
//! `Send + 'static` streams that can be merged.
//!
//! Run: `cargo run -p examples --example list_repositories_pool`
//! (real services: set BITBUCKET_CLOUD_ACCESS_TOKENS, BITBUCKET_CLOUD_WORKSPACES, SNYK_TOKEN and
//! SNYK_GROUP_ID; the tokens must all read every listed workspace).

use bitbucket_cloud_client::{Auth, BitbucketClient};
use examples::connect;
use futures_util::{StreamExt, TryStreamExt, stream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = connect().await?;
    // (workspace, client with that workspace's pool of tokens)
    let listings: Vec<(String, BitbucketClient)> = match &env.sandboxes {
        Some(s) => s
            .bitbucket
            .estate()
            .workspaces
            .iter()
            .map(|w| {
                let pool = (1..=2).map(|n| Auth::access_token(format!("{}-token-{n}", w.slug)));
                let client = BitbucketClient::builder()
                    .base_url(s.bitbucket.base_url())
                    .auths(pool)
                    // Small pages, to show the pool at work on a small estate; keep the
                    // default (100, the maximum) in real use.
                    .page_len(2)
                    .build()?;
                Ok((w.slug.clone(), client))
            })
            .collect::<anyhow::Result<_>>()?,
        None => env
            .workspaces
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|w| (w, env.bitbucket.clone()))
            .collect(),
    };
    let clients: Vec<BitbucketClient> = listings.iter().map(|(_, c)| c.clone()).collect();
    let workspaces = listings.len();
    let streams = listings
        .into_iter()
        .map(|(ws, client)| client.repositories(&ws).items().boxed());
    let mut all = stream::select_all(streams);
    let mut count = 0;
    while let Some(repo) = all.try_next().await? {
        count += 1;
        println!(
            "{}/{} ({})",
            repo.workspace_slug().unwrap_or("?"),
            repo.slug,
            repo.main_branch().unwrap_or("empty")
        );
    }
    println!("{count} repositories in {workspaces} workspaces");
    for (i, c) in clients.iter().enumerate() {
        println!(
            "pool {i}: requests per token {:?}",
            c.http().credentials().usage()
        );
    }
    Ok(())
}
