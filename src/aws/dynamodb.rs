//! [`DynamoDbReleaseStore`]: releases as items of one DynamoDB table per
//! project.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    TableDescription, TableStatus,
};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::codec::{self, Item};
use super::error::{backend, backend_message};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{Deployment, Release, Timestamp};
use crate::store::{
    check_limit, collect_deployments, keep_newest_deployments, oldest_of_full_list, on_page,
    Cursor, LatestRelease, Page, PageRequest, RecentDeployments, ReleaseStore, SkippedRecord,
    MAX_PAGE_SIZE,
};

/// The hash key of the table.
const RELEASE_ID: &str = "release_id";
/// The index of a project's releases by creation date.
const PROJECT_GSI: &str = "project_gsi";
/// The sparse index of a project's deployed releases by last deployment.
const DEPLOYMENT_GSI: &str = "deployment_gsi";

/// Pages after the first read this many items, so that a long run of
/// releases that tie on the sort key (or do not match an environment) is
/// read in few calls.
const LATER_PAGE_LIMIT: usize = 100;

/// `wellcome-releases-{project}`: the table name the old tools used.
pub fn default_table_name(project: &ProjectId) -> String {
    format!("wellcome-releases-{project}")
}

/// What [`DynamoDbReleaseStore::ensure_table`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableState {
    /// The table did not exist; it was created and is now ACTIVE.
    Created,
    /// A compatible table already existed (it is ACTIVE now).
    AlreadyExisted,
}

type TableNamer = Arc<dyn Fn(&ProjectId) -> String + Send + Sync>;

/// Releases in DynamoDB, in the schema the old tools created, so this crate
/// and weco-deploy can share a table:
///
/// - table `wellcome-releases-{project}` (see
///   [`with_table_name`](DynamoDbReleaseStore::with_table_name)), hash key
///   `release_id` (S), no range key, on-demand billing;
/// - index `project_gsi`: hash `project_id` (S), range `date_created` (S),
///   projection ALL;
/// - index `deployment_gsi`: hash `project_id` (S), range
///   `last_date_deployed` (S), projection ALL; sparse (a release is in it once
///   deployed).
///
/// Items are read in every legacy shape and written in the current one (see
/// [`Release`]). A malformed item is an [`Error::InvalidRecord`] naming the
/// release and the attribute path.
///
/// # Calls
///
/// | method | calls |
/// | --- | --- |
/// | [`ensure_table`](DynamoDbReleaseStore::ensure_table) | `DescribeTable`, then `CreateTable` and `DescribeTable` until ACTIVE if missing |
/// | [`create_release`](ReleaseStore::create_release) | one `PutItem`, condition `attribute_not_exists(release_id)` |
/// | [`release`](ReleaseStore::release) | one `GetItem`, consistent read |
/// | [`latest_release`](ReleaseStore::latest_release) | `Query` on `project_gsi`, newest first, `Limit = 2`: one call unless the newest releases tie on `date_created` |
/// | [`list_releases`](ReleaseStore::list_releases) | `Query` on `project_gsi`, `Limit = limit + 1` (`+ 2` after a cursor, whose own release is read again): one call unless a tie straddles the page's end |
/// | [`add_deployment`](ReleaseStore::add_deployment) | one `UpdateItem`; a second only when the deployment is older than the release's `last_date_deployed` |
/// | [`recent_deployments`](ReleaseStore::recent_deployments) | `Query` on `deployment_gsi`, `Limit = limit + 1` first: one call in the common case |
///
/// The store never scans. Index queries are eventually consistent (a
/// release created a moment ago may not be listed yet);
/// [`release`](ReleaseStore::release) and [`add_deployment`](ReleaseStore::add_deployment)
/// are strongly consistent.
///
/// # Ordering
///
/// Newest first means greatest `date_created` string, ties broken by greatest
/// release id, matching the index's sort order; for the canonical timestamps
/// every tool writes, string order is time order. The index does not order
/// items with equal sort keys, so the store reads a whole tie group before
/// deciding (cursors hold the last returned `date_created` and release id,
/// not the index's own position).
///
/// [`recent_deployments`](ReleaseStore::recent_deployments) relies on every
/// deployment of a release being no newer than its `last_date_deployed`,
/// which holds for every item this crate writes; old tools updated
/// `last_date_deployed` last-writer-wins, so on their items a deployment
/// that lost that race may be left out of the newest few.
///
/// # Concurrency
///
/// [`add_deployment`](ReleaseStore::add_deployment) is one conditional
/// `UpdateItem` that appends with `list_append` and moves
/// `last_date_deployed` only forward, so concurrent deployments are all kept.
/// [`create_release`](ReleaseStore::create_release) never overwrites.
#[derive(Clone)]
pub struct DynamoDbReleaseStore {
    client: Client,
    table_name: TableNamer,
    provision_timeout: Duration,
}

