//! Rolling an environment back to the release that was current there
//! before the present one.

use super::*;
use crate::error::{Error, Result};
use crate::names::{ReleaseId, ReleaseRef};
use crate::promotion::{RollbackRefusal, HISTORY_LIMIT};
use crate::release::DeploymentKind;
use crate::store::{ImageStore, ReleaseStore};

use super::deploy::Replaced;

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// The plan of rolling `environment` back: to `to`, or to the release
    /// that was current there before the present one (the newest
    /// deployment there of another release). Executing it records a
    /// deployment of kind [`DeploymentKind::Rollback`] naming the release it
    /// replaced, and writes only the parameters that differ.
    ///
    /// Reads the newest [`HISTORY_LIMIT`] deployments to the environment
    /// (one history read, beside the read of `to` when given), then the
    /// release rolled back to, and as [`plan`](Self::plan) does, the
    /// environment's label and the release it replaces. The promotion gates are not checked: the
    /// release already ran there. Fails with [`Error::NothingToRollBack`]
    /// when nothing was deployed there, when no other release is among
    /// those deployments, when `to` is the release current there, or when
    /// `to` never ran there.
    pub async fn plan_rollback(
        &self,
        environment: &str,
        to: Option<&ReleaseRef>,
    ) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        let project = self.project_id();
        let history = self
            .releases
            .recent_deployments(project, Some(&environment), HISTORY_LIMIT);
        let (history, asked) = match to {
            Some(to) => {
                let (history, asked) = futures::join!(history, self.release(to));
                (history?, Some(asked?))
            }
            None => (history.await?, None),
        };
        let mut warnings: Vec<Warning> = record_warnings(history.skipped).collect();
        let refuse = |why| Error::NothingToRollBack {
            project: project.clone(),
            environment: environment.clone(),
            why,
        };
        let Some(current) = history.records.first().map(|r| r.release_id.clone()) else {
            return Err(refuse(RollbackRefusal::NeverDeployed));
        };
        let release = match asked {
            Some(asked) => {
                let release = asked.release;
                warnings.extend(asked.warnings);
                if release.release_id() == &current {
                    return Err(refuse(RollbackRefusal::AlreadyCurrent { release: current }));
                }
                let ran_there = release
                    .deployments()
                    .iter()
                    .any(|d| d.environment() == &environment);
                if !ran_there {
                    return Err(refuse(RollbackRefusal::NeverRanThere {
                        release: release.release_id().clone(),
                    }));
                }
                release
            }
            None => {
                let previous: Option<ReleaseId> = history
                    .records
                    .iter()
                    .map(|r| &r.release_id)
                    .find(|id| **id != current)
                    .cloned();
                let Some(previous) = previous else {
                    return Err(refuse(RollbackRefusal::NoEarlierRelease {
                        current,
                        read: history.records.len(),
                        complete: history.records.len() < HISTORY_LIMIT,
                    }));
                };
                self.release(&ReleaseRef::Id(previous)).await?.release
            }
        };
        self.plan_for(
            release,
            &environment,
            warnings,
            DeploymentKind::Rollback,
            Replaced::Known(Some(current)),
        )
        .await
    }

    /// Rolls `environment` back: [`plan_rollback`](Self::plan_rollback),
    /// then [`execute`](Self::execute). Failures are reported as for
    /// [`deploy`](Self::deploy).
    pub async fn rollback(
        &self,
        environment: &str,
        to: Option<&ReleaseRef>,
        options: impl Into<DeployOptions>,
    ) -> Result<Deployed> {
        let options = options.into();
        options.check()?;
        let plan = self.plan_rollback(environment, to).await?;
        self.execute(plan, options).await
    }
}
