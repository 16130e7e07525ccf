//! In-memory stores: [`InMemoryImageStore`] and [`InMemoryReleaseStore`].
//!
//! They are the reference semantics of the [`ImageStore`] and
//! [`ReleaseStore`] contracts, not toys: every backend must behave like them
//! on everything the `conformance` checks (feature `conformance`) test. Use
//! them in tests, examples and dry runs.
//!
//! Both are cheap to clone; clones share one state, so a clone handed to the
//! code under test and one kept by the test see the same data. They are safe
//! to use from many threads at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cursor::ListingPosition;
use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ServiceId};
use crate::release::{Deployment, Release, Timestamp};
use crate::store::{
    check_limit, collect_deployments, keep_newest_deployments, oldest_of_full_list, on_page,
    ImageStore, LabelImages, LatestRelease, Page, PageRequest, RecentDeployments, ReleaseStore,
    SkippedRecord, TextPosition,
};

/// Locks `mutex`, recovering the guard if another thread panicked while
/// holding it. That is sound here because every mutation of the state is a
/// single insert or assignment of a fully built value, so a panic can never
/// leave the state half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

mod control;

type Images = HashMap<(ProjectId, Label), BTreeMap<ServiceId, ImageUri>>;

/// An [`ImageStore`] held in memory: images by project, label and service.
///
/// Clones share the same images. [`LabelImages::skipped`] is always empty:
/// only valid service ids can be stored.
///
/// # Example
///
/// ```
/// use release_tracking::memory::InMemoryImageStore;
/// use release_tracking::{ImageStore, ImageUri, Label, ProjectId, ServiceId};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = InMemoryImageStore::new();
/// let project = ProjectId::new("storage")?;
/// let service = ServiceId::new("archivist")?;
/// let uri = ImageUri::new("760097843905.dkr.ecr.eu-west-1.amazonaws.com/archivist:ref.3f2a9c1")?;
///
/// store.put_image(&project, &Label::latest(), &service, &uri).await?;
///
/// let latest = store.label_images(&project, &Label::latest()).await?;
/// assert_eq!(latest.images.get(&service), Some(&uri));
/// assert_eq!(store.image(&project, &Label::new("stage")?, &service).await?, None);
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InMemoryImageStore {
    images: Arc<Mutex<Images>>,
}

impl InMemoryImageStore {
    /// An empty store.
    pub fn new() -> InMemoryImageStore {
        InMemoryImageStore::default()
    }
}

impl fmt::Debug for InMemoryImageStore {
    // A summary: the full contents could be large and would leak into every
    // error message that prints the store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let images = lock(&self.images);
        f.debug_struct("InMemoryImageStore")
            .field("labels", &images.len())
            .field("images", &images.values().map(BTreeMap::len).sum::<usize>())
            .finish()
    }
}

#[async_trait]
impl ImageStore for InMemoryImageStore {
    fn label_location(&self, _: &ProjectId, label: &Label) -> String {
        format!("label `{label}` of the in-memory image store")
    }

    async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages> {
        let images = lock(&self.images)
            .get(&(project.clone(), label.clone()))
            .cloned()
            .unwrap_or_default();
        Ok(LabelImages {
            images,
            skipped: Vec::new(),
        })
    }

    async fn image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
    ) -> Result<Option<ImageUri>> {
        Ok(lock(&self.images)
            .get(&(project.clone(), label.clone()))
            .and_then(|images| images.get(service))
            .cloned())
    }

    async fn put_image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()> {
        let key = (project.clone(), label.clone());
        let (service, image) = (service.clone(), image.clone());
        // One insert: either the image is stored or nothing changed (an empty
        // label map left by `or_default` reads the same as a missing one).
        lock(&self.images)
            .entry(key)
            .or_default()
            .insert(service, image);
        Ok(())
    }
}

type Releases = HashMap<ProjectId, BTreeMap<ReleaseId, Release>>;

/// A record stored with [`InMemoryReleaseStore::insert_record`] that does not
/// decode: kept, as a table keeps it, and passed over by listings.
#[derive(Clone, Debug)]
struct Unreadable {
    /// `date_created` as stored, if it is a string (else, as in a DynamoDB
    /// index keyed on it, the record is in no release listing).
    date_created: Option<String>,
    /// `last_date_deployed` as stored, if it is a string.
    last_date_deployed: Option<String>,
    skipped: SkippedRecord,
}

