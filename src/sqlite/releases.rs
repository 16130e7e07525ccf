//! [`ReleaseStore`] on the `releases` table: one row per release, its JSON
//! record plus the indexed columns the listings read.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::Value;

use super::error::failure;
use super::records::{decode, record_name, Columns};
use super::SqliteStore;
use crate::cursor::ListingPosition;
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{Deployment, Release};
use crate::store::{
    check_limit, collect_deployments, keep_newest_deployments, LatestRelease, Page, PageRequest,
    RankedDeployment, RecentDeployments, ReleaseStore, SkippedRecord,
};

/// The skipped record for a row that does not decode; any other error
/// fails the listing.
fn skip(error: Error, id: &str) -> Result<SkippedRecord> {
    SkippedRecord::from_error(&error, Some(id)).ok_or(error)
}

/// A row's release id and record.
fn id_and_record(row: &Row<'_>) -> rusqlite::Result<(String, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

/// Stores `record` under its key, replacing any row there.
fn put_record(
    connection: &Connection,
    project: &str,
    id: &str,
    record: &Value,
) -> rusqlite::Result<()> {
    let Columns {
        date_created,
        last_date_deployed,
    } = Columns::of_value(record);
    connection
        .prepare_cached(
            "INSERT INTO releases (project_id, release_id, date_created, last_date_deployed, record)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (project_id, release_id) DO UPDATE SET
                 date_created = excluded.date_created,
                 last_date_deployed = excluded.last_date_deployed,
                 record = excluded.record",
        )?
        .execute((project, id, date_created, last_date_deployed, record.to_string()))
        .map(|_| ())
}

fn create_release(connection: &Connection, path: &Path, release: &Release) -> Result<()> {
    let Columns {
        date_created,
        last_date_deployed,
    } = Columns::of_release(release);
    let inserted = connection
        .prepare_cached(
            "INSERT INTO releases (project_id, release_id, date_created, last_date_deployed, record)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut insert| {
            insert.execute((
                release.project_id().as_str(),
                release.release_id().as_str(),
                date_created,
                last_date_deployed,
                release.to_json().to_string(),
            ))
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(e)
            if e.sqlite_error().map(|e| e.extended_code)
                == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            Err(Error::ReleaseAlreadyExists {
                project: release.project_id().clone(),
                release: release.release_id().clone(),
            })
        }
        Err(e) => Err(failure(
            path,
            &format!(
                "creating release {} of project {}",
                release.release_id(),
                release.project_id()
            ),
            e,
        )),
    }
}

/// The stored record of a release, if there is one.
fn stored_record(
    connection: &Connection,
    project: &str,
    id: &str,
) -> rusqlite::Result<Option<String>> {
    connection
        .prepare_cached("SELECT record FROM releases WHERE project_id = ?1 AND release_id = ?2")?
        .query_row((project, id), |row| row.get(0))
        .optional()
}

fn release(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    id: &ReleaseId,
) -> Result<Option<Release>> {
    stored_record(connection, project.as_str(), id.as_str())
        .map_err(|e| {
            failure(
                path,
                &format!("reading release {id} of project {project}"),
                e,
            )
        })?
        .map(|record| decode(path, project.as_str(), id.as_str(), &record))
        .transpose()
}

fn latest_release(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
) -> Result<LatestRelease> {
    let fail = |e| {
        failure(
            path,
            &format!("reading the latest release of project {project}"),
            e,
        )
    };
    let mut select = connection
        .prepare_cached(
            "SELECT release_id, record FROM releases
             WHERE project_id = ?1 AND date_created IS NOT NULL
             ORDER BY date_created DESC, release_id DESC",
        )
        .map_err(fail)?;
    let mut rows = select.query((project.as_str(),)).map_err(fail)?;
    let mut skipped = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let (id, record) = id_and_record(row).map_err(fail)?;
        match decode(path, project.as_str(), &id, &record) {
            Ok(release) => {
                return Ok(LatestRelease {
                    release: Some(release),
                    skipped,
                })
            }
            Err(e) => skipped.push(skip(e, &id)?),
        }
    }
    Ok(LatestRelease {
        release: None,
        skipped,
    })
}

fn list_releases(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    page: &PageRequest,
) -> Result<Page<Release>> {
    let after = page
        .cursor()
        .map(|cursor| ListingPosition::decode(project, cursor))
        .transpose()?;
    let fail = |e| {
        failure(
            path,
            &format!("listing the releases of project {project}"),
            e,
        )
    };
    let (filter, params) = match after {
        None => ("date_created IS NOT NULL", vec![project.to_string()]),
        // Strictly older than the last release of the previous page.
        Some(after) => (
            "(date_created, release_id) < (?2, ?3)",
            vec![
                project.to_string(),
                after.timestamp()?.to_string(),
                after.release_id.into_string(),
            ],
        ),
    };
    let mut select = connection
        .prepare_cached(&format!(
            "SELECT release_id, record FROM releases WHERE project_id = ?1 AND {filter}
             ORDER BY date_created DESC, release_id DESC"
        ))
        .map_err(fail)?;
    let mut rows = select
        .query(rusqlite::params_from_iter(params))
        .map_err(fail)?;
    let mut items: Vec<Release> = Vec::new();
    let mut skipped = Vec::new();
    // Unreadable rows after a full page belong to this page only if no
    // readable release follows them (then there is no next page).
    let mut trailing = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next().map_err(fail)? {
        let (id, record) = id_and_record(row).map_err(fail)?;
        match decode(path, project.as_str(), &id, &record) {
            Ok(_) if items.len() == page.limit() => {
                more = true;
                break;
            }
            Ok(release) => items.push(release),
            Err(e) if items.len() == page.limit() => trailing.push(skip(e, &id)?),
            Err(e) => skipped.push(skip(e, &id)?),
        }
    }
    let next = match (more, items.last()) {
        (true, Some(last)) => Some(ListingPosition::of(last).encode(project)),
        _ => None,
    };
    if next.is_none() {
        skipped.append(&mut trailing);
    }
    Ok(Page {
        items,
        next,
        skipped,
    })
}