impl fmt::Debug for DynamoDbReleaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbReleaseStore")
            .field("client", &self.client)
            .field("provision_timeout", &self.provision_timeout)
            .finish_non_exhaustive()
    }
}

/// Where a listing stopped: the last release returned.
#[derive(Debug, PartialEq)]
struct Position {
    /// `date_created` exactly as stored (the index's sort key).
    date: String,
    release_id: ReleaseId,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_cursor(project: &ProjectId, position: &Position) -> Cursor {
    let json = serde_json::json!({
        "p": project.as_str(),
        "d": position.date,
        "r": position.release_id.as_str(),
    });
    Cursor::new(hex(json.to_string().as_bytes()))
}

fn decode_cursor(project: &ProjectId, cursor: &Cursor) -> Result<Position> {
    let not_ours = || Error::InvalidCursor {
        reason: "not a cursor of the DynamoDB release store".to_owned(),
    };
    let bytes = unhex(cursor.as_str()).ok_or_else(not_ours)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| not_ours())?;
    let field = |key: &str| value.get(key).and_then(Value::as_str);
    let (Some(p), Some(d), Some(r)) = (field("p"), field("d"), field("r")) else {
        return Err(not_ours());
    };
    if p != project.as_str() {
        return Err(Error::InvalidCursor {
            reason: format!(
                "it was made for project `{}`, not `{project}`",
                crate::names::Escaped::new(p)
            ),
        });
    }
    let release_id = ReleaseId::new(r).map_err(|e| Error::InvalidCursor {
        reason: e.to_string(),
    })?;
    Ok(Position {
        date: d.to_owned(),
        release_id,
    })
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
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

/// A release read from an index, with its sort key exactly as stored.
struct Listed {
    date: String,
    release: Release,
}

/// A record an index query passed over, with its sort key as stored.
struct Passed {
    date: String,
    release_id: String,
    skipped: SkippedRecord,
}

/// Decodes an item read from an index; an item that does not decode is
/// recorded in `passed` (sorted by `sort_key`) instead of failing the call.
fn decode_or_pass(
    item: &Item,
    table: &str,
    sort_key: &str,
    passed: &mut Vec<Passed>,
) -> Result<Option<Release>> {
    match codec::decode_release(item, table) {
        Ok(release) => Ok(Some(release)),
        Err(error) => {
            let release_id = codec::string_attr(item, RELEASE_ID);
            let skipped = SkippedRecord::from_error(&error, release_id).ok_or(error)?;
            passed.push(Passed {
                date: codec::string_attr(item, sort_key)
                    .unwrap_or_default()
                    .to_owned(),
                release_id: release_id.unwrap_or_default().to_owned(),
                skipped,
            });
            Ok(None)
        }
    }
}

impl DynamoDbReleaseStore {
    /// A store using a DynamoDB client built from `config` (see
    /// [`AwsContext::config`](super::AwsContext::config)), with the default
    /// table names.
    pub fn new(config: &SdkConfig) -> DynamoDbReleaseStore {
        DynamoDbReleaseStore::from_client(Client::new(config))
    }

    /// A store using a ready client (custom endpoint, interceptors, …).
    pub fn from_client(client: Client) -> DynamoDbReleaseStore {
        DynamoDbReleaseStore {
            client,
            table_name: Arc::new(default_table_name),
            provision_timeout: Duration::from_secs(300),
        }
    }

    /// Names each project's table with `name` instead of
    /// [`default_table_name`]. The schema is the same; several projects may
    /// share one table (every read is keyed or filtered by project).
    pub fn with_table_name(
        mut self,
        name: impl Fn(&ProjectId) -> String + Send + Sync + 'static,
    ) -> Self {
        self.table_name = Arc::new(name);
        self
    }

