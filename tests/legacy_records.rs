//! Every release-item shape that earlier tools wrote decodes, keeps its
//! shape when written back, and malformed items give errors naming the
//! record and attribute.

use release_tracking::{
    DeploymentEnvironment, Error, ImageEntry, Release, Requester, ServiceId, Timestamp,
};
use serde_json::{json, Value};

fn decode(value: Value) -> Release {
    let release = Release::from_json(value.clone(), "test record").expect("decodes");
    assert_eq!(
        release.to_json(),
        value,
        "written back in the shape it was read"
    );
    release
}

fn svc(s: &str) -> ServiceId {
    s.parse().expect("service id")
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// The example in the RFC, as release_tooling and weco-deploy 1.0 wrote it.
fn oldest() -> Value {
    json!({
        "date_created": "2019-07-10T10:44:02.272898",
        "deployments": [{
            "date_created": "2019-07-10T10:44:12.983539",
            "description": "new pipeline",
            "environment": {"id": "stage", "name": "Staging"},
            "requested_by": {"id": "unknown", "name": "unknown"}
        }],
        "description": "Some description",
        "images": {
            "hatching": "http://example.com/images/hatching/00001",
            "feeding": "http://example.com/images/hatching/00001"
        },
        "last_date_deployed": "2019-07-10T10:44:12.983539",
        "project_id": "example",
        "project_name": "Example project",
        "release_id": "0efcc940-e709-4a51-b264-809a670629b6",
        "requested_by": {"id": "unknown", "name": "unknown"}
    })
}

#[test]
fn oldest_shape_maps_for_requester_and_environment() {
    let release = decode(oldest());
    assert_eq!(
        release.release_id().as_str(),
        "0efcc940-e709-4a51-b264-809a670629b6"
    );
    assert_eq!(release.project_name(), "Example project");
    assert_eq!(release.date_created(), at("2019-07-10T10:44:02.272898"));
    assert_eq!(
        release.requested_by(),
        &Requester::Legacy {
            id: "unknown".into(),
            name: "unknown".into()
        }
    );
    let d = &release.deployments()[0];
    assert_eq!(d.environment().as_str(), "stage");
    assert!(matches!(
        d.environment_record(),
        DeploymentEnvironment::Legacy { name: Some(name), .. } if name == "Staging"
    ));
    assert_eq!(d.requested_by().display_name(), "unknown");
    assert_eq!(
        release.last_date_deployed(),
        Some(at("2019-07-10T10:44:12.983539"))
    );
}

#[test]
fn legacy_environment_maps_keep_extra_manifest_keys() {
    let mut value = oldest();
    value["deployments"][0]["environment"] =
        json!({"id": "prod", "name": "Production", "account": "760097843905", "order": 2});
    let release = decode(value);
    match release.deployments()[0].environment_record() {
        DeploymentEnvironment::Legacy { id, extra, .. } => {
            assert_eq!(id.as_str(), "prod");
            assert_eq!(extra["account"], json!("760097843905"));
            assert_eq!(extra["order"], json!(2));
        }
        other => panic!("expected the legacy map, got {other:?}"),
    }
}

#[test]
fn weco_deploy_2_requester_arn_with_environment_map() {
    let arn = "arn:aws:sts::123456789012:assumed-role/ci/session";
    let mut value = oldest();
    value["requested_by"] = json!(arn);
    value["deployments"][0]["requested_by"] = json!(arn);
    let release = decode(value);
    assert_eq!(release.requested_by(), &Requester::new(arn));
    assert_eq!(release.requested_by().display_name(), "session");
    assert_eq!(
        release.deployments()[0].requested_by().display_name(),
        "session"
    );
}

#[test]
fn weco_deploy_4_environment_id_and_details() {
    let value = json!({
        "release_id": "6a1c6f8e-5c1b-4f59-9d7e-3d0c5f1e2a4b",
        "project_id": "storage",
        "project_name": "Storage service",
        "date_created": "2020-10-01T12:00:00",
        "requested_by": "arn:aws:iam::123456789012:user/alice",
        "description": "No description provided",
        "images": {"archivist": "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.3f2a9c1"},
        "deployments": [{
            "date_created": "2020-10-01T12:05:00.000001",
            "description": "deploy",
            "environment": "prod",
            "requested_by": "arn:aws:iam::123456789012:user/alice",
            "details": {"archivist": {"ssm_result": {"Version": 3}, "tag_result": null, "ecs_deployments": []}}
        }],
        "last_date_deployed": "2020-10-01T12:05:00.000001"
    });
    let release = decode(value);
    let d = &release.deployments()[0];
    assert!(
        matches!(d.environment_record(), DeploymentEnvironment::Id(id) if id.as_str() == "prod")
    );
    assert_eq!(
        d.extra()["details"]["archivist"]["ssm_result"]["Version"],
        json!(3)
    );
    assert_eq!(d.date_created(), at("2020-10-01T12:05:00.000001"));
}

#[test]
fn weco_deploy_5_image_values_tag_null_and_tag_set() {
    let value = json!({
        "release_id": "b3f1e0a2-0000-4000-8000-000000000000",
        "project_id": "catalogue",
        "project_name": "Catalogue",
        "date_created": "2021-03-01T08:00:00",
        "requested_by": "arn:aws:sts::1:assumed-role/ci/s",
        "description": "x",
        "images": {
            "api": "ref.3f2a9c1",
            "gone": null,
            "tagged": ["env.prod", "ref.9b1d77e"]
        },
        "deployments": []
    });
    let release = decode(value);
    let images = release.images();
    assert_eq!(
        images[&svc("api")].uri().map(|u| u.as_str()),
        Some("ref.3f2a9c1")
    );
    assert_eq!(images[&svc("gone")], ImageEntry::Missing);
    assert!(matches!(&images[&svc("tagged")], ImageEntry::Tags(tags) if tags.len() == 2));
    assert_eq!(release.last_date_deployed(), None);
    assert!(release.deployments().is_empty());
}

#[test]
fn missing_deployments_and_unknown_attributes() {
    let value = json!({
        "release_id": "r-1",
        "project_id": "p",
        "project_name": "P",
        "date_created": "2019-07-10T10:44:02",
        "requested_by": {"id": "unknown", "name": "unknown"},
        "description": "d",
        "images": {"a": "u"},
        "release_manifest": {"anything": [1, 2]}
    });
    let release = Release::from_json(value, "r-1").expect("decodes");
    assert!(release.deployments().is_empty());
    assert_eq!(
        release.extra()["release_manifest"],
        json!({"anything": [1, 2]})
    );
    // Written back with `deployments` created as `[]`, as the old tools did.
    assert_eq!(release.to_json()["deployments"], json!([]));
}

fn malformed(change: impl FnOnce(&mut Value)) -> (String, String) {
    let mut value = oldest();
    change(&mut value);
    match Release::from_json(value, "release 0efcc940 in table wellcome-releases-example") {
        Err(Error::InvalidRecord {
            record,
            attribute,
            message,
        }) => {
            assert_eq!(
                record,
                "release 0efcc940 in table wellcome-releases-example"
            );
            (attribute, message)
        }
        other => panic!("expected InvalidRecord, got {other:?}"),
    }
}

#[test]
fn malformed_records_name_the_attribute() {
    // The RFC said "Unixtime"; no real record has one, so it is an error.
    let (attribute, message) = malformed(|v| v["date_created"] = json!(1562755442));
    assert_eq!(attribute, "date_created");
    assert!(message.contains("string"), "{message}");

    let (attribute, _) = malformed(|v| v["images"] = json!("not a map"));
    assert_eq!(attribute, "images");

    let (attribute, message) = malformed(|v| v["images"] = json!({"a/../../prod": "x"}));
    assert_eq!(attribute, "images.a/../../prod");
    assert!(message.contains("a/../../prod"), "{message}");

    let (attribute, _) = malformed(|v| v["images"]["feeding"] = json!(""));
    assert_eq!(attribute, "images.feeding");

    let (attribute, message) = malformed(|v| v["deployments"][0]["environment"] = json!("a/b"));
    assert_eq!(attribute, "deployments[0].environment");
    assert!(message.contains("environment id"), "{message}");

    let (attribute, _) = malformed(|v| v["requested_by"] = json!(42));
    assert_eq!(attribute, "requested_by");

    let (attribute, _) = malformed(|v| v["release_id"] = json!("latest"));
    assert_eq!(attribute, "release_id");

    let (attribute, _) = malformed(|v| v["last_date_deployed"] = json!("yesterday"));
    assert_eq!(attribute, "last_date_deployed");

    let (attribute, _) = malformed(|v| {
        v.as_object_mut().expect("object").remove("project_id");
    });
    assert_eq!(attribute, "project_id", "a missing field is named, not `.`");
}

#[test]
fn timestamps_in_other_zones_compare_in_utc() {
    let mut a = oldest();
    a["deployments"][0]["date_created"] = json!("2019-07-10T11:44:12.983539+01:00");
    let release = Release::from_json(a, "r").expect("decodes");
    assert_eq!(
        release.deployments()[0].date_created(),
        at("2019-07-10T10:44:12.983539")
    );
}
