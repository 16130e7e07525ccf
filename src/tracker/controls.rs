//! Deployment controls in the workflows: a deploy holds the environment's
//! lease from before its first write to its end, and refuses a busy or
//! frozen environment and a blocked release before writing anything.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::control::{ControlStore, Lease, LeaseOperation, LeaseRequest};
use crate::error::{Error, Result};
use crate::release::{Requester, Timestamp};
use crate::store::{ImageStore, ReleaseStore};

/// How long a deploy's lease lasts unless renewed, by default.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10 * 60);

/// How a tracker's deploys take leases.
#[derive(Clone, Debug)]
pub(super) struct LeaseSettings {
    pub(super) ttl: Duration,
    /// `None`: this machine's host name, found when a lease is taken.
    pub(super) host: Option<String>,
}

impl Default for LeaseSettings {
    fn default() -> LeaseSettings {
        LeaseSettings {
            ttl: DEFAULT_LEASE_TTL,
            host: None,
        }
    }
}

/// The name of this machine, as well as the environment says it
/// (`HOSTNAME`, `COMPUTERNAME`, `/etc/hostname`), else `unknown host`.
pub(super) fn default_host() -> String {
    let from_env = ["HOSTNAME", "COMPUTERNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|host| host.trim().to_owned())
        .find(|host| !host.is_empty());
    let from_file = || {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
    };
    let host = from_env
        .or_else(from_file)
        .unwrap_or_else(|| "unknown host".to_owned());
    // A lease takes at most this many characters.
    host.chars().take(crate::control::MAX_HOST_CHARS).collect()
}

/// The lease a running deploy holds.
pub(super) struct HeldLease {
    store: Arc<dyn ControlStore>,
    ttl: Duration,
    lease: Lease,
    renewed: Timestamp,
}

impl HeldLease {
    /// Renews the lease once a third of its time has passed since it was
    /// taken or last renewed, so a long deploy keeps it; a lease lost
    /// meanwhile (taken over after expiry, or force-unlocked) is
    /// [`Error::LeaseLost`], and the deploy must stop.
    pub(super) async fn keep(&mut self, now: Timestamp) -> Result<()> {
        let third = i64::try_from(self.ttl.as_micros() / 3).unwrap_or(i64::MAX);
        if now < self.renewed.add_micros(third) {
            return Ok(());
        }
        self.lease = self.store.renew_lease(&self.lease, now, self.ttl).await?;
        self.renewed = now;
        Ok(())
    }

    /// Gives the lease up; if that fails, the warning that says so (the
    /// lease then expires by itself).
    pub(super) async fn release(self) -> Option<Warning> {
        match self.store.release_lease(&self.lease).await {
            Ok(()) => None,
            Err(error) => Some(Warning::LeaseNotReleased {
                lease: Box::new(self.lease),
                reason: error.to_string(),
            }),
        }
    }
}

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// Before a deploy's first write: takes the environment's lease
    /// ([`Error::EnvironmentBusy`] if another holds it), then refuses a
    /// frozen environment ([`Error::EnvironmentFrozen`]) and a blocked
    /// release ([`Error::ReleaseBlocked`]) unless it is already the
    /// environment's current release, giving the lease back. `None` when the
    /// tracker has no controls.
    ///
    /// The lease is taken first, so a freeze or a block made before it was
    /// taken is always seen.
    pub(super) async fn enter(
        &self,
        plan: &DeployPlan,
        requester: &Requester,
        operation: LeaseOperation,
    ) -> Result<Option<HeldLease>> {
        let Some(store) = &self.controls else {
            return Ok(None);
        };
        let project = self.project_id();
        let host = self.lease.host.clone().unwrap_or_else(default_host);
        let request = LeaseRequest::new(
            requester.clone(),
            operation,
            plan.release_id.clone(),
            host,
            self.lease.ttl,
        )?;
        let now = self.clock.now();
        let acquired = store
            .acquire_lease(project, &plan.environment, &request, now)
            .await?;
        let held = HeldLease {
            store: Arc::clone(store),
            ttl: self.lease.ttl,
            lease: acquired.lease,
            renewed: now,
        };
        match self.refusal(store.as_ref(), plan).await {
            Ok(None) => Ok(Some(held)),
            Ok(Some(refusal)) | Err(refusal) => {
                // The refusal is the answer; a lease left behind expires.
                let _ = held.release().await;
                Err(refusal)
            }
        }
    }

    /// Why `plan` may not go ahead: a freeze of its environment, or a block
    /// of its release where that release is not current.
    async fn refusal(&self, store: &dyn ControlStore, plan: &DeployPlan) -> Result<Option<Error>> {
        let project = self.project_id();
        // Independent reads, side by side: one round trip.
        let (freeze, block) = futures::join!(
            store.environment_freeze(project, &plan.environment),
            store.release_block(project, &plan.release_id)
        );
        if let Some(freeze) = freeze? {
            return Ok(Some(Error::EnvironmentFrozen {
                freeze: Box::new(freeze),
            }));
        }
        let Some(block) = block? else {
            return Ok(None);
        };
        // Where the release is already current it may be deployed again.
        let newest = self
            .releases
            .recent_deployments(project, Some(&plan.environment), 1)
            .await?;
        let current = newest
            .records
            .first()
            .is_some_and(|record| record.release_id == plan.release_id);
        Ok((!current).then(|| Error::ReleaseBlocked {
            block: Box::new(block),
        }))
    }
}
