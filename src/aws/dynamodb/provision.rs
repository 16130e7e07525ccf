//! Provisioning: creating a release table, and checking that an existing
//! one has the release table's keys and indexes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableDescription, TableStatus,
};

use super::{DynamoDbReleaseStore, DEPLOYMENT_GSI, PROJECT_GSI, RELEASE_ID};
use crate::aws::error::{backend, backend_message};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::ProjectId;

/// What [`DynamoDbReleaseStore::ensure_table`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableState {
    /// The table did not exist; it was created and is now ACTIVE.
    Created,
    /// A compatible table already existed (it is ACTIVE now).
    AlreadyExisted,
}

fn build_failed(operation: &str, e: BuildError) -> Error {
    Error::backend(operation.to_owned(), e)
}

fn key(name: &str, key_type: KeyType, operation: &str) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| build_failed(operation, e))
}

fn string_attribute(name: &str, operation: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| build_failed(operation, e))
}

fn index(name: &str, range: &str, operation: &str) -> Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key("project_id", KeyType::Hash, operation)?)
        .key_schema(key(range, KeyType::Range, operation)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| build_failed(operation, e))
}

/// Every way `table` differs from a release table.
fn compatibility_problems(table: &TableDescription) -> Vec<String> {
    let types: HashMap<&str, &ScalarAttributeType> = table
        .attribute_definitions()
        .iter()
        .map(|d| (d.attribute_name(), d.attribute_type()))
        .collect();
    let describe_keys = |keys: &[KeySchemaElement]| {
        keys.iter()
            .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let check_keys = |what: &str,
                      keys: &[KeySchemaElement],
                      hash: &str,
                      range: Option<&str>,
                      problems: &mut Vec<String>| {
        let found_hash = keys.iter().find(|k| k.key_type() == &KeyType::Hash);
        let found_range = keys.iter().find(|k| k.key_type() == &KeyType::Range);
        let hash_ok = found_hash.is_some_and(|k| k.attribute_name() == hash);
        let range_ok = match (range, found_range) {
            (None, None) => true,
            (Some(r), Some(k)) => k.attribute_name() == r,
            _ => false,
        };
        if !hash_ok || !range_ok {
            let wanted = match range {
                Some(r) => format!("{hash} HASH, {r} RANGE"),
                None => format!("{hash} HASH and no range key"),
            };
            problems.push(format!(
                "{what} has keys [{}], expected {wanted}",
                describe_keys(keys)
            ));
            return;
        }
        for name in std::iter::once(hash).chain(range) {
            match types.get(name) {
                Some(ScalarAttributeType::S) => {}
                Some(other) => problems.push(format!(
                    "key attribute `{name}` of {what} has type {}, expected S",
                    other.as_str()
                )),
                None => problems.push(format!("key attribute `{name}` of {what} has no type")),
            }
        }
    };
    let mut problems = Vec::new();
    check_keys(
        "the table",
        table.key_schema(),
        RELEASE_ID,
        None,
        &mut problems,
    );
    for (name, range) in [
        (PROJECT_GSI, "date_created"),
        (DEPLOYMENT_GSI, "last_date_deployed"),
    ] {
        let found = table
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(name));
        let Some(found) = found else {
            problems.push(format!("it has no global secondary index `{name}`"));
            continue;
        };
        check_keys(
            &format!("index `{name}`"),
            found.key_schema(),
            "project_id",
            Some(range),
            &mut problems,
        );
        let projection = found.projection().and_then(|p| p.projection_type());
        if projection != Some(&ProjectionType::All) {
            problems.push(format!(
                "index `{name}` projects {}, expected ALL",
                projection.map_or("nothing", |p| p.as_str())
            ));
        }
    }
    problems
}

/// Whether the table and every index of it are ACTIVE; `Err` if the table
/// is in a state it will not leave by itself.
fn is_active(table: &TableDescription) -> std::result::Result<bool, String> {
    match table.table_status() {
        Some(TableStatus::Active) => Ok(table
            .global_secondary_indexes()
            .iter()
            .all(|i| matches!(i.index_status(), Some(IndexStatus::Active) | None))),
        Some(TableStatus::Creating) | Some(TableStatus::Updating) | None => Ok(false),
        Some(other) => Err(format!("the table is {}", other.as_str())),
    }
}

impl DynamoDbReleaseStore {
    /// missing, and waiting until it and its indexes are ACTIVE (at most
    /// [`with_provision_timeout`](DynamoDbReleaseStore::with_provision_timeout)).
    ///
    /// Idempotent, and safe to run from several processes at once. An
    /// existing table whose keys or indexes differ fails with
    /// [`Error::IncompatibleStore`] listing every difference, and is not
    /// changed. Needs `dynamodb:DescribeTable`, and `dynamodb:CreateTable`
    /// when the table is missing.
    pub async fn ensure_table(&self, project: &ProjectId) -> Result<TableState> {
        let table = self.table_name(project);
        let state = match self.describe(project, &table).await? {
            Some(description) => {
                self.check_compatible(&table, &description)?;
                TableState::AlreadyExisted
            }
            None => self.create_table(project, &table).await?,
        };
        let description = self.wait_until_active(project, &table).await?;
        self.check_compatible(&table, &description)?;
        Ok(state)
    }

