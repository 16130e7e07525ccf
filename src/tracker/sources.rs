//! Where the time, new release ids and the requester come from.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::names::ReleaseId;
use crate::release::{Requester, Timestamp};

/// Where the time of a release or deployment comes from.
///
/// Any `Fn() -> Timestamp` closure is a clock, which makes tests
/// deterministic.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

impl<F: Fn() -> Timestamp + Send + Sync> Clock for F {
    fn now(&self) -> Timestamp {
        self()
    }
}

/// The system clock (UTC, microseconds): the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Who is making a change, asked once per operation that records a
/// requester (`prepare`, `update`, `deploy`).
///
/// A [`Requester`] is a source that always answers itself; the `aws` feature
/// adds one that asks STS `GetCallerIdentity` for the caller's ARN.
#[async_trait]
pub trait RequesterSource: fmt::Debug + Send + Sync {
    /// The requester to record.
    async fn requester(&self) -> Result<Requester>;
}

#[async_trait]
impl RequesterSource for Requester {
    async fn requester(&self) -> Result<Requester> {
        Ok(self.clone())
    }
}

#[async_trait]
impl<T: RequesterSource + ?Sized> RequesterSource for Arc<T> {
    async fn requester(&self) -> Result<Requester> {
        (**self).requester().await
    }
}

/// Where new release and deployment ids come from.
///
/// Any `Fn() -> ReleaseId` closure is a generator (its deployment ids are
/// random).
pub trait IdGenerator: Send + Sync {
    /// A new, unused release id.
    fn new_release_id(&self) -> ReleaseId;

    /// A new, unused deployment id (default: a random UUID v4 string).
    fn new_deployment_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

impl<F: Fn() -> ReleaseId + Send + Sync> IdGenerator for F {
    fn new_release_id(&self) -> ReleaseId {
        self()
    }
}

/// Random UUID v4 ids, as the old tools made: the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_release_id(&self) -> ReleaseId {
        ReleaseId::random()
    }
}
