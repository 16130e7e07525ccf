//! The workflows users call: publish, prepare, update, deploy, plan, diff,
//! current and history, over any [`ImageStore`] and [`ReleaseStore`].
//!
//! The rules live here once, so every backend gets them: environments are
//! checked against the manifest before anything is written, `latest`
//! resolves the same way everywhere, a deploy writes only the parameters that
//! change and reports exactly what it wrote if it fails part-way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::manifest::{Environment, Project};
use crate::names::{
    EnvironmentId, Escaped, ImageUri, Label, ProjectId, ReleaseId, ReleaseRef, ServiceId,
};
use crate::release::{
    Deployment, ImageEntry, NewRelease, RecordShape, Release, Requester, Timestamp,
};
use crate::store::{
    ImageStore, LabelImages, Page, PageRequest, RecentDeployments, ReleaseStore, SkippedParameter,
    SkippedRecord,
};

/// weco-deploy falls back to a namespace of its own when the manifest names
/// none; a guess could write a reference Terraform cannot pull, so this
/// crate asks for it.
const NO_NAMESPACE_FIX: &str = "set `namespace` for the project or the repository";

pub use crate::write::DEFAULT_WRITE_CONCURRENCY;

/// The description recorded when none is given (the old tools' default, so
/// both read the same).
pub const DEFAULT_DESCRIPTION: &str = "No description provided";

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

/// Where new release ids come from.
///
/// Any `Fn() -> ReleaseId` closure is a generator.
pub trait IdGenerator: Send + Sync {
    /// A new, unused release id.
    fn new_release_id(&self) -> ReleaseId;
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

/// Something an operation passed over and went on without, reported with
/// its result so it is never silent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A parameter under a label that is not an image of it.
    SkippedParameter(SkippedParameter),
    /// A release record that could not be decoded.
    SkippedRecord(SkippedRecord),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SkippedParameter(skipped) => skipped.fmt(f),
            Warning::SkippedRecord(skipped) => skipped.fmt(f),
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

/// Where an image for one service comes from, when a release takes it from
/// somewhere other than its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// The service's image at another label.
    Label(Label),
    /// This exact image.
    Uri(ImageUri),
}

/// What [`ReleaseTracker::prepare`] should freeze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareRequest {
    from: Label,
    description: Option<String>,
    overrides: BTreeMap<ServiceId, ImageSource>,
}

impl PrepareRequest {
    /// Freeze every image at `label`.
    pub fn from_label(label: Label) -> PrepareRequest {
        PrepareRequest {
            from: label,
            description: None,
            overrides: BTreeMap::new(),
        }
    }

    /// Freeze every image at `latest`, the label CI publishes to.
    pub fn latest() -> PrepareRequest {
        PrepareRequest::from_label(Label::latest())
    }

    /// Why the release is made (default: [`DEFAULT_DESCRIPTION`]).
    pub fn description(mut self, description: impl Into<String>) -> PrepareRequest {
        self.description = Some(description.into());
        self
    }

    /// Take `service`'s image from `source` instead of the base label. The
    /// service must exist at the base label.
    pub fn with_image(mut self, service: ServiceId, source: ImageSource) -> PrepareRequest {
        self.overrides.insert(service, source);
        self
    }
}

/// What [`ReleaseTracker::update`] should change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    base: ReleaseRef,
    from: Label,
    services: BTreeSet<ServiceId>,
    description: Option<String>,
}

impl UpdateRequest {
    /// A new release like `base` but with `services` taken from `label`.
    pub fn new(
        base: ReleaseRef,
        label: Label,
        services: impl IntoIterator<Item = ServiceId>,
    ) -> UpdateRequest {
        UpdateRequest {
            base,
            from: label,
            services: services.into_iter().collect(),
            description: None,
        }
    }