type UnreadableRecords = HashMap<ProjectId, BTreeMap<String, Unreadable>>;

/// A [`ReleaseStore`] held in memory: releases by project and release id.
///
/// Clones share the same releases. Listings sort on every call, which is
/// fine for the thousands of releases a project accumulates over years.
///
/// Page cursors ([`Page::next`]) are JSON of the project id and the
/// `date_created` and release id of the last release returned, like the
/// `LastEvaluatedKey` of a DynamoDB index query; a cursor that does not decode
/// or was made for another project is [`Error::InvalidCursor`].
///
/// # Example
///
/// ```
/// use std::collections::BTreeMap;
///
/// use release_tracking::memory::InMemoryReleaseStore;
/// use release_tracking::{
///     Deployment, EnvironmentId, NewRelease, ProjectId, Release, ReleaseId, ReleaseStore,
///     Requester, Timestamp,
/// };
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = InMemoryReleaseStore::new();
/// let project = ProjectId::new("storage")?;
/// let created: Timestamp = "2020-01-01T00:00:00".parse()?;
/// let requester = Requester::new("arn:aws:sts::123456789012:assumed-role/ci/session");
/// let release = Release::new(NewRelease {
///     release_id: ReleaseId::new("0efc9bd6-0b43-4a8e-9b3a-8b8a27a5c0a1")?,
///     project_id: project.clone(),
///     project_name: "Storage service".into(),
///     date_created: created,
///     requested_by: requester.clone(),
///     description: "first release".into(),
///     images: BTreeMap::new(),
/// });
/// store.create_release(&release).await?;
///
/// let stage = EnvironmentId::new("stage")?;
/// let deployed_at = created.add_micros(1_000_000);
/// let deployment = Deployment::new(stage, deployed_at, requester, "to stage");
/// let updated = store.add_deployment(&project, release.release_id(), &deployment).await?;
/// assert_eq!(updated.last_date_deployed(), Some(deployed_at));
/// assert_eq!(store.latest_release(&project).await?.release, Some(updated));
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InMemoryReleaseStore {
    releases: Arc<Mutex<Releases>>,
    // Locked after `releases` whenever both are held.
    unreadable: Arc<Mutex<UnreadableRecords>>,
    // Leases, freezes, blocks and their events (`ControlStore`); never
    // locked together with the others.
    controls: Arc<Mutex<control::Controls>>,
}

impl InMemoryReleaseStore {
    /// An empty store.
    pub fn new() -> InMemoryReleaseStore {
        InMemoryReleaseStore::default()
    }

    /// Stores a record as given, replacing any with its `release_id`, the
    /// way an unconditional `PutItem` would: for tests of records other
    /// tools wrote, including ones this crate cannot decode. A record that
    /// decodes is stored as its [`Release`]; one that does not is kept as a
    /// table would keep it: [`release`](ReleaseStore::release) fails with
    /// [`Error::InvalidRecord`] and listings report it in their `skipped`.
    ///
    /// Fails with [`Error::InvalidArgument`] if `record` is not an object
    /// with string `release_id` and `project_id` (the table's key and the
    /// indexes' partition key).
    pub fn insert_record(&self, record: serde_json::Value) -> Result<()> {
        let key = |name: &str| match record.get(name) {
            Some(serde_json::Value::String(text)) => Ok(text.clone()),
            _ => Err(Error::InvalidArgument {
                argument: "record",
                reason: format!("must be an object with a string `{name}`"),
            }),
        };
        let id_text = key("release_id")?;
        let project = ProjectId::new(key("project_id")?)?;
        let text = |name: &str| record.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (date_created, last_date_deployed) = (text("date_created"), text("last_date_deployed"));
        let name = format!("release {id_text} in the in-memory store");
        let decoded = Release::from_json(record, &name);
        let mut releases = lock(&self.releases);
        let mut unreadable = lock(&self.unreadable);
        let readable = releases.entry(project.clone()).or_default();
        let unreadable = unreadable.entry(project).or_default();
        if let Ok(id) = ReleaseId::new(id_text.as_str()) {
            readable.remove(&id);
        }
        unreadable.remove(&id_text);
        match decoded {
            Ok(release) => {
                readable.insert(release.release_id().clone(), release);
            }
            Err(error) => {
                let skipped = SkippedRecord::from_error(&error, Some(&id_text)).ok_or(error)?;
                unreadable.insert(
                    id_text,
                    Unreadable {
                        date_created,
                        last_date_deployed,
                        skipped,
                    },
                );
            }
        }
        Ok(())
    }

