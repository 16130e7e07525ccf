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

use crate::error::{Error, PartialDeployment, Result};
use crate::manifest::{Environment, Project};
use crate::names::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ReleaseRef, ServiceId};
use crate::release::{Deployment, DeploymentRecord, ImageEntry, NewRelease, Release, Timestamp};
use crate::store::{
    ImageStore, LabelImages, Page, PageRequest, ReleaseStore, RequesterSource, SkippedParameter,
};

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
    /// Parameters under the label that were not images of it (shown to the
    /// user, never silently merged). Always empty for `update`, which reads
    /// the chosen services' parameters one by one.
    pub skipped: Vec<SkippedParameter>,
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
}

/// One parameter a deploy writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The service.
    pub service: ServiceId,
    /// What the environment's label holds now (`None`: no parameter yet).
    pub current: Option<ImageUri>,
    /// The release's image, which the deploy writes.
    pub image: ImageUri,
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

/// What a deploy would change, computed without writing anything.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployPlan {
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
}

impl DeployPlan {
    /// Whether the deploy would write nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
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
        for change in &self.changes {
            match &change.current {
                Some(from) => writeln!(f, "  ~ {}: {} -> {}", change.service, from, change.image)?,
                None => writeln!(f, "  + {}: {}", change.service, change.image)?,
            }
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
/// tracker.publish(&"latest".parse()?, &"archivist".parse()?, &"archivist:ref.3f2a9c1".parse()?).await?;
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
        }
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

    /// The release `reference` names: an id, or the newest release.
    pub async fn release(&self, reference: &ReleaseRef) -> Result<Release> {
        let project = self.project_id();
        match reference {
            ReleaseRef::Latest => {
                self.releases
                    .latest_release(project)
                    .await?
                    .ok_or_else(|| Error::NoReleases {
                        project: project.clone(),
                    })
            }
            ReleaseRef::Id(id) => {
                self.releases
                    .release(project, id)
                    .await?
                    .ok_or_else(|| Error::ReleaseNotFound {
                        project: project.clone(),
                        release: id.clone(),
                    })
            }
        }
    }

    /// A page of the project's releases, newest first.
    pub async fn releases(&self, page: &PageRequest) -> Result<Page<Release>> {
        self.releases.list_releases(self.project_id(), page).await
    }

