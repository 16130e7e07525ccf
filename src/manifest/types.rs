//! The manifest's types: projects, their environments and image
//! repositories, and warnings.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::IN_CODE;
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, NameProblem, ProjectId, ServiceId, MAX_ECHO_CHARS};
use crate::promotion::Soak;

/// An environment a project deploys to, and its promotion gates (see
/// [`promotion`](crate::promotion)).
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub(super) id: EnvironmentId,
    pub(super) name: String,
    pub(super) requires: Vec<EnvironmentId>,
    pub(super) soak: Option<Soak>,
    pub(super) extra: Map<String, Value>,
}

impl Environment {
    /// An environment with a display name and no promotion gates.
    pub fn new(id: EnvironmentId, name: impl Into<String>) -> Environment {
        Environment {
            id,
            name: name.into(),
            requires: Vec::new(),
            soak: None,
            extra: Map::new(),
        }
    }

    /// Sets the environments a release must have been deployed to before
    /// this one accepts it (the manifest's `requires`). [`Project::new`]
    /// checks that they are environments of the project.
    pub fn with_requires(
        mut self,
        requires: impl IntoIterator<Item = EnvironmentId>,
    ) -> Environment {
        self.requires = requires.into_iter().collect();
        self
    }

    /// Sets how long a release must have been current in each required
    /// environment (the manifest's `soak`).
    pub fn with_soak(mut self, soak: Soak) -> Environment {
        self.soak = Some(soak);
        self
    }

    /// The environments a release must have been deployed to first (the
    /// manifest's `requires`); empty when there are none.
    pub fn requires(&self) -> &[EnvironmentId] {
        &self.requires
    }

    /// How long a release must have been current in each of
    /// [`requires`](Self::requires) (the manifest's `soak`).
    pub fn soak(&self) -> Option<Soak> {
        self.soak
    }

    /// Whether the environment has promotion gates.
    pub fn is_gated(&self) -> bool {
        !self.requires.is_empty()
    }

    /// The id, which is also the label holding the environment's images.
    pub fn id(&self) -> &EnvironmentId {
        &self.id
    }

    /// The display name (`Staging`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keys of the manifest entry other than `id`, `name`, `requires` and
    /// `soak`, as written.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// An ECR repository entry of a project: `{id, services: [...]}`, with
/// optional `account_id` and `namespace` overriding the project's (as
/// `weco-deploy` reads them).
///
/// Build one with [`ImageRepository::new`]; more fields may be added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageRepository {
    /// The repository id.
    pub id: String,
    /// The services whose images it holds.
    pub services: Vec<ServiceId>,
    /// The AWS account holding the repository, when not the project's
    /// [`Project::account_id`].
    pub account_id: Option<String>,
    /// The repository namespace (the part of the repository name before the
    /// id), when not the project's [`Project::namespace`].
    pub namespace: Option<String>,
}

impl ImageRepository {
    /// A repository entry holding the images of `services`, with no
    /// account or namespace of its own.
    pub fn new(id: impl Into<String>, services: Vec<ServiceId>) -> ImageRepository {
        ImageRepository {
            id: id.into(),
            services,
            account_id: None,
            namespace: None,
        }
    }

    /// Sets the account holding the repository.
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> ImageRepository {
        self.account_id = Some(account_id.into());
        self
    }

    /// Sets the repository namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> ImageRepository {
        self.namespace = Some(namespace.into());
        self
    }
}

/// One project of the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub(super) id: ProjectId,
    pub(super) name: String,
    pub(super) environments: Vec<Environment>,
    pub(super) role_arn: Option<String>,
    pub(super) aws_region: Option<String>,
    pub(super) account_id: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) image_repositories: Vec<ImageRepository>,
    pub(super) github_repository: Option<String>,
    pub(super) tf_stack_root: Option<String>,
    pub(super) extra: Map<String, Value>,
}

