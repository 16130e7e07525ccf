//! Workflow tests written once, over any pair of stores. `tests/workflows.rs`
//! runs them on the in-memory stores and `tests/aws_workflows.rs` on the AWS
//! stores against the emulator.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

mod promotion;
mod shared_tables;
#[allow(unused_imports)] // used by the test files that expand `workflow_tests!`
pub use promotion::*;
#[allow(unused_imports)] // used by the test files that expand `workflow_tests!`
pub use shared_tables::*;

use release_tracking::{
    Environment, Error, ImageEntry, ImageSource, ImageStore, ImageUri, Label, LabelRead,
    PageRequest, PrepareRequest, Project, ProjectId, Release, ReleaseId, ReleaseRef, ReleaseStore,
    ReleaseTracker, Requester, ServiceId, Timestamp, UpdateRequest,
};

/// Writes a release record as given (as another tool would), bypassing
/// every check, so records this crate cannot decode can be stored.
pub type RawWriter =
    Arc<dyn Fn(serde_json::Value) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// A pair of stores and a project id that is unused in both.
pub struct Stores {
    pub images: Arc<dyn ImageStore>,
    pub releases: Arc<dyn ReleaseStore>,
    pub project: ProjectId,
    pub put_raw: RawWriter,
}

pub type Tracker = ReleaseTracker<Arc<dyn ImageStore>, Arc<dyn ReleaseStore>>;

pub const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/deployer/alice";

pub fn start_time() -> Timestamp {
    "2024-03-01T09:00:00".parse().expect("valid timestamp")
}

/// A clock that moves one second per reading, from [`start_time`].
pub fn stepping_clock() -> impl Fn() -> Timestamp + Send + Sync {
    let step = AtomicI64::new(0);
    move || start_time().add_micros(step.fetch_add(1, Ordering::SeqCst) * 1_000_000)
}

/// Ids `00000000-0000-4000-8000-000000000001`, `…002`, ….
pub fn counting_ids() -> impl Fn() -> ReleaseId + Send + Sync {
    let next = AtomicU64::new(1);
    move || {
        let n = next.fetch_add(1, Ordering::SeqCst);
        format!("00000000-0000-4000-8000-{n:012}")
            .parse()
            .expect("valid id")
    }
}

pub fn project(id: &ProjectId) -> Project {
    Project::new(
        id.clone(),
        "Storage service",
        vec![
            Environment::new(env("stage"), "Staging"),
            Environment::new(env("prod"), "Production"),
        ],
    )
    .expect("valid project")
}

pub fn tracker(stores: &Stores) -> Tracker {
    ReleaseTracker::new(
        project(&stores.project),
        stores.images.clone(),
        stores.releases.clone(),
        Requester::new(ALICE),
    )
    .with_clock(stepping_clock())
    .with_id_generator(counting_ids())
}

pub fn svc(s: &str) -> ServiceId {
    s.parse().expect("valid service id")
}

pub fn label(s: &str) -> Label {
    s.parse().expect("valid label")
}

pub fn env(s: &str) -> release_tracking::EnvironmentId {
    s.parse().expect("valid environment id")
}

pub fn uri(s: &str) -> ImageUri {
    s.parse().expect("valid uri")
}

pub fn entry(s: &str) -> ImageEntry {
    ImageEntry::Uri(uri(s))
}

/// Prepares a release of everything at `latest`.
pub async fn prepare_latest(t: &Tracker) -> Release {
    t.prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release
}

/// Publishes one image at `l`.
pub async fn publish(t: &Tracker, l: &str, service: &str, image: &str) {
    t.publish(&label(l), &svc(service), &uri(image))
        .await
        .expect("publish");
}

/// Publishes `archivist`, `bag-register` and `notifier` at `latest`.
pub async fn publish_three(t: &Tracker) {
    for (service, image) in [
        ("archivist", "ecr.example.com/archivist:ref.aaa"),
        ("bag-register", "ecr.example.com/bag-register:ref.bbb"),
        ("notifier", "ecr.example.com/notifier:ref.ccc"),
    ] {
        t.publish(&Label::latest(), &svc(service), &uri(image))
            .await
            .expect("publish");
    }
}

