//! [`ControlStore`] on the `leases`, `freezes`, `blocks` and
//! `control_events` tables (schema version 3). Every change is one
//! `BEGIN IMMEDIATE` transaction: it reads under the write lock, so the
//! read and the write are one atomic step for every process on the file,
//! and a change and its event are committed together.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::failure;
use super::SqliteStore;
use crate::control::{
    busy, lost, sort_blocks, too_many_blocks, ttl_micros, Acquired, Block, ControlAction,
    ControlChange, ControlEvent, ControlStore, Freeze, Lease, LeaseRequest, MAX_ACTIVE_BLOCKS,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{decode_record, Timestamp};
use crate::store::check_limit;

/// A record as stored: its JSON. The control types hold only strings,
/// numbers and maps with string keys, so this cannot fail.
fn json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// Decodes a stored record; `name` says which in errors.
fn parse<T: DeserializeOwned>(text: &str, name: &str) -> Result<T> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidRecord {
        record: name.to_owned(),
        attribute: "(the record itself)".to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    decode_record(value, name)
}

/// What a failed SQLite call was doing, for its error.
struct Doing<'a> {
    path: &'a Path,
    operation: String,
}

impl Doing<'_> {
    fn fail(&self, error: rusqlite::Error) -> Error {
        failure(self.path, &self.operation, error)
    }

    fn record(&self, what: &str) -> String {
        format!("{what} in SQLite store {}", self.path.display())
    }
}

fn immediate<'c>(connection: &'c mut Connection, doing: &Doing<'_>) -> Result<Transaction<'c>> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| doing.fail(e))
}

