//! The [`ControlStore`] impl of [`DynamoDbReleaseStore`] and the layout of its items.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::aws::codec::Item;
use crate::aws::DynamoDbReleaseStore;
use crate::control::{
    busy, sort_blocks, too_many_blocks, ttl_micros, Acquired, Block, ControlAction, ControlChange,
    ControlEvent, ControlStore, Freeze, Lease, LeaseRequest, MAX_ACTIVE_BLOCKS,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::Timestamp;
use crate::store::check_limit;

use super::*;

use super::changes::*;
use super::expressions::*;
use super::items::*;
use super::reads::*;

/// Deployment controls as items of the release table.
///
/// # Items
///
/// Every control item has a key (`release_id`) that starts with `#`, which
/// no release id has (this crate's ids are letters, digits, `_`, `.`, `-`;
/// the earlier tools made UUIDs), so no release read by id ever meets one,
/// and the project and environment ids in it never contain `#`, so keys of
/// different projects or environments never meet either. No control item
/// has `project_id`, `date_created` or `last_date_deployed`: both indexes
/// (`project_gsi`, `deployment_gsi`) are keyed on them, so no listing, of
/// this crate or of an earlier tool, sees a control item. Neither tool
/// scans.
///
/// | key | `record_type` | what else |
/// | --- | --- | --- |
/// | `#lease#{project}#{environment}` | `lease` | the [`Lease`]'s fields, and `expires_micros` (N, the expiry in microseconds since the epoch, which the takeover condition compares) |
/// | `#freeze#{project}#{environment}` | `freeze` | the [`Freeze`]'s fields, and `version` (a UUID the lifting is conditional on) |
/// | `#block#{project}#{release}` | `block` | the [`Block`]'s fields, and `version` |
/// | `#blocks#{project}` | `blocks` | `blocked_releases` (SS): the ids of the blocked releases, so that [`blocks`](ControlStore::blocks) needs no scan |
/// | `#events#{project}` and `#events#{project}#{environment}` | `event_count` | `event_count` (N): the events recorded so far |
/// | `#event#{project}#{n}` and `#event#{project}#{environment}#{m}` | `event` | the [`ControlEvent`]'s fields: event `n` of the project, and a copy as event `m` of its environment |
///
/// One item per event, not a list in one item: a list would grow toward
/// DynamoDB's 400 KB item limit as the trail grows, and every append would
/// rewrite it. Every item here is a few kilobytes at most (reasons, hosts
/// and requester ids are bounded, see [`crate::control`]); the largest,
/// `#blocks#{project}`, holds at most
/// [`MAX_ACTIVE_BLOCKS`](crate::control::MAX_ACTIVE_BLOCKS) ids of at most
/// 128 bytes: under 70 KB.
///
/// # Calls
///
/// | method | calls |
/// | --- | --- |
/// | `acquire_lease` | one `PutItem`, condition `attribute_not_exists(release_id) OR lease_id = :mine`, the holder returned on failure (`ReturnValuesOnConditionCheckFailure`); if that lease has expired, a second `PutItem` conditional on its id and expiry |
/// | `renew_lease`, `release_lease` | one `UpdateItem` / `DeleteItem`, condition `lease_id = :id` |
/// | `lease`, `environment_freeze`, `release_block` | one `GetItem` (consistent) |
/// | `force_unlock`, `freeze`, `unfreeze`, `block_release`, `unblock_release` | one `BatchGetItem` (the item and the event counters), then one `TransactWriteItems`: the change, the counters (conditional on the values read) and the event items, all or nothing. Read again and retried if another writer moved a counter meanwhile |
/// | `blocks` | one `GetItem`, then `BatchGetItem`s of 100 |
/// | `control_events` | one `GetItem` (the counter), then `BatchGetItem`s of 100 |
///
/// IAM: `dynamodb:GetItem`, `PutItem`, `UpdateItem`, `DeleteItem` and
/// `BatchGetItem` on the table (a transaction is authorised by the actions
/// it contains).
#[async_trait]
impl ControlStore for DynamoDbReleaseStore {
    async fn acquire_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        request: &LeaseRequest,
        now: Timestamp,
    ) -> Result<Acquired> {
        let operation =
            format!("taking the lease on environment {environment} of project {project}");
        let table = self.table_name(project);
        let lease = request.lease_at(project, environment, now);
        let item = lease_item(&lease);
        // The expired lease to take over, once one is seen.
        let mut expired: Option<Lease> = None;
        for attempt in 0..ATTEMPTS {
            let condition = acquire_condition(&lease, expired.as_ref(), now)?;
            let result = self
                .client()
                .put_item()
                .table_name(&table)
                .set_item(Some(item.clone()))
                .set_condition_expression(condition.condition.clone())
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let returned = match result {
                Ok(_) => {
                    return Ok(Acquired {
                        lease,
                        took_over: expired,
                    })
                }
                Err(e) => match refused_put(&e) {
                    Some(returned) => returned,
                    None if conflicted(&e) => {
                        self.pause(attempt).await;
                        continue;
                    }
                    None => return Err(self.control_failure(project, &table, &operation, e)),
                },
            };
            expired = match self
                .current_lease(project, environment, returned.as_ref(), &operation)
                .await?
            {
                // Released meanwhile, or ours already (a retry): try again.
                None => None,
                Some(held) if held.lease_id == lease.lease_id => None,
                Some(held) if held.is_expired(now) => Some(held),
                Some(held) => return Err(busy(held)),
            };
        }
        Err(Self::gave_up(&operation, &table))
    }

    async fn renew_lease(&self, lease: &Lease, now: Timestamp, ttl: Duration) -> Result<Lease> {
        let expires = now.add_micros(ttl_micros(ttl)?);
        let (project, environment) = (&lease.project, &lease.environment);
        let operation = format!(
            "renewing lease {} on environment {environment} of project {project}",
            lease.lease_id
        );
        let expressions = renew_expressions(lease, expires)?;
        let key = s(lease_key(project, environment));
        let send = || {
            self.client()
                .update_item()
                .table_name(self.table_name(project))
                .key(KEY, key.clone())
                .set_update_expression(expressions.update.clone())
                .set_condition_expression(expressions.condition.clone())
                .set_expression_attribute_names(expressions.names())
                .set_expression_attribute_values(expressions.values())
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
        };
        let output = self
            .holder_write(lease, &operation, send, refused_update)
            .await?;
        let item = output.attributes().cloned().unwrap_or_default();
        decode_item(&item, &self.lease_name(project, environment))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let (project, environment) = (&lease.project, &lease.environment);
        let operation = format!(
            "releasing lease {} on environment {environment} of project {project}",
            lease.lease_id
        );
        let condition = holder_condition(lease)?;
        let key = s(lease_key(project, environment));
        let send = || {
            self.client()
                .delete_item()
                .table_name(self.table_name(project))
                .key(KEY, key.clone())
                .set_condition_expression(condition.condition.clone())
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
        };
        self.holder_write(lease, &operation, send, refused_delete)
            .await?;
        Ok(())
    }

    async fn lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Lease>> {
        let operation =
            format!("reading the lease on environment {environment} of project {project}");
        self.current_lease(project, environment, None, &operation)
            .await
    }

    async fn force_unlock(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Lease>> {
        let operation = format!("force-unlocking environment {environment} of project {project}");
        let key = lease_key(project, environment);
        let keys = change_keys(project, Some(environment), [key.clone()]);
        let name = self.lease_name(project, environment);
        let plan = |read: &HashMap<String, Item>| {
            self.removal(
                project,
                read.get(&key),
                &key,
                &name,
                |_, lease: &Lease| holder_condition(lease),
                Vec::new(),
                |lease| ControlChange::ForceUnlock {
                    environment: environment.clone(),
                    lease,
                },
            )
        };
        // A refusal means another holder since the read: read again.
        self.change_with_event(project, action, &keys, &operation, plan, |_, _| None)
            .await
    }

    async fn freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Freeze> {
        let operation = format!("freezing environment {environment} of project {project}");
        let key = freeze_key(project, environment);
        let name = self.freeze_name(project, environment);
        let keys = change_keys(project, Some(environment), [key.clone()]);
        let frozen = |item: &Item| match decode_item(item, &name) {
            Ok(freeze) => Error::EnvironmentFrozen {
                freeze: Box::new(freeze),
            },
            Err(e) => e,
        };
        let freeze = Freeze::new(project, environment, action);
        let plan = |read: &HashMap<String, Item>| -> Result<Plan<Freeze>> {
            if let Some(item) = read.get(&key) {
                return Ok(Plan::Answer(Err(frozen(item))));
            }
            let item = versioned_item(key.clone(), "freeze", &freeze);
            let change = Change {
                writes: vec![self.put_write(project, item, &absent()?)?],
                event_change: ControlChange::Freeze {
                    environment: environment.clone(),
                },
            };
            Ok(Plan::Write(change, freeze.clone()))
        };
        self.change_with_event(project, action, &keys, &operation, plan, |_, item| {
            item.as_ref().map(frozen)
        })
        .await
    }

    async fn unfreeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        action: &ControlAction,
    ) -> Result<Option<Freeze>> {
        let operation = format!("unfreezing environment {environment} of project {project}");
        let key = freeze_key(project, environment);
        let keys = change_keys(project, Some(environment), [key.clone()]);
        let name = self.freeze_name(project, environment);
        let plan = |read: &HashMap<String, Item>| {
            self.removal(
                project,
                read.get(&key),
                &key,
                &name,
                |item, _: &Freeze| Self::same_version(item),
                Vec::new(),
                |lifted| ControlChange::Unfreeze {
                    environment: environment.clone(),
                    lifted,
                },
            )
        };
        self.change_with_event(project, action, &keys, &operation, plan, |_, _| None)
            .await
    }

    async fn environment_freeze(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<Option<Freeze>> {
        let operation =
            format!("reading the freeze of environment {environment} of project {project}");
        self.get_control(project, &freeze_key(project, environment), &operation)
            .await?
            .map(|item| decode_item(&item, &self.freeze_name(project, environment)))
            .transpose()
    }

    async fn block_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Block> {
        let operation = format!("blocking release {release} of project {project}");
        let key = block_key(project, release);
        let name = self.block_name(project, release);
        let keys = change_keys(project, None, [key.clone(), blocks_key(project)]);
        let blocked = |item: &Item| match decode_item(item, &name) {
            Ok(block) => Error::ReleaseBlocked {
                block: Box::new(block),
            },
            Err(e) => e,
        };
        let block = Block::new(project, release, action);
        let plan = |read: &HashMap<String, Item>| -> Result<Plan<Block>> {
            if let Some(item) = read.get(&key) {
                return Ok(Plan::Answer(Err(blocked(item))));
            }
            let listed = match read.get(&blocks_key(project)).and_then(|i| i.get(BLOCKED)) {
                Some(AttributeValue::Ss(ids)) => ids.len(),
                _ => 0,
            };
            if listed >= MAX_ACTIVE_BLOCKS {
                return Ok(Plan::Answer(Err(too_many_blocks(project, release))));
            }
            let item = versioned_item(key.clone(), "block", &block);
            let change = Change {
                writes: vec![
                    self.put_write(project, item, &absent()?)?,
                    self.update_write(project, &blocks_key(project), &add_blocked(release)?)?,
                ],
                event_change: ControlChange::Block {
                    release: release.clone(),
                },
            };
            Ok(Plan::Write(change, block.clone()))
        };
        self.change_with_event(project, action, &keys, &operation, plan, |i, item| {
            match (i, item) {
                (0, Some(item)) => Some(blocked(&item)),
                // The list of blocked releases is full.
                (1, _) => Some(too_many_blocks(project, release)),
                _ => None,
            }
        })
        .await
    }

    async fn unblock_release(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
        action: &ControlAction,
    ) -> Result<Option<Block>> {
        let operation = format!("unblocking release {release} of project {project}");
        let key = block_key(project, release);
        let keys = change_keys(project, None, [key.clone()]);
        let name = self.block_name(project, release);
        let plan = |read: &HashMap<String, Item>| {
            let unlist =
                self.update_write(project, &blocks_key(project), &remove_blocked(release)?)?;
            self.removal(
                project,
                read.get(&key),
                &key,
                &name,
                |item, _: &Block| Self::same_version(item),
                vec![unlist],
                |lifted| ControlChange::Unblock {
                    release: release.clone(),
                    lifted,
                },
            )
        };
        self.change_with_event(project, action, &keys, &operation, plan, |_, _| None)
            .await
    }

    async fn release_block(
        &self,
        project: &ProjectId,
        release: &ReleaseId,
    ) -> Result<Option<Block>> {
        let operation = format!("reading the block of release {release} of project {project}");
        self.get_control(project, &block_key(project, release), &operation)
            .await?
            .map(|item| decode_item(&item, &self.block_name(project, release)))
            .transpose()
    }

    async fn blocks(&self, project: &ProjectId) -> Result<Vec<Block>> {
        let operation = format!("listing the blocked releases of project {project}");
        let table = self.table_name(project);
        let ids = match self
            .get_control(project, &blocks_key(project), &operation)
            .await?
            .and_then(|mut item| item.remove(BLOCKED))
        {
            Some(AttributeValue::Ss(ids)) => ids,
            _ => Vec::new(),
        };
        let keys: Vec<String> = ids
            .iter()
            .map(|id| format!("#block#{project}#{id}"))
            .collect();
        let found = self.get_controls(project, &keys, &operation).await?;
        let mut blocks = Vec::with_capacity(found.len());
        for (key, item) in &found {
            let name = format!("block of project {project} (item {key} in table {table})");
            blocks.push(decode_item(item, &name)?);
        }
        sort_blocks(&mut blocks);
        Ok(blocks)
    }

    async fn control_events(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<Vec<ControlEvent>> {
        let limit = check_limit(limit)? as u64;
        let operation = format!("reading the control events of project {project}");
        let table = self.table_name(project);
        let counter = self
            .get_control(project, &counter_key(project, environment), &operation)
            .await?;
        let newest = count_of(counter.as_ref());
        let oldest = newest.saturating_sub(limit) + 1;
        let keys: Vec<String> = (oldest..=newest)
            .rev()
            .map(|i| event_key(project, environment, i))
            .collect();
        let mut found = self.get_controls(project, &keys, &operation).await?;
        let mut events = Vec::with_capacity(keys.len());
        for key in keys {
            // Every event is written with its counter, so none is missing.
            if let Some(item) = found.remove(&key) {
                let name =
                    format!("control event of project {project} (item {key} in table {table})");
                events.push(decode_item(&item, &name)?);
            }
        }
        Ok(events)
    }
}
