//! [`ControlStore`] for [`InMemoryReleaseStore`]: the reference semantics
//! of leases, freezes, blocks and their events. Every call runs under one
//! lock, so each is atomic.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;

use super::{lock, InMemoryReleaseStore};
use crate::control::{
    busy, lost, sort_blocks, too_many_blocks, ttl_micros, Acquired, Block, ControlAction,
    ControlChange, ControlEvent, ControlStore, Freeze, Lease, LeaseRequest, MAX_ACTIVE_BLOCKS,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::Timestamp;
use crate::store::check_limit;

type EnvironmentKey = (ProjectId, EnvironmentId);

/// Every project's controls.
#[derive(Debug, Default)]
pub(super) struct Controls {
    leases: HashMap<EnvironmentKey, Lease>,
    freezes: HashMap<EnvironmentKey, Freeze>,
    blocks: HashMap<ProjectId, BTreeMap<ReleaseId, Block>>,
    /// Each project's events, oldest first (index + 1 is the sequence).
    events: HashMap<ProjectId, Vec<ControlEvent>>,
}

impl Controls {
    fn record(&mut self, project: &ProjectId, action: &ControlAction, change: ControlChange) {
        let events = self.events.entry(project.clone()).or_default();
        let sequence = events.len() as u64 + 1;
        events.push(ControlEvent::new(sequence, project, action, change));
    }
}

fn key(project: &ProjectId, environment: &EnvironmentId) -> EnvironmentKey {
    (project.clone(), environment.clone())
}

#[async_trait]
impl ControlStore for InMemoryReleaseStore {
    async fn acquire_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        request: &LeaseRequest,
        now: Timestamp,
    ) -> Result<Acquired> {
        let lease = request.lease_at(project, environment, now);
        let mut controls = lock(&self.controls);
        let took_over = match controls.leases.get(&key(project, environment)) {
            None => None,
            Some(held) if held.lease_id == lease.lease_id => None,
            Some(held) if held.is_expired(now) => Some(held.clone()),
            Some(held) => return Err(busy(held.clone())),
        };
        controls
            .leases
            .insert(key(project, environment), lease.clone());
        Ok(Acquired { lease, took_over })
    }

    async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease> {
        let expires = now.add_micros(ttl_micros(ttl)?);
        let mut controls = lock(&self.controls);
        match controls
            .leases
            .get_mut(&key(&lease.project, &lease.environment))
        {
            Some(held) if held.lease_id == lease.lease_id => {
                held.expires = expires;
                Ok(held.clone())
            }
            held => Err(lost(lease, held.cloned())),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let mut controls = lock(&self.controls);
        let key = key(&lease.project, &lease.environment);
        match controls.leases.get(&key) {
            Some(held) if held.lease_id == lease.lease_id => {
                controls.leases.remove(&key);
                Ok(())
            }
            held => Err(lost(lease, held.cloned())),
        }
    }

    async fn lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Lease>> {
        Ok(lock(&self.controls)
            .leases
            .get(&key(project, environment))
            .cloned())
    }

    async fn force_unlock(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Lease>> {
        let mut controls = lock(&self.controls);
        let Some(lease) = controls.leases.remove(&key(project, environment)) else {
            return Ok(None);
        };
        let change = ControlChange::ForceUnlock {
            environment: environment.clone(),
            lease: lease.clone(),
        };
        controls.record(project, action, change);
        Ok(Some(lease))
    }

    async fn freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Freeze> {
        let mut controls = lock(&self.controls);
        if let Some(frozen) = controls.freezes.get(&key(project, environment)) {
            return Err(Error::EnvironmentFrozen {
                freeze: Box::new(frozen.clone()),
            });
        }
        let freeze = Freeze::new(project, environment, action);
        controls
            .freezes
            .insert(key(project, environment), freeze.clone());
        let change = ControlChange::Freeze {
            environment: environment.clone(),
        };
        controls.record(project, action, change);
        Ok(freeze)
    }

    async fn unfreeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Freeze>> {
        let mut controls = lock(&self.controls);
        let Some(lifted) = controls.freezes.remove(&key(project, environment)) else {
            return Ok(None);
        };
        let change = ControlChange::Unfreeze {
            environment: environment.clone(),
            lifted: lifted.clone(),
        };
        controls.record(project, action, change);
        Ok(Some(lifted))
    }

    async fn environment_freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Freeze>> {
        Ok(lock(&self.controls)
            .freezes
            .get(&key(project, environment))
            .cloned())
    }

    async fn block_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Block> {
        let mut controls = lock(&self.controls);
        let blocks = controls.blocks.entry(project.clone()).or_default();
        if let Some(blocked) = blocks.get(release) {
            return Err(Error::ReleaseBlocked {
                block: Box::new(blocked.clone()),
            });
        }
        if blocks.len() >= MAX_ACTIVE_BLOCKS {
            return Err(too_many_blocks(project, release));
        }
        let block = Block::new(project, release, action);
        blocks.insert(release.clone(), block.clone());
        let change = ControlChange::Block {
            release: release.clone(),
        };
        controls.record(project, action, change);
        Ok(block)
    }

    async fn unblock_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Option<Block>> {
        let mut controls = lock(&self.controls);
        let Some(lifted) = controls
            .blocks
            .get_mut(project)
            .and_then(|blocks| blocks.remove(release))
        else {
            return Ok(None);
        };
        let change = ControlChange::Unblock {
            release: release.clone(),
            lifted: lifted.clone(),
        };
        controls.record(project, action, change);
        Ok(Some(lifted))
    }

    async fn release_block(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
    ) -> Result<Option<Block>> {
        Ok(lock(&self.controls)
            .blocks
            .get(project)
            .and_then(|blocks| blocks.get(release))
            .cloned())
    }

    async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>> {
        let mut blocks: Vec<Block> = lock(&self.controls)
            .blocks
            .get(project)
            .map(|blocks| blocks.values().cloned().collect())
            .unwrap_or_default();
        sort_blocks(&mut blocks);
        Ok(blocks)
    }

    async fn control_events(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>> {
        let limit = check_limit(limit)?;
        Ok(lock(&self.controls)
            .events
            .get(project)
            .map(|events| {
                events
                    .iter()
                    .rev()
                    .filter(|e| environment.is_none_or(|env| e.environment() == Some(env)))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}