impl Project {
    /// A project built in code. Fails with [`Error::DuplicateEnvironment`] if
    /// two environments share an id, and with [`Error::ManifestInvalid`] if
    /// an environment's promotion gates are not consistent (as for a
    /// manifest: see [`Manifest::parse`](super::Manifest::parse)).
    pub fn new(
        id: ProjectId,
        name: impl Into<String>,
        environments: Vec<Environment>,
    ) -> Result<Project> {
        check_unique_environments(IN_CODE, &id, &environments)?;
        check_promotion_gates(IN_CODE, "environments", &environments)?;
        Ok(Project {
            id,
            name: name.into(),
            environments,
            role_arn: None,
            aws_region: None,
            account_id: None,
            namespace: None,
            image_repositories: Vec::new(),
            github_repository: None,
            tf_stack_root: None,
            extra: Map::new(),
        })
    }

    /// Sets `role_arn` (see [`Project::role_arn`]). Like the other `with_`
    /// methods it leaves [`Project::extra`] as it is.
    pub fn with_role_arn(mut self, role_arn: impl Into<String>) -> Project {
        self.role_arn = Some(role_arn.into());
        self
    }

    /// Sets the AWS region (see [`Project::aws_region`]).
    pub fn with_aws_region(mut self, region: impl Into<String>) -> Project {
        self.aws_region = Some(region.into());
        self
    }

    /// Sets `account_id` (see [`Project::account_id`]).
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> Project {
        self.account_id = Some(account_id.into());
        self
    }

