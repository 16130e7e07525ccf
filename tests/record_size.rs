//! How many deployments fit in one release record: a release of 100
//! services whose every deployment changes all 100 (another release takes
//! turns with it in `stage`), on the in-memory stores, which apply the same
//! limit as every backend. The README quotes these numbers.

use std::sync::atomic::{AtomicI64, Ordering};

use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::release::{MAX_RECORD_SIZE, RECORD_SIZE_WARNING};
use release_tracking::{
    Environment, Error, Label, PrepareRequest, Project, Release, ReleaseRef, ReleaseTracker,
    Requester, Timestamp, Warning,
};

/// 100 services named like `service-042`, with ECR references.
const SERVICES: usize = 100;
/// Deployments of one release that fit before the warning, and in all.
const FIT_BEFORE_WARNING: usize = 195;
const FIT: usize = 262;

type Tracker = ReleaseTracker<InMemoryImageStore, InMemoryReleaseStore>;

fn tracker(releases: &InMemoryReleaseStore) -> Tracker {
    let project = Project::new(
        "storage".parse().expect("id"),
        "Storage service",
        vec![Environment::new("stage".parse().expect("id"), "Staging")],
    )
    .expect("project");
    // Microseconds are never 0: every date has its full length.
    let step = AtomicI64::new(0);
    let start: Timestamp = "2024-03-01T09:00:00.000001".parse().expect("time");
    ReleaseTracker::new(
        project,
        InMemoryImageStore::new(),
        releases.clone(),
        Requester::new("arn:aws:sts::123456789012:assumed-role/deployer/alice"),
    )
    .with_clock(move || start.add_micros(step.fetch_add(1, Ordering::SeqCst) * 1_000_001))
}

/// Two releases of 100 services with different images.
async fn two_releases(tracker: &Tracker) -> [ReleaseRef; 2] {
    let mut releases = Vec::new();
    for tag in ["ref.3f2a9c1", "ref.77b0e4d"] {
        for i in 0..SERVICES {
            let service = format!("service-{i:03}");
            let image = format!(
                "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"
            );
            tracker
                .publish(
                    &Label::latest(),
                    &service.parse().expect("service"),
                    &image.parse().expect("image"),
                )
                .await
                .expect("publish");
        }
        let release = tracker
            .prepare(PrepareRequest::latest().description("weekly release"))
            .await
            .expect("prepare")
            .release;
        releases.push(ReleaseRef::from(release.release_id()));
    }
    [releases[0].clone(), releases[1].clone()]
}

/// `release` with its last deployment repeated until it holds `count`.
fn with_deployments(release: &Release, count: usize) -> serde_json::Value {
    let mut grown = release.clone();
    let last = release.deployments().last().expect("deployed").clone();
    while grown.deployments().len() < count {
        grown.record_deployment(last.clone());
    }
    grown.to_json()
}

#[tokio::test]
async fn deployments_of_a_100_service_release_that_fit_in_its_record() {
    let releases = InMemoryReleaseStore::new();
    let tracker = tracker(&releases);
    let [measured, other] = two_releases(&tracker).await;

    // One deployment of the measured release changing all 100 services
    // (the other release is in stage), repeated until the record is full.
    tracker
        .deploy(&other, "stage", "weekly deploy")
        .await
        .expect("the other release");
    let deployed = tracker
        .deploy(&measured, "stage", "weekly deploy")
        .await
        .expect("deploy");
    assert_eq!(deployed.written.len(), SERVICES);
    let one = deployed.deployment.clone();
    let mut grown = deployed.release.clone();
    // sizes[k]: the record holding k + 1 deployments.
    let mut sizes = vec![grown.record_size()];
    while sizes.last().is_some_and(|size| *size <= MAX_RECORD_SIZE) {
        grown.record_deployment(one.clone());
        sizes.push(grown.record_size());
    }
    let fit = sizes.iter().filter(|s| **s <= MAX_RECORD_SIZE).count();
    let quiet = sizes.iter().filter(|s| **s <= RECORD_SIZE_WARNING).count();
    eprintln!(
        "one deployment changing {SERVICES} services: {} bytes; {fit} fit ({} bytes); the \
         warning from deployment {}",
        sizes[1] - sizes[0],
        sizes[fit - 1],
        quiet + 1
    );
    assert_eq!((quiet, fit), (FIT_BEFORE_WARNING, FIT));

    // The tracker agrees at both boundaries. With `quiet` deployments
    // recorded, the next deploy warns.
    let base = deployed.release.clone();
    releases
        .insert_record(with_deployments(&base, FIT_BEFORE_WARNING))
        .expect("insert");
    tracker
        .deploy(&other, "stage", "turn")
        .await
        .expect("other");
    let warned = tracker
        .deploy(&measured, "stage", "weekly deploy")
        .await
        .expect("deploy");
    assert_eq!(warned.release.deployments().len(), FIT_BEFORE_WARNING + 1);
    assert!(
        warned
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::RecordNearlyFull { .. })),
        "{:?}",
        warned.warnings
    );

    // With `fit` recorded, the next deploy is refused before any write.
    releases
        .insert_record(with_deployments(&base, FIT))
        .expect("insert");
    tracker
        .deploy(&other, "stage", "turn")
        .await
        .expect("other");
    let stage_before = tracker
        .label_images(&"stage".parse().expect("label"))
        .await
        .expect("label");
    let refusal = tracker
        .deploy(&measured, "stage", "weekly deploy")
        .await
        .expect_err("a full record is refused");
    assert!(
        matches!(refusal, Error::ReleaseRecordFull { .. }),
        "{refusal}"
    );
    let stage_after = tracker
        .label_images(&"stage".parse().expect("label"))
        .await
        .expect("label");
    assert_eq!(
        stage_after, stage_before,
        "the refused deploy wrote nothing"
    );
    let stored = tracker.release(&measured).await.expect("read").release;
    assert_eq!(stored.deployments().len(), FIT);
}
