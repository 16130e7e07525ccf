//! Workflows on tables and labels that other tools share: records this
//! crate cannot decode, record shapes older readers expect, and image values
//! that Terraform cannot use.

use serde_json::{json, Value};

use release_tracking::{
    Error, Manifest, Project, RecordShape, ReleaseRef, ReleaseTracker, Requester, ShapePolicy,
    Warning,
};

use super::{
    counting_ids, label_map, pairs, prepare_latest, publish_three, stepping_clock, tracker, Stores,
    Tracker, ALICE,
};

/// A tracker for `project` on `stores`, with the suite's clock and ids.
fn tracker_for(stores: &Stores, project: Project) -> Tracker {
    ReleaseTracker::new(
        project,
        stores.images.clone(),
        stores.releases.clone(),
        Requester::new(ALICE),
    )
    .with_clock(stepping_clock())
    .with_id_generator(counting_ids())
}

/// A release record as the oldest tools wrote it: requester and
/// environments as `{id, name}` maps.
fn oldest_record(stores: &Stores, id: &str, created: &str) -> Value {
    json!({
        "release_id": id,
        "project_id": stores.project.as_str(),
        "project_name": "Storage service",
        "date_created": created,
        "requested_by": {"id": "unknown", "name": "unknown"},
        "description": "made by release_tooling",
        "images": {"archivist": "ecr.example.com/archivist:ref.old"},
        "deployments": [{
            "date_created": created,
            "description": "first",
            "environment": {"id": "stage", "name": "Staging"},
            "requested_by": {"id": "unknown", "name": "unknown"}
        }],
        "last_date_deployed": created
    })
}

fn skipped_ids(warnings: &[Warning]) -> Vec<String> {
    warnings
        .iter()
        .filter_map(|w| match w {
            Warning::SkippedRecord(s) => s.release_id.clone(),
            _ => None,
        })
        .collect()
}

/// The item weco-deploy 4.1.6's `prepare` needs on an empty table (no
/// `requested_by`), and an item whose deployment's environment is a number:
/// both are passed over by every listing, named, and the rest still read.
pub async fn unreadable_records_are_skipped_and_reported(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let first = prepare_latest(&t).await;
    t.deploy(&first.release_id().into(), "stage", "first")
        .await
        .expect("deploy first");
    let second = prepare_latest(&t).await;
    let project = stores.project.as_str();
    (stores.put_raw)(json!({
        "release_id": "hand-made", "project_id": project,
        "date_created": "2030-01-01T00:00:00", "images": {}
    }))
    .await;
    (stores.put_raw)(json!({
        "release_id": "bad-deployment", "project_id": project,
        "date_created": "2020-01-01T00:00:00", "requested_by": ALICE, "images": {},
        "deployments": [{"date_created": "2030-01-02T00:00:00", "environment": 7,
                         "requested_by": ALICE, "description": "x"}],
        "last_date_deployed": "2030-01-02T00:00:00"
    }))
    .await;

    let page = t
        .releases(&release_tracking::PageRequest::first(10).expect("limit"))
        .await
        .expect("listing with unreadable records");
    let listed: Vec<_> = page.items.iter().map(|r| r.release_id().clone()).collect();
    assert_eq!(
        listed,
        [second.release_id().clone(), first.release_id().clone()]
    );
    let mut skipped: Vec<_> = page
        .skipped
        .iter()
        .map(|s| {
            (
                s.release_id.clone().unwrap_or_default(),
                s.attribute.clone(),
            )
        })
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            (
                "bad-deployment".to_owned(),
                "deployments[0].environment".to_owned()
            ),
            ("hand-made".to_owned(), "requested_by".to_owned()),
        ]
    );

    // `latest` is the newest readable release, and the newer unreadable one
    // is named, never chosen silently.
    let latest = t.release(&ReleaseRef::Latest).await.expect("latest");
    assert_eq!(latest.release.release_id(), second.release_id());
    assert_eq!(skipped_ids(&latest.warnings), ["hand-made"]);
    let shown = latest.warnings[0].to_string();
    assert!(
        shown.contains("hand-made") && shown.contains("requested_by"),
        "{shown}"
    );

    let history = t.history(None, 10).await.expect("history");
    let releases: Vec<_> = history.records.iter().map(|r| &r.release_id).collect();
    assert_eq!(releases, [first.release_id()]);
    let skipped: Vec<_> = history
        .skipped
        .iter()
        .map(|s| s.release_id.clone())
        .collect();
    assert_eq!(skipped, [Some("bad-deployment".to_owned())]);

    let status = t.current("stage").await.expect("current");
    let current = status.current.expect("stage has a deployment");
    assert_eq!(current.release.release_id(), first.release_id());
    assert_eq!(skipped_ids(&status.warnings), ["bad-deployment"]);

    let deployed = t
        .deploy(&ReleaseRef::Latest, "prod", "latest to prod")
        .await
        .expect("deploy latest past an unreadable record");
    assert_eq!(deployed.release.release_id(), second.release_id());
    // Passed over finding `latest`, then finding the release current in
    // prod (the unreadable item could hold a deployment there).
    assert_eq!(
        skipped_ids(&deployed.warnings),
        ["hand-made", "bad-deployment"]
    );

    let prepared = t
        .prepare(release_tracking::PrepareRequest::latest())
        .await
        .expect("prepare");
    assert_eq!(skipped_ids(&prepared.warnings), ["hand-made"]);
}