fn add_deployment(
    connection: &mut Connection,
    path: &Path,
    project: &ProjectId,
    id: &ReleaseId,
    deployment: &Deployment,
) -> Result<Release> {
    let fail = |e| {
        let operation = format!("recording a deployment of release {id} of project {project}");
        failure(path, &operation, e)
    };
    // IMMEDIATE takes the write lock before the read, so no other process
    // can change the record between this read and the write below.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let Some(record) = stored_record(&tx, project.as_str(), id.as_str()).map_err(fail)? else {
        return Err(Error::ReleaseNotFound {
            project: project.clone(),
            release: id.clone(),
        });
    };
    let mut release = decode(path, project.as_str(), id.as_str(), &record)?;
    release.record_deployment(deployment.clone());
    let Columns {
        date_created,
        last_date_deployed,
    } = Columns::of_release(&release);
    tx.prepare_cached(
        "UPDATE releases SET record = ?3, date_created = ?4, last_date_deployed = ?5
         WHERE project_id = ?1 AND release_id = ?2",
    )
    .and_then(|mut update| {
        update.execute((
            project.as_str(),
            id.as_str(),
            release.to_json().to_string(),
            date_created,
            last_date_deployed,
        ))
    })
    .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(release)
}

fn recent_deployments(
    connection: &Connection,
    path: &Path,
    project: &ProjectId,
    environment: Option<&EnvironmentId>,
    limit: usize,
) -> Result<RecentDeployments> {
    let fail = |e| {
        failure(
            path,
            &format!("reading the recent deployments of project {project}"),
            e,
        )
    };
    let mut select = connection
        .prepare_cached(
            "SELECT release_id, record, last_date_deployed FROM releases
             WHERE project_id = ?1 AND last_date_deployed IS NOT NULL
             ORDER BY last_date_deployed DESC, release_id DESC",
        )
        .map_err(fail)?;
    let mut rows = select.query((project.as_str(),)).map_err(fail)?;
    let mut held: Vec<RankedDeployment> = Vec::new();
    let mut skipped = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let (id, record) = id_and_record(row).map_err(fail)?;
        let last: String = row.get(2).map_err(fail)?;
        // No deployment of this row or any later one is newer than `last`:
        // once that is older than the oldest of a full list, stop.
        if held.len() == limit {
            if let Some((_, oldest)) = held.last() {
                if last < oldest.deployment.date_created().to_string() {
                    break;
                }
            }
        }
        match decode(path, project.as_str(), &id, &record) {
            Ok(release) => {
                collect_deployments(&mut held, &release, environment);
                keep_newest_deployments(&mut held, limit);
            }
            Err(e) => skipped.push(skip(e, &id)?),
        }
    }
    Ok(RecentDeployments {
        records: held.into_iter().map(|(_, record)| record).collect(),
        skipped,
    })
}

impl SqliteStore {
    /// Stores a release record as given, replacing any with its
    /// `release_id`, the way an unconditional `PutItem` would: for imports
    /// and for tests of records other tools wrote, including ones this crate
    /// cannot decode. A record that does not decode is kept:
    /// [`release`](ReleaseStore::release) fails with
    /// [`Error::InvalidRecord`] and listings report it in their `skipped`.
    ///
    /// Fails with [`Error::InvalidArgument`] if `record` is not an object
    /// with string `release_id` and `project_id` (the row's key), and with
    /// [`Error::InvalidName`] if `project_id` is not a valid project id.
    pub async fn insert_record(&self, record: Value) -> Result<()> {
        let key = |name: &str| match record.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            _ => Err(Error::InvalidArgument {
                argument: "record",
                reason: format!("must be an object with a string `{name}`"),
            }),
        };
        let id = key("release_id")?;
        let project = ProjectId::new(key("project_id")?)?;
        self.call("storing a release record", move |c, path| {
            put_record(c, project.as_str(), &id, &record).map_err(|e| {
                let operation = format!("storing {}", record_name(path, &id));
                failure(path, &operation, e)
            })
        })
        .await
    }
}

#[async_trait]
impl ReleaseStore for SqliteStore {
    async fn create_release(&self, release: &Release) -> Result<()> {
        let release = release.clone();
        self.call("creating a release", move |c, path| {
            create_release(c, path, &release)
        })
        .await
    }

    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>> {
        let (project, id) = (project.clone(), id.clone());
        self.call("reading a release", move |c, path| {
            release(c, path, &project, &id)
        })
        .await
    }

    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease> {
        let project = project.clone();
        self.call("reading the latest release", move |c, path| {
            latest_release(c, path, &project)
        })
        .await
    }

    async fn list_releases(
        &self,
        project: &ProjectId,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        let (project, page) = (project.clone(), page.clone());
        self.call("listing releases", move |c, path| {
            list_releases(c, path, &project, &page)
        })
        .await
    }

    async fn add_deployment(
        &self,
        project: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release> {
        let (project, id, deployment) = (project.clone(), id.clone(), deployment.clone());
        self.call("recording a deployment", move |c, path| {
            add_deployment(c, path, &project, &id, &deployment)
        })
        .await
    }

    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        let limit = check_limit(limit)?;
        let (project, environment) = (project.clone(), environment.cloned());
        self.call("reading recent deployments", move |c, path| {
            recent_deployments(c, path, &project, environment.as_ref(), limit)
        })
        .await
    }
}
