//! Deployment controls, an optional capability of a store: who is deploying
//! to an environment right now (its **lease**), environments closed to every
//! deploy (**freezes**), releases that may not be deployed (**blocks**), and
//! the audit trail of those controls (**events**).
//!
//! [`ControlStore`] is a trait of its own, apart from
//! [`ReleaseStore`](crate::ReleaseStore), so a store without it keeps
//! working and callers ask for it only where they use it. It is object safe
//! (`Arc<dyn ControlStore>` works), and `&T`, `Box<T>` and `Arc<T>` of a
//! control store are control stores too. Every backend of this crate has it:
//! [`InMemoryReleaseStore`](crate::memory::InMemoryReleaseStore), the SQLite
//! store and the DynamoDB release store (which keeps these records in the
//! release table, invisible to every reader of releases).
//!
//! # Leases
//!
//! A deploy takes the environment's lease before its first write and
//! releases it at the end. The lease says who holds it, for what operation
//! and release, from which host, since when, and until when:
//!
//! - [`acquire_lease`](ControlStore::acquire_lease) is one conditional
//!   create. When another holder's lease has not expired it fails with
//!   [`Error::EnvironmentBusy`], which carries that lease ("environment
//!   `prod` is being deployed by alice (release R, since T, expires T2)").
//!   A lease past its expiry is taken over, conditionally on the expired
//!   lease's id, and [`Acquired::took_over`] says whose it was.
//! - [`renew_lease`](ControlStore::renew_lease) and
//!   [`release_lease`](ControlStore::release_lease) act only on the
//!   holder's own lease (conditionally on its id); otherwise they fail with
//!   [`Error::LeaseLost`], naming who holds the environment now.
//! - Expiry is judged against a `now` the caller passes, so a caller decides
//!   which clock to trust and tests inject one.
//! - [`force_unlock`](ControlStore::force_unlock) removes whatever lease is
//!   there and records who did it and why: never silently.
//!
//! # Freezes, blocks and events
//!
//! A [`Freeze`] closes an environment until it is lifted; a [`Block`] stops
//! a release from being deployed. Both take a [`ControlAction`] (who, why,
//! when; the reason is required), and every change of them, like every
//! forced unlock, is recorded as a [`ControlEvent`] in the same atomic
//! write as the change, readable newest first per project or per
//! environment. A call that finds nothing to change (lifting a freeze that
//! is not there) changes nothing, records nothing and returns `None`.
//!
//! Every backend passes the checks in `conformance` (feature
//! `conformance`, [`for_each_control_store_check!`](crate::for_each_control_store_check)).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};

/// The longest [`Reason`], in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// The longest host name a [`LeaseRequest`] takes, in characters.
pub const MAX_HOST_CHARS: usize = 255;

/// The longest requester id ([`Requester::id`]) a lease or a control action
/// takes, in characters: the longest IAM ARN. With [`MAX_REASON_CHARS`]
/// it keeps every stored control record a few kilobytes at most.
pub const MAX_REQUESTER_CHARS: usize = 2048;

/// The shortest lease a [`LeaseRequest`] takes.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

/// The longest lease a [`LeaseRequest`] takes (and a renewal grants): a
/// day. A deploy that runs longer renews its lease.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The most releases of one project that can be blocked at once.
pub const MAX_ACTIVE_BLOCKS: usize = 500;

/// The longest [`LeaseId`], in characters.
const MAX_LEASE_ID_CHARS: usize = 128;

/// A lease's identity: what [`renew_lease`](ControlStore::renew_lease) and
/// [`release_lease`](ControlStore::release_lease) are conditional on.
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

/// Why a control was changed: required, not blank, at most
/// [`MAX_REASON_CHARS`] characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Reason(String);

