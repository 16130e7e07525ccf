//! Reading what was released and deployed: diff, current and history.

use std::collections::BTreeMap;

use super::*;
use crate::error::Result;
use crate::names::{ImageUri, ReleaseRef, ServiceId};
use crate::store::{ImageStore, RecentDeployments, ReleaseStore};

impl<I: ImageStore, R: ReleaseStore> ReleaseTracker<I, R> {
    /// How release `to` differs from release `from`. Records skipped while
    /// resolving `latest` are in [`ReleaseDiff::warnings`].
    pub async fn diff(&self, from: &ReleaseRef, to: &ReleaseRef) -> Result<ReleaseDiff> {
        let from = self.release(from).await?;
        let to = self.release(to).await?;
        let mut diff = ReleaseDiff::between(&from.release, &to.release);
        diff.warnings = from.warnings;
        if diff.warnings != to.warnings {
            diff.warnings.extend(to.warnings);
        }
        Ok(diff)
    }

    /// The release last deployed to `environment` (`None` if never), and
    /// whether its label still holds that release's images.
    pub async fn current(&self, environment: &str) -> Result<EnvironmentStatus> {
        let environment = self.environment(environment)?.id().clone();
        let project = self.project_id();
        let recent = self
            .releases
            .recent_deployments(project, Some(&environment), 1)
            .await?;
        let warnings = record_warnings(recent.skipped).collect();
        let Some(newest) = recent.records.into_iter().next() else {
            return Ok(EnvironmentStatus {
                current: None,
                warnings,
            });
        };
        let release = self
            .release(&ReleaseRef::Id(newest.release_id))
            .await?
            .release;
        let label = self
            .images
            .label_images(project, &environment.label())
            .await?
            .images;
        // Compare what a deploy of the release would write now; a bare tag
        // that cannot resolve counts as drifted.
        let targets: BTreeMap<ServiceId, ImageUri> = release
            .images()
            .iter()
            .filter_map(|(service, entry)| {
                let uri = entry.uri()?;
                let image = if uri.is_full_reference() {
                    uri.clone()
                } else {
                    self.resolve_tag(service, uri)
                        .unwrap_or_else(|_| uri.clone())
                };
                Some((service.clone(), image))
            })
            .collect();
        let drifted = release
            .images()
            .keys()
            .filter(|service| targets.get(*service) != label.get(*service))
            .cloned()
            .collect();
        Ok(EnvironmentStatus {
            current: Some(CurrentDeployment {
                release,
                deployment: newest.deployment,
                drifted,
            }),
            warnings,
        })
    }

    /// The newest `limit` deployments of the project, newest first, to one
    /// environment or to all; unreadable records are in
    /// [`RecentDeployments::skipped`].
    pub async fn history(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        let environment = match environment {
            Some(id) => Some(self.environment(id)?.id().clone()),
            None => None,
        };
        self.releases
            .recent_deployments(self.project_id(), environment.as_ref(), limit)
            .await
    }
}