/// Reading an unreadable record by id is an error naming the release and
/// the missing field (not `.`), and a deploy of it writes nothing.
pub async fn an_unreadable_record_read_by_id_names_the_field(stores: Stores) {
    let t = tracker(&stores);
    (stores.put_raw)(json!({
        "release_id": "hand-made", "project_id": stores.project.as_str(),
        "date_created": "2030-01-01T00:00:00", "images": {"archivist": "ecr.example.com/a:1"}
    }))
    .await;
    let id: ReleaseRef = "hand-made".parse().expect("release ref");
    for err in [
        t.release(&id).await.map(|_| ()).unwrap_err(),
        t.deploy(&id, "stage", "x").await.map(|_| ()).unwrap_err(),
    ] {
        match &err {
            Error::InvalidRecord {
                record, attribute, ..
            } => {
                assert!(record.contains("hand-made"), "{err}");
                assert_eq!(attribute, "requested_by", "{err}");
            }
            other => panic!("expected InvalidRecord, got {other}"),
        }
    }
    assert!(label_map(&t, "stage").await.is_empty());
}

/// A deployment appended to a release takes the shape of that release's
/// earlier deployments, whichever generation wrote them.
pub async fn deployments_keep_their_release_shape(stores: Stores) {
    let t = tracker(&stores);
    let created = "2019-07-10T10:44:02.272898";
    let mut weco2 = oldest_record(&stores, "weco-deploy-2", created);
    weco2["requested_by"] = json!(ALICE);
    weco2["deployments"][0]["requested_by"] = json!(ALICE);
    let mut weco4 = oldest_record(&stores, "weco-deploy-4", created);
    weco4["requested_by"] = json!(ALICE);
    weco4["deployments"][0]["requested_by"] = json!(ALICE);
    weco4["deployments"][0]["environment"] = json!("stage");
    let mut undeployed_oldest = oldest_record(&stores, "never-deployed", created);
    undeployed_oldest["deployments"] = json!([]);
    undeployed_oldest
        .as_object_mut()
        .expect("object")
        .remove("last_date_deployed");
    for record in [
        oldest_record(&stores, "oldest", created),
        weco2,
        weco4,
        undeployed_oldest,
    ] {
        (stores.put_raw)(record).await;
    }
    let prod_map = json!({"id": "prod", "name": "Production"});
    let alice_map = json!({"id": ALICE, "name": "alice"});
    for (id, environment, requested_by) in [
        ("oldest", prod_map.clone(), alice_map.clone()),
        ("weco-deploy-2", prod_map.clone(), json!(ALICE)),
        ("weco-deploy-4", json!("prod"), json!(ALICE)),
        ("never-deployed", prod_map.clone(), alice_map.clone()),
    ] {
        let deployed = t
            .deploy(&id.parse().expect("id"), "prod", "to prod")
            .await
            .unwrap_or_else(|e| panic!("deploy {id}: {e}"));
        let record = deployed.release.to_json();
        let newest = record["deployments"]
            .as_array()
            .and_then(|d| d.last())
            .expect("a deployment");
        assert_eq!(newest["environment"], environment, "{id}: {newest}");
        assert_eq!(newest["requested_by"], requested_by, "{id}: {newest}");
        // What the store holds, read back, is the same.
        let stored = t.release(&id.parse().expect("id")).await.expect("read");
        assert_eq!(stored.release.to_json(), record, "{id}");
    }
}

