//! The sync benchmark: a full `sync` (read both sides, plan, apply with the journal) against
//! both sandboxes, then a second `sync` right after (it reads again every org the first
//! changed), a third of the unchanged estate (orgs the group's audit log shows unchanged answer
//! from their kept read; `--without-audit-logs` for plans without), and a drift round, for
//! estates of 1×10 to 100×1000 workspaces × repositories.
//!
//! ```text
//! cargo bench -p mirror-core --bench sync                      # the four standard estates
//! cargo bench -p mirror-core --bench sync -- --estate 10x100   # one estate
//! cargo bench -p mirror-core --bench sync -- --latency-ms 50 --job-seconds 20 --concurrency 15
//! cargo bench -p mirror-core --bench sync -- --estate 1x1000 --job-distribution lognormal
//! cargo bench -p mirror-core --bench sync -- --estate 1x1000 --job-seconds 0.5
//! cargo bench -p mirror-core --bench sync -- --estate 10x100 --per-org 5
//! cargo bench -p mirror-core --bench sync -- --estate 100x1000 --without-audit-logs
//! ```
//!
//! "Bound" is what the services impose, never the tool's own choices: the rate limits (for
//! Snyk v1, on the requests made with one poll a job: more polls are the tool's schedule), and
//! `concurrency` imports in flight each held exactly for its job's duration as the sandbox
//! drew it: `ceil(n / c) × d` when every job takes `d`, else the list-scheduling lower bound
//! `max(sum(d) / c, max(d))`. "Seen at once" is the wall time of a tool that saw each job end
//! the instant it ended, posting the same jobs in the same order. It is the tight bound: the
//! sandbox draws each job's time when the job is posted, so the times come in one order
//! whatever a tool does, and with the order fixed, taking each slot as it frees starts every
//! job as early as any schedule can, even one that knew the times in advance. The
//! list-scheduling bound can sit below it by up to a job's length when a long job is drawn
//! late. Job durations are fixed (`--job-seconds`) or log-normal (`--job-distribution
//! lognormal`: median `--job-seconds`, σ 1, clipped to a twentieth and thirty times the
//! median, seeded).
//!
//! Time is tokio's paused clock: the sandboxes' latency, the import jobs' duration, the
//! clients' budgets (Bitbucket 1,000 repository requests an hour, Snyk 2,000 v1 and 1,620 REST
//! requests a minute, enforced by the sandboxes too) and every poll interval run on virtual
//! time, so a run that would take hours against the real services takes seconds and its
//! "wall" figure is what the real run would take. The CPU figure is real time on this machine.
//! Each estate runs in a fresh process so that its peak memory (`VmHWM`) is its own; the
//! sandboxes live in that process too, so the peak is an upper bound for the tool.
//!
//! Heap is also counted by a small counting allocator (the one `unsafe` outside the libraries,
//! which forbid it) that tells the tool's allocations from those made inside the sandboxes'
//! handlers: "tool heap peak" is the most the code under test held at once, above what it held
//! before the sync began.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as RealInstant};

use api_support::sandbox::Stats;
use bitbucket_cloud_client::sandbox::{self as bb, Estate, SAMPLE_API_TOKEN, SAMPLE_EMAIL};
use bitbucket_cloud_client::{Auth, BitbucketClient};
use mirror_core::Config;
use mirror_core::adapters::{BitbucketAdapter, SnykAdapter};
use mirror_core::advanced::journal::Journal;
use mirror_core::config::ApplyOptions;
use mirror_core::ports::SnykPort;
use snyk_client::sandbox::{self as snyk, JobDurations, SAMPLE_TOKEN};
use snyk_client::{SnykAuth, SnykClient};
use tokio::time::Instant;

/// The system allocator, counting live and peak bytes of the code under test apart from the
/// sandboxes' (allocations made inside a sandbox handler, see
/// [`api_support::sandbox::serving`]). Each block carries its owner in a small header, so a
/// block is subtracted from the side that allocated it wherever it is freed.
struct Counting;

/// Live bytes: [0] the tool, [1] the sandboxes.
static LIVE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// The tool's peak since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn owner() -> u8 {
    u8::from(api_support::sandbox::serving())
}

