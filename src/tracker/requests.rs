//! What callers ask [`ReleaseTracker::prepare`](super::ReleaseTracker::prepare) and
//! [`ReleaseTracker::update`](super::ReleaseTracker::update) for.

use std::collections::{BTreeMap, BTreeSet};

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