fn select_one<T: DeserializeOwned>(
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

fn lease_row(
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

fn freeze_row(
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

fn block_row(
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

fn put_lease(tx: &Transaction<'_>, doing: &Doing<'_>, lease: &Lease) -> Result<()> {
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
fn delete(tx: &Transaction<'_>, doing: &Doing<'_>, sql: &str, key: (&str, &str)) -> Result<()> {
    tx.prepare_cached(sql)
        .and_then(|mut delete| delete.execute(key))
        .map(|_| ())
        .map_err(|e| doing.fail(e))
}

/// Appends the project's next event, inside the change's transaction.
fn record_event(
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

fn commit(tx: Transaction<'_>, doing: &Doing<'_>) -> Result<()> {
    tx.commit().map_err(|e| doing.fail(e))
}

fn acquire(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
    request: &LeaseRequest,
    now: Timestamp,
) -> Result<Acquired> {
    let lease = request.lease_at(project, environment, now);
    let tx = immediate(connection, doing)?;
    let took_over = match lease_row(&tx, doing, project, environment)? {
        None => None,
        Some(held) if held.lease_id == lease.lease_id => None,
        Some(held) if held.is_expired(now) => Some(held),
        Some(held) => return Err(busy(held)),
    };
    put_lease(&tx, doing, &lease)?;
    commit(tx, doing)?;
    Ok(Acquired { lease, took_over })
}

fn renew(
    connection: &mut Connection,
    doing: &Doing<'_>,
    lease: &Lease,
    expires: Timestamp,
) -> Result<Lease> {
    let tx = immediate(connection, doing)?;
    match lease_row(&tx, doing, &lease.project, &lease.environment)? {
        Some(mut held) if held.lease_id == lease.lease_id => {
            held.expires = expires;
            put_lease(&tx, doing, &held)?;
            commit(tx, doing)?;
            Ok(held)
        }
        held => Err(lost(lease, held)),
    }
}

fn release(connection: &mut Connection, doing: &Doing<'_>, lease: &Lease) -> Result<()> {
    let tx = immediate(connection, doing)?;
    match lease_row(&tx, doing, &lease.project, &lease.environment)? {
        Some(held) if held.lease_id == lease.lease_id => {
            delete(
                &tx,
                doing,
                "DELETE FROM leases WHERE project_id = ?1 AND environment = ?2",
                (lease.project.as_str(), lease.environment.as_str()),
            )?;
            commit(tx, doing)
        }
        held => Err(lost(lease, held)),
    }
}

fn force_unlock(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
    action: &ControlAction,
) -> Result<Option<Lease>> {
    let tx = immediate(connection, doing)?;
    let Some(lease) = lease_row(&tx, doing, project, environment)? else {
        return Ok(None);
    };
    delete(
        &tx,
        doing,
        "DELETE FROM leases WHERE project_id = ?1 AND environment = ?2",
        (project.as_str(), environment.as_str()),
    )?;
    let change = ControlChange::ForceUnlock {
        environment: environment.clone(),
        lease: lease.clone(),
    };
    record_event(&tx, doing, project, action, change)?;
    commit(tx, doing)?;
    Ok(Some(lease))
}

fn freeze(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
    action: &ControlAction,
) -> Result<Freeze> {
    let tx = immediate(connection, doing)?;
    if let Some(frozen) = freeze_row(&tx, doing, project, environment)? {
        return Err(Error::EnvironmentFrozen {
            freeze: Box::new(frozen),
        });
    }
    let freeze = Freeze::new(project, environment, action);
    tx.prepare_cached("INSERT INTO freezes (project_id, environment, record) VALUES (?1, ?2, ?3)")
        .and_then(|mut insert| {
            insert.execute((project.as_str(), environment.as_str(), json(&freeze)))
        })
        .map_err(|e| doing.fail(e))?;
    let change = ControlChange::Freeze {
        environment: environment.clone(),
    };
    record_event(&tx, doing, project, action, change)?;
    commit(tx, doing)?;
    Ok(freeze)
}

fn unfreeze(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: &EnvironmentId,
    action: &ControlAction,
) -> Result<Option<Freeze>> {
    let tx = immediate(connection, doing)?;
    let Some(lifted) = freeze_row(&tx, doing, project, environment)? else {
        return Ok(None);
    };
    delete(
        &tx,
        doing,
        "DELETE FROM freezes WHERE project_id = ?1 AND environment = ?2",
        (project.as_str(), environment.as_str()),
    )?;
    let change = ControlChange::Unfreeze {
        environment: environment.clone(),
        lifted: lifted.clone(),
    };
    record_event(&tx, doing, project, action, change)?;
    commit(tx, doing)?;
    Ok(Some(lifted))
}

fn block(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    release: &ReleaseId,
    action: &ControlAction,
) -> Result<Block> {
    let tx = immediate(connection, doing)?;
    if let Some(blocked) = block_row(&tx, doing, project, release)? {
        return Err(Error::ReleaseBlocked {
            block: Box::new(blocked),
        });
    }
    let count: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM blocks WHERE project_id = ?1")
        .and_then(|mut select| select.query_row((project.as_str(),), |row| row.get(0)))
        .map_err(|e| doing.fail(e))?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ACTIVE_BLOCKS {
        return Err(too_many_blocks(project, release));
    }
    let block = Block::new(project, release, action);
    tx.prepare_cached("INSERT INTO blocks (project_id, release_id, record) VALUES (?1, ?2, ?3)")
        .and_then(|mut insert| insert.execute((project.as_str(), release.as_str(), json(&block))))
        .map_err(|e| doing.fail(e))?;
    let change = ControlChange::Block {
        release: release.clone(),
    };
    record_event(&tx, doing, project, action, change)?;
    commit(tx, doing)?;
    Ok(block)
}

fn unblock(
    connection: &mut Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    release: &ReleaseId,
    action: &ControlAction,
) -> Result<Option<Block>> {
    let tx = immediate(connection, doing)?;
    let Some(lifted) = block_row(&tx, doing, project, release)? else {
        return Ok(None);
    };
    delete(
        &tx,
        doing,
        "DELETE FROM blocks WHERE project_id = ?1 AND release_id = ?2",
        (project.as_str(), release.as_str()),
    )?;
    let change = ControlChange::Unblock {
        release: release.clone(),
        lifted: lifted.clone(),
    };
    record_event(&tx, doing, project, action, change)?;
    commit(tx, doing)?;
    Ok(Some(lifted))
}

/// The rows' records `sql` selects with `params`, decoded.
fn select_all<T: DeserializeOwned>(
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

fn events(
    connection: &Connection,
    doing: &Doing<'_>,
    project: &ProjectId,
    environment: Option<&EnvironmentId>,
    limit: usize,
) -> Result<Vec<ControlEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let what = format!("a control event of project {project}");
    match environment {
        None => select_all(
            connection,
            doing,
            "SELECT record FROM control_events WHERE project_id = ?1
             ORDER BY sequence DESC LIMIT ?2",
            (project.as_str(), limit),
            &what,
        ),
        Some(environment) => select_all(
            connection,
            doing,
            "SELECT record FROM control_events WHERE project_id = ?1 AND environment = ?2
             ORDER BY sequence DESC LIMIT ?3",
            (project.as_str(), environment.as_str(), limit),
            &what,
        ),
    }
}

impl SqliteStore {
    /// Runs `job` on the store's thread with a [`Doing`] named `operation`.
    async fn control<T: Send + 'static>(
        &self,
        label: &'static str,
        operation: String,
        job: impl FnOnce(&mut Connection, &Doing<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(label, move |connection, path| {
            job(connection, &Doing { path, operation })
        })
        .await
    }
}

#[async_trait]
impl ControlStore for SqliteStore {
    async fn acquire_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        request: &LeaseRequest,
        now: Timestamp,
    ) -> Result<Acquired> {
        let (project, environment, request) =
            (project.clone(), environment.clone(), request.clone());
        let operation =
            format!("taking the lease on environment {environment} of project {project}");
        self.control("taking a lease", operation, move |c, doing| {
            acquire(c, doing, &project, &environment, &request, now)
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease> {
        let expires = now.add_micros(ttl_micros(ttl)?);
        let lease = lease.clone();
        let operation = format!(
            "renewing lease {} on environment {} of project {}",
            lease.lease_id, lease.environment, lease.project
        );
        self.control("renewing a lease", operation, move |c, doing| {
            renew(c, doing, &lease, expires)
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        let operation = format!(
            "releasing lease {} on environment {} of project {}",
            lease.lease_id, lease.environment, lease.project
        );
        self.control("releasing a lease", operation, move |c, doing| {
            release(c, doing, &lease)
        })
        .await
    }

    async fn lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Lease>> {
        let (project, environment) = (project.clone(), environment.clone());
        let operation =
            format!("reading the lease on environment {environment} of project {project}");
        self.control("reading a lease", operation, move |c, doing| {
            lease_row(c, doing, &project, &environment)
        })
        .await
    }

    async fn force_unlock(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Lease>> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("force-unlocking environment {environment} of project {project}");
        self.control("force-unlocking", operation, move |c, doing| {
            force_unlock(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Freeze> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("freezing environment {environment} of project {project}");
        self.control("freezing", operation, move |c, doing| {
            freeze(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn unfreeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Freeze>> {
        let (project, environment, action) = (project.clone(), environment.clone(), action.clone());
        let operation = format!("unfreezing environment {environment} of project {project}");
        self.control("unfreezing", operation, move |c, doing| {
            unfreeze(c, doing, &project, &environment, &action)
        })
        .await
    }

    async fn environment_freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Freeze>> {
        let (project, environment) = (project.clone(), environment.clone());
        let operation =
            format!("reading the freeze of environment {environment} of project {project}");
        self.control("reading a freeze", operation, move |c, doing| {
            freeze_row(c, doing, &project, &environment)
        })
        .await
    }

    async fn block_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Block> {
        let (project, release, action) = (project.clone(), release.clone(), action.clone());
        let operation = format!("blocking release {release} of project {project}");
        self.control("blocking", operation, move |c, doing| {
            block(c, doing, &project, &release, &action)
        })
        .await
    }

    async fn unblock_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Option<Block>> {
        let (project, release, action) = (project.clone(), release.clone(), action.clone());
        let operation = format!("unblocking release {release} of project {project}");
        self.control("unblocking", operation, move |c, doing| {
            unblock(c, doing, &project, &release, &action)
        })
        .await
    }

    async fn release_block(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
    ) -> Result<Option<Block>> {
        let (project, release) = (project.clone(), release.clone());
        let operation = format!("reading the block of release {release} of project {project}");
        self.control("reading a block", operation, move |c, doing| {
            block_row(c, doing, &project, &release)
        })
        .await
    }

    async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>> {
        let project = project.clone();
        let operation = format!("listing the blocked releases of project {project}");
        self.control("listing blocks", operation, move |c, doing| {
            let mut blocks = select_all(
                c,
                doing,
                "SELECT record FROM blocks WHERE project_id = ?1",
                (project.as_str(),),
                &format!("a block of project {project}"),
            )?;
            sort_blocks(&mut blocks);
            Ok(blocks)
        })
        .await
    }

    async fn control_events(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>> {
        let limit = check_limit(limit)?;
        let (project, environment) = (project.clone(), environment.cloned());
        let operation = format!("reading the control events of project {project}");
        self.control("reading control events", operation, move |c, doing| {
            events(c, doing, &project, environment.as_ref(), limit)
        })
        .await
    }
}
