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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, NameProblem, ProjectId, ServiceId, MAX_ECHO_CHARS};

mod yaml11;

use yaml11::{Node, Reading};

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
        write!(
            f,
            "{}: `{}`: {}",
            Escaped::new(&self.file),
            Escaped::whole(&self.location),
            Escaped::whole(&self.message)
        )
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

// ---------------------------------------------------------------------------
// Reading the document: JSON or YAML into a `Value`, duplicate keys rejected.

/// The location used for problems with the document as a whole.
const TOP_LEVEL: &str = "(top level)";

/// Project keys this crate reads. `id` is known only in the oldest form.
const PROJECT_KEYS: &[&str] = &[
    "name",
    "environments",
    "role_arn",
    "aws_region_name",
    "region_name",
    "account_id",
    "namespace",
    "image_repositories",
    "github_repository",
    "tf_stack_root",
];
const OLDEST_FORM_ID: &str = "id";
const ENVIRONMENT_KEYS: &[&str] = &["id", "name"];
const IMAGE_REPOSITORY_KEYS: &[&str] = &["id", "services", "account_id", "namespace"];

/// The document as a value and, for YAML, its node tree (to read ids and
/// names as YAML 1.1 readers do).
type Document = (Value, Option<Rc<Node>>);

fn read_document(text: &str, file: &str) -> Result<Document> {
    // Editors on Windows may write a byte-order mark; serde_json rejects it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(invalid(
            file,
            TOP_LEVEL,
            "the manifest is empty; expected an object keyed by project id",
        ));
    }
    let duplicate = RefCell::new(None);
    if matches!(text.trim_start().chars().next(), Some('{' | '[')) {
        // JSON, and only JSON: reading a broken JSON file as YAML would
        // guess at what was meant (a trailing comma, a comment).
        read_json(text, file, &duplicate).map(|value| (value, None))
    } else {
        let value = read_yaml(text, file, &duplicate)?;
        let root = yaml11::compose(text).map_err(|e| {
            let marker = e.marker();
            Error::ManifestSyntax {
                file: file.to_owned(),
                format: "YAML",
                line: marker.line().max(1),
                column: marker.col() + 1,
                message: e.info(),
            }
        })?;
        Ok((value, root))
    }
}

fn read_json(text: &str, file: &str, duplicate: &RefCell<Option<String>>) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let error = match StrictValue::root(duplicate)
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
    {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(path) = duplicate.take() {
        return Err(duplicate_key(file, path, Some(error.line())));
    }
    let (line, column) = (error.line(), error.column());
    let message = error.to_string();
    let message = strip_suffix(&message, &format!(" at line {line} column {column}"));
    Err(Error::ManifestSyntax {
        file: file.to_owned(),
        format: "JSON",
        line: line.max(1),
        // serde_json reports column 0 at the start of a line.
        column: column.max(1),
        message: message.to_owned(),
    })
}

fn read_yaml(text: &str, file: &str, duplicate: &RefCell<Option<String>>) -> Result<Value> {
    let options = serde_saphyr::options! {
        // Our visitor sees repeated keys and reports them with their path.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // Account ids such as `012345678901` must not lose their leading zero.
        leading_zero_numbers_as_strings: true,
        // A key `~` or `null` is kept as its text, so that the id checks
        // can say how YAML 1.1 readers take it.
        null_as_string: true,
        // `.inf` as a value is kept as text, not refused.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        // The message goes into one line of our error; no source snippet.
        with_snippet: false,
    };
    let error = match serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        StrictValue::root(duplicate).deserialize(de)
    }) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(path) = duplicate.take() {
        let line = error
            .location()
            .or_else(|| yaml_duplicate_location(text))
            .map(|l| saturate(l.line()));
        return Err(duplicate_key(file, path, line));
    }
    let (line, column) = error
        .location()
        .map(|l| (saturate(l.line()), saturate(l.column())))
        .unwrap_or((0, 0));
    let message = error.to_string();
    let message = strip_suffix(&message, &format!(" at line {line}, column {column}"));
    Err(Error::ManifestSyntax {
        file: file.to_owned(),
        format: "YAML",
        line: line.max(1),
        column: column.max(1),
        message: message.to_owned(),
    })
}

