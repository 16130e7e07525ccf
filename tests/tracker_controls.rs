//! `ReleaseTracker::with_controls`: a deploy holds its environment's lease
//! from before its first write to its end (renewed as it goes, given back
//! also on failure) and refuses a busy or frozen environment and a blocked
//! release before writing anything. On the in-memory stores with an
//! injected clock, and on one SQLite file shared by two trackers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use release_tracking::control::{ControlAction, Lease, LeaseOperation, LeaseRequest, Reason};
use release_tracking::store::LabelImages;
use release_tracking::{
    ControlStore, Environment, Error, ImageStore, ImageUri, InMemoryImageStore,
    InMemoryReleaseStore, Label, PrepareRequest, Project, ProjectId, Release, ReleaseRef,
    ReleaseStore, ReleaseTracker, Requester, Result, ServiceId, Timestamp, Warning,
};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/deployer/alice";
const BOB: &str = "arn:aws:sts::123456789012:assumed-role/deployer/bob";
const SERVICES: [&str; 4] = ["archivist", "bag-verifier", "notifier", "replicator"];

fn at(seconds: i64) -> Timestamp {
    "2024-03-01T09:00:00"
        .parse::<Timestamp>()
        .expect("valid timestamp")
        .add_micros(seconds * 1_000_000)
}

fn project() -> Project {
    Project::new(
        "storage".parse().expect("id"),
        "Storage service",
        vec![
            Environment::new("stage".parse().expect("id"), "Staging"),
            Environment::new("prod".parse().expect("id"), "Production"),
        ],
    )
    .expect("valid project")
}

fn project_id() -> ProjectId {
    "storage".parse().expect("id")
}

fn env(name: &str) -> release_tracking::EnvironmentId {
    name.parse().expect("environment id")
}

fn ecr(service: &str, tag: &str) -> ImageUri {
    format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/storage/{service}:{tag}")
        .parse()
        .expect("uri")
}

/// A clock that moves `step` seconds every time it is read.
#[derive(Clone)]
struct SteppingClock {
    seconds: Arc<AtomicI64>,
    step: i64,
}

impl SteppingClock {
    fn new(step: i64) -> SteppingClock {
        SteppingClock {
            seconds: Arc::new(AtomicI64::new(0)),
            step,
        }
    }

    fn now(&self) -> Timestamp {
        at(self.seconds.load(Ordering::SeqCst))
    }
}

impl release_tracking::Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        at(self.seconds.fetch_add(self.step, Ordering::SeqCst))
    }
}

/// What happens inside a `put_image`: the lease on the label's environment
/// is noted, and a hook may act (fail, force-unlock, wait).
type Hook = Box<dyn Fn(usize) -> Option<Error> + Send + Sync>;

/// An image store that notes the lease held at each write.
#[derive(Clone)]
struct Watching<I> {
    inner: I,
    controls: Arc<dyn ControlStore>,
    seen: Arc<Mutex<Vec<Option<Lease>>>>,
    hook: Arc<Hook>,
    pause: Duration,
}

impl<I> std::fmt::Debug for Watching<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watching")
    }
}

impl<I: ImageStore + Clone> Watching<I> {
    fn new(inner: I, controls: Arc<dyn ControlStore>) -> Watching<I> {
        Watching {
            inner,
            controls,
            seen: Arc::default(),
            hook: Arc::new(Box::new(|_| None)),
            pause: Duration::ZERO,
        }
    }

    fn with_hook(mut self, hook: impl Fn(usize) -> Option<Error> + Send + Sync + 'static) -> Self {
        self.hook = Arc::new(Box::new(hook));
        self
    }

    fn seen(&self) -> Vec<Option<Lease>> {
        self.seen.lock().expect("lock").clone()
    }
}

#[async_trait]
impl<I: ImageStore + Clone> ImageStore for Watching<I> {
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
        if label.as_str() != "latest" {
            let environment = env(label.as_str());
            let lease = self.controls.lease(project, &environment).await?;
            let n = {
                let mut seen = self.seen.lock().expect("lock");
                seen.push(lease);
                seen.len()
            };
            if let Some(error) = (self.hook)(n) {
                return Err(error);
            }
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        self.inner.put_image(project, label, service, image).await
    }
}