async fn label_map(t: &Tracker, l: &str) -> Vec<(String, String)> {
    t.label_images(&label(l))
        .await
        .expect("read label")
        .images
        .into_iter()
        .map(|(s, u)| (s.into_string(), u.into_string()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub async fn prepare_freezes_the_label(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let prepared = t
        .prepare(PrepareRequest::latest().description("weekly release"))
        .await
        .expect("prepare");
    let release = &prepared.release;
    assert!(prepared.warnings.is_empty());
    assert_eq!(
        release.release_id().as_str(),
        "00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(release.project_id(), &stores.project);
    assert_eq!(release.project_name(), "Storage service");
    assert_eq!(release.description(), "weekly release");
    assert_eq!(release.requested_by().id(), ALICE);
    assert_eq!(release.requested_by().display_name(), "alice");
    assert_eq!(release.date_created(), start_time());
    assert!(release.deployments().is_empty());
    assert_eq!(release.last_date_deployed(), None);
    assert_eq!(release.images().len(), 3);
    assert_eq!(
        release.images()[&svc("notifier")],
        entry("ecr.example.com/notifier:ref.ccc")
    );

    // Stored as returned, and frozen: later builds do not change it.
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.ddd").await;
    let stored = t
        .release(&release.release_id().into())
        .await
        .expect("get")
        .release;
    assert_eq!(&stored, release);
    assert_eq!(
        &t.release(&ReleaseRef::Latest)
            .await
            .expect("latest")
            .release,
        release
    );
}

pub async fn prepare_without_description_uses_the_default(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let prepared = t.prepare(PrepareRequest::latest()).await.expect("prepare");
    assert_eq!(prepared.release.description(), "No description provided");
}

pub async fn prepare_from_an_empty_label_is_an_error(stores: Stores) {
    let t = tracker(&stores);
    let err = t.prepare(PrepareRequest::latest()).await.unwrap_err();
    match &err {
        Error::EmptyLabel {
            project,
            label,
            location,
        } => {
            assert_eq!(project, &stores.project);
            assert_eq!(label.as_str(), "latest");
            // The image store says where it looked, in its own words.
            assert_eq!(
                location,
                &t.image_store().label_location(&stores.project, label)
            );
            assert!(err.to_string().contains(location.as_str()), "{err}");
        }
        other => panic!("expected EmptyLabel, got {other:?}"),
    }
    assert!(err.to_string().contains("latest"));
    assert!(matches!(
        t.release(&ReleaseRef::Latest).await,
        Err(Error::NoReleases { .. })
    ));
}

pub async fn prepare_with_overrides(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    publish(
        &t,
        "hotfix",
        "archivist",
        "ecr.example.com/archivist:ref.fix",
    )
    .await;
    let prepared = t
        .prepare(
            PrepareRequest::latest()
                .with_image(svc("archivist"), ImageSource::Label(label("hotfix")))
                .with_image(
                    svc("notifier"),
                    ImageSource::Uri(uri("ecr.example.com/notifier:pinned")),
                ),
        )
        .await
        .expect("prepare");
    let images = prepared.release.images();
    assert_eq!(
        images[&svc("archivist")],
        entry("ecr.example.com/archivist:ref.fix")
    );
    assert_eq!(
        images[&svc("bag-register")],
        entry("ecr.example.com/bag-register:ref.bbb")
    );
    assert_eq!(
        images[&svc("notifier")],
        entry("ecr.example.com/notifier:pinned")
    );
}

pub async fn prepare_override_errors_create_nothing(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    // A service the base label lacks (a typo, say).
    let err = t
        .prepare(PrepareRequest::latest().with_image(svc("archivst"), ImageSource::Uri(uri("x"))))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingImage { service, label, .. } if service.as_str() == "archivst" && label.as_str() == "latest"),
        "{err:?}"
    );
    // A label that lacks the service.
    let err = t
        .prepare(
            PrepareRequest::latest()
                .with_image(svc("archivist"), ImageSource::Label(label("hotfix"))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingImage { label, .. } if label.as_str() == "hotfix"),
        "{err:?}"
    );
    assert!(matches!(
        t.release(&ReleaseRef::Latest).await,
        Err(Error::NoReleases { .. })
    ));
}

pub async fn update_takes_chosen_services_from_a_label(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let base = prepare_latest(&t).await;
    publish(
        &t,
        "latest",
        "archivist",
        "ecr.example.com/archivist:ref.new",
    )
    .await;
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.new").await;
    let updated = t
        .update(
            UpdateRequest::new(
                base.release_id().into(),
                Label::latest(),
                [svc("archivist")],
            )
            .description("archivist fix"),
        )
        .await
        .expect("update")
        .release;
    assert_ne!(updated.release_id(), base.release_id());
    assert_eq!(updated.description(), "archivist fix");
    assert_eq!(
        updated.images()[&svc("archivist")],
        entry("ecr.example.com/archivist:ref.new")
    );
    // Not chosen: kept from the base even though latest moved on.
    assert_eq!(
        updated.images()[&svc("notifier")],
        entry("ecr.example.com/notifier:ref.ccc")
    );
    assert_eq!(updated.images().len(), 3);
    let diff = t
        .diff(&base.release_id().into(), &updated.release_id().into())
        .await
        .expect("diff");
    assert_eq!(diff.changed.len(), 1);
    assert_eq!(diff.changed[0].service, svc("archivist"));
}

pub async fn update_errors(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let base = prepare_latest(&t).await;
    let err = t
        .update(UpdateRequest::new(
            ReleaseRef::Latest,
            label("stage"),
            [svc("archivist")],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingImage { service, label, .. } if service.as_str() == "archivist" && label.as_str() == "stage"),
        "{err:?}"
    );
    let err = t
        .update(UpdateRequest::new(ReleaseRef::Latest, Label::latest(), []))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                argument: "services",
                ..
            }
        ),
        "{err:?}"
    );
    let missing: ReleaseId = "no-such-release".parse().expect("id");
    let err = t
        .update(UpdateRequest::new(
            missing.clone().into(),
            Label::latest(),
            [svc("archivist")],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReleaseNotFound { release, .. } if release == &missing),
        "{err:?}"
    );
    // Nothing but the base was created.
    let page = t
        .releases(&PageRequest::first(10).expect("page"))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].release_id(), base.release_id());
}