    /// The project's unreadable records listed by `date_created` (or by
    /// `last_date_deployed` when `deployed`) that `keep` accepts.
    fn skipped_where(
        &self,
        project: &ProjectId,
        deployed: bool,
        keep: impl Fn(TextPosition<'_>) -> bool,
    ) -> Vec<SkippedRecord> {
        let unreadable = lock(&self.unreadable);
        let Some(records) = unreadable.get(project) else {
            return Vec::new();
        };
        let mut found: Vec<(TextPosition<'_>, &SkippedRecord)> = records
            .iter()
            .filter_map(|(id, record)| {
                let date = if deployed {
                    record.last_date_deployed.as_deref()
                } else {
                    record.date_created.as_deref()
                }?;
                Some(((date, id.as_str()), &record.skipped))
            })
            .filter(|(position, _)| keep(*position))
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        found.into_iter().map(|(_, s)| s.clone()).collect()
    }

    /// The project's releases, newest first.
    fn sorted(&self, project: &ProjectId) -> Vec<Release> {
        let mut releases: Vec<Release> = lock(&self.releases)
            .get(project)
            .map(|releases| releases.values().cloned().collect())
            .unwrap_or_default();
        releases.sort_by(|a, b| position(b).cmp(&position(a)));
        releases
    }
}

impl fmt::Debug for InMemoryReleaseStore {
    // A summary: see `InMemoryImageStore`'s Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let releases = lock(&self.releases);
        f.debug_struct("InMemoryReleaseStore")
            .field("projects", &releases.len())
            .field(
                "releases",
                &releases.values().map(BTreeMap::len).sum::<usize>(),
            )
            .finish()
    }
}

/// The error reading an unreadable record by id gives.
fn invalid_record(skipped: &SkippedRecord) -> Error {
    Error::InvalidRecord {
        record: skipped.record.clone(),
        attribute: skipped.attribute.clone(),
        message: skipped.message.clone(),
    }
}

/// Where a release sits in the "newest" order: greater is newer.
fn position(release: &Release) -> (Timestamp, &ReleaseId) {
    (release.date_created(), release.release_id())
}

#[async_trait]
impl ReleaseStore for InMemoryReleaseStore {
    async fn create_release(&self, release: &Release) -> Result<()> {
        use std::collections::btree_map::Entry;

        let new = release.clone();
        let mut releases = lock(&self.releases);
        let taken_by_unreadable = lock(&self.unreadable)
            .get(release.project_id())
            .is_some_and(|records| records.contains_key(release.release_id().as_str()));
        if taken_by_unreadable {
            return Err(Error::ReleaseAlreadyExists {
                project: release.project_id().clone(),
                release: release.release_id().clone(),
            });
        }
        match releases
            .entry(release.project_id().clone())
            .or_default()
            .entry(release.release_id().clone())
        {
            Entry::Occupied(_) => Err(Error::ReleaseAlreadyExists {
                project: release.project_id().clone(),
                release: release.release_id().clone(),
            }),
            Entry::Vacant(slot) => {
                slot.insert(new);
                Ok(())
            }
        }
    }

    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>> {
        if let Some(record) = lock(&self.unreadable)
            .get(project)
            .and_then(|records| records.get(id.as_str()))
        {
            return Err(invalid_record(&record.skipped));
        }
        Ok(lock(&self.releases)
            .get(project)
            .and_then(|releases| releases.get(id))
            .cloned())
    }

    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease> {
        let release = lock(&self.releases)
            .get(project)
            .and_then(|releases| {
                releases
                    .values()
                    .max_by(|a, b| position(a).cmp(&position(b)))
            })
            .cloned();
        let newest = release
            .as_ref()
            .map(|r| (r.date_created().to_string(), r.release_id().clone()));
        let skipped = self.skipped_where(project, false, |at| match &newest {
            Some((date, id)) => at > (date.as_str(), id.as_str()),
            None => true,
        });
        Ok(LatestRelease { release, skipped })
    }

