//! Reading an index newest first: the one walk behind
//! [`latest_release`](crate::ReleaseStore::latest_release),
//! [`list_releases`](crate::ReleaseStore::list_releases) and
//! [`recent_deployments`](crate::ReleaseStore::recent_deployments).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{s, DynamoDbReleaseStore, DEPLOYMENT_GSI, LATER_PAGE_LIMIT, PROJECT_GSI, RELEASE_ID};
use crate::aws::codec::{self, Item};
use crate::cursor::ListingPosition;
use crate::error::Result;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{DeploymentRecord, Release, Timestamp};
use crate::store::{
    collect_deployments, keep_newest_deployments, oldest_of_full_list, on_page, RankedDeployment,
    SkippedRecord,
};

/// A release read from an index, with its sort key exactly as stored.
pub(super) struct Listed {
    pub(super) date: String,
    pub(super) release: Release,
}

/// A record an index query passed over, with its sort key as stored.
struct Passed {
    date: String,
    release_id: String,
    skipped: SkippedRecord,
}

/// Which items of which index a walk reads.
struct IndexQuery<'a> {
    index: &'a str,
    condition: &'a str,
    values: Item,
}

/// What a newest-first walk keeps of the releases it reads, and when it has
/// read enough.
trait Keeper {
    /// The index's sort key.
    const SORT_KEY: &'static str;
    /// Offers a release of the project, with its sort key as stored.
    fn offer(&mut self, sort_key: String, release: Release);
    /// After a page that more pages follow: whether nothing unread (all of
    /// which sorts at or below `last_read`) can change what is kept.
    fn has_enough(&mut self, last_read: Option<&str>) -> bool;
}

/// The newest `limit` releases strictly after a listing position.
struct NewestReleases<'a> {
    after: Option<&'a ListingPosition>,
    limit: usize,
    /// Kept newest first; one more than `limit` shows whether more follow.
    listed: Vec<Listed>,
}

impl NewestReleases<'_> {
    fn sort(&mut self) {
        self.listed.sort_by(|a, b| {
            (&b.date, b.release.release_id()).cmp(&(&a.date, a.release.release_id()))
        });
    }
}

impl Keeper for NewestReleases<'_> {
    const SORT_KEY: &'static str = "date_created";

    fn offer(&mut self, date: String, release: Release) {
        if let Some(after) = self.after {
            if date == after.date && release.release_id() >= &after.release_id {
                return;
            }
        }
        self.listed.push(Listed { date, release });
    }

    fn has_enough(&mut self, last_read: Option<&str>) -> bool {
        let limit = self.limit;
        if self.listed.len() <= limit {
            return false;
        }
        self.sort();
        // Unread items sort at or below the last one read; once that is
        // below the `limit`-th kept one, nothing unread can come first.
        if last_read.is_some_and(|last| last < self.listed[limit - 1].date.as_str()) {
            return true;
        }
        self.listed.truncate(limit + 1);
        false
    }
}

/// The newest `limit` deployments, optionally of one environment.
struct NewestDeployments<'a> {
    environment: Option<&'a EnvironmentId>,
    limit: usize,
    held: Vec<RankedDeployment>,
    /// When kept, the releases of the deployments held, by id.
    releases: Option<HashMap<ReleaseId, Release>>,
}

impl Keeper for NewestDeployments<'_> {
    const SORT_KEY: &'static str = "last_date_deployed";

    fn offer(&mut self, _: String, release: Release) {
        let before = self.held.len();
        collect_deployments(&mut self.held, &release, self.environment);
        if self.held.len() > before {
            if let Some(releases) = &mut self.releases {
                releases.insert(release.release_id().clone(), release);
            }
        }
    }

    fn has_enough(&mut self, last_read: Option<&str>) -> bool {
        keep_newest_deployments(&mut self.held, self.limit);
        // Every deployment of an unread release is at most its
        // `last_date_deployed`, which is at most the last one read.
        let last_read = last_read.and_then(|date| date.parse::<Timestamp>().ok());
        self.held.len() == self.limit
            && last_read
                .is_some_and(|last| last < self.held[self.limit - 1].1.deployment.date_created())
    }
}

