//! Each control operation as one transaction on a connection.

use rusqlite::Connection;

use crate::control::{
    busy, lost, too_many_blocks, Acquired, Block, ControlAction, ControlChange, ControlEvent,
    Freeze, Lease, LeaseRequest, MAX_ACTIVE_BLOCKS,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::Timestamp;

use super::rows::*;

pub(super) fn acquire(
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

pub(super) fn renew(
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

pub(super) fn release(connection: &mut Connection, doing: &Doing<'_>, lease: &Lease) -> Result<()> {
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

pub(super) fn force_unlock(
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

pub(super) fn freeze(
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

pub(super) fn unfreeze(
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

pub(super) fn block(
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

pub(super) fn unblock(
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

pub(super) fn events(
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
