//! [`ImageStore`] on the `images` table: one row per project, label and
//! service, as SSM holds one parameter at `/{project}/images/{label}/{service}`.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::error::failure;
use super::SqliteStore;
use crate::error::{Error, Result};
use crate::names::{ImageUri, Label, ProjectId, ServiceId};
use crate::store::{ImageStore, LabelImages, SkippedParameter};

/// The row's name in messages, in the shape of the SSM parameter it stands
/// for.
fn parameter_name(project: &str, label: &str, service: &str) -> String {
    format!("/{project}/images/{label}/{service}")
}

fn label_images(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    label: &Label,
) -> Result<LabelImages> {
    let fail = |e| {
        let operation = format!("reading label {label} of project {project}");
        failure(path, &operation, e)
    };
    let mut select = connection
        .prepare_cached(
            "SELECT service, uri FROM images WHERE project_id = ?1 AND label = ?2 ORDER BY service",
        )
        .map_err(fail)?;
    let rows = select
        .query_map((project.as_str(), label.as_str()), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(fail)?;
    let mut found = LabelImages::default();
    for row in rows {
        let (service, uri) = row.map_err(fail)?;
        let name = parameter_name(project.as_str(), label.as_str(), &service);
        // Rows this crate wrote always hold valid names; a row written by
        // hand may not, and must not hide the others.
        let service = match ServiceId::new(service) {
            Ok(service) => service,
            Err(e) => {
                found.skipped.push(SkippedParameter {
                    name,
                    service: None,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        match ImageUri::new(uri) {
            Ok(uri) => {
                found.images.insert(service, uri);
            }
            Err(e) => found.skipped.push(SkippedParameter {
                name,
                service: Some(service),
                reason: e.to_string(),
            }),
        }
    }
    Ok(found)
}

fn image(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    label: &Label,
    service: &ServiceId,
) -> Result<Option<ImageUri>> {
    let name = parameter_name(project.as_str(), label.as_str(), service.as_str());
    let uri: Option<String> = connection
        .prepare_cached(
            "SELECT uri FROM images WHERE project_id = ?1 AND label = ?2 AND service = ?3",
        )
        .and_then(|mut select| {
            select
                .query_row(
                    (project.as_str(), label.as_str(), service.as_str()),
                    |row| row.get(0),
                )
                .optional()
        })
        .map_err(|e| failure(path, &format!("reading image {name}"), e))?;
    uri.map(|uri| {
        ImageUri::new(uri).map_err(|e| Error::InvalidRecord {
            record: format!("image {name} in SQLite store {}", path.display()),
            attribute: "uri".to_owned(),
            message: e.to_string(),
        })
    })
    .transpose()
}

fn put_image(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    label: &Label,
    service: &ServiceId,
    image: &ImageUri,
) -> Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO images (project_id, label, service, uri) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, label, service) DO UPDATE SET uri = excluded.uri",
        )
        .and_then(|mut upsert| {
            upsert.execute((
                project.as_str(),
                label.as_str(),
                service.as_str(),
                image.as_str(),
            ))
        })
        .map(|_| ())
        .map_err(|e| {
            let name = parameter_name(project.as_str(), label.as_str(), service.as_str());
            failure(path, &format!("writing image {name}"), e)
        })
}

#[async_trait]
impl ImageStore for SqliteStore {
    fn label_location(&self, _: &ProjectId, label: &Label) -> String {
        format!("label `{label}` in SQLite file {}", self.path().display())
    }

    async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages> {
        let (project, label) = (project.clone(), label.clone());
        self.call("reading a label", move |c, path| {
            label_images(c, path, &project, &label)
        })
        .await
    }

    async fn image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
    ) -> Result<Option<ImageUri>> {
        let (project, label, service) = (project.clone(), label.clone(), service.clone());
        self.call("reading an image", move |c, path| {
            image(c, path, &project, &label, &service)
        })
        .await
    }

    async fn put_image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()> {
        let (project, label) = (project.clone(), label.clone());
        let (service, image) = (service.clone(), image.clone());
        self.call("writing an image", move |c, path| {
            put_image(c, path, &project, &label, &service, &image)
        })
        .await
    }
}
