//! Reading control items, naming them, and classifying failed writes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use crate::aws::codec::{self, Item};
use crate::aws::error::backend_message;
use crate::aws::DynamoDbReleaseStore;
use crate::control::{lost, Lease};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};

use super::*;

use super::items::*;

pub(super) fn build_failed(
    operation: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::backend(operation.to_owned(), e)
}

impl DynamoDbReleaseStore {
    /// An error of an item operation (a missing table is
    /// [`Error::StoreNotProvisioned`]).
    pub(super) fn control_failure<E, R>(
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
    pub(super) async fn pause(&self, attempt: u32) {
        let base = 10u64 << attempt.min(6);
        let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
        if let Some(sleep) = self.client().config().sleep_impl() {
            sleep.sleep(Duration::from_millis(base + jitter)).await;
        }
    }

    pub(super) fn gave_up(operation: &str, table: &str) -> Error {
        backend_message(
            format!("{operation} (DynamoDB, table {table})"),
            BackendErrorKind::Throttled,
            format!(
                "other writers kept changing the same items; gave up after {ATTEMPTS} attempts"
            ),
        )
    }

    /// One item, read consistently.
    pub(super) async fn get_control(
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
    pub(super) async fn get_controls(
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

    pub(super) fn freeze_name(&self, project: &ProjectId, environment: &EnvironmentId) -> String {
        format!(
            "freeze of environment {environment} of project {project} (item {} in table {})",
            freeze_key(project, environment),
            self.table_name(project)
        )
    }

    pub(super) fn block_name(&self, project: &ProjectId, release: &ReleaseId) -> String {
        format!(
            "block of release {release} of project {project} (item {} in table {})",
            block_key(project, release),
            self.table_name(project)
        )
    }

    pub(super) fn lease_name(&self, project: &ProjectId, environment: &EnvironmentId) -> String {
        format!(
            "lease of environment {environment} of project {project} (item {} in table {})",
            lease_key(project, environment),
            self.table_name(project)
        )
    }

    /// The lease stored for `lease`'s environment, from a failed
    /// condition's item if DynamoDB sent one, else read.
    pub(super) async fn current_lease(
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

/// Defines `$name`: the item a failed condition returned, if the error of
/// an `$error` write is a failed condition: `Some(item)` (the item may be
/// absent).
macro_rules! refused {
    ($name:ident, $error:ident) => {
        pub(super) fn $name(e: &SdkError<$error, HttpResponse>) -> Option<Option<Item>> {
            match e.as_service_error() {
                Some($error::ConditionalCheckFailedException(failed)) => {
                    Some(failed.item().cloned())
                }
                _ => None,
            }
        }
    };
}

refused!(refused_put, PutItemError);
refused!(refused_update, UpdateItemError);
refused!(refused_delete, DeleteItemError);

/// Whether a single-item write lost to a transaction on the same item
/// (DynamoDB: `TransactionConflictException`), which is worth retrying.
pub(super) fn conflicted<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(_))
        && matches!(
            e.code(),
            Some("TransactionConflictException" | "ReplicatedWriteConflictException")
        )
}

impl DynamoDbReleaseStore {
    /// Sends `send`'s conditional write on the item of the holder's own
    /// `lease` (a renewal or a release), again while it loses to a
    /// transaction on the same item. A failed condition is
    /// [`Error::LeaseLost`] naming the holder now.
    pub(super) async fn holder_write<O, E, Fut>(
        &self,
        lease: &Lease,
        operation: &str,
        send: impl Fn() -> Fut + Send + Sync,
        refused: fn(&SdkError<E, HttpResponse>) -> Option<Option<Item>>,
    ) -> Result<O>
    where
        Fut: Future<Output = std::result::Result<O, SdkError<E, HttpResponse>>> + Send,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        O: Send,
    {
        let (project, environment) = (&lease.project, &lease.environment);
        let table = self.table_name(project);
        for attempt in 0..ATTEMPTS {
            match send().await {
                Ok(output) => return Ok(output),
                Err(e) => match refused(&e) {
                    Some(returned) => {
                        let held = self
                            .current_lease(project, environment, returned.as_ref(), operation)
                            .await?;
                        return Err(lost(lease, held));
                    }
                    None if conflicted(&e) => self.pause(attempt).await,
                    None => return Err(self.control_failure(project, &table, operation, e)),
                },
            }
        }
        Err(Self::gave_up(operation, &table))
    }
}
