//! Validating the document: a `Value` (and, for YAML, its node tree) into
//! a [`Manifest`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::messages::{invalid, key_path, near_miss, quoted, wrong_type, List, TOP_LEVEL};
use super::types::{check_promotion_gates, check_unique_environments};
use super::yaml11::{Node, Reading};
use super::{Environment, ImageRepository, Manifest, Project};
use crate::error::Result;
use crate::names::{EnvironmentId, Escaped, ProjectId, ServiceId};
use crate::promotion::Soak;

/// Project keys this crate reads. `id` is known only in the oldest form.
pub(super) const PROJECT_KEYS: &[&str] = &[
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
pub(super) const OLDEST_FORM_ID: &str = "id";
pub(super) const ENVIRONMENT_KEYS: &[&str] = &["id", "name", "requires", "soak"];
pub(super) const IMAGE_REPOSITORY_KEYS: &[&str] = &["id", "services", "account_id", "namespace"];
// ---------------------------------------------------------------------------
// Ids and names in YAML: read as YAML 1.1 readers read them.

/// The text in an id or name position, and how YAML 1.1 readers read it
/// when not as a string. In YAML it is the scalar as written, so that
/// `1e3` (a string to PyYAML, a number in YAML 1.2) is the text `1e3`;
/// `None` when the value is not a scalar (or, in JSON, not a string).
pub(super) fn position_text<'v>(
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
pub(super) fn yaml11_problem(text: &str, reading: &Reading, consequence: &str) -> String {
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
// Validating the document.

pub(super) fn project_keys(oldest_form: bool) -> Vec<&'static str> {
    let mut known = PROJECT_KEYS.to_vec();
    if oldest_form {
        known.push(OLDEST_FORM_ID);
    }
    known
}

/// The oldest form: the whole file is one project with an `id` field (a
/// scalar; a classic manifest may have a project called `id`, an object).
pub(super) fn is_oldest_form(top: &Map<String, Value>, root: Option<&Node>) -> bool {
    top.get(OLDEST_FORM_ID)
        .is_some_and(|id| position_text(id, root.and_then(|n| n.get(OLDEST_FORM_ID))).is_some())
}

pub(super) fn build_manifest(file: &str, value: &Value, root: Option<&Node>) -> Result<Manifest> {
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

/// `value`, found at `key` of the entry at `path`, as a list; a value that
/// is not a list is an error.
fn list_at<'v>(
    file: &str,
    path: &str,
    key: &str,
    (value, node): (&'v Value, Option<&'v Node>),
    what: &str,
) -> Result<List<'v>> {
    match value {
        Value::Array(items) => Ok(List::at(path, key, items, node)),
        other => Err(wrong_type(file, &key_path(path, key), what, other)),
    }
}

/// The entries of a list of objects with their key paths and YAML nodes;
/// an entry that is not an object is an error.
fn object_entries<'v>(
    file: &'v str,
    list: &'v List<'v>,
    what: &'v str,
) -> impl Iterator<Item = Result<(String, &'v Map<String, Value>, Option<&'v Node>)>> + 'v {
    list.items().map(move |(path, entry, node)| match entry {
        Value::Object(entry) => Ok((path, entry, node)),
        other => Err(wrong_type(file, &path, what, other)),
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
    let value = required(file, path, object, known, "environments", WHAT)?;
    let list = list_at(file, path, "environments", (value, node), WHAT)?;
    let mut environments = Vec::with_capacity(list.len());
    for entry in object_entries(file, &list, "an object with `id` and `name`") {
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
        let requires = build_requires(file, &env_path, entry, entry_node)?;
        let soak = match entry.get("soak") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let location = key_path(&env_path, "soak");
                let node = entry_node.and_then(|n| n.get("soak"));
                let text = match position_text(value, node) {
                    Some((text, None)) => text,
                    _ => {
                        return Err(wrong_type(
                            file,
                            &location,
                            "a soak time such as `2h` or `30m` (a string)",
                            value,
                        ))
                    }
                };
                Some(
                    text.parse::<Soak>()
                        .map_err(|e| invalid(file, &location, &e.to_string()))?,
                )
            }
        };
        let extra = entry
            .iter()
            .filter(|(k, _)| !ENVIRONMENT_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        environments.push(Environment {
            id,
            name: name.to_owned(),
            requires,
            soak,
            extra,
        });
    }
    check_unique_environments(file, project, &environments)?;
    check_promotion_gates(file, &key_path(path, "environments"), &environments)?;
    Ok(environments)
}

/// An environment's `requires`: a list of environment ids (checked against
/// the project's environments once all are read).
fn build_requires(
    file: &str,
    env_path: &str,
    entry: &Map<String, Value>,
    entry_node: Option<&Node>,
) -> Result<Vec<EnvironmentId>> {
    const WHAT: &str = "a list of environment ids, such as `[stage]`";
    let list = match entry.get("requires") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => list_at(file, env_path, "requires", (value, entry_node), WHAT)?,
    };
    list.items()
        .map(|(item_path, item, item_node)| {
            let id = id_text(file, &item_path, item, item_node, "an environment id")?;
            EnvironmentId::new(id).map_err(|e| invalid(file, &item_path, &e.to_string()))
        })
        .collect()
}

fn build_image_repositories(
    file: &str,
    path: &str,
    object: &Map<String, Value>,
    node: Option<&Node>,
) -> Result<Vec<ImageRepository>> {
    const WHAT: &str = "a list of image repositories (`[{id, services: [...]}]`)";
    let list = match object.get("image_repositories") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => list_at(file, path, "image_repositories", (value, node), WHAT)?,
    };
    let mut repositories = Vec::with_capacity(list.len());
    for entry in object_entries(file, &list, "an object with `id` and `services`") {
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
        let value = required(
            file,
            &entry_path,
            entry,
            IMAGE_REPOSITORY_KEYS,
            "services",
            SERVICES,
        )?;
        let services = list_at(file, &entry_path, "services", (value, entry_node), SERVICES)?
            .items()
            .map(|(service_path, service, service_node)| {
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
