//! The real `weco-deploy` 4.1.6 read commands (`show-release`,
//! `show-deployments`, `show-images`), run as child processes against the
//! emulator, on records this crate wrote: they must exit 0 and show the right
//! releases, environments and images. Run by `scripts/test.sh`, which
//! installs weco-deploy into `.venv-weco/`; without it these tests fail.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use release_tracking::aws::{DynamoDbReleaseStore, SsmImageStore};
use release_tracking::{
    Environment, PrepareRequest, Project, ProjectId, Release, ReleaseRef, ReleaseTracker, Requester,
};
use serde_json::Value;

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/weco_deploy.rs"]
mod weco_deploy;

use weco_deploy::{parse_table, WecoDeploy};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/deployer/alice";

type Tracker = ReleaseTracker<SsmImageStore, DynamoDbReleaseStore>;

/// A full ECR image URI, as CI publishes them.
fn ecr(service: &str, tag: &str) -> String {
    format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}")
}

/// A fresh project with its table provisioned by this crate, a tracker on
/// the AWS stores and weco-deploy for the same project.
async fn setup(prefix: &str) -> (ProjectId, Tracker, WecoDeploy) {
    let project = aws_common::fresh_project(prefix);
    let manifest_project = Project::new(
        project.clone(),
        "weco-deploy reader test",
        vec![
            Environment::new("stage".parse().expect("id"), "Staging"),
            Environment::new("prod".parse().expect("id"), "Production"),
        ],
    )
    .expect("valid project");
    let tracker = ReleaseTracker::new(
        manifest_project,
        aws_common::image_store().await,
        aws_common::release_store(&project).await,
        Requester::new(ALICE),
    );
    let weco = WecoDeploy::new(
        &aws_common::endpoint(),
        project.as_str(),
        aws_common::REGION,
    );
    (project, tracker, weco)
}

async fn publish(tracker: &Tracker, service: &str, uri: &str) {
    tracker
        .publish(
            &"latest".parse().expect("label"),
            &service.parse().expect("service id"),
            &uri.parse().expect("image uri"),
        )
        .await
        .unwrap_or_else(|e| panic!("publish {service}: {e}"));
}

async fn prepare(tracker: &Tracker, description: &str) -> Release {
    tracker
        .prepare(PrepareRequest::latest().description(description))
        .await
        .unwrap_or_else(|e| panic!("prepare: {e}"))
        .release
}

async fn deploy(tracker: &Tracker, release: &str, environment: &str, description: &str) {
    let reference: ReleaseRef = release.parse().expect("release id");
    tracker
        .deploy(&reference, environment, description)
        .await
        .unwrap_or_else(|e| panic!("deploy {release} to {environment}: {e}"));
}

/// `show-release`'s output: the item as JSON.
fn show_release(weco: &WecoDeploy, args: &[&str]) -> Value {
    let mut argv = vec!["show-release"];
    argv.extend_from_slice(args);
    let run = weco.run(&argv);
    assert!(run.status.success(), "expected exit 0 from {run}");
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("show-release did not print one JSON object ({e}): {run}"))
}

/// A deployment's environment id, in either shape (`"stage"` or
/// `{"id": "stage", …}`).
fn environment_id(deployment: &Value) -> Option<&str> {
    let environment = deployment.get("environment")?;
    environment
        .as_str()
        .or_else(|| environment.get("id").and_then(Value::as_str))
}

fn images_of(release: &Value) -> BTreeMap<String, String> {
    release["images"]
        .as_object()
        .unwrap_or_else(|| panic!("no images map in {release:#}"))
        .iter()
        .map(|(service, uri)| (service.clone(), uri.as_str().unwrap_or("").to_owned()))
        .collect()
}

fn expected_images(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(service, uri)| ((*service).to_owned(), (*uri).to_owned()))
        .collect()
}

/// Asserts that `show-deployments ARGS` exits 0 and prints exactly
/// `expected` rows of (release ID, environment ID, request by,
/// description), in order.
fn assert_deployments(weco: &WecoDeploy, args: &[&str], expected: &[[String; 4]]) {
    let mut argv = vec!["show-deployments"];
    argv.extend_from_slice(args);
    let run = weco.run(&argv);
    assert!(run.status.success(), "expected exit 0 from {run}");
    let rows: Vec<[String; 4]> = parse_table(&run.stdout)
        .into_iter()
        .map(|row| {
            ["release ID", "environment ID", "request by", "description"].map(|name| {
                row.get(name)
                    .cloned()
                    .unwrap_or_else(|| panic!("no column {name:?} in {run}"))
            })
        })
        .collect();
    assert_eq!(rows, expected, "{run}");
}

