//! The values whose shape in a record depends on the tool generation that
//! wrote it: the requester, a deployment's environment and a release's
//! image entries, and [`RecordShape`], which names those generations.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::Release;
use crate::names::{EnvironmentId, Escaped, ImageUri};

/// Who asked for a release or a deployment.
///
/// Current records hold a string, normally the caller's ARN from STS
/// `GetCallerIdentity` (`arn:aws:sts::123456789012:assumed-role/ci/session`);
/// the oldest hold a map `{id, name}`. Each is written back in the shape it
/// was read in; new values use the string shape.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requester {
    /// The current shape: an ARN or another principal string.
    Principal(String),
    /// The oldest shape: `{"id": …, "name": …}`.
    Legacy {
        /// The `id` field.
        id: String,
        /// The `name` field.
        name: String,
    },
}

impl Requester {
    /// A requester in the current shape.
    pub fn new(principal: impl Into<String>) -> Requester {
        Requester::Principal(principal.into())
    }

    /// The ARN or principal string, or the legacy `id`.
    pub fn id(&self) -> &str {
        match self {
            Requester::Principal(p) => p,
            Requester::Legacy { id, .. } => id,
        }
    }

    /// A short name for people: the last `/` segment of an ARN
    /// (`arn:aws:sts::1:assumed-role/ci/session` → `session`), or the legacy
    /// `name`.
    pub fn display_name(&self) -> &str {
        match self {
            Requester::Principal(p) => p.rsplit('/').next().unwrap_or(p),
            Requester::Legacy { name, .. } => name,
        }
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.display_name())
    }
}

impl fmt::Debug for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requester::Principal(p) => write!(f, "Requester({p:?})"),
            Requester::Legacy { id, name } => {
                write!(f, "Requester {{ id: {id:?}, name: {name:?} }}")
            }
        }
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        Some(value) => string_value(key, value),
        None => Err(format!("missing `{key}`")),
    }
}

/// The value of field `key` of a legacy map, which must be a string.
fn string_value(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "`{key}` must be a string, found {}",
            value_kind(other)
        )),
    }
}

/// A value of neither of the shapes a type is read from.
fn unexpected<E: serde::de::Error>(expected: &str, found: &Value) -> E {
    E::custom(format!("expected {expected}, found {}", value_kind(found)))
}

/// What a JSON value is, for "expected X, found Y" messages.
pub(crate) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Serialize for Requester {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Requester::Principal(p) => serializer.serialize_str(p),
            Requester::Legacy { id, name } => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("name", name)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Requester {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(p) => Ok(Requester::Principal(p)),
            Value::Object(map) => {
                let id = string_field(&map, "id").map_err(D::Error::custom)?;
                // The oldest records always have both; tolerate a missing name.
                let name = match map.get("name") {
                    None => id.clone(),
                    Some(_) => string_field(&map, "name").map_err(D::Error::custom)?,
                };
                Ok(Requester::Legacy { id, name })
            }
            other => Err(unexpected(
                "a principal string or an {id, name} map",
                &other,
            )),
        }
    }
}

/// The environment a deployment went to.
///
/// Current records hold the id string (`"stage"`); the oldest hold the
/// manifest's environment map (`{id, name, …}`), kept whole.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum DeploymentEnvironment {
    /// The current shape: the environment id.
    Id(EnvironmentId),
    /// The oldest shape: the manifest entry.
    Legacy {
        /// The `id` field.
        id: EnvironmentId,
        /// The `name` field, if present.
        name: Option<String>,
        /// Any other fields, kept as they were.
        extra: Map<String, Value>,
    },
}

impl DeploymentEnvironment {
    /// The environment id, whatever the shape.
    pub fn id(&self) -> &EnvironmentId {
        match self {
            DeploymentEnvironment::Id(id) | DeploymentEnvironment::Legacy { id, .. } => id,
        }
    }
}

impl Serialize for DeploymentEnvironment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DeploymentEnvironment::Id(id) => id.serialize(serializer),
            DeploymentEnvironment::Legacy { id, name, extra } => {
                let mut map = Map::new();
                map.insert("id".into(), Value::String(id.to_string()));
                if let Some(name) = name {
                    map.insert("name".into(), Value::String(name.clone()));
                }
                for (k, v) in extra {
                    map.insert(k.clone(), v.clone());
                }
                map.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for DeploymentEnvironment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(id) => EnvironmentId::new(id)
                .map(DeploymentEnvironment::Id)
                .map_err(D::Error::custom),
            Value::Object(mut map) => {
                let id = string_field(&map, "id").map_err(D::Error::custom)?;
                let id = EnvironmentId::new(id).map_err(D::Error::custom)?;
                map.remove("id");
                let name = match map.remove("name") {
                    None | Some(Value::Null) => None,
                    Some(name) => Some(string_value("name", &name).map_err(D::Error::custom)?),
                };
                Ok(DeploymentEnvironment::Legacy {
                    id,
                    name,
                    extra: map,
                })
            }
            other => Err(unexpected(
                "an environment id string or an {id, name} map",
                &other,
            )),
        }
    }
}