impl DynamoDbReleaseStore {
    /// Queries `index` for `project`'s items newest first, one page at a
    /// time, offering every readable release of the project to `keeper`
    /// until it has enough or the index ends. Items that do not decode are
    /// returned as passed over.
    async fn walk_newest_first<K: Keeper>(
        &self,
        project: &ProjectId,
        query: IndexQuery<'_>,
        first_page: usize,
        keeper: &mut K,
        operation: impl Fn(&str) -> String,
    ) -> Result<Vec<Passed>> {
        let table = self.table_name(project);
        let mut passed = Vec::new();
        let mut start: Option<Item> = None;
        let mut page_limit = first_page;
        loop {
            let page = self
                .client
                .query()
                .table_name(&table)
                .index_name(query.index)
                .key_condition_expression(query.condition)
                .set_expression_attribute_values(Some(query.values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(page_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail(project, &table, operation(&table), e))?;
            let mut last_read: Option<String> = None;
            for item in page.items() {
                let sort_key = codec::string_attr(item, K::SORT_KEY).map(str::to_owned);
                let release = match codec::decode_release(item, &table) {
                    Ok(release) => release,
                    Err(error) => {
                        let release_id = codec::string_attr(item, RELEASE_ID);
                        let skipped = SkippedRecord::from_error(&error, release_id).ok_or(error)?;
                        passed.push(Passed {
                            date: sort_key.clone().unwrap_or_default(),
                            release_id: release_id.unwrap_or_default().to_owned(),
                            skipped,
                        });
                        last_read = sort_key.or(last_read);
                        continue;
                    }
                };
                last_read = sort_key.clone().or(last_read);
                // A table shared by several projects.
                if release.project_id() == project {
                    keeper.offer(sort_key.unwrap_or_default(), release);
                }
            }
            let Some(next) = page.last_evaluated_key().filter(|k| !k.is_empty()) else {
                break;
            };
            if keeper.has_enough(last_read.as_deref()) {
                break;
            }
            start = Some(next.clone());
            page_limit = page_limit.max(LATER_PAGE_LIMIT);
        }
        passed.sort_by(|a, b| (&b.date, &b.release_id).cmp(&(&a.date, &a.release_id)));
        Ok(passed)
    }

    /// The newest `limit` releases after `after`, whether more follow, and
    /// the unreadable records passed over between `after` and the last
    /// release returned (or the end, when no more follow).
    pub(super) async fn newest_releases(
        &self,
        project: &ProjectId,
        after: Option<&ListingPosition>,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool, Vec<SkippedRecord>)> {
        let mut values: Item = HashMap::from([(":p".to_owned(), s(project.as_str()))]);
        let mut condition = "project_id = :p".to_owned();
        if let Some(after) = after {
            condition.push_str(" AND date_created <= :d");
            values.insert(":d".to_owned(), s(after.date.clone()));
        }
        let mut keeper = NewestReleases {
            after,
            limit,
            listed: Vec::new(),
        };
        // One more than asked, to see whether the last one ties with the
        // next; after a cursor, one more again: the query starts at the
        // cursor's own release (`<=`), which is read and dropped.
        let first_page = limit + if after.is_some() { 2 } else { 1 };
        let mut passed = self
            .walk_newest_first(
                project,
                IndexQuery {
                    index: PROJECT_GSI,
                    condition: &condition,
                    values,
                },
                first_page,
                &mut keeper,
                |table| {
                    format!(
                        "listing the releases of project {project} \
                         (DynamoDB Query on {table} index {PROJECT_GSI})"
                    )
                },
            )
            .await?;
        keeper.sort();
        let mut listed = keeper.listed;
        let more = listed.len() > limit;
        listed.truncate(limit);
        let last = listed
            .last()
            .filter(|_| more)
            .map(|l| (l.date.as_str(), l.release.release_id().as_str()));
        let after = after.map(|a| (a.date.as_str(), a.release_id.as_str()));
        passed.retain(|p| on_page((p.date.as_str(), p.release_id.as_str()), after, last));
        let skipped = passed.into_iter().map(|p| p.skipped).collect();
        Ok((listed, more, skipped))
    }

    /// The newest `limit` deployments of the project (of `environment` only,
    /// if given), and the unreadable records that could have held newer ones.
    pub(super) async fn newest_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<(Vec<DeploymentRecord>, Vec<SkippedRecord>)> {
        let (held, skipped, _) = self
            .walk_deployments(project, environment, limit, false)
            .await?;
        Ok((held, skipped))
    }

    /// The newest deployment to `environment` and its release (from the
    /// same index read), and the unreadable records that could have held a
    /// newer one.
    pub(super) async fn newest_deployment_and_release(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
    ) -> Result<(Option<(DeploymentRecord, Release)>, Vec<SkippedRecord>)> {
        let (held, skipped, mut releases) = self
            .walk_deployments(project, Some(environment), 1, true)
            .await?;
        let newest = held.into_iter().next().and_then(|record| {
            let release = releases.remove(&record.release_id)?;
            Some((record, release))
        });
        Ok((newest, skipped))
    }

    /// [`newest_deployments`](Self::newest_deployments), and, when
    /// `keep_releases`, the releases offered that hold a deployment there
    /// (those of the deployments returned among them).
    async fn walk_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
        keep_releases: bool,
    ) -> Result<(
        Vec<DeploymentRecord>,
        Vec<SkippedRecord>,
        HashMap<ReleaseId, Release>,
    )> {
        let values: Item = HashMap::from([(
            ":p".to_owned(),
            AttributeValue::S(project.as_str().to_owned()),
        )]);
        let mut keeper = NewestDeployments {
            environment,
            limit,
            held: Vec::new(),
            releases: keep_releases.then(HashMap::new),
        };
        let mut passed = self
            .walk_newest_first(
                project,
                IndexQuery {
                    index: DEPLOYMENT_GSI,
                    condition: "project_id = :p",
                    values,
                },
                limit + 1,
                &mut keeper,
                |table| {
                    format!(
                        "reading the recent deployments of project {project} \
                         (DynamoDB Query on {table} index {DEPLOYMENT_GSI})"
                    )
                },
            )
            .await?;
        keep_newest_deployments(&mut keeper.held, limit);
        let oldest = oldest_of_full_list(&keeper.held, limit);
        passed.retain(|p| {
            oldest
                .as_deref()
                .is_none_or(|oldest| p.date.as_str() >= oldest)
        });
        let releases = keeper.releases.unwrap_or_default();
        Ok((
            keeper.held.into_iter().map(|(_, record)| record).collect(),
            passed.into_iter().map(|p| p.skipped).collect(),
            releases,
        ))
    }
}
