//! The conformance checks on the SQLite store: each check on a new file,
//! on the concrete store and through `Arc<dyn …>`.

use std::sync::Arc;

use release_tracking::conformance;
use release_tracking::sqlite::SqliteStore;
use release_tracking::store::MAX_PAGE_SIZE;
use release_tracking::{ControlStore, ImageStore, Label, PageRequest, ProjectId, ReleaseStore};

fn project(name: &str) -> ProjectId {
    ProjectId::new(name).expect("valid project id")
}

/// A store in a new file; the directory lives as long as the guard.
fn new_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("store.sqlite")).expect("open a new store");
    (dir, store)
}

macro_rules! image_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let (_dir, store) = new_store();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ImageStore> = Arc::new(store);
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

macro_rules! release_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let (_dir, store) = new_store();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ReleaseStore> = Arc::new(store);
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

release_tracking::for_each_conformance_check!(image_check, release_check);

macro_rules! control_check {
    ($check:ident) => {
        #[tokio::test]
        async fn $check() {
            let (_dir, store) = new_store();
            conformance::$check(&store, &project("direct")).await;
            let shared: Arc<dyn ControlStore> = Arc::new(store);
            conformance::$check(&shared, &project("through-arc-dyn")).await;
        }
    };
}

release_tracking::for_each_control_store_check!(control_check);

/// What a store holds for projects `p1`… `p{count}`: their `latest`
/// label, their releases and their deployments.
async fn snapshot(store: &SqliteStore, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for n in 1..=count {
        let p = project(&format!("p{n}"));
        let images = store
            .label_images(&p, &Label::latest())
            .await
            .expect("label");
        let page = PageRequest::first(MAX_PAGE_SIZE).expect("limit");
        let releases = store.list_releases(&p, &page).await.expect("list");
        let deployments = store
            .recent_deployments(&p, None, MAX_PAGE_SIZE)
            .await
            .expect("deployments");
        seen.push(format!("{images:?} {releases:?} {deployments:?}"));
    }
    seen
}

/// Every check in one file, each on its own project, then the file closed
/// and reopened: everything the checks wrote reads back the same.
#[tokio::test]
async fn all_checks_share_one_file_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let mut n = 0;
    macro_rules! check {
        ($check:ident) => {
            n += 1;
            conformance::$check(&store, &project(&format!("p{n}"))).await;
        };
    }
    release_tracking::for_each_conformance_check!(check, check);
    let before = snapshot(&store, n).await;
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    let after = snapshot(&store, n).await;
    assert_eq!(before.len(), 20);
    assert!(
        before.iter().filter(|s| s.contains("release_id")).count() >= 8,
        "the release checks left releases behind: {before:#?}"
    );
    assert_eq!(before, after);
}
