//! Every fault point survived, on the emulator: for each operation, AWS
//! call i fails (for every i from 1 to M, the calls a fault-free run makes)
//! with an error the SDK does not retry away; the error says what was and
//! was not written; nothing claims a write that did not land; and running
//! the same command again leaves exactly what a fault-free run leaves.
//! Run by `scripts/test.sh`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use release_tracking::aws::{DynamoDbReleaseStore, SsmImageStore};
use release_tracking::{
    Environment, Error, ImageUri, Label, Project, ProjectId, Release, ReleaseRef, ReleaseStore,
    ReleaseTracker, Requester, ServiceId, Timestamp, Warning,
};

#[path = "common/aws.rs"]
mod aws_common;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const REGISTRY: &str = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome";

/// Fails the `fail_at`-th AWS call made through the clients it is attached
/// to (counting from 1; 0 fails none), before the request is built: the SDK
/// does not retry an interceptor's error, so the call fails once and for
/// all, and nothing reaches the emulator.
#[derive(Clone, Debug, Default)]
struct FailCall {
    fail_at: usize,
    seen: Arc<AtomicUsize>,
    operations: Arc<Mutex<Vec<String>>>,
}

impl FailCall {
    fn at(fail_at: usize) -> FailCall {
        FailCall {
            fail_at,
            ..FailCall::default()
        }
    }

    /// The operations called so far, in order, the failed one included.
    fn operations(&self) -> Vec<String> {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Intercept for FailCall {
    fn name(&self) -> &'static str {
        "FailCall"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "(unknown)".to_owned());
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(operation.clone());
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            return Err(format!("injected fault at call {n} ({operation})").into());
        }
        Ok(())
    }
}

type Tracker = ReleaseTracker<SsmImageStore, DynamoDbReleaseStore>;

fn svc(name: &str) -> ServiceId {
    name.parse().expect("service id")
}

fn image(service: &str, tag: &str) -> ImageUri {
    format!("{REGISTRY}/{service}:{tag}")
        .parse()
        .expect("image URI")
}

/// When a faulty run runs.
fn noon() -> Timestamp {
    "2024-05-01T12:00:00".parse().expect("timestamp")
}

/// Random release ids, and one fixed deployment id: a fault-free run and a
/// rerun record the same deployment.
struct FixedDeploymentId;

impl release_tracking::IdGenerator for FixedDeploymentId {
    fn new_release_id(&self) -> release_tracking::ReleaseId {
        release_tracking::ReleaseId::random()
    }

    fn new_deployment_id(&self) -> String {
        "00000000-0000-4000-8000-00000000d001".to_owned()
    }
}

/// When fault-free runs and reruns run: past the expiry of any lease a
/// faulty run left, so the rerun is never refused for it, and the dates
/// they record are the same.
fn later() -> Timestamp {
    noon().add_micros(3600 * 1_000_000)
}

/// How long a deploy's lease lasts.
const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

fn project(id: &ProjectId) -> Project {
    Project::new(
        id.clone(),
        "Fault sweep",
        vec![
            Environment::new("stage".parse().expect("environment"), "Staging"),
            Environment::new("prod".parse().expect("environment"), "Production"),
        ],
    )
    .expect("valid project")
}

/// A tracker on the emulator as `release_tool` makes one (the release table
/// holds the controls, so deploys take a lease), whose SSM and DynamoDB
/// calls go through `faults`, at the time `at`.
async fn tracker_at(project_id: &ProjectId, faults: &FailCall, at: Timestamp) -> Tracker {
    let config = aws_common::sdk_config().await;
    let ssm = aws_sdk_ssm::config::Builder::from(&config)
        .interceptor(faults.clone())
        .build();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
        .interceptor(faults.clone())
        .build();
    let releases = DynamoDbReleaseStore::from_client(aws_sdk_dynamodb::Client::from_conf(dynamodb));
    ReleaseTracker::new(
        project(project_id),
        SsmImageStore::from_client(aws_sdk_ssm::Client::from_conf(ssm)),
        releases.clone(),
        Requester::new(ALICE),
    )
    .with_clock(move || at)
    .with_id_generator(FixedDeploymentId)
    .with_controls(releases)
    .with_lease_ttl(LEASE_TTL)
    .with_lease_host("sweep-host")
}

/// [`tracker_at`] at [`later`].
async fn tracker(project_id: &ProjectId, faults: &FailCall) -> Tracker {
    tracker_at(project_id, faults, later()).await
}

