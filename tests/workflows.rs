//! The workflow suite on the in-memory stores.

use std::sync::Arc;

use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};

#[macro_use]
mod workflow_suite;

async fn memory_stores() -> workflow_suite::Stores {
    let releases = InMemoryReleaseStore::new();
    let raw = releases.clone();
    workflow_suite::Stores {
        images: Arc::new(InMemoryImageStore::new()),
        releases: Arc::new(releases),
        project: "storage".parse().expect("valid project id"),
        put_raw: Arc::new(move |record| {
            let result = raw.insert_record(record);
            Box::pin(async move { result.expect("insert a raw record") })
        }),
    }
}

workflow_tests!(memory_stores);