/// Where saphyr's own duplicate-key check finds the first repeated key (our
/// visitor's error has no position in YAML). Only called on the error path.
fn yaml_duplicate_location(text: &str) -> Option<serde_saphyr::Location> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    let error = serde_saphyr::from_str_with_options::<de::IgnoredAny>(text, options).err()?;
    // Only trust a position that is about a duplicate key.
    if error.to_string().contains("duplicate") {
        error.location()
    } else {
        None
    }
}

fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn strip_suffix<'a>(message: &'a str, suffix: &str) -> &'a str {
    message.strip_suffix(suffix).unwrap_or(message)
}

fn duplicate_key(file: &str, path: String, line: Option<usize>) -> Error {
    let again = match line {
        Some(line) if line > 0 => format!(" (again at line {line})"),
        _ => String::new(),
    };
    invalid(
        file,
        &path,
        &format!(
            "appears more than once in the same object{again}; \
             a later entry would silently replace the earlier one, so remove or rename one"
        ),
    )
}

/// Deserializes any JSON/YAML document into a [`Value`] like
/// `serde_json::Value` does, except that a key repeated within one object is
/// an error whose key path is left in `duplicate` (serde_json's own `Value`
/// keeps the last entry silently, which would hide a duplicated project).
struct StrictValue<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'a> StrictValue<'a> {
    fn root(duplicate: &'a RefCell<Option<String>>) -> StrictValue<'a> {
        StrictValue {
            path: String::new(),
            duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            // Like serde_json, a number too large for 64 bits becomes a float.
            Err(_) => float(v as f64),
        })
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            Err(_) => float(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let item = StrictValue {
                path: index_path(&self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(item)? {
                Some(value) => items.push(value),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = key_path(&self.path, &key);
            if object.contains_key(&key) {
                let message = format!("duplicate key {}", quoted(&key));
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(StrictValue {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// A mapping key: a string, or a YAML scalar taken as its text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        // `deserialize_string` makes YAML hand over a plain scalar's text as
        // written (`2021-09-27`, `012`), not a number or a date.
        deserializer.deserialize_string(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_owned())
    }
}

// ---------------------------------------------------------------------------
// Key paths and messages.

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// A key or value in double quotes, escaped and cut as every echoed value.
fn quoted(key: &str) -> String {
    format!("\"{}\"", Escaped::new(key))
}

/// `parent.key`, or `parent["odd key"]` when the key has dots, spaces, ….
fn key_path(parent: &str, key: &str) -> String {
    if is_plain_key(key) && key.len() <= MAX_ECHO_CHARS {
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    } else {
        format!("{parent}[{}]", quoted(key))
    }
}

fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

fn invalid(file: &str, location: &str, problem: &str) -> Error {
    Error::ManifestInvalid {
        file: file.to_owned(),
        location: if location.is_empty() {
            TOP_LEVEL.to_owned()
        } else {
            location.to_owned()
        },
        problem: problem.to_owned(),
    }
}

fn wrong_type(file: &str, location: &str, expected: &str, found: &Value) -> Error {
    invalid(
        file,
        location,
        &format!(
            "expected {expected}, found {}",
            crate::release::value_kind(found)
        ),
    )
}

/// Edit distance between two short strings (keys), by characters, where
/// swapping two neighbours counts as one edit (`nmae` is one edit from `name`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous is needed for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j - 1] + cost)
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The known key an unknown one is probably a typo of.
fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_lowercase();
    known
        .iter()
        .filter(|k| k.len().abs_diff(lower.len()) <= 2)
        .map(|k| (edit_distance(&lower, k), *k))
        // Short keys need a closer match: `ib` is not a typo of `id`.
        .filter(|(d, k)| *d <= 2 && *d * 2 < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The keys of an entry that are not in `known`.
fn unknown_keys<'o>(
    object: &'o Map<String, Value>,
    known: &'o [&str],
) -> impl Iterator<Item = &'o String> + 'o {
    object.keys().filter(move |k| !known.contains(&k.as_str()))
}

/// The unknown key that looks like a typo of `key`, if any: the one the
/// error about a missing `key` names.
fn near_miss<'o>(object: &'o Map<String, Value>, known: &[&str], key: &str) -> Option<&'o str> {
    object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .find(|k| suggestion(k, known) == Some(key))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------
// Ids and names in YAML: read as YAML 1.1 readers read them.

/// The text in an id or name position, and how YAML 1.1 readers read it
/// when not as a string. In YAML it is the scalar as written, so that
/// `1e3` (a string to PyYAML, a number in YAML 1.2) is the text `1e3`;
/// `None` when the value is not a scalar (or, in JSON, not a string).
fn position_text<'v>(
    value: &'v Value,
    node: Option<&'v Node>,
) -> Option<(&'v str, Option<&'v Reading>)> {
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        return None;
    }
    match node.and_then(Node::scalar) {
        Some(scalar) => Some(scalar),
        None => match value {
            Value::String(s) => Some((s, None)),
            _ => None,
        },
    }
}

/// Why a scalar is a problem in an id or name position.
fn yaml11_problem(text: &str, reading: &Reading, consequence: &str) -> String {
    let written = if text.is_empty() {
        "an empty value".to_owned()
    } else {
        format!("`{}`", Escaped::new(text))
    };
    let fix = match reading {
        Reading::Tag(_) => "remove the tag and quote it",
        _ => "quote it",
    };
    format!(
        "{written} is read as {} by YAML 1.1 readers such as PyYAML, which the earlier \
         tools use, so {consequence}; {fix}: {}",
        reading.describe(),
        quoted(text)
    )
}

/// The text of an id: a string, and one that YAML 1.1 readers read as that
/// string too.
fn id_text<'v>(
    file: &str,
    location: &str,
    value: &'v Value,
    node: Option<&'v Node>,
    what: &str,
) -> Result<&'v str> {
    match position_text(value, node) {
        Some((text, None)) => Ok(text),
        Some((text, Some(reading))) => Err(invalid(
            file,
            location,
            &yaml11_problem(text, reading, "they would not agree on this id"),
        )),
        None => Err(wrong_type(file, location, what, value)),
    }
}

/// The text of a name: a string (warned about in [`collect_warnings`] when
/// YAML 1.1 readers read it otherwise).
fn name_text<'v>(
    file: &str,
    location: &str,
    value: &'v Value,
    node: Option<&'v Node>,
    what: &str,
) -> Result<&'v str> {
    position_text(value, node)
        .map(|(text, _)| text)
        .ok_or_else(|| wrong_type(file, location, what, value))
}

