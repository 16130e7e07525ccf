//! Copying a project's releases and labels between stores: export from any
//! [`ReleaseStore`] and [`ImageStore`], import into any other.
//!
//! Every backend keeps a release as the same record (the document a
//! DynamoDB item holds), so a copy is a straight one: ids, dates,
//! requesters, descriptions, images, deployments in their record shapes
//! and unknown attributes arrive as they were.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use release_tracking::transfer::Snapshot;
//! use release_tracking::{ImageStore, InMemoryImageStore, InMemoryReleaseStore, Label, Manifest};
//!
//! let manifest = Manifest::parse(
//!     r#"{"storage": {"name": "Storage", "environments": [{"id": "stage", "name": "Staging"}]}}"#,
//!     ".wellcome_project",
//! )?;
//! let project = manifest.select(None)?;
//! let (images, releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
//! let image = "ecr.example.com/archivist:ref.3f2a9c1".parse()?;
//! images.put_image(project.id(), &Label::latest(), &"archivist".parse()?, &image).await?;
//!
//! let mut file = Vec::new(); // or a file, stdout, …
//! let snapshot = Snapshot::collect(project, &images, &releases).await?;
//! snapshot.write_to(&mut file)?;
//!
//! let (to_images, to_releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
//! let read = Snapshot::read_from(file.as_slice())?;
//! let imported = read.import_into(project.id(), &to_images, &to_releases).await?;
//! assert_eq!(imported.images_written, 1);
//! assert_eq!(Snapshot::collect(project, &to_images, &to_releases).await?, snapshot);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The format (version 1)
//!
//! UTF-8 JSON lines: one JSON object per line, each with a string `kind`.
//! Unknown kinds and unknown fields are errors, so a file is either read
//! whole or refused, naming the line.
//!
//! | `kind` | fields | lines |
//! |---|---|---|
//! | `header` | `format` (`"release-tracking-export"`), `version` (`1`), `project_id` | the first, once |
//! | `release` | `release`: the release record as stored (`release_id`, `project_id`, `date_created`, `requested_by`, `images`, `deployments`, `last_date_deployed`, …) | one per release, newest first |
//! | `label` | `label`, `images` (service → image URI) | one per label exported |
//! | `skipped_record` | `record`, `release_id` (or `null`), `attribute`, `message` | one per record the export could not read |
//! | `skipped_parameter` | `name`, `service` (or `null`), `reason` | one per parameter under a label that is not an image |
//! | `end` | `releases`, `labels`, `skipped`: how many such lines the file holds | the last, once |
//!
//! The end line makes a file cut short detectable: without it, or with
//! counts that do not match, nothing is imported. A reader refuses a
//! `version` greater than the one it knows ([`FORMAT_VERSION`]).
//!
//! # What is exported
//!
//! Every release of the project that its store can read, with its
//! deployments, and the images at `latest` and at each of the project's
//! environments ([`Snapshot::collect`]; other labels with
//! [`Snapshot::collect_labels`]). A record the store cannot decode is not
//! dropped silently: the store reports it ([`SkippedRecord`](crate::SkippedRecord)),
//! and the export carries it as a `skipped_record` line, and in
//! [`Snapshot::skipped`]; likewise a parameter under a label that is not an
//! image.
//!
//! # What an import does
//!
//! [`Snapshot::import_into`] first compares the whole export with the
//! target and writes nothing if anything differs ([`TransferError::Conflicts`]
//! lists every difference):
//!
//! - a release missing from the target is created as it is in the export;
//!   one stored identically is skipped and counted; one stored differently
//!   (or that the target cannot read) is a conflict;
//! - an image missing at a label is written; one stored identically is
//!   skipped and counted; another image, or a parameter that is not an
//!   image, where the export has one is a conflict. Images the target
//!   holds for services the export does not name are left alone.
//!
//! So an import is idempotent, and an import that a failed write stopped
//! ([`TransferError::Interrupted`], which says how far it got) completes
//! when run again. Writing images to an environment's label is what a
//! deploy does: import into a store that Terraform reads with care.

mod error;
mod import;
mod lines;

use std::collections::BTreeMap;

pub use error::{Conflict, InterruptedImport, TransferError};
pub use import::Imported;

use crate::error::Result;
use crate::manifest::Project;
use crate::names::{ImageUri, Label, ProjectId, ServiceId};
use crate::release::Release;
use crate::store::{ImageStore, PageRequest, ReleaseStore, MAX_PAGE_SIZE};
use crate::tracker::Warning;

/// The `format` of an export's header line.
pub const FORMAT: &str = "release-tracking-export";

/// The newest format version this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// A project's releases and labels, as exported: what
/// [`collect`](Snapshot::collect) read from stores, or
/// [`read_from`](Snapshot::read_from) read from an export.
///
/// It is held in memory whole (a project's releases over years are a few
/// megabytes), so an export is written only once every read succeeded and
/// an import checks everything before its first write.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The project.
    pub project: ProjectId,
    /// Its readable releases with their deployments, newest first.
    pub releases: Vec<Release>,
    /// The images at each label exported.
    pub labels: BTreeMap<Label, BTreeMap<ServiceId, ImageUri>>,
    /// What the export passed over: records it could not read, parameters
    /// that are not images.
    pub skipped: Vec<Warning>,
}

impl Snapshot {
    /// The labels an export holds: `latest` and each environment of
    /// `project`.
    pub fn labels_of(project: &Project) -> Vec<Label> {
        std::iter::once(Label::latest())
            .chain(project.environments().iter().map(|e| e.id().label()))
            .collect()
    }

    /// Reads every release of `project` and the images at
    /// [`labels_of(project)`](Snapshot::labels_of).
    pub async fn collect<I, R>(project: &Project, images: &I, releases: &R) -> Result<Snapshot>
    where
        I: ImageStore + ?Sized,
        R: ReleaseStore + ?Sized,
    {
        Snapshot::collect_labels(
            project.id(),
            &Snapshot::labels_of(project),
            images,
            releases,
        )
        .await
    }

    /// Reads every release of `project` and the images at `labels`.
    pub async fn collect_labels<I, R>(
        project: &ProjectId,
        labels: &[Label],
        images: &I,
        releases: &R,
    ) -> Result<Snapshot>
    where
        I: ImageStore + ?Sized,
        R: ReleaseStore + ?Sized,
    {
        let mut snapshot = Snapshot {
            project: project.clone(),
            releases: Vec::new(),
            labels: BTreeMap::new(),
            skipped: Vec::new(),
        };
        let mut request = PageRequest::first(MAX_PAGE_SIZE)?;
        loop {
            let page = releases.list_releases(project, &request).await?;
            snapshot.releases.extend(page.items);
            snapshot
                .skipped
                .extend(page.skipped.into_iter().map(Warning::SkippedRecord));
            match page.next {
                Some(cursor) => request = PageRequest::first(MAX_PAGE_SIZE)?.after(cursor),
                None => break,
            }
        }
        for label in labels {
            if snapshot.labels.contains_key(label) {
                continue;
            }
            let found = images.label_images(project, label).await?;
            snapshot.labels.insert(label.clone(), found.images);
            snapshot
                .skipped
                .extend(found.skipped.into_iter().map(Warning::SkippedParameter));
        }
        Ok(snapshot)
    }

    /// How many deployments the releases hold.
    pub fn deployment_count(&self) -> usize {
        self.releases.iter().map(|r| r.deployments().len()).sum()
    }

    /// How many images the labels hold.
    pub fn image_count(&self) -> usize {
        self.labels.values().map(BTreeMap::len).sum()
    }
}