/// A project where deploying its one release to stage writes three
/// parameters and leaves one as it is; returns the release.
async fn deploy_scene(project_id: &ProjectId) -> Release {
    aws_common::release_store(project_id).await;
    let setup = tracker(project_id, &FailCall::default()).await;
    let latest = Label::latest();
    let stage: Label = "stage".parse().expect("label");
    for service in ["archivist", "bagger", "notifier", "replicator"] {
        setup
            .publish(&latest, &svc(service), &image(service, "ref.new"))
            .await
            .expect("publish to latest");
    }
    setup
        .publish(&stage, &svc("archivist"), &image("archivist", "ref.new"))
        .await
        .expect("publish to stage");
    setup
        .publish(&stage, &svc("bagger"), &image("bagger", "ref.old"))
        .await
        .expect("publish to stage");
    setup
        .prepare(release_tracking::PrepareRequest::latest().description("sweep"))
        .await
        .expect("prepare")
        .release
}

/// What a deploy leaves behind: the stage label and the release's
/// deployments, as JSON without the project's own id.
async fn outcome(project_id: &ProjectId, release: &Release) -> (BTreeMap<String, String>, String) {
    let clean = tracker(project_id, &FailCall::default()).await;
    let stage = clean
        .label_images(&"stage".parse().expect("label"))
        .await
        .expect("read stage");
    let images = stage
        .images
        .into_iter()
        .map(|(service, uri)| (service.to_string(), uri.to_string()))
        .collect();
    let stored = clean
        .release_store()
        .release(project_id, release.release_id())
        .await
        .expect("read the release")
        .expect("the release exists");
    let deployments = serde_json::to_string(&stored.to_json()["deployments"]).expect("JSON");
    (images, deployments)
}

