//! Publishing images and making releases.

use std::collections::BTreeMap;

use super::*;
use crate::error::{Error, Result};
use crate::names::{ImageUri, Label, ReleaseRef, ServiceId};
use crate::release::{ImageEntry, NewRelease, RecordShape, Release};
use crate::store::{ImageStore, LabelImages, Page, PageRequest, ReleaseStore};

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
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
    pub(super) async fn release_shape(&self) -> Result<(RecordShape, Vec<Warning>)> {
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
    pub(super) fn deployment_shape(&self, release: &Release) -> RecordShape {
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
                location: self.images.label_location(project, &request.from),
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

    pub(super) async fn image_from(
        &self,
        service: &ServiceId,
        source: ImageSource,
    ) -> Result<ImageUri> {
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

    pub(super) async fn create(
        &self,
        images: BTreeMap<ServiceId, ImageEntry>,
        description: Option<String>,
        shape: RecordShape,
        requester: &crate::Requester,
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
}
