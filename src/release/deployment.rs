//! A deployment of a release, and a deployment with its release id.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{DeploymentEnvironment, RecordShape, Requester, Timestamp};
use crate::names::{EnvironmentId, ReleaseId, ServiceId};

/// One deployment of a release to an environment: who, when, why, and (in
/// entries this crate writes) the audit trail: its id, its kind, the release
/// it replaced, the services it changed and, for a bypass, the reason.
///
/// The audit attributes are optional: entries written by the earlier tools
/// (or before this crate recorded them) have none, which reads as "unknown".
/// They hold strings and lists of strings only, which every earlier reader
/// passes over (`release_tooling`'s `show-release` prints a whole item with
/// `json.dumps`, which fails on a DynamoDB number or set).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Deployment {
    pub(super) date_created: Timestamp,
    #[serde(default)]
    description: String,
    pub(super) environment: DeploymentEnvironment,
    pub(super) requested_by: Requester,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<DeploymentKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaced_release: Option<ReleaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changed_services: Option<Vec<ServiceId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bypass_reason: Option<String>,
    /// Fields this crate does not interpret (`details`, …), kept as they were.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Deployment {
    /// A deployment in the current shape, with no audit attributes.
    pub fn new(
        environment: EnvironmentId,
        date_created: Timestamp,
        requested_by: Requester,
        description: impl Into<String>,
    ) -> Deployment {
        Deployment {
            date_created,
            description: description.into(),
            environment: DeploymentEnvironment::Id(environment),
            requested_by,
            deployment_id: None,
            kind: None,
            replaced_release: None,
            changed_services: None,
            bypass_reason: None,
            extra: Map::new(),
        }
    }

    /// A deployment to `environment` in `shape`: the requester and the
    /// environment written as that generation of tools wrote them.
    pub fn in_shape(
        shape: RecordShape,
        environment: &crate::Environment,
        date_created: Timestamp,
        requested_by: &Requester,
        description: impl Into<String>,
    ) -> Deployment {
        let mut deployment = Deployment::new(
            environment.id().clone(),
            date_created,
            shape.requester(requested_by),
            description,
        );
        deployment.environment = shape.environment(environment);
        deployment
    }

    /// Sets the deployment's id (see [`deployment_id`](Self::deployment_id)).
    pub fn with_deployment_id(mut self, id: impl Into<String>) -> Deployment {
        self.deployment_id = Some(id.into());
        self
    }

    /// Sets the kind (see [`kind`](Self::kind)).
    pub fn with_kind(mut self, kind: DeploymentKind) -> Deployment {
        self.kind = Some(kind);
        self
    }

    /// Sets the release the deployment replaced (see
    /// [`replaced_release`](Self::replaced_release)).
    pub fn with_replaced_release(mut self, release: ReleaseId) -> Deployment {
        self.replaced_release = Some(release);
        self
    }

    /// Sets the services whose parameter the deployment wrote (see
    /// [`changed_services`](Self::changed_services)).
    pub fn with_changed_services(
        mut self,
        services: impl IntoIterator<Item = ServiceId>,
    ) -> Deployment {
        self.changed_services = Some(services.into_iter().collect());
        self
    }

    /// Sets why the promotion gates were bypassed (see
    /// [`bypass_reason`](Self::bypass_reason)).
    pub fn with_bypass_reason(mut self, reason: impl Into<String>) -> Deployment {
        self.bypass_reason = Some(reason.into());
        self
    }

    /// When the deployment was recorded.
    pub fn date_created(&self) -> Timestamp {
        self.date_created
    }

    /// Why it was made.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The environment id.
    pub fn environment(&self) -> &EnvironmentId {
        self.environment.id()
    }

    /// The environment as recorded (id string or legacy map).
    pub fn environment_record(&self) -> &DeploymentEnvironment {
        &self.environment
    }

    /// Who asked for it (for a bypass, who bypassed the gates).
    pub fn requested_by(&self) -> &Requester {
        &self.requested_by
    }

    /// The deployment's own id (a UUID v4 string), unique across releases;
    /// `None` in entries written without one.
    pub fn deployment_id(&self) -> Option<&str> {
        self.deployment_id.as_deref()
    }

    /// What kind of deployment it was; `None` (unknown) in entries written
    /// without one.
    pub fn kind(&self) -> Option<&DeploymentKind> {
        self.kind.as_ref()
    }

    /// The release that was current in the environment when this one was
    /// deployed. `None` when unknown (no [`kind`](Self::kind)) or, in an
    /// entry with a kind, when nothing had been deployed there before.
    pub fn replaced_release(&self) -> Option<&ReleaseId> {
        self.replaced_release.as_ref()
    }

    /// The services whose parameter the deployment wrote (the others
    /// already held the release's image); `None` when unknown.
    pub fn changed_services(&self) -> Option<&[ServiceId]> {
        self.changed_services.as_deref()
    }

    /// Why the promotion gates were bypassed, for a deployment of kind
    /// [`DeploymentKind::Bypass`]; who bypassed them is
    /// [`requested_by`](Self::requested_by).
    pub fn bypass_reason(&self) -> Option<&str> {
        self.bypass_reason.as_deref()
    }

    /// Fields this crate does not interpret, such as weco-deploy's `details`.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// What kind of deployment an entry records, stored as a string (`deploy`,