pub async fn deploy_writes_the_label_and_records_the_deployment(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let release = prepare_latest(&t).await;
    let id: ReleaseRef = release.release_id().into();
    let deployed = t
        .deploy(&id, "stage", "first deploy")
        .await
        .expect("deploy");
    assert_eq!(deployed.written.len(), 3);
    assert!(deployed.unchanged.is_empty());
    assert_eq!(
        label_map(&t, "stage").await,
        pairs(&[
            ("archivist", "ecr.example.com/archivist:ref.aaa"),
            ("bag-register", "ecr.example.com/bag-register:ref.bbb"),
            ("notifier", "ecr.example.com/notifier:ref.ccc"),
        ])
    );
    let d = &deployed.deployment;
    assert_eq!(d.environment().as_str(), "stage");
    assert_eq!(d.description(), "first deploy");
    assert_eq!(d.requested_by().id(), ALICE);
    assert_eq!(deployed.release.deployments(), std::slice::from_ref(d));
    assert_eq!(
        deployed.release.last_date_deployed(),
        Some(d.date_created())
    );
    assert_eq!(t.release(&id).await.expect("get").release, deployed.release);

    // Again: nothing to write, a second deployment recorded.
    let again = t.deploy(&id, "stage", "").await.expect("redeploy");
    assert!(again.written.is_empty());
    assert_eq!(again.unchanged.len(), 3);
    assert_eq!(again.release.deployments().len(), 2);
    assert_eq!(again.deployment.description(), "No description provided");
    assert!(again.release.last_date_deployed() > deployed.release.last_date_deployed());
}

pub async fn deploy_to_an_unknown_environment_writes_nothing(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let release = prepare_latest(&t).await;
    let err = t
        .deploy(&release.release_id().into(), "prdo", "typo")
        .await
        .unwrap_err();
    match &err {
        Error::UnknownEnvironment {
            environment, known, ..
        } => {
            assert_eq!(environment, "prdo");
            assert_eq!(known, &vec![env("stage"), env("prod")]);
        }
        other => panic!("expected UnknownEnvironment, got {other:?}"),
    }
    assert!(err.to_string().contains("stage, prod"), "{err}");
    assert!(label_map(&t, "prdo").await.is_empty());
    let stored = t
        .release(&release.release_id().into())
        .await
        .expect("get")
        .release;
    assert!(stored.deployments().is_empty());

    // release_deploy checks the environment before making the release.
    let err = t
        .release_deploy(PrepareRequest::latest(), "nowhere", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEnvironment { .. }), "{err:?}");
    let page = t
        .releases(&PageRequest::first(10).expect("page"))
        .await
        .expect("list");
    assert_eq!(
        page.items.len(),
        1,
        "no release made for an unknown environment"
    );
}