/// Asserts that `show-images --label LABEL` exits 0 and prints exactly the
/// services of `expected`, each with the image name (the service) and tag.
fn assert_images(weco: &WecoDeploy, label: &str, expected: &[(&str, &str)]) {
    let run = weco.run(&["show-images", "--label", label]);
    assert!(run.status.success(), "expected exit 0 from {run}");
    let rows: BTreeMap<String, [String; 2]> = parse_table(&run.stdout)
        .into_iter()
        .map(|row| {
            let [id, name, tag] = ["image ID", "label", "tag"].map(|column| {
                row.get(column)
                    .cloned()
                    .unwrap_or_else(|| panic!("no column {column:?} in {run}"))
            });
            (id, [name, tag])
        })
        .collect();
    let expected: BTreeMap<String, [String; 2]> = expected
        .iter()
        .map(|(service, tag)| ((*service).to_owned(), [*service, *tag].map(str::to_owned)))
        .collect();
    assert_eq!(rows, expected, "{run}");
}

fn row(release: &str, environment: &str, by: &str, description: &str) -> [String; 4] {
    [release, environment, by, description].map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weco_deploy_reads_releases_and_deployments_this_crate_wrote() {
    let (project, tracker, weco) = setup("weco").await;
    for service in ["archivist", "bag_verifier", "notifier"] {
        publish(&tracker, service, &ecr(service, "ref.abc123")).await;
    }
    let first = prepare(&tracker, "first release").await;
    let first_id = first.release_id().to_string();
    deploy(&tracker, &first_id, "stage", "first to stage").await;
    publish(&tracker, "notifier", &ecr("notifier", "ref.def456")).await;
    let second = prepare(&tracker, "second release").await;
    let second_id = second.release_id().to_string();

    // show-release: latest, then by id.
    let latest = show_release(&weco, &[]);
    assert_eq!(latest["release_id"], second_id, "{latest:#}");
    assert_eq!(latest["project_id"], project.as_str(), "{latest:#}");
    assert_eq!(latest["description"], "second release", "{latest:#}");
    assert_eq!(latest["requested_by"], ALICE, "{latest:#}");
    assert_eq!(
        images_of(&latest),
        expected_images(&[
            ("archivist", &ecr("archivist", "ref.abc123")),
            ("bag_verifier", &ecr("bag_verifier", "ref.abc123")),
            ("notifier", &ecr("notifier", "ref.def456")),
        ])
    );
    assert_eq!(latest["deployments"], serde_json::json!([]), "{latest:#}");

    let shown = show_release(&weco, &[&first_id]);
    assert_eq!(shown["release_id"], first_id, "{shown:#}");
    assert_eq!(
        images_of(&shown),
        expected_images(&[
            ("archivist", &ecr("archivist", "ref.abc123")),
            ("bag_verifier", &ecr("bag_verifier", "ref.abc123")),
            ("notifier", &ecr("notifier", "ref.abc123")),
        ])
    );
    let deployments = shown["deployments"]
        .as_array()
        .unwrap_or_else(|| panic!("no deployments list in {shown:#}"));
    assert_eq!(deployments.len(), 1, "{shown:#}");
    assert_eq!(environment_id(&deployments[0]), Some("stage"), "{shown:#}");
    assert_eq!(deployments[0]["description"], "first to stage", "{shown:#}");

    // show-deployments: the project's recent deployments, then one release's.
    let stage = [row(&first_id, "stage", "alice", "first to stage")];
    assert_deployments(&weco, &[], &stage);
    assert_deployments(&weco, &[&first_id], &stage);
    assert_deployments(&weco, &[&second_id], &[]);

    // show-images: CI's label and the environment's.
    assert_images(
        &weco,
        "latest",
        &[
            ("archivist", "ref.abc123"),
            ("bag_verifier", "ref.abc123"),
            ("notifier", "ref.def456"),
        ],
    );
    assert_images(
        &weco,
        "stage",
        &[
            ("archivist", "ref.abc123"),
            ("bag_verifier", "ref.abc123"),
            ("notifier", "ref.abc123"),
        ],
    );
}

/// A release item as release_tooling (and weco-deploy 1.0) wrote it:
/// `requested_by` and each deployment's `environment` are maps.
fn oldest_shape_item(project: &ProjectId, release_id: &str) -> BTreeMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let map = |pairs: &[(&str, AttributeValue)]| {
        AttributeValue::M(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    };
    let unknown = map(&[("id", s("unknown")), ("name", s("unknown"))]);
    BTreeMap::from([
        ("release_id".to_owned(), s(release_id)),
        ("project_id".to_owned(), s(project.as_str())),
        ("project_name".to_owned(), s("Storage service")),
        ("date_created".to_owned(), s("2019-07-10T10:44:02.272898")),
        ("requested_by".to_owned(), unknown.clone()),
        ("description".to_owned(), s("No description given.")),
        (
            "images".to_owned(),
            map(&[
                ("archivist", s(&ecr("archivist", "3f2a9c1"))),
                ("notifier", s(&ecr("notifier", "3f2a9c1"))),
            ]),
        ),
        (
            "deployments".to_owned(),
            AttributeValue::L(vec![map(&[
                ("date_created", s("2019-07-10T11:00:00")),
                ("description", s("to stage by release_tooling")),
                (
                    "environment",
                    map(&[("id", s("stage")), ("name", s("Staging"))]),
                ),
                ("requested_by", unknown),
            ])]),
        ),
        ("last_date_deployed".to_owned(), s("2019-07-10T11:00:00")),
    ])
}

/// Stores [`oldest_shape_item`] as another tool would (a plain `PutItem`).
async fn put_oldest_shape_item(project: &ProjectId, release_id: &str) {
    aws_common::dynamodb_client()
        .await
        .put_item()
        .table_name(format!("wellcome-releases-{project}"))
        .set_item(Some(
            oldest_shape_item(project, release_id).into_iter().collect(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put the oldest-shape item: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weco_deploy_reads_an_oldest_shape_release_after_this_crate_deploys_it() {
    let (project, tracker, weco) = setup("wecoold").await;
    let release_id = uuid::Uuid::new_v4().to_string();
    put_oldest_shape_item(&project, &release_id).await;
    deploy(&tracker, &release_id, "prod", "to prod by this crate").await;

    let shown = show_release(&weco, &[&release_id]);
    assert_eq!(shown["release_id"], release_id, "{shown:#}");
    assert_eq!(
        shown["requested_by"],
        serde_json::json!({"id": "unknown", "name": "unknown"}),
        "{shown:#}"
    );
    let deployments = shown["deployments"]
        .as_array()
        .unwrap_or_else(|| panic!("no deployments list in {shown:#}"));
    assert_eq!(deployments.len(), 2, "{shown:#}");
    assert_eq!(
        deployments[0]["environment"],
        serde_json::json!({"id": "stage", "name": "Staging"}),
        "the earlier deployment is kept as written: {shown:#}"
    );
    assert_eq!(environment_id(&deployments[1]), Some("prod"), "{shown:#}");
    assert_eq!(
        shown,
        show_release(&weco, &[]),
        "the only release is the latest"
    );

    let expected = [
        row(
            &release_id,
            "stage",
            "unknown",
            "to stage by release_tooling",
        ),
        row(&release_id, "prod", "alice", "to prod by this crate"),
    ];
    assert_deployments(&weco, &[&release_id], &expected);
    assert_deployments(&weco, &[], &expected);

    assert_images(
        &weco,
        "prod",
        &[("archivist", "3f2a9c1"), ("notifier", "3f2a9c1")],
    );

    // The appended deployment keeps the release's shape, so release_tooling's
    // readers, which dereference `environment.id` and expect a requester
    // map, still read the item.
    assert_eq!(
        deployments[1]["environment"],
        serde_json::json!({"id": "prod", "name": "Production"}),
        "{shown:#}"
    );
    assert_eq!(
        deployments[1]["requested_by"],
        serde_json::json!({"id": ALICE, "name": "alice"}),
        "{shown:#}"
    );
    let stored = aws_common::raw_release_item(&project, &release_id).await;
    assert_eq!(
        aws_common::release_tooling_problems_in_item(&stored),
        Vec::<String>::new()
    );
}

/// On a table whose newest release is in the oldest shape, a release this
/// crate makes and deploys is in that shape too: both earlier readers read
/// it (weco-deploy 4.1.6 by running it, release_tooling by the checker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_made_on_an_oldest_shape_table_is_read_by_both_earlier_readers() {
    let (project, tracker, weco) = setup("wecofollow").await;
    let old_id = uuid::Uuid::new_v4().to_string();
    put_oldest_shape_item(&project, &old_id).await;
    publish(&tracker, "archivist", &ecr("archivist", "ref.abc123")).await;
    let release = prepare(&tracker, "made by this crate").await;
    let new_id = release.release_id().to_string();
    deploy(&tracker, &new_id, "stage", "to stage by this crate").await;

    let stored = aws_common::raw_release_item(&project, &new_id).await;
    assert_eq!(
        aws_common::release_tooling_problems_in_item(&stored),
        Vec::<String>::new()
    );
    let shown = show_release(&weco, &[&new_id]);
    assert_eq!(
        shown["requested_by"],
        serde_json::json!({"id": ALICE, "name": "alice"}),
        "{shown:#}"
    );
    assert_eq!(
        shown["deployments"][0]["environment"],
        serde_json::json!({"id": "stage", "name": "Staging"}),
        "{shown:#}"
    );
    assert_deployments(
        &weco,
        &[&new_id],
        &[row(&new_id, "stage", "alice", "to stage by this crate")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weco_deploy_run_is_counted_under_its_own_access_key() {
    let (_project, tracker, weco) = setup("wecocount").await;
    publish(&tracker, "archivist", &ecr("archivist", "ref.abc123")).await;

    let run = weco.run(&["show-images", "--label", "latest"]);
    assert!(run.status.success(), "expected exit 0 from {run}");
    assert_eq!(
        parse_table(&run.stdout).len(),
        1,
        "one image at latest: {run}"
    );
    // Under its own key it asks STS who it is (once) and assumes the
    // manifest's role once per client (IAM, DynamoDB, SSM, ECR, ECS); its
    // other calls are signed with the role's keys, counted under those.
    assert_eq!(
        aws_common::operation_counts(&run.access_key),
        aws_common::counts(&[("sts:AssumeRole", 5), ("sts:GetCallerIdentity", 1)]),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_tooling_check_of_stored_items_names_numbers_and_sets() {
    let (project, _tracker, _weco) = setup("rtitem").await;
    let client = aws_common::dynamodb_client().await;
    let table = format!("wellcome-releases-{project}");
    let clean_id = uuid::Uuid::new_v4().to_string();
    let typed_id = uuid::Uuid::new_v4().to_string();
    let mut typed = oldest_shape_item(&project, &typed_id);
    typed.insert("build".to_owned(), AttributeValue::N("42".to_owned()));
    typed.insert(
        "images".to_owned(),
        AttributeValue::M(
            [(
                "archivist".to_owned(),
                AttributeValue::Ss(vec!["ref.1".to_owned(), "ref.2".to_owned()]),
            )]
            .into(),
        ),
    );
    for item in [oldest_shape_item(&project, &clean_id), typed] {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item.into_iter().collect()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put an item: {e:?}"));
    }

    let clean = aws_common::raw_release_item(&project, &clean_id).await;
    assert_eq!(
        aws_common::release_tooling_problems_in_item(&clean),
        Vec::<String>::new()
    );
    let typed = aws_common::raw_release_item(&project, &typed_id).await;
    let problems = aws_common::release_tooling_problems_in_item(&typed);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("show-release: `images.archivist` is a string set (SS)"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("show-release: `build` is the number 42"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("deploy: `images.archivist` is a list"),
        "{problems:#?}"
    );
}

/// Deployments that carry the audit trail (`deployment_id`, `kind`,
/// `replaced_release`, `changed_services`), in the current shape and in the
/// oldest: weco-deploy 4.1.6 prints them whole in `show-release` and reads
/// past them in `show-deployments`; release_tooling's key paths still hold
/// in the oldest-shape item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weco_deploy_reads_deployments_with_the_audit_trail_in_both_shapes() {
    let (project, tracker, weco) = setup("wecoaudit").await;
    for service in ["archivist", "notifier"] {
        publish(&tracker, service, &ecr(service, "ref.abc123")).await;
    }
    // Made on an empty table: the current shape.
    let current = prepare(&tracker, "current shape").await;
    let current_id = current.release_id().to_string();
    let oldest_id = uuid::Uuid::new_v4().to_string();
    put_oldest_shape_item(&project, &oldest_id).await;
    deploy(&tracker, &current_id, "stage", "current to stage").await;
    deploy(&tracker, &oldest_id, "prod", "oldest to prod").await;
    deploy(&tracker, &oldest_id, "stage", "oldest back to stage").await;

    let shown = show_release(&weco, &[&current_id]);
    let d = &shown["deployments"][0];
    assert_eq!(d["environment"], "stage", "{shown:#}");
    assert_eq!(d["kind"], "deploy", "{shown:#}");
    assert_eq!(d["replaced_release"], oldest_id.as_str(), "{shown:#}");
    assert_eq!(
        d["changed_services"],
        serde_json::json!(["archivist", "notifier"]),
        "{shown:#}"
    );
    assert!(d["deployment_id"].is_string(), "{shown:#}");

    let shown = show_release(&weco, &[&oldest_id]);
    let deployments = shown["deployments"]
        .as_array()
        .unwrap_or_else(|| panic!("no deployments list in {shown:#}"));
    assert_eq!(deployments.len(), 3, "{shown:#}");
    assert_eq!(deployments[0].get("kind"), None, "{shown:#}");
    let (to_prod, back) = (&deployments[1], &deployments[2]);
    assert_eq!(
        to_prod["environment"],
        serde_json::json!({"id": "prod", "name": "Production"}),
        "the oldest shape is kept: {shown:#}"
    );
    assert_eq!(to_prod["kind"], "deploy", "{shown:#}");
    assert_eq!(to_prod.get("replaced_release"), None, "{shown:#}");
    assert_eq!(back["replaced_release"], current_id.as_str(), "{shown:#}");
    assert_eq!(
        back["changed_services"],
        serde_json::json!(["archivist", "notifier"]),
        "{shown:#}"
    );

    // Newest deployed release first, each release's deployments in order.
    let expected = [
        row(
            &oldest_id,
            "stage",
            "unknown",
            "to stage by release_tooling",
        ),
        row(&oldest_id, "prod", "alice", "oldest to prod"),
        row(&oldest_id, "stage", "alice", "oldest back to stage"),
        row(&current_id, "stage", "alice", "current to stage"),
    ];
    assert_deployments(&weco, &[], &expected);
    assert_deployments(&weco, &[&oldest_id], &expected[..3]);
    assert_deployments(&weco, &[&current_id], &expected[3..]);

    let stored = aws_common::raw_release_item(&project, &oldest_id).await;
    assert_eq!(
        aws_common::release_tooling_problems_in_item(&stored),
        Vec::<String>::new()
    );
}

/// A manifest with promotion gates (`requires`, `soak`) is still loaded by
/// weco-deploy 4.1.6 (PyYAML's `safe_load`; environments are read by `id`
/// and `name` only), and the same file gates this crate's deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weco_deploy_loads_a_manifest_with_promotion_gates() {
    let project = aws_common::fresh_project("wecogates");
    let text = format!(
        "{project}:\n  name: weco-deploy reader test\n  role_arn: {}\n  aws_region_name: {}\n  \
         environments:\n    - id: stage\n      name: Staging\n    - id: prod\n      name: \
         Production\n      requires: [stage]\n      soak: 2h\n",
        weco_deploy::ROLE_ARN,
        aws_common::REGION
    );
    let manifest = release_tracking::Manifest::parse(&text, ".wellcome_project").expect("valid");
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let gated = manifest.select(None).expect("project").clone();
    assert!(gated.environment("prod").expect("prod").is_gated());
    let tracker = ReleaseTracker::new(
        gated,
        aws_common::image_store().await,
        aws_common::release_store(&project).await,
        Requester::new(ALICE),
    );
    let weco = WecoDeploy::with_manifest(
        &aws_common::endpoint(),
        project.as_str(),
        aws_common::REGION,
        &text,
    );
    publish(&tracker, "archivist", &ecr("archivist", "ref.abc123")).await;
    let release = prepare(&tracker, "gated").await;
    let id = release.release_id().to_string();
    deploy(&tracker, &id, "stage", "to stage").await;
    let refused = tracker
        .deploy(&release.release_id().into(), "prod", "too soon")
        .await
        .expect_err("the soak is not over");
    assert!(
        refused.to_string().contains("prod requires 2h"),
        "{refused}"
    );

    // `--verbose` prints the loaded project, gates included.
    let out = weco.ok(&["--verbose", "show-images", "--label", "stage"]);
    assert!(out.contains("'requires': ['stage']"), "{out}");
    assert!(out.contains("'soak': '2h'"), "{out}");
    assert_deployments(&weco, &[], &[row(&id, "stage", "alice", "to stage")]);
    let shown = show_release(&weco, &[&id]);
    assert_eq!(shown["release_id"], id.as_str(), "{shown:#}");
}