    /// Why the release is made (default: [`DEFAULT_DESCRIPTION`]).
    pub fn description(mut self, description: impl Into<String>) -> UpdateRequest {
        self.description = Some(description.into());
        self
    }
}

/// A release made by [`ReleaseTracker::prepare`] or
/// [`ReleaseTracker::update`].
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The new release, as stored.
    pub release: Release,
    /// What was passed over: parameters under the label that are not images
    /// of it (never silently merged), and release records that could not be
    /// read while finding the newest release.
    pub warnings: Vec<Warning>,
}

/// The result of a deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    /// The release with the new deployment recorded.
    pub release: Release,
    /// The deployment that was recorded.
    pub deployment: Deployment,
    /// Services whose parameter was written.
    pub written: Vec<ServiceId>,
    /// Services whose parameter already held the release's image.
    pub unchanged: Vec<ServiceId>,
    /// What was passed over while planning (see [`DeployPlan::warnings`]).
    pub warnings: Vec<Warning>,
}

/// One parameter a deploy writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The service.
    pub service: ServiceId,
    /// What the environment's label holds now (`None`: no parameter yet).
    pub current: Option<ImageUri>,
    /// The full image reference the deploy writes.
    pub image: ImageUri,
    /// The bare tag the release records, when `image` was resolved from it
    /// through the manifest's `image_repositories`.
    pub resolved_from: Option<ImageUri>,
}

/// One service whose image differs between two releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageChange {
    /// The service.
    pub service: ServiceId,
    /// Its image in the older release.
    pub from: ImageEntry,
    /// Its image in the newer release.
    pub to: ImageEntry,
}

/// What a deploy would change, computed without writing anything, and what
/// [`ReleaseTracker::execute`] carries out.
///
/// A plan is made by [`ReleaseTracker::plan`] and holds the release it was
/// made for, so executing it deploys exactly the release that was shown,
/// even if `latest` has moved since.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeployPlan {
    /// The project.
    pub project: ProjectId,
    /// The release.
    pub release_id: ReleaseId,
    /// The environment.
    pub environment: EnvironmentId,
    /// Parameters that would be written, by service.
    pub changes: Vec<PlannedWrite>,
    /// Parameters that already hold the release's image.
    pub unchanged: Vec<ServiceId>,
    /// Services at the environment's label that the release does not have;
    /// a deploy leaves them as they are.
    pub untouched: Vec<ServiceId>,
    /// Parameters the deploy would have to overwrite that are not plain
    /// `String` parameters (a `SecureString` where Terraform reads an
    /// image): while there are any, executing the plan fails with
    /// [`Error::ConflictingParameters`] before writing anything.
    pub conflicts: Vec<SkippedParameter>,
    /// What was passed over: other parameters under the environment's label
    /// that are not images, and unreadable release records skipped while
    /// resolving `latest`.
    pub warnings: Vec<Warning>,
    release: Release,
}

impl DeployPlan {
    /// Whether the deploy would write nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    /// The release the plan deploys, as it was read.
    pub fn release(&self) -> &Release {
        &self.release
    }
}

impl fmt::Display for DeployPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deploy {} to {}: {} to write, {} unchanged, {} untouched",
            self.release_id,
            self.environment,
            self.changes.len(),
            self.unchanged.len(),
            self.untouched.len()
        )?;
        // Values read from parameters and records may hold anything:
        // escaped, so a plan never carries control characters to a terminal.
        let shown = |uri: &ImageUri| Escaped::whole(uri.as_str()).to_string();
        for change in &self.changes {
            match &change.current {
                Some(from) => write!(
                    f,
                    "  ~ {}: {} -> {}",
                    change.service,
                    shown(from),
                    shown(&change.image)
                )?,
                None => write!(f, "  + {}: {}", change.service, shown(&change.image))?,
            }
            match &change.resolved_from {
                Some(tag) => writeln!(f, " (resolved from tag {})", shown(tag))?,
                None => writeln!(f)?,
            }
        }
        for conflict in &self.conflicts {
            writeln!(
                f,
                "  ! {}: {}",
                Escaped::new(&conflict.name),
                Escaped::whole(&conflict.reason)
            )?;
        }
        Ok(())
    }
}

