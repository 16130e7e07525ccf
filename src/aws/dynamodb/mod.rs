//! [`DynamoDbReleaseStore`]: releases as items of one DynamoDB table per
//! project.

mod listing;
mod provision;
mod releases;

pub use provision::TableState;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::aws::error::backend;
use crate::error::Error;
use crate::names::ProjectId;
// The docs above link to it.
#[cfg(doc)]
use crate::store::ReleaseStore;

/// The hash key of the table.
pub(crate) const RELEASE_ID: &str = "release_id";
/// The index of a project's releases by creation date.
pub(crate) const PROJECT_GSI: &str = "project_gsi";
/// The sparse index of a project's deployed releases by last deployment.
pub(crate) const DEPLOYMENT_GSI: &str = "deployment_gsi";

/// Pages after the first read this many items, so that a long run of
/// releases that tie on the sort key (or do not match an environment) is
/// read in few calls.
const LATER_PAGE_LIMIT: usize = 100;

/// `wellcome-releases-{project}`: the table name the old tools used.
pub fn default_table_name(project: &ProjectId) -> String {
    format!("wellcome-releases-{project}")
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
/// [`Release`](crate::Release)). A malformed item is an [`Error::InvalidRecord`] naming the
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
/// | [`current_release`](ReleaseStore::current_release) | that `Query` (limit 1), whose items are whole releases: no `GetItem` |
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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
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

    /// Maps an SDK error of an item operation: a missing table is
    /// [`Error::StoreNotProvisioned`].
    pub(crate) fn fail<E, R>(
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
            return Error::StoreNotProvisioned {
                project: project.clone(),
                location: format!("release table `{table}`"),
                fix: "create it once with `DynamoDbReleaseStore::ensure_table` (needs \
                      dynamodb:CreateTable and dynamodb:DescribeTable), or with your \
                      infrastructure code (hash key `release_id` S; indexes `project_gsi` and \
                      `deployment_gsi`)"
                    .to_owned(),
            };
        }
        backend(operation, e)
    }
}
