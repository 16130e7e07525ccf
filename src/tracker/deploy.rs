//! Deploying: the plan of what a deploy writes, and carrying it out.

use super::controls::HeldLease;
use super::*;
use crate::control::LeaseOperation;
use crate::error::{Error, PartialDeployment, Result};
use crate::manifest::Environment;
use crate::names::{EnvironmentId, ImageUri, ReleaseRef, ServiceId};
use crate::release::{Deployment, ImageEntry, Release, Requester};
use crate::store::{ImageStore, ReleaseStore};

/// weco-deploy falls back to a namespace of its own when the manifest names
/// none; a guess could write a reference Terraform cannot pull, so this
/// crate asks for it.
const NO_NAMESPACE_FIX: &str = "set `namespace` for the project or the repository";

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// The environment, checked against the manifest.
    pub(super) fn environment(&self, environment: &str) -> Result<&Environment> {
        self.project.environment(environment)
    }

    /// The full reference to write for a bare tag, through the manifest's
    /// `image_repositories`: `{account}.dkr.ecr.{region}.amazonaws.com/{namespace}/{repository}:{tag}`,
    /// as weco-deploy builds ECR references. `Err` says what is missing.
    pub(super) fn resolve_tag(
        &self,
        service: &ServiceId,
        tag: &ImageUri,
    ) -> std::result::Result<ImageUri, String> {
        let project = &self.project;
        let repository = project.image_repository_for(service).ok_or_else(|| {
            format!(
                "`{service}` holds the bare tag `{tag}` and no `image_repositories` entry lists it"
            )
        })?;
        let account = repository
            .account_id
            .as_deref()
            .or(project.account_id())
            .ok_or_else(|| {
                format!("`{service}` holds a bare tag and the manifest has no `account_id`")
            })?;
        let region = project.aws_region().ok_or_else(|| {
            format!("`{service}` holds a bare tag and the manifest has no `aws_region_name`")
        })?;
        let namespace = repository
            .namespace
            .as_deref()
            .or(project.namespace())
            .ok_or_else(|| format!("`{service}` holds a bare tag; {NO_NAMESPACE_FIX}"))?;
        let uri = format!(
            "{account}.dkr.ecr.{region}.amazonaws.com/{namespace}/{}:{tag}",
            repository.id
        );
        match ImageUri::new(uri) {
            Ok(uri) if uri.is_full_reference() => Ok(uri),
            Ok(uri) => Err(format!(
                "`{service}`: its tag resolves to `{uri}`, which is not a valid image reference; \
                 check `account_id`, `aws_region_name`, `namespace` and the repository id"
            )),
            Err(e) => Err(format!("`{service}`: {e}")),
        }
    }

    /// What to write for each of the release's services, or
    /// [`Error::UndeployableRelease`] naming every service that has no full
    /// image reference and why.
    pub(super) fn deployable_images(
        &self,
        release: &Release,
    ) -> Result<Vec<(ServiceId, PlannedImage)>> {
        let mut images = Vec::with_capacity(release.images().len());
        let mut undeployable = Vec::new();
        let mut problems = Vec::new();
        for (service, entry) in release.images() {
            let planned = match entry {
                ImageEntry::Uri(uri) if uri.is_full_reference() => Ok(PlannedImage {
                    image: uri.clone(),
                    resolved_from: None,
                }),
                ImageEntry::Uri(uri) if uri.is_bare_tag() => {
                    self.resolve_tag(service, uri).map(|image| PlannedImage {
                        image,
                        resolved_from: Some(uri.clone()),
                    })
                }
                ImageEntry::Uri(uri) => Err(format!(
                    "`{service}` holds `{uri}`, which is neither a full reference nor a bare tag"
                )),
                ImageEntry::Missing => Err(format!("`{service}` has no image (null)")),
                ImageEntry::Tags(_) => Err(format!("`{service}` holds a set of tags")),
            };
            match planned {
                Ok(planned) => images.push((service.clone(), planned)),
                Err(problem) => {
                    undeployable.push(service.clone());
                    problems.push(problem);
                }
            }
        }
        if !undeployable.is_empty() {
            let shown = problems.len().min(3);
            let mut fix = problems[..shown].join("; ");
            if problems.len() > shown {
                fix.push_str(&format!("; and {} more", problems.len() - shown));
            }
            fix.push_str(
                ". Make a new release with `update` from a label that holds full references, or \
                 list the services under `image_repositories` with `account_id`, `aws_region_name` \
                 and `namespace` so bare tags resolve",
            );
            return Err(Error::UndeployableRelease {
                project: self.project_id().clone(),
                release: release.release_id().clone(),
                services: undeployable,
                fix,
            });
        }
        Ok(images)
    }

    /// The plan to deploy `release` to `environment`, whose label holds
    /// `label`.
    pub(super) fn plan_for(
        &self,
        release: Release,
        label: crate::LabelImages,
        environment: &EnvironmentId,
        mut warnings: Vec<Warning>,
    ) -> Result<DeployPlan> {
        let target = self.deployable_images(&release)?;
        let mut current = label.images;
        let mut plan = DeployPlan {
            project: self.project_id().clone(),
            release_id: release.release_id().clone(),
            environment: environment.clone(),
            changes: Vec::new(),
            unchanged: Vec::new(),
            untouched: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
            release,
        };
        let mut skipped = Vec::new();
        for parameter in label.skipped {
            let in_the_way = parameter
                .service
                .as_ref()
                .is_some_and(|service| plan.release.images().contains_key(service));
            if in_the_way {
                plan.conflicts.push(parameter);
            } else {
                skipped.push(parameter);
            }
        }
        for (service, planned) in target {
            let in_conflict = plan
                .conflicts
                .iter()
                .any(|c| c.service.as_ref() == Some(&service));
            if in_conflict {
                continue;
            }
            match current.remove(&service) {
                Some(existing) if existing == planned.image => plan.unchanged.push(service),
                current => plan.changes.push(PlannedWrite {
                    service,
                    current,
                    image: planned.image,
                    resolved_from: planned.resolved_from,
                }),
            }
        }
        plan.untouched = current.into_keys().collect();
        warnings.extend(parameter_warnings(skipped));
        plan.warnings = warnings;
        Ok(plan)
    }

    /// What deploying `release` to `environment` would write, without
    /// writing anything: one read of the release and one of the
    /// environment's label, side by side. Pass the plan to
    /// [`execute`](Self::execute) to carry it out without reading either
    /// again.
    pub async fn plan(&self, release: &ReleaseRef, environment: &str) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        // Two independent reads, side by side: one round trip less.
        let label = environment.label();
        let (resolved, label) = futures::join!(
            self.release(release),
            self.images.label_images(self.project_id(), &label)
        );
        let resolved = resolved?;
        self.plan_for(resolved.release, label?, &environment, resolved.warnings)
    }

    /// Deploys a release to an environment: [`plan`](Self::plan), then
    /// [`execute`](Self::execute).
    ///
    /// The environment is checked against the manifest before anything is
    /// read or written. If a write fails, the error
    /// ([`Error::PartialDeployment`]) lists which services were written and
    /// which were not, and no deployment is recorded; if recording fails,
    /// [`Error::DeploymentNotRecorded`]. Either way, running the same deploy
    /// again completes it.
    pub async fn deploy(
        &self,
        release: &ReleaseRef,
        environment: &str,
        description: &str,
    ) -> Result<Deployed> {
        let plan = self.plan(release, environment).await?;
        self.execute(plan, description).await
    }

    /// Carries out a plan made by [`plan`](Self::plan): writes its changes
    /// to the environment's label and records the deployment of the plan's
    /// release. Nothing is read again, so what is executed is what was
    /// shown.
    ///
    /// Fails before writing anything if the plan is for another project or
    /// environment this tracker does not know, or has
    /// [`conflicts`](DeployPlan::conflicts)
    /// ([`Error::ConflictingParameters`]). Failures part-way are reported
    /// as for [`deploy`](Self::deploy).
    ///
    /// With [`with_controls`](Self::with_controls), it takes the
    /// environment's lease before the first write and gives it back at the
    /// end, also on failure (a lease that cannot be given back is a
    /// [`Warning::LeaseNotReleased`] and expires by itself). Before writing
    /// anything it fails with [`Error::EnvironmentBusy`] (naming the
    /// holder), [`Error::EnvironmentFrozen`], or [`Error::ReleaseBlocked`]
    /// unless the release is already current in the environment. The lease
    /// is renewed before a write once a third of its time has passed; if it
    /// was lost meanwhile (taken over after expiry, or force-unlocked), the
    /// deploy stops there with [`Error::PartialDeployment`] whose source is
    /// [`Error::LeaseLost`].
    pub async fn execute(&self, plan: DeployPlan, description: &str) -> Result<Deployed> {
        let project = self.project_id();
        if &plan.project != project {
            return Err(Error::InvalidArgument {
                argument: "plan",
                reason: format!(
                    "it was made for project `{}`, not `{project}`",
                    plan.project
                ),
            });
        }
        let environment = self.environment(plan.environment.as_str())?;
        if !plan.conflicts.is_empty() {
            return Err(Error::ConflictingParameters {
                project: project.clone(),
                release: plan.release_id,
                environment: plan.environment,
                parameters: plan.conflicts.into_iter().map(|c| c.name).collect(),
            });
        }
        // Ask for the requester before writing, so a failure here leaves
        // nothing half-done.
        let requested_by = self.requester.requester().await?;
        let mut lease = self
            .enter(&plan, &requested_by, LeaseOperation::Deploy)
            .await?;
        let result = self
            .carry_out(
                plan,
                description,
                environment,
                &requested_by,
                lease.as_mut(),
            )
            .await;
        // Given back whatever happened; if that fails, it expires.
        let unreleased = match lease {
            Some(held) => held.release().await,
            None => None,
        };
        let mut deployed = result?;
        deployed.warnings.extend(unreleased);
        Ok(deployed)
    }

    /// The writes and the record of [`execute`](Self::execute), keeping
    /// `lease` (if any) as they go.
    async fn carry_out(
        &self,
        plan: DeployPlan,
        description: &str,
        environment: &Environment,
        requested_by: &Requester,
        mut lease: Option<&mut HeldLease>,
    ) -> Result<Deployed> {
        let project = self.project_id();
        let shape = self.deployment_shape(&plan.release);
        let mut written = Vec::with_capacity(plan.changes.len());
        let mut changes = plan.changes.into_iter().peekable();
        // A batch of writes at a time, the lease kept before each batch: a
        // lease lost before a batch stops the deploy there.
        while changes.peek().is_some() {
            let batch: Vec<PlannedWrite> = changes.by_ref().take(self.write_concurrency).collect();
            let kept = match lease.as_deref_mut() {
                Some(held) => held.keep(self.clock.now()).await,
                None => Ok(()),
            };
            let outcome = match kept {
                Ok(()) => {
                    crate::write::write_changes(
                        &self.images,
                        project,
                        &plan.release_id,
                        &plan.environment,
                        batch,
                        self.write_concurrency,
                    )
                    .await
                }
                Err(lost) => {
                    let not_written: Vec<ServiceId> =
                        batch.into_iter().map(|c| c.service).collect();
                    match not_written.first().cloned() {
                        Some(failed) => {
                            Err(Error::PartialDeployment(Box::new(PartialDeployment {
                                project: project.clone(),
                                release: plan.release_id.clone(),
                                environment: plan.environment.clone(),
                                written: Vec::new(),
                                failed,
                                not_written,
                                source: lost,
                                also_failed: Vec::new(),
                            })))
                        }
                        None => Err(lost),
                    }
                }
            };
            match outcome {
                Ok(batch_written) => written.extend(batch_written),
                // What earlier batches wrote, and the batches not started.
                Err(Error::PartialDeployment(mut partial)) => {
                    written.append(&mut partial.written);
                    partial.written = written;
                    partial.not_written.extend(changes.map(|c| c.service));
                    return Err(Error::PartialDeployment(partial));
                }
                Err(other) => return Err(other),
            }
        }
        let description = if description.is_empty() {
            DEFAULT_DESCRIPTION
        } else {
            description
        };
        let deployment = Deployment::in_shape(
            shape,
            environment,
            self.clock.now(),
            requested_by,
            description,
        );
        let updated = self
            .releases
            .add_deployment(project, &plan.release_id, &deployment)
            .await
            .map_err(|source| Error::DeploymentNotRecorded {
                project: project.clone(),
                release: plan.release_id.clone(),
                environment: plan.environment.clone(),
                written: written.clone(),
                source: Box::new(source),
            })?;
        Ok(Deployed {
            release: updated,
            deployment,
            written,
            unchanged: plan.unchanged,
            warnings: plan.warnings,
        })
    }

    /// Prepares a release and deploys it. The environment is checked before
    /// the release is made, and the new release is deployed by id (never by
    /// re-reading `latest`, which an index may not show yet).
    pub async fn release_deploy(
        &self,
        request: PrepareRequest,
        environment: &str,
        description: &str,
    ) -> Result<(Prepared, Deployed)> {
        let environment = self.environment(environment)?.id().clone();
        // The environment's label does not depend on the new release: read
        // it while the release is made.
        let label = environment.label();
        let (prepared, label) = futures::join!(
            self.prepare(request),
            self.images.label_images(self.project_id(), &label)
        );
        let prepared = prepared?;
        let plan = self.plan_for(prepared.release.clone(), label?, &environment, Vec::new())?;
        let deployed = self.execute(plan, description).await?;
        Ok((prepared, deployed))
    }
}

/// The image a deploy writes for one service.
pub(super) struct PlannedImage {
    image: ImageUri,
    resolved_from: Option<ImageUri>,
}
