//! Promotion gates: which environments a release must have run in, and for
//! how long, before an environment accepts it.
//!
//! An environment of the manifest may say
//!
//! ```yaml
//! environments:
//!   - id: stage
//!     name: Staging
//!   - id: prod
//!     name: Production
//!     requires: [stage]   # deployed to stage first
//!     soak: 2h            # and current there for 2 hours
//! ```
//!
//! [`check_gates`] is the one rule, a pure function of the environment's
//! gates, the release, the recent deployments to the required environments
//! and the time. [`ReleaseTracker::plan`](crate::ReleaseTracker::plan) shows
//! its verdict and [`ReleaseTracker::execute`](crate::ReleaseTracker::execute)
//! applies it before its first write; a deploy with a bypass reason
//! ([`DeployOptions::bypass_gates`](crate::DeployOptions::bypass_gates)) goes
//! ahead anyway and is recorded as a [`DeploymentKind::Bypass`](crate::DeploymentKind::Bypass).
//!
//! # How long a release was current
//!
//! A release is current in an environment from a deployment of it there
//! until the next deployment of another release there, or until now if none
//! followed (deploying it again does not end that time). The longest such
//! time counts. Whether it was deployed there at all is read from its own
//! record, which lists every deployment of it; when it was replaced is read
//! from the newest [`HISTORY_LIMIT`] deployments to the environment. A time
//! that began before the oldest of those is counted from that oldest one
//! (so at least that long), and a release whose every deployment there is
//! older than all of them has a time that cannot be told: both are reported
//! as unmet rather than guessed, and can be bypassed.

use std::fmt;
use std::str::FromStr;

use crate::manifest::Environment;
use crate::names::{EnvironmentId, ReleaseId};
use crate::release::{DeploymentRecord, Release, Timestamp};

/// How many of an environment's newest deployments the gates read to tell
/// how long a release was current there, and a rollback reads to find the
/// release before the current one: one
/// [`recent_deployments`](crate::ReleaseStore::recent_deployments) call.
pub const HISTORY_LIMIT: usize = 20;

/// How long a release must have been current in the required environments:
/// a manifest's `soak`, such as `2h`, `30m`, `1d` or `1h30m` (whole numbers
/// of `d`, `h`, `m` and `s`, largest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Soak {
    seconds: u64,
}

impl Soak {
    /// A soak of `seconds`.
    pub fn from_seconds(seconds: u64) -> Soak {
        Soak { seconds }
    }

    /// Its length in seconds.
    pub fn as_seconds(&self) -> u64 {
        self.seconds
    }
}

/// Why a soak did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{}` is not a soak time: {reason}; write whole numbers of days, hours, minutes or seconds, \
     largest first, such as `2h`, `30m`, `1d` or `1h30m`",
    crate::names::Escaped::new(text)
)]
pub struct SoakError {
    text: String,
    reason: &'static str,
}

impl FromStr for Soak {
    type Err = SoakError;

    fn from_str(text: &str) -> Result<Soak, SoakError> {
        let fail = |reason| SoakError {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut seconds: u64 = 0;
        let mut rest = text;
        // Units must come largest first, each once: `1h30m`, never `30m1h`.
        let mut smaller_than = u64::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail("a unit must follow a number"));
            }
            let amount: u64 = rest[..digits]
                .parse()
                .map_err(|_| fail("a number is too large"))?;
            let unit = match rest[digits..].chars().next() {
                Some('d') => 86_400,
                Some('h') => 3_600,
                Some('m') => 60,
                Some('s') => 1,
                Some(_) => return Err(fail("the units are d, h, m and s")),
                None => return Err(fail("a number needs a unit")),
            };
            if unit >= smaller_than {
                return Err(fail("each unit once, largest first"));
            }
            smaller_than = unit;
            seconds = amount
                .checked_mul(unit)
                .and_then(|s| s.checked_add(seconds))
                .ok_or_else(|| fail("it is too long"))?;
            rest = &rest[digits + 1..];
        }
        if seconds == 0 {
            return Err(fail("it is zero; leave `soak` out for none"));
        }
        Ok(Soak { seconds })
    }
}

impl fmt::Display for Soak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_duration(f, self.seconds, true)
    }
}

/// `1d2h30m5s`, leaving out units that are zero; without seconds when
/// `exact` is false and the time is a minute or more.
fn write_duration(f: &mut fmt::Formatter<'_>, seconds: u64, exact: bool) -> fmt::Result {
    if seconds == 0 {
        return f.write_str("0s");
    }
    let parts = [
        (seconds / 86_400, "d"),
        (seconds % 86_400 / 3_600, "h"),
        (seconds % 3_600 / 60, "m"),
        (seconds % 60, "s"),
    ];
    let show_seconds = exact || seconds < 60;
    for (amount, unit) in parts {
        if amount > 0 && (unit != "s" || show_seconds) {
            write!(f, "{amount}{unit}")?;
        }
    }
    Ok(())
}

