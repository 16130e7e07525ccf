//! Every conformance check against the AWS stores on the moto emulator
//! (run by `scripts/test.sh`): each check on a fresh project, so a fresh
//! parameter prefix and a fresh table.

#[path = "common/aws.rs"]
mod aws_common;

use release_tracking::conformance;

use aws_common::{fresh_project, image_store, release_store};

macro_rules! image_check {
    ($check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let project = fresh_project("conf");
            let store = image_store().await;
            conformance::$check(&store, &project).await;
        }
    };
}

macro_rules! release_check {
    ($check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let project = fresh_project("conf");
            let store = release_store(&project).await;
            conformance::$check(&store, &project).await;
        }
    };
}

image_check!(image_store_put_get_overwrite);
image_check!(image_store_missing_image);
image_check!(image_store_empty_label);
image_check!(image_store_labels_are_isolated);
image_check!(image_store_label_read_completely);

release_check!(release_store_create_and_get);
release_check!(release_store_create_conflict);
release_check!(release_store_missing_release);
release_check!(release_store_empty_project);
release_check!(release_store_latest_and_listing);
release_check!(release_store_ties);
release_check!(release_store_invalid_cursor);
release_check!(release_store_add_deployment);
release_check!(release_store_recent_deployments);
release_check!(release_store_deployment_fields_survive);
release_check!(release_store_concurrent_deployments);
release_check!(release_store_legacy_records);

/// Every public check of `conformance` is run above: a check added there and
/// forgotten here fails this test.
#[test]
fn every_conformance_check_is_run() {
    let checks = include_str!("../src/conformance.rs");
    let this_file = include_str!("aws_conformance.rs");
    let missing: Vec<&str> = checks
        .lines()
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split('(').next())
        .filter(|name| {
            !this_file.contains(&format!("image_check!({name});"))
                && !this_file.contains(&format!("release_check!({name});"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "conformance checks not run against the AWS stores: {missing:?}"
    );
}
