//! Deployment controls (leases, freezes, blocks and their events) live in
//! the release table as items that no reader of releases sees: the real
//! `weco-deploy` 4.1.6 read commands (`show-release`, `show-deployments`),
//! both indexes queried as `release_tooling` queries them, and this crate's
//! listings, latest release and recent deployments all see exactly the
//! releases, with nothing skipped. Run by `scripts/test.sh` (the emulator
//! and weco-deploy); without them these tests fail.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use release_tracking::aws::{DynamoDbReleaseStore, SsmImageStore};
use release_tracking::store::MAX_PAGE_SIZE;
use release_tracking::{
    ControlAction, ControlStore, Environment, ImageStore, LeaseOperation, LeaseRequest,
    PageRequest, PrepareRequest, Project, ProjectId, Reason, ReleaseRef, ReleaseStore,
    ReleaseTracker, Requester, Timestamp,
};
use serde_json::Value;

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/weco_deploy.rs"]
mod weco_deploy;

use weco_deploy::{parse_table, WecoDeploy};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/deployer/alice";

type Tracker = ReleaseTracker<SsmImageStore, DynamoDbReleaseStore>;

fn ecr(service: &str, tag: &str) -> String {
    format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}")
}

fn action(reason: &str, at: Timestamp) -> ControlAction {
    ControlAction::new(
        Requester::new(ALICE),
        Reason::new(reason).expect("reason"),
        at,
    )
    .expect("action")
}

/// A project with two releases (the first deployed to stage), and every
/// kind of control item beside them: a held lease, a lease force-unlocked,
/// a freeze in place and one lifted, a block in place (of a real release)
/// and one lifted, and the events and counters of all of them.
async fn project_with_controls(prefix: &str) -> (ProjectId, Tracker, [String; 2]) {
    let project = aws_common::fresh_project(prefix);
    let manifest = Project::new(
        project.clone(),
        "control items test",
        vec![
            Environment::new("stage".parse().expect("id"), "Staging"),
            Environment::new("prod".parse().expect("id"), "Production"),
        ],
    )
    .expect("valid project");
    let tracker = ReleaseTracker::new(
        manifest,
        aws_common::image_store().await,
        aws_common::release_store(&project).await,
        Requester::new(ALICE),
    );
    for service in ["archivist", "notifier"] {
        tracker
            .publish(
                &"latest".parse().expect("label"),
                &service.parse().expect("service"),
                &ecr(service, "ref.abc123").parse().expect("uri"),
            )
            .await
            .expect("publish");
    }
    let first = tracker
        .prepare(PrepareRequest::latest().description("first"))
        .await
        .expect("prepare")
        .release;
    tracker
        .deploy(&ReleaseRef::from(first.release_id()), "stage", "to stage")
        .await
        .expect("deploy");
    let second = tracker
        .prepare(PrepareRequest::latest().description("second"))
        .await
        .expect("prepare")
        .release;

    let controls = tracker.release_store();
    let now = Timestamp::now();
    let (prod, stage) = ("prod".parse().expect("id"), "stage".parse().expect("id"));
    let request = |release: &release_tracking::ReleaseId| {
        LeaseRequest::new(
            Requester::new(ALICE),
            LeaseOperation::Deploy,
            release.clone(),
            "ci-runner-1",
            Duration::from_secs(600),
        )
        .expect("request")
    };
    controls
        .acquire_lease(&project, &prod, &request(second.release_id()), now)
        .await
        .expect("lease on prod");
    controls
        .acquire_lease(&project, &stage, &request(first.release_id()), now)
        .await
        .expect("lease on stage");
    controls
        .force_unlock(&project, &stage, &action("runner died", now))
        .await
        .expect("force unlock");
    controls
        .freeze(&project, &prod, &action("incident", now))
        .await
        .expect("freeze prod");
    controls
        .freeze(&project, &stage, &action("tests", now))
        .await
        .expect("freeze stage");
    controls
        .unfreeze(&project, &stage, &action("tests done", now))
        .await
        .expect("unfreeze stage");
    controls
        .block_release(&project, first.release_id(), &action("bad", now))
        .await
        .expect("block first");
    controls
        .block_release(&project, second.release_id(), &action("maybe bad", now))
        .await
        .expect("block second");
    controls
        .unblock_release(&project, second.release_id(), &action("fine", now))
        .await
        .expect("unblock second");
    let ids = [first, second].map(|r| r.release_id().to_string());
    (project, tracker, ids)
}

