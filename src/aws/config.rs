//! [`AwsSettings`] and [`AwsContext`]: the AWS configuration for a project
//! (region, role, timeouts) and who is making the change.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::config::{Intercept, SharedInterceptor};
use tokio::sync::OnceCell;

use super::identity::{role_session_name, StsRequester};
use crate::error::{Error, Result};
use crate::manifest::Project;
use crate::tracker::RequesterSource;

/// How [`AwsSettings::load`] builds an [`AwsContext`]. The defaults suit a
/// command-line tool; change them with the builder methods.
///
/// | setting | default |
/// | --- | --- |
/// | region | [`Project::aws_region`], else the SDK's chain (`AWS_REGION`, profile, IMDS) |
/// | credentials | the SDK's default chain (environment, profile, SSO, web identity, ECS, IMDS) |
/// | role | [`Project::role_arn`], assumed through STS, if set; its session named after the caller |
/// | connect timeout | 3.1 s |
/// | per-attempt timeout | 10 s |
/// | whole-operation timeout (all attempts and back-off) | 30 s |
/// | retries | the SDK's adaptive mode, 5 attempts, at most 2 s between two |
///
/// The SDK sets no operation timeout of its own, so without these a call to
/// an endpoint that accepts connections but never answers would hang.
///
/// Adaptive retries are the SDK's standard ones (exponential back-off with
/// jitter on throttling, transient and timeout errors) plus client-side rate
/// limiting: once a service answers that it is throttling, the process's
/// clients of that service wait for their turn before sending, at a rate
/// that backs off on each throttling answer and climbs again as calls
/// succeed. A deploy that writes many parameters at once thus slows down to
/// what Parameter Store accepts instead of failing. The SDK's own defaults
/// (3 attempts, up to 20 s before a retry) suit long-running services: in a
/// process that has made few calls, one throttling answer can hold a retry
/// back for the whole 20 s, and 3 attempts were too few for a burst of
/// writes against a quota of 5 per second; with 5 attempts at most 2 s apart
/// it completed, close to the quota's own pace (`BENCHMARKS.md`).
#[derive(Clone, Debug)]
pub struct AwsSettings {
    region: Option<String>,
    endpoint_url: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    assume_role: bool,
    sts_interceptors: Vec<SharedInterceptor>,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    operation_timeout: Duration,
    max_attempts: u32,
    max_backoff: Duration,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            credentials: None,
            assume_role: true,
            sts_interceptors: Vec::new(),
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 5,
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl AwsSettings {
    /// The defaults (see the table above).
    pub fn new() -> AwsSettings {
        AwsSettings::default()
    }

    /// Uses `region` whatever the manifest says.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends every request to `url` (an emulator such as moto or LocalStack).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Uses `provider` for the base credentials instead of the SDK's default
    /// chain. With a role, these are the credentials that assume it, and
    /// whose identity is recorded as the requester.
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// Whether to assume the project's `role_arn` (default `true`). Turn it
    /// off when the ambient credentials already are that role.
    pub fn assume_role(mut self, assume: bool) -> Self {
        self.assume_role = assume;
        self
    }

    /// Adds an SDK interceptor to the STS client that asks who the caller is
    /// (`GetCallerIdentity`), to log or count its calls.
    pub fn sts_interceptor(mut self, interceptor: impl Intercept + 'static) -> Self {
        self.sts_interceptors
            .push(SharedInterceptor::new(interceptor));
        self
    }

    /// How long to wait for a TCP/TLS connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt of a call may take.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a call may take in all, retries included.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many attempts a call gets (adaptive retry mode; 1 = no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The longest wait before a retry.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Builds the configuration for `project`. Makes no AWS call.
    ///
    /// The region is, in order: [`AwsSettings::region`], the project's
    /// [`aws_region`](Project::aws_region) (`aws_region_name`, else the older
    /// `region_name`; a manifest where both are set and differ was already
    /// rejected when it was loaded), then the SDK's own chain. If none gives
    /// a region this fails with [`Error::MissingSetting`].
    ///
    /// The base credentials come from the SDK's default chain (or
    /// [`credentials_provider`](AwsSettings::credentials_provider)). Their
    /// identity, asked of STS `GetCallerIdentity` once and only when first
    /// needed, is the requester ([`AwsContext::requester`]).
    ///
    /// If the project has a `role_arn` (and
    /// [`assume_role`](AwsSettings::assume_role) is on), the base credentials
    /// are used only to ask who the caller is and to assume the role
    /// (`sts:AssumeRole`), with a session named after the caller: the last
    /// segment of their ARN (`arn:aws:iam::123456789012:user/alice` →
    /// `alice`), with characters STS refuses replaced by `-`, cut to 64
    /// characters, or `release-tracking` if that leaves no name. Every call
    /// made with [`AwsContext::config`] then runs as the role; the assumed
    /// credentials are cached and refreshed before they expire. Nothing is
    /// called until a client makes its first request, so bad credentials show
    /// up there as
    /// [`BackendErrorKind::Credentials`](crate::BackendErrorKind::Credentials).
    pub async fn load(&self, project: &Project) -> Result<AwsContext> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::adaptive()
                    .with_max_attempts(self.max_attempts)
                    .with_max_backoff(self.max_backoff),
            );
        let region = self
            .region
            .clone()
            .or_else(|| project.aws_region().map(str::to_owned));
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = &self.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let base = loader.load().await;
        if base.region().is_none() {
            return Err(Error::MissingSetting {
                project: project.id().clone(),
                setting: "AWS region".to_owned(),
                fix: "set `aws_region_name` for the project in the manifest, or AWS_REGION, \
                      or `region` in the AWS profile"
                    .to_owned(),
            });
        }
        let mut sts = aws_sdk_sts::config::Builder::from(&base);
        for interceptor in &self.sts_interceptors {
            sts.push_interceptor(interceptor.clone());
        }
        let requester = StsRequester::from_client(aws_sdk_sts::Client::from_conf(sts.build()));
        let role = project.role_arn().filter(|_| self.assume_role);
        let Some(role) = role else {
            return Ok(AwsContext {
                config: base,
                requester,
            });
        };
        let provider = CallerNamedRole {
            role_arn: role.to_owned(),
            base: base.clone(),
            caller: requester.clone(),
            assumed: OnceCell::new(),
        };
        Ok(AwsContext {
            config: base
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build(),
            requester,
        })
    }
}

