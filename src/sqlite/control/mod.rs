//! [`ControlStore`] on the `leases`, `freezes`, `blocks` and
//! `control_events` tables (schema version 3). Every change is one
//! `BEGIN IMMEDIATE` transaction: it reads under the write lock, so the
//! read and the write are one atomic step for every process on the file,
//! and a change and its event are committed together.

mod operations;
mod rows;

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;

use crate::control::{
    sort_blocks, ttl_micros, Acquired, Block, ControlAction, ControlEvent, ControlStore, Freeze,
    Lease, LeaseRequest,
};
use crate::error::Result;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::Timestamp;
use crate::sqlite::SqliteStore;
use crate::store::check_limit;

use operations::*;
use rows::*;

impl SqliteStore {
    /// Runs `job` on the store's thread with a [`Doing`] named `operation`.
    async fn control<T: Send + 'static>(
        &self,
        label: &'static str,
        operation: String,
        job: impl FnOnce(&mut Connection, &Doing<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(label, move |connection, path| {
            job(connection, &Doing { path, operation })
        })
        .await
    }
}

#[async_trait]
impl ControlStore for SqliteStore {
    async fn acquire_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        request: &LeaseRequest,
        now: Timestamp,
    ) -> Result<Acquired> {
        let (project, environment, request) =
            (project.clone(), environment.clone(), request.clone());
        let operation =
            format!("taking the lease on environment {environment} of project {project}");
        self.control("taking a lease", operation, move |c, doing| {
            acquire(c, doing, &project, &environment, &request, now)
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease> {
        let expires = now.add_micros(ttl_micros(ttl)?);
        let lease = lease.clone();
        let operation = format!(
            "renewing lease {} on environment {} of project {}",
            lease.lease_id, lease.environment, lease.project
        );
        self.control("renewing a lease", operation, move |c, doing| {
            renew(c, doing, &lease, expires)
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        let operation = format!(
            "releasing lease {} on environment {} of project {}",
            lease.lease_id, lease.environment, lease.project
        );
        self.control("releasing a lease", operation, move |c, doing| {
            release(c, doing, &lease)
        })
        .await
    }

    async fn lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Lease>> {
        let (project, environment) = (project.clone(), environment.clone());
        let operation =
            format!("reading the lease on environment {environment} of project {project}");
        self.control("reading a lease", operation, move |c, doing| {
            lease_row(c, doing, &project, &environment)
        })
        .await
    }

    async fn force_unlock(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Lease>> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("force-unlocking environment {environment} of project {project}");
        self.control("force-unlocking", operation, move |c, doing| {
            force_unlock(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Freeze> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("freezing environment {environment} of project {project}");
        self.control("freezing", operation, move |c, doing| {
            freeze(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn unfreeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Freeze>> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("unfreezing environment {environment} of project {project}");
        self.control("unfreezing", operation, move |c, doing| {
            unfreeze(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn environment_freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Freeze>> {
        let (project, environment) = (project.clone(), environment.clone());
        let operation =
            format!("reading the freeze of environment {environment} of project {project}");
        self.control("reading a freeze", operation, move |c, doing| {
            freeze_row(c, doing, &project, &environment)
        })
        .await
    }

    async fn block_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Block> {
        let (project, release, action) = (project.clone(), release.clone(), action.clone());
        let operation = format!("blocking release {release} of project {project}");
        self.control("blocking", operation, move |c, doing| {
            block(c, doing, &project, &release, &action)
        })
        .await
    }

    async fn unblock_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Option<Block>> {
        let (project, release, action) = (project.clone(), release.clone(), action.clone());
        let operation = format!("unblocking release {release} of project {project}");
        self.control("unblocking", operation, move |c, doing| {
            unblock(c, doing, &project, &release, &action)
        })
        .await
    }

    async fn release_block(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
    ) -> Result<Option<Block>> {
        let (project, release) = (project.clone(), release.clone());
        let operation = format!("reading the block of release {release} of project {project}");
        self.control("reading a block", operation, move |c, doing| {
            block_row(c, doing, &project, &release)
        })
        .await
    }

    async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>> {
        let project = project.clone();
        let operation = format!("listing the blocked releases of project {project}");
        self.control("listing blocks", operation, move |c, doing| {
            let mut blocks = select_all(
                c,
                doing,
                "SELECT record FROM blocks WHERE project_id = ?1",
                (project.as_str(),),
                &format!("a block of project {project}"),
            )?;
            sort_blocks(&mut blocks);
            Ok(blocks)
        })
        .await
    }

    async fn control_events(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>> {
        let limit = check_limit(limit)?;
        let (project, environment) = (project.clone(), environment.cloned());
        let operation = format!("reading the control events of project {project}");
        self.control("reading control events", operation, move |c, doing| {
            events(c, doing, &project, environment.as_ref(), limit)
        })
        .await
    }
}
