//! The `serve` benchmark: the release binary runs `serve` against both sandboxes (in this
//! process), and this process sends it signed deliveries as Bitbucket would.
//!
//! ```text
//! cargo bench -p mirror-cli --bench serve
//! cargo bench -p mirror-cli --bench serve -- --deliveries 200 --rate 500 --seconds 10
//! cargo bench -p mirror-cli --bench serve -- --job-ms 500 --bursts 20,100,300
//! ```
//!
//! Three figures, on the real clock (the binary is another process):
//! 1. latency: `--deliveries` signed `repo:created` deliveries, one every 50 ms, each for a
//!    repository just created; from the moment a delivery is sent to the moment Snyk's
//!    sandbox receives the import request for its repository: p50, p99, max;
//! 2. throughput: `repo:updated` deliveries at `--rate` a second for `--seconds` over the
//!    estate's repositories: how many were answered 202, the answer time, and the serving
//!    process's resident memory (VmRSS) along the way;
//! 3. a burst: 1,000 deliveries for one new repository as fast as they can be sent: how many
//!    imports Snyk received for it;
//! 4. bursts of created repositories (`--bursts 20,100,300`), each sent at once: from each 202
//!    to its import request at Snyk, against the wave bound `ceil(n / 15) × job`
//!    (`--job-ms`, default 2000).

use std::collections::HashMap;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api_support::{ReqwestTransport, Transport, TransportConfig};
use bitbucket_cloud_client::sandbox::{self as bb, Estate, SandboxRepository};
use bitbucket_cloud_client::webhooks;
use bytes::Bytes;
use snyk_client::sandbox as snyk;

const SECRET: &str = "bench-webhook-secret";

struct Args {
    deliveries: usize,
    rate: usize,
    seconds: u64,
    /// How long the sandbox's import jobs take.
    job_ms: u64,
    /// Bursts of created repositories, each sent at once.
    bursts: Vec<usize>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        deliveries: 200,
        rate: 500,
        seconds: 10,
        job_ms: 2000,
        bursts: vec![20, 100, 300],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--deliveries" => a.deliveries = value("--deliveries")? as usize,
            "--rate" => a.rate = value("--rate")? as usize,
            "--seconds" => a.seconds = value("--seconds")?,
            "--job-ms" => a.job_ms = value("--job-ms")?.max(1),
            "--bursts" => {
                a.bursts = it
                    .next()
                    .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                    .ok_or("--bursts needs sizes, like 20,100,300")?;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// The serving process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Served {
    /// Resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

fn payload(workspace: &str, slug: &str, uuid: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "actor": {"type": "user"},
            "repository": {"type": "repository", "uuid": uuid, "full_name": format!("{workspace}/{slug}"),
                           "workspace": {"type": "workspace", "slug": workspace}},
        }))
        .unwrap_or_default(),
    )
}

/// Sends one signed delivery; its status (0: no answer).
async fn deliver(t: &ReqwestTransport, url: &str, event: &str, request: &str, body: Bytes) -> u16 {
    let signature = webhooks::signature(SECRET.as_bytes(), &body);
    let Ok(req) = http::Request::post(url)
        .header("content-type", "application/json")
        .header(webhooks::EVENT_KEY_HEADER, event)
        .header(webhooks::REQUEST_UUID_HEADER, request)
        .header(webhooks::ATTEMPT_HEADER, "1")
        .header(webhooks::SIGNATURE_HEADER, signature)
        .body(body)
    else {
        return 0;
    };
    t.send(req).await.map_or(0, |r| r.status().as_u16())
}

