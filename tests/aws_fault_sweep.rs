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
    ReleaseTracker, Requester, ServiceId, Timestamp,
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

/// A fixed clock: a fault-free run and a rerun record the same dates.
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

/// A tracker on the emulator whose SSM and DynamoDB calls go through
/// `faults`.
async fn tracker(project_id: &ProjectId, faults: &FailCall) -> Tracker {
    let config = aws_common::sdk_config().await;
    let ssm = aws_sdk_ssm::config::Builder::from(&config)
        .interceptor(faults.clone())
        .build();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
        .interceptor(faults.clone())
        .build();
    ReleaseTracker::new(
        project(project_id),
        SsmImageStore::from_client(aws_sdk_ssm::Client::from_conf(ssm)),
        DynamoDbReleaseStore::from_client(aws_sdk_dynamodb::Client::from_conf(dynamodb)),
        Requester::new(ALICE),
    )
    .with_clock(noon)
    .with_id_generator(FixedDeploymentId)
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
        let err = tracker(&project_id, &faults)
            .await
            .deploy(&id, "stage", "sweep")
            .await
            .expect_err("the injected fault fails the deploy");
        let failed = faults.operations()[i - 1].clone();
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
        survived += 1;
    }
    assert_eq!(survived, m);
    println!("deploy: {survived} of {m} fault points survived ({calls:?})");
}
