//! Deployment controls as commands: who holds an environment, forcing its
//! lease free, freezing an environment, blocking a release, and the trail
//! of those actions. Each action records who and why.

use std::sync::Arc;

use super::*;
use crate::control::{Block, ControlAction, ControlEvent, ControlStore, Freeze, Lease, Reason};
use crate::error::{Error, Result};
use crate::names::ReleaseRef;
use crate::store::{ImageStore, ReleaseStore};

/// The controls in force on an environment, from
/// [`ReleaseTracker::controls_status`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ControlsStatus {
    /// The environment's lease, if any (it may have expired: see
    /// [`Lease::is_expired`]).
    pub lease: Option<Lease>,
    /// The environment's freeze, if it is frozen.
    pub freeze: Option<Freeze>,
    /// Every block of the project, newest first.
    pub blocks: Vec<Block>,
}

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// The controls store, or [`Error::NoControls`].
    fn controls(&self) -> Result<&Arc<dyn ControlStore>> {
        self.controls.as_ref().ok_or_else(|| Error::NoControls {
            project: self.project_id().clone(),
        })
    }

    /// Who is making a control change, why, and now.
    async fn action(&self, reason: &str) -> Result<ControlAction> {
        let reason = Reason::new(reason)?;
        let by = self.requester.requester().await?;
        ControlAction::new(by, reason, self.clock.now())
    }

    /// The lease on `environment`, if there is one (whether or not it has
    /// expired); no lease id needed.
    pub async fn lease_status(&self, environment: &str) -> Result<Option<Lease>> {
        let environment = self.environment(environment)?.id().clone();
        self.controls()?
            .lease(self.project_id(), &environment)
            .await
    }

    /// Removes whatever lease `environment` has, recording who and
    /// `reason` in the trail; returns the lease removed. For a holder that
    /// died: a lease also expires by itself.
    pub async fn force_unlock(&self, environment: &str, reason: &str) -> Result<Option<Lease>> {
        let environment = self.environment(environment)?.id().clone();
        let controls = self.controls()?;
        let action = self.action(reason).await?;
        controls
            .force_unlock(self.project_id(), &environment, &action)
            .await
    }

    /// Freezes `environment`: every deploy and rollback to it is refused
    /// until [`unfreeze`](Self::unfreeze). Recorded in the trail.
    pub async fn freeze(&self, environment: &str, reason: &str) -> Result<Freeze> {
        let environment = self.environment(environment)?.id().clone();
        let controls = self.controls()?;
        let action = self.action(reason).await?;
        controls
            .freeze(self.project_id(), &environment, &action)
            .await
    }

    /// Lifts the freeze of `environment`; returns it (`None`, and nothing
    /// recorded, if the environment was not frozen).
    pub async fn unfreeze(&self, environment: &str, reason: &str) -> Result<Option<Freeze>> {
        let environment = self.environment(environment)?.id().clone();
        let controls = self.controls()?;
        let action = self.action(reason).await?;
        controls
            .unfreeze(self.project_id(), &environment, &action)
            .await
    }

    /// Blocks a release: it can no longer be deployed anywhere it is not
    /// already current. `latest` resolves first; the release must exist.
    pub async fn block(&self, release: &ReleaseRef, reason: &str) -> Result<Block> {
        let controls = self.controls()?;
        let resolved = self.release(release).await?;
        let action = self.action(reason).await?;
        controls
            .block_release(self.project_id(), resolved.release.release_id(), &action)
            .await
    }

    /// Lifts the block of a release; returns it (`None`, and nothing
    /// recorded, if it was not blocked).
    pub async fn unblock(&self, release: &ReleaseRef, reason: &str) -> Result<Option<Block>> {
        let controls = self.controls()?;
        let id = match release {
            ReleaseRef::Id(id) => id.clone(),
            ReleaseRef::Latest => self.release(release).await?.release.release_id().clone(),
        };
        let action = self.action(reason).await?;
        controls
            .unblock_release(self.project_id(), &id, &action)
            .await
    }

    /// The lease, freeze and blocks in force for `environment`, read side by
    /// side.
    pub async fn controls_status(&self, environment: &str) -> Result<ControlsStatus> {
        let environment = self.environment(environment)?.id().clone();
        let controls = self.controls()?;
        let project = self.project_id();
        let (lease, freeze, blocks) = futures::join!(
            controls.lease(project, &environment),
            controls.environment_freeze(project, &environment),
            controls.blocks(project),
        );
        Ok(ControlsStatus {
            lease: lease?,
            freeze: freeze?,
            blocks: blocks?,
        })
    }

    /// The newest `limit` control events, newest first, of one environment
    /// or (`None`) of the whole project.
    pub async fn control_events(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>> {
        let environment = match environment {
            Some(name) => Some(self.environment(name)?.id().clone()),
            None => None,
        };
        self.controls()?
            .control_events(self.project_id(), environment.as_ref(), limit)
            .await
    }
}
