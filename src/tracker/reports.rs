//! What the workflows return: plans, results and reports, each
//! printable.

use std::collections::BTreeMap;
use std::fmt;

use super::*;
use crate::names::{EnvironmentId, Escaped, ImageUri, ProjectId, ReleaseId, ServiceId};
use crate::promotion::{EnvironmentHistory, GateVerdict, Soak};
use crate::release::{Deployment, DeploymentKind, ImageEntry, Release};
use crate::store::SkippedParameter;

/// A release made by [`ReleaseTracker::prepare`] or
/// [`ReleaseTracker::update`].
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The new release, as stored.
    pub release: Release,
    /// What was passed over: parameters under the label that are not images
    /// of it (never silently merged), and release records that could not be
    /// read while finding the newest release.
    pub warnings: Vec<Warning>,
}

/// The result of a deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    /// The release with the new deployment recorded.
    pub release: Release,
    /// The deployment that was recorded.
    pub deployment: Deployment,
    /// Services whose parameter was written.
    pub written: Vec<ServiceId>,
    /// Services whose parameter already held the release's image.
    pub unchanged: Vec<ServiceId>,
    /// What was passed over while planning (see [`DeployPlan::warnings`]).
    pub warnings: Vec<Warning>,
}

/// One parameter a deploy writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The service.
    pub service: ServiceId,
    /// What the environment's label holds now (`None`: no parameter yet).
    pub current: Option<ImageUri>,
    /// The full image reference the deploy writes.
    pub image: ImageUri,
    /// The bare tag the release records, when `image` was resolved from it
    /// through the manifest's `image_repositories`.
    pub resolved_from: Option<ImageUri>,
}

/// One service whose image differs between two releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageChange {
    /// The service.
    pub service: ServiceId,
    /// Its image in the older release.
    pub from: ImageEntry,
    /// Its image in the newer release.
    pub to: ImageEntry,
}

/// What a deploy would change, computed without writing anything, and what
/// [`ReleaseTracker::execute`] carries out.
///
/// A plan is made by [`ReleaseTracker::plan`] and holds the release it was
/// made for, so executing it deploys exactly the release that was shown,
/// even if `latest` has moved since.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeployPlan {
    /// The project.
    pub project: ProjectId,
    /// The release.
    pub release_id: ReleaseId,
    /// The environment.
    pub environment: EnvironmentId,
    /// The kind of deployment executing the plan records:
    /// [`DeploymentKind::Deploy`] from [`ReleaseTracker::plan`] (a
    /// [`DeploymentKind::Bypass`] if executed past unmet gates),
    /// [`DeploymentKind::Rollback`] from [`ReleaseTracker::plan_rollback`].
    pub kind: DeploymentKind,
    /// The release current in the environment when the plan was made (the
    /// newest deployment there, as the store's deployment listing showed
    /// it); `None` if nothing was deployed there. Recorded as the
    /// deployment's [`replaced_release`](Deployment::replaced_release).
    pub replaces: Option<ReleaseId>,
    /// Parameters that would be written, by service.
    pub changes: Vec<PlannedWrite>,
    /// Parameters that already hold the release's image.
    pub unchanged: Vec<ServiceId>,
    /// Services at the environment's label that the release does not have;
    /// a deploy leaves them as they are. `None` when the plan read only the
    /// release's services ([`LabelRead::ReleaseServices`](crate::LabelRead)).
    pub untouched: Option<Vec<ServiceId>>,
    /// Parameters the deploy would have to overwrite that are not plain
    /// `String` parameters (a `SecureString` where Terraform reads an
    /// image): while there are any, executing the plan fails with
    /// [`Error::ConflictingParameters`](crate::Error::ConflictingParameters) before writing anything.
    pub conflicts: Vec<SkippedParameter>,
    /// The environment's promotion gates and what they say of the release
    /// now; `None` when the environment has none, and for a rollback (the
    /// release already ran there). [`ReleaseTracker::execute`] checks them
    /// again, with the time then, before its first write.
    pub gates: Option<GateCheck>,
    /// What was passed over: other parameters under the environment's label
    /// that are not images, and unreadable release records skipped while
    /// resolving `latest` or reading the environments' deployments.
    pub warnings: Vec<Warning>,
    pub(super) release: Release,
    /// The newest deployments to each required environment with a soak,
    /// read for the gates.
    pub(super) gate_history: Vec<EnvironmentHistory>,
    /// See [`DeployPlan::changed_services`].
    pub(super) changed_services: Vec<ServiceId>,
}

/// An environment's promotion gates and their verdict on a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateCheck {
    /// The environments the release must have been deployed to first.
    pub requires: Vec<EnvironmentId>,
    /// How long it must have been current in each.
    pub soak: Option<Soak>,
    /// Whether it meets them, and if not, what it lacks.
    pub verdict: GateVerdict,
}

impl fmt::Display for GateCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let required: Vec<String> = self.requires.iter().map(ToString::to_string).collect();
        let what = match self.soak {
            Some(soak) => format!(
                "deployed to {} and current there for {soak}",
                required.join(", ")
            ),
            None => format!("deployed to {}", required.join(", ")),
        };
        match &self.verdict {
            GateVerdict::Pass => write!(f, "gates: pass ({what})"),
            GateVerdict::Unmet(unmet) => {
                write!(f, "gates: NOT MET ({what})")?;
                for requirement in unmet {
                    write!(f, "\n  - {requirement}")?;
                }
                Ok(())
            }
        }
    }
}

