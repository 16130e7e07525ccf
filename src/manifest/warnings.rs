//! Warnings: found in one pass over the whole document, so that they are
//! returned with an error as well.

use serde_json::{Map, Value};

use super::messages::{key_path, near_miss, suggestion, unknown_keys, List};
use super::validate::{
    is_oldest_form, position_text, project_keys, yaml11_problem, ENVIRONMENT_KEYS,
    IMAGE_REPOSITORY_KEYS,
};
use super::yaml11::Node;
use super::ManifestWarning;

/// A warning, and the location of the missing-key error that names its key
/// instead (the warning is dropped when that error is the one returned).
pub(super) struct PendingWarning {
    pub(super) warning: ManifestWarning,
    pub(super) named_by_error: Option<String>,
}

/// Required keys of each kind of entry.
const PROJECT_REQUIRED: &[&str] = &["name", "environments"];
const ENVIRONMENT_REQUIRED: &[&str] = &["id", "name"];
const IMAGE_REPOSITORY_REQUIRED: &[&str] = &["id", "services"];

pub(super) fn collect_warnings(
    file: &str,
    value: &Value,
    root: Option<&Node>,
) -> Vec<PendingWarning> {
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
        let Some(Value::Array(items)) = object.get(list_key) else {
            continue;
        };
        for (entry_path, entry, entry_node) in List::at(path, list_key, items, node).items() {
            let Value::Object(entry) = entry else {
                continue;
            };
            unknown_key_warnings(out, file, &entry_path, entry, known, required);
            if list_key == "environments" {
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