/// An error and its causes, one per line, as `release_tool` prints them.
fn chain(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str("\n  caused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_survives_a_fault_at_every_call() {
    // The fault-free run, counted.
    let reference_project = aws_common::fresh_project("sweep");
    let reference_release = deploy_scene(&reference_project).await;
    let counted = FailCall::default();
    tracker(&reference_project, &counted)
        .await
        .deploy(
            &ReleaseRef::Id(reference_release.release_id().clone()),
            "stage",
            "sweep",
        )
        .await
        .expect("the fault-free deploy");
    let calls = counted.operations();
    let m = calls.len();
    assert!(m >= 4, "a deploy reads, writes and records: {calls:?}");
    let expected = outcome(&reference_project, &reference_release).await;

    let mut survived = 0;
    for i in 1..=m {
        let project_id = aws_common::fresh_project("sweep");
        let release = deploy_scene(&project_id).await;
        let before = outcome(&project_id, &release).await;
        let id = ReleaseRef::Id(release.release_id().clone());
        let faults = FailCall::at(i);
        let result = tracker_at(&project_id, &faults, noon())
            .await
            .deploy(&id, "stage", "sweep")
            .await;
        let failed = faults.operations()[i - 1].clone();
        let err = match result {
            Ok(deployed) => {
                // Only giving the lease back may fail after the deploy is
                // done: it says so, and the lease expires by itself.
                assert_eq!(
                    failed, "DeleteItem",
                    "call {i} failed, yet the deploy succeeded"
                );
                assert!(
                    deployed
                        .warnings
                        .iter()
                        .any(|w| matches!(w, Warning::LeaseNotReleased { .. })),
                    "call {i}: {:?}",
                    deployed.warnings
                );
                let (images, _) = outcome(&project_id, &release).await;
                assert_eq!(
                    images, expected.0,
                    "call {i}: the deploy itself is complete"
                );
                let left = tracker(&project_id, &FailCall::default())
                    .await
                    .lease_status("stage")
                    .await
                    .expect("lease status")
                    .expect("the lease is left");
                assert!(left.expires <= later(), "call {i}: the lease left expires");
                // The next deploy, once it has expired, proceeds.
                tracker(&project_id, &FailCall::default())
                    .await
                    .deploy(&id, "stage", "sweep")
                    .await
                    .unwrap_or_else(|e| panic!("a deploy after the lease expired: {e}"));
                survived += 1;
                continue;
            }
            Err(err) => err,
        };
        let text = chain(&err);
        let (images, deployments) = outcome(&project_id, &release).await;
        assert_eq!(
            deployments, before.1,
            "fault at call {i} ({failed}): no deployment may be recorded: {text}"
        );
        let new = |service: &ServiceId| {
            images.get(service.as_str()) == Some(&image(service.as_str(), "ref.new").to_string())
        };
        match &err {
            Error::PartialDeployment(partial) => {
                assert_eq!(failed, "PutParameter", "call {i}: {text}");
                for service in &partial.written {
                    assert!(
                        new(service),
                        "call {i}: {service} is reported written but is not: {text}"
                    );
                }
                for service in &partial.not_written {
                    assert_eq!(
                        images.get(service.as_str()),
                        before.0.get(service.as_str()),
                        "call {i}: {service} is reported not written but was: {text}"
                    );
                }
                assert!(text.contains("not written"), "call {i}: {text}");
            }
            Error::DeploymentNotRecorded { written, .. } => {
                assert_eq!(failed, "UpdateItem", "call {i}: {text}");
                assert_eq!(
                    images, expected.0,
                    "call {i}: every parameter was written: {text}"
                );
                assert_eq!(written.len(), 3, "call {i}: {text}");
            }
            _ => {
                // A read failed: nothing may have changed.
                assert_eq!(
                    images, before.0,
                    "fault at call {i} ({failed}) before any write: {text}"
                );
            }
        }
        assert!(
            text.contains("injected fault"),
            "call {i}: the error shows its cause: {text}"
        );

        tracker(&project_id, &FailCall::default())
            .await
            .deploy(&id, "stage", "sweep")
            .await
            .unwrap_or_else(|e| panic!("rerun after a fault at call {i} ({failed}): {e}"));
        assert_eq!(
            outcome(&project_id, &release).await,
            expected,
            "after a fault at call {i} ({failed}) and a rerun"
        );
        assert_eq!(
            tracker(&project_id, &FailCall::default())
                .await
                .lease_status("stage")
                .await
                .expect("lease status"),
            None,
            "after a fault at call {i} ({failed}) and a rerun, no lease is left"
        );
        survived += 1;
    }
    assert_eq!(survived, m);
    println!("deploy: {survived} of {m} fault points survived ({calls:?})");
}

/// What the controls of a project hold: the stage lease's holder host, the
/// prod freeze's reason, and the trail's kinds, newest first.
async fn controls_outcome(project_id: &ProjectId) -> (Option<String>, Option<String>, Vec<String>) {
    let clean = tracker(project_id, &FailCall::default()).await;
    let lease = clean.lease_status("stage").await.expect("lease status");
    let status = clean.controls_status("prod").await.expect("controls");
    let trail = clean.control_events(None, 100).await.expect("events");
    (
        lease.map(|l| l.host),
        status.freeze.map(|f| f.reason.as_str().to_owned()),
        trail.iter().map(|e| e.change.kind().to_owned()).collect(),
    )
}

/// A project whose stage lease is held by a deploy that died.
async fn lease_scene(project_id: &ProjectId) {
    let release = deploy_scene(project_id).await;
    let releases = DynamoDbReleaseStore::new(&aws_common::sdk_config().await);
    let request = release_tracking::control::LeaseRequest::new(
        Requester::new("arn:aws:iam::123456789012:user/bob"),
        release_tracking::control::LeaseOperation::Deploy,
        release.release_id().clone(),
        "dead-host",
        LEASE_TTL,
    )
    .expect("lease request");
    release_tracking::ControlStore::acquire_lease(
        &releases,
        project_id,
        &"stage".parse().expect("environment"),
        &request,
        later(),
    )
    .await
    .expect("acquire");
}

/// `force_unlock` and `freeze` are each one change with its event: a fault
/// at any of their calls leaves both or neither, and a rerun completes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_changes_survive_a_fault_at_every_call() {
    for operation in ["force_unlock", "freeze"] {
        let run = |t: Tracker| async move {
            match operation {
                "force_unlock" => t
                    .force_unlock("stage", "dead-host is gone")
                    .await
                    .map(|_| ()),
                _ => t.freeze("prod", "INC-9").await.map(|_| ()),
            }
        };
        let reference = aws_common::fresh_project("sweep");
        lease_scene(&reference).await;
        let before = controls_outcome(&reference).await;
        let counted = FailCall::default();
        run(tracker(&reference, &counted).await)
            .await
            .expect("the fault-free change");
        let expected = controls_outcome(&reference).await;
        assert_ne!(before, expected, "{operation} changes something");
        let m = counted.operations().len();
        for i in 1..=m {
            let project_id = aws_common::fresh_project("sweep");
            lease_scene(&project_id).await;
            let faults = FailCall::at(i);
            let err = run(tracker(&project_id, &faults).await)
                .await
                .expect_err("the injected fault fails the change");
            let failed = faults.operations()[i - 1].clone();
            let now = controls_outcome(&project_id).await;
            assert_eq!(
                now,
                before,
                "{operation}: a fault at call {i} ({failed}) changed something: {}",
                chain(&err)
            );
            run(tracker(&project_id, &FailCall::default()).await)
                .await
                .unwrap_or_else(|e| panic!("{operation} rerun after call {i} ({failed}): {e}"));
            assert_eq!(
                controls_outcome(&project_id).await,
                expected,
                "{operation}, call {i}"
            );
        }
        println!(
            "{operation}: {m} of {m} fault points survived ({:?})",
            counted.operations()
        );
    }
}