/// The configuration for `project` with the default [`AwsSettings`]: the
/// default credential chain, the project's region and, if it has a
/// `role_arn`, that role assumed through STS in a session named after the
/// caller.
pub async fn load(project: &Project) -> Result<AwsContext> {
    AwsSettings::default().load(project).await
}

/// What the AWS stores need for a project, from [`AwsSettings::load`] or
/// [`load`](super::load): the SDK configuration to build them with, and the
/// requester to record. Clones share the requester's cached answer and the
/// role's credentials.
#[derive(Clone, Debug)]
pub struct AwsContext {
    config: SdkConfig,
    requester: StsRequester,
}

impl AwsContext {
    /// The configuration for the stores
    /// ([`SsmImageStore::new`](super::SsmImageStore::new),
    /// [`DynamoDbReleaseStore::new`](super::DynamoDbReleaseStore::new)):
    /// with a role, its calls run as the role.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// Who is making the change: the ARN of the base credentials (the caller
    /// behind the role, if one is assumed), from STS `GetCallerIdentity`,
    /// asked at most once for this context and its clones (the role's
    /// session name comes from the same answer).
    pub fn requester(&self) -> StsRequester {
        self.requester.clone()
    }
}

/// Credentials of `role_arn`, assumed with the base credentials in a session
/// named after the caller. The caller is asked (through the shared
/// requester, so at most once) and the STS client built on the first
/// credential resolution, not before.
#[derive(Debug)]
struct CallerNamedRole {
    role_arn: String,
    base: SdkConfig,
    caller: StsRequester,
    assumed: OnceCell<AssumeRoleProvider>,
}

impl CallerNamedRole {
    async fn assumed(&self) -> std::result::Result<&AssumeRoleProvider, CredentialsError> {
        self.assumed
            .get_or_try_init(|| async {
                let caller = self
                    .caller
                    .requester()
                    .await
                    .map_err(CredentialsError::provider_error)?;
                Ok(AssumeRoleProvider::builder(&self.role_arn)
                    .session_name(role_session_name(caller.id()))
                    .configure(&self.base)
                    .build()
                    .await)
            })
            .await
    }
}

impl ProvideCredentials for CallerNamedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(
            async move { self.assumed().await?.provide_credentials().await },
        )
    }
}
