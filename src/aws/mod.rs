//! AWS backends (feature `aws`): images in SSM Parameter Store, releases in
//! DynamoDB, the requester from STS.
//!
//! - [`SsmImageStore`] implements [`ImageStore`](crate::ImageStore) on
//!   parameters `/{project}/images/{label}/{service}`.
//! - [`DynamoDbReleaseStore`] implements
//!   [`ReleaseStore`](crate::ReleaseStore) on one table per project,
//!   `wellcome-releases-{project}`, in the schema the old tools created;
//!   [`DynamoDbReleaseStore::ensure_table`] creates it.
//! - [`StsRequester`] implements [`RequesterSource`](crate::store::RequesterSource)
//!   with the caller's ARN.
//! - [`load_config`] and [`AwsSettings`] build the `SdkConfig` these take,
//!   from a manifest [`Project`]: its region, its `role_arn`, and timeouts.
//!
//! Every store takes an [`SdkConfig`] or a ready client, so tests can point
//! it at an emulator and programs at their own configuration.
//!
//! ```no_run
//! use release_tracking::aws::{self, DynamoDbReleaseStore, SsmImageStore, StsRequester};
//! use release_tracking::{ImageStore, Label, Manifest, ReleaseStore};
//!
//! # async fn run(manifest: &Manifest) -> release_tracking::Result<()> {
//! let project = manifest.select(Some("storage"))?;
//! // Default credential chain, the project's region, its role_arn assumed.
//! let config = aws::load_config(project).await?;
//!
//! let images = SsmImageStore::new(&config);
//! let releases = DynamoDbReleaseStore::new(&config);
//! let requester = StsRequester::new(&config);
//!
//! // Once per project (idempotent): create the table and wait until ACTIVE.
//! releases.ensure_table(project.id()).await?;
//!
//! let latest = images.label_images(project.id(), &Label::latest()).await?;
//! for skipped in &latest.skipped {
//!     eprintln!("warning: {skipped}");
//! }
//! if let Some(release) = releases.latest_release(project.id()).await?.release {
//!     println!("newest release: {}", release.release_id());
//! }
//! # let _ = requester;
//! # Ok(())
//! # }
//! ```
//!
//! # IAM actions
//!
//! | store | actions | resources |
//! | --- | --- | --- |
//! | [`SsmImageStore`] | `ssm:GetParametersByPath`, `ssm:GetParameter`, `ssm:PutParameter` | `arn:aws:ssm:{region}:{account}:parameter/{project}/images/*` |
//! | [`DynamoDbReleaseStore`] | `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:Query` | `arn:aws:dynamodb:{region}:{account}:table/wellcome-releases-{project}` and `…/index/*` (queries read `project_gsi` and `deployment_gsi`) |
//! | [`DynamoDbReleaseStore::ensure_table`] | `dynamodb:DescribeTable`, `dynamodb:CreateTable` | the table |
//! | [`StsRequester`] | none (`sts:GetCallerIdentity` is always allowed) | |
//! | [`load_config`] with a `role_arn` | `sts:AssumeRole` (for the base credentials) | the role |
//!
//! `ssm:GetParametersByPath` is authorised on the path it reads,
//! `parameter/{project}/images/{label}`, which `parameter/{project}/images/*`
//! covers. No `kms:Decrypt` is needed: parameters are read without
//! decryption (see [`SsmImageStore`]).
//!
//! # Errors
//!
//! SDK failures become [`Error::Backend`] whose
//! `operation` names what was being done to which project, table or
//! parameter, and whose [`BackendErrorKind`](crate::BackendErrorKind) tells
//! throttling, access denied, bad credentials, timeouts and unreachable
//! endpoints apart. A missing table is
//! [`Error::TableNotFound`].

mod codec;
mod dynamodb;
mod error;
mod identity;
mod ssm;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

pub use dynamodb::{default_table_name, DynamoDbReleaseStore, TableState};
pub use identity::StsRequester;
pub use ssm::SsmImageStore;

use crate::error::{Error, Result};
use crate::manifest::Project;

/// How [`AwsSettings::load`] builds an [`SdkConfig`]. The defaults suit a
/// command-line tool; change them with the builder methods.
///
/// | setting | default |
/// | --- | --- |
/// | region | [`Project::aws_region`], else the SDK's chain (`AWS_REGION`, profile, IMDS) |
/// | credentials | the SDK's default chain (environment, profile, SSO, web identity, ECS, IMDS) |
/// | role | [`Project::role_arn`], assumed through STS, if set |
/// | connect timeout | 3.1 s |
/// | per-attempt timeout | 10 s |
/// | whole-operation timeout (all attempts and back-off) | 30 s |
/// | retries | the SDK's standard mode, 3 attempts |
///
/// The SDK sets no operation timeout of its own, so without these a call to
/// an endpoint that accepts connections but never answers would hang.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    region: Option<String>,
    endpoint_url: Option<String>,
    assume_role: bool,
    session_name: String,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    operation_timeout: Duration,
    max_attempts: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            assume_role: true,
            session_name: "release-tracking".to_owned(),
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
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

    /// Whether to assume the project's `role_arn` (default `true`). Turn it
    /// off when the ambient credentials already are that role.
    pub fn assume_role(mut self, assume: bool) -> Self {
        self.assume_role = assume;
        self
    }

    /// The STS session name used when assuming the role (default
    /// `release-tracking`); it is the last segment of the requester ARN that
    /// [`StsRequester`] records.
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
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

    /// How many attempts a call gets (standard retry mode; 1 = no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Builds the configuration for `project`.
    ///
    /// The region is, in order: [`AwsSettings::region`], the project's
    /// [`aws_region`](Project::aws_region) (`aws_region_name`, else the older
    /// `region_name`; a manifest where both are set and differ was already
    /// rejected when it was loaded), then the SDK's own chain. If none gives
    /// a region this fails with [`Error::NoAwsRegion`], before any call.
    ///
    /// Credentials come from the SDK's default chain. If the project has a
    /// `role_arn` (and [`assume_role`](AwsSettings::assume_role) is on), those
    /// credentials are used only to assume the role through STS
    /// (`sts:AssumeRole`, session name [`session_name`](AwsSettings::session_name));
    /// every call then runs as the role, and the assumed credentials are
    /// cached and refreshed before they expire. Nothing is called until a
    /// client makes its first request, so bad credentials show up there as
    /// [`BackendErrorKind::Credentials`](crate::BackendErrorKind::Credentials).
    pub async fn load(&self, project: &Project) -> Result<SdkConfig> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts));
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
        let base = loader.load().await;
        if base.region().is_none() {
            return Err(Error::NoAwsRegion {
                project: project.id().clone(),
            });
        }
        let role = project.role_arn().filter(|_| self.assume_role);
        let Some(role) = role else {
            return Ok(base);
        };
        let provider = AssumeRoleProvider::builder(role)
            .session_name(&self.session_name)
            .configure(&base)
            .build()
            .await;
        Ok(base
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build())
    }
}

/// The configuration for `project` with the default [`AwsSettings`]: the
/// default credential chain, the project's region and, if it has a
/// `role_arn`, that role assumed through STS.
pub async fn load_config(project: &Project) -> Result<SdkConfig> {
    AwsSettings::default().load(project).await
}