    /// How long [`ensure_table`](DynamoDbReleaseStore::ensure_table) waits for
    /// a table to become ACTIVE (default 5 minutes).
    pub fn with_provision_timeout(mut self, timeout: Duration) -> Self {
        self.provision_timeout = timeout;
        self
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The name of `project`'s table.
    pub fn table_name(&self, project: &ProjectId) -> String {
        (self.table_name)(project)
    }

    /// Makes sure `project`'s table exists with the release table schema and
    /// is ACTIVE, creating it (on-demand billing, both indexes) if it is
    /// missing, and waiting until it and its indexes are ACTIVE (at most
    /// [`with_provision_timeout`](DynamoDbReleaseStore::with_provision_timeout)).
    ///
    /// Idempotent, and safe to run from several processes at once. An
    /// existing table whose keys or indexes differ fails with
    /// [`Error::IncompatibleTable`] listing every difference, and is not
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
            Err(Error::IncompatibleTable {
                table: table.to_owned(),
                problem: problems.join("; "),
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

    /// Maps an SDK error of an item operation: a missing table is
    /// [`Error::TableNotFound`].
    fn fail<E, R>(
        &self,
        project: &ProjectId,
        table: &str,
        operation: String,
        e: SdkError<E, R>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        if matches!(e, SdkError::ServiceError(_)) && e.code() == Some("ResourceNotFoundException") {
            return Error::TableNotFound {
                table: table.to_owned(),
                project: project.clone(),
            };
        }
        backend(operation, e)
    }

    /// One page of `index`, newest first (by the index's range key).
    async fn query_newest_first(
        &self,
        table: &str,
        index: &str,
        condition: &str,
        values: &Item,
        limit: usize,
        start: Option<Item>,
    ) -> Result<QueryOutput, SdkError<QueryError, HttpResponse>> {
        self.client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
    }

    /// The newest `limit` releases after `after`, whether more follow, and
    /// the unreadable records passed over between `after` and the last
    /// release returned (or the end, when no more follow).
    async fn newest_releases(
        &self,
        project: &ProjectId,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool, Vec<SkippedRecord>)> {
        let table = self.table_name(project);
        let mut values: Item = HashMap::from([(":p".to_owned(), s(project.as_str()))]);
        let mut condition = "project_id = :p".to_owned();
        if let Some(after) = after {
            condition.push_str(" AND date_created <= :d");
            values.insert(":d".to_owned(), s(after.date.clone()));
        }
        let operation = || {
            format!(
                "listing the releases of project {project} (DynamoDB Query on {table} index {PROJECT_GSI})"
            )
        };
        let mut listed: Vec<Listed> = Vec::new();
        let mut passed: Vec<Passed> = Vec::new();
        let mut start: Option<Item> = None;
        // One more than asked, to see whether the last one ties with the
        // next; after a cursor, one more again: the query starts at the
        // cursor's own release (`<=`), which is read and dropped.
        let mut page_limit = limit + if after.is_some() { 2 } else { 1 };
        loop {
            let page = self
                .query_newest_first(
                    &table,
                    PROJECT_GSI,
                    &condition,
                    &values,
                    page_limit,
                    start.take(),
                )
                .await
                .map_err(|e| self.fail(project, &table, operation(), e))?;
            let mut last_read: Option<String> = None;
            for item in page.items() {
                let Some(release) = decode_or_pass(item, &table, "date_created", &mut passed)?
                else {
                    last_read = codec::string_attr(item, "date_created")
                        .map(str::to_owned)
                        .or(last_read);
                    continue;
                };
                let date = codec::string_attr(item, "date_created")
                    .unwrap_or_default()
                    .to_owned();
                last_read = Some(date.clone());
                if release.project_id() != project {
                    continue;
                }
                if let Some(after) = after {
                    if date == after.date && release.release_id() >= &after.release_id {
                        continue;
                    }
                }
                listed.push(Listed { date, release });
            }
            listed.sort_by(|a, b| {
                (&b.date, b.release.release_id()).cmp(&(&a.date, a.release.release_id()))
            });
            let next = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            let Some(next) = next else {
                break;
            };
            // Unread items sort at or below the last one read; once that is
            // below the `limit`-th kept one, nothing unread can come first.
            if listed.len() > limit {
                if let Some(last) = &last_read {
                    if last < &listed[limit - 1].date {
                        break;
                    }
                }
                listed.truncate(limit + 1);
            }
            start = Some(next);
            page_limit = page_limit.max(LATER_PAGE_LIMIT);
        }
        let more = listed.len() > limit;
        listed.truncate(limit);
        let last = listed
            .last()
            .filter(|_| more)
            .map(|l| (l.date.as_str(), l.release.release_id().as_str()));
        let after = after.map(|a| (a.date.as_str(), a.release_id.as_str()));
        passed.retain(|p| on_page((p.date.as_str(), p.release_id.as_str()), after, last));
        passed.sort_by(|a, b| (&b.date, &b.release_id).cmp(&(&a.date, &a.release_id)));
        let skipped = passed.into_iter().map(|p| p.skipped).collect();
        Ok((listed, more, skipped))
    }

    async fn update_release(
        &self,
        project: &ProjectId,
        table: &str,
        id: &ReleaseId,
        update: &str,
        condition: &str,
        values: Item,
    ) -> Result<Option<Release>> {
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key(RELEASE_ID, s(id.as_str()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(item) => codec::decode_release(item, table).map(Some),
                None => Err(backend_message(
                    format!(
                        "recording a deployment of release {id} of project {project} \
                         (DynamoDB UpdateItem on {table})"
                    ),
                    BackendErrorKind::Other,
                    "DynamoDB returned no attributes although ALL_NEW was asked for",
                )),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(
                project,
                table,
                format!(
                    "recording a deployment of release {id} of project {project} \
                     (DynamoDB UpdateItem on {table})"
                ),
                e,
            )),
        }
    }
}

#[async_trait]
impl ReleaseStore for DynamoDbReleaseStore {
    async fn create_release(&self, release: &Release) -> Result<()> {
        let project = release.project_id();
        let id = release.release_id();
        let table = self.table_name(project);
        let result = self
            .client
            .put_item()
            .table_name(&table)
            .set_item(Some(codec::encode_release(release)))
            .condition_expression("attribute_not_exists(release_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::ReleaseAlreadyExists {
                    project: project.clone(),
                    release: id.clone(),
                })
            }
            Err(e) => Err(self.fail(
                project,
                &table,
                format!("creating release {id} of project {project} (DynamoDB PutItem on {table})"),
                e,
            )),
        }
    }

    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>> {
        let table = self.table_name(project);
        let output = self
            .client
            .get_item()
            .table_name(&table)
            .key(RELEASE_ID, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                self.fail(
                    project,
                    &table,
                    format!(
                        "reading release {id} of project {project} (DynamoDB GetItem on {table})"
                    ),
                    e,
                )
            })?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let release = codec::decode_release(item, &table)?;
        // A table shared by several projects: another project's release is
        // not this project's.
        Ok((release.project_id() == project).then_some(release))
    }

    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease> {
        let (releases, _, skipped) = self.newest_releases(project, None, 1).await?;
        Ok(LatestRelease {
            release: releases.into_iter().next().map(|l| l.release),
            skipped,
        })
    }

