//! The project manifest, `.wellcome_project`: which projects exist and which
//! environments each deploys to.
//!
//! Every shape written by earlier tools is read:
//!
//! - the classic JSON form, an object keyed by project id:
//!   `{"storage": {"name": "Storage", "environments": [{"id": "stage", "name": "Staging"}]}}`;
//! - the oldest form, one project with an `id` field:
//!   `{"id": "storage", "name": "Storage", "environments": [...]}`;
//! - YAML (later files), with quoted ids such as `"2021-09-27"`.
//!
//! Nothing is guessed. A file whose first non-blank character is `{` or `[`
//! is JSON and read only as JSON. In YAML, ids and names are read as the
//! earlier tools read them (PyYAML, a YAML 1.1 reader): an unquoted id that
//! they would not read as a string (`2021-09-27`, `yes`, `1:20`, `~`) is an
//! error, and such a name a warning.
//!
//! Each problem is reported with the file and a key path
//! (`storage.environments[1].id`). Keys this crate does not know are kept
//! ([`Project::extra`], [`Environment::extra`]) and reported as
//! [`ManifestWarning`]s, with a suggestion when they look like a typo; a
//! required key that is missing beside such a typo is one error naming both.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::{ProjectId, MAX_ECHO_CHARS};

mod document;
mod messages;
mod types;
mod validate;
mod warnings;
mod yaml11;

pub use types::{Environment, ImageRepository, ManifestWarning, Project};

use document::read_document;
use validate::build_manifest;
use warnings::collect_warnings;

/// The name used for a project built in code rather than read from a file.
pub(crate) const IN_CODE: &str = "<in code>";

/// A parsed `.wellcome_project`.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    file: String,
    projects: BTreeMap<ProjectId, Project>,
    warnings: Vec<ManifestWarning>,
}

impl Manifest {
    /// The manifest's usual file name, in the root of a repository.
    pub const FILE_NAME: &'static str = ".wellcome_project";

