//! [`ControlStore`] for [`DynamoDbReleaseStore`]: leases, freezes, blocks
//! and their events as items of the project's release table, invisible to
//! every reader of releases (the layout is documented on the impl).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::codec::{self, Item};
use super::error::backend_message;
use super::DynamoDbReleaseStore;
use crate::control::{
    busy, lost, sort_blocks, too_many_blocks, ttl_micros, Acquired, Block, ControlAction,
    ControlChange, ControlEvent, ControlStore, Freeze, Lease, LeaseRequest, MAX_ACTIVE_BLOCKS,
};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{decode_record, Timestamp};
use crate::store::check_limit;

/// The table's hash key.
const KEY: &str = "release_id";
/// What a control item is.
const RECORD_TYPE: &str = "record_type";
const LEASE_ID: &str = "lease_id";
const EXPIRES: &str = "expires";
const EXPIRES_MICROS: &str = "expires_micros";
const VERSION: &str = "version";
const EVENT_COUNT: &str = "event_count";
const BLOCKED: &str = "blocked_releases";
/// Attributes of an item that are not fields of its record.
const ITEM_ONLY: [&str; 4] = [KEY, RECORD_TYPE, EXPIRES_MICROS, VERSION];

/// How many times a change is read and tried again while other writers
/// keep moving the counters (or DynamoDB reports a conflicting
/// transaction) before it gives up. Every control change of a project moves
/// its event counter, so concurrent changes take turns: enough for a few
/// dozen at once, far more than people freeze and block.
const ATTEMPTS: u32 = 25;
/// The most keys one `BatchGetItem` takes.
const BATCH: usize = 100;

fn lease_key(project: &ProjectId, environment: &EnvironmentId) -> String {
    format!("#lease#{project}#{environment}")
}

fn freeze_key(project: &ProjectId, environment: &EnvironmentId) -> String {
    format!("#freeze#{project}#{environment}")
}

fn block_key(project: &ProjectId, release: &ReleaseId) -> String {
    format!("#block#{project}#{release}")
}

fn blocks_key(project: &ProjectId) -> String {
    format!("#blocks#{project}")
}

fn counter_key(project: &ProjectId, environment: Option<&EnvironmentId>) -> String {
    match environment {
        None => format!("#events#{project}"),
        Some(environment) => format!("#events#{project}#{environment}"),
    }
}