// ---------------------------------------------------------------------------
// Warnings: found in one pass over the whole document, so that they are
// returned with an error as well.

/// A warning, and the location of the missing-key error that names its key
/// instead (the warning is dropped when that error is the one returned).
struct PendingWarning {
    warning: ManifestWarning,
    named_by_error: Option<String>,
}

/// Required keys of each kind of entry.
const PROJECT_REQUIRED: &[&str] = &["name", "environments"];
const ENVIRONMENT_REQUIRED: &[&str] = &["id", "name"];
const IMAGE_REPOSITORY_REQUIRED: &[&str] = &["id", "services"];

fn collect_warnings(file: &str, value: &Value, root: Option<&Node>) -> Vec<PendingWarning> {
    let mut out = Vec::new();
    let Value::Object(top) = value else {
        return out;
    };
    if is_oldest_form(top, root) {
        project_warnings(&mut out, file, "", top, root, true);
    } else {
        for (key, value) in top {
            if let Value::Object(project) = value {
                let node = root.and_then(|n| n.get(key));
                project_warnings(&mut out, file, &key_path("", key), project, node, false);
            }
        }
    }
    out
}

fn project_warnings(
    out: &mut Vec<PendingWarning>,
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
    oldest_form: bool,
) {
    let known = project_keys(oldest_form);
    unknown_key_warnings(out, file, path, object, &known, PROJECT_REQUIRED);
    name_warning(out, file, path, object, node, "project");
    let lists = [
        ("environments", ENVIRONMENT_KEYS, ENVIRONMENT_REQUIRED),
        (
            "image_repositories",
            IMAGE_REPOSITORY_KEYS,
            IMAGE_REPOSITORY_REQUIRED,
        ),
    ];
    for (list_key, known, required) in lists {
        let Some(Value::Array(list)) = object.get(list_key) else {
            continue;
        };
        let list_path = key_path(path, list_key);
        let list_node = node.and_then(|n| n.get(list_key));
        for (i, entry) in list.iter().enumerate() {
            let Value::Object(entry) = entry else {
                continue;
            };
            let entry_path = index_path(&list_path, i);
            unknown_key_warnings(out, file, &entry_path, entry, known, required);
            if list_key == "environments" {
                let entry_node = list_node.and_then(|n| n.index(i));
                name_warning(out, file, &entry_path, entry, entry_node, "environment");
            }
        }
    }
}

