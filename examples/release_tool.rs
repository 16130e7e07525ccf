//! A command-line release tool on the AWS stores (SSM + DynamoDB).
//!
//! ```text
//! cargo run --features aws --example release_tool -- --help
//! cargo run --features aws --example release_tool -- prepare --description "weekly"
//! cargo run --features aws --example release_tool -- deploy latest stage --description "weekly"
//! ```
//!
//! It reads `.wellcome_project` (or `--manifest`), picks the only project (or
//! `--project`), configures AWS from the manifest (region, `role_arn`) and
//! the default credential chain, and records the caller's STS identity as
//! the requester (with a role, the caller behind it). `--endpoint-url`
//! points it at an emulator.

use std::error::Error as StdError;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use release_tracking::aws::{AwsSettings, DynamoDbReleaseStore, SsmImageStore};
use release_tracking::names::Escaped;
use release_tracking::{
    CurrentDeployment, ImageSource, ImageUri, Label, Manifest, PageRequest, PrepareRequest,
    RecordShape, Release, ReleaseRef, ReleaseTracker, Requester, RequesterSource, ServiceId,
    ShapePolicy, UpdateRequest, Warning,
};

/// Track releases of container images and deploy them to environments.
#[derive(Debug, Parser)]
#[command(name = "release_tool", version)]
pub struct Cli {
    /// The project manifest.
    #[arg(long, default_value = Manifest::FILE_NAME)]
    pub manifest: PathBuf,
    /// The project (default: the only project of the manifest).
    #[arg(long)]
    pub project: Option<String>,
    /// Send every AWS request here (an emulator).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The AWS region (default: the manifest's, then the SDK's chain).
    #[arg(long)]
    pub region: Option<String>,
    /// Do not assume the manifest's `role_arn`.
    #[arg(long)]
    pub no_assume_role: bool,
    /// Record this requester instead of asking STS who the caller is.
    #[arg(long)]
    pub requester: Option<String>,
    /// The shape of new records: `follow` the table (default), or always
    /// `weco-deploy-4` (strings), `weco-deploy-2` (environment maps) or
    /// `release-tooling` (requester and environment maps).
    #[arg(long, value_enum, default_value_t = ShapeArg::Follow)]
    pub record_shape: ShapeArg,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List releases, newest first.
    Releases {
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Continue after this cursor (printed by the previous page).
        #[arg(long)]
        after: Option<String>,
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
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

type Tool = ReleaseTracker<SsmImageStore, DynamoDbReleaseStore>;

/// Text from a record, for one line of output (see [`Escaped::whole`]).
fn cell(value: impl std::fmt::Display) -> String {
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
    current: Option<CurrentDeployment>,
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

/// Prints what an operation passed over, so it is never silent.
fn warn(warnings: &[Warning]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
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

/// Runs one command, writing its report to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Box<dyn StdError>> {
    // Warnings are shown even when the manifest is invalid: a typo may be
    // the cause.
    let (manifest, warnings) = Manifest::from_path_with_warnings(&cli.manifest);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let manifest = manifest?;
    let project = manifest.select(cli.project.as_deref())?.clone();
    let mut settings = AwsSettings::new().assume_role(!cli.no_assume_role);
    if let Some(url) = &cli.endpoint_url {
        settings = settings.endpoint_url(url);
    }
    if let Some(region) = &cli.region {
        settings = settings.region(region);
    }
    let aws = settings.load(&project).await?;
    let config = aws.config();
    let releases = DynamoDbReleaseStore::new(config);
    if let Command::Provision = cli.command {
        let state = releases.ensure_table(project.id()).await?;
        writeln!(
            out,
            "table {}: {state:?}",
            releases.table_name(project.id())
        )?;
        return Ok(());
    }
    let requester: Arc<dyn RequesterSource> = match cli.requester {
        Some(principal) => Arc::new(Requester::new(principal)),
        None => Arc::new(aws.requester()),
    };
    let tool: Tool = ReleaseTracker::new(project, SsmImageStore::new(config), releases, requester)
        .with_record_shape(cli.record_shape.into());
    match cli.command {
        Command::Provision => {}
        Command::Publish {
            service,
            image,
            label,
        } => {
            tool.publish(&label, &service, &image).await?;
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
            warn(&prepared.warnings);
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
            warn(&prepared.warnings);
            print_release(out, &prepared.release)?;
        }
        Command::Deploy {
            release,
            environment,
            description,
            dry_run,
        } => {
            // One plan, shown and then executed as shown: the release is
            // read once and the label once.
            let plan = tool.plan(&release, &environment).await?;
            warn(&plan.warnings);
            write!(out, "{plan}")?;
            if !dry_run {
                let deployed = tool.execute(plan, &description).await?;
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
            warn(&prepared.warnings);
            warn(&deployed.warnings);
            print_release(out, &deployed.release)?;
            writeln!(
                out,
                "deployed {} to {environment}: {} written",
                prepared.release.release_id(),
                deployed.written.len()
            )?;
        }
        Command::ShowRelease { release, json } => {
            let resolved = tool.release(&release).await?;
            warn(&resolved.warnings);
            let release = resolved.release;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&release.to_json())?)?;
            } else {
                print_release(out, &release)?;
            }
        }
        Command::Releases { limit, after } => {
            let mut page = PageRequest::first(limit)?;
            if let Some(cursor) = after {
                page = page.after(release_tracking::Cursor::new(cursor));
            }
            let page = tool.releases(&page).await?;
            for skipped in &page.skipped {
                eprintln!("warning: {skipped}");
            }
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
            warn(&diff.warnings);
            write!(out, "{diff}")?
        }
        Command::Current { environment } => {
            let status = tool.current(&environment).await?;
            warn(&status.warnings);
            print_current(out, &environment, status.current)?;
        }
        Command::History { environment, limit } => {
            let history = tool.history(environment.as_deref(), limit).await?;
            for skipped in &history.skipped {
                eprintln!("warning: {skipped}");
            }
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
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    if let Err(error) = run(cli, &mut stdout).await {
        eprintln!("{}", report(&*error));
        std::process::exit(1);
    }
}