    /// Reads and parses a manifest file (see [`Manifest::parse`]). Errors
    /// and warnings name the file as `path` is written; an I/O error (a
    /// missing file, bytes that are not UTF-8) is [`Error::ManifestRead`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Manifest> {
        Manifest::from_path_with_warnings(path).0
    }

    /// Like [`Manifest::from_path`], and also returns the warnings, whether
    /// or not the file is valid (see [`Manifest::parse_with_warnings`]).
    pub fn from_path_with_warnings(
        path: impl AsRef<Path>,
    ) -> (Result<Manifest>, Vec<ManifestWarning>) {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => Manifest::parse_with_warnings(&text, &path.display().to_string()),
            Err(source) => (
                Err(Error::ManifestRead {
                    path: path.to_path_buf(),
                    source,
                }),
                Vec::new(),
            ),
        }
    }

    /// Parses a manifest, JSON or YAML, in any of the shapes earlier tools
    /// wrote. `file` names it in errors and warnings.
    ///
    /// Text whose first non-blank character is `{` or `[` is JSON and read
    /// only as JSON; anything else is YAML. In YAML, an id (a project key or
    /// `id`, an environment or image repository `id`, a service listed in
    /// `services`) must be read as a string by YAML 1.1 readers too (PyYAML,
    /// which the earlier tools use): unquoted `2021-09-27`, `yes`, `off`,
    /// `012`, `1:20`, `.inf` or `~` is an error saying to quote it. Such a
    /// `name` is kept as written, with a warning.
    ///
    /// Fails with [`Error::ManifestSyntax`] (with a 1-based line and column)
    /// when the text is not valid JSON or YAML, [`Error::ManifestInvalid`]
    /// (with a key path) when a key is missing (naming an unknown key that
    /// looks like a typo of it), has the wrong type or an invalid value,
    /// when an id is not quoted as above, when a key appears twice in one
    /// object, when the two region keys disagree or when there are no
    /// projects, and [`Error::DuplicateEnvironment`] when a project lists an
    /// environment twice. Unknown keys are not errors: see
    /// [`Manifest::warnings`]; [`Manifest::parse_with_warnings`] also
    /// returns them when the manifest is invalid.
    ///
    /// ```
    /// use release_tracking::Manifest;
    ///
    /// let manifest = Manifest::parse(
    ///     r#"{"storage": {"name": "Storage", "environments": [{"id": "stage", "name": "Staging"}]}}"#,
    ///     ".wellcome_project",
    /// )?;
    /// let project = manifest.select(None)?;
    /// assert_eq!(project.environment("stage")?.name(), "Staging");
    /// # Ok::<(), release_tracking::Error>(())
    /// ```
    pub fn parse(text: &str, file: &str) -> Result<Manifest> {
        Manifest::parse_with_warnings(text, file).0
    }

    /// Like [`Manifest::parse`], and also returns the warnings, whether or
    /// not the manifest is valid, so that a caller can show them beside the
    /// error. On success they are [`Manifest::warnings`]. On failure they are
    /// every warning about the document (none when it is not valid JSON or
    /// YAML), except an unknown key that the error already names.
    ///
    /// ```
    /// use release_tracking::Manifest;
    ///
    /// let (manifest, warnings) = Manifest::parse_with_warnings(
    ///     "storage:\n  name: Storage\n  role_ar: x\n",
    ///     ".wellcome_project",
    /// );
    /// // `environments` is missing; the typo `role_ar` is still reported.
    /// assert!(manifest.is_err());
    /// assert_eq!(warnings[0].location, "storage.role_ar");
    /// ```
    pub fn parse_with_warnings(text: &str, file: &str) -> (Result<Manifest>, Vec<ManifestWarning>) {
        let (value, root) = match read_document(text, file) {
            Ok(document) => document,
            Err(e) => return (Err(e), Vec::new()),
        };
        let root = root.as_deref();
        let pending = collect_warnings(file, &value, root);
        match build_manifest(file, &value, root) {
            Ok(mut manifest) => {
                let warnings: Vec<_> = pending.into_iter().map(|p| p.warning).collect();
                manifest.warnings = warnings.clone();
                (Ok(manifest), warnings)
            }
            Err(e) => {
                let location = match &e {
                    Error::ManifestInvalid { location, .. } => Some(location.as_str()),
                    _ => None,
                };
                let warnings = pending
                    .into_iter()
                    .filter(|p| {
                        p.named_by_error.is_none() || p.named_by_error.as_deref() != location
                    })
                    .map(|p| p.warning)
                    .collect();
                (Err(e), warnings)
            }
        }
    }

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
                // One character more than a message shows, so it marks the cut.
                project: id.chars().take(MAX_ECHO_CHARS + 1).collect(),
                known: self.projects.keys().cloned().collect(),
            })
    }

    /// The project named `id`, or the only project when `id` is `None`
    /// ([`Error::ProjectNotChosen`] if there are several, or none).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::names::ServiceId;

    fn service(id: &str) -> ServiceId {
        ServiceId::new(id).unwrap()
    }

    #[test]
    fn image_repositories_read_account_and_namespace_overrides() {
        let text = r#"{"storage": {"name": "Storage", "environments": [],
            "image_repositories": [
                {"id": "api", "services": ["api"], "account_id": "975596993436", "namespace": "uk.ac.wellcome"},
                {"id": "worker", "services": ["worker"], "account_id": null}
            ]}}"#;
        let manifest = Manifest::parse(text, "m").unwrap();
        assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
        let repositories = manifest.select(None).unwrap().image_repositories();
        assert_eq!(
            repositories,
            [
                ImageRepository::new("api", vec![service("api")])
                    .with_account_id("975596993436")
                    .with_namespace("uk.ac.wellcome"),
                ImageRepository::new("worker", vec![service("worker")]),
            ]
        );
    }

    #[test]
    fn image_repository_overrides_must_be_strings() {
        for key in ["account_id", "namespace"] {
            let text = format!(
                r#"{{"storage": {{"name": "Storage", "environments": [],
                    "image_repositories": [{{"id": "api", "services": [], "{key}": 12}}]}}}}"#
            );
            match Manifest::parse(&text, "m") {
                Err(Error::ManifestInvalid {
                    location, problem, ..
                }) => {
                    assert_eq!(location, format!("storage.image_repositories[0].{key}"));
                    assert!(problem.contains("expected a string"), "{problem}");
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn project_builders_set_every_field() {
        let project = Project::new(ProjectId::new("storage").unwrap(), "Storage", vec![])
            .unwrap()
            .with_role_arn("arn:aws:iam::1:role/ci")
            .with_aws_region("eu-west-1")
            .with_account_id("760097843905")
            .with_namespace("uk.ac.wellcome")
            .with_image_repositories([ImageRepository::new("api", vec![service("api")])]);
        assert_eq!(project.role_arn(), Some("arn:aws:iam::1:role/ci"));
        assert_eq!(project.aws_region(), Some("eu-west-1"));
        assert_eq!(project.account_id(), Some("760097843905"));
        assert_eq!(project.namespace(), Some("uk.ac.wellcome"));
        assert_eq!(project.image_repositories().len(), 1);
        assert_eq!(project.image_repositories()[0].id, "api");
    }

    #[test]
    fn image_repository_for_prefers_the_services_list_then_the_id() {
        let project = Project::new(ProjectId::new("storage").unwrap(), "Storage", vec![])
            .unwrap()
            .with_image_repositories([
                ImageRepository::new("worker", vec![]),
                ImageRepository::new("shared", vec![service("worker"), service("api")]),
                ImageRepository::new("ingest", vec![]),
            ]);
        let id_of = |s: &str| {
            project
                .image_repository_for(&service(s))
                .map(|r| r.id.as_str())
        };
        // Listed in `services` wins over an entry named like the service.
        assert_eq!(id_of("worker"), Some("shared"));
        assert_eq!(id_of("api"), Some("shared"));
        // Not listed anywhere: the entry with the service's id.
        assert_eq!(id_of("ingest"), Some("ingest"));
        assert_eq!(id_of("other"), None);
    }
}
