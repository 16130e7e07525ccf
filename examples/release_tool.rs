//! A command-line release tool on any of the crate's stores.
//!
//! ```text
//! cargo run --features aws --example release_tool -- --help
//! cargo run --features aws --example release_tool -- prepare --description "weekly"
//! cargo run --features aws --example release_tool -- deploy latest stage --description "weekly"
//! cargo run --features aws --example release_tool -- --json history --limit 5
//! ```
//!
//! It reads `.wellcome_project` (or `--manifest`), picks the only project (or
//! `--project`), then opens the store named by `--store`:
//!
//! - `aws` (the default): images in SSM Parameter Store, releases in the
//!   project's DynamoDB table. AWS is configured from the manifest (region,
//!   `role_arn`) and the default credential chain, and the caller's STS
//!   identity is recorded as the requester (with a role, the caller behind
//!   it). `--endpoint-url` points it at an emulator.
//!
//! AWS is set up only once the command line is parsed and only for a store
//! that needs it: `--help`, `--version` and usage errors make no AWS call.
//!
//! # Environment variables
//!
//! An option given on the command line wins over its variable.
//!
//! | Option           | Variable                        |
//! |------------------|---------------------------------|
//! | `--store`        | `RELEASE_TRACKING_STORE`        |
//! | `--manifest`     | `RELEASE_TRACKING_MANIFEST`     |
//! | `--project`      | `RELEASE_TRACKING_PROJECT`      |
//! | `--endpoint-url` | `RELEASE_TRACKING_ENDPOINT_URL` |
//! | `--write-concurrency` | `RELEASE_TRACKING_WRITE_CONCURRENCY` |
//!
//! The endpoint has a variable of this tool's own rather than the SDK's
//! `AWS_ENDPOINT_URL`, which the SDK reads anyway (for every AWS program in
//! the shell); `--endpoint-url` and its variable override it for this tool
//! alone.
//!
//! # Output
//!
//! Without `--json`, every command first names its store on stderr
//! (`store: aws (region eu-west-1, table wellcome-releases-storage)`), prints
//! its report for people on stdout and each warning (a record or parameter
//! it passed over) on stderr as `warning: …`.
//!
//! With `--json` (accepted before or after the command), stdout is one JSON
//! object and nothing else is printed unless the command fails. Its fields,
//! whose names are stable:
//!
//! - every command: `command` (its name, as typed), `store` (`kind`, and for
//!   `aws`: `region`, `table`, `endpoint_url` or `null`), `warnings` (an
//!   array of strings: what the command passed over, and the manifest's
//!   warnings; empty if none);
//! - `provision`: `state` (`created` or `already_existed`);
//! - `publish`: `service`, `label`, `image`;
//! - `prepare`, `update`, `show-release`: `release`;
//! - `deploy`: `plan`, and `deployed` (`null` for `--dry-run`);
//! - `release-deploy`: `release`, `deployed`;
//! - `releases`: `releases` (an array), `next` (the cursor for `--after`, or
//!   `null`);
//! - `diff`: `from`, `to` (release ids), `added` and `removed` (service →
//!   image), `changed` (array of `service`, `from`, `to`), `unchanged`
//!   (services);
//! - `current`: `environment`, `current` (`null` if nothing was deployed,
//!   else `release`, `deployment`, `drifted` (services), `label_matches`);
//! - `history`: `environment` (the filter, or `null`), `deployments` (each a
//!   deployment with its `release_id`).
//!
//! The objects inside: a release is `release_id`, `project_id`,
//! `date_created`, `requested_by`, `description`, `images` (service → image
//! URI, `null` for a service recorded without an image, or an array of
//! tags), `deployments`; a deployment is `date_created`, `environment`,
//! `requested_by`, `description`; a plan is `release_id`, `environment`,
//! `changes` (array of `service`, `current` (or `null`), `image`,
//! `resolved_from` (or `null`)), `unchanged`, `untouched` (services),
//! `conflicts` (strings); `deployed` is `release_id`, `deployment`,
//! `written`, `unchanged` (services). Times are UTC, `YYYY-MM-DDTHH:MM:SS`
//! with optional fraction, as in the records.
//!
//! A failing command prints nothing on stdout: its warnings so far, then
//! `error: …` and one `  caused by: …` line per cause, go to stderr, and the
//! exit status is 1 (2 for a usage error, reported by the parser).