fn unknown_key_warnings(
    out: &mut Vec<PendingWarning>,
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    known: &[&str],
    required: &[&str],
) {
    for key in unknown_keys(object, known) {
        // The location already names the key.
        let mut message = "unknown key".to_owned();
        let mut named_by_error = None;
        match suggestion(key, known) {
            Some(known_key) => {
                message.push_str(&format!("; did you mean `{known_key}`?"));
                let missing = required.contains(&known_key) && !object.contains_key(known_key);
                if missing && near_miss(object, known, known_key) == Some(key.as_str()) {
                    named_by_error = Some(key_path(path, known_key));
                }
            }
            None => message.push_str("; kept as written but not used by release tracking"),
        }
        out.push(PendingWarning {
            warning: ManifestWarning {
                file: file.to_owned(),
                location: key_path(path, key),
                message,
            },
            named_by_error,
        });
    }
}

/// A warning when YAML 1.1 readers do not read the entry's `name` as the
/// string this crate reads.
fn name_warning(
    out: &mut Vec<PendingWarning>,
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
    whose: &str,
) {
    let Some(value) = object.get("name") else {
        return;
    };
    let node = node.and_then(|n| n.get("name"));
    if let Some((text, Some(reading))) = position_text(value, node) {
        out.push(PendingWarning {
            warning: ManifestWarning {
                file: file.to_owned(),
                location: key_path(path, "name"),
                message: yaml11_problem(
                    text,
                    reading,
                    &format!("they would show another {whose} name"),
                ),
            },
            named_by_error: None,
        });
    }
}

// ---------------------------------------------------------------------------
// Validating the document.

fn project_keys(oldest_form: bool) -> Vec<&'static str> {
    let mut known = PROJECT_KEYS.to_vec();
    if oldest_form {
        known.push(OLDEST_FORM_ID);
    }
    known
}

/// The oldest form: the whole file is one project with an `id` field (a
/// scalar; a classic manifest may have a project called `id`, an object).
fn is_oldest_form(top: &Map<String, Value>, root: Option<&Node>) -> bool {
    top.get(OLDEST_FORM_ID)
        .is_some_and(|id| position_text(id, root.and_then(|n| n.get(OLDEST_FORM_ID))).is_some())
}

fn build_manifest(file: &str, value: &Value, root: Option<&Node>) -> Result<Manifest> {
    let Value::Object(top) = value else {
        return Err(wrong_type(
            file,
            TOP_LEVEL,
            "an object keyed by project id",
            value,
        ));
    };
    let mut projects = BTreeMap::new();

    if is_oldest_form(top, root) {
        let id = id_text(
            file,
            OLDEST_FORM_ID,
            &top[OLDEST_FORM_ID],
            root.and_then(|n| n.get(OLDEST_FORM_ID)),
            "a string (the project id)",
        )?;
        let id = project_id(file, OLDEST_FORM_ID, id)?;
        let project = build_project(file, id, "", top, root, true)?;
        projects.insert(project.id.clone(), project);
    } else {
        if top.is_empty() {
            return Err(invalid(
                file,
                TOP_LEVEL,
                "the manifest lists no projects; expected an object keyed by project id",
            ));
        }
        for (key, value) in top {
            let path = key_path("", key);
            let entry = root.and_then(|n| n.entry(key));
            let key_value = Value::String(key.clone());
            let id = id_text(
                file,
                &path,
                &key_value,
                entry.map(|(k, _)| k),
                "a project id",
            )?;
            let id = project_id(file, &path, id)?;
            let Value::Object(object) = value else {
                return Err(wrong_type(
                    file,
                    &path,
                    "an object (a project with `name` and `environments`)",
                    value,
                ));
            };
            let node = entry.map(|(_, v)| v);
            let project = build_project(file, id, &path, object, node, false)?;
            projects.insert(project.id.clone(), project);
        }
    }

    Ok(Manifest {
        file: file.to_owned(),
        projects,
        warnings: Vec::new(),
    })
}

fn project_id(file: &str, location: &str, id: &str) -> Result<ProjectId> {
    ProjectId::new(id).map_err(|e| invalid(file, location, &e.to_string()))
}

