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
mod tests {
    use super::*;
    use crate::release::{Deployment, NewRelease, Requester};
    use std::collections::BTreeMap;

    const R: &str = "release-r";

    fn at(minutes: i64) -> Timestamp {
        "2024-03-01T00:00:00"
            .parse::<Timestamp>()
            .unwrap()
            .add_micros(minutes * 60_000_000)
    }

    fn env(id: &str) -> EnvironmentId {
        id.parse().unwrap()
    }

    fn deployment(environment: &str, minutes: i64) -> Deployment {
        Deployment::new(env(environment), at(minutes), Requester::new("x"), "d")
    }

    /// Release `R` deployed to `(environment, minute)` in order.
    fn release(deployments: &[(&str, i64)]) -> Release {
        let mut release = Release::new(NewRelease {
            release_id: R.parse().unwrap(),
            project_id: "storage".parse().unwrap(),
            project_name: "Storage".into(),
            date_created: at(-1000),
            requested_by: Requester::new("x"),
            description: "r".into(),
            images: BTreeMap::new(),
        });
        for (environment, minute) in deployments {
            release.record_deployment(deployment(environment, *minute));
        }
        release
    }

    /// The deployments to `stage`, given oldest first as (release, minute),
    /// in the newest-first order a store lists them.
    fn stage(listed: &[(&str, i64)], truncated: bool) -> EnvironmentHistory {
        EnvironmentHistory {
            environment: env("stage"),
            deployments: listed
                .iter()
                .rev()
                .map(|(release, minute)| DeploymentRecord {
                    release_id: release.parse().unwrap(),
                    deployment: deployment("stage", *minute),
                })
                .collect(),
            truncated,
        }
    }

    fn prod(requires: &[&str], soak: Option<&str>) -> Environment {
        let mut prod = Environment::new(env("prod"), "Production")
            .with_requires(requires.iter().map(|id| env(id)));
        if let Some(soak) = soak {
            prod = prod.with_soak(soak.parse().unwrap());
        }
        prod
    }