impl Reason {
    /// Validates `text`.
    pub fn new(text: impl Into<String>) -> Result<Reason> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(Error::InvalidArgument {
                argument: "reason",
                reason: "a reason is required (it is recorded in the audit trail)".to_owned(),
            });
        }
        let chars = text.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(Error::InvalidArgument {
                argument: "reason",
                reason: format!("is {chars} characters long; at most {MAX_REASON_CHARS} are kept"),
            });
        }
        Ok(Reason(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Escaped::whole(&self.0))
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason({:?})", self.0)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Reason::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

fn check_requester(requester: &Requester, argument: &'static str) -> Result<()> {
    let chars = requester.id().chars().count();
    if chars == 0 || chars > MAX_REQUESTER_CHARS {
        return Err(Error::InvalidArgument {
            argument,
            reason: format!(
                "the requester id must be 1 to {MAX_REQUESTER_CHARS} characters, got {chars}"
            ),
        });
    }
    Ok(())
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

/// What [`ControlStore::acquire_lease`] is asked for: who, what, from
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
    /// [`MAX_REQUESTER_CHARS`], or `ttl` outside [`MIN_LEASE_TTL`] to
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

/// What [`ControlStore::acquire_lease`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// The lease now held.
    pub lease: Lease,
    /// The expired lease it replaced, if it took one over.
    pub took_over: Option<Lease>,
}

/// Who changes a control, why and when: what a freeze, a block and a forced
/// unlock record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlAction {
    by: Requester,
    reason: Reason,
    at: Timestamp,
}

impl ControlAction {
    /// Fails with [`Error::InvalidArgument`] if the requester id is longer
    /// than [`MAX_REQUESTER_CHARS`].
    pub fn new(by: Requester, reason: Reason, at: Timestamp) -> Result<ControlAction> {
        check_requester(&by, "by")?;
        Ok(ControlAction { by, reason, at })
    }

    /// Who.
    pub fn by(&self) -> &Requester {
        &self.by
    }

    /// Why.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// When.
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// A frozen environment: no deploy or rollback until it is lifted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The project.
    pub project: ProjectId,
    /// The environment.
    pub environment: EnvironmentId,
    /// Who froze it.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// Since when.
    pub since: Timestamp,
}

impl Freeze {
    /// The freeze `action` makes.
    pub fn new(project: &ProjectId, environment: &EnvironmentId, action: &ControlAction) -> Freeze {
        Freeze {
            project: project.clone(),
            environment: environment.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            since: action.at,
        }
    }
}

/// A blocked release: it may not be deployed anywhere it is not already
/// current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The project.
    pub project: ProjectId,
    /// The release.
    pub release: ReleaseId,
    /// Who blocked it.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// Since when.
    pub since: Timestamp,
}

impl Block {
    /// The block `action` makes.
    pub fn new(project: &ProjectId, release: &ReleaseId, action: &ControlAction) -> Block {
        Block {
            project: project.clone(),
            release: release.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            since: action.at,
        }
    }
}

/// What a [`ControlEvent`] changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlChange {
    /// A lease was removed by force.
    ForceUnlock {
        /// The environment.
        environment: EnvironmentId,
        /// The lease removed.
        lease: Lease,
    },
    /// An environment was frozen.
    Freeze {
        /// The environment.
        environment: EnvironmentId,
    },
    /// A freeze was lifted.
    Unfreeze {
        /// The environment.
        environment: EnvironmentId,
        /// The freeze lifted.
        lifted: Freeze,
    },
    /// A release was blocked.
    Block {
        /// The release.
        release: ReleaseId,
    },
    /// A block was lifted.
    Unblock {
        /// The release.
        release: ReleaseId,
        /// The block lifted.
        lifted: Block,
    },
}

impl ControlChange {
    /// The environment it concerns, if it concerns one (blocks concern a
    /// release).
    pub fn environment(&self) -> Option<&EnvironmentId> {
        match self {
            ControlChange::ForceUnlock { environment, .. }
            | ControlChange::Freeze { environment }
            | ControlChange::Unfreeze { environment, .. } => Some(environment),
            ControlChange::Block { .. } | ControlChange::Unblock { .. } => None,
        }
    }