/// A required key. When it is missing and an unknown key looks like a typo
/// of it, the error names that key too.
fn required<'v>(
    file: &str,
    path: &str,
    object: &'v Map<String, Value>,
    known: &[&str],
    key: &str,
    what: &str,
) -> Result<&'v Value> {
    object.get(key).ok_or_else(|| {
        let problem = match near_miss(object, known, key) {
            Some(typo) => format!(
                "missing; did you mean `{key}` where you wrote `{}`? Expected {what}",
                Escaped::new(typo)
            ),
            None => format!("missing; expected {what}"),
        };
        invalid(file, &key_path(path, key), &problem)
    })
}

/// A required key holding an id (see [`id_text`]).
fn required_id<'v>(
    file: &str,
    path: &str,
    (object, node): (&'v Map<String, Value>, Option<&'v Node>),
    known: &[&str],
    key: &str,
    what: &str,
) -> Result<&'v str> {
    let value = required(file, path, object, known, key, what)?;
    let node = node.and_then(|n| n.get(key));
    id_text(file, &key_path(path, key), value, node, what)
}

/// A required key holding a name (see [`name_text`]).
fn required_name<'v>(
    file: &str,
    path: &str,
    (object, node): (&'v Map<String, Value>, Option<&'v Node>),
    known: &[&str],
    what: &str,
) -> Result<&'v str> {
    let value = required(file, path, object, known, "name", what)?;
    let node = node.and_then(|n| n.get("name"));
    name_text(file, &key_path(path, "name"), value, node, what)
}

/// The entries of a list of objects with their key paths and YAML nodes;
/// an entry that is not an object is an error.
fn object_entries<'v>(
    file: &'v str,
    list: &'v [Value],
    list_path: &'v str,
    list_node: Option<&'v Node>,
    what: &'v str,
) -> impl Iterator<Item = Result<(String, &'v Map<String, Value>, Option<&'v Node>)>> + 'v {
    list.iter().enumerate().map(move |(i, entry)| {
        let path = index_path(list_path, i);
        match entry {
            Value::Object(entry) => Ok((path, entry, list_node.and_then(|n| n.index(i)))),
            other => Err(wrong_type(file, &path, what, other)),
        }
    })
}

/// An optional string key. `null` counts as absent: in YAML `role_arn:` with
/// nothing after it is null, and means "not set".
fn optional_string(
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(file, &key_path(path, key), "a string", other)),
    }
}

