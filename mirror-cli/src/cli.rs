//! The command line.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// `serve`'s connections open at once, by default (well below the usual 1,024 file
/// descriptors).
pub const MAX_CONNECTIONS: u32 = 512;

/// The exit codes, as `--help` shows them (a macro, so that the long help can append them to
/// the environment with `concat!`).
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  done
  1  finished with failures (see the report)
  2  usage or configuration error; nothing was changed
  3  credentials rejected; nothing was changed
  4  interrupted; run the same command again to resume"
    };
}

/// The exit codes, shown in `-h`.
pub const EXIT_CODES: &str = exit_codes!();

/// Mirror Bitbucket Cloud workspaces and repositories into Snyk organizations and projects.
#[derive(Debug, Parser)]
#[command(
    name = "bb-snyk-mirror",
    version,
    about,
    after_help = EXIT_CODES,
    after_long_help = concat!(
        "Environment:\n",
        "  BITBUCKET_CLOUD_EMAIL, BITBUCKET_CLOUD_API_TOKEN  an Atlassian API token and its e-mail\n",
        "  BITBUCKET_CLOUD_API_TOKEN alone                    a workspace, project or repository access token\n",
        "  BITBUCKET_CLOUD_ACCESS_TOKENS                      several access tokens, comma-separated\n",
        "  BITBUCKET_CLOUD_OAUTH_CLIENT_ID, _SECRET           an OAuth consumer (client credentials)\n",
        "  BITBUCKET_CLOUD_WORKSPACES                         only these workspaces (needed with access tokens)\n",
        "  BITBUCKET_CLOUD_API_URL                            the Bitbucket API (default https://api.bitbucket.org/2.0)\n",
        "  SNYK_TOKEN                                         a Snyk API or service-account token\n",
        "  SNYK_OAUTH_CLIENT_ID, SNYK_OAUTH_CLIENT_SECRET     a Snyk OAuth service account\n",
        "  SNYK_GROUP_ID                                      the Snyk group\n",
        "  SNYK_REGION or SNYK_API                            the Snyk region (SNYK-US-01, SNYK-EU-01, ...) or address\n",
        "  SNYK_BITBUCKET_EMAIL, SNYK_BITBUCKET_API_TOKEN     what Snyk reads Bitbucket with, to add integrations\n",
        "  SNYK_TEMPLATE_ORG_ID                               an org whose integrations new orgs copy\n",
        "  SNYK_LOG_PATH                                      the state directory (default ./.bb-snyk-mirror)\n",
        "  BITBUCKET_WEBHOOK_SECRET                           the webhooks' secret (serve, hooks install)\n",
        "  BITBUCKET_WEBHOOK_SECRET_PREVIOUS                  the secret before it, still accepted by serve\n",
        "  CONCURRENT_IMPORTS                                 imports in flight (default 15, at most 50)\n",
        "  BB_SNYK_MIRROR_CONNECT_TIMEOUT, _REQUEST_TIMEOUT   time to connect (10s), to get a whole answer (30s)\n",
        "  NO_COLOR                                           no colour on a terminal\n",
        "\n",
        exit_codes!()
    )
)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Human,
    /// One JSON document.
    Json,
}