    /// `force_unlock`, `freeze`, `unfreeze`, `block` or `unblock`, as
    /// stored.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlChange::ForceUnlock { .. } => "force_unlock",
            ControlChange::Freeze { .. } => "freeze",
            ControlChange::Unfreeze { .. } => "unfreeze",
            ControlChange::Block { .. } => "block",
            ControlChange::Unblock { .. } => "unblock",
        }
    }
}

/// One entry of a project's control audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Its position in the project's trail: 1 for the first event, then
    /// one more for each.
    pub sequence: u64,
    /// The project.
    pub project: ProjectId,
    /// Who.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// When.
    pub at: Timestamp,
    /// What changed.
    #[serde(flatten)]
    pub change: ControlChange,
}

impl ControlEvent {
    /// Event number `sequence` of `project`: `action` making `change`.
    pub fn new(
        sequence: u64,
        project: &ProjectId,
        action: &ControlAction,
        change: ControlChange,
    ) -> ControlEvent {
        ControlEvent {
            sequence,
            project: project.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            at: action.at,
            change,
        }
    }

    /// The environment it concerns, if any.
    pub fn environment(&self) -> Option<&EnvironmentId> {
        self.change.environment()
    }
}

impl fmt::Display for ControlEvent {
    /// `#3 2020-01-01T00:00:00 UTC alice froze prod: "incident INC-1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} UTC {} ",
            self.sequence,
            self.at,
            Escaped::new(self.by.display_name())
        )?;
        match &self.change {
            ControlChange::ForceUnlock { environment, lease } => write!(
                f,
                "force-unlocked {environment} (lease {} of {}, release `{}`)",
                lease.lease_id,
                Escaped::new(lease.holder.display_name()),
                lease.release
            )?,
            ControlChange::Freeze { environment } => write!(f, "froze {environment}")?,
            ControlChange::Unfreeze {
                environment,
                lifted,
            } => write!(
                f,
                "unfroze {environment} (frozen by {} since {} UTC)",
                Escaped::new(lifted.by.display_name()),
                lifted.since
            )?,
            ControlChange::Block { release } => write!(f, "blocked release `{release}`")?,
            ControlChange::Unblock { release, lifted } => write!(
                f,
                "unblocked release `{release}` (blocked by {} since {} UTC)",
                Escaped::new(lifted.by.display_name()),
                lifted.since
            )?,
        }
        write!(f, ": \"{}\"", self.reason)
    }
}

/// Where a store keeps deployment controls: environment leases, freezes,
/// release blocks and their audit trail (see the [module docs](self)).
///
/// # Contract
///
/// - [`acquire_lease`](ControlStore::acquire_lease) is atomic: of any number
///   of concurrent calls on a free environment exactly one succeeds; the
///   others fail with [`Error::EnvironmentBusy`] carrying the winner's lease
///   as stored. A lease with the request's own id, or one expired at `now`,
///   is replaced (the expired one is returned in [`Acquired::took_over`]).
/// - [`renew_lease`](ControlStore::renew_lease) moves the expiry of the
///   stored lease with the given lease's id to `now + ttl` (even if it had
///   expired, as long as nobody took it over) and returns it;
///   [`release_lease`](ControlStore::release_lease) removes it. If the
///   environment holds no lease of that id, both fail with
///   [`Error::LeaseLost`] naming the current holder, and change nothing.
/// - [`lease`](ControlStore::lease) returns the stored lease, expired or not.
/// - [`force_unlock`](ControlStore::force_unlock),
///   [`freeze`](ControlStore::freeze), [`unfreeze`](ControlStore::unfreeze),
///   [`block_release`](ControlStore::block_release) and
///   [`unblock_release`](ControlStore::unblock_release) change the control
///   and append one [`ControlEvent`] to the project's trail in one atomic
///   write; when there is nothing to change they return `None` and record
///   nothing. Freezing a frozen environment fails with
///   [`Error::EnvironmentFrozen`], blocking a blocked release with
///   [`Error::ReleaseBlocked`] (each carrying the one in place), and
///   blocking more than [`MAX_ACTIVE_BLOCKS`] releases of a project with
///   [`Error::InvalidArgument`].
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

