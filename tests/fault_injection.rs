//! Faults injected into a deploy with mockall: the mocks forward to real
//! in-memory stores except for the call that is made to fail.

use std::sync::Arc;

use async_trait::async_trait;
use futures::executor::block_on;
use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::{
    BackendErrorKind, Deployment, EnvironmentId, Error, ImageStore, ImageUri, Label, LabelImages,
    LatestRelease, Page, PageRequest, PartialDeployment, ProjectId, RecentDeployments, Release,
    ReleaseId, ReleaseRef, ReleaseStore, ReleaseTracker, Requester, Result, ServiceId,
};

#[macro_use]
mod workflow_suite;
use workflow_suite::{label, project, svc, uri, Stores, ALICE};

mockall::mock! {
    Images {}
    #[async_trait]
    impl ImageStore for Images {
        async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages>;
        async fn image(&self, project: &ProjectId, label: &Label, service: &ServiceId) -> Result<Option<ImageUri>>;
        async fn put_image(&self, project: &ProjectId, label: &Label, service: &ServiceId, image: &ImageUri) -> Result<()>;
    }
}

/// The one release-store call the tests make fail; everything else goes to
/// a real in-memory store (see [`FaultyRecorder`]).
#[mockall::automock]
trait RecordDeployment {
    fn add_deployment(&self, id: &ReleaseId, deployment: &Deployment) -> Result<Release>;
}

/// A release store whose `add_deployment` is mocked.
#[derive(Debug)]
struct FaultyRecorder {
    inner: InMemoryReleaseStore,
    recorder: MockRecordDeployment,
}

#[async_trait]
impl ReleaseStore for FaultyRecorder {
    async fn create_release(&self, release: &Release) -> Result<()> {
        self.inner.create_release(release).await
    }
    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>> {
        self.inner.release(project, id).await
    }
    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease> {
        self.inner.latest_release(project).await
    }
    async fn list_releases(
        &self,
        project: &ProjectId,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        self.inner.list_releases(project, page).await
    }
    async fn add_deployment(
        &self,
        _: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release> {
        self.recorder.add_deployment(id, deployment)
    }
    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments> {
        self.inner
            .recent_deployments(project, environment, limit)
            .await
    }
}

// The store traits require Debug, which `mock!` does not implement.
impl std::fmt::Debug for MockImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockImages")
    }
}

fn throttled() -> Error {
    Error::Backend {
        operation: "writing parameter (SSM PutParameter)".to_owned(),
        kind: BackendErrorKind::Throttled,
        source: "Rate exceeded".into(),
    }
}