/// Options for every command. Flags win over environment variables, which win over the
/// configuration file.
#[derive(Debug, Args)]
#[command(next_help_heading = "Shared options")]
pub struct Global {
    /// The configuration file (default ./bb-snyk-mirror.toml when it exists).
    #[arg(
        long,
        global = true,
        env = "BB_SNYK_MIRROR_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Where the journal and logs live [env: SNYK_LOG_PATH] [default: ./.bb-snyk-mirror].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How results are printed on stdout.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub output: OutputFormat,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr (-v: requests, -vv: everything); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// The Snyk group [env: SNYK_GROUP_ID].
    #[arg(
        long = "group-id",
        visible_alias = "groupId",
        global = true,
        value_name = "ID"
    )]
    pub group_id: Option<String>,
    /// Only these workspaces, comma-separated [env: BITBUCKET_CLOUD_WORKSPACES].
    #[arg(long, global = true, value_delimiter = ',', value_name = "SLUGS")]
    pub workspaces: Option<Vec<String>>,
    /// The Snyk region, such as SNYK-EU-01 [env: SNYK_REGION].
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The Snyk API address in any form (…/v1, `https://app.eu.snyk.io/api`) [env: SNYK_API].
    #[arg(long = "snyk-api", global = true, value_name = "URL")]
    pub snyk_api: Option<String>,
    /// The Bitbucket API base URL [env: BITBUCKET_CLOUD_API_URL].
    #[arg(long = "bitbucket-api-url", global = true, value_name = "URL")]
    pub bitbucket_api_url: Option<String>,
    /// Imports in flight at once, 1 to 50 [env: CONCURRENT_IMPORTS].
    #[arg(long, global = true)]
    pub concurrency: Option<usize>,
    /// Turn PR checks and fix PRs off in the orgs receiving imports for the run, and put them
    /// back after (`apply.quiet_integrations`).
    #[arg(long = "quiet-integrations", global = true)]
    pub quiet_integrations: bool,
    /// Turn off the notifications of the orgs the run creates
    /// (`apply.notifications_off_for_new_orgs`).
    #[arg(long = "notifications-off", global = true)]
    pub notifications_off: bool,
    /// What retiring a target of a repository gone does: deactivate (reversible), delete, or
    /// report (`drift.retire`).
    #[arg(long, global = true, value_name = "MODE", value_parser = ["deactivate", "delete", "report"])]
    pub retire: Option<String>,
    /// Retire more than max(10, 10%) of an org's active targets in one run
    /// (`drift.allow_mass_retire`).
    #[arg(long = "allow-mass-retire", global = true)]
    pub allow_mass_retire: bool,
    /// Undo people's changes in Snyk this once: import again the targets someone removed,
    /// reactivate the projects someone deactivated (`snyk.people_changes = "restore"` always).
    #[arg(long, global = true)]
    pub restore: bool,
    /// Retire the second target of a repository, keeping the one this mirror made
    /// (`drift.dedupe`).
    #[arg(long, global = true)]
    pub dedupe: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read both sides and show what a sync would do.
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror plan\n  bb-snyk-mirror plan --summary\n  bb-snyk-mirror plan --out plan.json && bb-snyk-mirror apply --plan plan.json\n  bb-snyk-mirror plan --workspaces acme,acme-labs --output json"
    )]
    Plan {
        /// Write the plan as JSON to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only the summary, not a line per action (also with --quiet).
        #[arg(long)]
        summary: bool,
        /// Replace the --out file when it holds an earlier plan (a file that is not a plan is
        /// never replaced).
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Carry out a plan (a fresh one unless --plan is given); resumable.
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror apply                      # plans, shows the summary, asks on a terminal\n  bb-snyk-mirror apply --yes                # no question\n  bb-snyk-mirror apply --plan plan.json     # a plan saved by `plan --out`\n  bb-snyk-mirror apply --dry-run            # plan only"
    )]
    Apply {
        /// A plan written by `plan --out` (refused if made for another group, or more than
        /// 24 hours ago).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Do not ask before applying a fresh plan on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Plan only: show what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Plan and apply in one, never asking (non-interactive by design: for schedules and CI).
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror sync\n  bb-snyk-mirror sync --watch --interval 1h\n  bb-snyk-mirror sync --dry-run\n  bb-snyk-mirror sync --retire report --quiet"
    )]
    Sync {
        /// Repeat every --interval until Ctrl-C (scheduled mirroring).
        #[arg(long)]
        watch: bool,
        /// Time between runs with --watch, such as 30m, 1h, 6h.
        #[arg(long, default_value = "1h")]
        interval: String,
        /// Plan only: show what would be done, change nothing.
        #[arg(long, conflicts_with = "watch")]
        dry_run: bool,
    },
    /// Mirror in real time: receive Bitbucket's repository webhooks and reconcile each
    /// repository they name within a second, with a full reconcile at start and every
    /// --reconcile-interval.
    #[command(
        after_help = "Needs BITBUCKET_WEBHOOK_SECRET (the secret `hooks install` puts into the webhooks).\n\nRoutes: POST /webhooks/bitbucket, GET /healthz, GET /readyz, GET /metrics.\n\nExamples:\n  bb-snyk-mirror serve                                  # 127.0.0.1:8080, behind a TLS proxy\n  bb-snyk-mirror serve --listen 0.0.0.0:8080 --reconcile-interval 12h\n  bb-snyk-mirror hooks install --url https://mirror.example.com/webhooks/bitbucket"
    )]
    Serve {
        /// The address to listen on; anything but loopback must be asked for.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// Time between full reconciles (the safety net), such as 1h, 6h, 1d.
        #[arg(long, default_value = "6h", value_name = "DURATION")]
        reconcile_interval: String,
        /// On SIGTERM or Ctrl-C, how long to let the work in flight finish before exiting
        /// (what is left stays queued for the next start).
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        drain_timeout: String,
        /// Connections open at once at most; a connection beyond them is closed at once (a
        /// flood of idle sockets cannot use up the process's file descriptors).
        #[arg(long, default_value_t = MAX_CONNECTIONS, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_536))]
        max_connections: u32,
        /// A repository whose deliveries keep failing is tried again with backoff (2 s,
        /// doubling, at most 5 min); after this many failures of its own its deliveries are
        /// set aside for the next full reconcile (`bb-snyk-mirror deliveries` lists them).
        #[arg(long, default_value_t = mirror_core::events::DEFAULT_SET_ASIDE_AFTER, value_name = "TRIES", value_parser = clap::value_parser!(u32).range(1..=1_000))]
        set_aside_after: u32,
    },
    /// The deliveries `serve` has queued, and those it set aside after they kept failing
    /// (until a full reconcile covers them). Reads the state directory only.
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror deliveries\n  bb-snyk-mirror deliveries --output json"
    )]
    Deliveries,
    /// Install, list or remove the workspace webhooks that feed `serve`.
    Hooks {
        /// What to do.
        #[command(subcommand)]
        action: HooksAction,
    },
    /// Read both sides and prove the mirror: every difference between Snyk and Bitbucket with
    /// its reason; changes nothing. Exit 0 when every difference is explained, 1 when any is
    /// not.
    #[command(
        after_help = "Explained: people's changes the configuration respects, targets never imported by this mirror, uncertain evidence, conflicts with their reason. Not explained: a repository missing, a stale active target, projects on another branch, duplicates.\n\nExamples:\n  bb-snyk-mirror verify\n  bb-snyk-mirror verify --output json"
    )]
    Verify,
    /// What each run of this state directory did, with its id (for `undo`).
    #[command(after_help = "Examples:\n  bb-snyk-mirror runs\n  bb-snyk-mirror runs --output json")]
    Runs,
    /// Reactivate the projects a run deactivated (a deleted target cannot be brought back;
    /// it is named).
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror runs                                  # the run ids\n  bb-snyk-mirror undo 20261203-054012-3fa9 --dry-run   # what it would do\n  bb-snyk-mirror undo 20261203-054012-3fa9 --yes"
    )]
    Undo {
        /// The run, as `bb-snyk-mirror runs` lists it.
        #[arg(value_name = "RUN_ID")]
        run: String,
        /// Do not ask before reactivating on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Show what would be reactivated, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check both sides' credentials, scopes, region and group access.
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror doctor\n  bb-snyk-mirror doctor --output json"
    )]
    Doctor,
    /// Mirror a sample estate between two built-in sandboxes: no account, no network.
    #[command(
        after_help = "Examples:\n  bb-snyk-mirror demo\n  bb-snyk-mirror demo --estate 10x100\n  bb-snyk-mirror demo --serve          # then, in another terminal, the commands it prints"
    )]
    Demo {
        /// A generated estate of WORKSPACES x REPOSITORIES (such as 10x100) instead of the
        /// sample.
        #[arg(long, value_name = "WxR", value_parser = parse_estate)]
        estate: Option<(usize, usize)>,
        /// Keep the sandboxes up, mirroring nothing, and print the environment that points the
        /// tool at them, to practise plan, apply --plan, doctor and integrations in another
        /// terminal; Ctrl-C stops them.
        #[arg(long)]
        serve: bool,
        /// Change the practice sandbox of `demo --serve` (in the terminal with its
        /// environment).
        #[command(subcommand)]
        action: Option<DemoAction>,
    },
    /// The Snyk side of the Bitbucket connection: list and rotate org integrations.
    Integrations {
        /// What to do.
        #[command(subcommand)]
        action: IntegrationsAction,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// snyk-api-import step 1: write the orgs data file from the Bitbucket workspaces.
    #[command(name = "orgs:data")]
    OrgsData(OrgsDataArgs),
    /// snyk-api-import step 2: create the orgs of an orgs data file (never a duplicate).
    #[command(name = "orgs:create")]
    OrgsCreate(OrgsCreateArgs),
    /// snyk-api-import step 3: write the import targets of the created orgs.
    #[command(name = "import:data")]
    ImportData(ImportDataArgs),
    /// snyk-api-import step 4: record the targets already in Snyk, so import skips them.
    #[command(name = "list:imported")]
    ListImported(ListImportedArgs),
    /// snyk-api-import step 5: import the targets of a targets file.
    Import(ImportArgs),
}

