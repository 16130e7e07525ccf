//! Rolling an environment back to the release that was current there
//! before the present one.

use super::*;
use crate::error::{Error, Result};
use crate::names::{ReleaseId, ReleaseRef};
use crate::promotion::{RollbackRefusal, HISTORY_LIMIT};
use crate::release::DeploymentKind;
use crate::store::{ImageStore, ReleaseStore};

use super::plan::{LabelRead, PlanLabel, Replaced};

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// The plan of rolling `environment` back: to `to`, or to the release
    /// that was current there before the present one (the newest
    /// deployment there of another release). Executing it records a
    /// deployment of kind [`DeploymentKind::Rollback`] naming the release it
    /// replaced, and writes only the parameters that differ.
    ///
    /// Reads the newest [`HISTORY_LIMIT`] deployments to the environment
    /// (one history read) side by side with its label and `to` when given,
    /// then the release rolled back to (unless given) and the release it
    /// replaces, side by side. The promotion gates are not checked: the
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
        let kind = DeploymentKind::Rollback;
        // The history, the release asked for and the label, side by side.
        let label = environment.label();
        let asked = async {
            match to {
                Some(to) => self.release(to).await.map(Some),
                None => Ok(None),
            }
        };
        let (history, asked, label) = futures::join!(
            self.releases
                .recent_deployments(project, Some(&environment), HISTORY_LIMIT),
            asked,
            self.images.label_images(project, &label)
        );
        let (history, asked, label) = (history?, asked?, label?);
        let mut warnings: Vec<Warning> = record_warnings(history.skipped).collect();
        let refuse = |why| Error::NothingToRollBack {
            project: project.clone(),
            environment: environment.clone(),
            why,
        };
        let Some(current) = history.records.first().map(|r| r.release_id.clone()) else {
            return Err(refuse(RollbackRefusal::NeverDeployed));
        };
        let known = Replaced::Known(Some(current.clone()));
        let (release, context) = match asked {
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
                let context = self
                    .plan_context(&environment, None, known, Some(release.release_id()))
                    .await?;
                (release, context)
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
                // The release rolled back to and the one it replaces.
                let reference = ReleaseRef::Id(previous.clone());
                let (release, context) = futures::join!(
                    self.release(&reference),
                    self.plan_context(&environment, None, known, Some(&previous))
                );
                (release?.release, context?)
            }
        };
        self.plan_for(
            release,
            PlanLabel {
                images: label,
                read: LabelRead::Whole,
            },
            &environment,
            warnings,
            kind,
            context,
        )
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
