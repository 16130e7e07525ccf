//! A deploy's parameter writes, several in flight at once, with the test
//! deciding when each one completes and whether it fails: the number in
//! flight stays within the limit, and whatever the completion order the
//! result (or the partial-failure error) says exactly what the label holds,
//! and running the deploy again completes it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::tracker::DEFAULT_WRITE_CONCURRENCY;
use release_tracking::{
    BackendErrorKind, Deployed, Error, ImageStore, ImageUri, Label, LabelImages, PrepareRequest,
    ProjectId, ReleaseRef, ReleaseStore, ReleaseTracker, Requester, Result, ServiceId,
};
use tokio::sync::{mpsc, oneshot};

mod workflow_suite;
use workflow_suite::{label, project, svc, uri, ALICE};

/// A write waiting for the test's verdict.
type Gate = (ServiceId, oneshot::Sender<Result<()>>);

/// An image store whose writes wait for the test: each `put_image` announces
/// itself and completes when the test sends its result (an `Ok` is then
/// written to the real in-memory store). Reads go straight to that store.
struct GatedImages {
    inner: InMemoryImageStore,
    started: mpsc::UnboundedSender<Gate>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl std::fmt::Debug for GatedImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatedImages")
    }
}

#[async_trait]
impl ImageStore for GatedImages {
    async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages> {
        self.inner.label_images(project, label).await
    }

    async fn image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
    ) -> Result<Option<ImageUri>> {
        self.inner.image(project, label, service).await
    }

    async fn put_image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let (verdict, wait) = oneshot::channel();
        let result = match self.started.send((service.clone(), verdict)) {
            Ok(()) => wait
                .await
                .unwrap_or_else(|_| Err(failure("the test dropped the write"))),
            Err(_) => Err(failure("the test stopped listening")),
        };
        let result = match result {
            Ok(()) => self.inner.put_image(project, label, service, image).await,
            Err(e) => Err(e),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn failure(message: &str) -> Error {
    Error::Backend {
        operation: "writing a parameter (SSM PutParameter)".to_owned(),
        kind: BackendErrorKind::Throttled,
        source: message.to_owned().into(),
    }
}

/// `services` published at `latest` and frozen into a release, on real
/// in-memory stores; nothing at `stage` yet.
async fn release_of(
    services: &[ServiceId],
) -> (InMemoryImageStore, InMemoryReleaseStore, ReleaseRef) {
    let images = InMemoryImageStore::new();
    let releases = InMemoryReleaseStore::new();
    let t = ReleaseTracker::new(
        project(&project_id()),
        images.clone(),
        releases.clone(),
        Requester::new(ALICE),
    );
    for service in services {
        let image = uri(&format!("ecr.example.com/{service}:1"));
        t.publish(&Label::latest(), service, &image)
            .await
            .expect("publish");
    }
    let release = t
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    (images, releases, release.release_id().into())
}

fn project_id() -> ProjectId {
    "storage".parse().expect("project id")
}

fn services(n: usize) -> Vec<ServiceId> {
    (0..n).map(|i| svc(&format!("s{i:02}"))).collect()
}

/// What the test does with the writes in flight, one step at a time.
trait Script {
    /// Which of `in_flight` (in start order) completes next, and whether it
    /// fails.
    fn next(&mut self, in_flight: &[ServiceId]) -> (usize, bool);
}

/// The closure form of [`Script`].
impl<F: FnMut(&[ServiceId]) -> (usize, bool)> Script for F {
    fn next(&mut self, in_flight: &[ServiceId]) -> (usize, bool) {
        self(in_flight)
    }
}

/// What a gated deploy did.
struct Run {
    result: Result<Deployed>,
    most_in_flight: usize,
    /// Services whose write started, in start order.
    started: Vec<ServiceId>,
    succeeded: BTreeSet<ServiceId>,
    failed: BTreeSet<ServiceId>,
}

/// Deploys `release` to `stage` with writes gated by `script`, at most
/// `limit` at a time. The test waits for as many writes as the limit allows
/// to start before completing one, so every step sees a full set in flight;
/// once it has failed one, none may start.
async fn gated_deploy(
    images: &InMemoryImageStore,
    releases: &InMemoryReleaseStore,
    release: &ReleaseRef,
    changes: usize,
    limit: usize,
    mut script: impl Script,
) -> Run {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let gated = Arc::new(GatedImages {
        inner: images.clone(),
        started: started_tx,
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    let t = ReleaseTracker::new(
        project(&project_id()),
        gated.clone(),
        releases.clone(),
        Requester::new(ALICE),
    )
    .with_write_concurrency(limit);
    let release = release.clone();
    let deploy = tokio::spawn(async move { t.deploy(&release, "stage", "gated").await });

    let mut in_flight: Vec<Gate> = Vec::new();
    let mut run = Run {
        result: Err(failure("not run")),
        most_in_flight: 0,
        started: Vec::new(),
        succeeded: BTreeSet::new(),
        failed: BTreeSet::new(),
    };
    loop {
        let may_start = run.failed.is_empty() && run.started.len() < changes;
        let expected = if may_start {
            limit.min(in_flight.len() + changes - run.started.len())
        } else {
            in_flight.len()
        };
        while in_flight.len() < expected {
            let gate = tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} writes in flight after 10 s, expected {expected} (limit {limit})",
                        in_flight.len()
                    )
                })
                .expect("the deploy ended with writes expected");
            run.started.push(gate.0.clone());
            in_flight.push(gate);
        }
        if in_flight.is_empty() {
            break;
        }
        let names: Vec<ServiceId> = in_flight.iter().map(|(s, _)| s.clone()).collect();
        let (index, fails) = script.next(&names);
        let (service, verdict) = in_flight.remove(index % in_flight.len());
        let result = if fails {
            run.failed.insert(service);
            Err(failure("Rate exceeded"))
        } else {
            run.succeeded.insert(service);
            Ok(())
        };
        let _ = verdict.send(result);
        // Let the deploy see the completion before the next step.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }
    run.result = tokio::time::timeout(Duration::from_secs(10), deploy)
        .await
        .expect("the deploy finished")
        .expect("the deploy did not panic");
    // Nothing started after the last step.
    while let Ok(gate) = started_rx.try_recv() {
        run.started.push(gate.0);
    }
    run.most_in_flight = gated.most_in_flight.load(Ordering::SeqCst);
    run
}

