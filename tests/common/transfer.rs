//! Stores worth copying, for the export/import tests (`tests/transfer.rs`,
//! `tests/aws_transfer.rs`): legacy records with their deployments, and
//! releases made and deployed by the tracker.
//!
//! Include with `#[path = "common/transfer.rs"] mod transfer_common;`.

#![allow(dead_code)]

use release_tracking::{
    ImageStore, Label, Manifest, PrepareRequest, Project, ProjectId, Release, ReleaseRef,
    ReleaseStore, ReleaseTracker, Requester,
};
use serde_json::{json, Value};

/// Project `id` with a stage and a prod environment.
pub fn project(id: &str) -> Project {
    Manifest::parse(
        &format!(
            r#"{{"{id}": {{"name": "Storage service",
                "environments": [{{"id": "stage", "name": "Staging"}}, {{"id": "prod", "name": "Production"}}]}}}}"#
        ),
        ".wellcome_project",
    )
    .expect("manifest")
    .select(None)
    .expect("one project")
    .clone()
}

/// A full image reference.
pub fn ecr(service: &str, tag: &str) -> String {
    format!("760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}")
}

/// Records of `project` in the shapes earlier tools wrote, with deployments.
pub fn legacy_records(project: &ProjectId) -> Vec<Value> {
    let p = project.as_str();
    vec![
        json!({
            "release_id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", "project_id": p,
            "project_name": "Storage service", "date_created": "2019-07-10T10:44:02.272898",
            "requested_by": {"id": "unknown", "name": "unknown"},
            "description": "No description provided",
            "images": {"archivist": ecr("archivist", "3f2a9c1"), "bagger": null},
            "deployments": [{"date_created": "2019-07-10T11:00:00",
                "description": "No description provided",
                "environment": {"id": "stage", "name": "Staging", "aws_region_name": "eu-west-1"},
                "requested_by": {"id": "unknown", "name": "unknown"}}],
            "last_date_deployed": "2019-07-10T11:00:00"
        }),
        json!({
            "release_id": "a3bb189e-8bf9-3888-9912-ace4e6543002", "project_id": p,
            "project_name": "Storage service", "date_created": "2020-11-10T12:00:00",
            "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/carol",
            "description": "Tag sets", "images": {"archivist": ["env.stage", "ref.3f2a9c1"]},
            "deployments": [{"date_created": "2020-11-10T12:05:00.123456",
                "description": "to prod", "environment": "prod",
                "requested_by": "arn:aws:iam::123456789012:user/bob",
                "details": {"archivist": {"ssm_result": {"new_image": "ref.3f2a9c1"}}}}],
            "last_date_deployed": "2020-11-10T12:05:00.123456",
            "release_manifest": {"archivist": {"digest": "sha256:0123abcd"}}
        }),
    ]
}

/// Fills the stores with [`legacy_records`], two releases made by the
/// tracker and deployed three times, and images at `latest`, `stage` and
/// `prod`: 4 releases, 5 deployments, 9 images.
pub async fn fill(project: &Project, images: &dyn ImageStore, releases: &dyn ReleaseStore) {
    for record in legacy_records(project.id()) {
        let release = Release::from_json(record, "fixture").expect("a valid record");
        releases.create_release(&release).await.expect("create");
    }
    let tracker = ReleaseTracker::new(
        project.clone(),
        images,
        releases,
        Requester::new("arn:aws:iam::123456789012:user/alice"),
    );
    let latest = Label::latest();
    for service in ["archivist", "bag-register", "notifier"] {
        let image = ecr(service, "ref.1").parse().expect("uri");
        tracker
            .publish(&latest, &service.parse().expect("service"), &image)
            .await
            .expect("publish");
    }
    tracker
        .prepare(PrepareRequest::latest().description("first"))
        .await
        .expect("prepare");
    tracker
        .deploy(&ReleaseRef::Latest, "stage", "to stage")
        .await
        .expect("deploy");
    tracker
        .deploy(&ReleaseRef::Latest, "prod", "to prod")
        .await
        .expect("deploy");
    let image = ecr("notifier", "ref.2").parse().expect("uri");
    tracker
        .publish(&latest, &"notifier".parse().expect("service"), &image)
        .await
        .expect("publish");
    tracker
        .prepare(PrepareRequest::latest().description("second"))
        .await
        .expect("prepare");
    tracker
        .deploy(&ReleaseRef::Latest, "stage", "second to stage")
        .await
        .expect("deploy");
}