pub async fn deploy_of_a_missing_release_is_an_error(stores: Stores) {
    let t = tracker(&stores);
    let err = t
        .deploy(&ReleaseRef::Latest, "stage", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoReleases { .. }), "{err:?}");
    let missing: ReleaseId = "0efcc940-e709-4a51-b264-809a670629b6".parse().expect("id");
    let err = t
        .deploy(&missing.clone().into(), "stage", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReleaseNotFound { release, .. } if release == &missing),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains("0efcc940-e709-4a51-b264-809a670629b6"));
    assert!(label_map(&t, "stage").await.is_empty());
}

pub async fn deploy_of_a_legacy_release_with_null_images_writes_nothing(stores: Stores) {
    let t = tracker(&stores);
    let legacy = Release::from_json(
        serde_json::json!({
            "release_id": "legacy-1",
            "project_id": stores.project.as_str(),
            "project_name": "Storage service",
            "date_created": "2021-01-01T00:00:00",
            "requested_by": "arn:aws:iam::1:user/bob",
            "description": "old",
            "images": {"archivist": "ecr.example.com/archivist:ref.1", "gone": null, "tagged": ["ref.a", "ref.b"]},
            "deployments": []
        }),
        "legacy-1",
    )
    .expect("legacy release");
    stores
        .releases
        .create_release(&legacy)
        .await
        .expect("create");
    let err = t
        .deploy(&ReleaseRef::Latest, "stage", "x")
        .await
        .unwrap_err();
    match &err {
        Error::UndeployableRelease { services, .. } => {
            assert_eq!(services, &vec![svc("gone"), svc("tagged")])
        }
        other => panic!("expected UndeployableRelease, got {other:?}"),
    }
    assert!(label_map(&t, "stage").await.is_empty());
    // The way out: a new release filling the gaps from a label.
    publish(&t, "latest", "gone", "ecr.example.com/gone:1").await;
    publish(&t, "latest", "tagged", "ecr.example.com/tagged:1").await;
    let fixed = t
        .update(UpdateRequest::new(
            ReleaseRef::Latest,
            Label::latest(),
            [svc("gone"), svc("tagged")],
        ))
        .await
        .expect("update")
        .release;
    let deployed = t
        .deploy(&fixed.release_id().into(), "stage", "x")
        .await
        .expect("deploy");
    assert_eq!(deployed.written.len(), 3);
}

