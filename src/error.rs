//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

use crate::control::{Block, Freeze, Lease, LeaseId};
use crate::names::{EnvironmentId, Escaped, Label, NameError, ProjectId, ReleaseId, ServiceId};

/// A boxed error from a backend (an AWS SDK error, an I/O error, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most items a list in a message names; the rest are counted.
pub const MAX_LISTED: usize = 10;

/// Joins names for a message: `a, b, c`, or `(none)`; after
/// [`MAX_LISTED`] names, `and N more`, so one message stays one short line
/// however long the list. Each name is shown through [`Escaped::new`].
pub(crate) struct Names<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for Names<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, name) in self.0.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", Escaped::new(&name.to_string()))?;
        }
        if self.0.len() > MAX_LISTED {
            write!(f, " and {} more", self.0.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

/// Unmet requirements for a message, joined by `; and `.
struct Unmet<'a>(&'a [crate::promotion::UnmetRequirement]);

impl fmt::Display for Unmet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, unmet) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; and ")?;
            }
            unmet.fmt(f)?;
        }
        Ok(())
    }
}

/// What kind of failure a backend reported, so callers can decide whether to
/// retry, ask for credentials or provision something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The service throttled the request; retry later, or raise limits.
    Throttled,
    /// The caller is not allowed to do this; check the IAM policy.
    AccessDenied,
    /// No credentials could be found or they were rejected.
    Credentials,
    /// The request did not complete within the configured timeout.
    Timeout,
    /// The service could not be reached.
    Unreachable,
    /// Anything else.
    Other,
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Throttled => "throttled (retry later or raise the service's limits)",
            BackendErrorKind::AccessDenied => "access denied (check the IAM policy of the caller)",
            BackendErrorKind::Credentials => {
                "no valid credentials (set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role)"
            }
            BackendErrorKind::Timeout => "timed out",
            BackendErrorKind::Unreachable => "service unreachable",
            BackendErrorKind::Other => "failed",
        })
    }
}

/// A deploy whose writes to an environment's label failed part-way: which
/// services were written, which failed and which were not written, each
/// list in plan order whatever order the writes completed in. No deployment
/// was recorded; running the same deploy again completes it.
#[derive(Debug, thiserror::Error)]
#[error(
    "project `{project}`: deploying release `{release}` to `{environment}` failed at service `{failed}`{}; \
     written: {}; not written: {}; no deployment was recorded, run the deploy again to complete it",
    AlsoFailed(also_failed), Names(written), Names(not_written)
)]
pub struct PartialDeployment {
    /// The project.
    pub project: ProjectId,
    /// The release.
    pub release: ReleaseId,
    /// The environment.
    pub environment: EnvironmentId,
    /// Services whose parameter now holds the release's image.
    pub written: Vec<ServiceId>,
    /// The first service, in plan order, whose write failed.
    pub failed: ServiceId,
    /// Services not written: `failed`, then those in `also_failed`, then
    /// those whose write was never started (none starts after a failure).
    pub not_written: Vec<ServiceId>,
    /// Why the write of `failed` failed.
    #[source]
    pub source: Error,
    /// Other writes that failed while in flight alongside it, each with why
    /// (empty when writes are made one at a time).
    pub also_failed: Vec<(ServiceId, Error)>,
}

/// ` (and at a, b)` after the first failed service, when more failed.
struct AlsoFailed<'a>(&'a [(ServiceId, Error)]);

impl fmt::Display for AlsoFailed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        let services: Vec<&ServiceId> = self.0.iter().map(|(service, _)| service).collect();
        write!(f, " (and at {})", Names(&services))
    }
}