    async fn list_releases(
        &self,
        project: &ProjectId,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        let after = page
            .cursor()
            .map(|cursor| {
                let position = ListingPosition::decode(project, cursor)?;
                Ok::<_, Error>((position.timestamp()?, position.release_id))
            })
            .transpose()?;
        let mut rest = self
            .sorted(project)
            .into_iter()
            .filter(|release| match &after {
                // Strictly older than the last release of the previous page.
                Some((date, id)) => position(release) < (*date, id),
                None => true,
            });
        let items: Vec<Release> = rest.by_ref().take(page.limit()).collect();
        let next = match (rest.next(), items.last()) {
            (Some(_), Some(last)) => Some(ListingPosition::of(last).encode(project)),
            _ => None,
        };
        // Unreadable records between the previous page's end and this one's.
        let after = after.map(|(date, id)| (date.to_string(), id));
        let last = match (&next, items.last()) {
            (Some(_), Some(last)) => {
                Some((last.date_created().to_string(), last.release_id().clone()))
            }
            _ => None,
        };
        fn text((date, id): &(String, ReleaseId)) -> TextPosition<'_> {
            (date.as_str(), id.as_str())
        }
        let skipped = self.skipped_where(project, false, |at| {
            on_page(at, after.as_ref().map(text), last.as_ref().map(text))
        });
        Ok(Page {
            items,
            next,
            skipped,
        })
    }

    async fn add_deployment(
        &self,
        project: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release> {
        let mut releases = lock(&self.releases);
        if let Some(record) = lock(&self.unreadable)
            .get(project)
            .and_then(|records| records.get(id.as_str()))
        {
            return Err(invalid_record(&record.skipped));
        }
        let Some(stored) = releases
            .get_mut(project)
            .and_then(|releases| releases.get_mut(id))
        else {
            return Err(Error::ReleaseNotFound {
                project: project.clone(),
                release: id.clone(),
            });
        };
        // Update a copy and swap it in with one assignment, so a panic part
        // way leaves the stored release untouched.
        let mut updated = stored.clone();
        updated.record_deployment(deployment.clone());
        *stored = updated.clone();
        Ok(updated)
    }

    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        check_limit(limit)?;
        let mut found = Vec::new();
        for release in lock(&self.releases)
            .get(project)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            collect_deployments(&mut found, release, environment);
        }
        keep_newest_deployments(&mut found, limit);
        let oldest = oldest_of_full_list(&found, limit);
        let skipped = self.skipped_where(project, true, |(date, _)| {
            oldest.as_deref().is_none_or(|oldest| date >= oldest)
        });
        Ok(RecentDeployments {
            records: found.into_iter().map(|(_, record)| record).collect(),
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{NewRelease, Requester};

    fn release(project: &ProjectId, id: &str, created: Timestamp) -> Release {
        Release::new(NewRelease {
            release_id: ReleaseId::new(id).unwrap(),
            project_id: project.clone(),
            project_name: "Project".into(),
            date_created: created,
            requested_by: Requester::new("tester"),
            description: String::new(),
            images: BTreeMap::new(),
        })
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn cursor_of_another_project_is_rejected() {
        block_on(async {
            let store = InMemoryReleaseStore::new();
            let a = ProjectId::new("a").unwrap();
            let b = ProjectId::new("b").unwrap();
            let t: Timestamp = "2020-01-01T00:00:00".parse().unwrap();
            for (i, id) in ["r1", "r2"].into_iter().enumerate() {
                store
                    .create_release(&release(&a, id, t.add_micros(i as i64)))
                    .await
                    .unwrap();
            }
            let page = store
                .list_releases(&a, &PageRequest::first(1).unwrap())
                .await
                .unwrap();
            let cursor = page.next.expect("a second page");
            let err = store
                .list_releases(&b, &PageRequest::first(1).unwrap().after(cursor))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidCursor { .. }), "{err}");
        });
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let store = InMemoryReleaseStore::new();
        let project = ProjectId::new("p").unwrap();
        let t: Timestamp = "2020-01-01T00:00:00".parse().unwrap();
        let shared = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = shared.releases.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(store.releases.is_poisoned());
        block_on(async {
            store
                .create_release(&release(&project, "r1", t))
                .await
                .unwrap();
            assert!(store
                .latest_release(&project)
                .await
                .unwrap()
                .release
                .is_some());
        });
        assert!(format!("{store:?}").contains("releases: 1"));
    }
}