/// Sorts blocks newest first, ties by greater release id first.
pub(crate) fn sort_blocks(blocks: &mut [Block]) {
    blocks.sort_by(|a, b| (b.since, &b.release).cmp(&(a.since, &a.release)));
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

/// The error of blocking one release too many.
pub(crate) fn too_many_blocks(project: &ProjectId, release: &ReleaseId) -> Error {
    Error::InvalidArgument {
        argument: "release",
        reason: format!(
            "cannot block release `{release}`: project `{project}` already has \
             {MAX_ACTIVE_BLOCKS} blocked releases; unblock some first"
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn lease() -> Lease {
        LeaseRequest::new(
            Requester::new("arn:aws:sts::123456789012:assumed-role/deployer/alice"),
            LeaseOperation::Deploy,
            ReleaseId::new("r-1").unwrap(),
            "build-7",
            Duration::from_secs(600),
        )
        .unwrap()
        .with_lease_id(LeaseId::new("lease-1").unwrap())
        .lease_at(
            &ProjectId::new("storage").unwrap(),
            &EnvironmentId::new("prod").unwrap(),
            at("2024-05-01T10:00:00"),
        )
    }

    #[test]
    fn a_lease_expires_at_acquired_plus_ttl_and_says_who_holds_it() {
        let lease = lease();
        assert_eq!(lease.expires, at("2024-05-01T10:10:00"));
        assert!(!lease.is_expired(at("2024-05-01T10:09:59.999999")));
        assert!(lease.is_expired(at("2024-05-01T10:10:00")));
        assert_eq!(
            lease.to_string(),
            "being deployed by alice (release `r-1`, since 2024-05-01T10:00:00 UTC, expires \
             2024-05-01T10:10:00 UTC; host build-7, lease lease-1)"
        );
    }

    #[test]
    fn stored_shapes_round_trip_and_avoid_the_index_keys() {
        let lease = lease();
        let action = ControlAction::new(
            Requester::new("bob"),
            Reason::new("incident INC-1").unwrap(),
            at("2024-05-01T11:00:00"),
        )
        .unwrap();
        let freeze = Freeze::new(&lease.project, &lease.environment, &action);
        let block = Block::new(&lease.project, &lease.release, &action);
        let events = [
            ControlChange::ForceUnlock {
                environment: lease.environment.clone(),
                lease: lease.clone(),
            },
            ControlChange::Freeze {
                environment: lease.environment.clone(),
            },
            ControlChange::Unfreeze {
                environment: lease.environment.clone(),
                lifted: freeze.clone(),
            },
            ControlChange::Block {
                release: lease.release.clone(),
            },
            ControlChange::Unblock {
                release: lease.release.clone(),
                lifted: block.clone(),
            },
        ]
        .map(|change| ControlEvent::new(7, &lease.project, &action, change));
        let mut values = vec![
            serde_json::to_value(&lease).unwrap(),
            serde_json::to_value(&freeze).unwrap(),
            serde_json::to_value(&block).unwrap(),
        ];
        for event in &events {
            let value = serde_json::to_value(event).unwrap();
            assert_eq!(value["kind"], event.change.kind());
            assert_eq!(
                serde_json::from_value::<ControlEvent>(value.clone()).unwrap(),
                *event
            );
            values.push(value);
        }
        assert_eq!(
            serde_json::from_value::<Lease>(values[0].clone()).unwrap(),
            lease
        );
        // DynamoDB's indexes key on these, and the table's key is
        // release_id: a control record must hold none of them.
        for value in &values {
            for key in [
                "project_id",
                "date_created",
                "last_date_deployed",
                "release_id",
            ] {
                assert!(value.get(key).is_none(), "{key} in {value}");
            }
        }
        assert_eq!(
            events[2].to_string(),
            "#7 2024-05-01T11:00:00 UTC bob unfroze prod (frozen by bob since \
             2024-05-01T11:00:00 UTC): \"incident INC-1\""
        );
    }

    #[test]
    fn errors_name_project_environment_holder_release_since_and_expiry() {
        let lease = lease();
        let busy = busy(lease.clone()).to_string();
        assert_eq!(
            busy,
            "project `storage`: environment `prod` is being deployed by alice (release `r-1`, \
             since 2024-05-01T10:00:00 UTC, expires 2024-05-01T10:10:00 UTC; host build-7, \
             lease lease-1)"
        );
        let mut mine = lease.clone();
        mine.lease_id = LeaseId::new("lease-0").unwrap();
        let mut rollback = lease.clone();
        rollback.operation = LeaseOperation::Rollback;
        assert_eq!(
            lost(&mine, Some(rollback)).to_string(),
            "project `storage`: lease lease-0 on environment `prod` is no longer held; the \
             environment is now being rolled back by alice (release `r-1`, since \
             2024-05-01T10:00:00 UTC, expires 2024-05-01T10:10:00 UTC; host build-7, lease lease-1)"
        );
        assert!(lost(&mine, None)
            .to_string()
            .ends_with("the environment has no lease now (it was force-unlocked or released)"));
        let action = ControlAction::new(
            Requester::new("arn:aws:iam::1:user/bob"),
            Reason::new("INC-7\nsee the \u{1b}[31mchannel").unwrap(),
            at("2024-05-01T11:00:00"),
        )
        .unwrap();
        let frozen = Error::EnvironmentFrozen {
            freeze: Box::new(Freeze::new(&lease.project, &lease.environment, &action)),
        };
        assert_eq!(
            frozen.to_string(),
            "project `storage`: environment `prod` is frozen by bob since 2024-05-01T11:00:00 \
             UTC: \"INC-7\\nsee the \\u{1b}[31mchannel\""
        );
        let blocked = Error::ReleaseBlocked {
            block: Box::new(Block::new(&lease.project, &lease.release, &action)),
        };
        assert!(blocked.to_string().starts_with(
            "project `storage`: release `r-1` is blocked by bob since 2024-05-01T11:00:00 UTC: "
        ));
    }

    #[test]
    fn inputs_are_checked() {
        assert!(matches!(
            Reason::new("  \n"),
            Err(Error::InvalidArgument {
                argument: "reason",
                ..
            })
        ));
        assert!(Reason::new("x".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(Reason::new("é".repeat(MAX_REASON_CHARS + 1)).is_err());
        assert!(serde_json::from_value::<Reason>(json!("")).is_err());
        for bad in ["", "a b", "a/b", &"x".repeat(129)] {
            assert!(LeaseId::new(bad).is_err(), "{bad:?}");
        }
        let request = |host: &str, ttl: u64, who: &str| {
            LeaseRequest::new(
                Requester::new(who),
                LeaseOperation::Rollback,
                ReleaseId::new("r").unwrap(),
                host,
                Duration::from_secs(ttl),
            )
        };
        assert!(request("h", 60, "alice").is_ok());
        for (host, ttl, who, argument) in [
            ("", 60, "alice", "host"),
            (&"h".repeat(256) as &str, 60, "alice", "host"),
            ("h", 0, "alice", "ttl"),
            ("h", 24 * 3600 + 1, "alice", "ttl"),
            ("h", 60, &"a".repeat(2049) as &str, "holder"),
        ] {
            match request(host, ttl, who) {
                Err(Error::InvalidArgument { argument: a, .. }) => assert_eq!(a, argument),
                other => panic!("{argument}: {other:?}"),
            }
        }
        assert_ne!(LeaseId::random(), LeaseId::random());
    }
}
