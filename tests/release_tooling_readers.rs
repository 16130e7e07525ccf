//! The checker of what `release_tooling`'s readers dereference
//! (`tests/common/release_tooling.rs`): it passes the shapes that tool wrote
//! and reports each shape that would crash one of its commands, on plain
//! JSON and on the JSON form of releases this crate reads
//! (`Release::to_json`).

#[path = "common/release_tooling.rs"]
mod release_tooling;

use release_tooling::{image_value_problem, release_item_problems};
use release_tracking::Release;
use serde_json::{json, Value};

const URI: &str =
    "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.3f2a9c1";

/// A release as release_tooling wrote it: maps for `requested_by` and each
/// deployment's `environment`.
fn oldest_shape() -> Value {
    json!({
        "release_id": "0efc1bb6-4b5c-4c5e-9d62-4f1d1e1b2a3c",
        "project_id": "storage",
        "project_name": "Storage service",
        "date_created": "2019-07-10T10:44:02.272898",
        "requested_by": {"id": "unknown", "name": "unknown"},
        "description": "No description given.",
        "images": {"archivist": URI},
        "deployments": [{
            "date_created": "2019-07-10T11:00:00",
            "description": "to stage",
            "environment": {"id": "stage", "name": "Staging"},
            "requested_by": {"id": "unknown", "name": "unknown"}
        }],
        "last_date_deployed": "2019-07-10T11:00:00"
    })
}

/// `item` with `edit` applied.
fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut item = oldest_shape();
    edit(&mut item);
    item
}

/// Asserts that exactly one problem is reported and that it contains each
/// of `needles`.
fn assert_one_problem(item: &Value, needles: &[&str]) {
    let problems = release_item_problems(item);
    assert_eq!(problems.len(), 1, "{problems:#?} for {item:#}");
    for needle in needles {
        assert!(
            problems[0].contains(needle),
            "{needle:?} not in {:?}",
            problems[0]
        );
    }
}

#[test]
fn the_shape_release_tooling_wrote_has_no_problem() {
    assert_eq!(release_item_problems(&oldest_shape()), Vec::<String>::new());
    let never_deployed = with(|item| {
        item["deployments"] = json!([]);
        item.as_object_mut()
            .map(|map| map.remove("last_date_deployed"));
    });
    assert_eq!(release_item_problems(&never_deployed), Vec::<String>::new());
}

#[test]
fn a_deployment_whose_environment_is_a_string_is_reported() {
    let item = with(|item| item["deployments"][0]["environment"] = json!("stage"));
    assert_one_problem(
        &item,
        &[
            "show-deployments",
            "`deployments[0].environment`",
            "string indices must be integers",
        ],
    );
    let item = with(|item| item["deployments"][0]["environment"] = json!({"name": "Staging"}));
    assert_one_problem(&item, &["`deployments[0].environment` has no `id`"]);
}

#[test]
fn a_deployment_without_description_date_or_map_requester_is_reported() {
    let item = with(|item| {
        item["deployments"][0]
            .as_object_mut()
            .map(|d| d.remove("description"));
    });
    assert_one_problem(&item, &["`deployments[0].description` is missing"]);
    let item = with(|item| item["deployments"][0]["date_created"] = json!("10/07/2019"));
    assert_one_problem(&item, &["`deployments[0].date_created`", "ISO-8601"]);
    let item = with(|item| {
        item["deployments"][0]["requested_by"] =
            json!("arn:aws:sts::123456789012:assumed-role/ci/alice")
    });
    assert_one_problem(
        &item,
        &["`deployments[0].requested_by` is a string", "{id, name}"],
    );
    let item = with(|item| item["deployments"] = json!("none"));
    assert_one_problem(&item, &["`deployments` is a string, not a list"]);
}