use std::error::Error as StdError;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};
use release_tracking::aws::{AwsSettings, DynamoDbReleaseStore, SsmImageStore, TableState};
use release_tracking::names::Escaped;
use release_tracking::store::MAX_PAGE_SIZE;
use release_tracking::tracker::DEFAULT_WRITE_CONCURRENCY;
use release_tracking::{
    CurrentDeployment, Cursor, DeployPlan, Deployed, Deployment, ImageEntry, ImageSource,
    ImageStore, ImageUri, Label, Manifest, PageRequest, PrepareRequest, Project, RecordShape,
    Release, ReleaseRef, ReleaseStore, ReleaseTracker, Requester, RequesterSource, ServiceId,
    ShapePolicy, UpdateRequest,
};
use serde_json::{json, Map, Value};

/// Track releases of container images and deploy them to environments.
#[derive(Debug, Parser)]
#[command(name = "release_tool", version)]
pub struct Cli {
    /// Where images and releases are kept: `aws` (SSM Parameter Store and
    /// DynamoDB).
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
    #[arg(long, env = "RELEASE_TRACKING_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region (default: the manifest's, then the SDK's chain).
    #[arg(long)]
    pub region: Option<String>,
    /// Do not assume the manifest's `role_arn`.
    #[arg(long)]
    pub no_assume_role: bool,
    /// Record this requester instead of asking the store who the caller is
    /// (on AWS: STS).
    #[arg(long)]
    pub requester: Option<String>,
    /// The shape of new records: `follow` the table (default), or always
    /// `weco-deploy-4` (strings), `weco-deploy-2` (environment maps) or
    /// `release-tooling` (requester and environment maps).
    #[arg(long, value_enum, default_value_t = ShapeArg::Follow)]
    pub record_shape: ShapeArg,
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
/// and its set-up to `open_stores`; nothing else in the tool changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreArg {
    /// `aws`: SSM Parameter Store for images, DynamoDB for releases.
    Aws,
    /// `sqlite:PATH`: images and releases in one SQLite file, no AWS
    /// (crate feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

impl FromStr for StoreArg {
    type Err = String;

    fn from_str(text: &str) -> Result<StoreArg, String> {
        match text {
            "aws" => Ok(StoreArg::Aws),
            #[cfg(feature = "sqlite")]
            _ if text.starts_with("sqlite:") => match &text["sqlite:".len()..] {
                "" => Err("`sqlite:` needs the file's path: `sqlite:releases.db`".to_owned()),
                path => Ok(StoreArg::Sqlite(PathBuf::from(path))),
            },
            #[cfg(not(feature = "sqlite"))]
            _ if text.starts_with("sqlite:") => Err(
                "this build has no SQLite store (it needs the crate's `sqlite` feature)".to_owned(),
            ),
            _ => Err(format!(
                "unknown store `{}`: expected `aws`{}",
                Escaped::whole(text),
                if cfg!(feature = "sqlite") {
                    " or `sqlite:PATH`"
                } else {
                    ""
                }
            )),
        }
    }
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
    /// Write a release's images to an environment and record the deployment.
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
    /// The newest deployments, newest first.
    History {
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 10, value_parser = limit_parser())]
        limit: usize,
    },
}

impl Command {
    /// The command's name as typed, for the JSON document.
    fn name(&self) -> &'static str {
        match self {
            Command::Provision => "provision",
            Command::Publish { .. } => "publish",
            Command::Prepare { .. } => "prepare",
            Command::Update { .. } => "update",
            Command::Deploy { .. } => "deploy",
            Command::ReleaseDeploy { .. } => "release-deploy",
            Command::ShowRelease { .. } => "show-release",
            Command::Releases { .. } => "releases",
            Command::Diff { .. } => "diff",
            Command::Current { .. } => "current",
            Command::History { .. } => "history",
        }
    }
}

