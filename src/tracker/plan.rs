//! Planning a deploy: the images it writes, what it reads beside the
//! release and the label, and the gates it must pass.

use std::collections::BTreeSet;

use super::*;
use crate::error::{Error, Result};
use crate::manifest::Environment;
use crate::names::{EnvironmentId, ImageUri, ReleaseId, ReleaseRef, ServiceId};
use crate::promotion::{check_gates, EnvironmentHistory, HISTORY_LIMIT};
use crate::release::{DeploymentKind, ImageEntry, Release};
use crate::store::{readable_release, ImageStore, ReleaseStore};

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
    /// `deploying` (to say which services the deployment changes), in one
    /// [`ReleaseStore::current_release`]; and for
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
            match replaces {
                Replaced::Read => {
                    let current = self
                        .releases
                        .current_release(project, environment, deploying)
                        .await?;
                    let replaces = current.deployment.map(|record| record.release_id);
                    Ok::<_, Error>((replaces, current.release, current.skipped))
                }
                Replaced::Known(Some(id)) if Some(&id) != deploying => {
                    // An unreadable release is reported, not fatal: every
                    // service then counts as changed.
                    let mut skipped = Vec::new();
                    let replaced =
                        readable_release(&self.releases, project, &id, &mut skipped).await?;
                    Ok((Some(id), replaced, skipped))
                }
                Replaced::Known(known) => Ok((known, None, Vec::new())),
            }
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
        label: PlanLabel,
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
        let PlanLabel { images, read } = label;
        let mut current = images.images;
        let mut plan = DeployPlan {
            project: self.project_id().clone(),
            release_id: release.release_id().clone(),
            environment: environment.clone(),
            kind,
            replaces,
            changes: Vec::new(),
            unchanged: Vec::new(),
            untouched: None,
            conflicts: Vec::new(),
            gates,
            warnings: Vec::new(),
            release,
            gate_history,
            changed_services: Vec::new(),
        };
        let mut skipped = Vec::new();
        for parameter in images.skipped {
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
        if read == LabelRead::Whole {
            plan.untouched = Some(current.into_keys().collect());
        }
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
    /// one of the environment's whole label, one of its newest deployment
    /// and that release ([`ReleaseStore::current_release`]: which release
    /// the deploy replaces, for the audit trail, and the services it
    /// changes; one `Query` on DynamoDB) and, only when the gates have a
    /// soak time, one of the newest [`HISTORY_LIMIT`] deployments to each
    /// required environment. Pass the plan to [`execute`](Self::execute) to
    /// carry it out without reading any of them again.
    ///
    /// This is [`plan_with`](Self::plan_with) reading the
    /// [`LabelRead::Whole`] label, so that the plan also lists the label's
    /// other services and warns of parameters there that are not images.
    pub async fn plan(&self, release: &ReleaseRef, environment: &str) -> Result<DeployPlan> {
        self.plan_with(release, environment, LabelRead::Whole).await
    }

    /// [`plan`](Self::plan), reading as much of the environment's label as
    /// `read` says. [`LabelRead::ReleaseServices`] is what
    /// [`deploy`](Self::deploy) reads: only the release's services, once
    /// the release is read, which on SSM is one round trip per 100
    /// services (10 `GetParameters` of 10 names in flight) where the whole
    /// label is one per 10.
    pub async fn plan_with(
        &self,
        release: &ReleaseRef,
        environment: &str,
        read: LabelRead,
    ) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        let kind = DeploymentKind::Deploy;
        let gates = self.gates_for(&environment, &kind)?;
        let deploying = match release {
            ReleaseRef::Id(id) => Some(id),
            ReleaseRef::Latest => None,
        };
        let project = self.project_id();
        let label = environment.label();
        let release_and_label = async {
            match read {
                // Independent reads, side by side: round trips saved.
                LabelRead::Whole => {
                    let (resolved, label) = futures::join!(
                        self.release(release),
                        self.images.label_images(project, &label)
                    );
                    Ok::<_, Error>((resolved?, label?))
                }
                LabelRead::ReleaseServices => {
                    let resolved = self.release(release).await?;
                    let services: BTreeSet<ServiceId> =
                        resolved.release.images().keys().cloned().collect();
                    let label = self
                        .images
                        .label_images_of(project, &label, &services)
                        .await?;
                    Ok((resolved, label))
                }
            }
        };
        let (read_first, context) = futures::join!(
            release_and_label,
            self.plan_context(&environment, gates, Replaced::Read, deploying)
        );
        let (resolved, label) = read_first?;
        self.plan_for(
            resolved.release,
            PlanLabel {
                images: label,
                read,
            },
            &environment,
            resolved.warnings,
            kind,
            context?,
        )
    }
}

/// How much of an environment's label a plan reads
/// ([`ReleaseTracker::plan_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LabelRead {
    /// Every parameter at the label, side by side with the release: the
    /// plan also lists the label's other services
    /// ([`DeployPlan::untouched`]) and warns of its parameters that are not
    /// images. On SSM: a page of 10 parameters per round trip, one after
    /// another (31 for 300 services).
    Whole,
    /// Only the release's services, once the release is read: all a deploy
    /// needs ([`ImageStore::label_images_of`]). [`DeployPlan::untouched`] is
    /// `None`. On SSM: 10 names per `GetParameters` call, the calls side by
    /// side.
    ReleaseServices,
}

/// Whether a plan still has to read which release is current in its
/// environment.
pub(super) enum Replaced {
    /// Read it (one history read, beside the label read).
    Read,
    /// Already read: this release, or none.
    Known(Option<ReleaseId>),
}

/// An environment's label as a plan read it.
pub(super) struct PlanLabel {
    pub(super) images: crate::LabelImages,
    pub(super) read: LabelRead,
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

/// The image a deploy writes for one service.
pub(super) struct PlannedImage {
    image: ImageUri,
    resolved_from: Option<ImageUri>,
}