/// `rollback`, `bypass`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum DeploymentKind {
    /// A release deployed through its promotion gates (or to an environment
    /// without any).
    Deploy,
    /// A return to a release that ran in the environment before; it names
    /// the release it replaced.
    Rollback,
    /// A deployment whose promotion gates were not met, deployed anyway with
    /// a reason.
    Bypass,
    /// A kind written by another tool, kept as written.
    Other(String),
}

impl DeploymentKind {
    /// The stored string.
    pub fn as_str(&self) -> &str {
        match self {
            DeploymentKind::Deploy => "deploy",
            DeploymentKind::Rollback => "rollback",
            DeploymentKind::Bypass => "bypass",
            DeploymentKind::Other(other) => other,
        }
    }
}

impl From<&str> for DeploymentKind {
    fn from(text: &str) -> DeploymentKind {
        match text {
            "deploy" => DeploymentKind::Deploy,
            "rollback" => DeploymentKind::Rollback,
            "bypass" => DeploymentKind::Bypass,
            other => DeploymentKind::Other(other.to_owned()),
        }
    }
}

/// For people: control characters in a kind read from a record are escaped.
impl fmt::Display for DeploymentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&crate::names::Escaped::new(self.as_str()).to_string())
    }
}

impl Serialize for DeploymentKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeploymentKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(DeploymentKind::from(text.as_str()))
    }
}

/// One deployment with the release it deployed, as returned by history
/// queries.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The release that was deployed.
    pub release_id: ReleaseId,
    /// The deployment.
    pub deployment: Deployment,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_attributes_round_trip_and_are_absent_when_unset() {
        let plain: Deployment = serde_json::from_value(json!({
            "date_created": "2020-01-01T00:00:00", "description": "d",
            "environment": "stage", "requested_by": "x"
        }))
        .unwrap();
        assert_eq!(plain.kind(), None);
        assert_eq!(plain.changed_services(), None);
        let written = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            written.as_object().map(|m| m.len()),
            Some(4),
            "no audit key is written when unset: {written}"
        );

        let audited = plain
            .clone()
            .with_deployment_id("0b6c7c1e-5b7e-4b0e-9a55-1d2f3a4b5c6d")
            .with_kind(DeploymentKind::Bypass)
            .with_replaced_release("r0".parse().unwrap())
            .with_changed_services(["a".parse().unwrap(), "b".parse().unwrap()])
            .with_bypass_reason("hotfix INC-123");
        let value = serde_json::to_value(&audited).unwrap();
        assert_eq!(value["kind"], "bypass");
        assert_eq!(value["changed_services"], json!(["a", "b"]));
        assert_eq!(value["replaced_release"], "r0");
        assert_eq!(value["bypass_reason"], "hotfix INC-123");
        let back: Deployment = serde_json::from_value(value).unwrap();
        assert_eq!(back, audited);
        assert!(back.extra().is_empty(), "audit keys are not extra");
    }

    #[test]
    fn an_unknown_kind_is_kept_as_written() {
        let d: Deployment = serde_json::from_value(json!({
            "date_created": "2020-01-01T00:00:00", "environment": "stage",
            "requested_by": "x", "kind": "promote"
        }))
        .unwrap();
        assert_eq!(d.kind(), Some(&DeploymentKind::Other("promote".into())));
        assert_eq!(serde_json::to_value(&d).unwrap()["kind"], "promote");
    }
}
