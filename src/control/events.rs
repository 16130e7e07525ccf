//! The audit trail of deployment controls.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{EnvironmentId, Escaped, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};

use super::{Block, ControlAction, Freeze, Lease, Reason};

/// What a [`ControlEvent`] changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlChange {
    /// A lease was removed by force.
    ForceUnlock {
        /// The environment.
        environment: EnvironmentId,
        /// The lease removed.
        lease: Lease,
    },
    /// An environment was frozen.
    Freeze {
        /// The environment.
        environment: EnvironmentId,
    },
    /// A freeze was lifted.
    Unfreeze {
        /// The environment.
        environment: EnvironmentId,
        /// The freeze lifted.
        lifted: Freeze,
    },
    /// A release was blocked.
    Block {
        /// The release.
        release: ReleaseId,
    },
    /// A block was lifted.
    Unblock {
        /// The release.
        release: ReleaseId,
        /// The block lifted.
        lifted: Block,
    },
}

impl ControlChange {
    /// The environment it concerns, if it concerns one (blocks concern a
    /// release).
    pub fn environment(&self) -> Option<&EnvironmentId> {
        match self {
            ControlChange::ForceUnlock { environment, .. }
            | ControlChange::Freeze { environment }
            | ControlChange::Unfreeze { environment, .. } => Some(environment),
            ControlChange::Block { .. } | ControlChange::Unblock { .. } => None,
        }
    }

    /// `force_unlock`, `freeze`, `unfreeze`, `block` or `unblock`, as
    /// stored.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlChange::ForceUnlock { .. } => "force_unlock",
            ControlChange::Freeze { .. } => "freeze",
            ControlChange::Unfreeze { .. } => "unfreeze",
            ControlChange::Block { .. } => "block",
            ControlChange::Unblock { .. } => "unblock",
        }
    }
}

/// One entry of a project's control audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Its position in the project's trail: 1 for the first event, then
    /// one more for each.
    pub sequence: u64,
    /// The project.
    pub project: ProjectId,
    /// Who.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// When.
    pub at: Timestamp,
    /// What changed.
    #[serde(flatten)]
    pub change: ControlChange,
}

impl ControlEvent {
    /// Event number `sequence` of `project`: `action` making `change`.
    pub fn new(
        sequence: u64,
        project: &ProjectId,
        action: &ControlAction,
        change: ControlChange,
    ) -> ControlEvent {
        ControlEvent {
            sequence,
            project: project.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            at: action.at,
            change,
        }
    }

    /// The environment it concerns, if any.
    pub fn environment(&self) -> Option<&EnvironmentId> {
        self.change.environment()
    }
}

impl fmt::Display for ControlEvent {
    /// `#3 2020-01-01T00:00:00 UTC alice froze prod: "incident INC-1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} UTC {} ",
            self.sequence,
            self.at,
            Escaped::new(self.by.display_name())
        )?;
        match &self.change {
            ControlChange::ForceUnlock { environment, lease } => write!(
                f,
                "force-unlocked {environment} (lease {} of {}, release `{}`)",
                lease.lease_id,
                Escaped::new(lease.holder.display_name()),
                lease.release
            )?,
            ControlChange::Freeze { environment } => write!(f, "froze {environment}")?,
            ControlChange::Unfreeze {
                environment,
                lifted,
            } => write!(
                f,
                "unfroze {environment} (frozen by {} since {} UTC)",
                Escaped::new(lifted.by.display_name()),
                lifted.since
            )?,
            ControlChange::Block { release } => write!(f, "blocked release `{release}`")?,
            ControlChange::Unblock { release, lifted } => write!(
                f,
                "unblocked release `{release}` (blocked by {} since {} UTC)",
                Escaped::new(lifted.by.display_name()),
                lifted.since
            )?,
        }
        write!(f, ": \"{}\"", self.reason)
    }
}