impl Command {
    /// The name as typed (`sync`, `orgs:create`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plan { .. } => "plan",
            Self::Apply { .. } => "apply",
            Self::Sync { .. } => "sync",
            Self::Doctor => "doctor",
            Self::Runs => "runs",
            Self::Verify => "verify",
            Self::Undo { .. } => "undo",
            Self::Serve { .. } => "serve",
            Self::Deliveries => "deliveries",
            Self::Hooks { .. } => "hooks",
            Self::Demo { .. } => "demo",
            Self::Integrations { .. } => "integrations",
            Self::Completions { .. } => "completions",
            Self::OrgsData(_) => "orgs:data",
            Self::OrgsCreate(_) => "orgs:create",
            Self::ImportData(_) => "import:data",
            Self::ListImported(_) => "list:imported",
            Self::Import(_) => "import",
        }
    }

    /// Whether the command keeps a state directory (and so a run log).
    pub fn keeps_state(&self) -> bool {
        STATEFUL.contains(&self.name())
    }
}

/// Reads `10x100`: workspaces × repositories, each at least 1 (at most 1,000 workspaces and
/// 10,000 repositories each: the sandboxes hold the estate in memory).
fn parse_estate(text: &str) -> Result<(usize, usize), String> {
    let usage = || format!("`{text}`: write WORKSPACESxREPOSITORIES, such as 10x100");
    let (w, r) = text.split_once(['x', 'X', '×']).ok_or_else(usage)?;
    let w: usize = w.trim().parse().map_err(|_| usage())?;
    let r: usize = r.trim().parse().map_err(|_| usage())?;
    if !(1..=1_000).contains(&w) || !(1..=10_000).contains(&r) {
        return Err(format!(
            "`{text}`: between 1 and 1000 workspaces of 1 to 10000 repositories"
        ));
    }
    Ok((w, r))
}