/// Every item of the table (a test may scan; nothing in the crate does).
async fn every_item(project: &ProjectId) -> Vec<BTreeMap<String, AttributeValue>> {
    let client = aws_common::dynamodb_client().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(format!("wellcome-releases-{project}"))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items().iter().map(|i| i.clone().into_iter().collect()));
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}

fn string<'a>(item: &'a BTreeMap<String, AttributeValue>, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(text)) => text,
        other => panic!("{name} is {other:?} in {item:?}"),
    }
}

/// The release ids an index query by `project_id` returns, as
/// `release_tooling` and weco-deploy query it.
async fn index_ids(project: &ProjectId, index: &str) -> BTreeSet<String> {
    let output = aws_common::dynamodb_client()
        .await
        .query()
        .table_name(format!("wellcome-releases-{project}"))
        .index_name(index)
        .key_condition_expression("project_id = :p")
        .expression_attribute_values(":p", AttributeValue::S(project.to_string()))
        .send()
        .await
        .expect("query");
    output
        .items()
        .iter()
        .map(|item| {
            let item: BTreeMap<String, AttributeValue> = item.clone().into_iter().collect();
            string(&item, "release_id").to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_items_have_no_index_attribute_and_keys_no_release_can_have() {
    let (project, _tracker, [first, second]) = project_with_controls("ctlitems").await;
    let items = every_item(&project).await;
    let (controls, releases): (Vec<_>, Vec<_>) = items
        .iter()
        .partition(|item| string(item, "release_id").starts_with('#'));
    let release_ids: BTreeSet<&str> = releases
        .iter()
        .map(|item| string(item, "release_id"))
        .collect();
    assert_eq!(
        release_ids,
        BTreeSet::from([first.as_str(), second.as_str()])
    );
    let kinds: BTreeSet<&str> = controls
        .iter()
        .map(|item| string(item, "record_type"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["block", "blocks", "event", "event_count", "freeze", "lease"]),
        "every kind of control item is in the table"
    );
    for item in &controls {
        for attribute in ["project_id", "date_created", "last_date_deployed"] {
            assert!(
                !item.contains_key(attribute),
                "control item {} has {attribute}",
                string(item, "release_id")
            );
        }
    }
    assert_eq!(
        index_ids(&project, "project_gsi").await,
        BTreeSet::from([first.clone(), second.clone()])
    );
    assert_eq!(
        index_ids(&project, "deployment_gsi").await,
        BTreeSet::from([first])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_crate_lists_only_the_releases_beside_control_items() {
    let (project, tracker, [first, second]) = project_with_controls("ctllist").await;
    let releases = tracker.release_store();
    let page = releases
        .list_releases(&project, &PageRequest::first(MAX_PAGE_SIZE).expect("limit"))
        .await
        .expect("list");
    let listed: Vec<String> = page
        .items
        .iter()
        .map(|r| r.release_id().to_string())
        .collect();
    assert_eq!(listed, [second.clone(), first.clone()]);
    assert_eq!(page.skipped, []);
    assert_eq!(page.next, None);
    let latest = releases.latest_release(&project).await.expect("latest");
    assert_eq!(
        latest.release.map(|r| r.release_id().to_string()),
        Some(second)
    );
    assert_eq!(latest.skipped, []);
    let recent = releases
        .recent_deployments(&project, None, MAX_PAGE_SIZE)
        .await
        .expect("recent deployments");
    let deployed: Vec<(String, String)> = recent
        .records
        .iter()
        .map(|r| {
            (
                r.release_id.to_string(),
                r.deployment.environment().to_string(),
            )
        })
        .collect();
    assert_eq!(deployed, [(first, "stage".to_owned())]);
    assert_eq!(recent.skipped, []);
    let history = tracker.history(None, MAX_PAGE_SIZE).await.expect("history");
    assert_eq!(history.records.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weco_deploy_read_commands_never_see_control_items() {
    let (project, _tracker, [first, second]) = project_with_controls("ctlweco").await;
    let weco = WecoDeploy::new(
        &aws_common::endpoint(),
        project.as_str(),
        aws_common::REGION,
    );
    let latest: Value = serde_json::from_str(&weco.ok(&["show-release"]))
        .expect("show-release prints one JSON object");
    assert_eq!(latest["release_id"], second, "{latest:#}");
    let shown: Value = serde_json::from_str(&weco.ok(&["show-release", &first]))
        .expect("show-release prints one JSON object");
    assert_eq!(shown["release_id"], first, "{shown:#}");
    for args in [
        vec!["show-deployments"],
        vec!["show-deployments", first.as_str()],
    ] {
        let output = weco.ok(&args);
        let rows: Vec<(String, String)> = parse_table(&output)
            .into_iter()
            .map(|row| (row["release ID"].clone(), row["environment ID"].clone()))
            .collect();
        assert_eq!(
            rows,
            [(first.clone(), "stage".to_owned())],
            "{args:?}: {output}"
        );
    }
}

/// A tracker with the DynamoDB store as its controls refuses, before any
/// write, the set-up's held lease on prod (naming it), then its freeze,
/// then the blocked release; and once they are lifted it deploys and leaves
/// no lease behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_with_controls_on_dynamodb_refuses_then_deploys() {
    let (project, tracker, [first, second]) = project_with_controls("ctltrack").await;
    let store = tracker.release_store().clone();
    let tracker = tracker.with_controls(store.clone());
    let prod: release_tracking::EnvironmentId = "prod".parse().expect("id");
    let deploy = |release: &str| {
        let release: ReleaseRef = release.parse().expect("release ref");
        let tracker = &tracker;
        async move { tracker.deploy(&release, "prod", "to prod").await }
    };
    let prod_images = || async {
        tracker
            .image_store()
            .label_images(&project, &"prod".parse().expect("label"))
            .await
            .expect("label")
            .images
            .len()
    };

    let held = store
        .lease(&project, &prod)
        .await
        .expect("lease")
        .expect("the set-up holds prod");
    match deploy(&second).await {
        Err(release_tracking::Error::EnvironmentBusy { lease }) => assert_eq!(*lease, held),
        other => panic!("expected EnvironmentBusy, got {other:?}"),
    }
    store.release_lease(&held).await.expect("give prod back");
    match deploy(&second).await {
        Err(release_tracking::Error::EnvironmentFrozen { freeze }) => {
            assert_eq!(freeze.reason.as_str(), "incident")
        }
        other => panic!("expected EnvironmentFrozen, got {other:?}"),
    }
    assert_eq!(prod_images().await, 0, "nothing was written to prod");
    assert_eq!(
        store.lease(&project, &prod).await.expect("lease"),
        None,
        "the refused deploy gave its lease back"
    );
    store
        .unfreeze(&project, &prod, &action("over", Timestamp::now()))
        .await
        .expect("unfreeze");
    match deploy(&first).await {
        Err(release_tracking::Error::ReleaseBlocked { block }) => {
            assert_eq!(block.release.as_str(), first)
        }
        other => panic!("expected ReleaseBlocked, got {other:?}"),
    }
    assert_eq!(prod_images().await, 0, "nothing was written to prod");
    let deployed = deploy(&second).await.expect("deploy");
    assert_eq!(deployed.written.len(), 2);
    assert_eq!(deployed.warnings, []);
    assert_eq!(prod_images().await, 2);
    assert_eq!(store.lease(&project, &prod).await.expect("lease"), None);
}