/// An `X-Request-UUID` as Bitbucket sends them: a UUID.
fn request_id(phase: u32, n: usize) -> String {
    format!("{{{phase:08x}-0000-4000-8000-{n:012x}}}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let estate = Estate::generate(3, 100, 11);
    let bb = bb::Sandbox::builder()
        .estate(estate.clone())
        .api_token(bb::SAMPLE_EMAIL, bb::SAMPLE_API_TOKEN)
        .start()
        .await?;
    let snyk = snyk::Sandbox::sample_builder()
        .import_delay(Duration::from_millis(args.job_ms))
        .start()
        .await?;
    let state = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let served = spawn_serve(port, &bb, &snyk, state.path())?;
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/webhooks/bitbucket");
    let transport = ReqwestTransport::new(TransportConfig::default())?;
    let started = Instant::now();
    first_reconcile(&transport, &base).await?;
    println!(
        "first reconcile of 3 × 100 repositories ({} ms jobs, 15 in flight) done after {:.1} s",
        args.job_ms,
        started.elapsed().as_secs_f64()
    );
    latency(&bb, &snyk, &transport, &url, args.deliveries).await?;
    one_repository_burst(&bb, &snyk, &transport, &url).await;
    throughput(&estate, &bb, &served, &transport, &base, &args).await;
    // Bursts of created repositories (last: they spend Bitbucket's budget).
    for (b, &n) in args.bursts.iter().enumerate() {
        created_burst(&bb, &snyk, &transport, &url, b, n, args.job_ms).await?;
    }
    Ok(())
}

/// Starts the release binary's `serve` on `port` against both sandboxes, its state in
/// `state`; its log goes to `SERVE_LOG_FILE` at the level `SERVE_LOG` names (off by default).
fn spawn_serve(
    port: u16,
    bb: &bb::Sandbox,
    snyk: &snyk::Sandbox,
    state: &std::path::Path,
) -> Result<Served, Box<dyn std::error::Error>> {
    let child = Command::new(env!("CARGO_BIN_EXE_bb-snyk-mirror"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("BITBUCKET_CLOUD_API_URL", bb.base_url())
        .env("BITBUCKET_CLOUD_EMAIL", bb::SAMPLE_EMAIL)
        .env("BITBUCKET_CLOUD_API_TOKEN", bb::SAMPLE_API_TOKEN)
        .env("SNYK_API", snyk.api_url())
        .env("SNYK_TOKEN", snyk::SAMPLE_TOKEN)
        .env("SNYK_GROUP_ID", snyk.group_id())
        .env("SNYK_BITBUCKET_EMAIL", bb::SAMPLE_EMAIL)
        .env("SNYK_BITBUCKET_API_TOKEN", bb::SAMPLE_API_TOKEN)
        .env("SNYK_LOG_PATH", state)
        .env("BITBUCKET_WEBHOOK_SECRET", SECRET)
        .env(
            "RUST_LOG",
            std::env::var("SERVE_LOG").unwrap_or_else(|_| "off".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("SERVE_LOG_FILE") {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        })
        .spawn()?;
    Ok(Served(child))
}

/// Waits until `/metrics` says the first reconcile (300 repositories) succeeded.
async fn first_reconcile(
    transport: &ReqwestTransport,
    base: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    loop {
        let probe = http::Request::get(format!("{base}/metrics")).body(Bytes::new())?;
        let reconciled = transport.send(probe).await.is_ok_and(|r| {
            String::from_utf8_lossy(r.body()).contains("bb_snyk_mirror_last_reconcile_success 1")
        });
        if reconciled {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("serve never became ready".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// From each moment in `sent` (repository full name → when) to Snyk's first import request
/// for that repository, sorted; waits until every one arrived or `patience` passed, looking
/// every `every`.
async fn imported_after(
    snyk: &snyk::Sandbox,
    sent: &HashMap<String, Instant>,
    patience: Duration,
    every: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + patience;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let posted = snyk.first_import_posts();
        latencies = sent
            .iter()
            .filter_map(|(name, at)| Some(posted.get(name)?.saturating_duration_since(*at)))
            .collect();
        if latencies.len() == sent.len() {
            break;
        }
        tokio::time::sleep(every).await;
    }
    latencies.sort();
    latencies
}

/// Figure 1: `deliveries` signed `repo:created` deliveries 50 ms apart, each for a repository
/// just created, to the import request at Snyk.
async fn latency(
    bb: &bb::Sandbox,
    snyk: &snyk::Sandbox,
    transport: &ReqwestTransport,
    url: &str,
    deliveries: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut sent: HashMap<String, Instant> = HashMap::new();
    for n in 0..deliveries {
        let slug = format!("created-{n}");
        let uuid = format!("{{00000000-0000-4000-8000-{n:012}}}");
        bb.add_repository("ws-0001", SandboxRepository::new(&slug, &uuid));
        let body = payload("ws-0001", &slug, &uuid);
        sent.insert(format!("ws-0001/{slug}"), Instant::now());
        let status = deliver(transport, url, "repo:created", &request_id(1, n), body).await;
        if status != 202 {
            return Err(format!("delivery {n} answered {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latencies = imported_after(
        snyk,
        &sent,
        Duration::from_secs(60),
        Duration::from_millis(50),
    )
    .await;
    println!(
        "latency, signed repo:created → import request at Snyk, {} deliveries 50 ms apart: {} imported; p50 {}, p99 {}, max {}",
        sent.len(),
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    Ok(())
}

/// Figure 3: 1,000 deliveries for one new repository as fast as they can be sent, and how
/// many imports Snyk received for it.
async fn one_repository_burst(
    bb: &bb::Sandbox,
    snyk: &snyk::Sandbox,
    transport: &ReqwestTransport,
    url: &str,
) {
    let uuid = "{00000000-0000-4000-8000-0000000b0000}";
    bb.add_repository("ws-0002", SandboxRepository::new("burst", uuid));
    let body = payload("ws-0002", "burst", uuid);
    let burst_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let (t, url, body) = (transport.clone(), url.to_owned(), body.clone());
        let event = if n == 0 {
            "repo:created"
        } else {
            "repo:updated"
        };
        tasks.spawn(async move { deliver(&t, &url, event, &request_id(2, n), body).await });
    }
    let mut accepted = 0;
    while let Some(status) = tasks.join_next().await {
        accepted += usize::from(status.unwrap_or(0) == 202);
    }
    let burst_sent = burst_started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let imports = snyk
        .import_posts()
        .get("ws-0002/burst")
        .copied()
        .unwrap_or(0);
    println!(
        "burst: 1000 deliveries for one repository sent in {} ({accepted} answered 202): {imports} import(s) at Snyk",
        ms(burst_sent)
    );
}

/// Figure 2: `repo:updated` deliveries over the estate at `--rate` a second for `--seconds`:
/// how many were answered 202, the answer time, the serving process's memory once a second,
/// and what the rounds meanwhile spent of Bitbucket's budget.
async fn throughput(
    estate: &Estate,
    bb: &bb::Sandbox,
    served: &Served,
    transport: &ReqwestTransport,
    base: &str,
    args: &Args,
) {
    let url = format!("{base}/webhooks/bitbucket");
    let repos: Vec<(String, String, String)> = estate
        .workspaces
        .iter()
        .flat_map(|w| {
            w.repositories
                .iter()
                .map(move |r| (w.slug.clone(), r.slug.clone(), r.uuid.clone()))
        })
        .collect();
    let bb_before = bb.stats().total;
    let depth_before = queue_depth(transport, base).await;
    let ok = Arc::new(AtomicUsize::new(0));
    let answer_times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let total = args.rate * args.seconds as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1) as u32);
    let mut tasks = tokio::task::JoinSet::new();
    let mut rss_samples = vec![served.rss_kib()];
    let throughput_started = Instant::now();
    for n in 0..total {
        ticker.tick().await;
        let (w, slug, uuid) = &repos[n % repos.len()];
        let body = payload(w, slug, uuid);
        let (t, url, ok, times) = (
            transport.clone(),
            url.clone(),
            ok.clone(),
            answer_times.clone(),
        );
        tasks.spawn(async move {
            let at = Instant::now();
            if deliver(&t, &url, "repo:updated", &request_id(3, n), body).await == 202 {
                ok.fetch_add(1, Ordering::SeqCst);
            }
            if let Ok(mut v) = times.lock() {
                v.push(at.elapsed());
            }
        });
        if n % args.rate == args.rate - 1 {
            rss_samples.push(served.rss_kib());
        }
    }
    while tasks.join_next().await.is_some() {}
    let spent = throughput_started.elapsed();
    rss_samples.push(served.rss_kib());
    let mut times = answer_times.lock().map(|v| v.clone()).unwrap_or_default();
    times.sort();
    println!(
        "throughput: {total} repo:updated deliveries at {}/s over {:.1} s: {} answered 202; answer time p50 {}, p99 {}",
        args.rate,
        spent.as_secs_f64(),
        ok.load(Ordering::SeqCst),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
    );
    println!(
        "memory (VmRSS of serve, MiB, once a second): {}",
        rss_samples
            .iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let depth = queue_depth(transport, base).await;
    println!(
        "meanwhile {} deliveries were reconciled with {} Bitbucket requests (the budget is 1,000 repository requests an hour a credential); {depth} stay queued",
        (depth_before + total).saturating_sub(depth),
        bb.stats().total - bb_before,
    );
}

/// A burst of `n` created repositories, their deliveries sent at once: from each 202 to its
/// import request at Snyk, against the wave bound `ceil(n / 15) × job`.
async fn created_burst(
    bb: &bb::Sandbox,
    snyk: &snyk::Sandbox,
    transport: &ReqwestTransport,
    url: &str,
    burst: usize,
    n: usize,
    job_ms: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let workspace = "ws-0003";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let slug = format!("burst-{burst}-{i}");
        let uuid = format!("{{00000000-0000-4000-9{burst:03}-{i:012}}}");
        bb.add_repository(workspace, SandboxRepository::new(&slug, &uuid));
        let (t, url) = (transport.clone(), url.to_owned());
        let body = payload(workspace, &slug, &uuid);
        let request = request_id(10 + burst as u32, i);
        tasks.spawn(async move {
            let status = deliver(&t, &url, "repo:created", &request, body).await;
            (format!("{workspace}/{slug}"), status, Instant::now())
        });
    }
    let mut answered: HashMap<String, Instant> = HashMap::new();
    while let Some(Ok((name, status, at))) = tasks.join_next().await {
        if status == 202 {
            answered.insert(name, at);
        }
    }
    let latencies = imported_after(
        snyk,
        &answered,
        Duration::from_secs(120),
        Duration::from_millis(20),
    )
    .await;
    let bound = Duration::from_millis(job_ms) * n.div_ceil(15) as u32;
    let p99 = percentile(&latencies, 0.99);
    println!(
        "created burst of {n} ({} answered 202, {} imported): 202 → import request p50 {}, p99 {}, max {}; wave bound {} (p99 / bound {:.2})",
        answered.len(),
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(p99),
        ms(latencies.last().copied().unwrap_or_default()),
        ms(bound),
        p99.as_secs_f64() / bound.as_secs_f64(),
    );
    Ok(())
}

/// The queue depth `/metrics` shows.
async fn queue_depth(transport: &ReqwestTransport, base: &str) -> usize {
    let Ok(request) = http::Request::get(format!("{base}/metrics")).body(Bytes::new()) else {
        return 0;
    };
    let text = transport
        .send(request)
        .await
        .map(|r| String::from_utf8_lossy(r.body()).into_owned())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("bb_snyk_mirror_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
