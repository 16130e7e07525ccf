//! Environment leases: who is deploying to an environment right now.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};

use super::actions::check_requester;
use super::{MAX_HOST_CHARS, MAX_LEASE_ID_CHARS, MAX_LEASE_TTL, MIN_LEASE_TTL};

/// A lease's identity: what [`renew_lease`](super::ControlStore::renew_lease) and
/// [`release_lease`](super::ControlStore::release_lease) are conditional on.
/// 1 to 128 characters from `A-Z a-z 0-9 _ . -`; a random UUID by default.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LeaseId(String);

impl LeaseId {
    /// A new random id (UUID v4).
    pub fn random() -> LeaseId {
        LeaseId(uuid::Uuid::new_v4().to_string())
    }

    /// Validates `value`.
    pub fn new(value: impl Into<String>) -> Result<LeaseId> {
        let value = value.into();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if value.is_empty() || value.len() > MAX_LEASE_ID_CHARS || !value.chars().all(valid_char) {
            return Err(Error::InvalidArgument {
                argument: "lease_id",
                reason: format!(
                    "\"{}\" is not a lease id: 1 to {MAX_LEASE_ID_CHARS} characters from \
                     letters, digits, `_`, `.` and `-`",
                    Escaped::new(&value)
                ),
            });
        }
        Ok(LeaseId(value))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseId({:?})", self.0)
    }
}

impl<'de> Deserialize<'de> for LeaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        LeaseId::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What a lease is taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaseOperation {
    /// Deploying a release.
    Deploy,
    /// Rolling an environment back to an earlier release.
    Rollback,
}

impl LeaseOperation {
    /// `deploy` or `rollback`, as stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            LeaseOperation::Deploy => "deploy",
            LeaseOperation::Rollback => "rollback",
        }
    }

    /// What an environment under this operation is being: `deployed`,
    /// `rolled back`.
    fn participle(&self) -> &'static str {
        match self {
            LeaseOperation::Deploy => "deployed",
            LeaseOperation::Rollback => "rolled back",
        }
    }
}

impl fmt::Display for LeaseOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// `ttl` in microseconds, if it is within [`MIN_LEASE_TTL`] and
/// [`MAX_LEASE_TTL`].
pub(crate) fn ttl_micros(ttl: Duration) -> Result<i64> {
    if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        return Err(Error::InvalidArgument {
            argument: "ttl",
            reason: format!(
                "a lease lasts {} s to {} s, got {:.3} s",
                MIN_LEASE_TTL.as_secs(),
                MAX_LEASE_TTL.as_secs(),
                ttl.as_secs_f64()
            ),
        });
    }
    // At most a day: fits easily.
    Ok(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

/// What [`ControlStore::acquire_lease`](super::ControlStore::acquire_lease) is asked for: who, what, from
/// where, for how long, and the new lease's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    lease_id: LeaseId,
    holder: Requester,
    operation: LeaseOperation,
    release: ReleaseId,
    host: String,
    ttl: Duration,
}

impl LeaseRequest {
    /// A request with a random [`LeaseId`]. Fails with
    /// [`Error::InvalidArgument`] if `host` is empty or longer than
    /// [`MAX_HOST_CHARS`], the requester id longer than
    /// [`MAX_REQUESTER_CHARS`](super::MAX_REQUESTER_CHARS), or `ttl` outside [`MIN_LEASE_TTL`] to
    /// [`MAX_LEASE_TTL`].
    pub fn new(
        holder: Requester,
        operation: LeaseOperation,
        release: ReleaseId,
        host: impl Into<String>,
        ttl: Duration,
    ) -> Result<LeaseRequest> {
        let host = host.into();
        let chars = host.chars().count();
        if chars == 0 || chars > MAX_HOST_CHARS {
            return Err(Error::InvalidArgument {
                argument: "host",
                reason: format!("must be 1 to {MAX_HOST_CHARS} characters, got {chars}"),
            });
        }
        check_requester(&holder, "holder")?;
        ttl_micros(ttl)?;
        Ok(LeaseRequest {
            lease_id: LeaseId::random(),
            holder,
            operation,
            release,
            host,
            ttl,
        })
    }

    /// This request with the lease id `id`. Acquiring again with the id of
    /// the lease already held succeeds (a retry after a lost answer does
    /// not lock its own caller out).
    pub fn with_lease_id(mut self, id: LeaseId) -> LeaseRequest {
        self.lease_id = id;
        self
    }

    /// The new lease's id.
    pub fn lease_id(&self) -> &LeaseId {
        &self.lease_id
    }

    /// Who asks.
    pub fn holder(&self) -> &Requester {
        &self.holder
    }

    /// For what.
    pub fn operation(&self) -> LeaseOperation {
        self.operation
    }

    /// The release being deployed (or rolled back to).
    pub fn release(&self) -> &ReleaseId {
        &self.release
    }

    /// The host the caller runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How long the lease lasts unless renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease this request makes on `environment` of `project` at `now`.
    pub fn lease_at(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        now: Timestamp,
    ) -> Lease {
        Lease {
            lease_id: self.lease_id.clone(),
            project: project.clone(),
            environment: environment.clone(),
            holder: self.holder.clone(),
            operation: self.operation,
            release: self.release.clone(),
            host: self.host.clone(),
            acquired: now,
            // Checked in `new`.
            expires: now.add_micros(ttl_micros(self.ttl).unwrap_or(0)),
        }
    }
}

/// A lease on one environment of one project, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Its id.
    pub lease_id: LeaseId,
    /// The project.
    pub project: ProjectId,
    /// The environment.
    pub environment: EnvironmentId,
    /// Who holds it.
    pub holder: Requester,
    /// For what.
    pub operation: LeaseOperation,
    /// The release being deployed (or rolled back to).
    pub release: ReleaseId,
    /// The host the holder runs on.
    pub host: String,
    /// When it was acquired.
    pub acquired: Timestamp,
    /// When it expires unless renewed; from then on it can be taken over.
    pub expires: Timestamp,
}

impl Lease {
    /// Whether the lease has expired at `now` (it expires at
    /// [`expires`](Lease::expires) exactly).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires
    }
}

impl fmt::Display for Lease {
    /// `being deployed by alice (release R, since T UTC, expires T2 UTC;
    /// host H, lease L)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "being {} by {} (release `{}`, since {} UTC, expires {} UTC; host {}, lease {})",
            self.operation.participle(),
            Escaped::new(self.holder.display_name()),
            self.release,
            self.acquired,
            self.expires,
            Escaped::new(&self.host),
            self.lease_id
        )
    }
}

/// What [`ControlStore::acquire_lease`](super::ControlStore::acquire_lease) got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// The lease now held.
    pub lease: Lease,
    /// The expired lease it replaced, if it took one over.
    pub took_over: Option<Lease>,
}

/// The error of an acquire that found `holder`.
pub(crate) fn busy(holder: Lease) -> Error {
    Error::EnvironmentBusy {
        lease: Box::new(holder),
    }
}

/// The error of a renewal or release of `lease` that found `holder`.
pub(crate) fn lost(lease: &Lease, holder: Option<Lease>) -> Error {
    Error::LeaseLost {
        project: lease.project.clone(),
        environment: lease.environment.clone(),
        lease: lease.lease_id.clone(),
        holder: holder.map(Box::new),
    }
}