type Tool = ReleaseTracker<Arc<dyn ImageStore>, Arc<dyn ReleaseStore>>;

/// The stores a command runs on, whatever the backend.
struct Stores {
    images: Arc<dyn ImageStore>,
    releases: Arc<dyn ReleaseStore>,
    /// Who the caller is, when `--requester` does not say.
    caller: Arc<dyn RequesterSource>,
    /// What `provision` does on this backend.
    provisioner: Provisioner,
    /// The backend's name and where it keeps the project's data.
    info: StoreInfo,
}

/// Creates a backend's storage for a project.
enum Provisioner {
    /// Creates the project's DynamoDB table.
    Aws(Arc<DynamoDbReleaseStore>),
    /// Nothing to create: opening the file made (or migrated) the store.
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

impl Provisioner {
    /// Creates what is missing; returns the `state` for the JSON document
    /// and the line for people.
    async fn provision(
        &self,
        project: &Project,
    ) -> Result<(&'static str, String), Box<dyn StdError>> {
        match self {
            Provisioner::Aws(releases) => {
                let state = releases.ensure_table(project.id()).await?;
                let name = match state {
                    TableState::Created => "created",
                    TableState::AlreadyExisted => "already_existed",
                    _ => "ready",
                };
                let line = format!("table {}: {state:?}", releases.table_name(project.id()));
                Ok((name, line))
            }
            #[cfg(feature = "sqlite")]
            Provisioner::Sqlite(path) => {
                let _ = project;
                Ok(("ready", format!("sqlite file {}: ready", path.display())))
            }
        }
    }
}

/// A store's kind and details (`region`, `table`, …), in the order shown.
struct StoreInfo {
    kind: &'static str,
    details: Vec<(&'static str, Option<String>)>,
}

impl StoreInfo {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("kind".into(), self.kind.into());
        for (key, value) in &self.details {
            map.insert(
                (*key).into(),
                value.clone().map_or(Value::Null, Value::from),
            );
        }
        Value::Object(map)
    }
}

impl fmt::Display for StoreInfo {
    /// `aws (region eu-west-1, table wellcome-releases-storage)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)?;
        let shown: Vec<String> = self
            .details
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_ref()?;
                Some(format!(
                    "{} {}",
                    key.replace('_', " "),
                    Escaped::whole(value)
                ))
            })
            .collect();
        if !shown.is_empty() {
            write!(f, " ({})", shown.join(", "))?;
        }
        Ok(())
    }
}

/// Opens the store `cli.store` names for `project`. Only here is a backend
/// set up (AWS configured), once the command line has been parsed.
async fn open_stores(cli: &Cli, project: &Project) -> Result<Stores, Box<dyn StdError>> {
    match &cli.store {
        StoreArg::Aws => {
            let mut settings = AwsSettings::new().assume_role(!cli.no_assume_role);
            if let Some(url) = &cli.endpoint_url {
                settings = settings.endpoint_url(url);
            }
            if let Some(region) = &cli.region {
                settings = settings.region(region);
            }
            let aws = settings.load(project).await?;
            let config = aws.config();
            let releases = Arc::new(DynamoDbReleaseStore::new(config));
            let info = StoreInfo {
                kind: "aws",
                details: vec![
                    ("region", config.region().map(|r| r.to_string())),
                    ("table", Some(releases.table_name(project.id()))),
                    ("endpoint_url", cli.endpoint_url.clone()),
                ],
            };
            Ok(Stores {
                images: Arc::new(SsmImageStore::new(config)),
                releases: releases.clone(),
                caller: Arc::new(aws.requester()),
                provisioner: Provisioner::Aws(releases),
                info,
            })
        }
        #[cfg(feature = "sqlite")]
        StoreArg::Sqlite(path) => {
            let store = Arc::new(release_tracking::sqlite::SqliteStore::open(path)?);
            Ok(Stores {
                images: store.clone(),
                releases: store,
                caller: Arc::new(LocalUser),
                provisioner: Provisioner::Sqlite(path.clone()),
                info: StoreInfo {
                    kind: "sqlite",
                    details: vec![("path", Some(path.display().to_string()))],
                },
            })
        }
    }
}