/// A project where release R1 and then R2 were deployed to stage (R2
/// changing two of four services); returns (R1, R2).
async fn rollback_scene(project_id: &ProjectId) -> (Release, Release) {
    aws_common::release_store(project_id).await;
    let hours_before = |h: i64| noon().add_micros(-h * 3600 * 1_000_000);
    let latest = Label::latest();
    let at = |h| async move { tracker_at(project_id, &FailCall::default(), hours_before(h)).await };
    let services = ["archivist", "bagger", "notifier", "replicator"];
    for service in services {
        at(3)
            .await
            .publish(&latest, &svc(service), &image(service, "ref.old"))
            .await
            .expect("publish");
    }
    let first = at(3)
        .await
        .prepare(release_tracking::PrepareRequest::latest().description("R1"))
        .await
        .expect("prepare R1")
        .release;
    let stage = |release: &Release| ReleaseRef::Id(release.release_id().clone());
    at(3)
        .await
        .deploy(&stage(&first), "stage", "R1")
        .await
        .expect("deploy R1");
    for service in &services[..2] {
        at(2)
            .await
            .publish(&latest, &svc(service), &image(service, "ref.new"))
            .await
            .expect("publish");
    }
    let second = at(2)
        .await
        .prepare(release_tracking::PrepareRequest::latest().description("R2"))
        .await
        .expect("prepare R2")
        .release;
    at(1)
        .await
        .deploy(&stage(&second), "stage", "R2")
        .await
        .expect("deploy R2");
    (first, second)
}

/// What a rollback leaves: the stage label and R1's deployments (where the
/// rollback is recorded), with R2's id as `R2`.
async fn rollback_outcome(
    project_id: &ProjectId,
    (first, second): &(Release, Release),
) -> (BTreeMap<String, String>, String) {
    let (images, deployments) = outcome(project_id, first).await;
    (
        images,
        deployments.replace(second.release_id().as_str(), "R2"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_survives_a_fault_at_every_call() {
    let reference = aws_common::fresh_project("sweep");
    let releases = rollback_scene(&reference).await;
    let counted = FailCall::default();
    let rolled = tracker(&reference, &counted)
        .await
        .rollback("stage", None, "back")
        .await
        .expect("the fault-free rollback");
    assert_eq!(
        rolled.written.len(),
        2,
        "R1 differs from R2 in two services"
    );
    let calls = counted.operations();
    let m = calls.len();
    let expected = rollback_outcome(&reference, &releases).await;

    for i in 1..=m {
        let project_id = aws_common::fresh_project("sweep");
        let releases = rollback_scene(&project_id).await;
        let before = rollback_outcome(&project_id, &releases).await;
        let faults = FailCall::at(i);
        let result = tracker_at(&project_id, &faults, noon())
            .await
            .rollback("stage", None, "back")
            .await;
        let failed = faults.operations()[i - 1].clone();
        let after = rollback_outcome(&project_id, &releases).await;
        match result {
            Ok(done) => {
                // Only giving the lease back may fail once the rollback is
                // done; the lease expires by itself.
                assert_eq!(
                    failed, "DeleteItem",
                    "call {i} failed, yet the rollback succeeded"
                );
                assert!(
                    done.warnings
                        .iter()
                        .any(|w| matches!(w, Warning::LeaseNotReleased { .. })),
                    "call {i}: {:?}",
                    done.warnings
                );
                assert_eq!(
                    after.0, expected.0,
                    "call {i}: the rollback itself is complete"
                );
                continue;
            }
            Err(err) => {
                let text = chain(&err);
                assert_eq!(
                    after.1, before.1,
                    "call {i} ({failed}): no rollback may be recorded: {text}"
                );
                if let Error::PartialDeployment(partial) = &err {
                    for service in &partial.not_written {
                        assert_eq!(
                            after.0.get(service.as_str()),
                            before.0.get(service.as_str()),
                            "call {i}: {service} is reported not written but was: {text}"
                        );
                    }
                } else if !matches!(err, Error::DeploymentNotRecorded { .. }) {
                    assert_eq!(
                        after.0, before.0,
                        "call {i} ({failed}) before any write: {text}"
                    );
                }
                assert!(text.contains("injected fault"), "call {i}: {text}");
            }
        }
        tracker(&project_id, &FailCall::default())
            .await
            .rollback("stage", None, "back")
            .await
            .unwrap_or_else(|e| panic!("rerun after a fault at call {i} ({failed}): {e}"));
        assert_eq!(
            rollback_outcome(&project_id, &releases).await,
            expected,
            "after a fault at call {i} ({failed}) and a rerun"
        );
    }
    println!("rollback: {m} of {m} fault points survived ({calls:?})");
}
