//! The [`ReleaseStore`] implementation: items written and read by key.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{s, DynamoDbReleaseStore, RELEASE_ID};
use crate::aws::codec::{self, Item};
use crate::aws::error::backend_message;
use crate::cursor::ListingPosition;
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{Deployment, Release};
use crate::store::{
    check_limit, CurrentRelease, LatestRelease, Page, PageRequest, RecentDeployments, ReleaseStore,
    MAX_PAGE_SIZE,
};

impl DynamoDbReleaseStore {
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
            .map(|cursor| ListingPosition::decode(project, cursor))
            .transpose()?;
        let limit = page.limit().clamp(1, MAX_PAGE_SIZE);
        let (listed, more, skipped) = self.newest_releases(project, after.as_ref(), limit).await?;
        let next = match listed.last() {
            Some(last) if more => Some(
                ListingPosition::new(last.date.clone(), last.release.release_id().clone())
                    .encode(project),
            ),
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
        let (records, skipped) = self.newest_deployments(project, environment, limit).await?;
        Ok(RecentDeployments { records, skipped })
    }

    /// One `Query` of the deployment index, whose items are whole releases:
    /// the newest deployment's release comes with it.
    async fn current_release(
        &self,
        project: &ProjectId,
        environment: &EnvironmentId,
        known: Option<&ReleaseId>,
    ) -> Result<CurrentRelease> {
        let (newest, skipped) = self
            .newest_deployment_and_release(project, environment)
            .await?;
        let (deployment, release) = match newest {
            Some((record, release)) => {
                let unknown = Some(&record.release_id) != known;
                (Some(record), unknown.then_some(release))
            }
            None => (None, None),
        };
        Ok(CurrentRelease {
            deployment,
            release,
            skipped,
        })
    }
}