/// A measured time, shown in whole minutes (seconds under a minute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Elapsed {
    /// The time in seconds.
    pub seconds: u64,
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_duration(f, self.seconds, false)
    }
}

/// The newest deployments to one environment, as
/// [`recent_deployments`](crate::ReleaseStore::recent_deployments) returned
/// them: what the gates read to tell when a release was replaced there.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentHistory {
    /// The environment.
    pub environment: EnvironmentId,
    /// Its newest deployments, newest first.
    pub deployments: Vec<DeploymentRecord>,
    /// Whether older deployments may have been left out (the list was read
    /// with a limit and is full).
    pub truncated: bool,
}

/// One requirement of an environment's gates that a release does not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnmetRequirement {
    /// The release was never deployed to a required environment.
    NotDeployed {
        /// The release.
        release: ReleaseId,
        /// The environment it is to be deployed to.
        environment: EnvironmentId,
        /// The environment it must have been deployed to first.
        required: EnvironmentId,
    },
    /// The release was not current in a required environment for the soak
    /// time.
    NotSoaked {
        /// The release.
        release: ReleaseId,
        /// The environment it is to be deployed to.
        environment: EnvironmentId,
        /// The environment it must have been current in.
        required: EnvironmentId,
        /// The longest time it was current there, as far as the history read
        /// shows.
        current_for: Elapsed,
        /// Whether that time began before the oldest deployment read (so it
        /// is at least that long).
        at_least: bool,
        /// The soak time required.
        soak: Soak,
    },
    /// The release was deployed to a required environment, but only before
    /// the deployments read there, so how long it was current is not known.
    SoakUnknown {
        /// The release.
        release: ReleaseId,
        /// The environment it is to be deployed to.
        environment: EnvironmentId,
        /// The environment it must have been current in.
        required: EnvironmentId,
        /// How many deployments there were read.
        read: usize,
        /// The soak time required.
        soak: Soak,
    },
}

impl fmt::Display for UnmetRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnmetRequirement::NotDeployed {
                release,
                environment,
                required,
            } => write!(
                f,
                "release {release} has not been deployed to {required}; {environment} requires \
                 {required}"
            ),
            UnmetRequirement::NotSoaked {
                release,
                environment,
                required,
                current_for,
                at_least,
                soak,
            } => {
                let bound = if *at_least { "at least " } else { "" };
                write!(
                    f,
                    "release {release} has been current in {required} for {bound}{current_for}; \
                     {environment} requires {soak}"
                )?;
                if *at_least {
                    write!(
                        f,
                        " (counted from the oldest of the {HISTORY_LIMIT} deployments to \
                         {required} read)"
                    )?;
                }
                Ok(())
            }
            UnmetRequirement::SoakUnknown {
                release,
                environment,
                required,
                read,
                soak,
            } => write!(
                f,
                "release {release} was deployed to {required} only before the newest {read} \
                 deployments there, so how long it was current there is not known; {environment} \
                 requires {soak}"
            ),
        }
    }
}

/// Why an environment cannot be rolled back
/// ([`Error::NothingToRollBack`](crate::Error::NothingToRollBack)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackRefusal {
    /// Nothing has been deployed to the environment.
    NeverDeployed,
    /// Every deployment to the environment that was read is of the current
    /// release.
    NoEarlierRelease {
        /// The release current there.
        current: ReleaseId,
        /// How many deployments there were read.
        read: usize,
        /// Whether those are all the deployments there.
        complete: bool,
    },
    /// The release asked for is the one current there.
    AlreadyCurrent {
        /// The release.
        release: ReleaseId,
    },
    /// The release asked for never ran there: it is not a rollback.
    NeverRanThere {
        /// The release.
        release: ReleaseId,
    },
}

impl fmt::Display for RollbackRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackRefusal::NeverDeployed => f.write_str("nothing has been deployed there"),
            RollbackRefusal::NoEarlierRelease {
                current,
                complete: true,
                ..
            } => write!(
                f,
                "release {current} is the only release ever deployed there, so there is nothing \
                 to roll back to"
            ),
            RollbackRefusal::NoEarlierRelease { current, read, .. } => write!(
                f,
                "its newest {read} deployments are all of release {current}, the current one; \
                 name the release to roll back to"
            ),
            RollbackRefusal::AlreadyCurrent { release } => {
                write!(f, "release {release} is the one current there")
            }
            RollbackRefusal::NeverRanThere { release } => write!(
                f,
                "release {release} was never deployed there, so it cannot be rolled back to; \
                 deploy it instead (through the promotion gates)"
            ),
        }
    }
}

