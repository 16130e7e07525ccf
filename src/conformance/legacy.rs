//! Release records in the shapes earlier tools wrote.

use serde_json::{json, Value};

use crate::names::ProjectId;
use crate::release::Release;
use crate::store::ReleaseStore;

use super::support::*;

/// Release records in every shape the old tools wrote (see the crate docs,
/// "Records that already exist") are created, read back equal and in the same JSON shape,
/// and can be deployed without altering their old deployments.
pub async fn release_store_legacy_records(store: &dyn ReleaseStore, project: &ProjectId) {
    let records = legacy_records(project);
    let mut releases = Vec::new();
    for LegacyRecord { name, record, .. } in &records {
        let release = Release::from_json(record.clone(), name)
            .unwrap_or_else(|e| panic!("conformance: fixed legacy record {name}: {e}"));
        create(store, &release).await;
        let got = read(store, project, release.release_id())
            .await
            .unwrap_or_else(|| panic!("conformance: legacy record {name} did not read back"));
        assert_eq!(
            got, release,
            "conformance: legacy record {name} must read back equal"
        );
        assert_eq!(
            &got.to_json(),
            record,
            "conformance: legacy record {name} must read back in the shape it was written"
        );
        releases.push((name, record, release));
    }

    let new = deployment(
        "prod",
        at(400 * 24 * 3600 * SECOND),
        "deployed by this crate",
    );
    for (name, record, release) in releases {
        let updated = deploy(store, project, release.release_id(), &new).await;
        let mut expected = release.clone();
        expected.record_deployment(new.clone());
        assert_eq!(
            updated, expected,
            "conformance: deploying legacy record {name} must append the deployment and change \
             nothing else"
        );
        let stored = read(store, project, release.release_id())
            .await
            .unwrap_or_else(|| panic!("conformance: legacy record {name} did not read back"));
        assert_eq!(
            stored, expected,
            "conformance: legacy record {name} after a deployment"
        );
        let old: Vec<Value> = record
            .get("deployments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let json = stored.to_json();
        let now: Vec<Value> = json
            .get("deployments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            now.get(..old.len()),
            Some(old.as_slice()),
            "conformance: deploying legacy record {name} must keep its old deployments' shapes"
        );
        assert_eq!(
            json.get("release_manifest"),
            record.get("release_manifest"),
            "conformance: deploying legacy record {name} must keep unknown attributes"
        );
    }
}

/// One release record as an earlier tool wrote it: the one catalogue of
/// legacy shapes behind [`release_store_legacy_records`], and for tests of
/// decoding and of raw backend items.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LegacyRecord {
    /// A short, stable name of the shape (`release_tooling`,
    /// `weco-deploy 2`, `weco-deploy 4`, `tag sets`, `never deployed`).
    pub name: &'static str,
    /// What is particular to it.
    pub about: &'static str,
    /// The record, as the tool wrote it.
    pub record: Value,
}

/// One record per release shape the earlier tools wrote (see the crate
/// docs, "Records that already exist"), each of `project`, with distinct release ids.
pub fn legacy_records(project: &ProjectId) -> Vec<LegacyRecord> {
    let p = project.as_str();
    let ecr = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome";
    vec![
        LegacyRecord {
            name: "release_tooling",
            about: "{id, name} requesters, environment maps with extra keys, an http image",
            record: json!({
                "release_id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2019-07-10T10:44:02.272898",
                "requested_by": {"id": "unknown", "name": "unknown"},
                "description": "No description provided",
                "images": {
                    "archivist": format!("{ecr}/archivist:3f2a9c1e5b7d9f0a1c3e5b7d9f0a1c3e5b7d9f0a"),
                    "bagger": format!("{ecr}/bagger:ref.3f2a9c1"),
                    "bags_api": "http://example.com/images/bags_api/00001"
                },
                "deployments": [{
                    "date_created": "2019-07-10T11:00:00",
                    "description": "No description provided",
                    "environment": {"id": "stage", "name": "Staging",
                                    "aws_region_name": "eu-west-1"},
                    "requested_by": {"id": "alice", "name": "Alice"}
                }],
                "last_date_deployed": "2019-07-10T11:00:00"
            }),
        },
        LegacyRecord {
            name: "weco-deploy 2",
            about: "ARN requesters, environment maps",
            record: json!({
                "release_id": "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2020-03-02T16:20:11.000512",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/alice",
                "description": "Bump archivist",
                "images": {"archivist": format!("{ecr}/archivist:ref.9e8d7c6")},
                "deployments": [
                    {
                        "date_created": "2020-03-02T16:30:00",
                        "description": "to stage",
                        "environment": {"id": "stage", "name": "Staging"},
                        "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/alice"
                    },
                    {
                        "date_created": "2020-03-03T09:00:00.500000",
                        "description": "to prod",
                        "environment": {"id": "prod", "name": "Production"},
                        "requested_by": "arn:aws:iam::123456789012:user/bob"
                    }
                ],
                "last_date_deployed": "2020-03-03T09:00:00.500000"
            }),
        },
        LegacyRecord {
            name: "weco-deploy 4",
            about: "id environments, per-image details, bare tags and null images",
            record: json!({
                "release_id": "a3bb189e-8bf9-3888-9912-ace4e6543002",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2021-05-20T08:00:00",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/platform-ci/deploy",
                "description": "Nightly",
                "images": {
                    "archivist": "ref.3f2a9c1",
                    "notifier": null,
                    "replicator": format!("{ecr}/replicator:ref.77b0e4d")
                },
                "deployments": [{
                    "date_created": "2021-05-20T08:05:00.123456",
                    "description": "to stage",
                    "environment": "stage",
                    "requested_by": "arn:aws:sts::123456789012:assumed-role/platform-ci/deploy",
                    "details": {
                        "archivist": {
                            "ssm_result": {"old_image": "ref.1111111", "new_image": "ref.3f2a9c1"},
                            "tag_result": {"status": "success"},
                            "ecs_deployments": [{"service": "archivist", "desired_count": 1}]
                        }
                    }
                }],
                "last_date_deployed": "2021-05-20T08:05:00.123456"
            }),
        },
        LegacyRecord {
            name: "tag sets",
            about: "images as sets of tags (November 2020)",
            record: json!({
                "release_id": "c56a4180-65aa-42ec-a945-5fd21dec0538",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2020-11-10T12:00:00",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/carol",
                "description": "Tag sets",
                "images": {
                    "archivist": ["env.stage", "ref.3f2a9c1"],
                    "bagger": ["ref.77b0e4d"]
                },
                "deployments": []
            }),
        },
        LegacyRecord {
            name: "never deployed",
            about: "no deployments, an unknown top-level attribute",
            record: json!({
                "release_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2019-08-01T00:00:00",
                "requested_by": {"id": "unknown", "name": "unknown"},
                "description": "No description provided",
                "images": {"archivist": format!("{ecr}/archivist:3f2a9c1")},
                "deployments": [],
                "release_manifest": {"archivist": {"digest": "sha256:0123abcd"}}
            }),
        },
    ]
}
