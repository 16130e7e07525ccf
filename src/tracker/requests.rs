//! What callers ask [`ReleaseTracker::prepare`](super::ReleaseTracker::prepare) and
//! [`ReleaseTracker::update`](super::ReleaseTracker::update) for.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::names::{ImageUri, Label, ReleaseRef, ServiceId};

/// Where an image for one service comes from, when a release takes it from
/// somewhere other than its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// The service's image at another label.
    Label(Label),
    /// This exact image.
    Uri(ImageUri),
}

/// What [`ReleaseTracker::prepare`](super::ReleaseTracker::prepare) should freeze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareRequest {
    pub(super) from: Label,
    pub(super) description: Option<String>,
    pub(super) overrides: BTreeMap<ServiceId, ImageSource>,
}

impl PrepareRequest {
    /// Freeze every image at `label`.
    pub fn from_label(label: Label) -> PrepareRequest {
        PrepareRequest {
            from: label,
            description: None,
            overrides: BTreeMap::new(),
        }
    }

    /// Freeze every image at `latest`, the label CI publishes to.
    pub fn latest() -> PrepareRequest {
        PrepareRequest::from_label(Label::latest())
    }

    /// Why the release is made (default: [`DEFAULT_DESCRIPTION`](super::DEFAULT_DESCRIPTION)).
    pub fn description(mut self, description: impl Into<String>) -> PrepareRequest {
        self.description = Some(description.into());
        self
    }

    /// Take `service`'s image from `source` instead of the base label. The
    /// service must exist at the base label.
    pub fn with_image(mut self, service: ServiceId, source: ImageSource) -> PrepareRequest {
        self.overrides.insert(service, source);
        self
    }
}

/// What [`ReleaseTracker::update`](super::ReleaseTracker::update) should change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    pub(super) base: ReleaseRef,
    pub(super) from: Label,
    pub(super) services: BTreeSet<ServiceId>,
    pub(super) description: Option<String>,
}

impl UpdateRequest {
    /// A new release like `base` but with `services` taken from `label`.
    pub fn new(
        base: ReleaseRef,
        label: Label,
        services: impl IntoIterator<Item = ServiceId>,
    ) -> UpdateRequest {
        UpdateRequest {
            base,
            from: label,
            services: services.into_iter().collect(),
            description: None,
        }
    }

    /// Why the release is made (default: [`DEFAULT_DESCRIPTION`](super::DEFAULT_DESCRIPTION)).
    pub fn description(mut self, description: impl Into<String>) -> UpdateRequest {
        self.description = Some(description.into());
        self
    }
}

/// How [`ReleaseTracker::execute`](super::ReleaseTracker::execute) (and
/// `deploy`, `release_deploy`, `rollback`) records a deployment: why it is
/// made and, to go past unmet promotion gates, why they are bypassed.
///
/// A description converts into options, so `deploy(&release, "stage", "weekly")`
/// reads as before:
///
/// ```
/// use release_tracking::DeployOptions;
///
/// let plain: DeployOptions = "weekly deploy".into();
/// assert_eq!(plain.bypass_reason(), None);
/// let hotfix = DeployOptions::new("hotfix").bypass_gates("INC-123: prod is down");
/// assert_eq!(hotfix.bypass_reason(), Some("INC-123: prod is down"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployOptions {
    pub(super) description: String,
    pub(super) bypass_gates: Option<String>,
}

impl DeployOptions {
    /// A deployment made for `description` (empty: [`DEFAULT_DESCRIPTION`](super::DEFAULT_DESCRIPTION)).
    pub fn new(description: impl Into<String>) -> DeployOptions {
        DeployOptions {
            description: description.into(),
            bypass_gates: None,
        }
    }

    /// Deploys even if the environment's promotion gates are not met, for
    /// `reason` (required, not blank). When they are not met, the deployment
    /// is recorded as a [`DeploymentKind::Bypass`](crate::DeploymentKind::Bypass)
    /// with the reason, and its requester is who bypassed them; when they
    /// are met, nothing is bypassed and it is an ordinary deployment.
    pub fn bypass_gates(mut self, reason: impl Into<String>) -> DeployOptions {
        self.bypass_gates = Some(reason.into());
        self
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The reason to bypass the gates, if one was given.
    pub fn bypass_reason(&self) -> Option<&str> {
        self.bypass_gates.as_deref()
    }

    /// A bypass needs a reason: a blank one is [`Error::InvalidArgument`].
    pub(super) fn check(&self) -> Result<()> {
        match &self.bypass_gates {
            Some(reason) if reason.trim().is_empty() => Err(Error::InvalidArgument {
                argument: "bypass_gates",
                reason: "say why the promotion gates are bypassed (the reason is recorded with \
                         the deployment)"
                    .to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

impl From<&str> for DeployOptions {
    fn from(description: &str) -> DeployOptions {
        DeployOptions::new(description)
    }
}

impl From<String> for DeployOptions {
    fn from(description: String) -> DeployOptions {
        DeployOptions::new(description)
    }
}

impl From<&String> for DeployOptions {
    fn from(description: &String) -> DeployOptions {
        DeployOptions::new(description.as_str())
    }
}