    /// Sets `namespace` (see [`Project::namespace`]).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Project {
        self.namespace = Some(namespace.into());
        self
    }

    /// Replaces `image_repositories` (see [`Project::image_repositories`]).
    pub fn with_image_repositories(
        mut self,
        repositories: impl IntoIterator<Item = ImageRepository>,
    ) -> Project {
        self.image_repositories = repositories.into_iter().collect();
        self
    }

    /// The project id.
    pub fn id(&self) -> &ProjectId {
        &self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The environments, in manifest order.
    pub fn environments(&self) -> &[Environment] {
        &self.environments
    }

    /// One environment, or [`Error::UnknownEnvironment`] listing the known
    /// ids. A reserved id (`latest`) is [`Error::InvalidName`] saying why, as
    /// in a manifest.
    pub fn environment(&self, id: &str) -> Result<&Environment> {
        if let Some(environment) = self.environments.iter().find(|e| e.id.as_str() == id) {
            return Ok(environment);
        }
        match EnvironmentId::new(id) {
            Err(e) if matches!(e.problem(), NameProblem::Reserved(_)) => Err(e.into()),
            _ => Err(Error::UnknownEnvironment {
                project: self.id.clone(),
                // One character more than a message shows, so it marks the cut.
                environment: id.chars().take(MAX_ECHO_CHARS + 1).collect(),
                known: self.environments.iter().map(|e| e.id.clone()).collect(),
            }),
        }
    }

    /// `role_arn`: the IAM role to assume for AWS calls.
    pub fn role_arn(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// The AWS region: `aws_region_name`, or the older `region_name` when
    /// only that is set (a manifest where both are set and differ is
    /// rejected when it is loaded).
    pub fn aws_region(&self) -> Option<&str> {
        self.aws_region.as_deref()
    }

    /// `account_id`.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// `namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// `image_repositories`.
    pub fn image_repositories(&self) -> &[ImageRepository] {
        &self.image_repositories
    }

    /// The repository entry holding `service`'s images: the first entry whose
    /// `services` lists it, else the first whose `id` is the service id
    /// (`weco-deploy` keys a release's images by repository id).
    pub fn image_repository_for(&self, service: &ServiceId) -> Option<&ImageRepository> {
        self.image_repositories
            .iter()
            .find(|r| r.services.contains(service))
            .or_else(|| {
                self.image_repositories
                    .iter()
                    .find(|r| r.id == service.as_str())
            })
    }

    /// `github_repository`.
    pub fn github_repository(&self) -> Option<&str> {
        self.github_repository.as_deref()
    }

    /// `tf_stack_root`.
    pub fn tf_stack_root(&self) -> Option<&str> {
        self.tf_stack_root.as_deref()
    }

    /// Every key of the manifest entry other than `name` and `environments`
    /// (and `id` in the oldest, single-project form), as written, known or
    /// not (so callers can read keys of other tools).
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

pub(super) fn check_unique_environments(
    file: &str,
    project: &ProjectId,
    environments: &[Environment],
) -> Result<()> {
    let mut seen = BTreeMap::new();
    for env in environments {
        if seen.insert(env.id.as_str(), ()).is_some() {
            return Err(Error::DuplicateEnvironment {
                file: file.to_owned(),
                project: project.clone(),
                environment: env.id.clone(),
            });
        }
    }
    Ok(())
}

/// Checks the environments' promotion gates: each required environment is
/// another environment of the project, listed once; no environment requires
/// itself through others (no release could be deployed to any of them
/// without a bypass); a `soak` comes with `requires`. Locations are key
/// paths under `environments_path`.
pub(super) fn check_promotion_gates(
    file: &str,
    environments_path: &str,
    environments: &[Environment],
) -> Result<()> {
    let invalid = |location: String, problem: String| Error::ManifestInvalid {
        file: file.to_owned(),
        location,
        problem,
    };
    let known: Vec<&EnvironmentId> = environments.iter().map(|e| &e.id).collect();
    for (i, environment) in environments.iter().enumerate() {
        let path = format!("{environments_path}[{i}]");
        for (j, required) in environment.requires.iter().enumerate() {
            let location = format!("{path}.requires[{j}]");
            if required == &environment.id {
                return Err(invalid(
                    location,
                    format!("`{required}` requires itself; list the environments a release must run in first"),
                ));
            }
            if !known.contains(&required) {
                return Err(invalid(
                    location,
                    format!(
                        "`{required}` is not an environment of this project; its environments are: {}",
                        crate::error::Names(&known)
                    ),
                ));
            }
            if environment.requires[..j].contains(required) {
                return Err(invalid(location, format!("`{required}` is listed twice")));
            }
        }
        if environment.soak.is_some() && environment.requires.is_empty() {
            return Err(invalid(
                format!("{path}.soak"),
                "a soak is how long a release must have been current in the required \
                 environments; add `requires`, or remove `soak`"
                    .to_owned(),
            ));
        }
    }
    // A cycle: follow `requires` from each environment; coming back to it
    // means none of them can ever be deployed to without a bypass.
    for (i, start) in environments.iter().enumerate() {
        let mut trail = vec![&start.id];
        if let Some(cycle) = find_cycle(environments, &start.id, &mut trail) {
            let shown: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            return Err(invalid(
                format!("{environments_path}[{i}].requires"),
                format!(
                    "the environments require each other in a cycle ({}), so no release could \
                     be deployed to them without a bypass",
                    shown.join(" requires ")
                ),
            ));
        }
    }
    Ok(())
}

/// A path of `requires` from the end of `trail` back to `start`, if any.
fn find_cycle<'e>(
    environments: &'e [Environment],
    start: &EnvironmentId,
    trail: &mut Vec<&'e EnvironmentId>,
) -> Option<Vec<&'e EnvironmentId>> {
    let current = trail.last().copied()?;
    let environment = environments.iter().find(|e| &e.id == current)?;
    for required in &environment.requires {
        if required == start {
            let mut cycle = trail.clone();
            cycle.push(required);
            return Some(cycle);
        }
        if !trail.contains(&required) {
            trail.push(required);
            if let Some(cycle) = find_cycle(environments, start, trail) {
                return Some(cycle);
            }
            trail.pop();
        }
    }
    None
}

/// Something in a manifest that is not an error but may be a mistake, such
/// as an unknown key (a typo would otherwise vanish silently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestWarning {
    /// The file.
    pub file: String,
    /// Where, as a key path: `storage.role_ar`.
    pub location: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}`: {}",
            Escaped::new(&self.file),
            Escaped::whole(&self.location),
            Escaped::whole(&self.message)
        )
    }
}