/// The shape of a record's `requested_by` and of its deployments'
/// `environment`, by the tool generation that wrote it.
///
/// Readers of a shared table expect the shapes they have seen there:
/// `release_tooling`'s `show-deployments` crashes on a deployment whose
/// `environment` is a string, while `weco-deploy` 4.1.6 reads every shape.
/// See [`ReleaseTracker::with_record_shape`](crate::ReleaseTracker::with_record_shape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordShape {
    /// `release_tooling` and weco-deploy 1.x: `requested_by` is a map
    /// `{id, name}` and a deployment's `environment` is a map `{id, name}`.
    ReleaseTooling,
    /// weco-deploy 2.0 to 3.3: `requested_by` is the caller's ARN string and
    /// `environment` a map `{id, name}`.
    WecoDeploy2,
    /// weco-deploy 4.0 and later (the current shape): both are strings.
    #[default]
    WecoDeploy4,
}

impl RecordShape {
    /// The shape of `release`'s newest deployment, or, if it has none, the
    /// shape its own `requested_by` implies (a map is the oldest shape; a
    /// string, the current one).
    pub fn of_release(release: &Release) -> RecordShape {
        match release.deployments().last() {
            Some(deployment) => match (&deployment.requested_by, &deployment.environment) {
                (Requester::Legacy { .. }, _) => RecordShape::ReleaseTooling,
                (_, DeploymentEnvironment::Legacy { .. }) => RecordShape::WecoDeploy2,
                _ => RecordShape::WecoDeploy4,
            },
            None => match release.requested_by() {
                Requester::Legacy { .. } => RecordShape::ReleaseTooling,
                Requester::Principal(_) => RecordShape::WecoDeploy4,
            },
        }
    }

    /// `requester` in this shape's form (a map holds the principal as `id`
    /// and its display name as `name`).
    pub fn requester(self, requester: &Requester) -> Requester {
        match (self, requester) {
            (RecordShape::ReleaseTooling, Requester::Principal(principal)) => Requester::Legacy {
                id: principal.clone(),
                name: requester.display_name().to_owned(),
            },
            (RecordShape::WecoDeploy2 | RecordShape::WecoDeploy4, Requester::Legacy { id, .. }) => {
                Requester::Principal(id.clone())
            }
            _ => requester.clone(),
        }
    }

    /// `environment` in this shape's form: the id, or the map `{id, name}`
    /// (only these two keys, so that no reader meets a number or a set that
    /// it cannot print).
    pub fn environment(self, environment: &crate::Environment) -> DeploymentEnvironment {
        match self {
            RecordShape::WecoDeploy4 => DeploymentEnvironment::Id(environment.id().clone()),
            RecordShape::ReleaseTooling | RecordShape::WecoDeploy2 => {
                DeploymentEnvironment::Legacy {
                    id: environment.id().clone(),
                    name: Some(environment.name().to_owned()),
                    extra: Map::new(),
                }
            }
        }
    }
}

impl fmt::Display for RecordShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordShape::ReleaseTooling => "release_tooling (requester and environment as maps)",
            RecordShape::WecoDeploy2 => "weco-deploy 2 (requester string, environment map)",
            RecordShape::WecoDeploy4 => "weco-deploy 4 (requester and environment as strings)",
        })
    }
}

/// What a release holds for one service.
///
/// Releases made by this crate always hold [`ImageEntry::Uri`]; the other
/// variants come from legacy records and cannot be deployed.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ImageEntry {
    /// An image URI (or bare tag): what gets written to a label.
    Uri(ImageUri),
    /// `null`: the service had no image at the label (weco-deploy 5.6.36+).
    Missing,
    /// A set of tags (a String Set, written for three days in Nov 2020).
    Tags(BTreeSet<String>),
}

impl ImageEntry {
    /// The URI, if this entry is one.
    pub fn uri(&self) -> Option<&ImageUri> {
        match self {
            ImageEntry::Uri(uri) => Some(uri),
            _ => None,
        }
    }
}

impl From<ImageUri> for ImageEntry {
    fn from(uri: ImageUri) -> Self {
        ImageEntry::Uri(uri)
    }
}

/// For people: control characters in a stored value are escaped.
impl fmt::Display for ImageEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageEntry::Uri(uri) => f.pad(&Escaped::whole(uri.as_str()).to_string()),
            ImageEntry::Missing => f.write_str("(no image)"),
            ImageEntry::Tags(tags) => {
                f.write_str("{")?;
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Escaped::whole(tag))?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for ImageEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageEntry::Uri(uri) => uri.serialize(serializer),
            ImageEntry::Missing => serializer.serialize_none(),
            ImageEntry::Tags(tags) => tags.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ImageEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(uri) => ImageUri::new(uri)
                .map(ImageEntry::Uri)
                .map_err(D::Error::custom),
            Value::Null => Ok(ImageEntry::Missing),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(tag) => Ok(tag),
                    other => Err(D::Error::custom(format!(
                        "a set of tags must hold strings, found {}",
                        value_kind(&other)
                    ))),
                })
                .collect::<Result<BTreeSet<_>, _>>()
                .map(ImageEntry::Tags),
            other => Err(unexpected(
                "an image URI string, null or a set of tags",
                &other,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requester_shapes() {
        let legacy: Requester =
            serde_json::from_value(json!({"id": "unknown", "name": "unknown"})).unwrap();
        assert_eq!(legacy.display_name(), "unknown");
        assert_eq!(
            serde_json::to_value(&legacy).unwrap(),
            json!({"id": "unknown", "name": "unknown"})
        );
        let arn: Requester =
            serde_json::from_value(json!("arn:aws:sts::123456789012:assumed-role/ci/session"))
                .unwrap();
        assert_eq!(arn.display_name(), "session");
        assert!(serde_json::from_value::<Requester>(json!(3)).is_err());
    }
}