/// Without AWS there is no STS to ask: the requester is the local user
/// (`USER`, `LOGNAME`, or `USERNAME` on Windows), unless `--requester`
/// names one.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct LocalUser;

#[cfg(feature = "sqlite")]
#[async_trait::async_trait]
impl RequesterSource for LocalUser {
    async fn requester(&self) -> release_tracking::Result<Requester> {
        ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(Requester::new)
            .ok_or(release_tracking::Error::InvalidArgument {
                argument: "requester",
                reason: "no USER in the environment to record; name one with --requester"
                    .to_owned(),
            })
    }
}

/// What a command passed over: on stderr as it happens, or (with `--json`)
/// kept for the document.
#[derive(Debug)]
pub struct Warnings {
    json: bool,
    kept: Vec<String>,
}

impl Warnings {
    /// Warnings for a run with or without `--json`.
    pub fn new(json: bool) -> Warnings {
        Warnings {
            json,
            kept: Vec::new(),
        }
    }

    fn add(&mut self, warning: impl fmt::Display) {
        if self.json {
            self.kept.push(warning.to_string());
        } else {
            eprintln!("warning: {warning}");
        }
    }

    fn extend<W: fmt::Display>(&mut self, warnings: impl IntoIterator<Item = W>) {
        for warning in warnings {
            self.add(warning);
        }
    }

    /// Prints the kept warnings on stderr (when the command failed and no
    /// document is printed).
    pub fn flush_to_stderr(&mut self) {
        for warning in self.kept.drain(..) {
            eprintln!("warning: {warning}");
        }
    }
}

/// Text from a record, for one line of output (see [`Escaped::whole`]).
fn cell(value: impl fmt::Display) -> String {
    Escaped::whole(&value.to_string()).to_string()
}

/// Writes rows as columns two spaces apart, each column as wide as its
/// widest cell, so rows line up whatever the length of a requester or an
/// environment id; the last column is not padded.
fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|text| text.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(text);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(text.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn print_release(out: &mut dyn Write, release: &Release) -> std::io::Result<()> {
    writeln!(out, "release {}", release.release_id())?;
    writeln!(
        out,
        "  created      {} by {}",
        release.date_created(),
        cell(release.requested_by())
    )?;
    writeln!(out, "  description  {}", cell(release.description()))?;
    let width = release
        .images()
        .keys()
        .map(|s| s.as_str().len())
        .max()
        .unwrap_or(0);
    for (service, image) in release.images() {
        writeln!(out, "  image        {service:<width$}  {}", cell(image))?;
    }
    for d in release.deployments() {
        writeln!(
            out,
            "  deployed     {} to {} by {}: {}",
            d.date_created(),
            d.environment(),
            cell(d.requested_by()),
            cell(d.description())
        )?;
    }
    Ok(())
}

fn print_current(
    out: &mut dyn Write,
    environment: &str,
    current: Option<&CurrentDeployment>,
) -> std::io::Result<()> {
    match current {
        None => writeln!(out, "{environment}: nothing deployed yet"),
        Some(current) => {
            writeln!(
                out,
                "{environment}: release {} deployed {} by {}",
                current.release.release_id(),
                current.deployment.date_created(),
                cell(current.deployment.requested_by())
            )?;
            if current.label_matches() {
                writeln!(out, "the label matches the release")
            } else {
                let drifted: Vec<_> = current.drifted.iter().map(|s| s.as_str()).collect();
                writeln!(out, "drifted since: {}", drifted.join(", "))
            }
        }
    }
}

/// Strings of `items`, as a JSON array.
fn strings<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|i| Value::from(i.to_string()))
            .collect(),
    )
}

