//! Every release-item shape that earlier tools wrote decodes, keeps its
//! shape when written back, and malformed items give errors naming the
//! record and attribute.

use release_tracking::conformance::legacy_records;
use release_tracking::{
    DeploymentEnvironment, Error, ImageEntry, ProjectId, Release, Requester, ServiceId, Timestamp,
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

/// A record of the crate's one catalogue of legacy shapes.
fn legacy(name: &str) -> Value {
    let project: ProjectId = "example".parse().expect("project id");
    legacy_records(&project)
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no legacy record {name}"))
        .record
}

/// The oldest shape: release_tooling and weco-deploy 1.0.
fn oldest() -> Value {
    legacy("release_tooling")
}

#[test]
fn every_legacy_shape_decodes_and_is_written_back_as_it_was() {
    let project: ProjectId = "example".parse().expect("project id");
    let records = legacy_records(&project);
    assert!(records.len() >= 5, "one record per shape");
    for record in records {
        let release = decode(record.record.clone());
        assert_eq!(release.project_id(), &project, "{}", record.name);
    }
}

#[test]
fn oldest_shape_maps_for_requester_and_environment() {
    let release = decode(oldest());
    assert_eq!(
        release.release_id().as_str(),
        "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    );
    assert_eq!(release.project_name(), "Storage service");
    assert_eq!(release.date_created(), at("2019-07-10T10:44:02.272898"));
    assert_eq!(
        release.requested_by(),
        &Requester::Legacy {
            id: "unknown".into(),
            name: "unknown".into()
        }
    );
    assert_eq!(
        release.images()[&svc("bags_api")].uri().map(|u| u.as_str()),
        Some("http://example.com/images/bags_api/00001")
    );
    let d = &release.deployments()[0];
    assert_eq!(d.environment().as_str(), "stage");
    assert!(matches!(
        d.environment_record(),
        DeploymentEnvironment::Legacy { name: Some(name), extra, .. }
            if name == "Staging" && extra["aws_region_name"] == "eu-west-1"
    ));
    assert_eq!(d.requested_by().display_name(), "Alice");
    assert_eq!(
        release.last_date_deployed(),
        Some(at("2019-07-10T11:00:00"))
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
    let release = decode(legacy("weco-deploy 2"));
    let arn = "arn:aws:sts::123456789012:assumed-role/storage-ci/alice";
    assert_eq!(release.requested_by(), &Requester::new(arn));
    assert_eq!(release.requested_by().display_name(), "alice");
    let d = &release.deployments()[1];
    assert_eq!(d.requested_by().display_name(), "bob");
    assert!(matches!(
        d.environment_record(),
        DeploymentEnvironment::Legacy { id, name: Some(name), .. }
            if id.as_str() == "prod" && name == "Production"
    ));
    assert_eq!(d.date_created(), at("2020-03-03T09:00:00.5"));
}

#[test]
fn weco_deploy_4_environment_id_details_tags_and_nulls() {
    let release = decode(legacy("weco-deploy 4"));
    let d = &release.deployments()[0];
    assert!(
        matches!(d.environment_record(), DeploymentEnvironment::Id(id) if id.as_str() == "stage")
    );
    assert_eq!(
        d.extra()["details"]["archivist"]["ssm_result"]["new_image"],
        json!("ref.3f2a9c1")
    );
    assert_eq!(d.date_created(), at("2021-05-20T08:05:00.123456"));
    let images = release.images();
    assert_eq!(
        images[&svc("archivist")].uri().map(|u| u.as_str()),
        Some("ref.3f2a9c1")
    );
    assert_eq!(images[&svc("notifier")], ImageEntry::Missing);
}

#[test]
fn images_as_tag_sets() {
    let release = decode(legacy("tag sets"));
    assert!(matches!(
        &release.images()[&svc("archivist")],
        ImageEntry::Tags(tags) if tags.len() == 2
    ));
    assert_eq!(release.last_date_deployed(), None);
    assert!(release.deployments().is_empty());
}

#[test]
fn missing_deployments_and_unknown_attributes() {
    let mut value = legacy("never deployed");
    value.as_object_mut().expect("object").remove("deployments");
    let release = Release::from_json(value, "never deployed").expect("decodes");
    assert!(release.deployments().is_empty());
    assert_eq!(
        release.extra()["release_manifest"],
        json!({"archivist": {"digest": "sha256:0123abcd"}})
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

    let (attribute, _) = malformed(|v| v["images"]["bagger"] = json!(""));
    assert_eq!(attribute, "images.bagger");

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
