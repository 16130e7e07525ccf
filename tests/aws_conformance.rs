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

release_tracking::for_each_conformance_check!(image_check, release_check);

// Every project on the fresh project's table, as a table shared by projects
// is: the isolation check writes a second project there.
macro_rules! control_check {
    ($check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let project = fresh_project("conf");
            let table = release_tracking::aws::default_table_name(&project);
            let store = release_store(&project)
                .await
                .with_table_name(move |_| table.clone());
            conformance::$check(&store, &project).await;
        }
    };
}

release_tracking::for_each_control_store_check!(control_check);