fn build_project(
    file: &str,
    id: ProjectId,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
    oldest_form: bool,
) -> Result<Project> {
    let known = project_keys(oldest_form);
    let name = required_name(
        file,
        path,
        (object, node),
        &known,
        "a string (the project's display name)",
    )?
    .to_owned();
    let environments = build_environments(file, &id, path, object, node, &known)?;

    let role_arn = optional_string(file, path, object, "role_arn")?;
    let aws_region_name = optional_string(file, path, object, "aws_region_name")?;
    let region_name = optional_string(file, path, object, "region_name")?;
    let aws_region = match (aws_region_name, region_name) {
        (Some(new), Some(old)) if new != old => {
            return Err(invalid(
                file,
                &key_path(path, "region_name"),
                &format!(
                    "`aws_region_name` is {} but `region_name` is {}; \
                     remove one or make them the same",
                    quoted(&new),
                    quoted(&old)
                ),
            ));
        }
        (new, old) => new.or(old),
    };
    let account_id = match object.get("account_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Real files write the account id as a number too.
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(other) => {
            return Err(wrong_type(
                file,
                &key_path(path, "account_id"),
                "a string (or a whole number)",
                other,
            ));
        }
    };
    let namespace = optional_string(file, path, object, "namespace")?;
    let github_repository = optional_string(file, path, object, "github_repository")?;
    let tf_stack_root = optional_string(file, path, object, "tf_stack_root")?;
    let image_repositories = build_image_repositories(file, path, object, node)?;

    let extra = object
        .iter()
        .filter(|(k, _)| {
            !(k.as_str() == "name"
                || k.as_str() == "environments"
                || (oldest_form && k.as_str() == OLDEST_FORM_ID))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(Project {
        id,
        name,
        environments,
        role_arn,
        aws_region,
        account_id,
        namespace,
        image_repositories,
        github_repository,
        tf_stack_root,
        extra,
    })
}

fn build_environments(
    file: &str,
    project: &ProjectId,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
    known: &[&str],
) -> Result<Vec<Environment>> {
    const WHAT: &str = "a list of environments (`[{id, name}]`)";
    let list_path = key_path(path, "environments");
    let list = match required(file, path, object, known, "environments", WHAT)? {
        Value::Array(list) => list,
        other => return Err(wrong_type(file, &list_path, WHAT, other)),
    };
    let list_node = node.and_then(|n| n.get("environments"));
    let mut environments = Vec::with_capacity(list.len());
    let entries = object_entries(
        file,
        list,
        &list_path,
        list_node,
        "an object with `id` and `name`",
    );
    for entry in entries {
        let (env_path, entry, entry_node) = entry?;
        let id = required_id(
            file,
            &env_path,
            (entry, entry_node),
            ENVIRONMENT_KEYS,
            "id",
            "a string (the environment id, such as `stage`)",
        )?;
        let id = EnvironmentId::new(id)
            .map_err(|e| invalid(file, &key_path(&env_path, "id"), &e.to_string()))?;
        let name = required_name(
            file,
            &env_path,
            (entry, entry_node),
            ENVIRONMENT_KEYS,
            "a string (the environment's display name)",
        )?;
        let extra = entry
            .iter()
            .filter(|(k, _)| !ENVIRONMENT_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        environments.push(Environment {
            id,
            name: name.to_owned(),
            extra,
        });
    }
    check_unique_environments(file, project, &environments)?;
    Ok(environments)
}

fn build_image_repositories(
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
) -> Result<Vec<ImageRepository>> {
    const WHAT: &str = "a list of image repositories (`[{id, services: [...]}]`)";
    let list_path = key_path(path, "image_repositories");
    let list = match object.get("image_repositories") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(file, &list_path, WHAT, other)),
    };
    let list_node = node.and_then(|n| n.get("image_repositories"));
    let mut repositories = Vec::with_capacity(list.len());
    let entries = object_entries(
        file,
        list,
        &list_path,
        list_node,
        "an object with `id` and `services`",
    );
    for entry in entries {
        let (entry_path, entry, entry_node) = entry?;
        let id = required_id(
            file,
            &entry_path,
            (entry, entry_node),
            IMAGE_REPOSITORY_KEYS,
            "id",
            "a string (the repository id)",
        )?;
        const SERVICES: &str = "a list of service ids";
        let services_path = key_path(&entry_path, "services");
        let services = match required(
            file,
            &entry_path,
            entry,
            IMAGE_REPOSITORY_KEYS,
            "services",
            SERVICES,
        )? {
            Value::Array(services) => services,
            other => return Err(wrong_type(file, &services_path, SERVICES, other)),
        };
        let services_node = entry_node.and_then(|n| n.get("services"));
        let services = services
            .iter()
            .enumerate()
            .map(|(j, service)| {
                let service_path = index_path(&services_path, j);
                let service_node = services_node.and_then(|n| n.index(j));
                let service = id_text(file, &service_path, service, service_node, "a service id")?;
                ServiceId::new(service).map_err(|e| invalid(file, &service_path, &e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let account_id = optional_string(file, &entry_path, entry, "account_id")?;
        let namespace = optional_string(file, &entry_path, entry, "namespace")?;
        repositories.push(ImageRepository {
            id: id.to_owned(),
            services,
            account_id,
            namespace,
        });
    }
    Ok(repositories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("role_ar", "role_arn"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn suggestions_need_a_close_match() {
        assert_eq!(
            suggestion("enviroments", PROJECT_KEYS),
            Some("environments")
        );
        assert_eq!(suggestion("REGION_NAME", PROJECT_KEYS), Some("region_name"));
        assert_eq!(suggestion("ib", ENVIRONMENT_KEYS), None);
        assert_eq!(suggestion("team", PROJECT_KEYS), None);
    }

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

    #[test]
    fn key_paths_quote_odd_keys() {
        assert_eq!(key_path("", "storage"), "storage");
        assert_eq!(key_path("storage", "role_arn"), "storage.role_arn");
        assert_eq!(key_path("", "my.project"), r#"["my.project"]"#);
        assert_eq!(key_path("a", "b c"), r#"a["b c"]"#);
        let long = "x".repeat(1000);
        assert!(key_path("a", &long).chars().count() < MAX_ECHO_CHARS + 10);
    }
}
