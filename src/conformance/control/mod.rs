//! Checks of a [`ControlStore`]: leases, freezes, blocks and their events.

mod actions;
mod events;
mod lease;

pub use actions::*;
pub use events::*;
pub use lease::*;

use std::time::Duration;

use crate::control::{
    Acquired, ControlAction, ControlEvent, ControlStore, Lease, LeaseId, LeaseOperation,
    LeaseRequest, Reason,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId};
use crate::release::{Requester, Timestamp};

use crate::conformance::support::*;

pub(super) fn person(name: &str) -> Requester {
    Requester::new(format!(
        "arn:aws:sts::123456789012:assumed-role/deployer/{name}"
    ))
}

/// A deploy lease request by `who` with the fixed id `id`.
pub(super) fn request(who: &str, release: &str, ttl_seconds: u64, id: &str) -> LeaseRequest {
    LeaseRequest::new(
        person(who),
        LeaseOperation::Deploy,
        release_id(release),
        format!("{who}-host"),
        Duration::from_secs(ttl_seconds),
    )
    .expect("conformance: fixed lease request is valid")
    .with_lease_id(LeaseId::new(id).expect("conformance: fixed lease id is valid"))
}

pub(super) fn action(who: &str, reason: &str, at: Timestamp) -> ControlAction {
    ControlAction::new(
        person(who),
        Reason::new(reason).expect("conformance: fixed reason is valid"),
        at,
    )
    .expect("conformance: fixed action is valid")
}

pub(super) async fn acquire(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: &EnvironmentId,
    request: &LeaseRequest,
    now: Timestamp,
) -> Acquired {
    must(
        store
            .acquire_lease(project, environment, request, now)
            .await,
        format_args!(
            "acquire_lease({project}, {environment}, {}) at {now}",
            request.lease_id()
        ),
    )
}

pub(super) async fn held(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: &EnvironmentId,
) -> Option<Lease> {
    must(
        store.lease(project, environment).await,
        format_args!("lease({project}, {environment})"),
    )
}

pub(super) async fn events(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: Option<&str>,
    limit: usize,
) -> Vec<ControlEvent> {
    let env = environment.map(self::environment);
    must(
        store.control_events(project, env.as_ref(), limit).await,
        format_args!("control_events({project}, {environment:?}, {limit})"),
    )
}

/// The lease a busy-environment error carries; panics on any other result.
#[track_caller]
pub(super) fn busy_holder<T: std::fmt::Debug>(result: Result<T>, what: &str) -> Lease {
    match result {
        Err(Error::EnvironmentBusy { lease }) => *lease,
        other => panic!("conformance: {what} must fail with EnvironmentBusy, got {other:?}"),
    }
}

/// The holder a lost-lease error names; panics on any other result.
#[track_caller]
pub(super) fn lost_to<T: std::fmt::Debug>(result: Result<T>, what: &str) -> Option<Lease> {
    match result {
        Err(Error::LeaseLost { holder, .. }) => holder.map(|h| *h),
        other => panic!("conformance: {what} must fail with LeaseLost, got {other:?}"),
    }
}