pub async fn plan_shows_what_a_deploy_would_change_without_writing(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let release = prepare_latest(&t).await;
    publish(
        &t,
        "stage",
        "archivist",
        "ecr.example.com/archivist:ref.aaa",
    )
    .await;
    publish(&t, "stage", "notifier", "ecr.example.com/notifier:ref.old").await;
    publish(&t, "stage", "retired", "ecr.example.com/retired:1").await;
    let before = label_map(&t, "stage").await;
    let plan = t.plan(&ReleaseRef::Latest, "stage").await.expect("plan");
    assert_eq!(label_map(&t, "stage").await, before, "plan wrote something");
    assert_eq!(&plan.release_id, release.release_id());
    assert_eq!(plan.unchanged, vec![svc("archivist")]);
    assert_eq!(plan.untouched, Some(vec![svc("retired")]));
    let changes: Vec<_> = plan
        .changes
        .iter()
        .map(|c| {
            (
                c.service.as_str(),
                c.current.as_ref().map(|u| u.as_str()),
                c.image.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("bag-register", None, "ecr.example.com/bag-register:ref.bbb"),
            (
                "notifier",
                Some("ecr.example.com/notifier:ref.old"),
                "ecr.example.com/notifier:ref.ccc"
            ),
        ]
    );
    assert!(!plan.is_noop());
    let text = plan.to_string();
    assert!(
        text.contains("2 to write, 1 unchanged, 1 untouched"),
        "{text}"
    );
    assert!(
        text.contains("+ bag-register: ecr.example.com/bag-register:ref.bbb"),
        "{text}"
    );
    // A deploy's read, the release's services only: the same plan, less
    // the label's other services.
    let read = LabelRead::ReleaseServices;
    let targeted = t
        .plan_with(&ReleaseRef::Latest, "stage", read)
        .await
        .expect("plan reading the release's services");
    assert_eq!(targeted.untouched, None);
    assert_eq!(targeted.changes, plan.changes);
    assert_eq!(targeted.unchanged, plan.unchanged);
    let text = targeted.to_string();
    assert!(text.contains("2 to write, 1 unchanged\n"), "{text}");
    assert!(
        text.contains(
            "~ notifier: ecr.example.com/notifier:ref.old -> ecr.example.com/notifier:ref.ccc"
        ),
        "{text}"
    );

    // The deploy does exactly what the plan said.
    let deployed = t
        .deploy(&ReleaseRef::Latest, "stage", "x")
        .await
        .expect("deploy");
    assert_eq!(deployed.written, vec![svc("bag-register"), svc("notifier")]);
    assert_eq!(deployed.unchanged, vec![svc("archivist")]);
    assert!(t
        .plan(&ReleaseRef::Latest, "stage")
        .await
        .expect("plan")
        .is_noop());
    assert!(matches!(
        t.plan(&ReleaseRef::Latest, "qa").await,
        Err(Error::UnknownEnvironment { .. })
    ));
}

pub async fn diff_between_releases(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let first = prepare_latest(&t).await;
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.new").await;
    publish(&t, "latest", "indexer", "ecr.example.com/indexer:1").await;
    let second = prepare_latest(&t).await;
    let diff = t
        .diff(&first.release_id().into(), &ReleaseRef::Latest)
        .await
        .expect("diff");
    assert_eq!(&diff.from, first.release_id());
    assert_eq!(&diff.to, second.release_id());
    assert_eq!(diff.added.keys().collect::<Vec<_>>(), vec![&svc("indexer")]);
    assert!(diff.removed.is_empty());
    assert_eq!(diff.changed.len(), 1);
    assert_eq!(
        diff.changed[0].from,
        entry("ecr.example.com/notifier:ref.ccc")
    );
    assert_eq!(
        diff.changed[0].to,
        entry("ecr.example.com/notifier:ref.new")
    );
    assert_eq!(diff.unchanged, vec![svc("archivist"), svc("bag-register")]);
    let back = t
        .diff(&ReleaseRef::Latest, &first.release_id().into())
        .await
        .expect("diff");
    assert_eq!(
        back.removed.keys().collect::<Vec<_>>(),
        vec![&svc("indexer")]
    );
    assert!(t
        .diff(&ReleaseRef::Latest, &ReleaseRef::Latest)
        .await
        .expect("diff")
        .is_empty());
    let text = diff.to_string();
    assert!(
        text.contains("+ indexer: ecr.example.com/indexer:1"),
        "{text}"
    );
    assert!(
        text.contains(
            "~ notifier: ecr.example.com/notifier:ref.ccc -> ecr.example.com/notifier:ref.new"
        ),
        "{text}"
    );
}

pub async fn current_reports_the_release_and_drift(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    assert!(t.current("stage").await.expect("current").current.is_none());
    let first = prepare_latest(&t).await;
    t.deploy(&first.release_id().into(), "stage", "one")
        .await
        .expect("deploy");
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.new").await;
    let second = prepare_latest(&t).await;
    t.deploy(&second.release_id().into(), "prod", "two")
        .await
        .expect("deploy");

    let current = t
        .current("stage")
        .await
        .expect("current")
        .current
        .expect("deployed");
    assert_eq!(current.release.release_id(), first.release_id());
    assert_eq!(current.deployment.description(), "one");
    assert!(current.label_matches());
    let prod = t
        .current("prod")
        .await
        .expect("current")
        .current
        .expect("deployed");
    assert_eq!(prod.release.release_id(), second.release_id());

    // Someone changes stage by hand.
    publish(&t, "stage", "archivist", "ecr.example.com/archivist:hand").await;
    let current = t
        .current("stage")
        .await
        .expect("current")
        .current
        .expect("deployed");
    assert_eq!(current.drifted, vec![svc("archivist")]);
    assert!(!current.label_matches());
    assert!(matches!(
        t.current("qa").await,
        Err(Error::UnknownEnvironment { .. })
    ));
}

pub async fn history_is_newest_first_per_environment_or_all(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let r1 = prepare_latest(&t).await;
    let r2 = prepare_latest(&t).await;
    t.deploy(&r1.release_id().into(), "stage", "a")
        .await
        .expect("deploy");
    t.deploy(&r2.release_id().into(), "stage", "b")
        .await
        .expect("deploy");
    t.deploy(&r1.release_id().into(), "prod", "c")
        .await
        .expect("deploy");
    t.deploy(&r2.release_id().into(), "prod", "d")
        .await
        .expect("deploy");

    let all = t.history(None, 10).await.expect("history").records;
    let described: Vec<_> = all.iter().map(|r| r.deployment.description()).collect();
    assert_eq!(described, vec!["d", "c", "b", "a"]);
    assert_eq!(&all[0].release_id, r2.release_id());
    assert_eq!(&all[1].release_id, r1.release_id());

    let stage = t.history(Some("stage"), 10).await.expect("history").records;
    let described: Vec<_> = stage.iter().map(|r| r.deployment.description()).collect();
    assert_eq!(described, vec!["b", "a"]);
    let newest = t.history(None, 3).await.expect("history").records;
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[2].deployment.description(), "b");
    assert!(matches!(
        t.history(Some("qa"), 10).await,
        Err(Error::UnknownEnvironment { .. })
    ));
    assert!(matches!(
        t.history(None, 0).await,
        Err(Error::InvalidArgument { .. })
    ));
}

