//! The two storage traits: where images live ([`ImageStore`]) and where
//! releases are recorded ([`ReleaseStore`]).
//!
//! A store does storage and nothing else. Workflow rules (validation against
//! the manifest, which label an environment uses, how `latest` resolves,
//! diffs) live in [`ReleaseTracker`](crate::ReleaseTracker), so every backend
//! gets them for free. Both traits are object safe: `Arc<dyn ImageStore>` and
//! `Arc<dyn ReleaseStore>` work, and `&T`, `Box<T>` and `Arc<T>` of a store
//! are stores too.
//!
//! Every implementation must pass the checks in `conformance` (feature
//! `conformance`); [`InMemoryImageStore`](crate::memory::InMemoryImageStore)
//! and [`InMemoryReleaseStore`](crate::memory::InMemoryReleaseStore) are the
//! reference semantics.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ServiceId};
use crate::release::{Deployment, DeploymentRecord, Release};

/// A parameter found under a label's path that is not an image of the label
/// (nested deeper, or its last segment is not a valid service id). Stores
/// report these instead of dropping or merging them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedParameter {
    /// The full parameter name.
    pub name: String,
    /// The service whose image parameter this is, when its name is one
    /// (`{label path}/{service}`) but its type or value is not an image's.
    /// A deploy refuses to overwrite such a parameter (see
    /// [`DeployPlan::conflicts`](crate::DeployPlan::conflicts)).
    pub service: Option<ServiceId>,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for SkippedParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped parameter {}: {}",
            crate::names::Escaped::new(&self.name),
            crate::names::Escaped::whole(&self.reason)
        )
    }
}

/// A stored release record that could not be decoded, passed over by a
/// listing instead of failing it. Tables written by other tools can hold
/// items this crate cannot read; one such item must not hide the rest.
///
/// Reading the record by id ([`ReleaseStore::release`]) still fails with
/// [`Error::InvalidRecord`], naming the record and the attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Which record: `release 0efc… in table wellcome-releases-storage`.
    pub record: String,
    /// The release id, when the record has a readable one.
    pub release_id: Option<String>,
    /// The attribute path inside the record: `requested_by`,
    /// `deployments[2].environment`.
    pub attribute: String,
    /// What is wrong with it.
    pub message: String,
}

impl SkippedRecord {
    /// The skipped record for a decoding error; `None` if `error` is not an
    /// [`Error::InvalidRecord`] (any other error must fail the call).
    pub fn from_error(error: &Error, release_id: Option<&str>) -> Option<SkippedRecord> {
        match error {
            Error::InvalidRecord {
                record,
                attribute,
                message,
            } => Some(SkippedRecord {
                record: record.clone(),
                release_id: release_id.map(str::to_owned),
                attribute: attribute.clone(),
                message: message.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped {}: attribute `{}` is malformed: {}",
            crate::names::Escaped::whole(&self.record),
            crate::names::Escaped::new(&self.attribute),
            crate::names::Escaped::whole(&self.message)
        )
    }
}

/// What [`ReleaseStore::latest_release`] found: the newest readable release
/// and any newer records it had to pass over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatestRelease {
    /// The newest release that could be read, if any.
    pub release: Option<Release>,
    /// Records newer than it that could not be read. Never empty when a
    /// malformed record would otherwise have been the newest.
    pub skipped: Vec<SkippedRecord>,
}

/// What [`ReleaseStore::recent_deployments`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecentDeployments {
    /// The deployments, newest first.
    pub records: Vec<DeploymentRecord>,
    /// Records passed over on the way because they could not be read.
    pub skipped: Vec<SkippedRecord>,
}

/// Every image at one label of a project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelImages {
    /// The images, by service.
    pub images: BTreeMap<ServiceId, ImageUri>,
    /// Parameters under the label's path that are not images of it.
    pub skipped: Vec<SkippedParameter>,
}

/// Where image URIs live, by project, label and service: SSM Parameter Store
/// in production (`/{project}/images/{label}/{service}`).
///
/// # Contract
///
/// - [`label_images`](ImageStore::label_images) returns every image at the
///   label, however many pages the backend needs; an empty label is an empty
///   map, not an error.
/// - [`label_images_of`](ImageStore::label_images_of) returns what
///   `label_images` would, kept to the services asked for.
/// - [`image`](ImageStore::image) returns `None` for a missing image.
/// - [`put_image`](ImageStore::put_image) creates or overwrites one image; a
///   read that starts after it returns completes sees it.
#[async_trait]
pub trait ImageStore: fmt::Debug + Send + Sync {
    /// Every image at `label` of `project`.
    async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages>;

