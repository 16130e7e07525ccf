//! Control rows: records as JSON, the context of an operation, transactions,
//! and reading and writing rows.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::control::{Block, ControlAction, ControlChange, ControlEvent, Freeze, Lease};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::decode_record;
use crate::sqlite::error::failure;

/// A record as stored: its JSON. The control types hold only strings,
/// numbers and maps with string keys, so this cannot fail.
pub(super) fn json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// Decodes a stored record; `name` says which in errors.
pub(super) fn parse<T: DeserializeOwned>(text: &str, name: &str) -> Result<T> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidRecord {
        record: name.to_owned(),
        attribute: "(the record itself)".to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    decode_record(value, name)
}

/// What a failed SQLite call was doing, for its error.
pub(super) struct Doing<'a> {
    pub(super) path: &'a Path,
    pub(super) operation: String,
}

impl Doing<'_> {
    pub(super) fn fail(&self, error: rusqlite::Error) -> Error {
        failure(self.path, &self.operation, error)
    }

    pub(super) fn record(&self, what: &str) -> String {
        format!("{what} in SQLite store {}", self.path.display())
    }
}

pub(super) fn immediate<'c>(
    connection: &'c mut Connection,
    doing: &Doing<'_>,
) -> Result<Transaction<'c>> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| doing.fail(e))
}

pub(super) fn select_one<T: DeserializeOwned>(
    connection: &Connection,
    doing: &Doing<'_>,
    sql: &str,
    key: (&str, &str),
    what: &str,
) -> Result<Option<T>> {
    let text: Option<String> = connection
        .prepare_cached(sql)
        .and_then(|mut select| select.query_row(key, |row| row.get(0)).optional())
        .map_err(|e| doing.fail(e))?;
    text.map(|text| parse(&text, &doing.record(what)))
        .transpose()
}

pub(super) fn lease_row(
    connection: &Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
) -> Result<Option<Lease>> {
    select_one(
        connection,
        doing,
        "SELECT record FROM leases WHERE project_id = ?1 AND environment = ?2",
        (project.as_str(), environment.as_str()),
        &format!("lease of environment {environment} of project {project}"),
    )
}

pub(super) fn freeze_row(
    connection: &Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
) -> Result<Option<Freeze>> {
    select_one(
        connection,
        doing,
        "SELECT record FROM freezes WHERE project_id = ?1 AND environment = ?2",
        (project.as_str(), environment.as_str()),
        &format!("freeze of environment {environment} of project {project}"),
    )
}

pub(super) fn block_row(
    connection: &Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    release: &ReleaseId,
) -> Result<Option<Block>> {
    select_one(
        connection,
        doing,
        "SELECT record FROM blocks WHERE project_id = ?1 AND release_id = ?2",
        (project.as_str(), release.as_str()),
        &format!("block of release {release} of project {project}"),
    )
}

pub(super) fn put_lease(tx: &Transaction<'_>, doing: &Doing<'_>, lease: &Lease) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO leases (project_id, environment, lease_id, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, environment) DO UPDATE SET
             lease_id = excluded.lease_id, record = excluded.record",
    )
    .and_then(|mut insert| {
        insert.execute((
            lease.project.as_str(),
            lease.environment.as_str(),
            lease.lease_id.as_str(),
            json(lease),
        ))
    })
    .map(|_| ())
    .map_err(|e| doing.fail(e))
}

/// Deletes the rows `sql` (keyed by two values) selects.
pub(super) fn delete(
    tx: &Transaction<'_>,
    doing: &Doing<'_>,
    sql: &str,
    key: (&str, &str),
) -> Result<()> {
    tx.prepare_cached(sql)
        .and_then(|mut delete| delete.execute(key))
        .map(|_| ())
        .map_err(|e| doing.fail(e))
}

/// Appends the project's next event, inside the change's transaction.
pub(super) fn record_event(
    tx: &Transaction<'_>,
    doing: &Doing<'_>,
    project: &ProjectId,
    action: &ControlAction,
    change: ControlChange,
) -> Result<()> {
    let next: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(sequence), 0) + 1 FROM control_events WHERE project_id = ?1",
        )
        .and_then(|mut select| select.query_row((project.as_str(),), |row| row.get(0)))
        .map_err(|e| doing.fail(e))?;
    let event = ControlEvent::new(u64::try_from(next).unwrap_or(1), project, action, change);
    tx.prepare_cached(
        "INSERT INTO control_events (project_id, sequence, environment, record)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut insert| {
        insert.execute((
            project.as_str(),
            next,
            event.environment().map(EnvironmentId::as_str),
            json(&event),
        ))
    })
    .map(|_| ())
    .map_err(|e| doing.fail(e))
}

pub(super) fn commit(tx: Transaction<'_>, doing: &Doing<'_>) -> Result<()> {
    tx.commit().map_err(|e| doing.fail(e))
}

/// The rows' records `sql` selects with `params`, decoded.
pub(super) fn select_all<T: DeserializeOwned>(
    connection: &Connection,
    doing: &Doing<'_>,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<T>> {
    let texts: Vec<String> = connection
        .prepare_cached(sql)
        .and_then(|mut select| {
            select
                .query_map(params, |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| doing.fail(e))?;
    let name = doing.record(what);
    texts.iter().map(|text| parse(text, &name)).collect()
}