fn image_json(entry: &ImageEntry) -> Value {
    match entry {
        ImageEntry::Uri(uri) => uri.as_str().into(),
        ImageEntry::Tags(tags) => strings(tags),
        // `Missing`, and any entry without a URI.
        _ => Value::Null,
    }
}

fn images_json<'a>(images: impl IntoIterator<Item = (&'a ServiceId, &'a ImageEntry)>) -> Value {
    Value::Object(
        images
            .into_iter()
            .map(|(service, entry)| (service.to_string(), image_json(entry)))
            .collect(),
    )
}

fn deployment_json(d: &Deployment) -> Value {
    json!({
        "date_created": d.date_created().to_string(),
        "environment": d.environment().to_string(),
        "requested_by": d.requested_by().id(),
        "description": d.description(),
    })
}

fn release_json(r: &Release) -> Value {
    json!({
        "release_id": r.release_id().to_string(),
        "project_id": r.project_id().to_string(),
        "date_created": r.date_created().to_string(),
        "requested_by": r.requested_by().id(),
        "description": r.description(),
        "images": images_json(r.images()),
        "deployments": r.deployments().iter().map(deployment_json).collect::<Vec<_>>(),
    })
}

fn plan_json(plan: &DeployPlan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            json!({
                "service": c.service.to_string(),
                "current": c.current.as_ref().map(|u| u.as_str()),
                "image": c.image.as_str(),
                "resolved_from": c.resolved_from.as_ref().map(|u| u.as_str()),
            })
        })
        .collect();
    json!({
        "release_id": plan.release_id.to_string(),
        "environment": plan.environment.to_string(),
        "changes": changes,
        "unchanged": strings(&plan.unchanged),
        "untouched": strings(&plan.untouched),
        "conflicts": strings(&plan.conflicts),
    })
}

fn deployed_json(deployed: &Deployed) -> Value {
    json!({
        "release_id": deployed.release.release_id().to_string(),
        "deployment": deployment_json(&deployed.deployment),
        "written": strings(&deployed.written),
        "unchanged": strings(&deployed.unchanged),
    })
}

fn parse_override(text: &str) -> Result<(ServiceId, ImageSource), Box<dyn StdError>> {
    let (service, source) = text
        .split_once('=')
        .ok_or_else(|| format!("--image {text:?}: expected SERVICE=label:LABEL or SERVICE=URI"))?;
    let source = match source.strip_prefix("label:") {
        Some(label) => ImageSource::Label(label.parse()?),
        None => ImageSource::Uri(source.parse()?),
    };
    Ok((service.parse()?, source))
}

/// Runs one command, writing its report (or, with `--json`, its document)
/// to `out`; warnings go to `warnings`.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    // Warnings are shown even when the manifest is invalid: a typo may be
    // the cause.
    let (manifest, manifest_warnings) = Manifest::from_path_with_warnings(&cli.manifest);
    warnings.extend(&manifest_warnings);
    let manifest = manifest?;
    let project = manifest.select(cli.project.as_deref())?.clone();
    let stores = open_stores(&cli, &project).await?;
    if !cli.json {
        eprintln!("store: {}", stores.info);
    }
    let json = cli.json;
    let command = cli.command;
    let mut doc = Map::new();
    doc.insert("command".into(), command.name().into());
    doc.insert("store".into(), stores.info.to_json());
    // The report for people goes straight to `out` (so a deploy's plan is
    // shown even if its execution fails); with `--json`, nowhere, and the
    // document's fields go to `doc`.
    let mut sink = std::io::sink();
    let human: &mut dyn Write = if json { &mut sink } else { &mut *out };
    let mut set = |key: &str, value: Value| {
        doc.insert(key.to_owned(), value);
    };
    if let Command::Provision = command {
        let (state, line) = stores.provisioner.provision(&project).await?;
        set("state", state.into());
        writeln!(human, "{line}")?;
    } else {
        let requester: Arc<dyn RequesterSource> = match cli.requester {
            Some(principal) => Arc::new(Requester::new(principal)),
            None => stores.caller,
        };
        let tool: Tool = ReleaseTracker::new(project, stores.images, stores.releases, requester)
            .with_record_shape(cli.record_shape.into())
            .with_write_concurrency(cli.write_concurrency);
        run_command(&tool, command, human, &mut set, warnings).await?;
    }
    if json {
        doc.insert("warnings".into(), strings(&warnings.kept));
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Value::Object(doc))?
        )?;
    }
    Ok(())
}