pub async fn latest_is_the_newest_release_ties_to_the_greatest_id(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    t.prepare(PrepareRequest::latest()).await.expect("prepare");
    let second = prepare_latest(&t).await;
    assert_eq!(
        t.release(&ReleaseRef::Latest)
            .await
            .expect("latest")
            .release,
        second
    );

    // Two releases made in the same microsecond: the greater id wins, and
    // deploy, diff and plan all agree. The lower id is created last so that
    // insertion order cannot be what decides.
    let frozen = start_time().add_micros(3_600_000_000);
    let ids = [
        "ffffffff-0000-4000-8000-000000000000",
        "aaaaaaaa-0000-4000-8000-000000000000",
    ];
    for id in ids {
        let id: ReleaseId = id.parse().expect("id");
        ReleaseTracker::new(
            project(&stores.project),
            stores.images.clone(),
            stores.releases.clone(),
            Requester::new(ALICE),
        )
        .with_clock(move || frozen)
        .with_id_generator(move || id.clone())
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare");
    }
    let latest = t
        .release(&ReleaseRef::Latest)
        .await
        .expect("latest")
        .release;
    assert_eq!(latest.release_id().as_str(), ids[0]);
    let plan = t.plan(&ReleaseRef::Latest, "stage").await.expect("plan");
    assert_eq!(plan.release_id.as_str(), ids[0]);
}

pub async fn release_deploy_deploys_the_release_it_made(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let (prepared, deployed) = t
        .release_deploy(
            PrepareRequest::latest().description("ship it"),
            "stage",
            "go",
        )
        .await
        .expect("release_deploy");
    assert_eq!(deployed.release.release_id(), prepared.release.release_id());
    assert_eq!(deployed.release.description(), "ship it");
    assert_eq!(deployed.deployment.description(), "go");
    assert_eq!(deployed.written.len(), 3);
    let history = t.history(Some("stage"), 5).await.expect("history").records;
    assert_eq!(history.len(), 1);
    assert_eq!(&history[0].release_id, prepared.release.release_id());
}

/// Expands to one `#[tokio::test]` per workflow, each given fresh stores by
/// `$make` (an async fn returning [`Stores`]).
#[macro_export]
macro_rules! workflow_tests {
    ($make:path) => {
        $crate::workflow_tests!(@each $make;
            prepare_freezes_the_label,
            prepare_without_description_uses_the_default,
            prepare_from_an_empty_label_is_an_error,
            prepare_with_overrides,
            prepare_override_errors_create_nothing,
            update_takes_chosen_services_from_a_label,
            update_errors,
            deploy_writes_the_label_and_records_the_deployment,
            deploy_to_an_unknown_environment_writes_nothing,
            deploy_of_a_missing_release_is_an_error,
            deploy_of_a_legacy_release_with_null_images_writes_nothing,
            plan_shows_what_a_deploy_would_change_without_writing,
            diff_between_releases,
            current_reports_the_release_and_drift,
            history_is_newest_first_per_environment_or_all,
            latest_is_the_newest_release_ties_to_the_greatest_id,
            release_deploy_deploys_the_release_it_made,
            unreadable_records_are_skipped_and_reported,
            an_unreadable_record_read_by_id_names_the_field,
            deployments_keep_their_release_shape,
            new_releases_follow_the_newest_release_shape,
            a_forced_shape_is_always_written,
            bare_tags_are_undeployable_and_nothing_is_written,
            bare_tags_resolve_through_the_manifest,
            execute_deploys_the_planned_release_even_if_latest_moved,
            deploy_records_the_audit_trail,
            a_release_record_near_the_size_limit_warns_then_refuses,
            a_release_must_pass_through_the_required_environment,
            the_soak_time_is_measured_and_a_bypass_is_recorded,
            rollback_returns_to_the_release_before,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                workflow_suite::$name($make().await).await;
            }
        )*
    };
}
