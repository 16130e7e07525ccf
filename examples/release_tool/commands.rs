//! The commands that run on the tracker: each writes its report for people
//! to `out` and its fields of the JSON document through `set`.

use std::error::Error as StdError;
use std::io::Write;
use std::sync::Arc;

use release_tracking::{
    DeployOptions, DeployPlan, DeploymentKind, ImageSource, ImageStore, LabelRead, PageRequest,
    PrepareRequest, ReleaseStore, ReleaseTracker, ServiceId, UpdateRequest,
};
use serde_json::{json, Value};

use crate::args::Command;
use crate::human::{cell, print_current, write_table, Warnings};
use crate::json::{
    deployed_json, deployment_json, image_json, images_json, plan_json, release_json, strings,
};

/// The tracker on whichever stores `--store` opened.
pub type Tool = ReleaseTracker<Arc<dyn ImageStore>, Arc<dyn ReleaseStore>>;

/// Runs a command on the tracker: human report to `out`, document fields
/// through `set`.
pub async fn run(
    tool: &Tool,
    command: Command,
    out: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    match command {
        // Run on the stores themselves, by `run` in main.rs.
        Command::Provision | Command::Export { .. } | Command::Import { .. } => {}
        command @ (Command::Lease { .. }
        | Command::Unlock { .. }
        | Command::Freeze { .. }
        | Command::Unfreeze { .. }
        | Command::Block { .. }
        | Command::Unblock { .. }
        | Command::Controls { .. }) => crate::controls::run(tool, command, out, set).await?,
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
            write!(out, "{}", prepared.release)?;
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
            write!(out, "{}", prepared.release)?;
        }
        Command::Deploy {
            release,
            environment,
            description,
            dry_run,
            bypass,
        } => {
            // One plan, shown and then executed as shown: the release is
            // read once and the label once. A deploy reads only the
            // release's services there (side by side, not page after
            // page); a dry run shows the whole label. A deploy asks who
            // deploys (STS) beside those reads, not after them.
            let read = if dry_run {
                LabelRead::Whole
            } else {
                LabelRead::ReleaseServices
            };
            let plan = tool.plan_with(&release, &environment, read);
            let plan = beside_requester(tool, dry_run, plan).await?;
            let options = bypass.options(&description);
            carry_out(tool, plan, options, dry_run, out, set, warnings).await?;
        }
        Command::Rollback {
            environment,
            to,
            description,
            dry_run,
        } => {
            let plan = tool.plan_rollback(&environment, to.as_ref());
            let plan = beside_requester(tool, dry_run, plan).await?;
            let options = DeployOptions::new(description);
            carry_out(tool, plan, options, dry_run, out, set, warnings).await?;
        }
        Command::ReleaseDeploy {
            environment,
            from,
            description,
            bypass,
        } => {
            let mut request = PrepareRequest::from_label(from);
            if let Some(description) = &description {
                request = request.description(description);
            }
            let options = bypass.options(description.as_deref().unwrap_or(""));
            let (prepared, deployed) = tool.release_deploy(request, &environment, options).await?;
            warnings.extend(&prepared.warnings);
            warnings.extend(&deployed.warnings);
            set("release", release_json(&deployed.release));
            set("deployed", deployed_json(&deployed));
            write!(out, "{}", deployed.release)?;
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
            write!(out, "{}", resolved.release)?;
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
            crate::controls::current(tool, &environment, out, set).await?;
        }
        Command::History {
            only,
            environment,
            limit,
        } => {
            let environment = only.or(environment);
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
                    // Entries written without the audit trail: `-`.
                    let replaced = match (d.kind(), d.replaced_release()) {
                        (_, Some(replaced)) => format!("replaced {replaced}"),
                        (Some(_), None) => "replaced nothing".to_owned(),
                        (None, None) => "-".to_owned(),
                    };
                    vec![
                        d.date_created().to_string(),
                        d.environment().to_string(),
                        record.release_id.to_string(),
                        d.kind().map_or("-".to_owned(), cell),
                        replaced,
                        cell(d.requested_by()),
                        match d.bypass_reason() {
                            Some(reason) => {
                                cell(format!("{} [bypassed: {reason}]", d.description()))
                            }
                            None => cell(d.description()),
                        },
                    ]
                })
                .collect();
            write_table(out, &rows)?;
        }
    }
    Ok(())
}

/// The plan `planning` makes; unless `dry_run`, the requester is asked
/// beside it (it is asked once and remembered), off the path of `execute`.
async fn beside_requester(
    tool: &Tool,
    dry_run: bool,
    planning: impl std::future::Future<Output = release_tracking::Result<DeployPlan>>,
) -> release_tracking::Result<DeployPlan> {
    if dry_run {
        return planning.await;
    }
    let (plan, requester) = futures::join!(planning, tool.requester());
    let plan = plan?;
    requester?;
    Ok(plan)
}

/// Shows `plan` (with its gates), then unless `dry_run` executes it with
/// `options`: `deploy` and `rollback`.
async fn carry_out(
    tool: &Tool,
    plan: DeployPlan,
    options: DeployOptions,
    dry_run: bool,
    out: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    warnings.extend(&plan.warnings);
    set("plan", plan_json(&plan));
    write!(out, "{plan}")?;
    if dry_run {
        set("deployed", Value::Null);
        return Ok(());
    }
    let environment = plan.environment.clone();
    let shown = plan.warnings.len();
    let deployed = tool.execute(plan, options).await?;
    // The plan's warnings were shown; these are the deploy's own.
    warnings.extend(deployed.warnings.iter().skip(shown));
    set("deployed", deployed_json(&deployed));
    let release = deployed.release.release_id();
    match deployed.deployment.kind() {
        Some(DeploymentKind::Rollback) => write!(out, "rolled back {environment} to {release}")?,
        Some(DeploymentKind::Bypass) => {
            write!(out, "deployed {release} to {environment} (gates bypassed)")?
        }
        _ => write!(out, "deployed {release} to {environment}")?,
    }
    writeln!(
        out,
        ": {} written, {} unchanged",
        deployed.written.len(),
        deployed.unchanged.len()
    )?;
    Ok(())
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