/// Everything that can go wrong in this crate.
///
/// Each variant names what was being done and to which project, release,
/// environment, file or record, so its message can be shown to a user as is:
/// text from outside (arguments, manifests, records, services) is shown
/// through [`Escaped`], and lists through one joiner that names at most
/// [`MAX_LISTED`] items.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (id, label, URI) failed validation.
    #[error(transparent)]
    InvalidName(#[from] NameError),

    /// An argument of a call is out of range or inconsistent.
    #[error("invalid argument `{argument}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The project manifest could not be read.
    #[error(
        "cannot read project manifest {}: {source}",
        Escaped::new(&path.display().to_string())
    )]
    ManifestRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The project manifest is not valid JSON or YAML.
    #[error(
        "{}:{line}:{column}: not valid {format}: {}",
        Escaped::new(file),
        Escaped::whole(message)
    )]
    ManifestSyntax {
        /// The file (or the name given to a manifest read from a string).
        file: String,
        /// `JSON` or `YAML`: the format the file looked like.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },

    /// A key of the project manifest is missing, has the wrong type or an
    /// invalid value.
    #[error(
        "{}: `{}`: {}",
        Escaped::new(file),
        Escaped::whole(location),
        Escaped::whole(problem)
    )]
    ManifestInvalid {
        /// The file.
        file: String,
        /// Where in the file, as a key path: `storage.environments[1].id`.
        location: String,
        /// What is wrong.
        problem: String,
    },

    /// An environment id appears twice in one project of the manifest.
    #[error(
        "{}: project `{project}` lists environment `{environment}` more than once",
        Escaped::new(file)
    )]
    DuplicateEnvironment {
        /// The file.
        file: String,
        /// The project.
        project: ProjectId,
        /// The repeated environment id.
        environment: EnvironmentId,
    },

    /// The manifest has no project with the requested id.
    #[error(
        "{}: no project `{}`; the projects are: {}",
        Escaped::new(file),
        Escaped::new(project),
        Names(known)
    )]
    UnknownProject {
        /// The file.
        file: String,
        /// The id asked for.
        project: String,
        /// The ids the manifest has.
        known: Vec<ProjectId>,
    },

    /// No project was named and the manifest does not hold exactly one.
    #[error(
        "{}: {}",
        Escaped::new(file),
        if known.is_empty() {
            "holds no projects; add one to the manifest".to_owned()
        } else {
            format!("holds several projects; name one of: {}", Names(known))
        }
    )]
    ProjectNotChosen {
        /// The file.
        file: String,
        /// The ids the manifest has.
        known: Vec<ProjectId>,
    },

    /// The project has no environment with the requested id.
    #[error(
        "project `{project}` has no environment `{}`; its environments are: {}",
        Escaped::new(environment),
        Names(known)
    )]
    UnknownEnvironment {
        /// The project.
        project: ProjectId,
        /// The id asked for.
        environment: String,
        /// The environments the manifest lists for the project.
        known: Vec<EnvironmentId>,
    },

    /// A label holds no images, so there is nothing to release.
    #[error("project `{project}`: label `{label}` has no images (nothing at {location})")]
    EmptyLabel {
        /// The project.
        project: ProjectId,
        /// The label.
        label: Label,
        /// Where the image store looked, in its backend's words
        /// ([`ImageStore::label_location`](crate::ImageStore::label_location)).
        location: String,
    },

    /// A service that was asked for has no image at a label.
    #[error("project `{project}`: service `{service}` has no image at label `{label}`")]
    MissingImage {
        /// The project.
        project: ProjectId,
        /// The label.
        label: Label,
        /// The service.
        service: ServiceId,
    },

    /// `latest` was asked for but the project has no releases.
    #[error("project `{project}` has no releases yet")]
    NoReleases {
        /// The project.
        project: ProjectId,
    },

    /// No release with this id.
    #[error("project `{project}`: release `{release}` not found")]
    ReleaseNotFound {
        /// The project.
        project: ProjectId,
        /// The release id.
        release: ReleaseId,
    },

    /// A release with this id already exists; nothing was overwritten.
    #[error("project `{project}`: release `{release}` already exists; it was not overwritten")]
    ReleaseAlreadyExists {
        /// The project.
        project: ProjectId,
        /// The release id.
        release: ReleaseId,
    },

    /// Some images of a release are not full image references that
    /// Terraform can use (legacy records hold `null`, a set of tags, or a
    /// bare tag the manifest cannot resolve), so it cannot be written to an
    /// environment's label. Nothing was written.
    #[error(
        "project `{project}`: release `{release}` cannot be deployed: services {} have no full image \
         reference (registry/repository:tag or …@sha256:digest); {}",
        Names(services),
        Escaped::whole(fix)
    )]
    UndeployableRelease {
        /// The project.
        project: ProjectId,
        /// The release.
        release: ReleaseId,
        /// The services without a full image reference.
        services: Vec<ServiceId>,
        /// What is wrong with them and how to fix it.
        fix: String,
    },

    /// Parameters at an environment's label that a deploy would overwrite
    /// are not plain `String` parameters (a `SecureString` or `StringList`
    /// where Terraform reads an image). Nothing was written.
    #[error(
        "project `{project}`: cannot deploy release `{release}` to `{environment}`: parameters {} \
         are not plain String parameters; change or delete them by hand, then deploy again. \
         Nothing was written",
        Names(parameters)
    )]
    ConflictingParameters {
        /// The project.
        project: ProjectId,
        /// The release.
        release: ReleaseId,
        /// The environment.
        environment: EnvironmentId,
        /// The full names of the parameters in the way.
        parameters: Vec<String>,
    },

    /// The release does not meet the promotion gates of the environment
    /// (see [`promotion`](crate::promotion)). Found before any write:
    /// nothing was written.
    #[error(
        "project `{project}`: cannot deploy release `{release}` to `{environment}`: {}. Nothing \
         was written; to deploy anyway, bypass the gates with a reason",
        Unmet(unmet)
    )]
    GatesNotMet {
        /// The project.
        project: ProjectId,
        /// The release.
        release: ReleaseId,
        /// The environment.
        environment: EnvironmentId,
        /// Every requirement not met.
        unmet: Vec<crate::promotion::UnmetRequirement>,
    },

    /// An environment cannot be rolled back: nothing to roll back to, or the
    /// release asked for is current there or never ran there. Nothing was
    /// written.
    #[error("project `{project}`: cannot roll back `{environment}`: {why}")]
    NothingToRollBack {
        /// The project.
        project: ProjectId,
        /// The environment.
        environment: EnvironmentId,
        /// Why.
        why: crate::promotion::RollbackRefusal,
    },

    /// Recording one more deployment would take the release's record past
    /// [`MAX_RECORD_SIZE`](crate::release::MAX_RECORD_SIZE) (a DynamoDB item
    /// holds at most 400 KB). Found before any write: nothing was written.
    #[error(
        "project `{project}`: cannot deploy release `{release}` to `{environment}`: with this \
         deployment its record would be {size} bytes, over the {limit} a release record may hold \
         (a DynamoDB item holds at most 400 KB). Nothing was written; make a new release of the \
         same images and deploy that"
    )]
    ReleaseRecordFull {
        /// The project.
        project: ProjectId,
        /// The release.
        release: ReleaseId,
        /// The environment.
        environment: EnvironmentId,
        /// The record's size with the deployment, in bytes as DynamoDB
        /// counts them.
        size: usize,
        /// The most a record may hold.
        limit: usize,
    },

    /// Writing a release's images to an environment's label failed part-way.
    /// No deployment was recorded; running the same deploy again completes it.
    #[error(transparent)]
    PartialDeployment(Box<PartialDeployment>),

    /// Every image was written to the environment's label, but recording the
    /// deployment failed. Running the same deploy again records it.
    #[error(
        "project `{project}`: release `{release}` was written to `{environment}` (services written: {}) \
         but the deployment was not recorded; run the deploy again to record it",
        Names(written)
    )]
    DeploymentNotRecorded {
        /// The project.
        project: ProjectId,
        /// The release.
        release: ReleaseId,
        /// The environment.
        environment: EnvironmentId,
        /// Services whose parameter was changed by this deploy.
        written: Vec<ServiceId>,
        /// Why recording failed.
        #[source]
        source: Box<Error>,
    },

    /// A stored record (release item, parameter) cannot be read.
    #[error(
        "{}: attribute `{}` is malformed: {}",
        Escaped::whole(record),
        Escaped::new(attribute),
        Escaped::whole(message)
    )]
    InvalidRecord {
        /// Which record: `release 0efc… in table wellcome-releases-storage`.
        record: String,
        /// The attribute path inside the record: `deployments[2].environment`.
        attribute: String,
        /// What is wrong.
        message: String,
    },

    /// A page cursor was not made by this store for this query.
    #[error("invalid page cursor: {}", Escaped::whole(reason))]
    InvalidCursor {
        /// What is wrong with it.
        reason: String,
    },

    /// A backend call failed.
    #[error(
        "{}: {kind}: {}",
        Escaped::whole(operation),
        Escaped::whole(&source.to_string())
    )]
    Backend {
        /// What was being done: `reading label latest of project storage
        /// (SSM GetParametersByPath /storage/images/latest)`.
        operation: String,
        /// The kind of failure.
        kind: BackendErrorKind,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// Another holder's lease on the environment has not expired: the
    /// deploy (or rollback) must wait, or the lease be force-unlocked.
    /// Nothing was written.
    #[error(
        "project `{}`: environment `{}` is {lease}",
        lease.project,
        lease.environment
    )]
    EnvironmentBusy {
        /// The lease in the way, as stored.
        lease: Box<Lease>,
    },

    /// A lease could not be renewed or released because the environment
    /// no longer holds it: it expired and was taken over, or was
    /// force-unlocked. Nothing was changed.
    #[error(
        "project `{project}`: lease {lease} on environment `{environment}` is no longer held; {}",
        match holder {
            Some(holder) => format!("the environment is now {holder}"),
            None => "the environment has no lease now (it was force-unlocked or released)".to_owned(),
        }
    )]
    LeaseLost {
        /// The project.
        project: ProjectId,
        /// The environment.
        environment: EnvironmentId,
        /// The id of the lease that was lost.
        lease: LeaseId,
        /// Who holds the environment now, if anyone.
        holder: Option<Box<Lease>>,
    },

    /// The environment is frozen. Nothing was written.
    #[error(
        "project `{}`: environment `{}` is frozen by {} since {} UTC: \"{}\"",
        freeze.project,
        freeze.environment,
        Escaped::new(freeze.by.display_name()),
        freeze.since,
        freeze.reason
    )]
    EnvironmentFrozen {
        /// The freeze in place.
        freeze: Box<Freeze>,
    },

    /// The release is blocked. Nothing was written.
    #[error(
        "project `{}`: release `{}` is blocked by {} since {} UTC: \"{}\"",
        block.project,
        block.release,
        Escaped::new(block.by.display_name()),
        block.since,
        block.reason
    )]
    ReleaseBlocked {
        /// The block in place.
        block: Box<Block>,
    },

    /// A lease, freeze or block was asked of a tracker that has no
    /// deployment controls ([`ReleaseTracker::with_controls`](crate::ReleaseTracker::with_controls)).
    #[error(
        "project `{project}`: no deployment controls (leases, freezes, blocks) for this tracker; \
         give it a store that keeps them"
    )]
    NoControls {
        /// The project.
        project: ProjectId,
    },

    /// The place a store keeps a project's records does not exist yet (or
    /// is not ready). Nothing was read or written.
    #[error("project `{project}`: {location} does not exist or is not ready yet; {fix}")]
    StoreNotProvisioned {
        /// The project.
        project: ProjectId,
        /// Where the store looked, in its backend's words (a table, a file).
        location: String,
        /// How to create it.
        fix: String,
    },

    /// What a store found where it keeps its records is not a store this
    /// version can use. Nothing was changed.
    #[error(
        "{location} is not a usable release store: {}; it was left unchanged",
        Escaped::whole(problem)
    )]
    IncompatibleStore {
        /// Where the store looked, in its backend's words.
        location: String,
        /// Every problem found, joined by `; `.
        problem: String,
        /// The backend's own description of the refusal, if it has one.
        #[source]
        source: Option<BoxError>,
    },

    /// A setting the chosen backend needs is missing.
    #[error("project `{project}`: no {setting}; {fix}")]
    MissingSetting {
        /// The project.
        project: ProjectId,
        /// The setting, in its backend's words.
        setting: String,
        /// Where to set it.
        fix: String,
    },
}

impl Error {
    /// A backend failure of kind [`BackendErrorKind::Other`].
    pub fn backend(operation: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Backend {
            operation: operation.into(),
            kind: BackendErrorKind::Other,
            source: source.into(),
        }
    }
}