/// Images of four services at `latest` and a release of them.
async fn release_of_four(images: &impl ImageStore, releases: &impl ReleaseStore) -> Release {
    let tracker = ReleaseTracker::new(project(), images, releases, Requester::new(ALICE))
        .with_clock(|| at(-100));
    for service in SERVICES {
        tracker
            .publish(
                &Label::latest(),
                &service.parse().expect("service"),
                &ecr(service, "ref.1"),
            )
            .await
            .expect("publish");
    }
    tracker
        .prepare(PrepareRequest::latest().description("four services"))
        .await
        .expect("prepare")
        .release
}

struct Setup {
    images: Watching<InMemoryImageStore>,
    releases: InMemoryReleaseStore,
    release: Release,
    clock: SteppingClock,
}

async fn setup(step: i64) -> Setup {
    let raw = InMemoryImageStore::new();
    let releases = InMemoryReleaseStore::new();
    let release = release_of_four(&raw, &releases).await;
    Setup {
        images: Watching::new(raw, Arc::new(releases.clone())),
        releases,
        release,
        clock: SteppingClock::new(step),
    }
}

type Tracker = ReleaseTracker<Watching<InMemoryImageStore>, InMemoryReleaseStore>;

fn tracker(setup: &Setup, ttl_seconds: u64) -> Tracker {
    ReleaseTracker::new(
        project(),
        setup.images.clone(),
        setup.releases.clone(),
        Requester::new(ALICE),
    )
    .with_clock(setup.clock.clone())
    .with_controls(setup.releases.clone())
    .with_lease_host("ci-runner-1")
    .with_lease_ttl(Duration::from_secs(ttl_seconds))
    // One write at a time, so the tests can say which write sees what.
    .with_write_concurrency(1)
}

fn id_of(release: &Release) -> ReleaseRef {
    release.release_id().into()
}

async fn label(setup: &Setup, environment: &str) -> usize {
    setup
        .images
        .label_images(&project_id(), &Label::new(environment).expect("label"))
        .await
        .expect("label")
        .images
        .len()
}

async fn deployments(setup: &Setup) -> usize {
    setup
        .releases
        .release(&project_id(), setup.release.release_id())
        .await
        .expect("read")
        .expect("exists")
        .deployments()
        .len()
}

async fn bob_holds(setup: &Setup, environment: &str, now: Timestamp) -> Lease {
    let request = LeaseRequest::new(
        Requester::new(BOB),
        LeaseOperation::Deploy,
        setup.release.release_id().clone(),
        "bobs-laptop",
        Duration::from_secs(600),
    )
    .expect("request");
    setup
        .releases
        .acquire_lease(&project_id(), &env(environment), &request, now)
        .await
        .expect("bob takes the lease")
        .lease
}

async fn prod_lease(setup: &Setup) -> Option<Lease> {
    setup
        .releases
        .lease(&project_id(), &env("prod"))
        .await
        .expect("lease")
}

/// What an operator does while a write runs: force-unlock prod.
fn force_unlock_prod(controls: &InMemoryReleaseStore) -> Option<Lease> {
    futures::executor::block_on(controls.force_unlock(
        &project_id(),
        &env("prod"),
        &action("stuck deploy"),
    ))
    .expect("force unlock")
}

fn action(reason: &str) -> ControlAction {
    ControlAction::new(
        Requester::new(BOB),
        Reason::new(reason).expect("reason"),
        at(0),
    )
    .expect("action")
}

#[tokio::test]
async fn a_deploy_holds_the_lease_while_it_writes_and_gives_it_back() {
    let setup = setup(0).await;
    let deployed = tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect("deploy");
    assert_eq!(deployed.written.len(), 4);
    assert_eq!(deployed.warnings, []);
    let seen = setup.images.seen();
    assert_eq!(seen.len(), 4);
    for lease in &seen {
        let lease = lease.as_ref().expect("a lease is held during every write");
        assert_eq!(lease.holder, Requester::new(ALICE));
        assert_eq!(lease.operation, LeaseOperation::Deploy);
        assert_eq!(&lease.release, setup.release.release_id());
        assert_eq!(lease.host, "ci-runner-1");
        assert_eq!(lease.environment, env("prod"));
        assert_eq!((lease.acquired, lease.expires), (at(0), at(600)));
    }
    assert_eq!(
        prod_lease(&setup).await,
        None,
        "the lease is given back at the end"
    );
}