    async fn list_releases(
        &self,
        project: &ProjectId,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        let after = page
            .cursor()
            .map(|cursor| decode_cursor(project, cursor))
            .transpose()?;
        let limit = page.limit().clamp(1, MAX_PAGE_SIZE);
        let (listed, more, skipped) = self.newest_releases(project, after.as_ref(), limit).await?;
        let next = match listed.last() {
            Some(last) if more => Some(encode_cursor(
                project,
                &Position {
                    date: last.date.clone(),
                    release_id: last.release.release_id().clone(),
                },
            )),
            _ => None,
        };
        Ok(Page {
            items: listed.into_iter().map(|l| l.release).collect(),
            next,
            skipped,
        })
    }

    async fn add_deployment(
        &self,
        project: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release> {
        let table = self.table_name(project);
        let element = serde_json::to_value(deployment).map_err(|e| Error::InvalidArgument {
            argument: "deployment",
            reason: e.to_string(),
        })?;
        let values = || {
            HashMap::from([
                (":p".to_owned(), s(project.as_str())),
                (":d".to_owned(), s(deployment.date_created().to_string())),
                (
                    ":new".to_owned(),
                    AttributeValue::L(vec![codec::from_json(&element)]),
                ),
                (":empty".to_owned(), AttributeValue::L(Vec::new())),
            ])
        };
        // The common case: the deployment is the newest; append it and move
        // `last_date_deployed` forward, in one conditional write.
        let moved = self
            .update_release(
                project,
                &table,
                id,
                "SET deployments = list_append(if_not_exists(deployments, :empty), :new), \
                 last_date_deployed = :d",
                "attribute_exists(release_id) AND project_id = :p AND \
                 (attribute_not_exists(last_date_deployed) OR last_date_deployed <= :d)",
                values(),
            )
            .await?;
        if let Some(release) = moved {
            return Ok(release);
        }
        // Either the release is missing, or it was deployed more recently
        // than this deployment: append only. `last_date_deployed` never
        // moves backward, so if the first condition failed on the date, this
        // one holds.
        let appended = self
            .update_release(
                project,
                &table,
                id,
                "SET deployments = list_append(if_not_exists(deployments, :empty), :new)",
                "attribute_exists(release_id) AND project_id = :p AND last_date_deployed > :d",
                values(),
            )
            .await?;
        appended.ok_or_else(|| Error::ReleaseNotFound {
            project: project.clone(),
            release: id.clone(),
        })
    }

    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        let limit = check_limit(limit)?;
        let table = self.table_name(project);
        let values: Item = HashMap::from([(":p".to_owned(), s(project.as_str()))]);
        let operation = || {
            format!(
                "reading the recent deployments of project {project} \
                 (DynamoDB Query on {table} index {DEPLOYMENT_GSI})"
            )
        };
        // Newest first, at most `limit`.
        let mut held = Vec::new();
        let mut passed: Vec<Passed> = Vec::new();
        let mut start: Option<Item> = None;
        let mut page_limit = limit + 1;
        loop {
            let page = self
                .query_newest_first(
                    &table,
                    DEPLOYMENT_GSI,
                    "project_id = :p",
                    &values,
                    page_limit,
                    start.take(),
                )
                .await
                .map_err(|e| self.fail(project, &table, operation(), e))?;
            let mut last_read: Option<Timestamp> = None;
            for item in page.items() {
                let Some(release) =
                    decode_or_pass(item, &table, "last_date_deployed", &mut passed)?
                else {
                    last_read = codec::string_attr(item, "last_date_deployed")
                        .and_then(|date| date.parse().ok())
                        .or(last_read);
                    continue;
                };
                last_read = release.last_date_deployed().or(last_read);
                if release.project_id() != project {
                    continue;
                }
                collect_deployments(&mut held, &release, environment);
            }
            keep_newest_deployments(&mut held, limit);
            let next = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            let Some(next) = next else {
                break;
            };
            // Every deployment of an unread release is at most its
            // `last_date_deployed`, which is at most the last one read.
            if held.len() == limit {
                if let Some(last) = last_read {
                    if last < held[limit - 1].1.deployment.date_created() {
                        break;
                    }
                }
            }
            start = Some(next);
            page_limit = page_limit.max(LATER_PAGE_LIMIT);
        }
        let oldest = oldest_of_full_list(&held, limit);
        passed.retain(|p| {
            oldest
                .as_deref()
                .is_none_or(|oldest| p.date.as_str() >= oldest)
        });
        passed.sort_by(|a, b| (&b.date, &b.release_id).cmp(&(&a.date, &a.release_id)));
        Ok(RecentDeployments {
            records: held.into_iter().map(|(_, record)| record).collect(),
            skipped: passed.into_iter().map(|p| p.skipped).collect(),
        })
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

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let project = ProjectId::new("storage").unwrap();
        let position = Position {
            date: "2019-07-10T10:44:02".to_owned(),
            release_id: ReleaseId::new("r-1").unwrap(),
        };
        let cursor = encode_cursor(&project, &position);
        assert!(cursor.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode_cursor(&project, &cursor).unwrap(), position);
        let other = ProjectId::new("catalogue").unwrap();
        assert!(matches!(
            decode_cursor(&other, &cursor),
            Err(Error::InvalidCursor { .. })
        ));
        for garbage in ["", "zz", "abc", "7b7d", "not a cursor", "é"] {
            assert!(
                matches!(
                    decode_cursor(&project, &Cursor::new(garbage)),
                    Err(Error::InvalidCursor { .. })
                ),
                "{garbage:?}"
            );
        }
    }
}