fn event_key(project: &ProjectId, environment: Option<&EnvironmentId>, n: u64) -> String {
    match environment {
        None => format!("#event#{project}#{n}"),
        Some(environment) => format!("#event#{project}#{environment}#{n}"),
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The placeholders (`#name`, `:value`) an expression uses.
fn placeholders(expression: &str) -> BTreeSet<&str> {
    let mut found = BTreeSet::new();
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' || bytes[i] == b':' {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if i > start + 1 {
                found.insert(&expression[start..i]);
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The expressions of one write and their placeholders. DynamoDB rejects a
/// request that gives a placeholder no expression uses, uses one it does
/// not give, or gives an empty map; [`Expressions::checked`] refuses the
/// same before sending (the emulator accepts some of these).
#[derive(Debug, Default, Clone)]
struct Expressions {
    condition: Option<String>,
    update: Option<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Expressions {
    fn condition(condition: &str) -> Expressions {
        Expressions {
            condition: Some(condition.to_owned()),
            ..Expressions::default()
        }
    }

    fn update(mut self, update: &str) -> Expressions {
        self.update = Some(update.to_owned());
        self
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Expressions {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Expressions {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn checked(self) -> Result<Expressions> {
        let used: BTreeSet<&str> = self
            .condition
            .iter()
            .chain(&self.update)
            .flat_map(|e| placeholders(e))
            .collect();
        let given: BTreeSet<&str> = self
            .names
            .keys()
            .chain(self.values.keys())
            .map(String::as_str)
            .collect();
        if used != given {
            return Err(Error::backend(
                "building a DynamoDB expression",
                format!(
                    "placeholders used {used:?} differ from those given {given:?} in {:?} / {:?}",
                    self.condition, self.update
                ),
            ));
        }
        Ok(self)
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// An item holding `record`'s fields under `key`.
fn record_item<T: Serialize>(key: String, record_type: &str, record: &T) -> Item {
    let value = serde_json::to_value(record).unwrap_or(Value::Null);
    let mut item = match codec::from_json(&value) {
        AttributeValue::M(fields) => fields,
        _ => HashMap::new(),
    };
    item.insert(KEY.to_owned(), s(key));
    item.insert(RECORD_TYPE.to_owned(), s(record_type));
    item
}

fn lease_item(lease: &Lease) -> Item {
    let mut item = record_item(
        lease_key(&lease.project, &lease.environment),
        "lease",
        lease,
    );
    item.insert(EXPIRES_MICROS.to_owned(), n(lease.expires.unix_micros()));
    item
}

/// An item with a fresh `version`, which its removal is conditional on.
fn versioned_item<T: Serialize>(key: String, record_type: &str, record: &T) -> Item {
    let mut item = record_item(key, record_type, record);
    item.insert(VERSION.to_owned(), s(uuid::Uuid::new_v4().to_string()));
    item
}

/// Decodes a control item; `what` names it in errors.
fn decode_item<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T> {
    let mut fields = Map::new();
    for (name, value) in item {
        if ITEM_ONLY.contains(&name.as_str()) {
            continue;
        }
        let value = codec::to_json(value, name).map_err(|e| Error::InvalidRecord {
            record: what.to_owned(),
            attribute: e.path,
            message: e.message,
        })?;
        fields.insert(name.clone(), value);
    }
    decode_record(Value::Object(fields), what)
}

fn count_of(item: Option<&Item>) -> u64 {
    match item.and_then(|item| item.get(EVENT_COUNT)) {
        Some(AttributeValue::N(count)) => count.parse().unwrap_or(0),
        _ => 0,
    }
}

fn build_failed(operation: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::backend(operation.to_owned(), e)
}

/// What a transaction came to.
enum Outcome {
    Committed,
    /// The condition of write `index` (one of the change's own writes,
    /// which come first) failed; the item as it was, if DynamoDB sent it.
    ChangeRefused(usize, Option<Item>),
    /// Another writer got in between (an event counter moved, or a
    /// conflicting transaction): read again and retry.
    Contended,
}

/// What a change will do, decided from the items read.
enum Plan<T> {
    /// Nothing to write: the answer.
    Answer(Result<T>),
    /// Write the change (with its event); once committed, the answer.
    Write(Change, T),
}

/// A change and the event that records it.
struct Change {
    /// The writes of the change itself, each conditional.
    writes: Vec<TransactWriteItem>,
    event_change: ControlChange,
}

impl DynamoDbReleaseStore {
    /// An error of an item operation (a missing table is
    /// [`Error::StoreNotProvisioned`]).
    fn control_failure<E, R>(
        &self,
        project: &ProjectId,
        table: &str,
        operation: &str,
        e: SdkError<E, R>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        self.fail(
            project,
            table,
            format!("{operation} (DynamoDB, table {table})"),
            e,
        )
    }

    /// Waits before attempt `attempt` + 1: 10 ms doubling to 640 ms, plus
    /// up to as much again at random, so retrying writers spread out.
    async fn pause(&self, attempt: u32) {
        let base = 10u64 << attempt.min(6);
        let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
        if let Some(sleep) = self.client().config().sleep_impl() {
            sleep.sleep(Duration::from_millis(base + jitter)).await;
        }
    }

    fn gave_up(operation: &str, table: &str) -> Error {
        backend_message(
            format!("{operation} (DynamoDB, table {table})"),
            BackendErrorKind::Throttled,
            format!(
                "other writers kept changing the same items; gave up after {ATTEMPTS} attempts"
            ),
        )
    }

    /// One item, read consistently.
    async fn get_control(
        &self,
        project: &ProjectId,
        key: &str,
        operation: &str,
    ) -> Result<Option<Item>> {
        let table = self.table_name(project);
        let output = self
            .client()
            .get_item()
            .table_name(&table)
            .key(KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.control_failure(project, &table, operation, e))?;
        Ok(output.item().cloned())
    }

    /// The items of `keys` that exist, by key, read consistently in
    /// batches of [`BATCH`].
    async fn get_controls(
        &self,
        project: &ProjectId,
        keys: &[String],
        operation: &str,
    ) -> Result<HashMap<String, Item>> {
        let table = self.table_name(project);
        let mut found = HashMap::new();
        let unique: Vec<&String> = keys.iter().collect::<BTreeSet<_>>().into_iter().collect();
        for chunk in unique.chunks(BATCH) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|key| HashMap::from([(KEY.to_owned(), s(key.as_str()))]))
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == ATTEMPTS {
                    return Err(Self::gave_up(operation, &table));
                }
                if attempt > 0 {
                    self.pause(attempt).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| build_failed(operation, e))?;
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(&table, request)
                    .send()
                    .await
                    .map_err(|e| self.control_failure(project, &table, operation, e))?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(key) = codec::string_attr(item, KEY) {
                        found.insert(key.to_owned(), item.clone());
                    }
                }
                // Keys DynamoDB did not get to (throughput, response size).
                if let Some(rest) = output.unprocessed_keys().and_then(|u| u.get(&table)) {
                    pending = rest.keys().to_vec();
                }
            }
        }
        Ok(found)
    }

    /// Runs `writes` as one transaction.
    async fn transact(
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
    async fn commit_change(
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
    fn put_write(
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

    fn delete_write(
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

    fn update_write(
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
    async fn change_with_event<T: Send>(
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

    fn freeze_name(&self, project: &ProjectId, environment: &EnvironmentId) -> String {
        format!(
            "freeze of environment {environment} of project {project} (item {} in table {})",
            freeze_key(project, environment),
            self.table_name(project)
        )
    }

    fn block_name(&self, project: &ProjectId, release: &ReleaseId) -> String {
        format!(
            "block of release {release} of project {project} (item {} in table {})",
            block_key(project, release),
            self.table_name(project)
        )
    }

    /// The condition that an item read with `item` is still the same
    /// version.
    fn same_version(item: &Item) -> Result<Expressions> {
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

    fn lease_name(&self, project: &ProjectId, environment: &EnvironmentId) -> String {
        format!(
            "lease of environment {environment} of project {project} (item {} in table {})",
            lease_key(project, environment),
            self.table_name(project)
        )
    }

    /// The lease stored for `lease`'s environment, from a failed
    /// condition's item if DynamoDB sent one, else read.
    async fn current_lease(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        returned: Option<&Item>,
        operation: &str,
    ) -> Result<Option<Lease>> {
        let item = match returned {
            Some(item) => Some(item.clone()),
            None => {
                self.get_control(project, &lease_key(project, environment), operation)
                    .await?
            }
        };
        item.map(|item| decode_item(&item, &self.lease_name(project, environment)))
            .transpose()
    }
}

/// The item a failed condition returned, if the error is a failed
/// condition: `Some(item)` (the item may be absent).
fn refused_put(
    e: &SdkError<PutItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Option<Item>> {
    match e.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(failed)) => Some(failed.item().cloned()),
        _ => None,
    }
}

fn refused_update(
    e: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Option<Item>> {
    match e.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
            Some(failed.item().cloned())
        }
        _ => None,
    }
}

fn refused_delete(
    e: &SdkError<DeleteItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Option<Item>> {
    match e.as_service_error() {
        Some(DeleteItemError::ConditionalCheckFailedException(failed)) => {
            Some(failed.item().cloned())
        }
        _ => None,
    }
}

/// Whether a single-item write lost to a transaction on the same item
/// (DynamoDB: `TransactionConflictException`), which is worth retrying.
fn conflicted<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && matches!(
            e.code(),
            Some("TransactionConflictException" | "ReplicatedWriteConflictException")
        )
}

/// The condition of an acquire: free or ours; or, once `expired` has
/// expired at `now`, still that lease.
fn acquire_condition(mine: &Lease, expired: Option<&Lease>, now: Timestamp) -> Result<Expressions> {
    match expired {
        None => Expressions::condition("attribute_not_exists(#k) OR #id = :mine")
            .name("#k", KEY)
            .name("#id", LEASE_ID)
            .value(":mine", s(mine.lease_id.as_str())),
        Some(old) => Expressions::condition("#id = :old AND #x <= :now")
            .name("#id", LEASE_ID)
            .name("#x", EXPIRES_MICROS)
            .value(":old", s(old.lease_id.as_str()))
            .value(":now", n(now.unix_micros())),
    }
    .checked()
}

/// Moves an event counter from `count` (as read; 0 if it did not exist)
/// to the next, only if nobody moved it since.
fn counter_update(count: u64) -> Result<Expressions> {
    if count == 0 {
        Expressions::condition("attribute_not_exists(#k)").name("#k", KEY)
    } else {
        Expressions::condition("#c = :seen").value(":seen", n(count))
    }
    .update("SET #c = :next, #t = :type")
    .name("#c", EVENT_COUNT)
    .name("#t", RECORD_TYPE)
    .value(":next", n(count + 1))
    .value(":type", s("event_count"))
    .checked()
}

fn holder_condition(lease: &Lease) -> Result<Expressions> {
    Expressions::condition("#id = :id")
        .name("#id", LEASE_ID)
        .value(":id", s(lease.lease_id.as_str()))
        .checked()
}

fn renew_expressions(lease: &Lease, expires: Timestamp) -> Result<Expressions> {
    holder_condition(lease)?
        .update("SET #e = :e, #x = :x")
        .name("#e", EXPIRES)
        .name("#x", EXPIRES_MICROS)
        .value(":e", s(expires.to_string()))
        .value(":x", n(expires.unix_micros()))
        .checked()
}

fn absent() -> Result<Expressions> {
    Expressions::condition("attribute_not_exists(#k)")
        .name("#k", KEY)
        .checked()
}

fn add_blocked(release: &ReleaseId) -> Result<Expressions> {
    Expressions::condition("attribute_not_exists(#r) OR size(#r) < :max")
        .update("SET #t = :type ADD #r :one")
        .name("#r", BLOCKED)
        .name("#t", RECORD_TYPE)
        .value(":max", n(MAX_ACTIVE_BLOCKS))
        .value(":type", s("blocks"))
        .value(
            ":one",
            AttributeValue::Ss(vec![release.as_str().to_owned()]),
        )
        .checked()
}

fn remove_blocked(release: &ReleaseId) -> Result<Expressions> {
    let mut expressions = Expressions::default()
        .update("DELETE #r :one")
        .name("#r", BLOCKED)
        .value(
            ":one",
            AttributeValue::Ss(vec![release.as_str().to_owned()]),
        );
    expressions.condition = None;
    expressions.checked()
}

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
        let table = self.table_name(project);
        let expressions = renew_expressions(lease, expires)?;
        for attempt in 0..ATTEMPTS {
            let result = self
                .client()
                .update_item()
                .table_name(&table)
                .key(KEY, s(lease_key(project, environment)))
                .set_update_expression(expressions.update.clone())
                .set_condition_expression(expressions.condition.clone())
                .set_expression_attribute_names(expressions.names())
                .set_expression_attribute_values(expressions.values())
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(output) => {
                    let item = output.attributes().cloned().unwrap_or_default();
                    return decode_item(&item, &self.lease_name(project, environment));
                }
                Err(e) => match refused_update(&e) {
                    Some(returned) => {
                        let held = self
                            .current_lease(project, environment, returned.as_ref(), &operation)
                            .await?;
                        return Err(lost(lease, held));
                    }
                    None if conflicted(&e) => self.pause(attempt).await,
                    None => return Err(self.control_failure(project, &table, &operation, e)),
                },
            }
        }
        Err(Self::gave_up(&operation, &table))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let (project, environment) = (&lease.project, &lease.environment);
        let operation = format!(
            "releasing lease {} on environment {environment} of project {project}",
            lease.lease_id
        );
        let table = self.table_name(project);
        let condition = holder_condition(lease)?;
        for attempt in 0..ATTEMPTS {
            let result = self
                .client()
                .delete_item()
                .table_name(&table)
                .key(KEY, s(lease_key(project, environment)))
                .set_condition_expression(condition.condition.clone())
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => match refused_delete(&e) {
                    Some(returned) => {
                        let held = self
                            .current_lease(project, environment, returned.as_ref(), &operation)
                            .await?;
                        return Err(lost(lease, held));
                    }
                    None if conflicted(&e) => self.pause(attempt).await,
                    None => return Err(self.control_failure(project, &table, &operation, e)),
                },
            }
        }
        Err(Self::gave_up(&operation, &table))
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
        let keys = [
            key.clone(),
            counter_key(project, None),
            counter_key(project, Some(environment)),
        ];
        let plan = |read: &HashMap<String, Item>| -> Result<Plan<Option<Lease>>> {
            let Some(item) = read.get(&key) else {
                return Ok(Plan::Answer(Ok(None)));
            };
            let lease: Lease = decode_item(item, &self.lease_name(project, environment))?;
            let change = Change {
                writes: vec![self.delete_write(project, &key, &holder_condition(&lease)?)?],
                event_change: ControlChange::ForceUnlock {
                    environment: environment.clone(),
                    lease: lease.clone(),
                },
            };
            Ok(Plan::Write(change, Some(lease)))
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
        let keys = [
            key.clone(),
            counter_key(project, None),
            counter_key(project, Some(environment)),
        ];
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
        let keys = [
            key.clone(),
            counter_key(project, None),
            counter_key(project, Some(environment)),
        ];
        let plan = |read: &HashMap<String, Item>| -> Result<Plan<Option<Freeze>>> {
            let Some(item) = read.get(&key) else {
                return Ok(Plan::Answer(Ok(None)));
            };
            let lifted: Freeze = decode_item(item, &self.freeze_name(project, environment))?;
            let change = Change {
                writes: vec![self.delete_write(project, &key, &Self::same_version(item)?)?],
                event_change: ControlChange::Unfreeze {
                    environment: environment.clone(),
                    lifted: lifted.clone(),
                },
            };
            Ok(Plan::Write(change, Some(lifted)))
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
        let keys = [key.clone(), blocks_key(project), counter_key(project, None)];
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
        let keys = [key.clone(), counter_key(project, None)];
        let plan = |read: &HashMap<String, Item>| -> Result<Plan<Option<Block>>> {
            let Some(item) = read.get(&key) else {
                return Ok(Plan::Answer(Ok(None)));
            };
            let lifted: Block = decode_item(item, &self.block_name(project, release))?;
            let change = Change {
                writes: vec![
                    self.delete_write(project, &key, &Self::same_version(item)?)?,
                    self.update_write(project, &blocks_key(project), &remove_blocked(release)?)?,
                ],
                event_change: ControlChange::Unblock {
                    release: release.clone(),
                    lifted: lifted.clone(),
                },
            };
            Ok(Plan::Write(change, Some(lifted)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{LeaseId, LeaseOperation, Reason, MAX_REASON_CHARS, MAX_REQUESTER_CHARS};
    use crate::release::Requester;

    fn project() -> ProjectId {
        ProjectId::new("storage").unwrap()
    }

    fn lease() -> Lease {
        LeaseRequest::new(
            Requester::new("alice"),
            LeaseOperation::Deploy,
            ReleaseId::new("r-1").unwrap(),
            "host",
            Duration::from_secs(60),
        )
        .unwrap()
        .with_lease_id(LeaseId::new("l-1").unwrap())
        .lease_at(
            &project(),
            &EnvironmentId::new("prod").unwrap(),
            "2024-01-01T00:00:00".parse().unwrap(),
        )
    }

    #[test]
    fn every_expression_gives_exactly_the_placeholders_it_uses() {
        let lease = lease();
        let now = lease.expires;
        let release = ReleaseId::new("r-1").unwrap();
        let built = [
            acquire_condition(&lease, None, now),
            acquire_condition(&lease, Some(&lease), now),
            holder_condition(&lease),
            renew_expressions(&lease, now),
            absent(),
            counter_update(0),
            counter_update(7),
            add_blocked(&release),
            remove_blocked(&release),
            DynamoDbReleaseStore::same_version(&HashMap::from([(VERSION.to_owned(), s("v"))])),
            DynamoDbReleaseStore::same_version(&HashMap::new()),
        ];
        for expressions in built {
            let expressions = expressions.expect("consistent");
            assert!(expressions.condition.is_some() || expressions.update.is_some());
        }
        let unused = Expressions::condition("#a = :a")
            .name("#a", "a")
            .value(":a", s("x"))
            .value(":b", s("y"));
        assert!(unused.checked().is_err());
        let undeclared = Expressions::condition("#a = :a").name("#a", "a");
        assert!(undeclared.checked().is_err());
        assert_eq!(
            placeholders("attribute_not_exists(#k) OR (#id = :mine AND size(#r) < :max)"),
            BTreeSet::from(["#k", "#id", ":mine", "#r", ":max"])
        );
        // No empty map is ever sent.
        assert_eq!(absent().unwrap().values(), None);
    }

    #[test]
    fn control_keys_cannot_be_release_ids_and_items_hide_from_the_indexes() {
        let lease = lease();
        let environment = lease.environment.clone();
        let keys = [
            lease_key(&project(), &environment),
            freeze_key(&project(), &environment),
            block_key(&project(), &lease.release),
            blocks_key(&project()),
            counter_key(&project(), None),
            counter_key(&project(), Some(&environment)),
            event_key(&project(), None, 1),
            event_key(&project(), Some(&environment), 1),
        ];
        for key in &keys {
            assert!(ReleaseId::new(key.as_str()).is_err(), "{key}");
            assert!(key.starts_with('#'), "{key}");
        }
        assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len());
        let item = lease_item(&lease);
        for attribute in ["project_id", "date_created", "last_date_deployed"] {
            assert!(!item.contains_key(attribute), "{attribute}");
        }
        assert_eq!(item.get(KEY), Some(&s("#lease#storage#prod")));
        let back: Lease = decode_item(&item, "lease").unwrap();
        assert_eq!(back, lease);
    }

    /// The largest event: a forced unlock by a requester with the longest
    /// id, of a lease held by another, both reasons as long as allowed.
    #[test]
    fn the_largest_control_item_is_far_below_the_item_limit() {
        let long = |c: char, len: usize| std::iter::repeat_n(c, len).collect::<String>();
        // Four bytes a character: the most a reason can take.
        let reason = Reason::new(long('😀', MAX_REASON_CHARS)).unwrap();
        let requester = Requester::new(long('a', MAX_REQUESTER_CHARS));
        let mut lease = lease();
        lease.holder = requester.clone();
        lease.host = long('h', crate::control::MAX_HOST_CHARS);
        let action = ControlAction::new(requester, reason, lease.expires).unwrap();
        let event = ControlEvent::new(
            u64::MAX,
            &project(),
            &action,
            ControlChange::ForceUnlock {
                environment: lease.environment.clone(),
                lease,
            },
        );
        let item = record_item("#event#x#1".to_owned(), "event", &event);
        let size = serde_json::to_string(&codec::to_json(&AttributeValue::M(item), "").unwrap())
            .unwrap()
            .len();
        assert!(size < 16 * 1024, "{size} bytes");
    }
}