    /// One image, or `None` if the service has none at `label`.
    async fn image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
    ) -> Result<Option<ImageUri>>;

    /// Creates or overwrites one image.
    async fn put_image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()>;

    /// The images at `label` of `project` of `services` only: what
    /// [`label_images`](ImageStore::label_images) returns, less the images
    /// and skipped parameters of other services (and those of no service).
    /// A deploy reads this way: it needs only the release's services.
    ///
    /// The default reads the whole label and keeps those. A backend that
    /// reads parameters by name faster than it lists a label overrides it:
    /// SSM lists a label 10 parameters a page, each page waiting for the
    /// previous one's token, but reads 10 names a call, the calls side by
    /// side.
    async fn label_images_of(
        &self,
        project: &ProjectId,
        label: &Label,
        services: &BTreeSet<ServiceId>,
    ) -> Result<LabelImages> {
        let mut whole = self.label_images(project, label).await?;
        whole.images.retain(|service, _| services.contains(service));
        whole
            .skipped
            .retain(|p| p.service.as_ref().is_some_and(|s| services.contains(s)));
        Ok(whole)
    }

    /// Where this store keeps `label`'s images, in its backend's words (an
    /// SSM path, a file), for messages such as [`Error::EmptyLabel`].
    fn label_location(&self, project: &ProjectId, label: &Label) -> String {
        format!("label `{label}` of project `{project}`")
    }
}

/// An opaque position in a listing, returned in [`Page::next`] and passed
/// back in [`PageRequest::after`]. Its text form (Display/FromStr) can cross
/// a process boundary, such as a command-line argument.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a store's encoded position. Stores validate it when it is used.
    pub fn new(encoded: impl Into<String>) -> Cursor {
        Cursor(encoded.into())
    }

    /// The encoded position.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.0)
    }
}

impl FromStr for Cursor {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Cursor::new(s))
    }
}

/// The largest page a listing returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Which page of a listing to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    limit: usize,
    after: Option<Cursor>,
}

/// Checks a listing's `limit`: 1 to [`MAX_PAGE_SIZE`], else
/// [`Error::InvalidArgument`]. Stores call it in
/// [`ReleaseStore::recent_deployments`] so every backend rejects the same
/// limits.
pub fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Error::InvalidArgument {
            argument: "limit",
            reason: format!("must be between 1 and {MAX_PAGE_SIZE}, got {limit}"),
        });
    }
    Ok(limit)
}

impl PageRequest {
    /// The first page, of at most `limit` items (1 to [`MAX_PAGE_SIZE`]).
    pub fn first(limit: usize) -> Result<PageRequest> {
        Ok(PageRequest {
            limit: check_limit(limit)?,
            after: None,
        })
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> PageRequest {
        self.after = Some(cursor);
        self
    }

    /// The largest number of items to return.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Where the previous page ended.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.after.as_ref()
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// At most the requested number of items.
    pub items: Vec<T>,
    /// Where to continue; `None` when the listing is complete. A store may
    /// return a cursor whose next page is empty.
    pub next: Option<Cursor>,
    /// Records in this stretch of the listing that could not be read and
    /// were passed over.
    pub skipped: Vec<SkippedRecord>,
}

/// Where releases are recorded: one DynamoDB table per project in
/// production.
///
/// # Contract
///
/// Ordering: "newest" means greatest `date_created`, ties broken by greatest
/// release id, and that order is the same in every method.
///
/// - [`create_release`](ReleaseStore::create_release) never overwrites: if
///   the id exists it fails with [`Error::ReleaseAlreadyExists`] and changes
///   nothing.
/// - [`release`](ReleaseStore::release) returns `None` for a missing id and
///   sees every write that completed before it started.
/// - [`latest_release`](ReleaseStore::latest_release) and
///   [`list_releases`](ReleaseStore::list_releases) read newest first. They
///   may lag behind very recent writes on eventually consistent backends
///   (DynamoDB indexes), never by more than the backend's propagation delay.
/// - Listings ([`latest_release`](ReleaseStore::latest_release),
///   [`list_releases`](ReleaseStore::list_releases),
///   [`recent_deployments`](ReleaseStore::recent_deployments)) pass over a
///   record they cannot decode, report it as a [`SkippedRecord`], and return
///   the rest in order; any other failure fails the call.
/// - [`add_deployment`](ReleaseStore::add_deployment) is one atomic
///   operation: it appends the deployment, moves `last_date_deployed` forward
///   (never backward) and returns the updated release; a missing release is
///   [`Error::ReleaseNotFound`] and creates nothing. Concurrent calls on one
///   release all take effect.
/// - [`recent_deployments`](ReleaseStore::recent_deployments) returns the
///   newest `limit` deployments of the project across releases, newest first
///   (ties: greater release id first, then later position in the release),
///   optionally only those to one environment.
/// - [`current_release`](ReleaseStore::current_release) returns the first of
///   those to the environment and its release (unless it is the one known).
#[async_trait]
pub trait ReleaseStore: fmt::Debug + Send + Sync {
    /// Stores a new release; fails with [`Error::ReleaseAlreadyExists`] if
    /// the id is taken.
    async fn create_release(&self, release: &Release) -> Result<()>;

