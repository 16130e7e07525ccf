//! AWS set-up: `aws::load` and `AwsSettings` (region, role, timeouts), the
//! requester (the caller behind the role), and how failures to reach or
//! authenticate to AWS are reported. The role and requester tests run on the
//! moto emulator (`scripts/test.sh`), as IAM user `alice` in an account of
//! their own; the failure tests use local sockets only.

#[path = "common/aws.rs"]
mod aws_common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use release_tracking::aws::{
    self, AwsContext, AwsSettings, DynamoDbReleaseStore, SsmImageStore, StsRequester,
};
use release_tracking::RequesterSource;
use release_tracking::{
    BackendErrorKind, Error, ImageStore, Label, Manifest, PrepareRequest, Project, ProjectId,
    Release, ReleaseRef, ReleaseTracker, Requester,
};

use aws_common::{endpoint, fresh_project, sdk_config, CallCounter, IamAccount};

fn manifest(project: &str, extra: &str) -> Manifest {
    let text = format!(
        r#"{{"{project}": {{"name": "Test", "environments": [{{"id": "stage", "name": "Staging"}}]{extra}}}}}"#
    );
    Manifest::parse(&text, ".wellcome_project").expect("test manifest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sts_requester_asks_once_and_caches() {
    let counter = CallCounter::new();
    let config = aws_sdk_sts::config::Builder::from(&sdk_config().await)
        .interceptor(counter.clone())
        .build();
    let requester = StsRequester::from_client(aws_sdk_sts::Client::from_conf(config));
    let first = requester.requester().await.expect("requester");
    assert!(first.id().starts_with("arn:aws:"), "{first:?}");
    for _ in 0..3 {
        assert_eq!(requester.requester().await.unwrap(), first);
    }
    assert_eq!(
        counter.calls("GetCallerIdentity"),
        1,
        "asked once, then cached"
    );
}

/// A project entry whose manifest is `{"<project>": {... <extra>}}`.
fn entry(project: &ProjectId, extra: &str) -> Project {
    manifest(project.as_str(), extra)
        .project(project.as_str())
        .expect("the project")
        .clone()
}

/// Publishes an image, prepares a release from `latest` and deploys it to
/// `stage` through a tracker on `aws`'s stores and requester; returns the
/// release as stored after the deployment.
async fn prepare_and_deploy(project: Project, aws: &AwsContext) -> Release {
    let releases = DynamoDbReleaseStore::new(aws.config());
    releases
        .ensure_table(project.id())
        .await
        .expect("provisioning the table");
    let tracker = ReleaseTracker::new(
        project,
        SsmImageStore::new(aws.config()),
        releases,
        aws.requester(),
    );
    tracker
        .publish(
            &Label::latest(),
            &"archivist".parse().unwrap(),
            &"760097843905.dkr.ecr.eu-west-1.amazonaws.com/archivist:ref.1a2b3c"
                .parse()
                .unwrap(),
        )
        .await
        .expect("publish");
    let prepared = tracker
        .prepare(PrepareRequest::from_label(Label::latest()).description("weekly"))
        .await
        .expect("prepare");
    let deployed = tracker
        .deploy(
            &ReleaseRef::from(prepared.release.release_id()),
            "stage",
            "first deploy",
        )
        .await
        .expect("deploy");
    assert_eq!(
        deployed.release.requested_by(),
        prepared.release.requested_by()
    );
    tracker
        .release(&ReleaseRef::from(prepared.release.release_id()))
        .await
        .expect("read back")
        .release
}

/// The release and its one deployment were requested by `arn`, shown as
/// `alice`.
fn assert_requested_by(release: &Release, arn: &str) {
    let expected = Requester::new(arn);
    assert_eq!(release.requested_by(), &expected, "the release");
    assert_eq!(release.requested_by().display_name(), "alice");
    let [deployment] = release.deployments() else {
        panic!("one deployment expected: {:?}", release.deployments());
    };
    assert_eq!(deployment.requested_by(), &expected, "the deployment");
    assert_eq!(deployment.requested_by().display_name(), "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_role_the_caller_behind_it_is_recorded_and_names_the_session() {
    let account = IamAccount::fresh().await;
    let (alice, keys) = account.user_with_key("alice").await;
    assert_eq!(alice, format!("arn:aws:iam::{}:user/alice", account.id));
    let role = account.role("ci", &alice).await;
    let project = fresh_project("role");
    let project = entry(
        &project,
        &format!(r#", "aws_region_name": "eu-west-2", "role_arn": "{role}""#),
    );

    let counter = CallCounter::new();
    let aws = AwsSettings::new()
        .endpoint_url(endpoint())
        .credentials_provider(keys)
        .sts_interceptor(counter.clone())
        .load(&project)
        .await
        .expect("load");
    assert_eq!(aws.config().region().map(|r| r.as_ref()), Some("eu-west-2"));
    assert_eq!(counter.snapshot(), Default::default(), "load asks nothing");

    let release = prepare_and_deploy(project, &aws).await;
    assert_requested_by(&release, &alice);
    assert_eq!(
        counter.calls("GetCallerIdentity"),
        1,
        "one GetCallerIdentity for the session name and both records"
    );

    // The stores ran as the role, in a session named after alice, which is
    // what CloudTrail shows for their calls.
    let session = StsRequester::new(aws.config())
        .requester()
        .await
        .expect("the role session");
    assert_eq!(
        session,
        Requester::new(format!("arn:aws:sts::{}:assumed-role/ci/alice", account.id))
    );
    assert_eq!(counter.calls("GetCallerIdentity"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_role_the_caller_is_recorded() {
    let account = IamAccount::fresh().await;
    let (alice, keys) = account.user_with_key("alice").await;
    let role = account.role("ci", &alice).await;
    // No role in the manifest; and a role in the manifest with
    // assume_role(false): both run with (and record) the base credentials.
    for (extra, assume) in [
        (String::new(), true),
        (format!(r#", "role_arn": "{role}""#), false),
    ] {
        let entry = entry(&fresh_project("norole"), &extra);
        let counter = CallCounter::new();
        let aws = AwsSettings::new()
            .endpoint_url(endpoint())
            .credentials_provider(keys.clone())
            .assume_role(assume)
            .sts_interceptor(counter.clone())
            .load(&entry)
            .await
            .expect("load");
        let release = prepare_and_deploy(entry, &aws).await;
        assert_requested_by(&release, &alice);
        assert_eq!(counter.calls("GetCallerIdentity"), 1, "{extra}");
        // The stores ran as alice herself.
        let who = StsRequester::new(aws.config()).requester().await.unwrap();
        assert_eq!(who, Requester::new(&alice), "{extra}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_asked_once_and_only_when_needed_even_by_concurrent_users() {
    let account = IamAccount::fresh().await;
    let (alice, keys) = account.user_with_key("alice").await;
    let role = account.role("ci", &alice).await;
    let project = fresh_project("lazy");
    let entry = entry(&project, &format!(r#", "role_arn": "{role}""#));
    let counter = CallCounter::new();
    let aws = AwsSettings::new()
        .endpoint_url(endpoint())
        .credentials_provider(keys)
        .sts_interceptor(counter.clone())
        .load(&entry)
        .await
        .expect("load");
    // Building the stores and the requester, and cloning the context, call
    // nothing.
    let copy = aws.clone();
    let images = SsmImageStore::new(copy.config());
    let requester = aws.requester();
    assert_eq!(counter.snapshot(), Default::default());

    // The first store call (which needs the role's credentials, so the
    // session name) and the requester, at once, from two clones.
    let latest = Label::latest();
    let other = copy.requester();
    let (read, who, again) = tokio::join!(
        images.label_images(&project, &latest),
        requester.requester(),
        other.requester(),
    );
    assert!(read.expect("read as the role").images.is_empty());
    assert_eq!(who.expect("requester"), Requester::new(&alice));
    assert_eq!(again.expect("requester"), Requester::new(&alice));
    assert_eq!(counter.calls("GetCallerIdentity"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_and_timeouts_can_be_overridden() {
    let project = fresh_project("region");
    let with_region = manifest(project.as_str(), r#", "region_name": "eu-central-1""#);
    let entry = with_region.project(project.as_str()).unwrap();

    let config = aws::load(entry).await.unwrap().config().clone();
    assert_eq!(
        config.region().map(|r| r.as_ref()),
        Some("eu-central-1"),
        "the older region_name is read when aws_region_name is absent"
    );
    let timeouts = config.timeout_config().expect("timeouts are set");
    assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(Duration::from_secs(10))
    );
    assert!(timeouts.connect_timeout().is_some());
    assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(5));

    let config = AwsSettings::new()
        .region("us-east-1")
        .operation_timeout(Duration::from_secs(5))
        .max_attempts(1)
        .load(entry)
        .await
        .unwrap()
        .config()
        .clone();
    assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
    assert_eq!(
        config.timeout_config().and_then(|t| t.operation_timeout()),
        Some(Duration::from_secs(5))
    );
    assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(1));

    // Without any region in the manifest, the SDK's chain (AWS_REGION here).
    let bare = manifest(project.as_str(), "");
    let aws = aws::load(bare.project(project.as_str()).unwrap())
        .await
        .unwrap();
    assert!(aws.config().region().is_some());
}

/// An SSM store whose client goes to `url` with `credentials`, one attempt,
/// short timeouts.
async fn store_at(
    url: &str,
    credentials: Option<aws_sdk_ssm::config::SharedCredentialsProvider>,
) -> SsmImageStore {
    let settings = AwsSettings::new()
        .endpoint_url(url)
        .region("eu-west-1")
        .connect_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_millis(800))
        .max_attempts(1);
    let settings = match credentials {
        Some(provider) => settings.credentials_provider(provider),
        None => settings.credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        )),
    };
    let config = settings
        .load(&aws_common::any_project())
        .await
        .expect("settings load")
        .config()
        .clone();
    SsmImageStore::new(&config)
}

fn backend_kind(err: &Error) -> BackendErrorKind {
    match err {
        Error::Backend { kind, .. } => *kind,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_refuses_connections_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let project = fresh_project("down");
    let store = store_at(&format!("http://127.0.0.1:{port}"), None).await;
    let err = store
        .label_images(&project, &Label::latest())
        .await
        .unwrap_err();
    assert_eq!(backend_kind(&err), BackendErrorKind::Unreachable, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "reading label latest of project {project} (SSM GetParametersByPath /{project}/images/latest)"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept connections and hold them, answering nothing, for a bounded time.
    let holder = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let started = Instant::now();
        let mut held = Vec::new();
        while started.elapsed() < Duration::from_secs(2) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let project = fresh_project("silent");
    let store = store_at(&format!("http://127.0.0.1:{port}"), None).await;
    let started = Instant::now();
    let err = store
        .image(&project, &Label::latest(), &"archivist".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(backend_kind(&err), BackendErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "the operation timeout applies"
    );
    holder.join().unwrap();
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no credentials in this test",
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_reported_as_such() {
    let project = fresh_project("nocreds");
    let store = store_at(
        &endpoint(),
        Some(aws_sdk_ssm::config::SharedCredentialsProvider::new(
            NoCredentials,
        )),
    )
    .await;
    let err = store
        .put_image(
            &project,
            &Label::latest(),
            &"archivist".parse().unwrap(),
            &"ref.1".parse().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(backend_kind(&err), BackendErrorKind::Credentials, "{err}");
    assert!(err.to_string().contains("no valid credentials"), "{err}");
}