#[tokio::test]
async fn a_busy_environment_is_refused_before_any_write_naming_the_holder() {
    let setup = setup(0).await;
    let bob = bob_holds(&setup, "prod", at(-10)).await;
    let error = tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect_err("prod is busy");
    let message = error.to_string();
    match error {
        Error::EnvironmentBusy { lease } => assert_eq!(*lease, bob),
        other => panic!("expected EnvironmentBusy, got {other}"),
    }
    assert!(
        message.contains("environment `prod` is being deployed by bob (release `")
            && message.contains("expires 2024-03-01T09:09:50 UTC"),
        "{message}"
    );
    assert_eq!(setup.images.seen(), [], "nothing was written");
    assert_eq!(label(&setup, "prod").await, 0);
    assert_eq!(deployments(&setup).await, 0, "nothing was recorded");
    assert_eq!(
        prod_lease(&setup).await,
        Some(bob),
        "the holder's lease is untouched"
    );
    // Another environment is free.
    tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "stage", "to stage")
        .await
        .expect("stage is free");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let setup = setup(0).await;
    bob_holds(&setup, "prod", at(-600)).await;
    tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect("bob's lease expired at the tracker's now");
    assert_eq!(label(&setup, "prod").await, 4);
    assert_eq!(prod_lease(&setup).await, None);
}

#[tokio::test]
async fn a_frozen_environment_is_refused_and_the_lease_given_back() {
    let setup = setup(0).await;
    let freeze = setup
        .releases
        .freeze(&project_id(), &env("prod"), &action("incident INC-9"))
        .await
        .expect("freeze");
    let error = tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect_err("prod is frozen");
    assert!(error.to_string().contains("incident INC-9"), "{error}");
    match error {
        Error::EnvironmentFrozen { freeze: found } => assert_eq!(*found, freeze),
        other => panic!("expected EnvironmentFrozen, got {other}"),
    }
    assert_eq!(setup.images.seen(), [], "nothing was written");
    assert_eq!(deployments(&setup).await, 0);
    assert_eq!(
        prod_lease(&setup).await,
        None,
        "the lease taken for the check is given back"
    );
    setup
        .releases
        .unfreeze(&project_id(), &env("prod"), &action("over"))
        .await
        .expect("unfreeze");
    tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect("unfrozen");
}

#[tokio::test]
async fn a_blocked_release_is_refused_except_where_it_is_current() {
    let setup = setup(0).await;
    let tracker = tracker(&setup, 600);
    tracker
        .deploy(&id_of(&setup.release), "stage", "to stage")
        .await
        .expect("deploy to stage");
    let block = setup
        .releases
        .block_release(
            &project_id(),
            setup.release.release_id(),
            &action("corrupts bags"),
        )
        .await
        .expect("block");
    let before = setup.images.seen().len();
    match tracker
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
    {
        Err(Error::ReleaseBlocked { block: found }) => assert_eq!(*found, block),
        other => panic!("expected ReleaseBlocked, got {other:?}"),
    }
    assert_eq!(setup.images.seen().len(), before, "nothing was written");
    assert_eq!(label(&setup, "prod").await, 0);
    assert_eq!(prod_lease(&setup).await, None);
    // Where it is already current, it may be deployed again.
    tracker
        .deploy(&id_of(&setup.release), "stage", "again")
        .await
        .expect("current in stage");
    assert_eq!(deployments(&setup).await, 2);
}

#[tokio::test]
async fn a_failed_deploy_gives_the_lease_back() {
    let mut setup = setup(0).await;
    setup.images = setup.images.with_hook(|n| {
        (n == 2).then(|| Error::backend("writing a parameter", "the service said no"))
    });
    let error = tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect_err("the second write fails");
    match &error {
        Error::PartialDeployment(partial) => assert_eq!(partial.written.len(), 1),
        other => panic!("expected PartialDeployment, got {other}"),
    }
    assert_eq!(
        prod_lease(&setup).await,
        None,
        "the lease is given back after a failure"
    );
}

#[tokio::test]
async fn a_long_deploy_renews_its_lease() {
    // Every read of the clock is 2 minutes later; the lease lasts 5.
    let setup = setup(120).await;
    tracker(&setup, 300)
        .deploy(&id_of(&setup.release), "prod", "slow")
        .await
        .expect("deploy");
    let seen: Vec<Lease> = setup.images.seen().into_iter().flatten().collect();
    assert_eq!(seen.len(), 4, "a lease is held at every write");
    let expiries: Vec<Timestamp> = seen.iter().map(|l| l.expires).collect();
    assert!(
        expiries.windows(2).all(|pair| pair[0] < pair[1]),
        "renewed as it goes: {expiries:?}"
    );
    let first = &seen[0];
    assert!(
        seen.iter()
            .all(|l| l.lease_id == first.lease_id && l.acquired == first.acquired),
        "one lease, renewed"
    );
    assert!(
        setup.clock.now() > first.acquired.add_micros(300_000_000),
        "the deploy outlasted the lease's first term"
    );
}

