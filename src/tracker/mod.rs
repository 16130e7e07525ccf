//! The workflows users call: publish, prepare, update, deploy, plan, diff,
//! current and history, over any [`ImageStore`] and [`ReleaseStore`].
//!
//! The rules live here once, so every backend gets them: environments are
//! checked against the manifest before anything is written, `latest`
//! resolves the same way everywhere, a deploy writes only the parameters that
//! change and reports exactly what it wrote if it fails part-way.

mod admin;
mod controls;
mod deploy;
mod plan;
mod queries;
mod releases;
mod reports;
mod requests;
mod rollback;
mod sources;

pub use crate::write::DEFAULT_WRITE_CONCURRENCY;
pub use admin::ControlsStatus;
pub use controls::DEFAULT_LEASE_TTL;
pub use plan::LabelRead;
pub use reports::{
    CurrentDeployment, DeployPlan, Deployed, EnvironmentStatus, GateCheck, ImageChange,
    PlannedWrite, Prepared, ReleaseDiff,
};
pub use requests::{DeployOptions, ImageSource, PrepareRequest, UpdateRequest};
pub use sources::{Clock, IdGenerator, RandomIds, RequesterSource, SystemClock};

use std::fmt;
use std::sync::Arc;

use crate::control::{ControlStore, Lease};
use crate::manifest::Project;
use crate::names::{ProjectId, ReleaseId};
use crate::release::{RecordShape, Release, MAX_RECORD_SIZE};
use crate::store::{ImageStore, ReleaseStore, SkippedParameter, SkippedRecord};

/// The description recorded when none is given (the old tools' default, so
/// both read the same).
pub const DEFAULT_DESCRIPTION: &str = "No description provided";

/// Something an operation passed over and went on without, reported with
/// its result so it is never silent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A parameter under a label that is not an image of it.
    SkippedParameter(SkippedParameter),
    /// A release record that could not be decoded.
    SkippedRecord(SkippedRecord),
    /// The release's record is filling up: past
    /// [`RECORD_SIZE_WARNING`](crate::release::RECORD_SIZE_WARNING) with the
    /// deployment just recorded. At [`MAX_RECORD_SIZE`] deploys of it are
    /// refused ([`Error::ReleaseRecordFull`](crate::Error::ReleaseRecordFull)).
    RecordNearlyFull {
        /// The release.
        release: ReleaseId,
        /// Its record's size, in bytes as DynamoDB counts them.
        size: usize,
        /// How many more deployments like this one would fit.
        more: usize,
    },
    /// A deploy finished but could not give its environment's lease back;
    /// the lease expires by itself.
    LeaseNotReleased {
        /// The lease still held.
        lease: Box<Lease>,
        /// Why it could not be released.
        reason: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SkippedParameter(skipped) => skipped.fmt(f),
            Warning::SkippedRecord(skipped) => skipped.fmt(f),
            Warning::RecordNearlyFull {
                release,
                size,
                more,
            } => write!(
                f,
                "release {release}'s record is {size} bytes, {}% of the {MAX_RECORD_SIZE} a \
                 release record may hold: about {more} more deployments like this one fit; \
                 make a new release of the same images before then",
                size * 100 / MAX_RECORD_SIZE
            ),
            Warning::LeaseNotReleased { lease, reason } => write!(
                f,
                "the lease {} on environment `{}` was not released ({}); it expires at {} UTC",
                lease.lease_id,
                lease.environment,
                crate::names::Escaped::whole(reason),
                lease.expires
            ),
        }
    }
}

fn parameter_warnings(skipped: Vec<SkippedParameter>) -> impl Iterator<Item = Warning> {
    skipped.into_iter().map(Warning::SkippedParameter)
}

fn record_warnings(skipped: Vec<SkippedRecord>) -> impl Iterator<Item = Warning> {
    skipped.into_iter().map(Warning::SkippedRecord)
}

/// A release found by [`ReleaseTracker::release`]: for `latest`, the newest
/// readable one, with any newer records that could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The release.
    pub release: Release,
    /// Newer records passed over because they could not be read (only when
    /// `latest` was asked for).
    pub warnings: Vec<Warning>,
}

/// Which [`RecordShape`] new records take. Tables are shared with readers
/// this crate does not control, and a reader may crash on a shape it has
/// not seen there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapePolicy {
    /// Never introduce a shape a table's readers have not seen (the
    /// default): a deployment takes the shape of its release's earlier
    /// deployments (or of the release's own requester); a new release takes
    /// the shape of the project's newest release; a project with no
    /// releases gets the current (weco-deploy 4) shape.
    #[default]
    Follow,
    /// Always write this shape.
    Always(RecordShape),
}

