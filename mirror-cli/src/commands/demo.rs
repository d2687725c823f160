//! `demo`: the built-in sandboxes, a first sync, a second with nothing to do, then drift and real time.

use mirror_render::Render as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::{Config, Mirror};
use snyk_client::{PollPolicy, SnykAuth, SnykClient};

use crate::commands::plan::make_plan;
use crate::commands::sync::run_plan;
use crate::context::{Ctx, colour, interrupted};
use crate::exit;
use crate::output::Out;

pub async fn demo(out: Out, estate: Option<(usize, usize)>, serve: bool) -> Result<u8> {
    use bitbucket_cloud_client::sandbox as bb_sandbox;
    use snyk_client::sandbox as snyk_sandbox;

    let bb = match estate {
        None => bb_sandbox::Sandbox::start_sample().await?,
        Some((w, r)) => {
            bb_sandbox::Sandbox::builder()
                .estate(bb_sandbox::Estate::generate(w, r, 7))
                .api_token(bb_sandbox::SAMPLE_EMAIL, bb_sandbox::SAMPLE_API_TOKEN)
                .start()
                .await?
        }
    };
    let snyk = snyk_sandbox::Sandbox::sample_builder()
        .import_delay(Duration::from_millis(300))
        .start()
        .await?;
    if serve {
        return serve_sandboxes(&bb, &snyk).await;
    }
    let state = tempfile::tempdir()?;
    let config = Config::from_toml(&format!("[snyk]\ngroup_id = \"{}\"\n", snyk.group_id()))?;
    let ctx = Ctx {
        config,
        bitbucket: Arc::new(BitbucketAdapter::new(
            BitbucketClient::builder()
                .base_url(bb.base_url())
                .auth(Auth::api_token(
                    bb_sandbox::SAMPLE_EMAIL,
                    bb_sandbox::SAMPLE_API_TOKEN,
                ))
                .build()?,
        )),
        snyk: Arc::new(
            SnykAdapter::new(
                SnykClient::builder()
                    .api_url(snyk.api_url())
                    .auth(SnykAuth::token(snyk_sandbox::SAMPLE_TOKEN))
                    .poll(PollPolicy {
                        first_delay: Duration::from_millis(200),
                        max_delay: Duration::from_secs(1),
                        ..PollPolicy::default()
                    })
                    .build()?,
            )
            .with_bitbucket_credentials(
                bb_sandbox::SAMPLE_EMAIL,
                bb_sandbox::SAMPLE_API_TOKEN.into(),
            ),
        ),
        state_dir: state.path().to_path_buf(),
    };
    if out.human() {
        println!(
            "bb-snyk-mirror demo: a sample Bitbucket Cloud estate mirrored into a sample Snyk group."
        );
        println!("  fake Bitbucket Cloud  {}", bb.base_url());
        println!("  fake Snyk             {}", snyk.api_url());
        println!("Nothing leaves this machine. First run:\n");
    }
    let mirror = ctx.builder().observer(out.progress()).build()?;
    let plan = make_plan(&mirror, out).await?;
    if out.human() {
        // A generated estate's plan is long: its summary says enough.
        let options = mirror_render::RenderOptions::default()
            .summary_only(estate.is_some())
            .colour(colour(std::io::stdout().is_terminal()));
        println!("{}", mirror_render::plan_with(&plan, options));
    }
    let code = run_plan(&mirror, out, &plan).await?;
    // The second plan sees what the first run journaled.
    let second = make_plan(&mirror, out).await?;
    if out.human() {
        let s = second.summary();
        println!(
            "\nSecond run, right after: {} orgs to create, {} repositories to import ({} skipped as already imported or empty).",
            s.orgs_to_create,
            s.imports,
            s.skipped.values().sum::<usize>()
        );
    }
    // The drift round changes repositories of the sample estate.
    let code = if estate.is_none() {
        let code = code.max(drift_round(&bb, &mirror, out).await?);
        // `serve` takes the state directory's lock itself.
        drop(mirror);
        code.max(realtime_round(&bb, &snyk, &ctx, out).await?)
    } else {
        code
    };
    if out.human() {
        println!(
            "\nTry it for real: set BITBUCKET_CLOUD_EMAIL, BITBUCKET_CLOUD_API_TOKEN, SNYK_TOKEN and SNYK_GROUP_ID, then run `bb-snyk-mirror plan`."
        );
    }
    Ok(code)
}

