//! The project manifest, `.wellcome_project`: which projects exist and which
//! environments each deploys to.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ServiceId};

/// The name used for a project built in code rather than read from a file.
pub(crate) const IN_CODE: &str = "<in code>";

/// An environment a project deploys to.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    id: EnvironmentId,
    name: String,
    extra: Map<String, Value>,
}

impl Environment {
    /// An environment with a display name.
    pub fn new(id: EnvironmentId, name: impl Into<String>) -> Environment {
        Environment {
            id,
            name: name.into(),
            extra: Map::new(),
        }
    }

    /// The id, which is also the label holding the environment's images.
    pub fn id(&self) -> &EnvironmentId {
        &self.id
    }

    /// The display name (`Staging`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keys of the manifest entry other than `id` and `name`, as written.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// An ECR repository entry of a project: `{id, services: [...]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRepository {
    /// The repository id.
    pub id: String,
    /// The services whose images it holds.
    pub services: Vec<ServiceId>,
}

/// One project of the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    id: ProjectId,
    name: String,
    environments: Vec<Environment>,
    role_arn: Option<String>,
    aws_region: Option<String>,
    account_id: Option<String>,
    namespace: Option<String>,
    image_repositories: Vec<ImageRepository>,
    github_repository: Option<String>,
    tf_stack_root: Option<String>,
    extra: Map<String, Value>,
}

impl Project {
    /// A project built in code. Fails with [`Error::DuplicateEnvironment`] if
    /// two environments share an id.
    pub fn new(
        id: ProjectId,
        name: impl Into<String>,
        environments: Vec<Environment>,
    ) -> Result<Project> {
        check_unique_environments(IN_CODE, &id, &environments)?;
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
    /// ids.
    pub fn environment(&self, id: &str) -> Result<&Environment> {
        self.environments
            .iter()
            .find(|e| e.id.as_str() == id)
            .ok_or_else(|| Error::UnknownEnvironment {
                project: self.id.clone(),
                environment: id.chars().take(256).collect(),
                known: self.environments.iter().map(|e| e.id.clone()).collect(),
            })
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

    /// `github_repository`.
    pub fn github_repository(&self) -> Option<&str> {
        self.github_repository.as_deref()
    }

    /// `tf_stack_root`.
    pub fn tf_stack_root(&self) -> Option<&str> {
        self.tf_stack_root.as_deref()
    }

    /// Every key of the manifest entry other than `name` and `environments`,
    /// as written, known or not (so callers can read keys of other tools).
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

fn check_unique_environments(
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
        write!(f, "{}: `{}`: {}", self.file, self.location, self.message)
    }
}

/// A parsed `.wellcome_project`.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    file: String,
    projects: BTreeMap<ProjectId, Project>,
    warnings: Vec<ManifestWarning>,
}

impl Manifest {
    /// A manifest holding the given projects, built in code.
    pub fn from_projects(projects: impl IntoIterator<Item = Project>) -> Manifest {
        Manifest {
            file: IN_CODE.to_owned(),
            projects: projects.into_iter().map(|p| (p.id.clone(), p)).collect(),
            warnings: Vec::new(),
        }
    }

    /// The file it was read from (or the name given to it).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every project, by id.
    pub fn projects(&self) -> impl Iterator<Item = &Project> {
        self.projects.values()
    }

    /// One project, or [`Error::UnknownProject`] listing the known ids.
    pub fn project(&self, id: &str) -> Result<&Project> {
        self.projects
            .values()
            .find(|p| p.id.as_str() == id)
            .ok_or_else(|| Error::UnknownProject {
                file: self.file.clone(),
                project: id.chars().take(256).collect(),
                known: self.projects.keys().cloned().collect(),
            })
    }

    /// The project named `id`, or the only project when `id` is `None`
    /// ([`Error::ProjectNotChosen`] if there are several).
    pub fn select(&self, id: Option<&str>) -> Result<&Project> {
        match id {
            Some(id) => self.project(id),
            None => {
                let mut projects = self.projects.values();
                match (projects.next(), projects.next()) {
                    (Some(only), None) => Ok(only),
                    _ => Err(Error::ProjectNotChosen {
                        file: self.file.clone(),
                        known: self.projects.keys().cloned().collect(),
                    }),
                }
            }
        }
    }

    /// Unknown keys and other things worth showing to the user.
    pub fn warnings(&self) -> &[ManifestWarning] {
        &self.warnings
    }
}