    /// What each case expects: the messages of the unmet requirements.
    fn verdict_text(verdict: &GateVerdict) -> Vec<String> {
        match verdict {
            GateVerdict::Pass => Vec::new(),
            GateVerdict::Unmet(unmet) => unmet.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn gates_table() {
        struct Case {
            name: &'static str,
            requires: &'static [&'static str],
            soak: Option<&'static str>,
            deployed: &'static [(&'static str, i64)],
            stage: Option<(&'static [(&'static str, i64)], bool)>,
            now: i64,
            expected: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "no gates",
                requires: &[],
                soak: None,
                deployed: &[],
                stage: None,
                now: 0,
                expected: &[],
            },
            Case {
                name: "required and deployed",
                requires: &["stage"],
                soak: None,
                deployed: &[("stage", 0)],
                stage: None,
                now: 1,
                expected: &[],
            },
            Case {
                name: "required and never deployed",
                requires: &["stage"],
                soak: None,
                deployed: &[("test", 0)],
                stage: None,
                now: 1,
                expected: &[
                    "release release-r has not been deployed to stage; prod requires stage",
                ],
            },
            Case {
                name: "two required, one missing",
                requires: &["test", "stage"],
                soak: None,
                deployed: &[("test", 0)],
                stage: None,
                now: 1,
                expected: &[
                    "release release-r has not been deployed to stage; prod requires stage",
                ],
            },
            Case {
                name: "still current, soaked",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: Some((&[("other", -50), (R, 0)], false)),
                now: 120,
                expected: &[],
            },
            Case {
                name: "still current, not soaked yet",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: Some((&[(R, 0)], false)),
                now: 35,
                expected: &[
                    "release release-r has been current in stage for 35m; prod requires 2h",
                ],
            },
            Case {
                name: "replaced before the soak ended",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: Some((&[(R, 0), ("next", 35)], false)),
                now: 600,
                expected: &[
                    "release release-r has been current in stage for 35m; prod requires 2h",
                ],
            },
            Case {
                name: "replaced after the soak ended",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: Some((&[(R, 0), ("next", 130)], false)),
                now: 600,
                expected: &[],
            },
            Case {
                name: "redeploying it does not end its time",
                requires: &["stage"],
                soak: Some("1h"),
                deployed: &[("stage", 0), ("stage", 30)],
                stage: Some((&[(R, 0), (R, 30), ("next", 70)], false)),
                now: 600,
                expected: &[],
            },
            Case {
                name: "the longest of two times counts",
                requires: &["stage"],
                soak: Some("1h"),
                deployed: &[("stage", 0), ("stage", 200)],
                stage: Some((&[(R, 0), ("next", 90), (R, 200), ("last", 210)], false)),
                now: 600,
                expected: &[],
            },
            Case {
                name: "two short times do not add up",
                requires: &["stage"],
                soak: Some("1h"),
                deployed: &[("stage", 0), ("stage", 100)],
                stage: Some((&[(R, 0), ("next", 40), (R, 100), ("last", 140)], false)),
                now: 600,
                expected: &[
                    "release release-r has been current in stage for 40m; prod requires 1h",
                ],
            },
            Case {
                name: "a deployment the index does not show yet counts",
                requires: &["stage"],
                soak: Some("1h"),
                deployed: &[("stage", 0)],
                stage: Some((&[("before", -10)], false)),
                now: 20,
                expected: &[
                    "release release-r has been current in stage for 20m; prod requires 1h",
                ],
            },
            Case {
                name: "a truncated list starting with it: at least",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0), ("stage", 10)],
                stage: Some((&[(R, 10), ("next", 40)], true)),
                now: 600,
                expected: &[
                    "release release-r has been current in stage for at least 30m; prod \
                     requires 2h (counted from the oldest of the 20 deployments to stage read)",
                ],
            },
            Case {
                name: "a truncated list starting with it, long enough",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0), ("stage", 10)],
                stage: Some((&[(R, 10), ("next", 200)], true)),
                now: 600,
                expected: &[],
            },
            Case {
                name: "deployed only before a truncated list",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: Some((&[("next", 300), ("last", 400)], true)),
                now: 600,
                expected: &[
                    "release release-r was deployed to stage only before the newest 2 \
                     deployments there, so how long it was current there is not known; prod \
                     requires 2h",
                ],
            },
            Case {
                name: "no history given",
                requires: &["stage"],
                soak: Some("2h"),
                deployed: &[("stage", 0)],
                stage: None,
                now: 600,
                expected: &[
                    "release release-r was deployed to stage only before the newest 0 \
                     deployments there, so how long it was current there is not known; prod \
                     requires 2h",
                ],
            },
            Case {
                name: "a clock behind the deployment counts zero",
                requires: &["stage"],
                soak: Some("1m"),
                deployed: &[("stage", 10)],
                stage: Some((&[(R, 10)], false)),
                now: 5,
                expected: &["release release-r has been current in stage for 0s; prod requires 1m"],
            },
        ];
        for case in cases {
            let environment = prod(case.requires, case.soak);
            let history: Vec<_> = case
                .stage
                .map(|(listed, truncated)| stage(listed, truncated))
                .into_iter()
                .collect();
            let verdict = check_gates(
                &environment,
                &release(case.deployed),
                &history,
                at(case.now),
            );
            assert_eq!(verdict_text(&verdict), case.expected, "{}", case.name);
            assert_eq!(verdict.passed(), case.expected.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn soaks_parse_and_print() {
        for (text, seconds, shown) in [
            ("2h", 7_200, "2h"),
            ("30m", 1_800, "30m"),
            ("1d", 86_400, "1d"),
            ("1h30m", 5_400, "1h30m"),
            ("90m", 5_400, "1h30m"),
            ("45s", 45, "45s"),
            ("1d2h3m4s", 93_784, "1d2h3m4s"),
        ] {
            let soak: Soak = text.parse().unwrap();
            assert_eq!(soak.as_seconds(), seconds, "{text}");
            assert_eq!(soak.to_string(), shown, "{text}");
        }
        for bad in [
            "", "2", "h", "2x", "2h 30m", "30m1h", "1h1h", "0m", "-1h", "1.5h", "2H",
        ] {
            let error = bad.parse::<Soak>().unwrap_err().to_string();
            assert!(error.contains("such as `2h`"), "{bad}: {error}");
        }
        assert!("99999999999999999999d".parse::<Soak>().is_err());
        assert!("9999999999999999d".parse::<Soak>().is_err());
    }

    #[test]
    fn elapsed_times_print_in_minutes() {
        for (seconds, shown) in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (2_135, "35m"),
            (7_259, "2h"),
            (90_061, "1d1h1m"),
        ] {
            assert_eq!(Elapsed { seconds }.to_string(), shown);
        }
    }
}