/// A new release takes the requester shape of the newest release in the
/// table; an empty table gets the current shape.
pub async fn new_releases_follow_the_newest_release_shape(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let on_empty = prepare_latest(&t).await;
    assert_eq!(on_empty.to_json()["requested_by"], json!(ALICE));

    (stores.put_raw)(oldest_record(&stores, "oldest", "2030-01-01T00:00:00")).await;
    let following = prepare_latest(&t).await;
    assert_eq!(
        following.to_json()["requested_by"],
        json!({"id": ALICE, "name": "alice"})
    );
    let update = t
        .update(release_tracking::UpdateRequest::new(
            ReleaseRef::Latest,
            release_tracking::Label::latest(),
            [super::svc("notifier")],
        ))
        .await
        .expect("update");
    assert_eq!(
        update.release.to_json()["requested_by"],
        json!({"id": ALICE, "name": "alice"})
    );
}

/// `ShapePolicy::Always` writes its shape whatever the table holds.
pub async fn a_forced_shape_is_always_written(stores: Stores) {
    (stores.put_raw)(oldest_record(&stores, "oldest", "2030-01-01T00:00:00")).await;
    let current = tracker(&stores).with_record_shape(ShapePolicy::Always(RecordShape::WecoDeploy4));
    publish_three(&current).await;
    let release = prepare_latest(&current).await;
    assert_eq!(release.to_json()["requested_by"], json!(ALICE));
    let deployed = current
        .deploy(&"oldest".parse().expect("id"), "prod", "x")
        .await
        .expect("deploy");
    let record = deployed.release.to_json();
    assert_eq!(record["deployments"][1]["environment"], json!("prod"));

    let oldest =
        tracker(&stores).with_record_shape(ShapePolicy::Always(RecordShape::ReleaseTooling));
    let deployed = oldest
        .deploy(&release.release_id().into(), "stage", "x")
        .await
        .expect("deploy");
    let record = deployed.release.to_json();
    assert_eq!(
        record["deployments"][0]["environment"],
        json!({"id": "stage", "name": "Staging"})
    );
    assert_eq!(
        record["deployments"][0]["requested_by"],
        json!({"id": ALICE, "name": "alice"})
    );
}

fn release_with_a_bare_tag(stores: &Stores) -> Value {
    json!({
        "release_id": "bare", "project_id": stores.project.as_str(),
        "project_name": "Storage service", "date_created": "2021-01-01T00:00:00",
        "requested_by": ALICE, "description": "weco-deploy 5.6.5",
        "images": {"archivist": "ref.3f2a9c1", "bag-register": "ref.9b1d77e",
                   "notifier": "ecr.example.com/notifier:ref.ccc"},
        "deployments": []
    })
}