/// `demo --serve`: prints the environment that points the tool at both sandboxes, then keeps
/// them up until Ctrl-C or SIGTERM.
pub async fn serve_sandboxes(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    snyk: &snyk_client::sandbox::Sandbox,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox as bb_sandbox;
    let state = std::env::temp_dir().join(format!("bb-snyk-mirror-demo-{}", std::process::id()));
    let vars = [
        ("BITBUCKET_CLOUD_API_URL", bb.base_url()),
        ("BITBUCKET_CLOUD_EMAIL", bb_sandbox::SAMPLE_EMAIL.to_owned()),
        (
            "BITBUCKET_CLOUD_API_TOKEN",
            bb_sandbox::SAMPLE_API_TOKEN.to_owned(),
        ),
        ("SNYK_API", snyk.api_url()),
        ("SNYK_TOKEN", snyk_client::sandbox::SAMPLE_TOKEN.to_owned()),
        ("SNYK_GROUP_ID", snyk.group_id()),
        ("SNYK_BITBUCKET_EMAIL", bb_sandbox::SAMPLE_EMAIL.to_owned()),
        (
            "SNYK_BITBUCKET_API_TOKEN",
            bb_sandbox::SAMPLE_API_TOKEN.to_owned(),
        ),
        ("SNYK_LOG_PATH", state.display().to_string()),
    ];
    println!("The sandboxes are up (fake Bitbucket Cloud and fake Snyk, on this machine only).");
    println!("In another terminal, paste these lines (sample credentials, not secrets):\n");
    for (name, value) in &vars {
        println!("export {name}='{value}'");
    }
    println!(
        "\nthen try: bb-snyk-mirror doctor; bb-snyk-mirror plan --out plan.json; bb-snyk-mirror apply --plan plan.json; bb-snyk-mirror integrations list"
    );
    println!(
        "and change Bitbucket as it changes: bb-snyk-mirror demo change rename acme-data/notebooks notebooks-v2 (also transfer, branch, delete, create), then plan or sync again"
    );
    println!("Ctrl-C here stops the sandboxes.");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    interrupted().await;
    Ok(exit::OK)
}

/// The demo's second act: Bitbucket changes (a rename, a deletion, a new default branch, a new
/// repository), the plan names each change, a sync follows them, and a last plan has nothing
/// to do.
pub async fn drift_round(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    mirror: &Mirror,
    out: Out,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox::SandboxRepository;
    bb.rename_repository("acme-platform", "web-frontend", "web-app");
    bb.delete_repository("acme-data", "ml-models");
    bb.set_main_branch("acme-mobile", "android-app", "develop");
    bb.add_repository(
        "acme-mobile",
        SandboxRepository::new("wear-app", "{00000000-0000-4000-8000-00000000d3e0}"),
    );
    if out.human() {
        println!(
            "\nMeanwhile in Bitbucket: acme-platform/web-frontend was renamed web-app, acme-data/ml-models was deleted, acme-mobile/android-app now defaults to develop, and acme-mobile/wear-app was created. The next sync plans:\n"
        );
    }
    let plan = make_plan(mirror, out).await?;
    if out.human() {
        for line in plan.render().lines().map(str::trim_start).filter(|l| {
            ["~ ", "→ ", "- ", "⇄ ", "+ import", "! ", "? "]
                .iter()
                .any(|p| l.starts_with(p))
        }) {
            println!("{line}");
        }
        println!();
    }
    let code = run_plan(mirror, out, &plan).await?;
    let after = make_plan(mirror, out).await?;
    if out.human() {
        let verification = mirror_core::Verification::of(&after);
        println!(
            "\nAnd right after, both sides read again: {}.",
            verification.closing_line()
        );
    }
    Ok(code)
}

/// The demo's third act: `serve` runs on this machine, the sandbox's workspace gets its webhook
/// (as `hooks install` does), a repository is created, and Snyk receives its import a moment
/// later.
pub async fn realtime_round(
    bb: &bitbucket_cloud_client::sandbox::Sandbox,
    snyk: &snyk_client::sandbox::Sandbox,
    ctx: &Ctx,
    out: Out,
) -> Result<u8> {
    use bitbucket_cloud_client::sandbox::SandboxRepository;
    use bitbucket_cloud_client::webhooks::WebhookSpec;
    const IMPORT: &str = "POST /v1/org/{orgId}/integrations/{integrationId}/import";
    let secret = secrecy::SecretString::from("demo-webhook-secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = crate::commands::serve::start(
        ctx,
        vec![secret.clone()],
        listener,
        crate::commands::serve::ServeOptions::default(),
    )?;
    let url = format!(
        "http://{}{}",
        running.addr,
        crate::commands::serve::WEBHOOK_PATH
    );
    let ready = running.wait_reconciled(Duration::from_secs(30)).await;
    ctx.bitbucket
        .client()
        .install_workspace_hook("acme-mobile", &WebhookSpec::mirror(&url, secret))
        .await?;
    let before = snyk.stats().route(IMPORT);
    let created = std::time::Instant::now();
    bb.add_repository(
        "acme-mobile",
        SandboxRepository::new("watch-face", "{00000000-0000-4000-8000-00000000d3e1}"),
    );
    let mut after = None;
    while created.elapsed() < Duration::from_secs(10) {
        if snyk.stats().route(IMPORT) > before {
            after = Some(created.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (left, _) = running.shutdown(Duration::from_secs(10)).await;
    if out.human() {
        println!(
            "\nReal time: `bb-snyk-mirror serve` listens at {url}, and acme-mobile has its webhook."
        );
        match (ready, after) {
            (true, Some(t)) => println!(
                "acme-mobile/watch-face was created in Bitbucket; the signed repo:created delivery was queued, and Snyk received its import {} ms later{}.",
                t.as_millis(),
                if left == 0 {
                    ""
                } else {
                    " (some deliveries stay queued)"
                }
            ),
            _ => println!(
                "acme-mobile/watch-face was created in Bitbucket, but Snyk received no import within 10 seconds."
            ),
        }
    }
    Ok(if after.is_some() {
        exit::OK
    } else {
        exit::FAILURES
    })
}