/// How two releases differ.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseDiff {
    /// The older side.
    pub from: ReleaseId,
    /// The newer side.
    pub to: ReleaseId,
    /// Services only in `to`.
    pub added: BTreeMap<ServiceId, ImageEntry>,
    /// Services only in `from`.
    pub removed: BTreeMap<ServiceId, ImageEntry>,
    /// Services in both with different images.
    pub changed: Vec<ImageChange>,
    /// Services in both with the same image.
    pub unchanged: Vec<ServiceId>,
    /// Records passed over while resolving `latest` (empty from
    /// [`ReleaseDiff::between`]).
    pub warnings: Vec<Warning>,
}

impl ReleaseDiff {
    /// The difference from `from` to `to`.
    pub fn between(from: &Release, to: &Release) -> ReleaseDiff {
        let mut diff = ReleaseDiff {
            from: from.release_id().clone(),
            to: to.release_id().clone(),
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            warnings: Vec::new(),
        };
        for (service, old) in from.images() {
            match to.images().get(service) {
                None => {
                    diff.removed.insert(service.clone(), old.clone());
                }
                Some(new) if new == old => diff.unchanged.push(service.clone()),
                Some(new) => diff.changed.push(ImageChange {
                    service: service.clone(),
                    from: old.clone(),
                    to: new.clone(),
                }),
            }
        }
        for (service, new) in to.images() {
            if !from.images().contains_key(service) {
                diff.added.insert(service.clone(), new.clone());
            }
        }
        diff
    }

    /// Whether the two releases hold the same images.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for ReleaseDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} -> {}: {} added, {} removed, {} changed, {} unchanged",
            self.from,
            self.to,
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged.len()
        )?;
        for (service, image) in &self.added {
            writeln!(f, "  + {service}: {image}")?;
        }
        for (service, image) in &self.removed {
            writeln!(f, "  - {service}: {image}")?;
        }
        for change in &self.changed {
            writeln!(
                f,
                "  ~ {}: {} -> {}",
                change.service, change.from, change.to
            )?;
        }
        Ok(())
    }
}

/// What [`ReleaseTracker::current`] found for an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentStatus {
    /// The release last deployed there, if any.
    pub current: Option<CurrentDeployment>,
    /// Records passed over because they could not be read.
    pub warnings: Vec<Warning>,
}

/// The release last deployed to an environment, and whether the
/// environment's label still holds its images.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrentDeployment {
    /// The release.
    pub release: Release,
    /// Its newest deployment to the environment.
    pub deployment: Deployment,
    /// Services whose parameter no longer holds the release's image (changed
    /// by hand or by another tool since); empty when the label matches.
    pub drifted: Vec<ServiceId>,
}

impl CurrentDeployment {
    /// Whether the label still holds exactly the release's images.
    pub fn label_matches(&self) -> bool {
        self.drifted.is_empty()
    }
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
}

