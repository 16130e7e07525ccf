//! What the checks share: fixed values, and store calls that panic with
//! the call's name when they fail.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde_json::Value;

use crate::error::Result;
use crate::names::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ServiceId};
use crate::release::{Deployment, DeploymentRecord, NewRelease, Release};
use crate::release::{Requester, Timestamp};
use crate::store::{Page, PageRequest, ReleaseStore};

/// Unwraps a store call, or panics naming the call and the error.
#[track_caller]
pub(super) fn must<T>(result: Result<T>, what: impl Display) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("conformance: {what} failed: {e}"),
    }
}

/// 2020-01-01T00:00:00 plus `micros` microseconds.
pub(super) fn at(micros: i64) -> Timestamp {
    "2020-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("conformance: the base timestamp parses")
        .add_micros(micros)
}

pub(super) const SECOND: i64 = 1_000_000;

pub(super) fn service(name: &str) -> ServiceId {
    ServiceId::new(name).expect("conformance: fixed service id is valid")
}

pub(super) fn label(name: &str) -> Label {
    Label::new(name).expect("conformance: fixed label is valid")
}

pub(super) fn image(value: &str) -> ImageUri {
    ImageUri::new(value).expect("conformance: fixed image URI is valid")
}

pub(super) fn environment(name: &str) -> EnvironmentId {
    EnvironmentId::new(name).expect("conformance: fixed environment id is valid")
}

pub(super) fn release_id(name: &str) -> ReleaseId {
    ReleaseId::new(name).expect("conformance: fixed release id is valid")
}

pub(super) fn requester() -> Requester {
    Requester::new("arn:aws:sts::123456789012:assumed-role/conformance/check")
}

pub(super) fn ecr(service: &str, tag: &str) -> ImageUri {
    image(&format!(
        "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"
    ))
}

/// A release of `project` with two images, created at `created`.
pub(super) fn new_release(project: &ProjectId, id: &str, created: Timestamp) -> Release {
    let images = BTreeMap::from([
        (service("archivist"), ecr("archivist", "ref.3f2a9c1").into()),
        (
            service("bag-verifier"),
            ecr("bag-verifier", "ref.77b0e4d").into(),
        ),
    ]);
    Release::new(NewRelease {
        release_id: release_id(id),
        project_id: project.clone(),
        project_name: "Conformance project".to_owned(),
        date_created: created,
        requested_by: requester(),
        description: format!("release {id}"),
        images,
    })
}

pub(super) fn deployment(env: &str, date: Timestamp, description: &str) -> Deployment {
    Deployment::new(environment(env), date, requester(), description)
}

pub(super) fn deployment_from_json(value: Value) -> Deployment {
    serde_json::from_value(value).expect("conformance: fixed deployment JSON is valid")
}

pub(super) fn ids(releases: &[Release]) -> Vec<&str> {
    releases.iter().map(|r| r.release_id().as_str()).collect()
}

pub(super) fn descriptions(records: &[DeploymentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.deployment.description()).collect()
}

pub(super) async fn create(store: &dyn ReleaseStore, release: &Release) {
    must(
        store.create_release(release).await,
        format_args!("create_release({})", release.release_id()),
    );
}

pub(super) async fn read(
    store: &dyn ReleaseStore,
    project: &ProjectId,
    id: &ReleaseId,
) -> Option<Release> {
    must(
        store.release(project, id).await,
        format_args!("release({project}, {id})"),
    )
}

pub(super) async fn deploy(
    store: &dyn ReleaseStore,
    project: &ProjectId,
    id: &ReleaseId,
    deployment: &Deployment,
) -> Release {
    must(
        store.add_deployment(project, id, deployment).await,
        format_args!(
            "add_deployment({project}, {id}, {})",
            deployment.description()
        ),
    )
}

/// Reads every page of the project's listing with pages of `limit`,
/// checking the page rules; returns the pages.
pub(super) async fn walk(
    store: &dyn ReleaseStore,
    project: &ProjectId,
    limit: usize,
) -> Vec<Vec<Release>> {
    let mut request = PageRequest::first(limit).expect("conformance: page limit is valid");
    let mut pages = Vec::new();
    // A correct store needs at most one page per release plus one.
    for _ in 0..=100 {
        let Page { items, next, .. } = must(
            store.list_releases(project, &request).await,
            format_args!("list_releases({project}, {request:?})"),
        );
        assert!(
            items.len() <= limit,
            "conformance: list_releases returned {} releases for a page limit of {limit}",
            items.len()
        );
        let empty = items.is_empty();
        pages.push(items);
        match next {
            None => return pages,
            Some(cursor) => {
                assert!(
                    !empty,
                    "conformance: list_releases returned an empty page with a cursor ({cursor:?}); \
                     an empty page must end the listing"
                );
                request = PageRequest::first(limit)
                    .expect("conformance: page limit is valid")
                    .after(cursor);
            }
        }
    }
    panic!("conformance: list_releases never ended (more than 100 pages of {limit})");
}
