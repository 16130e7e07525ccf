//! Releases, deployments and the values inside them, in the shape of the
//! records that exist (see the crate docs, "Records that already exist").
//!
//! Serde for these types is the JSON form of a release item: the DynamoDB
//! backend converts items to and from JSON and uses it, and so can any other
//! backend. Every legacy shape is read; new values are written in the current
//! shape; shapes read from a record are written back as they were.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::names::{ProjectId, ReleaseId, ServiceId};

mod deployment;
mod shapes;
mod size;
mod timestamp;

pub use deployment::{Deployment, DeploymentKind, DeploymentRecord};
pub(crate) use shapes::value_kind;
pub use shapes::{DeploymentEnvironment, ImageEntry, RecordShape, Requester};
pub use size::{item_size, DYNAMODB_ITEM_LIMIT, MAX_RECORD_SIZE, RECORD_SIZE_WARNING};
pub use timestamp::{Timestamp, TimestampError};

/// A release: the images of a project frozen at one moment, and the history
/// of where they were deployed.
///
/// Fields are read through methods so that the invariants hold: the
/// deployments are in the order they were recorded, and
/// [`last_date_deployed`](Release::last_date_deployed) is the newest of them
/// (or the stored value, if a legacy record has a newer one).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Release {
    release_id: ReleaseId,
    project_id: ProjectId,
    #[serde(default)]
    project_name: String,
    date_created: Timestamp,
    requested_by: Requester,
    #[serde(default)]
    description: String,
    images: BTreeMap<ServiceId, ImageEntry>,
    #[serde(default)]
    deployments: Vec<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_date_deployed: Option<Timestamp>,
    /// Attributes this crate does not interpret (`release_manifest`, …).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The parts of a new release; see [`Release::new`].
#[derive(Clone, Debug)]
pub struct NewRelease {
    /// The id; usually [`ReleaseId::random`].
    pub release_id: ReleaseId,
    /// The project.
    pub project_id: ProjectId,
    /// The project's display name, from the manifest.
    pub project_name: String,
    /// When the release was made.
    pub date_created: Timestamp,
    /// Who made it.
    pub requested_by: Requester,
    /// Why.
    pub description: String,
    /// The images.
    pub images: BTreeMap<ServiceId, ImageEntry>,
}

impl Release {
    /// A new release with no deployments.
    pub fn new(parts: NewRelease) -> Release {
        Release {
            release_id: parts.release_id,
            project_id: parts.project_id,
            project_name: parts.project_name,
            date_created: parts.date_created,
            requested_by: parts.requested_by,
            description: parts.description,
            images: parts.images,
            deployments: Vec::new(),
            last_date_deployed: None,
            extra: Map::new(),
        }
    }

    /// The release id.
    pub fn release_id(&self) -> &ReleaseId {
        &self.release_id
    }

    /// The project id.
    pub fn project_id(&self) -> &ProjectId {
        &self.project_id
    }

    /// The project's display name when the release was made.
    pub fn project_name(&self) -> &str {
        &self.project_name
    }

    /// When the release was made.
    pub fn date_created(&self) -> Timestamp {
        self.date_created
    }

    /// Who made it.
    pub fn requested_by(&self) -> &Requester {
        &self.requested_by
    }

    /// Why it was made.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The images, by service.
    pub fn images(&self) -> &BTreeMap<ServiceId, ImageEntry> {
        &self.images
    }

    /// Every deployment, oldest first (in the order they were recorded).
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// When the release was last deployed; `None` if never.
    pub fn last_date_deployed(&self) -> Option<Timestamp> {
        self.last_date_deployed
    }

    /// Attributes this crate does not interpret, kept as they were.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Appends a deployment and moves
    /// [`last_date_deployed`](Release::last_date_deployed) forward to its date
    /// (never backward). Stores call this to apply
    /// [`ReleaseStore::add_deployment`](crate::ReleaseStore::add_deployment).
    pub fn record_deployment(&mut self, deployment: Deployment) {
        let at = deployment.date_created;
        self.last_date_deployed = Some(self.last_date_deployed.map_or(at, |last| last.max(at)));
        self.deployments.push(deployment);
    }

    /// The size of the release's record as DynamoDB counts an item
    /// ([`item_size`]); compare with [`MAX_RECORD_SIZE`].
    pub fn record_size(&self) -> usize {
        item_size(&self.to_json())
    }

    /// The release as a JSON object in the record's shape.
    pub fn to_json(&self) -> Value {
        // Serializing these types cannot fail: every key is a string and no
        // value is a float.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a release from the JSON form of a record. `record` names it in
    /// errors (`release 0efc… in table wellcome-releases-storage`); errors give
    /// the path of the bad attribute.
    pub fn from_json(value: Value, record: &str) -> Result<Release> {
        decode_record(value, record)
    }
}

/// Decodes any record type from its JSON form, naming the bad attribute.
pub(crate) fn decode_record<T: serde::de::DeserializeOwned>(
    value: Value,
    record: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        Error::InvalidRecord {
            record: record.to_owned(),
            attribute: attribute_path(&path, &message),
            message,
        }
    })
}

/// The attribute a decoding error is about. serde reports a missing field
/// at the path of the map that lacks it (`.` for the record itself), so
/// the field's name is appended: `requested_by`, `deployments[0].environment`.
fn attribute_path(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match (path, missing) {
        (".", Some(field)) => field.to_owned(),
        (_, Some(field)) => format!("{path}.{field}"),
        (".", None) => "(the record itself)".to_owned(),
        (_, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_errors_name_the_attribute() {
        let err = Release::from_json(
            json!({
                "release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02",
                "requested_by": "x", "images": {"a": "u"},
                "deployments": [{"date_created": "2019-07-10T10:44:02", "environment": 7, "requested_by": "x"}]
            }),
            "release r1",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("release r1"), "{text}");
        assert!(text.contains("deployments[0].environment"), "{text}");
    }

    #[test]
    fn a_missing_field_is_named_not_dotted() {
        // The hand-made item weco-deploy 4.1.6 needs on an empty table.
        let err = Release::from_json(
            json!({"release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02", "images": {}}),
            "release r1",
        )
        .unwrap_err();
        match err {
            Error::InvalidRecord { attribute, .. } => assert_eq!(attribute, "requested_by"),
            other => panic!("{other}"),
        }
        let err = Release::from_json(
            json!({"release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02",
                   "requested_by": "x", "images": {},
                   "deployments": [{"date_created": "2019-07-10T10:44:02", "requested_by": "x"}]}),
            "release r1",
        )
        .unwrap_err();
        match err {
            Error::InvalidRecord { attribute, .. } => {
                assert_eq!(attribute, "deployments[0].environment")
            }
            other => panic!("{other}"),
        }
    }
}
