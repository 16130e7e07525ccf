//! The workflow suite on the in-memory stores.

use std::sync::Arc;

use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};

#[macro_use]
mod workflow_suite;

async fn memory_stores() -> workflow_suite::Stores {
    workflow_suite::Stores {
        images: Arc::new(InMemoryImageStore::new()),
        releases: Arc::new(InMemoryReleaseStore::new()),
        project: "storage".parse().expect("valid project id"),
    }
}

workflow_tests!(memory_stores);
