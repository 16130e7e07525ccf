//! Importing a [`Snapshot`] into stores: compare everything, then write
//! only what is missing.

use futures::future::join_all;
use serde_json::Value;

use crate::error::Error;
use crate::names::{ImageUri, Label, ProjectId, ServiceId};
use crate::release::Release;
use crate::store::{ImageStore, ReleaseStore};
use crate::transfer::{Conflict, InterruptedImport, Snapshot, TransferError};

/// How many releases an import reads from the target at once.
const CONCURRENT_READS: usize = 16;

/// What an import wrote, and what it found already there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Releases created.
    pub releases_created: usize,
    /// Deployments in the releases created.
    pub deployments_created: usize,
    /// Releases already stored exactly as exported, left as they were.
    pub releases_unchanged: usize,
    /// Images written to labels.
    pub images_written: usize,
    /// Images already at their label, left as they were.
    pub images_unchanged: usize,
}

/// One image an import writes.
struct ImageWrite<'a> {
    label: &'a Label,
    service: &'a ServiceId,
    image: &'a ImageUri,
}

impl Snapshot {
    /// Copies the snapshot into `images` and `releases`, as project
    /// `project` (which must be the snapshot's).
    ///
    /// Everything is compared before the first write, and nothing is
    /// written if anything differs ([`TransferError::Conflicts`]); see the
    /// [module](crate::transfer) docs for what counts as a difference. A
    /// write that fails stops the import with
    /// [`TransferError::Interrupted`]: what was written stays (each
    /// release and image whole), and running the import again completes it.
    pub async fn import_into<I, R>(
        &self,
        project: &ProjectId,
        images: &I,
        releases: &R,
    ) -> Result<Imported, TransferError>
    where
        I: ImageStore + ?Sized,
        R: ReleaseStore + ?Sized,
    {
        if &self.project != project {
            return Err(TransferError::WrongProject {
                project: project.clone(),
                exported: self.project.clone(),
            });
        }
        let mut done = Imported::default();
        let mut conflicts = Vec::new();
        let mut to_create = Vec::new();
        for chunk in self.releases.chunks(CONCURRENT_READS) {
            let stored = join_all(
                chunk
                    .iter()
                    .map(|r| releases.release(project, r.release_id())),
            );
            for (release, stored) in chunk.iter().zip(stored.await) {
                match compare_release(release, stored)? {
                    None => to_create.push(release),
                    Some(None) => done.releases_unchanged += 1,
                    Some(Some(reason)) => conflicts.push(Conflict::Release {
                        release: release.release_id().clone(),
                        reason,
                    }),
                }
            }
        }
        let mut to_write = Vec::new();
        for (label, exported) in &self.labels {
            let stored = images.label_images(project, label).await?;
            for (service, image) in exported {
                let in_the_way = stored
                    .skipped
                    .iter()
                    .find(|s| s.service.as_ref() == Some(service));
                let reason = match (in_the_way, stored.images.get(service)) {
                    (Some(parameter), _) => Some(format!(
                        "the store has a parameter that is not an image there: {}",
                        parameter.reason
                    )),
                    (None, None) => {
                        to_write.push(ImageWrite {
                            label,
                            service,
                            image,
                        });
                        None
                    }
                    (None, Some(stored)) if stored == image => {
                        done.images_unchanged += 1;
                        None
                    }
                    (None, Some(stored)) => Some(format!(
                        "the store has `{}`, the export `{}`",
                        stored.as_str(),
                        image.as_str()
                    )),
                };
                if let Some(reason) = reason {
                    conflicts.push(Conflict::Image {
                        label: label.clone(),
                        service: service.clone(),
                        reason,
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(TransferError::Conflicts {
                project: project.clone(),
                conflicts,
            });
        }

        let interrupted = |done: &Imported, releases_left, images_left, source| {
            TransferError::Interrupted(Box::new(InterruptedImport {
                project: project.clone(),
                done: done.clone(),
                releases_left,
                images_left,
                source,
            }))
        };
        for (i, release) in to_create.iter().enumerate() {
            let result = match releases.create_release(release).await {
                // Created since it was compared: fine if it is this one.
                Err(Error::ReleaseAlreadyExists { .. }) => {
                    match releases.release(project, release.release_id()).await {
                        Ok(Some(stored)) if stored == **release => {
                            done.releases_unchanged += 1;
                            continue;
                        }
                        Ok(_) => Err(Error::ReleaseAlreadyExists {
                            project: project.clone(),
                            release: release.release_id().clone(),
                        }),
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            match result {
                Ok(()) => {
                    done.releases_created += 1;
                    done.deployments_created += release.deployments().len();
                }
                Err(e) => return Err(interrupted(&done, to_create.len() - i, to_write.len(), e)),
            }
        }
        for (i, write) in to_write.iter().enumerate() {
            match images
                .put_image(project, write.label, write.service, write.image)
                .await
            {
                Ok(()) => done.images_written += 1,
                Err(e) => return Err(interrupted(&done, 0, to_write.len() - i, e)),
            }
        }
        Ok(done)
    }
}

/// `None` if the target has no such release, `Some(None)` if it holds the
/// same, `Some(Some(reason))` if it holds another or cannot read it. Any
/// other failure of the store is the import's.
fn compare_release(
    exported: &Release,
    stored: Result<Option<Release>, Error>,
) -> Result<Option<Option<String>>, Error> {
    match stored {
        Ok(None) => Ok(None),
        Ok(Some(stored)) if stored == *exported => Ok(Some(None)),
        Ok(Some(stored)) => Ok(Some(Some(format!(
            "the stored release differs in {}",
            differing_attributes(&stored.to_json(), &exported.to_json()).join(", ")
        )))),
        Err(e @ Error::InvalidRecord { .. }) => {
            Ok(Some(Some(format!("the stored record cannot be read: {e}"))))
        }
        Err(e) => Err(e),
    }
}

/// The top-level attributes whose values differ between two records.
fn differing_attributes(a: &Value, b: &Value) -> Vec<String> {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return vec!["(the record itself)".to_owned()];
    };
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|key| a.get(*key) != b.get(*key))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}
