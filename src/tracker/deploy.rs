//! Deploying: carrying a plan out under the environment's lease, and
//! recording it.

use super::controls::HeldLease;
use super::plan::{LabelRead, PlanLabel, Replaced};
use super::*;
use crate::control::LeaseOperation;
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ReleaseRef};
use crate::promotion::{check_gates, GateVerdict};
use crate::release::{Deployment, DeploymentKind, Release, MAX_RECORD_SIZE, RECORD_SIZE_WARNING};
use crate::store::{ImageStore, ReleaseStore};

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// Deploys a release to an environment: [`plan_with`](Self::plan_with)
    /// reading only the release's services at the environment's label
    /// ([`LabelRead::ReleaseServices`]), then [`execute`](Self::execute).
    /// Parameters of other services there are neither read nor reported;
    /// [`plan`](Self::plan) reports them.
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
        let read = LabelRead::ReleaseServices;
        let plan = self.plan_with(release, environment, read).await?;
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
    ///
    /// The plan's reads are not repeated under the lease. If another deploy
    /// wrote the environment's label after the plan was read and gave the
    /// lease back before this one took it, the parameters the plan found
    /// holding the release's images are not written again: plan again
    /// after a deploy that ran meanwhile.
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
            PlanLabel {
                images: label?,
                read: LabelRead::Whole,
            },
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
