//! Control changes: each written with its audit event in one transaction, retried while contended.

use serde::de::DeserializeOwned;
use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use crate::aws::codec::{self, Item};
use crate::aws::error::backend_message;
use crate::aws::DynamoDbReleaseStore;
use crate::control::{ControlAction, ControlChange, ControlEvent};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::ProjectId;

use super::*;

use super::expressions::*;
use super::items::*;
use super::reads::*;

/// What a transaction came to.
pub(super) enum Outcome {
    Committed,
    /// The condition of write `index` (one of the change's own writes,
    /// which come first) failed; the item as it was, if DynamoDB sent it.
    ChangeRefused(usize, Option<Item>),
    /// Another writer got in between (an event counter moved, or a
    /// conflicting transaction): read again and retry.
    Contended,
}

/// What a change will do, decided from the items read.
pub(super) enum Plan<T> {
    /// Nothing to write: the answer.
    Answer(Result<T>),
    /// Write the change (with its event); once committed, the answer.
    Write(Change, T),
}

/// A change and the event that records it.
pub(super) struct Change {
    /// The writes of the change itself, each conditional.
    pub(super) writes: Vec<TransactWriteItem>,
    pub(super) event_change: ControlChange,
}

impl DynamoDbReleaseStore {
    /// Runs `writes` as one transaction.
    pub(super) async fn transact(
        &self,
        project: &ProjectId,
        writes: Vec<TransactWriteItem>,
        own: usize,
        operation: &str,
    ) -> Result<Outcome> {
        let table = self.table_name(project);
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Outcome::Committed),
            Err(e) => e,
        };
        let reasons = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons().to_vec()
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                return Ok(Outcome::Contended)
            }
            _ => return Err(self.control_failure(project, &table, operation, e)),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        for i in 0..own {
            if code(i) == "ConditionalCheckFailed" {
                let item = reasons.get(i).and_then(|r| r.item()).cloned();
                return Ok(Outcome::ChangeRefused(i, item));
            }
        }
        let codes: Vec<&str> = (0..reasons.len()).map(code).collect();
        if codes.iter().all(|c| {
            matches!(
                *c,
                "None" | "ConditionalCheckFailed" | "TransactionConflict"
            )
        }) && !codes.is_empty()
        {
            return Ok(Outcome::Contended);
        }
        let kind = if codes
            .iter()
            .any(|c| matches!(*c, "ThrottlingError" | "ProvisionedThroughputExceeded"))
        {
            BackendErrorKind::Throttled
        } else {
            BackendErrorKind::Other
        };
        Err(backend_message(
            format!("{operation} (DynamoDB TransactWriteItems on {table})"),
            kind,
            format!("the transaction was cancelled: {}", codes.join(", ")),
        ))
    }

    /// Writes `change` with its event (numbered after the counters in
    /// `read`) in one transaction.
    pub(super) async fn commit_change(
        &self,
        project: &ProjectId,
        action: &ControlAction,
        read: &HashMap<String, Item>,
        change: Change,
        operation: &str,
    ) -> Result<Outcome> {
        let environment = change.event_change.environment().cloned();
        let project_count = count_of(read.get(&counter_key(project, None)));
        let event = ControlEvent::new(project_count + 1, project, action, change.event_change);
        let own = change.writes.len();
        let mut writes = change.writes;
        let mut counters = vec![(None, project_count)];
        if let Some(environment) = environment {
            let count = count_of(read.get(&counter_key(project, Some(&environment))));
            counters.push((Some(environment), count));
        }
        for (environment, count) in counters {
            let environment = environment.as_ref();
            writes.push(self.update_write(
                project,
                &counter_key(project, environment),
                &counter_update(count)?,
            )?);
            let item = record_item(event_key(project, environment, count + 1), "event", &event);
            writes.push(self.put_write(project, item, &absent()?)?);
        }
        self.transact(project, writes, own, operation).await
    }

    /// A conditional put of `item`; on refusal DynamoDB returns the item
    /// in the way.
    pub(super) fn put_write(
        &self,
        project: &ProjectId,
        item: Item,
        expressions: &Expressions,
    ) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(self.table_name(project))
            .set_item(Some(item))
            .set_condition_expression(expressions.condition.clone())
            .set_expression_attribute_names(expressions.names())
            .set_expression_attribute_values(expressions.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| build_failed("building a transaction's put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn delete_write(
        &self,
        project: &ProjectId,
        key: &str,
        expressions: &Expressions,
    ) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(self.table_name(project))
            .key(KEY, s(key))
            .set_condition_expression(expressions.condition.clone())
            .set_expression_attribute_names(expressions.names())
            .set_expression_attribute_values(expressions.values())
            .build()
            .map_err(|e| build_failed("building a transaction's delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(super) fn update_write(
        &self,
        project: &ProjectId,
        key: &str,
        expressions: &Expressions,
    ) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(self.table_name(project))
            .key(KEY, s(key))
            .set_update_expression(expressions.update.clone())
            .set_condition_expression(expressions.condition.clone())
            .set_expression_attribute_names(expressions.names())
            .set_expression_attribute_values(expressions.values())
            .build()
            .map_err(|e| build_failed("building a transaction's update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Reads `keys` (the changed item and the event counters), asks `plan`
    /// what to write, and writes it with its event in one transaction;
    /// reads and tries again when another writer got in between. A refused
    /// write of the change itself is the error `refused` makes of it (by
    /// the write's position and the item in the way), or, if `None`, one
    /// more reason to read again.
    pub(super) async fn change_with_event<T: Send>(
        &self,
        project: &ProjectId,
        action: &ControlAction,
        keys: &[String],
        operation: &str,
        plan: impl Fn(&HashMap<String, Item>) -> Result<Plan<T>> + Send + Sync,
        refused: impl Fn(usize, Option<Item>) -> Option<Error> + Send + Sync,
    ) -> Result<T> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.pause(attempt).await;
            }
            let read = self.get_controls(project, keys, operation).await?;
            let (change, answer) = match plan(&read)? {
                Plan::Answer(answer) => return answer,
                Plan::Write(change, answer) => (change, answer),
            };
            match self
                .commit_change(project, action, &read, change, operation)
                .await?
            {
                Outcome::Committed => return Ok(answer),
                Outcome::ChangeRefused(index, item) => {
                    if let Some(error) = refused(index, item) {
                        return Err(error);
                    }
                }
                Outcome::Contended => {}
            }
        }
        Err(Self::gave_up(operation, &self.table_name(project)))
    }

    /// The condition that an item read with `item` is still the same
    /// version.
    /// The plan of a change that removes the control item `key` (`name` in
    /// messages), if there is one: deleted on `condition` of the item and
    /// its record, with `more` writes, and recorded as `event` of the record
    /// removed. No item: nothing to do, and the answer `None`.
    #[allow(clippy::too_many_arguments)] // one removal, described whole
    pub(super) fn removal<T: DeserializeOwned + Clone>(
        &self,
        project: &ProjectId,
        item: Option<&Item>,
        key: &str,
        name: &str,
        condition: impl FnOnce(&Item, &T) -> Result<Expressions>,
        more: Vec<TransactWriteItem>,
        event: impl FnOnce(T) -> ControlChange,
    ) -> Result<Plan<Option<T>>> {
        let Some(item) = item else {
            return Ok(Plan::Answer(Ok(None)));
        };
        let removed: T = decode_item(item, name)?;
        let mut writes = vec![self.delete_write(project, key, &condition(item, &removed)?)?];
        writes.extend(more);
        let change = Change {
            writes,
            event_change: event(removed.clone()),
        };
        Ok(Plan::Write(change, Some(removed)))
    }

    pub(super) fn same_version(item: &Item) -> Result<Expressions> {
        match codec::string_attr(item, VERSION) {
            Some(version) => Expressions::condition("#v = :v")
                .name("#v", VERSION)
                .value(":v", s(version)),
            None => Expressions::condition("attribute_exists(#k) AND attribute_not_exists(#v)")
                .name("#k", KEY)
                .name("#v", VERSION),
        }
        .checked()
    }
}
