//! The command line: options, `--store`, and the commands, all checked by
//! clap while parsing, before any store is opened.

use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};
use release_tracking::names::Escaped;
use release_tracking::store::MAX_PAGE_SIZE;
use release_tracking::tracker::DEFAULT_WRITE_CONCURRENCY;
use release_tracking::{
    Cursor, DeployOptions, ImageUri, Label, Manifest, RecordShape, ReleaseRef, ServiceId,
    ShapePolicy,
};

/// Track releases of container images and deploy them to environments.
#[derive(Debug, Parser)]
#[command(name = "release_tool", version)]
pub struct Cli {
    /// Where images and releases are kept: `aws` (SSM Parameter Store and
    /// DynamoDB) or `sqlite:PATH` (one local file), as this build allows.
    #[arg(long, env = "RELEASE_TRACKING_STORE", default_value = "aws")]
    pub store: StoreArg,
    /// Print one JSON document on stdout (fields in the tool's documentation).
    #[arg(long, global = true)]
    pub json: bool,
    /// The project manifest.
    #[arg(long, env = "RELEASE_TRACKING_MANIFEST", default_value = Manifest::FILE_NAME)]
    pub manifest: PathBuf,
    /// The project (default: the only project of the manifest).
    #[arg(long, env = "RELEASE_TRACKING_PROJECT")]
    pub project: Option<String>,
    /// Send every AWS request here (an emulator).
    #[cfg(feature = "aws")]
    #[arg(long, env = "RELEASE_TRACKING_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region (default: the manifest's, then the SDK's chain).
    #[cfg(feature = "aws")]
    #[arg(long)]
    pub region: Option<String>,
    /// Do not assume the manifest's `role_arn`.
    #[cfg(feature = "aws")]
    #[arg(long)]
    pub no_assume_role: bool,
    /// Record this requester instead of asking the store who the caller is
    /// (on AWS: STS; on SQLite: the local user).
    #[arg(long)]
    pub requester: Option<String>,
    /// The shape of new records: `follow` the table (default), or always
    /// `weco-deploy-4` (strings), `weco-deploy-2` (environment maps) or
    /// `release-tooling` (requester and environment maps).
    #[arg(long, value_enum, default_value_t = ShapeArg::Follow)]
    pub record_shape: ShapeArg,
    /// How long a deploy's lease on its environment lasts between renewals,
    /// in seconds: a deploy that dies holds the environment at most this
    /// long.
    #[arg(long, env = "RELEASE_TRACKING_LEASE_TTL", default_value_t = 600,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=86_400))]
    pub lease_ttl: u64,
    /// How many parameters a deploy writes at once (1 to 100; 1 writes them
    /// one after another).
    #[arg(long, env = "RELEASE_TRACKING_WRITE_CONCURRENCY",
          default_value_t = DEFAULT_WRITE_CONCURRENCY,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100))]
    pub write_concurrency: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--store`: which backend holds the images and releases.
///
/// A new backend adds a variant here, its syntax to `StoreArg::from_str`
/// and its set-up to `stores::open`; nothing else in the tool changes. A
/// backend this build lacks is a usage error naming the crate feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreArg {
    /// `aws`: SSM Parameter Store for images, DynamoDB for releases (crate
    /// feature `aws`).
    #[cfg(feature = "aws")]
    Aws,
    /// `sqlite:PATH`: images and releases in one SQLite file, no AWS
    /// (crate feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

/// The stores `--store` can name in this build, for messages.
const STORES: &str = if cfg!(all(feature = "aws", feature = "sqlite")) {
    "`aws` or `sqlite:PATH`"
} else if cfg!(feature = "aws") {
    "`aws`"
} else {
    "`sqlite:PATH`"
};

impl FromStr for StoreArg {
    type Err = String;

    fn from_str(text: &str) -> Result<StoreArg, String> {
        match text {
            #[cfg(feature = "aws")]
            "aws" => Ok(StoreArg::Aws),
            #[cfg(not(feature = "aws"))]
            "aws" => Err(missing("aws")),
            #[cfg(feature = "sqlite")]
            _ if text.starts_with("sqlite:") => match &text["sqlite:".len()..] {
                "" => Err("`sqlite:` needs the file's path: `sqlite:releases.db`".to_owned()),
                path => Ok(StoreArg::Sqlite(PathBuf::from(path))),
            },
            #[cfg(not(feature = "sqlite"))]
            _ if text.starts_with("sqlite:") => Err(missing("sqlite")),
            _ => Err(format!(
                "unknown store `{}`: expected {STORES}",
                Escaped::whole(text)
            )),
        }
    }
}

/// A store this build lacks: which feature adds it.
#[cfg(not(all(feature = "aws", feature = "sqlite")))]
fn missing(feature: &str) -> String {
    format!(
        "this build of release_tool has no `{feature}` store (the crate feature `{feature}`): \
         build it with `--features {feature}`; stores here: {STORES}"
    )
}

/// `--record-shape`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShapeArg {
    /// Never introduce a shape the table's readers have not seen.
    Follow,
    /// Requester and environment as strings (weco-deploy 4.0+).
    WecoDeploy4,
    /// Requester string, environment map (weco-deploy 2.0 to 3.3).
    WecoDeploy2,
    /// Requester and environment maps (release_tooling, weco-deploy 1.x).
    ReleaseTooling,
}

impl From<ShapeArg> for ShapePolicy {
    fn from(arg: ShapeArg) -> ShapePolicy {
        match arg {
            ShapeArg::Follow => ShapePolicy::Follow,
            ShapeArg::WecoDeploy4 => ShapePolicy::Always(RecordShape::WecoDeploy4),
            ShapeArg::WecoDeploy2 => ShapePolicy::Always(RecordShape::WecoDeploy2),
            ShapeArg::ReleaseTooling => ShapePolicy::Always(RecordShape::ReleaseTooling),
        }
    }
}

/// `--limit`: 1 to the largest page a store returns.
fn limit_parser() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=MAX_PAGE_SIZE as u64)
}

/// `--bypass-gates --reason TEXT`: deploy past unmet promotion gates.
#[derive(Debug, Clone, clap::Args)]
pub struct Bypass {
    /// Deploy even if the environment's promotion gates are not met; the
    /// deployment is recorded as a bypass with `--reason` and who did it.
    #[arg(long, requires = "reason")]
    pub bypass_gates: bool,
    /// Why the gates are bypassed (with `--bypass-gates`).
    #[arg(long, requires = "bypass_gates", value_name = "TEXT")]
    pub reason: Option<String>,
}

impl Bypass {
    /// The deployment's options: `description`, and the bypass if asked.
    pub fn options(&self, description: &str) -> DeployOptions {
        let options = DeployOptions::new(description);
        match (&self.reason, self.bypass_gates) {
            (Some(reason), true) => options.bypass_gates(reason.clone()),
            _ => options,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the project's release table (if missing) and wait until it is
    /// ready.
    Provision,
    /// Write an image for a service at a label (what CI does).
    Publish {
        /// The service.
        service: ServiceId,
        /// The image URI.
        image: ImageUri,
        /// The label.
        #[arg(long, default_value = "latest")]
        label: Label,
    },
    /// Freeze the images at a label into a new release.
    Prepare {
        /// The label to freeze.
        #[arg(long, default_value = "latest")]
        from: Label,
        /// Take a service's image from another label: `SERVICE=label:LABEL`,
        /// or pin it: `SERVICE=URI`.
        #[arg(long = "image", value_name = "SERVICE=SOURCE")]
        images: Vec<String>,
        /// Why.
        #[arg(long)]
        description: Option<String>,
    },
    /// A new release from a base release with chosen services from a label.
    Update {
        /// The base release (`latest` or an id).
        base: ReleaseRef,
        /// The services to take from the label.
        #[arg(required = true)]
        services: Vec<ServiceId>,
        /// The label to take them from.
        #[arg(long, default_value = "latest")]
        from: Label,
        /// Why.
        #[arg(long)]
        description: Option<String>,
    },
    /// Write a release's images to an environment and record the deployment
    /// (the plan, with the environment's promotion gates, first).
    Deploy {
        /// The release (`latest` or an id).
        release: ReleaseRef,
        /// The environment.
        environment: String,
        /// Why.
        #[arg(long, default_value = "")]
        description: String,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bypass: Bypass,
    },
    /// Prepare a release from a label and deploy it.
    ReleaseDeploy {
        /// The environment.
        environment: String,
        /// The label to freeze.
        #[arg(long, default_value = "latest")]
        from: Label,
        /// Why.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        bypass: Bypass,
    },
    /// Roll an environment back to the release current there before the
    /// present one (or `--to`), recorded as a rollback.
    Rollback {
        /// The environment.
        environment: String,
        /// The release to roll back to (one that ran there before).
        #[arg(long)]
        to: Option<ReleaseRef>,
        /// Why.
        #[arg(long, default_value = "")]
        description: String,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show one release.
    ShowRelease {
        /// The release (`latest` or an id).
        release: ReleaseRef,
    },
    /// List releases, newest first.
    Releases {
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 10, value_parser = limit_parser())]
        limit: usize,
        /// Continue after this cursor (printed by the previous page).
        #[arg(long)]
        after: Option<Cursor>,
    },
    /// How two releases differ.
    Diff {
        /// The older release.
        from: ReleaseRef,
        /// The newer release.
        to: ReleaseRef,
    },
    /// The release running in an environment, and whether its label drifted.
    Current {
        /// The environment.
        environment: String,
    },
    /// The newest deployments, newest first, with their kind and the
    /// release each replaced.
    History {
        /// Only this environment (as `--environment`).
        #[arg(value_name = "ENVIRONMENT", conflicts_with = "environment")]
        only: Option<String>,
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 10, value_parser = limit_parser())]
        limit: usize,
    },
    /// Write every release (with its deployments) and the images at
    /// `latest` and each environment as JSON lines, for `import`.
    Export {
        /// Write to this file (replaced once the export is complete)
        /// instead of stdout; needed with `--json`, whose document takes
        /// stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The environment's lease: who is deploying to it, what, since when,
    /// until when.
    Lease {
        /// What to do with it.
        #[command(subcommand)]
        action: LeaseCommand,
    },
    /// Remove an environment's lease, whoever holds it (a deploy that died
    /// holds it until it expires). Recorded with who and why.
    Unlock {
        /// The environment.
        environment: String,
        /// Required: removing another's lease is never a default.
        #[arg(long, required = true)]
        force: bool,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Stop every deploy and rollback to an environment until `unfreeze`.
    Freeze {
        /// The environment.
        environment: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Lift an environment's freeze.
    Unfreeze {
        /// The environment.
        environment: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Stop a release from being deployed anywhere it is not already
    /// current.
    Block {
        /// The release (`latest` or an id).
        release: ReleaseRef,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Lift a release's block.
    Unblock {
        /// The release (`latest` or an id).
        release: ReleaseRef,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// The trail of control actions (unlock, freeze, unfreeze, block,
    /// unblock), newest first.
    Controls {
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 10, value_parser = limit_parser())]
        limit: usize,
    },
    /// Copy an export into this store. What is missing is written, what is
    /// there already is skipped; if anything differs, nothing is written.
    Import {
        /// The export (default, or `-`: stdin).
        input: Option<PathBuf>,
    },
}

/// `lease …`.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Who holds the environment's lease, if anyone.
    Status {
        /// The environment.
        environment: String,
    },
}

impl Command {
    /// The command's name as typed, for the JSON document.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Provision => "provision",
            Command::Publish { .. } => "publish",
            Command::Prepare { .. } => "prepare",
            Command::Update { .. } => "update",
            Command::Deploy { .. } => "deploy",
            Command::ReleaseDeploy { .. } => "release-deploy",
            Command::Rollback { .. } => "rollback",
            Command::ShowRelease { .. } => "show-release",
            Command::Releases { .. } => "releases",
            Command::Diff { .. } => "diff",
            Command::Current { .. } => "current",
            Command::History { .. } => "history",
            Command::Export { .. } => "export",
            Command::Import { .. } => "import",
            Command::Lease {
                action: LeaseCommand::Status { .. },
            } => "lease status",
            Command::Unlock { .. } => "unlock",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze { .. } => "unfreeze",
            Command::Block { .. } => "block",
            Command::Unblock { .. } => "unblock",
            Command::Controls { .. } => "controls",
        }
    }
}

impl Cli {
    /// Parses the command line, with the checks clap cannot express; exits
    /// with a usage error (status 2) as clap does.
    pub fn parse_checked() -> Cli {
        let cli = Cli::parse();
        if cli.json && matches!(cli.command, Command::Export { output: None }) {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "`export --json` needs `--output FILE`: the JSON document takes stdout",
                )
                .exit();
        }
        cli
    }
}