/// `demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Make a change in the practice Bitbucket of `demo --serve`, as Bitbucket would (with its
    /// webhook event): then `plan`, `sync`, or a running `serve` follows it.
    #[command(
        after_help = "Examples (after the exports `demo --serve` prints):\n  bb-snyk-mirror demo change rename acme-data/notebooks notebooks-v2\n  bb-snyk-mirror demo change transfer acme-data/notebooks acme-platform\n  bb-snyk-mirror demo change branch acme-mobile/ios-app trunk\n  bb-snyk-mirror demo change delete acme-data/pipelines\n  bb-snyk-mirror demo change create acme-mobile/wearables"
    )]
    Change {
        /// What changes.
        #[arg(value_enum)]
        change: ChangeKind,
        /// The repository, as workspace/slug.
        repository: String,
        /// The new slug (rename), the workspace to move into (transfer), or the new default
        /// branch (branch).
        to: Option<String>,
    },
}

/// A change `demo change` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChangeKind {
    /// A new repository on `main`.
    Create,
    /// A new slug (TO).
    Rename,
    /// Into another workspace (TO).
    Transfer,
    /// A new default branch (TO).
    Branch,
    /// Delete it.
    Delete,
}

/// `integrations …`.
#[derive(Debug, Subcommand)]
pub enum IntegrationsAction {
    /// Every org of the group with its Bitbucket integration, and whether it is missing.
    List,
    /// Put new Bitbucket credentials (SNYK_BITBUCKET_EMAIL and SNYK_BITBUCKET_API_TOKEN) into
    /// the bitbucket-cloud integration of every org, or of the orgs matching --orgs. Resumable:
    /// a rerun skips the orgs it already updated with the same credentials.
    UpdateCredentials {
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only orgs whose names match these glob patterns, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
        orgs: Option<Vec<String>>,
    },
}

