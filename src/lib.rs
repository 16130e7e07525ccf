//! Track which container images make up a release and where each release is
//! deployed.

#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod error;
pub mod manifest;
pub mod names;
pub mod release;
pub mod store;

pub use error::{BackendErrorKind, BoxError, Error, Result};
pub use manifest::{Environment, ImageRepository, Manifest, ManifestWarning, Project};
pub use names::{
    EnvironmentId, ImageUri, Label, NameError, NameKind, ProjectId, ReleaseId, ReleaseRef,
    ServiceId,
};
pub use release::{
    Deployment, DeploymentEnvironment, DeploymentRecord, ImageEntry, NewRelease, Release,
    Requester, Timestamp,
};
pub use store::{
    Cursor, ImageStore, LabelImages, Page, PageRequest, ReleaseStore, SkippedParameter,
};