/// A bare tag (as weco-deploy 5.6.5+ recorded) is not written where
/// Terraform reads an image URI: the deploy is refused before any write,
/// naming the service and the fix.
pub async fn bare_tags_are_undeployable_and_nothing_is_written(stores: Stores) {
    let t = tracker(&stores);
    (stores.put_raw)(release_with_a_bare_tag(&stores)).await;
    let id: ReleaseRef = "bare".parse().expect("id");
    for err in [
        t.plan(&id, "stage").await.map(|_| ()).unwrap_err(),
        t.deploy(&id, "stage", "x").await.map(|_| ()).unwrap_err(),
    ] {
        match &err {
            Error::UndeployableRelease { services, fix, .. } => {
                assert_eq!(
                    services,
                    &[super::svc("archivist"), super::svc("bag-register")],
                    "{err}"
                );
                assert!(fix.contains("image_repositories"), "{err}");
            }
            other => panic!("expected UndeployableRelease, got {other}"),
        }
        assert!(err.to_string().contains("ref.3f2a9c1"), "{err}");
    }
    assert!(label_map(&t, "stage").await.is_empty());
    let stored = t.release(&id).await.expect("read").release;
    assert!(stored.deployments().is_empty());
}

/// With the repository, account, region and namespace in the manifest, a
/// bare tag resolves to the full ECR reference, which the plan shows and the
/// deploy writes.
pub async fn bare_tags_resolve_through_the_manifest(stores: Stores) {
    let manifest = Manifest::parse(
        &format!(
            r#"{{"{}": {{"name": "Storage service", "account_id": "123456789012",
                "aws_region_name": "eu-west-1", "namespace": "uk.ac.wellcome",
                "image_repositories": [{{"id": "archivist", "services": ["archivist"]}},
                    {{"id": "registrar", "services": ["bag-register"],
                      "account_id": "999999999999", "namespace": "other"}}],
                "environments": [{{"id": "stage", "name": "Staging"}}]}}}}"#,
            stores.project
        ),
        "resolving.wellcome_project",
    )
    .expect("manifest");
    let t = tracker_for(&stores, manifest.select(None).expect("project").clone());
    (stores.put_raw)(release_with_a_bare_tag(&stores)).await;
    let id: ReleaseRef = "bare".parse().expect("id");
    let resolved =
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.3f2a9c1";
    let plan = t.plan(&id, "stage").await.expect("plan");
    let archivist = plan
        .changes
        .iter()
        .find(|c| c.service.as_str() == "archivist")
        .expect("archivist is written");
    assert_eq!(archivist.image.as_str(), resolved);
    assert_eq!(
        archivist.resolved_from.as_ref().map(|t| t.as_str()),
        Some("ref.3f2a9c1")
    );
    let shown = plan.to_string();
    assert!(
        shown.contains(resolved) && shown.contains("resolved from tag ref.3f2a9c1"),
        "{shown}"
    );
    t.execute(plan, "resolved").await.expect("deploy");
    assert_eq!(
        label_map(&t, "stage").await,
        pairs(&[
            ("archivist", resolved),
            (
                "bag-register",
                "999999999999.dkr.ecr.eu-west-1.amazonaws.com/other/registrar:ref.9b1d77e"
            ),
            ("notifier", "ecr.example.com/notifier:ref.ccc"),
        ])
    );
}

/// A plan of `latest` executed after a newer release was made deploys the
/// release the plan showed.
pub async fn execute_deploys_the_planned_release_even_if_latest_moved(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let planned = prepare_latest(&t).await;
    let plan = t.plan(&ReleaseRef::Latest, "stage").await.expect("plan");
    assert_eq!(plan.release().release_id(), planned.release_id());
    super::publish(
        &t,
        "latest",
        "notifier",
        "ecr.example.com/notifier:ref.newer",
    )
    .await;
    let newer = prepare_latest(&t).await;
    assert_ne!(newer.release_id(), planned.release_id());
    let deployed = t.execute(plan, "as planned").await.expect("execute");
    assert_eq!(deployed.release.release_id(), planned.release_id());
    assert!(label_map(&t, "stage").await.contains(&(
        "notifier".to_owned(),
        "ecr.example.com/notifier:ref.ccc".to_owned()
    )));
}
