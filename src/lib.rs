//! Track which container images make up a release and where each release is
//! deployed.
//!
//! Teams build container images in CI and deploy sets of them — *releases* —
//! to environments such as `stage` and `prod`. This crate is the library
//! behind that workflow, compatible with the SSM parameters and DynamoDB
//! tables that earlier tools (`release_tooling`, `weco-deploy`) wrote, so it
//! can share them with those tools or replace them.
//!
//! # The model
//!
//! - **Images** live in an [`ImageStore`] by project, *label* and service: in
//!   production, SSM Parameter Store at `/{project_id}/images/{label}/{service_id}`.
//!   CI publishes to the `latest` label; an environment id is also a label,
//!   and that is what Terraform reads.
//! - The **project manifest** ([`Manifest`], the `.wellcome_project` file)
//!   lists projects and their environments.
//! - A **release** ([`Release`]) freezes the images at a label into a record
//!   in a [`ReleaseStore`] (in production, one DynamoDB table per project).
//! - A **deployment** ([`Deployment`]) writes a release's images to an
//!   environment's label and appends a record of who deployed what, when and
//!   why.
//!
//! [`ReleaseTracker`] holds the workflows: [`publish`](ReleaseTracker::publish),
//! [`prepare`](ReleaseTracker::prepare), [`update`](ReleaseTracker::update),
//! [`deploy`](ReleaseTracker::deploy), [`release_deploy`](ReleaseTracker::release_deploy),
//! [`plan`](ReleaseTracker::plan), [`rollback`](ReleaseTracker::rollback),
//! [`diff`](ReleaseTracker::diff), [`current`](ReleaseTracker::current) and
//! [`history`](ReleaseTracker::history). Environments may have promotion
//! gates (see [`promotion`]), and every deployment records its audit trail.
//!
//! # Example
//!
//! On the in-memory stores, which need no set-up and behave exactly like the
//! AWS ones:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
//! use release_tracking::{Label, Manifest, PrepareRequest, ReleaseRef, ReleaseTracker, Requester};
//!
//! let manifest = Manifest::parse(
//!     r#"{"storage": {"name": "Storage", "environments": [{"id": "stage", "name": "Staging"}]}}"#,
//!     ".wellcome_project",
//! )?;
//! let tracker = ReleaseTracker::new(
//!     manifest.select(None)?.clone(),
//!     InMemoryImageStore::new(),
//!     InMemoryReleaseStore::new(),
//!     Requester::new("arn:aws:sts::123456789012:assumed-role/ci/build-42"),
//! );
//!
//! // What CI does after each build:
//! tracker.publish(&Label::latest(), &"archivist".parse()?, &"123456789012.dkr.ecr.eu-west-1.amazonaws.com/storage/archivist:ref.3f2a9c1".parse()?).await?;
//!
//! // Freeze `latest` into a release and deploy it.
//! let release = tracker.prepare(PrepareRequest::latest().description("weekly")).await?.release;
//! let deployed = tracker.deploy(&ReleaseRef::Latest, "stage", "weekly deploy").await?;
//! assert_eq!(deployed.release.release_id(), release.release_id());
//!
//! // Where is it now, and who put it there?
//! let current = tracker.current("stage").await?.current.expect("deployed");
//! assert!(current.label_matches());
//! assert_eq!(current.deployment.requested_by().display_name(), "build-42");
//!
//! // An unknown environment is an error before anything is written.
//! assert!(tracker.deploy(&ReleaseRef::Latest, "prdo", "typo").await.is_err());
//! # Ok::<(), release_tracking::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Stores
//!
//! | backend | images | releases | feature |
//! |---|---|---|---|
//! | in memory (reference semantics, tests, dry runs) | [`InMemoryImageStore`] | [`InMemoryReleaseStore`] | none |
//! | AWS | `aws::SsmImageStore` (SSM Parameter Store) | `aws::DynamoDbReleaseStore` (DynamoDB) | `aws` |
//! | SQLite (one local file, several processes at once) | `sqlite::SqliteStore` | `sqlite::SqliteStore` | `sqlite` |
//!
//! Every backend passes the same checks, in `conformance` (feature
//! `conformance`): a store written outside this crate runs them in its own
//! tests, one `#[tokio::test]` per check, to show it keeps the contracts
//! documented on [`ImageStore`] and [`ReleaseStore`] (ordering, paging,
//! conflicts, atomic deployments, legacy records).
//!
//! # Names are validated once
//!
//! [`ProjectId`], [`Label`], [`ServiceId`], [`EnvironmentId`], [`ReleaseId`]
//! and [`ImageUri`] are checked where they enter (a manifest, an argument, a
//! record read back), so no parameter path can be built from a service id such
//! as `a/../../prod`. See [`names`].
//!
//! # Records that already exist
//!
//! Every shape the earlier tools wrote is read: `requested_by` as an
//! `{id, name}` map or an ARN string, a deployment's `environment` as a map or
//! an id string, images as URIs, bare tags, `null` or a set of tags, missing
//! `last_date_deployed`, extra `details`, and naive ISO-8601 timestamps with or
//! without microseconds. New records are written in the shape the latest tool
//! writes, so both can share one table; shapes read from a record are written
//! back unchanged.
//!
//! # Errors
//!
//! One [`Error`] type; every message says what was being done and to which
//! project, release, environment, file or record. A deploy that fails
//! part-way says which services were written and which were not
//! ([`Error::PartialDeployment`]); running it again completes it.
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `aws` | SSM image store, DynamoDB release store, STS identity (the AWS SDK) |
//! | `conformance` | `conformance`: the checks every store implementation must pass |
//! | `sqlite` | `sqlite::SqliteStore`: images and releases in one SQLite file (SQLite compiled in) |
//!
//! Without features the crate compiles no AWS code.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod control;
mod cursor;
pub mod error;
mod image_ref;
pub mod manifest;
pub mod memory;
pub mod names;
pub mod promotion;
pub mod release;
mod report;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod tracker;
pub mod transfer;
mod write;

