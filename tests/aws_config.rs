//! AWS set-up: `load_config` (region, role, timeouts), the STS requester, and
//! how failures to reach or authenticate to AWS are reported. The role and
//! requester tests run on the moto emulator (`scripts/test.sh`); the failure
//! tests use local sockets only.

#[path = "common/aws.rs"]
mod aws_common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use release_tracking::aws::{self, AwsSettings, SsmImageStore, StsRequester};
use release_tracking::store::RequesterSource;
use release_tracking::{BackendErrorKind, Error, ImageStore, Label, Manifest, Requester};

use aws_common::{endpoint, fresh_project, sdk_config, CallCounter};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_config_uses_the_project_region_and_assumes_its_role() {
    let project = fresh_project("role");
    let with_role = manifest(
        project.as_str(),
        r#", "aws_region_name": "eu-west-2", "role_arn": "arn:aws:iam::123456789012:role/ci-deployer""#,
    );
    let project_entry = with_role.project(project.as_str()).unwrap();
    let config = AwsSettings::new()
        .endpoint_url(endpoint())
        .load(project_entry)
        .await
        .expect("load_config");
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-2"));

    // Every call now runs as the role: STS says so.
    let who = StsRequester::new(&config)
        .requester()
        .await
        .expect("requester");
    assert_eq!(
        who,
        Requester::new("arn:aws:sts::123456789012:assumed-role/ci-deployer/release-tracking")
    );
    assert_eq!(who.display_name(), "release-tracking");

    // And the stores work with the assumed credentials.
    let images = SsmImageStore::new(&config);
    let read = images
        .label_images(&project, &Label::latest())
        .await
        .unwrap();
    assert!(read.images.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_and_timeouts_can_be_overridden() {
    let project = fresh_project("region");
    let with_region = manifest(project.as_str(), r#", "region_name": "eu-central-1""#);
    let entry = with_region.project(project.as_str()).unwrap();

    let config = aws::load_config(entry).await.unwrap();
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
    assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(3));

    let config = AwsSettings::new()
        .region("us-east-1")
        .operation_timeout(Duration::from_secs(5))
        .max_attempts(1)
        .load(entry)
        .await
        .unwrap();
    assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
    assert_eq!(
        config.timeout_config().and_then(|t| t.operation_timeout()),
        Some(Duration::from_secs(5))
    );
    assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(1));

    // Without any region in the manifest, the SDK's chain (AWS_REGION here).
    let bare = manifest(project.as_str(), "");
    let config = aws::load_config(bare.project(project.as_str()).unwrap())
        .await
        .unwrap();
    assert!(config.region().is_some());
}

/// An SSM store whose client goes to `url` with `credentials`, one attempt,
/// short timeouts.
async fn store_at(
    url: &str,
    credentials: Option<aws_sdk_ssm::config::SharedCredentialsProvider>,
) -> SsmImageStore {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("eu-west-1"))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(Duration::from_millis(800))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(1));
    let config = match credentials {
        Some(provider) => loader.credentials_provider(provider).load().await,
        None => {
            loader
                .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load()
                .await
        }
    };
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