/// Real stores holding a release of four services, not yet deployed.
async fn four_service_release() -> (InMemoryImageStore, InMemoryReleaseStore, ProjectId, Release) {
    let images = InMemoryImageStore::new();
    let releases = InMemoryReleaseStore::new();
    let stores = Stores {
        images: Arc::new(images.clone()),
        releases: Arc::new(releases.clone()),
        project: "storage".parse().expect("project id"),
        put_raw: Arc::new(|_| panic!("no raw records in this test")),
    };
    let t = workflow_suite::tracker(&stores);
    for s in ["a", "b", "c", "d"] {
        t.publish(
            &Label::latest(),
            &svc(s),
            &uri(&format!("ecr.example.com/{s}:1")),
        )
        .await
        .expect("publish");
    }
    let release = t
        .prepare(release_tracking::PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    (images, releases, stores.project, release)
}

#[tokio::test]
async fn a_write_failing_half_way_reports_what_was_written_and_records_nothing() {
    let (images, releases, project_id, release) = four_service_release().await;
    let mut flaky = MockImages::new();
    let inner = images.clone();
    flaky
        .expect_label_images()
        .returning(move |p, l| block_on(inner.label_images(p, l)));
    let inner = images.clone();
    flaky
        .expect_put_image()
        .withf(|_, _, service, _| service.as_str() == "c")
        .times(1)
        .returning(|_, _, _, _| Err(throttled()));
    flaky
        .expect_put_image()
        .withf(|_, _, service, _| service.as_str() != "c")
        .times(2)
        .returning(move |p, l, s, i| block_on(inner.put_image(p, l, s, i)));

    // One write at a time, so `d` is never started (tests/concurrent_writes.rs
    // covers writes in flight side by side).
    let t = ReleaseTracker::new(
        project(&project_id),
        flaky,
        releases.clone(),
        Requester::new(ALICE),
    )
    .with_write_concurrency(1);
    let id: ReleaseRef = release.release_id().into();
    let err = t.deploy(&id, "stage", "half").await.unwrap_err();
    match &err {
        Error::PartialDeployment(partial) => {
            let PartialDeployment {
                written,
                failed,
                not_written,
                source,
                ..
            } = &**partial;
            assert_eq!(written, &vec![svc("a"), svc("b")]);
            assert_eq!(failed, &svc("c"));
            assert_eq!(not_written, &vec![svc("c"), svc("d")]);
            assert!(matches!(
                source,
                Error::Backend {
                    kind: BackendErrorKind::Throttled,
                    ..
                }
            ));
        }
        other => panic!("expected PartialDeployment, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("failed at service `c`"), "{text}");
    assert!(text.contains("written: a, b"), "{text}");
    assert!(text.contains("not written: c, d"), "{text}");
    assert!(text.contains("run the deploy again"), "{text}");

    // No deployment recorded; the label holds exactly what was reported.
    let stored = releases
        .release(&project_id, release.release_id())
        .await
        .expect("get")
        .expect("exists");
    assert!(stored.deployments().is_empty());
    let stage = images
        .label_images(&project_id, &label("stage"))
        .await
        .expect("label");
    assert_eq!(
        stage.images.keys().cloned().collect::<Vec<_>>(),
        vec![svc("a"), svc("b")]
    );

    // Running the same deploy again, with the fault gone, completes it.
    let t = ReleaseTracker::new(
        project(&project_id),
        images.clone(),
        releases.clone(),
        Requester::new(ALICE),
    );
    let deployed = t.deploy(&id, "stage", "again").await.expect("deploy");
    assert_eq!(deployed.written, vec![svc("c"), svc("d")]);
    assert_eq!(deployed.unchanged, vec![svc("a"), svc("b")]);
    assert_eq!(deployed.release.deployments().len(), 1);
}

#[tokio::test]
async fn a_failure_to_record_says_the_labels_were_written_and_a_rerun_records_it() {
    let (images, releases, project_id, release) = four_service_release().await;
    let mut recorder = MockRecordDeployment::new();
    recorder
        .expect_add_deployment()
        .times(1)
        .returning(|_, _| Err(throttled()));
    let failing = FaultyRecorder {
        inner: releases.clone(),
        recorder,
    };

    let t = ReleaseTracker::new(
        project(&project_id),
        images.clone(),
        failing,
        Requester::new(ALICE),
    );
    let id: ReleaseRef = release.release_id().into();
    let err = t.deploy(&id, "prod", "x").await.unwrap_err();
    match &err {
        Error::DeploymentNotRecorded {
            written,
            environment,
            ..
        } => {
            assert_eq!(written.len(), 4);
            assert_eq!(environment.as_str(), "prod");
        }
        other => panic!("expected DeploymentNotRecorded, got {other:?}"),
    }
    assert!(err.to_string().contains("not recorded"), "{err}");

    let t = ReleaseTracker::new(
        project(&project_id),
        images,
        releases,
        Requester::new(ALICE),
    );
    let deployed = t.deploy(&id, "prod", "again").await.expect("deploy");
    assert!(deployed.written.is_empty());
    assert_eq!(deployed.unchanged.len(), 4);
    assert_eq!(deployed.release.deployments().len(), 1);
}

#[tokio::test]
async fn an_unknown_environment_touches_no_image_and_makes_no_release() {
    // A mock with no expectations fails the test on any call.
    let releases = InMemoryReleaseStore::new();
    let project_id: ProjectId = "storage".parse().expect("id");
    let t = ReleaseTracker::new(
        project(&project_id),
        MockImages::new(),
        releases.clone(),
        Requester::new(ALICE),
    );
    let err = t
        .deploy(&ReleaseRef::Latest, "prdo", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEnvironment { .. }), "{err:?}");
    let err = t
        .release_deploy(release_tracking::PrepareRequest::latest(), "prdo", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEnvironment { .. }), "{err:?}");
    assert_eq!(
        releases
            .latest_release(&project_id)
            .await
            .expect("read")
            .release,
        None
    );
}