fn grew(owner: u8, n: usize) {
    let live = LIVE[usize::from(owner)].fetch_add(n, Ordering::Relaxed) + n;
    if owner == 0 {
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

fn shrank(owner: u8, n: usize) {
    LIVE[usize::from(owner)].fetch_sub(n, Ordering::Relaxed);
}

/// The header in front of each block: at least 16 bytes, and the block's alignment.
fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

/// The layout actually asked of the system: header + block.
fn outer(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(header(layout))?, header(layout)).ok()
}

// SAFETY: blocks are the system's with a header of `header(layout)` bytes in front, which keeps
// the requested alignment; the owner byte lives at the start of the header. Every pointer given
// out is `base + header`, and every pointer taken back is turned into `base` the same way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(outer) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size.
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let who = owner();
        // SAFETY: the header is inside the block just allocated.
        unsafe { base.write(who) };
        grew(who, layout.size());
        // SAFETY: as above.
        unsafe { base.add(header(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` with this layout.
        let base = unsafe { ptr.sub(header(layout)) };
        // SAFETY: the owner byte was written at `base`.
        let who = unsafe { base.read() };
        shrank(who, layout.size());
        if let Some(outer) = outer(layout) {
            // SAFETY: `base` was allocated with `outer`.
            unsafe { System.dealloc(base, outer) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(old), Some(total)) = (outer(layout), new_size.checked_add(header(layout))) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `dealloc`.
        let base = unsafe { ptr.sub(header(layout)) };
        // SAFETY: the system keeps the header's bytes when it moves the block.
        let moved = unsafe { System.realloc(base, old, total) };
        if moved.is_null() {
            return moved;
        }
        // SAFETY: the owner byte was kept.
        let who = unsafe { moved.read() };
        if new_size > layout.size() {
            grew(who, new_size - layout.size());
        } else {
            shrank(who, layout.size() - new_size);
        }
        // SAFETY: as in `alloc`.
        unsafe { moved.add(header(layout)) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tool's live heap bytes now.
fn live() -> usize {
    LIVE[0].load(Ordering::Relaxed)
}

/// The sandboxes' live heap bytes now.
fn sandbox_live() -> usize {
    LIVE[1].load(Ordering::Relaxed)
}

/// Starts a new peak from the live heap now.
fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

/// Bitbucket's budget for repository data, per credential and rolling hour.
const BITBUCKET_PER_HOUR: u64 = 1_000;
/// Snyk's budgets per token and rolling minute.
const SNYK_V1_PER_MINUTE: u64 = 2_000;
const SNYK_REST_PER_MINUTE: u64 = 1_620;
/// Bitbucket's largest page.
const PAGE: u64 = 100;

#[derive(Clone, Debug)]
struct Options {
    estates: Vec<(usize, usize)>,
    latency_ms: u64,
    job_seconds: f64,
    lognormal: bool,
    concurrency: usize,
    per_org: Option<usize>,
    /// The Snyk sandbox answers 403 to audit-log searches (plans without audit logs).
    no_audit_log: bool,
    /// A `[[metadata]]` rule tags every project with its Bitbucket project key, and the drift
    /// round also moves 1% of the repositories to another project.
    metadata: bool,
    one: bool,
}

impl Options {
    /// The arguments that give a child process these options for one estate.
    fn child_args(&self, w: usize, r: usize) -> Vec<String> {
        let mut args = vec![
            "--one".to_owned(),
            "--estate".to_owned(),
            format!("{w}x{r}"),
            "--latency-ms".to_owned(),
            self.latency_ms.to_string(),
            "--job-seconds".to_owned(),
            self.job_seconds.to_string(),
            "--concurrency".to_owned(),
            self.concurrency.to_string(),
        ];
        if self.lognormal {
            args.extend(["--job-distribution".to_owned(), "lognormal".to_owned()]);
        }
        if let Some(n) = self.per_org {
            args.extend(["--per-org".to_owned(), n.to_string()]);
        }
        if self.no_audit_log {
            args.push("--without-audit-logs".to_owned());
        }
        if self.metadata {
            args.push("--metadata".to_owned());
        }
        args
    }

    /// How the sandbox draws job durations.
    fn durations(&self) -> JobDurations {
        let d = Duration::from_secs_f64(self.job_seconds);
        if self.lognormal {
            JobDurations::log_normal(d, 1.0, d / 20, d * 30, 11)
        } else {
            JobDurations::Fixed(d)
        }
    }
}

fn parse_estate(text: &str) -> Result<(usize, usize), String> {
    let (w, r) = text.split_once(['x', 'X', '×']).ok_or_else(|| {
        format!("--estate `{text}`: write workspaces x repositories, like 10x100")
    })?;
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("--estate `{text}`: `{s}` is not a positive number"))
    };
    Ok((parse(w)?, parse(r)?))
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        estates: Vec::new(),
        latency_ms: 50,
        job_seconds: 20.0,
        lognormal: false,
        concurrency: ApplyOptions::default().concurrency,
        per_org: ApplyOptions::default().per_org_concurrency,
        no_audit_log: false,
        metadata: false,
        one: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes this to every bench target.
            "--bench" => {}
            "--estate" => o.estates.push(parse_estate(&value("--estate")?)?),
            "--latency-ms" => {
                o.latency_ms = value("--latency-ms")?
                    .parse()
                    .map_err(|_| "--latency-ms needs milliseconds".to_owned())?;
            }
            "--job-seconds" => {
                o.job_seconds = value("--job-seconds")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| "--job-seconds needs positive seconds, like 0.5".to_owned())?;
            }
            "--concurrency" => {
                o.concurrency = value("--concurrency")?
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| "--concurrency needs 1 to 50".to_owned())?;
            }
            "--job-distribution" => match value("--job-distribution")?.as_str() {
                "fixed" => o.lognormal = false,
                "lognormal" => o.lognormal = true,
                other => {
                    return Err(format!(
                        "--job-distribution `{other}`: use fixed or lognormal"
                    ));
                }
            },
            "--per-org" => {
                o.per_org = Some(
                    value("--per-org")?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| "--per-org needs a positive number".to_owned())?,
                );
            }
            "--one" => o.one = true,
            "--without-audit-logs" => o.no_audit_log = true,
            "--metadata" => o.metadata = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; use --estate WxR, --latency-ms N, --job-seconds N, --job-distribution fixed|lognormal, --concurrency N, --per-org N, --without-audit-logs, --metadata"
                ));
            }
        }
    }
    if o.estates.is_empty() {
        o.estates = vec![
            (1, 10),
            (10, 100),
            (1, 1000),
            (10, 1000),
            (1, 5000),
            (100, 1000),
        ];
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sync bench: {e}");
            return ExitCode::from(2);
        }
    };
    if options.one {
        let (w, r) = options.estates[0];
        return match run_estate(w, r, &options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sync bench {w}x{r}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    println!(
        "sync benchmark: latency {} ms a request, import jobs take {} s{}, {} imports in flight{}; \
         real rate limits (Bitbucket {BITBUCKET_PER_HOUR}/h, Snyk v1 {SNYK_V1_PER_MINUTE}/min, REST {SNYK_REST_PER_MINUTE}/min); virtual clock",
        options.latency_ms,
        options.job_seconds,
        if options.lognormal {
            " (median of a log-normal, σ 1, 2 s – 10 min)"
        } else {
            ""
        },
        options.concurrency,
        options
            .per_org
            .map_or(String::new(), |n| format!(", at most {n} per org"))
    );
    let Ok(me) = std::env::current_exe() else {
        eprintln!("sync bench: cannot find its own executable");
        return ExitCode::FAILURE;
    };
    let mut summary = Vec::new();
    for &(w, r) in &options.estates {
        let output = Command::new(&me).args(options.child_args(w, r)).output();
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                eprintln!("sync bench: cannot start the {w}x{r} run: {e}");
                return ExitCode::FAILURE;
            }
        };
        let text = String::from_utf8_lossy(&output.stdout);
        for line in text.lines() {
            match line.strip_prefix("summary|") {
                Some(row) => summary.push(row.to_owned()),
                None => println!("{line}"),
            }
        }
        if !output.status.success() {
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            return ExitCode::FAILURE;
        }
    }
    println!("\n## Summary\n");
    println!(
        "| estate | sync | Bitbucket requests (minimum) | Snyk v1 / REST | wall (virtual) | bound (what sets it) | wall / bound | wall / seen at once | imports/s | polls/job | tool heap peak | process peak RSS | CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in summary {
        println!("{row}");
    }
    ExitCode::SUCCESS
}

/// What one sync did and took.
struct Figures {
    bitbucket: Stats,
    snyk: Stats,
    wall: Duration,
    cpu: Duration,
    imports: usize,
    /// The durations the sandbox drew for the jobs of this sync.
    durations: Vec<Duration>,
    failed: usize,
    orgs_created: usize,
    polls: u64,
    peak_rss_kib: u64,
    /// The tool's live heap before the sync and at its peak; the sandboxes' after it.
    heap_before: usize,
    heap_peak: usize,
    sandbox_heap: usize,
    /// How long after their end this sync's jobs were seen ended.
    seen_lag: snyk::SeenLag,
}

fn run_estate(workspaces: usize, repos: usize, o: &Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async move {
        let (bitbucket, snyk) = start_sandboxes(workspaces, repos, o).await?;
        let base_rss = memory("VmRSS");
        let config = bench_config(&snyk, o)?;
        let state = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut runs = Vec::new();
        let mut drift = Drift::default();
        for round in 0..4 {
            if round == 3 {
                // The next scheduled sync, an hour later (on the virtual clock): Bitbucket's
                // hourly budget is one credential's for the whole estate.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drift = change_one_percent(&bitbucket, workspaces, o.metadata);
            }
            runs.push(one_sync(&bitbucket, &snyk, &config, state.path()).await?);
        }
        let minimum = bitbucket_minimum(workspaces, repos);
        println!("\n# {workspaces} workspaces × {repos} repositories");
        println!(
            "memory before the first sync (both sandboxes loaded): {}",
            mib(base_rss)
        );
        for (i, f) in runs.iter().enumerate() {
            let name = ["first", "second", "unchanged", "drift"][i];
            print_run(name, f, minimum, o);
            if i == 3 {
                print_drift(&drift, f);
            }
            println!(
                "{}",
                summary_row(&format!("{workspaces}×{repos}"), name, f, minimum, o)
            );
        }
        Ok(())
    })
}

/// Both sandboxes for `workspaces` × `repos` repositories, with the real budgets, the
/// options' latency and the options' job durations.
async fn start_sandboxes(
    workspaces: usize,
    repos: usize,
    o: &Options,
) -> Result<(bb::Sandbox, snyk::Sandbox), String> {
    let latency = Duration::from_millis(o.latency_ms);
    let estate = Estate::generate(workspaces, repos, 7);
    let bitbucket = bb::Sandbox::builder()
        .estate(estate)
        .api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN)
        .hourly_budget(BITBUCKET_PER_HOUR as u32)
        .latency(latency)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let mut snyk = snyk::Sandbox::builder()
        .token(SAMPLE_TOKEN)
        .import_durations(o.durations())
        .per_minute(SNYK_V1_PER_MINUTE as u32)
        .rest_per_minute(SNYK_REST_PER_MINUTE as u32)
        .latency(latency);
    if o.no_audit_log {
        snyk = snyk.without_audit_logs();
    }
    let snyk = snyk.start().await.map_err(|e| e.to_string())?;
    Ok((bitbucket, snyk))
}

/// The configuration every sync of the run uses: the sandbox's group, the options'
/// concurrency, per-org cap and metadata rule.
fn bench_config(snyk: &snyk::Sandbox, o: &Options) -> Result<Config, String> {
    Config::from_toml(&format!(
        "[snyk]\ngroup_id = \"{}\"\n[apply]\nconcurrency = {}\n{}{}",
        snyk.group_id(),
        o.concurrency,
        o.per_org
            .map_or(String::new(), |n| format!("per_org_concurrency = {n}\n")),
        if o.metadata {
            "[[metadata]]\ntags = { bb-project = \"{project.key}\" }\n"
        } else {
            ""
        }
    ))
    .map_err(|e| e.to_string())
}

/// The two ports a run of the binary would build, fresh each time.
fn ports(
    bitbucket: &bb::Sandbox,
    snyk: &snyk::Sandbox,
) -> Result<(BitbucketAdapter, Arc<dyn SnykPort>), String> {
    let bitbucket_port = BitbucketAdapter::new(
        BitbucketClient::builder()
            .base_url(bitbucket.base_url())
            .auth(Auth::api_token(SAMPLE_EMAIL, SAMPLE_API_TOKEN))
            .build()
            .map_err(|e| e.to_string())?,
    );
    let snyk_port: Arc<dyn SnykPort> = Arc::new(
        SnykAdapter::new(
            SnykClient::builder()
                .api_url(snyk.api_url())
                .auth(SnykAuth::token(SAMPLE_TOKEN))
                .build()
                .map_err(|e| e.to_string())?,
        )
        .with_bitbucket_credentials(SAMPLE_EMAIL, SAMPLE_API_TOKEN.into()),
    );
    Ok((bitbucket_port, snyk_port))
}

/// One sync, as the binary runs it (fresh clients, the journal and kept listings in
/// `state`), and what it cost.
async fn one_sync(
    bitbucket: &bb::Sandbox,
    snyk: &snyk::Sandbox,
    config: &Config,
    state: &std::path::Path,
) -> Result<Figures, String> {
    let (bitbucket_port, snyk_port) = ports(bitbucket, snyk)?;
    bitbucket.server().reset_stats();
    snyk.server().reset_stats();
    let jobs_before = snyk.job_durations().len();
    let lag_before = snyk.seen_lag();
    reset_peak_memory();
    let heap_before = live();
    reset_peak();
    let cpu = RealInstant::now();
    let start = Instant::now();
    let journal = Journal::open(state, None).map_err(|e| e.to_string())?;
    let history = journal.with_state(|s| s.history());
    // As the Mirror handle and the binary list: incrementally after the first sync.
    let bitbucket_port = mirror_core::listing::Incremental::new(
        Arc::new(bitbucket_port),
        state,
        config.source.full_every(),
    );
    // As the Mirror handle reads Snyk: orgs the group's audit log shows unchanged since their
    // kept read answer from it (the sandboxes run within seconds of real time: no margin).
    let kept_snyk = mirror_core::snyk_listing::KeptSnyk::new(
        snyk_port.clone(),
        state,
        &config.snyk.group_id,
        config.snyk.full_every(),
    )
    .with_margin(Duration::ZERO);
    let inventory =
        mirror_core::advanced::gather_for(config, &bitbucket_port, &kept_snyk, &history)
            .await
            .map_err(|e| e.to_string())?;
    let plan = mirror_core::advanced::plan(config, &inventory, &history);
    drop(inventory);
    mirror_core::snyk_listing::forget(state, &plan.orgs_changed());
    let report =
        mirror_core::advanced::apply(&plan, snyk_port, &journal, &config.apply, None, None)
            .await
            .map_err(|e| e.to_string())?;
    mirror_core::snyk_listing::forget(state, &plan.orgs_changed());
    drop(journal);
    let wall = start.elapsed();
    let cpu = cpu.elapsed();
    // Read before anything below allocates.
    let heap_peak = PEAK.load(Ordering::Relaxed);
    let peak_rss_kib = memory("VmHWM");
    Ok(Figures {
        durations: snyk.job_durations().split_off(jobs_before),
        bitbucket: bitbucket.stats(),
        snyk: snyk.stats(),
        wall,
        cpu,
        imports: report.imports_accepted,
        failed: report.imports_failed.len(),
        orgs_created: report.orgs_created.len(),
        polls: report.polls,
        peak_rss_kib,
        heap_before,
        heap_peak,
        sandbox_heap: sandbox_live(),
        seen_lag: snyk.seen_lag().since(&lag_before),
    })
}

/// What the drift round changed in Bitbucket.
#[derive(Default)]
struct Drift {
    renamed: u64,
    moved: u64,
    deleted: u64,
    branches: u64,
    projects_moved: u64,
}

/// Changes 1% of the repositories (at least one of each kind; no move with one workspace):
/// renamed, moved to the next workspace (under a new slug, as generated workspaces share
/// their slugs), deleted, or given a new default branch, in turn.
fn change_one_percent(bitbucket: &bb::Sandbox, workspaces: usize, metadata: bool) -> Drift {
    let estate = bitbucket.estate();
    let all: Vec<(String, String)> = estate
        .workspaces
        .iter()
        .flat_map(|w| {
            w.repositories
                .iter()
                .filter(|r| r.main_branch.is_some())
                .map(move |r| (w.slug.clone(), r.slug.clone()))
        })
        .collect();
    let n = (all.len() / 100).max(4);
    let step = (all.len() / n).max(1);
    let mut d = Drift::default();
    for (i, (ws, slug)) in all.iter().step_by(step).take(n).enumerate() {
        match i % 4 {
            0 if bitbucket.rename_repository(ws, slug, &format!("{slug}-renamed")) => {
                d.renamed += 1;
            }
            1 if workspaces > 1 => {
                let to = estate
                    .workspaces
                    .iter()
                    .map(|w| w.slug.as_str())
                    .find(|w| *w != ws)
                    .unwrap_or_default();
                let moved = format!("{slug}-from-{ws}");
                if bitbucket.rename_repository(ws, slug, &moved)
                    && bitbucket.transfer_repository(ws, &moved, to)
                {
                    d.moved += 1;
                }
            }
            2 if bitbucket.delete_repository(ws, slug) => d.deleted += 1,
            3 if bitbucket.set_main_branch(ws, slug, "trunk") => d.branches += 1,
            _ => {}
        }
    }
    // Another 1% moved to another Bitbucket project (with metadata rules): their projects'
    // tag changes.
    if metadata {
        let key_of = |ws: &str, slug: &str| {
            estate
                .workspaces
                .iter()
                .filter(|w| w.slug == ws)
                .flat_map(|w| &w.repositories)
                .find(|r| r.slug == slug)
                .and_then(|r| r.project_key.clone())
        };
        for (ws, slug) in all.iter().skip(1).step_by(step).take(n) {
            let to = if key_of(ws, slug).as_deref() == Some("WEB") {
                "CORE"
            } else {
                "WEB"
            };
            if bitbucket.set_project_key(ws, slug, to) {
                d.projects_moved += 1;
            }
        }
    }
    d
}

/// The drift round's requests per kind against the fewest the APIs allow: one import per
/// rename or move, one deactivation per project of a retired target (one project per
/// repository here), one branch update per project, one lookup by uuid per deletion.
fn print_drift(d: &Drift, f: &Figures) {
    let route = |s: &Stats, r: &str| s.route(r);
    println!(
        "drift: {} renamed, {} moved, {} deleted, {} default branches changed",
        d.renamed, d.moved, d.deleted, d.branches
    );
    for (what, got, minimum) in [
        (
            "imports posted",
            route(
                &f.snyk,
                "POST /v1/org/{orgId}/integrations/{integrationId}/import",
            ),
            d.renamed + d.moved,
        ),
        (
            "projects deactivated",
            route(
                &f.snyk,
                "POST /v1/org/{orgId}/project/{projectId}/deactivate",
            ),
            d.renamed + d.moved + d.deleted,
        ),
        (
            "branches updated",
            route(&f.snyk, "PUT /v1/org/{orgId}/project/{projectId}"),
            d.branches,
        ),
        (
            "lookups by uuid",
            route(&f.bitbucket, "GET /repositories/{workspace}/{repo_slug}"),
            d.deleted,
        ),
        (
            // With metadata rules: each project of a repository moved to another project,
            // and each project an import made (one manifest a repository here).
            "tags written",
            route(&f.snyk, "PATCH /rest/orgs/{org_id}/projects/{project_id}"),
            if d.projects_moved > 0 {
                d.projects_moved + d.renamed + d.moved
            } else {
                0
            },
        ),
    ] {
        println!("  {what:<22}{got:>6} (minimum {minimum})");
    }
}

/// The fewest Bitbucket requests a listing can take: one page of workspaces per 100, then
/// ceil(repositories / 100) pages per workspace.
fn bitbucket_minimum(workspaces: usize, repos: usize) -> u64 {
    let w = workspaces as u64;
    w.div_ceil(PAGE) + w * (repos as u64).div_ceil(PAGE)
}

/// Requests counted against each budget.
struct Metered {
    bitbucket: u64,
    v1: u64,
    rest: u64,
}

fn metered(f: &Figures) -> Metered {
    let sum = |stats: &Stats, prefix: &str| -> u64 {
        stats
            .per_route
            .iter()
            .filter(|(route, _)| route.contains(prefix))
            .map(|(_, n)| n)
            .sum()
    };
    Metered {
        bitbucket: sum(&f.bitbucket, " /repositories/"),
        v1: sum(&f.snyk, " /v1/"),
        rest: sum(&f.snyk, " /rest/"),
    }
}

/// The shortest time the rate limits allow for `n` requests on a budget of `per` a `window`:
/// the n-th request cannot start before floor((n - 1) / per) windows have passed.
fn rate_bound(n: u64, per: u64, window: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    window * u32::try_from((n - 1) / per).unwrap_or(u32::MAX)
}

/// The shortest time `concurrency` imports in flight allow. Each job holds its slot for its
/// duration and one request's latency at least: the post that starts the next job can only
/// leave once a poll has seen this one end, and it takes the latency to reach Snyk (the
/// latency is the service's and the network's, not the tool's). So `ceil(n / c) × (d + l)`
/// when every job takes `d`, else the list-scheduling lower bound
/// `max(sum(d + l) / c, max(d) + l)`. Neither a per-org cap nor any polling schedule is
/// counted: those are the tool's choices.
fn in_flight_bound(f: &Figures, o: &Options) -> Duration {
    let Some(&longest) = f.durations.iter().max() else {
        return Duration::ZERO;
    };
    let latency = Duration::from_millis(o.latency_ms);
    let c = u32::try_from(o.concurrency).unwrap_or(u32::MAX);
    let n = u32::try_from(f.durations.len()).unwrap_or(u32::MAX);
    if f.durations.iter().all(|d| *d == longest) {
        let waves = f.durations.len().div_ceil(o.concurrency);
        return (longest + latency) * u32::try_from(waves).unwrap_or(u32::MAX);
    }
    let sum: Duration = f.durations.iter().sum::<Duration>() + latency * n;
    (sum / c).max(longest + latency)
}

/// The wall time of a tool that saw every job end the instant it ended: the same jobs, in
/// the order they were posted, on `concurrency` slots, each slot taking the next job as soon
/// as its job ends, one request latency a job. No tool can do better: the sandbox draws the
/// times in the order jobs are posted, and for a fixed order of times this greedy start is
/// the earliest for every job (after each post, the sorted times at which slots free up are
/// each no later than any other schedule's). The list-scheduling `bound` can sit below it by
/// a job's length when a long job is drawn late.
fn seen_instantly(f: &Figures, o: &Options) -> Duration {
    let latency = Duration::from_millis(o.latency_ms);
    let mut slots = vec![Duration::ZERO; o.concurrency.max(1)];
    for d in &f.durations {
        if let Some(first_free) = slots.iter_mut().min() {
            *first_free += *d + latency;
        }
    }
    slots.into_iter().max().unwrap_or_default()
}

/// The v1 requests the sync could not do without: those it made, with its polls counted as
/// one a job (every job must be seen ended once; more polls are the tool's schedule, not
/// the service's limit).
fn v1_minimum(f: &Figures) -> u64 {
    metered(f).v1.saturating_sub(f.polls) + f.durations.len() as u64
}

/// When Snyk's v1 budget binds, its last window cannot be spent faster than the imports in
/// flight allow: the whole windows, then the share of the imports left for the last window at
/// the in-flight pace (both limits are the services', neither is the tool's).
fn v1_then_in_flight(f: &Figures, o: &Options) -> Duration {
    let n = v1_minimum(f);
    if n <= SNYK_V1_PER_MINUTE {
        return Duration::ZERO;
    }
    let windows = rate_bound(n, SNYK_V1_PER_MINUTE, Duration::from_secs(60));
    let last = n - (n - 1) / SNYK_V1_PER_MINUTE * SNYK_V1_PER_MINUTE;
    windows + in_flight_bound(f, o).mul_f64(last as f64 / n as f64)
}

fn bound(f: &Figures, o: &Options) -> (Duration, &'static str) {
    let m = metered(f);
    [
        (
            rate_bound(m.bitbucket, BITBUCKET_PER_HOUR, Duration::from_secs(3600)),
            "Bitbucket rate",
        ),
        (
            rate_bound(v1_minimum(f), SNYK_V1_PER_MINUTE, Duration::from_secs(60)),
            "Snyk v1 rate",
        ),
        (
            v1_then_in_flight(f, o),
            "Snyk v1 rate, its last minute at the in-flight pace",
        ),
        (
            rate_bound(m.rest, SNYK_REST_PER_MINUTE, Duration::from_secs(60)),
            "Snyk REST rate",
        ),
        (in_flight_bound(f, o), "imports in flight"),
    ]
    .into_iter()
    .max_by_key(|(d, _)| *d)
    .filter(|(d, _)| !d.is_zero())
    .unwrap_or((Duration::ZERO, "nothing binds"))
}

fn print_run(name: &str, f: &Figures, minimum: u64, o: &Options) {
    let m = metered(f);
    println!("\n## {name} sync");
    println!(
        "Bitbucket: {} requests (minimum {minimum}), {} of them on the hourly budget; 429s: {}",
        f.bitbucket.total,
        m.bitbucket,
        f.bitbucket.status(429)
    );
    print_routes(&f.bitbucket.per_route);
    println!(
        "Snyk: {} requests, v1 {} + REST {}; 429s: {}",
        f.snyk.total,
        m.v1,
        m.rest,
        f.snyk.status(429)
    );
    print_routes(&f.snyk.per_route);
    let (limit, what) = bound(f, o);
    println!(
        "orgs created {}, imports accepted {}, failed {}, polls {} ({} per job)",
        f.orgs_created,
        f.imports,
        f.failed,
        f.polls,
        per_job(f)
    );
    println!(
        "wall (virtual) {}; bound {} set by {what}; wall / bound {}; imports/s {}",
        clock(f.wall),
        clock(limit),
        ratio(f.wall, limit),
        imports_per_second(f)
    );
    let instant = seen_instantly(f, o).max(limit);
    println!(
        "a tool that saw each job end the instant it did, posting in the same order: {}; wall / that {}",
        clock(instant),
        ratio(f.wall, instant)
    );
    if let Some(line) = lag_line(f) {
        println!("{line}");
    }
    println!(
        "CPU (real) {:.2} s; peak resident memory of the process (sandboxes included) {}",
        f.cpu.as_secs_f64(),
        mib(f.peak_rss_kib)
    );
    println!(
        "heap: the tool's peak {} (above the {} it held before); the sandboxes hold {}",
        mb(f.heap_peak.saturating_sub(f.heap_before)),
        mb(f.heap_before),
        mb(f.sandbox_heap)
    );
}

/// How long slots stayed held after their job's end, until a poll saw it: on average, as a
/// share of the mean job, and the part of it spent by jobs seen ended at their first poll.
fn lag_line(f: &Figures) -> Option<String> {
    let lag = &f.seen_lag;
    let n = u32::try_from(lag.jobs).ok().filter(|n| *n > 0)?;
    let mean_job = f.durations.iter().sum::<Duration>() / u32::try_from(f.durations.len()).ok()?;
    let mean_lag = lag.lag / n;
    Some(format!(
        "a slot held after its job's end until a poll saw it: {:.3} s a job, {:.1} % of the mean job ({:.2} s); {:.1} % of the jobs were seen at their first poll, with {:.0} % of that time",
        mean_lag.as_secs_f64(),
        100.0 * mean_lag.as_secs_f64() / mean_job.as_secs_f64().max(f64::MIN_POSITIVE),
        mean_job.as_secs_f64(),
        100.0 * lag.at_first_poll as f64 / f64::from(n),
        100.0 * lag.lag_at_first_poll.as_secs_f64() / lag.lag.as_secs_f64().max(f64::MIN_POSITIVE),
    ))
}

fn print_routes(routes: &BTreeMap<String, u64>) {
    for (route, n) in routes {
        println!("  {n:>8}  {route}");
    }
}

fn summary_row(estate: &str, name: &str, f: &Figures, minimum: u64, o: &Options) -> String {
    let m = metered(f);
    let (limit, what) = bound(f, o);
    format!(
        "summary|| {estate} | {name} | {} ({minimum}) | {} / {} | {} | {} ({what}) | {} | {} | {} | {} | {} | {} | {:.1} s |",
        f.bitbucket.total,
        m.v1,
        m.rest,
        clock(f.wall),
        clock(limit),
        ratio(f.wall, limit),
        ratio(f.wall, seen_instantly(f, o).max(limit)),
        imports_per_second(f),
        per_job(f),
        mb(f.heap_peak.saturating_sub(f.heap_before)),
        mib(f.peak_rss_kib),
        f.cpu.as_secs_f64()
    )
}

fn per_job(f: &Figures) -> String {
    if f.imports == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}", f.polls as f64 / f.imports as f64)
    }
}

fn imports_per_second(f: &Figures) -> String {
    if f.imports == 0 || f.wall.is_zero() {
        "-".to_owned()
    } else {
        format!("{:.2}", f.imports as f64 / f.wall.as_secs_f64())
    }
}

fn ratio(wall: Duration, limit: Duration) -> String {
    if limit.is_zero() {
        "-".to_owned()
    } else {
        format!("{:.2}", wall.as_secs_f64() / limit.as_secs_f64())
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// A field of `/proc/self/status` in KiB (0 where there is no procfs).
fn memory(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current resident size (Linux; ignored elsewhere).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
