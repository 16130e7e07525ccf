//! A deployment of a release, and a deployment with its release id.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DeploymentEnvironment, RecordShape, Requester, Timestamp};
use crate::names::{EnvironmentId, ReleaseId};

/// One deployment of a release to an environment: who, when, why.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Deployment {
    pub(super) date_created: Timestamp,
    #[serde(default)]
    description: String,
    pub(super) environment: DeploymentEnvironment,
    pub(super) requested_by: Requester,
    /// Fields this crate does not interpret (`details`, …), kept as they were.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Deployment {
    /// A deployment in the current shape.
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
        Deployment {
            date_created,
            description: description.into(),
            environment: shape.environment(environment),
            requested_by: shape.requester(requested_by),
            extra: Map::new(),
        }
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

    /// Who asked for it.
    pub fn requested_by(&self) -> &Requester {
        &self.requested_by
    }

    /// Fields this crate does not interpret, such as weco-deploy's `details`.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
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
