//! Deploying: the plan of what a deploy writes, and carrying it out.

use std::collections::BTreeSet;

use super::controls::HeldLease;
use super::*;
use crate::control::LeaseOperation;
use crate::error::{Error, Result};
use crate::manifest::Environment;
use crate::names::{EnvironmentId, ImageUri, ReleaseId, ReleaseRef, ServiceId};
use crate::promotion::{check_gates, EnvironmentHistory, GateVerdict, HISTORY_LIMIT};
use crate::release::{
    Deployment, DeploymentKind, ImageEntry, Release, MAX_RECORD_SIZE, RECORD_SIZE_WARNING,
};
use crate::store::{ImageStore, ReleaseStore, SkippedRecord};

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

    /// The promotion gates `kind` of deployment to `environment` must pass:
    /// `None` when it has none, and for a rollback (the release already ran
    /// there).
    pub(super) fn gates_for(
        &self,
        environment: &EnvironmentId,
        kind: &DeploymentKind,
    ) -> Result<Option<&Environment>> {
        let config = self.environment(environment.as_str())?;
        Ok((config.is_gated() && *kind != DeploymentKind::Rollback).then_some(config))
    }

    /// What a plan reads beside the release and the label, side by side
    /// with them: unless `replaces` is already known, which release is
    /// current in `environment` (the newest deployment there, as the
    /// deployment index shows it), and that release unless it is
    /// `deploying` (to say which services the deployment changes); and for
    /// `gates` with a soak time, the newest deployments to each required
    /// environment.
    pub(super) async fn plan_context(
        &self,
        environment: &EnvironmentId,
        gates: Option<&Environment>,
        replaces: Replaced,
        deploying: Option<&ReleaseId>,
    ) -> Result<PlanContext> {
        let project = self.project_id();
        let current = async {
            let mut skipped = Vec::new();
            let replaces = match replaces {
                Replaced::Known(known) => known,
                Replaced::Read => {
                    let recent = self
                        .releases
                        .recent_deployments(project, Some(environment), 1)
                        .await?;
                    skipped.extend(recent.skipped);
                    recent.records.into_iter().next().map(|r| r.release_id)
                }
            };
            let replaced = match &replaces {
                Some(id) if Some(id) != deploying => {
                    match self.releases.release(project, id).await {
                        Ok(replaced) => replaced,
                        Err(error) => {
                            // An unreadable release is reported, not fatal:
                            // every service then counts as changed.
                            let passed = SkippedRecord::from_error(&error, Some(id.as_str()))
                                .ok_or(error)?;
                            skipped.push(passed);
                            None
                        }
                    }
                }
                _ => None,
            };
            Ok::<_, Error>((replaces, replaced, skipped))
        };
        let (current, history) = futures::join!(current, self.gate_history(gates));
        let ((replaces, replaced, mut skipped), (gate_history, history_skipped)) =
            (current?, history?);
        skipped.extend(history_skipped);
        Ok(PlanContext {
            replaces,
            replaced,
            gate_history,
            skipped,
        })
    }

    /// For an environment whose gates have a soak time, the newest
    /// [`HISTORY_LIMIT`] deployments to each required environment (one
    /// history read each, side by side), and the records passed over.
    async fn gate_history(
        &self,
        gates: Option<&Environment>,
    ) -> Result<(Vec<EnvironmentHistory>, Vec<SkippedRecord>)> {
        let Some(environment) = gates.filter(|e| e.soak().is_some()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let project = self.project_id();
        let reads = environment.requires().iter().map(|required| async move {
            let recent = self
                .releases
                .recent_deployments(project, Some(required), HISTORY_LIMIT)
                .await?;
            Ok::<_, Error>((required.clone(), recent))
        });
        let mut histories = Vec::new();
        let mut skipped = Vec::new();
        for (required, recent) in futures::future::try_join_all(reads).await? {
            skipped.extend(recent.skipped);
            histories.push(EnvironmentHistory {
                environment: required,
                truncated: recent.records.len() >= HISTORY_LIMIT,
                deployments: recent.records,
            });
        }
        Ok((histories, skipped))
    }

    /// The plan to deploy `release` to `environment` as `kind`, whose label
    /// holds `label`, with what [`plan_context`](Self::plan_context) read.
    pub(super) fn plan_for(
        &self,
        release: Release,
        label: crate::LabelImages,
        environment: &EnvironmentId,
        mut warnings: Vec<Warning>,
        kind: DeploymentKind,
        context: PlanContext,
    ) -> Result<DeployPlan> {
        let target = self.deployable_images(&release)?;
        let PlanContext {
            replaces,
            replaced,
            gate_history,
            skipped: passed,
        } = context;
        warnings.extend(record_warnings(passed));
        let gates = self
            .gates_for(environment, &kind)?
            .map(|environment| GateCheck {
                requires: environment.requires().to_vec(),
                soak: environment.soak(),
                verdict: check_gates(environment, &release, &gate_history, self.clock.now()),
            });
        // Relative to the release replaced, so that a rerun after a deploy
        // that failed part-way records what a whole deploy would have.
        let mut changed: BTreeSet<ServiceId> = match (&replaces, &replaced) {
            (Some(id), _) if id == release.release_id() => BTreeSet::new(),
            (Some(_), Some(replaced)) => target
                .iter()
                .filter(|(service, planned)| {
                    let before = replaced.images().get(service).and_then(|entry| {
                        let uri = entry.uri()?;
                        if uri.is_bare_tag() {
                            self.resolve_tag(service, uri).ok()
                        } else {
                            Some(uri.clone())
                        }
                    });
                    before.as_ref() != Some(&planned.image)
                })
                .map(|(service, _)| service.clone())
                .collect(),
            // Nothing (readable) was there: every service is new there.
            _ => target.iter().map(|(service, _)| service.clone()).collect(),
        };
        let mut current = label.images;
        let mut plan = DeployPlan {
            project: self.project_id().clone(),
            release_id: release.release_id().clone(),
            environment: environment.clone(),
            kind,
            replaces,
            changes: Vec::new(),
            unchanged: Vec::new(),
            untouched: Vec::new(),
            conflicts: Vec::new(),
            gates,
            warnings: Vec::new(),
            release,
            gate_history,
            changed_services: Vec::new(),
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
        // And any parameter it writes (one changed by hand since).
        changed.extend(plan.changes.iter().map(|c| c.service.clone()));
        plan.changed_services = changed.into_iter().collect();
        warnings.extend(parameter_warnings(skipped));
        plan.warnings = warnings;
        Ok(plan)
    }

    /// What deploying `release` to `environment` would write, without
    /// writing anything, and whether the environment's promotion gates let
    /// it in ([`DeployPlan::gates`]): side by side, one read of the release,
    /// one of the environment's label, one of its newest deployment (which
    /// release the deploy replaces, for the audit trail, then that release
    /// when it is another one, for the services the deploy changes) and,
    /// only when the gates have a soak time, one of the newest
    /// [`HISTORY_LIMIT`] deployments to each required environment. Pass the
    /// plan to [`execute`](Self::execute) to carry it out without reading
    /// any of them again.
    pub async fn plan(&self, release: &ReleaseRef, environment: &str) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        let kind = DeploymentKind::Deploy;
        let gates = self.gates_for(&environment, &kind)?;
        let deploying = match release {
            ReleaseRef::Id(id) => Some(id),
            ReleaseRef::Latest => None,
        };
        // Independent reads, side by side: round trips saved.
        let label = environment.label();
        let (resolved, label, context) = futures::join!(
            self.release(release),
            self.images.label_images(self.project_id(), &label),
            self.plan_context(&environment, gates, Replaced::Read, deploying)
        );
        let resolved = resolved?;
        self.plan_for(
            resolved.release,
            label?,
            &environment,
            resolved.warnings,
            kind,
            context?,
        )
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
        options: impl Into<DeployOptions>,
    ) -> Result<Deployed> {
        let options = options.into();
        options.check()?;
        let plan = self.plan(release, environment).await?;
        self.execute(plan, options).await
    }

    /// Carries out a plan made by [`plan`](Self::plan): writes its changes
    /// to the environment's label and records the deployment of the plan's
    /// release. Nothing is read again, so what is executed is what was
    /// shown. `options` is the description, or [`DeployOptions`] with a
    /// reason to bypass the gates.
    ///
    /// This is where a deploy decides to write. Before the first write it
    /// checks the environment's promotion gates again, with the time now
    /// ([`check_gates`]): unmet, it fails with [`Error::GatesNotMet`] unless
    /// `options` bypass them, in which case the deployment is recorded as a
    /// [`DeploymentKind::Bypass`] with the reason. It also fails before
    /// writing anything if the plan is for another project or environment
    /// this tracker does not know, has [`conflicts`](DeployPlan::conflicts)
    /// ([`Error::ConflictingParameters`]), or if recording the deployment
    /// would take the release's record past [`MAX_RECORD_SIZE`]
    /// ([`Error::ReleaseRecordFull`]; past [`RECORD_SIZE_WARNING`] it deploys
    /// with a [`Warning::RecordNearlyFull`]). Failures part-way are reported
    /// as for [`deploy`](Self::deploy).
    ///
    /// With [`with_controls`](Self::with_controls), it then takes the
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
    pub async fn execute(
        &self,
        plan: DeployPlan,
        options: impl Into<DeployOptions>,
    ) -> Result<Deployed> {
        let options = options.into();
        options.check()?;
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
        let now = self.clock.now();
        let mut kind = plan.kind.clone();
        let mut bypassed = None;
        if kind != DeploymentKind::Rollback && environment.is_gated() {
            if let GateVerdict::Unmet(unmet) =
                check_gates(environment, &plan.release, &plan.gate_history, now)
            {
                let Some(reason) = options.bypass_gates.clone() else {
                    return Err(Error::GatesNotMet {
                        project: project.clone(),
                        release: plan.release_id,
                        environment: plan.environment,
                        unmet,
                    });
                };
                kind = DeploymentKind::Bypass;
                bypassed = Some(reason);
            }
        }
        // Ask for the requester before writing, so a failure here leaves
        // nothing half-done.
        let requested_by = self.requester.requester().await?;
        let shape = self.deployment_shape(&plan.release);
        let description = if options.description.is_empty() {
            DEFAULT_DESCRIPTION
        } else {
            options.description.as_str()
        };
        // The whole entry is decided, and sized, before any side effect.
        let operation = match kind {
            DeploymentKind::Rollback => LeaseOperation::Rollback,
            _ => LeaseOperation::Deploy,
        };
        let mut deployment =
            Deployment::in_shape(shape, environment, now, &requested_by, description)
                .with_deployment_id(self.ids.new_deployment_id())
                .with_kind(kind)
                .with_changed_services(plan.changed_services.iter().cloned());
        if let Some(replaced) = &plan.replaces {
            deployment = deployment.with_replaced_release(replaced.clone());
        }
        if let Some(reason) = bypassed {
            deployment = deployment.with_bypass_reason(reason);
        }
        let size_warning = self.check_record_size(&plan.release, &deployment, &plan.environment)?;
        let mut lease = self.enter(&plan, &requested_by, operation).await?;
        let result = self.carry_out(plan, deployment, lease.as_mut()).await;
        // Given back whatever happened; if that fails, it expires.
        let unreleased = match lease {
            Some(held) => held.release().await,
            None => None,
        };
        let mut deployed = result?;
        deployed.warnings.extend(size_warning);
        deployed.warnings.extend(unreleased);
        Ok(deployed)
    }

    /// The writes and the record of [`execute`](Self::execute), keeping
    /// `lease` (if any) as they go.
    async fn carry_out(
        &self,
        plan: DeployPlan,
        deployment: Deployment,
        lease: Option<&mut HeldLease>,
    ) -> Result<Deployed> {
        let project = self.project_id();
        // The lease is kept before each write starts: a lease lost stops
        // the deploy before its next write.
        let mut gate = KeepLease {
            lease,
            clock: self.clock.as_ref(),
        };
        let written = crate::write::write_changes(
            &self.images,
            project,
            &plan.release_id,
            &plan.environment,
            plan.changes,
            self.write_concurrency,
            &mut gate,
        )
        .await?;
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
        options: impl Into<DeployOptions>,
    ) -> Result<(Prepared, Deployed)> {
        let options = options.into();
        options.check()?;
        let environment = self.environment(environment)?.id().clone();
        let kind = DeploymentKind::Deploy;
        let gates = self.gates_for(&environment, &kind)?;
        // The environment's label and history do not depend on the new
        // release: read them while the release is made.
        let label = environment.label();
        let (prepared, label, context) = futures::join!(
            self.prepare(request),
            self.images.label_images(self.project_id(), &label),
            self.plan_context(&environment, gates, Replaced::Read, None)
        );
        let prepared = prepared?;
        let plan = self.plan_for(
            prepared.release.clone(),
            label?,
            &environment,
            Vec::new(),
            kind,
            context?,
        )?;
        let deployed = self.execute(plan, options).await?;
        Ok((prepared, deployed))
    }

    /// Refuses a deployment that would take `release`'s record past
    /// [`MAX_RECORD_SIZE`]; a warning when it passes
    /// [`RECORD_SIZE_WARNING`].
    fn check_record_size(
        &self,
        release: &Release,
        deployment: &Deployment,
        environment: &EnvironmentId,
    ) -> Result<Option<Warning>> {
        let before = release.record_size();
        let mut after = release.clone();
        after.record_deployment(deployment.clone());
        let size = after.record_size();
        if size > MAX_RECORD_SIZE {
            return Err(Error::ReleaseRecordFull {
                project: self.project_id().clone(),
                release: release.release_id().clone(),
                environment: environment.clone(),
                size,
                limit: MAX_RECORD_SIZE,
            });
        }
        if size <= RECORD_SIZE_WARNING {
            return Ok(None);
        }
        let each = size.saturating_sub(before).max(1);
        Ok(Some(Warning::RecordNearlyFull {
            release: release.release_id().clone(),
            size,
            more: (MAX_RECORD_SIZE - size) / each,
        }))
    }
}