    /// One release, or `None`.
    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>>;

    /// The newest readable release of the project (`None` if it has none),
    /// and the newer records that could not be read.
    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease>;

    /// A page of the project's releases, newest first.
    async fn list_releases(&self, project: &ProjectId, page: &PageRequest)
        -> Result<Page<Release>>;

    /// Appends `deployment` to release `id`, atomically; returns the updated
    /// release.
    async fn add_deployment(
        &self,
        project: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release>;

    /// The newest `limit` deployments of the project, newest first,
    /// optionally only those to `environment`.
    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments>;

    /// The newest deployment to `environment` and its release, unless that
    /// is `known` (which the caller holds already), with the records passed
    /// over: what a deploy reads to name the release it replaces and the
    /// services it changes.
    ///
    /// The default is [`recent_deployments`](ReleaseStore::recent_deployments)
    /// (limit 1), then that release by id, one read after the other; a
    /// release that cannot be decoded is then passed over (in `skipped`,
    /// `release` is `None`). A store whose deployment listing reads whole
    /// releases answers from that one read: DynamoDB's deployment index
    /// holds them.
    async fn current_release(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        known: Option<&ReleaseId>,
    ) -> Result<CurrentRelease> {
        let recent = self
            .recent_deployments(project, Some(environment), 1)
            .await?;
        let mut skipped = recent.skipped;
        let deployment = recent.records.into_iter().next();
        let release = match &deployment {
            Some(record) if Some(&record.release_id) != known => {
                readable_release(self, project, &record.release_id, &mut skipped).await?
            }
            _ => None,
        };
        Ok(CurrentRelease {
            deployment,
            release,
            skipped,
        })
    }
}

/// Release `id` of `project`, or `None`. One that cannot be decoded is
/// passed over, not fatal: it goes to `skipped` and reads as `None`.
pub(crate) async fn readable_release<R: ReleaseStore + ?Sized>(
    store: &R,
    project: &ProjectId,
    id: &ReleaseId,
    skipped: &mut Vec<SkippedRecord>,
) -> Result<Option<Release>> {
    match store.release(project, id).await {
        Ok(release) => Ok(release),
        Err(error) => {
            skipped.push(SkippedRecord::from_error(&error, Some(id.as_str())).ok_or(error)?);
            Ok(None)
        }
    }
}

/// What [`ReleaseStore::current_release`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurrentRelease {
    /// The newest deployment to the environment; `None` if nothing was
    /// deployed there.
    pub deployment: Option<DeploymentRecord>,
    /// Its release; `None` when there is none, when it is the `known` one,
    /// or when it could not be read (then it is in `skipped`).
    pub release: Option<Release>,
    /// Records passed over on the way because they could not be read.
    pub skipped: Vec<SkippedRecord>,
}

/// A deployment and its position in its release's list, as
/// [`ReleaseStore::recent_deployments`] orders them.
pub(crate) type RankedDeployment = (usize, DeploymentRecord);

/// Adds `release`'s deployments (those to `environment`, if given) to
/// `found`.
pub(crate) fn collect_deployments(
    found: &mut Vec<RankedDeployment>,
    release: &Release,
    environment: Option<&EnvironmentId>,
) {
    for (position, deployment) in release.deployments().iter().enumerate() {
        if environment.is_none_or(|env| deployment.environment() == env) {
            found.push((
                position,
                DeploymentRecord {
                    release_id: release.release_id().clone(),
                    deployment: deployment.clone(),
                },
            ));
        }
    }
}

/// A listing position compared as the stored text, `(date, release id)`:
/// canonical timestamps sort as their times do.
pub(crate) type TextPosition<'a> = (&'a str, &'a str);

/// Whether an unreadable record at `at` belongs to a page of releases that
/// starts after `after` (the previous page's last release) and, when more
/// follow, ends at `last` (this page's last release).
pub(crate) fn on_page(
    at: TextPosition<'_>,
    after: Option<TextPosition<'_>>,
    last: Option<TextPosition<'_>>,
) -> bool {
    after.is_none_or(|after| at < after) && last.is_none_or(|last| at > last)
}

/// The date of the oldest deployment in `found` when it holds `limit`: an
/// unreadable record last deployed before that could not have changed the
/// list. `None` when the list is not full.
pub(crate) fn oldest_of_full_list(found: &[RankedDeployment], limit: usize) -> Option<String> {
    match found.last() {
        Some((_, record)) if found.len() == limit => {
            Some(record.deployment.date_created().to_string())
        }
        _ => None,
    }
}

/// Sorts `found` in the contract's order (newest date, then greater release
/// id, then later position first) and keeps the first `limit`.
pub(crate) fn keep_newest_deployments(found: &mut Vec<RankedDeployment>, limit: usize) {
    fn key(
        (position, record): &RankedDeployment,
    ) -> (crate::release::Timestamp, &ReleaseId, usize) {
        (
            record.deployment.date_created(),
            &record.release_id,
            *position,
        )
    }
    let newest_first = |a: &RankedDeployment, b: &RankedDeployment| key(b).cmp(&key(a));
    // Keys are unique (release id and position), so stability is moot; pick
    // the newest `limit` in linear time before sorting only those.
    if limit == 0 {
        found.clear();
        return;
    }
    if found.len() > limit {
        found.select_nth_unstable_by(limit - 1, newest_first);
        found.truncate(limit);
    }
    found.sort_unstable_by(newest_first);
}

macro_rules! forward_image_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: ImageStore + ?Sized> ImageStore for $ty {
            async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages> {
                (**self).label_images(project, label).await
            }
            async fn image(
                &self,
                project: &ProjectId,
                label: &Label,
                service: &ServiceId,
            ) -> Result<Option<ImageUri>> {
                (**self).image(project, label, service).await
            }
            async fn put_image(
                &self,
                project: &ProjectId,
                label: &Label,
                service: &ServiceId,
                image: &ImageUri,
            ) -> Result<()> {
                (**self).put_image(project, label, service, image).await
            }
            async fn label_images_of(
                &self,
                project: &ProjectId,
                label: &Label,
                services: &BTreeSet<ServiceId>,
            ) -> Result<LabelImages> {
                (**self).label_images_of(project, label, services).await
            }
            fn label_location(&self, project: &ProjectId, label: &Label) -> String {
                (**self).label_location(project, label)
            }
        }
    )*};
}

