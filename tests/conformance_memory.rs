//! The conformance checks on the in-memory stores, which define the
//! reference semantics: each check runs on the concrete store and through
//! `Arc<dyn …>`, on a fresh project each time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use release_tracking::conformance;
use release_tracking::ControlStore;
use release_tracking::{
    Deployment, EnvironmentId, ImageStore, ImageUri, InMemoryImageStore, InMemoryReleaseStore,
    Label, NewRelease, ProjectId, Release, ReleaseId, ReleaseStore, Requester, ServiceId,
    Timestamp,
};

fn project(name: &str) -> ProjectId {
    ProjectId::new(name).expect("valid project id")
}

macro_rules! image_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let store = InMemoryImageStore::new();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ImageStore> = Arc::new(InMemoryImageStore::new());
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

macro_rules! release_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let store = InMemoryReleaseStore::new();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ReleaseStore> = Arc::new(InMemoryReleaseStore::new());
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

release_tracking::for_each_conformance_check!(image_check, release_check);

macro_rules! control_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let store = InMemoryReleaseStore::new();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ControlStore> = Arc::new(InMemoryReleaseStore::new());
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

release_tracking::for_each_control_store_check!(control_check);

/// Every check on one store, each on its own project: checks only touch
/// their project, so running them side by side must not disturb them.
#[tokio::test]
async fn all_checks_share_one_store() {
    let images = InMemoryImageStore::new();
    conformance::image_store_put_get_overwrite(&images, &project("p1")).await;
    conformance::image_store_labels_are_isolated(&images, &project("p2")).await;
    conformance::image_store_empty_label(&images, &project("p3")).await;

    let releases = InMemoryReleaseStore::new();
    conformance::release_store_latest_and_listing(&releases, &project("p1")).await;
    conformance::release_store_ties(&releases, &project("p2")).await;
    conformance::release_store_recent_deployments(&releases, &project("p3")).await;
    conformance::release_store_empty_project(&releases, &project("p4")).await;
}

/// The checks' futures are `Send`, so a harness may spawn them.
#[test]
fn check_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let images = InMemoryImageStore::new();
    let releases = InMemoryReleaseStore::new();
    let p = project("p");
    assert_send(&conformance::image_store_label_read_completely(&images, &p));
    assert_send(&conformance::release_store_concurrent_deployments(
        &releases, &p,
    ));
    assert_send(&conformance::release_store_legacy_records(&releases, &p));
}

fn at(seconds: i64) -> Timestamp {
    "2020-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("valid timestamp")
        .add_micros(seconds * 1_000_000)
}

fn release(project: &ProjectId, id: &str) -> Release {
    Release::new(NewRelease {
        release_id: ReleaseId::new(id).expect("valid release id"),
        project_id: project.clone(),
        project_name: "Project".into(),
        date_created: at(0),
        requested_by: Requester::new("tester"),
        description: String::new(),
        images: BTreeMap::new(),
    })
}

