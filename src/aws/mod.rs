//! AWS backends (feature `aws`): images in SSM Parameter Store, releases in
//! DynamoDB, the requester from STS.
//!
//! - [`SsmImageStore`] implements [`ImageStore`](crate::ImageStore) on
//!   parameters `/{project}/images/{label}/{service}`.
//! - [`DynamoDbReleaseStore`] implements
//!   [`ReleaseStore`](crate::ReleaseStore) on one table per project,
//!   `wellcome-releases-{project}`, in the schema the old tools created;
//!   [`DynamoDbReleaseStore::ensure_table`] creates it.
//! - [`DynamoDbReleaseStore`] also implements
//!   [`ControlStore`](crate::control::ControlStore): leases, freezes, blocks
//!   and their events as items of the same table that no reader of releases
//!   sees (their keys and shapes are listed in the store's docs).
//! - [`StsRequester`] implements [`RequesterSource`](crate::tracker::RequesterSource)
//!   with the caller's ARN.
//! - [`load`] and [`AwsSettings`] build an [`AwsContext`] from a manifest
//!   [`Project`](crate::manifest::Project) (its region, its `role_arn`, and
//!   timeouts): the `SdkConfig` the stores take, and the requester, who is
//!   the caller behind the role.
//!
//! Every store takes an `SdkConfig` or a ready client, so tests can point
//! it at an emulator and programs at their own configuration.
//!
//! ```no_run
//! use release_tracking::aws::{self, DynamoDbReleaseStore, SsmImageStore};
//! use release_tracking::{ImageStore, Label, Manifest, ReleaseStore};
//!
//! # async fn run(manifest: &Manifest) -> release_tracking::Result<()> {
//! let project = manifest.select(Some("storage"))?;
//! // Default credential chain, the project's region, its role_arn assumed.
//! let aws = aws::load(project).await?;
//!
//! let images = SsmImageStore::new(aws.config());
//! let releases = DynamoDbReleaseStore::new(aws.config());
//! // The caller behind the role, asked of STS once, when first needed.
//! let requester = aws.requester();
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
//! | [`SsmImageStore`] | `ssm:GetParametersByPath`, `ssm:GetParameters` (a deploy's read), `ssm:GetParameter`, `ssm:PutParameter` | `arn:aws:ssm:{region}:{account}:parameter/{project}/images/*` |
//! | [`DynamoDbReleaseStore`] | `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:Query` | `arn:aws:dynamodb:{region}:{account}:table/wellcome-releases-{project}` and `…/index/*` (queries read `project_gsi` and `deployment_gsi`) |
//! | [`DynamoDbReleaseStore::ensure_table`] | `dynamodb:DescribeTable`, `dynamodb:CreateTable` | the table |
//! | [`StsRequester`] | none (`sts:GetCallerIdentity` is always allowed) | |
//! | [`load`] with a `role_arn` | `sts:AssumeRole` (for the base credentials) | the role |
//!
//! `ssm:GetParametersByPath` is authorised on the path it reads,
//! `parameter/{project}/images/{label}`, and `ssm:GetParameters` on each
//! parameter it names; `parameter/{project}/images/*` covers both. No `kms:Decrypt` is needed: parameters are read without
//! decryption (see [`SsmImageStore`]).
//!
//! # Errors
//!
//! SDK failures become [`Error::Backend`](crate::Error::Backend) whose
//! `operation` names what was being done to which project, table or
//! parameter, and whose [`BackendErrorKind`](crate::BackendErrorKind) tells
//! throttling, access denied, bad credentials, timeouts and unreachable
//! endpoints apart. A missing table is
//! [`Error::StoreNotProvisioned`](crate::Error::StoreNotProvisioned).

mod codec;
mod config;
mod control;
mod dynamodb;
mod error;
mod identity;
mod ssm;

pub use config::{load, AwsContext, AwsSettings};
pub use dynamodb::{default_table_name, DynamoDbReleaseStore, TableState};
pub use identity::StsRequester;
pub use ssm::SsmImageStore;
