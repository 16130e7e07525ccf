//! Track which container images make up a release and where each release is
//! deployed.

#![warn(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod manifest;
pub mod memory;
pub mod names;
pub mod release;
pub mod store;

pub use error::{BackendErrorKind, BoxError, Error, Result};
pub use manifest::{Environment, ImageRepository, Manifest, ManifestWarning, Project};
pub use memory::{InMemoryImageStore, InMemoryReleaseStore};
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