#[tokio::test]
async fn a_lease_lost_mid_deploy_stops_it_before_the_next_write() {
    let mut setup = setup(120).await;
    let controls = setup.releases.clone();
    setup.images = setup.images.with_hook(move |n| {
        if n == 1 {
            // An operator force-unlocks prod while the first write runs.
            assert!(force_unlock_prod(&controls).is_some());
        }
        None
    });
    let error = tracker(&setup, 300)
        .deploy(&id_of(&setup.release), "prod", "slow")
        .await
        .expect_err("the lease was lost");
    let Error::PartialDeployment(partial) = &error else {
        panic!("expected PartialDeployment, got {error}");
    };
    assert_eq!(partial.written.len(), 1, "{error}");
    assert!(matches!(partial.source, Error::LeaseLost { .. }), "{error}");
    assert_eq!(setup.images.seen().len(), 1, "no write after the loss");
    assert_eq!(deployments(&setup).await, 0);
}

#[tokio::test]
async fn a_lease_that_cannot_be_given_back_is_a_warning() {
    let mut setup = setup(0).await;
    let controls = setup.releases.clone();
    setup.images = setup.images.with_hook(move |n| {
        if n == 4 {
            assert!(force_unlock_prod(&controls).is_some());
        }
        None
    });
    let deployed = tracker(&setup, 600)
        .deploy(&id_of(&setup.release), "prod", "to prod")
        .await
        .expect("the writes were done before the loss could be seen");
    assert_eq!(deployed.written.len(), 4);
    match deployed.warnings.as_slice() {
        [warning @ Warning::LeaseNotReleased { .. }] => assert!(
            warning
                .to_string()
                .contains("on environment `prod` was not released"),
            "{warning}"
        ),
        other => panic!("expected one LeaseNotReleased warning, got {other:?}"),
    }
}

#[tokio::test]
async fn two_concurrent_deploys_to_one_environment_one_wins() {
    let mut setup = setup(0).await;
    setup.images.pause = Duration::from_millis(50);
    let (alice, bob) = (
        tracker(&setup, 600),
        ReleaseTracker::new(
            project(),
            setup.images.clone(),
            setup.releases.clone(),
            Requester::new(BOB),
        )
        .with_clock(setup.clock.clone())
        .with_controls(setup.releases.clone()),
    );
    let release = id_of(&setup.release);
    let (a, b) = tokio::join!(
        alice.deploy(&release, "prod", "alice"),
        bob.deploy(&release, "prod", "bob")
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert_eq!(won.written.len(), 4);
    match lost {
        Error::EnvironmentBusy { lease } => {
            assert_eq!(lease.holder, *won.deployment.requested_by())
        }
        other => panic!("expected EnvironmentBusy, got {other}"),
    }
    assert_eq!(deployments(&setup).await, 1);
}

/// Two trackers on two opens of one SQLite file: the lease is the file's.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn trackers_on_one_sqlite_file_share_the_lease() {
    use release_tracking::sqlite::SqliteStore;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let first = SqliteStore::open(&path).expect("open");
    let second = SqliteStore::open(&path).expect("open again");
    let release = release_of_four(&first, &first).await;
    let slow = Watching {
        pause: Duration::from_millis(100),
        ..Watching::new(first.clone(), Arc::new(first.clone()))
    };
    let writing = slow.clone();
    let alice = ReleaseTracker::new(project(), slow, first.clone(), Requester::new(ALICE))
        .with_controls(first.clone());
    let bob = ReleaseTracker::new(
        project(),
        second.clone(),
        second.clone(),
        Requester::new(BOB),
    )
    .with_controls(second.clone());
    let id = id_of(&release);
    let (a, b) = tokio::join!(alice.deploy(&id, "prod", "alice"), async {
        // Once alice is writing, she holds the lease.
        while writing.seen().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bob.deploy(&id, "prod", "bob").await
    });
    a.expect("alice deploys");
    match b {
        Err(Error::EnvironmentBusy { lease }) => assert_eq!(lease.holder, Requester::new(ALICE)),
        other => panic!("expected EnvironmentBusy, got {other:?}"),
    }
    assert_eq!(
        second
            .lease(&project_id(), &env("prod"))
            .await
            .expect("lease"),
        None
    );
}