/// `hooks …`: one workspace webhook per workspace in scope, found by its URL.
#[derive(Debug, Subcommand)]
pub enum HooksAction {
    /// Create the webhook of each workspace in scope, or bring it up to date (events, secret
    /// from BITBUCKET_WEBHOOK_SECRET); running it again leaves one webhook. Needs the
    /// workspace's Owner role.
    #[command(
        after_help = "Examples:\n  BITBUCKET_WEBHOOK_SECRET=… bb-snyk-mirror hooks install --url https://mirror.example.com/webhooks/bitbucket"
    )]
    Install {
        /// Where Bitbucket delivers: the public HTTPS address of `serve`'s /webhooks/bitbucket.
        #[arg(long, value_name = "URL")]
        url: String,
    },
    /// The webhooks of each workspace in scope.
    List,
    /// Remove the webhooks delivering to --url from each workspace in scope.
    Remove {
        /// The URL the webhooks deliver to.
        #[arg(long, value_name = "URL")]
        url: String,
    },
}

/// `orgs:data`.
#[derive(Debug, Args)]
pub struct OrgsDataArgs {
    /// The source; only bitbucket-cloud.
    #[arg(long, default_value = "bitbucket-cloud")]
    pub source: String,
    /// A template org for every new org.
    #[arg(long = "source-org-public-id", visible_alias = "sourceOrgPublicId")]
    pub source_org_public_id: Option<String>,
    /// Leave out workspaces without repositories (also --skipEmptyOrg).
    #[arg(
        long = "skip-empty-orgs",
        visible_aliases = ["skipEmptyOrgs", "skipEmptyOrg", "skip-empty-org"],
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub skip_empty_orgs: Option<bool>,
}

/// `orgs:create`.
#[derive(Debug, Args)]
pub struct OrgsCreateArgs {
    /// The orgs data file.
    #[arg(long)]
    pub file: PathBuf,
    /// Accepted for compatibility: duplicates are never created.
    #[arg(
        long = "no-duplicate-names",
        visible_alias = "noDuplicateNames",
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_duplicate_names: Option<bool>,
    /// Put orgs that already exist into the output with their integrations (default true).
    #[arg(
        long = "include-existing-orgs-in-output",
        visible_alias = "includeExistingOrgsInOutput",
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub include_existing: Option<bool>,
    /// Leave existing orgs out of the output.
    #[arg(
        long = "no-include-existing-orgs-in-output",
        visible_alias = "no-includeExistingOrgsInOutput"
    )]
    pub no_include_existing: bool,
}

/// `import:data`.
#[derive(Debug, Args)]
pub struct ImportDataArgs {
    /// The created orgs file.
    #[arg(long = "orgs-data", visible_alias = "orgsData")]
    pub orgs_data: PathBuf,
    /// The source; only bitbucket-cloud.
    #[arg(long, default_value = "bitbucket-cloud")]
    pub source: String,
    /// bitbucket-cloud or bitbucket-cloud-app.
    #[arg(
        long = "integration-type",
        visible_alias = "integrationType",
        default_value = "bitbucket-cloud"
    )]
    pub integration_type: String,
}

/// `list:imported`.
#[derive(Debug, Args)]
pub struct ListImportedArgs {
    /// bitbucket-cloud or bitbucket-cloud-app.
    #[arg(
        long = "integration-type",
        visible_alias = "integrationType",
        default_value = "bitbucket-cloud"
    )]
    pub integration_type: String,
    /// One org instead of the whole group.
    #[arg(long = "org-id", visible_alias = "orgId")]
    pub org_id: Option<String>,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The targets file [env: SNYK_IMPORT_PATH].
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// The commands that read the configuration file and Bitbucket: those that connect (all but
/// the last), and `hooks`, which reads Bitbucket alone.
const CONFIGURED: &[&str] = &[
    "plan",
    "verify",
    "apply",
    "sync",
    "serve",
    "doctor",
    "integrations",
    "orgs:data",
    "orgs:create",
    "import:data",
    "list:imported",
    "import",
    "undo",
    "hooks",
];
/// The commands that read Bitbucket and Snyk.
const CONNECTED: &[&str] = CONFIGURED.split_at(CONFIGURED.len() - 1).0;
/// The commands that plan (and so read the workspaces and the drift rules).
const PLANNING: &[&str] = &["plan", "verify", "apply", "sync", "serve"];
/// The commands that import.
const IMPORTING: &[&str] = &["apply", "sync", "serve", "import"];
/// The commands that keep a state directory or read the configuration file: those that
/// connect (demo keeps its own, in a temporary directory).
const STATEFUL: &[&str] = CONNECTED;
/// The commands that read the state directory: those that keep one, and `runs`.
const STATE_DIR: &[&str] = &[
    "plan",
    "verify",
    "apply",
    "sync",
    "serve",
    "doctor",
    "integrations",
    "orgs:data",
    "orgs:create",
    "import:data",
    "list:imported",
    "import",
    "undo",
    "runs",
    "deliveries",
];