impl DeployPlan {
    /// Whether the deploy would write nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    /// The release the plan deploys, as it was read.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The services the deployment changes, recorded as its
    /// [`changed_services`](Deployment::changed_services): those whose
    /// image differs from the release it replaces, and any whose parameter
    /// it writes (changed by hand since); every service of the release when
    /// it replaces none. Measured against the release replaced rather than
    /// the label alone, so that the rerun of a deploy that failed part-way
    /// records what the whole deploy would have.
    pub fn changed_services(&self) -> &[ServiceId] {
        &self.changed_services
    }

    /// Whether the environment's promotion gates let the release in (true
    /// when there are none, and for a rollback).
    pub fn gates_pass(&self) -> bool {
        self.gates.as_ref().is_none_or(|g| g.verdict.passed())
    }
}

impl fmt::Display for DeployPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DeploymentKind::Rollback => {
                write!(f, "roll back {} to {}", self.environment, self.release_id)?
            }
            _ => write!(f, "deploy {} to {}", self.release_id, self.environment)?,
        }
        match &self.replaces {
            Some(replaced) => write!(f, " (replacing {replaced})")?,
            None => write!(f, " (the first deployment there)")?,
        }
        write!(
            f,
            ": {} to write, {} unchanged",
            self.changes.len(),
            self.unchanged.len()
        )?;
        match &self.untouched {
            Some(untouched) => writeln!(f, ", {} untouched", untouched.len())?,
            None => writeln!(f)?,
        }
        // Values read from parameters and records may hold anything:
        // escaped, so a plan never carries control characters to a terminal.
        let shown = |uri: &ImageUri| Escaped::whole(uri.as_str()).to_string();
        for change in &self.changes {
            match &change.current {
                Some(from) => write!(
                    f,
                    "  ~ {}: {} -> {}",
                    change.service,
                    shown(from),
                    shown(&change.image)
                )?,
                None => write!(f, "  + {}: {}", change.service, shown(&change.image))?,
            }
            match &change.resolved_from {
                Some(tag) => writeln!(f, " (resolved from tag {})", shown(tag))?,
                None => writeln!(f)?,
            }
        }
        for conflict in &self.conflicts {
            writeln!(
                f,
                "  ! {}: {}",
                Escaped::new(&conflict.name),
                Escaped::whole(&conflict.reason)
            )?;
        }
        match (&self.gates, &self.kind) {
            (Some(gates), _) => writeln!(f, "{gates}"),
            (None, DeploymentKind::Rollback) => writeln!(
                f,
                "gates: not checked (a rollback to a release that ran in {})",
                self.environment
            ),
            (None, _) => writeln!(f, "gates: none"),
        }
    }
}

/// How two releases differ.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseDiff {
    /// The older side.
    pub from: ReleaseId,
    /// The newer side.
    pub to: ReleaseId,
    /// Services only in `to`.
    pub added: BTreeMap<ServiceId, ImageEntry>,
    /// Services only in `from`.
    pub removed: BTreeMap<ServiceId, ImageEntry>,
    /// Services in both with different images.
    pub changed: Vec<ImageChange>,
    /// Services in both with the same image.
    pub unchanged: Vec<ServiceId>,
    /// Records passed over while resolving `latest` (empty from
    /// [`ReleaseDiff::between`]).
    pub warnings: Vec<Warning>,
}

impl ReleaseDiff {
    /// The difference from `from` to `to`.
    pub fn between(from: &Release, to: &Release) -> ReleaseDiff {
        let mut diff = ReleaseDiff {
            from: from.release_id().clone(),
            to: to.release_id().clone(),
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            warnings: Vec::new(),
        };
        for (service, old) in from.images() {
            match to.images().get(service) {
                None => {
                    diff.removed.insert(service.clone(), old.clone());
                }
                Some(new) if new == old => diff.unchanged.push(service.clone()),
                Some(new) => diff.changed.push(ImageChange {
                    service: service.clone(),
                    from: old.clone(),
                    to: new.clone(),
                }),
            }
        }
        for (service, new) in to.images() {
            if !from.images().contains_key(service) {
                diff.added.insert(service.clone(), new.clone());
            }
        }
        diff
    }

    /// Whether the two releases hold the same images.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for ReleaseDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} -> {}: {} added, {} removed, {} changed, {} unchanged",
            self.from,
            self.to,
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged.len()
        )?;
        for (service, image) in &self.added {
            writeln!(f, "  + {service}: {image}")?;
        }
        for (service, image) in &self.removed {
            writeln!(f, "  - {service}: {image}")?;
        }
        for change in &self.changed {
            writeln!(
                f,
                "  ~ {}: {} -> {}",
                change.service, change.from, change.to
            )?;
        }
        Ok(())
    }
}

/// What [`ReleaseTracker::current`] found for an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentStatus {
    /// The release last deployed there, if any.
    pub current: Option<CurrentDeployment>,
    /// Records passed over because they could not be read.
    pub warnings: Vec<Warning>,
}

/// The release last deployed to an environment, and whether the
/// environment's label still holds its images.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrentDeployment {
    /// The release.
    pub release: Release,
    /// Its newest deployment to the environment.
    pub deployment: Deployment,
    /// Services whose parameter no longer holds the release's image (changed
    /// by hand or by another tool since); empty when the label matches.
    pub drifted: Vec<ServiceId>,
}

impl CurrentDeployment {
    /// Whether the label still holds exactly the release's images.
    pub fn label_matches(&self) -> bool {
        self.drifted.is_empty()
    }
}