    /// Freezes the images at a label (with any overrides) into a new release.
    ///
    /// Fails with [`Error::EmptyLabel`] if the label has no images and
    /// [`Error::MissingImage`] if an override names a service the label does
    /// not have or takes it from a label that lacks it.
    pub async fn prepare(&self, request: PrepareRequest) -> Result<Prepared> {
        let project = self.project_id();
        let base = self.images.label_images(project, &request.from).await?;
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
        let release = self.create(images, request.description).await?;
        Ok(Prepared {
            release,
            skipped: base.skipped,
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
    ) -> Result<Release> {
        let requested_by = self.requester.requester().await?;
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
        let mut images = base.images().clone();
        // One read per chosen service: an update usually changes one or two,
        // and a whole label costs a call per ten services.
        for service in request.services {
            let uri = self
                .image_from(&service, ImageSource::Label(request.from.clone()))
                .await?;
            images.insert(service, ImageEntry::Uri(uri));
        }
        let release = self.create(images, request.description).await?;
        Ok(Prepared {
            release,
            skipped: Vec::new(),
        })
    }

    /// The environment, checked against the manifest.
    fn environment(&self, environment: &str) -> Result<&Environment> {
        self.project.environment(environment)
    }

    /// The release's images as URIs, or [`Error::UndeployableRelease`].
    fn deployable_images(&self, release: &Release) -> Result<BTreeMap<ServiceId, ImageUri>> {
        let mut images = BTreeMap::new();
        let mut undeployable = Vec::new();
        for (service, entry) in release.images() {
            match entry.uri() {
                Some(uri) => {
                    images.insert(service.clone(), uri.clone());
                }
                None => undeployable.push(service.clone()),
            }
        }
        if !undeployable.is_empty() {
            return Err(Error::UndeployableRelease {
                project: self.project_id().clone(),
                release: release.release_id().clone(),
                services: undeployable,
            });
        }
        Ok(images)
    }

    async fn plan_for(&self, release: &Release, environment: &EnvironmentId) -> Result<DeployPlan> {
        let target = self.deployable_images(release)?;
        let mut current = self
            .images
            .label_images(self.project_id(), &environment.label())
            .await?
            .images;
        let mut plan = DeployPlan {
            release_id: release.release_id().clone(),
            environment: environment.clone(),
            changes: Vec::new(),
            unchanged: Vec::new(),
            untouched: Vec::new(),
        };
        for (service, uri) in target {
            match current.remove(&service) {
                Some(existing) if existing == uri => plan.unchanged.push(service),
                current => plan.changes.push(PlannedWrite {
                    service,
                    current,
                    image: uri,
                }),
            }
        }
        plan.untouched = current.into_keys().collect();
        Ok(plan)
    }

    /// What deploying `release` to `environment` would write, without
    /// writing anything.
    pub async fn plan(&self, release: &ReleaseRef, environment: &str) -> Result<DeployPlan> {
        let environment = self.environment(environment)?.id().clone();
        let release = self.release(release).await?;
        self.plan_for(&release, &environment).await
    }

    /// Deploys a release to an environment: writes its images to the
    /// environment's label (skipping parameters that already hold the right
    /// image), then records the deployment.
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
        let environment = self.environment(environment)?.id().clone();
        let release = self.release(release).await?;
        self.deploy_release(release, environment, description).await
    }

    async fn deploy_release(
        &self,
        release: Release,
        environment: EnvironmentId,
        description: &str,
    ) -> Result<Deployed> {
        let project = self.project_id();
        // Ask for the requester before writing, so a failure here leaves
        // nothing half-done.
        let requested_by = self.requester.requester().await?;
        let plan = self.plan_for(&release, &environment).await?;
        let label = environment.label();
        let mut written = Vec::with_capacity(plan.changes.len());
        let mut changes = plan.changes.into_iter();
        while let Some(change) = changes.next() {
            if let Err(source) = self
                .images
                .put_image(project, &label, &change.service, &change.image)
                .await
            {
                let mut not_written = vec![change.service.clone()];
                not_written.extend(changes.map(|c| c.service));
                return Err(Error::PartialDeployment(Box::new(PartialDeployment {
                    project: project.clone(),
                    release: release.release_id().clone(),
                    environment,
                    written,
                    failed: change.service,
                    not_written,
                    source,
                })));
            }
            written.push(change.service);
        }
        let description = if description.is_empty() {
            DEFAULT_DESCRIPTION
        } else {
            description
        };
        let deployment = Deployment::new(
            environment.clone(),
            self.clock.now(),
            requested_by,
            description,
        );
        let updated = self
            .releases
            .add_deployment(project, release.release_id(), &deployment)
            .await
            .map_err(|source| Error::DeploymentNotRecorded {
                project: project.clone(),
                release: release.release_id().clone(),
                environment,
                written: written.clone(),
                source: Box::new(source),
            })?;
        Ok(Deployed {
            release: updated,
            deployment,
            written,
            unchanged: plan.unchanged,
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
        let prepared = self.prepare(request).await?;
        let deployed = self
            .deploy_release(prepared.release.clone(), environment, description)
            .await?;
        Ok((prepared, deployed))
    }

    /// How release `to` differs from release `from`.
    pub async fn diff(&self, from: &ReleaseRef, to: &ReleaseRef) -> Result<ReleaseDiff> {
        let from = self.release(from).await?;
        let to = self.release(to).await?;
        Ok(ReleaseDiff::between(&from, &to))
    }

    /// The release last deployed to `environment` (`None` if never), and
    /// whether its label still holds that release's images.
    pub async fn current(&self, environment: &str) -> Result<Option<CurrentDeployment>> {
        let environment = self.environment(environment)?.id().clone();
        let project = self.project_id();
        let Some(newest) = self
            .releases
            .recent_deployments(project, Some(&environment), 1)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let release = self.release(&ReleaseRef::Id(newest.release_id)).await?;
        let label = self
            .images
            .label_images(project, &environment.label())
            .await?
            .images;
        let drifted = release
            .images()
            .iter()
            .filter(|(service, entry)| entry.uri() != label.get(*service))
            .map(|(service, _)| service.clone())
            .collect();
        Ok(Some(CurrentDeployment {
            release,
            deployment: newest.deployment,
            drifted,
        }))
    }

    /// The newest `limit` deployments of the project, newest first, to one
    /// environment or to all.
    pub async fn history(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>> {
        let environment = match environment {
            Some(id) => Some(self.environment(id)?.id().clone()),
            None => None,
        };
        self.releases
            .recent_deployments(self.project_id(), environment.as_ref(), limit)
            .await
    }
}
