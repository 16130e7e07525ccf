//! The workflow suite (the same tests as `tests/workflows.rs`) on the AWS
//! stores against the moto emulator: run by `scripts/test.sh`.

use std::sync::Arc;

#[path = "common/aws.rs"]
mod aws_common;
#[macro_use]
mod workflow_suite;

async fn aws_stores() -> workflow_suite::Stores {
    let project = aws_common::fresh_project("wf");
    let table = release_tracking::aws::default_table_name(&project);
    let client = aws_common::dynamodb_client().await;
    workflow_suite::Stores {
        images: Arc::new(aws_common::image_store().await),
        releases: Arc::new(aws_common::release_store(&project).await),
        project,
        put_raw: Arc::new(move |record| {
            let (client, table) = (client.clone(), table.clone());
            Box::pin(async move { aws_common::put_json_item(&client, &table, &record).await })
        }),
    }
}

workflow_tests!(aws_stores);