    fn check_compatible(&self, table: &str, description: &TableDescription) -> Result<()> {
        let problems = compatibility_problems(description);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::IncompatibleStore {
                location: format!("DynamoDB table `{table}`"),
                problem: problems.join("; "),
                source: None,
            })
        }
    }

    async fn describe(&self, project: &ProjectId, table: &str) -> Result<Option<TableDescription>> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(output) => Ok(output.table().cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend(
                format!(
                    "describing the release table {table} of project {project} (DynamoDB DescribeTable)"
                ),
                e,
            )),
        }
    }

    async fn create_table(&self, project: &ProjectId, table: &str) -> Result<TableState> {
        let operation = format!(
            "creating the release table {table} of project {project} (DynamoDB CreateTable)"
        );
        let result = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(RELEASE_ID, KeyType::Hash, &operation)?)
            .attribute_definitions(string_attribute(RELEASE_ID, &operation)?)
            .attribute_definitions(string_attribute("project_id", &operation)?)
            .attribute_definitions(string_attribute("date_created", &operation)?)
            .attribute_definitions(string_attribute("last_date_deployed", &operation)?)
            .global_secondary_indexes(index(PROJECT_GSI, "date_created", &operation)?)
            .global_secondary_indexes(index(DEPLOYMENT_GSI, "last_date_deployed", &operation)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(TableState::Created),
            // Someone else created it meanwhile: check it like any existing table.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(TableState::AlreadyExisted)
            }
            Err(e) => Err(backend(operation, e)),
        }
    }

    async fn wait_until_active(
        &self,
        project: &ProjectId,
        table: &str,
    ) -> Result<TableDescription> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            if let Some(description) = self.describe(project, table).await? {
                match is_active(&description) {
                    Ok(true) => return Ok(description),
                    Ok(false) => {}
                    Err(problem) => {
                        return Err(backend_message(
                            format!("waiting for the release table {table} of project {project}"),
                            BackendErrorKind::Other,
                            problem,
                        ))
                    }
                }
            }
            // A table just created may be invisible for a moment: keep polling.
            if started.elapsed() + delay > self.provision_timeout {
                return Err(backend_message(
                    format!("waiting for the release table {table} of project {project} (DynamoDB DescribeTable)"),
                    BackendErrorKind::Timeout,
                    format!(
                        "the table and its indexes were not ACTIVE after {} s",
                        self.provision_timeout.as_secs()
                    ),
                ));
            }
            // The SDK's own timer, so this works on whatever runtime the
            // client was configured for.
            let Some(sleep) = self.client.config().sleep_impl() else {
                return Err(backend_message(
                    format!("waiting for the release table {table} of project {project}"),
                    BackendErrorKind::Other,
                    "the DynamoDB client has no async sleep implementation to wait with",
                ));
            };
            sleep.sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription;

    fn release_table(status: TableStatus, index_status: IndexStatus) -> TableDescription {
        let op = "test";
        let gsi = |name: &str, range: &str| {
            GlobalSecondaryIndexDescription::builder()
                .index_name(name)
                .key_schema(key("project_id", KeyType::Hash, op).unwrap())
                .key_schema(key(range, KeyType::Range, op).unwrap())
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .index_status(index_status.clone())
                .build()
        };
        TableDescription::builder()
            .table_status(status)
            .key_schema(key(RELEASE_ID, KeyType::Hash, op).unwrap())
            .attribute_definitions(string_attribute(RELEASE_ID, op).unwrap())
            .attribute_definitions(string_attribute("project_id", op).unwrap())
            .attribute_definitions(string_attribute("date_created", op).unwrap())
            .attribute_definitions(string_attribute("last_date_deployed", op).unwrap())
            .global_secondary_indexes(gsi(PROJECT_GSI, "date_created"))
            .global_secondary_indexes(gsi(DEPLOYMENT_GSI, "last_date_deployed"))
            .build()
    }

    #[test]
    fn a_table_is_ready_when_it_and_its_indexes_are_active() {
        let ready = release_table(TableStatus::Active, IndexStatus::Active);
        assert_eq!(is_active(&ready), Ok(true));
        assert!(compatibility_problems(&ready).is_empty());
        let creating = release_table(TableStatus::Creating, IndexStatus::Creating);
        assert_eq!(is_active(&creating), Ok(false));
        let backfilling = release_table(TableStatus::Active, IndexStatus::Creating);
        assert_eq!(is_active(&backfilling), Ok(false));
        let deleting = release_table(TableStatus::Deleting, IndexStatus::Active);
        assert!(is_active(&deleting).is_err());
    }

    #[test]
    fn every_difference_is_listed() {
        let table = TableDescription::builder()
            .table_status(TableStatus::Active)
            .key_schema(key(RELEASE_ID, KeyType::Hash, "t").unwrap())
            .key_schema(key("date_created", KeyType::Range, "t").unwrap())
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(RELEASE_ID)
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .build();
        let problems = compatibility_problems(&table).join("; ");
        assert!(
            problems.contains("the table has keys [release_id HASH, date_created RANGE], expected release_id HASH and no range key"),
            "{problems}"
        );
        assert!(
            problems.contains("no global secondary index `project_gsi`"),
            "{problems}"
        );
        assert!(
            problems.contains("no global secondary index `deployment_gsi`"),
            "{problems}"
        );
    }
}