/// Whether a plan still has to read which release is current in its
/// environment.
pub(super) enum Replaced {
    /// Read it (one history read, beside the label read).
    Read,
    /// Already read: this release, or none.
    Known(Option<ReleaseId>),
}

/// What a plan reads beside the release and the label
/// ([`ReleaseTracker::plan_context`]).
pub(super) struct PlanContext {
    /// The release current in the environment.
    replaces: Option<ReleaseId>,
    /// That release, read when it is not the one deployed.
    replaced: Option<Release>,
    /// The required environments' newest deployments, for a soak.
    gate_history: Vec<EnvironmentHistory>,
    /// Records passed over on the way.
    skipped: Vec<SkippedRecord>,
}

/// Keeps a deploy's lease (if it holds one) before each of its writes.
struct KeepLease<'a> {
    lease: Option<&'a mut HeldLease>,
    clock: &'a dyn Clock,
}

#[async_trait::async_trait]
impl crate::write::BeforeWrite for KeepLease<'_> {
    async fn before_write(&mut self) -> Result<()> {
        match self.lease.as_deref_mut() {
            Some(held) => held.keep(self.clock.now()).await,
            None => Ok(()),
        }
    }
}

/// The image a deploy writes for one service.
pub(super) struct PlannedImage {
    image: ImageUri,
    resolved_from: Option<ImageUri>,
}