/// Runs a command on the tracker: human report to `out`, document fields
/// through `set`.
async fn run_command(
    tool: &Tool,
    command: Command,
    out: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    match command {
        Command::Provision => {}
        Command::Publish {
            service,
            image,
            label,
        } => {
            tool.publish(&label, &service, &image).await?;
            set("service", service.to_string().into());
            set("label", label.to_string().into());
            set("image", image.as_str().into());
            writeln!(out, "published {service} at {label}: {image}")?;
        }
        Command::Prepare {
            from,
            images,
            description,
        } => {
            let mut request = PrepareRequest::from_label(from);
            for text in &images {
                let (service, source) = parse_override(text)?;
                request = request.with_image(service, source);
            }
            if let Some(description) = description {
                request = request.description(description);
            }
            let prepared = tool.prepare(request).await?;
            warnings.extend(&prepared.warnings);
            set("release", release_json(&prepared.release));
            print_release(out, &prepared.release)?;
        }
        Command::Update {
            base,
            services,
            from,
            description,
        } => {
            let mut request = UpdateRequest::new(base, from, services);
            if let Some(description) = description {
                request = request.description(description);
            }
            let prepared = tool.update(request).await?;
            warnings.extend(&prepared.warnings);
            set("release", release_json(&prepared.release));
            print_release(out, &prepared.release)?;
        }
        Command::Deploy {
            release,
            environment,
            description,
            dry_run,
        } => {
            // One plan, shown and then executed as shown: the release is
            // read once and the label once. A deploy asks who deploys (STS)
            // beside those reads, not after them.
            let plan = if dry_run {
                tool.plan(&release, &environment).await?
            } else {
                let (plan, requester) =
                    futures::join!(tool.plan(&release, &environment), tool.requester());
                let plan = plan?;
                requester?;
                plan
            };
            warnings.extend(&plan.warnings);
            set("plan", plan_json(&plan));
            write!(out, "{plan}")?;
            if dry_run {
                set("deployed", Value::Null);
            } else {
                let deployed = tool.execute(plan, &description).await?;
                set("deployed", deployed_json(&deployed));
                writeln!(
                    out,
                    "deployed {} to {environment}: {} written, {} unchanged",
                    deployed.release.release_id(),
                    deployed.written.len(),
                    deployed.unchanged.len()
                )?;
            }
        }
        Command::ReleaseDeploy {
            environment,
            from,
            description,
        } => {
            let mut request = PrepareRequest::from_label(from);
            if let Some(description) = &description {
                request = request.description(description);
            }
            let (prepared, deployed) = tool
                .release_deploy(request, &environment, description.as_deref().unwrap_or(""))
                .await?;
            warnings.extend(&prepared.warnings);
            warnings.extend(&deployed.warnings);
            set("release", release_json(&deployed.release));
            set("deployed", deployed_json(&deployed));
            print_release(out, &deployed.release)?;
            writeln!(
                out,
                "deployed {} to {environment}: {} written",
                prepared.release.release_id(),
                deployed.written.len()
            )?;
        }
        Command::ShowRelease { release } => {
            let resolved = tool.release(&release).await?;
            warnings.extend(&resolved.warnings);
            set("release", release_json(&resolved.release));
            print_release(out, &resolved.release)?;
        }
        Command::Releases { limit, after } => {
            let mut page = PageRequest::first(limit)?;
            if let Some(cursor) = after {
                page = page.after(cursor);
            }
            let page = tool.releases(&page).await?;
            warnings.extend(&page.skipped);
            set(
                "releases",
                Value::Array(page.items.iter().map(release_json).collect()),
            );
            set(
                "next",
                page.next
                    .as_ref()
                    .map_or(Value::Null, |c| c.as_str().into()),
            );
            let rows: Vec<Vec<String>> = page
                .items
                .iter()
                .map(|release| {
                    vec![
                        release.date_created().to_string(),
                        release.release_id().to_string(),
                        cell(release.requested_by()),
                        cell(release.description()),
                    ]
                })
                .collect();
            write_table(out, &rows)?;
            if let Some(next) = page.next {
                writeln!(out, "more: --after '{next}'")?;
            }
        }
        Command::Diff { from, to } => {
            let diff = tool.diff(&from, &to).await?;
            warnings.extend(&diff.warnings);
            set("from", diff.from.to_string().into());
            set("to", diff.to.to_string().into());
            set("added", images_json(&diff.added));
            set("removed", images_json(&diff.removed));
            let changed: Vec<Value> = diff
                .changed
                .iter()
                .map(|c| {
                    json!({
                        "service": c.service.to_string(),
                        "from": image_json(&c.from),
                        "to": image_json(&c.to),
                    })
                })
                .collect();
            set("changed", changed.into());
            set("unchanged", strings(&diff.unchanged));
            write!(out, "{diff}")?
        }
        Command::Current { environment } => {
            let status = tool.current(&environment).await?;
            warnings.extend(&status.warnings);
            set("environment", environment.as_str().into());
            set(
                "current",
                status.current.as_ref().map_or(Value::Null, |c| {
                    json!({
                        "release": release_json(&c.release),
                        "deployment": deployment_json(&c.deployment),
                        "drifted": strings(&c.drifted),
                        "label_matches": c.label_matches(),
                    })
                }),
            );
            print_current(out, &environment, status.current.as_ref())?;
        }
        Command::History { environment, limit } => {
            let history = tool.history(environment.as_deref(), limit).await?;
            warnings.extend(&history.skipped);
            set(
                "environment",
                environment.as_deref().map_or(Value::Null, Value::from),
            );
            let deployments: Vec<Value> = history
                .records
                .iter()
                .map(|record| {
                    let mut value = deployment_json(&record.deployment);
                    if let Value::Object(map) = &mut value {
                        map.insert("release_id".into(), record.release_id.to_string().into());
                    }
                    value
                })
                .collect();
            set("deployments", deployments.into());
            let rows: Vec<Vec<String>> = history
                .records
                .iter()
                .map(|record| {
                    let d = &record.deployment;
                    vec![
                        d.date_created().to_string(),
                        d.environment().to_string(),
                        record.release_id.to_string(),
                        cell(d.requested_by()),
                        cell(d.description()),
                    ]
                })
                .collect();
            write_table(out, &rows)?;
        }
    }
    Ok(())
}

/// An error and its causes, one line each: `error: …`, then `  caused by: …`
/// for each cause that says something new (a message that already quotes
/// its cause is not followed by it again, and an empty one is left out).
/// Control characters are escaped, so every line is one line.
pub fn report(error: &(dyn StdError + 'static)) -> String {
    let mut lines = vec![format!("error: {}", Escaped::whole(&error.to_string()))];
    let mut shown = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        let text = text.trim();
        if !text.is_empty() && !shown.iter().any(|s| s.contains(text)) {
            lines.push(format!("  caused by: {}", Escaped::whole(text)));
            shown.push(text.to_owned());
        }
        source = cause.source();
    }
    lines.join("\n")
}

#[tokio::main]
pub async fn main() {
    // Parsing comes first: `--help` and usage errors exit here, before any
    // store (or AWS) is set up.
    let cli = Cli::parse();
    let mut warnings = Warnings::new(cli.json);
    let mut stdout = std::io::stdout();
    if let Err(error) = run(cli, &mut stdout, &mut warnings).await {
        warnings.flush_to_stderr();
        eprintln!("{}", report(&*error));
        std::process::exit(1);
    }
}