pub use control::{
    Acquired, Block, ControlAction, ControlChange, ControlEvent, ControlStore, Freeze, Lease,
    LeaseId, LeaseOperation, LeaseRequest, Reason,
};
pub use error::{BackendErrorKind, BoxError, Error, PartialDeployment, Result};
pub use manifest::{Environment, ImageRepository, Manifest, ManifestWarning, Project};
pub use memory::{InMemoryImageStore, InMemoryReleaseStore};
pub use names::{
    EnvironmentId, ImageUri, Label, NameError, NameKind, ProjectId, ReleaseId, ReleaseRef,
    ServiceId,
};
pub use promotion::{GateVerdict, RollbackRefusal, Soak, UnmetRequirement};
pub use release::{
    Deployment, DeploymentEnvironment, DeploymentKind, DeploymentRecord, ImageEntry, NewRelease,
    RecordShape, Release, Requester, Timestamp,
};
pub use store::{
    CurrentRelease, Cursor, ImageStore, LabelImages, LatestRelease, Page, PageRequest,
    RecentDeployments, ReleaseStore, SkippedParameter, SkippedRecord,
};
pub use tracker::{
    Clock, ControlsStatus, CurrentDeployment, DeployOptions, DeployPlan, Deployed,
    EnvironmentStatus, GateCheck, IdGenerator, ImageChange, ImageSource, LabelRead, PlannedWrite,
    PrepareRequest, Prepared, RandomIds, ReleaseDiff, ReleaseTracker, RequesterSource, Resolved,
    ShapePolicy, SystemClock, UpdateRequest, Warning,
};

/// The README's examples, compiled as doc tests (they use the AWS and the
/// SQLite stores).
#[cfg(all(doctest, feature = "aws", feature = "sqlite"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