macro_rules! forward_release_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: ReleaseStore + ?Sized> ReleaseStore for $ty {
            async fn create_release(&self, release: &Release) -> Result<()> {
                (**self).create_release(release).await
            }
            async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>> {
                (**self).release(project, id).await
            }
            async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease> {
                (**self).latest_release(project).await
            }
            async fn list_releases(
                &self,
                project: &ProjectId,
                page: &PageRequest,
            ) -> Result<Page<Release>> {
                (**self).list_releases(project, page).await
            }
            async fn add_deployment(
                &self,
                project: &ProjectId,
                id: &ReleaseId,
                deployment: &Deployment,
            ) -> Result<Release> {
                (**self).add_deployment(project, id, deployment).await
            }
            async fn recent_deployments(
                &self,
                project: &ProjectId,
                environment: Option<&EnvironmentId>,
                limit: usize,
            ) -> Result<RecentDeployments> {
                (**self).recent_deployments(project, environment, limit).await
            }
            async fn current_release(
                &self,
                project: &ProjectId,
                environment: &EnvironmentId,
                known: Option<&ReleaseId>,
            ) -> Result<CurrentRelease> {
                (**self).current_release(project, environment, known).await
            }
        }
    )*};
}

forward_image_store!(&T, Box<T>, Arc<T>);
forward_release_store!(&T, Box<T>, Arc<T>);
