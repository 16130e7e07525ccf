//! The [`ControlStore`] trait and its forwarding impls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::Timestamp;

use super::{Acquired, Block, ControlAction, ControlEvent, Freeze, Lease, LeaseRequest};

/// Where a store keeps deployment controls: environment leases, freezes,
/// release blocks and their audit trail (see the [module docs](super)).
///
/// # Contract
///
/// - [`acquire_lease`](ControlStore::acquire_lease) is atomic: of any number
///   of concurrent calls on a free environment exactly one succeeds; the
///   others fail with [`Error::EnvironmentBusy`](crate::Error::EnvironmentBusy) carrying the winner's lease
///   as stored. A lease with the request's own id, or one expired at `now`,
///   is replaced (the expired one is returned in [`Acquired::took_over`]).
/// - [`renew_lease`](ControlStore::renew_lease) moves the expiry of the
///   stored lease with the given lease's id to `now + ttl` (even if it had
///   expired, as long as nobody took it over) and returns it;
///   [`release_lease`](ControlStore::release_lease) removes it. If the
///   environment holds no lease of that id, both fail with
///   [`Error::LeaseLost`](crate::Error::LeaseLost) naming the current holder, and change nothing.
/// - [`lease`](ControlStore::lease) returns the stored lease, expired or not.
/// - [`force_unlock`](ControlStore::force_unlock),
///   [`freeze`](ControlStore::freeze), [`unfreeze`](ControlStore::unfreeze),
///   [`block_release`](ControlStore::block_release) and
///   [`unblock_release`](ControlStore::unblock_release) change the control
///   and append one [`ControlEvent`] to the project's trail in one atomic
///   write; when there is nothing to change they return `None` and record
///   nothing. Freezing a frozen environment fails with
///   [`Error::EnvironmentFrozen`](crate::Error::EnvironmentFrozen), blocking a blocked release with
///   [`Error::ReleaseBlocked`](crate::Error::ReleaseBlocked) (each carrying the one in place), and
///   blocking more than [`MAX_ACTIVE_BLOCKS`](super::MAX_ACTIVE_BLOCKS) releases of a project with
///   [`Error::InvalidArgument`](crate::Error::InvalidArgument).
/// - Events are numbered 1, 2, … per project in the order they were
///   written; [`control_events`](ControlStore::control_events) returns the
///   newest `limit` (1 to [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE)),
///   newest first, optionally only those of one environment.
/// - Reads see every write that completed before they started. Projects,
///   and environments within a project, are independent.
#[async_trait]
pub trait ControlStore: fmt::Debug + Send + Sync {
    /// Takes the lease on `environment` of `project` for `request`, judging
    /// expiry at `now`.
    async fn acquire_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        request: &LeaseRequest,
        now: Timestamp,
    ) -> Result<Acquired>;

    /// Extends the holder's `lease` to expire at `now + ttl`; returns the
    /// lease as stored.
    async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease>;

    /// Gives the holder's `lease` up.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The lease on `environment`, expired or not, if there is one.
    async fn lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Lease>>;

    /// Removes whatever lease `environment` has, recording `action`;
    /// returns the lease removed.
    async fn force_unlock(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Lease>>;

    /// Freezes `environment`; returns the freeze.
    async fn freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Freeze>;

    /// Lifts the freeze of `environment`; returns the freeze lifted.
    async fn unfreeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Freeze>>;

    /// The freeze of `environment`, if it is frozen.
    async fn environment_freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Freeze>>;

    /// Blocks `release`; returns the block.
    async fn block_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Block>;

    /// Lifts the block of `release`; returns the block lifted.
    async fn unblock_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Option<Block>>;

    /// The block of `release`, if it is blocked.
    async fn release_block(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
    ) -> Result<Option<Block>>;

    /// Every block of the project, newest first (ties: greater release id
    /// first).
    async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>>;

    /// The newest `limit` events of the project's trail, newest first,
    /// optionally only those concerning `environment`.
    async fn control_events(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>>;
}

macro_rules! forward_control_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: ControlStore + ?Sized> ControlStore for $ty {
            async fn acquire_lease(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
                request: &LeaseRequest,
                now: Timestamp,
            ) -> Result<Acquired> {
                (**self).acquire_lease(project, environment, request, now).await
            }
            async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease> {
                (**self).renew_lease(lease, now, ttl).await
            }
            async fn release_lease(&self, lease: &Lease) -> Result<()> {
                (**self).release_lease(lease).await
            }
            async fn lease(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
            ) -> Result<Option<Lease>> {
                (**self).lease(project, environment).await
            }
            async fn force_unlock(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
                action: &ControlAction,
            ) -> Result<Option<Lease>> {
                (**self).force_unlock(project, environment, action).await
            }
            async fn freeze(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
                action: &ControlAction,
            ) -> Result<Freeze> {
                (**self).freeze(project, environment, action).await
            }
            async fn unfreeze(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
                action: &ControlAction,
            ) -> Result<Option<Freeze>> {
                (**self).unfreeze(project, environment, action).await
            }
            async fn environment_freeze(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
            ) -> Result<Option<Freeze>> {
                (**self).environment_freeze(project, environment).await
            }
            async fn block_release(
                &self,
                project: &ProjectId,
                release: &ReleaseId,
                action: &ControlAction,
            ) -> Result<Block> {
                (**self).block_release(project, release, action).await
            }
            async fn unblock_release(
                &self,
                project: &ProjectId,
                release: &ReleaseId,
                action: &ControlAction,
            ) -> Result<Option<Block>> {
                (**self).unblock_release(project, release, action).await
            }
            async fn release_block(
                &self,
                project: &ProjectId,
                release: &ReleaseId,
            ) -> Result<Option<Block>> {
                (**self).release_block(project, release).await
            }
            async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>> {
                (**self).blocks(project).await
            }
            async fn control_events(
                &self,
                project: &ProjectId,
                environment: Option<&EnvironmentId>,
                limit: usize,
            ) -> Result<Vec<ControlEvent>> {
                (**self).control_events(project, environment, limit).await
            }
        }
    )*};
}

forward_control_store!(&T, Box<T>, Arc<T>);