/// The workflows of one project, over an image store and a release store.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
/// use release_tracking::{Environment, PrepareRequest, Project, ReleaseTracker, Requester};
///
/// let project = Project::new(
///     "storage".parse()?,
///     "Storage service",
///     vec![Environment::new("stage".parse()?, "Staging")],
/// )?;
/// let tracker = ReleaseTracker::new(
///     project,
///     InMemoryImageStore::new(),
///     InMemoryReleaseStore::new(),
///     Requester::new("arn:aws:iam::123456789012:user/alice"),
/// );
/// tracker.publish(&"latest".parse()?, &"archivist".parse()?, &"123456789012.dkr.ecr.eu-west-1.amazonaws.com/storage/archivist:ref.3f2a9c1".parse()?).await?;
/// let prepared = tracker.prepare(PrepareRequest::latest().description("first")).await?;
/// let deployed = tracker.deploy(&prepared.release.release_id().into(), "stage", "first deploy").await?;
/// assert_eq!(deployed.written.len(), 1);
/// # Ok::<(), release_tracking::Error>(())
/// # }).unwrap();
/// ```
pub struct ReleaseTracker<I, R> {
    project: Project,
    images: I,
    releases: R,
    requester: Arc<dyn RequesterSource>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    shape: ShapePolicy,
    write_concurrency: usize,
    controls: Option<Arc<dyn ControlStore>>,
    lease: controls::LeaseSettings,
}

impl<I: fmt::Debug, R: fmt::Debug> fmt::Debug for ReleaseTracker<I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseTracker")
            .field("project", self.project.id())
            .field("images", &self.images)
            .field("releases", &self.releases)
            .field("requester", &self.requester)
            .field("controls", &self.controls)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// A tracker for `project`. `requester` says who makes the changes: a
    /// fixed [`Requester`](crate::Requester), or (feature `aws`) the caller's
    /// identity from STS.
    pub fn new(
        project: Project,
        images: I,
        releases: R,
        requester: impl RequesterSource + 'static,
    ) -> Self {
        ReleaseTracker {
            project,
            images,
            releases,
            requester: Arc::new(requester),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            shape: ShapePolicy::Follow,
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            controls: None,
            lease: controls::LeaseSettings::default(),
        }
    }

    /// How many parameters a deploy writes at once (default
    /// [`DEFAULT_WRITE_CONCURRENCY`]; 0 is taken as 1, one after another).
    pub fn with_write_concurrency(mut self, limit: usize) -> Self {
        self.write_concurrency = limit.max(1);
        self
    }

    /// Who changes are recorded as: the answer of the tracker's requester
    /// source (the AWS one asks STS once and remembers). Asking ahead, beside
    /// the reads of [`plan`](Self::plan), takes the question off the path of
    /// [`execute`](Self::execute).
    pub async fn requester(&self) -> crate::Result<crate::Requester> {
        self.requester.requester().await
    }

    /// Deploys through `controls` ([`ControlStore`]): each deploy takes its
    /// environment's lease before its first write (renewed as it goes,
    /// given back at its end, also when it fails), and refuses a busy or
    /// frozen environment or a blocked release before writing anything.
    /// Leases last [`DEFAULT_LEASE_TTL`] and name this machine's host name
    /// unless set with [`with_lease_ttl`](Self::with_lease_ttl) and
    /// [`with_lease_host`](Self::with_lease_host).
    ///
    /// A release store with the capability can serve as both:
    /// `ReleaseTracker::new(project, images, store.clone(), who).with_controls(store)`.
    pub fn with_controls(mut self, controls: impl ControlStore + 'static) -> Self {
        self.controls = Some(Arc::new(controls));
        self
    }

    /// How long a deploy's lease lasts between renewals (default
    /// [`DEFAULT_LEASE_TTL`]; the limits of
    /// [`LeaseRequest::new`](crate::control::LeaseRequest::new) are checked
    /// when a deploy takes the lease).
    pub fn with_lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease.ttl = ttl;
        self
    }

    /// The host a deploy's lease names (default: this machine's host name).
    pub fn with_lease_host(mut self, host: impl Into<String>) -> Self {
        self.lease.host = Some(host.into());
        self
    }

    /// The control store, if the tracker has one.
    pub fn control_store(&self) -> Option<&dyn ControlStore> {
        self.controls.as_deref()
    }

    /// Which shape new records take (default [`ShapePolicy::Follow`]).
    pub fn with_record_shape(mut self, policy: ShapePolicy) -> Self {
        self.shape = policy;
        self
    }

    /// Uses `clock` for the times of new releases and deployments.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses `ids` for the ids of new releases.
    pub fn with_id_generator(mut self, ids: impl IdGenerator + 'static) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// The project.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The image store.
    pub fn image_store(&self) -> &I {
        &self.images
    }

    /// The release store.
    pub fn release_store(&self) -> &R {
        &self.releases
    }

    pub(super) fn project_id(&self) -> &ProjectId {
        self.project.id()
    }
}