#[test]
fn a_number_anywhere_is_reported_for_show_release() {
    let item = with(|item| item["deployments"][0]["details"] = json!({"ecs": [{"count": 3}]}));
    assert_one_problem(
        &item,
        &[
            "show-release",
            "`deployments[0].details.ecs[0].count`",
            "Decimal",
        ],
    );
    // A number where a string is read is reported by each reader it breaks.
    let item = with(|item| item["release_id"] = json!(7));
    let problems = release_item_problems(&item);
    assert!(
        problems.iter().any(|p| p.starts_with("show-release")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("show-deployments")),
        "{problems:#?}"
    );
}

#[test]
fn missing_release_attributes_are_reported_for_deploy() {
    for key in [
        "project_id",
        "project_name",
        "description",
        "date_created",
        "release_id",
    ] {
        let item = with(|item| {
            item.as_object_mut().map(|map| map.remove(key));
        });
        let problems = release_item_problems(&item);
        assert!(
            problems
                .iter()
                .any(|p| p == &format!("deploy: `{key}` is missing (KeyError)")),
            "{key}: {problems:#?}"
        );
    }
    assert_one_problem(
        &with(|item| item["images"] = json!([URI])),
        &["deploy: `images` is a list"],
    );
}

#[test]
fn image_values_that_are_not_strings_or_not_full_uris_are_reported() {
    let item = with(|item| item["images"]["archivist"] = Value::Null);
    assert_one_problem(&item, &["deploy: `images.archivist` is null"]);
    let item = with(|item| item["images"]["archivist"] = json!(["ref.1", "ref.2"]));
    assert_one_problem(&item, &["deploy: `images.archivist` is a list"]);

    // A bare tag: deploy finds its `:`-less value, show-images its segments.
    let problems = release_item_problems(&with(|item| {
        item["images"]["archivist"] = json!("ref.3f2a9c1")
    }));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("deploy: `images.archivist`"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("show-images (after a deploy): `images.archivist`"),
        "{problems:#?}"
    );
}

#[test]
fn show_images_reads_host_namespace_name_colon_tag() {
    assert_eq!(image_value_problem(URI), None);
    assert_eq!(
        image_value_problem("registry/ns/archivist@sha256:0123abcd"),
        None,
        "a digest splits into two parts at its one `:`"
    );
    for bad in [
        "ref.3f2a9c1",
        "registry/archivist:ref.1",
        "registry/ns/archivist",
        "registry/ns/sub/archivist:ref.1",
        "registry:5000/ns/archivist:tag:extra",
    ] {
        let problem = image_value_problem(bad).unwrap_or_else(|| panic!("{bad} passed"));
        assert!(problem.contains(&format!("{bad:?}")), "{problem}");
    }
}

#[test]
fn releases_read_by_this_crate_keep_their_shape_through_to_json() {
    let oldest = Release::from_json(oldest_shape(), "the oldest shape").expect("readable");
    assert_eq!(
        release_item_problems(&oldest.to_json()),
        Vec::<String>::new()
    );

    // The weco-deploy 4.0 shape: release_tooling cannot read its deployments.
    let current = with(|item| {
        item["requested_by"] = json!("arn:aws:sts::123456789012:assumed-role/ci/alice");
        item["deployments"][0]["environment"] = json!("stage");
        item["deployments"][0]["requested_by"] =
            json!("arn:aws:sts::123456789012:assumed-role/ci/alice");
    });
    let current = Release::from_json(current, "the 4.0 shape").expect("readable");
    let problems = release_item_problems(&current.to_json());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("`deployments[0].environment`"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("`deployments[0].requested_by`"),
        "{problems:#?}"
    );
}

#[test]
fn an_item_that_is_not_a_map_is_reported() {
    assert_eq!(
        release_item_problems(&json!([1])),
        vec!["every reader: the item is a list, not a map".to_owned()]
    );
}

