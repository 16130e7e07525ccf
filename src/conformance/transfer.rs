//! The check that copying releases between stores relies on
//! ([`crate::transfer`]): a release created with its history keeps it.

use serde_json::{json, Value};

use super::support::{
    at, create, deploy, deployment, descriptions, environment, must, read, SECOND,
};
use crate::names::ProjectId;
use crate::release::Release;
use crate::store::ReleaseStore;

/// Releases created with deployments already in them (copied from another
/// store, as an import does) keep them exactly: each reads back equal and
/// in the JSON shape it was given (deployment shapes, `details`,
/// `last_date_deployed`, even one newer than its deployments, as the old
/// tools could leave); their deployments are in
/// [`ReleaseStore::recent_deployments`] in order with those added later;
/// and a deployment added to one is appended after them, never moving
/// `last_date_deployed` backward.
pub async fn release_store_created_with_history(store: &dyn ReleaseStore, project: &ProjectId) {
    let p = project.as_str();
    let records = [
        json!({
            "release_id": "copied-1", "project_id": p, "project_name": "Copied",
            "date_created": "2020-01-01T00:00:00",
            "requested_by": "arn:aws:iam::123456789012:user/alice",
            "description": "copied with its history",
            "images": {"archivist": "ecr.example.com/archivist:ref.1"},
            "deployments": [
                {"date_created": "2020-01-01T00:00:01", "description": "first",
                 "environment": {"id": "stage", "name": "Staging"},
                 "requested_by": {"id": "unknown", "name": "unknown"}},
                {"date_created": "2020-01-01T00:00:03", "description": "third",
                 "environment": "prod", "requested_by": "arn:aws:iam::123456789012:user/bob",
                 "details": {"archivist": {"ssm_result": {"new_image": "ref.1"}}}}
            ],
            "last_date_deployed": "2020-01-01T00:00:03"
        }),
        json!({
            "release_id": "copied-2", "project_id": p, "project_name": "Copied",
            "date_created": "2020-01-01T00:00:00.500000",
            "requested_by": "arn:aws:iam::123456789012:user/alice",
            "description": "the newest", "images": {"archivist": null},
            "deployments": [
                {"date_created": "2020-01-01T00:00:02", "description": "second",
                 "environment": "stage", "requested_by": "arn:aws:iam::123456789012:user/bob"}
            ],
            "last_date_deployed": "2020-01-01T00:00:02"
        }),
        json!({
            "release_id": "copied-3", "project_id": p, "project_name": "Copied",
            "date_created": "2019-12-31T00:00:00",
            "requested_by": {"id": "unknown", "name": "unknown"},
            "description": "No description provided",
            "images": {"archivist": ["ref.0"]},
            "deployments": [
                {"date_created": "2019-12-31T00:00:01", "description": "zeroth",
                 "environment": {"id": "stage", "name": "Staging"},
                 "requested_by": {"id": "unknown", "name": "unknown"}}
            ],
            "last_date_deployed": "2020-01-01T00:00:09"
        }),
    ];
    let mut releases = Vec::new();
    for record in &records {
        let release = Release::from_json(record.clone(), "copied record")
            .unwrap_or_else(|e| panic!("conformance: fixed record: {e}"));
        create(store, &release).await;
        let got = read(store, project, release.release_id()).await;
        assert_eq!(
            got.as_ref(),
            Some(&release),
            "conformance: a release created with deployments must read back equal"
        );
        assert_eq!(
            got.map(|r| r.to_json()).as_ref(),
            Some(record),
            "conformance: a release created with deployments must keep its JSON shape"
        );
        releases.push(release);
    }
    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest.as_ref().map(|r| r.release_id().as_str()),
        Some("copied-2"),
        "conformance: the newest created release is the latest, whatever its history"
    );

    let recent = |environment: Option<&'static str>| async move {
        let env = environment.map(self::environment);
        must(
            store.recent_deployments(project, env.as_ref(), 100).await,
            format_args!("recent_deployments({project}, {environment:?}, 100)"),
        )
        .records
    };
    assert_eq!(
        descriptions(&recent(None).await),
        ["third", "second", "first", "zeroth"],
        "conformance: the deployments of created releases are in recent_deployments"
    );
    assert_eq!(
        descriptions(&recent(Some("stage")).await),
        ["second", "first", "zeroth"],
        "conformance: the deployments of created releases, filtered to `stage` (some with \
         environment maps)"
    );

    let fourth = deployment("stage", at(4 * SECOND), "fourth");
    let updated = deploy(store, project, releases[0].release_id(), &fourth).await;
    let mut expected = releases[0].clone();
    expected.record_deployment(fourth);
    assert_eq!(
        updated, expected,
        "conformance: a deployment added to a created release is appended after its history"
    );
    let fifth = deployment("prod", at(5 * SECOND), "fifth");
    let updated = deploy(store, project, releases[2].release_id(), &fifth).await;
    assert_eq!(
        updated.to_json().get("last_date_deployed"),
        Some(&Value::from("2020-01-01T00:00:09")),
        "conformance: a stored last_date_deployed newer than a new deployment stays"
    );
    assert_eq!(
        descriptions(&recent(None).await),
        ["fifth", "fourth", "third", "second", "first", "zeroth"],
        "conformance: deployments added to created releases are listed with the copied ones"
    );
}
