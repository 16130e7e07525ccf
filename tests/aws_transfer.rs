//! Importing an export into the AWS stores (DynamoDB and SSM on the
//! emulator): everything arrives as it was, reads back as the same export,
//! and a second import finds it all there. Run by `scripts/test.sh`.

use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::transfer::Snapshot;
use release_tracking::{ReleaseId, ReleaseStore};

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/transfer.rs"]
mod transfer_common;

fn lines(snapshot: &Snapshot) -> String {
    let mut out = Vec::new();
    snapshot.write_to(&mut out).expect("write");
    String::from_utf8(out).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imports_into_dynamodb_and_ssm_exactly() {
    let id = aws_common::fresh_project("transfer");
    let project = transfer_common::project(id.as_str());
    let (images, releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
    transfer_common::fill(&project, &images, &releases).await;
    let exported = Snapshot::collect(&project, &images, &releases)
        .await
        .expect("collect");
    let text = lines(&exported);

    let (ssm, dynamodb) = (
        aws_common::image_store().await,
        aws_common::release_store(&id).await,
    );
    let read = Snapshot::read_from(text.as_bytes()).expect("read");
    let imported = read
        .import_into(&id, &ssm, &dynamodb)
        .await
        .expect("import into AWS");
    assert_eq!(
        (imported.releases_created, imported.deployments_created),
        (4, 5)
    );
    assert_eq!(imported.images_written, 9);

    let on_aws = Snapshot::collect(&project, &ssm, &dynamodb)
        .await
        .expect("collect from AWS");
    assert_eq!(on_aws, exported);
    assert_eq!(lines(&on_aws), text, "AWS exports the same lines");
    // Each item holds the record as it was, legacy shapes included.
    for record in transfer_common::legacy_records(&id) {
        let release_id = ReleaseId::new(record["release_id"].as_str().expect("id")).expect("id");
        let stored = dynamodb.release(&id, &release_id).await.expect("read");
        assert_eq!(stored.map(|r| r.to_json()), Some(record));
    }
    // The deployment index holds the copied releases: history reads as at the source.
    assert_eq!(
        dynamodb
            .recent_deployments(&id, None, 10)
            .await
            .expect("history"),
        releases
            .recent_deployments(&id, None, 10)
            .await
            .expect("history"),
    );

    let again = read
        .import_into(&id, &ssm, &dynamodb)
        .await
        .expect("import again");
    assert_eq!(
        again.releases_created + again.images_written,
        0,
        "{again:?}"
    );
    assert_eq!((again.releases_unchanged, again.images_unchanged), (4, 9));
}
