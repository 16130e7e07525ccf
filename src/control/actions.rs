//! Freezes and blocks, and the action (who, why, when) that changes a control.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};

use super::{MAX_ACTIVE_BLOCKS, MAX_REASON_CHARS, MAX_REQUESTER_CHARS};

/// Why a control was changed: required, not blank, at most
/// [`MAX_REASON_CHARS`] characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Reason(String);

impl Reason {
    /// Validates `text`.
    pub fn new(text: impl Into<String>) -> Result<Reason> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(Error::InvalidArgument {
                argument: "reason",
                reason: "a reason is required (it is recorded in the audit trail)".to_owned(),
            });
        }
        let chars = text.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(Error::InvalidArgument {
                argument: "reason",
                reason: format!("is {chars} characters long; at most {MAX_REASON_CHARS} are kept"),
            });
        }
        Ok(Reason(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Escaped::whole(&self.0))
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reason({:?})", self.0)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Reason::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

pub(super) fn check_requester(requester: &Requester, argument: &'static str) -> Result<()> {
    let chars = requester.id().chars().count();
    if chars == 0 || chars > MAX_REQUESTER_CHARS {
        return Err(Error::InvalidArgument {
            argument,
            reason: format!(
                "the requester id must be 1 to {MAX_REQUESTER_CHARS} characters, got {chars}"
            ),
        });
    }
    Ok(())
}

/// Who changes a control, why and when: what a freeze, a block and a forced
/// unlock record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlAction {
    pub(super) by: Requester,
    pub(super) reason: Reason,
    pub(super) at: Timestamp,
}

impl ControlAction {
    /// Fails with [`Error::InvalidArgument`] if the requester id is longer
    /// than [`MAX_REQUESTER_CHARS`].
    pub fn new(by: Requester, reason: Reason, at: Timestamp) -> Result<ControlAction> {
        check_requester(&by, "by")?;
        Ok(ControlAction { by, reason, at })
    }

    /// Who.
    pub fn by(&self) -> &Requester {
        &self.by
    }

    /// Why.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// When.
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// A frozen environment: no deploy or rollback until it is lifted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The project.
    pub project: ProjectId,
    /// The environment.
    pub environment: EnvironmentId,
    /// Who froze it.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// Since when.
    pub since: Timestamp,
}

impl Freeze {
    /// The freeze `action` makes.
    pub fn new(project: &ProjectId, environment: &EnvironmentId, action: &ControlAction) -> Freeze {
        Freeze {
            project: project.clone(),
            environment: environment.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            since: action.at,
        }
    }
}

/// A blocked release: it may not be deployed anywhere it is not already
/// current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The project.
    pub project: ProjectId,
    /// The release.
    pub release: ReleaseId,
    /// Who blocked it.
    pub by: Requester,
    /// Why.
    pub reason: Reason,
    /// Since when.
    pub since: Timestamp,
}

impl Block {
    /// The block `action` makes.
    pub fn new(project: &ProjectId, release: &ReleaseId, action: &ControlAction) -> Block {
        Block {
            project: project.clone(),
            release: release.clone(),
            by: action.by.clone(),
            reason: action.reason.clone(),
            since: action.at,
        }
    }
}

/// Sorts blocks newest first, ties by greater release id first.
pub(crate) fn sort_blocks(blocks: &mut [Block]) {
    blocks.sort_by(|a, b| (b.since, &b.release).cmp(&(a.since, &a.release)));
}

/// The error of blocking one release too many.
pub(crate) fn too_many_blocks(project: &ProjectId, release: &ReleaseId) -> Error {
    Error::InvalidArgument {
        argument: "release",
        reason: format!(
            "cannot block release `{release}`: project `{project}` already has \
             {MAX_ACTIVE_BLOCKS} blocked releases; unblock some first"
        ),
    }
}