impl<I: fmt::Debug, R: fmt::Debug> fmt::Debug for ReleaseTracker<I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseTracker")
            .field("project", self.project.id())
            .field("images", &self.images)
            .field("releases", &self.releases)
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// A tracker for `project`. `requester` says who makes the changes: a
    /// fixed [`Requester`], or (feature `aws`) the caller's
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
        }
    }

    /// How many parameters a deploy writes at once (default
    /// [`DEFAULT_WRITE_CONCURRENCY`]; 0 is taken as 1, one after another).
    pub fn with_write_concurrency(mut self, limit: usize) -> Self {
        self.write_concurrency = limit.max(1);
        self
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

    fn project_id(&self) -> &ProjectId {
        self.project.id()
    }

    /// Who changes are recorded as: the answer of the tracker's requester
    /// source (the AWS one asks STS once and remembers). Asking ahead, beside
    /// the reads of [`plan`](Self::plan), takes the question off the path of
    /// [`execute`](Self::execute).
    pub async fn requester(&self) -> Result<Requester> {
        self.requester.requester().await
    }

    /// Writes `image` for `service` at `label`: what CI does after a build.
    pub async fn publish(
        &self,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()> {
        self.images
            .put_image(self.project_id(), label, service, image)
            .await
    }

    /// Every image at `label`.
    pub async fn label_images(&self, label: &Label) -> Result<LabelImages> {
        self.images.label_images(self.project_id(), label).await
    }

    /// The release `reference` names: an id, or the newest readable
    /// release. Newer records that could not be read are reported in
    /// [`Resolved::warnings`], never chosen and never silently dropped.
    pub async fn release(&self, reference: &ReleaseRef) -> Result<Resolved> {
        let project = self.project_id();
        match reference {
            ReleaseRef::Latest => {
                let latest = self.releases.latest_release(project).await?;
                let release = latest.release.ok_or_else(|| Error::NoReleases {
                    project: project.clone(),
                })?;
                Ok(Resolved {
                    release,
                    warnings: record_warnings(latest.skipped).collect(),
                })
            }
            ReleaseRef::Id(id) => {
                let release = self.releases.release(project, id).await?.ok_or_else(|| {
                    Error::ReleaseNotFound {
                        project: project.clone(),
                        release: id.clone(),
                    }
                })?;
                Ok(Resolved {
                    release,
                    warnings: Vec::new(),
                })
            }
        }
    }

    /// A page of the project's releases, newest first; unreadable records
    /// are in [`Page::skipped`].
    pub async fn releases(&self, page: &PageRequest) -> Result<Page<Release>> {
        self.releases.list_releases(self.project_id(), page).await
    }

    /// The shape a new release takes, and what was skipped finding it.
    async fn release_shape(&self) -> Result<(RecordShape, Vec<Warning>)> {
        match self.shape {
            ShapePolicy::Always(shape) => Ok((shape, Vec::new())),
            ShapePolicy::Follow => {
                let latest = self.releases.latest_release(self.project_id()).await?;
                let shape = latest
                    .release
                    .as_ref()
                    .map_or(RecordShape::default(), RecordShape::of_release);
                Ok((shape, record_warnings(latest.skipped).collect()))
            }
        }
    }

    /// The shape a new deployment of `release` takes.
    fn deployment_shape(&self, release: &Release) -> RecordShape {
        match self.shape {
            ShapePolicy::Always(shape) => shape,
            ShapePolicy::Follow => RecordShape::of_release(release),
        }
    }

    /// Freezes the images at a label (with any overrides) into a new release.
    ///
    /// Fails with [`Error::EmptyLabel`] if the label has no images and
    /// [`Error::MissingImage`] if an override names a service the label does
    /// not have or takes it from a label that lacks it.
    pub async fn prepare(&self, request: PrepareRequest) -> Result<Prepared> {
        let project = self.project_id();
        // Independent reads: the label, the newest release (for the shape
        // to follow) and who is asking, side by side.
        let (base, shape, requester) = futures::join!(
            self.images.label_images(project, &request.from),
            self.release_shape(),
            self.requester.requester()
        );
        let (base, (shape, shape_warnings)) = (base?, shape?);
        if base.images.is_empty() {
            return Err(Error::EmptyLabel {
                project: project.clone(),
                label: request.from.clone(),
                path: crate::names::label_path(project, &request.from),
            });
        }
        let mut images: BTreeMap<ServiceId, ImageEntry> = base
            .images
            .into_iter()
            .map(|(service, uri)| (service, ImageEntry::Uri(uri)))
            .collect();
        for (service, source) in request.overrides {
            if !images.contains_key(&service) {
                return Err(Error::MissingImage {
                    project: project.clone(),
                    label: request.from.clone(),
                    service,
                });
            }
            let uri = self.image_from(&service, source).await?;
            images.insert(service, ImageEntry::Uri(uri));
        }
        let release = self
            .create(images, request.description, shape, &requester?)
            .await?;
        Ok(Prepared {
            release,
            warnings: parameter_warnings(base.skipped)
                .chain(shape_warnings)
                .collect(),
        })
    }

    async fn image_from(&self, service: &ServiceId, source: ImageSource) -> Result<ImageUri> {
        match source {
            ImageSource::Uri(uri) => Ok(uri),
            ImageSource::Label(label) => {
                let project = self.project_id();
                self.images
                    .image(project, &label, service)
                    .await?
                    .ok_or_else(|| Error::MissingImage {
                        project: project.clone(),
                        label,
                        service: service.clone(),
                    })
            }
        }
    }

    async fn create(
        &self,
        images: BTreeMap<ServiceId, ImageEntry>,
        description: Option<String>,
        shape: RecordShape,
        requester: &Requester,
    ) -> Result<Release> {
        let requested_by = shape.requester(requester);
        let release = Release::new(NewRelease {
            release_id: self.ids.new_release_id(),
            project_id: self.project_id().clone(),
            project_name: self.project.name().to_owned(),
            date_created: self.clock.now(),
            requested_by,
            description: description.unwrap_or_else(|| DEFAULT_DESCRIPTION.to_owned()),
            images,
        });
        self.releases.create_release(&release).await?;
        Ok(release)
    }

    /// A new release from a base release with chosen services taken from a
    /// label. A chosen service with no image at the label is
    /// [`Error::MissingImage`], never silently nulled.
    pub async fn update(&self, request: UpdateRequest) -> Result<Prepared> {
        if request.services.is_empty() {
            return Err(Error::InvalidArgument {
                argument: "services",
                reason: "name at least one service to update".to_owned(),
            });
        }
        let base = self.release(&request.base).await?;
        let mut warnings = base.warnings;
        let mut images = base.release.images().clone();
        // One read per chosen service: an update usually changes one or two,
        // and a whole label costs a call per ten services.
        for service in request.services {
            let uri = self
                .image_from(&service, ImageSource::Label(request.from.clone()))
                .await?;
            images.insert(service, ImageEntry::Uri(uri));
        }
        // The base is the newest release when `latest` was asked for;
        // otherwise the newest one is read for its shape.
        let shape = match (&request.base, self.shape) {
            (ReleaseRef::Latest, ShapePolicy::Follow) => RecordShape::of_release(&base.release),
            _ => {
                let (shape, skipped) = self.release_shape().await?;
                warnings.extend(skipped);
                shape
            }
        };
        let requester = self.requester.requester().await?;
        let release = self
            .create(images, request.description, shape, &requester)
            .await?;
        Ok(Prepared { release, warnings })
    }

    /// The environment, checked against the manifest.
    fn environment(&self, environment: &str) -> Result<&Environment> {
        self.project.environment(environment)
    }

    /// The full reference to write for a bare tag, through the manifest's
    /// `image_repositories`: `{account}.dkr.ecr.{region}.amazonaws.com/{namespace}/{repository}:{tag}`,
    /// as weco-deploy builds ECR references. `Err` says what is missing.
    fn resolve_tag(
        &self,
        service: &ServiceId,
        tag: &ImageUri,
    ) -> std::result::Result<ImageUri, String> {
        let project = &self.project;
        let repository = project.image_repository_for(service).ok_or_else(|| {
            format!(
                "`{service}` holds the bare tag `{tag}` and no `image_repositories` entry lists it"
            )
        })?;
        let account = repository
            .account_id
            .as_deref()
            .or(project.account_id())
            .ok_or_else(|| {
                format!("`{service}` holds a bare tag and the manifest has no `account_id`")
            })?;
        let region = project.aws_region().ok_or_else(|| {
            format!("`{service}` holds a bare tag and the manifest has no `aws_region_name`")
        })?;
        let namespace = repository
            .namespace
            .as_deref()
            .or(project.namespace())
            .ok_or_else(|| format!("`{service}` holds a bare tag; {NO_NAMESPACE_FIX}"))?;
        let uri = format!(
            "{account}.dkr.ecr.{region}.amazonaws.com/{namespace}/{}:{tag}",
            repository.id
        );
        match ImageUri::new(uri) {
            Ok(uri) if uri.is_full_reference() => Ok(uri),
            Ok(uri) => Err(format!(
                "`{service}`: its tag resolves to `{uri}`, which is not a valid image reference; \
                 check `account_id`, `aws_region_name`, `namespace` and the repository id"
            )),
            Err(e) => Err(format!("`{service}`: {e}")),
        }
    }

    /// What to write for each of the release's services, or
    /// [`Error::UndeployableRelease`] naming every service that has no full
    /// image reference and why.
    fn deployable_images(&self, release: &Release) -> Result<Vec<(ServiceId, PlannedImage)>> {
        let mut images = Vec::with_capacity(release.images().len());
        let mut undeployable = Vec::new();
        let mut problems = Vec::new();
        for (service, entry) in release.images() {
            let planned = match entry {
                ImageEntry::Uri(uri) if uri.is_full_reference() => Ok(PlannedImage {
                    image: uri.clone(),
                    resolved_from: None,
                }),
                ImageEntry::Uri(uri) if uri.is_bare_tag() => {
                    self.resolve_tag(service, uri).map(|image| PlannedImage {
                        image,
                        resolved_from: Some(uri.clone()),
                    })
                }
                ImageEntry::Uri(uri) => Err(format!(
                    "`{service}` holds `{uri}`, which is neither a full reference nor a bare tag"
                )),
                ImageEntry::Missing => Err(format!("`{service}` has no image (null)")),
                ImageEntry::Tags(_) => Err(format!("`{service}` holds a set of tags")),
            };
            match planned {
                Ok(planned) => images.push((service.clone(), planned)),
                Err(problem) => {
                    undeployable.push(service.clone());
                    problems.push(problem);
                }
            }
        }
        if !undeployable.is_empty() {
            let shown = problems.len().min(3);
            let mut fix = problems[..shown].join("; ");
            if problems.len() > shown {
                fix.push_str(&format!("; and {} more", problems.len() - shown));
            }
            fix.push_str(
                ". Make a new release with `update` from a label that holds full references, or \
                 list the services under `image_repositories` with `account_id`, `aws_region_name` \
                 and `namespace` so bare tags resolve",
            );
            return Err(Error::UndeployableRelease {
                project: self.project_id().clone(),
                release: release.release_id().clone(),
                services: undeployable,
                fix,
            });
        }
        Ok(images)
    }

    /// The plan to deploy `release` to `environment`, whose label holds
    /// `label`.
    fn plan_for(
        &self,
        release: Release,
        label: LabelImages,
        environment: &EnvironmentId,
        mut warnings: Vec<Warning>,
    ) -> Result<DeployPlan> {
        let target = self.deployable_images(&release)?;
        let mut current = label.images;
        let mut plan = DeployPlan {
            project: self.project_id().clone(),
            release_id: release.release_id().clone(),
            environment: environment.clone(),
            changes: Vec::new(),
            unchanged: Vec::new(),
            untouched: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
            release,
        };
        let mut skipped = Vec::new();
        for parameter in label.skipped {
            let in_the_way = parameter
                .service
                .as_ref()
                .is_some_and(|service| plan.release.images().contains_key(service));
            if in_the_way {
                plan.conflicts.push(parameter);
            } else {
                skipped.push(parameter);
            }
        }
        for (service, planned) in target {
            let in_conflict = plan
                .conflicts
                .iter()
                .any(|c| c.service.as_ref() == Some(&service));
            if in_conflict {
                continue;
            }
            match current.remove(&service) {
                Some(existing) if existing == planned.image => plan.unchanged.push(service),
                current => plan.changes.push(PlannedWrite {
                    service,
                    current,
                    image: planned.image,
                    resolved_from: planned.resolved_from,
                }),
            }
        }
        plan.untouched = current.into_keys().collect();
        warnings.extend(parameter_warnings(skipped));
        plan.warnings = warnings;
        Ok(plan)
    }

    /// What deploying `release` to `environment` would write, without
    /// writing anything: one read of the release and one of the
    /// environment's label, side by side. Pass the plan to
    /// [`execute`](Self::execute) to carry it out without reading either
    /// again.
    pub async fn plan(&self, release: &ReleaseRef, environment: &str) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        // Two independent reads, side by side: one round trip less.
        let label = environment.label();
        let (resolved, label) = futures::join!(
            self.release(release),
            self.images.label_images(self.project_id(), &label)
        );
        let resolved = resolved?;
        self.plan_for(resolved.release, label?, &environment, resolved.warnings)
    }

    /// Deploys a release to an environment: [`plan`](Self::plan), then
    /// [`execute`](Self::execute).
    ///
    /// The environment is checked against the manifest before anything is
    /// read or written. If a write fails, the error
    /// ([`Error::PartialDeployment`]) lists which services were written and
    /// which were not, and no deployment is recorded; if recording fails,
    /// [`Error::DeploymentNotRecorded`]. Either way, running the same deploy
    /// again completes it.
    pub async fn deploy(
        &self,
        release: &ReleaseRef,
        environment: &str,
        description: &str,
    ) -> Result<Deployed> {
        let plan = self.plan(release, environment).await?;
        self.execute(plan, description).await
    }

    /// Carries out a plan made by [`plan`](Self::plan): writes its changes
    /// to the environment's label, several at once (see
    /// [`with_write_concurrency`](Self::with_write_concurrency)), and records
    /// the deployment of the plan's release. Nothing is read again, so what
    /// is executed is what was shown.
    ///
    /// Fails before writing anything if the plan is for another project or
    /// environment this tracker does not know, or has
    /// [`conflicts`](DeployPlan::conflicts)
    /// ([`Error::ConflictingParameters`]). Failures part-way are reported
    /// as for [`deploy`](Self::deploy).
    pub async fn execute(&self, plan: DeployPlan, description: &str) -> Result<Deployed> {
        let project = self.project_id();
        if &plan.project != project {
            return Err(Error::InvalidArgument {
                argument: "plan",
                reason: format!(
                    "it was made for project `{}`, not `{project}`",
                    plan.project
                ),
            });
        }
        let environment = self.environment(plan.environment.as_str())?;
        if !plan.conflicts.is_empty() {
            return Err(Error::ConflictingParameters {
                project: project.clone(),
                release: plan.release_id,
                environment: plan.environment,
                parameters: plan.conflicts.into_iter().map(|c| c.name).collect(),
            });
        }
        // Ask for the requester before writing, so a failure here leaves
        // nothing half-done.
        let requested_by = self.requester.requester().await?;
        let shape = self.deployment_shape(&plan.release);
        let written = crate::write::write_changes(
            &self.images,
            project,
            &plan.release_id,
            &plan.environment,
            plan.changes,
            self.write_concurrency,
        )
        .await?;
        let description = if description.is_empty() {
            DEFAULT_DESCRIPTION
        } else {
            description
        };
        let deployment = Deployment::in_shape(
            shape,
            environment,
            self.clock.now(),
            &requested_by,
            description,
        );
        let updated = self
            .releases
            .add_deployment(project, &plan.release_id, &deployment)
            .await
            .map_err(|source| Error::DeploymentNotRecorded {
                project: project.clone(),
                release: plan.release_id.clone(),
                environment: plan.environment.clone(),
                written: written.clone(),
                source: Box::new(source),
            })?;
        Ok(Deployed {
            release: updated,
            deployment,
            written,
            unchanged: plan.unchanged,
            warnings: plan.warnings,
        })
    }

    /// Prepares a release and deploys it. The environment is checked before
    /// the release is made, and the new release is deployed by id (never by
    /// re-reading `latest`, which an index may not show yet).
    pub async fn release_deploy(
        &self,
        request: PrepareRequest,
        environment: &str,
        description: &str,
    ) -> Result<(Prepared, Deployed)> {
        let environment = self.environment(environment)?.id().clone();
        // The environment's label does not depend on the new release: read
        // it while the release is made.
        let label = environment.label();
        let (prepared, label) = futures::join!(
            self.prepare(request),
            self.images.label_images(self.project_id(), &label)
        );
        let prepared = prepared?;
        let plan = self.plan_for(prepared.release.clone(), label?, &environment, Vec::new())?;
        let deployed = self.execute(plan, description).await?;
        Ok((prepared, deployed))
    }

    /// How release `to` differs from release `from`. Records skipped while
    /// resolving `latest` are in [`ReleaseDiff::warnings`].
    pub async fn diff(&self, from: &ReleaseRef, to: &ReleaseRef) -> Result<ReleaseDiff> {
        let from = self.release(from).await?;
        let to = self.release(to).await?;
        let mut diff = ReleaseDiff::between(&from.release, &to.release);
        diff.warnings = from.warnings;
        if diff.warnings != to.warnings {
            diff.warnings.extend(to.warnings);
        }
        Ok(diff)
    }

    /// The release last deployed to `environment` (`None` if never), and
    /// whether its label still holds that release's images.
    pub async fn current(&self, environment: &str) -> Result<EnvironmentStatus> {
        let environment = self.environment(environment)?.id().clone();
        let project = self.project_id();
        let recent = self
            .releases
            .recent_deployments(project, Some(&environment), 1)
            .await?;
        let warnings = record_warnings(recent.skipped).collect();
        let Some(newest) = recent.records.into_iter().next() else {
            return Ok(EnvironmentStatus {
                current: None,
                warnings,
            });
        };
        let release = self
            .release(&ReleaseRef::Id(newest.release_id))
            .await?
            .release;
        let label = self
            .images
            .label_images(project, &environment.label())
            .await?
            .images;
        // Compare what a deploy of the release would write now; a bare tag
        // that cannot resolve counts as drifted.
        let targets: BTreeMap<ServiceId, ImageUri> = release
            .images()
            .iter()
            .filter_map(|(service, entry)| {
                let uri = entry.uri()?;
                let image = if uri.is_full_reference() {
                    uri.clone()
                } else {
                    self.resolve_tag(service, uri)
                        .unwrap_or_else(|_| uri.clone())
                };
                Some((service.clone(), image))
            })
            .collect();
        let drifted = release
            .images()
            .keys()
            .filter(|service| targets.get(*service) != label.get(*service))
            .cloned()
            .collect();
        Ok(EnvironmentStatus {
            current: Some(CurrentDeployment {
                release,
                deployment: newest.deployment,
                drifted,
            }),
            warnings,
        })
    }

    /// The newest `limit` deployments of the project, newest first, to one
    /// environment or to all; unreadable records are in
    /// [`RecentDeployments::skipped`].
    pub async fn history(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        let environment = match environment {
            Some(id) => Some(self.environment(id)?.id().clone()),
            None => None,
        };
        self.releases
            .recent_deployments(self.project_id(), environment.as_ref(), limit)
            .await
    }
}

/// The image a deploy writes for one service.
struct PlannedImage {
    image: ImageUri,
    resolved_from: Option<ImageUri>,
}
