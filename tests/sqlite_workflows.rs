//! The workflow suite (the same tests as `tests/workflows.rs`) on the
//! SQLite store, one new file per test.

use std::sync::Arc;

use release_tracking::sqlite::SqliteStore;

#[macro_use]
mod workflow_suite;

async fn sqlite_stores() -> workflow_suite::Stores {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("store.sqlite")).expect("open a new store");
    let raw = store.clone();
    workflow_suite::Stores {
        images: Arc::new(store.clone()),
        releases: Arc::new(store),
        project: "storage".parse().expect("valid project id"),
        // The closure holds the directory, which is removed when the test
        // drops the stores.
        put_raw: Arc::new(move |record| {
            let _dir = &dir;
            let raw = raw.clone();
            Box::pin(async move {
                raw.insert_record(record)
                    .await
                    .expect("insert a raw record")
            })
        }),
    }
}

workflow_tests!(sqlite_stores);