/// The audit trail of a deployment this crate records: strings and a list
/// of strings.
fn audit_trail() -> Value {
    json!({
        "deployment_id": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
        "kind": "bypass",
        "replaced_release": "5d6e7f80-1a2b-4c3d-8e4f-506172839405",
        "changed_services": ["archivist", "notifier"],
        "bypass_reason": "hotfix INC-123"
    })
}

/// `item` with the audit trail added to its first deployment.
fn with_audit(mut item: Value) -> Value {
    if let (Some(deployment), Value::Object(audit)) =
        (item["deployments"][0].as_object_mut(), audit_trail())
    {
        deployment.extend(audit);
    }
    item
}

#[test]
fn the_audit_trail_adds_no_problem_in_the_oldest_or_the_current_shape() {
    // The oldest shape, which release_tooling wrote, stays readable.
    let oldest = with_audit(oldest_shape());
    assert_eq!(oldest["deployments"][0]["kind"], "bypass");
    assert_eq!(release_item_problems(&oldest), Vec::<String>::new());
    let read = Release::from_json(oldest, "the oldest shape").expect("readable");
    let written = read.to_json();
    assert_eq!(
        written["deployments"][0]["changed_services"],
        json!(["archivist", "notifier"]),
        "the audit trail survives a read and a write"
    );
    assert_eq!(release_item_problems(&written), Vec::<String>::new());

    // The current shape: the same problems with the audit trail as without
    // it (release_tooling never read this shape's deployments).
    let current = with(|item| {
        item["requested_by"] = json!("arn:aws:sts::123456789012:assumed-role/ci/alice");
        item["deployments"][0]["environment"] = json!("stage");
        item["deployments"][0]["requested_by"] =
            json!("arn:aws:sts::123456789012:assumed-role/ci/alice");
    });
    let without = release_item_problems(&current);
    assert_eq!(without.len(), 2, "{without:#?}");
    assert_eq!(release_item_problems(&with_audit(current)), without);
}

#[test]
fn a_number_in_the_audit_trail_is_reported_for_show_release() {
    let item = with(|item| item["deployments"][0]["changed_services"] = json!(["archivist", 3]));
    assert_one_problem(
        &item,
        &[
            "show-release",
            "`deployments[0].changed_services[1]`",
            "Decimal",
        ],
    );
}

/// Deployments this crate records on a release in the oldest shape carry
/// the audit trail and keep every key path release_tooling reads.
#[tokio::test]
async fn deployments_recorded_in_the_oldest_shape_with_the_audit_trail_are_readable() {
    use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
    use release_tracking::{
        Environment, PrepareRequest, Project, RecordShape, ReleaseTracker, Requester, ShapePolicy,
    };
    let project = Project::new(
        "storage".parse().expect("id"),
        "Storage service",
        vec![
            Environment::new("stage".parse().expect("id"), "Staging"),
            Environment::new("prod".parse().expect("id"), "Production"),
        ],
    )
    .expect("project");
    let tracker = ReleaseTracker::new(
        project,
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("arn:aws:sts::123456789012:assumed-role/ci/alice"),
    )
    .with_record_shape(ShapePolicy::Always(RecordShape::ReleaseTooling));
    tracker
        .publish(
            &"latest".parse().expect("label"),
            &"archivist".parse().expect("service"),
            &URI.parse().expect("uri"),
        )
        .await
        .expect("publish");
    let release = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    let id = release.release_id().into();
    tracker.deploy(&id, "stage", "one").await.expect("deploy");
    let deployed = tracker.deploy(&id, "stage", "two").await.expect("again");
    let item = deployed.release.to_json();
    let second = &item["deployments"][1];
    assert_eq!(second["kind"], "deploy", "{item:#}");
    assert_eq!(second["replaced_release"], release.release_id().as_str());
    assert_eq!(second["changed_services"], json!([]), "{item:#}");
    assert!(second["deployment_id"].is_string(), "{item:#}");
    assert_eq!(release_item_problems(&item), Vec::<String>::new());
}