/// The control commands of the tracker: each checks its environment against
/// the manifest, records who and why, and deploys see their effect.
#[tokio::test]
async fn control_commands_freeze_block_unlock_and_their_trail() {
    let setup = setup(1).await;
    let t = tracker(&setup, 600);
    let id = id_of(&setup.release);

    assert!(matches!(
        t.freeze("prdo", "typo").await,
        Err(Error::UnknownEnvironment { .. })
    ));
    assert!(matches!(
        t.freeze("prod", "  ").await,
        Err(Error::InvalidArgument {
            argument: "reason",
            ..
        })
    ));
    let freeze = t.freeze("prod", "incident INC-7").await.expect("freeze");
    assert_eq!(freeze.reason.as_str(), "incident INC-7");
    assert_eq!(freeze.by, Requester::new(ALICE));
    let err = t
        .deploy(&id, "prod", "during the freeze")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EnvironmentFrozen { .. }), "{err}");
    assert!(err.to_string().contains("incident INC-7"), "{err}");
    let status = t.controls_status("prod").await.expect("status");
    assert_eq!(status.freeze.as_ref(), Some(&freeze));
    assert!(status.lease.is_none(), "a refused deploy leaves no lease");
    assert!(t
        .unfreeze("prod", "resolved")
        .await
        .expect("unfreeze")
        .is_some());
    assert!(t
        .unfreeze("prod", "again")
        .await
        .expect("unfreeze")
        .is_none());

    let block = t.block(&id, "bad migration").await.expect("block");
    assert_eq!(&block.release, setup.release.release_id());
    let err = t.deploy(&id, "prod", "blocked").await.unwrap_err();
    assert!(matches!(err, Error::ReleaseBlocked { .. }), "{err}");
    assert_eq!(
        t.controls_status("stage").await.expect("status").blocks,
        vec![block]
    );
    assert!(t.unblock(&id, "fixed").await.expect("unblock").is_some());
    t.deploy(&id, "prod", "now")
        .await
        .expect("deploy after unblock");

    // A lease left by a holder that died: status names it, force-unlock
    // removes it and says whose it was.
    let left = setup
        .releases
        .acquire_lease(
            &project_id(),
            &env("stage"),
            &LeaseRequest::new(
                Requester::new(BOB),
                LeaseOperation::Deploy,
                setup.release.release_id().clone(),
                "ci-runner-9",
                Duration::from_secs(600),
            )
            .expect("request"),
            setup.clock.now(),
        )
        .await
        .expect("acquire")
        .lease;
    assert_eq!(
        t.lease_status("stage").await.expect("status"),
        Some(left.clone())
    );
    let err = t.deploy(&id, "stage", "busy").await.unwrap_err();
    assert!(err.to_string().contains("being deployed by bob"), "{err}");
    assert_eq!(
        t.force_unlock("stage", "ci-runner-9 died")
            .await
            .expect("unlock"),
        Some(left)
    );
    assert_eq!(t.lease_status("stage").await.expect("status"), None);
    t.deploy(&id, "stage", "after unlock")
        .await
        .expect("deploy");

    let trail = t.control_events(None, 10).await.expect("events");
    let kinds: Vec<&str> = trail.iter().map(|e| e.change.kind()).collect();
    assert_eq!(
        kinds,
        ["force_unlock", "unblock", "block", "unfreeze", "freeze"],
        "newest first, each recorded once"
    );
    assert!(trail.iter().all(|e| e.by == Requester::new(ALICE)));
    let prod = t.control_events(Some("prod"), 10).await.expect("events");
    assert_eq!(prod.len(), 2, "the freeze and the unfreeze concern prod");
}

/// Without controls, the control commands say so; deploys work as before.
#[tokio::test]
async fn control_commands_without_controls_are_refused() {
    let setup = setup(1).await;
    let t = ReleaseTracker::new(
        project(),
        setup.images.clone(),
        setup.releases.clone(),
        Requester::new(ALICE),
    );
    let err = t.freeze("prod", "why").await.unwrap_err();
    assert!(matches!(err, Error::NoControls { .. }), "{err}");
    assert!(matches!(
        t.lease_status("prod").await,
        Err(Error::NoControls { .. })
    ));
}