/// What an environment's gates say of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateVerdict {
    /// Every requirement is met (or there are none).
    Pass,
    /// These requirements are not met.
    Unmet(Vec<UnmetRequirement>),
}

impl GateVerdict {
    /// Whether the release may be deployed without a bypass.
    pub fn passed(&self) -> bool {
        matches!(self, GateVerdict::Pass)
    }
}

/// Checks `release` against the promotion gates of `environment` at `now`:
/// every environment it `requires` must be in the release's deployments,
/// and with a `soak`, the release must have been current in each of them
/// for that long (see the [module docs](self)), measured with `history`, the
/// newest deployments to each required environment (a required environment
/// without one is a time that cannot be told).
pub fn check_gates(
    environment: &Environment,
    release: &Release,
    history: &[EnvironmentHistory],
    now: Timestamp,
) -> GateVerdict {
    let mut unmet = Vec::new();
    for required in environment.requires() {
        let deployed_at: Vec<Timestamp> = release
            .deployments()
            .iter()
            .filter(|d| d.environment() == required)
            .map(|d| d.date_created())
            .collect();
        if deployed_at.is_empty() {
            unmet.push(UnmetRequirement::NotDeployed {
                release: release.release_id().clone(),
                environment: environment.id().clone(),
                required: required.clone(),
            });
            continue;
        }
        let Some(soak) = environment.soak() else {
            continue;
        };
        let found = history.iter().find(|h| &h.environment == required);
        let read = found.map_or(0, |h| h.deployments.len());
        match longest_time_current(release.release_id(), &deployed_at, found, now) {
            Some((seconds, _)) if seconds >= soak.as_seconds() => {}
            Some((seconds, at_least)) => unmet.push(UnmetRequirement::NotSoaked {
                release: release.release_id().clone(),
                environment: environment.id().clone(),
                required: required.clone(),
                current_for: Elapsed { seconds },
                at_least,
                soak,
            }),
            None => unmet.push(UnmetRequirement::SoakUnknown {
                release: release.release_id().clone(),
                environment: environment.id().clone(),
                required: required.clone(),
                read,
                soak,
            }),
        }
    }
    if unmet.is_empty() {
        GateVerdict::Pass
    } else {
        GateVerdict::Unmet(unmet)
    }
}

/// The longest time, in seconds, `release` was current in an environment,
/// given its deployments there (`deployed_at`, from its own record) and the
/// newest deployments there; and whether that time began before the oldest
/// deployment read. `None` when no such time can be told.
fn longest_time_current(
    release: &ReleaseId,
    deployed_at: &[Timestamp],
    history: Option<&EnvironmentHistory>,
    now: Timestamp,
) -> Option<(u64, bool)> {
    let history = history?;
    // Before the oldest deployment of a full list, other releases may have
    // been deployed unseen: only what follows it is known.
    let horizon = match history.deployments.last() {
        Some(oldest) if history.truncated => Some(oldest.deployment.date_created()),
        _ => None,
    };
    let known = |at: &Timestamp| horizon.is_none_or(|h| *at >= h);
    // (when, whether another release): the release's own deployments from
    // its record, the others' from the history.
    let mut events: Vec<(Timestamp, bool)> = deployed_at
        .iter()
        .filter(|at| known(at))
        .map(|at| (*at, false))
        .chain(
            history
                .deployments
                .iter()
                .filter(|r| &r.release_id != release)
                .map(|r| (r.deployment.date_created(), true)),
        )
        .collect();
    events.sort();
    // A list that starts with the release's own deployment may have cut
    // short its time there.
    let cut_short = horizon.is_some()
        && history
            .deployments
            .last()
            .is_some_and(|oldest| &oldest.release_id == release);
    let mut longest: Option<(u64, bool)> = None;
    let mut since: Option<(Timestamp, bool)> = None;
    for (index, (at, other)) in events.iter().enumerate() {
        match (other, since) {
            (false, None) => since = Some((*at, index == 0 && cut_short)),
            (true, Some((start, at_least))) => {
                longest = longer(longest, (seconds_between(start, *at), at_least));
                since = None;
            }
            _ => {}
        }
    }
    if let Some((start, at_least)) = since {
        longest = longer(longest, (seconds_between(start, now), at_least));
    }
    longest
}

fn longer(a: Option<(u64, bool)>, b: (u64, bool)) -> Option<(u64, bool)> {
    match a {
        Some(a) if a.0 >= b.0 => Some(a),
        _ => Some(b),
    }
}

/// Whole seconds from `from` to `to`; 0 if `to` is earlier.
fn seconds_between(from: Timestamp, to: Timestamp) -> u64 {
    let micros = to.unix_micros().saturating_sub(from.unix_micros());
    u64::try_from(micros / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests;