/// The options declared once for every command, and the commands each applies to; options not
/// named here (`--output`, `--quiet`, `--verbose`) apply to all.
const APPLIES: &[(&str, &[&str])] = &[
    ("config", CONFIGURED),
    ("state_dir", STATE_DIR),
    ("group_id", CONNECTED),
    (
        "workspaces",
        &[
            "plan",
            "apply",
            "sync",
            "serve",
            "hooks",
            "doctor",
            "orgs:data",
            "import:data",
        ],
    ),
    ("region", CONNECTED),
    ("snyk_api", CONNECTED),
    ("bitbucket_api_url", CONFIGURED),
    ("concurrency", IMPORTING),
    ("quiet_integrations", IMPORTING),
    ("notifications_off", IMPORTING),
    ("retire", PLANNING),
    ("allow_mass_retire", PLANNING),
    ("restore", PLANNING),
    ("dedupe", PLANNING),
];

/// The command line as parsed, with each command's help listing only the shared options that
/// apply to it. clap copies a global option into every subcommand that does not already hold
/// one of that name; a hidden copy is put first into each command it does not apply to.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let shared: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        for (arg, applies) in APPLIES {
            if applies.contains(&name.as_str()) {
                continue;
            }
            if let Some(a) = shared.iter().find(|a| a.get_id() == *arg) {
                let hidden = a.clone().hide(true);
                cmd = cmd.mut_subcommand(&name, |s| s.arg(hidden));
            }
        }
    }
    cmd
}

/// The command line as the completion scripts describe it: each command (and each of its own
/// subcommands) offers exactly the shared options that apply to it, and no other.
pub fn completion_command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let shared: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    for a in &shared {
        cmd = cmd.mut_arg(a.get_id().clone(), |a| a.global(false));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let applying: Vec<clap::Arg> = shared
            .iter()
            .filter(|a| {
                APPLIES
                    .iter()
                    .find(|(id, _)| a.get_id() == *id)
                    .is_none_or(|(_, commands)| commands.contains(&name.as_str()))
            })
            .map(|a| a.clone().global(false))
            .collect();
        cmd = cmd.mut_subcommand(&name, |s| with_args(s, &applying));
    }
    cmd
}

/// `cmd` and each of its subcommands, with `args` added.
fn with_args(mut cmd: clap::Command, args: &[clap::Arg]) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |s| with_args(s, args));
    }
    args.iter().fold(cmd, |c, a| c.arg(a.clone()))
}

/// Parses the command line; a shared option given to a command it does not apply to is a usage
/// error (exit 2) naming it.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let mut cmd = command();
    let matches = cmd.get_matches_mut();
    let Some((name, mut sub)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    };
    // The command and each of its own subcommands (`integrations list`).
    let mut levels = vec![sub];
    while let Some((_, inner)) = sub.subcommand() {
        levels.push(inner);
        sub = inner;
    }
    for sub in levels {
        for (arg, applies) in APPLIES {
            let given = sub.try_contains_id(arg).unwrap_or(false)
                && sub.value_source(arg) == Some(clap::parser::ValueSource::CommandLine);
            if given && !applies.contains(&name) {
                let flag = format!("--{}", arg.replace('_', "-"));
                cmd.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("{flag} does not apply to `{name}`: leave it out (see `bb-snyk-mirror {name} --help`)"),
                )
                .exit();
            }
        }
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