/// The services at `stage`.
async fn at_stage(images: &InMemoryImageStore) -> BTreeSet<ServiceId> {
    images
        .label_images(&project_id(), &label("stage"))
        .await
        .expect("label")
        .images
        .into_keys()
        .collect()
}

/// Runs the same deploy again on the real stores: it writes exactly what
/// the failed one did not, and records the deployment once.
async fn rerun_completes(
    images: &InMemoryImageStore,
    releases: &InMemoryReleaseStore,
    release: &ReleaseRef,
    not_written: &[ServiceId],
    all: &[ServiceId],
) {
    let t = ReleaseTracker::new(
        project(&project_id()),
        images.clone(),
        releases.clone(),
        Requester::new(ALICE),
    );
    let deployed = t.deploy(release, "stage", "again").await.expect("rerun");
    let mut expected = not_written.to_vec();
    expected.sort();
    assert_eq!(
        deployed.written, expected,
        "the rerun writes what was not written"
    );
    assert_eq!(deployed.release.deployments().len(), 1);
    assert_eq!(
        at_stage(images).await,
        all.iter().cloned().collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn writes_stay_within_the_limit_and_the_result_is_in_plan_order_whatever_the_completion_order(
) {
    let all = services(7);
    let (images, releases, release) = release_of(&all).await;
    // The newest write in flight completes first: the reverse of the start
    // order, every step.
    let run = gated_deploy(
        &images,
        &releases,
        &release,
        all.len(),
        3,
        |f: &[ServiceId]| (f.len() - 1, false),
    )
    .await;
    let deployed = run.result.expect("deploy");
    assert_eq!(run.most_in_flight, 3);
    assert_eq!(run.started.len(), 7);
    assert_eq!(deployed.written, all, "plan order, not completion order");
    assert_eq!(deployed.release.deployments().len(), 1);
    assert_eq!(at_stage(&images).await, all.into_iter().collect());
}

#[tokio::test]
async fn after_a_failure_no_write_starts_those_in_flight_finish_and_the_report_is_exact() {
    let all = services(6); // s00 … s05
    let (images, releases, release) = release_of(&all).await;
    // In flight: s00 s01 s02. s02 succeeds (s03 starts), s00 fails, then
    // s03 and s01 succeed after the failure; s04 and s05 never start.
    let mut steps = vec![
        ("s02", false),
        ("s00", true),
        ("s03", false),
        ("s01", false),
    ]
    .into_iter();
    let script = move |in_flight: &[ServiceId]| {
        let (name, fails) = steps.next().expect("no more steps");
        let index = in_flight
            .iter()
            .position(|s| s.as_str() == name)
            .unwrap_or_else(|| panic!("{name} is not in flight: {in_flight:?}"));
        (index, fails)
    };
    let run = gated_deploy(&images, &releases, &release, all.len(), 3, script).await;
    assert_eq!(run.most_in_flight, 3);
    assert_eq!(run.started, all[..4].to_vec());
    let err = run.result.expect_err("a write failed");
    let Error::PartialDeployment(partial) = &err else {
        panic!("expected PartialDeployment, got {err:?}");
    };
    assert_eq!(partial.written, vec![svc("s01"), svc("s02"), svc("s03")]);
    assert_eq!(partial.failed, svc("s00"));
    assert!(partial.also_failed.is_empty());
    assert_eq!(
        partial.not_written,
        vec![svc("s00"), svc("s04"), svc("s05")]
    );
    let text = err.to_string();
    assert!(text.contains("failed at service `s00`;"), "{text}");
    assert!(text.contains("written: s01, s02, s03;"), "{text}");
    assert!(text.contains("not written: s00, s04, s05;"), "{text}");

    // The label holds exactly what was reported, and nothing was recorded.
    assert_eq!(
        at_stage(&images).await,
        partial.written.iter().cloned().collect()
    );
    let stored = releases
        .release(&project_id(), &release_id(&release))
        .await
        .expect("read")
        .expect("exists");
    assert!(stored.deployments().is_empty());
    rerun_completes(&images, &releases, &release, &partial.not_written, &all).await;
}

#[tokio::test]
async fn writes_failing_side_by_side_are_all_reported_in_plan_order() {
    let all = services(6);
    let (images, releases, release) = release_of(&all).await;
    // In flight: s00 … s03. s03 fails first, then s01 succeeds, s02 fails,
    // s00 succeeds.
    let mut steps = vec![("s03", true), ("s01", false), ("s02", true), ("s00", false)].into_iter();
    let script = move |in_flight: &[ServiceId]| {
        let (name, fails) = steps.next().expect("no more steps");
        let index = in_flight
            .iter()
            .position(|s| s.as_str() == name)
            .unwrap_or_else(|| panic!("{name} is not in flight: {in_flight:?}"));
        (index, fails)
    };
    let run = gated_deploy(&images, &releases, &release, all.len(), 4, script).await;
    assert_eq!(run.started.len(), 4);
    let err = run.result.expect_err("writes failed");
    let Error::PartialDeployment(partial) = &err else {
        panic!("expected PartialDeployment, got {err:?}");
    };
    assert_eq!(partial.written, vec![svc("s00"), svc("s01")]);
    // The first failure in plan order, not the first to happen.
    assert_eq!(partial.failed, svc("s02"));
    assert_eq!(
        partial
            .also_failed
            .iter()
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>(),
        vec![svc("s03")]
    );
    assert!(matches!(
        partial.also_failed[0].1,
        Error::Backend {
            kind: BackendErrorKind::Throttled,
            ..
        }
    ));
    assert_eq!(
        partial.not_written,
        vec![svc("s02"), svc("s03"), svc("s04"), svc("s05")]
    );
    let text = err.to_string();
    assert!(
        text.contains("failed at service `s02` (and at s03);"),
        "{text}"
    );
    rerun_completes(&images, &releases, &release, &partial.not_written, &all).await;
}

#[tokio::test]
async fn a_limit_of_one_writes_one_after_another() {
    let all = services(4);
    let (images, releases, release) = release_of(&all).await;
    let run = gated_deploy(
        &images,
        &releases,
        &release,
        all.len(),
        1,
        |_: &[ServiceId]| (0, false),
    )
    .await;
    run.result.expect("deploy");
    assert_eq!(run.most_in_flight, 1);
    assert_eq!(run.started, all);
}

#[tokio::test]
async fn the_default_limit_is_several_writes_at_once() {
    const { assert!(DEFAULT_WRITE_CONCURRENCY > 1) };
    let all = services(DEFAULT_WRITE_CONCURRENCY + 3);
    let (images, releases, release) = release_of(&all).await;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<Gate>();
    let gated = Arc::new(GatedImages {
        inner: images.clone(),
        started: started_tx,
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    // No `with_write_concurrency`: the default applies.
    let t = ReleaseTracker::new(
        project(&project_id()),
        gated.clone(),
        releases.clone(),
        Requester::new(ALICE),
    );
    let deploy = tokio::spawn(async move { t.deploy(&release, "stage", "default").await });
    let mut gates = Vec::new();
    while gates.len() < DEFAULT_WRITE_CONCURRENCY {
        let gate = tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} writes started, expected more", gates.len()))
            .expect("the deploy ended early");
        gates.push(gate);
    }
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(
        started_rx.try_recv().is_err(),
        "more than the default started"
    );
    assert_eq!(
        gated.in_flight.load(Ordering::SeqCst),
        DEFAULT_WRITE_CONCURRENCY
    );
    for (_, verdict) in gates {
        let _ = verdict.send(Ok(()));
    }
    for _ in DEFAULT_WRITE_CONCURRENCY..all.len() {
        let (_, verdict) = tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
            .await
            .expect("the rest start")
            .expect("the deploy ended early");
        let _ = verdict.send(Ok(()));
    }
    let deployed = deploy.await.expect("no panic").expect("deploy");
    assert_eq!(deployed.written, all);
    assert_eq!(
        gated.most_in_flight.load(Ordering::SeqCst),
        DEFAULT_WRITE_CONCURRENCY
    );
}

fn release_id(reference: &ReleaseRef) -> release_tracking::ReleaseId {
    match reference {
        ReleaseRef::Id(id) => id.clone(),
        ReleaseRef::Latest => panic!("a release made by the test has an id"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any number of changes, any limit, any completion order and any set
    /// of failures: at most `limit` in flight, none started after a
    /// failure, the report matches what the store holds (in plan order),
    /// and a rerun writes exactly the rest.
    #[test]
    fn any_completion_order_and_failures_are_reported_exactly(
        n in 1usize..10,
        limit in 1usize..5,
        choices in proptest::collection::vec((0usize..8, prop::bool::weighted(0.2)), 10),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let all = services(n);
            let (images, releases, release) = release_of(&all).await;
            let mut choices = choices.into_iter().cycle();
            let script = move |_: &[ServiceId]| choices.next().expect("cycled");
            let run = gated_deploy(&images, &releases, &release, n, limit, script).await;
            assert!(run.most_in_flight <= limit);
            assert_eq!(
                run.started.len(),
                run.succeeded.len() + run.failed.len(),
                "every write that started was completed by the script"
            );
            let held = at_stage(&images).await;
            assert_eq!(held, run.succeeded);
            match run.result {
                Ok(deployed) => {
                    assert!(run.failed.is_empty());
                    assert_eq!(deployed.written, all);
                }
                Err(Error::PartialDeployment(partial)) => {
                    let failed: Vec<ServiceId> = std::iter::once(partial.failed.clone())
                        .chain(partial.also_failed.iter().map(|(s, _)| s.clone()))
                        .collect();
                    // Each list in plan order (services are named in plan order).
                    assert!(partial.written.windows(2).all(|w| w[0] < w[1]));
                    assert!(failed.windows(2).all(|w| w[0] < w[1]));
                    assert_eq!(partial.written.iter().cloned().collect::<BTreeSet<_>>(), run.succeeded);
                    assert_eq!(failed.iter().cloned().collect::<BTreeSet<_>>(), run.failed);
                    let never_started: Vec<ServiceId> = all
                        .iter()
                        .filter(|s| !run.started.contains(s))
                        .cloned()
                        .collect();
                    let expected: Vec<ServiceId> = failed.iter().cloned().chain(never_started).collect();
                    assert_eq!(partial.not_written, expected);
                    rerun_completes(&images, &releases, &release, &partial.not_written, &all).await;
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        });
    }
}