/// 64 tasks on a multi-threaded runtime, each with its own clone of the
/// store, deploy one release at once: none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_deployment_is_lost_across_threads() {
    let store = InMemoryReleaseStore::new();
    let p = project("threads");
    let r = release(&p, "release-1");
    store.create_release(&r).await.expect("create release");

    let tasks: Vec<_> = (0..64_i64)
        .map(|i| {
            let (store, p, id) = (store.clone(), p.clone(), r.release_id().clone());
            tokio::spawn(async move {
                let env = EnvironmentId::new(if i % 2 == 0 { "stage" } else { "prod" })
                    .expect("valid environment");
                let d = Deployment::new(env, at(i + 1), Requester::new("tester"), format!("d{i}"));
                store.add_deployment(&p, &id, &d).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task did not panic")
            .expect("add_deployment succeeded");
    }

    let stored = store
        .release(&p, r.release_id())
        .await
        .expect("read release")
        .expect("release exists");
    let got: BTreeSet<&str> = stored
        .deployments()
        .iter()
        .map(Deployment::description)
        .collect();
    let expected: Vec<String> = (0..64).map(|i| format!("d{i}")).collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(
        stored.deployments().len(),
        64,
        "a deployment was lost or doubled"
    );
    assert_eq!(got, expected);
    assert_eq!(stored.last_date_deployed(), Some(at(64)));
}

/// Clones share one state, in both directions.
#[tokio::test]
async fn clones_share_state() {
    let images = InMemoryImageStore::new();
    let images_clone = images.clone();
    let (p, latest) = (project("shared"), Label::latest());
    let service = ServiceId::new("archivist").expect("valid service");
    let uri = ImageUri::new("ref.3f2a9c1").expect("valid uri");
    images_clone
        .put_image(&p, &latest, &service, &uri)
        .await
        .expect("put image");
    assert_eq!(
        images
            .image(&p, &latest, &service)
            .await
            .expect("read image"),
        Some(uri)
    );

    let releases = InMemoryReleaseStore::new();
    let releases_clone = releases.clone();
    let r = release(&p, "release-1");
    releases.create_release(&r).await.expect("create release");
    assert_eq!(
        releases_clone
            .release(&p, r.release_id())
            .await
            .expect("read release"),
        Some(r.clone())
    );
    let d = Deployment::new(
        EnvironmentId::new("stage").expect("valid environment"),
        at(5),
        Requester::new("tester"),
        "via the clone",
    );
    releases_clone
        .add_deployment(&p, r.release_id(), &d)
        .await
        .expect("add deployment");
    let seen = releases
        .release(&p, r.release_id())
        .await
        .expect("read release")
        .expect("release exists");
    assert_eq!(seen.deployments(), [d]);

    // A new store does not share them.
    let fresh = InMemoryReleaseStore::new();
    assert_eq!(
        fresh
            .release(&p, r.release_id())
            .await
            .expect("read release"),
        None
    );
}

/// Debug output summarises rather than dumps.
#[tokio::test]
async fn debug_is_a_summary() {
    let releases = InMemoryReleaseStore::new();
    releases
        .create_release(&release(&project("p"), "release-1"))
        .await
        .expect("create release");
    assert_eq!(
        format!("{releases:?}"),
        "InMemoryReleaseStore { projects: 1, releases: 1 }"
    );
    assert_eq!(
        format!("{:?}", InMemoryImageStore::new()),
        "InMemoryImageStore { labels: 0, images: 0 }"
    );
}

/// `for_each_conformance_check!` and `for_each_control_store_check!` name
/// every public check of the module, so every test file that uses them runs
/// them all.
#[test]
fn the_check_list_names_every_check() {
    let mut listed: Vec<&str> = Vec::new();
    macro_rules! record {
        ($check:ident) => {
            listed.push(stringify!($check));
        };
    }
    release_tracking::for_each_conformance_check!(record, record);
    release_tracking::for_each_control_store_check!(record);
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    listed_sorted.dedup();
    assert_eq!(listed_sorted.len(), listed.len(), "a check listed twice");
    let mut defined: Vec<&str> = [
        include_str!("../src/conformance/images.rs"),
        include_str!("../src/conformance/releases.rs"),
        include_str!("../src/conformance/deployments.rs"),
        include_str!("../src/conformance/legacy.rs"),
        include_str!("../src/conformance/transfer.rs"),
        include_str!("../src/conformance/control/lease.rs"),
        include_str!("../src/conformance/control/actions.rs"),
        include_str!("../src/conformance/control/events.rs"),
    ]
    .iter()
    .flat_map(|file| file.lines())
    .filter_map(|line| line.strip_prefix("pub async fn "))
    .filter_map(|rest| rest.split('(').next())
    .collect();
    defined.sort_unstable();
    let listed = listed_sorted;
    assert_eq!(listed, defined);
}
